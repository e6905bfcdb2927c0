//! From MetalLB objects to a [`Config`]: each spec is checked against its kind's fields
//! (camelCase, strict), renamed into the ConfigMap's shape and read by the ConfigMap's own
//! functions, so that every check and error text is shared; errors are then put back in the
//! object's terms (its id, `spec.` paths, camelCase keys).

use super::allocation::{ALLOCATION, add_exclusive, point_at_annotation};
use super::schema::*;
use super::{Kind, Object, ObjectId, Secrets, Translation, Warning};
use crate::bfd::ProfileNames;
use crate::community::CommunityValue;
use crate::error::{ConfigError, ConfigErrorKind, ConfigErrors};
use crate::fields::{self, bool_value, duration_value, index, string};
use crate::model::{AddressPool, BgpAdvertisement, Config, Peer};
use crate::parse::{self, PoolContext};
use crate::selector::NodeSelector;
use crate::validate::{self, AddressEntry, PeerKey};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

/// Runs `read` with its own error list, then files its errors under `id`, in camelCase.
fn on_object<T>(
    id: &ObjectId,
    errs: &mut Vec<ConfigError>,
    read: impl FnOnce(&mut Vec<ConfigError>) -> T,
) -> T {
    let mut local = Vec::new();
    let out = read(&mut local);
    for mut e in local {
        e.object = Some(Box::new(id.clone()));
        e.path = camel_path(&e.path);
        e.kind = camel_kind(e.kind);
        errs.push(e);
    }
    out
}

/// The names of the objects of one kind, in words, for "no X named Y" errors.
fn known(names: &[&str]) -> String {
    if names.is_empty() {
        "none are defined".to_string()
    } else {
        format!("defined: {}", names.join(", "))
    }
}

/// Reads a list of label selectors at `key` of a spec.
fn selectors(
    spec: &fields::Object<'_>,
    key: &str,
    errs: &mut Vec<ConfigError>,
) -> Vec<NodeSelector> {
    spec.seq(key, errs)
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            parse::node_selector(&kebab_selector(s), index(&spec.path_of(key), i), errs)
        })
        .collect()
}

/// For each object of `objects`, its rank when they are ordered oldest first (by creation time,
/// then by their position, for objects of files, which have none).
fn age_ranks(objects: &[&Object]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..objects.len()).collect();
    order.sort_by(|a, b| objects[*a].created.cmp(&objects[*b].created).then(a.cmp(b)));
    let mut rank = vec![0; objects.len()];
    for (r, i) in order.into_iter().enumerate() {
        rank[i] = r;
    }
    rank
}

/// Sort key putting `adv2` before `adv10`.
fn natural(name: &str) -> (String, u64, String) {
    let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (stem, number) = name.split_at(name.len() - digits);
    (
        stem.to_string(),
        number.parse().unwrap_or(0),
        name.to_string(),
    )
}

/// Where cross-object checks point: `IPAddressPool ns/a spec.addresses[0]` → the object and
/// the path in it.
type Places = HashMap<String, (ObjectId, String)>;

fn place(places: &mut Places, id: &ObjectId, path: &str) -> String {
    let rich = if path.is_empty() {
        id.to_string()
    } else {
        format!("{id} {path}")
    };
    places.insert(rich.clone(), (id.clone(), path.to_string()));
    rich
}

struct ReadPool {
    id: ObjectId,
    labels: BTreeMap<String, String>,
    pool: Option<AddressPool>,
    /// Its entries, with rich paths, for the advertisements' aggregation check.
    addresses: Vec<(crate::address::AddressRange, String)>,
    advertisements: Vec<(String, BgpAdvertisement)>,
}

pub(super) fn translate(objects: &[Object], secrets: &Secrets) -> Translation {
    let mut errs = Vec::new();
    let mut warnings = Vec::new();
    let mut secrets_used = BTreeSet::new();
    let namespace = objects
        .first()
        .map(|o| o.id.namespace.clone())
        .unwrap_or_default();
    let mut seen = BTreeSet::new();
    let mut by_kind: BTreeMap<Kind, Vec<&Object>> = BTreeMap::new();
    for obj in objects {
        if seen.insert(obj.id.clone()) {
            by_kind.entry(obj.id.kind).or_default().push(obj);
        } else {
            let mut e = ConfigError::new("", obj.line, ConfigErrorKind::DuplicateObject);
            e.object = Some(Box::new(obj.id.clone()));
            errs.push(e);
        }
    }
    let of = |kind: Kind| by_kind.get(&kind).map(Vec::as_slice).unwrap_or(&[]);
    for obj in of(Kind::L2Advertisement) {
        warnings.push(Warning {
            object: obj.id.clone(),
            message: "ignored: ferrolb announces over BGP only (L2Advertisement is MetalLB's layer 2 mode)".to_string(),
        });
    }
    let mut places = Places::new();

    // BFD profiles.
    let mut profile_names = ProfileNames::default();
    let mut bfd_profiles = Vec::new();
    for obj in of(Kind::BfdProfile) {
        bfd_profiles.extend(on_object(&obj.id, &mut errs, |errs| {
            fields::Object::read(&obj.spec, "spec".into(), &BFD, errs)?;
            let name = scalar_entry("name", &obj.id.name, obj.line);
            let node = kebab_spec(&obj.spec, BFD.known, vec![name]);
            crate::bfd::profile(&node, "spec".into(), &mut profile_names, errs)
        }));
    }

    // Community aliases.
    let mut communities: BTreeMap<String, CommunityValue> = BTreeMap::new();
    let mut alias_owner: BTreeMap<String, ObjectId> = BTreeMap::new();
    for obj in of(Kind::Community) {
        on_object(&obj.id, &mut errs, |errs| {
            let spec = fields::Object::read(&obj.spec, "spec".into(), &COMMUNITY, errs)?;
            for (i, item) in spec.seq("communities", errs).iter().enumerate() {
                let path = index("spec.communities", i);
                let Some(alias) = fields::Object::read(item, path, &ALIAS, errs) else {
                    continue;
                };
                let name = alias.required("name", errs, string);
                let value = alias.required("value", errs, |n| {
                    string(n).and_then(|t| t.parse::<CommunityValue>().map_err(Into::into))
                });
                if let (Some(name), Some(value)) = (name, value) {
                    if let Some(first) = alias_owner.get(&name) {
                        errs.push(alias.error(
                            "name",
                            ConfigErrorKind::DuplicateCommunityAlias {
                                name,
                                first: first.to_string(),
                            },
                        ));
                    } else {
                        alias_owner.insert(name.clone(), obj.id.clone());
                        communities.insert(name, value);
                    }
                }
            }
            Some(())
        });
    }

    // Pools, kept in the order given; overlaps are blamed on the newer pool of a pair (oldest
    // first by creation time, then that order: files have no creation times).
    let mut entries: Vec<AddressEntry> = Vec::new();
    let mut pools: Vec<ReadPool> = Vec::new();
    let age_rank = age_ranks(of(Kind::IpAddressPool));
    for (i, obj) in of(Kind::IpAddressPool).iter().enumerate() {
        let i = age_rank[i];
        let first_entry = entries.len();
        let pool = on_object(&obj.id, &mut errs, |errs| {
            let spec = fields::Object::read(&obj.spec, "spec".into(), &POOL, errs)?;
            if let Some(e) = spec.entry("serviceAllocation") {
                fields::Object::read(
                    &e.value,
                    spec.path_of("serviceAllocation"),
                    &ALLOCATION,
                    errs,
                )?;
            }
            let extra = vec![
                scalar_entry("name", &obj.id.name, obj.line),
                scalar_entry("protocol", "bgp", obj.line),
            ];
            let mut node = kebab_spec(&obj.spec, POOL.known, extra);
            if let Some(exclusive) = obj.exclusive_namespaces {
                add_exclusive(&mut node, exclusive, obj.line);
            }
            let no_aliases = BTreeMap::new();
            let mut names = Vec::new();
            let mut ctx = PoolContext {
                pool_index: i,
                communities: &no_aliases,
                entries: &mut entries,
                names: &mut names,
            };
            let before = errs.len();
            let pool = parse::pool(&node, "spec".into(), &mut ctx, errs);
            point_at_annotation(&mut errs[before..]);
            pool
        });
        let mut addresses = Vec::new();
        for e in entries.iter_mut().skip(first_entry) {
            e.path = place(&mut places, &obj.id, &e.path);
            addresses.push((e.range, e.path.clone()));
        }
        pools.push(ReadPool {
            id: obj.id.clone(),
            labels: obj.labels.clone(),
            pool,
            addresses,
            advertisements: Vec::new(),
        });
    }

    // Peers.
    let mut peer_keys: Vec<PeerKey> = Vec::new();
    // Each key's object's creation time: a duplicate is blamed on the newer peer.
    let mut peer_created: Vec<&str> = Vec::new();
    let mut peers = Vec::new();
    for obj in of(Kind::BgpPeer) {
        let first_key = peer_keys.len();
        let v1beta2 = obj.api_version.ends_with("v1beta2");
        let ctx = PeerContext {
            obj,
            v1beta2,
            namespace: &namespace,
            secrets,
            profiles: &profile_names,
        };
        let mut from_secret = false;
        let peer = on_object(&obj.id, &mut errs, |errs| {
            peer(
                &ctx,
                &mut peer_keys,
                &mut secrets_used,
                &mut warnings,
                &mut from_secret,
                errs,
            )
        });
        if from_secret {
            // The Secret's password failed the TCP-MD5 checks: point at the reference.
            for e in errs
                .iter_mut()
                .filter(|e| e.object.as_deref() == Some(&obj.id))
            {
                if e.path == "spec.password" {
                    e.path = "spec.passwordSecret".into();
                }
            }
        }
        for k in peer_keys.iter_mut().skip(first_key) {
            k.path = place(&mut places, &obj.id, "");
            peer_created.push(&obj.created);
        }
        peers.extend(peer);
    }

    // Advertisements.
    let pool_names: Vec<&str> = pools.iter().map(|p| p.id.name.as_str()).collect();
    let peer_names: Vec<&str> = of(Kind::BgpPeer)
        .iter()
        .map(|p| p.id.name.as_str())
        .collect();
    let mut chosen = Vec::new();
    for obj in of(Kind::BgpAdvertisement) {
        let read = on_object(&obj.id, &mut errs, |errs| {
            let spec = fields::Object::read(&obj.spec, "spec".into(), &ADVERTISEMENT, errs)?;
            let before = errs.len();
            let names = spec.seq("ipAddressPools", errs);
            let mut selected = BTreeSet::new();
            for (i, n) in names.iter().enumerate() {
                match string(n) {
                    Ok(name) => match pool_names.iter().position(|p| *p == name) {
                        Some(at) => {
                            selected.insert(at);
                        }
                        None => errs.push(ConfigError::new(
                            index("spec.ipAddressPools", i),
                            n.line,
                            ConfigErrorKind::UnknownObject {
                                kind: Kind::IpAddressPool,
                                name,
                                known: known(&pool_names),
                            },
                        )),
                    },
                    Err(kind) => errs.push(ConfigError::new(
                        index("spec.ipAddressPools", i),
                        n.line,
                        kind,
                    )),
                }
            }
            let pool_selectors = selectors(&spec, "ipAddressPoolSelectors", errs);
            for (at, p) in pools.iter().enumerate() {
                if pool_selectors.iter().any(|s| s.matches(&p.labels)) {
                    selected.insert(at);
                }
            }
            let every_pool = spec.entry("ipAddressPools").is_none()
                && spec.entry("ipAddressPoolSelectors").is_none();
            if every_pool {
                selected.extend(0..pools.len());
            }
            let mut peers = Vec::new();
            for (i, n) in spec.seq("peers", errs).iter().enumerate() {
                let path = index("spec.peers", i);
                match string(n) {
                    Ok(name) if peer_names.contains(&name.as_str()) => peers.push(name),
                    Ok(name) => errs.push(ConfigError::new(
                        path,
                        n.line,
                        ConfigErrorKind::UnknownObject {
                            kind: Kind::BgpPeer,
                            name,
                            known: known(&peer_names),
                        },
                    )),
                    Err(kind) => errs.push(ConfigError::new(path, n.line, kind)),
                }
            }
            let node_selectors = selectors(&spec, "nodeSelectors", errs);
            let service_selectors = selectors(&spec, "serviceSelectors", errs);
            let addresses: Vec<_> = selected
                .iter()
                .filter_map(|at| pools.get(*at))
                .flat_map(|p| p.addresses.iter().cloned())
                .collect();
            let node = kebab_spec(
                &obj.spec,
                &[
                    "aggregationLength",
                    "aggregationLengthV6",
                    "localPref",
                    "communities",
                ],
                Vec::new(),
            );
            let ad = parse::advertisement(&node, "spec".into(), &communities, &addresses, errs)?;
            if errs.len() != before {
                return None;
            }
            Some((
                selected,
                BgpAdvertisement {
                    peers,
                    node_selectors,
                    service_selectors,
                    as_path_prepend: obj.as_path_prepend,
                    ..ad
                },
            ))
        });
        if let Some((selected, ad)) = read {
            chosen.push((obj.id.name.clone(), selected, ad));
        }
    }
    for (name, selected, ad) in chosen {
        for at in selected {
            if let Some(p) = pools.get_mut(at) {
                p.advertisements.push((name.clone(), ad.clone()));
            }
        }
    }

    // Across objects.
    let mut cross = Vec::new();
    validate::overlaps(&mut entries, &mut cross);
    let mut by_age: Vec<(&str, usize, PeerKey)> = peer_keys
        .into_iter()
        .enumerate()
        .map(|(i, k)| (peer_created.get(i).copied().unwrap_or_default(), i, k))
        .collect();
    by_age.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    let peer_keys: Vec<PeerKey> = by_age.into_iter().map(|(_, _, k)| k).collect();
    validate::duplicate_peers(&peer_keys, &mut cross);
    for mut e in cross {
        if let Some((id, path)) = places.get(&e.path) {
            e.object = Some(Box::new(id.clone()));
            e.path = path.clone();
        }
        errs.push(e);
    }

    let mut address_pools = Vec::new();
    for p in pools {
        let Some(mut pool) = p.pool else { continue };
        let mut ads = p.advertisements;
        ads.sort_by_key(|(name, _)| natural(name));
        pool.announced = !ads.is_empty();
        pool.bgp_advertisements = ads.into_iter().map(|(_, a)| a).collect();
        // One default advertisement is what an empty list means.
        if pool.bgp_advertisements == [BgpAdvertisement::default()] {
            pool.bgp_advertisements.clear();
        }
        address_pools.push(pool);
    }
    let config = if errs.is_empty() {
        Ok(Config {
            peers,
            bgp_communities: communities,
            bfd_profiles,
            address_pools,
        })
    } else {
        Err(ConfigErrors::new(errs))
    };
    Translation {
        config,
        warnings,
        secrets_used,
    }
}

/// What reading a peer needs.
struct PeerContext<'a> {
    obj: &'a Object,
    v1beta2: bool,
    namespace: &'a str,
    secrets: &'a Secrets,
    profiles: &'a ProfileNames,
}

fn peer(
    ctx: &PeerContext<'_>,
    keys: &mut Vec<PeerKey>,
    secrets_used: &mut BTreeSet<String>,
    warnings: &mut Vec<Warning>,
    from_secret: &mut bool,
    errs: &mut Vec<ConfigError>,
) -> Option<Peer> {
    let obj = ctx.obj;
    let schema = if ctx.v1beta2 { &PEER } else { &PEER_V1BETA1 };
    let spec = fields::Object::read(&obj.spec, "spec".into(), schema, errs)?;
    let before = errs.len();
    let mut extra = Vec::new();
    if let Some(password) = secret_password(ctx, &spec, secrets_used, errs) {
        extra.push(scalar_entry(
            "password",
            password.expose(),
            spec.line_of("passwordSecret"),
        ));
        *from_secret = true;
    }
    let connect_time = spec.get("connectTime", errs, |n| {
        let (d, text) = duration_value(n)?;
        let whole = d.subsec_nanos() == 0;
        if whole && (1..=65535).contains(&d.as_secs()) {
            Ok(d)
        } else {
            Err(ConfigErrorKind::OutOfRange {
                value: text,
                range: "1s to 65535s, whole seconds",
            })
        }
    });
    let graceful_restart = spec.get("enableGracefulRestart", errs, bool_value);
    let dual_stack = spec
        .get("dualStackAddressFamily", errs, bool_value)
        .unwrap_or(false);
    if spec.get("disableMP", errs, bool_value) == Some(true) {
        warnings.push(Warning {
            object: obj.id.clone(),
            message: "spec.disableMP is deprecated and ignored: use dualStackAddressFamily"
                .to_string(),
        });
    }
    // The fields with a ConfigMap key; the others (connectTime, passwordSecret, ...) were read above.
    let node = kebab_spec(&obj.spec, schema.known, extra);
    let peer = parse::peer(&node, "spec".into(), ctx.profiles, keys, errs)?;
    if errs.len() != before {
        return None;
    }
    Some(Peer {
        name: Some(obj.id.name.clone()),
        connect_time: connect_time.map(|d: Duration| d),
        graceful_restart,
        dual_stack_address_family: dual_stack,
        ..peer
    })
}

/// The password of `passwordSecret`, if one is named and usable (errors pushed otherwise).
fn secret_password(
    ctx: &PeerContext<'_>,
    spec: &fields::Object<'_>,
    secrets_used: &mut BTreeSet<String>,
    errs: &mut Vec<ConfigError>,
) -> Option<crate::Password> {
    let entry = spec.entry("passwordSecret")?;
    let r = fields::Object::read(
        &entry.value,
        spec.path_of("passwordSecret"),
        &SECRET_REF,
        errs,
    )?;
    let name = r.get("name", errs, string).filter(|n| !n.is_empty())?;
    secrets_used.insert(name.clone());
    if spec.entry("password").is_some() {
        errs.push(spec.error("passwordSecret", ConfigErrorKind::PasswordAndSecret));
        return None;
    }
    if let Some(ns) = r.get("namespace", errs, string)
        && !ns.is_empty()
        && ns != ctx.namespace
    {
        errs.push(r.error(
            "namespace",
            ConfigErrorKind::SecretNamespace {
                found: ns,
                expected: ctx.namespace.to_string(),
            },
        ));
        return None;
    }
    let kind = match ctx.secrets.get(&name) {
        None => ConfigErrorKind::SecretNotFound(name),
        Some(s) if s.secret_type != "kubernetes.io/basic-auth" => ConfigErrorKind::SecretType {
            name,
            found: s.secret_type.clone(),
        },
        Some(s) => match &s.password {
            Some(p) => return Some(p.clone()),
            None => ConfigErrorKind::SecretNoPassword(name),
        },
    };
    errs.push(r.error("name", kind));
    None
}

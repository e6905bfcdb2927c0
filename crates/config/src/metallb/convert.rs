//! From a ConfigMap configuration to the equivalent MetalLB objects, as MetalLB's
//! `configmaptocrs` maps them: `BGPPeer`s `peer1`, `peer2`… (or the peer's own name), one
//! `IPAddressPool` per pool, one `BGPAdvertisement` per pool advertisement
//! (`bgpadvertisement1`, … numbered across pools, each limited to its pool, a default one for
//! a pool without any), the `BFDProfile`s, and one `Community` called `communities`.

use super::{Conversion, Kind};
use crate::duration::format_duration;
use crate::model::{
    BgpAdvertisement, Config, DEFAULT_HOLD_TIME, DynamicAsn, Peer, ServiceAllocation,
};
use crate::selector::NodeSelector;
use serde_yaml::{Mapping, Value};

fn map(pairs: Vec<(&str, Value)>) -> Value {
    let mut m = Mapping::new();
    for (k, v) in pairs {
        m.insert(Value::String(k.to_string()), v);
    }
    Value::Mapping(m)
}

fn s(text: impl Into<String>) -> Value {
    Value::String(text.into())
}

fn object(kind: Kind, name: &str, namespace: &str, spec: Vec<(&str, Value)>) -> Value {
    map(vec![
        (
            "apiVersion",
            s(format!("{}/{}", Kind::GROUP, kind.version())),
        ),
        ("kind", s(kind.name())),
        (
            "metadata",
            map(vec![("name", s(name)), ("namespace", s(namespace))]),
        ),
        ("spec", map(spec)),
    ])
}

/// A label selector in Kubernetes' spelling.
fn selector(sel: &NodeSelector) -> Value {
    let mut pairs = Vec::new();
    if !sel.match_labels.is_empty() {
        let labels = sel
            .match_labels
            .iter()
            .map(|(k, v)| (s(k.clone()), s(v.clone())))
            .collect::<Mapping>();
        pairs.push(("matchLabels", Value::Mapping(labels)));
    }
    if !sel.match_expressions.is_empty() {
        let exprs = sel
            .match_expressions
            .iter()
            .map(|r| {
                let mut e = vec![
                    ("key", s(r.key.clone())),
                    ("operator", s(r.operator.name())),
                ];
                if !r.values.is_empty() {
                    e.push(("values", r.values.iter().cloned().map(s).collect()));
                }
                map(e)
            })
            .collect();
        pairs.push(("matchExpressions", Value::Sequence(exprs)));
    }
    map(pairs)
}

/// `spec.serviceAllocation`, and `exclusive` as the [`super::EXCLUSIVE_NAMESPACES`]
/// annotation (MetalLB has no such field).
fn add_service_allocation(doc: &mut Value, rules: &ServiceAllocation) {
    let mut pairs = Vec::new();
    if let Some(p) = rules.priority {
        pairs.push(("priority", Value::from(p)));
    }
    if !rules.namespaces.is_empty() {
        pairs.push((
            "namespaces",
            rules.namespaces.iter().cloned().map(s).collect(),
        ));
    }
    if !rules.namespace_selectors.is_empty() {
        pairs.push(("namespaceSelectors", selectors(&rules.namespace_selectors)));
    }
    if !rules.service_selectors.is_empty() {
        pairs.push(("serviceSelectors", selectors(&rules.service_selectors)));
    }
    if let Some(Value::Mapping(spec)) = doc.get_mut("spec") {
        spec.insert(s("serviceAllocation"), map(pairs));
    }
    if rules.exclusive {
        annotate(doc, super::EXCLUSIVE_NAMESPACES, "true".into());
    }
}

/// Sets the annotation `key` of an object to `value`.
fn annotate(doc: &mut Value, key: &str, value: String) {
    if let Some(Value::Mapping(metadata)) = doc.get_mut("metadata") {
        let annotations = metadata
            .entry(s("annotations"))
            .or_insert_with(|| Value::Mapping(Mapping::new()));
        if let Value::Mapping(a) = annotations {
            a.insert(s(key), s(value));
        }
    }
}

fn selectors(sels: &[NodeSelector]) -> Value {
    Value::Sequence(sels.iter().map(selector).collect())
}

/// The `BGPPeer` spec of `p`; `report` gets what has no equivalent (`place` names the peer).
fn peer_spec(p: &Peer, place: &str, report: &mut Vec<String>) -> Vec<(&'static str, Value)> {
    // A Node-label AS has no MetalLB form: myASN is left for the user to write (reported below).
    let mut spec = Vec::new();
    if p.my_asn != 0 {
        spec.push(("myASN", Value::from(p.my_asn)));
    }
    match p.dynamic_asn {
        Some(DynamicAsn::Internal) => spec.push(("dynamicASN", s("internal".to_owned()))),
        Some(DynamicAsn::External) => spec.push(("dynamicASN", s("external".to_owned()))),
        None => spec.push(("peerASN", Value::from(p.peer_asn))),
    }
    match p.interface {
        Some(interface) => spec.push(("interface", s(interface.to_string()))),
        None => spec.push(("peerAddress", s(p.peer_address.to_string()))),
    }
    if let Some(vrf) = p.vrf {
        spec.push(("vrf", s(vrf.to_string())));
    }
    spec.push(("peerPort", Value::from(p.peer_port)));
    if let Some(local) = p.local_asn {
        spec.push(("localASN", Value::from(local.asn)));
        if local.replace_as {
            report.push(format!(
                "{place}.local-asn-replace-as: no MetalLB equivalent (a ferrolb extension); left out"
            ));
        }
    }
    for (key, value) in [
        ("my-asn-from-node-label", &p.my_asn_from_node_label),
        ("router-id-from-node-label", &p.router_id_from_node_label),
    ] {
        if value.is_some() {
            report.push(format!(
                "{place}.{key}: no MetalLB equivalent (a ferrolb extension); left out"
            ));
        }
    }
    if let Some(src) = p.source_address {
        spec.push(("sourceAddress", s(src.to_string())));
    }
    if p.hold_time != DEFAULT_HOLD_TIME {
        spec.push(("holdTime", s(format_duration(p.hold_time))));
    }
    if p.keepalive_time != p.hold_time / 3 {
        spec.push(("keepaliveTime", s(format_duration(p.keepalive_time))));
    }
    if let Some(d) = p.connect_time {
        spec.push(("connectTime", s(format_duration(d))));
    }
    if let Some(id) = p.router_id {
        spec.push(("routerID", s(id.to_string())));
    }
    if !p.node_selectors.is_empty() {
        spec.push(("nodeSelectors", selectors(&p.node_selectors)));
    }
    if let Some(pw) = &p.password {
        spec.push(("password", s(pw.expose().to_owned())));
    }
    if let Some(b) = &p.bfd_profile {
        spec.push(("bfdProfile", s(b.clone())));
    }
    if let Some(gr) = p.graceful_restart {
        spec.push(("enableGracefulRestart", Value::Bool(gr)));
    }
    if p.ebgp_multihop {
        spec.push(("ebgpMultiHop", Value::Bool(true)));
    }
    if p.dual_stack_address_family {
        spec.push(("dualStackAddressFamily", Value::Bool(true)));
    }
    spec
}

/// The advertisement's spec, limited to `pool`; `report` gets what has no equivalent.
fn advertisement_spec(
    config: &Config,
    pool: &str,
    ad: &BgpAdvertisement,
    place: &str,
    report: &mut Vec<String>,
) -> Vec<(&'static str, Value)> {
    let defaults = BgpAdvertisement::default();
    let mut spec = Vec::new();
    if ad.aggregation_length != defaults.aggregation_length {
        spec.push(("aggregationLength", Value::from(ad.aggregation_length)));
    }
    if ad.aggregation_length_v6 != defaults.aggregation_length_v6 {
        spec.push(("aggregationLengthV6", Value::from(ad.aggregation_length_v6)));
    }
    if let Some(lp) = ad.localpref {
        spec.push(("localPref", Value::from(lp)));
    }
    if !ad.communities.is_empty() {
        // An alias where one has this value, as written in ConfigMaps.
        let names = ad.communities.iter().map(|c| {
            let alias = config.bgp_communities.iter().find(|(_, v)| *v == c);
            s(alias.map_or_else(|| c.to_string(), |(name, _)| name.clone()))
        });
        spec.push(("communities", names.collect()));
    }
    spec.push(("ipAddressPools", Value::Sequence(vec![s(pool)])));
    if !ad.peers.is_empty() {
        spec.push(("peers", ad.peers.iter().cloned().map(s).collect()));
    }
    if !ad.node_selectors.is_empty() {
        spec.push(("nodeSelectors", selectors(&ad.node_selectors)));
    }
    if !ad.service_selectors.is_empty() {
        spec.push(("serviceSelectors", selectors(&ad.service_selectors)));
    }
    let lost = [
        (ad.weighted_ecmp, "weighted-ecmp"),
        (
            ad.link_bandwidth_per_endpoint != defaults.link_bandwidth_per_endpoint,
            "link-bandwidth-per-endpoint",
        ),
        (
            !ad.allowed_service_communities.is_empty(),
            "allowed-service-communities",
        ),
        (
            !ad.allowed_service_localprefs.is_empty(),
            "allowed-service-localprefs",
        ),
        (
            !ad.allowed_service_as_path_prepends.is_empty(),
            "allowed-service-as-path-prepends",
        ),
    ];
    for (_, key) in lost.iter().filter(|(set, _)| *set) {
        report.push(format!(
            "{place}.{key}: no MetalLB equivalent (a ferrolb extension); left out"
        ));
    }
    spec
}

pub(super) fn convert(config: &Config, namespace: &str) -> Conversion {
    let mut docs = Vec::new();
    let mut report = Vec::new();
    for (i, p) in config.peers.iter().enumerate() {
        let name = p.name.clone().unwrap_or_else(|| format!("peer{}", i + 1));
        let place = format!("peers[{i}]");
        docs.push(object(
            Kind::BgpPeer,
            &name,
            namespace,
            peer_spec(p, &place, &mut report),
        ));
    }
    let mut advertisements = Vec::new();
    for (i, pool) in config.address_pools.iter().enumerate() {
        let place = format!("address-pools[{i}] (pool {:?})", pool.name);
        let mut spec = vec![(
            "addresses",
            pool.addresses.iter().map(|a| s(a.to_string())).collect(),
        )];
        if !pool.auto_assign {
            spec.push(("autoAssign", Value::Bool(false)));
        }
        if pool.avoid_buggy_ips {
            spec.push(("avoidBuggyIPs", Value::Bool(true)));
        }
        if !pool.announce_from.is_default() {
            report.push(format!(
                "{place}.announce-from: no MetalLB equivalent (a ferrolb extension); left out"
            ));
        }
        let mut doc = object(Kind::IpAddressPool, &pool.name, namespace, spec);
        if let Some(rules) = &pool.service_allocation {
            add_service_allocation(&mut doc, rules);
        }
        docs.push(doc);
        for (j, ad) in pool.advertisements().iter().enumerate() {
            let place = format!("{place}.bgp-advertisements[{j}]");
            let spec = advertisement_spec(config, &pool.name, ad, &place, &mut report);
            advertisements.push((spec, ad.as_path_prepend));
        }
    }
    for (i, (spec, prepend)) in advertisements.into_iter().enumerate() {
        let name = format!("bgpadvertisement{}", i + 1);
        let mut doc = object(Kind::BgpAdvertisement, &name, namespace, spec);
        if let Some(p) = prepend {
            annotate(&mut doc, super::AS_PATH_PREPEND, p.to_string());
        }
        docs.push(doc);
    }
    for b in &config.bfd_profiles {
        let spec = vec![
            ("receiveInterval", Value::from(b.receive_interval)),
            ("transmitInterval", Value::from(b.transmit_interval)),
            ("detectMultiplier", Value::from(b.detect_multiplier)),
            ("echoInterval", Value::from(b.echo_interval)),
            ("echoMode", Value::Bool(b.echo_mode)),
            ("passiveMode", Value::Bool(b.passive_mode)),
            ("minimumTtl", Value::from(b.minimum_ttl)),
        ];
        docs.push(object(Kind::BfdProfile, &b.name, namespace, spec));
    }
    if !config.bgp_communities.is_empty() {
        let aliases = config
            .bgp_communities
            .iter()
            .map(|(name, v)| map(vec![("name", s(name.clone())), ("value", s(v.to_string()))]))
            .collect();
        docs.push(object(
            Kind::Community,
            "communities",
            namespace,
            vec![("communities", aliases)],
        ));
    }
    let yaml = docs
        .iter()
        .map(|d| serde_yaml::to_string(d).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("---\n");
    Conversion { yaml, report }
}

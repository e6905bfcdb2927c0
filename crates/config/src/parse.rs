//! From the YAML tree to the typed model, checking each object as it is read. Checks across
//! objects (overlaps, duplicates) are in `validate`.

use crate::address::AddressRange;
use crate::community::CommunityValue;
use crate::error::{ConfigError, ConfigErrorKind};
use crate::fields::{Object, Schema, bool_value, index, join, string};
use crate::model::{
    AddressPool, AnnounceFrom, BgpAdvertisement, Config, Protocol, ServiceAllocation,
};
use crate::selector::{
    NodeSelector, SelectorOperator, SelectorRequirement, is_dns_label, is_label_key, is_label_value,
};
use crate::validate::{self, AddressEntry, PoolName};
use crate::yaml::{Node, Value};
use std::collections::BTreeMap;

mod advertisement;
mod peer;
pub(crate) use advertisement::advertisement;
use advertisement::{ADVERTISEMENT, AS_PATH_PREPEND, PREPEND_ALLOWANCE};
use peer::PEER;
pub(crate) use peer::peer;

const TOP: Schema = Schema {
    known: &["peers", "bgp-communities", "bfd-profiles", "address-pools"],
    not_supported: &[],
};

const SELECTOR: Schema = Schema {
    known: &["match-labels", "match-expressions"],
    not_supported: &[],
};

const EXPRESSION: Schema = Schema {
    known: &["key", "operator", "values"],
    not_supported: &[],
};

const POOL: Schema = Schema {
    known: &[
        "name",
        "protocol",
        "addresses",
        "avoid-buggy-ips",
        "auto-assign",
        "announce-from",
        "bgp-advertisements",
        "service-allocation",
    ],
    not_supported: &[],
};

const ALLOCATION: Schema = Schema {
    known: &[
        "priority",
        "namespaces",
        "namespace-selectors",
        "service-selectors",
        "exclusive",
    ],
    not_supported: &[],
};

/// Every kind of object in the configuration, named as in the docs, with the schema it is read with.
pub(crate) const OBJECTS: &[(&str, &Schema)] = &[
    ("config", &TOP),
    ("peer", &PEER),
    ("bfd-profile", &crate::bfd::PROFILE),
    ("node-selector", &SELECTOR),
    ("match-expression", &EXPRESSION),
    ("address-pool", &POOL),
    ("bgp-advertisement", &ADVERTISEMENT),
    ("as-path-prepend", &AS_PATH_PREPEND),
    ("allowed-service-as-path-prepend", &PREPEND_ALLOWANCE),
    ("service-allocation", &ALLOCATION),
];

/// Reads a whole configuration. `root` is None for an empty document (an empty config).
pub(crate) fn config(root: Option<&Node>) -> Result<Config, Vec<ConfigError>> {
    let mut errs = Vec::new();
    let Some(top) = Object::read_document(root, &TOP, &mut errs) else {
        return Err(errs);
    };
    let communities = bgp_communities(&top, &mut errs);

    let (bfd_profiles, profile_names) = crate::bfd::profiles(&top, &mut errs);

    let mut peer_keys = Vec::new();
    let mut peers = Vec::new();
    for (i, node) in top.seq("peers", &mut errs).iter().enumerate() {
        let path = index("peers", i);
        if let Some(p) = peer(node, path, &profile_names, &mut peer_keys, &mut errs) {
            peers.push(p);
        }
    }

    let mut entries = Vec::new();
    let mut names = Vec::new();
    let mut pools = Vec::new();
    for (i, node) in top.seq("address-pools", &mut errs).iter().enumerate() {
        let path = index("address-pools", i);
        let mut ctx = PoolContext {
            pool_index: i,
            communities: &communities,
            entries: &mut entries,
            names: &mut names,
        };
        if let Some(p) = pool(node, path, &mut ctx, &mut errs) {
            pools.push(p);
        }
    }

    validate::duplicate_peers(&peer_keys, &mut errs);
    validate::duplicate_pool_names(&names, &mut errs);
    validate::overlaps(&mut entries, &mut errs);

    if errs.is_empty() {
        Ok(Config {
            peers,
            bgp_communities: communities,
            bfd_profiles,
            address_pools: pools,
        })
    } else {
        Err(errs)
    }
}

fn bgp_communities(
    top: &Object<'_>,
    errs: &mut Vec<ConfigError>,
) -> BTreeMap<String, CommunityValue> {
    let mut out = BTreeMap::new();
    let Some(entry) = top.entry("bgp-communities") else {
        return out;
    };
    let Value::Map(aliases) = &entry.value.value else {
        errs.push(top.error(
            "bgp-communities",
            ConfigErrorKind::WrongType {
                expected: "a mapping of alias to community",
                found: entry.value.describe(),
            },
        ));
        return out;
    };
    for alias in aliases {
        let path = join("bgp-communities", &alias.key);
        let value = string(&alias.value)
            .and_then(|text| text.parse::<CommunityValue>().map_err(Into::into));
        match value {
            Ok(v) => {
                out.insert(alias.key.clone(), v);
            }
            Err(kind) => errs.push(ConfigError::new(path, alias.value.line, kind)),
        }
    }
    out
}

pub(crate) fn node_selector(
    node: &Node,
    path: String,
    errs: &mut Vec<ConfigError>,
) -> Option<NodeSelector> {
    let obj = Object::read(node, path, &SELECTOR, errs)?;
    let before = errs.len();
    let mut match_labels = BTreeMap::new();
    if let Some(entry) = obj.entry("match-labels") {
        match &entry.value.value {
            Value::Map(labels) => {
                for label in labels {
                    let path = join(&obj.path_of("match-labels"), &label.key);
                    let value = match string(&label.value) {
                        Ok(v) => v,
                        Err(_) if matches!(label.value.value, Value::Null) => String::new(),
                        Err(kind) => {
                            errs.push(ConfigError::new(path, label.value.line, kind));
                            continue;
                        }
                    };
                    if !is_label_key(&label.key) {
                        errs.push(ConfigError::new(
                            path,
                            label.key_line,
                            ConfigErrorKind::BadLabelKey(label.key.clone()),
                        ));
                    } else if !is_label_value(&value) {
                        errs.push(ConfigError::new(
                            path,
                            label.value.line,
                            ConfigErrorKind::BadLabelValue(value),
                        ));
                    } else {
                        match_labels.insert(label.key.clone(), value);
                    }
                }
            }
            _ => errs.push(obj.error(
                "match-labels",
                ConfigErrorKind::WrongType {
                    expected: "a mapping of label to value",
                    found: entry.value.describe(),
                },
            )),
        }
    }
    let mut match_expressions = Vec::new();
    for (i, expr) in obj.seq("match-expressions", errs).iter().enumerate() {
        let path = index(&obj.path_of("match-expressions"), i);
        if let Some(r) = requirement(expr, path, errs) {
            match_expressions.push(r);
        }
    }
    (errs.len() == before).then_some(NodeSelector {
        match_labels,
        match_expressions,
    })
}

fn requirement(
    node: &Node,
    path: String,
    errs: &mut Vec<ConfigError>,
) -> Option<SelectorRequirement> {
    let obj = Object::read(node, path, &EXPRESSION, errs)?;
    let before = errs.len();
    let key = obj.required("key", errs, |n| {
        let k = string(n)?;
        if is_label_key(&k) {
            Ok(k)
        } else {
            Err(ConfigErrorKind::BadLabelKey(k))
        }
    });
    let operator = obj.required("operator", errs, |n| {
        let name = string(n)?;
        SelectorOperator::from_name(&name).ok_or(ConfigErrorKind::UnknownOperator(name))
    });
    let mut values = Vec::new();
    for (i, v) in obj.seq("values", errs).iter().enumerate() {
        let path = index(&obj.path_of("values"), i);
        match string(v).and_then(|v| {
            if is_label_value(&v) {
                Ok(v)
            } else {
                Err(ConfigErrorKind::BadLabelValue(v))
            }
        }) {
            Ok(v) => values.push(v),
            Err(kind) => errs.push(ConfigError::new(path, v.line, kind)),
        }
    }
    if let Some(op) = operator {
        let requirement = match (op.takes_values(), values.is_empty()) {
            (true, true) => Some("needs at least one value"),
            (false, false) => Some("takes no values"),
            _ => None,
        };
        if let Some(requirement) = requirement {
            errs.push(obj.error(
                if values.is_empty() {
                    "operator"
                } else {
                    "values"
                },
                ConfigErrorKind::SelectorValues {
                    operator: op.name(),
                    requirement,
                },
            ));
        }
    }
    if errs.len() != before {
        return None;
    }
    Some(SelectorRequirement {
        key: key?,
        operator: operator?,
        values,
    })
}

/// What reading a pool needs from, and adds to, the whole configuration.
pub(crate) struct PoolContext<'a> {
    /// The pool's index (orders overlap reports).
    pub pool_index: usize,
    /// Community aliases.
    pub communities: &'a BTreeMap<String, CommunityValue>,
    /// Every address entry read so far.
    pub entries: &'a mut Vec<AddressEntry>,
    /// Every pool name read so far.
    pub names: &'a mut Vec<PoolName>,
}

pub(crate) fn pool(
    node: &Node,
    path: String,
    ctx: &mut PoolContext<'_>,
    errs: &mut Vec<ConfigError>,
) -> Option<AddressPool> {
    let obj = Object::read(node, path, &POOL, errs)?;
    let before = errs.len();
    let name = obj.required("name", errs, string);
    if let Some(name) = &name {
        if name.is_empty() {
            errs.push(obj.error("name", ConfigErrorKind::EmptyPoolName));
        } else {
            ctx.names.push(PoolName {
                name: name.clone(),
                path: obj.path_of("name"),
                line: obj.line_of("name"),
            });
        }
    }
    let protocol = obj.required("protocol", errs, |n| match string(n)?.as_str() {
        "bgp" => Ok(Protocol::Bgp),
        "layer2" => Err(ConfigErrorKind::Layer2),
        other => Err(ConfigErrorKind::UnknownProtocol(other.to_string())),
    });
    let mut addresses = Vec::new();
    let address_nodes = obj.seq("addresses", errs);
    for (i, a) in address_nodes.iter().enumerate() {
        let path = index(&obj.path_of("addresses"), i);
        match string(a).and_then(|text| text.parse::<AddressRange>().map_err(Into::into)) {
            Ok(range) => {
                ctx.entries.push(AddressEntry {
                    pool_index: ctx.pool_index,
                    entry_index: i,
                    pool: name.clone().unwrap_or_default(),
                    path: path.clone(),
                    line: a.line,
                    range,
                });
                addresses.push((range, path));
            }
            Err(kind) => errs.push(ConfigError::new(path, a.line, kind)),
        }
    }
    let absent_or_sequence = obj
        .entry("addresses")
        .is_none_or(|e| matches!(e.value.value, Value::Seq(_)));
    if address_nodes.is_empty() && absent_or_sequence {
        errs.push(obj.error("addresses", ConfigErrorKind::NoAddresses));
    }
    let avoid_buggy_ips = obj
        .get("avoid-buggy-ips", errs, bool_value)
        .unwrap_or(false);
    let auto_assign = obj.get("auto-assign", errs, bool_value).unwrap_or(true);
    let announce_from = obj
        .get("announce-from", errs, |n| match string(n)?.as_str() {
            "nodes-with-endpoints" => Ok(AnnounceFrom::NodesWithEndpoints),
            "all-nodes" => Ok(AnnounceFrom::AllNodes),
            other => Err(ConfigErrorKind::UnknownAnnounceFrom(other.to_string())),
        })
        .unwrap_or_default();
    let mut bgp_advertisements: Vec<(BgpAdvertisement, String, usize)> = Vec::new();
    for (i, ad) in obj.seq("bgp-advertisements", errs).iter().enumerate() {
        let path = index(&obj.path_of("bgp-advertisements"), i);
        if let Some(a) = advertisement(ad, path.clone(), ctx.communities, &addresses, errs) {
            validate::duplicate_advertisement(&a, &path, ad.line, &bgp_advertisements, errs);
            bgp_advertisements.push((a, path, ad.line));
        }
    }
    let service_allocation = obj
        .entry("service-allocation")
        .and_then(|e| service_allocation(&e.value, obj.path_of("service-allocation"), errs));
    if errs.len() != before {
        return None;
    }
    Some(AddressPool {
        name: name?,
        protocol: protocol?,
        addresses: addresses.into_iter().map(|(a, _)| a).collect(),
        avoid_buggy_ips,
        auto_assign,
        announce_from,
        bgp_advertisements: bgp_advertisements.into_iter().map(|(a, _, _)| a).collect(),
        announced: true,
        service_allocation,
    })
}

/// A pool's `service-allocation`.
pub(crate) fn service_allocation(
    node: &Node,
    path: String,
    errs: &mut Vec<ConfigError>,
) -> Option<ServiceAllocation> {
    let obj = Object::read(node, path, &ALLOCATION, errs)?;
    let before = errs.len();
    let priority = obj.get("priority", errs, signed_i32);
    let mut namespaces: Vec<String> = Vec::new();
    for (i, n) in obj.seq("namespaces", errs).iter().enumerate() {
        let path = index(&obj.path_of("namespaces"), i);
        match string(n).and_then(|name| {
            if is_dns_label(&name) {
                Ok(name)
            } else {
                Err(ConfigErrorKind::BadNamespaceName(name))
            }
        }) {
            Ok(name) if !namespaces.contains(&name) => namespaces.push(name),
            Ok(_) => {}
            Err(kind) => errs.push(ConfigError::new(path, n.line, kind)),
        }
    }
    let selectors = |key: &str, errs: &mut Vec<ConfigError>| -> Vec<NodeSelector> {
        obj.seq(key, errs)
            .iter()
            .enumerate()
            .filter_map(|(i, s)| node_selector(s, index(&obj.path_of(key), i), errs))
            .collect()
    };
    let namespace_selectors = selectors("namespace-selectors", errs);
    let service_selectors = selectors("service-selectors", errs);
    let exclusive = obj.get("exclusive", errs, bool_value).unwrap_or(false);
    // Only when the namespace part was read cleanly: a broken entry is reported already.
    if exclusive && errs.len() == before && namespaces.is_empty() && namespace_selectors.is_empty()
    {
        errs.push(obj.error("exclusive", ConfigErrorKind::ExclusiveWithoutNamespaces));
    }
    (errs.len() == before).then_some(ServiceAllocation {
        priority,
        namespaces,
        namespace_selectors,
        service_selectors,
        exclusive,
    })
}

/// A signed 32-bit integer (MetalLB's `priority` is an `int`).
fn signed_i32(node: &Node) -> Result<i32, ConfigErrorKind> {
    const RANGE: &str = "-2147483648 to 2147483647";
    match &node.value {
        Value::Scalar {
            text, plain: true, ..
        } if {
            let digits = text.strip_prefix('-').unwrap_or(text);
            !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
        } =>
        {
            text.parse::<i32>()
                .map_err(|_| ConfigErrorKind::OutOfRange {
                    value: text.clone(),
                    range: RANGE,
                })
        }
        _ => Err(ConfigErrorKind::WrongType {
            expected: "an integer",
            found: node.describe(),
        }),
    }
}

//! The MetalLB specs' shapes: each kind's fields (camelCase, strict), and the renaming of a spec
//! into the ConfigMap's shape (kebab-case keys) that the ConfigMap's own readers take, and of
//! their errors back into the object's terms.

use super::Kind;
use super::allocation::ALLOCATION;
use crate::error::ConfigErrorKind;
use crate::fields::Schema;
use crate::yaml::{Entry, Node, Value};

pub(super) const POOL: Schema = Schema {
    known: &[
        "addresses",
        "autoAssign",
        "avoidBuggyIPs",
        "serviceAllocation",
    ],
    not_supported: &[],
};

pub(super) const ADVERTISEMENT: Schema = Schema {
    known: &[
        "aggregationLength",
        "aggregationLengthV6",
        "localPref",
        "communities",
        "ipAddressPools",
        "ipAddressPoolSelectors",
        "nodeSelectors",
        "peers",
        "serviceSelectors",
    ],
    not_supported: &[],
};

pub(super) const PEER: Schema = Schema {
    known: &[
        "myASN",
        "peerASN",
        "peerAddress",
        "sourceAddress",
        "peerPort",
        "holdTime",
        "keepaliveTime",
        "connectTime",
        "routerID",
        "nodeSelectors",
        "password",
        "passwordSecret",
        "bfdProfile",
        "enableGracefulRestart",
        "ebgpMultiHop",
        "dualStackAddressFamily",
        "disableMP",
        "dynamicASN",
        "localASN",
        "interface",
        "vrf",
    ],
    not_supported: &[],
};

pub(super) const PEER_V1BETA1: Schema = Schema {
    known: &[
        "myASN",
        "peerASN",
        "peerAddress",
        "sourceAddress",
        "peerPort",
        "holdTime",
        "keepaliveTime",
        "routerID",
        "nodeSelectors",
        "password",
        "bfdProfile",
        "ebgpMultiHop",
    ],
    not_supported: &[],
};

pub(super) const COMMUNITY: Schema = Schema {
    known: &["communities"],
    not_supported: &[],
};

pub(super) const ALIAS: Schema = Schema {
    known: &["name", "value"],
    not_supported: &[],
};

pub(super) const SECRET_REF: Schema = Schema {
    known: &["name", "namespace"],
    not_supported: &[],
};

pub(super) const BFD: Schema = Schema {
    known: &[
        "receiveInterval",
        "transmitInterval",
        "detectMultiplier",
        "echoInterval",
        "echoMode",
        "passiveMode",
        "minimumTtl",
    ],
    not_supported: &[],
};

/// Keys of a Kubernetes `LabelSelector`.
pub(super) const LABEL_SELECTOR: Schema = Schema {
    known: &["matchLabels", "matchExpressions"],
    not_supported: &[],
};

/// camelCase field → the ConfigMap's key with the same meaning.
pub(super) const RENAMES: &[(&str, &str)] = &[
    ("myASN", "my-asn"),
    ("peerASN", "peer-asn"),
    ("dynamicASN", "dynamic-asn"),
    ("localASN", "local-asn"),
    ("peerAddress", "peer-address"),
    ("interface", "interface"),
    ("vrf", "vrf"),
    ("sourceAddress", "source-address"),
    ("peerPort", "peer-port"),
    ("holdTime", "hold-time"),
    ("keepaliveTime", "keepalive-time"),
    ("routerID", "router-id"),
    ("nodeSelectors", "node-selectors"),
    ("password", "password"),
    ("bfdProfile", "bfd-profile"),
    ("ebgpMultiHop", "ebgp-multihop"),
    ("matchLabels", "match-labels"),
    ("matchExpressions", "match-expressions"),
    ("addresses", "addresses"),
    ("autoAssign", "auto-assign"),
    ("avoidBuggyIPs", "avoid-buggy-ips"),
    ("aggregationLength", "aggregation-length"),
    ("aggregationLengthV6", "aggregation-length-v6"),
    ("localPref", "localpref"),
    ("communities", "communities"),
    ("receiveInterval", "receive-interval"),
    ("transmitInterval", "transmit-interval"),
    ("detectMultiplier", "detect-multiplier"),
    ("echoInterval", "echo-interval"),
    ("echoMode", "echo-mode"),
    ("passiveMode", "passive-mode"),
    ("minimumTtl", "minimum-ttl"),
    ("serviceAllocation", "service-allocation"),
    ("priority", "priority"),
    ("namespaces", "namespaces"),
    ("namespaceSelectors", "namespace-selectors"),
    ("serviceSelectors", "service-selectors"),
];

pub(super) fn camel(kebab: &str) -> Option<&'static str> {
    RENAMES.iter().find(|(_, k)| *k == kebab).map(|(c, _)| *c)
}

pub(super) fn kebab(camel_key: &str) -> Option<&'static str> {
    RENAMES
        .iter()
        .find(|(c, _)| *c == camel_key)
        .map(|(_, k)| *k)
}

/// `spec.hold-time` → `spec.holdTime`, segment by segment (label keys are left alone: they
/// are not ConfigMap keys).
pub(super) fn camel_path(path: &str) -> String {
    path.split('.')
        .map(|seg| {
            let (key, rest) = seg.split_at(seg.find('[').unwrap_or(seg.len()));
            match camel(key) {
                Some(c) => format!("{c}{rest}"),
                None => seg.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// The error kind in the object's terms.
pub(super) fn camel_kind(kind: ConfigErrorKind) -> ConfigErrorKind {
    match kind {
        ConfigErrorKind::Missing(key) => ConfigErrorKind::Missing(camel(key).unwrap_or(key)),
        ConfigErrorKind::ZeroAsn(key) => ConfigErrorKind::ZeroAsn(camel(key).unwrap_or(key)),
        ConfigErrorKind::BothSet(a, b) => {
            ConfigErrorKind::BothSet(camel(a).unwrap_or(a), camel(b).unwrap_or(b))
        }
        ConfigErrorKind::UnknownKey { key, expected } => ConfigErrorKind::UnknownKey {
            key,
            expected: expected
                .split(", ")
                .map(|k| camel(k).unwrap_or(k))
                .collect::<Vec<_>>()
                .join(", "),
        },
        ConfigErrorKind::UnknownBfdProfile { name, known } => ConfigErrorKind::UnknownObject {
            kind: Kind::BfdProfile,
            name,
            known,
        },
        other => other,
    }
}

/// A label selector (or a list entry holding one) renamed into the ConfigMap's shape; unknown
/// keys are kept so that the ConfigMap's schema reports them.
pub(super) fn kebab_selector(node: &Node) -> Node {
    match &node.value {
        Value::Map(entries) => Node {
            line: node.line,
            value: Value::Map(
                entries
                    .iter()
                    .map(|e| Entry {
                        key: kebab(&e.key).unwrap_or(&e.key).to_string(),
                        ..e.clone()
                    })
                    .collect(),
            ),
        },
        _ => node.clone(),
    }
}

/// The spec with its known keys renamed (selector lists too), other keys dropped, and `extra`
/// entries added.
pub(super) fn kebab_spec(spec: &Node, keep: &[&str], extra: Vec<Entry>) -> Node {
    let mut out = Vec::new();
    if let Value::Map(entries) = &spec.value {
        for e in entries.iter().filter(|e| keep.contains(&e.key.as_str())) {
            let Some(key) = kebab(&e.key) else { continue };
            let value = match (&e.value.value, key) {
                (Value::Seq(items), "node-selectors") => Node {
                    line: e.value.line,
                    value: Value::Seq(items.iter().map(kebab_selector).collect()),
                },
                (Value::Map(_), "service-allocation") => {
                    kebab_spec(&e.value, ALLOCATION.known, vec![])
                }
                (Value::Seq(items), "namespace-selectors" | "service-selectors") => Node {
                    line: e.value.line,
                    value: Value::Seq(items.iter().map(kebab_selector).collect()),
                },
                _ => e.value.clone(),
            };
            out.push(Entry {
                key: key.to_string(),
                key_line: e.key_line,
                value,
            });
        }
    }
    out.extend(extra);
    Node {
        line: spec.line,
        value: Value::Map(out),
    }
}

/// A synthetic `key: text` entry at `line`.
pub(super) fn scalar_entry(key: &str, text: &str, line: usize) -> Entry {
    Entry {
        key: key.to_string(),
        key_line: line,
        value: Node {
            line,
            value: Value::Scalar {
                text: text.to_string(),
                plain: false,
            },
        },
    }
}

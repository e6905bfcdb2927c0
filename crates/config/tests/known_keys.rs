//! `known_keys` lists exactly what the parser accepts, every MetalLB v0.12 key among them, and `unsupported_keys`
//! (what it would refuse as not supported yet) is empty for the ConfigMap format, so documentation checked against
//! them cannot drift from the parser.

use ferrolb_config::{Config, known_keys, unsupported_keys};

fn keys_of(object: &str) -> Vec<&'static str> {
    known_keys()
        .find(|(name, _)| *name == object)
        .map(|(_, keys)| keys.to_vec())
        .unwrap_or_else(|| panic!("no object {object}"))
}

#[test]
fn objects_start_at_the_top_level_and_include_every_documented_kind() {
    let names: Vec<&str> = known_keys().map(|(name, _)| name).collect();
    assert_eq!(names.first(), Some(&"config"));
    for kind in [
        "peer",
        "node-selector",
        "match-expression",
        "address-pool",
        "bgp-advertisement",
    ] {
        assert!(names.contains(&kind), "{kind} missing from {names:?}");
    }
    let unique: std::collections::BTreeSet<&str> = names.iter().copied().collect();
    assert_eq!(
        unique.len(),
        names.len(),
        "an object listed twice: {names:?}"
    );
}

#[test]
fn an_unlisted_key_is_rejected_by_name() {
    let err = Config::from_yaml(
        "peers:\n- my-asn: 1\n  peer-asn: 1\n  peer-address: 198.18.0.1\n  hold: 3s\n",
    )
    .unwrap_err();
    assert!(err.to_string().contains("unknown key `hold`"), "{err}");
}

/// MetalLB v0.12's ConfigMap keys, per object (its `config.go`): ferrolb is a drop-in replacement, so it must
/// accept every one of them.
const METALLB_V0_12_KEYS: &[(&str, &[&str])] = &[
    (
        "config",
        &["peers", "bgp-communities", "bfd-profiles", "address-pools"],
    ),
    (
        "peer",
        &[
            "my-asn",
            "peer-asn",
            "peer-address",
            "peer-port",
            "source-address",
            "hold-time",
            "keepalive-time",
            "router-id",
            "password",
            "bfd-profile",
            "ebgp-multihop",
            "node-selectors",
        ],
    ),
    (
        "bfd-profile",
        &[
            "name",
            "receive-interval",
            "transmit-interval",
            "detect-multiplier",
            "echo-interval",
            "echo-mode",
            "passive-mode",
            "minimum-ttl",
        ],
    ),
    ("node-selector", &["match-labels", "match-expressions"]),
    ("match-expression", &["key", "operator", "values"]),
    (
        "address-pool",
        &[
            "name",
            "protocol",
            "addresses",
            "avoid-buggy-ips",
            "auto-assign",
            "bgp-advertisements",
        ],
    ),
    (
        "bgp-advertisement",
        &[
            "aggregation-length",
            "aggregation-length-v6",
            "localpref",
            "communities",
        ],
    ),
];

#[test]
fn every_metallb_v0_12_key_is_accepted_and_none_is_refused_as_not_supported() {
    for (object, keys) in METALLB_V0_12_KEYS {
        let known = keys_of(object);
        for key in *keys {
            assert!(
                known.contains(key),
                "MetalLB v0.12's {object}.{key} is not accepted"
            );
        }
    }
    // The ConfigMap format refuses no key as "not supported yet" (the metallb.io objects do: see
    // `unsupported_fields`). A key added to that list needs a rejection test here and a README mention.
    assert_eq!(unsupported_keys().collect::<Vec<_>>(), vec![]);
    // One document using every MetalLB v0.12 key parses.
    let text = "peers:\n- my-asn: 65000\n  peer-asn: 65001\n  peer-address: 198.18.0.1\n  peer-port: 1179\n  \
                source-address: 198.18.0.11\n  hold-time: 30s\n  keepalive-time: 10s\n  router-id: 198.18.0.11\n  \
                password: foo\n  bfd-profile: fast\n  ebgp-multihop: false\n  node-selectors:\n  \
                - match-labels: {rack: a}\n    match-expressions:\n    - key: zone\n      operator: In\n      \
                values: [z1]\n\
                bfd-profiles:\n- name: fast\n  receive-interval: 100\n  transmit-interval: 100\n  \
                detect-multiplier: 3\n  echo-interval: 50\n  echo-mode: false\n  passive-mode: false\n  \
                minimum-ttl: 254\n\
                bgp-communities:\n  edge: 64512:1\n\
                address-pools:\n- name: a\n  protocol: bgp\n  addresses: [203.0.113.0/28]\n  \
                avoid-buggy-ips: true\n  auto-assign: true\n  bgp-advertisements:\n  - aggregation-length: 32\n    \
                aggregation-length-v6: 128\n    localpref: 100\n    communities: [edge]\n";
    for (object, keys) in METALLB_V0_12_KEYS {
        for key in *keys {
            assert!(
                text.contains(&format!("{key}:")),
                "the document lacks {object}.{key}"
            );
        }
    }
    Config::from_yaml(text).expect("a document with every MetalLB v0.12 key parses");
}

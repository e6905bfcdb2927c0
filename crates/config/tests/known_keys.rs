//! `known_keys` and `unsupported_keys` list exactly what the parser accepts and rejects, so documentation
//! checked against them cannot drift from the parser.

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
fn every_listed_peer_key_is_accepted_and_an_unlisted_one_is_not() {
    // A peer using every MetalLB peer key parses, and each of them is listed.
    let text = "peers:\n- my-asn: 65000\n  peer-asn: 65001\n  peer-address: 198.18.0.1\n  peer-port: 1179\n  \
                source-address: 198.18.0.11\n  hold-time: 30s\n  keepalive-time: 10s\n  router-id: 198.18.0.11\n  \
                password: foo\n  ebgp-multihop: true\n  node-selectors: []\n";
    let peer = keys_of("peer");
    for key in [
        "my-asn",
        "peer-asn",
        "peer-address",
        "peer-port",
        "source-address",
        "hold-time",
        "keepalive-time",
        "router-id",
        "password",
        "ebgp-multihop",
        "node-selectors",
    ] {
        assert!(text.contains(&format!(" {key}:")), "test text lacks {key}");
        assert!(peer.contains(&key), "{key} is accepted but not listed");
    }
    Config::from_yaml(text).expect("every listed peer key is accepted");
    let err = Config::from_yaml(
        "peers:\n- my-asn: 1\n  peer-asn: 1\n  peer-address: 198.18.0.1\n  hold: 3s\n",
    )
    .unwrap_err();
    assert!(err.to_string().contains("unknown key `hold`"), "{err}");
}

/// A document with `key: x` inside one `object`.
fn with_key(object: &str, key: &str) -> String {
    let pool = "address-pools:\n- name: a\n  protocol: bgp\n  addresses: [203.0.113.0/30]\n";
    match object {
        "config" => format!("{key}: x\n"),
        "peer" => {
            format!("peers:\n- my-asn: 1\n  peer-asn: 1\n  peer-address: 198.18.0.1\n  {key}: x\n")
        }
        "address-pool" => format!("{pool}  {key}: x\n"),
        "bgp-advertisement" => format!("{pool}  bgp-advertisements:\n  - {key}: x\n"),
        other => panic!("no template for {other}"),
    }
}

#[test]
fn unsupported_keys_are_rejected_as_not_supported_yet() {
    for (object, key) in unsupported_keys() {
        let err = Config::from_yaml(&with_key(object, key)).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("`{key}` is not supported yet")),
            "{object}.{key}: {err}"
        );
    }
}

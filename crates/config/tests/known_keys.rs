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
fn objects_are_listed_in_documentation_order() {
    let names: Vec<&str> = known_keys().map(|(name, _)| name).collect();
    assert_eq!(
        names,
        [
            "config",
            "peer",
            "node-selector",
            "match-expression",
            "address-pool",
            "bgp-advertisement"
        ]
    );
}

#[test]
fn every_listed_peer_key_is_accepted_and_an_unlisted_one_is_not() {
    // A peer using every listed key parses.
    let text = "peers:\n- my-asn: 65000\n  peer-asn: 65001\n  peer-address: 198.18.0.1\n  peer-port: 1179\n  \
                source-address: 198.18.0.11\n  hold-time: 30s\n  keepalive-time: 10s\n  router-id: 198.18.0.11\n  \
                password: foo\n  ebgp-multihop: true\n  node-selectors: []\n";
    for key in keys_of("peer") {
        assert!(text.contains(&format!(" {key}:")), "test text lacks {key}");
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
    assert!(
        unsupported_keys().any(|(o, k)| (o, k) == ("peer", "bfd-profile")),
        "bfd-profile is listed"
    );
}

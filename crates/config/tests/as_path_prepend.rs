//! The AS_PATH keys of `bgp-advertisements` (`as-path-prepend`, `allowed-service-as-path-prepends`) and
//! their `node-selectors`: what they accept, how they are written back, and every refusal with its path and
//! line.

mod common;

use common::{Case, assert_cases};
use ferrolb_config::{
    AsPathPrepend, AsPathPrependAllowance, Config, ConfigErrorKind as K, NodeSelector,
};
use std::collections::BTreeMap;

const POOL: &str = "address-pools:\n- name: a\n  protocol: bgp\n  addresses: [203.0.113.0/28]\n  bgp-advertisements:\n";
const AD: &str = "address-pools[0].bgp-advertisements[0]";

/// Each case's `yaml` is appended to [`POOL`] (which is 5 lines long).
const CASES: &[Case] = &[
    Case {
        name: "count of zero",
        yaml: "  - as-path-prepend: {asn: 65000, count: 0}\n",
        path: "address-pools[0].bgp-advertisements[0].as-path-prepend.count",
        line: 6,
        check: |k| matches!(k, K::OutOfRange { value, range: "1 to 10" } if value == "0"),
    },
    Case {
        name: "count of eleven",
        yaml: "  - as-path-prepend:\n      asn: 65000\n      count: 11\n",
        path: "address-pools[0].bgp-advertisements[0].as-path-prepend.count",
        line: 8,
        check: |k| matches!(k, K::OutOfRange { value, range: "1 to 10" } if value == "11"),
    },
    Case {
        name: "count not a number",
        yaml: "  - as-path-prepend:\n      asn: 65000\n      count: three\n",
        path: "address-pools[0].bgp-advertisements[0].as-path-prepend.count",
        line: 8,
        check: |k| matches!(k, K::WrongType { .. }),
    },
    Case {
        name: "AS of zero",
        yaml: "  - as-path-prepend:\n      asn: 0\n      count: 2\n",
        path: "address-pools[0].bgp-advertisements[0].as-path-prepend.asn",
        line: 7,
        check: |k| matches!(k, K::ZeroAsn("asn")),
    },
    Case {
        name: "AS above 32 bits",
        yaml: "  - as-path-prepend:\n      asn: 4294967296\n      count: 2\n",
        path: "address-pools[0].bgp-advertisements[0].as-path-prepend.asn",
        line: 7,
        check: |k| matches!(k, K::OutOfRange { .. }),
    },
    Case {
        name: "no count",
        yaml: "  - as-path-prepend:\n      asn: 65000\n",
        path: "address-pools[0].bgp-advertisements[0].as-path-prepend",
        line: 7,
        check: |k| matches!(k, K::Missing("count")),
    },
    Case {
        name: "a string instead of a mapping",
        yaml: "  - as-path-prepend: \"65000:3\"\n",
        path: "address-pools[0].bgp-advertisements[0].as-path-prepend",
        line: 6,
        check: |k| {
            matches!(
                k,
                K::WrongType {
                    expected: "a mapping",
                    ..
                }
            )
        },
    },
    Case {
        name: "an unknown key in the prepend",
        yaml: "  - as-path-prepend: {asn: 65000, count: 2, times: 2}\n",
        path: "address-pools[0].bgp-advertisements[0].as-path-prepend.times",
        line: 6,
        check: |k| matches!(k, K::UnknownKey { key, .. } if key == "times"),
    },
    Case {
        name: "allowance above ten",
        yaml: "  - allowed-service-as-path-prepends:\n    - asn: 65000\n      max-count: 12\n",
        path: "address-pools[0].bgp-advertisements[0].allowed-service-as-path-prepends[0].max-count",
        line: 8,
        check: |k| matches!(k, K::OutOfRange { value, .. } if value == "12"),
    },
    Case {
        name: "allowance written like the advertisement's key",
        yaml: "  - allowed-service-as-path-prepends:\n    - {asn: 65000, max-count: 2, count: 2}\n",
        path: "address-pools[0].bgp-advertisements[0].allowed-service-as-path-prepends[0].count",
        line: 7,
        check: |k| matches!(k, K::UnknownKey { key, .. } if key == "count"),
    },
    Case {
        name: "allowance on an aggregate",
        yaml: "  - aggregation-length: 28\n    allowed-service-as-path-prepends: [{asn: 65000, max-count: 2}]\n",
        path: "address-pools[0].bgp-advertisements[0].allowed-service-as-path-prepends",
        line: 7,
        check: |k| {
            matches!(
                k,
                K::NeedsHostRoutes {
                    key: "allowed-service-as-path-prepends",
                    length: 28
                }
            )
        },
    },
    Case {
        name: "a bad node selector",
        yaml: "  - node-selectors:\n    - match-labels: {\"bad key!\": x}\n",
        path: "address-pools[0].bgp-advertisements[0].node-selectors[0].match-labels.bad key!",
        line: 7,
        check: |k| matches!(k, K::BadLabelKey(_)),
    },
];

#[test]
fn every_refusal_reports_path_line_and_kind() {
    assert_cases(POOL, CASES);
    assert!(CASES.iter().all(|c| c.path.starts_with(AD)));
}

#[test]
fn prepends_allowances_and_node_selectors_are_read_and_written_back() {
    let text = format!(
        "{POOL}  - as-path-prepend: {{asn: 65000, count: 3}}\n    node-selectors:\n    - match-labels: {{rack: r1}}\n  - allowed-service-as-path-prepends:\n    - {{asn: 65000, max-count: 2}}\n    - {{asn: 65001, max-count: 10}}\n    - {{asn: 65000, max-count: 2}}\n    aggregation-length: 32\n  - aggregation-length: 28\n    as-path-prepend: {{asn: 4200000001, count: 10}}\n"
    );
    let config = Config::from_yaml(&text).unwrap();
    let ads = &config.address_pools[0].bgp_advertisements;
    assert_eq!(
        ads[0].as_path_prepend,
        Some(AsPathPrepend {
            asn: 65000,
            count: 3
        })
    );
    let rack = |r: &str| BTreeMap::from([("rack".to_owned(), r.to_owned())]);
    assert!(ads[0].selects_node(&rack("r1")));
    assert!(!ads[0].selects_node(&rack("r2")));
    assert_eq!(
        ads[0].node_selectors,
        [NodeSelector {
            match_labels: rack("r1"),
            match_expressions: Vec::new(),
        }]
    );
    assert_eq!(ads[1].as_path_prepend, None);
    assert!(ads[1].selects_node(&rack("r2")));
    assert_eq!(
        ads[1].allowed_service_as_path_prepends,
        [
            AsPathPrependAllowance {
                asn: 65000,
                max_count: 2
            },
            AsPathPrependAllowance {
                asn: 65001,
                max_count: 10
            },
        ]
    );
    // A prepend on an aggregate is allowed: it is the advertisement's, not one Service's.
    assert_eq!(
        ads[2].as_path_prepend,
        Some(AsPathPrepend {
            asn: 4_200_000_001,
            count: 10
        })
    );
    let yaml = config.to_yaml().unwrap();
    assert!(yaml.contains("as-path-prepend:\n"), "{yaml}");
    assert!(yaml.contains("max-count: 10"), "{yaml}");
    assert!(yaml.contains("node-selectors:"), "{yaml}");
    assert_eq!(Config::from_yaml(&yaml).unwrap(), config);
}

#[test]
fn advertisements_differing_only_in_prepend_or_nodes_are_not_duplicates() {
    let twice = format!(
        "{POOL}  - as-path-prepend: {{asn: 65000, count: 3}}\n  - as-path-prepend: {{asn: 65000, count: 3}}\n"
    );
    let errs = Config::from_yaml(&twice).unwrap_err();
    assert!(
        matches!(
            errs.errors()[0].kind,
            K::DuplicateAdvertisement { first_line: 6, .. }
        ),
        "{errs}"
    );
    for different in [
        "  - as-path-prepend: {asn: 65000, count: 3}\n  - as-path-prepend: {asn: 65000, count: 2}\n",
        "  - as-path-prepend: {asn: 65000, count: 3}\n  - {}\n",
        "  - node-selectors: [{match-labels: {rack: r1}}]\n  - node-selectors: [{match-labels: {rack: r2}}]\n",
        "  - allowed-service-as-path-prepends: [{asn: 65000, max-count: 1}]\n  - {}\n",
    ] {
        let text = format!("{POOL}{different}");
        Config::from_yaml(&text).unwrap_or_else(|e| panic!("{different}: {e}"));
    }
}

//! The weighted-ECMP and per-Service keys of `bgp-advertisements`: what they accept, their
//! defaults, and every refusal with its path and line.

mod common;

use common::{Case, assert_cases};
use ferrolb_config::{
    Bandwidth, BandwidthError, CommunityError, CommunityValue, Config, ConfigErrorKind as K,
    DEFAULT_BANDWIDTH_PER_ENDPOINT, LocalPrefRange, LocalPrefRangeError,
};

const POOL: &str = "bgp-communities:\n  no-export: 65535:65281\n  gold: 64512:100\naddress-pools:\n- name: a\n  protocol: bgp\n  addresses: [203.0.113.0/28, 2001:db8::/124]\n  bgp-advertisements:\n";

/// Each case's `yaml` is appended to [`POOL`] (which is 8 lines long).
const CASES: &[Case] = &[
    Case {
        name: "bandwidth without a unit",
        yaml: "  - weighted-ecmp: true\n    link-bandwidth-per-endpoint: 1000\n",
        path: "address-pools[0].bgp-advertisements[0].link-bandwidth-per-endpoint",
        line: 10,
        check: |k| matches!(k, K::Bandwidth(BandwidthError::Malformed(t)) if t == "1000"),
    },
    Case {
        name: "bandwidth of zero",
        yaml: "  - weighted-ecmp: true\n    link-bandwidth-per-endpoint: 0Mbps\n",
        path: "address-pools[0].bgp-advertisements[0].link-bandwidth-per-endpoint",
        line: 10,
        check: |k| matches!(k, K::Bandwidth(BandwidthError::OutOfRange(t)) if t == "0Mbps"),
    },
    Case {
        name: "bandwidth without weighted-ecmp",
        yaml: "  - link-bandwidth-per-endpoint: 10Mbps\n",
        path: "address-pools[0].bgp-advertisements[0].link-bandwidth-per-endpoint",
        line: 9,
        check: |k| matches!(k, K::BandwidthWithoutWeightedEcmp),
    },
    Case {
        name: "bandwidth with weighted-ecmp false",
        yaml: "  - weighted-ecmp: false\n    link-bandwidth-per-endpoint: 10Mbps\n",
        path: "address-pools[0].bgp-advertisements[0].link-bandwidth-per-endpoint",
        line: 10,
        check: |k| matches!(k, K::BandwidthWithoutWeightedEcmp),
    },
    Case {
        name: "weighted-ecmp on an IPv4 aggregate",
        yaml: "  - aggregation-length: 28\n    weighted-ecmp: true\n",
        path: "address-pools[0].bgp-advertisements[0].weighted-ecmp",
        line: 10,
        check: |k| {
            matches!(
                k,
                K::NeedsHostRoutes {
                    key: "weighted-ecmp",
                    length: 28
                }
            )
        },
    },
    Case {
        name: "allowed communities on an IPv6 aggregate",
        yaml: "  - aggregation-length-v6: 124\n    allowed-service-communities: [gold]\n",
        path: "address-pools[0].bgp-advertisements[0].allowed-service-communities",
        line: 10,
        check: |k| {
            matches!(
                k,
                K::NeedsHostRoutes {
                    key: "allowed-service-communities",
                    length: 124
                }
            )
        },
    },
    Case {
        name: "allowed local preferences on an aggregate",
        yaml: "  - aggregation-length: 30\n    allowed-service-localprefs:\n    - 100\n",
        path: "address-pools[0].bgp-advertisements[0].allowed-service-localprefs",
        line: 10,
        check: |k| {
            matches!(
                k,
                K::NeedsHostRoutes {
                    key: "allowed-service-localprefs",
                    length: 30
                }
            )
        },
    },
    Case {
        name: "allowed community that is neither a value nor an alias",
        yaml: "  - allowed-service-communities:\n    - gold\n    - silver\n",
        path: "address-pools[0].bgp-advertisements[0].allowed-service-communities[1]",
        line: 11,
        check: |k| matches!(k, K::Community(CommunityError::Malformed(t)) if t == "silver"),
    },
    Case {
        name: "allowed community out of range",
        yaml: "  - allowed-service-communities: [\"64512:70000\"]\n",
        path: "address-pools[0].bgp-advertisements[0].allowed-service-communities[0]",
        line: 9,
        check: |k| matches!(k, K::Community(CommunityError::BadPart { part, .. }) if part == "70000"),
    },
    Case {
        name: "allowed communities not a list",
        yaml: "  - allowed-service-communities: gold\n",
        path: "address-pools[0].bgp-advertisements[0].allowed-service-communities",
        line: 9,
        check: |k| {
            matches!(
                k,
                K::WrongType {
                    expected: "a sequence",
                    ..
                }
            )
        },
    },
    Case {
        name: "reversed local preference range",
        yaml: "  - allowed-service-localprefs:\n    - 100\n    - 300-200\n",
        path: "address-pools[0].bgp-advertisements[0].allowed-service-localprefs[1]",
        line: 11,
        check: |k| matches!(k, K::LocalPrefRange(LocalPrefRangeError::Reversed(t)) if t == "300-200"),
    },
    Case {
        name: "local preference that is not a number",
        yaml: "  - allowed-service-localprefs: [high]\n",
        path: "address-pools[0].bgp-advertisements[0].allowed-service-localprefs[0]",
        line: 9,
        check: |k| matches!(k, K::LocalPrefRange(LocalPrefRangeError::Malformed(t)) if t == "high"),
    },
    Case {
        name: "local preference above 32 bits",
        yaml: "  - allowed-service-localprefs: [4294967296]\n",
        path: "address-pools[0].bgp-advertisements[0].allowed-service-localprefs[0]",
        line: 9,
        check: |k| matches!(k, K::LocalPrefRange(LocalPrefRangeError::Malformed(_))),
    },
];

#[test]
fn every_refusal_reports_path_line_and_kind() {
    assert_cases(POOL, CASES);
}

#[test]
fn keys_parse_with_aliases_resolved_and_defaults_filled() {
    let text = format!(
        "{POOL}  - weighted-ecmp: true\n    allowed-service-communities: [gold, no-export, \"64512:7\", large:64512:1:2, gold]\n    allowed-service-localprefs: [50, 100-300]\n  - aggregation-length: 28\n    aggregation-length-v6: 124\n"
    );
    let config = Config::from_yaml(&text).unwrap();
    let ads = &config.address_pools[0].bgp_advertisements;
    assert!(ads[0].weighted_ecmp);
    assert_eq!(
        ads[0].link_bandwidth_per_endpoint,
        DEFAULT_BANDWIDTH_PER_ENDPOINT
    );
    assert_eq!(
        ads[0].link_bandwidth_per_endpoint.bytes_per_second(),
        125_000.0
    );
    assert_eq!(
        ads[0].allowed_service_communities,
        [
            CommunityValue::Standard(64512, 100),
            CommunityValue::Standard(65535, 65281),
            CommunityValue::Standard(64512, 7),
            CommunityValue::Large(64512, 1, 2),
        ]
    );
    assert_eq!(
        ads[0].allowed_service_localprefs,
        [
            LocalPrefRange {
                first: 50,
                last: 50
            },
            LocalPrefRange {
                first: 100,
                last: 300
            }
        ]
    );
    assert!(ads[0].allows_service_localpref(300));
    assert!(!ads[0].allows_service_localpref(99));
    assert!(!ads[1].weighted_ecmp);
    assert!(ads[1].allowed_service_communities.is_empty());
}

#[test]
fn a_configured_bandwidth_is_kept_and_written_back() {
    let text = format!(
        "{POOL}  - weighted-ecmp: true\n    link-bandwidth-per-endpoint: 10Gbps\n    allowed-service-localprefs: [100-300]\n"
    );
    let config = Config::from_yaml(&text).unwrap();
    let ad = &config.address_pools[0].bgp_advertisements[0];
    assert_eq!(
        ad.link_bandwidth_per_endpoint,
        Bandwidth::from_bits_per_second(10_000_000_000)
    );
    let yaml = config.to_yaml().unwrap();
    assert!(yaml.contains("weighted-ecmp: true"), "{yaml}");
    assert!(
        yaml.contains("link-bandwidth-per-endpoint: 10Gbps"),
        "{yaml}"
    );
    assert!(yaml.contains("- 100-300"), "{yaml}");
    assert_eq!(Config::from_yaml(&yaml).unwrap(), config);
}

#[test]
fn the_same_keys_twice_are_a_duplicate_advertisement_but_different_ones_are_not() {
    let twice = format!("{POOL}  - weighted-ecmp: true\n  - weighted-ecmp: true\n");
    let errs = Config::from_yaml(&twice).unwrap_err();
    assert!(
        matches!(
            errs.errors()[0].kind,
            K::DuplicateAdvertisement { first_line: 9, .. }
        ),
        "{errs}"
    );
    let different =
        format!("{POOL}  - weighted-ecmp: true\n  - allowed-service-localprefs: [200]\n");
    Config::from_yaml(&different).unwrap();
}

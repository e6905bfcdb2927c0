//! `bfd-profiles` and a peer's `bfd-profile`: defaults, MetalLB's ranges, echo mode refused,
//! references checked; each error case asserting its path, line and kind.

mod common;

use common::assert_one_error;
use ferrolb_config::{
    BFD_DETECT_MULTIPLIER, BFD_ECHO_INTERVAL_MS, BFD_MINIMUM_TTL, BFD_RECEIVE_INTERVAL_MS,
    BFD_TRANSMIT_INTERVAL_MS, BfdProfile, Config, ConfigErrorKind as K,
};

const PEER: &str = "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 198.18.0.1\n";

struct Case {
    name: &'static str,
    yaml: &'static str,
    path: &'static str,
    line: usize,
    message: &'static str,
    check: fn(&K) -> bool,
}

const CASES: &[Case] = &[
    Case {
        name: "echo mode is refused",
        yaml: "bfd-profiles:\n- name: fast\n  echo-mode: true\n",
        path: "bfd-profiles[0].echo-mode",
        line: 3,
        message: "echo mode is not supported (ferrolb's BFD runs in asynchronous mode only); remove echo-mode or set it to false",
        check: |k| matches!(k, K::EchoModeUnsupported),
    },
    Case {
        name: "receive-interval below 10 ms",
        yaml: "bfd-profiles:\n- name: fast\n  receive-interval: 9\n",
        path: "bfd-profiles[0].receive-interval",
        line: 3,
        message: "9 is out of range (10 to 60000)",
        check: |k| matches!(k, K::OutOfRange { value, .. } if value == "9"),
    },
    Case {
        name: "transmit-interval above 60000 ms",
        yaml: "bfd-profiles:\n- name: fast\n  transmit-interval: 60001\n",
        path: "bfd-profiles[0].transmit-interval",
        line: 3,
        message: "60001 is out of range (10 to 60000)",
        check: |k| matches!(k, K::OutOfRange { value, .. } if value == "60001"),
    },
    Case {
        name: "detect-multiplier 1",
        yaml: "bfd-profiles:\n- name: fast\n  detect-multiplier: 1\n",
        path: "bfd-profiles[0].detect-multiplier",
        line: 3,
        message: "1 is out of range (2 to 255)",
        check: |k| matches!(k, K::OutOfRange { value, .. } if value == "1"),
    },
    Case {
        name: "detect-multiplier 256",
        yaml: "bfd-profiles:\n- name: fast\n  detect-multiplier: 256\n",
        path: "bfd-profiles[0].detect-multiplier",
        line: 3,
        message: "256 is out of range (2 to 255)",
        check: |k| matches!(k, K::OutOfRange { value, .. } if value == "256"),
    },
    Case {
        name: "echo-interval below 10 ms",
        yaml: "bfd-profiles:\n- name: fast\n  echo-interval: 5\n",
        path: "bfd-profiles[0].echo-interval",
        line: 3,
        message: "5 is out of range (10 to 60000)",
        check: |k| matches!(k, K::OutOfRange { value, .. } if value == "5"),
    },
    Case {
        name: "minimum-ttl 255",
        yaml: "bfd-profiles:\n- name: fast\n  minimum-ttl: 255\n",
        path: "bfd-profiles[0].minimum-ttl",
        line: 3,
        message: "255 is out of range (1 to 254)",
        check: |k| matches!(k, K::OutOfRange { value, .. } if value == "255"),
    },
    Case {
        name: "minimum-ttl 0",
        yaml: "bfd-profiles:\n- name: fast\n  minimum-ttl: 0\n",
        path: "bfd-profiles[0].minimum-ttl",
        line: 3,
        message: "0 is out of range (1 to 254)",
        check: |k| matches!(k, K::OutOfRange { value, .. } if value == "0"),
    },
    Case {
        name: "an interval must be an integer (milliseconds)",
        yaml: "bfd-profiles:\n- name: fast\n  receive-interval: 300ms\n",
        path: "bfd-profiles[0].receive-interval",
        line: 3,
        message: "expected an integer, found \"300ms\"",
        check: |k| matches!(k, K::WrongType { .. }),
    },
    Case {
        name: "name is required",
        yaml: "bfd-profiles:\n- receive-interval: 100\n",
        path: "bfd-profiles[0]",
        line: 2,
        message: "missing required key `name`",
        check: |k| matches!(k, K::Missing("name")),
    },
    Case {
        name: "empty name",
        yaml: "bfd-profiles:\n- name: ''\n",
        path: "bfd-profiles[0].name",
        line: 2,
        message: "BFD profile name must not be empty",
        check: |k| matches!(k, K::EmptyBfdProfileName),
    },
    Case {
        name: "duplicate name",
        yaml: "bfd-profiles:\n- name: fast\n- name: slow\n- name: fast\n",
        path: "bfd-profiles[2].name",
        line: 4,
        message: "duplicate BFD profile name \"fast\" (first defined at bfd-profiles[0].name, line 2)",
        check: |k| matches!(k, K::DuplicateBfdProfileName { first_line: 2, .. }),
    },
    Case {
        name: "unknown key in a profile",
        yaml: "bfd-profiles:\n- name: fast\n  receive-intervall: 100\n",
        path: "bfd-profiles[0].receive-intervall",
        line: 3,
        message: "",
        check: |k| matches!(k, K::UnknownKey { key, expected } if key == "receive-intervall" && expected.contains("receive-interval")),
    },
    Case {
        name: "peer names a profile that does not exist",
        yaml: "bfd-profiles:\n- name: fast\n- name: slow\npeers:\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 198.18.0.1\n  bfd-profile: fats\n",
        path: "peers[0].bfd-profile",
        line: 8,
        message: "bfd-profile \"fats\" is not defined in bfd-profiles (defined: fast, slow)",
        check: |k| matches!(k, K::UnknownBfdProfile { name, .. } if name == "fats"),
    },
    Case {
        name: "profiles come after the peers in the file: still resolved, typo still reported",
        yaml: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 198.18.0.1\n  bfd-profile: x\nbfd-profiles:\n- name: fast\n",
        path: "peers[0].bfd-profile",
        line: 5,
        message: "bfd-profile \"x\" is not defined in bfd-profiles (defined: fast)",
        check: |k| matches!(k, K::UnknownBfdProfile { name, .. } if name == "x"),
    },
];

#[test]
fn every_bfd_error_has_its_path_line_and_message() {
    for case in CASES {
        let e = assert_one_error(case.name, case.yaml, case.path, case.line, case.check);
        if !case.message.is_empty() {
            assert_eq!(e.kind.to_string(), case.message, "{}", case.name);
        }
    }
}

#[test]
fn a_profile_with_only_a_name_takes_metallb_defaults_and_a_peer_refers_to_it() {
    let yaml = format!(
        "bfd-profiles:\n- name: default\n- name: fast\n  receive-interval: 100\n  transmit-interval: 100\n  detect-multiplier: 3\n  echo-interval: 10\n  echo-mode: false\n  passive-mode: true\n  minimum-ttl: 1\n{PEER}  bfd-profile: fast\n"
    );
    let cfg = Config::from_yaml(&yaml).unwrap();
    assert_eq!(cfg.bfd_profiles[0], BfdProfile::with_defaults("default"));
    assert_eq!(
        cfg.bfd_profiles[1],
        BfdProfile {
            name: "fast".into(),
            receive_interval: 100,
            transmit_interval: 100,
            detect_multiplier: 3,
            echo_interval: 10,
            echo_mode: false,
            passive_mode: true,
            minimum_ttl: 1,
        }
    );
    assert_eq!(cfg.peers[0].bfd_profile.as_deref(), Some("fast"));
    assert_eq!(
        cfg.bfd_profile("fast").map(|p| p.receive_interval),
        Some(100)
    );
    assert_eq!(cfg.bfd_profile("none"), None);
}

#[test]
fn range_bounds_are_accepted() {
    let yaml = "bfd-profiles:\n- name: lo\n  receive-interval: 10\n  transmit-interval: 10\n  detect-multiplier: 2\n  echo-interval: 10\n  minimum-ttl: 1\n- name: hi\n  receive-interval: 60000\n  transmit-interval: 60000\n  detect-multiplier: 255\n  echo-interval: 60000\n  minimum-ttl: 254\n";
    let cfg = Config::from_yaml(yaml).unwrap();
    assert_eq!(cfg.bfd_profiles.len(), 2);
    assert_eq!(cfg.bfd_profiles[1].detect_multiplier, 255);
}

/// The ranges and defaults are repeated here from `ferrolb_bfd` (so the config crate does not
/// pull in the BFD driver); they must agree.
#[test]
fn ranges_and_defaults_agree_with_the_bfd_crate() {
    use ferrolb_bfd::profile as bfd;
    assert_eq!(BFD_RECEIVE_INTERVAL_MS, bfd::RECEIVE_INTERVAL_MS);
    assert_eq!(BFD_TRANSMIT_INTERVAL_MS, bfd::TRANSMIT_INTERVAL_MS);
    assert_eq!(BFD_DETECT_MULTIPLIER, bfd::DETECT_MULTIPLIER);
    assert_eq!(BFD_ECHO_INTERVAL_MS, bfd::ECHO_INTERVAL_MS);
    assert_eq!(BFD_MINIMUM_TTL, bfd::MINIMUM_TTL);
    let ours = BfdProfile::with_defaults("x");
    let theirs = bfd::Profile::default();
    assert_eq!(ours.receive_interval, theirs.receive_interval_ms);
    assert_eq!(ours.transmit_interval, theirs.transmit_interval_ms);
    assert_eq!(ours.detect_multiplier, theirs.detect_multiplier);
    assert_eq!(ours.echo_interval, theirs.echo_interval_ms);
    assert_eq!(ours.echo_mode, theirs.echo_mode);
    assert_eq!(ours.passive_mode, theirs.passive_mode);
    assert_eq!(ours.minimum_ttl, theirs.minimum_ttl);
}

/// Every value the config accepts, the BFD crate's validation accepts too, and the bounds just
/// outside are refused by both.
#[test]
fn config_and_bfd_validation_agree_at_the_bounds() {
    use ferrolb_bfd::profile::Profile;
    type Setter = fn(&mut Profile, u32);
    let fields: [(&str, Setter); 5] = [
        ("receive-interval", |p, v| p.receive_interval_ms = v),
        ("transmit-interval", |p, v| p.transmit_interval_ms = v),
        ("detect-multiplier", |p, v| p.detect_multiplier = v),
        ("echo-interval", |p, v| p.echo_interval_ms = v),
        ("minimum-ttl", |p, v| p.minimum_ttl = v),
    ];
    let ranges = [
        BFD_RECEIVE_INTERVAL_MS,
        BFD_TRANSMIT_INTERVAL_MS,
        BFD_DETECT_MULTIPLIER,
        BFD_ECHO_INTERVAL_MS,
        BFD_MINIMUM_TTL,
    ];
    for ((key, set), range) in fields.iter().zip(ranges) {
        for v in [
            range.start() - 1,
            *range.start(),
            *range.end(),
            range.end() + 1,
        ] {
            let yaml = format!("bfd-profiles:\n- name: p\n  {key}: {v}\n");
            let config_ok = Config::from_yaml(&yaml).is_ok();
            let mut p = Profile::default();
            set(&mut p, v);
            assert_eq!(config_ok, p.validate().is_ok(), "{key}: {v}");
            assert_eq!(config_ok, range.contains(&v), "{key}: {v}");
        }
    }
}

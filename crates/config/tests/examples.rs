//! Every file in `config/` parses; every file in `config/invalid/` fails with exactly the
//! errors its `# expect:` lines list. New files are covered automatically.

use ferrolb_config::{
    AddressPool, AddressRange, AnnounceFrom, CommunityValue, Config, DEFAULT_HOLD_TIME, Peer,
    Protocol, load,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn config_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config")
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        // MetalLB objects, not ConfigMaps: tests/metallb.rs reads them.
        .filter(|p| !p.to_string_lossy().ends_with("-crds.yaml"))
        .collect();
    files.sort();
    files
}

fn load_file(path: &Path) -> Result<Config, ferrolb_config::ConfigErrors> {
    load(&std::fs::read_to_string(path).unwrap())
}

#[test]
fn every_example_parses() {
    let files = yaml_files(&config_dir());
    assert!(
        files.len() >= 6,
        "expected the six examples, found {files:?}"
    );
    for f in files {
        if let Err(e) = load_file(&f) {
            panic!("{} does not parse:\n{e}", f.display());
        }
    }
}

#[test]
fn every_invalid_example_fails_with_its_expected_errors() {
    let files = yaml_files(&config_dir().join("invalid"));
    assert!(!files.is_empty());
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let expected: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .collect();
        assert!(
            !expected.is_empty(),
            "{} has no `# expect:` lines",
            f.display()
        );
        let errors = load(&text).expect_err(&f.display().to_string()).to_string();
        assert_eq!(
            errors.lines().collect::<Vec<_>>(),
            expected,
            "{}",
            f.display()
        );
    }
}

fn seed() -> Config {
    Config {
        peers: vec![Peer {
            name: None,
            my_asn: 65559,
            peer_asn: 65559,
            dynamic_asn: None,
            local_asn: None,
            my_asn_from_node_label: None,
            router_id_from_node_label: None,
            peer_address: "198.18.0.1".parse().unwrap(),
            interface: None,
            vrf: None,
            peer_port: 179,
            source_address: None,
            hold_time: DEFAULT_HOLD_TIME,
            keepalive_time: Duration::from_secs(30),
            connect_time: None,
            graceful_restart: None,
            dual_stack_address_family: true,
            router_id: None,
            password: Some("foo".into()),
            ebgp_multihop: false,
            bfd_profile: None,
            node_selectors: vec![],
        }],
        bgp_communities: Default::default(),
        bfd_profiles: vec![],
        address_pools: vec![AddressPool {
            name: "public-pool".into(),
            protocol: Protocol::Bgp,
            addresses: vec![AddressRange::Range {
                start: "1.2.3.4".parse().unwrap(),
                end: "1.2.3.8".parse().unwrap(),
            }],
            avoid_buggy_ips: false,
            auto_assign: true,
            announce_from: AnnounceFrom::NodesWithEndpoints,
            bgp_advertisements: vec![],
            announced: true,
            service_allocation: None,
        }],
    }
}

#[test]
fn seed_example_gives_the_exact_model_alone_and_as_a_manifest() {
    assert_eq!(load_file(&config_dir().join("seed.yaml")).unwrap(), seed());
    assert_eq!(
        load_file(&config_dir().join("seed-configmap.yaml")).unwrap(),
        seed()
    );
    let seed = seed();
    assert!(seed.address_pools[0].contains("1.2.3.8".parse().unwrap()));
    assert!(!seed.address_pools[0].contains("1.2.3.9".parse().unwrap()));
    assert_eq!(seed.address_counts(), (5, 0));
}

#[test]
fn communities_example_resolves_aliases() {
    let cfg = load_file(&config_dir().join("communities.yaml")).unwrap();
    let ads = &cfg.address_pools[0].bgp_advertisements;
    assert_eq!(
        ads[0].communities,
        [
            CommunityValue::Standard(65535, 65282),
            CommunityValue::Large(64512, 1, 100)
        ]
    );
    assert_eq!(ads[0].localpref, Some(100));
    assert_eq!(
        (ads[1].aggregation_length, ads[1].aggregation_length_v6),
        (24, 64)
    );
    assert_eq!(
        ads[1].communities,
        [
            CommunityValue::Standard(64512, 24),
            CommunityValue::Large(64512, 2, 3)
        ]
    );
}

#[test]
fn ebgp_example_selects_nodes_by_rack() {
    let cfg = load_file(&config_dir().join("ebgp-two-routers.yaml")).unwrap();
    let labels = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let rack_a = labels(&[("topology.kubernetes.io/zone", "rack-a")]);
    let edge = labels(&[("ferrolb.example/role", "edge")]);
    let excluded = labels(&[
        ("ferrolb.example/role", "edge"),
        (
            "node.kubernetes.io/exclude-from-external-load-balancers",
            "",
        ),
    ]);
    assert!(cfg.peers[0].selects_node(&rack_a));
    assert!(!cfg.peers[1].selects_node(&rack_a));
    assert!(cfg.peers[1].selects_node(&edge));
    assert!(!cfg.peers[1].selects_node(&excluded));
    assert_eq!(cfg.peers[0].keepalive_time, Duration::from_secs(3));
}

#[test]
fn manual_pool_example_is_not_auto_assigned() {
    let cfg = load_file(&config_dir().join("manual-pool.yaml")).unwrap();
    let reserved = cfg.pool("reserved").unwrap();
    assert!(!reserved.auto_assign);
    assert!(reserved.avoid_buggy_ips);
    assert!(cfg.pool("default").unwrap().auto_assign);
}

#[test]
fn manifest_error_lines_refer_to_the_manifest() {
    let text = "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: config
data:
  config: |
    address-pools:
    - name: a
      protocol: bgp
      addresses:
      - 203.0.113.9-203.0.113.4
";
    let err = load(text).unwrap_err();
    assert_eq!(err.errors()[0].path, "address-pools[0].addresses[0]");
    assert_eq!(err.errors()[0].line, 11);
}

#[test]
fn manifest_with_quoted_config_and_without_config() {
    let text = "kind: ConfigMap\ndata:\n  config: \"peers: []\\nfoo: 1\\n\"\n";
    let err = load(text).unwrap_err();
    assert_eq!(err.errors()[0].path, "foo");
    assert_eq!(
        err.errors()[0].line,
        4,
        "line 2 of a scalar starting on line 3"
    );
    let err = load("kind: ConfigMap\ndata:\n  other: x\n").unwrap_err();
    assert_eq!(err.errors()[0].path, "data.config");
    assert_eq!(err.errors()[0].line, 2);
    let err = load("kind: ConfigMap\ndata:\n  config: [1]\n").unwrap_err();
    assert_eq!(err.errors()[0].line, 3);
    assert_eq!(
        load("kind: ConfigMap\ndata:\n  config: \"\"\n").unwrap(),
        Config::default()
    );
}

#[test]
fn empty_config_is_valid_and_empty() {
    assert_eq!(Config::from_yaml("").unwrap(), Config::default());
    assert_eq!(Config::from_yaml("{}\n").unwrap(), Config::default());
}

#[test]
fn every_example_survives_serialise_then_parse() {
    for f in yaml_files(&config_dir()) {
        let cfg = load_file(&f).unwrap();
        let yaml = cfg.to_yaml().unwrap();
        assert_eq!(
            Config::from_yaml(&yaml).unwrap(),
            cfg,
            "{}:\n{yaml}",
            f.display()
        );
    }
}

#[test]
fn a_manifest_of_another_kind_is_named() {
    let err = load("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n").unwrap_err();
    assert_eq!(err.len(), 1);
    assert_eq!(
        err.to_string(),
        "kind (line 2): this is a Deployment manifest; expected a ConfigMap whose data.config holds the configuration, or the configuration YAML alone"
    );
}

#[test]
fn announce_from_defaults_to_nodes_with_endpoints_and_accepts_all_nodes() {
    let yaml = "address-pools:\n- name: a\n  protocol: bgp\n  addresses: [203.0.113.0/28]\n- name: b\n  protocol: bgp\n  addresses: [198.51.100.0/28]\n  announce-from: all-nodes\n";
    let config = load(yaml).unwrap();
    assert_eq!(
        config.address_pools[0].announce_from,
        AnnounceFrom::NodesWithEndpoints
    );
    assert_eq!(
        config.address_pools[1].announce_from,
        AnnounceFrom::AllNodes
    );
    // Only the non-default value is written back.
    let text = config.to_yaml().unwrap();
    assert_eq!(text.matches("announce-from").count(), 1, "{text}");
    assert_eq!(load(&text).unwrap(), config);
}

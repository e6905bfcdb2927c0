//! MetalLB's metallb.io objects as a configuration source: each field's mapping into `Config`,
//! every refusal with its exact text, and the ConfigMap → objects → Config round trip.

use ferrolb_config::metallb::{
    self, Kind, ObjectId, SecretData, Secrets, convert, parse_documents, parse_object_json,
    translate,
};
use ferrolb_config::{
    AddressRange, BfdProfile, CommunityValue, Config, NodeSelector, SelectorOperator, load,
};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

const NS: &str = "metadata:\n  namespace: metallb-system\n";

/// An object text: `kind`, name, then the spec lines (already indented by two).
fn obj(kind: &str, version: &str, name: &str, spec: &str) -> String {
    format!("apiVersion: metallb.io/{version}\nkind: {kind}\n{NS}  name: {name}\nspec:\n{spec}")
}

fn pool(name: &str, spec: &str) -> String {
    obj("IPAddressPool", "v1beta1", name, spec)
}

fn peer(name: &str, spec: &str) -> String {
    obj("BGPPeer", "v1beta2", name, spec)
}

fn adv(name: &str, spec: &str) -> String {
    obj("BGPAdvertisement", "v1beta1", name, spec)
}

fn docs(parts: &[String]) -> String {
    parts.join("---\n")
}

fn config_with(text: &str, secrets: &Secrets) -> Config {
    let objects = parse_documents(text).unwrap();
    match translate(&objects, secrets).config {
        Ok(c) => c,
        Err(e) => panic!("{e}\n---\n{text}"),
    }
}

fn config(text: &str) -> Config {
    config_with(text, &Secrets::new())
}

fn errors_with(text: &str, secrets: &Secrets) -> Vec<String> {
    let objects = parse_documents(text).unwrap();
    let e = translate(&objects, secrets).config.unwrap_err();
    e.errors().iter().map(ToString::to_string).collect()
}

fn errors(text: &str) -> Vec<String> {
    errors_with(text, &Secrets::new())
}

const PEER_BASE: &str = "  myASN: 64500\n  peerASN: 64501\n  peerAddress: 198.18.0.1\n";

#[test]
fn pool_fields_map_with_metallb_defaults() {
    let c = config(&pool(
        "public",
        "  addresses:\n  - 203.0.113.0/28\n  - 2001:db8::1-2001:db8::9\n",
    ));
    let p = &c.address_pools[0];
    assert_eq!(p.name, "public");
    assert_eq!(
        p.addresses,
        vec![
            "203.0.113.0/28".parse::<AddressRange>().unwrap(),
            "2001:db8::1-2001:db8::9".parse().unwrap()
        ]
    );
    assert!(p.auto_assign);
    assert!(!p.avoid_buggy_ips);
    assert!(!p.announced, "no BGPAdvertisement selects it");
    let c = config(&pool(
        "p",
        "  addresses: [203.0.113.0/28]\n  autoAssign: false\n  avoidBuggyIPs: true\n",
    ));
    assert!(!c.address_pools[0].auto_assign);
    assert!(c.address_pools[0].avoid_buggy_ips);
}

#[test]
fn pool_errors_name_the_object_and_path() {
    let text = pool(
        "public",
        "  addresses:\n  - 203.0.113.0/28\n  - 203.0.113.9-203.0.113.4\n",
    );
    assert_eq!(
        errors(&text),
        vec![
            "IPAddressPool metallb-system/public: spec.addresses[1] (line 9): range start 203.0.113.9 is after end 203.0.113.4"
        ]
    );
    assert_eq!(
        errors(&pool(
            "p",
            "  addresses: [203.0.113.0/28]\n  protocol: bgp\n"
        )),
        vec![
            "IPAddressPool metallb-system/p: spec.protocol (line 8): unknown key `protocol` (expected one of: addresses, autoAssign, avoidBuggyIPs, serviceAllocation)"
        ]
    );
    assert_eq!(
        errors(&pool("p", "  autoAssign: maybe\n")),
        vec![
            "IPAddressPool metallb-system/p: spec.addresses (line 7): pool has no addresses",
            "IPAddressPool metallb-system/p: spec.autoAssign (line 7): expected true or false, found \"maybe\"",
        ]
    );
}

#[test]
fn overlapping_pools_are_one_error_naming_the_other() {
    let text = docs(&[
        pool("a", "  addresses: [203.0.113.0/28]\n"),
        pool("b", "  addresses: [203.0.113.8-203.0.113.20]\n"),
    ]);
    assert_eq!(
        errors(&text),
        vec![
            "IPAddressPool metallb-system/b: spec.addresses[0] (line 15): 203.0.113.8-203.0.113.20 in pool \"b\" overlaps 203.0.113.0/28 in pool \"a\" (IPAddressPool metallb-system/a spec.addresses[0], line 7)"
        ]
    );
}

#[test]
fn advertisement_fields_map_and_select_pools() {
    let text = docs(&[
        pool("a", "  addresses: [203.0.113.0/28]\n"),
        obj(
            "IPAddressPool",
            "v1beta1",
            "b",
            "  addresses: [198.51.100.0/24]\n",
        )
        .replace("metadata:\n", "metadata:\n  labels:\n    tier: gold\n"),
        pool("c", "  addresses: [2001:db8::/120]\n"),
        peer("r1", PEER_BASE),
        obj(
            "Community",
            "v1beta1",
            "communities",
            "  communities:\n  - name: no-export\n    value: 65535:65281\n",
        ),
        adv(
            "adv10",
            "  aggregationLength: 30\n  localPref: 200\n  communities: [no-export, \"64500:1\", large:1:2:3]\n  ipAddressPools: [a]\n  peers: [r1]\n  nodeSelectors:\n  - matchLabels: {rack: r1}\n  serviceSelectors:\n  - matchExpressions:\n    - {key: app, operator: In, values: [web]}\n",
        ),
        adv(
            "adv2",
            "  ipAddressPoolSelectors:\n  - matchLabels: {tier: gold}\n  ipAddressPools: [a]\n",
        ),
    ]);
    let c = config(&text);
    let a = c.pool("a").unwrap();
    assert!(a.announced);
    assert_eq!(a.bgp_advertisements.len(), 2);
    // adv2 before adv10, and adv2 is the default advertisement.
    assert_eq!(a.bgp_advertisements[0], Default::default());
    let ad = &a.bgp_advertisements[1];
    assert_eq!(ad.aggregation_length, 30);
    assert_eq!(ad.aggregation_length_v6, 128);
    assert_eq!(ad.localpref, Some(200));
    assert_eq!(
        ad.communities,
        vec![
            CommunityValue::Standard(65535, 65281),
            CommunityValue::Standard(64500, 1),
            CommunityValue::Large(1, 2, 3)
        ]
    );
    assert_eq!(ad.peers, vec!["r1".to_string()]);
    assert_eq!(
        ad.node_selectors,
        vec![NodeSelector {
            match_labels: [("rack".to_string(), "r1".to_string())].into(),
            match_expressions: vec![],
        }]
    );
    assert_eq!(
        ad.service_selectors[0].match_expressions[0].operator,
        SelectorOperator::In
    );
    // b is selected by its label: a single default advertisement is kept as none.
    let b = c.pool("b").unwrap();
    assert!(b.announced);
    assert!(b.bgp_advertisements.is_empty());
    assert!(!c.pool("c").unwrap().announced);
    assert_eq!(
        c.bgp_communities,
        BTreeMap::from([(
            "no-export".to_string(),
            CommunityValue::Standard(65535, 65281)
        )])
    );
}

#[test]
fn an_advertisement_without_pools_applies_to_every_pool() {
    let text = docs(&[
        pool("a", "  addresses: [203.0.113.0/28]\n"),
        pool("b", "  addresses: [2001:db8::/120]\n"),
        adv("all", "  aggregationLengthV6: 124\n"),
    ]);
    let c = config(&text);
    for p in &c.address_pools {
        assert!(p.announced);
        assert_eq!(p.bgp_advertisements[0].aggregation_length_v6, 124);
    }
}

#[test]
fn advertisement_errors() {
    let text = docs(&[
        pool("a", "  addresses: [203.0.113.0/28]\n"),
        adv(
            "bad",
            "  aggregationLength: 24\n  ipAddressPools: [a, nope]\n  peers: [ghost]\n  communities: [no-such]\n",
        ),
    ]);
    assert_eq!(
        errors(&text),
        vec![
            "BGPAdvertisement metallb-system/bad: spec.aggregationLength (line 15): aggregation length 24 is shorter than prefix /28 of 203.0.113.0/28 in this pool (IPAddressPool metallb-system/a spec.addresses[0])",
            "BGPAdvertisement metallb-system/bad: spec.ipAddressPools[1] (line 16): no IPAddressPool named \"nope\" (defined: a)",
            "BGPAdvertisement metallb-system/bad: spec.peers[0] (line 17): no BGPPeer named \"ghost\" (none are defined)",
            "BGPAdvertisement metallb-system/bad: spec.communities[0] (line 18): invalid community \"no-such\": expected a:b (16-bit numbers), a:b:c or large:a:b:c (32-bit numbers), or a bgp-communities alias",
        ]
    );
}

#[test]
fn peer_fields_map() {
    let text = docs(&[
        obj("BFDProfile", "v1beta1", "fast", "  receiveInterval: 100\n"),
        peer(
            "r1",
            &format!(
                "{PEER_BASE}  sourceAddress: 198.18.0.10\n  peerPort: 1179\n  holdTime: 30s\n  keepaliveTime: 5s\n  connectTime: 7s\n  routerID: 198.18.0.10\n  password: s3cret\n  bfdProfile: fast\n  enableGracefulRestart: false\n  ebgpMultiHop: true\n  dualStackAddressFamily: true\n  nodeSelectors:\n  - matchLabels: {{rack: r1}}\n"
            ),
        ),
        peer(
            "r2",
            "  myASN: 64500\n  peerASN: 64500\n  peerAddress: 198.18.0.2\n",
        ),
    ]);
    let c = config(&text);
    let p = &c.peers[0];
    assert_eq!(p.name.as_deref(), Some("r1"));
    assert_eq!((p.my_asn, p.peer_asn), (64500, 64501));
    assert_eq!(p.peer_address.to_string(), "198.18.0.1");
    assert_eq!(p.source_address.unwrap().to_string(), "198.18.0.10");
    assert_eq!(p.peer_port, 1179);
    assert_eq!(p.hold_time, Duration::from_secs(30));
    assert_eq!(p.keepalive_time, Duration::from_secs(5));
    assert_eq!(p.connect_time, Some(Duration::from_secs(7)));
    assert_eq!(p.router_id.unwrap().to_string(), "198.18.0.10");
    assert_eq!(p.password.as_deref(), Some("s3cret"));
    assert_eq!(p.bfd_profile.as_deref(), Some("fast"));
    assert_eq!(p.graceful_restart, Some(false));
    assert!(p.ebgp_multihop);
    assert!(p.dual_stack_address_family);
    assert_eq!(p.node_selectors.len(), 1);
    let q = &c.peers[1];
    assert_eq!(q.peer_port, 179);
    assert_eq!(q.hold_time, Duration::from_secs(90));
    assert_eq!(q.keepalive_time, Duration::from_secs(30));
    assert_eq!((q.connect_time, q.graceful_restart), (None, None));
    assert!(
        !q.dual_stack_address_family,
        "CRD peers carry one family by default"
    );
    let mut fast = BfdProfile::with_defaults("fast");
    fast.receive_interval = 100;
    assert_eq!(c.bfd_profiles, vec![fast]);
}

#[test]
fn peer_refusals_and_errors() {
    let text = peer(
        "r1",
        &format!(
            "{PEER_BASE}  dynamicASN: external\n  interface: eth1\n  holdTime: 1s\n  bfdProfile: none\n"
        ),
    );
    assert_eq!(
        errors(&text),
        vec![
            "BGPPeer metallb-system/r1: spec.dynamicASN (line 10): peerASN and dynamicASN are both set: use one",
            "BGPPeer metallb-system/r1: spec.interface (line 11): peerAddress and interface are both set: use one",
            "BGPPeer metallb-system/r1: spec.holdTime (line 12): hold time \"1s\" is invalid: must be 0 or at least 3s",
            "BGPPeer metallb-system/r1: spec.bfdProfile (line 13): no BFDProfile named \"none\" (none are defined)",
        ]
    );
    assert_eq!(
        errors(&peer("r1", "  peerASN: 1\n  peerAddress: 198.18.0.1\n")),
        vec!["BGPPeer metallb-system/r1: spec (line 7): missing required key `myASN`"]
    );
    let text = docs(&[peer("a", PEER_BASE), peer("b", PEER_BASE)]);
    assert_eq!(
        errors(&text),
        vec![
            "BGPPeer metallb-system/b: line 17: duplicate peer: 198.18.0.1 port 179 my-asn 64500 is already defined at BGPPeer metallb-system/a (line 7)"
        ]
    );
}

#[test]
fn interface_and_vrf_peers_are_read() {
    let text = docs(&[
        peer(
            "leaf1",
            "  myASN: 64500\n  peerASN: 64501\n  interface: swp1\n",
        ),
        peer("red", &format!("{PEER_BASE}  vrf: red\n")),
        peer("blue", &format!("{PEER_BASE}  vrf: blue\n")),
    ]);
    let c = config(&text);
    let by_name = |n: &str| {
        c.peers
            .iter()
            .find(|p| p.name.as_deref() == Some(n))
            .unwrap()
    };
    let leaf = by_name("leaf1");
    assert_eq!(
        leaf.interface.map(|i| i.to_string()).as_deref(),
        Some("swp1")
    );
    assert!(leaf.peer_address.is_unspecified());
    assert_eq!(
        by_name("red").vrf.map(|v| v.to_string()).as_deref(),
        Some("red")
    );
    assert_eq!(
        by_name("blue").vrf.map(|v| v.to_string()).as_deref(),
        Some("blue")
    );
    assert_eq!(
        errors(&peer(
            "x",
            "  myASN: 64500\n  peerASN: 64501\n  interface: \"a b\"\n"
        )),
        vec![
            "BGPPeer metallb-system/x: spec.interface (line 9): invalid interface name \"a b\": 1 to 15 bytes, not . or .., without /, :, whitespace or NUL"
        ]
    );
}

#[test]
fn disable_mp_is_a_warning_and_l2_advertisements_are_ignored() {
    let text = docs(&[
        peer("r1", &format!("{PEER_BASE}  disableMP: true\n")),
        obj(
            "L2Advertisement",
            "v1beta1",
            "l2",
            "  ipAddressPools: [x]\n",
        ),
    ]);
    let objects = parse_documents(&text).unwrap();
    let t = translate(&objects, &Secrets::new());
    assert!(t.config.is_ok());
    let warnings: Vec<String> = t
        .warnings
        .iter()
        .map(|w| format!("{}: {}", w.object, w.message))
        .collect();
    assert_eq!(
        warnings,
        vec![
            "L2Advertisement metallb-system/l2: ignored: ferrolb announces over BGP only (L2Advertisement is MetalLB's layer 2 mode)",
            "BGPPeer metallb-system/r1: spec.disableMP is deprecated and ignored: use dualStackAddressFamily",
        ]
    );
}

fn secret(ty: &str, password: Option<&str>) -> SecretData {
    SecretData {
        secret_type: ty.into(),
        password: password.map(Into::into),
    }
}

#[test]
fn password_secret() {
    let text = peer(
        "r1",
        &format!("{PEER_BASE}  passwordSecret:\n    name: bgp\n    namespace: metallb-system\n"),
    );
    let ok = Secrets::from([(
        "bgp".to_string(),
        secret("kubernetes.io/basic-auth", Some("pw")),
    )]);
    let objects = parse_documents(&text).unwrap();
    let t = translate(&objects, &ok);
    assert_eq!(t.config.unwrap().peers[0].password.as_deref(), Some("pw"));
    assert_eq!(t.secrets_used, ["bgp".to_string()].into());
    let p = "BGPPeer metallb-system/r1: spec.passwordSecret.name (line 11)";
    assert_eq!(
        errors(&text),
        vec![format!(
            "{p}: Secret \"bgp\" not found in the configuration namespace"
        )]
    );
    let opaque = Secrets::from([("bgp".to_string(), secret("Opaque", Some("pw")))]);
    assert_eq!(
        errors_with(&text, &opaque),
        vec![format!(
            "{p}: Secret \"bgp\" has type \"Opaque\", expected kubernetes.io/basic-auth"
        )]
    );
    let nokey = Secrets::from([("bgp".to_string(), secret("kubernetes.io/basic-auth", None))]);
    assert_eq!(
        errors_with(&text, &nokey),
        vec![format!(
            "{p}: Secret \"bgp\" has no `password` key (or its value is not UTF-8)"
        )]
    );
    let long = Secrets::from([(
        "bgp".to_string(),
        secret("kubernetes.io/basic-auth", Some(&"x".repeat(81))),
    )]);
    assert_eq!(
        errors_with(&text, &long),
        vec![
            "BGPPeer metallb-system/r1: spec.passwordSecret (line 10): password is longer than 80 bytes, the TCP-MD5 key limit"
        ]
    );
    let both = peer(
        "r1",
        &format!("{PEER_BASE}  password: a\n  passwordSecret: {{name: bgp}}\n"),
    );
    assert_eq!(
        errors_with(&both, &ok),
        vec![
            "BGPPeer metallb-system/r1: spec.passwordSecret (line 11): password and passwordSecret are both set: use one"
        ]
    );
}

#[test]
fn bfd_ranges_and_community_aliases() {
    let text = obj(
        "BFDProfile",
        "v1beta1",
        "slow",
        "  detectMultiplier: 1\n  echoMode: true\n",
    );
    assert_eq!(
        errors(&text),
        vec![
            "BFDProfile metallb-system/slow: spec.detectMultiplier (line 7): 1 is out of range (2 to 255)",
            "BFDProfile metallb-system/slow: spec.echoMode (line 8): echo mode is not supported (ferrolb's BFD runs in asynchronous mode only); remove echo-mode or set it to false",
        ]
    );
    let text = obj(
        "Community",
        "v1beta1",
        "c",
        "  communities:\n  - name: x\n    value: 70000:1\n",
    );
    assert_eq!(
        errors(&text),
        vec![
            "Community metallb-system/c: spec.communities[0].value (line 9): invalid community \"70000:1\": \"70000\" is not a number from 0 to 65535"
        ]
    );
}

#[test]
fn envelope_errors() {
    let text = "apiVersion: metallb.io/v1\nkind: IPAddressPool\nmetadata: {name: a}\nspec: {}\n---\napiVersion: metallb.io/v1beta1\nkind: Pool\nmetadata: {name: b}\n";
    let e = parse_documents(text).unwrap_err();
    let got: Vec<String> = e.errors().iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        vec![
            "apiVersion (line 1): unknown apiVersion \"metallb.io/v1\" for IPAddressPool (expected metallb.io/v1beta1)",
            "kind (line 7): unknown kind \"Pool\" (expected IPAddressPool, BGPAdvertisement, BGPPeer, Community, BFDProfile, L2Advertisement or List)",
        ]
    );
    let text = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {namespace: x}\n";
    let e = parse_documents(text).unwrap_err();
    assert_eq!(
        e.to_string(),
        "metadata (line 3): missing required key `name`"
    );
    let dup = docs(&[
        pool("a", "  addresses: [203.0.113.0/28]\n"),
        pool("a", "  addresses: [203.0.113.0/28]\n"),
    ]);
    assert_eq!(
        errors(&dup)[0],
        "IPAddressPool metallb-system/a: line 9: defined more than once (the first definition is used for nothing: remove one)"
    );
}

#[test]
fn lists_and_ignored_metadata() {
    let text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: metallb.io/v1beta1\n  kind: IPAddressPool\n  metadata:\n    name: a\n    uid: x\n    annotations: {a: b}\n    labels: {tier: gold}\n  spec:\n    addresses: [203.0.113.0/28]\n  status: {assignedIPv4: 1}\n";
    let objects = parse_documents(text).unwrap();
    assert_eq!(
        objects[0].id,
        ObjectId {
            kind: Kind::IpAddressPool,
            namespace: String::new(),
            name: "a".into()
        }
    );
    assert_eq!(
        objects[0].labels.get("tier").map(String::as_str),
        Some("gold")
    );
}

#[test]
fn json_objects_have_no_lines() {
    let json = r#"{"apiVersion":"metallb.io/v1beta1","kind":"IPAddressPool","metadata":{"name":"p","namespace":"metallb-system","uid":"1"},"spec":{"addresses":["203.0.113.0/28","bad"]}}"#;
    let o = parse_object_json(json).unwrap();
    let e = translate(&[o], &Secrets::new()).config.unwrap_err();
    assert_eq!(
        e.to_string(),
        "IPAddressPool metallb-system/p: spec.addresses[1]: invalid CIDR \"bad\""
    );
    let e = parse_object_json(
        r#"{"apiVersion":"metallb.io/v1beta1","kind":"X","metadata":{"name":"p"}}"#,
    )
    .unwrap_err();
    assert_eq!(e.errors()[0].line, 0);
}

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

/// What a ConfigMap configuration becomes after convert and translate: peers are named,
/// ferrolb-only settings are gone.
fn expected_after_round_trip(cfg: &Config) -> Config {
    let mut c = cfg.clone();
    for (i, p) in c.peers.iter_mut().enumerate() {
        p.name.get_or_insert_with(|| format!("peer{}", i + 1));
    }
    for pool in &mut c.address_pools {
        pool.announce_from = Default::default();
        for ad in &mut pool.bgp_advertisements {
            *ad = ferrolb_config::BgpAdvertisement {
                weighted_ecmp: false,
                link_bandwidth_per_endpoint: ferrolb_config::DEFAULT_BANDWIDTH_PER_ENDPOINT,
                allowed_service_communities: vec![],
                allowed_service_localprefs: vec![],
                allowed_service_as_path_prepends: vec![],
                ..ad.clone()
            };
        }
        if pool.bgp_advertisements == [Default::default()] {
            pool.bgp_advertisements.clear();
        }
    }
    c
}

#[test]
fn example_configmaps_round_trip() {
    let mut files: Vec<_> = std::fs::read_dir(repo("config"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "yaml")
                && !p.to_string_lossy().ends_with("-crds.yaml")
        })
        .collect();
    files.sort();
    assert!(files.len() >= 6);
    for f in files {
        let cfg = load(&std::fs::read_to_string(&f).unwrap()).unwrap();
        let conv = convert(&cfg, "metallb-system");
        let back = config(&conv.yaml);
        assert_eq!(
            back,
            expected_after_round_trip(&cfg),
            "{}:\n{}",
            f.display(),
            conv.yaml
        );
    }
}

#[test]
fn seed_crds_is_the_conversion_of_the_seed_configmap() {
    let cfg = load(&std::fs::read_to_string(repo("config/seed-configmap.yaml")).unwrap()).unwrap();
    let conv = convert(&cfg, "metallb-system");
    assert!(conv.report.is_empty(), "{:?}", conv.report);
    let file = std::fs::read_to_string(repo("config/seed-crds.yaml")).unwrap();
    let body: String = file
        .lines()
        .skip_while(|l| l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        body, conv.yaml,
        "regenerate config/seed-crds.yaml with `ferrolb config convert`"
    );
}

#[test]
fn ferrolb_only_settings_are_reported() {
    let cfg = Config::from_yaml(
        "address-pools:\n- name: a\n  protocol: bgp\n  addresses: [203.0.113.0/28]\n  announce-from: all-nodes\n  bgp-advertisements:\n  - weighted-ecmp: true\n",
    )
    .unwrap();
    let conv = convert(&cfg, "ns");
    assert_eq!(
        conv.report,
        vec![
            "address-pools[0] (pool \"a\").announce-from: no MetalLB equivalent (a ferrolb extension); left out",
            "address-pools[0] (pool \"a\").bgp-advertisements[0].weighted-ecmp: no MetalLB equivalent (a ferrolb extension); left out",
        ]
    );
}

#[test]
fn known_fields_are_listed() {
    let kinds: Vec<&str> = metallb::known_fields().map(|(k, _)| k).collect();
    assert!(kinds.contains(&"BGPPeer") && kinds.contains(&"IPAddressPool"));
    let unsupported: Vec<_> = metallb::unsupported_fields().collect();
    assert!(!unsupported.iter().any(|(_, f)| *f == "serviceAllocation"));
    let allocation = metallb::known_fields().find(|(k, _)| *k == "ServiceAllocation");
    assert_eq!(
        allocation.map(|(_, f)| f.to_vec()),
        Some(vec![
            "priority",
            "namespaces",
            "namespaceSelectors",
            "serviceSelectors"
        ])
    );
    assert!(unsupported.is_empty(), "{unsupported:?}");
    let peer = metallb::known_fields()
        .find(|(k, _)| *k == "BGPPeer")
        .unwrap()
        .1;
    assert!(peer.contains(&"interface") && peer.contains(&"vrf"));
    assert!(!unsupported.contains(&("BGPPeer", "dynamicASN")));
    assert!(!unsupported.contains(&("BGPPeer", "localASN")));
}

/// Of two overlapping pools (or duplicate peers) read from the API server, the newer object is
/// blamed, whatever the names' order: an existing pool never reports a problem a new one made.
#[test]
fn the_newer_of_two_conflicting_objects_is_blamed() {
    let object = |kind: &str, version: &str, name: &str, created: &str, spec: &str| {
        parse_object_json(&format!(
            r#"{{"apiVersion":"metallb.io/{version}","kind":"{kind}","metadata":{{"name":"{name}","namespace":"metallb-system","creationTimestamp":"{created}"}},"spec":{spec}}}"#
        ))
        .unwrap()
    };
    let peer = r#"{"myASN":64500,"peerASN":64501,"peerAddress":"198.18.0.1"}"#;
    let objects = vec![
        object(
            "IPAddressPool",
            "v1beta1",
            "a-new",
            "2026-12-06T10:00:00Z",
            r#"{"addresses":["203.0.113.5/32"]}"#,
        ),
        object(
            "IPAddressPool",
            "v1beta1",
            "z-old",
            "2026-01-01T10:00:00Z",
            r#"{"addresses":["203.0.113.0/28"]}"#,
        ),
        object(
            "BGPPeer",
            "v1beta2",
            "a-new-peer",
            "2026-12-06T10:00:00Z",
            peer,
        ),
        object(
            "BGPPeer",
            "v1beta2",
            "z-old-peer",
            "2026-01-01T10:00:00Z",
            peer,
        ),
    ];
    let errors = translate(&objects, &Secrets::new()).config.unwrap_err();
    let blamed: Vec<String> = errors
        .errors()
        .iter()
        .map(|e| {
            e.object
                .as_deref()
                .map(ToString::to_string)
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(
        blamed,
        [
            "BGPPeer metallb-system/a-new-peer",
            "IPAddressPool metallb-system/a-new"
        ],
        "{errors}"
    );
}

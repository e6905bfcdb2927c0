//! AS_PATH prepending in the decision: an advertisement's `as-path-prepend` on the nodes its
//! `node-selectors` select, the longest of several, and a Service's `ferrolb.io/bgp-as-path-prepend`
//! within its pool's `allowed-service-as-path-prepends`.

mod common;

use common::*;
use ferrolb_announce::*;
use ferrolb_config::{AsPathPrepend, Config};
use std::collections::BTreeMap;

/// Rack r1 prepends 3, every node also gets the plain advertisement with a community; pool
/// `both` has two prepends for every node; pool `locked` allows Services nothing.
const YAML: &str = "\
peers:
- peer-address: 198.18.0.1
  peer-asn: 65000
  my-asn: 65001
address-pools:
- name: racks
  protocol: bgp
  addresses: [203.0.113.0/28]
  bgp-advertisements:
  - as-path-prepend: {asn: 65001, count: 3}
    node-selectors:
    - match-labels: {rack: r1}
  - communities: [65001:7]
    allowed-service-as-path-prepends: [{asn: 65001, max-count: 5}]
- name: both
  protocol: bgp
  addresses: [203.0.113.16/28]
  bgp-advertisements:
  - as-path-prepend: {asn: 65001, count: 2}
  - as-path-prepend: {asn: 65002, count: 2}
    aggregation-length: 32
    localpref: 120
- name: locked
  protocol: bgp
  addresses: [198.51.100.0/28]
";

fn on_rack(name: &str, rack: &str) -> Node {
    let mut n = node(name);
    n.labels.insert("rack".into(), rack.into());
    n
}

fn p(asn: u32, count: u8) -> Option<AsPathPrepend> {
    Some(AsPathPrepend { asn, count })
}

/// The prepend of each Service's /32 on `node`, after the per-Service attributes, for Services
/// `(key, address, prepend annotation)`, each with one ready endpoint on `node`.
fn prepends(node: &Node, services: &[(&str, &str, Option<&str>)]) -> Vec<Option<AsPathPrepend>> {
    let config = Config::from_yaml(YAML).unwrap();
    let ac = AnnounceConfig::from_config(&config, node);
    let inputs: Vec<Service> = services
        .iter()
        .map(|(key, addr, _)| service(key, &[addr], vec![ready(&node.name)]))
        .collect();
    let mut decision = decide(node, &inputs, &ac);
    let annotations: Vec<(String, BTreeMap<String, String>)> = services
        .iter()
        .map(|(key, _, a)| {
            let a = a.map(|v| (AS_PATH_PREPEND_ANNOTATION.to_owned(), v.to_owned()));
            (key.to_string(), a.into_iter().collect())
        })
        .collect();
    let accepted = service_attributes::accepted_service_attributes(
        &decision,
        &ac,
        &config.bgp_communities,
        annotations.iter().map(|(k, a)| (k.clone(), a)),
    );
    apply_service_attributes(&mut decision, &accepted);
    services
        .iter()
        .map(|(_, addr, _)| {
            decision.routes[&net(&format!("{addr}/32"))]
                .attributes
                .as_path_prepend
        })
        .collect()
}

#[test]
fn an_advertisement_prepends_on_the_nodes_it_selects_only() {
    let svc = &[("a/web", "203.0.113.5", None)];
    assert_eq!(prepends(&on_rack("node-1", "r1"), svc), [p(65001, 3)]);
    assert_eq!(prepends(&on_rack("node-2", "r2"), svc), [None]);
    assert_eq!(prepends(&node("node-3"), svc), [None]);
}

#[test]
fn the_prepend_travels_with_the_other_attributes_of_the_route() {
    let n = on_rack("node-1", "r1");
    let config = Config::from_yaml(YAML).unwrap();
    let ac = AnnounceConfig::from_config(&config, &n);
    let d = decide(
        &n,
        &[service("a/web", &["203.0.113.5"], vec![ready("node-1")])],
        &ac,
    );
    assert_eq!(
        d.routes[&net("203.0.113.5/32")].attributes,
        RouteAttributes {
            local_pref: None,
            communities: [Community((65001 << 16) | 7)].into(),
            large_communities: Default::default(),
            as_path_prepend: p(65001, 3),
        }
    );
}

#[test]
fn of_two_advertisements_the_longer_prepend_wins_then_the_higher_as() {
    let svc = &[("a/web", "203.0.113.20", None)];
    assert_eq!(prepends(&node("node-3"), svc), [p(65002, 2)]);
    assert_eq!(longest_prepend(p(65001, 3), p(65002, 2)), p(65001, 3));
    assert_eq!(longest_prepend(p(65002, 2), p(65001, 3)), p(65001, 3));
    assert_eq!(longest_prepend(None, p(65001, 1)), p(65001, 1));
    assert_eq!(longest_prepend(p(65001, 1), None), p(65001, 1));
    assert_eq!(longest_prepend(None, None), None);
}

#[test]
fn a_services_allowed_prepend_applies_unless_the_nodes_is_longer() {
    let ask = |v| {
        [
            ("a/web", "203.0.113.5", Some(v)),
            ("a/plain", "203.0.113.6", None),
        ]
    };
    let r2 = on_rack("node-2", "r2");
    let r1 = on_rack("node-1", "r1");
    assert_eq!(prepends(&r2, &ask("65001:2")), [p(65001, 2), None]);
    assert_eq!(prepends(&r2, &ask("65001:5")), [p(65001, 5), None]);
    // Rack r1 prepends 3 already: 2 changes nothing there, 5 lengthens it.
    assert_eq!(prepends(&r1, &ask("65001:2")), [p(65001, 3), p(65001, 3)]);
    assert_eq!(prepends(&r1, &ask("65001:5")), [p(65001, 5), p(65001, 3)]);
}

#[test]
fn a_refused_prepend_leaves_the_pools_and_says_why() {
    let r2 = on_rack("node-2", "r2");
    for refused in ["65001:6", "65000:1", "65001:0", "65001", "x:1"] {
        let svc = &[("a/web", "203.0.113.5", Some(refused))];
        assert_eq!(prepends(&r2, svc), [None], "{refused}");
    }
    let config = Config::from_yaml(YAML).unwrap();
    let ac = AnnounceConfig::from_config(&config, &r2);
    let pool = |name: &str| ac.pools.iter().find(|p| p.name == name).unwrap();
    let check = |pool_name: &str, v: &str| {
        let a = [(AS_PATH_PREPEND_ANNOTATION.to_owned(), v.to_owned())].into();
        service_attributes(&a, pool(pool_name), &config.bgp_communities)
    };
    let r = check("racks", "65001:6").unwrap_err();
    assert_eq!(r.reason(), "AsPathPrependNotAllowed");
    assert_eq!(
        r.message(),
        "ferrolb.io/bgp-as-path-prepend: 65001:6 is not in allowed-service-as-path-prepends of \
         pool \"racks\"; announcing with the pool's attributes instead"
    );
    let r = check("racks", "65001:11").unwrap_err();
    assert_eq!(r.reason(), "InvalidAsPathPrepend");
    assert_eq!(
        r.message(),
        "ferrolb.io/bgp-as-path-prepend: \"65001:11\": the count must be 1 to 10; announcing with \
         the pool's attributes instead"
    );
    assert_eq!(
        check("locked", "65001:1").unwrap_err().reason(),
        "AsPathPrependNotAllowed"
    );
    assert_eq!(
        check("racks", "65001:5").unwrap(),
        ServiceAttributes {
            as_path_prepend: p(65001, 5),
            ..ServiceAttributes::default()
        }
    );
}

#[test]
fn the_incremental_state_agrees_with_the_full_decision() {
    let config = Config::from_yaml(YAML).unwrap();
    let n = on_rack("node-1", "r1");
    let state_config = StateConfig {
        announce: AnnounceConfig::from_config(&config, &n),
        aliases: config.bgp_communities.clone(),
    };
    let annotations: BTreeMap<String, String> =
        [(AS_PATH_PREPEND_ANNOTATION.to_owned(), "65001:4".to_owned())].into();
    let input = ServiceInput {
        service: service("a/web", &["203.0.113.5"], vec![ready("node-1")]),
        annotations,
    };
    let state = DecisionState::new(n, state_config, [input.clone()]);
    let why = state.explanation(&input);
    assert_eq!(
        why.routes[0].to_string(),
        "203.0.113.5/32 (communities 65001:7, as-path-prepend 65001:4)"
    );
    assert_eq!(
        state.decision().routes[&net("203.0.113.5/32")]
            .attributes
            .as_path_prepend,
        p(65001, 4)
    );
}

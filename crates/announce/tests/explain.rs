//! `explain`: the words a user reads for one Service.

mod common;

use common::*;
use ferrolb_announce::*;

#[test]
fn an_announced_service_lists_routes_peers_and_reasons() {
    let mut cfg = config();
    cfg.pools[0].advertisements = vec![Advertisement {
        local_pref: Some(200),
        communities: vec![Community(0xffff_ff02)],
        ..Advertisement::default()
    }];
    cfg.peers[1].selects_node = false;
    let svc = service(
        "default/whoami",
        &["203.0.113.5"],
        vec![ready("node-1"), ready("node-1"), ready("node-3")],
    );
    let d = decide(&node("node-1"), &[svc], &cfg);
    assert_eq!(
        explain(&d, "default/whoami"),
        "\
Service default/whoami on node node-1: announced
  routes:
    203.0.113.5/32 (local-pref 200, communities 65535:65282)
  to peers: 198.18.0.1
  local endpoints: 2
  because:
    + peer 198.18.0.1 selects this node
    * peer 198.18.0.2 does not select this node (node-selectors)
    * externalTrafficPolicy is Local
    + node-1 hosts 2 ready endpoints
    + IP 203.0.113.5 is in pool v4
"
    );
}

#[test]
fn a_service_not_announced_shows_what_blocks_it() {
    let svc = service(
        "default/whoami",
        &["203.0.113.5", "198.51.100.9"],
        vec![ready("node-1"), ready("node-3")],
    );
    let mut n = node("node-2");
    n.labels.insert(EXCLUDE_LABEL.into(), String::new());
    let d = decide(&n, &[svc], &config());
    assert_eq!(
        explain(&d, "default/whoami"),
        "\
Service default/whoami on node node-2: not announced
  because:
    - node is labelled node.kubernetes.io/exclude-from-external-load-balancers
    + peer 198.18.0.1 selects this node
    + peer 198.18.0.2 selects this node
    * externalTrafficPolicy is Local
    - no ready endpoint on this node (ready on node-1, node-3)
    + IP 203.0.113.5 is in pool v4
    - IP 198.51.100.9 is not in any configured pool
"
    );
}

#[test]
fn fallback_and_aggregation_are_explained() {
    let mut cfg = config();
    cfg.pools[0].advertisements = vec![Advertisement {
        aggregation_length: 28,
        ..Advertisement::default()
    }];
    let svc = service("default/web", &["203.0.113.5"], vec![terminating("node-1")]);
    let d = decide(&node("node-1"), &[svc], &cfg);
    assert_eq!(
        explain(&d, "default/web"),
        "\
Service default/web on node node-1: announced
  routes:
    203.0.113.0/28
  to peers: 198.18.0.1, 198.18.0.2
  local endpoints: 1
  because:
    + peer 198.18.0.1 selects this node
    + peer 198.18.0.2 selects this node
    * externalTrafficPolicy is Local
    * falling back to serving-terminating endpoints: the Service has no ready endpoint anywhere
    + node-1 hosts 1 serving-terminating endpoint
    + IP 203.0.113.5 is in pool v4
    * IP 203.0.113.5 is announced inside the aggregate 203.0.113.0/28
"
    );
}

#[test]
fn an_unknown_service_is_reported_as_unknown() {
    let d = decide(&node("node-1"), &[], &config());
    assert_eq!(
        explain(&d, "default/nope"),
        "Service default/nope: not known to node node-1: it does not exist, is not of type LoadBalancer, or is not in the cache yet\n"
    );
}

#[test]
fn the_explanation_is_data_whose_text_is_explain_and_which_serializes_to_json() {
    let mut cfg = config();
    cfg.pools[0].advertisements = vec![Advertisement {
        local_pref: Some(200),
        communities: vec![Community(0xffff_ff02)],
        ..Advertisement::default()
    }];
    cfg.peers[1].selects_node = false;
    let svc = service(
        "default/whoami",
        &["203.0.113.5"],
        vec![ready("node-1"), ready("node-3")],
    );
    let d = decide(&node("node-1"), &[svc], &cfg);
    let e = explanation(&d, "default/whoami").unwrap();
    assert_eq!(e.to_string(), explain(&d, "default/whoami"));
    assert_eq!(
        serde_json::to_value(&e).unwrap(),
        serde_json::json!({
            "service": "default/whoami",
            "node": "node-1",
            "announced": true,
            "routes": [{
                "prefix": "203.0.113.5/32",
                "local_pref": 200,
                "communities": ["65535:65282"],
                "large_communities": []
            }],
            "peers": ["198.18.0.1"],
            "local_endpoints": 1,
            "reasons": [
                {"effect": "allows", "text": "peer 198.18.0.1 selects this node"},
                {"effect": "note", "text": "peer 198.18.0.2 does not select this node (node-selectors)"},
                {"effect": "note", "text": "externalTrafficPolicy is Local"},
                {"effect": "allows", "text": "node-1 hosts 1 ready endpoint"},
                {"effect": "allows", "text": "IP 203.0.113.5 is in pool v4"}
            ]
        })
    );
    assert_eq!(explanation(&d, "default/other"), None);
    assert_eq!(
        explain(&d, "default/other"),
        format!("{}\n", not_known("default/other", "node-1"))
    );
}

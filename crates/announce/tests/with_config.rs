//! The decision driven by a real ferrolb configuration (MetalLB v0.12 YAML).

mod common;

use common::*;
use ferrolb_announce::*;
use ferrolb_config::Config;

const YAML: &str = "\
peers:
- peer-address: 198.18.0.1
  peer-asn: 64512
  my-asn: 64512
  node-selectors:
  - match-expressions:
    - key: ferrolb.io/no-bgp
      operator: DoesNotExist
bgp-communities:
  no-advertise: 65535:65282
address-pools:
- name: public-pool
  protocol: bgp
  addresses:
  - 203.0.113.0/28
  - 2001:db8:1::/124
  bgp-advertisements:
  - localpref: 200
    communities:
    - no-advertise
";

fn decide_on(node: &Node, services: &[Service]) -> AnnounceDecision {
    let config = Config::from_yaml(YAML).unwrap();
    decide(node, services, &AnnounceConfig::from_config(&config, node))
}

/// The seed's whoami scenario: three replicas on three nodes, then scaled to one.
#[test]
fn whoami_is_announced_from_exactly_the_nodes_with_replicas() {
    let nodes = ["node-1", "node-2", "node-3"].map(node);
    let whoami = |eps| service("default/whoami", &["203.0.113.5", "2001:db8:1::5"], eps);

    let three = [whoami(vec![
        ready("node-1"),
        ready("node-2"),
        ready("node-3"),
    ])];
    for n in &nodes {
        let d = decide_on(n, &three);
        assert_eq!(prefixes(&d), ["203.0.113.5/32", "2001:db8:1::5/128"]);
        assert_eq!(
            d.selected_peers().collect::<Vec<_>>(),
            [peer_key("198.18.0.1")]
        );
        let attrs = &d.routes[&net("203.0.113.5/32")].attributes;
        assert_eq!(attrs.local_pref, Some(200));
        assert_eq!(
            attrs.communities.iter().copied().collect::<Vec<_>>(),
            [Community(0xffff_ff02)]
        );
    }

    let one = [whoami(vec![ready("node-2")])];
    let announcing: Vec<&str> = nodes
        .iter()
        .filter(|n| !decide_on(n, &one).routes.is_empty())
        .map(|n| n.name.as_str())
        .collect();
    assert_eq!(announcing, ["node-2"]);

    for n in &nodes {
        assert!(decide_on(n, &[]).routes.is_empty());
    }
}

#[test]
fn a_node_the_peer_does_not_select_announces_nothing() {
    let mut n = node("node-1");
    n.labels.insert("ferrolb.io/no-bgp".into(), String::new());
    let d = decide_on(
        &n,
        &[service(
            "default/whoami",
            &["203.0.113.5"],
            vec![ready("node-1")],
        )],
    );
    assert!(d.routes.is_empty());
    assert_eq!(
        explain(&d, "default/whoami"),
        "\
Service default/whoami on node node-1: not announced
  because:
    * peer 198.18.0.1 does not select this node (node-selectors)
    - no BGP peer selects this node
    * externalTrafficPolicy is Local
    + node-1 hosts 1 ready endpoint
    + IP 203.0.113.5 is in pool public-pool
"
    );
}

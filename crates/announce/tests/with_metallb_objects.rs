//! The decision driven by MetalLB objects (`metallb.io` YAML, translated by ferrolb-config): the
//! per-advertisement selections reach the routes end to end.

mod common;

use common::*;
use ferrolb_announce::*;
use ferrolb_config::metallb::{Secrets, parse_documents, translate};

const OBJECTS: &str = "\
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: tor, namespace: metallb-system}
spec: {myASN: 64512, peerASN: 64512, peerAddress: 198.18.0.1}
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: lab-pool, namespace: metallb-system, labels: {tier: lab}}
spec: {addresses: [198.51.100.10-198.51.100.14]}
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: other-pool, namespace: metallb-system, labels: {tier: other}}
spec: {addresses: [198.51.100.20-198.51.100.24]}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: by-label, namespace: metallb-system}
spec:
  ipAddressPoolSelectors:
  - matchLabels: {tier: lab}
  serviceSelectors:
  - matchLabels: {announce: \"yes\"}
";

fn decide_for(services: &[Service]) -> AnnounceDecision {
    let objects = parse_documents(OBJECTS).unwrap();
    let config = translate(&objects, &Secrets::new()).config.unwrap();
    let node = node("node-1");
    decide(
        &node,
        services,
        &AnnounceConfig::from_config(&config, &node),
    )
}

#[test]
fn service_and_pool_selectors_choose_exactly_the_announced_services() {
    let mut labelled = service("default/c", &["198.51.100.10"], vec![ready("node-1")]);
    labelled.labels = vec![("announce".into(), "yes".into())];
    let unlabelled = service("default/d", &["198.51.100.11"], vec![ready("node-1")]);
    let other_pool = service("default/e", &["198.51.100.20"], vec![ready("node-1")]);
    let d = decide_for(&[labelled, unlabelled, other_pool]);
    let announced: Vec<String> = d.routes.keys().map(ToString::to_string).collect();
    assert_eq!(announced, ["198.51.100.10/32"]);
    assert!(!d.services["default/d"].announce);
    assert!(!d.services["default/e"].announce);
}

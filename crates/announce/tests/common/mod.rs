//! Builders shared by the integration tests.
#![allow(dead_code)]

use ferrolb_announce::*;
use std::collections::BTreeMap;
use std::net::IpAddr;

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn net(s: &str) -> ipnet::IpNet {
    s.parse().unwrap()
}

pub fn node(name: &str) -> Node {
    Node {
        name: name.into(),
        labels: BTreeMap::new(),
        network_unavailable: false,
    }
}

pub fn peer(addr: &str, selects_node: bool) -> Peer {
    Peer::new(peer_key(addr), selects_node)
}

pub fn peer_key(addr: &str) -> PeerKey {
    PeerKey {
        address: ip(addr),
        port: 179,
        device: None,
    }
}

pub fn pool(name: &str, cidrs: &[&str]) -> Pool {
    Pool {
        name: name.into(),
        addresses: cidrs.iter().map(|c| net(c).into()).collect(),
        advertisements: Vec::new(),
        announce_from: AnnounceFrom::NodesWithEndpoints,
        announced: true,
    }
}

/// Pools `v4` (203.0.113.0/24) and `v6` (2001:db8:1::/120), peers 198.18.0.1 and
/// 198.18.0.2, both selecting the node.
pub fn config() -> AnnounceConfig {
    AnnounceConfig {
        pools: vec![
            pool("v4", &["203.0.113.0/24"]),
            pool("v6", &["2001:db8:1::/120"]),
        ],
        peers: vec![peer("198.18.0.1", true), peer("198.18.0.2", true)],
    }
}

pub fn ready(node: &str) -> Endpoint {
    Endpoint {
        node_name: Some(node.into()),
        ready: true,
        serving: true,
        terminating: false,
    }
}

/// Starting, not yet ready.
pub fn starting(node: &str) -> Endpoint {
    Endpoint {
        node_name: Some(node.into()),
        ready: false,
        serving: false,
        terminating: false,
    }
}

/// Terminating but still serving (a rolling update's old pod).
pub fn terminating(node: &str) -> Endpoint {
    Endpoint {
        node_name: Some(node.into()),
        ready: false,
        serving: true,
        terminating: true,
    }
}

/// Terminating and no longer serving.
pub fn dying(node: &str) -> Endpoint {
    Endpoint {
        node_name: Some(node.into()),
        ready: false,
        serving: false,
        terminating: true,
    }
}

pub fn service(key: &str, ips: &[&str], endpoints: Vec<Endpoint>) -> Service {
    Service {
        key: key.into(),
        ingress_ips: ips.iter().map(|s| ip(s)).collect(),
        traffic_policy: TrafficPolicy::Local,
        requested_pool: None,
        labels: Default::default(),
        ours: true,
        endpoints,
    }
}

/// The announced prefixes, as strings, sorted.
pub fn prefixes(d: &AnnounceDecision) -> Vec<String> {
    d.routes.keys().map(|p| p.to_string()).collect()
}

/// The nodes of the random clusters of the property tests.
pub const NODES: [&str; 3] = ["node-1", "node-2", "node-3"];

/// A random endpoint, on one of [`NODES`] (or none) with random conditions.
pub fn endpoint_strategy() -> impl proptest::strategy::Strategy<Value = Endpoint> {
    use proptest::prelude::*;
    (
        prop::option::weighted(0.9, 0..NODES.len()),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(n, ready, serving, terminating)| Endpoint {
            node_name: n.map(|i| NODES[i].into()),
            ready,
            serving,
            terminating,
        })
}

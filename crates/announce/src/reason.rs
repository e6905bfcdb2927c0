//! Why a node does or does not announce a Service, one [`Reason`] per fact, rendered in words.

use crate::input::{EXCLUDE_LABEL, PeerKey, TrafficPolicy};
use ipnet::IpNet;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

/// At most this many node names are kept in [`Reason::NoReadyHere`] and
/// [`Reason::NoServingHere`]; the rest are counted.
pub const NAMED_NODES: usize = 8;

/// How a [`Reason`] weighs on the decision (in JSON: `allows`, `blocks`, `note`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// The fact allows announcing.
    Allows,
    /// The fact prevents announcing (the whole Service, or the IP it names).
    Blocks,
    /// Context only.
    Note,
}

/// One fact behind an announce decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The node carries [`EXCLUDE_LABEL`].
    NodeExcluded,
    /// The node's `NetworkUnavailable` condition is true.
    NodeNetworkUnavailable,
    /// No BGP peer is configured at all.
    NoPeersConfigured,
    /// Peers are configured, but none selects the node.
    NoPeerSelectsNode,
    /// This peer's node-selectors select the node.
    PeerSelectsNode {
        /// The peer.
        peer: PeerKey,
    },
    /// This peer's node-selectors do not select the node.
    PeerDoesNotSelectNode {
        /// The peer.
        peer: PeerKey,
    },
    /// The Service belongs to another load balancer implementation (`loadBalancerClass`).
    NotOurClass,
    /// The Service has no ingress IP yet.
    NoIngressIp,
    /// The IP is in a configured pool.
    IpInPool {
        /// The Service IP.
        ip: IpAddr,
        /// The pool containing it.
        pool: Arc<str>,
    },
    /// The IP is in no configured pool, so it is never announced.
    IpNotInPool {
        /// The Service IP.
        ip: IpAddr,
    },
    /// The IP is in another pool than the one the Service's annotation names.
    PoolAnnotationMismatch {
        /// The Service IP.
        ip: IpAddr,
        /// The pool the annotation names.
        requested: Arc<str>,
        /// The pool containing the IP (the one that applies).
        actual: Arc<str>,
    },
    /// The node hosts ready endpoints of the Service.
    ReadyHere {
        /// This node's name.
        node: Arc<str>,
        /// How many.
        count: u32,
    },
    /// The node hosts no ready endpoint, others do.
    NoReadyHere {
        /// Nodes hosting ready endpoints (sorted, unique, at most [`NAMED_NODES`]).
        ready_on: Vec<Arc<str>>,
        /// Further nodes hosting ready endpoints, not named.
        more_nodes: u32,
        /// Ready endpoints with no node name.
        without_node: u32,
    },
    /// No endpoint is ready anywhere, so serving (terminating) endpoints count instead.
    FallbackToServing,
    /// The node hosts serving (terminating) endpoints, used because none is ready anywhere.
    ServingHere {
        /// This node's name.
        node: Arc<str>,
        /// How many.
        count: u32,
    },
    /// Fallback applies, and the node hosts no serving endpoint, others do.
    NoServingHere {
        /// Nodes hosting serving endpoints (sorted, unique, at most [`NAMED_NODES`]).
        serving_on: Vec<Arc<str>>,
        /// Further nodes hosting serving endpoints, not named.
        more_nodes: u32,
        /// Serving endpoints with no node name.
        without_node: u32,
    },
    /// The Service has no ready and no serving endpoint anywhere.
    NoEndpoints,
    /// The pool announces from all nodes and the Service has usable endpoints somewhere.
    AnnounceFromAllNodes {
        /// The pool.
        pool: Arc<str>,
        /// Usable (ready, or serving under fallback) endpoints in the cluster.
        endpoints: u32,
    },
    /// The pool says `announce-from: all-nodes`, which cannot apply to a `Local` Service.
    AllNodesIgnoredForLocal {
        /// The pool.
        pool: Arc<str>,
    },
    /// The IP is announced inside an aggregate prefix.
    Aggregated {
        /// The Service IP.
        ip: IpAddr,
        /// The aggregate announced.
        prefix: IpNet,
    },
    /// An advertisement's aggregation length does not fit the IP's family; it is skipped.
    InvalidAggregationLength {
        /// The Service IP.
        ip: IpAddr,
        /// The pool.
        pool: Arc<str>,
        /// The configured length.
        length: u8,
    },
    /// The pool is not announced at all: no advertisement covers it (a MetalLB IPAddressPool
    /// that no BGPAdvertisement selects).
    PoolNotAdvertised {
        /// The pool.
        pool: Arc<str>,
    },
    /// Every advertisement of the pool limits itself to other nodes (`node-selectors`).
    NoAdvertisementSelectsNode {
        /// The pool.
        pool: Arc<str>,
    },
    /// Every advertisement of the pool that selects this node limits itself to other Services
    /// (`service-selectors` match none of the Service's labels).
    NoAdvertisementSelectsService {
        /// The pool.
        pool: Arc<str>,
    },
    /// An advertisement of the pool that applies to the Service goes only to the named peers.
    AdvertisementLimitedToPeers {
        /// The pool.
        pool: Arc<str>,
        /// The peer names the advertisement lists.
        peers: Vec<Arc<str>>,
    },
    /// The peer's session carries only its own address's family (`dualStackAddressFamily`
    /// false): routes of the other family are not sent to it.
    PeerSingleFamily {
        /// The peer.
        peer: PeerKey,
    },
    /// The Service's externalTrafficPolicy, for context.
    TrafficPolicy {
        /// The policy.
        policy: TrafficPolicy,
    },
}

impl Reason {
    /// Whether the fact allows, blocks, or only explains.
    pub fn effect(&self) -> Effect {
        use Reason::*;
        match self {
            NodeExcluded
            | NodeNetworkUnavailable
            | NoPeersConfigured
            | NoPeerSelectsNode
            | NotOurClass
            | NoIngressIp
            | IpNotInPool { .. }
            | NoReadyHere { .. }
            | NoServingHere { .. }
            | NoEndpoints
            | PoolNotAdvertised { .. }
            | NoAdvertisementSelectsNode { .. }
            | NoAdvertisementSelectsService { .. }
            | InvalidAggregationLength { .. } => Effect::Blocks,
            PeerSelectsNode { .. }
            | IpInPool { .. }
            | ReadyHere { .. }
            | ServingHere { .. }
            | AnnounceFromAllNodes { .. } => Effect::Allows,
            PeerDoesNotSelectNode { .. }
            | PoolAnnotationMismatch { .. }
            | FallbackToServing
            | AllNodesIgnoredForLocal { .. }
            | Aggregated { .. }
            | AdvertisementLimitedToPeers { .. }
            | PeerSingleFamily { .. }
            | TrafficPolicy { .. } => Effect::Note,
        }
    }
}

fn endpoints(count: u32) -> &'static str {
    if count == 1 { "endpoint" } else { "endpoints" }
}

fn write_where(
    f: &mut fmt::Formatter<'_>,
    state: &str,
    nodes: &[Arc<str>],
    more_nodes: u32,
    without: u32,
) -> fmt::Result {
    let mut parts: Vec<String> = Vec::new();
    if !nodes.is_empty() {
        let named: Vec<&str> = nodes.iter().map(|n| &**n).collect();
        let more = match more_nodes {
            0 => String::new(),
            1 => " and 1 more node".to_string(),
            n => format!(" and {n} more nodes"),
        };
        parts.push(format!("{state} on {}{more}", named.join(", ")));
    }
    if without > 0 {
        parts.push(format!(
            "{without} {state} {} without a node name",
            endpoints(without)
        ));
    }
    if !parts.is_empty() {
        write!(f, " ({})", parts.join("; "))?;
    }
    Ok(())
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Reason::*;
        match self {
            NodeExcluded => write!(f, "node is labelled {EXCLUDE_LABEL}"),
            NodeNetworkUnavailable => write!(f, "node condition NetworkUnavailable is true"),
            NoPeersConfigured => write!(f, "no BGP peer is configured"),
            NoPeerSelectsNode => write!(f, "no BGP peer selects this node"),
            PeerSelectsNode { peer } => write!(f, "peer {peer} selects this node"),
            PeerDoesNotSelectNode { peer } => {
                write!(f, "peer {peer} does not select this node (node-selectors)")
            }
            NotOurClass => write!(
                f,
                "the Service's loadBalancerClass belongs to another implementation"
            ),
            NoIngressIp => write!(f, "the Service has no ingress IP in its status yet"),
            IpInPool { ip, pool } => write!(f, "IP {ip} is in pool {pool}"),
            IpNotInPool { ip } => write!(f, "IP {ip} is not in any configured pool"),
            PoolAnnotationMismatch {
                ip,
                requested,
                actual,
            } => write!(
                f,
                "IP {ip} is in pool {actual}, not in the annotated pool {requested}; {actual}'s settings apply"
            ),
            ReadyHere { node, count } => {
                write!(f, "{node} hosts {count} ready {}", endpoints(*count))
            }
            NoReadyHere {
                ready_on,
                more_nodes,
                without_node,
            } => {
                write!(f, "no ready endpoint on this node")?;
                write_where(f, "ready", ready_on, *more_nodes, *without_node)
            }
            FallbackToServing => write!(
                f,
                "falling back to serving-terminating endpoints: the Service has no ready endpoint anywhere"
            ),
            ServingHere { node, count } => write!(
                f,
                "{node} hosts {count} serving-terminating {}",
                endpoints(*count)
            ),
            NoServingHere {
                serving_on,
                more_nodes,
                without_node,
            } => {
                write!(f, "no serving endpoint on this node")?;
                write_where(f, "serving", serving_on, *more_nodes, *without_node)
            }
            NoEndpoints => write!(f, "the Service has no ready or serving endpoint anywhere"),
            AnnounceFromAllNodes { pool, endpoints: n } => write!(
                f,
                "pool {pool} announces from all nodes (announce-from: all-nodes) and the Service has {n} usable {} in the cluster",
                endpoints(*n)
            ),
            AllNodesIgnoredForLocal { pool } => write!(
                f,
                "pool {pool} has announce-from: all-nodes, but externalTrafficPolicy is Local: only nodes with endpoints announce"
            ),
            Aggregated { ip, prefix } => {
                write!(f, "IP {ip} is announced inside the aggregate {prefix}")
            }
            InvalidAggregationLength { ip, pool, length } => write!(
                f,
                "pool {pool} has an advertisement with aggregation length {length}, invalid for IP {ip}; that advertisement is skipped"
            ),
            PoolNotAdvertised { pool } => write!(
                f,
                "pool {pool} has no BGPAdvertisement, so its IPs are not announced"
            ),
            NoAdvertisementSelectsNode { pool } => write!(
                f,
                "no BGPAdvertisement of pool {pool} selects this node (node-selectors)"
            ),
            NoAdvertisementSelectsService { pool } => write!(
                f,
                "no BGPAdvertisement of pool {pool} selects this Service (service-selectors)"
            ),
            AdvertisementLimitedToPeers { pool, peers } => {
                let names: Vec<&str> = peers.iter().map(|p| &**p).collect();
                write!(
                    f,
                    "a BGPAdvertisement of pool {pool} goes only to peers {}",
                    names.join(", ")
                )
            }
            PeerSingleFamily { peer } => {
                let family = if peer.address.is_ipv4() {
                    "IPv4"
                } else {
                    "IPv6"
                };
                write!(
                    f,
                    "peer {peer} gets only {family} routes (dualStackAddressFamily is false)"
                )
            }
            TrafficPolicy { policy } => write!(f, "externalTrafficPolicy is {policy}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_as_sentences() {
        let peer = PeerKey {
            address: "198.18.0.1".parse().unwrap(),
            port: 179,
            device: None,
        };
        let cases: Vec<(Reason, &str)> = vec![
            (
                Reason::ReadyHere {
                    node: "node-2".into(),
                    count: 2,
                },
                "node-2 hosts 2 ready endpoints",
            ),
            (
                Reason::ReadyHere {
                    node: "node-2".into(),
                    count: 1,
                },
                "node-2 hosts 1 ready endpoint",
            ),
            (
                Reason::NoReadyHere {
                    ready_on: vec!["node-1".into(), "node-3".into()],
                    more_nodes: 0,
                    without_node: 0,
                },
                "no ready endpoint on this node (ready on node-1, node-3)",
            ),
            (
                Reason::NoReadyHere {
                    ready_on: vec!["node-1".into()],
                    more_nodes: 0,
                    without_node: 2,
                },
                "no ready endpoint on this node (ready on node-1; 2 ready endpoints without a node name)",
            ),
            (
                Reason::NoServingHere {
                    serving_on: vec!["node-1".into(), "node-2".into()],
                    more_nodes: 7,
                    without_node: 0,
                },
                "no serving endpoint on this node (serving on node-1, node-2 and 7 more nodes)",
            ),
            (
                Reason::NodeExcluded,
                "node is labelled node.kubernetes.io/exclude-from-external-load-balancers",
            ),
            (
                Reason::IpNotInPool {
                    ip: "203.0.113.99".parse().unwrap(),
                },
                "IP 203.0.113.99 is not in any configured pool",
            ),
            (
                Reason::PeerDoesNotSelectNode { peer },
                "peer 198.18.0.1 does not select this node (node-selectors)",
            ),
            (
                Reason::FallbackToServing,
                "falling back to serving-terminating endpoints: the Service has no ready endpoint anywhere",
            ),
            (
                Reason::Aggregated {
                    ip: "203.0.113.5".parse().unwrap(),
                    prefix: "203.0.113.0/24".parse().unwrap(),
                },
                "IP 203.0.113.5 is announced inside the aggregate 203.0.113.0/24",
            ),
            (
                Reason::PoolNotAdvertised {
                    pool: "dark".into(),
                },
                "pool dark has no BGPAdvertisement, so its IPs are not announced",
            ),
            (
                Reason::NoAdvertisementSelectsNode { pool: "p".into() },
                "no BGPAdvertisement of pool p selects this node (node-selectors)",
            ),
            (
                Reason::NoAdvertisementSelectsService { pool: "p".into() },
                "no BGPAdvertisement of pool p selects this Service (service-selectors)",
            ),
            (
                Reason::AdvertisementLimitedToPeers {
                    pool: "p".into(),
                    peers: vec!["tor-a".into(), "tor-b".into()],
                },
                "a BGPAdvertisement of pool p goes only to peers tor-a, tor-b",
            ),
            (
                Reason::PeerSingleFamily { peer },
                "peer 198.18.0.1 gets only IPv4 routes (dualStackAddressFamily is false)",
            ),
        ];
        for (reason, text) in cases {
            assert_eq!(reason.to_string(), text);
        }
    }

    #[test]
    fn effects_classify_blocking_facts() {
        assert_eq!(Reason::NodeExcluded.effect(), Effect::Blocks);
        assert_eq!(Reason::FallbackToServing.effect(), Effect::Note);
        assert_eq!(
            Reason::ReadyHere {
                node: "n".into(),
                count: 1
            }
            .effect(),
            Effect::Allows
        );
    }
}

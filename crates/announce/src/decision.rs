//! The announce decision: which prefixes this node announces, with which attributes, to which
//! peers, and why.

use crate::input::{
    Advertisement, AnnounceConfig, AnnounceFrom, Community, EXCLUDE_LABEL, LargeCommunity, Node,
    PeerKey, Pool, Service, TrafficPolicy,
};
use crate::reason::Reason;
use ipnet::IpNet;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// The path attributes a route carries, merged from every advertisement that produced it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RouteAttributes {
    /// LOCAL_PREF; when advertisements producing the same prefix disagree, the highest wins.
    pub local_pref: Option<u32>,
    /// COMMUNITIES: the union over the advertisements.
    pub communities: BTreeSet<Community>,
    /// LARGE_COMMUNITIES: the union over the advertisements.
    pub large_communities: BTreeSet<LargeCommunity>,
}

impl RouteAttributes {
    fn merge(&mut self, adv: &Advertisement) {
        self.local_pref = match (self.local_pref, adv.local_pref) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.communities.extend(adv.communities.iter().copied());
        self.large_communities
            .extend(adv.large_communities.iter().copied());
    }
}

/// One prefix this node announces.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Route {
    /// Attributes to send with it.
    pub attributes: RouteAttributes,
    /// The announced Service IPs the prefix covers (one for a /32 or /128; the aggregate is
    /// announced while this is not empty).
    pub covered_ips: BTreeSet<IpAddr>,
    /// The Services (`namespace/name`) whose IPs it covers.
    pub services: BTreeSet<String>,
}

/// Whether one configured peer gets this node's routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerDecision {
    /// The peer.
    pub peer: PeerKey,
    /// Whether its node-selectors select this node (then it gets every route).
    pub selected: bool,
}

/// The decision for one Service.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceDecision {
    /// Whether this node announces at least one of the Service's IPs.
    pub announce: bool,
    /// Ready endpoints of the Service on this node, or serving (terminating) ones when the
    /// Service has no ready endpoint anywhere. The basis for a later link-bandwidth weight.
    pub local_endpoints: u32,
    /// The Service IPs this node announces.
    pub announced_ips: Vec<IpAddr>,
    /// The prefixes (keys of [`AnnounceDecision::routes`]) those IPs are announced in.
    pub prefixes: Vec<IpNet>,
    /// The Service-specific facts behind the decision; the node-wide ones are in
    /// [`AnnounceDecision::node_reasons`].
    pub reasons: Vec<Reason>,
}

/// Everything this node must announce, and why.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AnnounceDecision {
    /// This node's name.
    pub node: String,
    /// Node-wide facts: exclusion label, NetworkUnavailable, and each peer's selection.
    pub node_reasons: Vec<Reason>,
    /// Every configured peer, in configuration order, and whether it selects this node.
    pub peers: Vec<PeerDecision>,
    /// The prefixes to announce to every selected peer. Empty when the node may not announce.
    pub routes: BTreeMap<IpNet, Route>,
    /// One decision per Service, keyed `namespace/name`.
    pub services: BTreeMap<String, ServiceDecision>,
}

impl AnnounceDecision {
    /// The peers that select this node, each of which must be given [`Self::routes`].
    pub fn selected_peers(&self) -> impl Iterator<Item = PeerKey> + '_ {
        self.peers.iter().filter(|p| p.selected).map(|p| p.peer)
    }

    /// The routes `peer` must receive: all of [`Self::routes`] when it selects this node,
    /// `None` when it does not (or is not configured).
    pub fn routes_for(&self, peer: &PeerKey) -> Option<&BTreeMap<IpNet, Route>> {
        self.peers
            .iter()
            .any(|p| p.selected && p.peer == *peer)
            .then_some(&self.routes)
    }
}

/// Endpoint counts of one Service, seen from this node.
#[derive(Default)]
struct EndpointTally<'a> {
    ready_here: u32,
    serving_here: u32,
    ready_total: u32,
    serving_total: u32,
    ready_on: BTreeSet<&'a str>,
    serving_on: BTreeSet<&'a str>,
    ready_without_node: u32,
    serving_without_node: u32,
}

impl<'a> EndpointTally<'a> {
    fn count(node: &str, service: &'a Service) -> Self {
        let mut t = EndpointTally::default();
        for e in &service.endpoints {
            let here = e.node_name.as_deref() == Some(node);
            // kube-proxy's fallback set: serving and terminating, not ready.
            let fallback = !e.ready && e.serving && e.terminating;
            if e.ready {
                t.ready_total += 1;
                match e.node_name.as_deref() {
                    _ if here => t.ready_here += 1,
                    Some(n) => {
                        t.ready_on.insert(n);
                    }
                    None => t.ready_without_node += 1,
                }
            } else if fallback {
                t.serving_total += 1;
                match e.node_name.as_deref() {
                    _ if here => t.serving_here += 1,
                    Some(n) => {
                        t.serving_on.insert(n);
                    }
                    None => t.serving_without_node += 1,
                }
            }
        }
        t
    }

    /// Whether no endpoint is ready anywhere, so that serving ones are used.
    fn fallback(&self) -> bool {
        self.ready_total == 0 && self.serving_total > 0
    }

    /// Usable endpoints on this node.
    fn usable_here(&self) -> u32 {
        if self.fallback() {
            self.serving_here
        } else {
            self.ready_here
        }
    }

    /// Usable endpoints in the cluster.
    fn usable_total(&self) -> u32 {
        if self.fallback() {
            self.serving_total
        } else {
            self.ready_total
        }
    }

    /// The reason explaining the endpoints on this node (not for `all-nodes` pools).
    fn here_reason(&self, node: &str) -> Reason {
        let owned = |s: &BTreeSet<&str>| s.iter().map(|n| n.to_string()).collect();
        match (self.usable_total(), self.fallback(), self.usable_here()) {
            (0, _, _) => Reason::NoEndpoints,
            (_, false, 0) => Reason::NoReadyHere {
                ready_on: owned(&self.ready_on),
                without_node: self.ready_without_node,
            },
            (_, false, count) => Reason::ReadyHere {
                node: node.to_string(),
                count,
            },
            (_, true, 0) => Reason::NoServingHere {
                serving_on: owned(&self.serving_on),
                without_node: self.serving_without_node,
            },
            (_, true, count) => Reason::ServingHere {
                node: node.to_string(),
                count,
            },
        }
    }
}

/// Whether a pool's `announce-from: all-nodes` applies to a Service.
fn all_nodes_applies(pool: &Pool, service: &Service) -> bool {
    pool.announce_from == AnnounceFrom::AllNodes && service.traffic_policy == TrafficPolicy::Cluster
}

/// The prefix an advertisement announces for `ip`, or `None` when its length does not fit.
fn advertised_prefix(ip: IpAddr, adv: &Advertisement) -> Option<IpNet> {
    let len = match ip {
        IpAddr::V4(_) => adv.aggregation_length,
        IpAddr::V6(_) => adv.aggregation_length_v6,
    };
    IpNet::new(ip, len).ok().map(|n| n.trunc())
}

/// Decides what `node` announces.
///
/// Rules, for both `externalTrafficPolicy` values: a Service IP is announced when the node is
/// eligible (not labelled [`EXCLUDE_LABEL`], `NetworkUnavailable` not true), at least one peer
/// selects the node, the Service is ours, the IP is inside a configured pool, and the node
/// hosts a ready endpoint of the Service. When the Service has no ready endpoint anywhere,
/// serving-terminating endpoints take their place (as kube-proxy does). A pool with
/// `announce-from: all-nodes` makes every eligible node announce its `Cluster` Services while
/// they have any usable endpoint. Each of the pool's advertisements yields one prefix per IP
/// (the IP masked to the aggregation length); equal prefixes merge.
///
/// Pure and deterministic: the same inputs give the same decision.
pub fn decide(node: &Node, services: &[Service], config: &AnnounceConfig) -> AnnounceDecision {
    let mut node_reasons = Vec::new();
    if node.labels.contains_key(EXCLUDE_LABEL) {
        node_reasons.push(Reason::NodeExcluded);
    }
    if node.network_unavailable {
        node_reasons.push(Reason::NodeNetworkUnavailable);
    }
    let node_eligible = node_reasons.is_empty();
    if config.peers.is_empty() {
        node_reasons.push(Reason::NoPeersConfigured);
    }
    let peers: Vec<PeerDecision> = config
        .peers
        .iter()
        .map(|p| PeerDecision {
            peer: p.key,
            selected: p.selects_node,
        })
        .collect();
    for p in &peers {
        node_reasons.push(if p.selected {
            Reason::PeerSelectsNode { peer: p.peer }
        } else {
            Reason::PeerDoesNotSelectNode { peer: p.peer }
        });
    }
    let can_announce = node_eligible && peers.iter().any(|p| p.selected);

    let mut decision = AnnounceDecision {
        node: node.name.clone(),
        node_reasons,
        peers,
        routes: BTreeMap::new(),
        services: BTreeMap::new(),
    };
    for service in services {
        let sd = decide_service(
            &node.name,
            service,
            config,
            can_announce,
            &mut decision.routes,
        );
        decision.services.insert(service.key.clone(), sd);
    }
    decision
}

/// Decides one Service, adding its routes to `routes` when `can_announce`.
fn decide_service(
    node: &str,
    service: &Service,
    config: &AnnounceConfig,
    can_announce: bool,
    routes: &mut BTreeMap<IpNet, Route>,
) -> ServiceDecision {
    let mut sd = ServiceDecision::default();
    if !service.ours {
        sd.reasons.push(Reason::NotOurClass);
        return sd;
    }
    sd.reasons.push(Reason::TrafficPolicy {
        policy: service.traffic_policy,
    });
    if service.ingress_ips.is_empty() {
        sd.reasons.push(Reason::NoIngressIp);
    }

    let tally = EndpointTally::count(node, service);
    sd.local_endpoints = tally.usable_here();
    if tally.fallback() {
        sd.reasons.push(Reason::FallbackToServing);
    }

    let mut seen = BTreeSet::new();
    let ips: Vec<IpAddr> = service
        .ingress_ips
        .iter()
        .copied()
        .filter(|ip| seen.insert(*ip))
        .collect();
    let pools: Vec<Option<&Pool>> = ips.iter().map(|ip| config.pool_of(*ip)).collect();

    // Endpoint facts: the per-node rule matters unless every pooled IP is all-nodes.
    let needs_local_rule = pools.iter().all(Option::is_none)
        || pools
            .iter()
            .flatten()
            .any(|p| !all_nodes_applies(p, service));
    if needs_local_rule || tally.usable_total() == 0 {
        sd.reasons.push(tally.here_reason(node));
    }
    let mut noted_pools = BTreeSet::new();
    for pool in pools.iter().flatten() {
        if pool.announce_from != AnnounceFrom::AllNodes || !noted_pools.insert(pool.name.as_str()) {
            continue;
        }
        if service.traffic_policy == TrafficPolicy::Local {
            sd.reasons.push(Reason::AllNodesIgnoredForLocal {
                pool: pool.name.clone(),
            });
        } else if tally.usable_total() > 0 {
            sd.reasons.push(Reason::AnnounceFromAllNodes {
                pool: pool.name.clone(),
                endpoints: tally.usable_total(),
            });
        }
    }

    let default_ads = [Advertisement::default()];
    for (ip, pool) in ips.iter().copied().zip(pools) {
        let Some(pool) = pool else {
            sd.reasons.push(Reason::IpNotInPool { ip });
            continue;
        };
        sd.reasons.push(Reason::IpInPool {
            ip,
            pool: pool.name.clone(),
        });
        if let Some(requested) = &service.requested_pool
            && *requested != pool.name
        {
            sd.reasons.push(Reason::PoolAnnotationMismatch {
                ip,
                requested: requested.clone(),
                actual: pool.name.clone(),
            });
        }
        let endpoints_allow = tally.usable_here() > 0
            || (all_nodes_applies(pool, service) && tally.usable_total() > 0);
        if !(can_announce && endpoints_allow) {
            continue;
        }
        let ads: &[Advertisement] = if pool.advertisements.is_empty() {
            &default_ads
        } else {
            &pool.advertisements
        };
        let mut announced = false;
        for adv in ads {
            let Some(prefix) = advertised_prefix(ip, adv) else {
                sd.reasons.push(Reason::InvalidAggregationLength {
                    ip,
                    pool: pool.name.clone(),
                    length: match ip {
                        IpAddr::V4(_) => adv.aggregation_length,
                        IpAddr::V6(_) => adv.aggregation_length_v6,
                    },
                });
                continue;
            };
            let route = routes.entry(prefix).or_default();
            route.attributes.merge(adv);
            route.covered_ips.insert(ip);
            if !route.services.contains(&service.key) {
                route.services.insert(service.key.clone());
            }
            if prefix.prefix_len() < prefix.max_prefix_len() {
                let r = Reason::Aggregated { ip, prefix };
                if !sd.reasons.contains(&r) {
                    sd.reasons.push(r);
                }
            }
            if !sd.prefixes.contains(&prefix) {
                sd.prefixes.push(prefix);
            }
            announced = true;
        }
        if announced {
            sd.announced_ips.push(ip);
        }
    }
    sd.announce = !sd.announced_ips.is_empty();
    sd
}

//! The announce decision: which prefixes this node announces, with which attributes, to which
//! peers, and why.

pub(crate) use crate::contribution::{Contribution, applies_to, link_bandwidths, merge_routes};
use crate::endpoints::{EndpointTally, named_nodes, tally_reason};
use crate::input::{
    Advertisement, AnnounceConfig, AnnounceFrom, Community, EXCLUDE_LABEL, LargeCommunity, Node,
    Peer, PeerKey, Pool, Service, TrafficPolicy,
};
use crate::reason::Reason;
use ferrolb_bgp::wire::link_bandwidth_community_bps;
use ferrolb_config::AsPathPrepend;
use ipnet::IpNet;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

/// The path attributes a route carries, merged from every advertisement that produced it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RouteAttributes {
    /// LOCAL_PREF; when advertisements producing the same prefix disagree, the highest wins.
    pub local_pref: Option<u32>,
    /// COMMUNITIES: the union over the advertisements.
    pub communities: BTreeSet<Community>,
    /// LARGE_COMMUNITIES: the union over the advertisements.
    pub large_communities: BTreeSet<LargeCommunity>,
    /// AS_PATH prepending; when advertisements (or Services) producing the same prefix disagree,
    /// the longest wins (see [`longest_prepend`]).
    pub as_path_prepend: Option<AsPathPrepend>,
}

impl RouteAttributes {
    pub(crate) fn merge(&mut self, adv: &Advertisement) {
        self.local_pref = match (self.local_pref, adv.local_pref) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.communities.extend(adv.communities.iter().copied());
        self.large_communities
            .extend(adv.large_communities.iter().copied());
        self.as_path_prepend = longest_prepend(self.as_path_prepend, adv.as_path_prepend);
    }
}

/// The prepend a route gets when two sources ask for `a` and `b`: the one with more copies (then
/// the higher AS, so the result does not depend on order). An advertisement or Service that asks
/// for a prepend wants the path less preferred; one that asks for none must not cancel that.
pub fn longest_prepend(
    a: Option<AsPathPrepend>,
    b: Option<AsPathPrepend>,
) -> Option<AsPathPrepend> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if (y.count, y.asn) > (x.count, x.asn) {
            y
        } else {
            x
        }),
        (x, y) => x.or(y),
    }
}

/// One prefix this node announces.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Route {
    /// Attributes to send with it.
    pub attributes: RouteAttributes,
    /// The announced Service IPs the prefix covers, sorted and unique (one for a /32 or
    /// /128; an aggregate is announced while this is not empty). Which Services they belong
    /// to is in [`ServiceDecision::prefixes`].
    pub covered_ips: Vec<IpAddr>,
}

/// Which route table a peer gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PeerTable {
    /// None: the peer does not select this node.
    Unselected,
    /// [`AnnounceDecision::routes`]: every route (no advertisement or family filter leaves
    /// anything out for this peer).
    All,
    /// [`AnnounceDecision::tables`]`[i]`: the routes of the advertisements that apply to the
    /// peer, of the families its session carries.
    Class(usize),
}

/// Whether one configured peer gets this node's routes, and which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerDecision {
    /// The peer.
    pub peer: PeerKey,
    /// Whether its node-selectors select this node.
    pub selected: bool,
    /// The routes it gets. Peers that the same advertisements select and whose sessions carry
    /// the same families share one table.
    pub table: PeerTable,
}

/// The routes of one class of peers, when they differ from [`AnnounceDecision::routes`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RouteTable {
    /// The prefixes, with attributes merged over the advertisements that apply to the class.
    pub routes: BTreeMap<IpNet, Route>,
    /// Weighted ECMP: the link bandwidth of each weighted route (see
    /// [`AnnounceDecision::link_bandwidth`]).
    pub link_bandwidth: BTreeMap<IpNet, u64>,
}

/// One peer's routes, borrowed from the decision.
#[derive(Debug, Clone, Copy)]
pub struct RoutesView<'a> {
    /// The prefixes and their attributes.
    pub routes: &'a BTreeMap<IpNet, Route>,
    /// The link bandwidth of each weighted prefix.
    pub link_bandwidth: &'a BTreeMap<IpNet, u64>,
}

impl RoutesView<'_> {
    /// The extended communities to send with `prefix` where our AS is `my_asn`: the
    /// link-bandwidth community when the route is weighted, else none.
    pub fn extended_communities(&self, prefix: &IpNet, my_asn: u32) -> Vec<[u8; 8]> {
        self.link_bandwidth
            .get(prefix)
            .map(|bps| vec![link_bandwidth_community_bps(my_asn, *bps)])
            .unwrap_or_default()
    }
}

/// The decision for one Service.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceDecision {
    /// Whether this node announces at least one of the Service's IPs.
    pub announce: bool,
    /// Ready endpoints of the Service on this node, or serving (terminating) ones when the
    /// Service has no ready endpoint anywhere. The basis of the link-bandwidth weight.
    pub local_endpoints: u32,
    /// Weighted ECMP: the bandwidth, in bits per second, this node advertises for the
    /// Service's host routes (`local_endpoints` × the advertisement's bandwidth per endpoint).
    /// None for `Cluster` Services, unannounced ones, and pools without `weighted-ecmp`.
    pub link_bandwidth: Option<u64>,
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
    /// Every prefix this node announces, with attributes merged over every advertisement that
    /// produces it: what peers of [`PeerTable::All`] get. Empty when the node may not announce.
    pub routes: BTreeMap<IpNet, Route>,
    /// The route tables of peer classes that get less than [`Self::routes`] (advertisements
    /// limited to named peers, sessions of one address family); empty in the common case.
    pub tables: Vec<RouteTable>,
    /// One decision per Service, keyed `namespace/name`.
    pub services: BTreeMap<String, ServiceDecision>,
    /// Weighted ECMP: the link bandwidth, in bits per second, of each weighted route (a key of
    /// [`Self::routes`]): the sum over the Services sharing the prefix. Encode it per peer with
    /// [`Self::extended_communities`].
    pub link_bandwidth: BTreeMap<IpNet, u64>,
}

impl AnnounceDecision {
    /// The peers that select this node, each of which must be given [`Self::routes_for`] it.
    pub fn selected_peers(&self) -> impl Iterator<Item = PeerKey> + '_ {
        self.peers.iter().filter(|p| p.selected).map(|p| p.peer)
    }

    /// Every Service IP this node announces, sorted and unique (for example, the addresses to
    /// keep on a VIP interface).
    pub fn announced_ips(&self) -> Vec<IpAddr> {
        let mut ips: Vec<IpAddr> = self
            .routes
            .values()
            .flat_map(|r| r.covered_ips.iter().copied())
            .collect();
        ips.sort_unstable();
        ips.dedup();
        ips
    }

    /// The extended communities to send with `prefix` (of [`Self::routes`]) to a peer for
    /// which our AS is `my_asn`: the link-bandwidth community when the route is weighted.
    pub fn extended_communities(&self, prefix: &IpNet, my_asn: u32) -> Vec<[u8; 8]> {
        self.view(PeerTable::All)
            .map(|v| v.extended_communities(prefix, my_asn))
            .unwrap_or_default()
    }

    /// Which table `peer` gets; `None` when it is not configured.
    pub fn table_of(&self, peer: &PeerKey) -> Option<PeerTable> {
        self.peers.iter().find(|p| p.peer == *peer).map(|p| p.table)
    }

    /// The routes of `table`; `None` for [`PeerTable::Unselected`] (or an unknown class).
    pub fn view(&self, table: PeerTable) -> Option<RoutesView<'_>> {
        match table {
            PeerTable::Unselected => None,
            PeerTable::All => Some(RoutesView {
                routes: &self.routes,
                link_bandwidth: &self.link_bandwidth,
            }),
            PeerTable::Class(i) => self.tables.get(i).map(|t| RoutesView {
                routes: &t.routes,
                link_bandwidth: &t.link_bandwidth,
            }),
        }
    }

    /// The routes `peer` must receive; `None` when it does not select this node (or is not
    /// configured).
    pub fn routes_for(&self, peer: &PeerKey) -> Option<&BTreeMap<IpNet, Route>> {
        self.view(self.table_of(peer)?).map(|v| v.routes)
    }

    /// Every route table, mutable ([`Self::routes`] first), for changes that apply to a prefix
    /// wherever it is sent.
    pub fn route_tables_mut(&mut self) -> impl Iterator<Item = &mut BTreeMap<IpNet, Route>> {
        std::iter::once(&mut self.routes).chain(self.tables.iter_mut().map(|t| &mut t.routes))
    }
}

/// A pool and its name, shared by the reasons that cite it.
type PoolRef<'a> = (&'a Pool, Arc<str>, usize);

/// What stays the same for every Service of one decision, and the names shared by reasons.
pub(crate) struct Context<'a> {
    config: &'a AnnounceConfig,
    node: Arc<str>,
    pool_names: Vec<Arc<str>>,
    node_names: BTreeMap<&'a str, Arc<str>>,
    can_announce: bool,
    /// Reused between Services, so that each decision's vectors are allocated once, exactly.
    scratch: ServiceDecision,
}

impl<'a> Context<'a> {
    /// The context of decisions for `node` under `config`.
    pub(crate) fn new(node: &Node, config: &'a AnnounceConfig, can_announce: bool) -> Self {
        Context {
            config,
            node: Arc::from(node.name.as_str()),
            pool_names: config
                .pools
                .iter()
                .map(|p| Arc::from(p.name.as_str()))
                .collect(),
            node_names: BTreeMap::new(),
            can_announce,
            scratch: ServiceDecision::default(),
        }
    }

    /// The pool containing `ip`, with its shared name.
    fn pool_of(&self, ip: IpAddr) -> Option<PoolRef<'a>> {
        let pools = &self.config.pools;
        let i = pools.iter().position(|p| p.contains(ip))?;
        Some((pools.get(i)?, self.pool_names.get(i)?.clone(), i))
    }

    /// Up to [`crate::reason::NAMED_NODES`] shared node names, and how many more there are.
    fn name_nodes(&mut self, nodes: &[&'a str]) -> (Vec<Arc<str>>, u32) {
        named_nodes(nodes, |n| {
            self.node_names
                .entry(n)
                .or_insert_with(|| Arc::from(n))
                .clone()
        })
    }

    /// The reason explaining the endpoints on this node (not for `all-nodes` pools).
    fn here_reason(&mut self, tally: &EndpointTally<'a>) -> Reason {
        let node = self.node.clone();
        tally_reason(&node, tally, |nodes| self.name_nodes(nodes))
    }
}

/// What a pool without `bgp-advertisements` announces.
pub(crate) static DEFAULT_ADVERTISEMENTS: [Advertisement; 1] = [Advertisement::HOST_ROUTES];

/// Whether a pool's `announce-from: all-nodes` applies to a Service.
fn all_nodes_applies(pool: &Pool, service: &Service) -> bool {
    pool.announce_from == AnnounceFrom::AllNodes && service.traffic_policy == TrafficPolicy::Cluster
}

/// The aggregation length an advertisement sets for `ip`'s family.
fn aggregation_length(ip: IpAddr, adv: &Advertisement) -> u8 {
    match ip {
        IpAddr::V4(_) => adv.aggregation_length,
        IpAddr::V6(_) => adv.aggregation_length_v6,
    }
}

/// The node-wide part of the decision: the node's reasons, every peer (tables not yet
/// assigned), and whether the node may announce at all.
pub(crate) fn node_part(
    node: &Node,
    config: &AnnounceConfig,
) -> (Vec<Reason>, Vec<PeerDecision>, bool) {
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
            table: PeerTable::Unselected,
        })
        .collect();
    for p in &config.peers {
        node_reasons.push(if p.selects_node {
            Reason::PeerSelectsNode { peer: p.key }
        } else {
            Reason::PeerDoesNotSelectNode { peer: p.key }
        });
        if p.selects_node && !p.dual_stack {
            node_reasons.push(Reason::PeerSingleFamily { peer: p.key });
        }
    }

    if !peers.is_empty() && !peers.iter().any(|p| p.selected) {
        node_reasons.push(Reason::NoPeerSelectsNode);
    }

    let can_announce = node_eligible && peers.iter().any(|p| p.selected);
    (node_reasons, peers, can_announce)
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
/// Pure and deterministic: the same inputs give the same decision, whatever the order of
/// `services`. Service keys are expected to be unique; with duplicates, the last one's
/// decision is kept in [`AnnounceDecision::services`].
pub fn decide(node: &Node, services: &[Service], config: &AnnounceConfig) -> AnnounceDecision {
    let (node_reasons, mut peers, can_announce) = node_part(node, config);
    let mut cx = Context::new(node, config, can_announce);
    let mut contributions = Vec::new();
    let decisions: Vec<(String, ServiceDecision)> = services
        .iter()
        .enumerate()
        .map(|(index, service)| {
            let sd = decide_service(&mut cx, index, service, &mut contributions);
            (service.key.clone(), sd)
        })
        .collect();
    let tables = peer_tables(config, &mut peers, &contributions);
    let link_bandwidth = link_bandwidths(&mut contributions);
    AnnounceDecision {
        node: node.name.clone(),
        node_reasons,
        peers,
        link_bandwidth,
        routes: merge_routes(contributions),
        tables,
        // Collecting builds the tree in bulk, with full nodes; a repeated key keeps the last.
        services: decisions.into_iter().collect(),
    }
}

/// Assigns each selected peer of `peers` (in configuration order, as `config.peers`) its
/// table, and builds one table per class of peers that gets less than every route: peers that
/// the same advertisements limited to named peers select, with the same family filter, share a
/// class. Without such advertisements and single-family peers, every peer gets
/// [`PeerTable::All`] and nothing is built.
fn peer_tables(
    config: &AnnounceConfig,
    peers: &mut [PeerDecision],
    contributions: &[Contribution<'_>],
) -> Vec<RouteTable> {
    let limited = limited_advertisements(config);
    let mut classes: Vec<(PeerClass, PeerTable)> = Vec::new();
    let mut tables = Vec::new();
    for (decision, peer) in peers.iter_mut().zip(&config.peers) {
        if !peer.selects_node {
            continue;
        }
        let Some(class) = peer_class(&limited, peer) else {
            decision.table = PeerTable::All;
            continue;
        };
        if let Some((_, table)) = classes.iter().find(|(c, _)| *c == class) {
            decision.table = *table;
            continue;
        }
        let mut own: Vec<Contribution<'_>> = contributions
            .iter()
            .filter(|c| applies_to(c, peer))
            .copied()
            .collect();
        let table = if own.len() == contributions.len() {
            PeerTable::All
        } else {
            tables.push(RouteTable {
                link_bandwidth: link_bandwidths(&mut own),
                routes: merge_routes(own),
            });
            PeerTable::Class(tables.len() - 1)
        };
        decision.table = table;
        classes.push((class, table));
    }
    tables
}

/// A class of peers: which of the advertisements limited to named peers select it, and the
/// one family it carries (`Some(true)` IPv4, `Some(false)` IPv6, `None` both).
pub(crate) type PeerClass = (Vec<bool>, Option<bool>);

/// The advertisements of `config` limited to named peers.
pub(crate) fn limited_advertisements(config: &AnnounceConfig) -> Vec<&Advertisement> {
    config
        .pools
        .iter()
        .flat_map(|p| &p.advertisements)
        .filter(|a| !a.peers.is_empty())
        .collect()
}

/// The class of `peer` given the `limited` advertisements, or `None` when the configuration
/// alone gives it every route (it carries both families and every limited advertisement
/// selects it).
pub(crate) fn peer_class(limited: &[&Advertisement], peer: &Peer) -> Option<PeerClass> {
    let selects: Vec<bool> = limited
        .iter()
        .map(|a| a.selects_peer(peer.name.as_deref()))
        .collect();
    let family = (!peer.dual_stack).then_some(peer.key.address.is_ipv4());
    (family.is_some() || !selects.iter().all(|s| *s)).then_some((selects, family))
}

/// Decides one Service, adding its share of routes to `routes` when the node can announce.
pub(crate) fn decide_service<'a>(
    cx: &mut Context<'a>,
    index: usize,
    service: &'a Service,
    routes: &mut Vec<Contribution<'a>>,
) -> ServiceDecision {
    let mut scratch = std::mem::take(&mut cx.scratch);
    fill_service_decision(cx, index, service, routes, &mut scratch);
    // Collecting a drain allocates exactly the length, and nothing when empty.
    let sd = ServiceDecision {
        announce: !scratch.announced_ips.is_empty(),
        local_endpoints: scratch.local_endpoints,
        link_bandwidth: scratch.link_bandwidth.take(),
        reasons: scratch.reasons.drain(..).collect(),
        announced_ips: scratch.announced_ips.drain(..).collect(),
        prefixes: scratch.prefixes.drain(..).collect(),
    };
    scratch.local_endpoints = 0;
    cx.scratch = scratch;
    sd
}

/// Writes the decision of one Service into the empty `sd`.
fn fill_service_decision<'a>(
    cx: &mut Context<'a>,
    index: usize,
    service: &'a Service,
    routes: &mut Vec<Contribution<'a>>,
    sd: &mut ServiceDecision,
) {
    if !service.ours {
        sd.reasons.push(Reason::NotOurClass);
        return;
    }
    sd.reasons.push(Reason::TrafficPolicy {
        policy: service.traffic_policy,
    });
    if service.ingress_ips.is_empty() {
        sd.reasons.push(Reason::NoIngressIp);
    }

    let tally = EndpointTally::count(&cx.node, service);
    sd.local_endpoints = tally.usable_here();
    if tally.fallback() {
        sd.reasons.push(Reason::FallbackToServing);
    }

    let mut ips: Vec<(IpAddr, Option<PoolRef<'a>>)> = Vec::with_capacity(service.ingress_ips.len());
    for ip in &service.ingress_ips {
        if !ips.iter().any(|(seen, _)| seen == ip) {
            ips.push((*ip, cx.pool_of(*ip)));
        }
    }

    // Endpoint facts: the per-node rule matters unless every pooled IP is all-nodes.
    let pooled = || ips.iter().filter_map(|(_, p)| p.as_ref());
    let needs_local_rule =
        pooled().next().is_none() || pooled().any(|(p, _, _)| !all_nodes_applies(p, service));
    if needs_local_rule || tally.usable_total() == 0 {
        let r = cx.here_reason(&tally);
        sd.reasons.push(r);
    }
    let mut noted_pools: Vec<&str> = Vec::new();
    for (pool, name, _) in pooled() {
        if pool.announce_from != AnnounceFrom::AllNodes || noted_pools.contains(&&**name) {
            continue;
        }
        noted_pools.push(name);
        if service.traffic_policy == TrafficPolicy::Local {
            sd.reasons
                .push(Reason::AllNodesIgnoredForLocal { pool: name.clone() });
        } else if tally.usable_total() > 0 {
            sd.reasons.push(Reason::AnnounceFromAllNodes {
                pool: name.clone(),
                endpoints: tally.usable_total(),
            });
        }
    }

    // Built only if an advertisement has service-selectors.
    let labels = std::cell::OnceCell::<BTreeMap<String, String>>::new();
    for (ip, pool) in &ips {
        let ip = *ip;
        let Some((pool, pool_name, pool_index)) = pool else {
            sd.reasons.push(Reason::IpNotInPool { ip });
            continue;
        };
        sd.reasons.push(Reason::IpInPool {
            ip,
            pool: pool_name.clone(),
        });
        if let Some(requested) = &service.requested_pool
            && *requested != pool.name
        {
            sd.reasons.push(Reason::PoolAnnotationMismatch {
                ip,
                requested: Arc::from(requested.as_str()),
                actual: pool_name.clone(),
            });
        }
        if !pool.announced {
            push_once(
                sd,
                Reason::PoolNotAdvertised {
                    pool: pool_name.clone(),
                },
            );
            continue;
        }
        let ads: &[Advertisement] = if pool.advertisements.is_empty() {
            &DEFAULT_ADVERTISEMENTS
        } else {
            &pool.advertisements
        };
        if !ads.iter().any(|a| a.selects_node) {
            push_once(
                sd,
                Reason::NoAdvertisementSelectsNode {
                    pool: pool_name.clone(),
                },
            );
            continue;
        }
        let applies = |a: &&Advertisement| {
            a.selects_node
                && (a.service_selectors.is_empty()
                    || a.selects_service(
                        labels.get_or_init(|| service.labels.iter().cloned().collect()),
                    ))
        };
        if !ads.iter().any(|a| applies(&a)) {
            push_once(
                sd,
                Reason::NoAdvertisementSelectsService {
                    pool: pool_name.clone(),
                },
            );
            continue;
        }
        for adv in ads.iter().filter(applies).filter(|a| !a.peers.is_empty()) {
            push_once(
                sd,
                Reason::AdvertisementLimitedToPeers {
                    pool: pool_name.clone(),
                    peers: adv.peers.iter().map(|p| Arc::from(p.as_str())).collect(),
                },
            );
        }
        let endpoints_allow = tally.usable_here() > 0
            || (all_nodes_applies(pool, service) && tally.usable_total() > 0);
        if !(cx.can_announce && endpoints_allow) {
            continue;
        }
        let mut announced = false;
        for (adv_index, adv) in ads.iter().enumerate().filter(|(_, a)| applies(a)) {
            let length = aggregation_length(ip, adv);
            let Ok(prefix) = IpNet::new(ip, length).map(|n| n.trunc()) else {
                sd.reasons.push(Reason::InvalidAggregationLength {
                    ip,
                    pool: pool_name.clone(),
                    length,
                });
                continue;
            };
            // Weighted ECMP: Local Services only (kube-proxy re-balances Cluster traffic),
            // host routes only (an aggregate is shared by Services).
            let link_bandwidth = adv
                .link_bandwidth_per_endpoint
                .filter(|_| {
                    service.traffic_policy == TrafficPolicy::Local
                        && prefix.prefix_len() == prefix.max_prefix_len()
                })
                .map(|unit| unit.saturating_mul(u64::from(sd.local_endpoints)))
                .filter(|bw| *bw > 0);
            if let Some(bw) = link_bandwidth {
                sd.link_bandwidth = Some(sd.link_bandwidth.map_or(bw, |b| b.max(bw)));
            }
            routes.push(Contribution {
                prefix,
                ip,
                advertisement: adv,
                pool: *pool_index,
                adv: adv_index,
                service: index,
                link_bandwidth,
            });
            if prefix.prefix_len() < prefix.max_prefix_len() {
                push_once(sd, Reason::Aggregated { ip, prefix });
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
}

/// Adds `reason` to the Service's reasons unless it is there already.
fn push_once(sd: &mut ServiceDecision, reason: Reason) {
    if !sd.reasons.contains(&reason) {
        sd.reasons.push(reason);
    }
}

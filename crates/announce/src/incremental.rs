//! The announce decision kept across events.
//!
//! [`decide`](crate::decide) recomputes everything from every Service; a speaker that did that
//! on every watch event would pay for the whole cluster on each one. [`DecisionState`] keeps
//! each Service's decision and its share of the routes between events: [`DecisionState::apply`]
//! decides only the Services that changed, rebuilds only the prefixes those Services had or
//! now have, and returns the prefixes whose routes changed (what must reach the Adj-RIB-Out).
//! [`DecisionState::reset`] (a new node state or configuration) is the one full recompute.
//!
//! The decision it holds equals `decide` followed by
//! [`apply_service_attributes`](crate::apply_service_attributes) of the accepted annotations,
//! with two differences of form. A class of peers limited by advertisements keeps its own table
//! even while it happens to get every route (`decide` then gives it [`PeerTable::All`]); the
//! class's peers are then pointed at [`PeerTable::All`] as well, so every peer gets the same
//! routes either way. And the per-Service decisions are not in
//! [`AnnounceDecision::services`] (kept empty): a speaker on every node of a large cluster would
//! hold every Service's [`ServiceDecision`] with its reasons, which only an explanation reads.
//! The state keeps of each Service its shares of the routes ([`ServiceOutcome`]: whether it is
//! announced, its IPs, prefixes and link bandwidth), and decides one again, with its reasons, on
//! demand ([`DecisionState::service_decision`], [`DecisionState::explanation`]).

use crate::decision::{
    AnnounceDecision, Context, Contribution, DEFAULT_ADVERTISEMENTS, PeerClass, PeerTable, Route,
    RouteTable, ServiceDecision, applies_to, decide_service, limited_advertisements,
    link_bandwidths, merge_routes, node_part, peer_class,
};
use crate::explain::{Explanation, explanation_for};
use crate::input::{Advertisement, AnnounceConfig, Node, Service};
use crate::service_attributes::{ServiceAttributes, accepted_for, add_service_attributes};
use ferrolb_config::CommunityValue;
use ipnet::IpNet;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

/// A Service as the decision needs it, with its per-Service attribute annotations.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceInput {
    /// The Service, with the endpoints of all its EndpointSlices.
    pub service: Service,
    /// Its `ferrolb.io/bgp-*` annotations (see [`crate::service_attributes()`]).
    pub annotations: BTreeMap<String, String>,
}

/// What changed about one Service since the last [`DecisionState::apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceChange {
    /// The Service is new or changed (it, its endpoints or its annotations).
    Upsert(ServiceInput),
    /// The Service `namespace/name` is gone (or is no longer a LoadBalancer Service).
    Remove(String),
}

/// The configuration part of a full recompute: the announce configuration and the
/// `bgp-communities` aliases the Services' annotations may name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StateConfig {
    /// What the decision reads of the configuration, evaluated for this node.
    pub announce: AnnounceConfig,
    /// The configuration's `bgp-communities`.
    pub aliases: BTreeMap<String, CommunityValue>,
}

/// One IP's share of a route, kept across events (a [`Contribution`] without the borrow).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Share {
    prefix: IpNet,
    ip: IpAddr,
    pool: usize,
    adv: usize,
    link_bandwidth: Option<u64>,
}

/// What the state keeps of one Service: its shares of the routes (none when it is not announced)
/// and its accepted attributes (rare: boxed, so that a Service without them costs one word).
#[derive(Debug, Default)]
struct Slot {
    shares: Box<[Share]>,
    attributes: Option<Box<ServiceAttributes>>,
}

/// One Service's decision as the state keeps it (see the [module documentation](self)):
/// everything of its [`ServiceDecision`] but the reasons and the local endpoint count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceOutcome<'a> {
    shares: &'a [Share],
}

impl ServiceOutcome<'_> {
    /// Whether this node announces at least one of the Service's IPs
    /// ([`ServiceDecision::announce`]).
    pub fn announce(&self) -> bool {
        !self.shares.is_empty()
    }

    /// The Service IPs this node announces, in the order of [`ServiceDecision::announced_ips`].
    pub fn announced_ips(&self) -> Vec<IpAddr> {
        // An IP's shares (one per advertisement) are next to each other.
        let mut ips: Vec<IpAddr> = self.shares.iter().map(|s| s.ip).collect();
        ips.dedup();
        ips
    }

    /// The prefixes those IPs are announced in, in the order of [`ServiceDecision::prefixes`].
    pub fn prefixes(&self) -> Vec<IpNet> {
        let mut prefixes: Vec<IpNet> = Vec::with_capacity(self.shares.len());
        for share in self.shares {
            if !prefixes.contains(&share.prefix) {
                prefixes.push(share.prefix);
            }
        }
        prefixes
    }

    /// The link bandwidth of its host routes ([`ServiceDecision::link_bandwidth`]).
    pub fn link_bandwidth(&self) -> Option<u64> {
        self.shares.iter().filter_map(|s| s.link_bandwidth).max()
    }
}

/// The Services that have a share of one prefix, and how many of its contributions each
/// class of peers does not get.
#[derive(Debug, Default)]
struct PrefixEntry {
    services: Vec<Arc<str>>,
    excluded: Vec<usize>,
}

/// A class of peers limited by advertisements or by family: a representative peer (index
/// into the configuration's peers) and how many contributions, over every prefix, it does not
/// get.
#[derive(Debug)]
struct Class {
    peer: usize,
    excluded: usize,
}

/// The announce decision, kept up to date one Service at a time.
#[derive(Debug, Default)]
pub struct DecisionState {
    node: Node,
    config: StateConfig,
    can_announce: bool,
    /// Each selected peer's class (index into `classes`), or `None` for [`PeerTable::All`].
    peer_classes: Vec<Option<usize>>,
    classes: Vec<Class>,
    slots: BTreeMap<Arc<str>, Slot>,
    by_prefix: BTreeMap<IpNet, PrefixEntry>,
    decision: AnnounceDecision,
}

impl DecisionState {
    /// The state of `node` under `config` with `services` (keys unique), fully computed.
    pub fn new(
        node: Node,
        config: StateConfig,
        services: impl IntoIterator<Item = ServiceInput>,
    ) -> Self {
        let mut state = DecisionState::default();
        state.reset(node, config, services);
        state
    }

    /// The decision in force: the routes, tables and peers, without per-Service decisions
    /// ([`AnnounceDecision::services`] is empty; see [`Self::services`]).
    pub fn decision(&self) -> &AnnounceDecision {
        &self.decision
    }

    /// The outcome for the Service `key` (`namespace/name`), or `None` when the state does not
    /// know it.
    pub fn service(&self, key: &str) -> Option<ServiceOutcome<'_>> {
        self.slots.get(key).map(|slot| ServiceOutcome {
            shares: &slot.shares,
        })
    }

    /// Every Service's outcome, by key. The key is the state's own shared copy, so that a caller keeping
    /// something per Service (a metric's labels) can share it instead of copying the name.
    pub fn services(&self) -> impl Iterator<Item = (&Arc<str>, ServiceOutcome<'_>)> {
        self.slots.iter().map(|(key, slot)| {
            (
                key,
                ServiceOutcome {
                    shares: &slot.shares,
                },
            )
        })
    }

    /// The state's shared copy of the key `key` (see [`Self::services`]), or `None` when it does not know
    /// the Service.
    pub fn service_key(&self, key: &str) -> Option<&Arc<str>> {
        self.slots.get_key_value(key).map(|(key, _)| key)
    }

    /// The full decision for one Service, with its reasons, decided again from `input` (what
    /// the state was last given for it) under the node and configuration in force.
    pub fn service_decision(&self, input: &ServiceInput) -> ServiceDecision {
        let mut cx = Context::new(&self.node, &self.config.announce, self.can_announce);
        decide_service(&mut cx, 0, &input.service, &mut Vec::new())
    }

    /// Why this node does or does not announce the Service of `input` (see
    /// [`Self::service_decision`]), with the routes in force, attributes of every Service
    /// sharing them included.
    pub fn explanation(&self, input: &ServiceInput) -> Explanation {
        let sd = self.service_decision(input);
        explanation_for(&self.decision, &input.service.key, &sd)
    }

    /// The node it was computed for.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The configuration it was computed with.
    pub fn config(&self) -> &StateConfig {
        &self.config
    }

    /// The full recompute: a new node state or configuration, and every Service. Returns the
    /// prefixes whose route differs from the previous decision's in the table of every peer or
    /// in the class table of the same index ([`changed_prefixes`]).
    pub fn reset(
        &mut self,
        node: Node,
        config: StateConfig,
        services: impl IntoIterator<Item = ServiceInput>,
    ) -> BTreeSet<IpNet> {
        let (node_reasons, peers, can_announce) = node_part(&node, &config.announce);
        let before = std::mem::take(&mut self.decision);
        self.decision = AnnounceDecision {
            node: node.name.clone(),
            node_reasons,
            peers,
            ..AnnounceDecision::default()
        };
        self.node = node;
        self.config = config;
        self.can_announce = can_announce;
        // The Services known before keep their key: callers that share it (see [`Self::services`]) keep
        // sharing it.
        let known: BTreeSet<Arc<str>> = std::mem::take(&mut self.slots).into_keys().collect();
        self.by_prefix.clear();
        self.plan_classes();
        self.apply_keyed(services.into_iter().map(ServiceChange::Upsert), &known);
        changed_prefixes(&before, &self.decision)
    }

    /// Applies Service changes (a key's last change wins): decides those Services again and
    /// rebuilds the prefixes they had or now have. Returns the prefixes whose route changed in
    /// any table (added, removed, attributes, covered IPs or link bandwidth).
    pub fn apply(&mut self, changes: impl IntoIterator<Item = ServiceChange>) -> BTreeSet<IpNet> {
        self.apply_keyed(changes, &BTreeSet::new())
    }

    /// [`Self::apply`], taking a new Service's key from `known` when it is there.
    fn apply_keyed(
        &mut self,
        changes: impl IntoIterator<Item = ServiceChange>,
        known: &BTreeSet<Arc<str>>,
    ) -> BTreeSet<IpNet> {
        let mut touched = BTreeSet::new();
        for change in changes {
            let key = match &change {
                ServiceChange::Upsert(input) => input.service.key.as_str(),
                ServiceChange::Remove(key) => key.as_str(),
            };
            let key: Arc<str> = match self.slots.remove_entry(key) {
                Some((key, old)) => {
                    forget(&mut self.by_prefix, &key, &old.shares, &mut touched);
                    key
                }
                None => known.get(key).cloned().unwrap_or_else(|| Arc::from(key)),
            };
            let ServiceChange::Upsert(input) = change else {
                continue;
            };
            // A context per Service: its shared node names borrow from the Service's endpoints.
            let mut cx = Context::new(&self.node, &self.config.announce, self.can_announce);
            let mut contributions = Vec::new();
            let sd = decide_service(&mut cx, 0, &input.service, &mut contributions);
            let slot = Slot {
                shares: contributions.iter().map(share_of).collect(),
                attributes: accepted_for(
                    &sd,
                    &self.config.announce,
                    &self.config.aliases,
                    &input.annotations,
                )
                .map(Box::new),
            };
            for share in &slot.shares {
                touched.insert(share.prefix);
                let entry = self.by_prefix.entry(share.prefix).or_default();
                if !entry.services.contains(&key) {
                    entry.services.push(key.clone());
                }
            }
            drop(cx);
            self.slots.insert(key, slot);
        }
        touched.retain(|prefix| self.rebuild(*prefix));
        self.assign_tables();
        touched
    }

    /// The classes of peers that may get less than every route, from the configuration: peers
    /// that the same advertisements limited to named peers select, with the same family filter.
    fn plan_classes(&mut self) {
        let announce = &self.config.announce;
        let limited = limited_advertisements(announce);
        let mut seen: Vec<PeerClass> = Vec::new();
        self.classes.clear();
        self.peer_classes = announce
            .peers
            .iter()
            .enumerate()
            .map(|(i, peer)| {
                if !peer.selects_node {
                    return None;
                }
                let class = peer_class(&limited, peer)?;
                Some(match seen.iter().position(|c| *c == class) {
                    Some(c) => c,
                    None => {
                        seen.push(class);
                        self.classes.push(Class {
                            peer: i,
                            excluded: 0,
                        });
                        self.classes.len() - 1
                    }
                })
            })
            .collect();
        self.decision.tables = self.classes.iter().map(|_| RouteTable::default()).collect();
    }

    /// Points each selected peer at its table: its class's, unless the class gets every route.
    fn assign_tables(&mut self) {
        for (decision, class) in self.decision.peers.iter_mut().zip(&self.peer_classes) {
            decision.table = match class {
                _ if !decision.selected => PeerTable::Unselected,
                Some(c) if self.classes.get(*c).is_some_and(|c| c.excluded > 0) => {
                    PeerTable::Class(*c)
                }
                _ => PeerTable::All,
            };
        }
    }

    /// Rebuilds `prefix` in every table from the shares of the Services that have one;
    /// returns whether anything about it changed.
    fn rebuild(&mut self, prefix: IpNet) -> bool {
        let announce = &self.config.announce;
        let mut contributions: Vec<Contribution<'_>> = Vec::new();
        let mut attributes: Vec<&ServiceAttributes> = Vec::new();
        let services = self
            .by_prefix
            .get(&prefix)
            .map(|e| e.services.as_slice())
            .unwrap_or_default();
        for (index, key) in services.iter().enumerate() {
            let Some(slot) = self.slots.get(key) else {
                continue;
            };
            for share in slot.shares.iter().filter(|s| s.prefix == prefix) {
                if let Some(advertisement) = advertisement(announce, share.pool, share.adv) {
                    contributions.push(Contribution {
                        prefix,
                        ip: share.ip,
                        advertisement,
                        pool: share.pool,
                        adv: share.adv,
                        service: index,
                        link_bandwidth: share.link_bandwidth,
                    });
                }
            }
            if prefix.prefix_len() == prefix.max_prefix_len() {
                attributes.extend(slot.attributes.as_deref());
            }
        }
        let mut changed = false;
        let mut excluded = Vec::with_capacity(self.classes.len());
        for (i, class) in self.classes.iter_mut().enumerate() {
            let mut own: Vec<Contribution<'_>> = match announce.peers.get(class.peer) {
                Some(peer) => contributions
                    .iter()
                    .filter(|c| applies_to(c, peer))
                    .copied()
                    .collect(),
                None => Vec::new(),
            };
            excluded.push(contributions.len() - own.len());
            let old = self
                .by_prefix
                .get(&prefix)
                .and_then(|e| e.excluded.get(i).copied())
                .unwrap_or(0);
            class.excluded = class.excluded.saturating_sub(old) + (contributions.len() - own.len());
            if let Some(table) = self.decision.tables.get_mut(i) {
                let bandwidth = link_bandwidths(&mut own).remove(&prefix);
                let route = route_of(merge_routes(own), prefix, &attributes);
                changed |= store(table_parts(table), prefix, route, bandwidth);
            }
        }
        let bandwidth = link_bandwidths(&mut contributions).remove(&prefix);
        let empty = contributions.is_empty();
        let route = route_of(merge_routes(contributions), prefix, &attributes);
        let d = &mut self.decision;
        changed |= store(
            (&mut d.routes, &mut d.link_bandwidth),
            prefix,
            route,
            bandwidth,
        );
        if empty {
            self.by_prefix.remove(&prefix);
        } else if let Some(e) = self.by_prefix.get_mut(&prefix) {
            e.excluded = excluded;
        }
        changed
    }
}

/// The prefixes whose route or link bandwidth differs between `a` and `b`, in the table of every
/// peer ([`AnnounceDecision::routes`]) or in a class table of the same index: the prefixes a
/// session that keeps its table (its [`PeerTable`]) must be told about.
pub fn changed_prefixes(a: &AnnounceDecision, b: &AnnounceDecision) -> BTreeSet<IpNet> {
    let empty = RouteTable::default();
    let tables = a.tables.len().max(b.tables.len());
    let pairs = std::iter::once((
        (&a.routes, &a.link_bandwidth),
        (&b.routes, &b.link_bandwidth),
    ))
    .chain((0..tables).map(|i| {
        let (ta, tb) = (
            a.tables.get(i).unwrap_or(&empty),
            b.tables.get(i).unwrap_or(&empty),
        );
        (
            (&ta.routes, &ta.link_bandwidth),
            (&tb.routes, &tb.link_bandwidth),
        )
    }));
    let mut changed = BTreeSet::new();
    for ((routes_a, bw_a), (routes_b, bw_b)) in pairs {
        differing_keys(routes_a, routes_b, &mut changed);
        differing_keys(bw_a, bw_b, &mut changed);
    }
    changed
}

/// Adds to `out` the keys whose values differ between `a` and `b` (present in one only, or unequal).
fn differing_keys<V: PartialEq>(
    a: &BTreeMap<IpNet, V>,
    b: &BTreeMap<IpNet, V>,
    out: &mut BTreeSet<IpNet>,
) {
    for (k, v) in a {
        if b.get(k) != Some(v) {
            out.insert(*k);
        }
    }
    out.extend(b.keys().filter(|k| !a.contains_key(*k)));
}

/// Removes `key`'s shares from the prefixes it had, noting those prefixes as touched.
fn forget(
    by_prefix: &mut BTreeMap<IpNet, PrefixEntry>,
    key: &Arc<str>,
    shares: &[Share],
    touched: &mut BTreeSet<IpNet>,
) {
    for share in shares {
        touched.insert(share.prefix);
        if let Some(e) = by_prefix.get_mut(&share.prefix) {
            e.services.retain(|k| k != key);
        }
    }
}

fn share_of(c: &Contribution<'_>) -> Share {
    Share {
        prefix: c.prefix,
        ip: c.ip,
        pool: c.pool,
        adv: c.adv,
        link_bandwidth: c.link_bandwidth,
    }
}

/// The advertisement a share refers to.
fn advertisement(config: &AnnounceConfig, pool: usize, adv: usize) -> Option<&Advertisement> {
    let ads = &config.pools.get(pool)?.advertisements;
    if ads.is_empty() {
        DEFAULT_ADVERTISEMENTS.get(adv)
    } else {
        ads.get(adv)
    }
}

/// The route of `prefix` out of `merged` (none or that one), with the accepted per-Service
/// attributes of the Services sharing it (as [`crate::apply_service_attributes`] adds them).
fn route_of(
    mut merged: BTreeMap<IpNet, Route>,
    prefix: IpNet,
    attributes: &[&ServiceAttributes],
) -> Option<Route> {
    let mut route = merged.remove(&prefix)?;
    add_service_attributes(&mut route.attributes, attributes.iter().copied());
    Some(route)
}

/// A table's routes and link bandwidths, mutable.
fn table_parts(t: &mut RouteTable) -> (&mut BTreeMap<IpNet, Route>, &mut BTreeMap<IpNet, u64>) {
    (&mut t.routes, &mut t.link_bandwidth)
}

/// Makes `prefix` in one table `route` with `bandwidth`; returns whether that changed it.
fn store(
    (routes, link_bandwidth): (&mut BTreeMap<IpNet, Route>, &mut BTreeMap<IpNet, u64>),
    prefix: IpNet,
    route: Option<Route>,
    bandwidth: Option<u64>,
) -> bool {
    let mut changed = link_bandwidth.get(&prefix).copied() != bandwidth;
    match bandwidth {
        Some(bw) => link_bandwidth.insert(prefix, bw),
        None => link_bandwidth.remove(&prefix),
    };
    changed |= routes.get(&prefix) != route.as_ref();
    match route {
        Some(r) => routes.insert(prefix, r),
        None => routes.remove(&prefix),
    };
    changed
}

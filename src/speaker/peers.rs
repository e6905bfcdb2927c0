//! From the configuration to one BGP session per selected peer, and from the announce decision to each
//! session's desired routes. Pure functions.

use ferrolb_announce::{AnnounceDecision, PeerKey, PeerTable, RouteAttributes, RoutesView};
use ferrolb_bgp::fsm::{FsmConfig, GracefulRestartConfig, LocalAs};
use ferrolb_bgp::rib_out::{AsPathPrepend, Attributes, intern};
use ferrolb_bgp::session::{DesiredRoutes, RouteChanges, SessionConfig, TcpOptions};
use ferrolb_bgp::wire::{LargeCommunity, PeerAs};
use ferrolb_config::{BfdProfile, Config, DynamicAsn, NodeValueError, Peer};
use ipnet::IpNet;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The restart time a peer with `graceful-restart: true` advertises when the speaker's default
/// (`--no-graceful-restart`) has none: the usual 120 s.
pub const DEFAULT_RESTART_TIME: u16 = 120;

/// Speaker-wide session settings (from the command line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionDefaults {
    /// Graceful-restart time to advertise; `None` disables graceful restart.
    pub graceful_restart: Option<u16>,
    /// Where the graceful-restart records live.
    pub state_dir: PathBuf,
    /// First connect-retry delay, for peers that configure no connect time.
    pub connect_retry: Duration,
}

impl SessionDefaults {
    /// The graceful-restart time `peer` advertises: the speaker's default when the peer says
    /// nothing, none when it turns graceful restart off, and the default time (or
    /// [`DEFAULT_RESTART_TIME`] when the speaker disables it) when it turns it on.
    pub fn restart_time(&self, peer: &ferrolb_config::Peer) -> Option<u16> {
        match peer.graceful_restart {
            None => self.graceful_restart,
            Some(false) => None,
            Some(true) => Some(self.graceful_restart.unwrap_or(DEFAULT_RESTART_TIME)),
        }
    }
}

/// Addresses discovered on the node for a peer (the source of the route toward it), used when the peer's
/// configuration sets no `source-address` or `router-id`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Discovered {
    /// The preferred source address of the route toward the peer.
    pub source: Option<IpAddr>,
    /// An IPv4 address of the node for the router-id (the source toward an IPv4 peer).
    pub router_id: Option<std::net::Ipv4Addr>,
}

/// Everything that defines one peer's session: a change to any of it restarts the session, except a change of
/// the BFD profile's timers alone, applied in place ([`plan_sessions`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerSession {
    /// The BGP session.
    pub session: SessionConfig,
    /// The BFD profile guarding it (the peer's `bfd-profile`); `None` runs BGP without BFD.
    pub bfd: Option<ferrolb_bfd::Profile>,
}

/// A configuration `bfd-profiles` entry as the BFD driver takes it (field for field; the ranges were checked
/// when the configuration was read, and again by the driver).
pub fn bfd_profile_of(profile: &BfdProfile) -> ferrolb_bfd::Profile {
    ferrolb_bfd::Profile {
        receive_interval_ms: profile.receive_interval,
        transmit_interval_ms: profile.transmit_interval,
        detect_multiplier: profile.detect_multiplier,
        echo_interval_ms: profile.echo_interval,
        echo_mode: profile.echo_mode,
        passive_mode: profile.passive_mode,
        minimum_ttl: profile.minimum_ttl,
    }
}

/// The session configuration of every configured peer that selects this node (labels given), keyed by peer,
/// with its BFD profile if it names one. `discovered` supplies the source address and router-id of peers whose
/// configuration has none.
pub fn desired_sessions(
    config: &Config,
    labels: &BTreeMap<String, String>,
    defaults: &SessionDefaults,
    discovered: &BTreeMap<IpAddr, Discovered>,
) -> BTreeMap<PeerKey, PeerSession> {
    let mut out = BTreeMap::new();
    for p in config.peers.iter().filter(|p| p.selects_node(labels)) {
        // A peer whose per-node values this node lacks has no session here (see `session_config_errors`).
        let (Ok(my_asn), Ok(router_id)) = (p.my_asn_on(labels), p.router_id_on(labels)) else {
            continue;
        };
        // An unnumbered peer's address is found on its link by the session itself.
        let found = match p.interface {
            Some(_) => Discovered::default(),
            None => discovered.get(&p.peer_address).copied().unwrap_or_default(),
        };
        let mut fsm = FsmConfig::new(my_asn, peer_as(p));
        fsm.local_as = p.local_asn.map(|l| LocalAs {
            asn: l.asn,
            replace_as: l.replace_as,
        });
        fsm.router_id = router_id.or(found.router_id);
        fsm.hold_time = u16::try_from(p.hold_time.as_secs()).unwrap_or(u16::MAX);
        // The configuration always carries one (hold time / 3 when not written).
        fsm.keepalive_time = Some(p.keepalive_time);
        fsm.graceful_restart = defaults.restart_time(p).map(|t| GracefulRestartConfig {
            restart_time: t,
            restarting: false,
        });
        fsm.connect_retry_initial = p.connect_time.unwrap_or(defaults.connect_retry);
        // RFC 8950: an unnumbered session carries IPv4 routes with IPv6 next hops.
        fsm.extended_next_hop = p.interface.is_some();
        let key = PeerKey::of(p);
        // The configuration refuses a `bfd-profile` naming no defined profile, so the lookup finds it.
        let bfd = p
            .bfd_profile
            .as_deref()
            .and_then(|name| config.bfd_profile(name))
            .map(bfd_profile_of);
        let session = SessionConfig {
            tcp: TcpOptions {
                peer: SocketAddr::new(p.peer_address, p.peer_port),
                source: p.source_address.or(found.source),
                password: p.password.as_deref().map(str::to_owned),
                // GTSM-style: our packets leave with the maximum TTL, single hop or multihop alike.
                ttl: 255,
                connect_timeout: Duration::from_secs(10),
                bind_device: p.interface.or(p.vrf).map(|d| d.to_string()),
                peer_on_link: p.interface.is_some(),
            },
            fsm,
            state_dir: Some(defaults.state_dir.clone()),
            next_hop_v4: None,
            next_hop_v6: None,
        };
        out.insert(key, PeerSession { session, bfd });
    }
    out
}

/// The AS a peer's session accepts: `peer-asn`, or the kind `dynamic-asn` names.
fn peer_as(p: &Peer) -> PeerAs {
    match p.dynamic_asn {
        Some(DynamicAsn::Internal) => PeerAs::Internal,
        Some(DynamicAsn::External) => PeerAs::External,
        None => PeerAs::Exact(p.peer_asn),
    }
}

/// The peers that select this node but get no session on it, because a value the peer takes from a Node
/// label (`my-asn-from-node-label`, `router-id-from-node-label`) is missing or invalid on this node: an
/// error of this node alone, which the speaker logs and reports as the session's last error.
pub fn session_config_errors(
    config: &Config,
    labels: &BTreeMap<String, String>,
) -> Vec<(PeerKey, NodeValueError)> {
    config
        .peers
        .iter()
        .filter(|p| p.selects_node(labels))
        .filter_map(|p| {
            let err = p.my_asn_on(labels).err().or(p.router_id_on(labels).err())?;
            Some((PeerKey::of(p), err))
        })
        .collect()
}

/// What to do with the running sessions to reach the desired ones.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionPlan {
    /// Peers to start a session with.
    pub start: Vec<PeerKey>,
    /// Peers whose settings changed: stop (Cease) and start again.
    pub restart: Vec<PeerKey>,
    /// Peers whose only change is their BFD profile's timers: the running BFD session takes the new
    /// timers in place (a Poll Sequence), and the BGP session is left alone.
    pub retime_bfd: Vec<PeerKey>,
    /// Peers no longer configured or no longer selecting this node: withdraw and Cease.
    pub stop: Vec<PeerKey>,
}

impl SessionPlan {
    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.start.is_empty()
            && self.restart.is_empty()
            && self.stop.is_empty()
            && self.retime_bfd.is_empty()
    }
}

/// What a change of a peer's BFD settings asks of its sessions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BfdChange {
    /// Nothing changed.
    Same,
    /// Only what a running BFD session can change in place: the intervals and the detect multiplier (sent
    /// through a Poll Sequence), or values single-hop BFD does not use (echo interval, minimum TTL).
    Timers,
    /// The peer gained or lost its `bfd-profile`, or the passive role changed (fixed when the BFD session is
    /// created): the sessions restart.
    Restart,
}

/// Compares a peer's BFD profile before and after a configuration change.
pub fn bfd_change(
    before: Option<&ferrolb_bfd::Profile>,
    after: Option<&ferrolb_bfd::Profile>,
) -> BfdChange {
    match (before, after) {
        (None, None) => BfdChange::Same,
        (Some(b), Some(a)) if b == a => BfdChange::Same,
        (Some(b), Some(a)) if b.passive_mode == a.passive_mode && b.echo_mode == a.echo_mode => {
            BfdChange::Timers
        }
        _ => BfdChange::Restart,
    }
}

/// Compares the running sessions' configurations (BGP and BFD) with the desired ones. A session whose
/// configuration is identical is left alone, whatever else changed; one whose only change is its BFD
/// timers ([`BfdChange::Timers`]) keeps its BGP session.
pub fn plan_sessions(
    running: &BTreeMap<PeerKey, PeerSession>,
    desired: &BTreeMap<PeerKey, PeerSession>,
) -> SessionPlan {
    let mut plan = SessionPlan::default();
    for (key, want) in desired {
        let Some(have) = running.get(key) else {
            plan.start.push(*key);
            continue;
        };
        if have.session != want.session {
            plan.restart.push(*key);
            continue;
        }
        match bfd_change(have.bfd.as_ref(), want.bfd.as_ref()) {
            BfdChange::Same => {}
            BfdChange::Timers => plan.retime_bfd.push(*key),
            BfdChange::Restart => plan.restart.push(*key),
        }
    }
    plan.stop = running
        .keys()
        .filter(|k| !desired.contains_key(k))
        .copied()
        .collect();
    plan
}

/// The BGP attributes of a route the decision produced.
pub fn attributes_of(attrs: &RouteAttributes) -> Attributes {
    Attributes {
        local_pref: attrs.local_pref,
        med: None,
        communities: attrs.communities.iter().map(|c| c.0).collect(),
        large_communities: attrs
            .large_communities
            .iter()
            .map(|c| LargeCommunity {
                global_admin: c.global_admin,
                local_data1: c.local_data1,
                local_data2: c.local_data2,
            })
            .collect(),
        extended_communities: Vec::new(),
        as_path_prepend: attrs.as_path_prepend.map(|p| AsPathPrepend {
            asn: p.asn,
            count: p.count,
        }),
    }
}

/// The routes of one of the decision's tables, for sessions where our AS is `my_asn` (the
/// link-bandwidth community of a weighted route carries it). No table: no routes.
pub fn desired_routes(table: Option<RoutesView<'_>>, my_asn: u32) -> DesiredRoutes {
    let Some(table) = table else {
        return DesiredRoutes::default();
    };
    // Equal attribute sets share one `Arc`, as the sessions keep them.
    let mut shared: HashSet<Arc<Attributes>> = HashSet::new();
    table
        .routes
        .keys()
        .filter_map(|prefix| {
            let attributes = route_entry(table, prefix, my_asn)?;
            Some((*prefix, intern(&mut shared, attributes)))
        })
        .collect()
}

/// What `prefix` is sent with from `table` (see [`desired_routes`]), or `None` when the table lacks it.
fn route_entry(table: RoutesView<'_>, prefix: &IpNet, my_asn: u32) -> Option<Attributes> {
    let route = table.routes.get(prefix)?;
    let mut attributes = attributes_of(&route.attributes);
    attributes.extended_communities = table.extended_communities(prefix, my_asn);
    Some(attributes)
}

/// Which routes a session gets: its local AS (the link-bandwidth community of a weighted route
/// carries it) and the decision's table for its peer. Sessions with the same key get the same
/// routes.
pub type TableKey = (u32, PeerTable);

/// The [`TableKey`] of the session `session` to `peer` under `decision`.
pub fn table_key(decision: &AnnounceDecision, peer: &PeerKey, session: &SessionConfig) -> TableKey {
    let table = decision.table_of(peer).unwrap_or(PeerTable::Unselected);
    (session.fsm.my_asn, table)
}

/// The routes of one decision handed to the sessions, each built once per [`TableKey`]: whole
/// tables (for a session that starts or changes table) and the routes of the prefixes that
/// changed since the decision the sessions have (for the others).
pub struct Handover<'a> {
    decision: &'a AnnounceDecision,
    changed: &'a BTreeSet<IpNet>,
    tables: BTreeMap<TableKey, Arc<DesiredRoutes>>,
    changes: BTreeMap<TableKey, RouteChanges>,
}

impl<'a> Handover<'a> {
    /// The routes of `decision`, which differs from the decision the sessions have in the
    /// `changed` prefixes (for sessions that keep their [`TableKey`]).
    pub fn new(decision: &'a AnnounceDecision, changed: &'a BTreeSet<IpNet>) -> Self {
        Handover {
            decision,
            changed,
            tables: BTreeMap::new(),
            changes: BTreeMap::new(),
        }
    }

    /// The decision.
    pub fn decision(&self) -> &'a AnnounceDecision {
        self.decision
    }

    /// Whether no prefix changed.
    pub fn unchanged(&self) -> bool {
        self.changed.is_empty()
    }

    /// The whole table of `key` (shared by every session that asks for it).
    pub fn table(&mut self, (my_asn, table): TableKey) -> Arc<DesiredRoutes> {
        let decision = self.decision;
        self.tables
            .entry((my_asn, table))
            .or_insert_with(|| Arc::new(desired_routes(decision.view(table), my_asn)))
            .clone()
    }

    /// The routes of the changed prefixes in the table of `key`: the attributes of each, or
    /// `None` for those the table lacks.
    pub fn changes(&mut self, (my_asn, table): TableKey) -> RouteChanges {
        let (decision, changed) = (self.decision, self.changed);
        self.changes
            .entry((my_asn, table))
            .or_insert_with(|| {
                let view = decision.view(table);
                changed
                    .iter()
                    .map(|prefix| (*prefix, view.and_then(|v| route_entry(v, prefix, my_asn))))
                    .collect()
            })
            .clone()
    }
}

#[cfg(test)]
#[path = "peers_tests.rs"]
mod tests;

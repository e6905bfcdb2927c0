//! From the configuration to one BGP session per selected peer, and from the announce decision to each
//! session's desired routes. Pure functions.

use ferrolb_announce::{AnnounceDecision, PeerKey, PeerTable, RouteAttributes, RoutesView};
use ferrolb_bgp::fsm::{FsmConfig, GracefulRestartConfig};
use ferrolb_bgp::rib_out::Attributes;
use ferrolb_bgp::session::{DesiredRoutes, SessionConfig, TcpOptions};
use ferrolb_bgp::wire::LargeCommunity;
use ferrolb_config::{BfdProfile, Config};
use std::collections::BTreeMap;
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
        let found = discovered.get(&p.peer_address).copied().unwrap_or_default();
        let mut fsm = FsmConfig::new(p.my_asn, p.peer_asn);
        fsm.router_id = p.router_id.or(found.router_id);
        fsm.hold_time = u16::try_from(p.hold_time.as_secs()).unwrap_or(u16::MAX);
        // The configuration always carries one (hold time / 3 when not written).
        fsm.keepalive_time = Some(p.keepalive_time);
        fsm.graceful_restart = defaults.restart_time(p).map(|t| GracefulRestartConfig {
            restart_time: t,
            restarting: false,
        });
        fsm.connect_retry_initial = p.connect_time.unwrap_or(defaults.connect_retry);
        let key = PeerKey {
            address: p.peer_address,
            port: p.peer_port,
        };
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
                password: p.password.clone(),
                // GTSM-style: our packets leave with the maximum TTL, single hop or multihop alike.
                ttl: 255,
                connect_timeout: Duration::from_secs(10),
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
    }
}

/// The routes of one of the decision's tables, for sessions where our AS is `my_asn` (the
/// link-bandwidth community of a weighted route carries it). No table: no routes.
pub fn desired_routes(table: Option<RoutesView<'_>>, my_asn: u32) -> DesiredRoutes {
    let Some(table) = table else {
        return DesiredRoutes::default();
    };
    table
        .routes
        .iter()
        .map(|(prefix, route)| {
            let mut attributes = attributes_of(&route.attributes);
            attributes.extended_communities = table.extended_communities(prefix, my_asn);
            (*prefix, attributes)
        })
        .collect()
}

/// The routes handed to each session. Sessions with the same local AS that the decision gives
/// the same table share one `Arc`, so the common case (no per-peer restriction) builds one
/// table per local AS.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteTables {
    by_peer: BTreeMap<PeerKey, Arc<DesiredRoutes>>,
}

impl RouteTables {
    /// The table of `peer` (empty when it has none).
    pub fn for_peer(&self, peer: &PeerKey) -> Arc<DesiredRoutes> {
        self.by_peer.get(peer).cloned().unwrap_or_default()
    }

    /// The table of the session configured by `session` (its peer is `session.tcp.peer`).
    pub fn for_session(&self, session: &SessionConfig) -> Arc<DesiredRoutes> {
        self.for_peer(&PeerKey {
            address: session.tcp.peer.ip(),
            port: session.tcp.peer.port(),
        })
    }
}

/// The routes of each of `sessions`, one table per local AS and decision table.
pub fn desired_route_tables<'a>(
    decision: &AnnounceDecision,
    sessions: impl IntoIterator<Item = (&'a PeerKey, &'a SessionConfig)>,
) -> RouteTables {
    let mut shared: BTreeMap<(u32, PeerTable), Arc<DesiredRoutes>> = BTreeMap::new();
    let mut by_peer = BTreeMap::new();
    for (peer, session) in sessions {
        let table = decision.table_of(peer).unwrap_or(PeerTable::Unselected);
        let my_asn = session.fsm.my_asn;
        let routes = shared
            .entry((my_asn, table))
            .or_insert_with(|| Arc::new(desired_routes(decision.view(table), my_asn)));
        by_peer.insert(*peer, routes.clone());
    }
    RouteTables { by_peer }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrolb_announce::{Community, LargeCommunity as AnnounceLarge};

    const YAML: &str = "\
peers:
- peer-address: 198.18.0.1
  peer-asn: 65559
  my-asn: 65559
  password: foo
- peer-address: 198.18.0.2
  peer-asn: 64513
  my-asn: 65559
  source-address: 198.18.0.11
  router-id: 198.18.0.99
  hold-time: 30s
  node-selectors:
  - match-labels:
      rack: r1
address-pools:
- name: public-pool
  protocol: bgp
  addresses:
  - 203.0.113.10-203.0.113.20
";

    fn defaults() -> SessionDefaults {
        SessionDefaults {
            graceful_restart: Some(120),
            state_dir: "/run/ferrolb".into(),
            connect_retry: Duration::from_secs(1),
        }
    }

    fn key(a: &str) -> PeerKey {
        PeerKey {
            address: a.parse().unwrap(),
            port: 179,
        }
    }

    fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn only_selecting_peers_get_sessions_with_configured_or_discovered_addresses() {
        let config = Config::from_yaml(YAML).unwrap();
        let discovered: BTreeMap<IpAddr, Discovered> = [(
            "198.18.0.1".parse().unwrap(),
            Discovered {
                source: Some("198.18.0.12".parse().unwrap()),
                router_id: Some("198.18.0.12".parse().unwrap()),
            },
        )]
        .into();
        let s = desired_sessions(&config, &labels(&[]), &defaults(), &discovered);
        assert_eq!(
            s.keys().copied().collect::<Vec<_>>(),
            vec![key("198.18.0.1")]
        );
        let one = &s[&key("198.18.0.1")].session;
        assert_eq!(one.tcp.source, Some("198.18.0.12".parse().unwrap()));
        assert_eq!(one.tcp.password.as_deref(), Some("foo"));
        assert_eq!(one.fsm.router_id, Some("198.18.0.12".parse().unwrap()));
        assert_eq!(one.fsm.hold_time, 90);
        assert_eq!(one.fsm.keepalive_time, Some(Duration::from_secs(30)));
        assert_eq!(one.fsm.graceful_restart.map(|g| g.restart_time), Some(120));

        let s = desired_sessions(
            &config,
            &labels(&[("rack", "r1")]),
            &defaults(),
            &discovered,
        );
        let two = &s[&key("198.18.0.2")].session;
        assert_eq!(two.tcp.source, Some("198.18.0.11".parse().unwrap()));
        assert_eq!(two.fsm.router_id, Some("198.18.0.99".parse().unwrap()));
        assert_eq!(two.fsm.hold_time, 30);
        assert_eq!(two.fsm.keepalive_time, Some(Duration::from_secs(10)));
        assert_eq!((two.fsm.my_asn, two.fsm.peer_asn), (65559, 64513));

        let no_gr = SessionDefaults {
            graceful_restart: None,
            ..defaults()
        };
        let s = desired_sessions(&config, &labels(&[]), &no_gr, &discovered);
        assert_eq!(s[&key("198.18.0.1")].session.fsm.graceful_restart, None);
    }

    #[test]
    fn keepalive_time_reaches_the_session_and_a_change_restarts_it() {
        let yaml = YAML.replace("hold-time: 30s", "hold-time: 30s\n  keepalive-time: 7s");
        let config = Config::from_yaml(&yaml).unwrap();
        let all = labels(&[("rack", "r1")]);
        let s = desired_sessions(&config, &all, &defaults(), &BTreeMap::new());
        let two = &s[&key("198.18.0.2")].session.fsm;
        assert_eq!(
            (two.hold_time, two.keepalive_time),
            (30, Some(Duration::from_secs(7)))
        );
        // What the session will run with once the router accepts the hold time.
        assert_eq!(
            ferrolb_bgp::fsm::keepalive_interval(two.keepalive_time, two.hold_time, 30),
            Duration::from_secs(7)
        );
        let running = desired_sessions(
            &Config::from_yaml(YAML).unwrap(),
            &all,
            &defaults(),
            &BTreeMap::new(),
        );
        assert_eq!(
            plan_sessions(&running, &s),
            SessionPlan {
                start: vec![],
                restart: vec![key("198.18.0.2")],
                stop: vec![],
                retime_bfd: vec![]
            }
        );
    }

    #[test]
    fn only_changed_peers_restart_and_removed_peers_stop() {
        let config = Config::from_yaml(YAML).unwrap();
        let all = labels(&[("rack", "r1")]);
        let running = desired_sessions(&config, &all, &defaults(), &BTreeMap::new());
        assert!(plan_sessions(&running, &running).is_empty());

        let edited = Config::from_yaml(&YAML.replace("hold-time: 30s", "hold-time: 60s")).unwrap();
        let desired = desired_sessions(&edited, &all, &defaults(), &BTreeMap::new());
        assert_eq!(
            plan_sessions(&running, &desired),
            SessionPlan {
                start: vec![],
                restart: vec![key("198.18.0.2")],
                stop: vec![],
                retime_bfd: vec![]
            }
        );

        // The node loses the label: the second peer no longer selects it.
        let desired = desired_sessions(&config, &labels(&[]), &defaults(), &BTreeMap::new());
        assert_eq!(
            plan_sessions(&running, &desired),
            SessionPlan {
                start: vec![],
                restart: vec![],
                stop: vec![key("198.18.0.2")],
                retime_bfd: vec![]
            }
        );
        assert_eq!(
            plan_sessions(&desired, &running),
            SessionPlan {
                start: vec![key("198.18.0.2")],
                restart: vec![],
                stop: vec![],
                retime_bfd: vec![]
            }
        );
    }

    const BFD_YAML: &str = "\
bfd-profiles:
- name: fast
  receive-interval: 50
  transmit-interval: 60
  detect-multiplier: 4
  echo-interval: 70
  passive-mode: true
  minimum-ttl: 10
- name: slow
peers:
- peer-address: 198.18.0.1
  peer-asn: 65559
  my-asn: 65559
  bfd-profile: fast
- peer-address: 198.18.0.2
  peer-asn: 64513
  my-asn: 65559
";

    #[test]
    fn a_configured_bfd_profile_maps_field_for_field_and_peers_without_one_get_none() {
        let config = Config::from_yaml(BFD_YAML).unwrap();
        let s = desired_sessions(&config, &labels(&[]), &defaults(), &BTreeMap::new());
        assert_eq!(
            s[&key("198.18.0.1")].bfd,
            Some(ferrolb_bfd::Profile {
                receive_interval_ms: 50,
                transmit_interval_ms: 60,
                detect_multiplier: 4,
                echo_interval_ms: 70,
                echo_mode: false,
                passive_mode: true,
                minimum_ttl: 10,
            })
        );
        assert_eq!(s[&key("198.18.0.2")].bfd, None);
        // A profile with every field defaulted is the driver's default profile.
        assert_eq!(
            bfd_profile_of(config.bfd_profile("slow").unwrap()),
            ferrolb_bfd::Profile::default()
        );
    }

    #[test]
    fn bfd_timer_changes_apply_in_place_and_gaining_losing_or_passive_changes_restart() {
        let config = Config::from_yaml(BFD_YAML).unwrap();
        let running = desired_sessions(&config, &labels(&[]), &defaults(), &BTreeMap::new());
        let only = |field: &str, of: SessionPlan| (field.to_owned(), of);
        let retime_one = SessionPlan {
            retime_bfd: vec![key("198.18.0.1")],
            ..SessionPlan::default()
        };
        let restart_one = SessionPlan {
            restart: vec![key("198.18.0.1")],
            ..SessionPlan::default()
        };
        for (edited, want) in [
            // Timers only: in place, the BGP session untouched.
            only("detect-multiplier: 4", retime_one.clone()),
            only("receive-interval: 50", retime_one.clone()),
            only("transmit-interval: 60", retime_one.clone()),
            only("echo-interval: 70", retime_one.clone()),
            only("minimum-ttl: 10", retime_one.clone()),
            // The passive role is fixed at creation.
            only("passive-mode: true", restart_one.clone()),
        ] {
            let value = match edited.split_once(": ").unwrap() {
                (k, "true") => format!("{k}: false"),
                (k, v) => format!("{k}: {}", v.parse::<u32>().unwrap() + 1),
            };
            let edited = Config::from_yaml(&BFD_YAML.replace(&edited, &value)).unwrap();
            let desired = desired_sessions(&edited, &labels(&[]), &defaults(), &BTreeMap::new());
            assert_eq!(plan_sessions(&running, &desired), want, "{value}");
        }
        // Switching to a profile that differs in timers only is in place too; one that is not passive
        // restarts ("slow" is active).
        let active_fast = BFD_YAML.replace("  passive-mode: true\n", "");
        let running_active = desired_sessions(
            &Config::from_yaml(&active_fast).unwrap(),
            &labels(&[]),
            &defaults(),
            &BTreeMap::new(),
        );
        let to_slow =
            Config::from_yaml(&active_fast.replace("bfd-profile: fast", "bfd-profile: slow"))
                .unwrap();
        let desired = desired_sessions(&to_slow, &labels(&[]), &defaults(), &BTreeMap::new());
        assert_eq!(plan_sessions(&running_active, &desired), retime_one);
        let to_slow =
            Config::from_yaml(&BFD_YAML.replace("bfd-profile: fast", "bfd-profile: slow")).unwrap();
        let desired = desired_sessions(&to_slow, &labels(&[]), &defaults(), &BTreeMap::new());
        assert_eq!(plan_sessions(&running, &desired), restart_one);
        // Losing the profile restarts (BGP runs unguarded from now on).
        let removed = Config::from_yaml(&BFD_YAML.replace("  bfd-profile: fast\n", "")).unwrap();
        let desired = desired_sessions(&removed, &labels(&[]), &defaults(), &BTreeMap::new());
        assert_eq!(plan_sessions(&running, &desired), restart_one);
        // Gaining one restarts (BGP waits for BFD Up).
        let added = BFD_YAML.replace(
            "  peer-asn: 64513\n",
            "  peer-asn: 64513\n  bfd-profile: slow\n",
        );
        let added = Config::from_yaml(&added).unwrap();
        let desired = desired_sessions(&added, &labels(&[]), &defaults(), &BTreeMap::new());
        assert_eq!(desired[&key("198.18.0.2")].bfd, Some(Default::default()));
        assert_eq!(
            plan_sessions(&running, &desired),
            SessionPlan {
                restart: vec![key("198.18.0.2")],
                ..SessionPlan::default()
            }
        );
        // A BGP setting and a BFD timer together: the restart wins.
        let both = Config::from_yaml(
            &BFD_YAML
                .replace("detect-multiplier: 4", "detect-multiplier: 5")
                .replace(
                    "  my-asn: 65559\n  bfd-profile: fast",
                    "  my-asn: 65559\n  hold-time: 30s\n  bfd-profile: fast",
                ),
        )
        .unwrap();
        let desired = desired_sessions(&both, &labels(&[]), &defaults(), &BTreeMap::new());
        assert_eq!(plan_sessions(&running, &desired), restart_one);
        // A profile no peer uses changes: nothing happens.
        let unused = Config::from_yaml(
            &BFD_YAML.replace("- name: slow", "- name: slow\n  detect-multiplier: 9"),
        )
        .unwrap();
        let desired = desired_sessions(&unused, &labels(&[]), &defaults(), &BTreeMap::new());
        assert!(plan_sessions(&running, &desired).is_empty());
    }

    #[test]
    fn bfd_change_classifies_each_field() {
        let base = ferrolb_bfd::Profile::default();
        let with = |f: &dyn Fn(&mut ferrolb_bfd::Profile)| {
            let mut p = base;
            f(&mut p);
            p
        };
        assert_eq!(bfd_change(None, None), BfdChange::Same);
        assert_eq!(bfd_change(Some(&base), Some(&base)), BfdChange::Same);
        assert_eq!(bfd_change(None, Some(&base)), BfdChange::Restart);
        assert_eq!(bfd_change(Some(&base), None), BfdChange::Restart);
        for timers in [
            with(&|p| p.receive_interval_ms = 100),
            with(&|p| p.transmit_interval_ms = 100),
            with(&|p| p.detect_multiplier = 5),
            with(&|p| p.echo_interval_ms = 100),
            with(&|p| p.minimum_ttl = 200),
        ] {
            assert_eq!(
                bfd_change(Some(&base), Some(&timers)),
                BfdChange::Timers,
                "{timers:?}"
            );
        }
        let passive = with(&|p| p.passive_mode = true);
        assert_eq!(bfd_change(Some(&base), Some(&passive)), BfdChange::Restart);
    }

    #[test]
    fn weighted_routes_carry_the_link_bandwidth_of_each_local_as() {
        let mut decision = AnnounceDecision::default();
        let weighted: ipnet::IpNet = "203.0.113.5/32".parse().unwrap();
        let plain: ipnet::IpNet = "203.0.113.6/32".parse().unwrap();
        decision.routes.insert(weighted, Default::default());
        decision.routes.insert(plain, Default::default());
        decision.link_bandwidth.insert(weighted, 2_000_000);
        let routes = desired_routes(decision.view(PeerTable::All), 64501);
        assert_eq!(
            routes[&weighted].extended_communities,
            [[0x40, 0x04, 0xFB, 0xF5, 0x48, 0x74, 0x24, 0x00]]
        );
        assert!(routes[&plain].extended_communities.is_empty());
        let four_octet = desired_routes(decision.view(PeerTable::All), 4_200_000_000);
        assert_eq!(
            four_octet[&weighted].extended_communities,
            [[0x40, 0x04, 0x5B, 0xA0, 0x48, 0x74, 0x24, 0x00]]
        );
    }

    #[test]
    fn route_attributes_become_wire_attributes() {
        let attrs = RouteAttributes {
            local_pref: Some(200),
            communities: [Community(0xffff_ff02), Community((64512 << 16) | 7)].into(),
            large_communities: [AnnounceLarge {
                global_admin: 64512,
                local_data1: 1,
                local_data2: 2,
            }]
            .into(),
        };
        assert_eq!(
            attributes_of(&attrs),
            Attributes {
                local_pref: Some(200),
                med: None,
                communities: vec![(64512 << 16) | 7, 0xffff_ff02],
                large_communities: vec![LargeCommunity {
                    global_admin: 64512,
                    local_data1: 1,
                    local_data2: 2
                }],
                extended_communities: vec![],
            }
        );
    }
}

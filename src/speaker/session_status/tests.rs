//! Tests of the session status writer's pure parts: what an object says, and when it is written.

use super::desired::*;
use super::limiter::*;
use super::name_of;
use crate::crds::session_status::{BGPSessionStatusSpec, SessionStatus};
use ferrolb_announce::{
    AddressRange, Advertisement, AnnounceConfig, Node, Peer, PeerKey, Pool, decide,
};
use ferrolb_bgp::fsm::{DownReason, Negotiated, State};
use ferrolb_bgp::wire::{
    Capability, Cease, Family, GracefulRestart, NotificationError, Open, negotiate,
};
use k8s_openapi::jiff::Timestamp;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + second).unwrap()
}

fn cease() -> DownReason {
    DownReason::NotificationReceived(NotificationError::Cease(Cease::AdministrativeShutdown {
        communication: String::new(),
    }))
}

#[test]
fn the_tracker_times_state_changes_and_new_errors() {
    let mut t = Tracker::default();
    t.observe(State::Connect, None, 0, at(0));
    t.observe(State::Connect, None, 0, at(5));
    assert_eq!(t.since(), Some(at(0)));
    assert_eq!(t.error(), None);
    t.observe(State::Established, None, 0, at(7));
    assert_eq!(t.since(), Some(at(7)));
    t.observe(State::Idle, Some(&cease()), 1, at(9));
    assert_eq!(
        (t.since(), t.error()),
        (Some(at(9)), Some((&cease(), at(9))))
    );
    // The same reason still (no new down) keeps its time, whatever the state does.
    t.observe(State::Connect, Some(&cease()), 1, at(11));
    t.observe(State::Established, Some(&cease()), 1, at(20));
    t.observe(State::Idle, Some(&cease()), 1, at(25));
    assert_eq!(t.error(), Some((&cease(), at(9))));
    assert_eq!(t.since(), Some(at(25)));
    // Down again for the same reason: a new occurrence.
    t.observe(State::Idle, Some(&cease()), 2, at(30));
    assert_eq!(t.error(), Some((&cease(), at(30))));
    let refused = DownReason::Connection("connection to 198.18.0.1 refused".into());
    t.observe(State::Idle, Some(&refused), 3, at(31));
    assert_eq!(t.error(), Some((&refused, at(31))));
}

#[test]
fn errors_are_worded_with_code_and_subcode() {
    let e = session_error(&cease(), at(1));
    assert_eq!(
        e.message,
        "received NOTIFICATION 6/2 (Cease / Administrative Shutdown)"
    );
    assert_eq!((e.code, e.subcode), (Some(6), Some(2)));
    assert_eq!(
        e.time,
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at(1)))
    );
    let e = session_error(
        &DownReason::NotificationSent(NotificationError::HoldTimerExpired),
        at(1),
    );
    assert_eq!(e.message, "sent NOTIFICATION 4/0 (Hold Timer Expired)");
    assert_eq!((e.code, e.subcode), (Some(4), Some(0)));
    let e = session_error(
        &DownReason::Connection("connection to 198.18.0.1 refused".into()),
        at(1),
    );
    assert_eq!(e.message, "connection: connection to 198.18.0.1 refused");
    assert_eq!((e.code, e.subcode), (None, None));
    let e = session_error(&DownReason::Stopped, at(1));
    assert_eq!(
        e.message,
        "stopped by the speaker (it shut down, or the peer's settings changed)"
    );
}

fn open(asn: u32, id: &str, capabilities: Vec<Capability>) -> Open {
    Open {
        version: 4,
        asn,
        hold_time: 90,
        bgp_id: id.parse().unwrap(),
        capabilities,
    }
}

/// A session negotiated between our OPEN (IPv4 and IPv6, route refresh, 4-octet AS, graceful restart,
/// extended messages) and a router's (IPv4 only, route refresh, 4-octet AS, enhanced route refresh).
fn negotiated() -> Negotiated {
    let local = open(
        65559,
        "198.18.0.11",
        vec![
            Capability::Multiprotocol(Family::Ipv4Unicast),
            Capability::Multiprotocol(Family::Ipv6Unicast),
            Capability::RouteRefresh,
            Capability::FourOctetAs(65559),
            Capability::GracefulRestart(GracefulRestart {
                restart_state: false,
                notification: false,
                restart_time: 120,
                families: Vec::new(),
            }),
            Capability::ExtendedMessage,
        ],
    );
    let mut peer = open(
        65559,
        "198.18.0.1",
        vec![
            Capability::Multiprotocol(Family::Ipv4Unicast),
            Capability::RouteRefresh,
            Capability::FourOctetAs(65559),
            Capability::Unknown {
                code: 70,
                value: Default::default(),
            },
        ],
    );
    peer.hold_time = 30;
    let context = negotiate(&local, &peer, 65559).unwrap();
    Negotiated {
        context,
        local_bgp_id: local.bgp_id,
        local_addr: "198.18.0.11".parse().unwrap(),
        keepalive: Duration::from_secs(10),
        peer_open: peer,
        local_open: local,
    }
}

#[test]
fn capabilities_are_those_both_sides_announced() {
    assert_eq!(
        capabilities(&negotiated()),
        ["4-octet-as", "ipv4-unicast", "route-refresh"]
    );
}

fn facts() -> PeerFacts {
    PeerFacts {
        spec: BGPSessionStatusSpec {
            node: "node-1".into(),
            peer: "198.18.0.1".into(),
            peer_asn: 65559,
            peer_name: String::new(),
        },
        pools: vec!["public-pool".into()],
    }
}

#[test]
fn the_status_holds_negotiated_values_only_while_established() {
    let n = negotiated();
    let mut tracker = Tracker::default();
    tracker.observe(State::Established, None, 0, at(3));
    let view = SessionView {
        state: State::Established,
        negotiated: Some(&n),
        prefixes_sent: 4,
    };
    let bfd = BfdView::State(ferrolb_bfd::State::Up);
    let s = desired_status(&facts(), view, &tracker, bfd, None);
    let want = SessionStatus {
        state: "Established".into(),
        last_transition_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at(3))),
        last_error: None,
        hold_time_seconds: Some(30),
        keepalive_seconds: Some(10),
        capabilities: vec![
            "4-octet-as".into(),
            "ipv4-unicast".into(),
            "route-refresh".into(),
        ],
        prefixes_sent: 4,
        bfd: "Up".into(),
        pools: vec!["public-pool".into()],
        node_excluded: None,
    };
    assert_eq!(s, want);
    tracker.observe(State::Idle, Some(&cease()), 1, at(8));
    let view = SessionView {
        state: State::Idle,
        negotiated: Some(&n),
        prefixes_sent: 0,
    };
    let s = desired_status(
        &facts(),
        view,
        &tracker,
        BfdView::Disabled,
        Some("node is labelled x"),
    );
    assert_eq!(s.state, "Idle");
    assert_eq!((s.hold_time_seconds, s.keepalive_seconds), (None, None));
    assert!(s.capabilities.is_empty());
    assert_eq!(s.bfd, "Disabled");
    assert_eq!(s.node_excluded.as_deref(), Some("node is labelled x"));
    assert_eq!(
        s.last_error.map(|e| e.message),
        Some("received NOTIFICATION 6/2 (Cease / Administrative Shutdown)".to_owned())
    );
    assert_eq!(BfdView::Failed.word(), "Down");
    assert_eq!(
        BfdView::State(ferrolb_bfd::State::AdminDown).word(),
        "AdminDown"
    );
}

fn range(first: &str, last: &str) -> AddressRange {
    AddressRange {
        first: first.parse().unwrap(),
        last: last.parse().unwrap(),
    }
}

fn pool(name: &str, addresses: Vec<AddressRange>, advertisements: Vec<Advertisement>) -> Pool {
    Pool {
        name: name.into(),
        addresses,
        advertisements,
        ..Pool::default()
    }
}

fn ad(peers: &[&str], selects_node: bool) -> Advertisement {
    Advertisement {
        peers: peers.iter().map(|p| p.to_string()).collect(),
        selects_node,
        ..Advertisement::HOST_ROUTES
    }
}

fn key(a: &str) -> PeerKey {
    PeerKey {
        address: a.parse().unwrap(),
        port: 179,
        device: None,
    }
}

#[test]
fn pools_follow_the_advertisements_peer_and_node_selectors_and_the_family() {
    let v4 = || vec![range("203.0.113.10", "203.0.113.20")];
    let v6 = || vec![range("2001:db8::10", "2001:db8::20")];
    let config = AnnounceConfig {
        pools: vec![
            pool("default-ads", v4(), vec![]),
            pool("to-a", v4(), vec![ad(&["tor-a"], true)]),
            pool("to-b", v4(), vec![ad(&["tor-b"], true)]),
            pool("other-nodes", v4(), vec![ad(&[], false)]),
            pool("v6", v6(), vec![ad(&[], true)]),
            Pool {
                announced: false,
                ..pool("unannounced", v4(), vec![])
            },
        ],
        peers: vec![
            Peer {
                name: Some("tor-a".into()),
                dual_stack: false,
                ..Peer::new(key("198.18.0.1"), true)
            },
            Peer {
                name: Some("tor-b".into()),
                ..Peer::new(key("198.18.0.2"), true)
            },
            Peer::new(key("198.18.0.3"), false),
        ],
    };
    assert_eq!(pools_for_peer(&config, 0), ["default-ads", "to-a"]);
    assert_eq!(pools_for_peer(&config, 1), ["default-ads", "to-b", "v6"]);
    assert!(
        pools_for_peer(&config, 2).is_empty(),
        "peer does not select the node"
    );
    assert!(pools_for_peer(&config, 3).is_empty(), "no such peer");
}

#[test]
fn node_exclusion_comes_from_the_decision() {
    let config = AnnounceConfig {
        pools: vec![],
        peers: vec![Peer::new(key("198.18.0.1"), true)],
    };
    let mut node = Node {
        name: "node-1".into(),
        ..Node::default()
    };
    assert_eq!(node_excluded(&decide(&node, &[], &config)), None);
    node.labels = BTreeMap::from([(ferrolb_announce::EXCLUDE_LABEL.to_owned(), String::new())]);
    node.network_unavailable = true;
    assert_eq!(
        node_excluded(&decide(&node, &[], &config)).as_deref(),
        Some(
            "node is labelled node.kubernetes.io/exclude-from-external-load-balancers; \
             node condition NetworkUnavailable is true"
        )
    );
}

#[test]
fn object_names_carry_the_port_when_it_is_not_179() {
    assert_eq!(name_of("node-1", &key("198.18.0.1")), "node-1.198.18.0.1");
    let k = PeerKey {
        address: "2001:db8::1".parse().unwrap(),
        port: 1790,
        device: None,
    };
    assert_eq!(name_of("node-1", &k), "node-1.2001-db8--1-1790");
    // Unnumbered: the interface; in a VRF: the VRF after the address (two VRFs, two objects).
    let on = |address: &str, device: &str| PeerKey {
        device: Some(device.parse().unwrap()),
        ..key(address)
    };
    assert_eq!(name_of("node-1", &on("::", "swp_1")), "node-1.swp-1");
    assert_eq!(
        name_of("node-1", &on("198.18.0.1", "red")),
        "node-1.198.18.0.1-red"
    );
    assert_eq!(
        name_of("node-1", &on("198.18.0.1", "blue")),
        "node-1.198.18.0.1-blue"
    );
}

fn status(state: &str, prefixes: u32) -> SessionStatus {
    SessionStatus {
        state: state.into(),
        prefixes_sent: prefixes,
        ..SessionStatus::default()
    }
}

#[test]
fn the_slot_grid_starts_at_a_wall_clock_multiple_of_the_interval() {
    let now = Instant::now() + Duration::from_secs(1000);
    let wall = Duration::from_millis(1_800_000_012_345);
    assert_eq!(
        grid_origin(now, wall, Duration::from_secs(30)),
        now - Duration::from_millis(12_345)
    );
}

#[test]
fn changes_are_classified() {
    let spec = facts().spec;
    let old = (spec.clone(), status("Established", 3));
    assert_eq!(change(None, &spec, &old.1), Change::Other);
    assert_eq!(
        change(Some(&old), &spec, &status("Established", 3)),
        Change::None
    );
    assert_eq!(
        change(Some(&old), &spec, &status("Established", 4)),
        Change::Minor
    );
    assert_eq!(change(Some(&old), &spec, &status("Idle", 0)), Change::Other);
    // From some prefixes to none, or from none to some: prompt.
    assert_eq!(
        change(Some(&old), &spec, &status("Established", 0)),
        Change::Other
    );
    let none = (spec.clone(), status("Established", 0));
    assert_eq!(
        change(Some(&none), &spec, &status("Established", 2)),
        Change::Other
    );
    // The same error again, later: minor; another error: not.
    let error = |message: &str, second: i64| SessionStatus {
        last_error: Some(crate::crds::session_status::SessionError {
            message: message.into(),
            time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at(
                second,
            ))),
            ..Default::default()
        }),
        ..status("Idle", 0)
    };
    let refused = (spec.clone(), error("refused", 1));
    assert_eq!(
        change(Some(&refused), &spec, &error("refused", 9)),
        Change::Minor
    );
    assert_eq!(
        change(Some(&refused), &spec, &error("no reply", 9)),
        Change::Other
    );
    let other_asn = BGPSessionStatusSpec {
        peer_asn: 1,
        ..spec.clone()
    };
    assert_eq!(change(Some(&old), &other_asn, &old.1), Change::Other);
}

#[test]
fn the_limiter_writes_changes_promptly_counts_slowly_and_backs_off_on_errors() {
    let limits = Limits::default();
    let spec = facts().spec;
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let mut l = ObjectLimiter::new("node-1.198.18.0.1", limits, t0);
    assert_eq!(l.next(&spec, &status("Connect", 0), t0), Next::Now);
    assert!(!l.spec_written(&spec));
    l.written(spec.clone(), status("Connect", 0), t0);
    assert!(l.spec_written(&spec));
    assert_eq!(
        l.next(&spec, &status("Connect", 0), t0 + s(100)),
        Next::Skip
    );
    // A state change: at once, but not twice within a second.
    assert_eq!(
        l.next(&spec, &status("Established", 2), t0 + s(100)),
        Next::Now
    );
    l.written(spec.clone(), status("Established", 2), t0 + s(100));
    let soon = t0 + s(100) + Duration::from_millis(300);
    assert_eq!(
        l.next(&spec, &status("Idle", 0), soon),
        Next::At(t0 + s(101))
    );
    // A prefix count alone waits for the object's slot (its offset into every 30 s from the origin) in the
    // next interval: at least 15 s after the last write (which may land late in its slot), within 45 s.
    let Next::At(due) = l.next(&spec, &status("Established", 5), t0 + s(100)) else {
        panic!("a count alone is not written at once");
    };
    assert!(due >= t0 + s(115) && due < t0 + s(145), "{:?}", due - t0);
    let Next::At(again) = l.next(&spec, &status("Established", 6), t0 + s(110)) else {
        panic!("still waiting");
    };
    assert_eq!(again, due);
    assert_eq!(l.next(&spec, &status("Established", 6), due), Next::Now);
    l.written(spec.clone(), status("Established", 6), due);
    // Failures back off 5 s, 10 s, ... 60 s; a 404 (`forget`) sends the spec again.
    let t1 = due + s(1000);
    l.failed(t1, false);
    assert_eq!(l.next(&spec, &status("Idle", 0), t1), Next::At(t1 + s(5)));
    l.failed(t1, true);
    assert_eq!(l.next(&spec, &status("Idle", 0), t1), Next::At(t1 + s(10)));
    assert!(!l.spec_written(&spec));
    for _ in 0..10 {
        l.failed(t1, true);
    }
    assert_eq!(l.next(&spec, &status("Idle", 0), t1), Next::At(t1 + s(60)));
    l.written(spec.clone(), status("Idle", 0), t1 + s(60));
    assert_eq!(l.next(&spec, &status("Idle", 0), t1 + s(61)), Next::Skip);
}

/// Writes of `objects` objects over `seconds` s when each one's prefix count changes every 100 ms (a Service
/// churning on every node), after `warm_up` s of the same churn; and the largest number in one second.
fn churn_writes(objects: usize, warm_up: u64, seconds: u64) -> (usize, usize) {
    let limits = Limits::default();
    let spec = facts().spec;
    let t0 = Instant::now();
    let mut limiters: Vec<(ObjectLimiter, Option<Instant>)> = (0..objects)
        .map(|i| {
            let mut l = ObjectLimiter::new(
                &format!("node-{}.198.18.0.{}", i / 2, 1 + i % 2),
                limits,
                t0,
            );
            l.written(spec.clone(), status("Established", 1), t0);
            (l, None)
        })
        .collect();
    let mut per_second = vec![0usize; usize::try_from(warm_up + seconds).unwrap()];
    let steps = (warm_up + seconds) * 10;
    for step in 1..=steps {
        let now = t0 + Duration::from_millis(step * 100);
        let count = u32::try_from(step).unwrap();
        for (l, _) in &mut limiters {
            if l.next(&spec, &status("Established", count), now) == Next::Now {
                l.written(spec.clone(), status("Established", count), now);
                per_second[usize::try_from((step - 1) / 10).unwrap()] += 1;
            }
        }
    }
    let measured = &per_second[usize::try_from(warm_up).unwrap()..];
    (
        measured.iter().sum(),
        measured.iter().copied().max().unwrap_or(0),
    )
}

#[test]
fn writes_per_minute_at_1000_nodes_by_2_peers() {
    // Steady state: nothing changes, nothing is written.
    let limits = Limits::default();
    let spec = facts().spec;
    let t0 = Instant::now();
    let mut l = ObjectLimiter::new("n", limits, t0);
    l.written(spec.clone(), status("Established", 3), t0);
    assert_eq!(
        l.next(
            &spec,
            &status("Established", 3),
            t0 + Duration::from_secs(3600)
        ),
        Next::Skip
    );
    // Churn on every node for a minute: two writes per object (one per 30 s), spread over the interval.
    let (total, peak) = churn_writes(2000, 60, 60);
    println!("churn: {total} writes/min over 2,000 objects, at most {peak} in one second");
    assert_eq!(total, 4000);
    assert!(
        peak <= 2 * 4000 / 60,
        "writes bunch up: {peak} in one second"
    );
}

#[derive(clap::Parser, Debug)]
struct SpeakerCommand {
    #[command(flatten)]
    args: crate::speaker::SpeakerArgs,
}

fn parse(extra: &[&str]) -> crate::speaker::SpeakerArgs {
    use clap::Parser;
    let mut argv = vec!["speaker", "--node-name", "node-1"];
    argv.extend_from_slice(extra);
    SpeakerCommand::try_parse_from(argv).unwrap().args
}

#[test]
fn the_switch_is_on_by_default_and_takes_false() {
    assert!(parse(&[]).session_status);
    assert!(parse(&["--session-status"]).session_status);
    assert!(parse(&["--session-status=true"]).session_status);
    assert!(!parse(&["--session-status=false"]).session_status);
    assert!(!parse(&["--session-status", "false"]).session_status);
}

//! The tokio session driver against a scripted peer on 127.0.0.1 (no root, no router):
//! initial table then End-of-RIB, only differences afterwards, withdraw + Cease on stop,
//! the receive hold timer, a peer that never sends its OPEN, graceful restart's stop and R bit, and BFD gating (RFC 9384).

use bytes::BytesMut;
use ferrolb_bgp::fsm::{FsmConfig, GracefulRestartConfig, State};
use ferrolb_bgp::rib_out::Attributes;
use ferrolb_bgp::session::{
    DesiredRoutes, FailureReason, Session, SessionConfig, StopMode, TcpOptions,
};
use ferrolb_bgp::wire::{
    Capability, Cease, Family, GracefulRestart, Message, NotificationError, Open, SessionContext,
    try_parse,
};
use ipnet::IpNet;
use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

const T: Duration = Duration::from_secs(10);

/// The scripted router's end of one connection.
struct Peer {
    stream: TcpStream,
    buf: BytesMut,
    ctx: SessionContext,
    /// UPDATEs received and their octets (whole messages), as the speaker must count them.
    updates: (u64, u64),
}

impl Peer {
    /// The prefixes of the UPDATEs that arrive until at least one was announced and one withdrawn.
    async fn announced_and_withdrawn(&mut self) -> (BTreeSet<IpNet>, BTreeSet<IpNet>) {
        let mut ann = BTreeSet::new();
        let mut wd = BTreeSet::new();
        while ann.is_empty() || wd.is_empty() {
            let Some(Message::Update(u)) = self.next_update().await else {
                panic!("expected an UPDATE")
            };
            ann.extend(u.all_announced());
            wd.extend(u.all_withdrawn());
        }
        (ann, wd)
    }

    async fn accept(listener: &TcpListener) -> Peer {
        let (stream, _) = timeout(T, listener.accept()).await.unwrap().unwrap();
        Peer {
            stream,
            buf: BytesMut::new(),
            ctx: SessionContext::before_open(),
            updates: (0, 0),
        }
    }

    /// The next message, or `None` at end of stream.
    async fn recv(&mut self) -> Option<Message> {
        loop {
            let before = self.buf.len();
            if let Some(m) = try_parse(&mut self.buf, &self.ctx).unwrap() {
                if let Message::Update(_) = m {
                    self.updates.0 += 1;
                    self.updates.1 += (before - self.buf.len()) as u64;
                }
                return Some(m);
            }
            let n = timeout(T, self.stream.read_buf(&mut self.buf))
                .await
                .expect("a message within 10 s")
                .unwrap();
            if n == 0 {
                return None;
            }
        }
    }

    async fn send(&mut self, m: Message) {
        let bytes = m.encode(&self.ctx).unwrap();
        self.stream.write_all(&bytes).await.unwrap();
    }

    /// Reads our OPEN, answers with `open` and a KEEPALIVE, reads our KEEPALIVE.
    async fn establish(&mut self, open: Open) -> Open {
        let theirs = self.open_exchange(open).await;
        assert_eq!(self.recv().await, Some(Message::Keepalive));
        theirs
    }

    /// Receives the speaker's OPEN, answers with `open` and a KEEPALIVE (we are in OpenConfirm).
    async fn open_exchange(&mut self, open: Open) -> Open {
        let Some(Message::Open(theirs)) = self.recv().await else {
            panic!("expected an OPEN")
        };
        let ctx = ferrolb_bgp::wire::negotiate(&open, &theirs, theirs.asn).unwrap();
        self.send(Message::Open(open)).await;
        self.send(Message::Keepalive).await;
        self.ctx = ctx;
        theirs
    }

    /// Collects UPDATEs until End-of-RIB for IPv4: (announced, withdrawn, update count).
    async fn until_end_of_rib(&mut self) -> (BTreeSet<IpNet>, BTreeSet<IpNet>, usize) {
        let (mut ann, mut wd, mut n) = (BTreeSet::new(), BTreeSet::new(), 0);
        loop {
            match self.recv().await {
                Some(Message::Update(u)) => {
                    if u.end_of_rib_family() == Some(Family::Ipv4Unicast) {
                        return (ann, wd, n);
                    }
                    n += 1;
                    ann.extend(u.all_announced());
                    wd.extend(u.all_withdrawn());
                }
                Some(Message::Keepalive) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    /// The next UPDATE, skipping KEEPALIVEs.
    async fn next_update(&mut self) -> Option<Message> {
        loop {
            match self.recv().await {
                Some(Message::Keepalive) => {}
                other => return other,
            }
        }
    }
}

fn router_open(hold: u16, gr: bool) -> Open {
    let mut caps = vec![
        Capability::Multiprotocol(Family::Ipv4Unicast),
        Capability::RouteRefresh,
        Capability::FourOctetAs(64512),
    ];
    if gr {
        caps.push(Capability::GracefulRestart(GracefulRestart {
            restart_state: false,
            notification: false,
            restart_time: 120,
            families: vec![],
        }));
    }
    Open::new(64512, hold, Ipv4Addr::new(198, 18, 0, 1), caps)
}

fn config(peer: SocketAddr, hold: u16) -> SessionConfig {
    let mut fsm = FsmConfig::new(64513, 64512);
    fsm.hold_time = hold;
    fsm.families = vec![Family::Ipv4Unicast];
    fsm.connect_retry_initial = Duration::from_millis(200);
    fsm.graceful_restart = None;
    SessionConfig {
        tcp: TcpOptions {
            peer,
            source: None,
            password: None,
            ttl: 255,
            connect_timeout: Duration::from_secs(2),
            bind_device: None,
            peer_on_link: false,
        },
        fsm,
        state_dir: None,
        next_hop_v4: None,
        next_hop_v6: None,
    }
}

fn routes(prefixes: &[&str]) -> DesiredRoutes {
    prefixes
        .iter()
        .map(|p| (p.parse().unwrap(), Arc::new(Attributes::default())))
        .collect()
}

fn set(prefixes: &[&str]) -> BTreeSet<IpNet> {
    prefixes.iter().map(|p| p.parse().unwrap()).collect()
}

#[tokio::test]
async fn table_then_end_of_rib_then_only_differences_then_withdraw_and_cease() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let session = Session::spawn(
        config(listener.local_addr().unwrap(), 90),
        routes(&["203.0.113.1/32", "203.0.113.2/32", "203.0.113.3/32"]),
    );
    let mut status = session.status();
    let mut peer = Peer::accept(&listener).await;
    let ours = peer.establish(router_open(90, false)).await;
    assert_eq!(ours.asn, 64513);
    assert_eq!(ours.hold_time, 90);
    let (ann, wd, n) = peer.until_end_of_rib().await;
    assert_eq!(
        ann,
        set(&["203.0.113.1/32", "203.0.113.2/32", "203.0.113.3/32"])
    );
    assert!(wd.is_empty());
    assert_eq!(n, 1, "three prefixes with one attribute set fit one UPDATE");
    timeout(
        T,
        status.wait_for(|s| s.state == State::Established && s.prefixes_sent == 3),
    )
    .await
    .unwrap()
    .unwrap();

    session.set_routes(routes(&[
        "203.0.113.1/32",
        "203.0.113.3/32",
        "203.0.113.4/32",
    ]));
    let (ann, wd) = peer.announced_and_withdrawn().await;
    assert_eq!(ann, set(&["203.0.113.4/32"]));
    assert_eq!(wd, set(&["203.0.113.2/32"]));
    // The counters are bumped once the write returned, which is before the peer read it.
    let counters = session.counters().snapshot();
    assert_eq!(
        (counters.updates_sent, counters.update_bytes_sent),
        peer.updates,
        "UPDATEs and their octets as the peer received them"
    );
    // Table (1 UPDATE of 3 /32s) + End-of-RIB, then one withdrawal and one announcement.
    assert_eq!(counters.updates_sent, 4);
    assert_eq!(
        (counters.prefixes_announced, counters.prefixes_withdrawn),
        (4, 1)
    );
    assert_eq!(counters.prefixes_advertised, 3);
    // Received: the OPEN and the KEEPALIVE of the establishment.
    assert_eq!(counters.received, [1, 0, 0, 1, 0]);

    // Changes of some prefixes only: two hand-overs before the task takes them add up, the last
    // change of a prefix winning; an unchanged prefix sends nothing.
    let change = |p: &str, on: bool| (p.parse().unwrap(), on.then(Attributes::default));
    session.change_routes(
        [
            change("203.0.113.5/32", true),
            change("203.0.113.1/32", true),
        ]
        .into(),
    );
    session.change_routes(
        [
            change("203.0.113.1/32", false),
            change("203.0.113.9/32", false),
        ]
        .into(),
    );
    let (ann, wd) = peer.announced_and_withdrawn().await;
    assert_eq!(ann, set(&["203.0.113.5/32"]));
    assert_eq!(wd, set(&["203.0.113.1/32"]));
    let counters = session.counters().snapshot();
    assert_eq!(
        (counters.prefixes_announced, counters.prefixes_withdrawn),
        (5, 2)
    );

    let stop = tokio::spawn(session.stop(StopMode::Withdraw {
        communication: "maintenance".into(),
    }));
    let Some(Message::Update(u)) = peer.next_update().await else {
        panic!("expected the withdrawals")
    };
    assert_eq!(
        u.all_withdrawn().into_iter().collect::<BTreeSet<_>>(),
        set(&["203.0.113.3/32", "203.0.113.4/32", "203.0.113.5/32"])
    );
    let Some(Message::Notification(n)) = peer.next_update().await else {
        panic!("expected a NOTIFICATION")
    };
    assert_eq!(
        n.error(),
        NotificationError::Cease(Cease::AdministrativeShutdown {
            communication: "maintenance".into()
        })
    );
    assert_eq!(peer.recv().await, None, "the connection closes");
    timeout(T, stop).await.unwrap().unwrap();
}

/// A peer that accepts the connection and never sends its OPEN: after the OPEN hold timer (240 s, on tokio's
/// paused clock) the session goes down with Hold Timer Expired and the attempt is counted as `no_open`.
#[tokio::test(start_paused = true)]
async fn a_peer_that_never_sends_its_open_is_counted_as_no_open() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let session = Session::spawn(config(listener.local_addr().unwrap(), 3), routes(&[]));
    let mut status = session.status();
    let mut peer = Peer::accept(&listener).await;
    assert!(matches!(peer.recv().await, Some(Message::Open(_))));
    let started = tokio::time::Instant::now();
    status
        .wait_for(|s| {
            s.last_down
                == Some(ferrolb_bgp::fsm::DownReason::NotificationSent(
                    NotificationError::HoldTimerExpired,
                ))
        })
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(239),
        "{:?}",
        started.elapsed()
    );
    let failures = session.counters().snapshot().connect_failures;
    let mut want = [0; 5];
    want[FailureReason::NoOpen.index()] = 1;
    assert_eq!(failures, want);
    session
        .stop(StopMode::Withdraw {
            communication: String::new(),
        })
        .await;
}

#[tokio::test]
async fn silent_peer_gets_hold_timer_expired_and_we_reconnect() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let session = Session::spawn(
        config(listener.local_addr().unwrap(), 3),
        routes(&["203.0.113.9/32"]),
    );
    let mut status = session.status();
    let mut peer = Peer::accept(&listener).await;
    peer.establish(router_open(3, false)).await;
    peer.until_end_of_rib().await;
    let started = tokio::time::Instant::now();
    // Say nothing more. Our keepalives arrive every second; then the hold timer fires.
    let note = loop {
        match peer.recv().await {
            Some(Message::Keepalive) => {}
            Some(Message::Notification(n)) => break n,
            other => panic!("unexpected {other:?}"),
        }
    };
    let waited = started.elapsed();
    assert_eq!(note.error(), NotificationError::HoldTimerExpired);
    assert!(
        waited >= Duration::from_millis(2500) && waited <= Duration::from_secs(5),
        "{waited:?}"
    );
    timeout(
        T,
        status.wait_for(|s| {
            s.last_down
                == Some(ferrolb_bgp::fsm::DownReason::NotificationSent(
                    NotificationError::HoldTimerExpired,
                ))
        }),
    )
    .await
    .unwrap()
    .unwrap();
    // After the backoff it connects again and re-sends the table.
    let mut again = Peer::accept(&listener).await;
    again.establish(router_open(3, false)).await;
    let (ann, _, _) = again.until_end_of_rib().await;
    assert_eq!(ann, set(&["203.0.113.9/32"]));
    session
        .stop(StopMode::Withdraw {
            communication: String::new(),
        })
        .await;
}

#[tokio::test]
async fn graceful_stop_keeps_routes_and_the_restarted_process_sets_the_r_bit() {
    let dir = std::env::temp_dir().join(format!("flb-fsm-session-{}", std::process::id()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut cfg = config(listener.local_addr().unwrap(), 90);
    cfg.fsm.graceful_restart = Some(GracefulRestartConfig {
        restart_time: 120,
        restarting: false,
    });
    cfg.state_dir = Some(dir.clone());
    let session = Session::spawn(cfg.clone(), routes(&["203.0.113.5/32"]));
    let mut peer = Peer::accept(&listener).await;
    let ours = peer.establish(router_open(90, true)).await;
    let gr = ours.graceful_restart().unwrap();
    assert!(!gr.restart_state, "first start: no R bit");
    assert_eq!(gr.restart_time, 120);
    assert!(gr.families.iter().all(|f| f.forwarding));
    peer.until_end_of_rib().await;

    let stop = tokio::spawn(session.stop(StopMode::Graceful {
        communication: "upgrade".into(),
    }));
    // No withdrawal, no NOTIFICATION: just the end of the connection.
    assert_eq!(peer.next_update().await, None);
    timeout(T, stop).await.unwrap().unwrap();

    // The next process finds the record and sets the R bit, then re-sends and ends with EoR.
    let session = Session::spawn(cfg, routes(&["203.0.113.5/32"]));
    let mut peer = Peer::accept(&listener).await;
    let ours = peer.establish(router_open(90, true)).await;
    assert!(ours.graceful_restart().unwrap().restart_state, "R bit set");
    let (ann, _, _) = peer.until_end_of_rib().await;
    assert_eq!(ann, set(&["203.0.113.5/32"]));
    // A stop that withdraws clears the record.
    session
        .stop(StopMode::Withdraw {
            communication: String::new(),
        })
        .await;
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn bfd_holds_the_session_in_open_confirm_and_bfd_down_closes_with_cease_then_reconnects() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (bfd, bfd_rx) = tokio::sync::watch::channel(false);
    let session = Session::spawn_with_bfd(
        config(listener.local_addr().unwrap(), 90),
        routes(&["203.0.113.1/32"]),
        bfd_rx,
    );
    let mut status = session.status();
    // BFD is not Up: the speaker connects and exchanges OPENs (a router with dynamic
    // neighbours creates its BFD session only then), but does not confirm with a KEEPALIVE.
    let quiet = Duration::from_millis(600);
    let mut peer = Peer::accept(&listener).await;
    peer.open_exchange(router_open(90, false)).await;
    assert!(
        timeout(quiet, peer.recv()).await.is_err(),
        "the speaker confirmed the OPEN while BFD was Down"
    );
    assert_eq!(status.borrow().state, State::OpenConfirm);

    bfd.send_replace(true);
    assert_eq!(peer.recv().await, Some(Message::Keepalive));
    let (ann, _, _) = peer.until_end_of_rib().await;
    assert_eq!(ann, set(&["203.0.113.1/32"]));
    timeout(T, status.wait_for(|s| s.state == State::Established))
        .await
        .unwrap()
        .unwrap();

    // BFD goes Down: Cease / BFD Down (RFC 9384) at once, then the connection closes.
    bfd.send_replace(false);
    let Some(Message::Notification(n)) = peer.next_update().await else {
        panic!("expected a NOTIFICATION")
    };
    assert_eq!(n.error(), NotificationError::Cease(Cease::BfdDown));
    assert_eq!(peer.recv().await, None, "the connection closes");
    let s = timeout(T, status.wait_for(|s| s.state == State::Idle))
        .await
        .unwrap()
        .unwrap()
        .clone();
    assert_eq!(
        s.last_down,
        Some(ferrolb_bgp::fsm::DownReason::NotificationSent(
            NotificationError::Cease(Cease::BfdDown)
        ))
    );

    // After the retry delay (200 ms here) the speaker reconnects, but BFD is still Down: it
    // holds in OpenConfirm again.
    let mut peer = Peer::accept(&listener).await;
    peer.open_exchange(router_open(90, false)).await;
    assert!(
        timeout(quiet, peer.recv()).await.is_err(),
        "the speaker confirmed the OPEN while BFD was Down"
    );
    // BFD Up again: the session comes back.
    bfd.send_replace(true);
    assert_eq!(peer.recv().await, Some(Message::Keepalive));
    peer.until_end_of_rib().await;
    timeout(
        T,
        status.wait_for(|s| s.state == State::Established && s.established_count == 2),
    )
    .await
    .unwrap()
    .unwrap();

    let stop = tokio::spawn(session.stop(StopMode::Withdraw {
        communication: String::new(),
    }));
    while let Some(m) = peer.recv().await {
        if matches!(m, Message::Notification(_)) {
            break;
        }
    }
    timeout(T, stop).await.unwrap().unwrap();
}

#[tokio::test]
async fn bfd_up_signal_maps_any_status_channel() {
    let (tx, rx) = tokio::sync::watch::channel(0u8);
    let mut up = ferrolb_bgp::session::bfd_up_signal(rx, |s| *s == 3);
    assert!(!*up.borrow_and_update());
    tx.send_replace(3);
    timeout(T, up.changed()).await.unwrap().unwrap();
    assert!(*up.borrow_and_update());
    tx.send_replace(1);
    timeout(T, up.changed()).await.unwrap().unwrap();
    assert!(!*up.borrow_and_update());
    drop(tx);
    assert!(
        timeout(T, up.changed()).await.unwrap().is_err(),
        "ends with its source"
    );
}

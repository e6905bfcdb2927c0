//! The session state machine, driven with events and no socket. Every NOTIFICATION the FSM
//! itself originates has a test here that checks its exact bytes.

use bytes::{Bytes, BytesMut};
use ferrolb_bgp::fsm::{
    Action, DownReason, Event, Fsm, FsmConfig, GracefulRestartConfig, OPEN_HOLD_TIME, State, Timer,
};
use ferrolb_bgp::wire::{
    Capability, Family, GracefulRestart, GracefulRestartFamily, Message, NotificationError, Open,
    RouteRefresh, SessionContext, Update, try_parse,
};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

const LOCAL: &str = "198.18.0.2";
const PEER_ID: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

fn config(my_asn: u32, peer_asn: u32) -> FsmConfig {
    let mut c = FsmConfig::new(my_asn, peer_asn);
    c.jitter_seed = 42;
    c
}

fn local() -> IpAddr {
    LOCAL.parse().unwrap()
}

fn peer_open(asn: u32, hold: u16, id: Ipv4Addr) -> Open {
    Open::new(
        asn,
        hold,
        id,
        vec![
            Capability::Multiprotocol(Family::Ipv4Unicast),
            Capability::Multiprotocol(Family::Ipv6Unicast),
            Capability::RouteRefresh,
            Capability::FourOctetAs(asn),
        ],
    )
}

/// Drives a fresh FSM to OpenSent and returns it.
fn open_sent(c: FsmConfig) -> Fsm {
    let mut fsm = Fsm::new(c);
    assert_eq!(
        fsm.handle(Event::ManualStart),
        vec![
            Action::CancelTimer(Timer::ConnectRetry),
            Action::StateChanged {
                from: State::Idle,
                to: State::Connect
            },
            Action::Connect,
        ]
    );
    let actions = fsm.handle(Event::TcpConnected { local: local() });
    assert_eq!(sent_opens(&actions).len(), 1);
    assert!(actions.contains(&Action::ArmTimer(Timer::Hold, OPEN_HOLD_TIME)));
    assert_eq!(fsm.state(), State::OpenSent);
    fsm
}

fn established(c: FsmConfig, peer: Open) -> Fsm {
    let mut fsm = open_sent(c);
    fsm.handle(Event::MessageReceived(Message::Open(peer)));
    assert_eq!(fsm.state(), State::OpenConfirm);
    let actions = fsm.handle(Event::MessageReceived(Message::Keepalive));
    assert_eq!(fsm.state(), State::Established);
    assert!(actions.iter().any(|a| matches!(a, Action::Established(_))));
    fsm
}

fn sent_opens(actions: &[Action]) -> Vec<&Open> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(Message::Open(o)) => Some(o),
            _ => None,
        })
        .collect()
}

/// The one NOTIFICATION in `actions`, encoded on the wire (header included).
fn sent_notification_bytes(actions: &[Action]) -> Vec<u8> {
    let notes: Vec<&Message> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(m @ Message::Notification(_)) => Some(m),
            _ => None,
        })
        .collect();
    assert_eq!(notes.len(), 1, "exactly one NOTIFICATION in {actions:?}");
    notes[0]
        .encode(&SessionContext::before_open())
        .unwrap()
        .to_vec()
}

/// A NOTIFICATION's bytes: marker, length, type 3, code, subcode, data.
fn notification(code: u8, subcode: u8, data: &[u8]) -> Vec<u8> {
    let mut v = vec![0xff; 16];
    v.extend_from_slice(&((21 + data.len()) as u16).to_be_bytes());
    v.extend_from_slice(&[3, code, subcode]);
    v.extend_from_slice(data);
    v
}

/// After a NOTIFICATION the connection closes, the FSM is Idle and a retry is scheduled.
fn assert_reset_after(actions: &[Action], fsm: &Fsm) {
    let send = actions
        .iter()
        .position(|a| matches!(a, Action::Send(Message::Notification(_))))
        .expect("a NOTIFICATION is sent");
    let close = actions
        .iter()
        .position(|a| *a == Action::CloseConnection)
        .expect("the connection is closed");
    assert!(send < close, "NOTIFICATION is sent before closing");
    assert_eq!(fsm.state(), State::Idle);
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::ArmTimer(Timer::ConnectRetry, _)))
    );
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Down(DownReason::NotificationSent(_))))
    );
}

#[test]
fn our_open_carries_families_route_refresh_4_octet_as_and_graceful_restart() {
    let fsm = open_sent(config(64513, 64512));
    let open = fsm.build_open(local());
    assert_eq!(open.version, 4);
    assert_eq!(open.asn, 64513);
    assert_eq!(open.hold_time, 90);
    assert_eq!(open.bgp_id, Ipv4Addr::new(198, 18, 0, 2));
    assert_eq!(
        open.capabilities,
        vec![
            Capability::Multiprotocol(Family::Ipv4Unicast),
            Capability::Multiprotocol(Family::Ipv6Unicast),
            Capability::RouteRefresh,
            Capability::FourOctetAs(64513),
            Capability::GracefulRestart(GracefulRestart {
                restart_state: false,
                notification: false,
                restart_time: 120,
                families: vec![
                    GracefulRestartFamily {
                        family: Family::Ipv4Unicast,
                        forwarding: true
                    },
                    GracefulRestartFamily {
                        family: Family::Ipv6Unicast,
                        forwarding: true
                    },
                ],
            }),
        ]
    );
}

#[test]
fn restarting_speaker_sets_the_r_bit_and_configured_router_id_wins() {
    let mut c = config(64513, 64512);
    c.router_id = Some(Ipv4Addr::new(198, 18, 9, 9));
    c.graceful_restart = Some(GracefulRestartConfig {
        restart_time: 300,
        restarting: true,
    });
    let open = Fsm::new(c).build_open(local());
    assert_eq!(open.bgp_id, Ipv4Addr::new(198, 18, 9, 9));
    let gr = open.graceful_restart().unwrap();
    assert!(gr.restart_state);
    assert_eq!(gr.restart_time, 300);
}

#[test]
fn four_octet_asn_goes_as_as_trans_in_the_my_as_field() {
    let open = Fsm::new(config(4_200_000_001, 64512)).build_open(local());
    let bytes = Message::Open(open)
        .encode(&SessionContext::before_open())
        .unwrap();
    // header 19, version 1, then My Autonomous System.
    assert_eq!(&bytes[20..22], &[0x5b, 0xa0]); // 23456
    assert!(
        bytes
            .windows(6)
            .any(|w| w == [65, 4, 0xfa, 0x56, 0xea, 0x01])
    );
}

#[test]
fn no_graceful_restart_capability_when_disabled() {
    let mut c = config(64513, 64512);
    c.graceful_restart = None;
    let open = Fsm::new(c).build_open(local());
    assert!(open.graceful_restart().is_none());
}

#[test]
fn hold_time_negotiation_uses_minimum() {
    let mut fsm = open_sent(config(64513, 64512));
    let actions = fsm.handle(Event::MessageReceived(Message::Open(peer_open(
        64512, 30, PEER_ID,
    ))));
    assert_eq!(
        actions,
        vec![
            Action::Send(Message::Keepalive),
            Action::ArmTimer(Timer::Hold, Duration::from_secs(30)),
            Action::ArmTimer(Timer::Keepalive, Duration::from_secs(10)),
            Action::StateChanged {
                from: State::OpenSent,
                to: State::OpenConfirm
            },
        ]
    );
    let actions = fsm.handle(Event::MessageReceived(Message::Keepalive));
    assert_eq!(
        actions[0],
        Action::ArmTimer(Timer::Hold, Duration::from_secs(30))
    );
    assert_eq!(fsm.negotiated().unwrap().context.hold_time, 30);
    assert_eq!(fsm.negotiated().unwrap().keepalive, Duration::from_secs(10));
}

#[test]
fn a_configured_keepalive_is_used_as_is_and_the_open_carries_the_configured_hold_time() {
    let mut c = config(64513, 64512);
    c.hold_time = 30;
    c.keepalive_time = Some(Duration::from_secs(4));
    let mut fsm = Fsm::new(c);
    fsm.handle(Event::ManualStart);
    let actions = fsm.handle(Event::TcpConnected { local: local() });
    assert_eq!(sent_opens(&actions)[0].hold_time, 30);
    let actions = fsm.handle(Event::MessageReceived(Message::Open(peer_open(
        64512, 90, PEER_ID,
    ))));
    assert_eq!(
        actions,
        vec![
            Action::Send(Message::Keepalive),
            Action::ArmTimer(Timer::Hold, Duration::from_secs(30)),
            Action::ArmTimer(Timer::Keepalive, Duration::from_secs(4)),
            Action::StateChanged {
                from: State::OpenSent,
                to: State::OpenConfirm
            },
        ]
    );
    fsm.handle(Event::MessageReceived(Message::Keepalive));
    assert_eq!(
        fsm.handle(Event::TimerExpired(Timer::Keepalive)),
        vec![
            Action::Send(Message::Keepalive),
            Action::ArmTimer(Timer::Keepalive, Duration::from_secs(4)),
        ]
    );
}

#[test]
fn a_configured_keepalive_is_capped_at_a_third_of_a_hold_time_the_peer_lowered() {
    let mut c = config(64513, 64512);
    c.hold_time = 90;
    c.keepalive_time = Some(Duration::from_secs(20));
    let mut fsm = open_sent(c);
    let actions = fsm.handle(Event::MessageReceived(Message::Open(peer_open(
        64512, 15, PEER_ID,
    ))));
    assert!(
        actions.contains(&Action::ArmTimer(Timer::Keepalive, Duration::from_secs(5))),
        "{actions:?}"
    );
    assert_eq!(fsm.negotiated().unwrap().keepalive, Duration::from_secs(5));
}

#[test]
fn keepalive_interval_follows_metallb_defaults_and_rfc_4271() {
    use ferrolb_bgp::fsm::keepalive_interval;
    let s = Duration::from_secs;
    // Unconfigured: a third of the negotiated hold time.
    assert_eq!(keepalive_interval(None, 90, 90), s(30));
    assert_eq!(keepalive_interval(None, 90, 9), s(3));
    // Configured, hold time accepted: exactly the configuration, even above hold / 3.
    assert_eq!(keepalive_interval(Some(s(60)), 90, 90), s(60));
    assert_eq!(keepalive_interval(Some(s(1)), 3, 3), s(1));
    assert_eq!(
        keepalive_interval(Some(Duration::from_millis(1500)), 9, 9),
        Duration::from_millis(1500)
    );
    // Configured, hold time lowered by the peer: capped at a third of it.
    assert_eq!(keepalive_interval(Some(s(60)), 90, 30), s(10));
    assert_eq!(keepalive_interval(Some(s(5)), 90, 30), s(5));
    // Hold time 0: no KEEPALIVEs whatever is configured.
    assert_eq!(keepalive_interval(Some(s(30)), 90, 0), Duration::ZERO);
    assert_eq!(keepalive_interval(None, 0, 0), Duration::ZERO);
    // A configured 0 with a non-zero hold time would starve the peer's hold timer.
    assert_eq!(keepalive_interval(Some(Duration::ZERO), 90, 90), s(30));
}

#[test]
fn hold_time_zero_means_no_keepalives_and_no_hold_timer() {
    let mut fsm = open_sent(config(64513, 64512));
    let actions = fsm.handle(Event::MessageReceived(Message::Open(peer_open(
        64512, 0, PEER_ID,
    ))));
    assert!(actions.contains(&Action::CancelTimer(Timer::Hold)));
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::ArmTimer(Timer::Hold | Timer::Keepalive, _)))
    );
    let actions = fsm.handle(Event::MessageReceived(Message::Keepalive));
    assert_eq!(fsm.state(), State::Established);
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::ArmTimer(Timer::Hold | Timer::Keepalive, _)))
    );
    assert_eq!(
        fsm.handle(Event::MessageReceived(Message::Keepalive)),
        vec![]
    );
    assert_eq!(fsm.handle(Event::TimerExpired(Timer::Keepalive)), vec![]);
}

#[test]
fn established_only_after_open_and_keepalive() {
    let mut fsm = open_sent(config(64513, 64512));
    fsm.handle(Event::MessageReceived(Message::Open(peer_open(
        64512, 90, PEER_ID,
    ))));
    assert_eq!(fsm.state(), State::OpenConfirm);
    assert!(fsm.negotiated().is_some());
    let actions = fsm.handle(Event::MessageReceived(Message::Keepalive));
    let Some(Action::Established(n)) = actions.iter().find(|a| matches!(a, Action::Established(_)))
    else {
        panic!("no Established in {actions:?}")
    };
    assert_eq!(n.context.peer_bgp_id, PEER_ID);
    assert_eq!(
        n.context.families,
        vec![Family::Ipv4Unicast, Family::Ipv6Unicast]
    );
    assert!(n.context.four_octet_as);
    assert!(!n.context.ibgp);
    assert_eq!(n.local_addr, local());
    assert!(actions.contains(&Action::ArmTimer(Timer::Stable, Duration::from_secs(30))));
}

#[test]
fn keepalive_timer_sends_keepalive_and_rearms() {
    let mut fsm = established(config(64513, 64512), peer_open(64512, 9, PEER_ID));
    assert_eq!(
        fsm.handle(Event::TimerExpired(Timer::Keepalive)),
        vec![
            Action::Send(Message::Keepalive),
            Action::ArmTimer(Timer::Keepalive, Duration::from_secs(3)),
        ]
    );
}

#[test]
fn updates_and_keepalives_restart_the_hold_timer() {
    let mut fsm = established(config(64513, 64512), peer_open(64512, 9, PEER_ID));
    let hold = Action::ArmTimer(Timer::Hold, Duration::from_secs(9));
    assert_eq!(
        fsm.handle(Event::MessageReceived(Message::Keepalive)),
        vec![hold.clone()]
    );
    assert_eq!(
        fsm.handle(Event::MessageReceived(Message::Update(Update::end_of_rib(
            Family::Ipv4Unicast
        )))),
        vec![hold]
    );
}

// ---- One test per NOTIFICATION the FSM originates (exact bytes) ----

#[test]
fn unsupported_version_sends_2_1_with_our_version() {
    // An OPEN with version 3 as it arrives on the wire: the decoder rejects it, the FSM sends.
    let mut wire = vec![0xff; 16];
    wire.extend_from_slice(&[0, 29, 1, 3, 0xfc, 0x00, 0, 90, 198, 18, 0, 1, 0]);
    let mut buf = BytesMut::from(&wire[..]);
    let err = try_parse(&mut buf, &SessionContext::before_open()).unwrap_err();
    let mut fsm = open_sent(config(64513, 64512));
    let actions = fsm.handle(Event::DecodeFailed(err.error));
    assert_eq!(
        sent_notification_bytes(&actions),
        notification(2, 1, &[0, 4])
    );
    assert_reset_after(&actions, &fsm);
}

#[test]
fn wrong_peer_as_sends_bad_peer_as() {
    let mut fsm = open_sent(config(64513, 64512));
    let actions = fsm.handle(Event::MessageReceived(Message::Open(peer_open(
        64999, 90, PEER_ID,
    ))));
    assert_eq!(sent_notification_bytes(&actions), notification(2, 2, &[]));
    assert_reset_after(&actions, &fsm);
}

#[test]
fn zero_bgp_identifier_sends_bad_bgp_identifier() {
    let mut fsm = open_sent(config(64513, 64512));
    let actions = fsm.handle(Event::MessageReceived(Message::Open(peer_open(
        64512,
        90,
        Ipv4Addr::UNSPECIFIED,
    ))));
    assert_eq!(sent_notification_bytes(&actions), notification(2, 3, &[]));
    assert_reset_after(&actions, &fsm);
}

#[test]
fn ibgp_peer_with_our_identifier_sends_bad_bgp_identifier_but_ebgp_is_fine() {
    let ours = Ipv4Addr::new(198, 18, 0, 2);
    let mut fsm = open_sent(config(64512, 64512));
    let actions = fsm.handle(Event::MessageReceived(Message::Open(peer_open(
        64512, 90, ours,
    ))));
    assert_eq!(sent_notification_bytes(&actions), notification(2, 3, &[]));
    assert_reset_after(&actions, &fsm);

    let mut fsm = open_sent(config(64513, 64512));
    fsm.handle(Event::MessageReceived(Message::Open(peer_open(
        64512, 90, ours,
    ))));
    assert_eq!(fsm.state(), State::OpenConfirm);
}

#[test]
fn hold_time_of_one_or_two_seconds_sends_unacceptable_hold_time() {
    for hold in [1, 2] {
        let mut fsm = open_sent(config(64513, 64512));
        let actions = fsm.handle(Event::MessageReceived(Message::Open(peer_open(
            64512, hold, PEER_ID,
        ))));
        assert_eq!(sent_notification_bytes(&actions), notification(2, 6, &[]));
        assert_reset_after(&actions, &fsm);
    }
}

#[test]
fn no_common_family_sends_unsupported_capability_listing_ours() {
    let mut c = config(64513, 64512);
    c.families = vec![Family::Ipv4Unicast];
    let mut fsm = open_sent(c);
    let peer = Open::new(
        64512,
        90,
        PEER_ID,
        vec![Capability::Multiprotocol(Family::Ipv6Unicast)],
    );
    let actions = fsm.handle(Event::MessageReceived(Message::Open(peer)));
    // Data: our multiprotocol capability, code 1, length 4, AFI 1, reserved, SAFI 1.
    assert_eq!(
        sent_notification_bytes(&actions),
        notification(2, 7, &[1, 4, 0, 1, 0, 1])
    );
    assert_reset_after(&actions, &fsm);
}

#[test]
fn hold_timer_expiry_sends_hold_timer_expired_in_every_connected_state() {
    // OpenSent (the large initial hold time), OpenConfirm and Established.
    let mut fsm = open_sent(config(64513, 64512));
    let actions = fsm.handle(Event::TimerExpired(Timer::Hold));
    assert_eq!(sent_notification_bytes(&actions), notification(4, 0, &[]));
    assert_reset_after(&actions, &fsm);

    let mut fsm = open_sent(config(64513, 64512));
    fsm.handle(Event::MessageReceived(Message::Open(peer_open(
        64512, 3, PEER_ID,
    ))));
    let actions = fsm.handle(Event::TimerExpired(Timer::Hold));
    assert_eq!(sent_notification_bytes(&actions), notification(4, 0, &[]));
    assert_reset_after(&actions, &fsm);

    let mut fsm = established(config(64513, 64512), peer_open(64512, 3, PEER_ID));
    let actions = fsm.handle(Event::TimerExpired(Timer::Hold));
    assert_eq!(sent_notification_bytes(&actions), notification(4, 0, &[]));
    assert_reset_after(&actions, &fsm);
    assert!(actions.contains(&Action::Down(DownReason::NotificationSent(
        NotificationError::HoldTimerExpired
    ))));
}

#[test]
fn keepalive_in_open_sent_sends_fsm_error_1() {
    let mut fsm = open_sent(config(64513, 64512));
    let actions = fsm.handle(Event::MessageReceived(Message::Keepalive));
    assert_eq!(sent_notification_bytes(&actions), notification(5, 1, &[]));
    assert_reset_after(&actions, &fsm);
}

#[test]
fn update_in_open_confirm_sends_fsm_error_2() {
    let mut fsm = open_sent(config(64513, 64512));
    fsm.handle(Event::MessageReceived(Message::Open(peer_open(
        64512, 90, PEER_ID,
    ))));
    let actions = fsm.handle(Event::MessageReceived(Message::Update(Update::end_of_rib(
        Family::Ipv4Unicast,
    ))));
    assert_eq!(sent_notification_bytes(&actions), notification(5, 2, &[]));
    assert_reset_after(&actions, &fsm);
}

#[test]
fn open_in_established_sends_fsm_error_3() {
    let mut fsm = established(config(64513, 64512), peer_open(64512, 90, PEER_ID));
    let actions = fsm.handle(Event::MessageReceived(Message::Open(peer_open(
        64512, 90, PEER_ID,
    ))));
    assert_eq!(sent_notification_bytes(&actions), notification(5, 3, &[]));
    assert_reset_after(&actions, &fsm);
}

#[test]
fn decode_failure_sends_the_decoders_notification() {
    let mut fsm = established(config(64513, 64512), peer_open(64512, 90, PEER_ID));
    let mut buf = BytesMut::from(&[0u8; 19][..]); // marker not all ones
    let err = try_parse(&mut buf, &fsm.context()).unwrap_err();
    let actions = fsm.handle(Event::DecodeFailed(err.error));
    assert_eq!(sent_notification_bytes(&actions), notification(1, 1, &[]));
    assert_reset_after(&actions, &fsm);
}

#[test]
fn stop_sends_cease_administrative_shutdown_with_the_message_and_does_not_retry() {
    let mut fsm = established(config(64513, 64512), peer_open(64512, 90, PEER_ID));
    let actions = fsm.handle(Event::ManualStop {
        communication: "upgrade".into(),
    });
    assert_eq!(
        sent_notification_bytes(&actions),
        notification(6, 2, b"\x07upgrade")
    );
    assert!(actions.contains(&Action::CloseConnection));
    assert!(actions.contains(&Action::Down(DownReason::Stopped)));
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::ArmTimer(Timer::ConnectRetry, _)))
    );
    assert_eq!(fsm.state(), State::Idle);
    assert_eq!(fsm.handle(Event::TimerExpired(Timer::ConnectRetry)), vec![]);
}

#[test]
fn shutdown_communication_is_cut_to_255_octets_at_a_character_boundary() {
    let mut fsm = open_sent(config(64513, 64512));
    let text = "é".repeat(200); // 400 octets
    let actions = fsm.handle(Event::ManualStop {
        communication: text,
    });
    let bytes = sent_notification_bytes(&actions);
    assert_eq!(bytes[21], 254); // 127 two-octet characters
    assert_eq!(bytes.len(), 22 + 254);
    assert!(std::str::from_utf8(&bytes[22..]).is_ok());
}

// ---- What the FSM does not send ----

#[test]
fn received_notification_closes_without_answering_and_retries() {
    let mut fsm = open_sent(config(64513, 64512));
    let note = NotificationError::BadPeerAs.into();
    let actions = fsm.handle(Event::MessageReceived(Message::Notification(note)));
    assert!(!actions.iter().any(|a| matches!(a, Action::Send(_))));
    assert!(actions.contains(&Action::CloseConnection));
    assert!(
        actions.contains(&Action::Down(DownReason::NotificationReceived(
            NotificationError::BadPeerAs
        )))
    );
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::ArmTimer(Timer::ConnectRetry, _)))
    );
    assert_eq!(fsm.state(), State::Idle);
}

#[test]
fn stop_before_the_connection_is_up_sends_nothing() {
    let mut fsm = Fsm::new(config(64513, 64512));
    fsm.handle(Event::ManualStart);
    let actions = fsm.handle(Event::ManualStop {
        communication: String::new(),
    });
    assert!(!actions.iter().any(|a| matches!(a, Action::Send(_))));
    assert_eq!(fsm.state(), State::Idle);
    // A connection that completes after the stop is closed at once.
    assert_eq!(
        fsm.handle(Event::TcpConnected { local: local() }),
        vec![Action::CloseConnection]
    );
}

#[test]
fn connection_lost_in_established_closes_reports_and_retries_without_a_notification() {
    let mut fsm = established(config(64513, 64512), peer_open(64512, 90, PEER_ID));
    let actions = fsm.handle(Event::TcpClosed("connection reset by peer".into()));
    assert!(!actions.iter().any(|a| matches!(a, Action::Send(_))));
    assert_eq!(actions[0], Action::CloseConnection);
    assert!(actions.contains(&Action::Down(DownReason::Connection(
        "connection reset by peer".into()
    ))));
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::ArmTimer(Timer::ConnectRetry, _)))
    );
    assert_eq!(fsm.state(), State::Idle);
    assert!(fsm.negotiated().is_none());
}

// ---- Connect-retry backoff ----

fn retry_delay(actions: &[Action]) -> Duration {
    actions
        .iter()
        .find_map(|a| match a {
            Action::ArmTimer(Timer::ConnectRetry, d) => Some(*d),
            _ => None,
        })
        .expect("a connect-retry timer")
}

#[test]
fn tcp_failure_waits_then_connects_again() {
    let mut fsm = Fsm::new(config(64513, 64512));
    fsm.handle(Event::ManualStart);
    let actions = fsm.handle(Event::TcpFailed("refused".into()));
    assert_eq!(fsm.state(), State::Idle);
    let d = retry_delay(&actions);
    assert!(d >= Duration::from_millis(750) && d <= Duration::from_secs(1));
    assert_eq!(
        fsm.handle(Event::TimerExpired(Timer::ConnectRetry)),
        vec![
            Action::StateChanged {
                from: State::Idle,
                to: State::Connect
            },
            Action::Connect
        ]
    );
}

#[test]
fn backoff_grows_across_open_exchanges_that_end_in_a_notification() {
    let mut fsm = Fsm::new(config(64513, 64512));
    fsm.handle(Event::ManualStart);
    let mut delays = Vec::new();
    for _ in 0..6 {
        fsm.handle(Event::TcpConnected { local: local() });
        fsm.handle(Event::MessageReceived(Message::Open(peer_open(
            64512, 90, PEER_ID,
        ))));
        let note = NotificationError::BadPeerAs.into();
        let actions = fsm.handle(Event::MessageReceived(Message::Notification(note)));
        delays.push(retry_delay(&actions));
        fsm.handle(Event::TimerExpired(Timer::ConnectRetry));
    }
    // Base 1, 2, 4, 8, 16, 32 s, each scaled by a jitter factor in [0.75, 1].
    for (i, d) in delays.iter().enumerate() {
        let base = Duration::from_secs(1 << i);
        assert!(*d >= base * 3 / 4 && *d <= base, "attempt {i}: {d:?}");
    }
    assert_eq!(fsm.connect_failures(), 6);
}

#[test]
fn backoff_resets_only_after_the_session_was_stable() {
    let mut c = config(64513, 64512);
    c.connect_retry_initial = Duration::from_secs(2);
    let mut fsm = Fsm::new(c);
    fsm.handle(Event::ManualStart);
    for _ in 0..3 {
        fsm.handle(Event::TcpFailed("refused".into()));
        fsm.handle(Event::TimerExpired(Timer::ConnectRetry));
    }
    assert_eq!(fsm.connect_failures(), 3);
    // Established, but dropped before the stable timer: the backoff keeps growing.
    fsm.handle(Event::TcpConnected { local: local() });
    fsm.handle(Event::MessageReceived(Message::Open(peer_open(
        64512, 90, PEER_ID,
    ))));
    fsm.handle(Event::MessageReceived(Message::Keepalive));
    let d = retry_delay(&fsm.handle(Event::TcpClosed("reset".into())));
    assert!(d >= Duration::from_secs(12), "{d:?}");
    assert_eq!(fsm.connect_failures(), 4);
    // Established and stable: reset.
    fsm.handle(Event::TimerExpired(Timer::ConnectRetry));
    fsm.handle(Event::TcpConnected { local: local() });
    fsm.handle(Event::MessageReceived(Message::Open(peer_open(
        64512, 90, PEER_ID,
    ))));
    fsm.handle(Event::MessageReceived(Message::Keepalive));
    fsm.handle(Event::TimerExpired(Timer::Stable));
    assert_eq!(fsm.connect_failures(), 0);
    let d = retry_delay(&fsm.handle(Event::TcpClosed("reset".into())));
    assert!(
        d >= Duration::from_millis(1500) && d <= Duration::from_secs(2),
        "{d:?}"
    );
}

// ---- ROUTE-REFRESH ----

#[test]
fn route_refresh_for_a_negotiated_family_resends_that_table() {
    let mut fsm = established(config(64513, 64512), peer_open(64512, 90, PEER_ID));
    let actions = fsm.handle(Event::MessageReceived(Message::RouteRefresh(
        RouteRefresh::new(Family::Ipv6Unicast),
    )));
    assert!(actions.contains(&Action::ResendTable(Family::Ipv6Unicast)));
}

#[test]
fn route_refresh_for_another_family_is_ignored() {
    let mut c = config(64513, 64512);
    c.families = vec![Family::Ipv4Unicast];
    let mut fsm = established(c, peer_open(64512, 90, PEER_ID));
    let actions = fsm.handle(Event::MessageReceived(Message::RouteRefresh(
        RouteRefresh::new(Family::Ipv6Unicast),
    )));
    assert!(!actions.iter().any(|a| matches!(a, Action::ResendTable(_))));
    let unknown = RouteRefresh {
        afi: 25,
        subtype: 0,
        safi: 65,
    };
    let actions = fsm.handle(Event::MessageReceived(Message::RouteRefresh(unknown)));
    assert!(!actions.iter().any(|a| matches!(a, Action::ResendTable(_))));
    assert_eq!(fsm.state(), State::Established);
}

#[test]
fn peer_graceful_restart_capability_is_reported() {
    let mut peer = peer_open(64512, 90, PEER_ID);
    peer.capabilities
        .push(Capability::GracefulRestart(GracefulRestart {
            restart_state: true,
            notification: false,
            restart_time: 120,
            families: vec![],
        }));
    peer.capabilities.push(Capability::Unknown {
        code: 73,
        value: Bytes::from_static(b"\x03rtr"),
    });
    let fsm = established(config(64513, 64512), peer);
    let n = fsm.negotiated().unwrap();
    assert_eq!(
        n.context
            .peer_graceful_restart
            .as_ref()
            .unwrap()
            .restart_time,
        120
    );
    assert!(n.peer_open.capabilities.iter().any(|c| c.code() == 73));
}

// ---- Random event sequences ----

mod random_sequences {
    use super::*;
    use proptest::prelude::*;

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            Just(Event::ManualStart),
            Just(Event::ManualStop {
                communication: "bye".into()
            }),
            Just(Event::TcpConnected { local: local() }),
            Just(Event::TcpFailed("refused".into())),
            Just(Event::TcpClosed("reset".into())),
            (0u16..5, prop_oneof![Just(64512u32), Just(64999)]).prop_map(|(h, asn)| {
                Event::MessageReceived(Message::Open(peer_open(asn, h * 3, PEER_ID)))
            }),
            Just(Event::MessageReceived(Message::Keepalive)),
            Just(Event::MessageReceived(Message::Update(Update::end_of_rib(
                Family::Ipv4Unicast
            )))),
            Just(Event::MessageReceived(Message::Notification(
                NotificationError::HoldTimerExpired.into()
            ))),
            Just(Event::DecodeFailed(
                NotificationError::ConnectionNotSynchronized
            )),
            prop::sample::select(Timer::ALL.to_vec()).prop_map(Event::TimerExpired),
        ]
    }

    proptest! {
        #[test]
        fn invariants_hold(events in prop::collection::vec(event(), 0..60)) {
            let mut fsm = Fsm::new(config(64513, 64512));
            let mut opens_on_connection = 0;
            let mut got_open = false;
            for e in events {
                let before = fsm.state();
                // A connection the FSM takes (in Connect); a stale one it closes leaves the session as it was.
                if matches!(e, Event::TcpConnected { .. }) && before == State::Connect {
                    opens_on_connection = 0;
                    got_open = false;
                }
                let is_open = matches!(e, Event::MessageReceived(Message::Open(_)));
                let actions = fsm.handle(e);
                let after = fsm.state();
                opens_on_connection += sent_opens(&actions).len();
                prop_assert!(opens_on_connection <= 1, "two OPENs on one connection");
                if before == State::OpenSent && after == State::OpenConfirm {
                    prop_assert!(is_open);
                    got_open = true;
                    let hold = fsm.negotiated().unwrap().context.hold_time;
                    let armed = actions.iter().any(|a| matches!(a, Action::ArmTimer(Timer::Hold, d) if d.as_secs() == u64::from(hold)));
                    prop_assert_eq!(armed, hold > 0);
                }
                if after == State::Established && before != State::Established {
                    prop_assert!(got_open && before == State::OpenConfirm);
                    prop_assert!(actions.iter().any(|a| matches!(a, Action::Established(_))));
                }
                // Every NOTIFICATION we send is followed by closing the connection.
                if actions.iter().any(|a| matches!(a, Action::Send(Message::Notification(_)))) {
                    prop_assert!(actions.contains(&Action::CloseConnection));
                    prop_assert_eq!(after, State::Idle);
                }
                // Leaving a connected state always closes the connection.
                if matches!(before, State::OpenSent | State::OpenConfirm | State::Established)
                    && after == State::Idle
                {
                    prop_assert!(actions.contains(&Action::CloseConnection));
                }
                // Nothing is sent while not connected.
                if !matches!(before, State::OpenSent | State::OpenConfirm | State::Established)
                    && !matches!(before, State::Connect)
                {
                    prop_assert!(!actions.iter().any(|a| matches!(a, Action::Send(_))));
                }
            }
        }
    }
}

//! BFD guarding a BGP session (RFC 9384), in the sans-IO FSM: no connection while BFD is not
//! Up, Cease / BFD Down (exact bytes) when it goes Down, then a retry through the normal
//! backoff that again waits for BFD.

use ferrolb_bgp::fsm::{Action, DownReason, Event, Fsm, FsmConfig, State, Timer};
use ferrolb_bgp::wire::{
    Capability, Cease, Family, Message, NotificationError, Open, SessionContext,
};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// Cease (6) / BFD Down (10): marker, length 21, type NOTIFICATION (3), code, subcode.
const CEASE_BFD_DOWN: [u8; 21] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x00, 0x15, 0x03, 0x06, 0x0a,
];

fn gated() -> FsmConfig {
    let mut c = FsmConfig::new(64513, 64512);
    c.jitter_seed = 42;
    c.bfd_gated = true;
    c
}

fn local() -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2))
}

fn peer_open() -> Open {
    Open::new(
        64512,
        90,
        Ipv4Addr::new(198, 18, 0, 1),
        vec![
            Capability::Multiprotocol(Family::Ipv4Unicast),
            Capability::FourOctetAs(64512),
        ],
    )
}

fn to_connect() -> Vec<Action> {
    vec![
        Action::StateChanged {
            from: State::Idle,
            to: State::Connect,
        },
        Action::Connect,
    ]
}

/// A gated FSM, started, BFD Up, Established.
fn established() -> Fsm {
    let mut fsm = Fsm::new(gated());
    fsm.handle(Event::ManualStart);
    fsm.handle(Event::BfdUp);
    fsm.handle(Event::TcpConnected { local: local() });
    fsm.handle(Event::MessageReceived(Message::Open(peer_open())));
    fsm.handle(Event::MessageReceived(Message::Keepalive));
    assert_eq!(fsm.state(), State::Established);
    fsm
}

fn notification_bytes(actions: &[Action]) -> Vec<Vec<u8>> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(m @ Message::Notification(_)) => {
                Some(m.encode(&SessionContext::before_open()).unwrap().to_vec())
            }
            _ => None,
        })
        .collect()
}

fn retry_delay(actions: &[Action]) -> Option<Duration> {
    actions.iter().find_map(|a| match a {
        Action::ArmTimer(Timer::ConnectRetry, d) => Some(*d),
        _ => None,
    })
}

#[test]
fn start_does_not_connect_until_bfd_is_up() {
    let mut fsm = Fsm::new(gated());
    assert!(!fsm.bfd_up());
    assert_eq!(
        fsm.handle(Event::ManualStart),
        vec![Action::CancelTimer(Timer::ConnectRetry)]
    );
    assert_eq!(fsm.state(), State::Idle);
    assert_eq!(fsm.handle(Event::BfdUp), to_connect());
    assert!(fsm.bfd_up());
    assert_eq!(fsm.state(), State::Connect);
}

#[test]
fn bfd_up_before_start_connects_on_start() {
    let mut fsm = Fsm::new(gated());
    assert_eq!(fsm.handle(Event::BfdUp), vec![]);
    let mut want = vec![Action::CancelTimer(Timer::ConnectRetry)];
    want.extend(to_connect());
    assert_eq!(fsm.handle(Event::ManualStart), want);
}

#[test]
fn bfd_down_when_established_sends_cease_bfd_down_and_schedules_a_retry() {
    let mut fsm = established();
    let actions = fsm.handle(Event::BfdDown);
    assert_eq!(notification_bytes(&actions), vec![CEASE_BFD_DOWN.to_vec()]);
    let error = NotificationError::Cease(Cease::BfdDown);
    let send = actions
        .iter()
        .position(|a| matches!(a, Action::Send(Message::Notification(_))))
        .unwrap();
    let close = actions
        .iter()
        .position(|a| *a == Action::CloseConnection)
        .unwrap();
    assert!(send < close, "NOTIFICATION before closing: {actions:?}");
    assert!(actions.contains(&Action::StateChanged {
        from: State::Established,
        to: State::Idle
    }));
    assert!(actions.contains(&Action::Down(DownReason::NotificationSent(error))));
    // The normal backoff: the first failure waits about the initial delay (1 s, jittered).
    let delay = retry_delay(&actions).unwrap();
    assert!(
        delay >= Duration::from_millis(500) && delay <= Duration::from_millis(1500),
        "{delay:?}"
    );
    assert_eq!(fsm.state(), State::Idle);
    assert_eq!(fsm.connect_failures(), 1);
}

#[test]
fn retry_waits_for_bfd_then_connects_when_it_comes_up() {
    let mut fsm = established();
    fsm.handle(Event::BfdDown);
    // The retry timer fires while BFD is still Down: nothing happens.
    assert_eq!(fsm.handle(Event::TimerExpired(Timer::ConnectRetry)), vec![]);
    assert_eq!(fsm.state(), State::Idle);
    assert_eq!(fsm.handle(Event::BfdUp), to_connect());
}

#[test]
fn bfd_up_before_the_retry_timer_waits_for_the_timer() {
    let mut fsm = established();
    fsm.handle(Event::BfdDown);
    // BFD back before the backoff delay ran out: the backoff still applies.
    assert_eq!(fsm.handle(Event::BfdUp), vec![]);
    assert_eq!(fsm.state(), State::Idle);
    assert_eq!(
        fsm.handle(Event::TimerExpired(Timer::ConnectRetry)),
        to_connect()
    );
}

#[test]
fn bfd_down_in_open_sent_and_open_confirm_sends_cease_bfd_down() {
    let mut fsm = Fsm::new(gated());
    fsm.handle(Event::BfdUp);
    fsm.handle(Event::ManualStart);
    fsm.handle(Event::TcpConnected { local: local() });
    assert_eq!(fsm.state(), State::OpenSent);
    let actions = fsm.handle(Event::BfdDown);
    assert_eq!(notification_bytes(&actions), vec![CEASE_BFD_DOWN.to_vec()]);
    assert_eq!(fsm.state(), State::Idle);

    let mut fsm = Fsm::new(gated());
    fsm.handle(Event::BfdUp);
    fsm.handle(Event::ManualStart);
    fsm.handle(Event::TcpConnected { local: local() });
    fsm.handle(Event::MessageReceived(Message::Open(peer_open())));
    assert_eq!(fsm.state(), State::OpenConfirm);
    let actions = fsm.handle(Event::BfdDown);
    assert_eq!(notification_bytes(&actions), vec![CEASE_BFD_DOWN.to_vec()]);
    assert_eq!(fsm.state(), State::Idle);
}

#[test]
fn bfd_down_while_connecting_abandons_the_connection_without_a_notification() {
    let mut fsm = Fsm::new(gated());
    fsm.handle(Event::BfdUp);
    fsm.handle(Event::ManualStart);
    assert_eq!(fsm.state(), State::Connect);
    let actions = fsm.handle(Event::BfdDown);
    assert!(notification_bytes(&actions).is_empty());
    assert_eq!(actions.first(), Some(&Action::CloseConnection));
    assert!(actions.contains(&Action::Down(DownReason::Connection("BFD Down".into()))));
    assert!(retry_delay(&actions).is_some());
    assert_eq!(fsm.state(), State::Idle);
    // A connection that completes anyway is dropped, not used.
    assert_eq!(
        fsm.handle(Event::TcpConnected { local: local() }),
        vec![Action::CloseConnection]
    );
}

#[test]
fn repeated_bfd_events_do_nothing_more() {
    let mut fsm = established();
    assert_eq!(fsm.handle(Event::BfdUp), vec![]);
    fsm.handle(Event::BfdDown);
    assert_eq!(fsm.handle(Event::BfdDown), vec![]);
    assert_eq!(fsm.connect_failures(), 1);
}

#[test]
fn without_bfd_gating_bfd_events_are_ignored() {
    let mut c = gated();
    c.bfd_gated = false;
    let mut fsm = Fsm::new(c);
    assert!(fsm.bfd_up());
    fsm.handle(Event::ManualStart);
    assert_eq!(fsm.state(), State::Connect);
    assert_eq!(fsm.handle(Event::BfdDown), vec![]);
    assert_eq!(fsm.state(), State::Connect);
}

#[test]
fn manual_stop_while_waiting_for_bfd_does_not_connect_later() {
    let mut fsm = Fsm::new(gated());
    fsm.handle(Event::ManualStart);
    fsm.handle(Event::ManualStop {
        communication: String::new(),
    });
    assert_eq!(fsm.handle(Event::BfdUp), vec![]);
    assert_eq!(fsm.state(), State::Idle);
}

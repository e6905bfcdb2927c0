//! BFD guarding a BGP session (RFC 9384), in the sans-IO FSM: the OPEN exchange happens while
//! BFD is not Up but the session holds in OpenConfirm (our KEEPALIVE unsent) until it is,
//! Cease / BFD Down (exact bytes) when it goes Down, then a retry through the normal backoff
//! that again holds until BFD is Up.

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

/// Whether an action sends a KEEPALIVE (the one that confirms the peer's OPEN, in OpenConfirm).
fn is_keepalive_sent(a: &Action) -> bool {
    matches!(a, Action::Send(Message::Keepalive))
}

fn is_established(a: &Action) -> bool {
    matches!(a, Action::Established(_))
}

/// A gated FSM, started with BFD Down, through the OPEN exchange.
fn holding_in_open_confirm() -> Fsm {
    let mut fsm = Fsm::new(gated());
    assert!(!fsm.bfd_up());
    let mut want = vec![Action::CancelTimer(Timer::ConnectRetry)];
    want.extend(to_connect());
    // Connecting does not wait for BFD: a router with dynamic neighbours creates its BFD
    // session only when our TCP connection arrives.
    assert_eq!(fsm.handle(Event::ManualStart), want);
    let sent_open = fsm.handle(Event::TcpConnected { local: local() });
    assert!(matches!(
        sent_open.first(),
        Some(Action::Send(Message::Open(_)))
    ));
    let actions = fsm.handle(Event::MessageReceived(Message::Open(peer_open())));
    assert_eq!(fsm.state(), State::OpenConfirm);
    assert!(
        !actions.iter().any(is_keepalive_sent),
        "our KEEPALIVE must wait for BFD: {actions:?}"
    );
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::ArmTimer(Timer::Keepalive, _))),
        "{actions:?}"
    );
    assert!(actions.contains(&Action::ArmTimer(Timer::Hold, Duration::from_secs(90))));
    fsm
}

#[test]
fn start_connects_but_holds_in_open_confirm_until_bfd_is_up() {
    let mut fsm = holding_in_open_confirm();
    // The peer confirms: its KEEPALIVE restarts the hold timer, but we stay in OpenConfirm.
    assert_eq!(
        fsm.handle(Event::MessageReceived(Message::Keepalive)),
        vec![Action::ArmTimer(Timer::Hold, Duration::from_secs(90))]
    );
    assert_eq!(fsm.state(), State::OpenConfirm);
    // The keepalive timer cannot fire (it was never armed), and if it did nothing is sent.
    assert_eq!(fsm.handle(Event::TimerExpired(Timer::Keepalive)), vec![]);
    // BFD Up: our KEEPALIVE goes out and the session is Established at once.
    let actions = fsm.handle(Event::BfdUp);
    assert!(fsm.bfd_up());
    assert_eq!(
        actions[..3],
        [
            Action::Send(Message::Keepalive),
            Action::ArmTimer(Timer::Keepalive, Duration::from_secs(30)),
            Action::StateChanged {
                from: State::OpenConfirm,
                to: State::Established
            },
        ]
    );
    assert!(actions.iter().any(is_established), "{actions:?}");
    assert_eq!(fsm.state(), State::Established);
}

#[test]
fn bfd_up_before_the_peers_keepalive_confirms_and_the_keepalive_then_establishes() {
    let mut fsm = holding_in_open_confirm();
    assert_eq!(
        fsm.handle(Event::BfdUp),
        vec![
            Action::Send(Message::Keepalive),
            Action::ArmTimer(Timer::Keepalive, Duration::from_secs(30)),
        ]
    );
    assert_eq!(fsm.state(), State::OpenConfirm);
    let actions = fsm.handle(Event::MessageReceived(Message::Keepalive));
    assert!(actions.iter().any(is_established), "{actions:?}");
    assert_eq!(fsm.state(), State::Established);
}

#[test]
fn bfd_never_up_ends_in_the_hold_timer_like_any_silent_open_confirm() {
    let mut fsm = holding_in_open_confirm();
    let actions = fsm.handle(Event::TimerExpired(Timer::Hold));
    // Hold Timer Expired (4/0), then the normal backoff.
    assert_eq!(
        notification_bytes(&actions),
        vec![vec![
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0x00, 0x15, 0x03, 0x04, 0x00
        ]]
    );
    assert!(retry_delay(&actions).is_some());
    assert_eq!(fsm.state(), State::Idle);
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
fn retry_after_bfd_down_connects_through_the_backoff_and_holds_again() {
    let mut fsm = established();
    fsm.handle(Event::BfdDown);
    // The retry timer fires while BFD is still Down: connect, but do not confirm.
    assert_eq!(
        fsm.handle(Event::TimerExpired(Timer::ConnectRetry)),
        to_connect()
    );
    fsm.handle(Event::TcpConnected { local: local() });
    let actions = fsm.handle(Event::MessageReceived(Message::Open(peer_open())));
    assert!(!actions.iter().any(is_keepalive_sent), "{actions:?}");
    fsm.handle(Event::MessageReceived(Message::Keepalive));
    assert_eq!(fsm.state(), State::OpenConfirm);
    let actions = fsm.handle(Event::BfdUp);
    assert!(actions.iter().any(is_keepalive_sent), "{actions:?}");
    assert_eq!(fsm.state(), State::Established);
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
fn manual_stop_while_holding_for_bfd_closes_and_bfd_up_later_does_nothing() {
    let mut fsm = holding_in_open_confirm();
    let actions = fsm.handle(Event::ManualStop {
        communication: String::new(),
    });
    assert!(actions.contains(&Action::CloseConnection), "{actions:?}");
    assert_eq!(fsm.state(), State::Idle);
    assert_eq!(fsm.handle(Event::BfdUp), vec![]);
    assert_eq!(fsm.state(), State::Idle);
}

use std::num::NonZeroU32;

use super::*;

const LOCAL: u32 = 0x0000_1111;
const REMOTE: u32 = 0x0000_2222;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn timers(tx: u64, rx: u64, mult: u8) -> Timers {
    Timers {
        desired_min_tx: ms(tx),
        required_min_rx: ms(rx),
        detect_mult: mult,
    }
}

fn config(passive: bool) -> SessionConfig {
    SessionConfig {
        local_discriminator: NonZeroU32::new(LOCAL).unwrap(),
        timers: timers(100, 100, 3),
        passive,
    }
}

/// A packet from the remote, still in slow start (1 s TX), requiring 100 ms RX, multiplier 3.
fn remote(state: State) -> ControlPacket {
    ControlPacket {
        diagnostic: Diagnostic::None,
        state,
        poll: false,
        final_bit: false,
        control_plane_independent: false,
        demand: false,
        detect_mult: 3,
        my_discriminator: REMOTE,
        your_discriminator: if matches!(state, State::Down | State::AdminDown) {
            0
        } else {
            LOCAL
        },
        desired_min_tx_us: 1_000_000,
        required_min_rx_us: 100_000,
        required_min_echo_rx_us: 0,
    }
}

fn sent(actions: &[Action]) -> Vec<ControlPacket> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::Send(packet) => Some(*packet),
            _ => None,
        })
        .collect()
}

fn state_changes(actions: &[Action]) -> Vec<(State, State, Diagnostic)> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::StateChanged {
                from,
                to,
                diagnostic,
            } => Some((*from, *to, *diagnostic)),
            _ => None,
        })
        .collect()
}

fn new_session() -> Session {
    Session::new(config(false), Duration::ZERO, Jitter::MIN).0
}

/// A session brought to `state` at t = 0.
fn session_in(state: State) -> Session {
    let mut session = new_session();
    match state {
        State::Down => {}
        State::Init => {
            session.handle(
                Duration::ZERO,
                Jitter::MIN,
                Event::Received(remote(State::Down)),
            );
        }
        State::Up => {
            session.handle(
                Duration::ZERO,
                Jitter::MIN,
                Event::Received(remote(State::Init)),
            );
        }
        State::AdminDown => {
            session.handle(Duration::ZERO, Jitter::MIN, Event::AdminDown);
        }
    }
    assert_eq!(session.state(), state);
    session
}

#[test]
fn new_active_session_sends_down_in_slow_start_and_arms_jittered_timer() {
    let (session, actions) = Session::new(config(false), ms(5), Jitter::MIN);
    let expected = ControlPacket {
        diagnostic: Diagnostic::None,
        state: State::Down,
        poll: false,
        final_bit: false,
        control_plane_independent: false,
        demand: false,
        detect_mult: 3,
        my_discriminator: LOCAL,
        your_discriminator: 0,
        desired_min_tx_us: 1_000_000,
        required_min_rx_us: 100_000,
        required_min_echo_rx_us: 0,
    };
    assert_eq!(
        actions,
        vec![Action::Send(expected), Action::ArmTransmitTimer(ms(755))]
    );
    assert_eq!(session.transmit_interval(), ms(1000));
    assert_eq!(session.detection_time(), None);
}

#[test]
fn passive_session_is_silent_until_the_remote_speaks() {
    let (mut session, actions) = Session::new(config(true), Duration::ZERO, Jitter::MIN);
    assert_eq!(actions, vec![]);
    assert_eq!(
        session.handle(ms(10), Jitter::MIN, Event::TransmitTimerExpired),
        vec![]
    );
    let actions = session.handle(ms(20), Jitter::MIN, Event::Received(remote(State::Down)));
    let packets = sent(&actions);
    assert_eq!(packets.len(), 1);
    assert_eq!(packets[0].state, State::Init);
    assert_eq!(packets[0].your_discriminator, REMOTE);
    assert!(actions.contains(&Action::ArmTransmitTimer(ms(20) + ms(750))));
}

/// RFC 5880 §6.2 / §6.8.6: every (local state, received state) pair.
#[test]
fn received_state_table_matches_rfc_5880() {
    use Diagnostic::{NeighborSignaledSessionDown as Nsd, None as NoDiag};
    use State::{AdminDown, Down, Init, Up};
    let table = [
        (Down, AdminDown, Down, NoDiag),
        (Down, Down, Init, NoDiag),
        (Down, Init, Up, NoDiag),
        (Down, Up, Down, NoDiag),
        (Init, AdminDown, Down, Nsd),
        (Init, Down, Init, NoDiag),
        (Init, Init, Up, NoDiag),
        (Init, Up, Up, NoDiag),
        (Up, AdminDown, Down, Nsd),
        (Up, Down, Down, Nsd),
        (Up, Init, Up, NoDiag),
        (Up, Up, Up, NoDiag),
    ];
    for (from, received, to, diagnostic) in table {
        let mut session = session_in(from);
        let actions = session.handle(ms(50), Jitter::MIN, Event::Received(remote(received)));
        assert_eq!(session.state(), to, "{from} + received {received}");
        assert_eq!(session.remote_state(), received);
        assert_eq!(session.remote_discriminator(), REMOTE);
        let changes = state_changes(&actions);
        if from == to {
            assert_eq!(changes, vec![], "{from} + received {received}");
            assert!(
                sent(&actions).is_empty(),
                "no state change, no poll: nothing sent at once"
            );
        } else {
            assert_eq!(
                changes,
                vec![(from, to, diagnostic)],
                "{from} + received {received}"
            );
            assert_eq!(session.local_diagnostic(), diagnostic);
            let packets = sent(&actions);
            assert_eq!(packets[0].state, to, "the new state is sent at once");
            assert_eq!(packets[0].diagnostic, diagnostic);
        }
        // Any valid packet (re)arms detection: 3 × max(100 ms, 1 s).
        assert!(actions.contains(&Action::ArmDetectionTimer(ms(50) + ms(3000))));
    }
}

#[test]
fn detection_timer_expiry_takes_init_and_up_down_with_diag_1() {
    for (from, to, diagnostic) in [
        (State::Down, None, Diagnostic::None),
        (
            State::Init,
            Some(State::Down),
            Diagnostic::ControlDetectionTimeExpired,
        ),
        (
            State::Up,
            Some(State::Down),
            Diagnostic::ControlDetectionTimeExpired,
        ),
    ] {
        let mut session = session_in(from);
        if from == State::Down {
            session.handle(
                ms(1),
                Jitter::MIN,
                Event::Received(remote(State::AdminDown)),
            );
        }
        let actions = session.handle(ms(3001), Jitter::MIN, Event::DetectionTimerExpired);
        match to {
            Some(to) => assert_eq!(state_changes(&actions), vec![(from, to, diagnostic)]),
            None => {
                assert_eq!(state_changes(&actions), vec![]);
                assert!(
                    sent(&actions).is_empty(),
                    "no extra packet without a state change"
                );
            }
        }
        assert_eq!(session.state(), State::Down);
        assert_eq!(session.local_diagnostic(), diagnostic);
        // §6.8.1: the remote discriminator is forgotten.
        assert_eq!(session.remote_discriminator(), 0);
        assert!(
            sent(&actions)
                .iter()
                .all(|p| p.your_discriminator == 0 && p.state == State::Down)
        );
        assert_eq!(session.detection_time(), None);
    }
}

#[test]
fn stale_timer_events_do_nothing() {
    let mut session = new_session();
    assert_eq!(
        session.handle(ms(1), Jitter::MIN, Event::DetectionTimerExpired),
        vec![]
    );
    let (mut passive, _) = Session::new(config(true), Duration::ZERO, Jitter::MIN);
    assert_eq!(
        passive.handle(ms(1), Jitter::MIN, Event::TransmitTimerExpired),
        vec![]
    );
}

#[test]
fn admin_down_from_every_state_and_back() {
    for from in [State::Down, State::Init, State::Up] {
        let mut session = session_in(from);
        let actions = session.handle(ms(10), Jitter::MIN, Event::AdminDown);
        assert_eq!(
            state_changes(&actions),
            vec![(from, State::AdminDown, Diagnostic::AdministrativelyDown)]
        );
        let packets = sent(&actions);
        assert_eq!(packets.len(), 1);
        assert_eq!(packets[0].state, State::AdminDown);
        assert_eq!(packets[0].diagnostic, Diagnostic::AdministrativelyDown);
        if from != State::Down {
            assert!(actions.contains(&Action::StopDetectionTimer));
        }
        // Packets keep being sent in AdminDown; received ones are discarded.
        let actions = session.handle(ms(20), Jitter::MIN, Event::Received(remote(State::Up)));
        assert_eq!(
            actions,
            vec![Action::Discarded(DiscardReason::SessionAdminDown)]
        );
        assert_eq!(session.state(), State::AdminDown);
        let actions = session.handle(ms(800), Jitter::MIN, Event::TransmitTimerExpired);
        assert_eq!(sent(&actions)[0].state, State::AdminDown);
        // Repeated AdminDown is a no-op.
        assert_eq!(
            session.handle(ms(801), Jitter::MIN, Event::AdminDown),
            vec![]
        );
        let actions = session.handle(ms(900), Jitter::MIN, Event::AdminUp);
        assert_eq!(
            state_changes(&actions),
            vec![(State::AdminDown, State::Down, Diagnostic::None)]
        );
        assert_eq!(session.state(), State::Down);
    }
    let mut session = new_session();
    assert_eq!(session.handle(ms(1), Jitter::MIN, Event::AdminUp), vec![]);
}

#[test]
fn unknown_your_discriminator_is_discarded_without_effect() {
    let mut session = session_in(State::Init);
    let mut packet = remote(State::Up);
    packet.your_discriminator = 0xdead;
    let actions = session.handle(ms(10), Jitter::MIN, Event::Received(packet));
    assert_eq!(
        actions,
        vec![Action::Discarded(DiscardReason::UnknownDiscriminator {
            discriminator: 0xdead
        })]
    );
    assert_eq!(session.state(), State::Init);
}

#[test]
fn detection_time_uses_remote_multiplier_and_larger_interval() {
    let mut session = session_in(State::Init);
    let mut packet = remote(State::Init);
    packet.detect_mult = 5;
    packet.desired_min_tx_us = 50_000;
    let actions = session.handle(ms(10), Jitter::MIN, Event::Received(packet));
    // 5 × max(our 100 ms RX, their 50 ms TX) = 500 ms.
    assert_eq!(session.detection_time(), Some(ms(500)));
    assert!(actions.contains(&Action::ArmDetectionTimer(ms(510))));
    packet.desired_min_tx_us = 250_000;
    session.handle(ms(20), Jitter::MIN, Event::Received(packet));
    assert_eq!(session.detection_time(), Some(ms(1250)));
}

#[test]
fn coming_up_leaves_slow_start_through_a_poll_sequence() {
    let mut session = session_in(State::Init);
    assert_eq!(session.advertised().desired_min_tx, ms(1000));
    let actions = session.handle(ms(100), Jitter::MIN, Event::Received(remote(State::Up)));
    assert_eq!(
        state_changes(&actions),
        vec![(State::Init, State::Up, Diagnostic::None)]
    );
    let packets = sent(&actions);
    assert_eq!(
        packets.len(),
        1,
        "one packet: Up, with Poll and the real timers"
    );
    assert_eq!(packets[0].state, State::Up);
    assert!(packets[0].poll);
    assert_eq!(packets[0].desired_min_tx_us, 100_000);
    assert!(session.poll_active());
    // A faster TX applies at once: max(100 ms, remote's 100 ms RX), jittered.
    assert_eq!(session.transmit_interval(), ms(100));
    assert!(actions.contains(&Action::ArmTransmitTimer(ms(175))));
    // Periodic packets carry Poll until the Final arrives.
    let actions = session.handle(ms(175), Jitter::MIN, Event::TransmitTimerExpired);
    assert!(sent(&actions)[0].poll);
    let mut fin = remote(State::Up);
    fin.final_bit = true;
    fin.desired_min_tx_us = 100_000;
    session.handle(ms(180), Jitter::MIN, Event::Received(fin));
    assert!(!session.poll_active());
    let actions = session.handle(ms(255), Jitter::MIN, Event::TransmitTimerExpired);
    assert!(!sent(&actions)[0].poll);
    assert_eq!(session.detection_time(), Some(ms(300)));
}

fn up_and_settled() -> Session {
    let mut session = session_in(State::Init);
    session.handle(ms(0), Jitter::MIN, Event::Received(remote(State::Up)));
    let mut fin = remote(State::Up);
    fin.final_bit = true;
    fin.desired_min_tx_us = 100_000;
    session.handle(ms(1), Jitter::MIN, Event::Received(fin));
    assert!(!session.poll_active());
    session
}

#[test]
fn received_poll_is_answered_with_final_at_once() {
    let mut session = up_and_settled();
    let mut poll = remote(State::Up);
    poll.poll = true;
    poll.desired_min_tx_us = 300_000;
    let actions = session.handle(ms(40), Jitter::MIN, Event::Received(poll));
    let packets = sent(&actions);
    assert_eq!(packets.len(), 1);
    assert!(packets[0].final_bit);
    assert!(!packets[0].poll);
    assert_eq!(packets[0].state, State::Up);
    assert_eq!(session.detection_time(), Some(ms(900)));
}

#[test]
fn slower_tx_and_faster_rx_wait_for_final() {
    let mut session = up_and_settled();
    assert_eq!(session.detection_time(), Some(ms(300)));
    let actions = session.handle(ms(10), Jitter::MIN, Event::ChangeTimers(timers(300, 50, 4)));
    let packets = sent(&actions);
    assert_eq!(packets.len(), 1);
    assert!(packets[0].poll);
    assert_eq!(
        (
            packets[0].desired_min_tx_us,
            packets[0].required_min_rx_us,
            packets[0].detect_mult
        ),
        (300_000, 50_000, 4)
    );
    // Old TX interval and old RX for detection stay in force until Final.
    assert_eq!(session.transmit_interval(), ms(100));
    let mut packet = remote(State::Up);
    packet.desired_min_tx_us = 20_000;
    session.handle(ms(20), Jitter::MIN, Event::Received(packet));
    assert_eq!(session.detection_time(), Some(ms(300)));
    packet.final_bit = true;
    session.handle(ms(30), Jitter::MIN, Event::Received(packet));
    assert_eq!(session.transmit_interval(), ms(300));
    assert_eq!(session.detection_time(), Some(ms(150)));
}

#[test]
fn timer_change_during_a_poll_is_queued_until_final() {
    let mut session = up_and_settled();
    session.handle(
        ms(10),
        Jitter::MIN,
        Event::ChangeTimers(timers(200, 100, 3)),
    );
    let actions = session.handle(
        ms(11),
        Jitter::MIN,
        Event::ChangeTimers(timers(300, 100, 3)),
    );
    assert!(sent(&actions).is_empty());
    assert_eq!(session.advertised().desired_min_tx, ms(200));
    let mut fin = remote(State::Up);
    fin.final_bit = true;
    let actions = session.handle(ms(20), Jitter::MIN, Event::Received(fin));
    let packets = sent(&actions);
    assert_eq!(packets.len(), 1);
    assert!(packets[0].poll);
    assert_eq!(packets[0].desired_min_tx_us, 300_000);
    assert!(session.poll_active());
}

#[test]
fn timer_change_while_down_applies_at_once_with_slow_start_floor() {
    let mut session = new_session();
    let actions = session.handle(
        ms(10),
        Jitter::MIN,
        Event::ChangeTimers(timers(2000, 500, 5)),
    );
    assert!(sent(&actions).is_empty());
    assert!(!session.poll_active());
    assert_eq!(session.advertised(), timers(2000, 500, 5));
    session.handle(ms(20), Jitter::MIN, Event::ChangeTimers(timers(50, 500, 5)));
    assert_eq!(session.advertised().desired_min_tx, ms(1000));
}

#[test]
fn going_down_from_up_returns_to_slow_start() {
    let mut session = up_and_settled();
    let actions = session.handle(ms(50), Jitter::MIN, Event::Received(remote(State::Down)));
    assert_eq!(session.state(), State::Down);
    assert_eq!(sent(&actions)[0].desired_min_tx_us, 1_000_000);
    assert_eq!(session.transmit_interval(), ms(1000));
}

#[test]
fn remote_required_rx_zero_stops_periodic_transmission() {
    let mut session = up_and_settled();
    let mut packet = remote(State::Up);
    packet.required_min_rx_us = 0;
    let actions = session.handle(ms(10), Jitter::MIN, Event::Received(packet));
    assert!(actions.contains(&Action::StopTransmitTimer));
    // A Poll is still answered.
    packet.poll = true;
    let actions = session.handle(ms(20), Jitter::MIN, Event::Received(packet));
    assert!(sent(&actions)[0].final_bit);
    packet.poll = false;
    packet.required_min_rx_us = 100_000;
    let actions = session.handle(ms(30), Jitter::MIN, Event::Received(packet));
    assert!(actions.contains(&Action::ArmTransmitTimer(ms(105))));
}

#[test]
fn remote_demand_mode_stops_periodic_transmission_when_both_up() {
    let mut session = up_and_settled();
    let mut packet = remote(State::Up);
    packet.demand = true;
    let actions = session.handle(ms(10), Jitter::MIN, Event::Received(packet));
    assert!(actions.contains(&Action::StopTransmitTimer));
    // A Poll Sequence of ours still transmits.
    let actions = session.handle(
        ms(20),
        Jitter::MIN,
        Event::ChangeTimers(timers(200, 100, 3)),
    );
    assert!(sent(&actions)[0].poll);
    assert!(actions.contains(&Action::ArmTransmitTimer(ms(20) + ms(75))));
}

#[test]
fn slower_remote_rx_slows_our_transmission() {
    let mut session = session_in(State::Down);
    // Armed at 750 ms (1 s slow start, Jitter::MIN). The remote asks for 2 s: the interval grows.
    let mut packet = remote(State::AdminDown);
    packet.required_min_rx_us = 2_000_000;
    session.handle(ms(10), Jitter::MIN, Event::Received(packet));
    assert_eq!(session.transmit_interval(), ms(2000));
}

#[test]
fn jitter_stays_within_rfc_bounds() {
    let interval = ms(1000);
    assert_eq!(Jitter::MIN.apply(interval, 3), ms(750));
    let longest = Jitter::MAX.apply(interval, 3);
    assert!(longest < interval && longest > ms(999), "{longest:?}");
    assert_eq!(Jitter::MIN.apply(interval, 1), ms(750));
    let longest = Jitter::MAX.apply(interval, 1);
    assert!(longest < ms(900) && longest > ms(899), "{longest:?}");
    assert_eq!(
        Jitter::from_random(32_768).apply(interval, 3),
        Duration::from_micros(875_000)
    );
}

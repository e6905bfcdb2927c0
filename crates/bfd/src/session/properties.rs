//! Property tests: random event sequences must keep the RFC's invariants.

use std::num::NonZeroU32;

use proptest::prelude::*;

use super::*;

const LOCAL: u32 = 0x0101_0101;

fn any_state() -> impl Strategy<Value = State> {
    prop_oneof![
        Just(State::AdminDown),
        Just(State::Down),
        Just(State::Init),
        Just(State::Up)
    ]
}

fn remote_packet() -> impl Strategy<Value = ControlPacket> {
    (
        any_state(),
        0u8..3,
        any::<bool>(),
        1u8..=10,
        prop_oneof![Just(0u32), 10_000u32..2_000_000],
        10_000u32..2_000_000,
        any::<bool>(),
        prop_oneof![Just(LOCAL), Just(0xdead_beef_u32)],
    )
        .prop_map(
            |(state, poll_final, demand, detect_mult, rx, tx, use_your, your)| {
                let your_discriminator =
                    if use_your || !matches!(state, State::Down | State::AdminDown) {
                        your
                    } else {
                        0
                    };
                ControlPacket {
                    diagnostic: Diagnostic::None,
                    state,
                    poll: poll_final == 1,
                    final_bit: poll_final == 2,
                    control_plane_independent: false,
                    demand,
                    detect_mult,
                    my_discriminator: 0x0202_0202,
                    your_discriminator,
                    desired_min_tx_us: tx,
                    required_min_rx_us: rx,
                    required_min_echo_rx_us: 0,
                }
            },
        )
}

fn any_timers() -> impl Strategy<Value = Timers> {
    (10u64..3000, 10u64..3000, 1u8..=5).prop_map(|(tx, rx, mult)| Timers {
        desired_min_tx: Duration::from_millis(tx),
        required_min_rx: Duration::from_millis(rx),
        detect_mult: mult,
    })
}

fn any_event() -> impl Strategy<Value = Event> {
    prop_oneof![
        6 => remote_packet().prop_map(Event::Received),
        3 => Just(Event::TransmitTimerExpired),
        2 => Just(Event::DetectionTimerExpired),
        1 => Just(Event::AdminDown),
        1 => Just(Event::AdminUp),
        1 => any_timers().prop_map(Event::ChangeTimers),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_event_sequences_keep_rfc_invariants(
        passive in any::<bool>(),
        start in any_timers(),
        steps in proptest::collection::vec((0u64..1500, any::<u16>(), any_event()), 1..60),
    ) {
        let config = SessionConfig {
            local_discriminator: NonZeroU32::new(LOCAL).unwrap(),
            timers: start,
            passive,
        };
        let (mut session, _) = Session::new(config, Duration::ZERO, Jitter::MIN);
        let mut now = Duration::ZERO;
        for (advance, random, event) in steps {
            now += Duration::from_millis(advance);
            let before = session.state();
            let actions = session.handle(now, Jitter::from_random(random), event);
            let mut state = before;
            for action in &actions {
                match *action {
                    Action::StateChanged { from, to, .. } => {
                        prop_assert_eq!(from, state);
                        prop_assert_ne!(from, to);
                        if to == State::Up {
                            prop_assert!(matches!(from, State::Down | State::Init));
                        }
                        state = to;
                    }
                    Action::Send(packet) => {
                        prop_assert!(!(packet.poll && packet.final_bit), "P and F together");
                        prop_assert_eq!(packet.state, state);
                        prop_assert_eq!(packet.my_discriminator, LOCAL);
                        prop_assert_eq!(ControlPacket::decode(&packet.encode()), Ok(packet));
                        if packet.state != State::Up {
                            prop_assert!(packet.desired_min_tx_us >= 1_000_000, "slow start");
                        }
                        if passive {
                            prop_assert_ne!(session.remote_discriminator(), 0, "passive sent first");
                        }
                    }
                    Action::ArmDetectionTimer(at) => {
                        prop_assert_ne!(session.state(), State::AdminDown);
                        prop_assert_eq!(Some(at - now), session.detection_time());
                    }
                    _ => {}
                }
            }
            prop_assert_eq!(state, session.state());
            if let Some(Action::ArmTransmitTimer(at)) =
                actions.iter().rev().find(|a| matches!(a, Action::ArmTransmitTimer(_)))
            {
                let wait = *at - now;
                let interval = session.transmit_interval();
                let ceiling = if session.advertised().detect_mult == 1 { interval * 9 / 10 } else { interval };
                prop_assert!(wait >= interval * 3 / 4 && wait <= ceiling, "{wait:?} for {interval:?}");
            }
            if matches!(event, Event::AdminDown) {
                prop_assert_eq!(session.state(), State::AdminDown);
            }
            if session.state() == State::Up {
                prop_assert!(session.detection_time().is_some());
            }
        }
    }
}

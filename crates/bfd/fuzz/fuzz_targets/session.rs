//! Fuzzes the session state machine with event sequences read from the input: it must never
//! panic, and every packet it sends must be well formed.
#![no_main]

use std::num::NonZeroU32;
use std::time::Duration;

use ferrolb_bfd::{Action, ControlPacket, Event, Jitter, Session, SessionConfig, State, Timers};
use libfuzzer_sys::fuzz_target;

fn timers(bytes: &[u8]) -> Timers {
    let byte = |i: usize| u64::from(bytes.get(i).copied().unwrap_or(1));
    Timers {
        desired_min_tx: Duration::from_millis(10 + byte(0) * 10),
        required_min_rx: Duration::from_millis(10 + byte(1) * 10),
        detect_mult: u8::try_from(byte(2).max(1)).unwrap_or(3),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((head, mut rest)) = data.split_first() else {
        return;
    };
    let config = SessionConfig {
        local_discriminator: NonZeroU32::new(0x0101_0101).unwrap(),
        timers: timers(rest),
        passive: head & 1 == 1,
    };
    let (mut session, _) = Session::new(config, Duration::ZERO, Jitter::MIN);
    let mut now = Duration::ZERO;
    while let Some((op, tail)) = rest.split_first() {
        rest = tail;
        now += Duration::from_millis(u64::from(op >> 3) * 20);
        let event = match op & 7 {
            0 | 1 => {
                let Some(bytes) = rest.get(..24) else { return };
                rest = &rest[24..];
                match ControlPacket::decode(bytes) {
                    Ok(packet) => Event::Received(packet),
                    Err(_) => continue,
                }
            }
            2 => Event::TransmitTimerExpired,
            3 => Event::DetectionTimerExpired,
            4 => Event::AdminDown,
            5 => Event::AdminUp,
            _ => {
                let event = Event::ChangeTimers(timers(rest));
                rest = rest.get(3..).unwrap_or_default();
                event
            }
        };
        let jitter = Jitter::from_random(u16::from(*op) << 8);
        for action in session.handle(now, jitter, event) {
            if let Action::Send(sent) = action {
                assert!(!(sent.poll && sent.final_bit));
                assert_eq!(ControlPacket::decode(&sent.encode()), Ok(sent));
                if sent.state != State::Up {
                    assert!(sent.desired_min_tx_us >= 1_000_000);
                }
            }
        }
    }
});

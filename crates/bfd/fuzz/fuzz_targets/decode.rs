//! Fuzzes the Control packet decoder: it must never panic, a decoded packet must re-encode to the
//! bytes it came from (Length normalised to 24), and feeding it to sessions must never panic.
#![no_main]

use std::num::NonZeroU32;
use std::time::Duration;

use ferrolb_bfd::{ControlPacket, Event, Jitter, Session, SessionConfig, Timers};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = ControlPacket::decode(data) else {
        return;
    };
    let mut expected = [0u8; 24];
    expected.copy_from_slice(&data[..24]);
    expected[3] = 24;
    assert_eq!(packet.encode(), expected);
    assert_eq!(ControlPacket::decode(&packet.encode()), Ok(packet));

    let config = SessionConfig {
        local_discriminator: NonZeroU32::new(packet.your_discriminator.max(1)).unwrap(),
        timers: Timers {
            desired_min_tx: Duration::from_millis(100),
            required_min_rx: Duration::from_millis(100),
            detect_mult: 3,
        },
        passive: data.len() % 2 == 0,
    };
    let (mut session, _) = Session::new(config, Duration::ZERO, Jitter::MIN);
    let mut now = Duration::ZERO;
    for event in [
        Event::Received(packet),
        Event::TransmitTimerExpired,
        Event::Received(packet),
        Event::DetectionTimerExpired,
        Event::Received(packet),
    ] {
        now += Duration::from_millis(10);
        for action in session.handle(now, Jitter::MAX, event) {
            if let ferrolb_bfd::Action::Send(sent) = action {
                assert!(!(sent.poll && sent.final_bit));
                assert_eq!(ControlPacket::decode(&sent.encode()), Ok(sent));
            }
        }
    }
});

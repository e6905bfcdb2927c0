//! NOTIFICATION bodies: decode, the words an operator reads (Display, including RFC 8203 shutdown
//! communications), round-trip. Nothing may panic.
#![no_main]

#[path = "common.rs"]
mod common;

use ferrolb_bgp::wire::Message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((ctx, message)) = common::decode(data, 3) else {
        return;
    };
    if let Message::Notification(n) = &message {
        let _ = n.to_string();
    }
    common::round_trip(&ctx, message);
});

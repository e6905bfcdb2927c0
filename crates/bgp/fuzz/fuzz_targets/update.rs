//! UPDATE bodies under every capability context (the first octet: 4-octet AS, iBGP, extended messages, IPv6):
//! decode (RFC 7606 handling included), Display of the issues, round-trip. Nothing may panic.
#![no_main]

#[path = "common.rs"]
mod common;

use ferrolb_bgp::wire::Message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((ctx, message)) = common::decode(data, 2) else {
        return;
    };
    if let Message::Update(u) = &message {
        for issue in &u.issues {
            let _ = issue.error.to_string();
        }
    }
    common::round_trip(&ctx, message);
});

//! ROUTE-REFRESH bodies (RFC 2918, and RFC 7313's subtypes): decode and round-trip. Nothing may panic.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((ctx, message)) = common::decode(data, 5) else {
        return;
    };
    common::round_trip(&ctx, message);
});

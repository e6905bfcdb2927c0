//! OPEN bodies: decode, round-trip, and negotiation against ferrolb's own OPEN (iBGP and eBGP, 2- and 4-octet
//! AS). Nothing may panic; a negotiated context never claims a family or extended messages that ferrolb did not
//! offer.
#![no_main]

#[path = "common.rs"]
mod common;

use ferrolb_bgp::wire::{Capability, Family, Message, Open, negotiate};
use libfuzzer_sys::fuzz_target;
use std::net::Ipv4Addr;

fuzz_target!(|data: &[u8]| {
    let Some((ctx, message)) = common::decode(data, 1) else {
        return;
    };
    let Message::Open(remote) = &message else {
        return;
    };
    let local = Open {
        version: 4,
        asn: ctx.local_asn,
        hold_time: 90,
        bgp_id: Ipv4Addr::new(198, 18, 0, 11),
        capabilities: vec![
            Capability::Multiprotocol(Family::Ipv4Unicast),
            Capability::FourOctetAs(ctx.local_asn),
            Capability::RouteRefresh,
        ],
    };
    for expected in [ctx.peer_asn, remote.asn] {
        if let Ok(negotiated) = negotiate(&local, remote, expected) {
            assert!(
                !negotiated.extended_message,
                "extended messages were not offered"
            );
            assert!(
                !negotiated.supports(Family::Ipv6Unicast),
                "IPv6 was not offered: {negotiated:?}"
            );
            assert!(negotiated.hold_time == 0 || negotiated.hold_time >= 3);
        }
    }
    common::round_trip(&ctx, message);
});

//! OPEN bodies: decode, round-trip, and negotiation against ferrolb's own OPEN (iBGP and eBGP, 2- and 4-octet
//! AS). Nothing may panic; a negotiated context never claims a family or extended messages that ferrolb did not
//! offer.
#![no_main]

#[path = "common.rs"]
mod common;

use ferrolb_bgp::wire::{Capability, Family, Message, Open, PeerAs, negotiate};
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
    let kinds = [
        PeerAs::Exact(ctx.peer_asn),
        PeerAs::Exact(remote.asn),
        PeerAs::Internal,
        PeerAs::External,
    ];
    for expected in kinds {
        if let Ok(negotiated) = negotiate(&local, remote, expected) {
            // A kind accepts exactly the sessions of that kind.
            match expected {
                PeerAs::Internal => assert!(negotiated.ibgp),
                PeerAs::External => assert!(!negotiated.ibgp),
                PeerAs::Exact(asn) => assert_eq!(negotiated.peer_asn, asn),
            }
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

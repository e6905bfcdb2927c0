//! Structure-aware UPDATEs: arbitrary attribute sets (every attribute ferrolb knows, IPv4 NLRI and withdrawals,
//! IPv6 MP_REACH/MP_UNREACH, IPv4 MP_REACH/MP_UNREACH with IPv6 next hops (RFC 8950, context bit 16),
//! communities of all three kinds) go through the encoder and back.
//!
//! - An UPDATE the encoder accepts decodes; when the decoder found nothing to object to (no RFC 7606 issue), it is
//!   the UPDATE that went in (with 4-octet AS negotiated; a 2-octet session rewrites large ASNs to AS_TRANS and
//!   AS4_PATH, which is the next check's business), except LOCAL_PREF on eBGP, which RFC 4271 keeps off external
//!   sessions.
//! - Decoding is a fixed point: decode(encode(decoded)) == decoded.
#![no_main]

#[path = "common.rs"]
mod common;

use arbitrary::Arbitrary;
use bytes::Bytes;
use ferrolb_bgp::wire::{
    Aggregator, AsPath, AsSegment, AsSegmentKind, Family, LargeCommunity, Message, MpReach,
    MpUnreach, Origin, PathAttributes, Update,
};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Debug, Arbitrary)]
struct Input {
    mode: u8,
    withdrawn: Vec<(u32, u8)>,
    nlri: Vec<(u32, u8)>,
    origin: Option<u8>,
    as_path: Option<Vec<(u8, Vec<u32>)>>,
    next_hop: Option<u32>,
    med: Option<u32>,
    local_pref: Option<u32>,
    atomic_aggregate: bool,
    aggregator: Option<(u32, u32)>,
    communities: Vec<u32>,
    mp_reach: Option<(u128, Option<u128>, Vec<(u128, u8)>)>,
    mp_unreach: Option<Vec<(u128, u8)>>,
    extended_communities: Vec<[u8; 8]>,
    large_communities: Vec<(u32, u32, u32)>,
    unknown: Vec<(u8, Vec<u8>)>,
    /// MP_REACH_NLRI / MP_UNREACH_NLRI carry IPv4 unicast (the top 32 bits of each prefix) instead of IPv6.
    mp_ipv4: bool,
}

fn v4(prefixes: &[(u32, u8)]) -> Vec<Ipv4Net> {
    prefixes
        .iter()
        .filter_map(|&(a, l)| {
            Ipv4Net::new(Ipv4Addr::from(a), l % 33)
                .ok()
                .map(|n| n.trunc())
        })
        .collect()
}

fn v6(prefixes: &[(u128, u8)]) -> Vec<IpNet> {
    prefixes
        .iter()
        .filter_map(|&(a, l)| {
            Ipv6Net::new(Ipv6Addr::from(a), l % 129)
                .ok()
                .map(|n| IpNet::V6(n.trunc()))
        })
        .collect()
}

/// The MP attributes' prefixes: IPv6, or IPv4 from the top 32 bits when `ipv4`.
fn mp_prefixes(ipv4: bool, prefixes: &[(u128, u8)]) -> Vec<IpNet> {
    if !ipv4 {
        return v6(prefixes);
    }
    let v4s: Vec<(u32, u8)> = prefixes.iter().map(|&(a, l)| ((a >> 96) as u32, l)).collect();
    v4(&v4s).into_iter().map(IpNet::V4).collect()
}

fn update(input: &Input) -> Update {
    let mp_family = if input.mp_ipv4 {
        Family::Ipv4Unicast
    } else {
        Family::Ipv6Unicast
    };
    let segment = |(kind, asns): &(u8, Vec<u32>)| AsSegment {
        kind: match kind % 4 {
            0 => AsSegmentKind::Set,
            1 => AsSegmentKind::Sequence,
            2 => AsSegmentKind::ConfedSequence,
            _ => AsSegmentKind::ConfedSet,
        },
        asns: asns.clone(),
    };
    // Unknown attributes: optional transitive, of type codes ferrolb does not interpret (the decoder keeps the
    // flags without Extended Length, which the encoder sets from the value's length).
    let unknown = input
        .unknown
        .iter()
        .map(|(code, value)| ferrolb_bgp::wire::RawAttribute {
            flags: 0xc0,
            type_code: 200u8.saturating_add(code % 50),
            value: Bytes::from(value.clone()),
        })
        .collect();
    Update {
        withdrawn: v4(&input.withdrawn),
        nlri: v4(&input.nlri),
        attributes: PathAttributes {
            origin: input.origin.map(|o| match o % 3 {
                0 => Origin::Igp,
                1 => Origin::Egp,
                _ => Origin::Incomplete,
            }),
            as_path: input.as_path.as_ref().map(|segments| AsPath {
                segments: segments.iter().map(segment).collect(),
            }),
            next_hop: input.next_hop.map(Ipv4Addr::from),
            med: input.med,
            local_pref: input.local_pref,
            atomic_aggregate: input.atomic_aggregate,
            aggregator: input.aggregator.map(|(asn, a)| Aggregator {
                asn,
                address: Ipv4Addr::from(a),
            }),
            communities: input.communities.clone(),
            mp_reach: input.mp_reach.as_ref().map(|(nh, ll, nlri)| MpReach {
                family: mp_family,
                next_hop: IpAddr::V6(Ipv6Addr::from(*nh)),
                link_local_next_hop: ll.map(Ipv6Addr::from),
                nlri: mp_prefixes(input.mp_ipv4, nlri),
            }),
            mp_unreach: input.mp_unreach.as_ref().map(|w| MpUnreach {
                family: mp_family,
                withdrawn: mp_prefixes(input.mp_ipv4, w),
            }),
            extended_communities: input.extended_communities.clone(),
            as4_path: None,
            as4_aggregator: None,
            large_communities: input
                .large_communities
                .iter()
                .map(|&(global_admin, local_data1, local_data2)| LargeCommunity {
                    global_admin,
                    local_data1,
                    local_data2,
                })
                .collect(),
            unknown,
        },
        issues: Vec::new(),
    }
}

fuzz_target!(|input: Input| {
    let ctx = common::context(input.mode | 8);
    let sent = update(&input);
    let Ok(bytes) = Message::Update(sent.clone()).encode(&ctx) else {
        return;
    };
    let decoded = match Message::decode(&bytes, &ctx) {
        Ok(Message::Update(u)) => u,
        Ok(other) => panic!("an UPDATE decoded as {other:?}"),
        // A session reset is the decoder's answer to what the encoder let through: a bug in one of them.
        Err(e) => panic!("our own UPDATE is refused: {e}\n{sent:?}"),
    };
    if decoded.issues.is_empty() && ctx.four_octet_as {
        let mut expected = sent;
        if !ctx.ibgp {
            // RFC 4271 §5.1.5: LOCAL_PREF is not sent to, and ignored from, external peers.
            expected.attributes.local_pref = None;
        }
        assert_eq!(
            decoded, expected,
            "no issue, but the UPDATE changed on the way"
        );
    }
    common::round_trip(&ctx, Message::Update(decoded));
});

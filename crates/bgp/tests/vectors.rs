//! Hex vectors captured from GoBGP 3.10 (gobgpd, Debian 3.10.0-1+b4) and FRR 8.4.4 bgpd
//! (Debian 8.4.4-1.1~deb12u2), checked in both directions.
//!
//! How they were captured: `tests/vectors/capture.sh OUT.pcap [two-octet]` (throw-away network
//! namespaces, FRR AS 4200000001 at 198.19.250.1, GoBGP AS 65002 at 198.19.250.2, tshark on
//! tcp/179), then `tshark -r OUT.pcap -Y 'tcp.len>0' -T fields -e ip.src -e tcp.payload`, the
//! per-direction TCP payloads split at each BGP length field. "two-octet" makes FRR send an OPEN
//! without capabilities, so it speaks as a 2-octet-AS speaker (AS_TRANS + AS4_PATH).
//!
//! GoBGP encodes like us (attributes in type order, Extended Length only above 255 octets), so
//! its UPDATEs re-encode byte for byte. FRR always sets Extended Length on AS_PATH and the MP
//! attributes, and GoBGP puts all capabilities in one optional parameter: for those, the decode
//! is checked exactly and the re-encoding must decode to the same message.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::BytesMut;
use ferrolb_bgp::wire::{
    AsPath, Capability, Cease, ExtendedNextHop, Family, GracefulRestart, GracefulRestartFamily,
    LargeCommunity, Message, MpReach, MpUnreach, Notification, NotificationError, Open, Origin,
    PathAttributes, RouteRefresh, SessionContext, Update, try_parse,
};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const MARKER: &str = "ffffffffffffffffffffffffffffffff";

fn msg(body: &str) -> Vec<u8> {
    hex(&format!("{MARKER}{body}"))
}

/// The session FRR and GoBGP negotiated: 4-octet AS, eBGP, IPv4+IPv6, no extended messages.
fn ctx4() -> SessionContext {
    SessionContext {
        local_asn: 65002,
        peer_asn: 4_200_000_001,
        four_octet_as: true,
        ibgp: false,
        families: vec![Family::Ipv4Unicast, Family::Ipv6Unicast],
        extended_message: false,
        extended_next_hop_send: false,
        extended_next_hop_receive: false,
        route_refresh: true,
        hold_time: 9,
        peer_bgp_id: Ipv4Addr::new(198, 19, 250, 1),
        peer_graceful_restart: None,
        real_asn: None,
    }
}

/// The same with FRR as a 2-octet speaker.
fn ctx2() -> SessionContext {
    SessionContext {
        four_octet_as: false,
        peer_asn: 23456,
        ..ctx4()
    }
}

fn decode(bytes: &[u8], ctx: &SessionContext) -> Message {
    let mut buf = BytesMut::from(bytes);
    let m = try_parse(&mut buf, ctx).unwrap().expect("a whole message");
    assert!(buf.is_empty(), "the framer consumed exactly one message");
    m
}

/// Decode to `expected`, and re-encode to the same bytes.
fn both_ways(bytes: &[u8], ctx: &SessionContext, expected: Message) {
    assert_eq!(decode(bytes, ctx), expected);
    assert_eq!(expected.encode(ctx).unwrap().as_ref(), bytes);
}

/// Decode to `expected`; our re-encoding differs in layout only, so it decodes back the same.
fn decode_exact_reencode_same(bytes: &[u8], ctx: &SessionContext, expected: Message) {
    assert_eq!(decode(bytes, ctx), expected);
    let ours = expected.encode(ctx).unwrap();
    assert_eq!(decode(&ours, ctx), expected);
}

fn v4(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

fn v6(s: &str) -> Ipv6Net {
    s.parse().unwrap()
}

fn update(attributes: PathAttributes, nlri: Vec<Ipv4Net>) -> Message {
    Message::Update(Update {
        attributes,
        nlri,
        ..Update::default()
    })
}

fn gobgp_attrs(as_path: Vec<u32>) -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Incomplete),
        as_path: Some(AsPath::sequence(as_path)),
        next_hop: Some(Ipv4Addr::new(198, 19, 250, 2)),
        ..PathAttributes::default()
    }
}

fn with_communities(mut a: PathAttributes) -> PathAttributes {
    a.med = Some(50);
    a.communities = vec![(65002 << 16) | 100, (65002 << 16) | 200];
    a.large_communities = vec![LargeCommunity {
        global_admin: 65002,
        local_data1: 1,
        local_data2: 2,
    }];
    a
}

// ---- GoBGP -> FRR (4-octet session) ----

const GOBGP_OPEN: &str = "004d0104fdea005ac613fa0230022e0200490402766d0001040001000101040002000141040000fdea400a007800010100000201000506000100010002";
const GOBGP_KEEPALIVE: &str = "001304";
const GOBGP_UPDATE_ATTRS: &str = "005102000000354001010240020602010000fdea400304c613fa0280040400000032c00808fdea0064fdea00c8c0200c0000fdea000000010000000219cb007100";
const GOBGP_UPDATE_HOST: &str = "003002000000144001010240020602010000fdea400304c613fa0220cb007107";
const GOBGP_EOR_V4: &str = "00170200000000";
const GOBGP_UPDATE_V6: &str = "004a02000000334001010240020602010000fdeac00804fdea012c800e1c0002011020010db800ff00000000000000000002003020010db80007";
const GOBGP_EOR_V6: &str = "001d0200000006800f03000201";
const GOBGP_WITHDRAW_V4: &str = "001c02000520cb0071070000";
const GOBGP_WITHDRAW_V6: &str = "0024020000000d800f0a0002013020010db80007";
const GOBGP_SHUTDOWN: &str = "002c03060216666572726f6c6220766563746f722063617074757265";
/// GoBGP refusing FRR's 2-octet OPEN (AS 23456) while configured for AS 4200000001.
const GOBGP_BAD_PEER_AS: &str = "0015030202";
/// GoBGP after FRR sent MP_REACH_NLRI for IPv6 without having negotiated it (code 0).
const GOBGP_CODE_ZERO: &str = "0015030000";
/// GoBGP -> FRR over the 2-octet session.
const GOBGP_UPDATE_2OCTET: &str = "004f0200000033400101024002040201fdea400304c613fa0280040400000032c00808fdea0064fdea00c8c0200c0000fdea000000010000000219cb007100";

// ---- FRR -> GoBGP ----

const FRR_OPEN: &str = "007e01045ba00009c613fa01610206010400010001020601040002000102028000020202000202460002064104fa56ea0102020600020a45080001010100020101020b4909077769726563617000020c400ac07800010100000201000210470e0001018000000000020180000000";
const FRR_UPDATE_V4: &str =
    "003c020000001c40010100500200060201fa56ea01400304c613fa018004040000000018c6336419c6336480";
const FRR_UPDATE_V6: &str = "005c0200000045900e002c0002012020010db800ff00000000000000000001fe80000000000000380f04fffe6165fb003020010db8000540010100500200060201fa56ea0180040400000000";
const FRR_UPDATE_RELAYED: &str = "004f0200000033400101025002000a0202fa56ea010000fdea400304c613fa01c00808fdea0064fdea00c8c0200c0000fdea000000010000000219cb007100";
const FRR_WITHDRAW_V6: &str = "0025020000000e900f000a0002013020010db80007";
const FRR_ROUTE_REFRESH: &str = "00170500010001";
const FRR_OPEN_NO_CAPABILITIES: &str = "001d01045ba00009c613fa0100";
const FRR_UPDATE_AS4_PATH: &str = "00440200000024400101005002000402015ba0400304c613fa0180040400000000d01100060201fa56ea0118c6336419c6336480";
const FRR_UPDATE_AS4_PATH_RELAYED: &str = "0059020000003d400101025002000602025ba0fdea400304c613fa01c00808fdea0064fdea00c8c0200c0000fdea0000000100000002d011000a0202fa56ea010000fdea19cb007100";

#[test]
fn gobgp_open_decodes_with_every_capability() {
    let expected = Message::Open(Open::new(
        65002,
        90,
        Ipv4Addr::new(198, 19, 250, 2),
        vec![
            Capability::RouteRefresh,
            Capability::Unknown {
                code: 73,
                value: hex("02766d00").into(),
            },
            Capability::Multiprotocol(Family::Ipv4Unicast),
            Capability::Multiprotocol(Family::Ipv6Unicast),
            Capability::FourOctetAs(65002),
            Capability::GracefulRestart(GracefulRestart {
                restart_state: false,
                notification: false,
                restart_time: 120,
                families: vec![
                    GracefulRestartFamily {
                        family: Family::Ipv4Unicast,
                        forwarding: false,
                    },
                    GracefulRestartFamily {
                        family: Family::Ipv6Unicast,
                        forwarding: false,
                    },
                ],
            }),
            // RFC 8950 extended next hop: IPv4 unicast with IPv6 next hops.
            Capability::ExtendedNextHop(vec![ExtendedNextHop::IPV4_UNICAST_OVER_IPV6]),
        ],
    ));
    let ctx = SessionContext::before_open();
    let bytes = msg(GOBGP_OPEN);
    decode_exact_reencode_same(&bytes, &ctx, expected);
    // GoBGP packs the 7 capabilities into one optional parameter; we send one parameter each,
    // which costs 2 octets per extra capability.
    let ours = decode(&bytes, &ctx).encode(&ctx).unwrap();
    assert_eq!(ours.len(), bytes.len() + 2 * 6);
}

#[test]
fn frr_open_round_trips_byte_for_byte() {
    let gr = GracefulRestart {
        restart_state: true,
        notification: true,
        restart_time: 120,
        families: vec![
            GracefulRestartFamily {
                family: Family::Ipv4Unicast,
                forwarding: false,
            },
            GracefulRestartFamily {
                family: Family::Ipv6Unicast,
                forwarding: false,
            },
        ],
    };
    let expected = Message::Open(Open::new(
        4_200_000_001,
        9,
        Ipv4Addr::new(198, 19, 250, 1),
        vec![
            Capability::Multiprotocol(Family::Ipv4Unicast),
            Capability::Multiprotocol(Family::Ipv6Unicast),
            Capability::Unknown {
                code: 128,
                value: Default::default(),
            },
            Capability::RouteRefresh,
            Capability::Unknown {
                code: 70,
                value: Default::default(),
            },
            Capability::FourOctetAs(4_200_000_001),
            Capability::ExtendedMessage,
            Capability::Unknown {
                code: 69,
                value: hex("0001010100020101").into(),
            },
            Capability::Unknown {
                code: 73,
                value: hex("077769726563617000").into(),
            },
            Capability::GracefulRestart(gr),
            Capability::Unknown {
                code: 71,
                value: hex("0001018000000000020180000000").into(),
            },
        ],
    ));
    both_ways(&msg(FRR_OPEN), &SessionContext::before_open(), expected);
}

#[test]
fn frr_open_without_capabilities_is_a_two_octet_speaker() {
    let expected = Message::Open(Open::new(23456, 9, Ipv4Addr::new(198, 19, 250, 1), vec![]));
    let bytes = msg(FRR_OPEN_NO_CAPABILITIES);
    both_ways(&bytes, &SessionContext::before_open(), expected.clone());
    let Message::Open(open) = expected else {
        unreachable!()
    };
    assert_eq!(open.four_octet_as(), None);
    assert_eq!(open.families(), vec![Family::Ipv4Unicast]);
}

#[test]
fn keepalive_and_route_refresh_round_trip() {
    both_ways(&msg(GOBGP_KEEPALIVE), &ctx4(), Message::Keepalive);
    both_ways(
        &msg(FRR_ROUTE_REFRESH),
        &ctx4(),
        Message::RouteRefresh(RouteRefresh::new(Family::Ipv4Unicast)),
    );
}

#[test]
fn gobgp_ipv4_updates_round_trip_byte_for_byte() {
    both_ways(
        &msg(GOBGP_UPDATE_ATTRS),
        &ctx4(),
        update(
            with_communities(gobgp_attrs(vec![65002])),
            vec![v4("203.0.113.0/25")],
        ),
    );
    both_ways(
        &msg(GOBGP_UPDATE_HOST),
        &ctx4(),
        update(gobgp_attrs(vec![65002]), vec![v4("203.0.113.7/32")]),
    );
    both_ways(
        &msg(GOBGP_UPDATE_2OCTET),
        &ctx2(),
        update(
            with_communities(gobgp_attrs(vec![65002])),
            vec![v4("203.0.113.0/25")],
        ),
    );
}

#[test]
fn gobgp_ipv6_update_round_trips_byte_for_byte() {
    let attributes = PathAttributes {
        origin: Some(Origin::Incomplete),
        as_path: Some(AsPath::sequence(vec![65002])),
        communities: vec![(65002 << 16) | 300],
        mp_reach: Some(MpReach {
            family: Family::Ipv6Unicast,
            next_hop: IpAddr::V6("2001:db8:ff::2".parse().unwrap()),
            link_local_next_hop: None,
            nlri: vec![IpNet::V6(v6("2001:db8:7::/48"))],
        }),
        ..PathAttributes::default()
    };
    both_ways(&msg(GOBGP_UPDATE_V6), &ctx4(), update(attributes, vec![]));
}

#[test]
fn withdrawals_and_end_of_rib_round_trip() {
    both_ways(
        &msg(GOBGP_WITHDRAW_V4),
        &ctx4(),
        Message::Update(Update {
            withdrawn: vec![v4("203.0.113.7/32")],
            ..Update::default()
        }),
    );
    let withdraw_v6 = Message::Update(Update {
        attributes: PathAttributes {
            mp_unreach: Some(MpUnreach {
                family: Family::Ipv6Unicast,
                withdrawn: vec![IpNet::V6(v6("2001:db8:7::/48"))],
            }),
            ..PathAttributes::default()
        },
        ..Update::default()
    });
    both_ways(&msg(GOBGP_WITHDRAW_V6), &ctx4(), withdraw_v6.clone());
    decode_exact_reencode_same(&msg(FRR_WITHDRAW_V6), &ctx4(), withdraw_v6);

    for (bytes, family) in [
        (GOBGP_EOR_V4, Family::Ipv4Unicast),
        (GOBGP_EOR_V6, Family::Ipv6Unicast),
    ] {
        let eor = Update::end_of_rib(family);
        assert_eq!(eor.end_of_rib_family(), Some(family));
        both_ways(&msg(bytes), &ctx4(), Message::Update(eor));
    }
}

#[test]
fn frr_updates_decode_exactly() {
    let frr = |as_path: Vec<u32>| PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::sequence(as_path)),
        med: Some(0),
        ..PathAttributes::default()
    };
    let mut v4_attrs = frr(vec![4_200_000_001]);
    v4_attrs.next_hop = Some(Ipv4Addr::new(198, 19, 250, 1));
    decode_exact_reencode_same(
        &msg(FRR_UPDATE_V4),
        &ctx4(),
        update(
            v4_attrs,
            vec![v4("198.51.100.0/24"), v4("198.51.100.128/25")],
        ),
    );

    let mut v6_attrs = frr(vec![4_200_000_001]);
    v6_attrs.mp_reach = Some(MpReach {
        family: Family::Ipv6Unicast,
        next_hop: IpAddr::V6("2001:db8:ff::1".parse().unwrap()),
        link_local_next_hop: Some("fe80::380f:4ff:fe61:65fb".parse::<Ipv6Addr>().unwrap()),
        nlri: vec![IpNet::V6(v6("2001:db8:5::/48"))],
    });
    decode_exact_reencode_same(&msg(FRR_UPDATE_V6), &ctx4(), update(v6_attrs, vec![]));

    let mut relayed = with_communities(gobgp_attrs(vec![4_200_000_001, 65002]));
    relayed.med = None;
    relayed.next_hop = Some(Ipv4Addr::new(198, 19, 250, 1));
    decode_exact_reencode_same(
        &msg(FRR_UPDATE_RELAYED),
        &ctx4(),
        update(relayed, vec![v4("203.0.113.0/25")]),
    );
}

#[test]
fn frr_two_octet_updates_carry_as_trans_and_as4_path() {
    let mut attrs = PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::sequence(vec![23456])),
        next_hop: Some(Ipv4Addr::new(198, 19, 250, 1)),
        med: Some(0),
        as4_path: Some(AsPath::sequence(vec![4_200_000_001])),
        ..PathAttributes::default()
    };
    decode_exact_reencode_same(
        &msg(FRR_UPDATE_AS4_PATH),
        &ctx2(),
        update(
            attrs.clone(),
            vec![v4("198.51.100.0/24"), v4("198.51.100.128/25")],
        ),
    );
    attrs = with_communities(attrs);
    attrs.origin = Some(Origin::Incomplete);
    attrs.med = None;
    attrs.as_path = Some(AsPath::sequence(vec![23456, 65002]));
    attrs.as4_path = Some(AsPath::sequence(vec![4_200_000_001, 65002]));
    decode_exact_reencode_same(
        &msg(FRR_UPDATE_AS4_PATH_RELAYED),
        &ctx2(),
        update(attrs, vec![v4("203.0.113.0/25")]),
    );
}

#[test]
fn notifications_decode_to_words_and_round_trip() {
    let shutdown = Notification::from(NotificationError::Cease(Cease::AdministrativeShutdown {
        communication: "ferrolb vector capture".into(),
    }));
    both_ways(
        &msg(GOBGP_SHUTDOWN),
        &ctx4(),
        Message::Notification(shutdown.clone()),
    );
    assert_eq!(
        shutdown.to_string(),
        "Cease / Administrative Shutdown: \"ferrolb vector capture\""
    );

    let bad_peer = Notification::from(NotificationError::BadPeerAs);
    both_ways(
        &msg(GOBGP_BAD_PEER_AS),
        &ctx4(),
        Message::Notification(bad_peer.clone()),
    );
    assert_eq!(bad_peer.to_string(), "OPEN Message Error / Bad Peer AS");

    let Message::Notification(zero) = decode(&msg(GOBGP_CODE_ZERO), &ctx4()) else {
        panic!("not a NOTIFICATION")
    };
    assert_eq!(
        zero.error(),
        NotificationError::Other {
            code: 0,
            subcode: 0,
            data: Default::default()
        }
    );
    assert_eq!(zero.to_string(), "Unknown Error Code / subcode 0");
}

#[test]
fn a_captured_stream_frames_message_by_message() {
    // FRR's first packets as TCP delivered them: OPEN, KEEPALIVE, two UPDATEs, split at an
    // arbitrary point mid-message.
    let mut stream = Vec::new();
    for m in [FRR_OPEN, GOBGP_KEEPALIVE, FRR_UPDATE_V4, FRR_UPDATE_V6] {
        stream.extend(msg(m));
    }
    let mut buf = BytesMut::new();
    let mut seen = Vec::new();
    let mut ctx = SessionContext::before_open();
    for chunk in stream.chunks(50) {
        buf.extend_from_slice(chunk);
        while let Some(m) = try_parse(&mut buf, &ctx).unwrap() {
            if matches!(m, Message::Open(_)) {
                ctx = ctx4();
            }
            seen.push(m.message_type());
        }
    }
    assert_eq!(seen, vec![1, 4, 2, 2]);
    assert!(buf.is_empty());
}

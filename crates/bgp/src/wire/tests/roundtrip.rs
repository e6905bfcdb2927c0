//! Property tests: decode(encode(m)) == m for every message kind, and the framer never panics.

use super::*;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::collection::vec;
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A prefix exactly as the wire carries it: octets past the length's last octet are zero.
fn ipv4_prefix() -> impl Strategy<Value = Ipv4Net> {
    (any::<[u8; 4]>(), 0u8..=32).prop_map(|(mut o, len)| {
        for b in o.iter_mut().skip(usize::from(len).div_ceil(8)) {
            *b = 0;
        }
        Ipv4Net::new(Ipv4Addr::from(o), len).unwrap()
    })
}

fn ipv6_prefix() -> impl Strategy<Value = Ipv6Net> {
    (any::<[u8; 16]>(), 0u8..=128).prop_map(|(mut o, len)| {
        for b in o.iter_mut().skip(usize::from(len).div_ceil(8)) {
            *b = 0;
        }
        Ipv6Net::new(Ipv6Addr::from(o), len).unwrap()
    })
}

fn asn(four_octet: bool) -> BoxedStrategy<u32> {
    if four_octet {
        any::<u32>().boxed()
    } else {
        (0u32..=65535).boxed()
    }
}

fn as_path(four_octet: bool) -> impl Strategy<Value = AsPath> {
    vec(
        (
            prop_oneof![Just(AsSegmentKind::Sequence), Just(AsSegmentKind::Set)],
            vec(asn(four_octet), 1..6),
        )
            .prop_map(|(kind, asns)| AsSegment { kind, asns }),
        0..3,
    )
    .prop_map(|segments| AsPath { segments })
}

fn aggregator(four_octet: bool) -> impl Strategy<Value = Aggregator> {
    (asn(four_octet), any::<u32>()).prop_map(|(asn, a)| Aggregator {
        asn,
        address: Ipv4Addr::from(a),
    })
}

fn next_hop() -> impl Strategy<Value = Ipv4Addr> {
    (0x0100_0000u32..0xe000_0000).prop_map(Ipv4Addr::from)
}

fn mp_reach() -> impl Strategy<Value = MpReach> {
    (
        any::<u128>(),
        proptest::option::of(any::<u128>()),
        vec(ipv6_prefix(), 0..6),
    )
        .prop_map(|(nh, ll, nlri)| MpReach {
            family: Family::Ipv6Unicast,
            next_hop: IpAddr::V6(Ipv6Addr::from(nh)),
            link_local_next_hop: ll.map(Ipv6Addr::from),
            nlri: nlri.into_iter().map(IpNet::V6).collect(),
        })
}

fn context() -> impl Strategy<Value = SessionContext> {
    (any::<bool>(), any::<bool>()).prop_map(|(four_octet_as, ibgp)| SessionContext {
        four_octet_as,
        ibgp,
        ..ebgp()
    })
}

fn attributes(four: bool, ibgp: bool) -> impl Strategy<Value = PathAttributes> {
    let part1 = (
        proptest::option::of(prop_oneof![
            Just(Origin::Igp),
            Just(Origin::Egp),
            Just(Origin::Incomplete)
        ]),
        proptest::option::of(as_path(four)),
        proptest::option::of(next_hop()),
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<u32>()),
        any::<bool>(),
        proptest::option::of(aggregator(four)),
        vec(any::<u32>(), 0..5),
    );
    let part2 = (
        proptest::option::of(mp_reach()),
        proptest::option::of(vec(ipv6_prefix(), 0..6)),
        vec(any::<[u8; 8]>(), 0..4),
        proptest::option::of(as_path(true)),
        proptest::option::of(aggregator(true)),
        vec(any::<(u32, u32, u32)>(), 0..4),
        vec(
            (
                prop_oneof![Just(0x80u8), Just(0xc0), Just(0xe0)],
                vec(any::<u8>(), 0..300),
            ),
            0..3,
        ),
    );
    (part1, part2).prop_map(move |(p1, p2)| {
        let (origin, as_path, next_hop, med, local_pref, atomic_aggregate, aggregator, communities) =
            p1;
        let (mp_reach, mp_unreach, extended_communities, as4_path, as4_aggregator, large, unknown) =
            p2;
        PathAttributes {
            origin,
            as_path,
            next_hop,
            med,
            // Dropped from external peers (RFC 7606 §7.5); AS4_* dropped from 4-octet peers.
            local_pref: local_pref.filter(|_| ibgp),
            atomic_aggregate,
            aggregator,
            communities,
            mp_reach,
            mp_unreach: mp_unreach.map(|w| MpUnreach {
                family: Family::Ipv6Unicast,
                withdrawn: w.into_iter().map(IpNet::V6).collect(),
            }),
            extended_communities,
            as4_path: as4_path.filter(|_| !four),
            as4_aggregator: as4_aggregator.filter(|_| !four),
            large_communities: large
                .into_iter()
                .map(|(a, b, c)| LargeCommunity {
                    global_admin: a,
                    local_data1: b,
                    local_data2: c,
                })
                .collect(),
            unknown: unknown
                .into_iter()
                .enumerate()
                .map(|(i, (flags, value))| RawAttribute {
                    flags,
                    type_code: 100 + i as u8,
                    value: value.into(),
                })
                .collect(),
        }
    })
}

fn update_in(ctx: SessionContext) -> impl Strategy<Value = (SessionContext, Update)> {
    (
        vec(ipv4_prefix(), 0..8),
        attributes(ctx.four_octet_as, ctx.ibgp),
        vec(ipv4_prefix(), 0..8),
    )
        .prop_map(move |(withdrawn, mut attributes, nlri)| {
            // Reachable NLRI need the mandatory attributes, or the decoder withdraws them.
            let reach = attributes
                .mp_reach
                .as_ref()
                .is_some_and(|m| !m.nlri.is_empty());
            if !nlri.is_empty() || reach {
                attributes.origin.get_or_insert(Origin::Igp);
                attributes.as_path.get_or_insert_with(AsPath::default);
            }
            if !nlri.is_empty() {
                attributes
                    .next_hop
                    .get_or_insert(Ipv4Addr::new(198, 18, 0, 1));
            }
            (
                ctx.clone(),
                Update {
                    withdrawn,
                    attributes,
                    nlri,
                    issues: Vec::new(),
                },
            )
        })
}

fn capability() -> impl Strategy<Value = Capability> {
    let family = prop_oneof![Just(Family::Ipv4Unicast), Just(Family::Ipv6Unicast)];
    prop_oneof![
        family.clone().prop_map(Capability::Multiprotocol),
        Just(Capability::RouteRefresh),
        Just(Capability::ExtendedMessage),
        (
            any::<bool>(),
            any::<bool>(),
            0u16..4096,
            vec((family, any::<bool>()), 0..3)
        )
            .prop_map(|(r, n, t, f)| Capability::GracefulRestart(GracefulRestart {
                restart_state: r,
                notification: n,
                restart_time: t,
                families: f
                    .into_iter()
                    .map(|(family, forwarding)| GracefulRestartFamily { family, forwarding })
                    .collect(),
            })),
        (100u8..=200, vec(any::<u8>(), 0..12)).prop_map(|(code, v)| Capability::Unknown {
            code,
            value: v.into()
        }),
    ]
}

fn open() -> impl Strategy<Value = Open> {
    (
        any::<bool>(),
        any::<u32>(),
        any::<u16>(),
        any::<u32>(),
        vec(capability(), 0..8),
    )
        .prop_map(|(four, asn, hold, id, mut caps)| {
            let asn = if four {
                caps.push(Capability::FourOctetAs(asn));
                asn
            } else {
                asn & 0xffff
            };
            Open::new(asn, hold, Ipv4Addr::from(id), caps)
        })
}

fn round_trip(m: &Message, ctx: &SessionContext) -> Message {
    let bytes = m.encode(ctx).unwrap();
    assert_eq!(
        usize::from(u16::from_be_bytes([bytes[16], bytes[17]])),
        bytes.len()
    );
    let mut buf = bytes::BytesMut::from(&bytes[..]);
    let back = try_parse(&mut buf, ctx).unwrap().unwrap();
    assert!(buf.is_empty());
    back
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn update_decode_inverts_encode((ctx, update) in context().prop_flat_map(update_in)) {
        let m = Message::Update(update);
        prop_assert_eq!(round_trip(&m, &ctx), m);
    }

    #[test]
    fn open_decode_inverts_encode(open in open()) {
        let m = Message::Open(open);
        prop_assert_eq!(round_trip(&m, &SessionContext::before_open()), m);
    }

    #[test]
    fn notification_decode_inverts_encode(
        code in any::<u8>(), subcode in any::<u8>(), data in vec(any::<u8>(), 0..64)
    ) {
        let m = Message::Notification(Notification { code, subcode, data: data.into() });
        prop_assert_eq!(round_trip(&m, &ebgp()), m);
    }

    #[test]
    fn route_refresh_decode_inverts_encode(afi in any::<u16>(), subtype in any::<u8>(), safi in any::<u8>()) {
        let m = Message::RouteRefresh(RouteRefresh { afi, subtype, safi });
        prop_assert_eq!(round_trip(&m, &ebgp()), m);
    }

    #[test]
    fn the_framer_never_panics_on_garbage(body in vec(any::<u8>(), 0..200), mtype in 0u8..7) {
        // A valid header in front of random bytes reaches the body decoders.
        let bytes = message(mtype, &body);
        let _ = parse(&bytes, &ebgp());
        let _ = parse(&bytes, &SessionContext { four_octet_as: false, ..ebgp() });
        let _ = parse(&body, &ebgp());
    }

    #[test]
    fn received_notifications_re_encode_to_the_same_bytes(
        code in any::<u8>(), subcode in any::<u8>(), data in vec(any::<u8>(), 0..64)
    ) {
        let n = Notification { code, subcode, data: data.into() };
        let again = Notification::from(n.error());
        // Code and subcode always survive; data where the variant carries it (communications
        // are read leniently, and data on a data-less variant is not kept).
        prop_assert_eq!((again.code, again.subcode), (code, subcode));
        let carries_data = !matches!(
            n.error(),
            NotificationError::Cease(Cease::AdministrativeShutdown { .. })
                | NotificationError::Cease(Cease::AdministrativeReset { .. })
        ) && !again.data.is_empty();
        if carries_data {
            prop_assert_eq!(again, n);
        }
    }
}

//! Adj-RIB-Out tests: exact packing against the 4096-octet limit, differences only, attributes per
//! session kind, and a property test that a peer applying the UPDATEs converges on the desired table.
use super::*;
use crate::wire::{AsSegment, AsSegmentKind, LargeCommunity, try_parse};
use std::collections::BTreeSet;

fn ctx(ibgp: bool, four_octet_as: bool, local_asn: u32) -> SessionContext {
    SessionContext {
        local_asn,
        peer_asn: if ibgp { local_asn } else { 65002 },
        four_octet_as,
        ibgp,
        families: vec![Family::Ipv4Unicast, Family::Ipv6Unicast],
        ..SessionContext::before_open()
    }
}

const NH4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

fn nh6() -> Ipv6Addr {
    "2001:db8::1".parse().unwrap()
}

fn hosts(n: u32) -> BTreeMap<IpNet, Attributes> {
    (0..n)
        .map(|i| {
            let a = Ipv4Addr::from(0xc612_0000 + i); // 198.18.0.0 onwards
            (
                IpNet::V4(Ipv4Net::new(a, 32).unwrap()),
                Attributes::default(),
            )
        })
        .collect()
}

fn encode_all(msgs: &[Message], ctx: &SessionContext) -> Vec<bytes::Bytes> {
    msgs.iter().map(|m| m.encode(ctx).unwrap()).collect()
}

/// Decode what was sent and collect (announced, withdrawn).
fn sent_prefixes(msgs: &[Message], ctx: &SessionContext) -> (BTreeSet<IpNet>, BTreeSet<IpNet>) {
    let mut announced = BTreeSet::new();
    let mut withdrawn = BTreeSet::new();
    for bytes in encode_all(msgs, ctx) {
        assert!(bytes.len() <= ctx.max_message_len());
        let mut buf = BytesMut::from(&bytes[..]);
        let Some(Message::Update(u)) = try_parse(&mut buf, ctx).unwrap() else {
            panic!("not an UPDATE");
        };
        assert!(u.issues.is_empty(), "{:?}", u.issues);
        announced.extend(u.all_announced());
        withdrawn.extend(u.all_withdrawn());
    }
    (announced, withdrawn)
}

#[test]
fn ten_thousand_hosts_fill_the_optimal_number_of_4096_octet_updates() {
    let c = ctx(false, true, 65001);
    let mut rib = AdjRibOut::new(&c, Some(NH4), None);
    let desired = hosts(10_000);
    let msgs = rib.set_desired(&desired);
    // eBGP attributes: ORIGIN 4 + AS_PATH 9 + NEXT_HOP 7 = 20 octets, so each UPDATE has
    // room for (4096 - 23 - 20) / 5 = 810 /32s: ceil(10000 / 810) = 13.
    assert_eq!(msgs.len(), 13);
    let (announced, withdrawn) = sent_prefixes(&msgs, &c);
    assert_eq!(announced, desired.keys().copied().collect());
    assert!(withdrawn.is_empty());
    assert_eq!(rib.len(), 10_000);
    // The first 12 are full to the octet.
    for b in encode_all(&msgs[..12], &c) {
        assert_eq!(b.len(), 23 + 20 + 810 * 5);
    }
}

/// Octets of the attribute field of an UPDATE carrying `attrs`, without NLRI.
fn attribute_octets(attrs: &PathAttributes, c: &SessionContext) -> usize {
    let mut buf = BytesMut::new();
    attrs.encode(c, &mut buf).unwrap();
    buf.len()
}

/// Checks that `msgs` announce `n` prefixes in the fewest UPDATEs the 4096-octet limit allows: each
/// UPDATE is 19 (header) + 4 (the two length fields) + `fixed` octets of attributes + `per_prefix` per
/// prefix, so it holds at most k = (4096 - 23 - fixed) / per_prefix prefixes and the optimum is
/// ceil(n / k); every UPDATE but the last must hold exactly k.
fn assert_optimally_packed(
    msgs: &[Message],
    c: &SessionContext,
    n: usize,
    fixed: usize,
    per_prefix: usize,
) {
    let k = (4096 - 23 - fixed) / per_prefix;
    assert_eq!(msgs.len(), n.div_ceil(k), "k = {k}");
    let bytes = encode_all(msgs, c);
    for b in &bytes[..bytes.len() - 1] {
        assert_eq!(b.len(), 23 + fixed + k * per_prefix);
    }
    let last = n - k * (msgs.len() - 1);
    assert_eq!(bytes[bytes.len() - 1].len(), 23 + fixed + last * per_prefix);
}

#[test]
fn ten_thousand_ipv4_hosts_with_shared_attributes_take_the_optimum_number_of_updates() {
    let rich = Attributes {
        local_pref: Some(200),
        med: None,
        communities: vec![(65001 << 16) | 1, (65001 << 16) | 2],
        large_communities: vec![LargeCommunity {
            global_admin: 65001,
            local_data1: 1,
            local_data2: 2,
        }],
        extended_communities: vec![],
        as_path_prepend: None,
    };
    for (ibgp, attrs) in [
        (false, Attributes::default()),
        (true, Attributes::default()),
        (true, rich),
    ] {
        let c = ctx(ibgp, true, 65001);
        let mut rib = AdjRibOut::new(&c, Some(NH4), None);
        let desired: BTreeMap<IpNet, Attributes> = hosts(10_000)
            .into_keys()
            .map(|p| (p, attrs.clone()))
            .collect();
        let msgs = rib.set_desired(&desired);
        let fixed = attribute_octets(&rib.path_attributes(&attrs, Family::Ipv4Unicast), &c);
        assert_optimally_packed(&msgs, &c, 10_000, fixed, 5);
        assert_eq!(sent_prefixes(&msgs, &c).0.len(), 10_000);
    }
}

#[test]
fn ten_thousand_ipv6_hosts_with_shared_attributes_take_the_optimum_number_of_updates() {
    for ibgp in [false, true] {
        let c = ctx(ibgp, true, 65001);
        let mut rib = AdjRibOut::new(&c, Some(NH4), Some(nh6()));
        let desired: BTreeMap<IpNet, Attributes> = (0..10_000u128)
            .map(|i| {
                let a = Ipv6Addr::from(0x2001_0db8_0007_0000_0000_0000_0000_0000u128 + i);
                (
                    IpNet::V6(ipnet::Ipv6Net::new(a, 128).unwrap()),
                    Attributes::default(),
                )
            })
            .collect();
        let msgs = rib.set_desired(&desired);
        // MP_REACH_NLRI without prefixes has a 1-octet length; once it holds more than 255 octets
        // (15 /128s) its length takes 2 octets: one more fixed octet per full UPDATE.
        let base = rib.path_attributes(&Attributes::default(), Family::Ipv6Unicast);
        let fixed = attribute_octets(&base, &c) + 1;
        assert_optimally_packed(&msgs, &c, 10_000, fixed, 17);
        assert_eq!(sent_prefixes(&msgs, &c).0.len(), 10_000);
        // Withdrawals: an MP_UNREACH_NLRI of 7 fixed octets (extended length) per UPDATE.
        let withdrawals = rib.set_desired(&BTreeMap::new());
        let k = (4096 - 23 - 7) / 17;
        assert_eq!(withdrawals.len(), 10_000usize.div_ceil(k));
        assert_eq!(sent_prefixes(&withdrawals, &c).1.len(), 10_000);
    }
}

#[test]
fn withdrawing_ten_thousand_hosts_splits_at_4096_octets() {
    let c = ctx(false, true, 65001);
    let mut rib = AdjRibOut::new(&c, Some(NH4), None);
    rib.set_desired(&hosts(10_000));
    let msgs = rib.set_desired(&BTreeMap::new());
    // (4096 - 23) / 5 = 814 withdrawals per UPDATE: ceil(10000 / 814) = 13.
    assert_eq!(msgs.len(), 13);
    let (announced, withdrawn) = sent_prefixes(&msgs, &c);
    assert!(announced.is_empty());
    assert_eq!(withdrawn.len(), 10_000);
    assert!(rib.is_empty());
}

#[test]
fn extended_messages_pack_more_per_update() {
    let c = SessionContext {
        extended_message: true,
        ..ctx(false, true, 65001)
    };
    let mut rib = AdjRibOut::new(&c, Some(NH4), None);
    let msgs = rib.set_desired(&hosts(20_000));
    // (65535 - 43) / 5 = 13098 per UPDATE.
    assert_eq!(msgs.len(), 2);
    assert_eq!(sent_prefixes(&msgs, &c).0.len(), 20_000);
}

#[test]
fn only_the_difference_is_sent() {
    let c = ctx(true, true, 65001);
    let mut rib = AdjRibOut::new(&c, Some(NH4), None);
    let mut desired = hosts(3);
    assert_eq!(rib.set_desired(&desired).len(), 1);
    assert_eq!(rib.set_desired(&desired), vec![], "nothing changed");

    let first = *desired.keys().next().unwrap();
    let last = *desired.keys().last().unwrap();
    desired.remove(&first);
    desired.insert(
        last,
        Attributes {
            local_pref: Some(200),
            ..Attributes::default()
        },
    );
    let msgs = rib.set_desired(&desired);
    assert_eq!(msgs.len(), 2, "one withdrawal, one re-announcement");
    let Message::Update(w) = &msgs[0] else {
        panic!()
    };
    assert_eq!(w.all_withdrawn(), vec![first]);
    let Message::Update(a) = &msgs[1] else {
        panic!()
    };
    assert_eq!(a.all_announced(), vec![last]);
    assert_eq!(a.attributes.local_pref, Some(200));
    assert_eq!(rib.len(), 2);
}

#[test]
fn ibgp_gets_an_empty_as_path_and_local_pref_100() {
    let c = ctx(true, true, 65001);
    let rib = AdjRibOut::new(&c, Some(NH4), None);
    let a = rib.path_attributes(&Attributes::default(), Family::Ipv4Unicast);
    assert_eq!(a.as_path, Some(AsPath::default()));
    assert_eq!(a.local_pref, Some(DEFAULT_LOCAL_PREF));
    assert_eq!(a.next_hop, Some(NH4));
    assert_eq!(a.origin, Some(Origin::Igp));
}

#[test]
fn ebgp_gets_our_as_and_no_local_pref() {
    let c = ctx(false, true, 4_200_000_001);
    let rib = AdjRibOut::new(&c, Some(NH4), None);
    let attrs = Attributes {
        local_pref: Some(300),
        med: Some(7),
        communities: vec![(65001 << 16) | 1],
        large_communities: vec![LargeCommunity {
            global_admin: 65001,
            local_data1: 2,
            local_data2: 3,
        }],
        extended_communities: vec![[0x40, 0x04, 0xfd, 0xe9, 0x47, 0xf4, 0x24, 0x00]],
        as_path_prepend: None,
    };
    let a = rib.path_attributes(&attrs, Family::Ipv4Unicast);
    assert_eq!(a.as_path, Some(AsPath::sequence(vec![4_200_000_001])));
    assert_eq!(a.as4_path, None);
    assert_eq!(a.local_pref, None);
    assert_eq!(a.med, Some(7));
    assert_eq!(a.communities, attrs.communities);
    assert_eq!(a.large_communities, attrs.large_communities);
    assert_eq!(a.extended_communities, attrs.extended_communities);
}

#[test]
fn a_two_octet_peer_gets_as_trans_and_as4_path_on_the_wire() {
    let c = ctx(false, false, 4_200_000_001);
    let mut rib = AdjRibOut::new(&c, Some(NH4), None);
    let one = hosts(1);
    let msgs = rib.set_desired(&one);
    let bytes = msgs[0].encode(&c).unwrap();
    let expected: Vec<u8> = [
        &[0xff; 16][..],
        &[0, 55, 2, 0, 0, 0, 27][..],
        &[0x40, 1, 1, 0][..],                          // ORIGIN IGP
        &[0x40, 2, 4, 2, 1, 0x5b, 0xa0][..],           // AS_PATH [23456]
        &[0x40, 3, 4, 198, 18, 0, 1][..],              // NEXT_HOP
        &[0xc0, 17, 6, 2, 1, 0xfa, 0x56, 0xea, 1][..], // AS4_PATH [4200000001]
        &[32, 198, 18, 0, 0][..],
    ]
    .concat();
    assert_eq!(bytes.as_ref(), &expected[..]);
    let mut buf = BytesMut::from(&bytes[..]);
    let Some(Message::Update(u)) = try_parse(&mut buf, &c).unwrap() else {
        panic!()
    };
    assert_eq!(
        u.attributes.as4_path.unwrap().segments,
        vec![AsSegment {
            kind: AsSegmentKind::Sequence,
            asns: vec![4_200_000_001]
        }]
    );
}

#[test]
fn ipv6_routes_go_in_mp_reach_with_the_global_next_hop_over_an_ipv4_session() {
    let c = ctx(false, true, 65001);
    let mut rib = AdjRibOut::new(&c, Some(NH4), Some(nh6()));
    let p6: IpNet = "2001:db8:7::1/128".parse().unwrap();
    let p4: IpNet = "203.0.113.7/32".parse().unwrap();
    let desired: BTreeMap<IpNet, Attributes> =
        [(p4, Attributes::default()), (p6, Attributes::default())]
            .into_iter()
            .collect();
    let msgs = rib.set_desired(&desired);
    assert_eq!(msgs.len(), 2);
    let Message::Update(u6) = &msgs[1] else {
        panic!()
    };
    let mp = u6.attributes.mp_reach.as_ref().unwrap();
    assert_eq!(mp.next_hop, IpAddr::V6(nh6()));
    assert_eq!(mp.nlri, vec![p6]);
    assert_eq!(u6.attributes.next_hop, None);
    assert!(u6.nlri.is_empty());
    let (announced, _) = sent_prefixes(&msgs, &c);
    assert_eq!(announced.len(), 2);

    let msgs = rib.set_desired(&BTreeMap::new());
    let (_, withdrawn) = sent_prefixes(&msgs, &c);
    assert_eq!(withdrawn, [p4, p6].into_iter().collect());
}

#[test]
fn many_ipv6_hosts_pack_into_4096_octets() {
    let c = ctx(true, true, 65001);
    let mut rib = AdjRibOut::new(&c, Some(NH4), Some(nh6()));
    let desired: BTreeMap<IpNet, Attributes> = (0..1000u128)
        .map(|i| {
            let a = Ipv6Addr::from(0x2001_0db8_0007_0000_0000_0000_0000_0000u128 + i);
            (
                IpNet::V6(ipnet::Ipv6Net::new(a, 128).unwrap()),
                Attributes::default(),
            )
        })
        .collect();
    let msgs = rib.set_desired(&desired);
    // iBGP IPv6 attributes: ORIGIN 4 + AS_PATH 3 + LOCAL_PREF 7 + MP_REACH header 4 +
    // AFI/SAFI/NH len/NH/reserved 21 = 39 octets; (4096 - 23 - 39) / 17 = 237 per UPDATE.
    assert_eq!(msgs.len(), 1000usize.div_ceil(237));
    assert_eq!(sent_prefixes(&msgs, &c).0.len(), 1000);
    let withdrawals = rib.set_desired(&BTreeMap::new());
    // (4096 - 23 - 7) / 17 = 239 per UPDATE.
    assert_eq!(withdrawals.len(), 1000usize.div_ceil(239));
    assert_eq!(sent_prefixes(&withdrawals, &c).1.len(), 1000);
}

#[test]
fn routes_without_a_next_hop_or_family_are_not_sent() {
    let c = SessionContext {
        families: vec![Family::Ipv4Unicast],
        ..ctx(false, true, 65001)
    };
    let mut rib = AdjRibOut::new(&c, Some(NH4), Some(nh6()));
    let mut desired = hosts(2);
    desired.insert("2001:db8::7/128".parse().unwrap(), Attributes::default());
    let msgs = rib.set_desired(&desired);
    assert_eq!(rib.unsendable(), 1);
    assert_eq!(rib.len(), 2);
    assert_eq!(sent_prefixes(&msgs, &c).0.len(), 2);

    let no_v6 = AdjRibOut::new(&ctx(false, true, 65001), Some(NH4), None)
        .set_desired(&desired)
        .len();
    assert_eq!(no_v6, 1);
}

#[test]
fn route_refresh_resends_the_family_and_end_of_rib_follows() {
    let c = ctx(false, true, 65001);
    let mut rib = AdjRibOut::new(&c, Some(NH4), Some(nh6()));
    let mut desired = hosts(900);
    desired.insert("2001:db8::7/128".parse().unwrap(), Attributes::default());
    rib.set_desired(&desired);
    let again = rib.resend_family(Family::Ipv4Unicast);
    assert_eq!(again.len(), 2);
    assert_eq!(sent_prefixes(&again, &c).0.len(), 900);
    assert_eq!(rib.resend_family(Family::Ipv6Unicast).len(), 1);
    assert_eq!(
        rib.end_of_rib(Family::Ipv6Unicast)
            .encode(&c)
            .unwrap()
            .as_ref(),
        &[
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0, 29, 2, 0, 0, 0, 6, 0x80, 15, 3, 0, 2, 1
        ]
    );
}

#[test]
fn different_attribute_sets_get_their_own_updates() {
    let c = ctx(false, true, 65001);
    let mut rib = AdjRibOut::new(&c, Some(NH4), None);
    let mut desired = hosts(10);
    for (i, attrs) in desired.values_mut().enumerate() {
        attrs.communities = vec![(i % 3) as u32];
    }
    let msgs = rib.set_desired(&desired);
    assert_eq!(msgs.len(), 3);
    assert_eq!(sent_prefixes(&msgs, &c).0.len(), 10);
}

mod property {
    use super::*;
    use proptest::collection::{btree_map, vec};
    use proptest::prelude::*;

    fn prefix() -> impl Strategy<Value = IpNet> {
        prop_oneof![
            (any::<u32>(), 8u8..=32)
                .prop_map(|(a, l)| IpNet::V4(Ipv4Net::new(Ipv4Addr::from(a), l).unwrap().trunc())),
            (any::<u128>(), 16u8..=128).prop_map(|(a, l)| IpNet::V6(
                ipnet::Ipv6Net::new(Ipv6Addr::from(a), l).unwrap().trunc()
            )),
        ]
    }

    fn attributes() -> impl Strategy<Value = Attributes> {
        (
            proptest::option::of(0u32..3),
            vec(0u32..3, 0..3),
            proptest::option::of(0u32..2),
        )
            .prop_map(|(local_pref, communities, med)| Attributes {
                local_pref,
                med,
                communities,
                ..Attributes::default()
            })
    }

    fn tables() -> impl Strategy<Value = Vec<BTreeMap<IpNet, Attributes>>> {
        vec(btree_map(prefix(), attributes(), 0..400), 1..5)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever sequence of tables is set, a peer applying the UPDATEs ends up with
        /// exactly the last table, with the right attributes, and no UPDATE is too long.
        #[test]
        fn the_peer_converges_on_the_desired_table(
            steps in tables(), ibgp in any::<bool>(), extended in any::<bool>()
        ) {
            let c = SessionContext {
                extended_message: extended,
                ..ctx(ibgp, true, 65001)
            };
            let mut rib = AdjRibOut::new(&c, Some(NH4), Some(nh6()));
            let mut peer: BTreeMap<IpNet, PathAttributes> = BTreeMap::new();
            for desired in &steps {
                for m in rib.set_desired(desired) {
                    let bytes = m.encode(&c).unwrap();
                    prop_assert!(bytes.len() <= c.max_message_len());
                    let mut buf = BytesMut::from(&bytes[..]);
                    let Some(Message::Update(u)) = try_parse(&mut buf, &c).unwrap() else {
                        panic!("not an UPDATE")
                    };
                    for p in u.all_withdrawn() {
                        prop_assert!(peer.remove(&p).is_some(), "withdrew unknown {}", p);
                    }
                    let mut attrs = u.attributes.clone();
                    attrs.mp_reach = None;
                    for p in u.all_announced() {
                        peer.insert(p, attrs.clone());
                    }
                }
                prop_assert_eq!(rib.set_desired(desired), vec![]);
                let keys: Vec<_> = peer.keys().collect();
                prop_assert_eq!(keys, desired.keys().collect::<Vec<_>>());
                for (p, want) in desired {
                    let family = match p {
                        IpNet::V4(_) => Family::Ipv4Unicast,
                        IpNet::V6(_) => Family::Ipv6Unicast,
                    };
                    let mut expected = rib.path_attributes(want, family);
                    expected.mp_reach = None;
                    prop_assert_eq!(&peer[p], &expected);
                }
            }
        }

        /// Handing over only the prefixes that changed gives the very UPDATEs the whole table
        /// gives, and leaves the same routes sent.
        #[test]
        fn applying_the_changed_prefixes_equals_setting_the_table(
            steps in tables(), ibgp in any::<bool>(), v6_next_hop in any::<bool>()
        ) {
            let c = ctx(ibgp, true, 65001);
            let nh6 = v6_next_hop.then(nh6);
            let mut whole = AdjRibOut::new(&c, Some(NH4), nh6);
            let mut delta = AdjRibOut::new(&c, Some(NH4), nh6);
            let mut before: BTreeMap<IpNet, Arc<Attributes>> = BTreeMap::new();
            for desired in &steps {
                let after: BTreeMap<IpNet, Arc<Attributes>> =
                    desired.iter().map(|(p, a)| (*p, Arc::new(a.clone()))).collect();
                let changed: BTreeSet<IpNet> = before
                    .keys()
                    .chain(after.keys())
                    .filter(|p| before.get(*p) != after.get(*p))
                    .copied()
                    .collect();
                prop_assert_eq!(delta.apply(&after, &changed), whole.set_desired(desired));
                prop_assert_eq!(
                    delta.sent().collect::<Vec<_>>(),
                    whole.sent().collect::<Vec<_>>()
                );
                before = after;
            }
        }
    }
}

/// One /32 with `attrs` on session `c`, encoded: the whole UPDATE.
fn one_update(c: &SessionContext, attrs: Attributes) -> Vec<u8> {
    let mut rib = AdjRibOut::new(c, Some(NH4), None);
    let one: BTreeMap<IpNet, Attributes> = [("198.18.0.0/32".parse().unwrap(), attrs)].into();
    let msgs = rib.set_desired(&one);
    assert_eq!(msgs.len(), 1);
    msgs[0].encode(c).unwrap().to_vec()
}

fn prepend(asn: u32, count: u8) -> Attributes {
    Attributes {
        as_path_prepend: Some(AsPathPrepend { asn, count }),
        ..Attributes::default()
    }
}

#[test]
fn ebgp_prepending_follows_our_as() {
    let c = ctx(false, true, 65001);
    let expected: Vec<u8> = [
        &[0xff; 16][..],
        &[0, 60, 2, 0, 0, 0, 32][..],
        &[0x40, 1, 1, 0][..], // ORIGIN IGP
        // AS_PATH: one AS_SEQUENCE of 4: 65001 (ours), then 65000 three times
        &[0x40, 2, 18, 2, 4][..],
        &[
            0, 0, 0xfd, 0xe9, 0, 0, 0xfd, 0xe8, 0, 0, 0xfd, 0xe8, 0, 0, 0xfd, 0xe8,
        ][..],
        &[0x40, 3, 4, 198, 18, 0, 1][..], // NEXT_HOP
        &[32, 198, 18, 0, 0][..],
    ]
    .concat();
    assert_eq!(one_update(&c, prepend(65000, 3)), expected);
}

#[test]
fn ibgp_prepending_is_the_whole_path() {
    let c = ctx(true, true, 65001);
    let rib = AdjRibOut::new(&c, Some(NH4), None);
    assert_eq!(rib.as_path(&prepend(65001, 2)), vec![65001, 65001]);
    assert_eq!(rib.as_path(&Attributes::default()), Vec::<u32>::new());
}

#[test]
fn a_presented_local_as_comes_first_and_the_real_as_follows_unless_replaced() {
    // RFC 7705: presenting 65100 while our AS is 65001.
    let mut c = ctx(false, true, 65100);
    c.real_asn = Some(65001);
    let rib = AdjRibOut::new(&c, Some(NH4), None);
    assert_eq!(rib.as_path(&Attributes::default()), vec![65100, 65001]);
    assert_eq!(rib.as_path(&prepend(65001, 1)), vec![65100, 65001, 65001]);
    c.real_asn = None; // replace-as
    let rib = AdjRibOut::new(&c, Some(NH4), None);
    assert_eq!(rib.as_path(&Attributes::default()), vec![65100]);
}

#[test]
fn a_prepended_four_octet_as_toward_a_two_octet_peer_goes_in_as4_path() {
    let c = ctx(false, false, 65001);
    let expected: Vec<u8> = [
        &[0xff; 16][..],
        &[0, 67, 2, 0, 0, 0, 39][..],
        &[0x40, 1, 1, 0][..], // ORIGIN IGP
        &[0x40, 2, 8, 2, 3, 0xfd, 0xe9, 0x5b, 0xa0, 0x5b, 0xa0][..], // AS_PATH [65001 23456 23456]
        &[0x40, 3, 4, 198, 18, 0, 1][..], // NEXT_HOP
        // AS4_PATH [65001 4200000001 4200000001]
        &[0xc0, 17, 14, 2, 3, 0, 0, 0xfd, 0xe9][..],
        &[0xfa, 0x56, 0xea, 1, 0xfa, 0x56, 0xea, 1][..],
        &[32, 198, 18, 0, 0][..],
    ]
    .concat();
    assert_eq!(one_update(&c, prepend(4_200_000_001, 2)), expected);
}

#[test]
fn routes_with_different_prepends_go_in_separate_updates_with_their_own_as_path() {
    let c = ctx(false, true, 65001);
    let mut rib = AdjRibOut::new(&c, Some(NH4), None);
    let prefix = |s: &str| -> IpNet { s.parse().unwrap() };
    let desired: BTreeMap<IpNet, Attributes> = [
        (prefix("198.18.0.1/32"), prepend(65001, 3)),
        (prefix("198.18.0.2/32"), Attributes::default()),
        (prefix("198.18.0.3/32"), prepend(65001, 3)),
        (prefix("198.18.0.4/32"), prepend(65001, 1)),
    ]
    .into();
    let mut got: Vec<(Vec<u32>, Vec<IpNet>)> = Vec::new();
    for bytes in encode_all(&rib.set_desired(&desired), &c) {
        let mut buf = BytesMut::from(&bytes[..]);
        let Some(Message::Update(u)) = try_parse(&mut buf, &c).unwrap() else {
            panic!("not an UPDATE");
        };
        let path = u.attributes.as_path.clone().unwrap();
        assert_eq!(path.segments.len(), 1);
        assert_eq!(path.segments[0].kind, AsSegmentKind::Sequence);
        got.push((path.segments[0].asns.clone(), u.all_announced()));
    }
    got.sort();
    assert_eq!(
        got,
        [
            (vec![65001], vec![prefix("198.18.0.2/32")]),
            (vec![65001, 65001], vec![prefix("198.18.0.4/32")]),
            (
                vec![65001, 65001, 65001, 65001],
                vec![prefix("198.18.0.1/32"), prefix("198.18.0.3/32")]
            ),
        ]
    );
}

fn unnumbered(send: bool) -> SessionContext {
    SessionContext {
        extended_next_hop_send: send,
        ..ctx(false, true, 64513)
    }
}

fn mp_reach_of(m: &Message) -> Option<&MpReach> {
    match m {
        Message::Update(u) => u.attributes.mp_reach.as_ref(),
        _ => None,
    }
}

#[test]
fn ipv4_goes_in_mp_reach_with_the_link_local_twice_on_an_unnumbered_session() {
    let ll: Ipv6Addr = "fe80::7c96:2fff:fec2:9292".parse().unwrap();
    let p: IpNet = "203.0.113.7/32".parse().unwrap();
    let desired: BTreeMap<IpNet, Attributes> = [(p, Attributes::default())].into();
    let mut rib = AdjRibOut::new(&unnumbered(true), None, None).with_link_local_next_hop(Some(ll));
    let msgs = rib.set_desired(&desired);
    assert_eq!(msgs.len(), 1);
    let Message::Update(u) = &msgs[0] else {
        panic!("{msgs:?}")
    };
    assert!(u.nlri.is_empty());
    assert_eq!(u.attributes.next_hop, None);
    assert_eq!(
        u.attributes.mp_reach,
        Some(MpReach {
            family: Family::Ipv4Unicast,
            next_hop: IpAddr::V6(ll),
            link_local_next_hop: Some(ll),
            nlri: vec![p],
        })
    );
    // Withdrawn the way FRR withdraws it: MP_UNREACH_NLRI, AFI 1 SAFI 1.
    let msgs = rib.set_desired(&BTreeMap::new());
    let Message::Update(w) = &msgs[0] else {
        panic!("{msgs:?}")
    };
    assert!(w.withdrawn.is_empty());
    assert_eq!(
        w.attributes.mp_unreach,
        Some(MpUnreach {
            family: Family::Ipv4Unicast,
            withdrawn: vec![p],
        })
    );
    // With a global address on the link: global, then link-local.
    let g = nh6();
    let mut rib =
        AdjRibOut::new(&unnumbered(true), None, Some(g)).with_link_local_next_hop(Some(ll));
    let msgs = rib.set_desired(&desired);
    let mp = mp_reach_of(&msgs[0]).unwrap();
    assert_eq!(
        (mp.next_hop, mp.link_local_next_hop),
        (IpAddr::V6(g), Some(ll))
    );
}

#[test]
fn ipv4_over_ipv6_needs_the_peers_capability_and_yields_to_an_ipv4_next_hop() {
    let ll: Ipv6Addr = "fe80::1".parse().unwrap();
    let p: IpNet = "203.0.113.7/32".parse().unwrap();
    let desired: BTreeMap<IpNet, Attributes> = [(p, Attributes::default())].into();
    let mut rib = AdjRibOut::new(&unnumbered(false), None, None).with_link_local_next_hop(Some(ll));
    assert!(rib.set_desired(&desired).is_empty());
    assert_eq!(rib.unsendable(), 1);
    let mut rib =
        AdjRibOut::new(&unnumbered(true), Some(NH4), None).with_link_local_next_hop(Some(ll));
    let msgs = rib.set_desired(&desired);
    let Message::Update(u) = &msgs[0] else {
        panic!("{msgs:?}")
    };
    assert_eq!((u.attributes.next_hop, u.nlri.len()), (Some(NH4), 1));
    assert_eq!(u.attributes.mp_reach, None);
}

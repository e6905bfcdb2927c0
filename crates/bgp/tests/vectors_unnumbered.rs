//! RFC 8950 extended next hop: the capability (and our FSM announcing it) and IPv4 unicast NLRI
//! with IPv6 next hops, against bytes FRR 8.4.4 sent on an unnumbered session (`neighbor IF
//! interface remote-as external`, `capability extended-nexthop`), captured with tshark on a veth
//! with no IPv4 address.

use bytes::BytesMut;
use ferrolb_bgp::fsm::{Fsm, FsmConfig};
use ferrolb_bgp::wire::{
    AsPath, Capability, DecodeError, ExtendedNextHop, Family, Message, MpReach, NotificationError,
    Open, SessionContext, Update, negotiate, try_parse,
};

use ipnet::IpNet;
use std::net::{IpAddr, Ipv6Addr};

/// FRR's OPEN (AS 64513, hold time 9, router ID 198.51.100.2, hostname "uncb").
const FRR_UNNUMBERED_OPEN: &str = "007d0104fc010009c6336402600206010400010001020805060001000100020206010400020001020280000202020002024600020641040000fc0102020600020a450800010101000201010208490604756e63620002044002c0780210470e0001018000000000020180000000";

/// FRR (AS 64512) announcing 203.0.113.7/32 over a link with no global address: MP_REACH_NLRI
/// AFI 1 SAFI 1, a 32-octet next hop holding its link-local address twice; ORIGIN IGP,
/// AS_PATH 64512, MED 0. FRR sets the Extended Length bit on MP_REACH_NLRI.
const FRR_UNNUMBERED_UPDATE_LINK_LOCAL: &str = "005a0200000043900e002a00010120fe800000000000007c962ffffec29292fe800000000000007c962ffffec292920020cb007107400101005002000602010000fc0080040400000000";

/// The same from a router whose link also has 2001:db8:77:0:c0c8:8eff:fe7c:87f7: global, then
/// link-local.
const FRR_UNNUMBERED_UPDATE_GLOBAL: &str = "005a0200000043900e002a0001012020010db800770000c0c88efffe7c87f7fe80000000000000c0c88efffe7c87f70020cb007107400101005002000602010000fc0080040400000000";

/// FRR withdrawing 203.0.113.7/32 in MP_UNREACH_NLRI AFI 1 SAFI 1.
const FRR_UNNUMBERED_WITHDRAW: &str = "0023020000000c900f000800010120cb007107";

/// FRR's End-of-RIB for IPv4 unicast on that session: the classic empty UPDATE.
const FRR_UNNUMBERED_EOR_V4: &str = "00170200000000";

/// A whole message from its captured length, type and body (the marker left out, as in
/// `vectors.rs`; `testbed/fuzz seeds` reads both files).
fn msg(body: &str) -> Vec<u8> {
    hex(&format!("{}{body}", "ff".repeat(16)))
}

/// Bytes from a hex string (whitespace ignored).
fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

/// A whole message from its type and body.
fn message(mtype: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    m.push(mtype);
    m.extend_from_slice(body);
    m
}

/// An UPDATE with no withdrawals and no classic NLRI, from its attribute field.
fn update_message(attrs: &[u8]) -> Vec<u8> {
    let mut body = vec![0, 0];
    body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    body.extend_from_slice(attrs);
    message(2, &body)
}

fn parse(bytes: &[u8], ctx: &SessionContext) -> Result<Option<Message>, DecodeError> {
    try_parse(&mut BytesMut::from(bytes), ctx)
}

fn parse_update(bytes: &[u8], ctx: &SessionContext) -> Update {
    match parse(bytes, ctx) {
        Ok(Some(Message::Update(u))) => u,
        other => panic!("expected an UPDATE, got {other:?}"),
    }
}

fn ll(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn unnumbered() -> SessionContext {
    SessionContext {
        local_asn: 64513,
        peer_asn: 64512,
        extended_next_hop_send: true,
        extended_next_hop_receive: true,
        four_octet_as: true,
        families: vec![Family::Ipv4Unicast, Family::Ipv6Unicast],
        ..SessionContext::before_open()
    }
}

fn host(s: &str) -> IpNet {
    format!("{s}/32").parse().unwrap()
}

#[test]
fn frr_open_announces_ipv4_unicast_over_ipv6() {
    let Ok(Some(Message::Open(open))) =
        parse(&msg(FRR_UNNUMBERED_OPEN), &SessionContext::before_open())
    else {
        panic!("FRR's OPEN does not decode");
    };
    assert_eq!(
        open.extended_next_hop(),
        &[ExtendedNextHop {
            nlri_afi: 1,
            nlri_safi: 1,
            next_hop_afi: 2
        }]
    );
    assert!(open.accepts_ipv4_over_ipv6());
    assert_eq!(open.asn, 64513);
    // The capability's own bytes: code 5, length 6, <AFI 1, SAFI 1 (2 octets), next hop AFI 2>.
    let cap = Capability::ExtendedNextHop(vec![ExtendedNextHop::IPV4_UNICAST_OVER_IPV6]);
    assert_eq!(cap.to_tuple().unwrap()[..], hex("0506 0001 0001 0002")[..]);
    assert!(
        msg(FRR_UNNUMBERED_OPEN)
            .windows(10)
            .any(|w| w == hex("0208 0506 0001 0001 0002"))
    );
}

#[test]
fn negotiation_records_what_each_side_announced() {
    let Ok(Some(Message::Open(frr))) =
        parse(&msg(FRR_UNNUMBERED_OPEN), &SessionContext::before_open())
    else {
        panic!("FRR's OPEN does not decode");
    };
    let ours = |caps: Vec<Capability>| {
        Open::new(64512, 90, std::net::Ipv4Addr::new(198, 51, 100, 9), caps)
    };
    let with = ours(vec![
        Capability::Multiprotocol(Family::Ipv4Unicast),
        Capability::ExtendedNextHop(vec![ExtendedNextHop::IPV4_UNICAST_OVER_IPV6]),
        Capability::FourOctetAs(64512),
    ]);
    let ctx = negotiate(&with, &frr, 64513).unwrap();
    assert!(ctx.extended_next_hop_send && ctx.extended_next_hop_receive);
    let without = ours(vec![
        Capability::Multiprotocol(Family::Ipv4Unicast),
        Capability::FourOctetAs(64512),
    ]);
    let ctx = negotiate(&without, &frr, 64513).unwrap();
    assert!(ctx.extended_next_hop_send);
    assert!(!ctx.extended_next_hop_receive);
    // The other way round: FRR's tuples are all we look at.
    let ctx = negotiate(&frr, &without, 64512).unwrap();
    assert!(!ctx.extended_next_hop_send && ctx.extended_next_hop_receive);
}

#[test]
fn extended_next_hop_capability_length_must_be_a_multiple_of_six() {
    for value in ["", "0001 0001 00", "0001 0001 0002 00"] {
        let cap = hex(&format!(
            "05{:02x}{value}",
            value.split_whitespace().collect::<String>().len() / 2
        ));
        let mut body = hex("04 fc01 005a c6336402");
        body.push(cap.len() as u8 + 2);
        body.extend_from_slice(&[2, cap.len() as u8]);
        body.extend_from_slice(&cap);
        let err = parse(&message(1, &body), &SessionContext::before_open()).unwrap_err();
        assert_eq!(err.error, NotificationError::OpenUnspecific, "{value}");
        assert_eq!(
            err.detail,
            "extended next hop capability length is not a non-zero multiple of 6"
        );
    }
}

#[test]
fn frr_ipv4_routes_with_ipv6_next_hops_decode() {
    for (bytes, global) in [
        (
            FRR_UNNUMBERED_UPDATE_LINK_LOCAL,
            "fe80::7c96:2fff:fec2:9292",
        ),
        (
            FRR_UNNUMBERED_UPDATE_GLOBAL,
            "2001:db8:77:0:c0c8:8eff:fe7c:87f7",
        ),
    ] {
        let u = parse_update(&msg(bytes), &unnumbered());
        assert!(u.issues.is_empty(), "{:?}", u.issues);
        assert!(u.nlri.is_empty());
        let link_local = if global.starts_with("fe80") {
            ll(global)
        } else {
            ll("fe80::c0c8:8eff:fe7c:87f7")
        };
        assert_eq!(
            u.attributes.mp_reach,
            Some(MpReach {
                family: Family::Ipv4Unicast,
                next_hop: IpAddr::V6(ll(global)),
                link_local_next_hop: Some(link_local),
                nlri: vec![host("203.0.113.7")],
            })
        );
        assert_eq!(u.attributes.as_path, Some(AsPath::sequence(vec![64512])));
        assert_eq!(u.attributes.med, Some(0));
        assert_eq!(u.all_announced(), vec![host("203.0.113.7")]);
    }
    let w = parse_update(&msg(FRR_UNNUMBERED_WITHDRAW), &unnumbered());
    assert_eq!(w.all_withdrawn(), vec![host("203.0.113.7")]);
    assert_eq!(w.end_of_rib_family(), None);
    let eor = parse_update(&msg(FRR_UNNUMBERED_EOR_V4), &unnumbered());
    assert_eq!(eor.end_of_rib_family(), Some(Family::Ipv4Unicast));
}

#[test]
fn an_ipv6_next_hop_for_ipv4_we_did_not_accept_resets_the_session() {
    let ctx = SessionContext {
        extended_next_hop_receive: false,
        ..unnumbered()
    };
    let err = parse(&msg(FRR_UNNUMBERED_UPDATE_LINK_LOCAL), &ctx).unwrap_err();
    assert!(
        matches!(err.error, NotificationError::OptionalAttributeError { .. }),
        "{err:?}"
    );
    assert_eq!(
        err.detail,
        "MP_REACH_NLRI next hop length wrong for the family"
    );
}

#[test]
fn an_unusable_ipv6_next_hop_for_ipv4_is_treat_as_withdraw() {
    // 16 octets of ff02::1 (multicast); then a 32-octet next hop whose second half is global.
    let multicast = "900e001a 0001 01 10 ff020000000000000000000000000001 00 20cb007107";
    let second_global = "900e002a 0001 01 20 20010db8000000000000000000000001 20010db8000000000000000000000002 00 20cb007107";
    for attr in [multicast, second_global] {
        let attrs = [&hex("40010100 4002060201 0000fc00")[..], &hex(attr)[..]].concat();
        let u = parse_update(&update_message(&attrs), &unnumbered());
        assert!(u.treated_as_withdraw(), "{attr}");
        assert_eq!(u.all_announced(), Vec::<IpNet>::new());
        assert_eq!(u.all_withdrawn(), vec![host("203.0.113.7")]);
        assert_eq!(u.issues.len(), 1);
        assert_eq!(u.issues[0].type_code, 14);
    }
    // A 16-octet global next hop alone is fine.
    let attrs = hex(
        "40010100 4002060201 0000fc00 900e001a 0001 01 10 20010db8000000000000000000000001 00 20cb007107",
    );
    let u = parse_update(&update_message(&attrs), &unnumbered());
    assert!(u.issues.is_empty());
    assert_eq!(
        u.attributes.mp_reach.unwrap().next_hop,
        "2001:db8::1".parse::<IpAddr>().unwrap()
    );
}

#[test]
fn our_encoding_is_frrs_but_for_the_extended_length_bit_and_attribute_order() {
    let frr = parse_update(&msg(FRR_UNNUMBERED_UPDATE_LINK_LOCAL), &unnumbered());
    let mut ours = frr.clone();
    ours.attributes.med = None;
    let bytes = Message::Update(ours.clone()).encode(&unnumbered()).unwrap();
    // ORIGIN, AS_PATH, then MP_REACH_NLRI with a one-octet length (0x80, 0x2a).
    let expected = hex(
        "ffffffffffffffffffffffffffffffff 0051 02 0000 003a 400101 00 400206 0201 0000fc00 800e2a 0001 01 20 fe800000000000007c962ffffec29292 fe800000000000007c962ffffec29292 00 20cb007107",
    );
    assert_eq!(bytes[..], expected[..]);
    assert_eq!(parse_update(&bytes, &unnumbered()), ours);
    // Not to a peer that did not announce the capability.
    let ctx = SessionContext {
        extended_next_hop_send: false,
        ..unnumbered()
    };
    assert!(Message::Update(ours).encode(&ctx).is_err());
}

/// Our side: the FSM puts the capability in its OPEN for an unnumbered session.
#[test]
fn extended_next_hop_is_announced_only_when_configured_and_with_ipv4() {
    let link_local: std::net::IpAddr = "fe80::2".parse().unwrap();
    let mut c = FsmConfig::new(64513, 64512);
    assert!(
        !Fsm::new(c.clone())
            .build_open(link_local)
            .accepts_ipv4_over_ipv6()
    );
    c.extended_next_hop = true;
    let open = Fsm::new(c.clone()).build_open(link_local);
    assert_eq!(
        open.extended_next_hop(),
        &[ExtendedNextHop::IPV4_UNICAST_OVER_IPV6]
    );
    let bytes = Message::Open(open)
        .encode(&SessionContext::before_open())
        .unwrap();
    // Its own optional parameter: type 2, length 8, code 5, length 6, <1, 1, 2>.
    assert!(
        bytes
            .windows(10)
            .any(|w| w == [2, 8, 5, 6, 0, 1, 0, 1, 0, 2])
    );
    // Without IPv4 unicast there is nothing to carry over IPv6.
    c.families = vec![Family::Ipv6Unicast];
    assert!(
        Fsm::new(c)
            .build_open(link_local)
            .extended_next_hop()
            .is_empty()
    );
}

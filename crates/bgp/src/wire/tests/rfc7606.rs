//! RFC 7606: which UPDATE errors withdraw the routes, which drop an attribute, and which keep
//! the session.

use super::*;
use ipnet::{IpNet, Ipv4Net};

fn host() -> Ipv4Net {
    "203.0.113.7/32".parse().unwrap()
}

/// BASIC_ATTRS followed by `extra`.
fn with(extra: &[u8]) -> Vec<u8> {
    let mut a = BASIC_ATTRS.to_vec();
    a.extend_from_slice(extra);
    a
}

fn assert_withdrawn(u: &Update, type_code: u8, error: NotificationError) {
    assert!(u.treated_as_withdraw());
    assert_eq!(u.nlri, vec![]);
    assert_eq!(u.withdrawn, vec![host()]);
    assert_eq!(u.attributes, PathAttributes::default());
    assert_eq!(
        u.issues,
        vec![AttributeIssue {
            type_code,
            action: ErrorAction::TreatAsWithdraw,
            error
        }]
    );
}

#[test]
fn a_valid_update_has_no_issues() {
    let u = parse_update(&update_message(&[], BASIC_ATTRS, ONE_NLRI), &ebgp());
    assert_eq!(u.issues, vec![]);
    assert_eq!(u.nlri, vec![host()]);
    assert_eq!(u.attributes.origin, Some(Origin::Igp));
}

#[test]
fn an_undefined_origin_is_treat_as_withdraw() {
    // RFC 7606 §7.1.
    let attrs = [
        &[0x40, 1, 1, 3][..],
        &BASIC_ATTRS[4..], // AS_PATH and NEXT_HOP
    ]
    .concat();
    let u = parse_update(&update_message(&[], &attrs, ONE_NLRI), &ebgp());
    assert_withdrawn(
        &u,
        1,
        NotificationError::InvalidOriginAttribute {
            attribute: vec![0x40, 1, 1, 3].into(),
        },
    );
}

#[test]
fn a_missing_next_hop_is_treat_as_withdraw() {
    // RFC 7606 §3(d).
    let u = parse_update(&update_message(&[], &BASIC_ATTRS[..13], ONE_NLRI), &ebgp());
    assert_withdrawn(
        &u,
        3,
        NotificationError::MissingWellKnownAttribute { type_code: 3 },
    );
}

#[test]
fn a_withdrawal_only_update_needs_no_mandatory_attributes() {
    let u = parse_update(&update_message(ONE_NLRI, &[], &[]), &ebgp());
    assert_eq!(u.issues, vec![]);
    assert_eq!(u.withdrawn, vec![host()]);
}

#[test]
fn a_malformed_as_path_is_treat_as_withdraw() {
    // RFC 7606 §7.2: segment count 2 with one ASN.
    let attrs = [
        &[0x40, 1, 1, 0][..],
        &[0x40, 2, 6, 2, 2, 0, 0, 0xfd, 0xea][..],
        &[0x40, 3, 4, 198, 18, 0, 2][..],
    ]
    .concat();
    let u = parse_update(&update_message(&[], &attrs, ONE_NLRI), &ebgp());
    assert_withdrawn(&u, 2, NotificationError::MalformedAsPath);
}

#[test]
fn a_confederation_segment_from_an_external_peer_is_treat_as_withdraw() {
    let attrs = [
        &[0x40, 1, 1, 0][..],
        &[0x40, 2, 6, 3, 1, 0, 0, 0xfd, 0xea][..],
        &[0x40, 3, 4, 198, 18, 0, 2][..],
    ]
    .concat();
    let u = parse_update(&update_message(&[], &attrs, ONE_NLRI), &ebgp());
    assert_withdrawn(&u, 2, NotificationError::MalformedAsPath);
}

#[test]
fn a_zero_next_hop_is_treat_as_withdraw() {
    let attrs = [&BASIC_ATTRS[..13], &[0x40, 3, 4, 0, 0, 0, 0][..]].concat();
    let u = parse_update(&update_message(&[], &attrs, ONE_NLRI), &ebgp());
    assert_withdrawn(
        &u,
        3,
        NotificationError::InvalidNextHopAttribute {
            attribute: vec![0x40, 3, 4, 0, 0, 0, 0].into(),
        },
    );
}

#[test]
fn a_med_of_the_wrong_length_is_treat_as_withdraw() {
    let u = parse_update(
        &update_message(&[], &with(&[0x80, 4, 2, 0, 1]), ONE_NLRI),
        &ebgp(),
    );
    assert_withdrawn(
        &u,
        4,
        NotificationError::AttributeLengthError {
            attribute: vec![0x80, 4, 2, 0, 1].into(),
        },
    );
}

#[test]
fn communities_not_a_multiple_of_four_are_treat_as_withdraw() {
    // RFC 7606 §7.8.
    let u = parse_update(
        &update_message(&[], &with(&[0xc0, 8, 3, 1, 2, 3]), ONE_NLRI),
        &ebgp(),
    );
    assert_withdrawn(
        &u,
        8,
        NotificationError::OptionalAttributeError {
            attribute: vec![0xc0, 8, 3, 1, 2, 3].into(),
        },
    );
}

#[test]
fn large_communities_not_a_multiple_of_twelve_are_treat_as_withdraw() {
    let attr = [0xc0, 32, 4, 0, 0, 0, 1];
    let u = parse_update(&update_message(&[], &with(&attr), ONE_NLRI), &ebgp());
    assert_withdrawn(
        &u,
        32,
        NotificationError::OptionalAttributeError {
            attribute: attr.to_vec().into(),
        },
    );
}

#[test]
fn wrong_flags_on_origin_are_treat_as_withdraw() {
    // RFC 7606 §3(c): ORIGIN marked optional.
    let attrs = [&[0xc0, 1, 1, 0][..], &BASIC_ATTRS[4..]].concat();
    let u = parse_update(&update_message(&[], &attrs, ONE_NLRI), &ebgp());
    assert_withdrawn(
        &u,
        1,
        NotificationError::AttributeFlagsError {
            attribute: vec![0xc0, 1, 1, 0].into(),
        },
    );
}

#[test]
fn an_attribute_overrunning_the_list_is_treat_as_withdraw_and_nlri_still_found() {
    // RFC 7606 §4: a MED claiming 9 octets where 4 remain; the Total Path Attribute Length
    // still locates the NLRI.
    let u = parse_update(
        &update_message(&[], &with(&[0x80, 4, 9, 0, 0, 0, 1]), ONE_NLRI),
        &ebgp(),
    );
    assert_withdrawn(&u, 0, NotificationError::MalformedAttributeList);
}

#[test]
fn a_bad_atomic_aggregate_is_discarded_and_the_route_stands() {
    // RFC 7606 §7.6.
    let u = parse_update(
        &update_message(&[], &with(&[0x40, 6, 1, 0]), ONE_NLRI),
        &ebgp(),
    );
    assert!(!u.treated_as_withdraw());
    assert_eq!(u.nlri, vec![host()]);
    assert!(!u.attributes.atomic_aggregate);
    assert_eq!(u.issues.len(), 1);
    assert_eq!(u.issues[0].action, ErrorAction::AttributeDiscard);
    assert_eq!(u.issues[0].type_code, 6);
}

#[test]
fn a_bad_aggregator_is_discarded() {
    // RFC 7606 §7.7: 6 octets on a 4-octet session.
    let u = parse_update(
        &update_message(
            &[],
            &with(&[0xc0, 7, 6, 0xfd, 0xea, 198, 18, 0, 2]),
            ONE_NLRI,
        ),
        &ebgp(),
    );
    assert_eq!(u.nlri, vec![host()]);
    assert_eq!(u.attributes.aggregator, None);
    assert_eq!(u.issues[0].action, ErrorAction::AttributeDiscard);
}

#[test]
fn a_repeated_attribute_keeps_the_first() {
    // RFC 7606 §3(g).
    let extra = [0xc0, 8, 4, 0, 0, 0, 1, 0xc0, 8, 4, 0, 0, 0, 2];
    let u = parse_update(&update_message(&[], &with(&extra), ONE_NLRI), &ebgp());
    assert_eq!(u.attributes.communities, vec![1]);
    assert_eq!(u.nlri, vec![host()]);
    assert_eq!(
        u.issues,
        vec![AttributeIssue {
            type_code: 8,
            action: ErrorAction::AttributeDiscard,
            error: NotificationError::MalformedAttributeList
        }]
    );
}

#[test]
fn local_pref_from_an_external_peer_is_ignored() {
    // RFC 7606 §7.5.
    let extra = [0x40, 5, 4, 0, 0, 0, 200];
    let u = parse_update(&update_message(&[], &with(&extra), ONE_NLRI), &ebgp());
    assert_eq!(u.attributes.local_pref, None);
    assert_eq!(u.issues, vec![]);
    let ibgp = SessionContext {
        ibgp: true,
        ..ebgp()
    };
    let u = parse_update(&update_message(&[], &with(&extra), ONE_NLRI), &ibgp);
    assert_eq!(u.attributes.local_pref, Some(200));
}

#[test]
fn as4_path_from_a_four_octet_speaker_is_ignored() {
    // RFC 6793 §3.
    let extra = [0xc0, 17, 6, 2, 1, 0, 0, 0xfd, 0xea];
    let u = parse_update(&update_message(&[], &with(&extra), ONE_NLRI), &ebgp());
    assert_eq!(u.attributes.as4_path, None);
    assert_eq!(u.issues, vec![]);
}

#[test]
fn unknown_optional_attributes_are_kept() {
    let extra = [0xe0, 200, 2, 9, 9];
    let u = parse_update(&update_message(&[], &with(&extra), ONE_NLRI), &ebgp());
    assert_eq!(
        u.attributes.unknown,
        vec![RawAttribute {
            flags: 0xe0,
            type_code: 200,
            value: vec![9, 9].into()
        }]
    );
}

#[test]
fn treat_as_withdraw_of_an_ipv6_update_moves_its_nlri_to_mp_unreach() {
    // MP_REACH for 2001:db8:7::/48 with a COMMUNITIES attribute of 2 octets.
    let mut mp = vec![0x80, 14, 0, 0, 2, 1, 16];
    mp.extend_from_slice(
        &"2001:db8::1"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    mp.push(0);
    mp.extend_from_slice(&[48, 0x20, 0x01, 0x0d, 0xb8, 0, 7]);
    mp[2] = (mp.len() - 3) as u8;
    let attrs = [
        &[0x40, 1, 1, 0][..],
        &[0x40, 2, 0][..],
        &[0xc0, 8, 2, 0, 1][..],
        &mp[..],
    ]
    .concat();
    let u = parse_update(&update_message(&[], &attrs, &[]), &ebgp());
    assert!(u.treated_as_withdraw());
    assert_eq!(
        u.attributes.mp_unreach,
        Some(MpUnreach {
            family: Family::Ipv6Unicast,
            withdrawn: vec![IpNet::V6("2001:db8:7::/48".parse().unwrap())],
        })
    );
    assert_eq!(u.attributes.mp_reach, None);
    assert_eq!(u.all_withdrawn().len(), 1);
    assert_eq!(u.all_announced(), vec![]);
}

#[test]
fn mp_reach_for_a_family_we_do_not_speak_is_ignored() {
    // AFI 1 SAFI 128 (L3VPN).
    let attrs = [0x80, 14, 9, 0, 1, 128, 4, 198, 18, 0, 2, 0];
    let u = parse_update(&update_message(&[], &attrs, &[]), &ebgp());
    assert_eq!(u.attributes.mp_reach, None);
    assert_eq!(u.issues, vec![]);
}

//! One test per NOTIFICATION the codec makes the session send, with its exact bytes, and the
//! words a person reads for received ones.

use super::*;
use std::net::Ipv4Addr;

/// The NOTIFICATION body (code, subcode, data) the session sends for `bytes`.
fn sent_for(bytes: &[u8], ctx: &SessionContext) -> Vec<u8> {
    let err = parse(bytes, ctx).expect_err("a session reset");
    let n = Notification::from(err);
    let wire = Message::Notification(n).encode(ctx).unwrap();
    wire[HEADER_LEN..].to_vec()
}

fn open_body(version: u8, params: &[u8]) -> Vec<u8> {
    let mut b = vec![
        version,
        0xfd,
        0xea,
        0,
        90,
        198,
        18,
        0,
        2,
        params.len() as u8,
    ];
    b.extend_from_slice(params);
    b
}

fn before_open() -> SessionContext {
    SessionContext::before_open()
}

#[test]
fn connection_not_synchronized() {
    let mut m = message(message_type::KEEPALIVE, &[]);
    m[5] = 0xfe;
    assert_eq!(sent_for(&m, &ebgp()), [1, 1]);
}

#[test]
fn bad_message_length_carries_the_length() {
    let m = message(message_type::KEEPALIVE, &[0]);
    assert_eq!(sent_for(&m, &ebgp()), [1, 2, 0, 20]);
}

#[test]
fn bad_message_type_carries_the_type() {
    assert_eq!(sent_for(&message(7, &[]), &ebgp()), [1, 3, 7]);
}

#[test]
fn unsupported_version_number_carries_version_4() {
    let m = message(message_type::OPEN, &open_body(3, &[]));
    assert_eq!(sent_for(&m, &before_open()), [2, 1, 0, 4]);
}

#[test]
fn malformed_capability_is_open_error_unspecific() {
    // A multiprotocol capability of 3 octets instead of 4.
    let m = message(message_type::OPEN, &open_body(4, &[2, 5, 1, 3, 0, 1, 0]));
    assert_eq!(sent_for(&m, &before_open()), [2, 0]);
}

#[test]
fn unsupported_optional_parameter() {
    // Optional parameter type 1 (the deprecated authentication parameter).
    let m = message(message_type::OPEN, &open_body(4, &[1, 1, 0]));
    assert_eq!(sent_for(&m, &before_open()), [2, 4]);
}

fn local_open() -> Open {
    Open::new(
        65001,
        90,
        Ipv4Addr::new(198, 18, 0, 1),
        vec![
            Capability::Multiprotocol(Family::Ipv4Unicast),
            Capability::FourOctetAs(65001),
        ],
    )
}

fn negotiate_error(remote: Open, expected_peer_asn: u32) -> Vec<u8> {
    let err = negotiate(&local_open(), &remote, expected_peer_asn).unwrap_err();
    let n = Notification::from(err);
    let mut v = vec![n.code, n.subcode];
    v.extend_from_slice(&n.data);
    v
}

#[test]
fn bad_peer_as() {
    let remote = Open::new(65003, 90, Ipv4Addr::new(198, 18, 0, 2), vec![]);
    assert_eq!(negotiate_error(remote, 65002), [2, 2]);
}

#[test]
fn bad_bgp_identifier_zero_or_same_as_ours_on_ibgp() {
    let zero = Open::new(65002, 90, Ipv4Addr::UNSPECIFIED, vec![]);
    assert_eq!(negotiate_error(zero, 65002), [2, 3]);
    let same = Open::new(65001, 90, Ipv4Addr::new(198, 18, 0, 1), vec![]);
    assert_eq!(negotiate_error(same, 65001), [2, 3]);
    // On eBGP the same identifier is allowed (RFC 6286 §2.2).
    let ebgp_same = Open::new(65002, 90, Ipv4Addr::new(198, 18, 0, 1), vec![]);
    assert!(negotiate(&local_open(), &ebgp_same, 65002).is_ok());
}

#[test]
fn unacceptable_hold_time() {
    for hold in [1, 2] {
        let remote = Open::new(65002, hold, Ipv4Addr::new(198, 18, 0, 2), vec![]);
        assert_eq!(negotiate_error(remote, 65002), [2, 6]);
    }
}

#[test]
fn unsupported_capability_lists_our_families() {
    let remote = Open::new(
        65002,
        90,
        Ipv4Addr::new(198, 18, 0, 2),
        vec![Capability::Multiprotocol(Family::Ipv6Unicast)],
    );
    assert_eq!(negotiate_error(remote, 65002), [2, 7, 1, 4, 0, 1, 0, 1]);
}

#[test]
fn malformed_attribute_list_for_an_overrunning_withdrawn_length() {
    // Withdrawn Routes Length 10 with 5 octets left.
    let m = message(message_type::UPDATE, &[0, 10, 32, 203, 0, 113, 7]);
    assert_eq!(sent_for(&m, &ebgp()), [3, 1]);
}

#[test]
fn malformed_attribute_list_for_a_duplicate_mp_reach() {
    let mp = [0x80, 14, 9, 0, 1, 1, 4, 198, 18, 0, 2, 0];
    let mut attrs = mp.to_vec();
    attrs.extend_from_slice(&mp);
    assert_eq!(sent_for(&update_message(&[], &attrs, &[]), &ebgp()), [3, 1]);
}

#[test]
fn unrecognized_well_known_attribute_carries_the_attribute() {
    let mut attrs = BASIC_ATTRS.to_vec();
    attrs.extend_from_slice(&[0x40, 99, 1, 7]);
    let m = update_message(&[], &attrs, ONE_NLRI);
    assert_eq!(sent_for(&m, &ebgp()), [3, 2, 0x40, 99, 1, 7]);
}

#[test]
fn attribute_flags_error_for_a_transitive_mp_reach() {
    let attrs = [0xc0, 14, 9, 0, 1, 1, 4, 198, 18, 0, 2, 0];
    let m = update_message(&[], &attrs, &[]);
    let mut expected = vec![3, 4];
    expected.extend_from_slice(&attrs);
    assert_eq!(sent_for(&m, &ebgp()), expected);
}

#[test]
fn optional_attribute_error_for_an_mp_reach_next_hop_of_the_wrong_length() {
    // IPv6 unicast with a 4-octet next hop: the NLRI cannot be located (RFC 7606 §7.11).
    let attrs = [0x80, 14, 9, 0, 2, 1, 4, 198, 18, 0, 2, 0];
    let mut expected = vec![3, 9];
    expected.extend_from_slice(&attrs);
    assert_eq!(
        sent_for(&update_message(&[], &attrs, &[]), &ebgp()),
        expected
    );
}

#[test]
fn invalid_network_field_for_a_prefix_longer_than_32() {
    let m = update_message(&[], BASIC_ATTRS, &[33, 203, 0, 113, 7, 0]);
    assert_eq!(sent_for(&m, &ebgp()), [3, 10]);
    let cut = update_message(&[], BASIC_ATTRS, &[32, 203, 0]);
    assert_eq!(sent_for(&cut, &ebgp()), [3, 10]);
}

#[test]
fn received_notifications_read_as_words() {
    let cases: Vec<(u8, u8, Vec<u8>, &str)> = vec![
        (
            1,
            2,
            vec![0, 20],
            "Message Header Error / Bad Message Length (20)",
        ),
        (2, 2, vec![], "OPEN Message Error / Bad Peer AS"),
        (2, 6, vec![], "OPEN Message Error / Unacceptable Hold Time"),
        (3, 11, vec![], "UPDATE Message Error / Malformed AS_PATH"),
        (4, 0, vec![], "Hold Timer Expired"),
        (
            5,
            3,
            vec![],
            "Finite State Machine Error / Receive Unexpected Message in Established State",
        ),
        (6, 10, vec![], "Cease / BFD Down"),
        (6, 3, vec![], "Cease / Peer De-configured"),
        (
            6,
            4,
            b"\x05maint".to_vec(),
            "Cease / Administrative Reset: \"maint\"",
        ),
        (6, 2, vec![0], "Cease / Administrative Shutdown"),
        (6, 9, vec![4, 0], "Cease / Hard Reset (Hold Timer Expired)"),
        (
            7,
            1,
            vec![],
            "ROUTE-REFRESH Message Error / Invalid Message Length",
        ),
        (6, 42, vec![], "Cease / subcode 42"),
        (9, 1, vec![], "Unknown Error Code / subcode 1"),
    ];
    for (code, subcode, data, words) in cases {
        let n = Notification {
            code,
            subcode,
            data: data.clone().into(),
        };
        assert_eq!(n.to_string(), words);
        // What we read back encodes to the same bytes.
        let again = Notification::from(n.error());
        assert_eq!(again, n, "{words}");
    }
}

#[test]
fn shutdown_communication_is_cut_to_255_octets_at_a_character_boundary() {
    let text = "é".repeat(200); // 400 octets
    let n = Notification::administrative_shutdown(&text);
    assert_eq!((n.code, n.subcode), (6, 2));
    assert_eq!(n.data[0], 254);
    assert_eq!(n.data.len(), 255);
    let Cease::AdministrativeShutdown { communication } = (match n.error() {
        NotificationError::Cease(c) => c,
        other => panic!("{other:?}"),
    }) else {
        panic!("not a shutdown")
    };
    assert_eq!(communication, "é".repeat(127));
}

#[test]
fn a_communication_longer_than_its_data_is_read_as_far_as_it_goes() {
    let n = Notification {
        code: 6,
        subcode: 2,
        data: b"\x20short".to_vec().into(),
    };
    assert_eq!(n.to_string(), "Cease / Administrative Shutdown: \"short\"");
}

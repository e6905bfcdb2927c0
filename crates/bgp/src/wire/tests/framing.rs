//! The framer: need-more, one message at a time, and header errors reported at once.

use super::*;
use bytes::BytesMut;

#[test]
fn incomplete_messages_wait_and_consume_nothing() {
    let ka = message(message_type::KEEPALIVE, &[]);
    for cut in 0..ka.len() {
        let mut buf = BytesMut::from(&ka[..cut]);
        assert_eq!(try_parse(&mut buf, &ebgp()).unwrap(), None, "cut at {cut}");
        assert_eq!(buf.len(), cut);
    }
}

#[test]
fn two_messages_in_one_buffer_come_out_one_by_one() {
    let mut bytes = message(message_type::KEEPALIVE, &[]);
    bytes.extend(message(message_type::ROUTE_REFRESH, &[0, 2, 0, 1]));
    bytes.extend(&[0xff; 7]);
    let mut buf = BytesMut::from(&bytes[..]);
    assert_eq!(
        try_parse(&mut buf, &ebgp()).unwrap(),
        Some(Message::Keepalive)
    );
    assert_eq!(
        try_parse(&mut buf, &ebgp()).unwrap(),
        Some(Message::RouteRefresh(RouteRefresh::new(
            Family::Ipv6Unicast
        )))
    );
    assert_eq!(try_parse(&mut buf, &ebgp()).unwrap(), None);
    assert_eq!(buf.len(), 7);
}

#[test]
fn a_bad_marker_is_reported_from_the_first_wrong_octet() {
    // Only three octets have arrived and the third is wrong: no waiting for the rest.
    let err = parse(&[0xff, 0xff, 0x00], &ebgp()).unwrap_err();
    assert_eq!(err.error, NotificationError::ConnectionNotSynchronized);
    assert_eq!(
        Message::Notification(err.into())
            .encode(&ebgp())
            .unwrap()
            .as_ref(),
        &message(message_type::NOTIFICATION, &[1, 1])[..]
    );
}

#[test]
fn a_bad_length_is_reported_before_the_body_arrives() {
    // Header says 4097 octets: too long without extended messages. Only the header is here.
    let mut header = vec![0xff; 16];
    header.extend_from_slice(&4097u16.to_be_bytes());
    header.push(message_type::UPDATE);
    let err = parse(&header, &ebgp()).unwrap_err();
    assert_eq!(
        err.error,
        NotificationError::BadMessageLength { length: 4097 }
    );
    assert_eq!(Notification::from(err).data.as_ref(), &[0x10, 0x01]);

    // The same length is fine once extended messages are negotiated: it waits for the body.
    let ctx = SessionContext {
        extended_message: true,
        ..ebgp()
    };
    assert_eq!(parse(&header, &ctx).unwrap(), None);
}

#[test]
fn lengths_wrong_for_the_type_are_bad_message_length() {
    for (mtype, body_len) in [
        (message_type::KEEPALIVE, 1usize),
        (message_type::OPEN, 9),
        (message_type::UPDATE, 3),
        (message_type::NOTIFICATION, 1),
        (message_type::ROUTE_REFRESH, 5),
    ] {
        let bytes = message(mtype, &vec![0; body_len]);
        let err = parse(&bytes, &ebgp()).unwrap_err();
        assert_eq!(
            err.error,
            NotificationError::BadMessageLength {
                length: (HEADER_LEN + body_len) as u16
            },
            "type {mtype}"
        );
    }
    let mut short = vec![0xff; 16];
    short.extend_from_slice(&18u16.to_be_bytes());
    short.push(message_type::KEEPALIVE);
    assert_eq!(
        parse(&short, &ebgp()).unwrap_err().error,
        NotificationError::BadMessageLength { length: 18 }
    );
}

#[test]
fn an_unknown_type_is_bad_message_type() {
    let err = parse(&message(9, &[]), &ebgp()).unwrap_err();
    assert_eq!(
        err.error,
        NotificationError::BadMessageType { message_type: 9 }
    );
    assert_eq!(Notification::from(err).data.as_ref(), &[9]);
}

#[test]
fn open_is_limited_to_4096_even_with_extended_messages() {
    let ctx = SessionContext {
        extended_message: true,
        ..ebgp()
    };
    let mut header = vec![0xff; 16];
    header.extend_from_slice(&5000u16.to_be_bytes());
    header.push(message_type::OPEN);
    assert_eq!(
        parse(&header, &ctx).unwrap_err().error,
        NotificationError::BadMessageLength { length: 5000 }
    );
}

#[test]
fn encoding_refuses_messages_over_the_maximum() {
    let update = Update {
        nlri: (0..1000u32)
            .map(|i| ipnet::Ipv4Net::new(std::net::Ipv4Addr::from(0xcb00_0000 + i), 32).unwrap())
            .collect(),
        ..Update::default()
    };
    let mut out = BytesMut::from(&b"keep"[..]);
    let err = Message::Update(update.clone())
        .encode_into(&ebgp(), &mut out)
        .unwrap_err();
    assert_eq!(
        err,
        EncodeError::MessageTooLong {
            length: 23 + 5000,
            max: 4096
        }
    );
    assert_eq!(
        &out[..],
        b"keep",
        "a failed encode leaves the buffer as it was"
    );
    let ctx = SessionContext {
        extended_message: true,
        ..ebgp()
    };
    assert_eq!(Message::Update(update).encode(&ctx).unwrap().len(), 5023);
}

#[test]
fn decode_rejects_a_slice_whose_length_disagrees_with_the_header() {
    let mut ka = message(message_type::KEEPALIVE, &[]);
    ka.push(0);
    assert_eq!(
        Message::decode(&ka, &ebgp()).unwrap_err().error,
        NotificationError::BadMessageLength { length: 19 }
    );
}

#[test]
fn rfc_9072_extended_optional_parameters_are_read() {
    // Non-extended length 255, type 255, then a 2-octet length; each parameter has a 2-octet
    // length too. One capabilities parameter: route refresh and 4-octet AS 4200000001.
    let caps = [2u8, 0, 65, 4, 0xfa, 0x56, 0xea, 0x01];
    let mut params = vec![2u8];
    params.extend_from_slice(&(caps.len() as u16).to_be_bytes());
    params.extend_from_slice(&caps);
    let mut body = vec![4, 0x5b, 0xa0, 0, 90, 198, 18, 0, 2, 255, 255];
    body.extend_from_slice(&(params.len() as u16).to_be_bytes());
    body.extend_from_slice(&params);
    let Some(Message::Open(open)) = parse(
        &message(message_type::OPEN, &body),
        &SessionContext::before_open(),
    )
    .unwrap() else {
        panic!("not an OPEN")
    };
    assert_eq!(open.asn, 4_200_000_001);
    assert_eq!(
        open.capabilities,
        vec![
            Capability::RouteRefresh,
            Capability::FourOctetAs(4_200_000_001)
        ]
    );
}

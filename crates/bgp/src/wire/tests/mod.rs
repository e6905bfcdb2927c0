//! Unit tests of the codec, without sockets.

mod framing;
mod notifications;
mod rfc7606;
mod roundtrip;

use super::*;

/// A whole message from its type and body.
pub(super) fn message(mtype: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&((HEADER_LEN + body.len()) as u16).to_be_bytes());
    m.push(mtype);
    m.extend_from_slice(body);
    m
}

/// An UPDATE from its three fields.
pub(super) fn update_message(withdrawn: &[u8], attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&(withdrawn.len() as u16).to_be_bytes());
    body.extend_from_slice(withdrawn);
    body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    body.extend_from_slice(attrs);
    body.extend_from_slice(nlri);
    message(message_type::UPDATE, &body)
}

/// An established eBGP session with 4-octet AS, both families.
pub(super) fn ebgp() -> SessionContext {
    SessionContext {
        local_asn: 65001,
        peer_asn: 65002,
        four_octet_as: true,
        ibgp: false,
        families: vec![Family::Ipv4Unicast, Family::Ipv6Unicast],
        extended_message: false,
        extended_next_hop_send: false,
        extended_next_hop_receive: false,
        route_refresh: true,
        hold_time: 90,
        peer_bgp_id: std::net::Ipv4Addr::new(198, 18, 0, 2),
        peer_graceful_restart: None,
        real_asn: None,
    }
}

/// Parse one message or return the error.
pub(super) fn parse(bytes: &[u8], ctx: &SessionContext) -> Result<Option<Message>, DecodeError> {
    let mut buf = bytes::BytesMut::from(bytes);
    try_parse(&mut buf, ctx)
}

/// The decoded UPDATE of a valid message.
pub(super) fn parse_update(bytes: &[u8], ctx: &SessionContext) -> Update {
    match parse(bytes, ctx) {
        Ok(Some(Message::Update(u))) => u,
        other => panic!("expected an UPDATE, got {other:?}"),
    }
}

/// ORIGIN IGP, AS_PATH [65002] (4-octet), NEXT_HOP 198.18.0.2.
pub(super) const BASIC_ATTRS: &[u8] = &[
    0x40, 1, 1, 0, //
    0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xea, //
    0x40, 3, 4, 198, 18, 0, 2,
];

/// NLRI 203.0.113.7/32.
pub(super) const ONE_NLRI: &[u8] = &[32, 203, 0, 113, 7];

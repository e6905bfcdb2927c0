//! Shared by the per-message targets: the session context from the input's first octet, the BGP header put in
//! front of the body the fuzzer writes (so its effort goes into the body), and the round-trip check.
#![allow(dead_code)]

use bytes::BytesMut;
use ferrolb_bgp::wire::{Family, Message, SessionContext, try_parse};

/// The context bits of the first input octet: 4-octet AS (1), iBGP (2), extended messages (4), IPv6 unicast
/// negotiated (8), extended next hop (RFC 8950: IPv4 unicast with IPv6 next hops) both ways (16).
pub fn context(mode: u8) -> SessionContext {
    let mut families = vec![Family::Ipv4Unicast];
    if mode & 8 != 0 {
        families.push(Family::Ipv6Unicast);
    }
    SessionContext {
        four_octet_as: mode & 1 != 0,
        ibgp: mode & 2 != 0,
        extended_message: mode & 4 != 0,
        extended_next_hop_send: mode & 16 != 0,
        extended_next_hop_receive: mode & 16 != 0,
        families,
        local_asn: 65001,
        peer_asn: if mode & 2 != 0 { 65001 } else { 65002 },
        ..SessionContext::before_open()
    }
}

/// A whole message of type `mtype` around `body` (the length field says what the body makes it; a body too long
/// for any message is cut).
pub fn message(mtype: u8, body: &[u8]) -> Vec<u8> {
    let body = &body[..body.len().min(65535 - 19)];
    let mut out = vec![0xff; 16];
    out.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    out.push(mtype);
    out.extend_from_slice(body);
    out
}

/// Splits the input into (context, message of type `mtype`) and decodes it: never panics.
pub fn decode(data: &[u8], mtype: u8) -> Option<(SessionContext, Message)> {
    let (&mode, body) = data.split_first()?;
    let ctx = context(mode);
    let msg = Message::decode(&message(mtype, body), &ctx).ok()?;
    Some((ctx, msg))
}

/// A decoded message encodes again; that decodes to the same message (RFC 7606 issues aside, which encoding
/// drops) and encodes to the same bytes.
pub fn round_trip(ctx: &SessionContext, message: Message) {
    let Ok(bytes) = message.encode(ctx) else {
        return;
    };
    let mut again = BytesMut::from(&bytes[..]);
    let decoded = try_parse(&mut again, ctx)
        .expect("our own encoding decodes")
        .expect("our own encoding is a whole message");
    assert!(again.is_empty());
    assert_eq!(without_issues(decoded.clone()), without_issues(message));
    assert_eq!(decoded.encode(ctx).expect("re-encodes"), bytes);
}

/// The message without its RFC 7606 issues.
pub fn without_issues(m: Message) -> Message {
    match m {
        Message::Update(mut u) => {
            u.issues.clear();
            Message::Update(u)
        }
        other => other,
    }
}

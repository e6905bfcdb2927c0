//! The BGP wire codec: pure functions from bytes to typed messages and back.
//!
//! Shape:
//! - [`Message`]: OPEN ([`Open`], with [`Capability`]), UPDATE ([`Update`], with
//!   [`PathAttributes`]), NOTIFICATION ([`Notification`]), KEEPALIVE and ROUTE-REFRESH
//!   ([`RouteRefresh`]).
//! - [`SessionContext`]: what a session negotiated ([`negotiate`] builds it from both OPENs and
//!   checks the peer's). Encoding and decoding read it for 4-octet AS, families and the maximum
//!   message length; [`SessionContext::before_open`] serves until then.
//! - [`try_parse`]: the framer. It returns `Ok(None)` while a message is incomplete, the next
//!   message once it is complete, and an error as soon as the bytes seen are wrong (marker,
//!   length, type): it never waits for more bytes to report a bad header.
//! - Errors: [`DecodeError`] is a session reset and converts into the [`Notification`] to send
//!   (`Notification::from(err)`); [`NotificationError`] is the typed code/subcode/data, and its
//!   `Display` gives the words ("OPEN Message Error / Bad Peer AS").
//! - RFC 7606: UPDATE errors that do not reset the session are reported in
//!   [`Update::issues`]. For treat-as-withdraw the decoder has already moved the UPDATE's NLRI to
//!   its withdrawals and cleared its attributes; an attribute-discard issue names the dropped
//!   attribute.
//! - Extended communities: the link-bandwidth community ([`link_bandwidth_community`]) that makes
//!   routers weight ECMP next hops.
//! - End-of-RIB: [`Update::end_of_rib`] and [`Update::end_of_rib_family`].

mod attribute_decode;
mod attributes;
mod context;
mod error;
mod issue;
mod link_bandwidth;
mod nlri;
mod notification;
mod open;
mod update;

pub use attributes::{
    Aggregator, AsPath, AsSegment, AsSegmentKind, LargeCommunity, MpReach, MpUnreach, Origin,
    PathAttributes, RawAttribute,
};
pub use context::{MAX_EXTENDED_MESSAGE_LEN, MAX_MESSAGE_LEN, PeerAs, SessionContext, negotiate};
pub use error::{DecodeError, EncodeError};
pub use issue::{AttributeIssue, ErrorAction};
pub use link_bandwidth::{
    LINK_BANDWIDTH_SUBTYPE, LINK_BANDWIDTH_TYPE, decode_link_bandwidth, link_bandwidth_community,
    link_bandwidth_community_bps,
};
pub use nlri::{decode_ipv4_prefixes, encode_ipv4_prefixes};
pub use notification::{
    CEASE, Cease, FSM_ERROR, FsmErrorSubcode, HOLD_TIMER_EXPIRED, MESSAGE_HEADER_ERROR,
    Notification, NotificationError, OPEN_MESSAGE_ERROR, ROUTE_REFRESH_MESSAGE_ERROR,
    UPDATE_MESSAGE_ERROR, code_name,
};
pub use open::{
    AS_TRANS, BGP_VERSION, Capability, ExtendedNextHop, GracefulRestart, GracefulRestartFamily,
    Open,
};
pub use update::Update;

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Length of the message header: marker (16), length (2), type (1).
pub const HEADER_LEN: usize = 19;

/// Message type codes (RFC 4271 §4.1, RFC 2918).
pub mod message_type {
    /// OPEN.
    pub const OPEN: u8 = 1;
    /// UPDATE.
    pub const UPDATE: u8 = 2;
    /// NOTIFICATION.
    pub const NOTIFICATION: u8 = 3;
    /// KEEPALIVE.
    pub const KEEPALIVE: u8 = 4;
    /// ROUTE-REFRESH.
    pub const ROUTE_REFRESH: u8 = 5;
}

/// The address families ferrolb speaks (AFI/SAFI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// AFI 1, SAFI 1.
    Ipv4Unicast,
    /// AFI 2, SAFI 1.
    Ipv6Unicast,
}

impl Family {
    /// Address Family Identifier.
    pub const fn afi(self) -> u16 {
        match self {
            Family::Ipv4Unicast => 1,
            Family::Ipv6Unicast => 2,
        }
    }

    /// Subsequent Address Family Identifier.
    pub const fn safi(self) -> u8 {
        1
    }

    /// The family for an AFI/SAFI pair, if we speak it.
    pub const fn from_afi_safi(afi: u16, safi: u8) -> Option<Family> {
        match (afi, safi) {
            (1, 1) => Some(Family::Ipv4Unicast),
            (2, 1) => Some(Family::Ipv6Unicast),
            _ => None,
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Family::Ipv4Unicast => "IPv4 unicast",
            Family::Ipv6Unicast => "IPv6 unicast",
        })
    }
}

/// A ROUTE-REFRESH message (RFC 2918; the subtype octet is RFC 7313's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouteRefresh {
    /// AFI asked for.
    pub afi: u16,
    /// RFC 7313 message subtype (0 = normal request; the "Reserved" octet of RFC 2918).
    pub subtype: u8,
    /// SAFI asked for.
    pub safi: u8,
}

impl RouteRefresh {
    /// A plain refresh request for `family`.
    pub fn new(family: Family) -> Self {
        RouteRefresh {
            afi: family.afi(),
            subtype: 0,
            safi: family.safi(),
        }
    }

    /// The family asked for, if we speak it. RFC 2918 §4: a request for a family that was not
    /// negotiated is ignored.
    pub fn family(&self) -> Option<Family> {
        Family::from_afi_safi(self.afi, self.safi)
    }
}

/// A BGP message.
// An UPDATE is a few hundred octets of inline fields; messages are built and moved a handful at
// a time, so boxing would cost an allocation for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// OPEN.
    Open(Open),
    /// UPDATE.
    Update(Update),
    /// NOTIFICATION.
    Notification(Notification),
    /// KEEPALIVE.
    Keepalive,
    /// ROUTE-REFRESH.
    RouteRefresh(RouteRefresh),
}

impl Message {
    /// The type code of this message.
    pub fn message_type(&self) -> u8 {
        match self {
            Message::Open(_) => message_type::OPEN,
            Message::Update(_) => message_type::UPDATE,
            Message::Notification(_) => message_type::NOTIFICATION,
            Message::Keepalive => message_type::KEEPALIVE,
            Message::RouteRefresh(_) => message_type::ROUTE_REFRESH,
        }
    }

    /// Encode the whole message, header included.
    pub fn encode(&self, ctx: &SessionContext) -> Result<Bytes, EncodeError> {
        let mut out = BytesMut::with_capacity(64);
        self.encode_into(ctx, &mut out)?;
        Ok(out.freeze())
    }

    /// Append the whole message, header included, to `out`. On error `out` is left as it was.
    pub fn encode_into(&self, ctx: &SessionContext, out: &mut BytesMut) -> Result<(), EncodeError> {
        let start = out.len();
        out.put_bytes(0xff, 16);
        out.put_u16(0);
        out.put_u8(self.message_type());
        let body = match self {
            Message::Open(open) => open.encode_body(out),
            Message::Update(update) => update.encode_body(ctx, out),
            Message::Notification(n) => {
                out.put_u8(n.code);
                out.put_u8(n.subcode);
                out.put_slice(&n.data);
                Ok(())
            }
            Message::Keepalive => Ok(()),
            Message::RouteRefresh(rr) => {
                out.put_u16(rr.afi);
                out.put_u8(rr.subtype);
                out.put_u8(rr.safi);
                Ok(())
            }
        };
        let length = out.len() - start;
        // RFC 8654 §3: OPEN and KEEPALIVE stay within 4096 octets even when extended messages
        // are negotiated.
        let max = match self {
            Message::Open(_) | Message::Keepalive => MAX_MESSAGE_LEN,
            _ => ctx.max_message_len(),
        };
        let result = match body {
            Ok(()) if length > max => Err(EncodeError::MessageTooLong { length, max }),
            other => other,
        };
        match result {
            Ok(()) => patch_len(out, start + 16, length, "message"),
            Err(e) => {
                out.truncate(start);
                Err(e)
            }
        }
    }

    /// Decode one complete message (header included, exactly `length` octets).
    pub fn decode(message: &[u8], ctx: &SessionContext) -> Result<Message, DecodeError> {
        let header = check_header(message, ctx)?;
        let Some((length, mtype)) = header else {
            return Err(DecodeError::new(
                NotificationError::ConnectionNotSynchronized,
                "message shorter than its header",
            ));
        };
        if message.len() != usize::from(length) {
            return Err(DecodeError::new(
                NotificationError::BadMessageLength { length },
                "length field does not match the message",
            ));
        }
        decode_body(mtype, message, ctx)
    }
}

/// Check as much of a header as `buf` holds. `Ok(None)` means more bytes are needed;
/// `Ok(Some((length, type)))` a valid header.
fn check_header(buf: &[u8], ctx: &SessionContext) -> Result<Option<(u16, u8)>, DecodeError> {
    if buf.iter().take(16).any(|&b| b != 0xff) {
        // RFC 4271 §6.1: marker not all ones.
        return Err(DecodeError::new(
            NotificationError::ConnectionNotSynchronized,
            "marker is not all ones",
        ));
    }
    let (Some(&hi), Some(&lo), Some(&mtype)) = (buf.get(16), buf.get(17), buf.get(18)) else {
        return Ok(None);
    };
    let length = u16::from_be_bytes([hi, lo]);
    let len = usize::from(length);
    // RFC 4271 §6.1: length below 19, above the maximum, or wrong for the type is a Bad
    // Message Length with the length as data; an unknown type is Bad Message Type.
    let bad_length = |detail| {
        Err(DecodeError::new(
            NotificationError::BadMessageLength { length },
            detail,
        ))
    };
    let max = match mtype {
        message_type::OPEN | message_type::KEEPALIVE => MAX_MESSAGE_LEN,
        _ => ctx.max_message_len(),
    };
    if !(HEADER_LEN..=max).contains(&len) {
        return bad_length("length outside 19..maximum");
    }
    let ok = match mtype {
        message_type::OPEN => len >= HEADER_LEN + 10,
        message_type::UPDATE => len >= HEADER_LEN + 4,
        message_type::NOTIFICATION => len >= HEADER_LEN + 2,
        message_type::KEEPALIVE => len == HEADER_LEN,
        message_type::ROUTE_REFRESH => len == HEADER_LEN + 4,
        other => {
            return Err(DecodeError::new(
                NotificationError::BadMessageType {
                    message_type: other,
                },
                "unknown message type",
            ));
        }
    };
    if !ok {
        return bad_length("length wrong for the message type");
    }
    Ok(Some((length, mtype)))
}

fn decode_body(mtype: u8, message: &[u8], ctx: &SessionContext) -> Result<Message, DecodeError> {
    let mut body = message.get(HEADER_LEN..).unwrap_or_default();
    match mtype {
        message_type::OPEN => Open::decode_body(body).map(Message::Open),
        message_type::UPDATE => Update::decode_body(body, ctx).map(Message::Update),
        message_type::NOTIFICATION => {
            // check_header guarantees the two octets; a short body is still a length error.
            let short = |_| short_body(message);
            let code = body.try_get_u8().map_err(short)?;
            let subcode = body.try_get_u8().map_err(short)?;
            Ok(Message::Notification(Notification {
                code,
                subcode,
                data: Bytes::copy_from_slice(body),
            }))
        }
        message_type::KEEPALIVE => Ok(Message::Keepalive),
        _ => {
            let short = |_| short_body(message);
            let afi = body.try_get_u16().map_err(short)?;
            let subtype = body.try_get_u8().map_err(short)?;
            let safi = body.try_get_u8().map_err(short)?;
            Ok(Message::RouteRefresh(RouteRefresh { afi, subtype, safi }))
        }
    }
}

/// The framer: take the next message off the front of `buf`.
///
/// Returns `Ok(None)` when `buf` does not yet hold a whole message (nothing is consumed), the
/// message when it does (its bytes are consumed), and an error as soon as the bytes present are
/// wrong, without waiting for the rest of the message. After an error the session must be
/// reset with the error's NOTIFICATION; `buf` is left as it was.
pub fn try_parse(buf: &mut BytesMut, ctx: &SessionContext) -> Result<Option<Message>, DecodeError> {
    let Some((length, mtype)) = check_header(buf, ctx)? else {
        return Ok(None);
    };
    let length = usize::from(length);
    let Some(whole) = buf.get(..length) else {
        return Ok(None);
    };
    let message = decode_body(mtype, whole, ctx)?;
    // `buf` holds at least `length` octets: `get(..length)` above returned them.
    buf.advance(length);
    Ok(Some(message))
}

/// RFC 4271 §6.1: a message too short for its type's fixed fields is a Bad Message Length
/// carrying the length field.
fn short_body(message: &[u8]) -> DecodeError {
    let length = u16::try_from(message.len()).unwrap_or(u16::MAX);
    DecodeError::new(
        NotificationError::BadMessageLength { length },
        "message shorter than its type's fixed fields",
    )
}

/// Write `length` as a 2-octet length field at `at`, a placeholder the encoder put there.
pub(crate) fn patch_len(
    out: &mut BytesMut,
    at: usize,
    length: usize,
    field: &'static str,
) -> Result<(), EncodeError> {
    let value = u16::try_from(length).map_err(|_| EncodeError::FieldTooLong { field, length })?;
    let slot = out
        .get_mut(at..at + 2)
        .ok_or(EncodeError::Invalid("length field outside the buffer"))?;
    slot.copy_from_slice(&value.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests;

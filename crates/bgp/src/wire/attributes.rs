//! Path attributes (RFC 4271 §4.3, §5) and their RFC 7606 error handling.
//!
//! Decoding classifies every error per RFC 7606: session reset (a [`DecodeError`]),
//! treat-as-withdraw or attribute discard (an [`AttributeIssue`]). Encoding writes attributes in
//! type-code order, with the Extended Length bit when the value exceeds 255 octets, and always
//! for MP_REACH_NLRI and MP_UNREACH_NLRI (as FRR and GoBGP do).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::Family;
use super::context::SessionContext;
use super::error::{DecodeError, EncodeError};
use super::nlri::{self, BadPrefix};
use super::notification::NotificationError;
use super::open::AS_TRANS;
use super::update::{AttributeIssue, ErrorAction};

pub(crate) const ORIGIN: u8 = 1;
pub(crate) const AS_PATH: u8 = 2;
pub(crate) const NEXT_HOP: u8 = 3;
pub(crate) const MED: u8 = 4;
pub(crate) const LOCAL_PREF: u8 = 5;
pub(crate) const ATOMIC_AGGREGATE: u8 = 6;
pub(crate) const AGGREGATOR: u8 = 7;
pub(crate) const COMMUNITIES: u8 = 8;
const ORIGINATOR_ID: u8 = 9;
const CLUSTER_LIST: u8 = 10;
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

const WELL_KNOWN: u8 = FLAG_TRANSITIVE;
const OPTIONAL_NON_TRANSITIVE: u8 = FLAG_OPTIONAL;
const OPTIONAL_TRANSITIVE: u8 = FLAG_OPTIONAL | FLAG_TRANSITIVE;

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
    fn value(self) -> u8 {
        match self {
            AsSegmentKind::Set => 1,
            AsSegmentKind::Sequence => 2,
            AsSegmentKind::ConfedSequence => 3,
            AsSegmentKind::ConfedSet => 4,
        }
    }

    fn from_value(v: u8) -> Option<Self> {
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
    /// Next hop: an IPv4 address for IPv4 unicast, a global IPv6 address for IPv6 unicast.
    pub next_hop: IpAddr,
    /// For IPv6, an optional link-local next hop (RFC 2545 §3).
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

/// Append one attribute header and value.
pub(crate) fn put_attribute(out: &mut BytesMut, flags: u8, type_code: u8, value: &[u8]) {
    if value.len() > 255 {
        out.put_u8(flags | FLAG_EXTENDED_LENGTH);
        out.put_u8(type_code);
        out.put_u16(value.len() as u16);
    } else {
        out.put_u8(flags & !FLAG_EXTENDED_LENGTH);
        out.put_u8(type_code);
        out.put_u8(value.len() as u8);
    }
    out.put_slice(value);
}

/// Write a header with a 2-octet length to patch later; returns the position of the length.
fn start_extended(out: &mut BytesMut, flags: u8, type_code: u8) -> usize {
    out.put_u8(flags | FLAG_EXTENDED_LENGTH);
    out.put_u8(type_code);
    let at = out.len();
    out.put_u16(0);
    at
}

fn finish_extended(out: &mut BytesMut, at: usize, field: &'static str) -> Result<(), EncodeError> {
    let length = out.len() - at - 2;
    let len = u16::try_from(length).map_err(|_| EncodeError::FieldTooLong { field, length })?;
    out[at..at + 2].copy_from_slice(&len.to_be_bytes());
    Ok(())
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
            put_attribute(out, WELL_KNOWN, ORIGIN, &[v]);
        }
        if let Some(path) = &self.as_path {
            let mut v = BytesMut::new();
            encode_as_path(path, four, &mut v)?;
            put_attribute(out, WELL_KNOWN, AS_PATH, &v);
        }
        if let Some(nh) = self.next_hop {
            put_attribute(out, WELL_KNOWN, NEXT_HOP, &nh.octets());
        }
        if let Some(med) = self.med {
            put_attribute(out, OPTIONAL_NON_TRANSITIVE, MED, &med.to_be_bytes());
        }
        if let Some(lp) = self.local_pref {
            put_attribute(out, WELL_KNOWN, LOCAL_PREF, &lp.to_be_bytes());
        }
        if self.atomic_aggregate {
            put_attribute(out, WELL_KNOWN, ATOMIC_AGGREGATE, &[]);
        }
        if let Some(a) = &self.aggregator {
            put_attribute(
                out,
                OPTIONAL_TRANSITIVE,
                AGGREGATOR,
                &encode_aggregator(a, four),
            );
        }
        if !self.communities.is_empty() {
            let mut v = BytesMut::with_capacity(self.communities.len() * 4);
            for c in &self.communities {
                v.put_u32(*c);
            }
            put_attribute(out, OPTIONAL_TRANSITIVE, COMMUNITIES, &v);
        }
        if let Some(mp) = &self.mp_reach {
            encode_mp_reach(mp, out)?;
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
            put_attribute(out, OPTIONAL_TRANSITIVE, EXTENDED_COMMUNITIES, &v);
        }
        if let Some(path) = &self.as4_path {
            let mut v = BytesMut::new();
            encode_as_path(path, true, &mut v)?;
            put_attribute(out, OPTIONAL_TRANSITIVE, AS4_PATH, &v);
        }
        if let Some(a) = &self.as4_aggregator {
            put_attribute(
                out,
                OPTIONAL_TRANSITIVE,
                AS4_AGGREGATOR,
                &encode_aggregator(a, true),
            );
        }
        if !self.large_communities.is_empty() {
            let mut v = BytesMut::with_capacity(self.large_communities.len() * 12);
            for c in &self.large_communities {
                v.put_u32(c.global_admin);
                v.put_u32(c.local_data1);
                v.put_u32(c.local_data2);
            }
            put_attribute(out, OPTIONAL_TRANSITIVE, LARGE_COMMUNITIES, &v);
        }
        for raw in &self.unknown {
            put_attribute(out, raw.flags, raw.type_code, &raw.value);
        }
        Ok(())
    }
}

fn encode_mp_reach(mp: &MpReach, out: &mut BytesMut) -> Result<(), EncodeError> {
    let at = start_extended(out, OPTIONAL_NON_TRANSITIVE, MP_REACH_NLRI);
    out.put_u16(mp.family.afi());
    out.put_u8(mp.family.safi());
    match (mp.family, mp.next_hop, mp.link_local_next_hop) {
        (Family::Ipv4Unicast, IpAddr::V4(nh), None) => {
            out.put_u8(4);
            out.put_slice(&nh.octets());
        }
        (Family::Ipv6Unicast, IpAddr::V6(nh), None) => {
            out.put_u8(16);
            out.put_slice(&nh.octets());
        }
        (Family::Ipv6Unicast, IpAddr::V6(nh), Some(ll)) => {
            out.put_u8(32);
            out.put_slice(&nh.octets());
            out.put_slice(&ll.octets());
        }
        _ => {
            return Err(EncodeError::Invalid(
                "MP_REACH_NLRI next hop of the wrong family",
            ));
        }
    }
    out.put_u8(0); // Reserved (RFC 4760 §3).
    put_prefixes(mp.family, &mp.nlri, out)?;
    finish_extended(out, at, "MP_REACH_NLRI")
}

pub(crate) fn encode_mp_unreach(
    family: Family,
    withdrawn: &[IpNet],
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let at = start_extended(out, OPTIONAL_NON_TRANSITIVE, MP_UNREACH_NLRI);
    out.put_u16(family.afi());
    out.put_u8(family.safi());
    put_prefixes(family, withdrawn, out)?;
    finish_extended(out, at, "MP_UNREACH_NLRI")
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

/// What decoding the attribute list found.
pub(crate) struct DecodedAttributes {
    pub attributes: PathAttributes,
    pub issues: Vec<AttributeIssue>,
}

/// The attribute as it was on the wire, for NOTIFICATION data (RFC 4271 §6.3).
fn whole(raw: &[u8]) -> Bytes {
    Bytes::copy_from_slice(raw)
}

/// Expected Optional/Transitive flag bits, and the RFC 7606 action for a malformed instance.
fn known(type_code: u8) -> Option<(u8, ErrorAction)> {
    use ErrorAction::*;
    Some(match type_code {
        // RFC 7606 §7.1-§7.5: ORIGIN, AS_PATH, NEXT_HOP, MED, LOCAL_PREF -> treat-as-withdraw.
        ORIGIN | AS_PATH | NEXT_HOP | LOCAL_PREF => (WELL_KNOWN, TreatAsWithdraw),
        MED => (OPTIONAL_NON_TRANSITIVE, TreatAsWithdraw),
        // RFC 7606 §7.6, §7.7: ATOMIC_AGGREGATE and AGGREGATOR -> attribute discard.
        ATOMIC_AGGREGATE => (WELL_KNOWN, AttributeDiscard),
        AGGREGATOR => (OPTIONAL_TRANSITIVE, AttributeDiscard),
        // RFC 7606 §7.8: COMMUNITIES -> treat-as-withdraw.
        COMMUNITIES => (OPTIONAL_TRANSITIVE, TreatAsWithdraw),
        // RFC 7606 §7.9: ORIGINATOR_ID and CLUSTER_LIST -> treat-as-withdraw.
        ORIGINATOR_ID | CLUSTER_LIST => (OPTIONAL_NON_TRANSITIVE, TreatAsWithdraw),
        // RFC 7606 §7.14: EXTENDED COMMUNITIES -> treat-as-withdraw.
        EXTENDED_COMMUNITIES => (OPTIONAL_TRANSITIVE, TreatAsWithdraw),
        // RFC 6793 §6 (as updated by RFC 7606 §7.2): malformed AS4_PATH / AS4_AGGREGATOR ->
        // attribute discard.
        AS4_PATH | AS4_AGGREGATOR => (OPTIONAL_TRANSITIVE, AttributeDiscard),
        // RFC 8092 §6: LARGE_COMMUNITY -> treat-as-withdraw.
        LARGE_COMMUNITIES => (OPTIONAL_TRANSITIVE, TreatAsWithdraw),
        _ => return None,
    })
}

/// Decode the path attribute field of an UPDATE.
pub(crate) fn decode_attributes(
    mut buf: &[u8],
    ctx: &SessionContext,
) -> Result<DecodedAttributes, DecodeError> {
    let mut attrs = PathAttributes::default();
    let mut issues = Vec::new();
    let mut seen = [false; 256];
    while !buf.is_empty() {
        // RFC 7606 §4: fewer octets left than an attribute header, or a length running past
        // the Total Path Attribute Length: treat-as-withdraw; the total length still locates
        // the NLRI field.
        let overrun = |issues: &mut Vec<AttributeIssue>| {
            issues.push(AttributeIssue {
                type_code: 0,
                action: ErrorAction::TreatAsWithdraw,
                error: NotificationError::MalformedAttributeList,
            });
        };
        let flags = buf[0];
        let head = if flags & FLAG_EXTENDED_LENGTH != 0 {
            4
        } else {
            3
        };
        if buf.len() < head {
            overrun(&mut issues);
            break;
        }
        let type_code = buf[1];
        let len = if head == 4 {
            usize::from(u16::from_be_bytes([buf[2], buf[3]]))
        } else {
            usize::from(buf[2])
        };
        let Some(raw) = buf.get(..head + len) else {
            overrun(&mut issues);
            break;
        };
        let value = &raw[head..];
        buf = &buf[head + len..];

        // RFC 7606 §3(g): MP_REACH_NLRI or MP_UNREACH_NLRI more than once -> session reset
        // (Malformed Attribute List); any other attribute more than once -> keep the first.
        if seen[usize::from(type_code)] {
            if type_code == MP_REACH_NLRI || type_code == MP_UNREACH_NLRI {
                return Err(DecodeError::new(
                    NotificationError::MalformedAttributeList,
                    "MP_REACH_NLRI or MP_UNREACH_NLRI appears twice",
                ));
            }
            issues.push(AttributeIssue {
                type_code,
                action: ErrorAction::AttributeDiscard,
                error: NotificationError::MalformedAttributeList,
            });
            continue;
        }
        seen[usize::from(type_code)] = true;

        if type_code == MP_REACH_NLRI || type_code == MP_UNREACH_NLRI {
            // RFC 7606 §7.11 / §5.3: the NLRI inside cannot be located reliably when these
            // attributes are malformed -> session reset.
            decode_mp(flags, type_code, value, raw, &mut attrs)?;
            continue;
        }

        let Some((expected, action)) = known(type_code) else {
            if flags & FLAG_OPTIONAL == 0 {
                // RFC 4271 §6.3: an unrecognised well-known attribute -> session reset (RFC 7606
                // does not revise this).
                return Err(DecodeError::new(
                    NotificationError::UnrecognizedWellKnownAttribute {
                        attribute: whole(raw),
                    },
                    "unrecognised well-known attribute",
                ));
            }
            attrs.unknown.push(RawAttribute {
                flags: flags & !FLAG_EXTENDED_LENGTH,
                type_code,
                value: Bytes::copy_from_slice(value),
            });
            continue;
        };
        // RFC 4271 §6.3 and RFC 7606 §3(c): Optional/Transitive bits in conflict with the type
        // (or Partial set on a well-known or optional non-transitive attribute) make the
        // attribute malformed, handled with that attribute's own approach.
        let mask = if expected == OPTIONAL_TRANSITIVE {
            FLAG_OPTIONAL | FLAG_TRANSITIVE
        } else {
            FLAG_OPTIONAL | FLAG_TRANSITIVE | FLAG_PARTIAL
        };
        if flags & mask != expected {
            issues.push(AttributeIssue {
                type_code,
                action,
                error: NotificationError::AttributeFlagsError {
                    attribute: whole(raw),
                },
            });
            continue;
        }
        if let Err(error) = decode_known(type_code, value, raw, ctx, &mut attrs) {
            issues.push(AttributeIssue {
                type_code,
                action,
                error,
            });
        }
    }
    Ok(DecodedAttributes {
        attributes: attrs,
        issues,
    })
}

fn length_error(raw: &[u8]) -> NotificationError {
    NotificationError::AttributeLengthError {
        attribute: whole(raw),
    }
}

fn decode_known(
    type_code: u8,
    mut v: &[u8],
    raw: &[u8],
    ctx: &SessionContext,
    attrs: &mut PathAttributes,
) -> Result<(), NotificationError> {
    match type_code {
        ORIGIN => {
            // RFC 7606 §7.1: length not 1 or an undefined value.
            let [o] = v else {
                return Err(length_error(raw));
            };
            attrs.origin = Some(match o {
                0 => Origin::Igp,
                1 => Origin::Egp,
                2 => Origin::Incomplete,
                _ => {
                    return Err(NotificationError::InvalidOriginAttribute {
                        attribute: whole(raw),
                    });
                }
            });
        }
        AS_PATH => {
            // RFC 7606 §7.2: a malformed AS_PATH, or a confederation segment from an external
            // peer, is treat-as-withdraw.
            let path =
                decode_as_path(v, ctx.four_octet_as).ok_or(NotificationError::MalformedAsPath)?;
            if !ctx.ibgp
                && path.segments.iter().any(|s| {
                    matches!(
                        s.kind,
                        AsSegmentKind::ConfedSequence | AsSegmentKind::ConfedSet
                    )
                })
            {
                return Err(NotificationError::MalformedAsPath);
            }
            attrs.as_path = Some(path);
        }
        NEXT_HOP => {
            // RFC 7606 §7.3: length not 4, or (RFC 4271 §6.3) not a valid host address.
            if v.len() != 4 {
                return Err(length_error(raw));
            }
            let nh = Ipv4Addr::from(v.get_u32());
            if nh.is_unspecified() || nh.is_multicast() || nh.is_broadcast() {
                return Err(NotificationError::InvalidNextHopAttribute {
                    attribute: whole(raw),
                });
            }
            attrs.next_hop = Some(nh);
        }
        MED | LOCAL_PREF => {
            // RFC 7606 §7.4, §7.5: length not 4.
            if v.len() != 4 {
                return Err(length_error(raw));
            }
            let value = v.get_u32();
            if type_code == MED {
                attrs.med = Some(value);
            } else if ctx.ibgp {
                attrs.local_pref = Some(value);
            }
            // RFC 7606 §7.5: LOCAL_PREF from an external peer is discarded.
        }
        ATOMIC_AGGREGATE => {
            if !v.is_empty() {
                return Err(length_error(raw));
            }
            attrs.atomic_aggregate = true;
        }
        AGGREGATOR | AS4_AGGREGATOR => {
            let four = type_code == AS4_AGGREGATOR || ctx.four_octet_as;
            let want = if four { 8 } else { 6 };
            if v.len() != want {
                return Err(length_error(raw));
            }
            let asn = if four {
                v.get_u32()
            } else {
                u32::from(v.get_u16())
            };
            let a = Aggregator {
                asn,
                address: Ipv4Addr::from(v.get_u32()),
            };
            if type_code == AGGREGATOR {
                attrs.aggregator = Some(a);
            } else if !ctx.four_octet_as {
                attrs.as4_aggregator = Some(a);
            }
            // RFC 6793 §3: AS4_AGGREGATOR from a 4-octet speaker is discarded.
        }
        COMMUNITIES => {
            // RFC 7606 §7.8: malformed unless the length is a non-zero multiple of 4.
            if v.is_empty() || !v.len().is_multiple_of(4) {
                return Err(NotificationError::OptionalAttributeError {
                    attribute: whole(raw),
                });
            }
            attrs.communities = v
                .chunks_exact(4)
                .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
        }
        ORIGINATOR_ID | CLUSTER_LIST => {
            // RFC 7606 §7.9: ORIGINATOR_ID length not 4; CLUSTER_LIST not a non-zero multiple
            // of 4. Kept opaque.
            let ok = if type_code == ORIGINATOR_ID {
                v.len() == 4
            } else {
                !v.is_empty() && v.len().is_multiple_of(4)
            };
            if !ok {
                return Err(length_error(raw));
            }
            attrs.unknown.push(RawAttribute {
                flags: OPTIONAL_NON_TRANSITIVE,
                type_code,
                value: Bytes::copy_from_slice(v),
            });
        }
        EXTENDED_COMMUNITIES => {
            // RFC 7606 §7.14: malformed unless a non-zero multiple of 8.
            if v.is_empty() || !v.len().is_multiple_of(8) {
                return Err(NotificationError::OptionalAttributeError {
                    attribute: whole(raw),
                });
            }
            attrs.extended_communities = v
                .chunks_exact(8)
                .map(|c| {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(c);
                    a
                })
                .collect();
        }
        AS4_PATH => {
            let path =
                decode_as_path(v, true).ok_or(NotificationError::OptionalAttributeError {
                    attribute: whole(raw),
                })?;
            // RFC 6793 §3: AS4_PATH from a 4-octet speaker is discarded.
            if !ctx.four_octet_as {
                attrs.as4_path = Some(path);
            }
        }
        LARGE_COMMUNITIES => {
            // RFC 8092 §6: malformed unless a non-zero multiple of 12.
            if v.is_empty() || !v.len().is_multiple_of(12) {
                return Err(NotificationError::OptionalAttributeError {
                    attribute: whole(raw),
                });
            }
            attrs.large_communities = v
                .chunks_exact(12)
                .map(|c| {
                    let mut c = c;
                    LargeCommunity {
                        global_admin: c.get_u32(),
                        local_data1: c.get_u32(),
                        local_data2: c.get_u32(),
                    }
                })
                .collect();
        }
        _ => {}
    }
    Ok(())
}

/// RFC 4271 §4.3 / RFC 6793: segments of (type, count, count ASNs of 2 or 4 octets). `None`
/// when malformed: an unknown type, a zero count, or a segment overrunning the attribute.
fn decode_as_path(mut v: &[u8], four_octet: bool) -> Option<AsPath> {
    let width = if four_octet { 4 } else { 2 };
    let mut segments = Vec::new();
    while !v.is_empty() {
        if v.len() < 2 {
            return None;
        }
        let kind = AsSegmentKind::from_value(v.get_u8())?;
        let count = usize::from(v.get_u8());
        if count == 0 || v.len() < count * width {
            return None;
        }
        let mut asns = Vec::with_capacity(count);
        for _ in 0..count {
            asns.push(if four_octet {
                v.get_u32()
            } else {
                u32::from(v.get_u16())
            });
        }
        segments.push(AsSegment { kind, asns });
    }
    Some(AsPath { segments })
}

fn decode_mp(
    flags: u8,
    type_code: u8,
    mut v: &[u8],
    raw: &[u8],
    attrs: &mut PathAttributes,
) -> Result<(), DecodeError> {
    let bad = |detail| {
        DecodeError::new(
            NotificationError::OptionalAttributeError {
                attribute: whole(raw),
            },
            detail,
        )
    };
    if flags & (FLAG_OPTIONAL | FLAG_TRANSITIVE | FLAG_PARTIAL) != OPTIONAL_NON_TRANSITIVE {
        return Err(DecodeError::new(
            NotificationError::AttributeFlagsError {
                attribute: whole(raw),
            },
            "MP_REACH_NLRI/MP_UNREACH_NLRI flags",
        ));
    }
    if v.len() < 3 {
        return Err(bad("MP attribute shorter than AFI/SAFI"));
    }
    let afi = v.get_u16();
    let safi = v.get_u8();
    let family = Family::from_afi_safi(afi, safi);
    if type_code == MP_UNREACH_NLRI {
        let Some(family) = family else {
            // RFC 4760 §7: a family that was not negotiated is ignored.
            return Ok(());
        };
        let withdrawn =
            decode_prefixes(family, v).map_err(|BadPrefix| bad("MP_UNREACH_NLRI prefixes"))?;
        attrs.mp_unreach = Some(MpUnreach { family, withdrawn });
        return Ok(());
    }
    let Some((&nh_len, rest)) = v.split_first() else {
        return Err(bad("MP_REACH_NLRI without next hop length"));
    };
    let nh_len = usize::from(nh_len);
    // Next hop, then the Reserved octet.
    let (Some(nh), Some(nlri)) = (rest.get(..nh_len), rest.get(nh_len + 1..)) else {
        return Err(bad("MP_REACH_NLRI next hop overruns the attribute"));
    };
    let Some(family) = family else {
        return Ok(());
    };
    // RFC 7606 §7.11: a next hop length that is wrong for the family means the NLRI cannot be
    // located -> session reset.
    let (next_hop, link_local_next_hop) = match (family, nh_len) {
        (Family::Ipv4Unicast, 4) => (
            IpAddr::V4(Ipv4Addr::from([nh[0], nh[1], nh[2], nh[3]])),
            None,
        ),
        (Family::Ipv6Unicast, 16) => (IpAddr::V6(ipv6_at(nh, 0)), None),
        (Family::Ipv6Unicast, 32) => (IpAddr::V6(ipv6_at(nh, 0)), Some(ipv6_at(nh, 16))),
        _ => return Err(bad("MP_REACH_NLRI next hop length wrong for the family")),
    };
    let nlri = decode_prefixes(family, nlri).map_err(|BadPrefix| bad("MP_REACH_NLRI prefixes"))?;
    attrs.mp_reach = Some(MpReach {
        family,
        next_hop,
        link_local_next_hop,
        nlri,
    });
    Ok(())
}

fn ipv6_at(b: &[u8], at: usize) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o.copy_from_slice(&b[at..at + 16]);
    Ipv6Addr::from(o)
}

fn decode_prefixes(family: Family, v: &[u8]) -> Result<Vec<IpNet>, BadPrefix> {
    match family {
        Family::Ipv4Unicast => {
            let mut out: Vec<Ipv4Net> = Vec::new();
            nlri::decode_ipv4_field(v, &mut out)?;
            Ok(out.into_iter().map(IpNet::V4).collect())
        }
        Family::Ipv6Unicast => {
            let mut out: Vec<Ipv6Net> = Vec::new();
            nlri::decode_ipv6_field(v, &mut out)?;
            Ok(out.into_iter().map(IpNet::V6).collect())
        }
    }
}

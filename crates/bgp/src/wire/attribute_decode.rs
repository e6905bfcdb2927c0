//! Decoding path attributes with RFC 7606 error handling: each error is a session reset
//! ([`DecodeError`]), a treat-as-withdraw or an attribute discard ([`AttributeIssue`]), with the
//! RFC section quoted beside the rule.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::{Buf, Bytes};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::Family;
use super::attributes::*;
use super::context::SessionContext;
use super::error::DecodeError;
use super::issue::{AttributeIssue, ErrorAction};
use super::nlri::{self, BadPrefix};
use super::notification::NotificationError;

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
        let Some((flags, type_code, head, len)) = attribute_header(buf) else {
            overrun(&mut issues);
            break;
        };
        let Some((raw, rest)) = buf.split_at_checked(head + len) else {
            overrun(&mut issues);
            break;
        };
        let value = raw.get(head..).unwrap_or_default();
        buf = rest;

        // RFC 7606 §3(g): MP_REACH_NLRI or MP_UNREACH_NLRI more than once -> session reset
        // (Malformed Attribute List); any other attribute more than once -> keep the first.
        // A [bool; 256] indexed by a u8: the slot always exists.
        let first = seen
            .get_mut(usize::from(type_code))
            .is_none_or(|slot| !std::mem::replace(slot, true));
        if !first {
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

        if type_code == MP_REACH_NLRI || type_code == MP_UNREACH_NLRI {
            // RFC 7606 §7.11 / §5.3: the NLRI inside cannot be located reliably when these
            // attributes are malformed -> session reset.
            decode_mp(flags, type_code, value, raw, ctx, &mut attrs, &mut issues)?;
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
            let nh = Ipv4Addr::from(v.try_get_u32().map_err(|_| length_error(raw))?);
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
            let value = v.try_get_u32().map_err(|_| length_error(raw))?;
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
                v.try_get_u32()
            } else {
                v.try_get_u16().map(u32::from)
            };
            let address = v.try_get_u32().map(Ipv4Addr::from);
            let (Ok(asn), Ok(address)) = (asn, address) else {
                return Err(length_error(raw));
            };
            let a = Aggregator { asn, address };
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
                .filter_map(|mut c| c.try_get_u32().ok())
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
                .filter_map(|mut c| {
                    Some(LargeCommunity {
                        global_admin: c.try_get_u32().ok()?,
                        local_data1: c.try_get_u32().ok()?,
                        local_data2: c.try_get_u32().ok()?,
                    })
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
        let kind = AsSegmentKind::from_value(v.try_get_u8().ok()?)?;
        let count = usize::from(v.try_get_u8().ok()?);
        if count == 0 || v.len() < count * width {
            return None;
        }
        let mut asns = Vec::with_capacity(count);
        for _ in 0..count {
            asns.push(if four_octet {
                v.try_get_u32().ok()?
            } else {
                u32::from(v.try_get_u16().ok()?)
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
    ctx: &SessionContext,
    attrs: &mut PathAttributes,
    issues: &mut Vec<AttributeIssue>,
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
    let short = |_| bad("MP attribute shorter than AFI/SAFI");
    let afi = v.try_get_u16().map_err(short)?;
    let safi = v.try_get_u8().map_err(short)?;
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
    let wrong = || bad("MP_REACH_NLRI next hop length wrong for the family");
    // RFC 8950 §3: IPv4 unicast NLRI may carry a 16- or 32-octet IPv6 next hop, but only when
    // we announced that we accept it; otherwise the length is wrong for the family.
    let v6_next_hop = family == Family::Ipv6Unicast
        || (family == Family::Ipv4Unicast && ctx.extended_next_hop_receive);
    let (next_hop, link_local_next_hop) = match (family, nh) {
        (Family::Ipv4Unicast, &[a, b, c, d]) => (IpAddr::V4(Ipv4Addr::new(a, b, c, d)), None),
        (_, nh) if v6_next_hop && nh.len() == 16 => {
            (IpAddr::V6(ipv6_at(nh, 0).ok_or_else(wrong)?), None)
        }
        (_, nh) if v6_next_hop && nh.len() == 32 => (
            IpAddr::V6(ipv6_at(nh, 0).ok_or_else(wrong)?),
            Some(ipv6_at(nh, 16).ok_or_else(wrong)?),
        ),
        _ => return Err(wrong()),
    };
    let nlri = decode_prefixes(family, nlri).map_err(|BadPrefix| bad("MP_REACH_NLRI prefixes"))?;
    if family == Family::Ipv4Unicast
        && let IpAddr::V6(global) = next_hop
        && !(usable_v6_next_hop(&global) && link_local_next_hop.is_none_or(|ll| is_link_local(&ll)))
    {
        // RFC 7606 §7.3 and §7.11: a next hop of the right length that is no usable address
        // (unspecified, loopback, multicast; a second address that is not link-local, RFC 2545
        // §3) leaves the NLRI locatable -> treat-as-withdraw. The NLRI stay in the attribute
        // so the UPDATE's decoder can withdraw them.
        issues.push(AttributeIssue {
            type_code: MP_REACH_NLRI,
            action: ErrorAction::TreatAsWithdraw,
            error: NotificationError::OptionalAttributeError {
                attribute: whole(raw),
            },
        });
    }
    attrs.mp_reach = Some(MpReach {
        family,
        next_hop,
        link_local_next_hop,
        nlri,
    });
    Ok(())
}

/// An IPv6 address a route may point at: not unspecified, loopback or multicast.
fn usable_v6_next_hop(a: &Ipv6Addr) -> bool {
    !(a.is_unspecified() || a.is_loopback() || a.is_multicast())
}

/// In fe80::/10.
fn is_link_local(a: &Ipv6Addr) -> bool {
    a.segments().first().is_some_and(|s| s & 0xffc0 == 0xfe80)
}

/// The IPv6 address at `at` in an MP_REACH_NLRI next hop (RFC 2545 §3: global, then
/// link-local).
fn ipv6_at(b: &[u8], at: usize) -> Option<Ipv6Addr> {
    b.get(at..)
        .and_then(|rest| rest.first_chunk::<16>())
        .map(|o| Ipv6Addr::from(*o))
}

/// Flags, type code, header length (3 or 4) and value length of the attribute at the front
/// of `buf`; `None` when fewer octets remain than its header needs.
fn attribute_header(buf: &[u8]) -> Option<(u8, u8, usize, usize)> {
    match *buf {
        [flags, type_code, hi, lo, ..] if flags & FLAG_EXTENDED_LENGTH != 0 => Some((
            flags,
            type_code,
            4,
            usize::from(u16::from_be_bytes([hi, lo])),
        )),
        [flags, type_code, len, ..] if flags & FLAG_EXTENDED_LENGTH == 0 => {
            Some((flags, type_code, 3, usize::from(len)))
        }
        _ => None,
    }
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

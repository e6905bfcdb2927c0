//! UPDATE messages (RFC 4271 §4.3) and the RFC 7606 outcome of decoding them.

use bytes::{BufMut, BytesMut};
use ipnet::{IpNet, Ipv4Net};

use super::Family;
use super::attribute_decode::decode_attributes;
use super::attributes::{AS_PATH, MpUnreach, NEXT_HOP, ORIGIN, PathAttributes};
use super::context::SessionContext;
use super::error::{DecodeError, EncodeError};
use super::nlri::{self, BadPrefix};
use super::notification::NotificationError;

/// An UPDATE message. IPv4 unicast uses the classic fields; other families travel in
/// [`PathAttributes::mp_reach`] / [`PathAttributes::mp_unreach`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Update {
    /// Withdrawn IPv4 prefixes.
    pub withdrawn: Vec<Ipv4Net>,
    /// Path attributes.
    pub attributes: PathAttributes,
    /// Reachable IPv4 prefixes.
    pub nlri: Vec<Ipv4Net>,
    /// RFC 7606 errors found while decoding that did not reset the session. Ignored by encode.
    pub issues: Vec<AttributeIssue>,
}

/// How an UPDATE error is handled without resetting the session (RFC 7606 §2). Session reset
/// is a [`DecodeError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorAction {
    /// The UPDATE's routes are treated as withdrawn; the decoder already moved its NLRI to the
    /// withdrawals and cleared its attributes.
    TreatAsWithdraw,
    /// The malformed attribute was dropped; the rest of the UPDATE stands.
    AttributeDiscard,
}

/// One error of a received UPDATE handled per RFC 7606 without resetting the session.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttributeIssue {
    /// Type code of the attribute concerned (0 for the attribute list as a whole).
    pub type_code: u8,
    /// What was done about it.
    pub action: ErrorAction,
    /// The NOTIFICATION RFC 4271 would have sent, for logs.
    pub error: NotificationError,
}

impl Update {
    /// The End-of-RIB marker for `family` (RFC 4724 §2): an empty UPDATE for IPv4 unicast, an
    /// UPDATE with only an empty MP_UNREACH_NLRI otherwise.
    pub fn end_of_rib(family: Family) -> Update {
        match family {
            Family::Ipv4Unicast => Update::default(),
            _ => Update {
                attributes: PathAttributes {
                    mp_unreach: Some(MpUnreach {
                        family,
                        withdrawn: Vec::new(),
                    }),
                    ..PathAttributes::default()
                },
                ..Update::default()
            },
        }
    }

    /// The family this UPDATE is the End-of-RIB marker of, if it is one.
    pub fn end_of_rib_family(&self) -> Option<Family> {
        if !self.withdrawn.is_empty() || !self.nlri.is_empty() {
            return None;
        }
        let empty = PathAttributes::default();
        if self.attributes == empty {
            return Some(Family::Ipv4Unicast);
        }
        let only_unreach = PathAttributes {
            mp_unreach: None,
            ..self.attributes.clone()
        } == empty;
        match &self.attributes.mp_unreach {
            Some(u) if only_unreach && u.withdrawn.is_empty() => Some(u.family),
            _ => None,
        }
    }

    /// Whether RFC 7606 treat-as-withdraw was applied while decoding.
    pub fn treated_as_withdraw(&self) -> bool {
        self.issues
            .iter()
            .any(|i| i.action == ErrorAction::TreatAsWithdraw)
    }

    /// Append the UPDATE body (after the header).
    pub(crate) fn encode_body(
        &self,
        ctx: &SessionContext,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        let at = out.len();
        out.put_u16(0);
        nlri::encode_ipv4_prefixes(&self.withdrawn, out);
        patch_len(out, at, "withdrawn routes")?;
        let at = out.len();
        out.put_u16(0);
        self.attributes.encode(ctx, out)?;
        patch_len(out, at, "path attributes")?;
        nlri::encode_ipv4_prefixes(&self.nlri, out);
        Ok(())
    }

    /// Decode an UPDATE body. Errors that reset the session are returned; the others are
    /// applied and listed in [`Update::issues`].
    pub(crate) fn decode_body(body: &[u8], ctx: &SessionContext) -> Result<Update, DecodeError> {
        // RFC 4271 §6.3: Withdrawn Routes Length or Total Attribute Length too large ->
        // Malformed Attribute List. RFC 7606 §5.3 keeps session reset here: the NLRI cannot be
        // located.
        let malformed =
            |detail| DecodeError::new(NotificationError::MalformedAttributeList, detail);
        let (wlen, rest) = split_len(body).ok_or_else(|| malformed("UPDATE cut short"))?;
        let (withdrawn_field, rest) = rest
            .split_at_checked(wlen)
            .ok_or_else(|| malformed("withdrawn routes length overruns the UPDATE"))?;
        let (alen, rest) = split_len(rest).ok_or_else(|| malformed("UPDATE cut short"))?;
        let (attr_field, nlri_field) = rest
            .split_at_checked(alen)
            .ok_or_else(|| malformed("total path attribute length overruns the UPDATE"))?;

        // RFC 7606 §5.3: an NLRI field (or withdrawn routes field) that cannot be parsed ->
        // session reset with Invalid Network Field.
        let invalid_network = |BadPrefix| {
            DecodeError::new(
                NotificationError::InvalidNetworkField,
                "IPv4 prefix length above 32 or prefix cut short",
            )
        };
        let mut withdrawn = Vec::new();
        nlri::decode_ipv4_field(withdrawn_field, &mut withdrawn).map_err(invalid_network)?;
        let mut nlri_prefixes = Vec::with_capacity(nlri_field.len() / 5);
        nlri::decode_ipv4_field(nlri_field, &mut nlri_prefixes).map_err(invalid_network)?;

        let decoded = decode_attributes(attr_field, ctx)?;
        let mut attributes = decoded.attributes;
        let mut issues = decoded.issues;

        // RFC 7606 §3(d): a missing well-known mandatory attribute -> treat-as-withdraw. They
        // are mandatory when the UPDATE carries reachable NLRI; NEXT_HOP only for the classic
        // NLRI field (RFC 4760 §3 makes it optional otherwise).
        let mp_nlri = attributes
            .mp_reach
            .as_ref()
            .is_some_and(|m| !m.nlri.is_empty());
        if !nlri_prefixes.is_empty() || mp_nlri {
            let mut required = vec![(ORIGIN, attributes.origin.is_some())];
            required.push((AS_PATH, attributes.as_path.is_some()));
            if !nlri_prefixes.is_empty() {
                required.push((NEXT_HOP, attributes.next_hop.is_some()));
            }
            for (type_code, present) in required {
                let already = issues.iter().any(|i| i.type_code == type_code);
                if !present && !already {
                    issues.push(AttributeIssue {
                        type_code,
                        action: ErrorAction::TreatAsWithdraw,
                        error: NotificationError::MissingWellKnownAttribute { type_code },
                    });
                }
            }
        }

        let mut update = Update {
            withdrawn,
            attributes: PathAttributes::default(),
            nlri: nlri_prefixes,
            issues: Vec::new(),
        };
        if issues
            .iter()
            .any(|i| i.action == ErrorAction::TreatAsWithdraw)
        {
            // RFC 7606 §2: "treat-as-withdraw": the routes in the UPDATE are handled as if
            // withdrawn.
            update.withdrawn.append(&mut update.nlri);
            let mut unreach = attributes.mp_unreach.take();
            if let Some(reach) = attributes.mp_reach.take() {
                match &mut unreach {
                    None => {
                        unreach = Some(MpUnreach {
                            family: reach.family,
                            withdrawn: reach.nlri,
                        })
                    }
                    Some(u) if u.family == reach.family => u.withdrawn.extend(reach.nlri),
                    Some(_) => {
                        return Err(malformed(
                            "treat-as-withdraw of an UPDATE carrying two families",
                        ));
                    }
                }
            }
            update.attributes.mp_unreach = unreach;
        } else {
            update.attributes = attributes;
        }
        issues.shrink_to_fit();
        update.issues = issues;
        Ok(update)
    }
}

impl Update {
    /// Every prefix this UPDATE withdraws, of both families.
    pub fn all_withdrawn(&self) -> Vec<IpNet> {
        let mut out: Vec<IpNet> = self.withdrawn.iter().map(|p| IpNet::V4(*p)).collect();
        if let Some(u) = &self.attributes.mp_unreach {
            out.extend(u.withdrawn.iter().copied());
        }
        out
    }

    /// Every prefix this UPDATE announces, of both families.
    pub fn all_announced(&self) -> Vec<IpNet> {
        let mut out: Vec<IpNet> = self.nlri.iter().map(|p| IpNet::V4(*p)).collect();
        if let Some(r) = &self.attributes.mp_reach {
            out.extend(r.nlri.iter().copied());
        }
        out
    }
}

fn split_len(b: &[u8]) -> Option<(usize, &[u8])> {
    match b {
        [hi, lo, rest @ ..] => Some((usize::from(u16::from_be_bytes([*hi, *lo])), rest)),
        _ => None,
    }
}

/// Fill the 2-octet length placeholder at `at` with the length of what follows it.
fn patch_len(out: &mut BytesMut, at: usize, field: &'static str) -> Result<(), EncodeError> {
    let length = out.len().saturating_sub(at + 2);
    super::patch_len(out, at, length, field)
}

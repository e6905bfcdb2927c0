//! OPEN messages (RFC 4271 §4.2) and capabilities (RFC 5492).

use std::net::Ipv4Addr;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::Family;
use super::error::{DecodeError, EncodeError};
use super::notification::NotificationError;

/// The AS number put in 2-octet fields in place of a 4-octet AS (RFC 6793 §9).
pub const AS_TRANS: u16 = 23456;
/// The only BGP version this crate speaks.
pub const BGP_VERSION: u8 = 4;

const PARAM_CAPABILITIES: u8 = 2;
const CAP_MULTIPROTOCOL: u8 = 1;
const CAP_ROUTE_REFRESH: u8 = 2;
const CAP_EXTENDED_NEXT_HOP: u8 = 5;
const CAP_EXTENDED_MESSAGE: u8 = 6;
const CAP_GRACEFUL_RESTART: u8 = 64;
const CAP_FOUR_OCTET_AS: u8 = 65;

/// An OPEN message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Open {
    /// BGP version (always 4 once decoded; other versions are rejected).
    pub version: u8,
    /// The speaker's real AS: the 4-octet AS capability's value if present, otherwise the
    /// 2-octet "My Autonomous System" field. Encoded as [`AS_TRANS`] in that field when it does
    /// not fit 16 bits.
    pub asn: u32,
    /// Proposed hold time in seconds.
    pub hold_time: u16,
    /// BGP Identifier.
    pub bgp_id: Ipv4Addr,
    /// Capabilities, in the order received. Each is sent in its own optional parameter.
    pub capabilities: Vec<Capability>,
}

/// A capability advertised in an OPEN (RFC 5492).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Capability {
    /// Multiprotocol extensions for one AFI/SAFI (RFC 4760, code 1).
    Multiprotocol(Family),
    /// Route refresh (RFC 2918, code 2).
    RouteRefresh,
    /// Support for 4-octet AS numbers, with the speaker's AS (RFC 6793, code 65).
    FourOctetAs(u32),
    /// Graceful restart (RFC 4724, code 64).
    GracefulRestart(GracefulRestart),
    /// Extended messages up to 65535 octets (RFC 8654, code 6).
    ExtendedMessage,
    /// Extended next hop encoding (RFC 8950, code 5): the NLRI families the sender accepts with
    /// a next hop of another address family. Tuples are kept as received, known or not.
    ExtendedNextHop(Vec<ExtendedNextHop>),
    /// Any other capability, kept and otherwise ignored (including known codes with an AFI/SAFI
    /// we do not speak).
    Unknown {
        /// Capability code.
        code: u8,
        /// Capability value.
        value: Bytes,
    },
}

/// The graceful restart capability (RFC 4724 §3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GracefulRestart {
    /// R bit: the sender has restarted and is keeping its forwarding state.
    pub restart_state: bool,
    /// N bit (RFC 8538): the sender supports graceful restart for NOTIFICATIONs.
    pub notification: bool,
    /// Restart time in seconds (12 bits, at most 4095).
    pub restart_time: u16,
    /// The families covered. Tuples for families we do not speak are dropped on decode.
    pub families: Vec<GracefulRestartFamily>,
}

/// One AFI/SAFI tuple of the graceful restart capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GracefulRestartFamily {
    /// The address family.
    pub family: Family,
    /// F bit: forwarding state was preserved across the restart.
    pub forwarding: bool,
}

/// One tuple of the extended next hop capability (RFC 8950 §3): NLRI of `nlri_afi`/`nlri_safi`
/// may carry a next hop of `next_hop_afi`. On the wire the SAFI takes two octets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExtendedNextHop {
    /// NLRI Address Family Identifier.
    pub nlri_afi: u16,
    /// NLRI Subsequent Address Family Identifier (2 octets in this capability).
    pub nlri_safi: u16,
    /// Address Family Identifier of the next hop.
    pub next_hop_afi: u16,
}

impl ExtendedNextHop {
    /// IPv4 unicast NLRI with an IPv6 next hop: `<1, 1, 2>`, what unnumbered peering needs.
    pub const IPV4_UNICAST_OVER_IPV6: ExtendedNextHop = ExtendedNextHop {
        nlri_afi: 1,
        nlri_safi: 1,
        next_hop_afi: 2,
    };
}

impl Open {
    /// An OPEN for version 4.
    pub fn new(asn: u32, hold_time: u16, bgp_id: Ipv4Addr, capabilities: Vec<Capability>) -> Self {
        Open {
            version: BGP_VERSION,
            asn,
            hold_time,
            bgp_id,
            capabilities,
        }
    }

    /// The AS in the 4-octet AS capability, if advertised.
    pub fn four_octet_as(&self) -> Option<u32> {
        self.capabilities.iter().find_map(|c| match c {
            Capability::FourOctetAs(asn) => Some(*asn),
            _ => None,
        })
    }

    /// The families advertised with the multiprotocol capability. RFC 4760 §8: a speaker that
    /// advertises none is taken to speak IPv4 unicast only.
    pub fn families(&self) -> Vec<Family> {
        let mut families: Vec<Family> = Vec::new();
        for c in &self.capabilities {
            if let Capability::Multiprotocol(f) = c
                && !families.contains(f)
            {
                families.push(*f);
            }
        }
        let any_mp = self.capabilities.iter().any(|c| {
            matches!(c, Capability::Multiprotocol(_))
                || matches!(c, Capability::Unknown { code, .. } if *code == CAP_MULTIPROTOCOL)
        });
        if !any_mp {
            families.push(Family::Ipv4Unicast);
        }
        families
    }

    /// The graceful restart capability, if advertised.
    pub fn graceful_restart(&self) -> Option<&GracefulRestart> {
        self.capabilities.iter().find_map(|c| match c {
            Capability::GracefulRestart(gr) => Some(gr),
            _ => None,
        })
    }

    /// Whether the route refresh capability is advertised.
    pub fn route_refresh(&self) -> bool {
        self.capabilities.contains(&Capability::RouteRefresh)
    }

    /// The tuples of the extended next hop capability (RFC 8950), empty if it is not advertised.
    pub fn extended_next_hop(&self) -> &[ExtendedNextHop] {
        self.capabilities
            .iter()
            .find_map(|c| match c {
                Capability::ExtendedNextHop(tuples) => Some(tuples.as_slice()),
                _ => None,
            })
            .unwrap_or_default()
    }

    /// Whether the sender accepts IPv4 unicast NLRI with an IPv6 next hop (RFC 8950).
    pub fn accepts_ipv4_over_ipv6(&self) -> bool {
        self.extended_next_hop()
            .contains(&ExtendedNextHop::IPV4_UNICAST_OVER_IPV6)
    }

    /// Whether the extended message capability is advertised.
    pub fn extended_message(&self) -> bool {
        self.capabilities.contains(&Capability::ExtendedMessage)
    }

    /// Append the OPEN body (everything after the 19-octet header).
    pub(crate) fn encode_body(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u8(self.version);
        let my_as = u16::try_from(self.asn).unwrap_or(AS_TRANS);
        out.put_u16(my_as);
        out.put_u16(self.hold_time);
        out.put_slice(&self.bgp_id.octets());
        let mut params = BytesMut::new();
        for cap in &self.capabilities {
            let mut value = BytesMut::new();
            let code = cap.encode_value(&mut value)?;
            let cap_len = u8::try_from(value.len()).map_err(|_| EncodeError::FieldTooLong {
                field: "capability",
                length: value.len(),
            })?;
            let param_len =
                u8::try_from(value.len() + 2).map_err(|_| EncodeError::FieldTooLong {
                    field: "optional parameter",
                    length: value.len() + 2,
                })?;
            params.put_u8(PARAM_CAPABILITIES);
            params.put_u8(param_len);
            params.put_u8(code);
            params.put_u8(cap_len);
            params.put_slice(&value);
        }
        let opt_len = u8::try_from(params.len()).map_err(|_| EncodeError::FieldTooLong {
            field: "optional parameters",
            length: params.len(),
        })?;
        out.put_u8(opt_len);
        out.put_slice(&params);
        Ok(())
    }

    /// Decode an OPEN body (after the header).
    pub(crate) fn decode_body(mut body: &[u8]) -> Result<Open, DecodeError> {
        let unspecific = |detail| DecodeError::new(NotificationError::OpenUnspecific, detail);
        let short = || unspecific("OPEN shorter than its fixed fields");
        let version = body.try_get_u8().map_err(|_| short())?;
        if version != BGP_VERSION {
            return Err(DecodeError::new(
                NotificationError::UnsupportedVersionNumber {
                    supported: u16::from(BGP_VERSION),
                },
                "BGP version is not 4",
            ));
        }
        let my_as = body.try_get_u16().map_err(|_| short())?;
        let hold_time = body.try_get_u16().map_err(|_| short())?;
        let bgp_id = Ipv4Addr::from(body.try_get_u32().map_err(|_| short())?);
        let opt_len = usize::from(body.try_get_u8().map_err(|_| short())?);
        // RFC 9072 §2: a non-extended length of 255 followed by type 255 announces extended
        // optional parameters with 2-octet lengths.
        let extended = opt_len == 255 && body.first() == Some(&255);
        let mut params = if extended {
            let truncated = || unspecific("extended optional parameters truncated");
            body.try_get_u8().map_err(|_| truncated())?;
            let len = usize::from(body.try_get_u16().map_err(|_| truncated())?);
            body.get(..len)
                .ok_or_else(|| unspecific("optional parameters overrun the OPEN"))?
        } else {
            body.get(..opt_len)
                .ok_or_else(|| unspecific("optional parameters overrun the OPEN"))?
        };
        let mut capabilities = Vec::new();
        while !params.is_empty() {
            let truncated = |_| unspecific("optional parameter header truncated");
            let ptype = params.try_get_u8().map_err(truncated)?;
            let plen = if extended {
                usize::from(params.try_get_u16().map_err(truncated)?)
            } else {
                usize::from(params.try_get_u8().map_err(truncated)?)
            };
            let (value, rest) = params
                .split_at_checked(plen)
                .ok_or_else(|| unspecific("optional parameter overruns its list"))?;
            params = rest;
            if ptype != PARAM_CAPABILITIES {
                // RFC 4271 §6.2: an unrecognised optional parameter.
                return Err(DecodeError::new(
                    NotificationError::UnsupportedOptionalParameter,
                    "optional parameter other than capabilities",
                ));
            }
            decode_capabilities(value, &mut capabilities)?;
        }
        let asn = capabilities
            .iter()
            .find_map(|c| match c {
                Capability::FourOctetAs(asn) => Some(*asn),
                _ => None,
            })
            .unwrap_or(u32::from(my_as));
        Ok(Open {
            version,
            asn,
            hold_time,
            bgp_id,
            capabilities,
        })
    }
}

fn decode_capabilities(mut value: &[u8], out: &mut Vec<Capability>) -> Result<(), DecodeError> {
    let bad = |detail| DecodeError::new(NotificationError::OpenUnspecific, detail);
    while !value.is_empty() {
        let truncated = |_| bad("capability header truncated");
        let code = value.try_get_u8().map_err(truncated)?;
        let len = usize::from(value.try_get_u8().map_err(truncated)?);
        let (mut v, rest) = value
            .split_at_checked(len)
            .ok_or_else(|| bad("capability overruns its parameter"))?;
        value = rest;
        let raw = || Capability::Unknown {
            code,
            value: Bytes::copy_from_slice(v),
        };
        let cap = match code {
            CAP_MULTIPROTOCOL => {
                let wrong = || bad("multiprotocol capability length is not 4");
                if v.len() != 4 {
                    return Err(wrong());
                }
                let afi = v.try_get_u16().map_err(|_| wrong())?;
                let _reserved = v.try_get_u8().map_err(|_| wrong())?;
                let safi = v.try_get_u8().map_err(|_| wrong())?;
                match Family::from_afi_safi(afi, safi) {
                    Some(f) => Capability::Multiprotocol(f),
                    None => raw(),
                }
            }
            CAP_ROUTE_REFRESH if v.is_empty() => Capability::RouteRefresh,
            CAP_ROUTE_REFRESH => return Err(bad("route refresh capability has a value")),
            CAP_EXTENDED_MESSAGE if v.is_empty() => Capability::ExtendedMessage,
            CAP_EXTENDED_MESSAGE => return Err(bad("extended message capability has a value")),
            CAP_EXTENDED_NEXT_HOP => {
                // RFC 8950 §3: one or more 6-octet tuples.
                if v.is_empty() || !v.len().is_multiple_of(6) {
                    return Err(bad(
                        "extended next hop capability length is not a non-zero multiple of 6",
                    ));
                }
                let tuples = v
                    .chunks_exact(6)
                    .filter_map(|mut t| {
                        Some(ExtendedNextHop {
                            nlri_afi: t.try_get_u16().ok()?,
                            nlri_safi: t.try_get_u16().ok()?,
                            next_hop_afi: t.try_get_u16().ok()?,
                        })
                    })
                    .collect();
                Capability::ExtendedNextHop(tuples)
            }
            CAP_FOUR_OCTET_AS => {
                let wrong = || bad("4-octet AS capability length is not 4");
                if v.len() != 4 {
                    return Err(wrong());
                }
                Capability::FourOctetAs(v.try_get_u32().map_err(|_| wrong())?)
            }
            CAP_GRACEFUL_RESTART => {
                let wrong = || bad("graceful restart capability length");
                if v.len() < 2 || (v.len() - 2) % 4 != 0 {
                    return Err(wrong());
                }
                let flags_time = v.try_get_u16().map_err(|_| wrong())?;
                let mut families = Vec::new();
                while !v.is_empty() {
                    let afi = v.try_get_u16().map_err(|_| wrong())?;
                    let safi = v.try_get_u8().map_err(|_| wrong())?;
                    let flags = v.try_get_u8().map_err(|_| wrong())?;
                    if let Some(family) = Family::from_afi_safi(afi, safi) {
                        families.push(GracefulRestartFamily {
                            family,
                            forwarding: flags & 0x80 != 0,
                        });
                    }
                }
                Capability::GracefulRestart(GracefulRestart {
                    restart_state: flags_time & 0x8000 != 0,
                    notification: flags_time & 0x4000 != 0,
                    restart_time: flags_time & 0x0fff,
                    families,
                })
            }
            _ => raw(),
        };
        out.push(cap);
    }
    Ok(())
}

impl Capability {
    /// The capability code.
    pub fn code(&self) -> u8 {
        match self {
            Capability::Multiprotocol(_) => CAP_MULTIPROTOCOL,
            Capability::RouteRefresh => CAP_ROUTE_REFRESH,
            Capability::FourOctetAs(_) => CAP_FOUR_OCTET_AS,
            Capability::GracefulRestart(_) => CAP_GRACEFUL_RESTART,
            Capability::ExtendedMessage => CAP_EXTENDED_MESSAGE,
            Capability::ExtendedNextHop(_) => CAP_EXTENDED_NEXT_HOP,
            Capability::Unknown { code, .. } => *code,
        }
    }

    /// Append the capability value; returns the capability code.
    fn encode_value(&self, out: &mut BytesMut) -> Result<u8, EncodeError> {
        match self {
            Capability::Multiprotocol(f) => {
                out.put_u16(f.afi());
                out.put_u8(0);
                out.put_u8(f.safi());
            }
            Capability::RouteRefresh | Capability::ExtendedMessage => {}
            Capability::FourOctetAs(asn) => out.put_u32(*asn),
            Capability::ExtendedNextHop(tuples) => {
                if tuples.is_empty() {
                    return Err(EncodeError::Invalid(
                        "extended next hop capability without tuples",
                    ));
                }
                for t in tuples {
                    out.put_u16(t.nlri_afi);
                    out.put_u16(t.nlri_safi);
                    out.put_u16(t.next_hop_afi);
                }
            }
            Capability::GracefulRestart(gr) => {
                if gr.restart_time > 0x0fff {
                    return Err(EncodeError::Invalid("graceful restart time above 4095 s"));
                }
                let mut flags_time = gr.restart_time;
                if gr.restart_state {
                    flags_time |= 0x8000;
                }
                if gr.notification {
                    flags_time |= 0x4000;
                }
                out.put_u16(flags_time);
                for f in &gr.families {
                    out.put_u16(f.family.afi());
                    out.put_u8(f.family.safi());
                    out.put_u8(if f.forwarding { 0x80 } else { 0 });
                }
            }
            Capability::Unknown { value, .. } => out.put_slice(value),
        }
        Ok(self.code())
    }

    /// This capability encoded as a (code, length, value) tuple, as the data of an
    /// Unsupported Capability NOTIFICATION wants it.
    pub fn to_tuple(&self) -> Result<Bytes, EncodeError> {
        let mut value = BytesMut::new();
        let code = self.encode_value(&mut value)?;
        let len = u8::try_from(value.len()).map_err(|_| EncodeError::FieldTooLong {
            field: "capability",
            length: value.len(),
        })?;
        let mut out = BytesMut::with_capacity(value.len() + 2);
        out.put_u8(code);
        out.put_u8(len);
        out.put_slice(&value);
        Ok(out.freeze())
    }
}

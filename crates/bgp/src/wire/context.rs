//! The negotiated session: what both OPENs agree on, which encode and decode read.

use std::net::Ipv4Addr;

use bytes::BytesMut;

use super::Family;
use super::notification::NotificationError;
use super::open::{Capability, GracefulRestart, Open};

/// Maximum message length without the extended message capability (RFC 4271 §4.1).
pub const MAX_MESSAGE_LEN: usize = 4096;
/// Maximum message length with the extended message capability (RFC 8654).
pub const MAX_EXTENDED_MESSAGE_LEN: usize = 65535;

/// What a session negotiated. Encode and decode take it so they never re-check capabilities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionContext {
    /// Our AS.
    pub local_asn: u32,
    /// The peer's AS.
    pub peer_asn: u32,
    /// Both sides advertised 4-octet AS: AS_PATH carries 4-octet ASNs (RFC 6793).
    pub four_octet_as: bool,
    /// Same AS on both sides.
    pub ibgp: bool,
    /// Families both sides speak (RFC 4760 §8: no multiprotocol capability means IPv4 unicast).
    pub families: Vec<Family>,
    /// Both sides advertised extended messages (RFC 8654): UPDATEs up to 65535 octets.
    pub extended_message: bool,
    /// The peer announced IPv4 unicast with IPv6 next hops (RFC 8950): we may send it IPv4
    /// routes in MP_REACH_NLRI with a 16- or 32-octet IPv6 next hop.
    pub extended_next_hop_send: bool,
    /// We announced IPv4 unicast with IPv6 next hops (RFC 8950): the peer may send us such
    /// routes, and they decode instead of resetting the session.
    pub extended_next_hop_receive: bool,
    /// The peer advertised route refresh (we may send it ROUTE-REFRESH).
    pub route_refresh: bool,
    /// Negotiated hold time: the smaller of both proposals; 0 means no keepalives and no hold
    /// timer.
    pub hold_time: u16,
    /// The peer's BGP Identifier.
    pub peer_bgp_id: Ipv4Addr,
    /// The peer's graceful restart capability, if any.
    pub peer_graceful_restart: Option<GracefulRestart>,
    /// Our real AS when the session presents another one (`local_asn`, RFC 7705's local AS) without
    /// replace-as: on eBGP sessions it follows `local_asn` in the AS_PATH of the routes we originate.
    /// `None` otherwise. Not negotiated: the session's configuration sets it after [`negotiate`].
    pub real_asn: Option<u32>,
}

impl SessionContext {
    /// The context for a session before OPENs are exchanged: 2-octet AS, IPv4 unicast,
    /// 4096-octet messages. Good for decoding the OPEN, NOTIFICATION and KEEPALIVE.
    pub fn before_open() -> Self {
        SessionContext {
            local_asn: 0,
            peer_asn: 0,
            four_octet_as: false,
            ibgp: false,
            families: vec![Family::Ipv4Unicast],
            extended_message: false,
            extended_next_hop_send: false,
            extended_next_hop_receive: false,
            route_refresh: false,
            hold_time: 0,
            peer_bgp_id: Ipv4Addr::UNSPECIFIED,
            peer_graceful_restart: None,
            real_asn: None,
        }
    }

    /// The largest message this session may carry.
    pub fn max_message_len(&self) -> usize {
        if self.extended_message {
            MAX_EXTENDED_MESSAGE_LEN
        } else {
            MAX_MESSAGE_LEN
        }
    }

    /// Whether both sides speak `family`.
    pub fn supports(&self, family: Family) -> bool {
        self.families.contains(&family)
    }
}

/// The AS a peer must have: one number, or (MetalLB's `dynamicASN`, FRR's `remote-as internal|external`)
/// whatever the peer's OPEN says, as long as the session is of the expected kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PeerAs {
    /// Exactly this AS.
    Exact(u32),
    /// Our own AS (iBGP), whatever number that is.
    Internal,
    /// Any AS but ours (eBGP).
    External,
}

impl PeerAs {
    /// Whether a peer whose OPEN carries `remote` may peer with us presenting `local`.
    pub fn accepts(self, local: u32, remote: u32) -> bool {
        match self {
            PeerAs::Exact(asn) => remote == asn,
            PeerAs::Internal => remote == local,
            PeerAs::External => remote != local,
        }
    }
}

impl From<u32> for PeerAs {
    fn from(asn: u32) -> Self {
        PeerAs::Exact(asn)
    }
}

impl std::fmt::Display for PeerAs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeerAs::Exact(asn) => write!(f, "{asn}"),
            PeerAs::Internal => f.write_str("internal"),
            PeerAs::External => f.write_str("external"),
        }
    }
}

/// Check the peer's OPEN against ours and the configured peer AS, and negotiate the session.
///
/// Checks, each with the NOTIFICATION RFC 4271 §6.2 asks for:
/// - the peer's AS is the one `expected_peer_as` accepts (Bad Peer AS);
/// - its BGP Identifier is not 0.0.0.0, and for iBGP differs from ours (RFC 6286 §2.2; Bad BGP
///   Identifier);
/// - its hold time is not 1 or 2 seconds (Unacceptable Hold Time);
/// - the two sides share at least one family (Unsupported Capability, listing our
///   multiprotocol capabilities).
///
/// The version was already checked when the OPEN was decoded.
pub fn negotiate(
    local: &Open,
    remote: &Open,
    expected_peer_as: impl Into<PeerAs>,
) -> Result<SessionContext, NotificationError> {
    if !expected_peer_as.into().accepts(local.asn, remote.asn) {
        return Err(NotificationError::BadPeerAs);
    }
    let ibgp = local.asn == remote.asn;
    if remote.bgp_id.is_unspecified() || (ibgp && remote.bgp_id == local.bgp_id) {
        return Err(NotificationError::BadBgpIdentifier);
    }
    if remote.hold_time == 1 || remote.hold_time == 2 {
        return Err(NotificationError::UnacceptableHoldTime);
    }
    let remote_families = remote.families();
    let families: Vec<Family> = local
        .families()
        .into_iter()
        .filter(|f| remote_families.contains(f))
        .collect();
    if families.is_empty() {
        let mut data = BytesMut::new();
        for cap in &local.capabilities {
            if let Capability::Multiprotocol(_) = cap
                && let Ok(tuple) = cap.to_tuple()
            {
                data.extend_from_slice(&tuple);
            }
        }
        return Err(NotificationError::UnsupportedCapability {
            capabilities: data.freeze(),
        });
    }
    Ok(SessionContext {
        local_asn: local.asn,
        peer_asn: remote.asn,
        four_octet_as: local.four_octet_as().is_some() && remote.four_octet_as().is_some(),
        ibgp,
        families,
        extended_message: local.extended_message() && remote.extended_message(),
        extended_next_hop_send: remote.accepts_ipv4_over_ipv6(),
        extended_next_hop_receive: local.accepts_ipv4_over_ipv6(),
        route_refresh: remote.route_refresh(),
        hold_time: local.hold_time.min(remote.hold_time),
        peer_bgp_id: remote.bgp_id,
        peer_graceful_restart: remote.graceful_restart().cloned(),
        real_asn: None,
    })
}

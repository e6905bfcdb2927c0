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
    /// The peer advertised route refresh (we may send it ROUTE-REFRESH).
    pub route_refresh: bool,
    /// Negotiated hold time: the smaller of both proposals; 0 means no keepalives and no hold
    /// timer.
    pub hold_time: u16,
    /// The peer's BGP Identifier.
    pub peer_bgp_id: Ipv4Addr,
    /// The peer's graceful restart capability, if any.
    pub peer_graceful_restart: Option<GracefulRestart>,
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
            route_refresh: false,
            hold_time: 0,
            peer_bgp_id: Ipv4Addr::UNSPECIFIED,
            peer_graceful_restart: None,
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

/// Check the peer's OPEN against ours and the configured peer AS, and negotiate the session.
///
/// Checks, each with the NOTIFICATION RFC 4271 §6.2 asks for:
/// - the peer's AS is `expected_peer_asn` (Bad Peer AS);
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
    expected_peer_asn: u32,
) -> Result<SessionContext, NotificationError> {
    if remote.asn != expected_peer_asn {
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
        route_refresh: remote.route_refresh(),
        hold_time: local.hold_time.min(remote.hold_time),
        peer_bgp_id: remote.bgp_id,
        peer_graceful_restart: remote.graceful_restart().cloned(),
    })
}

//! From the control-plane-vip file to BGP session configurations and the routes they carry. Pure.

use crate::speaker::peers::{Discovered, bfd_profile_of};
use ferrolb_bgp::fsm::FsmConfig;
use ferrolb_bgp::rib_out::Attributes;
use ferrolb_bgp::session::{DesiredRoutes, SessionConfig, TcpOptions};
use ferrolb_config::{ControlPlaneVip, Peer};
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// The session with `peer`: graceful restart off (a withdraw or a closed session must move traffic away now,
/// not after a restart timer), no restart record; `found` supplies the source address and router-id the peer
/// does not configure.
pub fn session_config(peer: &Peer, found: Discovered) -> SessionConfig {
    let mut fsm = FsmConfig::new(peer.my_asn, peer.peer_asn);
    fsm.router_id = peer.router_id.or(found.router_id);
    fsm.hold_time = u16::try_from(peer.hold_time.as_secs()).unwrap_or(u16::MAX);
    fsm.keepalive_time = Some(peer.keepalive_time);
    fsm.graceful_restart = None;
    fsm.connect_retry_initial = peer.connect_time.unwrap_or(Duration::from_secs(1));
    SessionConfig {
        tcp: TcpOptions {
            peer: SocketAddr::new(peer.peer_address, peer.peer_port),
            source: peer.source_address.or(found.source),
            password: peer.password.as_deref().map(str::to_owned),
            ttl: 255,
            connect_timeout: Duration::from_secs(10),
            bind_device: None,
            peer_on_link: false,
        },
        fsm,
        state_dir: None,
        next_hop_v4: None,
        next_hop_v6: None,
    }
}

/// The BFD profile guarding `peer`'s session, if it names one (the file's check guarantees it exists).
pub fn bfd_profile(file: &ControlPlaneVip, peer: &Peer) -> Option<ferrolb_bfd::Profile> {
    peer.bfd_profile
        .as_deref()
        .and_then(|name| file.bfd_profile(name))
        .map(bfd_profile_of)
}

/// The routes of a healthy node: each address as a host route (/32, /128), with `med` (active-backup).
pub fn routes(addresses: &[IpAddr], med: Option<u32>) -> DesiredRoutes {
    let attributes = Arc::new(Attributes {
        med,
        ..Attributes::default()
    });
    addresses
        .iter()
        .map(|ip| (IpNet::from(*ip), Arc::clone(&attributes)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
addresses: [198.18.0.100, 2001:db8::100]
mode: active-backup
priority: 150
health-check: {insecure-skip-verify: true}
bfd-profiles: [{name: fast, receive-interval: 50}]
peers:
- {peer-address: 198.18.0.1, peer-asn: 64512, my-asn: 64513, password: pw, bfd-profile: fast, hold-time: 9s}
- {peer-address: 198.18.0.2, peer-asn: 64512, my-asn: 64513, source-address: 198.18.0.10, router-id: 10.0.0.1}
";

    #[test]
    fn control_plane_sessions_never_use_graceful_restart() {
        let file = ControlPlaneVip::from_yaml(FILE).unwrap();
        let found = Discovered {
            source: Some("198.18.0.11".parse().unwrap()),
            router_id: Some("198.18.0.11".parse().unwrap()),
        };
        let first = session_config(&file.peers[0], found);
        assert_eq!(first.fsm.graceful_restart, None);
        assert_eq!(first.state_dir, None);
        assert_eq!(first.fsm.hold_time, 9);
        assert_eq!(first.fsm.keepalive_time, Some(Duration::from_secs(3)));
        assert_eq!(first.tcp.password.as_deref(), Some("pw"));
        assert_eq!(first.tcp.source, found.source);
        assert_eq!(first.fsm.router_id, found.router_id);
        assert_eq!(first.tcp.peer, "198.18.0.1:179".parse().unwrap());
        let second = session_config(&file.peers[1], found);
        assert_eq!(second.tcp.source, Some("198.18.0.10".parse().unwrap()));
        assert_eq!(second.fsm.router_id, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(
            bfd_profile(&file, &file.peers[0]).map(|p| p.receive_interval_ms),
            Some(50)
        );
        assert_eq!(bfd_profile(&file, &file.peers[1]), None);
    }

    #[test]
    fn control_plane_routes_are_host_routes_with_the_priority_med() {
        let file = ControlPlaneVip::from_yaml(FILE).unwrap();
        let r = routes(&file.addresses, file.mode.med());
        let shown: Vec<(String, Option<u32>)> =
            r.iter().map(|(p, a)| (p.to_string(), a.med)).collect();
        assert_eq!(
            shown,
            vec![
                ("198.18.0.100/32".to_owned(), Some(105)),
                ("2001:db8::100/128".to_owned(), Some(105)),
            ]
        );
        assert!(
            routes(&file.addresses, None)
                .values()
                .all(|a| a.med.is_none())
        );
    }
}

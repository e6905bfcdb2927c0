//! Unnumbered peering: finding the router's IPv6 link-local address on an interface, as FRR's
//! `neighbor IF interface` does, from its Router Advertisements (RFC 4861 §4.2).
//!
//! [`discover_router`] opens an ICMPv6 raw socket bound to the interface, sends a Router
//! Solicitation (so a router answers at once instead of at its next periodic advertisement) and
//! a Router Advertisement of its own with a router lifetime of 0 (FRR's zebra learns an
//! unnumbered neighbour from the advertisements it receives; a lifetime of 0 tells hosts we are
//! no default router), then waits for the first Router Advertisement from a link-local address.
//! The session driver runs it before every connection attempt, so a router whose address changed
//! is found again on the next attempt.
//!
//! The packets and the choice of source are pure functions ([`router_solicitation`],
//! [`router_advertisement`], [`advertising_router`]).

use std::io;
use std::mem::MaybeUninit;
use std::net::{Ipv6Addr, SocketAddrV6};
use std::time::{Duration, Instant};
use thiserror::Error;

/// ICMPv6 type of a Router Solicitation.
pub const ROUTER_SOLICITATION: u8 = 133;
/// ICMPv6 type of a Router Advertisement.
pub const ROUTER_ADVERTISEMENT: u8 = 134;

/// All-routers link-local multicast (RFC 4291 §2.7.1), where solicitations go.
const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);
/// All-nodes link-local multicast, where advertisements go.
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// Why no router was found on an interface.
#[derive(Debug, Error)]
pub enum DiscoverError {
    /// No interface of that name in this network namespace.
    #[error("no interface {interface}")]
    NoInterface {
        /// The interface name.
        interface: String,
    },
    /// No Router Advertisement from a link-local address arrived in time.
    #[error(
        "no router advertisement on {interface} within {waited:?} (is the router sending them? FRR: \
         `interface {interface}` / `no ipv6 nd suppress-ra`)"
    )]
    NoAdvertisement {
        /// The interface name.
        interface: String,
        /// How long we listened.
        waited: Duration,
    },
    /// A socket operation failed.
    #[error("{step} on {interface}: {source}")]
    Io {
        /// What we were doing.
        step: &'static str,
        /// The interface name.
        interface: String,
        /// The operating system's error.
        source: io::Error,
    },
}

/// A router found on a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkRouter {
    /// Its link-local address.
    pub address: Ipv6Addr,
    /// The interface's index (the address's scope).
    pub ifindex: u32,
}

impl LinkRouter {
    /// The router's BGP endpoint: its link-local address scoped to the interface.
    pub fn socket_addr(&self, port: u16) -> SocketAddrV6 {
        SocketAddrV6::new(self.address, port, 0, self.ifindex)
    }
}

/// A Router Solicitation (RFC 4861 §4.1) without options; the kernel fills in the checksum.
pub fn router_solicitation() -> [u8; 8] {
    [ROUTER_SOLICITATION, 0, 0, 0, 0, 0, 0, 0]
}

/// A Router Advertisement (RFC 4861 §4.2) with router lifetime 0 (not a default router), no
/// hop limit, flags, timers or options; the kernel fills in the checksum.
pub fn router_advertisement() -> [u8; 16] {
    let mut ra = [0u8; 16];
    ra[0] = ROUTER_ADVERTISEMENT;
    ra
}

/// The router that sent `packet` from `source`, if `packet` is a Router Advertisement (type
/// 134, code 0, at least 16 octets) from a link-local address that is not one of `ours`
/// (RFC 4861 §6.1.2: a router advertises from its link-local address).
pub fn advertising_router(source: Ipv6Addr, packet: &[u8], ours: &[Ipv6Addr]) -> Option<Ipv6Addr> {
    let is_ra = matches!(packet, [ROUTER_ADVERTISEMENT, 0, ..]) && packet.len() >= 16;
    let link_local = source
        .segments()
        .first()
        .is_some_and(|s| s & 0xffc0 == 0xfe80);
    (is_ra && link_local && !ours.contains(&source)).then_some(source)
}

/// Finds the router on `interface` from its Router Advertisements, waiting at most `timeout`.
/// Blocking; run it off the async runtime (the session driver uses `spawn_blocking`).
pub fn discover_router(interface: &str, timeout: Duration) -> Result<LinkRouter, DiscoverError> {
    let io_err = |step: &'static str| {
        move |source| DiscoverError::Io {
            step,
            interface: interface.to_owned(),
            source,
        }
    };
    let name = std::ffi::CString::new(interface).map_err(|_| DiscoverError::NoInterface {
        interface: interface.to_owned(),
    })?;
    // SAFETY: `name` is a NUL-terminated string that outlives the call.
    let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if ifindex == 0 {
        return Err(DiscoverError::NoInterface {
            interface: interface.to_owned(),
        });
    }
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))
        .map_err(io_err("opening an ICMPv6 socket"))?;
    socket
        .bind_device(Some(interface.as_bytes()))
        .map_err(io_err("binding to the interface"))?;
    // RFC 4861 §6.1: neighbour discovery packets leave with hop limit 255.
    socket
        .set_multicast_hops_v6(255)
        .map_err(io_err("setting the hop limit"))?;
    socket
        .set_multicast_loop_v6(false)
        .map_err(io_err("turning multicast loopback off"))?;
    socket
        .set_multicast_if_v6(ifindex)
        .map_err(io_err("choosing the multicast interface"))?;
    let ours: Vec<Ipv6Addr> = super::next_hop::interface_addrs()
        .into_iter()
        .filter(|i| i.name == interface)
        .flat_map(|i| i.addrs)
        .filter_map(|a| match a {
            std::net::IpAddr::V6(v6) => Some(v6),
            std::net::IpAddr::V4(_) => None,
        })
        .collect();
    let to = |group| socket2::SockAddr::from(SocketAddrV6::new(group, 0, 0, ifindex));
    let deadline = Instant::now() + timeout;
    // A link that just came up has no usable link-local address until duplicate address detection
    // is done (about a second): sending fails with EADDRNOTAVAIL until then, so wait for it.
    loop {
        match socket.send_to(&router_solicitation(), &to(ALL_ROUTERS)) {
            Ok(_) => break,
            Err(e)
                if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(io_err("sending a router solicitation")(e)),
        }
    }
    socket
        .send_to(&router_advertisement(), &to(ALL_NODES))
        .map_err(io_err("sending a router advertisement"))?;
    let mut buf = [MaybeUninit::<u8>::uninit(); 1500];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(DiscoverError::NoAdvertisement {
                interface: interface.to_owned(),
                waited: timeout,
            });
        }
        socket
            .set_read_timeout(Some(left))
            .map_err(io_err("setting the receive timeout"))?;
        let (n, from) = match socket.recv_from(&mut buf) {
            Ok(got) => got,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err("receiving")(e)),
        };
        let Some(source) = from.as_socket_ipv6().map(|s| *s.ip()) else {
            continue;
        };
        // SAFETY: recv_from initialised the first `n` octets of `buf`.
        let packet: Vec<u8> = buf
            .get(..n)
            .unwrap_or_default()
            .iter()
            .map(|b| unsafe { b.assume_init() })
            .collect();
        if let Some(address) = advertising_router(source, &packet, &ours) {
            return Ok(LinkRouter { address, ifindex });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ll(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn solicitation_and_advertisement_bytes() {
        assert_eq!(router_solicitation(), [133, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            router_advertisement(),
            [134, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn only_a_router_advertisement_from_another_link_local_address_counts() {
        // FRR 8.4.4 zebra's advertisement as captured (`ipv6 nd ra-interval 3`): checksum
        // 0xbc47, current hop limit 64, router lifetime 9 s, a source link-layer address option.
        let frr_ra = [
            0x86, 0x00, 0xbc, 0x47, 0x40, 0x00, 0x00, 0x09, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x01,
            0x7e, 0x96, 0x2f, 0xc2, 0x92, 0x92,
        ];
        let router = ll("fe80::7c96:2fff:fec2:9292");
        let me = ll("fe80::a4c0:79ff:fe67:4751");
        assert_eq!(advertising_router(router, &frr_ra, &[me]), Some(router));
        // Our own advertisement looped back.
        assert_eq!(advertising_router(me, &frr_ra, &[me]), None);
        // From a global address.
        assert_eq!(advertising_router(ll("2001:db8::1"), &frr_ra, &[me]), None);
        // A solicitation, a truncated advertisement, a non-zero code.
        assert_eq!(
            advertising_router(router, &router_solicitation(), &[me]),
            None
        );
        assert_eq!(advertising_router(router, &frr_ra[..15], &[me]), None);
        let mut bad_code = frr_ra;
        bad_code[1] = 1;
        assert_eq!(advertising_router(router, &bad_code, &[me]), None);
    }

    #[test]
    fn an_unknown_interface_is_named() {
        let err = discover_router("nosuchif0", Duration::from_millis(10)).unwrap_err();
        assert_eq!(err.to_string(), "no interface nosuchif0");
    }
}

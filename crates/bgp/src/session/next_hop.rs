//! Choosing next hops: the session's local address for its own family, and for the other
//! family an address of that family on the same interface (an IPv6 global next hop for IPv6
//! routes carried over an IPv4 session, RFC 4760 §3). A session over a link-local address
//! (unnumbered) announces that address as the link-local next hop, and a global address of
//! the same interface, if there is one, as the global next hop.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The local addresses of one interface.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InterfaceAddrs {
    /// The interface name.
    pub name: String,
    /// Its addresses, in the order the kernel lists them.
    pub addrs: Vec<IpAddr>,
}

/// Picks (IPv4 next hop, IPv6 global next hop) for a session whose local address is `local`,
/// from the interfaces' addresses. Pure, for testing; see [`next_hops`].
pub fn pick_next_hops(
    local: IpAddr,
    interfaces: &[InterfaceAddrs],
) -> (Option<Ipv4Addr>, Option<Ipv6Addr>) {
    let same_if = interfaces.iter().find(|i| i.addrs.contains(&local));
    let others = same_if.map(|i| i.addrs.as_slice()).unwrap_or_default();
    match local {
        IpAddr::V4(v4) => {
            let v6 = others.iter().find_map(|a| match a {
                IpAddr::V6(v6) if is_global_v6(v6) => Some(*v6),
                _ => None,
            });
            (Some(v4), v6)
        }
        IpAddr::V6(v6) => {
            let v4 = others.iter().find_map(|a| match a {
                IpAddr::V4(v4) if !v4.is_loopback() => Some(*v4),
                _ => None,
            });
            if is_link_local_v6(&v6) {
                let global = others.iter().find_map(|a| match a {
                    IpAddr::V6(g) if is_global_v6(g) => Some(*g),
                    _ => None,
                });
                return (v4, global);
            }
            (v4, Some(v6))
        }
    }
}

/// Not link-local, loopback, unspecified or multicast.
fn is_global_v6(a: &Ipv6Addr) -> bool {
    !(a.is_loopback() || a.is_unspecified() || a.is_multicast() || is_link_local_v6(a))
}

/// In fe80::/10.
pub fn is_link_local_v6(a: &Ipv6Addr) -> bool {
    (a.segments()[0] & 0xffc0) == 0xfe80
}

/// The link-local next hop of a session whose local address is `local`: that address when it is
/// an IPv6 link-local one (an unnumbered session), otherwise none.
pub fn link_local_next_hop(local: IpAddr) -> Option<Ipv6Addr> {
    match local {
        IpAddr::V6(v6) if is_link_local_v6(&v6) => Some(v6),
        _ => None,
    }
}

/// [`pick_next_hops`] over this host's (this network namespace's) interfaces.
pub fn next_hops(local: IpAddr) -> (Option<Ipv4Addr>, Option<Ipv6Addr>) {
    pick_next_hops(local, &interface_addrs())
}

/// This host's interfaces and their addresses (`getifaddrs(3)`); empty on error.
pub fn interface_addrs() -> Vec<InterfaceAddrs> {
    let mut out: Vec<InterfaceAddrs> = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head we free below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return out;
    }
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, valid until freeifaddrs.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: ifa_addr is non-null and points to a sockaddr whose family says its type.
        let addr = unsafe {
            match i32::from((*ifa.ifa_addr).sa_family) {
                libc::AF_INET => {
                    let sin = &*ifa.ifa_addr.cast::<libc::sockaddr_in>();
                    Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                        sin.sin_addr.s_addr,
                    ))))
                }
                libc::AF_INET6 => {
                    let sin6 = &*ifa.ifa_addr.cast::<libc::sockaddr_in6>();
                    Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
                }
                _ => None,
            }
        };
        let Some(addr) = addr else { continue };
        match out.iter_mut().find(|i| i.name == name) {
            Some(i) => i.addrs.push(addr),
            None => out.push(InterfaceAddrs {
                name,
                addrs: vec![addr],
            }),
        }
    }
    // SAFETY: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ifs() -> Vec<InterfaceAddrs> {
        vec![
            InterfaceAddrs {
                name: "lo".into(),
                addrs: vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()],
            },
            InterfaceAddrs {
                name: "eth0".into(),
                addrs: vec![
                    "198.18.0.2".parse().unwrap(),
                    "fe80::2".parse().unwrap(),
                    "2001:db8::2".parse().unwrap(),
                ],
            },
            InterfaceAddrs {
                name: "eth1".into(),
                addrs: vec!["2001:db8:1::2".parse().unwrap()],
            },
        ]
    }

    #[test]
    fn v6_next_hop_comes_from_the_session_interface_and_is_global() {
        let (v4, v6) = pick_next_hops("198.18.0.2".parse().unwrap(), &ifs());
        assert_eq!(v4, Some("198.18.0.2".parse().unwrap()));
        assert_eq!(v6, Some("2001:db8::2".parse().unwrap()));
    }

    #[test]
    fn v6_session_borrows_v4_from_its_interface_or_has_none() {
        let (v4, v6) = pick_next_hops("2001:db8::2".parse().unwrap(), &ifs());
        assert_eq!(v4, Some("198.18.0.2".parse().unwrap()));
        assert_eq!(v6, Some("2001:db8::2".parse().unwrap()));
        let (v4, _) = pick_next_hops("2001:db8:1::2".parse().unwrap(), &ifs());
        assert_eq!(v4, None);
    }

    #[test]
    fn link_local_session_takes_a_global_of_its_interface_and_no_ipv4_from_elsewhere() {
        let mut all = ifs();
        all.push(InterfaceAddrs {
            name: "eth2".into(),
            addrs: vec!["fe80::9".parse().unwrap()],
        });
        let local: IpAddr = "fe80::2".parse().unwrap();
        assert_eq!(
            pick_next_hops(local, &all),
            (
                Some("198.18.0.2".parse().unwrap()),
                Some("2001:db8::2".parse().unwrap())
            )
        );
        assert_eq!(link_local_next_hop(local), Some("fe80::2".parse().unwrap()));
        // An unnumbered link: no IPv4, no global IPv6.
        assert_eq!(
            pick_next_hops("fe80::9".parse().unwrap(), &all),
            (None, None)
        );
        assert_eq!(link_local_next_hop("2001:db8::2".parse().unwrap()), None);
    }

    #[test]
    fn loopback_is_listed() {
        let all = interface_addrs();
        assert!(all.iter().any(|i| i.addrs.iter().any(IpAddr::is_loopback)));
    }
}

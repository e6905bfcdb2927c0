//! UDP sockets for RFC 5881 single-hop BFD: TTL/hop limit 255 on send, and the received TTL/hop
//! limit reported through `recvmsg` ancillary data so GTSM can be enforced.

use std::io;
use std::mem::MaybeUninit;
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, RawFd};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// The TTL / hop limit every single-hop BFD packet is sent with.
pub const SINGLE_HOP_TTL: u32 = 255;

fn set_int_option(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `value` is a live c_int and the length passed is its size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            socklen_of::<libc::c_int>()?,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn new_socket(local: SocketAddr) -> io::Result<Socket> {
    let domain = if local.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if local.is_ipv6() {
        socket.set_only_v6(true)?;
        socket.set_unicast_hops_v6(SINGLE_HOP_TTL)?;
    } else {
        socket.set_ttl_v4(SINGLE_HOP_TTL)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// A socket bound to `local` that reports the TTL / hop limit of what it receives.
pub fn receive_socket(local: SocketAddr) -> io::Result<tokio::net::UdpSocket> {
    let socket = new_socket(local)?;
    let fd = socket.as_raw_fd();
    if local.is_ipv6() {
        set_int_option(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, 1)?;
    } else {
        set_int_option(fd, libc::IPPROTO_IP, libc::IP_RECVTTL, 1)?;
    }
    socket.bind(&SockAddr::from(local))?;
    tokio::net::UdpSocket::from_std(socket.into())
}

/// A socket bound to `local` (with its source port) and connected to `peer`, sending with TTL 255.
pub fn transmit_socket(local: SocketAddr, peer: SocketAddr) -> io::Result<tokio::net::UdpSocket> {
    let socket = new_socket(local)?;
    socket.bind(&SockAddr::from(local))?;
    socket.connect(&SockAddr::from(peer))?;
    tokio::net::UdpSocket::from_std(socket.into())
}

/// One received datagram's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Payload length written to the buffer.
    pub len: usize,
    /// Sender address.
    pub source: SocketAddr,
    /// TTL / hop limit it arrived with; `None` if the kernel reported none.
    pub ttl: Option<u8>,
}

/// One non-blocking `recvmsg`, returning `WouldBlock` when nothing is queued.
pub fn recv_with_ttl(fd: RawFd, buf: &mut [u8]) -> io::Result<Received> {
    let mut addr = MaybeUninit::<libc::sockaddr_storage>::zeroed();
    // u64 elements keep the control buffer aligned for cmsghdr.
    let mut control = [0u64; 16];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain data; every pointer set below outlives the recvmsg call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = addr.as_mut_ptr().cast();
    msg.msg_namelen = socklen_of::<libc::sockaddr_storage>()?;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: `msg` describes valid, writable buffers of the stated sizes.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let len = usize::try_from(n).unwrap_or(0);
    let mut ttl = None;
    // SAFETY: the kernel filled `msg_control` with `msg_controllen` bytes of well-formed cmsgs;
    // CMSG_FIRSTHDR/CMSG_NXTHDR stay within them.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            let header = &*cmsg;
            let is_ttl = (header.cmsg_level == libc::IPPROTO_IP
                && header.cmsg_type == libc::IP_TTL)
                || (header.cmsg_level == libc::IPPROTO_IPV6
                    && header.cmsg_type == libc::IPV6_HOPLIMIT);
            if is_ttl && header.cmsg_len as usize >= libc::CMSG_LEN(4) as usize {
                let value = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>());
                ttl = u8::try_from(value).ok();
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    // SAFETY: recvmsg wrote a socket address of `msg_namelen` bytes into `addr`.
    let storage = unsafe { addr.assume_init() };
    let source = sockaddr_to_std(&storage)
        .ok_or_else(|| io::Error::other("datagram without an IP source address"))?;
    Ok(Received { len, source, ttl })
}

fn sockaddr_to_std(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match libc::c_int::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let sin =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let sin6 = unsafe {
                &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            let ip = std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// The size of `T` as the kernel's length type (an error only if it does not fit, which no
/// socket structure reaches).
fn socklen_of<T>() -> io::Result<libc::socklen_t> {
    libc::socklen_t::try_from(std::mem::size_of::<T>()).map_err(io::Error::other)
}

//! The TCP connection to a peer: source address, TTL, TCP-MD5 (RFC 2385), the device the socket
//! is bound to (`SO_BINDTODEVICE`: an unnumbered link or a VRF), and for an unnumbered peer its
//! link-local address, found on that device before each attempt ([`super::link_local`]).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::Duration;
use thiserror::Error;
use tokio::net::{TcpSocket, TcpStream};

/// Why a TCP connection to the peer could not be opened.
#[derive(Debug, Error)]
pub enum ConnectError {
    /// The peer answered with a TCP reset: nothing listens there, or it refused us.
    #[error("connection to {peer} refused")]
    Refused {
        /// The peer's address and port.
        peer: SocketAddr,
    },
    /// No answer within the connect timeout (a wrong MD5 password looks like this too).
    #[error("connection to {peer} timed out after {timeout:?}")]
    TimedOut {
        /// The peer's address and port.
        peer: SocketAddr,
        /// How long we waited.
        timeout: Duration,
    },
    /// The source address is of another family than the peer address.
    #[error("source address {source_addr} and peer address {peer} are of different families")]
    FamilyMismatch {
        /// The configured source address.
        source_addr: IpAddr,
        /// The peer's address and port.
        peer: SocketAddr,
    },
    /// The MD5 password is longer than the kernel accepts (80 bytes).
    #[error("TCP-MD5 password is {len} bytes; at most {TCP_MD5SIG_MAXKEYLEN} are allowed")]
    PasswordTooLong {
        /// The password's length in bytes.
        len: usize,
    },
    /// No router was found on the link of an unnumbered peer.
    #[error("unnumbered peer: {0}")]
    Discovery(#[from] super::link_local::DiscoverError),
    /// Another socket error, with the step that failed.
    #[error("{step} for {peer}: {source}")]
    Io {
        /// What we were doing.
        step: &'static str,
        /// The peer's address and port.
        peer: SocketAddr,
        /// The operating system's error.
        source: io::Error,
    },
}

/// The kernel's limit on a TCP-MD5 key length.
pub const TCP_MD5SIG_MAXKEYLEN: usize = 80;

/// How to reach a peer over TCP. `Debug` shows whether there is a password, never the password.
#[derive(Clone, PartialEq, Eq)]
pub struct TcpOptions {
    /// The peer's address and port.
    pub peer: SocketAddr,
    /// The local address to bind before connecting.
    pub source: Option<IpAddr>,
    /// The TCP-MD5 password.
    pub password: Option<String>,
    /// The IP TTL (hop limit) of our packets: 255 for single-hop, the multihop count otherwise.
    pub ttl: u8,
    /// How long to wait for the TCP handshake (and, for a peer on a link, for its router
    /// advertisement).
    pub connect_timeout: Duration,
    /// Bind the socket to this device (`SO_BINDTODEVICE`): the unnumbered link, or a VRF device.
    pub bind_device: Option<String>,
    /// The peer is the router on `bind_device`, found from its router advertisements before each
    /// attempt (unnumbered peering); `peer`'s port is used and its address ignored.
    pub peer_on_link: bool,
}

impl std::fmt::Debug for TcpOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpOptions")
            .field("peer", &self.peer)
            .field("source", &self.source)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("ttl", &self.ttl)
            .field("connect_timeout", &self.connect_timeout)
            .field("bind_device", &self.bind_device)
            .field("peer_on_link", &self.peer_on_link)
            .finish()
    }
}

/// The options with the peer's address filled in: for a peer on a link, the router found on
/// `bind_device` (scoped to it); otherwise `opts` as they are.
pub async fn resolve(opts: &TcpOptions) -> Result<TcpOptions, ConnectError> {
    let (true, Some(device)) = (opts.peer_on_link, opts.bind_device.clone()) else {
        return Ok(opts.clone());
    };
    let timeout = opts.connect_timeout;
    let found =
        tokio::task::spawn_blocking(move || super::link_local::discover_router(&device, timeout))
            .await
            .map_err(|e| ConnectError::Io {
                step: "waiting for router discovery",
                peer: opts.peer,
                source: io::Error::other(e.to_string()),
            })??;
    let mut resolved = opts.clone();
    resolved.peer = SocketAddr::V6(found.socket_addr(opts.peer.port()));
    Ok(resolved)
}

/// Opens the TCP connection described by `opts` (after [`resolve`] for a peer on a link).
pub async fn connect(opts: &TcpOptions) -> Result<TcpStream, ConnectError> {
    let opts = &resolve(opts).await?;
    let peer = opts.peer;
    let io_err = |step: &'static str| move |source| ConnectError::Io { step, peer, source };
    let socket = match peer {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(io_err("creating socket"))?;
    let sock = socket2::SockRef::from(&socket);
    match peer {
        SocketAddr::V4(_) => sock.set_ttl_v4(u32::from(opts.ttl)),
        SocketAddr::V6(_) => sock.set_unicast_hops_v6(u32::from(opts.ttl)),
    }
    .map_err(io_err("setting TTL"))?;
    sock.set_tcp_nodelay(true)
        .map_err(io_err("setting TCP_NODELAY"))?;
    if let Some(device) = &opts.bind_device {
        sock.bind_device(Some(device.as_bytes()))
            .map_err(io_err("binding to the device"))?;
    }
    if let Some(password) = &opts.password {
        set_md5sig(&socket, peer, password.as_bytes())?;
    }
    if let Some(source) = opts.source {
        if source.is_ipv4() != peer.is_ipv4() {
            return Err(ConnectError::FamilyMismatch {
                source_addr: source,
                peer,
            });
        }
        socket
            .bind(SocketAddr::new(source, 0))
            .map_err(io_err("binding source address"))?;
    }
    match tokio::time::timeout(opts.connect_timeout, socket.connect(peer)).await {
        Err(_) => Err(ConnectError::TimedOut {
            peer,
            timeout: opts.connect_timeout,
        }),
        Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
            Err(ConnectError::Refused { peer })
        }
        Ok(Err(e)) => Err(io_err("connecting")(e)),
        Ok(Ok(stream)) => Ok(stream),
    }
}

/// The kernel's `struct tcp_md5sig` (include/uapi/linux/tcp.h).
#[repr(C)]
struct TcpMd5Sig {
    addr: libc::sockaddr_storage,
    flags: u8,
    prefixlen: u8,
    keylen: u16,
    ifindex: libc::c_int,
    key: [u8; TCP_MD5SIG_MAXKEYLEN],
}

/// `size_of::<TcpMd5Sig>()` as the kernel's length type (216 octets: the cast cannot truncate).
#[allow(clippy::cast_possible_truncation)]
const SIZE_OF_TCP_MD5SIG: libc::socklen_t = std::mem::size_of::<TcpMd5Sig>() as libc::socklen_t;

/// Sets the TCP-MD5 key for segments to and from `peer` on `socket`.
fn set_md5sig(socket: &TcpSocket, peer: SocketAddr, key: &[u8]) -> Result<(), ConnectError> {
    if key.len() > TCP_MD5SIG_MAXKEYLEN {
        return Err(ConnectError::PasswordTooLong { len: key.len() });
    }
    let addr = socket2::SockAddr::from(peer);
    // SAFETY: all-zero bytes are a valid `sockaddr_storage` and a valid `TcpMd5Sig`.
    let mut sig: TcpMd5Sig = unsafe { std::mem::zeroed() };
    let addr_len = (addr.len() as usize).min(std::mem::size_of::<libc::sockaddr_storage>());
    // SAFETY: `addr.as_ptr()` points to `addr.len()` initialised bytes; the destination is a
    // `sockaddr_storage`, at least as large as `addr_len`, and the two do not overlap.
    unsafe {
        std::ptr::copy_nonoverlapping(
            addr.as_ptr().cast::<u8>(),
            std::ptr::addr_of_mut!(sig.addr).cast::<u8>(),
            addr_len,
        );
    }
    let slot = sig
        .key
        .get_mut(..key.len())
        .ok_or(ConnectError::PasswordTooLong { len: key.len() })?;
    slot.copy_from_slice(key);
    sig.keylen =
        u16::try_from(key.len()).map_err(|_| ConnectError::PasswordTooLong { len: key.len() })?;
    // SAFETY: the fd is a live socket owned by `socket`; we pass a pointer to a fully
    // initialised `TcpMd5Sig` and its exact size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_MD5SIG,
            std::ptr::addr_of!(sig).cast::<libc::c_void>(),
            SIZE_OF_TCP_MD5SIG,
        )
    };
    if rc != 0 {
        return Err(ConnectError::Io {
            step: "setting TCP_MD5SIG",
            peer,
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5sig_struct_matches_the_kernel_layout() {
        // 128 (sockaddr_storage) + 1 + 1 + 2 + 4 + 80
        assert_eq!(std::mem::size_of::<TcpMd5Sig>(), 216);
    }

    #[tokio::test]
    async fn refused_is_reported_as_refused() {
        // Bind a listener to learn a free port, then close it so nothing listens there.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = l.local_addr().unwrap();
        drop(l);
        let mut opts = TcpOptions {
            peer,
            source: None,
            password: None,
            ttl: 255,
            connect_timeout: Duration::from_secs(1),
            bind_device: None,
            peer_on_link: false,
        };
        let err = connect(&opts).await.unwrap_err();
        assert!(matches!(err, ConnectError::Refused { .. }), "{err}");
        // With TCP-MD5 the kernel drops the unsigned reset: the attempt times out instead,
        // which is also what a wrong password looks like.
        opts.password = Some("secret".into());
        let err = connect(&opts).await.unwrap_err();
        assert!(matches!(err, ConnectError::TimedOut { .. }), "{err}");
    }

    #[tokio::test]
    async fn neither_the_options_nor_the_errors_print_the_password() {
        let planted = "s3cr3t-planted";
        let opts = TcpOptions {
            peer: "127.0.0.1:179".parse().unwrap(),
            source: None,
            password: Some(format!("{planted}{}", "x".repeat(80))),
            ttl: 255,
            connect_timeout: Duration::from_secs(1),
            bind_device: None,
            peer_on_link: false,
        };
        let err = connect(&opts).await.unwrap_err();
        for text in [
            format!("{opts:?}"),
            format!("{opts:#?}"),
            format!("{err}"),
            format!("{err:?}"),
        ] {
            assert!(!text.contains(planted), "{text}");
        }
        assert!(format!("{opts:?}").contains("password: Some(\"<redacted>\")"));
    }

    #[tokio::test]
    async fn too_long_password_is_rejected() {
        let opts = TcpOptions {
            peer: "127.0.0.1:179".parse().unwrap(),
            source: None,
            password: Some("x".repeat(81)),
            ttl: 255,
            connect_timeout: Duration::from_secs(1),
            bind_device: None,
            peer_on_link: false,
        };
        let err = connect(&opts).await.unwrap_err();
        assert!(
            matches!(err, ConnectError::PasswordTooLong { len: 81 }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn connects_with_ttl_and_source() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let opts = TcpOptions {
            peer: l.local_addr().unwrap(),
            source: Some("127.0.0.2".parse().unwrap()),
            password: None,
            ttl: 7,
            connect_timeout: Duration::from_secs(2),
            bind_device: None,
            peer_on_link: false,
        };
        let s = connect(&opts).await.unwrap();
        assert_eq!(s.local_addr().unwrap().ip().to_string(), "127.0.0.2");
        assert_eq!(s.ttl().unwrap(), 7);
        let (_, from) = l.accept().await.unwrap();
        assert_eq!(from.ip().to_string(), "127.0.0.2");
    }

    #[tokio::test]
    async fn the_socket_is_bound_to_the_device() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut opts = TcpOptions {
            peer: l.local_addr().unwrap(),
            source: None,
            password: None,
            ttl: 255,
            connect_timeout: Duration::from_secs(2),
            bind_device: Some("lo".into()),
            peer_on_link: false,
        };
        connect(&opts).await.unwrap();
        opts.bind_device = Some("nosuchdev0".into());
        let err = connect(&opts).await.unwrap_err();
        assert!(
            matches!(
                err,
                ConnectError::Io {
                    step: "binding to the device",
                    ..
                }
            ),
            "{err}"
        );
        // A peer on a link that does not exist: the discovery says so.
        opts.peer_on_link = true;
        let err = connect(&opts).await.unwrap_err();
        assert_eq!(err.to_string(), "unnumbered peer: no interface nosuchdev0");
    }
}

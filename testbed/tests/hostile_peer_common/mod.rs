//! The hostile BGP peer of `hostile_peer.rs`: sockets made in a lab namespace, the OPEN exchange with ferrolb's
//! own wire codec, the messages of each attack pre-encoded, and the measurements around them (the speaker's
//! RSS from `/proc/PID/status`, the router's session with the speaker from `show bgp neighbors json`).

use bytes::{Bytes, BytesMut};
use ferrolb_bgp::wire::{
    self, Aggregator, AsPath, AsSegment, AsSegmentKind, Capability, Family, LargeCommunity,
    Message, MpReach, Notification, Open, Origin, PathAttributes, RawAttribute, SessionContext,
    Update,
};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The hostile peer's address on the node LAN (a `lan-host` namespace).
pub const HOSTILE_ADDR: &str = "198.18.0.100";
/// The hostile peer's AS (eBGP to the speaker).
pub const HOSTILE_ASN: u32 = 65100;
/// The speaker's AS (`my-asn` of the lab ConfigMap).
pub const SPEAKER_ASN: u32 = 65559;

/// Runs `f` on a thread that has entered network namespace `ns`: the sockets it creates live there (and
/// threads it spawns start there), whichever thread uses them later.
pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    let path = format!("/var/run/netns/{ns}");
    std::thread::scope(|s| {
        s.spawn(|| {
            let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
            // SAFETY: a valid namespace fd; only this thread's network namespace changes.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns {path}: {}", io::Error::last_os_error());
            f()
        })
        .join()
        .expect("namespace thread")
    })
}

/// Sets SO_RCVBUF (the kernel doubles it and applies its minimum), before the window is advertised.
pub fn set_rcvbuf(fd: &impl AsRawFd, bytes: i32) {
    // SAFETY: a live socket and a c_int of the stated size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&bytes as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_RCVBUF: {}", io::Error::last_os_error());
}

/// One TCP connection from the speaker, as the hostile peer sees it.
pub struct Conn {
    /// The socket.
    pub stream: TcpStream,
    /// The session context (before the OPEN exchange: [`SessionContext::before_open`]).
    pub ctx: SessionContext,
    buf: BytesMut,
}

impl Conn {
    /// Waits (up to 60 s: the speaker's connect-retry backoff) for the speaker's next connection.
    pub fn accept(listener: &TcpListener) -> Conn {
        listener.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let stream = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    assert!(
                        Instant::now() < deadline,
                        "the speaker did not connect in 60 s"
                    );
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("accept: {e}"),
            }
        };
        stream.set_nonblocking(false).unwrap();
        stream.set_nodelay(true).unwrap();
        Conn {
            stream,
            ctx: SessionContext::before_open(),
            buf: BytesMut::with_capacity(65536),
        }
    }

    /// The next message, `Ok(None)` at end of stream; an error after `timeout` without one.
    pub fn read_message(&mut self, timeout: Duration) -> io::Result<Option<Message>> {
        let deadline = Instant::now() + timeout;
        loop {
            match wire::try_parse(&mut self.buf, &self.ctx) {
                Ok(Some(m)) => return Ok(Some(m)),
                Ok(None) => {}
                Err(e) => return Err(io::Error::other(format!("undecodable message: {e}"))),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "no message"));
            }
            self.stream.set_read_timeout(Some(left))?;
            let mut chunk = [0u8; 16384];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Ok(None);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads the speaker's OPEN and answers with [`hostile_open`] (`hold_time`).
    pub fn exchange_opens(&mut self, hold_time: u16) -> Open {
        let theirs = match self.read_message(Duration::from_secs(10)) {
            Ok(Some(Message::Open(o))) => o,
            other => panic!("expected the speaker's OPEN, got {other:?}"),
        };
        let ours = hostile_open(hold_time);
        self.send(&Message::Open(ours.clone()));
        self.ctx = wire::negotiate(&ours, &theirs, SPEAKER_ASN).expect("negotiate");
        theirs
    }

    /// [`Conn::exchange_opens`], then KEEPALIVEs both ways: Established on both sides.
    pub fn establish(&mut self, hold_time: u16) {
        self.exchange_opens(hold_time);
        self.send(&Message::Keepalive);
        match self.read_message(Duration::from_secs(10)) {
            Ok(Some(Message::Keepalive)) => {}
            other => panic!("expected the speaker's KEEPALIVE, got {other:?}"),
        }
    }

    /// Writes one message.
    pub fn send(&mut self, m: &Message) {
        let bytes = m.encode(&self.ctx).expect("encode");
        self.stream.write_all(&bytes).expect("write");
    }
}

/// The hostile peer's OPEN: IPv4 and IPv6 unicast, route refresh, 4-octet AS.
pub fn hostile_open(hold_time: u16) -> Open {
    Open {
        version: wire::BGP_VERSION,
        asn: HOSTILE_ASN,
        hold_time,
        bgp_id: HOSTILE_ADDR.parse().unwrap(),
        capabilities: vec![
            Capability::Multiprotocol(Family::Ipv4Unicast),
            Capability::Multiprotocol(Family::Ipv6Unicast),
            Capability::RouteRefresh,
            Capability::FourOctetAs(HOSTILE_ASN),
        ],
    }
}

/// The context a session with [`hostile_open`] negotiates with the speaker (4-octet AS, IPv4 and IPv6 unicast,
/// no extended messages): the flood is encoded for it before the session comes up.
pub fn flood_context() -> SessionContext {
    SessionContext {
        local_asn: HOSTILE_ASN,
        peer_asn: SPEAKER_ASN,
        four_octet_as: true,
        families: vec![Family::Ipv4Unicast, Family::Ipv6Unicast],
        route_refresh: true,
        ..SessionContext::before_open()
    }
}

fn base_attributes() -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath {
            segments: vec![AsSegment {
                kind: AsSegmentKind::Sequence,
                asns: vec![HOSTILE_ASN],
            }],
        }),
        ..PathAttributes::default()
    }
}

/// `count` distinct IPv6 /64s in 2001:db8::/32, packed into as few UPDATEs (MP_REACH_NLRI) as 4,096 octets
/// allow, encoded back to back in batches of whole messages (a writer that stops between batches leaves the
/// stream well framed): each batch with its number of UPDATEs.
pub fn million_prefix_updates(ctx: &SessionContext, count: u32) -> Vec<(Bytes, u64)> {
    let next_hop = IpAddr::V6("2001:db8:0:1::100".parse().unwrap());
    let prefix = |i: u32| {
        let addr = Ipv6Addr::new(
            0x2001,
            0xdb8,
            (i >> 16) as u16,
            (i & 0xffff) as u16,
            0,
            0,
            0,
            0,
        );
        IpNet::V6(Ipv6Net::new(addr, 64).unwrap())
    };
    // 19 header + 4 lengths + ORIGIN 4 + AS_PATH 9 + MP_REACH header 4 + 22: 4,034 octets for 9-octet prefixes.
    const PER_UPDATE: u32 = 440;
    let mut batches = Vec::new();
    let mut out = BytesMut::new();
    let mut messages = 0;
    for start in (0..count).step_by(PER_UPDATE as usize) {
        let mut attributes = base_attributes();
        attributes.mp_reach = Some(MpReach {
            family: Family::Ipv6Unicast,
            next_hop,
            link_local_next_hop: None,
            nlri: (start..count.min(start + PER_UPDATE)).map(prefix).collect(),
        });
        let update = Message::Update(Update {
            attributes,
            ..Update::default()
        });
        update
            .encode_into(ctx, &mut out)
            .expect("prefix UPDATE fits");
        messages += 1;
        if messages == 64 {
            batches.push((out.split().freeze(), messages));
            messages = 0;
        }
    }
    batches.push((out.freeze(), messages));
    batches
}

/// An UPDATE of exactly 4,096 octets carrying every path attribute the speaker decodes (long AS_PATH,
/// MED, ATOMIC_AGGREGATE, AGGREGATOR, communities, extended and large communities) and an unknown optional
/// transitive attribute filling the rest, for two IPv4 /32s in 198.19.0.0/16.
pub fn max_attribute_update(ctx: &SessionContext, n: u32) -> Bytes {
    let mut attributes = base_attributes();
    attributes.as_path = Some(AsPath {
        segments: vec![
            AsSegment {
                kind: AsSegmentKind::Sequence,
                asns: (0..200).map(|i| HOSTILE_ASN + i).collect(),
            },
            AsSegment {
                kind: AsSegmentKind::Set,
                asns: (0..50).map(|i| 64512 + i).collect(),
            },
        ],
    });
    attributes.next_hop = Some(HOSTILE_ADDR.parse().unwrap());
    attributes.med = Some(n);
    attributes.atomic_aggregate = true;
    attributes.aggregator = Some(Aggregator {
        asn: HOSTILE_ASN,
        address: HOSTILE_ADDR.parse().unwrap(),
    });
    attributes.communities = (0..200).map(|i| (65100 << 16) | i).collect();
    attributes.extended_communities = (0..60u8).map(|i| [0, 2, 0xfe, 0x4c, 0, 0, 0, i]).collect();
    attributes.large_communities = (0..60)
        .map(|i| LargeCommunity {
            global_admin: HOSTILE_ASN,
            local_data1: n,
            local_data2: i,
        })
        .collect();
    let third = (n % 250) as u8;
    let nlri = vec![
        Ipv4Net::new(Ipv4Addr::new(198, 19, third, 1), 32).unwrap(),
        Ipv4Net::new(Ipv4Addr::new(198, 19, third, 2), 32).unwrap(),
    ];
    let encode = |attributes: &PathAttributes| {
        Message::Update(Update {
            attributes: attributes.clone(),
            nlri: nlri.clone(),
            ..Update::default()
        })
        .encode(ctx)
        .expect("max-attribute UPDATE fits")
    };
    let without = encode(&attributes).len();
    // An extended-length header (4 octets) for the padding attribute.
    let pad = wire::MAX_MESSAGE_LEN - without - 4;
    attributes.unknown.push(RawAttribute {
        flags: 0xc0,
        type_code: 250,
        value: Bytes::from(vec![0x5a; pad]),
    });
    let full = encode(&attributes);
    assert_eq!(
        full.len(),
        wire::MAX_MESSAGE_LEN,
        "the UPDATE is 4,096 octets"
    );
    full
}

/// The highest VmRSS (kB) of process `pid` seen every 20 ms until stopped, and its VmHWM at the end.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    peak_kb: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
    pid: u32,
}

/// Field `name` (kB) of `/proc/PID/status`.
pub fn proc_status_kb(pid: u32, name: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
}

impl RssSampler {
    /// Starts sampling `pid`.
    pub fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak_kb = Arc::new(AtomicU64::new(0));
        let (s, p) = (stop.clone(), peak_kb.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(proc_status_kb(pid, "VmRSS"), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        RssSampler {
            stop,
            peak_kb,
            thread: Some(thread),
            pid,
        }
    }

    /// Stops sampling: (highest VmRSS sampled, VmHWM), in kB.
    pub fn finish(mut self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        (
            self.peak_kb.load(Ordering::Relaxed),
            proc_status_kb(self.pid, "VmHWM"),
        )
    }
}

/// A NOTIFICATION's code and subcode.
pub fn code_of(n: &Notification) -> (u8, u8) {
    (n.code, n.subcode)
}

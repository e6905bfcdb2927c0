//! Why an attempt to reach a peer failed, in words a person can act on, and as a metric label.
//!
//! A TCP-MD5 mismatch never shows as an error: the kernel of the side holding a key silently drops
//! segments with a missing or wrong signature, so the TCP handshake just gets no answer (or, when both
//! sides agree on TCP but the peer's BGP is not configured for us, no OPEN arrives). The kernel counts
//! the segments it dropped in `/proc/net/netstat` (`TcpExt: TCPMD5NotFound TCPMD5Unexpected
//! TCPMD5Failure`, per network namespace); a count that grew during the attempt says so for certain.
//! [`classify`] decides the reason from what was observed, [`explain`] words it.

use super::socket::{ConnectError, TcpOptions};
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

/// The kernel's TCP-MD5 drop counters of one network namespace (`/proc/net/netstat`, `TcpExt`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Md5Counters {
    /// `TCPMD5NotFound`: a segment without a signature where a key was configured.
    pub not_found: u64,
    /// `TCPMD5Unexpected`: a signed segment where no key was configured.
    pub unexpected: u64,
    /// `TCPMD5Failure`: a segment whose signature did not match the key.
    pub failure: u64,
}

impl Md5Counters {
    /// Reads the counters from the text of `/proc/net/netstat`; `None` when the `TcpExt` lines or
    /// the three fields are missing (a kernel without TCP-MD5).
    pub fn parse(netstat: &str) -> Option<Md5Counters> {
        let mut lines = netstat.lines().filter(|l| l.starts_with("TcpExt:"));
        let names = lines.next()?.split_whitespace();
        let values = lines.next()?.split_whitespace();
        let mut out = Md5Counters::default();
        let mut found = 0;
        for (name, value) in names.zip(values).skip(1) {
            let slot = match name {
                "TCPMD5NotFound" => &mut out.not_found,
                "TCPMD5Unexpected" => &mut out.unexpected,
                "TCPMD5Failure" => &mut out.failure,
                _ => continue,
            };
            *slot = value.parse().ok()?;
            found += 1;
        }
        (found == 3).then_some(out)
    }

    /// The current namespace's counters, or `None` when they cannot be read.
    pub fn read() -> Option<Md5Counters> {
        Md5Counters::parse(&std::fs::read_to_string("/proc/net/netstat").ok()?)
    }

    /// Segments dropped for their TCP-MD5 signature since `before`.
    pub fn dropped_since(&self, before: &Md5Counters) -> u64 {
        self.not_found.saturating_sub(before.not_found)
            + self.unexpected.saturating_sub(before.unexpected)
            + self.failure.saturating_sub(before.failure)
    }
}

/// What was seen of one failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// The peer answered the SYN with a reset.
    Refused,
    /// The TCP handshake got no answer within this time.
    NoHandshake(Duration),
    /// TCP connected, our OPEN went out, and no OPEN came back within this time.
    NoOpen(Duration),
    /// Any other error (no route, bad source address, ...).
    Other,
}

impl Attempt {
    /// What a failed `connect` says about the attempt.
    pub fn of(error: &ConnectError) -> Attempt {
        match error {
            ConnectError::Refused { .. } => Attempt::Refused,
            ConnectError::TimedOut { timeout, .. } => Attempt::NoHandshake(*timeout),
            _ => Attempt::Other,
        }
    }
}

/// Why an attempt failed: the `reason` label of `ferrolb_bgp_connect_failures_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FailureReason {
    /// The peer refused the connection (a TCP reset).
    Refused,
    /// The TCP handshake got no answer (and the kernel counted no TCP-MD5 drop).
    NoReply,
    /// TCP connected but no OPEN arrived.
    NoOpen,
    /// The kernel dropped segments for their TCP-MD5 signature during the attempt.
    Md5Mismatch,
    /// Anything else.
    Other,
}

impl FailureReason {
    /// Every reason, in the order of [`FailureReason::index`].
    pub const ALL: [FailureReason; 5] = [
        FailureReason::Refused,
        FailureReason::NoReply,
        FailureReason::NoOpen,
        FailureReason::Md5Mismatch,
        FailureReason::Other,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            FailureReason::Refused => "refused",
            FailureReason::NoReply => "no_reply",
            FailureReason::NoOpen => "no_open",
            FailureReason::Md5Mismatch => "md5_mismatch",
            FailureReason::Other => "other",
        }
    }

    /// The position in [`FailureReason::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// The reason of a failed attempt, from what was seen of it and the TCP-MD5 drops the kernel counted
/// meanwhile (`md5_dropped`; 0 when unknown). A counted drop wins: it is the only certain sign.
pub fn classify(attempt: Attempt, md5_dropped: u64) -> FailureReason {
    match attempt {
        Attempt::NoHandshake(_) | Attempt::NoOpen(_) | Attempt::Refused if md5_dropped > 0 => {
            FailureReason::Md5Mismatch
        }
        Attempt::Refused => FailureReason::Refused,
        Attempt::NoHandshake(_) => FailureReason::NoReply,
        Attempt::NoOpen(_) => FailureReason::NoOpen,
        Attempt::Other => FailureReason::Other,
    }
}

/// What to tell the operator about a failed attempt to reach `peer`; `password` is whether we sign
/// with TCP-MD5, `md5_dropped` as for [`classify`], `error` the underlying error for the other cases.
pub fn explain(
    attempt: Attempt,
    md5_dropped: u64,
    peer: IpAddr,
    password: bool,
    error: &str,
) -> String {
    const SAME_PASSWORD: &str = "check that both sides use the same TCP-MD5 password";
    match (classify(attempt, md5_dropped), attempt) {
        (FailureReason::Md5Mismatch, _) => format!(
            "no BGP reply from {peer}: {SAME_PASSWORD} (the kernel dropped {md5_dropped} TCP segment(s) \
             with a missing or wrong TCP-MD5 signature meanwhile)"
        ),
        (FailureReason::NoReply, Attempt::NoHandshake(t)) if password => format!(
            "no BGP reply from {peer}: {SAME_PASSWORD} (the TCP handshake got no answer in {t:?}; a peer \
             with another password drops our SYNs silently), and that the peer is up and reachable"
        ),
        (FailureReason::NoReply, Attempt::NoHandshake(t)) => format!(
            "no reply from {peer}: the TCP handshake got no answer in {t:?}; check that the peer is up and \
             reachable, and that it does not expect a TCP-MD5 password (it would drop our unsigned SYNs \
             silently)"
        ),
        (FailureReason::NoOpen, Attempt::NoOpen(t)) => format!(
            "no BGP reply from {peer}: TCP connected but no OPEN arrived in {t:?}; {SAME_PASSWORD}, and \
             that the peer's BGP is configured for this address"
        ),
        (FailureReason::Refused, _) => format!(
            "connection to {peer} refused: nothing listens on its BGP port, or it does not accept \
             connections from this address"
        ),
        _ => error.to_owned(),
    }
}

/// Classifies and words a failed attempt to reach `tcp.peer` (see [`classify`] and [`explain`]), with the
/// TCP-MD5 drops the kernel counted since `before` (the counters read when the attempt started).
pub fn describe(
    attempt: Attempt,
    before: Option<Md5Counters>,
    tcp: &TcpOptions,
    error: &str,
) -> (FailureReason, String) {
    let dropped = match (before, Md5Counters::read()) {
        (Some(before), Some(now)) => now.dropped_since(&before),
        _ => 0,
    };
    let password = tcp.password.is_some();
    (
        classify(attempt, dropped),
        explain(attempt, dropped, tcp.peer.ip(), password, error),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NETSTAT: &str = "TcpExt: SyncookiesSent TCPMD5NotFound TCPMD5Unexpected TCPMD5Failure TCPSackShifted\n\
                           TcpExt: 0 4 1 7 9\n\
                           IpExt: InNoRoutes InTruncatedPkts\n\
                           IpExt: 0 0\n";

    #[test]
    fn netstat_counters_are_read_by_name() {
        assert_eq!(
            Md5Counters::parse(NETSTAT),
            Some(Md5Counters {
                not_found: 4,
                unexpected: 1,
                failure: 7
            })
        );
        // A kernel without TCP-MD5 has no such fields; a garbled value is not taken for 0.
        assert_eq!(
            Md5Counters::parse("TcpExt: SyncookiesSent\nTcpExt: 0\n"),
            None
        );
        assert_eq!(
            Md5Counters::parse(&NETSTAT.replace(" 4 1 7", " 4 x 7")),
            None
        );
        assert_eq!(Md5Counters::parse(""), None);
    }

    #[test]
    fn drops_since_an_earlier_reading_add_up_the_three_counters() {
        let before = Md5Counters::parse(NETSTAT).unwrap();
        let after = Md5Counters {
            not_found: 5,
            unexpected: 1,
            failure: 9,
        };
        assert_eq!(after.dropped_since(&before), 3);
        assert_eq!(before.dropped_since(&after), 0, "never negative");
    }

    #[test]
    fn a_counted_md5_drop_wins_otherwise_what_was_seen_decides() {
        let t = Duration::from_secs(10);
        assert_eq!(
            classify(Attempt::NoHandshake(t), 2),
            FailureReason::Md5Mismatch
        );
        assert_eq!(classify(Attempt::NoOpen(t), 1), FailureReason::Md5Mismatch);
        assert_eq!(classify(Attempt::Refused, 1), FailureReason::Md5Mismatch);
        assert_eq!(classify(Attempt::NoHandshake(t), 0), FailureReason::NoReply);
        assert_eq!(classify(Attempt::NoOpen(t), 0), FailureReason::NoOpen);
        assert_eq!(classify(Attempt::Refused, 0), FailureReason::Refused);
        assert_eq!(classify(Attempt::Other, 3), FailureReason::Other);
        let labels: Vec<&str> = FailureReason::ALL.iter().map(|r| r.label()).collect();
        assert_eq!(
            labels,
            ["refused", "no_reply", "no_open", "md5_mismatch", "other"]
        );
        for (i, r) in FailureReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }

    #[test]
    fn messages_name_the_peer_and_point_at_the_password_only_when_it_can_be_the_cause() {
        let peer: IpAddr = "198.18.0.1".parse().unwrap();
        let t = Duration::from_secs(10);
        let with_password = explain(Attempt::NoHandshake(t), 0, peer, true, "timed out");
        assert_eq!(
            with_password,
            "no BGP reply from 198.18.0.1: check that both sides use the same TCP-MD5 password (the TCP \
             handshake got no answer in 10s; a peer with another password drops our SYNs silently), and that \
             the peer is up and reachable"
        );
        let without = explain(Attempt::NoHandshake(t), 0, peer, false, "timed out");
        assert!(
            without.starts_with("no reply from 198.18.0.1: the TCP handshake got no answer in 10s"),
            "{without}"
        );
        assert!(
            explain(Attempt::NoOpen(Duration::from_secs(240)), 0, peer, false, "")
                .starts_with("no BGP reply from 198.18.0.1: TCP connected but no OPEN arrived in 240s; check that both sides use the same TCP-MD5 password"),
        );
        assert_eq!(
            explain(Attempt::NoHandshake(t), 3, peer, false, ""),
            "no BGP reply from 198.18.0.1: check that both sides use the same TCP-MD5 password (the kernel \
             dropped 3 TCP segment(s) with a missing or wrong TCP-MD5 signature meanwhile)"
        );
        assert!(
            explain(Attempt::Refused, 0, peer, true, "")
                .starts_with("connection to 198.18.0.1 refused:")
        );
        assert_eq!(
            explain(Attempt::Other, 0, peer, true, "no route to host"),
            "no route to host"
        );
    }
}

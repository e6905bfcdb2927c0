//! Flags shared by `ferrolb bgp check` and `ferrolb bgp announce`, and their parsers.

use clap::Args;
use ferrolb_bgp::fsm::{FsmConfig, LocalAs};
use ferrolb_bgp::session::{SessionConfig, TcpOptions};
use ferrolb_bgp::wire::PeerAs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// How to reach the router and who we are.
#[derive(Debug, Clone, Args)]
pub struct SessionArgs {
    /// The router's address (or `--interface` for an unnumbered router).
    #[arg(
        long,
        required_unless_present = "interface",
        conflicts_with = "interface"
    )]
    pub peer: Option<IpAddr>,
    /// Unnumbered peering: the router is the one sending IPv6 router advertisements on this
    /// interface; connect to its link-local address, and send IPv4 routes with an IPv6 next hop
    /// (RFC 8950 extended next hop).
    #[arg(long)]
    pub interface: Option<String>,
    /// Bind the session's socket to this device (`SO_BINDTODEVICE`), e.g. a VRF device.
    #[arg(long, conflicts_with = "interface")]
    pub bind_device: Option<String>,
    /// The router's AS number, or `internal` / `external`: any AS of that kind, learned from its OPEN.
    #[arg(long, value_parser = parse_peer_as)]
    pub peer_asn: PeerAs,
    /// Our AS number.
    #[arg(long)]
    pub my_asn: u32,
    /// Present this AS to the router instead of `--my-asn` (RFC 7705 local AS).
    #[arg(long)]
    pub local_asn: Option<u32>,
    /// With `--local-asn`: our routes carry only the local AS, not `--my-asn` after it.
    #[arg(long, requires = "local_asn")]
    pub replace_as: bool,
    /// The router's BGP port.
    #[arg(long, default_value_t = 179)]
    pub peer_port: u16,
    /// The local address to connect from.
    #[arg(long)]
    pub source: Option<IpAddr>,
    /// TCP-MD5 password (RFC 2385). `Debug` shows it redacted.
    #[arg(long, env = "FERROLB_BGP_PASSWORD", hide_env_values = true)]
    pub password: Option<ferrolb_config::Password>,
    /// How long to wait for the TCP connection (and, for `check`, for the whole exchange).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Hold time to propose: 0, or at least 3s.
    #[arg(long, default_value = "90s", value_parser = parse_hold_time)]
    pub hold_time: Duration,
    /// Our BGP identifier (default: the session's local IPv4 address).
    #[arg(long)]
    pub router_id: Option<Ipv4Addr>,
    /// eBGP multihop: the TTL of our packets (default 255, single hop).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..))]
    pub ebgp_multihop: Option<u8>,
}

impl SessionArgs {
    /// The session configuration these flags describe.
    pub fn session_config(&self) -> SessionConfig {
        let mut fsm = FsmConfig::new(self.my_asn, self.peer_asn);
        fsm.router_id = self.router_id;
        fsm.local_as = self.local_asn.map(|asn| LocalAs {
            asn,
            replace_as: self.replace_as,
        });
        fsm.hold_time = u16::try_from(self.hold_time.as_secs()).unwrap_or(u16::MAX);
        fsm.extended_next_hop = self.interface.is_some();
        // With `--interface` the address is found on the link before each attempt.
        let peer = self.peer.unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        SessionConfig {
            tcp: TcpOptions {
                peer: SocketAddr::new(peer, self.peer_port),
                source: self.source,
                password: self.password.as_deref().map(str::to_owned),
                ttl: self.ebgp_multihop.unwrap_or(255),
                connect_timeout: self.timeout,
                bind_device: self.interface.clone().or_else(|| self.bind_device.clone()),
                peer_on_link: self.interface.is_some(),
            },
            fsm,
            state_dir: None,
            next_hop_v6: None,
            next_hop_v4: None,
        }
    }
}

/// Parses `10s`, `500ms`, `2m`, `1h`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (num, unit) = text.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 10s, 500ms or 2m"))?;
    let scale = match unit {
        "" | "s" => 1.0,
        "ms" => 0.001,
        "m" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {text:?} (use ms, s, m or h)"
            ));
        }
    };
    Duration::try_from_secs_f64(value * scale).map_err(|e| format!("{text:?}: {e}"))
}

/// Parses a peer AS: a number from 1 to 4294967295, `internal` or `external`.
pub fn parse_peer_as(text: &str) -> Result<PeerAs, String> {
    match text {
        "internal" => Ok(PeerAs::Internal),
        "external" => Ok(PeerAs::External),
        _ => match text.parse::<u32>() {
            Ok(asn) if asn > 0 => Ok(PeerAs::Exact(asn)),
            _ => Err(format!(
                "{text:?} is not an AS number (1 to 4294967295), `internal` or `external`"
            )),
        },
    }
}

/// Parses a hold time: 0 or at least 3 seconds, at most 65535.
pub fn parse_hold_time(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    let secs = d.as_secs();
    if d.subsec_nanos() != 0 || secs == 1 || secs == 2 || secs > 65535 {
        return Err(format!(
            "hold time {text:?} must be 0 or a whole number of seconds from 3 to 65535"
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("7 parsecs").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn peer_as_is_a_number_or_a_kind() {
        assert_eq!(parse_peer_as("64512"), Ok(PeerAs::Exact(64512)));
        assert_eq!(parse_peer_as("internal"), Ok(PeerAs::Internal));
        assert_eq!(parse_peer_as("external"), Ok(PeerAs::External));
        assert!(parse_peer_as("0").is_err());
        assert!(parse_peer_as("4294967296").is_err());
        assert!(parse_peer_as("ebgp").is_err());
    }

    #[test]
    fn hold_time_is_zero_or_at_least_three() {
        assert_eq!(parse_hold_time("0"), Ok(Duration::ZERO));
        assert_eq!(parse_hold_time("3s"), Ok(Duration::from_secs(3)));
        assert!(parse_hold_time("2s").is_err());
        assert!(parse_hold_time("1").is_err());
        assert!(parse_hold_time("3500ms").is_err());
        assert!(parse_hold_time("70000").is_err());
    }
}

//! `ferrolb bgp announce`: keep a session and announce prefixes until SIGINT/SIGTERM.
//!
//! SIGHUP re-reads `--prefix-file` and sends only the difference (the way to test withdrawals).

use super::args::{SessionArgs, parse_duration};
use clap::Args;
use ferrolb_bgp::fsm::GracefulRestartConfig;
use ferrolb_bgp::rib_out::{AsPathPrepend, Attributes};
use ferrolb_bgp::session::{DesiredRoutes, Session, StopMode};
use ferrolb_bgp::wire::LargeCommunity;
use ferrolb_config::CommunityValue;
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{error, info};

/// Flags of `ferrolb bgp announce`.
#[derive(Debug, Args)]
pub struct AnnounceArgs {
    #[command(flatten)]
    session: SessionArgs,
    /// A prefix to announce (repeatable); a bare address means /32 or /128.
    #[arg(long, value_parser = parse_prefix)]
    prefix: Vec<IpNet>,
    /// A file of prefixes, one per line (`#` starts a comment); re-read on SIGHUP.
    #[arg(long)]
    prefix_file: Option<PathBuf>,
    /// LOCAL_PREF (iBGP only; default 100).
    #[arg(long)]
    local_pref: Option<u32>,
    /// MULTI_EXIT_DISC.
    #[arg(long)]
    med: Option<u32>,
    /// A standard community `a:b` (repeatable).
    #[arg(long, value_parser = parse_standard_community)]
    community: Vec<u32>,
    /// A large community `a:b:c` (repeatable).
    #[arg(long, value_parser = parse_large_community)]
    large_community: Vec<LargeCommunity>,
    /// AS_PATH prepending `ASN:COUNT` (COUNT 1 to 10): COUNT copies of ASN after our own AS.
    #[arg(long, value_parser = parse_as_path_prepend)]
    as_path_prepend: Option<AsPathPrepend>,
    /// Graceful restart time in seconds to advertise (0: no graceful restart capability).
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u16).range(0..=4095))]
    graceful_restart: u16,
    /// Where the graceful-restart record is kept (decides the R bit after a restart).
    #[arg(long, default_value = "/run/ferrolb")]
    state_dir: PathBuf,
    /// NEXT_HOP for IPv4 prefixes (default: the session's local address, or an IPv4 address
    /// on the session's interface).
    #[arg(long)]
    next_hop_v4: Option<Ipv4Addr>,
    /// Global IPv6 next hop for IPv6 prefixes (default: the session's, or a global address
    /// on the session's interface).
    #[arg(long)]
    next_hop_v6: Option<Ipv6Addr>,
    /// First connect-retry delay; it doubles per failure up to a minute.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    connect_retry: Duration,
}

/// Runs the announcer until SIGINT/SIGTERM.
pub async fn run(args: AnnounceArgs) -> ExitCode {
    match announce(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            eprintln!("bgp announce: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn announce(args: AnnounceArgs) -> Result<(), String> {
    let mut config = args.session.session_config();
    config.fsm.graceful_restart = (args.graceful_restart > 0).then_some(GracefulRestartConfig {
        restart_time: args.graceful_restart,
        restarting: false,
    });
    config.fsm.connect_retry_initial = args.connect_retry;
    config.state_dir = Some(args.state_dir.clone());
    config.next_hop_v4 = args.next_hop_v4;
    config.next_hop_v6 = args.next_hop_v6;
    let attributes = Attributes {
        local_pref: args.local_pref,
        med: args.med,
        communities: args.community.clone(),
        large_communities: args.large_community.clone(),
        extended_communities: Vec::new(),
        as_path_prepend: args.as_path_prepend,
    };
    let routes = desired(&args, &attributes)?;
    info!(peer = %config.tcp.peer, prefixes = routes.len(), "announcing");
    let mut sigint = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut sighup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
    let session = Session::spawn(config, routes);
    let why = loop {
        tokio::select! {
            _ = sigint.recv() => break "SIGINT",
            _ = sigterm.recv() => break "SIGTERM",
            _ = sighup.recv() => match desired(&args, &attributes) {
                Ok(routes) => {
                    info!(prefixes = routes.len(), "SIGHUP: prefixes re-read");
                    session.set_routes(routes);
                }
                Err(e) => error!("SIGHUP: {e}; keeping the current prefixes"),
            },
        }
    };
    info!("{why}: withdrawing and closing the session");
    session
        .stop(StopMode::Withdraw {
            communication: format!("ferrolb bgp announce stopped by {why}"),
        })
        .await;
    Ok(())
}

fn desired(args: &AnnounceArgs, attributes: &Attributes) -> Result<DesiredRoutes, String> {
    let mut prefixes = args.prefix.clone();
    if let Some(file) = &args.prefix_file {
        prefixes.extend(read_prefix_file(file)?);
    }
    let shared = Arc::new(attributes.clone());
    Ok(prefixes
        .into_iter()
        .map(|p| (p.trunc(), Arc::clone(&shared)))
        .collect())
}

/// Reads a prefix file: one prefix or address per line, `#` comments, blank lines ignored.
fn read_prefix_file(path: &Path) -> Result<Vec<IpNet>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read prefix file {}: {e}", path.display()))?;
    parse_prefix_lines(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn parse_prefix_lines(text: &str) -> Result<Vec<IpNet>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        out.push(parse_prefix(line).map_err(|e| format!("line {}: {e}", n + 1))?);
    }
    Ok(out)
}

fn parse_prefix(text: &str) -> Result<IpNet, String> {
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{text:?} is not a prefix (203.0.113.7/32) or an address"))
}

fn parse_standard_community(text: &str) -> Result<u32, String> {
    match text.parse::<CommunityValue>() {
        Ok(c) => c
            .standard_bits()
            .ok_or_else(|| format!("{text:?} is a large community; use --large-community")),
        Err(e) => Err(e.to_string()),
    }
}

fn parse_large_community(text: &str) -> Result<LargeCommunity, String> {
    match text.parse::<CommunityValue>() {
        Ok(CommunityValue::Large(global_admin, local_data1, local_data2)) => Ok(LargeCommunity {
            global_admin,
            local_data1,
            local_data2,
        }),
        Ok(_) => Err(format!("{text:?} is a standard community; use --community")),
        Err(e) => Err(e.to_string()),
    }
}

fn parse_as_path_prepend(text: &str) -> Result<AsPathPrepend, String> {
    let p: ferrolb_config::AsPathPrepend = text.parse().map_err(|e| format!("{e}"))?;
    Ok(AsPathPrepend {
        asn: p.asn,
        count: p.count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_path_prepend_is_asn_and_a_count_of_one_to_ten() {
        assert_eq!(
            parse_as_path_prepend("65000:3"),
            Ok(AsPathPrepend {
                asn: 65000,
                count: 3
            })
        );
        for bad in ["65000", "65000:0", "65000:11", "0:2", "x:2", "65000:-1"] {
            assert!(parse_as_path_prepend(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn prefix_lines_skip_comments_and_blank_lines() {
        let got = parse_prefix_lines("# pools\n203.0.113.1/32\n\n 2001:db8::5 # one\n").unwrap();
        assert_eq!(
            got,
            vec![
                "203.0.113.1/32".parse::<IpNet>().unwrap(),
                "2001:db8::5/128".parse::<IpNet>().unwrap()
            ]
        );
        let err = parse_prefix_lines("203.0.113.1/32\nnonsense\n").unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
    }

    #[test]
    fn communities_parse_into_wire_values() {
        assert_eq!(parse_standard_community("65535:65281"), Ok(0xFFFF_FF01));
        assert!(parse_standard_community("1:2:3").is_err());
        assert_eq!(
            parse_large_community("64512:1:2"),
            Ok(LargeCommunity {
                global_admin: 64512,
                local_data1: 1,
                local_data2: 2
            })
        );
        assert!(parse_large_community("1:2").is_err());
    }
}

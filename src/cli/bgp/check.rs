//! `ferrolb bgp check`.

use super::args::SessionArgs;
use clap::Args;
use ferrolb_bgp::fsm::Negotiated;
use ferrolb_bgp::session::check;
use ferrolb_bgp::wire::Capability;
use std::process::ExitCode;

/// Flags of `ferrolb bgp check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    session: SessionArgs,
}

/// Opens one session and prints what was negotiated; the reason in words on failure.
pub async fn run(args: CheckArgs) -> ExitCode {
    let config = args.session.session_config();
    let peer = config.tcp.peer;
    match check(&config, args.session.timeout).await {
        Ok(n) => {
            print!("{}", describe(&n));
            println!("closed with Cease / Administrative Shutdown");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bgp check {peer}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The negotiated session as `key: value` lines.
fn describe(n: &Negotiated) -> String {
    let c = &n.context;
    let families: Vec<String> = c.families.iter().map(ToString::to_string).collect();
    let caps: Vec<String> = n
        .peer_open
        .capabilities
        .iter()
        .map(capability_name)
        .collect();
    let gr = match &c.peer_graceful_restart {
        None => "no".to_string(),
        Some(g) => {
            let fams: Vec<String> = g
                .families
                .iter()
                .map(|f| format!("{}{}", f.family, if f.forwarding { " (F)" } else { "" }))
                .collect();
            format!(
                "restart time {} s, restarting {}, families [{}]",
                g.restart_time,
                if g.restart_state { "yes" } else { "no" },
                fams.join(", ")
            )
        }
    };
    let yes = |b: bool| if b { "yes" } else { "no" };
    format!(
        "session: established\n\
         peer router-id: {}\n\
         peer AS: {}\n\
         type: {}\n\
         local address: {}\n\
         local router-id: {}\n\
         hold time: {} s (keepalive {} s)\n\
         families: {}\n\
         4-octet AS: {}\n\
         route refresh: {}\n\
         extended message: {}\n\
         graceful restart: {}\n\
         peer capabilities: {}\n",
        c.peer_bgp_id,
        c.peer_asn,
        if c.ibgp { "iBGP" } else { "eBGP" },
        n.local_addr,
        n.local_bgp_id,
        c.hold_time,
        n.keepalive.as_secs(),
        families.join(", "),
        yes(c.four_octet_as),
        yes(c.route_refresh),
        yes(c.extended_message),
        gr,
        caps.join(", "),
    )
}

fn capability_name(c: &Capability) -> String {
    match c {
        Capability::Multiprotocol(f) => format!("multiprotocol {f}"),
        Capability::RouteRefresh => "route refresh".into(),
        Capability::FourOctetAs(asn) => format!("4-octet AS {asn}"),
        Capability::GracefulRestart(_) => "graceful restart".into(),
        Capability::ExtendedMessage => "extended message".into(),
        Capability::ExtendedNextHop(tuples) => {
            let tuples: Vec<String> = tuples
                .iter()
                .map(|t| format!("{}/{} via AFI {}", t.nlri_afi, t.nlri_safi, t.next_hop_afi))
                .collect();
            format!("extended next hop {}", tuples.join(" "))
        }
        Capability::Unknown { code, .. } => format!("code {code}"),
    }
}

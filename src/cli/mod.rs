//! Command-line interface: one module per subcommand.

mod bgp;
mod config;
mod crds;
mod status;

use crate::logging::LogFormat;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// ferrolb: a BGP load balancer for bare-metal Kubernetes.
#[derive(Debug, Parser)]
#[command(name = "ferrolb", version, about)]
pub struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a configuration (the ConfigMap's `data.config`, or the whole ConfigMap).
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Talk BGP to a router: check a session, or announce prefixes.
    #[command(subcommand)]
    Bgp(bgp::BgpCommand),
    /// Print the definitions of MetalLB's custom resources (metallb.io) that ferrolb reads, as YAML
    /// (`--ferrolb`: ferrolb's own, ferrolb.io).
    Crds(crds::CrdsArgs),
    /// Assign LoadBalancer Service addresses from the configured pools (Kubernetes controller).
    Controller(crate::controller::ControllerArgs),
    /// Announce Service IPs from this node to the BGP peers that select it (one per node).
    Speaker(Box<crate::speaker::SpeakerArgs>),
    /// Print per LoadBalancer Service its addresses, the nodes that announce it and why the others do not, and
    /// per node its BGP sessions (reads only Services, EndpointSlices and BGPSessionStatus objects).
    Status(status::StatusArgs),
    /// Make the API servers highly available: announce an address over BGP from this control-plane node while
    /// its API server is ready (no Kubernetes API used; one per control-plane node).
    ControlPlaneVip(crate::control_plane_vip::ControlPlaneVipArgs),
}

impl Cli {
    /// Runs the chosen subcommand and returns the process exit code.
    pub async fn run(self) -> ExitCode {
        match self.command {
            Command::Config(cmd) => cmd.run(),
            Command::Bgp(cmd) => cmd.run().await,
            Command::Crds(args) => args.run(),
            Command::Controller(args) => args.run().await,
            Command::Speaker(args) => args.run().await,
            Command::ControlPlaneVip(args) => args.run().await,
            Command::Status(args) => args.run().await,
        }
    }
}

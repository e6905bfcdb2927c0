//! `ferrolb bgp ...`: talk BGP to a router without Kubernetes, thin over `ferrolb-bgp`.

mod announce;
mod args;
mod check;

use clap::Subcommand;
use std::process::ExitCode;

/// BGP subcommands.
#[derive(Debug, Subcommand)]
pub enum BgpCommand {
    /// Open a session to a router, print what was negotiated, and close it with a Cease.
    Check(check::CheckArgs),
    /// Keep a session to a router and announce prefixes until SIGINT/SIGTERM.
    Announce(Box<announce::AnnounceArgs>),
}

impl BgpCommand {
    /// Runs the subcommand.
    pub async fn run(self) -> ExitCode {
        match self {
            BgpCommand::Check(args) => check::run(args).await,
            BgpCommand::Announce(args) => announce::run(*args).await,
        }
    }
}

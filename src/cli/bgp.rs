//! `ferrolb bgp ...`.

use clap::Subcommand;
use std::process::ExitCode;

/// BGP subcommands.
#[derive(Debug, Subcommand)]
pub enum BgpCommand {
    /// Open a session to a router, print what was negotiated, and close it.
    Check,
}

impl BgpCommand {
    /// Runs the subcommand.
    pub async fn run(self) -> ExitCode {
        eprintln!("bgp: not implemented yet");
        ExitCode::FAILURE
    }
}

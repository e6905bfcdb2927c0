//! `ferrolb`: a BGP load balancer for bare-metal Kubernetes.
//!
//! This binary is CLI and Kubernetes glue only; the protocol, the allocator and the
//! configuration model live in the crates under `crates/`.

mod cli;
mod cluster_args;
mod config_source;
mod control_plane_vip;
mod controller;
mod crds;
mod event_recorder;
mod logging;
#[cfg(test)]
mod safe_defaults_tests;
mod serve;
mod service_filter;
mod speaker;
mod watch;

use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    logging::init(cli.log_format);
    cli.run().await
}

//! `ferrolb speaker`: announces each Service IP from exactly the nodes that can serve it. One per node.
//!
//! - [`translate`]: Kubernetes objects → the announce decision's plain inputs; [`views`]: the compact copies of
//!   Services and EndpointSlices the stores keep;
//! - [`peers`]: configuration → one BGP session per selected peer, and what to restart on a change;
//! - [`netlink`]: source-address discovery and the VIP interface (rtnetlink); [`vip_set`]: which VIPs it holds
//!   (withdrawn ones linger briefly);
//! - [`metrics`]: the Prometheus metrics; [`session_traffic`]: the per-peer UPDATE counters, read at scrape time;
//! - [`reflectors`]: the watches into stores of views or stripped objects; [`run`]: the coalescing loop, sessions and shutdown;
//!   [`status_metrics`]: the sessions' status into metrics; [`events`]: the rate-limited Events;
//! - [`explain`]: `--explain ns/name`, one-shot; [`explain_http`]: the same as `GET /explain` on the metrics port.

pub mod events;
pub mod explain;
pub mod explain_http;
pub mod incremental;
pub mod metrics;
pub mod netlink;
pub mod peers;
pub mod reflectors;
pub mod run;
pub mod session_traffic;
pub mod status_metrics;
pub mod touched;
pub mod translate;
pub mod views;
pub mod vip_set;

use crate::cluster_args::ClusterArgs;
use clap::Args;
use reflectors::Coalescer;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Options of `ferrolb speaker`.
#[derive(Debug, Clone, Args)]
pub struct SpeakerArgs {
    /// This node's Kubernetes name (in a DaemonSet: `spec.nodeName` through the downward API).
    #[arg(long, env = "NODE_NAME")]
    pub node_name: String,
    /// The ConfigMap and the Service class.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Address for `/metrics`, `/healthz`, `/readyz` and `/explain`.
    #[arg(long, default_value = "0.0.0.0:7472")]
    pub metrics_addr: SocketAddr,
    /// Keep exactly the announced VIPs on this interface (created as a dummy interface when absent).
    #[arg(long)]
    pub vip_interface: Option<String>,
    /// Do not offer graceful restart: on SIGTERM, withdraw and close with Cease.
    #[arg(long)]
    pub no_graceful_restart: bool,
    /// Graceful-restart time advertised, in seconds.
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u16).range(1..=4095))]
    pub graceful_restart_time: u16,
    /// Where the graceful-restart records live (must survive a restart of the process).
    #[arg(long, default_value = "/run/ferrolb")]
    pub state_dir: PathBuf,
    /// An event at least this long after the last decision is decided at once; under load, the shortest time
    /// between two decisions (the events in between are decided together). 0: every event at once. At most 20 ms.
    #[arg(long, default_value = "10", value_parser = clap::value_parser!(u64).range(0..=20))]
    pub coalesce_ms: u64,
    /// Under sustained load the time between two decisions doubles from `--coalesce-ms` up to this, so that one
    /// UPDATE carries many prefixes; a quiet spell as long brings it back to "at once". At most 1000 ms.
    #[arg(long, default_value = "250", value_parser = clap::value_parser!(u64).range(0..=1000))]
    pub coalesce_max_ms: u64,
    /// Print why this node does or does not announce the Service `namespace/name`, then exit.
    #[arg(long, value_name = "NAMESPACE/NAME")]
    pub explain: Option<String>,
}

impl SpeakerArgs {
    /// When to decide on events (`--coalesce-ms`, `--coalesce-max-ms`).
    pub fn coalescer(&self) -> Coalescer {
        Coalescer::new(
            Duration::from_millis(self.coalesce_ms),
            Duration::from_millis(self.coalesce_max_ms),
        )
    }

    /// Runs the speaker until SIGTERM/SIGINT (or prints an explanation and exits).
    pub async fn run(self) -> ExitCode {
        let result = match self.explain.clone() {
            Some(key) => explain::run(&self, &key).await,
            None => run::run(self).await,
        };
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                tracing::error!(error = format!("{err:#}"), "speaker stopped");
                eprintln!("ferrolb speaker: {err:#}");
                ExitCode::FAILURE
            }
        }
    }
}

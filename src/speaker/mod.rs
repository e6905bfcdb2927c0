//! `ferrolb speaker`: announces each Service IP from exactly the nodes that can serve it. One per node.
//!
//! - [`translate`]: Kubernetes objects → the announce decision's plain inputs; [`views`]: the compact copies of
//!   Services and EndpointSlices the stores keep;
//! - [`peers`]: configuration → one BGP session per selected peer, and what to restart on a change;
//! - [`netlink`]: source-address discovery and the VIP interface (rtnetlink); [`vip_set`]: which VIPs it holds
//!   (withdrawn ones linger briefly);
//! - [`metrics`]: the Prometheus metrics, labelled with [`metric_labels`]; [`session_traffic`]: the per-peer UPDATE counters, read at scrape time;
//! - [`reflectors`]: the watches into stores of views or stripped objects; [`run`]: the coalescing loop, sessions and shutdown;
//!   [`status_metrics`]: the sessions' status into metrics; [`events`]: the rate-limited Events;
//! - [`explain`]: `--explain ns/name`, one-shot; [`explain_http`]: the same as `GET /explain` on the metrics port;
//! - [`session_status`]: the `BGPSessionStatus` objects of this node's sessions.

pub mod events;
pub mod explain;
pub mod explain_http;
pub mod incremental;
pub mod metric_labels;
pub mod metrics;
pub mod netlink;
pub mod peers;
pub mod reflectors;
pub mod run;
pub mod service_announced;
pub mod session_status;
pub mod session_traffic;
pub mod status_metrics;
pub mod store;
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
    /// Address for `/metrics`, `/healthz`, `/readyz` and `/explain`: `IP:PORT`, an IPv6 address with or without
    /// brackets. Loopback by default; the manifests pass `$(POD_IP):7472` (the node's address: hostNetwork).
    #[arg(long, default_value = crate::serve::DEFAULT_METRICS_ADDR, value_parser = crate::serve::parse_listen_addr)]
    pub metrics_addr: SocketAddr,
    /// Keep exactly the announced VIPs on this interface (created as a dummy interface when absent).
    #[arg(long)]
    pub vip_interface: Option<String>,
    /// Do not serve `GET /explain` (it then answers 404): it tells whoever reaches the metrics port which
    /// Services this node announces and why. `--explain ns/name` still works.
    #[arg(long)]
    pub no_explain_endpoint: bool,
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
    /// Write one `BGPSessionStatus` object per configured peer of this node (`kubectl get bgpsessionstatus`);
    /// `--session-status=false` writes none.
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL", action = clap::ArgAction::Set)]
    pub session_status: bool,
    /// The namespace of the `BGPSessionStatus` objects: the speaker's own (in a DaemonSet, `metadata.namespace`
    /// through the downward API).
    #[arg(long, env = "POD_NAMESPACE", default_value = "ferrolb-system")]
    pub session_status_namespace: String,
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

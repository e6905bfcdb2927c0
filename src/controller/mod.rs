//! `ferrolb controller`: assigns addresses to LoadBalancer Services and writes them to their status.
//!
//! - [`service`]: a Service → whether it is ours, its allocation request, the addresses its status shows;
//! - [`view`]: what the controller keeps of each Service (a projection, not the object);
//! - [`status`]: the desired status (ingress + `ferrolb.io/AddressAssigned` condition) and the patch to get there;
//! - [`state`]: the pure reconcile over the cached Services and ConfigMap, rebuilt from statuses after every
//!   re-list and leader change;
//! - [`attributes`]: the `ferrolb.io/BGPAttributesAccepted` condition from the pool's attribute policy;
//! - [`events`]: Event publishing off the write path (warnings always, routine notices rate-limited);
//! - [`leader`]: Lease-based leader election, the pure part (decisions, durations, the leader's tenure);
//! - [`election`]: the election loop on the API server, every Lease call bounded; released on SIGTERM/SIGINT;
//! - [`metrics`]: the Prometheus metrics;
//! - [`pool_status`]: `IPAddressPool.status` counters (with MetalLB's CRDs as the configuration source);
//! - [`run`]: the watchers and the writer that tie them together.

pub mod attributes;
pub mod election;
pub mod events;
pub mod leader;
pub mod metrics;
pub mod pool_status;
pub mod run;
pub mod service;
pub mod state;
pub mod status;
pub mod view;

use crate::cluster_args::ClusterArgs;
use clap::Args;
use std::net::SocketAddr;
use std::process::ExitCode;

/// Options of `ferrolb controller`.
#[derive(Debug, Clone, Args)]
pub struct ControllerArgs {
    /// The ConfigMap and the Service class.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Watch Services in this namespace only (default: all namespaces).
    #[arg(long)]
    pub namespace: Option<String>,
    /// Address for `/metrics`, `/healthz` and `/readyz`: `IP:PORT`, an IPv6 address with or without brackets.
    /// Loopback by default; the manifests pass `$(POD_IP):7472`.
    #[arg(long, default_value = crate::serve::DEFAULT_METRICS_ADDR, value_parser = crate::serve::parse_listen_addr)]
    pub metrics_addr: SocketAddr,
    /// Name of the leader-election Lease (in the config namespace).
    #[arg(long, default_value = "ferrolb-controller")]
    pub lease_name: String,
    /// This replica's identity in the Lease (default: `$POD_NAME`, else the host name and process id).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Seconds a Lease stays valid without renewal (`leaseDurationSeconds`); a standby takes over after it saw
    /// the Lease unchanged for this long.
    #[arg(long, default_value_t = 15)]
    pub lease_duration_secs: u64,
    /// Seconds a leader that cannot renew keeps writing, counted from the start of its last successful renewal;
    /// then it stops. Must be below `--lease-duration-secs`.
    #[arg(long, default_value_t = 10)]
    pub lease_renew_deadline_secs: u64,
    /// Seconds between Lease renewals (and reads, on a standby). Must be below `--lease-renew-deadline-secs`.
    #[arg(long, default_value_t = 2)]
    pub lease_retry_secs: u64,
    /// Seconds after which a Lease call (read or write) without an answer counts as failed; a call is also cut
    /// off at the renew deadline.
    #[arg(long, default_value_t = 2)]
    pub lease_request_timeout_secs: u64,
}

impl ControllerArgs {
    /// Runs the controller until it fails.
    pub async fn run(self) -> ExitCode {
        match run::run(self).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                tracing::error!(error = format!("{err:#}"), "controller stopped");
                ExitCode::FAILURE
            }
        }
    }
}

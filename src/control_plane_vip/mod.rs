//! `ferrolb control-plane-vip --config FILE`: makes the API servers highly available over BGP, with no
//! Kubernetes API at all. Each control-plane node checks its own API server (`/readyz`); after `rise` successes
//! it adds the addresses to a local interface and announces them to its peers (ECMP, or with a MED from its
//! priority in active-backup mode); after `fall` failures it withdraws them (the addresses stay on the
//! interface so connections in flight drain). On SIGTERM or SIGINT: withdraw, wait `drain-time`, close the
//! sessions with Cease, remove the addresses, exit 0.
//!
//! - [`gate`]: the rise/fall state machine; [`sessions`]: the session configurations and routes (pure);
//! - [`health`]: the HTTPS check; [`metrics`]: the Prometheus metrics; this module: the I/O loop.

pub mod gate;
pub mod health;
pub mod listen;
pub mod metrics;
pub mod sessions;

use crate::serve::{self, Readiness};
use crate::speaker::metrics::PeerLabels;
use crate::speaker::netlink::{self, VipInterface};
use crate::speaker::peers::Discovered;
use anyhow::Context;
use clap::Args;
use ferrolb_bgp::fsm::State;
use ferrolb_bgp::session::{DesiredRoutes, Session, StopMode, bfd_up_signal};
use ferrolb_config::{ControlPlaneVip, VipMode};
use gate::Gate;
use health::Checker;
use metrics::{ResultLabels, VipMetrics};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Options of `ferrolb control-plane-vip`.
#[derive(Debug, Clone, Args)]
pub struct ControlPlaneVipArgs {
    /// The control-plane-vip file (YAML; check it with `ferrolb config check --kind control-plane-vip`).
    #[arg(long)]
    pub config: PathBuf,
}

impl ControlPlaneVipArgs {
    /// Runs until SIGTERM or SIGINT; exits 1 on a bad file or when the node cannot be set up.
    pub async fn run(self) -> ExitCode {
        match run(self).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                tracing::error!(error = format!("{err:#}"), "control-plane-vip stopped");
                ExitCode::FAILURE
            }
        }
    }
}

/// One peer's running session, and the BFD session guarding it.
struct Peer {
    label: String,
    session: Session,
    monitor: JoinHandle<()>,
    bfd: Option<(ferrolb_bfd::SessionHandle, JoinHandle<()>)>,
}

async fn run(args: ControlPlaneVipArgs) -> anyhow::Result<()> {
    let path = args.config.display().to_string();
    let text =
        std::fs::read_to_string(&args.config).with_context(|| format!("cannot read {path}"))?;
    let file = ControlPlaneVip::from_yaml(&text).map_err(|errors| {
        let lines: Vec<String> = errors
            .errors()
            .iter()
            .map(|e| format!("{path}: {e}"))
            .collect();
        anyhow::anyhow!("invalid configuration:\n{}", lines.join("\n"))
    })?;
    let checker = Checker::new(&file.health_check).context("cannot set up the health check")?;
    let (metrics, registry) = VipMetrics::registered();
    let readiness = Readiness::new();
    let bound = serve::spawn(file.metrics_addr, Arc::new(registry), readiness.clone()).await?;
    let mut sigterm = signal(SignalKind::terminate()).context("cannot catch SIGTERM")?;
    let mut sigint = signal(SignalKind::interrupt()).context("cannot catch SIGINT")?;
    let handle = netlink::connect()?;
    let vip = VipInterface::open(handle.clone(), &file.interface)
        .await
        .with_context(|| format!("cannot set up the interface {}", file.interface))?;
    let (mode, priority, med) = match file.mode {
        VipMode::Ecmp => ("ecmp", None, None),
        VipMode::ActiveBackup { priority } => ("active-backup", Some(priority), file.mode.med()),
    };
    tracing::info!(%bound, addresses = ?file.addresses, mode, ?priority, ?med, interface = vip.name(),
        url = %file.health_check.url, rise = file.health_check.rise, fall = file.health_check.fall,
        "control-plane-vip starting; withdrawn until the API server is healthy");

    let mut endpoints = BTreeMap::new();
    let mut peers = Vec::new();
    for p in &file.peers {
        let found = if p.source_address.is_none() || p.router_id.is_none() {
            netlink::discover(&handle, p.peer_address)
                .await
                .unwrap_or_else(|err| {
                    tracing::warn!(peer = %p.peer_address, error = %err, "cannot look up the route toward the peer");
                    Discovered::default()
                })
        } else {
            Discovered::default()
        };
        let config = sessions::session_config(p, found);
        let label = ferrolb_announce::PeerKey {
            address: p.peer_address,
            port: p.peer_port,
            device: None,
        }
        .to_string();
        let routes = Arc::new(DesiredRoutes::new());
        let (session, bfd) = match sessions::bfd_profile(&file, p) {
            None => (Session::spawn(config, routes), None),
            Some(profile) => {
                let local = config.tcp.source.with_context(|| {
                    format!(
                        "BFD with {label}: no source address toward the peer (set source-address)"
                    )
                })?;
                let endpoint = match endpoints.entry(local) {
                    std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::btree_map::Entry::Vacant(e) => e.insert(
                        ferrolb_bfd::Endpoint::bind(local)
                            .with_context(|| format!("BFD on {local}"))?,
                    ),
                };
                let handle = endpoint
                    .add_session(p.peer_address, &profile)
                    .with_context(|| format!("BFD with {label}"))?;
                let up = bfd_up_signal(handle.watch(), |s: &ferrolb_bfd::SessionStatus| {
                    s.state == ferrolb_bfd::State::Up
                });
                let monitor = tokio::spawn(follow(
                    up.clone(),
                    label.clone(),
                    "BFD",
                    metrics.bfd_up.clone(),
                ));
                (
                    Session::spawn_with_bfd(config, routes, up),
                    Some((handle, monitor)),
                )
            }
        };
        let established = established_signal(session.status());
        let monitor = tokio::spawn(follow(
            established,
            label.clone(),
            "BGP",
            metrics.session_up.clone(),
        ));
        tracing::info!(peer = %label, bfd = bfd.is_some(), "session started (graceful restart off)");
        peers.push(Peer {
            label,
            session,
            monitor,
            bfd,
        });
    }

    let check = &file.health_check;
    let healthy_routes = Arc::new(sessions::routes(&file.addresses, med));
    let addresses: BTreeSet<IpAddr> = file.addresses.iter().copied().collect();
    let mut gate = Gate::new(check.rise, check.fall);
    let mut announced = false;
    let mut last_ok: Option<bool> = None;
    let mut ticker = tokio::time::interval(check.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut probe = check.listen_probe.map(|every| {
        let port = checker.port();
        tracing::info!(port, every = ?every, "listen probe on: nothing listening on the port withdraws at once");
        let mut probe = tokio::time::interval(every);
        probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        (probe, port)
    });
    let why = loop {
        let tick = tokio::select! {
            _ = ticker.tick() => Tick::Check,
            _ = next_probe(&mut probe) => Tick::Probe,
            _ = sigterm.recv() => break "SIGTERM",
            _ = sigint.recv() => break "SIGINT",
        };
        let change = match tick {
            Tick::Check => {
                let result = checker.check().await;
                let ok = result.is_ok();
                if last_ok != Some(ok) {
                    match &result {
                        Ok(()) => tracing::info!(url = %check.url, "health check passes"),
                        Err(err) => {
                            tracing::warn!(url = %check.url, error = %err, "health check fails")
                        }
                    }
                    last_ok = Some(ok);
                }
                count_check(&metrics, if ok { "success" } else { "failure" });
                gate.record(ok)
            }
            Tick::Probe => {
                let Some((_, port)) = probe else { continue };
                match listen::listens_on(port) {
                    Ok(true) => continue,
                    Ok(false) if gate.healthy() => {
                        tracing::warn!(
                            port,
                            "nothing listens on the API server's port (the process is gone): withdrawing at once"
                        );
                        count_check(&metrics, "not-listening");
                        gate.down_now()
                    }
                    Ok(false) => continue,
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot read this node's socket tables: listen probe off, the health check alone decides");
                        probe = None;
                        continue;
                    }
                }
            }
        };
        if let Some(healthy) = change {
            tracing::info!(
                healthy,
                successes = gate.successes(),
                failures = gate.failures(),
                "health gate {}",
                if healthy {
                    "up: announcing"
                } else {
                    "down: withdrawing"
                }
            );
        }
        metrics.healthy.set(i64::from(gate.healthy()));
        metrics.successes.set(i64::from(gate.successes()));
        metrics.failures.set(i64::from(gate.failures()));
        if gate.healthy() && !announced {
            // The address first, so the API server accepts what the router sends once it is announced.
            match vip.sync(&addresses).await {
                Ok(_) => {
                    set_routes(&peers, healthy_routes.clone());
                    announced = true;
                    tracing::info!(addresses = ?file.addresses, ?med, "announced");
                }
                Err(err) => {
                    tracing::error!(error = %err, "cannot add the addresses to the interface; not announcing (retrying)")
                }
            }
        } else if !gate.healthy() && announced {
            set_routes(&peers, Arc::new(DesiredRoutes::new()));
            announced = false;
            tracing::info!(addresses = ?file.addresses, "withdrawn; the addresses stay on the interface so connections in flight drain");
        }
        metrics.announced.set(i64::from(announced));
        readiness.set(announced);
    };
    shutdown(why, &file, peers, &vip, announced, &metrics).await;
    Ok(())
}

/// What woke the loop.
enum Tick {
    /// Time for the HTTP health check.
    Check,
    /// Time for the listen probe.
    Probe,
}

/// The next listen-probe tick; never, when the probe is off.
async fn next_probe(probe: &mut Option<(tokio::time::Interval, u16)>) {
    match probe {
        Some((interval, _)) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

fn count_check(metrics: &VipMetrics, result: &'static str) {
    metrics.checks.get_or_create(&ResultLabels { result }).inc();
}

fn set_routes(peers: &[Peer], routes: Arc<DesiredRoutes>) {
    for p in peers {
        p.session.set_routes(routes.clone());
    }
}

/// Withdraw, drain, Cease, BFD AdminDown, remove the addresses.
async fn shutdown(
    why: &str,
    file: &ControlPlaneVip,
    peers: Vec<Peer>,
    vip: &VipInterface,
    announced: bool,
    metrics: &VipMetrics,
) {
    if announced {
        set_routes(&peers, Arc::new(DesiredRoutes::new()));
        metrics.announced.set(0);
        tracing::info!(signal = why, drain = ?file.drain_time, "withdrawn; draining before closing the sessions");
        tokio::time::sleep(file.drain_time).await;
    } else {
        tracing::info!(signal = why, "stopping (nothing was announced)");
    }
    let communication = format!("ferrolb control-plane-vip stopped by {why}");
    let stops = peers.into_iter().map(|p| {
        let communication = communication.clone();
        async move {
            p.monitor.abort();
            p.session.stop(StopMode::Withdraw { communication }).await;
            if let Some((handle, monitor)) = p.bfd {
                monitor.abort();
                handle.shutdown().await;
            }
            tracing::info!(peer = %p.label, "session closed");
        }
    });
    futures::future::join_all(stops).await;
    match vip.sync(&BTreeSet::new()).await {
        Ok((_, removed)) => tracing::info!(interface = vip.name(), removed, "addresses removed"),
        Err(err) => {
            tracing::warn!(interface = vip.name(), error = %err, "cannot remove the addresses")
        }
    }
}

/// True while the BGP session is Established.
fn established_signal(
    status: watch::Receiver<ferrolb_bgp::session::SessionStatus>,
) -> watch::Receiver<bool> {
    bfd_up_signal(status, |s: &ferrolb_bgp::session::SessionStatus| {
        s.state == State::Established
    })
}

/// Follows an up/down signal: logs each change and keeps the per-peer gauge current.
async fn follow(
    mut up: watch::Receiver<bool>,
    peer: String,
    what: &'static str,
    gauge: prometheus_client::metrics::family::Family<
        PeerLabels,
        prometheus_client::metrics::gauge::Gauge,
    >,
) {
    let labels = PeerLabels { peer: peer.clone() };
    let mut last = None;
    loop {
        let now = *up.borrow_and_update();
        gauge.get_or_create(&labels).set(i64::from(now));
        if last.is_some_and(|l| l != now) || (last.is_none() && now) {
            tracing::info!(peer, "{what} session {}", if now { "up" } else { "down" });
        }
        last = Some(now);
        if up.changed().await.is_err() {
            return;
        }
    }
}

//! The speaker's I/O: reflector stores of Services, EndpointSlices, this Node and the configuration (the ConfigMap,
//! or the metallb.io objects); a loop that
//! coalesces bursts of changes, recomputes the announce decision and hands each peer session its routes; the
//! VIP interface; Events; graceful shutdown.
//!
//! The stores keep their last contents while the API server is away (watchers retry with backoff forever), so
//! the speaker keeps announcing the last known state; a re-list swaps a store in one step, and the sessions'
//! Adj-RIB-Out send only what differs, so unchanged routes do not flap.

use super::SpeakerArgs;
use super::events::spawn_event_publisher;
use super::explain_http::{self, ExplainSource};
use super::incremental::{Changed, Decisions};
use super::metrics::{PeerErrorLabels, PeerLabels, SpeakerMetrics};
use super::netlink::{self, VipInterface};
use super::peers::{self, Discovered, Handover, PeerSession, SessionDefaults, TableKey};
use super::reflectors::{Pending, sleep_until_opt, spawn_reflector, stripped};
use super::session_status::{self, BfdInput, StatusWriter};
use super::status_metrics::{mark_handoff, monitor, monitor_bfd};
use super::store::{self, Store};
use super::touched::{Kind, Touched};
use super::translate;
use super::views::{NodeNames, ServiceView, SliceView};
use super::vip_set::VipSet;
use crate::config_source::SourceKind;
use crate::config_source::input::ConfigInput;
use crate::config_source::metallb;
use crate::config_source::problems::config_rejected_event;
use crate::config_source::state::{ConfigState, Outcome};
use crate::event_recorder::EventRecorder;
use crate::serve::{self, Readiness};
use anyhow::Context;
use ferrolb_announce::{AnnounceConfig, AnnounceDecision, DecisionState, PeerKey};
use ferrolb_bgp::fsm::State;
use ferrolb_bgp::session::{Session, SessionConfig, StopMode, bfd_up_signal};
use ferrolb_config::Config;
use k8s_openapi::api::core::v1::{ConfigMap, Node, ObjectReference, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::events::{Event, Reporter};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::watcher;
use kube::{Api, Client, Resource};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};

/// The Events' reporting controller.
pub const REPORTER: &str = "ferrolb-speaker";

/// Objects per page of the Services' and EndpointSlices' initial LIST (kube's default is 500). A page is held
/// whole, as full objects with their managedFields, before each object is converted into its store; that page
/// was the speaker's peak heap when it starts on a cluster with many Services (about 6 MB of 10.7 MB at 1,000
/// Services). 100 keeps the peak a fifth of that for 5x the LIST requests (100 for 10,000 Services).
const LIST_PAGE_SIZE: u32 = 100;

/// A running session and what it was started with.
struct Running {
    config: PeerSession,
    session: Session,
    /// Which routes it was last given.
    table: TableKey,
    /// When the event behind the routes last handed over arrived (cleared once written).
    handoff: Arc<Mutex<Option<Instant>>>,
    monitor: tokio::task::JoinHandle<()>,
    /// The BFD session guarding it, when the peer has a `bfd-profile`.
    bfd: Option<RunningBfd>,
}

/// The BFD side of a peer with a `bfd-profile`.
enum RunningBfd {
    /// The BFD session runs; the BGP session follows its Up/Down.
    Running {
        handle: ferrolb_bfd::SessionHandle,
        monitor: tokio::task::JoinHandle<()>,
    },
    /// BFD could not be set up (the reason is in the last-error metric under this text). The BGP session
    /// stays gated Down rather than running unguarded, so the failure is visible (`ferrolb_bgp_session_up`
    /// 0, `ferrolb_bfd_session_up` 0, the error in the log and metric); it is retried when the peer's
    /// settings change or the speaker restarts.
    Failed { error: String },
}

/// Everything the loop owns.
struct Speaker {
    args: SpeakerArgs,
    defaults: SessionDefaults,
    metrics: SpeakerMetrics,
    services: Store<ServiceView>,
    slices: Store<SliceView>,
    nodes: reflector::Store<Node>,
    /// Where the configuration comes from, and that source described for messages.
    config_input: ConfigInput,
    source: String,
    config: ConfigState,
    /// The configuration in force, for `/explain`.
    config_in_force: watch::Sender<Option<Arc<Config>>>,
    discovered: BTreeMap<IpAddr, Discovered>,
    /// Peers that select this node but lack a per-node value here (Node labels), with the reason last reported.
    session_config_errors: BTreeMap<ferrolb_announce::PeerKey, String>,
    netlink: Option<rtnetlink::Handle>,
    vip: Option<VipInterface>,
    /// What the VIP interface holds now.
    vips: BTreeSet<IpAddr>,
    /// What it must hold: the announced VIPs, and the withdrawn ones for a moment more.
    vip_set: VipSet,
    sessions: BTreeMap<PeerKey, Running>,
    /// One BFD endpoint per local (source) address, bound when a peer first needs it.
    bfd_endpoints: BTreeMap<IpAddr, ferrolb_bfd::Endpoint>,
    /// The announce decision, kept across events.
    decisions: Decisions,
    events: mpsc::Sender<(Event, ObjectReference)>,
    /// The `BGPSessionStatus` writer (none with `--session-status=false`).
    status: Option<StatusWriter>,
}

/// Runs the speaker until SIGTERM or SIGINT.
pub async fn run(args: SpeakerArgs) -> anyhow::Result<()> {
    let client = Client::try_default()
        .await
        .context("cannot build a Kubernetes client (in-cluster or $KUBECONFIG)")?;
    let (metrics, registry) = SpeakerMetrics::registered();
    let readiness = Readiness::new();
    let filter = args.cluster.service_filter();
    let (services, services_writer) = store::store();
    let (slices, slices_writer) = store::store();
    let (nodes, nodes_writer) = reflector::store();
    let (config_in_force, config_watch) = watch::channel(None);
    let explain = explain_http::router_if(
        !args.no_explain_endpoint,
        ExplainSource {
            node_name: args.node_name.clone(),
            services: services.clone(),
            slices: slices.clone(),
            nodes: nodes.clone(),
            config: config_watch,
        },
    );
    let bound = serve::spawn_with(
        args.metrics_addr,
        Arc::new(registry),
        readiness.clone(),
        explain,
    )
    .await?;
    tracing::info!(%bound, node = %args.node_name, "speaker starting");
    let mut sigterm = signal(SignalKind::terminate()).context("cannot catch SIGTERM")?;
    let mut sigint = signal(SignalKind::interrupt()).context("cannot catch SIGINT")?;

    let netlink = match netlink::connect() {
        Ok(h) => Some(h),
        Err(err) => {
            tracing::warn!(error = %err, "no rtnetlink: source addresses come from the kernel at connect time");
            None
        }
    };
    let vip = match (&args.vip_interface, &netlink) {
        (Some(name), Some(h)) => Some(
            VipInterface::open(h.clone(), name)
                .await
                .with_context(|| format!("cannot set up the VIP interface {name}"))?,
        ),
        (Some(name), None) => anyhow::bail!("--vip-interface {name} needs rtnetlink"),
        (None, _) => None,
    };

    let pending = Pending::default();
    spawn_reflector(
        Api::<Service>::all(client.clone()),
        watcher::Config::default().page_size(LIST_PAGE_SIZE),
        services_writer,
        {
            let mut names = NodeNames::default();
            move |svc: Service| ServiceView::new(&filter, &svc, &mut names)
        },
        pending.clone(),
        Kind::Service,
        metrics.watch_lists.clone(),
    );
    spawn_reflector(
        Api::<EndpointSlice>::all(client.clone()),
        watcher::Config::default()
            .labels(translate::SERVICE_NAME_LABEL)
            .page_size(LIST_PAGE_SIZE),
        slices_writer,
        {
            let mut names = NodeNames::default();
            move |slice: EndpointSlice| SliceView::new(&slice, &mut names)
        },
        pending.clone(),
        Kind::EndpointSlice,
        metrics.watch_lists.clone(),
    );
    spawn_reflector(
        Api::<Node>::all(client.clone()),
        watcher::Config::default().fields(&format!("metadata.name={}", args.node_name)),
        nodes_writer,
        stripped(translate::strip_node),
        pending.clone(),
        Kind::Node,
        metrics.watch_lists.clone(),
    );
    let config_input = match args.cluster.config_source {
        SourceKind::Configmap => {
            let (configs, configs_writer) = reflector::store();
            spawn_reflector(
                Api::<ConfigMap>::namespaced(client.clone(), &args.cluster.config_namespace),
                watcher::Config::default()
                    .fields(&format!("metadata.name={}", args.cluster.config_name)),
                configs_writer,
                stripped(translate::strip_config_map),
                pending.clone(),
                Kind::Config,
                metrics.watch_lists.clone(),
            );
            ConfigInput::ConfigMap(configs)
        }
        SourceKind::Metallb => {
            let mut snapshots = metallb::start(&client, &args.cluster).await?;
            let rx = snapshots.clone();
            let pending = pending.clone();
            tokio::spawn(async move {
                while snapshots.changed().await.is_ok() {
                    pending.mark(Kind::Config, None);
                }
            });
            ConfigInput::Metallb(rx)
        }
    };
    let source = args.cluster.source_ref();
    let recorder = EventRecorder::new(
        client.clone(),
        Reporter {
            controller: REPORTER.into(),
            instance: Some(args.node_name.clone()),
        },
    );

    let status = args.session_status.then(|| {
        let (ns, metrics) = (
            &args.session_status_namespace,
            metrics.session_status.clone(),
        );
        StatusWriter::spawn(client.clone(), ns, &args.node_name, metrics)
    });
    let mut speaker = Speaker {
        defaults: SessionDefaults {
            graceful_restart: (!args.no_graceful_restart).then_some(args.graceful_restart_time),
            state_dir: args.state_dir.clone(),
            connect_retry: Duration::from_secs(1),
        },
        args,
        metrics,
        services,
        slices,
        nodes,
        config_input,
        source,
        config: ConfigState::default(),
        config_in_force,
        discovered: BTreeMap::new(),
        session_config_errors: BTreeMap::new(),
        netlink,
        vip,
        vips: BTreeSet::new(),
        vip_set: VipSet::default(),
        sessions: BTreeMap::new(),
        bfd_endpoints: BTreeMap::new(),
        decisions: Decisions::default(),
        events: spawn_event_publisher(recorder),
        status,
    };

    // Nothing is announced before every store has listed once: a session opened on partial state would send
    // an incomplete table and End-of-RIB, and the router would drop the routes it kept across our restart.
    let synced = async {
        speaker.services.wait_until_ready().await?;
        speaker.slices.wait_until_ready().await?;
        speaker.nodes.wait_until_ready().await?;
        speaker.config_input.ready().await
    };
    tokio::select! {
        r = synced => r.context("a watcher stopped before listing")?,
        _ = sigterm.recv() => return Ok(()),
        _ = sigint.recv() => return Ok(()),
    }
    tracing::info!("stores synced");
    let mut coalescer = speaker.args.coalescer();
    // The first decision is the full one, whatever arrived while the stores listed.
    let (_, mut touched) = pending.take();
    touched.full = true;
    let mut batch = (Some(Instant::now()), touched);
    let why = 'run: loop {
        let (since, touched) = std::mem::take(&mut batch);
        speaker.update(since, touched).await;
        let done = Instant::now();
        readiness.set(speaker.config.loaded());
        loop {
            let removal = speaker.vip_set.next_removal();
            tokio::select! {
                _ = pending.notify.notified() => {
                    // At once when idle; under load, gather the rest of the burst (see `Coalescer`).
                    let wait = coalescer.wait(done, Instant::now());
                    if !wait.is_zero() {
                        tokio::time::sleep(wait).await;
                    }
                    batch = pending.take();
                    break;
                }
                () = sleep_until_opt(removal), if removal.is_some() => {
                    let want = speaker.vip_set.on_interface(Instant::now());
                    speaker.sync_vips(want).await;
                }
                _ = sigterm.recv() => break 'run "SIGTERM",
                _ = sigint.recv() => break 'run "SIGINT",
            }
        }
    };
    speaker.shutdown(why).await;
    Ok(())
}

impl Speaker {
    /// Brings the announcements up to date after the events in `touched`; `since` is when the oldest of them
    /// arrived.
    async fn update(&mut self, since: Option<Instant>, touched: Touched) {
        match self.config_input.offer(&mut self.config, &self.source) {
            Outcome::Loaded(()) => {
                self.discovered.clear();
                self.config_in_force
                    .send_replace(self.config.config().cloned());
            }
            Outcome::Rejected(rejection) => self.config_rejected(&rejection.to_string()),
            Outcome::Unchanged | Outcome::Missing => {}
        }
        self.metrics
            .config_loaded
            .set(i64::from(self.config.loaded()));
        self.metrics
            .config_stale
            .set(i64::from(self.config.stale()));
        let Some(config) = self.config.config().cloned() else {
            return;
        };
        let node_obj = self.nodes.get(&ObjectRef::new(&self.args.node_name));
        let node = translate::node_of(&self.args.node_name, node_obj.as_deref());
        let labels = node.labels.clone();
        self.discover(&config).await;
        // Taken out for the duration, so that the decision can be read while the rest of `self` changes.
        let mut decisions = std::mem::take(&mut self.decisions);
        let changed = decisions.update(touched, &config, node, &self.services, &self.slices);
        if let Some(state) = decisions.state() {
            self.hand_over(&config, &labels, state, &changed, since)
                .await;
            let announce = &state.config().announce;
            self.send_status_inputs(node_obj.as_deref(), &config, announce, state.decision());
        }
        self.decisions = decisions;
    }

    /// Hands the sessions the routes of the decision in `state`, of which `changed` changed, and reports the
    /// Services.
    async fn hand_over(
        &mut self,
        config: &Config,
        labels: &BTreeMap<String, String>,
        state: &DecisionState,
        changed: &Changed,
        since: Option<Instant>,
    ) {
        let decision = state.decision();
        let desired_sessions =
            peers::desired_sessions(config, labels, &self.defaults, &self.discovered);
        self.report_session_config_errors(peers::session_config_errors(config, labels));
        let mut handover = Handover::new(decision, &changed.prefixes);
        self.apply_sessions(desired_sessions, &mut handover, since)
            .await;
        if !changed.prefixes.is_empty() && self.vip.is_some() {
            let want = self.vip_set.announce(
                decision.announced_ips().into_iter().collect(),
                Instant::now(),
            );
            self.sync_vips(want).await;
        }
        match &changed.services {
            None => self.report_services(state),
            Some(services) => {
                for key in services {
                    self.report_service(key, state);
                }
            }
        }
    }

    /// Hands the status writer (when on) what it needs to write this node's BGPSessionStatus objects.
    fn send_status_inputs(
        &self,
        node: Option<&Node>,
        config: &Config,
        announce_config: &AnnounceConfig,
        decision: &AnnounceDecision,
    ) {
        if let Some(status) = &self.status {
            let sessions = self.sessions.iter().map(|(k, r)| {
                let bfd = match &r.bfd {
                    None => BfdInput::Disabled,
                    Some(RunningBfd::Failed { .. }) => BfdInput::Failed,
                    Some(RunningBfd::Running { handle, .. }) => BfdInput::Running(handle.watch()),
                };
                (*k, (r.session.status(), bfd))
            });
            let name = &self.args.node_name;
            let inputs = session_status::inputs(
                name,
                node,
                config,
                announce_config,
                decision,
                sessions.collect(),
            );
            status.send(inputs);
        }
    }

    /// Logs (once per distinct reason) the peers this node starts no session with because a per-node value is
    /// missing, and shows each as a session that is down with that reason as its last error.
    fn report_session_config_errors(
        &mut self,
        errors: Vec<(ferrolb_announce::PeerKey, ferrolb_config::NodeValueError)>,
    ) {
        let now: BTreeMap<_, _> = errors
            .into_iter()
            .map(|(key, err)| (key, err.to_string()))
            .collect();
        for (key, text) in &now {
            if self.session_config_errors.get(key) == Some(text) {
                continue;
            }
            tracing::warn!(peer = %key, error = %text, "no BGP session with this peer on this node");
            let labels = PeerLabels {
                peer: key.to_string(),
            };
            self.metrics.session_up.get_or_create(&labels).set(0);
            self.metrics.session_state.get_or_create(&labels).set(0);
            self.metrics
                .last_error
                .get_or_create(&PeerErrorLabels {
                    peer: key.to_string(),
                    error: text.clone(),
                })
                .set(1);
        }
        self.session_config_errors = now;
    }

    /// Looks up the source address toward each peer that configures none (once per configuration).
    async fn discover(&mut self, config: &Config) {
        let Some(handle) = &self.netlink else {
            return;
        };
        for p in &config.peers {
            if (p.source_address.is_some() && p.router_id.is_some())
                || p.interface.is_some()
                || self.discovered.contains_key(&p.peer_address)
            {
                continue;
            }
            match netlink::discover(handle, p.peer_address).await {
                Ok(found) => {
                    tracing::info!(peer = %p.peer_address, source = ?found.source, "source address toward the peer");
                    self.discovered.insert(p.peer_address, found);
                }
                Err(err) => {
                    tracing::warn!(peer = %p.peer_address, error = %err, "cannot look up the route toward the peer")
                }
            }
        }
    }

    async fn apply_sessions(
        &mut self,
        desired: BTreeMap<PeerKey, PeerSession>,
        handover: &mut Handover<'_>,
        since: Option<Instant>,
    ) {
        let decision = handover.decision();
        let running: BTreeMap<PeerKey, PeerSession> = self
            .sessions
            .iter()
            .map(|(k, r)| (*k, r.config.clone()))
            .collect();
        let mut plan = peers::plan_sessions(&running, &desired);
        // A BFD session that could not be set up is retried by restarting the peer, not retimed.
        let (retry, retime): (Vec<PeerKey>, Vec<PeerKey>) = plan.retime_bfd.iter().partition(|k| {
            matches!(
                self.sessions.get(k).and_then(|r| r.bfd.as_ref()),
                Some(RunningBfd::Failed { .. })
            )
        });
        plan.restart.extend(retry);
        plan.retime_bfd = retime;
        if !plan.is_empty() {
            tracing::info!(start = ?plan.start, restart = ?plan.restart, stop = ?plan.stop, retime_bfd = ?plan.retime_bfd, "sessions change");
        }
        for key in &plan.retime_bfd {
            let (Some(r), Some(want)) = (self.sessions.get_mut(key), desired.get(key)) else {
                continue;
            };
            if let (Some(RunningBfd::Running { handle, .. }), Some(profile)) = (&r.bfd, &want.bfd) {
                match handle.change_profile(profile).await {
                    Ok(()) => {
                        tracing::info!(peer = %key, ?profile, "BFD timers changed in place; the BGP session is untouched")
                    }
                    Err(err) => {
                        tracing::error!(peer = %key, error = %err, "cannot change the BFD timers; keeping the old ones")
                    }
                }
            }
            r.config = want.clone();
        }
        for key in plan.stop.iter().chain(&plan.restart) {
            if let Some(r) = self.sessions.remove(key) {
                let removed = plan.stop.contains(key);
                tracing::info!(peer = %key, removed, "stopping the session (peer removed or its settings changed)");
                r.monitor.abort();
                let bfd = r.bfd;
                r.session
                    .stop(StopMode::Withdraw {
                        communication: if removed {
                            "ferrolb: peer removed from the configuration".into()
                        } else {
                            "ferrolb: peer settings changed".into()
                        },
                    })
                    .await;
                // After BGP's Cease, so the router does not first see BFD Down and drop the routes early.
                self.stop_bfd(&key.to_string(), bfd).await;
                if removed {
                    self.metrics.remove_peer(&key.to_string());
                }
            }
        }
        // Endpoints no remaining session uses are closed (their socket is released).
        let in_use: BTreeSet<IpAddr> = self
            .sessions
            .values()
            .filter(|r| matches!(r.bfd, Some(RunningBfd::Running { .. })))
            .filter_map(|r| r.config.session.tcp.source)
            .collect();
        self.bfd_endpoints.retain(|local, _| in_use.contains(local));
        for key in plan.start.iter().chain(&plan.restart) {
            let Some(config) = desired.get(key) else {
                continue;
            };
            let table_key = peers::table_key(decision, key, &config.session);
            let table = handover.table(table_key);
            tracing::info!(peer = %key, prefixes = table.len(), bfd = config.bfd.is_some(), "starting the session");
            let (session, bfd) = match &config.bfd {
                None => (Session::spawn(config.session.clone(), table), None),
                Some(profile) => {
                    let (bfd, up) = self.start_bfd(key, &config.session, profile);
                    (
                        Session::spawn_with_bfd(config.session.clone(), table, up),
                        Some(bfd),
                    )
                }
            };
            self.metrics
                .traffic
                .insert(key.to_string(), session.counters());
            // The first table's latency is the connection's, not an event's: not measured.
            let handoff = Arc::new(Mutex::new(None));
            let monitor = tokio::spawn(monitor(
                session.status(),
                key.to_string(),
                handoff.clone(),
                self.metrics.clone(),
            ));
            self.sessions.insert(
                *key,
                Running {
                    config: config.clone(),
                    session,
                    table: table_key,
                    handoff,
                    monitor,
                    bfd,
                },
            );
        }
        let started: BTreeSet<&PeerKey> = plan.start.iter().chain(&plan.restart).collect();
        for (key, r) in &mut self.sessions {
            if started.contains(key) {
                continue;
            }
            let table_key = peers::table_key(decision, key, &r.config.session);
            // The handoff is marked before the session gets the routes: its task may write them and publish
            // its status before this returns.
            let established = r.session.status().borrow().state == State::Established;
            if table_key != r.table {
                // Another table (a class of peers that starts or stops getting every route, another local AS).
                mark_handoff(&r.handoff, since, established);
                r.session.set_routes(handover.table(table_key));
                r.table = table_key;
            } else if handover.unchanged() {
                continue;
            } else {
                let changes = handover.changes(table_key);
                if changes.is_empty() {
                    continue;
                }
                mark_handoff(&r.handoff, since, established);
                r.session.change_routes(changes);
            }
        }
    }

    /// Starts the BFD session guarding `key`'s BGP session, on the endpoint of the BGP session's source
    /// address (bound now if no session uses it yet). Returns it and the "BFD is Up" signal for the BGP
    /// session. On failure the signal stays false (see [`RunningBfd::Failed`]).
    fn start_bfd(
        &mut self,
        key: &PeerKey,
        session: &SessionConfig,
        profile: &ferrolb_bfd::Profile,
    ) -> (RunningBfd, watch::Receiver<bool>) {
        let peer = key.to_string();
        match self.add_bfd_session(key.address, session.tcp.source, profile) {
            Ok(handle) => {
                let up = bfd_up_signal(handle.watch(), |s: &ferrolb_bfd::SessionStatus| {
                    s.state == ferrolb_bfd::State::Up
                });
                let monitor = tokio::spawn(monitor_bfd(
                    handle.watch(),
                    peer.clone(),
                    self.metrics.clone(),
                ));
                tracing::info!(peer, local = ?session.tcp.source, ?profile, "BFD session started; BGP waits for BFD Up");
                (RunningBfd::Running { handle, monitor }, up)
            }
            Err(error) => {
                tracing::error!(
                    peer,
                    local = ?session.tcp.source,
                    %error,
                    "cannot start the BFD session; the BGP session stays down until BFD can run"
                );
                self.metrics
                    .bfd_session_up
                    .get_or_create(&PeerLabels { peer: peer.clone() })
                    .set(0);
                self.metrics
                    .last_error
                    .get_or_create(&PeerErrorLabels {
                        peer,
                        error: error.clone(),
                    })
                    .set(1);
                // The sender is dropped at once: the BGP session takes BFD as Down for good.
                (RunningBfd::Failed { error }, watch::channel(false).1)
            }
        }
    }

    /// Binds (or reuses) the endpoint of `local` and adds a session to `peer`.
    fn add_bfd_session(
        &mut self,
        peer: IpAddr,
        local: Option<IpAddr>,
        profile: &ferrolb_bfd::Profile,
    ) -> Result<ferrolb_bfd::SessionHandle, String> {
        let local = local.ok_or_else(|| {
            "BFD: no source address toward the peer (set `source-address` or check the route to it)".to_owned()
        })?;
        let endpoint = match self.bfd_endpoints.entry(local) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(ferrolb_bfd::Endpoint::bind(local).map_err(|err| format!("BFD: {err}"))?)
            }
        };
        endpoint
            .add_session(peer, profile)
            .map_err(|err| format!("BFD: {err}"))
    }

    /// Shuts a peer's BFD session down (the router sees AdminDown) and forgets its metrics.
    async fn stop_bfd(&mut self, peer: &str, bfd: Option<RunningBfd>) {
        match bfd {
            None => return,
            Some(RunningBfd::Running { handle, monitor }) => {
                monitor.abort();
                handle.shutdown().await;
            }
            Some(RunningBfd::Failed { error }) => {
                self.metrics.last_error.remove(&PeerErrorLabels {
                    peer: peer.to_owned(),
                    error,
                });
            }
        }
        self.metrics.remove_bfd_peer(peer);
    }

    /// Makes the VIP interface hold `want` ([`VipSet`]: announced VIPs, and withdrawn ones for a moment more).
    async fn sync_vips(&mut self, want: BTreeSet<IpAddr>) {
        let Some(vip) = &self.vip else { return };
        if want == self.vips {
            return;
        }
        match vip.sync(&want).await {
            Ok((added, removed)) => {
                tracing::info!(
                    interface = vip.name(),
                    added,
                    removed,
                    "VIP interface updated"
                );
                self.vips = want;
            }
            Err(err) => {
                tracing::warn!(interface = vip.name(), error = %err, "cannot update the VIP interface; retrying on the next change")
            }
        }
    }

    /// Posts the Warning Event `ConfigInvalid` on our ConfigMap (once per distinct rejected input: `offer`
    /// reports a rejection only when the input changed), through the rate-limited publisher.
    fn config_rejected(&self, message: &str) {
        let Some(cm) = self.config_input.config_map() else {
            return;
        };
        let ev = config_rejected_event(message, Some(&self.args.node_name));
        if self.events.try_send((ev, cm.object_ref(&()))).is_err() {
            tracing::debug!("event queue full; ConfigInvalid event dropped");
        }
    }

    /// SIGTERM: with graceful restart, close without withdrawing (the VIPs stay, traffic keeps flowing);
    /// without, withdraw and send Cease / Administrative Shutdown, then clear the VIPs.
    async fn shutdown(mut self, why: &str) {
        let graceful = self.defaults.graceful_restart.is_some();
        tracing::info!(
            signal = why,
            graceful,
            sessions = self.sessions.len(),
            "stopping"
        );
        let communication = format!(
            "ferrolb speaker on {} stopped by {why}",
            self.args.node_name
        );
        let stops = std::mem::take(&mut self.sessions)
            .into_values()
            .map(|r| {
                r.monitor.abort();
                let mode = if graceful {
                    StopMode::Graceful {
                        communication: communication.clone(),
                    }
                } else {
                    StopMode::Withdraw {
                        communication: communication.clone(),
                    }
                };
                (r, mode)
            })
            .map(|(r, mode)| async move {
                r.session.stop(mode).await;
                // AdminDown after BGP has closed: RFC 5882 §3.2 has the router not treat it as a failure, so a
                // graceful restart is not cut short by a BFD timeout.
                if let Some(RunningBfd::Running { handle, monitor }) = r.bfd {
                    monitor.abort();
                    handle.shutdown().await;
                }
            });
        futures::future::join_all(stops).await;
        if let Some(status) = self.status.take() {
            status.finish().await;
        }
        if !graceful
            && let Some(vip) = &self.vip
            && let Err(err) = vip.sync(&BTreeSet::new()).await
        {
            tracing::warn!(error = %err, "cannot clear the VIP interface");
        }
    }
}

#[path = "run_report.rs"]
mod report;

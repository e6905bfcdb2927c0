//! The controller's I/O: watches Services and the configuration (the ConfigMap or the metallb.io objects), feeds [`ControllerState`], and (on the leader only)
//! writes the status patches and Events it asks for.

use crate::watch::retrying_watch;
use anyhow::Context;
use ferrolb_ipam::ServiceKey;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::events::{Event, EventType, Reporter};
use kube::runtime::watcher::{self, Event as WatchEvent};
use kube::{Api, Client, Resource};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};

use super::ControllerArgs;
use super::election::{self, ElectionSettings};
use super::events::EventSink;
use super::leader::{Role, Timing};
use super::metrics::ControllerMetrics;
use super::pool_status::PoolStatusWriter;
use super::service::key_of;
use super::state::{ConfigOutcome, ControllerState, Labels, StatusWrite};
use super::view::ServiceView;
use crate::config_source::metallb::{self, Snapshot};
use crate::config_source::problems::{Reported, config_rejected_event, problems_of, truncated};
use crate::config_source::{SourceKind, log_outcome};
use crate::event_recorder::EventRecorder;
use crate::serve::{self, Readiness};

/// The field manager of every status write.
pub const FIELD_MANAGER: &str = "ferrolb-controller";

/// How many status writes are in flight at once (client-go's default QPS/burst would allow fewer; the API
/// server handles this many concurrent patches comfortably).
const WRITE_CONCURRENCY: usize = 16;

/// Services reconciled, and their status writes held, at once (see [`ControllerState::reconcile_some`]).
const RECONCILE_BATCH: usize = 256;

/// Services per page of the initial LIST (kube's default is 500): a page is held whole, as full objects, while
/// it is converted.
const LIST_PAGE_SIZE: u32 = 100;

/// What the watchers tell the main loop.
enum Input {
    /// A complete list of Services (start or re-list), as views by key.
    Relisted(BTreeMap<ServiceKey, ServiceView>),
    /// A Service was added or changed.
    Applied(ServiceKey, ServiceView),
    /// A Service was deleted.
    Deleted(ServiceKey),
    /// A complete list of Namespaces with their labels (start or re-list).
    NamespacesListed(Vec<(String, Labels)>),
    /// A Namespace was added or changed.
    NamespaceApplied(String, Labels),
    /// A Namespace was deleted.
    NamespaceDeleted(String),
    /// The ConfigMap watch listed (`Some` if our ConfigMap exists).
    ConfigListed(Option<ConfigMap>),
    /// Our ConfigMap was added or changed (`None`: deleted).
    Config(Option<ConfigMap>),
    /// What the metallb.io objects translate to now (`--config-source metallb`).
    Source(Arc<Snapshot>),
}

impl Input {
    /// The watch this input completes a LIST of, if it does (for `ferrolb_k8s_watch_lists_total`).
    fn listed_watch(&self) -> Option<&'static str> {
        match self {
            Input::Relisted(_) => Some("services"),
            Input::NamespacesListed(_) => Some("namespaces"),
            Input::ConfigListed(_) => Some("configmap"),
            _ => None,
        }
    }
}

/// Runs the controller until SIGTERM/SIGINT (then releases the Lease if it holds it) or a fatal error.
pub async fn run(args: ControllerArgs) -> anyhow::Result<()> {
    let mut sigterm = signal(SignalKind::terminate()).context("cannot catch SIGTERM")?;
    let mut sigint = signal(SignalKind::interrupt()).context("cannot catch SIGINT")?;
    let timing = Timing::new(
        args.lease_duration_secs,
        args.lease_renew_deadline_secs,
        args.lease_retry_secs,
        args.lease_request_timeout_secs,
    )?;
    let client = Client::try_default()
        .await
        .context("cannot build a Kubernetes client (in-cluster or $KUBECONFIG)")?;
    let (metrics, registry) = ControllerMetrics::registered();
    let readiness = Readiness::new();
    let bound = serve::spawn(args.metrics_addr, Arc::new(registry), readiness.clone()).await?;
    let identity = args.identity.clone().unwrap_or_else(default_identity);
    tracing::info!(%bound, %identity, config = %args.cluster.config_ref(),
        "controller starting");

    let (role_tx, mut role_rx) = watch::channel(Role::Unknown);
    let election = ElectionSettings {
        namespace: args.cluster.config_namespace.clone(),
        name: args.lease_name.clone(),
        identity: identity.clone(),
        timing,
    };
    let leases: Api<Lease> = Api::namespaced(client.clone(), &election.namespace);
    let elector = tokio::spawn(election::run(leases.clone(), election.clone(), role_tx));

    let (tx, mut rx) = mpsc::channel::<Input>(4096);
    let services: Api<Service> = match &args.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    tokio::spawn(watch_services(services, tx.clone()));
    // Namespace labels, for pools' namespace-selectors and fences (metadata only).
    let namespaces_config = match &args.namespace {
        Some(ns) => watcher::Config::default().fields(&format!("metadata.name={ns}")),
        None => watcher::Config::default(),
    };
    tokio::spawn(watch_namespaces(
        Api::all(client.clone()),
        namespaces_config,
        tx.clone(),
    ));
    match args.cluster.config_source {
        SourceKind::Configmap => {
            let config_maps: Api<ConfigMap> =
                Api::namespaced(client.clone(), &args.cluster.config_namespace);
            tokio::spawn(watch_config(
                config_maps,
                args.cluster.config_name.clone(),
                tx,
            ));
        }
        SourceKind::Metallb => {
            let snapshots = metallb::start(&client, &args.cluster).await?;
            tokio::spawn(forward_snapshots(snapshots, tx));
        }
    }

    let filter = args.cluster.service_filter();
    let source = args.cluster.source_ref();
    let mut state = ControllerState::new(filter, source.clone());
    let recorder = EventRecorder::new(
        client.clone(),
        Reporter {
            controller: FIELD_MANAGER.into(),
            instance: Some(identity),
        },
    );
    let (writing, writing_rx) = watch::channel(false);
    let writer = Writer {
        client: client.clone(),
        events: EventSink::spawn(
            recorder,
            writing_rx,
            role_rx.clone(),
            metrics.notices_dropped.clone(),
        ),
        writing,
        params: PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        },
    };
    // IPAddressPool.status, only when the pools are metallb.io IPAddressPools.
    let pool_status = matches!(args.cluster.config_source, SourceKind::Metallb).then(|| {
        PoolStatusWriter::spawn(
            client.clone(),
            &args.cluster.config_namespace,
            FIELD_MANAGER,
            role_rx.clone(),
        )
    });
    let mut config = ConfigInput {
        source,
        config_map: None,
        snapshot: None,
        reported: Reported::default(),
    };
    let mut role = Role::Unknown;
    let mut retry = tokio::time::interval(Duration::from_secs(5));

    let stop = loop {
        tokio::select! {
            _ = sigterm.recv() => break "SIGTERM",
            _ = sigint.recv() => break "SIGINT",
            input = rx.recv() => {
                let Some(input) = input else {
                    anyhow::bail!("watchers stopped");
                };
                let mut next = Some(input);
                // Take everything already queued, so one batch of writes covers it.
                while let Some(input) = next {
                    if let Some(watch) = input.listed_watch() {
                        metrics.watch_lists.listed(watch);
                    }
                    handle(&mut state, &writer, &mut config, input, role == Role::Leader);
                    next = rx.try_recv().ok();
                }
            }
            changed = role_rx.changed() => {
                changed.context("leader election stopped")?;
                let new = role_rx.borrow_and_update().clone();
                if new == Role::Leader && role != Role::Leader {
                    state.became_leader();
                    if let Some(pools) = &pool_status {
                        pools.rewrite_all();
                    }
                    // A rejection seen while standing by has not been reported yet.
                    if let (Some(rejection), Some(cm)) = (state.config_rejection(), &config.config_map) {
                        writer.config_rejected(cm, &rejection.to_string());
                    }
                    config.reported.clear();
                    config.report_problems(&state, &writer);
                }
                metrics.leader.set(i64::from(new == Role::Leader));
                role = new;
            }
            _ = retry.tick() => {}
            // The next batch of a large reconcile, once the inputs queued meanwhile are handled.
            () = std::future::ready(()), if role == Role::Leader && state.more_to_reconcile() => {}
        }
        readiness.set(state.synced() && role != Role::Unknown);
        metrics.config_loaded.set(i64::from(state.config_loaded()));
        metrics.config_stale.set(i64::from(state.config_stale()));
        if role != Role::Leader {
            continue;
        }
        let started = Instant::now();
        let writes = state.reconcile_some(Timestamp::now(), RECONCILE_BATCH);
        metrics
            .reconcile_seconds
            .observe(started.elapsed().as_secs_f64());
        if let Some(allocator) = state.allocator() {
            let stats = allocator.pool_stats();
            metrics.set_pools(&stats, allocator.stranded().len());
            metrics.set_outside_rules(allocator.outside_rules().len());
            if let Some(pools) = &pool_status {
                pools.update(&stats);
            }
        }
        if !writes.is_empty() {
            // The writes stop the moment leadership is lost (the elector steps down at its renew deadline, before
            // a standby can take over): the ones not sent yet are dropped, the new leader rebuilds from statuses.
            let lost = tokio::select! {
                () = writer.write_all(&mut state, &metrics, writes) => None,
                now = role_rx.wait_for(|r| *r != Role::Leader) => Some(now.map(|r| r.clone())),
            };
            if let Some(now) = lost {
                tracing::warn!("leadership lost during status writes; the rest are abandoned");
                writer.writing.send_replace(false);
                role = now.context("leader election stopped")?;
                metrics.leader.set(0);
            }
        }
    };
    // Writes are awaited inside the loop, so none is in flight now. Stop renewing, then hand the Lease over at
    // once (a standby takes it at its next read) instead of letting it expire.
    elector.abort();
    let _ = elector.await;
    if role == Role::Leader {
        match election::release(&leases, &election).await {
            Ok(true) => tracing::info!(signal = stop, "stopping; lease released"),
            Ok(false) => tracing::info!(signal = stop, "stopping; lease no longer ours"),
            Err(err) => {
                tracing::warn!(signal = stop, error = %err, "stopping; cannot release the lease, it will expire")
            }
        }
    } else {
        tracing::info!(signal = stop, "stopping");
    }
    Ok(())
}

/// The configuration input as last seen, and the object problems already reported.
struct ConfigInput {
    /// Where the configuration comes from, for messages.
    source: String,
    /// Our ConfigMap (`--config-source configmap`).
    config_map: Option<ConfigMap>,
    /// The newest snapshot of the metallb.io objects (`--config-source metallb`).
    snapshot: Option<Arc<Snapshot>>,
    /// Object problems already posted as Events.
    reported: Reported,
}

impl ConfigInput {
    /// Posts a Warning Event on each object with a problem not reported yet (leader only).
    fn report_problems(&mut self, state: &ControllerState, writer: &Writer) {
        let Some(snapshot) = &self.snapshot else {
            return;
        };
        let problems = problems_of(state.config_rejection(), &snapshot.warnings);
        for problem in self.reported.fresh(problems) {
            let Some(regarding) = snapshot.references.get(&problem.object) else {
                continue;
            };
            let ev = Event {
                type_: EventType::Warning,
                reason: problem.reason.into(),
                note: Some(truncated(problem.message)),
                action: "LoadConfig".into(),
                secondary: None,
            };
            writer.events.rate_limited(ev, regarding.clone());
        }
    }
}

fn handle(
    state: &mut ControllerState,
    writer: &Writer,
    config: &mut ConfigInput,
    input: Input,
    leader: bool,
) {
    match input {
        Input::Relisted(services) => {
            tracing::info!(services = services.len(), "services listed");
            state.services_listed(services);
        }
        Input::Applied(key, svc) => state.service_applied(key, svc),
        Input::Deleted(key) => state.service_deleted(&key),
        Input::NamespacesListed(namespaces) => state.namespaces_relisted(namespaces),
        Input::NamespaceApplied(name, labels) => state.namespace_applied(name, labels),
        Input::NamespaceDeleted(name) => state.namespace_deleted(&name),
        Input::ConfigListed(cm) | Input::Config(cm) => {
            config.config_map = cm;
            let text = config
                .config_map
                .as_ref()
                .and_then(|cm| cm.data.as_ref())
                .and_then(|data| data.get("config"))
                .map(String::as_str);
            let outcome = state.config_changed(text);
            log_config_outcome(&outcome, &[], &config.source);
            if let (ConfigOutcome::Rejected(rejection), Some(cm), true) =
                (&outcome, &config.config_map, leader)
            {
                writer.config_rejected(cm, &rejection.to_string());
            }
            state.config_listed();
        }
        Input::Source(snapshot) => {
            let outcome = state.config_offered(snapshot.fingerprint, || snapshot.candidate.clone());
            log_config_outcome(&outcome, &snapshot.warnings, &config.source);
            config.snapshot = Some(snapshot);
            if leader {
                config.report_problems(state, writer);
            }
            state.config_listed();
        }
    }
}

/// Logs an outcome, and the addresses a new configuration strands.
fn log_config_outcome(
    outcome: &ConfigOutcome,
    warnings: &[ferrolb_config::metallb::Warning],
    source: &str,
) {
    log_outcome(outcome, warnings, source);
    if let ConfigOutcome::Loaded(stranded) = outcome
        && *stranded > 0
    {
        tracing::warn!(
            stranded,
            "addresses held by Services are outside every new pool; kept and flagged"
        );
    }
}

/// Forwards each new snapshot of the metallb.io objects.
async fn forward_snapshots(
    mut snapshots: tokio::sync::watch::Receiver<Option<Arc<Snapshot>>>,
    tx: mpsc::Sender<Input>,
) {
    loop {
        let snapshot = snapshots.borrow_and_update().clone();
        if let Some(snapshot) = snapshot
            && tx.send(Input::Source(snapshot)).await.is_err()
        {
            return;
        }
        if snapshots.changed().await.is_err() {
            return;
        }
    }
}

/// Writes status patches, and hands Events to the [`EventSink`].
struct Writer {
    client: Client,
    events: EventSink,
    /// True while status writes are in flight (routine Events wait for it to turn false).
    writing: watch::Sender<bool>,
    params: PatchParams,
}

impl Writer {
    /// Applies `writes` (several in flight), then records what the API server returned.
    async fn write_all(
        &self,
        state: &mut ControllerState,
        metrics: &ControllerMetrics,
        writes: Vec<StatusWrite>,
    ) {
        self.writing.send_replace(true);
        // Each result is handled as it arrives (the returned Service projected into the cache at once), so a
        // batch of writes never holds its whole Services in memory.
        let mut results = futures::stream::iter(writes)
            .map(|w| async move {
                let api: Api<Service> = Api::namespaced(self.client.clone(), &w.key.namespace);
                let result = api
                    .patch_status(&w.key.name, &self.params, &Patch::Merge(&w.patch))
                    .await;
                (w, result)
            })
            .buffer_unordered(WRITE_CONCURRENCY);
        while let Some((write, result)) = results.next().await {
            match result {
                Ok(svc) => {
                    tracing::info!(service = %write.key, status = %write.patch["status"], "status written");
                    let regarding = svc.object_ref(&());
                    for event in write.events {
                        let ev = Event {
                            type_: if event.warning {
                                EventType::Warning
                            } else {
                                EventType::Normal
                            },
                            reason: event.reason,
                            note: Some(event.note),
                            action: event.action.into(),
                            secondary: None,
                        };
                        if event.warning {
                            self.events.warning(ev, regarding.clone());
                        } else {
                            self.events.notice(ev, regarding.clone());
                        }
                    }
                    if let Some(reason) = &write.failure {
                        metrics.count_failure(reason);
                    }
                    let (key, view) = ServiceView::of(&svc);
                    drop(svc);
                    state.service_written(key, view);
                }
                Err(kube::Error::Api(status)) if status.code == 404 => {
                    tracing::debug!(service = %write.key, "service gone before its status was written");
                }
                Err(err) => {
                    tracing::warn!(service = %write.key, error = %err, "status write failed; will retry");
                    state.retry(write.key);
                }
            }
        }
        drop(results);
        self.writing.send_replace(false);
    }

    /// Records a Warning Event on the ConfigMap.
    fn config_rejected(&self, cm: &ConfigMap, message: &str) {
        let ev = config_rejected_event(message, None);
        self.events.warning(ev, cm.object_ref(&()));
    }
}

/// Forwards the Service watch, buffering a (re-)list until it is complete.
async fn watch_services(api: Api<Service>, tx: mpsc::Sender<Input>) {
    let config = watcher::Config::default().page_size(LIST_PAGE_SIZE);
    let mut stream = retrying_watch(api, config, "services");
    // Projected and by key as they arrive: only a page of whole objects is held at a time, the cache takes the
    // map as it is (no second copy while it is built), and a Service listed twice (across pages) is kept once.
    let mut listing: BTreeMap<ServiceKey, ServiceView> = BTreeMap::new();
    loop {
        let input = match stream.try_next().await {
            Ok(Some(WatchEvent::Init)) => {
                listing.clear();
                continue;
            }
            Ok(Some(WatchEvent::InitApply(svc))) => {
                let (key, view) = ServiceView::of(&svc);
                listing.insert(key, view);
                continue;
            }
            Ok(Some(WatchEvent::InitDone)) => Input::Relisted(std::mem::take(&mut listing)),
            // Projected here, so the queue to the main loop (long while status writes are in flight: every
            // write comes back as a watch event) holds views, not objects.
            Ok(Some(WatchEvent::Apply(svc))) => {
                let (key, view) = ServiceView::of(&svc);
                Input::Applied(key, view)
            }
            Ok(Some(WatchEvent::Delete(svc))) => Input::Deleted(key_of(&svc)),
            Ok(None) => return,
            Err(err) => {
                tracing::warn!(error = %err, "service watch failed; retrying");
                continue;
            }
        };
        if tx.send(input).await.is_err() {
            return;
        }
    }
}

/// Forwards the metadata watch of Namespaces: their names and labels.
async fn watch_namespaces(
    api: Api<PartialObjectMeta<Namespace>>,
    config: watcher::Config,
    tx: mpsc::Sender<Input>,
) {
    let mut stream = retrying_watch(api, config, "namespaces");
    let named = |ns: PartialObjectMeta<Namespace>| {
        (
            ns.metadata.name.unwrap_or_default(),
            ns.metadata.labels.unwrap_or_default(),
        )
    };
    let mut listing = Vec::new();
    loop {
        let input = match stream.try_next().await {
            Ok(Some(WatchEvent::Init)) => {
                listing.clear();
                continue;
            }
            Ok(Some(WatchEvent::InitApply(ns))) => {
                listing.push(named(ns));
                continue;
            }
            Ok(Some(WatchEvent::InitDone)) => Input::NamespacesListed(std::mem::take(&mut listing)),
            Ok(Some(WatchEvent::Apply(ns))) => {
                let (name, labels) = named(ns);
                Input::NamespaceApplied(name, labels)
            }
            Ok(Some(WatchEvent::Delete(ns))) => Input::NamespaceDeleted(named(ns).0),
            Ok(None) => return,
            Err(err) => {
                tracing::warn!(error = %err, "namespace watch failed; retrying");
                continue;
            }
        };
        if tx.send(input).await.is_err() {
            return;
        }
    }
}

/// Forwards the watch of our ConfigMap.
async fn watch_config(api: Api<ConfigMap>, name: String, tx: mpsc::Sender<Input>) {
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut stream = retrying_watch(api, config, "configmap");
    let mut listed: Option<ConfigMap> = None;
    loop {
        let input = match stream.try_next().await {
            Ok(Some(WatchEvent::Init)) => {
                listed = None;
                continue;
            }
            Ok(Some(WatchEvent::InitApply(cm))) => {
                listed = Some(cm);
                continue;
            }
            Ok(Some(WatchEvent::InitDone)) => Input::ConfigListed(listed.take()),
            Ok(Some(WatchEvent::Apply(cm))) => Input::Config(Some(cm)),
            Ok(Some(WatchEvent::Delete(_))) => Input::Config(None),
            Ok(None) => return,
            Err(err) => {
                tracing::warn!(error = %err, "configmap watch failed; retrying");
                continue;
            }
        };
        if tx.send(input).await.is_err() {
            return;
        }
    }
}

fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "ferrolb".into());
    format!("{host}-{}", std::process::id())
}

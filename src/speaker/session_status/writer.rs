//! The writer task: follows the sessions, applies the objects when [`ObjectLimiter`] says so, deletes the
//! objects of removed peers.

use super::desired::{BfdView, SessionView, Tracker, desired_status};
use super::limiter::{Limits, Next, ObjectLimiter, grid_origin_now};
use super::{BfdInput, FIELD_MANAGER, NodeOwner, PeerInputs, SETTLE, StatusInputs, StatusMetrics};
use crate::crds::session_status::{
    BGPSessionStatus, BGPSessionStatusSpec, GROUP, NODE_LABEL, SessionStatus,
};
use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;
use tokio::sync::watch;

/// One followed peer.
struct Followed {
    inputs: PeerInputs,
    tracker: Tracker,
}

/// The writer task's state.
pub struct Writer {
    api: Api<BGPSessionStatus>,
    node: String,
    limits: Limits,
    /// The limiters' slot origin.
    origin: Instant,
    metrics: StatusMetrics,
    peers: BTreeMap<String, Followed>,
    limiters: BTreeMap<String, ObjectLimiter>,
    node_excluded: Option<String>,
    /// Objects to delete (peers removed from the configuration, or left by a previous run).
    stale: BTreeSet<String>,
    /// Whether the leftovers of a previous run were listed.
    listed: bool,
    /// When the list or a delete is retried after a failure.
    retry_cleanup: Option<Instant>,
    cleanup_failures: u32,
    owner: Option<NodeOwner>,
    /// The last error logged at warn level (repeats go to debug).
    last_logged: Option<String>,
}

impl Writer {
    /// A writer of `node`'s objects through `api` (in the speaker's namespace).
    pub fn new(api: Api<BGPSessionStatus>, node: &str, metrics: StatusMetrics) -> Writer {
        Writer {
            api,
            node: node.to_owned(),
            limits: Limits::default(),
            origin: grid_origin_now(Limits::default().slow_interval),
            metrics,
            peers: BTreeMap::new(),
            limiters: BTreeMap::new(),
            node_excluded: None,
            stale: BTreeSet::new(),
            listed: false,
            retry_cleanup: None,
            cleanup_failures: 0,
            owner: None,
            last_logged: None,
        }
    }

    /// Runs until the speaker drops the inputs' sender.
    pub async fn run(mut self, mut inputs: watch::Receiver<StatusInputs>) {
        loop {
            let latest = inputs.borrow_and_update().clone();
            self.take(latest);
            let wake = self.pass().await;
            let changed = any_changed(&mut self.peers);
            tokio::select! {
                r = inputs.changed() => if r.is_err() { return },
                () = changed => {}
                () = super::super::reflectors::sleep_until_opt(wake) => {}
            }
            tokio::time::sleep(SETTLE).await;
        }
    }

    /// Takes new inputs: follows new peers, forgets removed ones (their objects are deleted).
    fn take(&mut self, inputs: StatusInputs) {
        if inputs.node.as_ref().map(|n| &n.uid) != self.owner.as_ref().map(|n| &n.uid) {
            // A new Node object (or none): what was written belonged to the old one.
            self.limiters.clear();
        }
        self.owner = inputs.node;
        self.node_excluded = inputs.node_excluded;
        for name in self.peers.keys() {
            if !inputs.peers.contains_key(name) {
                self.stale.insert(name.clone());
                self.limiters.remove(name);
            }
        }
        self.peers.retain(|name, _| inputs.peers.contains_key(name));
        for (name, new) in inputs.peers {
            self.stale.remove(&name);
            match self.peers.get_mut(&name) {
                // A restarted session has a new channel; the tracker carries on.
                Some(f) => f.inputs = new,
                None => {
                    self.peers.insert(
                        name,
                        Followed {
                            inputs: new,
                            tracker: Tracker::default(),
                        },
                    );
                }
            }
        }
    }

    /// Looks at every session, writes what is due, deletes what is stale. Returns when to look again.
    async fn pass(&mut self) -> Option<Instant> {
        // Without the Node there is no owner: nothing is written (it was deleted, or is not known yet).
        let owner = self.owner.clone()?;
        let now = Instant::now();
        let wall = Timestamp::now();
        let mut wake: Option<Instant> = None;
        let mut soon = |t: Instant| wake = Some(wake.map_or(t, |w| w.min(t)));
        let names: Vec<String> = self.peers.keys().cloned().collect();
        for name in names {
            let Some(f) = self.peers.get_mut(&name) else {
                continue;
            };
            let (spec, status) = observe(f, wall, self.node_excluded.as_deref());
            let limiter = self
                .limiters
                .entry(name.clone())
                .or_insert_with(|| ObjectLimiter::new(&name, self.limits, self.origin));
            match limiter.next(&spec, &status, now) {
                Next::Skip => continue,
                Next::At(t) => {
                    soon(t);
                    continue;
                }
                Next::Now => {}
            }
            let with_spec = !limiter.spec_written(&spec);
            let result = apply(&self.api, &name, &owner, &spec, &status, with_spec).await;
            let Some(limiter) = self.limiters.get_mut(&name) else {
                continue;
            };
            match result {
                Ok(()) => {
                    self.metrics.count("apply", true);
                    limiter.written(spec, status, now);
                }
                Err(err) => {
                    self.metrics.count("apply", false);
                    let gone = matches!(&err, kube::Error::Api(e) if e.code == 404);
                    limiter.failed(now, gone);
                    if let Next::At(t) = limiter.next(&spec, &status, now) {
                        soon(t);
                    }
                    self.log(&format!("cannot write BGPSessionStatus {name}: {err}"));
                }
            }
        }
        if let Some(t) = self.cleanup(now).await {
            soon(t);
        }
        wake
    }

    /// Lists the leftovers of a previous run once, then deletes every stale object; on a failure, returns when
    /// to retry.
    async fn cleanup(&mut self, now: Instant) -> Option<Instant> {
        if self.retry_cleanup.is_some_and(|t| t > now) {
            return self.retry_cleanup;
        }
        let mut failed = None;
        if !self.listed {
            let lp = ListParams::default().labels(&format!("{NODE_LABEL}={}", self.node));
            match self.api.list_metadata(&lp).await {
                Ok(list) => {
                    self.metrics.count("list", true);
                    self.listed = true;
                    let leftovers = list
                        .items
                        .into_iter()
                        .filter_map(|o| o.metadata.name)
                        .filter(|n| !self.peers.contains_key(n));
                    self.stale.extend(leftovers);
                }
                Err(err) => {
                    self.metrics.count("list", false);
                    failed = Some(format!(
                        "cannot list this node's BGPSessionStatus objects: {err}"
                    ));
                }
            }
        }
        for name in self.stale.clone() {
            match self.api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {
                    self.metrics.count("delete", true);
                    self.stale.remove(&name);
                }
                Err(kube::Error::Api(e)) if e.code == 404 => {
                    self.stale.remove(&name);
                }
                Err(err) => {
                    self.metrics.count("delete", false);
                    failed = Some(format!("cannot delete BGPSessionStatus {name}: {err}"));
                }
            }
        }
        match failed {
            None => {
                self.cleanup_failures = 0;
                self.retry_cleanup = None;
                None
            }
            Some(message) => {
                self.log(&message);
                self.cleanup_failures = self.cleanup_failures.saturating_add(1);
                let t = now + self.limits.backoff(self.cleanup_failures);
                self.retry_cleanup = Some(t);
                Some(t)
            }
        }
    }

    /// Logs an API error: at warn level when it differs from the last one, else at debug level.
    fn log(&mut self, message: &str) {
        if self.last_logged.as_deref() == Some(message) {
            tracing::debug!("{message}; retrying");
        } else {
            tracing::warn!("{message}; retrying");
            self.last_logged = Some(message.to_owned());
        }
    }
}

/// The spec and status `f` should have now (the tracker takes in what it sees at `wall`).
fn observe(
    f: &mut Followed,
    wall: Timestamp,
    node_excluded: Option<&str>,
) -> (BGPSessionStatusSpec, SessionStatus) {
    let s = f.inputs.session.borrow_and_update().clone();
    f.tracker.observe(s.state, s.last_down.as_ref(), wall);
    let bfd = match &mut f.inputs.bfd {
        BfdInput::Disabled => BfdView::Disabled,
        BfdInput::Failed => BfdView::Failed,
        BfdInput::Running(rx) => BfdView::State(rx.borrow_and_update().state),
    };
    let view = SessionView {
        state: s.state,
        negotiated: s.negotiated.as_deref(),
        prefixes_sent: s.prefixes_sent,
    };
    let status = desired_status(&f.inputs.facts, view, &f.tracker, bfd, node_excluded);
    (f.inputs.facts.spec.clone(), status)
}

/// Resolves when any open status channel of `peers` changes (never, when none is open).
async fn any_changed(peers: &mut BTreeMap<String, Followed>) {
    let mut waits: Vec<BoxFuture<'_, ()>> = Vec::new();
    for f in peers.values_mut() {
        let PeerInputs { session, bfd, .. } = &mut f.inputs;
        if session.has_changed().is_ok() {
            waits.push(session.changed().map(|_| ()).boxed());
        }
        if let BfdInput::Running(rx) = bfd
            && rx.has_changed().is_ok()
        {
            waits.push(rx.changed().map(|_| ()).boxed());
        }
    }
    if waits.is_empty() {
        std::future::pending::<()>().await;
    } else {
        futures::future::select_all(waits).await;
    }
}

/// Server-side applies the object `name` (with the spec, labels and owner when `with_spec`), then its status.
async fn apply(
    api: &Api<BGPSessionStatus>,
    name: &str,
    owner: &NodeOwner,
    spec: &BGPSessionStatusSpec,
    status: &SessionStatus,
    with_spec: bool,
) -> Result<(), kube::Error> {
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    let api_version = format!("{GROUP}/v1alpha1");
    if with_spec {
        let object = json!({
            "apiVersion": api_version,
            "kind": "BGPSessionStatus",
            "metadata": {
                "name": name,
                "labels": {NODE_LABEL: spec.node},
                "ownerReferences": [{
                    "apiVersion": "v1",
                    "kind": "Node",
                    "name": owner.name,
                    "uid": owner.uid,
                }],
            },
            "spec": spec,
        });
        api.patch(name, &pp, &Patch::Apply(&object)).await?;
    }
    let object = json!({
        "apiVersion": api_version,
        "kind": "BGPSessionStatus",
        "metadata": {"name": name},
        "status": status,
    });
    api.patch_status(name, &pp, &Patch::Apply(&object)).await?;
    Ok(())
}

//! The leader-election loop: reads and writes the Lease on the API server with the decisions of
//! [`super::leader`], every call bounded by a timeout, and publishes this replica's [`Role`].

use super::leader::{Decision, LeaseElection, Role, Tenure, Timing, released};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::PostParams;
use std::future::Future;
use tokio::sync::watch;
use tokio::time::Instant;

/// Where the Lease is and who we are.
#[derive(Clone, Debug)]
pub struct ElectionSettings {
    /// The Lease's namespace.
    pub namespace: String,
    /// The Lease's name.
    pub name: String,
    /// This replica's identity (pod name), written as `holderIdentity`.
    pub identity: String,
    /// The durations.
    pub timing: Timing,
}

/// A Lease call that failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The API server answered with an error, or could not be reached.
    #[error("{call} of Lease {lease} failed: {source}")]
    Api {
        /// `get`, `create` or `update`.
        call: &'static str,
        /// `namespace/name`.
        lease: String,
        /// What the client said.
        source: kube::Error,
    },
    /// No answer before the call's deadline (request timeout, or the end of the tenure).
    #[error("{call} of Lease {lease} timed out after {waited_ms} ms")]
    TimedOut {
        /// `get`, `create` or `update`.
        call: &'static str,
        /// `namespace/name`.
        lease: String,
        /// How long it waited.
        waited_ms: u128,
    },
}

/// The three Lease calls the election makes: the API server's ([`Api<Lease>`]), or an in-memory one in unit tests.
pub trait LeaseStore: Send + Sync {
    /// Reads the Lease (`None`: it does not exist).
    fn get(&self, name: &str) -> impl Future<Output = Result<Option<Lease>, kube::Error>> + Send;
    /// Creates it (409 if it exists).
    fn create(&self, lease: &Lease) -> impl Future<Output = Result<Lease, kube::Error>> + Send;
    /// Replaces it, conditional on its `resourceVersion` (409 if another replica wrote in between).
    fn replace(
        &self,
        name: &str,
        lease: &Lease,
    ) -> impl Future<Output = Result<Lease, kube::Error>> + Send;
}

impl LeaseStore for Api<Lease> {
    async fn get(&self, name: &str) -> Result<Option<Lease>, kube::Error> {
        self.get_opt(name).await
    }
    async fn create(&self, lease: &Lease) -> Result<Lease, kube::Error> {
        Api::create(self, &PostParams::default(), lease).await
    }
    async fn replace(&self, name: &str, lease: &Lease) -> Result<Lease, kube::Error> {
        Api::replace(self, name, &PostParams::default(), lease).await
    }
}

/// Who holds the Lease after a round.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Held {
    /// We do: it was created, renewed or taken over.
    ByUs,
    /// Someone else (named in the Lease, if it names one).
    ByOther(Option<String>),
}

/// Runs the election forever, publishing the role on `role`. A leader whose rounds fail steps down at its renew
/// deadline (see [`super::leader`]), even while a call hangs: every call is abandoned at the end of the tenure.
pub async fn run(store: impl LeaseStore, settings: ElectionSettings, role: watch::Sender<Role>) {
    let timing = settings.timing;
    let mut election = LeaseElection::new(settings.identity.clone());
    let mut tenure = Tenure::default();
    loop {
        let started = Instant::now();
        match round(&store, &settings, &mut election, &tenure, started).await {
            Ok(Held::ByUs) => {
                tenure.renewed(started, &timing);
                publish(&role, Role::Leader, &settings.identity);
            }
            Ok(Held::ByOther(holder)) => {
                tenure.lost();
                publish(&role, Role::Standby(holder), &settings.identity);
            }
            Err(err) => {
                tracing::warn!(error = %err, "lease round failed");
                if !expire(&mut tenure, &role, &settings) && *role.borrow() == Role::Unknown {
                    publish(&role, Role::Standby(None), &settings.identity);
                }
            }
        }
        let wake = tenure.next_round(started, &timing, Instant::now());
        tokio::time::sleep_until(wake).await;
        // The tenure may have ended while we slept: step down before starting the next round.
        expire(&mut tenure, &role, &settings);
    }
}

/// Steps down if the tenure has ended (the renew deadline passed without a successful round); returns whether it
/// did. The tenure is then cleared, so the next rounds get the full request timeout again.
fn expire(tenure: &mut Tenure, role: &watch::Sender<Role>, settings: &ElectionSettings) -> bool {
    if tenure.until().is_none() || tenure.leading(Instant::now()) {
        return false;
    }
    tenure.lost();
    tracing::warn!(identity = %settings.identity,
        renew_deadline_secs = settings.timing.renew_deadline().as_secs(),
        "lease not renewed within the renew deadline; stepping down");
    publish(role, Role::Standby(None), &settings.identity);
    true
}

fn publish(role: &watch::Sender<Role>, next: Role, identity: &str) {
    role.send_if_modified(|current| {
        if *current != next {
            tracing::info!(role = ?next, %identity, "leader election");
            *current = next;
            true
        } else {
            false
        }
    });
}

/// Runs one Lease call, failing it at `deadline`.
async fn bounded<T>(
    call: &'static str,
    settings: &ElectionSettings,
    deadline: Instant,
    fut: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, CallError> {
    let lease = || format!("{}/{}", settings.namespace, settings.name);
    let began = Instant::now();
    match tokio::time::timeout_at(deadline, fut).await {
        Ok(result) => result.map_err(|source| CallError::Api {
            call,
            lease: lease(),
            source,
        }),
        Err(_) => Err(CallError::TimedOut {
            call,
            lease: lease(),
            waited_ms: began.elapsed().as_millis(),
        }),
    }
}

fn is_conflict(err: &CallError) -> bool {
    matches!(err, CallError::Api { source: kube::Error::Api(status), .. } if status.code == 409)
}

/// One read-decide-write round, each call bounded by [`Timing::call_deadline`].
async fn round(
    store: &impl LeaseStore,
    settings: &ElectionSettings,
    election: &mut LeaseElection,
    tenure: &Tenure,
    now: Instant,
) -> Result<Held, CallError> {
    let timing = &settings.timing;
    let deadline = || timing.call_deadline(Instant::now(), tenure.until());
    let lease = bounded("get", settings, deadline(), store.get(&settings.name)).await?;
    let decision = election.decide(lease.as_ref(), now);
    let stamp = MicroTime(Timestamp::now());
    let duration = i32::try_from(timing.lease_duration().as_secs()).unwrap_or(i32::MAX);
    let written = match (decision, lease) {
        (Decision::Wait { holder }, _) => return Ok(Held::ByOther(holder)),
        (Decision::Create, _) => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(settings.name.clone()),
                    namespace: Some(settings.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(settings.identity.clone()),
                    lease_duration_seconds: Some(duration),
                    acquire_time: Some(stamp.clone()),
                    renew_time: Some(stamp),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            bounded("create", settings, deadline(), store.create(&lease)).await
        }
        (decision, Some(mut lease)) => {
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            if decision == Decision::TakeOver {
                spec.holder_identity = Some(settings.identity.clone());
                spec.acquire_time = Some(stamp.clone());
                spec.lease_transitions =
                    Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
            }
            spec.lease_duration_seconds = Some(duration);
            spec.renew_time = Some(stamp);
            // The replace carries the resourceVersion we read: if another replica wrote in between, it fails
            // with 409 and we stand by.
            let call = store.replace(&settings.name, &lease);
            bounded("update", settings, deadline(), call).await
        }
        (_, None) => return Ok(Held::ByOther(None)),
    };
    match written {
        Ok(_) => Ok(Held::ByUs),
        Err(err) if is_conflict(&err) => Ok(Held::ByOther(None)),
        Err(err) => Err(err),
    }
}

/// Releases the Lease if this replica holds it (call after the [`run`] loop stopped), like client-go's
/// `ReleaseOnCancel`; each call bounded by the request timeout. Returns whether it did. If another replica wrote
/// in between, the Lease is left alone.
pub async fn release(
    store: &impl LeaseStore,
    settings: &ElectionSettings,
) -> Result<bool, CallError> {
    let deadline = || settings.timing.call_deadline(Instant::now(), None);
    let Some(mut lease) = bounded("get", settings, deadline(), store.get(&settings.name)).await?
    else {
        return Ok(false);
    };
    let Some(spec) = lease.spec.as_ref() else {
        return Ok(false);
    };
    if spec.holder_identity.as_deref() != Some(settings.identity.as_str()) {
        return Ok(false);
    }
    lease.spec = Some(released(spec, Timestamp::now()));
    let call = store.replace(&settings.name, &lease);
    match bounded("update", settings, deadline(), call).await {
        Ok(_) => Ok(true),
        Err(err) if is_conflict(&err) => Ok(false),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
#[path = "election_tests.rs"]
mod tests;

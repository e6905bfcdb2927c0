//! Leader election over a `coordination.k8s.io/v1` Lease: one replica writes, the others stand by and know it.
//!
//! [`LeaseElection`] is the pure decision (what to do with the Lease as last read, given the local clock); the
//! [`run`] loop reads and writes the Lease and publishes the [`Role`]. Like client-go, expiry is judged by how
//! long the Lease has gone unchanged on *our* clock, never by comparing its timestamps with our clock, so clock
//! skew between replicas cannot make two leaders.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::PostParams;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// This replica's role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Not decided yet (the Lease has not been read).
    Unknown,
    /// This replica holds the Lease and writes.
    Leader,
    /// Another replica holds the Lease (its identity, if the Lease names one).
    Standby(Option<String>),
}

/// What to do after reading the Lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// No Lease exists: create it, holding it.
    Create,
    /// We hold it: renew it.
    Renew,
    /// It expired (unchanged for longer than its duration, or released): take it over.
    TakeOver,
    /// Someone else holds a live Lease.
    Wait {
        /// The holder.
        holder: Option<String>,
    },
}

/// The pure part of the election: remembers when the Lease last changed on our clock.
#[derive(Debug)]
pub struct LeaseElection {
    identity: String,
    /// The holder and renew time last seen, and when we first saw them.
    observed: Option<(Option<String>, Option<Timestamp>, Instant)>,
}

impl LeaseElection {
    /// An election for this replica's identity.
    pub fn new(identity: impl Into<String>) -> LeaseElection {
        LeaseElection {
            identity: identity.into(),
            observed: None,
        }
    }

    /// Decides what to do with the Lease just read (`None`: it does not exist), at local time `now`.
    pub fn decide(&mut self, lease: Option<&LeaseSpec>, now: Instant) -> Decision {
        let Some(spec) = lease else {
            self.observed = None;
            return Decision::Create;
        };
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        if holder.as_deref() == Some(self.identity.as_str()) {
            return Decision::Renew;
        }
        let Some(current) = holder.clone() else {
            return Decision::TakeOver;
        };
        let renew = spec.renew_time.as_ref().map(|t| t.0);
        let since = match &self.observed {
            Some((h, r, at)) if *h == holder && *r == renew => *at,
            _ => {
                self.observed = Some((holder.clone(), renew, now));
                now
            }
        };
        let duration = Duration::from_secs(
            u64::try_from(spec.lease_duration_seconds.unwrap_or(15)).unwrap_or(15),
        );
        if now.saturating_duration_since(since) >= duration {
            Decision::TakeOver
        } else {
            Decision::Wait {
                holder: Some(current),
            }
        }
    }
}

/// Settings of the election.
#[derive(Clone, Debug)]
pub struct ElectionSettings {
    /// The Lease's namespace.
    pub namespace: String,
    /// The Lease's name.
    pub name: String,
    /// This replica's identity (pod name).
    pub identity: String,
    /// How long a Lease stays valid without renewal.
    pub lease_duration: Duration,
    /// How often the Lease is read and renewed.
    pub retry_period: Duration,
}

/// Runs the election forever, publishing the role on `role`. A replica that fails to renew within the lease
/// duration steps down before anyone else can take over.
pub async fn run(client: kube::Client, settings: ElectionSettings, role: watch::Sender<Role>) {
    let api: Api<Lease> = Api::namespaced(client, &settings.namespace);
    let mut election = LeaseElection::new(settings.identity.clone());
    let mut last_renewed: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let outcome = step(&api, &settings, &mut election, now).await;
        let next = match outcome {
            Ok(Some(())) => {
                last_renewed = Some(now);
                Role::Leader
            }
            Ok(None) => Role::Standby(current_holder(&api, &settings.name).await),
            Err(err) => {
                tracing::warn!(error = %err, lease = %settings.name, "lease update failed");
                // Keep leading only while our last renewal is certainly still valid.
                let still_valid = last_renewed.is_some_and(|at| {
                    now.saturating_duration_since(at) + settings.retry_period
                        < settings.lease_duration
                });
                if still_valid && *role.borrow() == Role::Leader {
                    Role::Leader
                } else {
                    last_renewed = None;
                    Role::Standby(None)
                }
            }
        };
        role.send_if_modified(|current| {
            if *current != next {
                tracing::info!(role = ?next, identity = %settings.identity, "leader election");
                *current = next;
                true
            } else {
                false
            }
        });
        tokio::time::sleep(settings.retry_period).await;
    }
}

/// One read-decide-write round. `Ok(Some(()))`: we hold the Lease now; `Ok(None)`: someone else does.
async fn step(
    api: &Api<Lease>,
    settings: &ElectionSettings,
    election: &mut LeaseElection,
    now: Instant,
) -> Result<Option<()>, kube::Error> {
    let lease = api.get_opt(&settings.name).await?;
    let decision = election.decide(lease.as_ref().and_then(|l| l.spec.as_ref()), now);
    let stamp = MicroTime(Timestamp::now());
    let duration = i32::try_from(settings.lease_duration.as_secs()).unwrap_or(i32::MAX);
    match (decision, lease) {
        (Decision::Wait { .. }, _) => Ok(None),
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
            match api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Some(())),
                Err(kube::Error::Api(status)) if status.code == 409 => Ok(None),
                Err(err) => Err(err),
            }
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
            // `replace` carries the resourceVersion we read: if another replica wrote in between, it fails
            // with 409 and we stay standby.
            match api
                .replace(&settings.name, &PostParams::default(), &lease)
                .await
            {
                Ok(_) => Ok(Some(())),
                Err(kube::Error::Api(status)) if status.code == 409 => Ok(None),
                Err(err) => Err(err),
            }
        }
        (_, None) => Ok(None),
    }
}

/// The Lease as a leader that stops leaves it, like client-go's `ReleaseOnCancel`: no holder and a one-second
/// duration, so a standby takes it over at its next read instead of waiting for the Lease to expire. The
/// transition count is kept.
pub fn released(spec: &LeaseSpec, now: Timestamp) -> LeaseSpec {
    LeaseSpec {
        holder_identity: None,
        lease_duration_seconds: Some(1),
        acquire_time: Some(MicroTime(now)),
        renew_time: Some(MicroTime(now)),
        lease_transitions: spec.lease_transitions,
        ..spec.clone()
    }
}

/// Releases the Lease if this replica holds it (call after the [`run`] loop stopped). Returns whether it did.
/// If another replica wrote in between, the Lease is left alone.
pub async fn release(
    client: kube::Client,
    settings: &ElectionSettings,
) -> Result<bool, kube::Error> {
    let api: Api<Lease> = Api::namespaced(client, &settings.namespace);
    let Some(mut lease) = api.get_opt(&settings.name).await? else {
        return Ok(false);
    };
    let Some(spec) = lease.spec.as_ref() else {
        return Ok(false);
    };
    if spec.holder_identity.as_deref() != Some(settings.identity.as_str()) {
        return Ok(false);
    }
    lease.spec = Some(released(spec, Timestamp::now()));
    match api
        .replace(&settings.name, &PostParams::default(), &lease)
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(err) => Err(err),
    }
}

async fn current_holder(api: &Api<Lease>, name: &str) -> Option<String> {
    api.get_opt(name)
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec?.holder_identity)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held_by(holder: &str, renew_secs: i64) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(10),
            renew_time: Some(MicroTime(Timestamp::from_second(renew_secs).unwrap())),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn missing_lease_is_created_and_our_own_is_renewed() {
        let mut e = LeaseElection::new("a");
        let t0 = Instant::now();
        assert_eq!(e.decide(None, t0), Decision::Create);
        assert_eq!(e.decide(Some(&held_by("a", 1)), t0), Decision::Renew);
    }

    #[test]
    fn a_live_lease_of_another_replica_is_respected_until_unchanged_for_its_duration() {
        let mut e = LeaseElection::new("b");
        let t0 = Instant::now();
        let wait = Decision::Wait {
            holder: Some("a".into()),
        };
        assert_eq!(e.decide(Some(&held_by("a", 100)), t0), wait);
        assert_eq!(
            e.decide(Some(&held_by("a", 100)), t0 + Duration::from_secs(9)),
            wait
        );
        // A renewal restarts the clock.
        assert_eq!(
            e.decide(Some(&held_by("a", 105)), t0 + Duration::from_secs(9)),
            wait
        );
        assert_eq!(
            e.decide(Some(&held_by("a", 105)), t0 + Duration::from_secs(18)),
            wait
        );
        assert_eq!(
            e.decide(Some(&held_by("a", 105)), t0 + Duration::from_secs(19)),
            Decision::TakeOver
        );
    }

    #[test]
    fn releasing_clears_the_holder_and_a_standby_takes_over_at_once() {
        let mut spec = held_by("a", 1);
        spec.lease_transitions = Some(3);
        let now = Timestamp::from_second(50).unwrap();
        let out = released(&spec, now);
        assert_eq!(
            out,
            LeaseSpec {
                holder_identity: None,
                lease_duration_seconds: Some(1),
                acquire_time: Some(MicroTime(now)),
                renew_time: Some(MicroTime(now)),
                lease_transitions: Some(3),
                ..LeaseSpec::default()
            }
        );
        let mut standby = LeaseElection::new("b");
        let t0 = Instant::now();
        assert_eq!(
            standby.decide(Some(&spec), t0),
            Decision::Wait {
                holder: Some("a".into())
            }
        );
        assert_eq!(standby.decide(Some(&out), t0), Decision::TakeOver);
    }

    #[test]
    fn a_released_lease_is_taken_at_once() {
        let mut e = LeaseElection::new("b");
        let mut spec = held_by("a", 1);
        spec.holder_identity = Some(String::new());
        assert_eq!(e.decide(Some(&spec), Instant::now()), Decision::TakeOver);
    }
}

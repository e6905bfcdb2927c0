//! Leader election over a `coordination.k8s.io/v1` Lease, the pure part: one replica writes, the others stand by
//! and know it.
//!
//! [`LeaseElection`] decides what to do with the Lease as last read, given the local clock; [`Timing`] holds
//! client-go's three durations (lease duration, renew deadline, retry period) plus a timeout on every Lease call;
//! [`Tenure`] says until when the leader may write. The loop that reads and writes the Lease is
//! [`super::election`]. Like client-go, expiry is judged by how long the Lease has gone unchanged on *our* clock,
//! never by comparing its timestamps with our clock, so clock skew between replicas cannot make two leaders.
//!
//! Why the leader stops before a standby starts: a leader's tenure ends `renew_deadline` after the *start* of
//! its last successful round. A standby sees that round's renewal no earlier than the API server stored it,
//! which is after the round started, and waits `lease_duration` from then. As `renew_deadline < lease_duration`,
//! the old leader has stopped `lease_duration - renew_deadline` before the earliest takeover; every Lease call
//! is cut off at the tenure's end, so a hung call cannot keep it leading.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use std::time::Duration;
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
    /// The holder, renew time and resourceVersion last seen, and when we first saw them.
    observed: Option<(Observed, Instant)>,
}

/// What tells one version of the Lease from the next: any write changes its resourceVersion (client-go compares
/// the whole record, to the same effect).
type Observed = (Option<String>, Option<Timestamp>, Option<String>);

impl LeaseElection {
    /// An election for this replica's identity.
    pub fn new(identity: impl Into<String>) -> LeaseElection {
        LeaseElection {
            identity: identity.into(),
            observed: None,
        }
    }

    /// Decides what to do with the Lease just read (`None`: it does not exist), at local time `now`.
    pub fn decide(&mut self, lease: Option<&Lease>, now: Instant) -> Decision {
        let Some(lease) = lease else {
            self.observed = None;
            return Decision::Create;
        };
        let default = LeaseSpec::default();
        let spec = lease.spec.as_ref().unwrap_or(&default);
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        if holder.as_deref() == Some(self.identity.as_str()) {
            return Decision::Renew;
        }
        let Some(current) = holder.clone() else {
            return Decision::TakeOver;
        };
        let seen: Observed = (
            holder,
            spec.renew_time.as_ref().map(|t| t.0),
            lease.metadata.resource_version.clone(),
        );
        let since = match &self.observed {
            Some((last, at)) if *last == seen => *at,
            _ => {
                self.observed = Some((seen, now));
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

/// The election's durations: client-go's `LeaseDuration`, `RenewDeadline` and `RetryPeriod`, plus the timeout of
/// each Lease call. Built only through [`Timing::new`], which enforces `retry < renew deadline < lease`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    lease_duration: Duration,
    renew_deadline: Duration,
    retry_period: Duration,
    request_timeout: Duration,
}

/// Election durations that cannot work together.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TimingError {
    /// A duration is zero.
    #[error("--{flag} must be at least 1 second")]
    Zero {
        /// The flag.
        flag: &'static str,
    },
    /// The renew deadline is not below the lease duration.
    #[error(
        "--lease-renew-deadline-secs ({renew_deadline}s) must be below --lease-duration-secs ({lease_duration}s): \
         a leader that cannot renew must stop writing before a standby may take over"
    )]
    RenewDeadlineNotBelowLease {
        /// Seconds.
        renew_deadline: u64,
        /// Seconds.
        lease_duration: u64,
    },
    /// The retry period is not below the renew deadline.
    #[error(
        "--lease-retry-secs ({retry_period}s) must be below --lease-renew-deadline-secs ({renew_deadline}s): \
         a leader must get more than one try to renew before it steps down"
    )]
    RetryNotBelowRenewDeadline {
        /// Seconds.
        retry_period: u64,
        /// Seconds.
        renew_deadline: u64,
    },
}

impl Timing {
    /// Checks and builds the durations (whole seconds, as the flags give them).
    pub fn new(
        lease_duration_secs: u64,
        renew_deadline_secs: u64,
        retry_secs: u64,
        request_timeout_secs: u64,
    ) -> Result<Timing, TimingError> {
        for (value, flag) in [
            (lease_duration_secs, "lease-duration-secs"),
            (renew_deadline_secs, "lease-renew-deadline-secs"),
            (retry_secs, "lease-retry-secs"),
            (request_timeout_secs, "lease-request-timeout-secs"),
        ] {
            if value == 0 {
                return Err(TimingError::Zero { flag });
            }
        }
        if renew_deadline_secs >= lease_duration_secs {
            return Err(TimingError::RenewDeadlineNotBelowLease {
                renew_deadline: renew_deadline_secs,
                lease_duration: lease_duration_secs,
            });
        }
        if retry_secs >= renew_deadline_secs {
            return Err(TimingError::RetryNotBelowRenewDeadline {
                retry_period: retry_secs,
                renew_deadline: renew_deadline_secs,
            });
        }
        Ok(Timing {
            lease_duration: Duration::from_secs(lease_duration_secs),
            renew_deadline: Duration::from_secs(renew_deadline_secs),
            retry_period: Duration::from_secs(retry_secs),
            request_timeout: Duration::from_secs(request_timeout_secs),
        })
    }

    /// How long a Lease stays valid without renewal (written as `leaseDurationSeconds`).
    pub fn lease_duration(&self) -> Duration {
        self.lease_duration
    }

    /// How long after the start of its last successful round a leader that cannot renew keeps writing.
    pub fn renew_deadline(&self) -> Duration {
        self.renew_deadline
    }

    /// When a Lease call started at `now` is abandoned as failed: after the request timeout, and never later
    /// than the end of the tenure (`leading_until`), so the step-down is never late.
    pub fn call_deadline(&self, now: Instant, leading_until: Option<Instant>) -> Instant {
        let timeout = now + self.request_timeout;
        leading_until.map_or(timeout, |until| timeout.min(until))
    }
}

/// Until when this replica may write as the leader.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tenure {
    until: Option<Instant>,
}

impl Tenure {
    /// A round that started at `started` created, renewed or took over the Lease: lead until the renew deadline
    /// counted from the round's start (the Lease was written after it).
    pub fn renewed(&mut self, started: Instant, timing: &Timing) {
        self.until = Some(started + timing.renew_deadline);
    }

    /// Another replica holds the Lease: stop at once.
    pub fn lost(&mut self) {
        self.until = None;
    }

    /// Whether this replica leads at `now` (strictly before the end of its tenure).
    pub fn leading(&self, now: Instant) -> bool {
        self.until.is_some_and(|until| now < until)
    }

    /// The end of the tenure, if this replica has one.
    pub fn until(&self) -> Option<Instant> {
        self.until
    }

    /// When the next round starts, the last having started at `started`: a retry period later, or at the end of
    /// the tenure if that comes first (to step down on time even while a round is failing).
    pub fn next_round(&self, started: Instant, timing: &Timing, now: Instant) -> Instant {
        let next = started + timing.retry_period;
        match self.until {
            Some(until) if until > now => next.min(until),
            _ => next,
        }
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

    fn lease(spec: LeaseSpec) -> Lease {
        Lease {
            spec: Some(spec),
            ..Lease::default()
        }
    }

    #[test]
    fn missing_lease_is_created_and_our_own_is_renewed() {
        let mut e = LeaseElection::new("a");
        let t0 = Instant::now();
        assert_eq!(e.decide(None, t0), Decision::Create);
        assert_eq!(e.decide(Some(&lease(held_by("a", 1))), t0), Decision::Renew);
    }

    #[test]
    fn a_live_lease_of_another_replica_is_respected_until_unchanged_for_its_duration() {
        let mut e = LeaseElection::new("b");
        let t0 = Instant::now();
        let wait = Decision::Wait {
            holder: Some("a".into()),
        };
        assert_eq!(e.decide(Some(&lease(held_by("a", 100))), t0), wait);
        assert_eq!(
            e.decide(Some(&lease(held_by("a", 100))), t0 + Duration::from_secs(9)),
            wait
        );
        // A renewal restarts the clock.
        assert_eq!(
            e.decide(Some(&lease(held_by("a", 105))), t0 + Duration::from_secs(9)),
            wait
        );
        assert_eq!(
            e.decide(
                Some(&lease(held_by("a", 105))),
                t0 + Duration::from_secs(18)
            ),
            wait
        );
        assert_eq!(
            e.decide(
                Some(&lease(held_by("a", 105))),
                t0 + Duration::from_secs(19)
            ),
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
            standby.decide(Some(&lease(spec.clone())), t0),
            Decision::Wait {
                holder: Some("a".into())
            }
        );
        assert_eq!(standby.decide(Some(&lease(out)), t0), Decision::TakeOver);
    }

    #[test]
    fn a_released_lease_is_taken_at_once() {
        let mut e = LeaseElection::new("b");
        let mut spec = held_by("a", 1);
        spec.holder_identity = Some(String::new());
        assert_eq!(
            e.decide(Some(&lease(spec.clone())), Instant::now()),
            Decision::TakeOver
        );
    }

    #[test]
    fn any_write_restarts_the_expiry_clock_even_with_the_same_renew_time() {
        let mut e = LeaseElection::new("b");
        let t0 = Instant::now();
        let mut l = lease(held_by("a", 100));
        l.metadata.resource_version = Some("1".into());
        let wait = Decision::Wait {
            holder: Some("a".into()),
        };
        assert_eq!(e.decide(Some(&l), t0), wait);
        l.metadata.resource_version = Some("2".into());
        assert_eq!(e.decide(Some(&l), t0 + Duration::from_secs(9)), wait);
        assert_eq!(e.decide(Some(&l), t0 + Duration::from_secs(18)), wait);
        assert_eq!(
            e.decide(Some(&l), t0 + Duration::from_secs(19)),
            Decision::TakeOver
        );
    }

    #[test]
    fn timing_needs_retry_below_renew_deadline_below_lease_duration() {
        assert_eq!(
            Timing::new(15, 15, 2, 2),
            Err(TimingError::RenewDeadlineNotBelowLease {
                renew_deadline: 15,
                lease_duration: 15
            })
        );
        assert_eq!(
            Timing::new(15, 10, 10, 2),
            Err(TimingError::RetryNotBelowRenewDeadline {
                retry_period: 10,
                renew_deadline: 10
            })
        );
        assert_eq!(
            Timing::new(15, 10, 2, 0),
            Err(TimingError::Zero {
                flag: "lease-request-timeout-secs"
            })
        );
        assert_eq!(
            Timing::new(15, 16, 2, 2).unwrap_err().to_string(),
            "--lease-renew-deadline-secs (16s) must be below --lease-duration-secs (15s): a leader that cannot \
             renew must stop writing before a standby may take over"
        );
        let t = Timing::new(15, 10, 2, 2).unwrap();
        assert_eq!(
            (t.lease_duration(), t.renew_deadline(), t.retry_period),
            (
                Duration::from_secs(15),
                Duration::from_secs(10),
                Duration::from_secs(2)
            )
        );
    }

    #[test]
    fn a_call_is_cut_off_at_the_request_timeout_or_the_end_of_the_tenure() {
        let t = Timing::new(15, 10, 2, 3).unwrap();
        let t0 = Instant::now();
        assert_eq!(t.call_deadline(t0, None), t0 + Duration::from_secs(3));
        let until = t0 + Duration::from_secs(1);
        assert_eq!(t.call_deadline(t0, Some(until)), until);
        let later = t0 + Duration::from_secs(60);
        assert_eq!(
            t.call_deadline(t0, Some(later)),
            t0 + Duration::from_secs(3)
        );
    }

    #[test]
    fn a_tenure_ends_at_the_renew_deadline_after_the_last_good_round_started() {
        let t = Timing::new(15, 10, 2, 2).unwrap();
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut tenure = Tenure::default();
        assert!(!tenure.leading(t0));
        tenure.renewed(t0, &t);
        assert!(tenure.leading(t0 + s(9)));
        assert!(!tenure.leading(t0 + s(10)));
        assert!(t0 + t.renew_deadline() < t0 + t.lease_duration());
        // Rounds every retry period; the last one before the deadline wakes exactly at it.
        assert_eq!(tenure.next_round(t0, &t, t0 + s(1)), t0 + s(2));
        assert_eq!(tenure.next_round(t0 + s(9), &t, t0 + s(9)), t0 + s(10));
        // A renewal moves the end.
        tenure.renewed(t0 + s(8), &t);
        assert_eq!(tenure.until(), Some(t0 + s(18)));
        tenure.lost();
        assert!(!tenure.leading(t0 + s(8)));
        assert_eq!(tenure.next_round(t0 + s(8), &t, t0 + s(8)), t0 + s(10));
    }
}

//! When to write one `BGPSessionStatus` object: never when nothing changed, at once (at most one write per
//! [`Limits::prompt_gap`]) when anything but the prefix count changed, and a prefix count alone at most once
//! per [`Limits::slow_interval`], in the object's own slot of that interval: slots repeat every interval from a
//! grid origin all speakers share (a wall-clock multiple of the interval, [`grid_origin`]), each object's
//! offset into it hashed from its name, so that churn on every node spreads its writes over the interval
//! instead of sending them all at once. A failed write is retried with a backoff. Pure: the caller passes the
//! time.

use crate::crds::session_status::{BGPSessionStatusSpec, SessionStatus};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::{Duration, Instant, SystemTime};

/// The writer's timing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The least time between two writes of one object (a session flapping every second costs one write a
    /// second at most; the connect-retry backoff, 1 s to 60 s, makes a down peer cost about two a minute).
    pub prompt_gap: Duration,
    /// The period of the slots of writes whose only change is `prefixesSent`: one such write per object per
    /// period, in the object's slot (the metric `ferrolb_bgp_announced_prefixes_total` has the live count).
    pub slow_interval: Duration,
    /// The first retry delay after a failed write; it doubles up to [`Limits::max_retry`].
    pub retry: Duration,
    /// The longest retry delay.
    pub max_retry: Duration,
}

impl Default for Limits {
    /// 1 s between writes, 30 s for prefix counts alone, retries after 5 s doubling to 60 s.
    fn default() -> Self {
        Limits {
            prompt_gap: Duration::from_secs(1),
            slow_interval: Duration::from_secs(30),
            retry: Duration::from_secs(5),
            max_retry: Duration::from_secs(60),
        }
    }
}

impl Limits {
    /// The delay before retrying after `failures` failed attempts in a row (1: [`Limits::retry`]).
    pub fn backoff(&self, failures: u32) -> Duration {
        self.retry
            .saturating_mul(1 << failures.saturating_sub(1).min(16))
            .min(self.max_retry)
    }
}

/// The instant of this process that corresponds to the last wall-clock multiple of `interval` before
/// `wall_now` (the time since the UNIX epoch at `now`): the slots' origin, the same on every node whose clock is
/// synchronised.
pub fn grid_origin(now: Instant, wall_now: Duration, interval: Duration) -> Instant {
    let interval = interval.as_nanos().max(1);
    let into = u64::try_from(wall_now.as_nanos() % interval).unwrap_or(0);
    now.checked_sub(Duration::from_nanos(into)).unwrap_or(now)
}

/// [`grid_origin`] for the current time.
pub fn grid_origin_now(interval: Duration) -> Instant {
    let wall = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    grid_origin(Instant::now(), wall, interval)
}

/// What to do about one object now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// The object says what it should: nothing to write.
    Skip,
    /// Write it now.
    Now,
    /// Write it at this time (look again then).
    At(Instant),
}

/// How the desired object differs from the one last written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Not at all.
    None,
    /// Only `status.prefixesSent`.
    PrefixCount,
    /// Something else (or the object was never written).
    Other,
}

/// The comparison behind [`Change`].
pub fn change(
    written: Option<&(BGPSessionStatusSpec, SessionStatus)>,
    spec: &BGPSessionStatusSpec,
    status: &SessionStatus,
) -> Change {
    let Some((old_spec, old)) = written else {
        return Change::Other;
    };
    if old_spec != spec {
        return Change::Other;
    }
    if old == status {
        return Change::None;
    }
    let same_but_count = SessionStatus {
        prefixes_sent: old.prefixes_sent,
        ..status.clone()
    };
    if same_but_count == *old {
        Change::PrefixCount
    } else {
        Change::Other
    }
}

/// The write history of one object.
#[derive(Clone, Debug)]
pub struct ObjectLimiter {
    limits: Limits,
    /// Where the slots start ([`grid_origin`]).
    origin: Instant,
    /// This object's offset into [`Limits::slow_interval`] (from its name).
    phase: Duration,
    written: Option<(BGPSessionStatusSpec, SessionStatus)>,
    written_at: Option<Instant>,
    /// Since when a prefix-count-only change waits.
    count_pending_since: Option<Instant>,
    /// Failed writes in a row, and when the last one failed.
    failures: u32,
    failed_at: Option<Instant>,
}

impl ObjectLimiter {
    /// A limiter for the object called `name`, never written, with slots from `origin`.
    pub fn new(name: &str, limits: Limits, origin: Instant) -> ObjectLimiter {
        let mut h = DefaultHasher::new();
        name.hash(&mut h);
        let interval_ms = u64::try_from(limits.slow_interval.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        ObjectLimiter {
            limits,
            origin,
            phase: Duration::from_millis(h.finish() % interval_ms),
            written: None,
            written_at: None,
            count_pending_since: None,
            failures: 0,
            failed_at: None,
        }
    }

    /// Whether and when to write `spec` and `status`, at `now`.
    pub fn next(
        &mut self,
        spec: &BGPSessionStatusSpec,
        status: &SessionStatus,
        now: Instant,
    ) -> Next {
        let change = change(self.written.as_ref(), spec, status);
        if change != Change::PrefixCount {
            self.count_pending_since = None;
        }
        let mut due = match change {
            Change::None => return Next::Skip,
            Change::Other => self.written_at.map(|t| t + self.limits.prompt_gap),
            Change::PrefixCount => {
                let since = *self.count_pending_since.get_or_insert(now);
                // The slot after the one of the last write (which may have landed a little after its slot):
                // one count-only write per object per interval.
                let earliest = self
                    .written_at
                    .map_or(since, |t| (t + self.limits.slow_interval / 2).max(since));
                Some(self.slot_from(earliest))
            }
        };
        if let Some(failed) = self.failed_at {
            let backoff = self.limits.backoff(self.failures);
            due = Some(due.map_or(failed + backoff, |d| d.max(failed + backoff)));
        }
        match due {
            Some(t) if t > now => Next::At(t),
            _ => Next::Now,
        }
    }

    /// This object's first slot at or after `t`.
    fn slot_from(&self, t: Instant) -> Instant {
        let interval = self.limits.slow_interval.as_nanos().max(1);
        let after = t.saturating_duration_since(self.origin).as_nanos();
        let period_start = after - after % interval;
        let slot = self.origin
            + Duration::from_nanos(u64::try_from(period_start).unwrap_or(u64::MAX))
            + self.phase;
        if slot >= t {
            slot
        } else {
            slot + self.limits.slow_interval
        }
    }

    /// Whether `spec` (with the labels and owner) is what was last written: then only the status needs
    /// writing.
    pub fn spec_written(&self, spec: &BGPSessionStatusSpec) -> bool {
        self.written.as_ref().is_some_and(|(s, _)| s == spec)
    }

    /// Records a successful write of `spec` and `status` at `now`.
    pub fn written(&mut self, spec: BGPSessionStatusSpec, status: SessionStatus, now: Instant) {
        self.written = Some((spec, status));
        self.written_at = Some(now);
        self.count_pending_since = None;
        self.failures = 0;
        self.failed_at = None;
    }

    /// Records a failed write at `now`. With `forget`, the object is taken as never written (the next write
    /// sends everything again: it may have been deleted meanwhile).
    pub fn failed(&mut self, now: Instant, forget: bool) {
        self.failures = self.failures.saturating_add(1);
        self.failed_at = Some(now);
        if forget {
            self.written = None;
        }
    }
}

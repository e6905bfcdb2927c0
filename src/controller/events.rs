//! Recording Events without slowing the status writes.
//!
//! Warnings (refusals, invalid configuration) are user-facing: every one is published, in the background. Routine
//! `Normal` notices (`IPAllocated`) go through a second, lower-priority lane: they are published only while no
//! status writes are in flight, at most [`NOTICE_BURST`] at once and [`NOTICES_PER_SECOND`] after that, so 1,000
//! new Services cost 1,000 status writes while they are being assigned, not 2,000 API writes. A notice that does
//! not fit the lane's queue is dropped and counted, never waited for.

use super::leader::Role;
use crate::event_recorder::EventRecorder;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::Event;
use prometheus_client::metrics::counter::Counter;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// Notices published back to back after a quiet period.
pub const NOTICE_BURST: u32 = 10;
/// Notices per second once the burst is spent.
pub const NOTICES_PER_SECOND: u32 = 5;
/// Notices that may wait for their turn; more are dropped (and counted).
const NOTICE_QUEUE: usize = 2048;
/// Warnings that may wait; more are dropped (and logged): the API server is then failing anyway.
const WARNING_QUEUE: usize = 8192;
/// Warnings in flight at once.
const WARNING_CONCURRENCY: usize = 4;

/// A token bucket: how long the next notice must wait. Pure (the caller passes the time). Kept as credit time
/// (one token = one interval), so the arithmetic is exact.
#[derive(Debug, Clone)]
pub struct NoticeBudget {
    interval: Duration,
    capacity: Duration,
    credit: Duration,
    at: Instant,
}

impl NoticeBudget {
    /// A full bucket of `burst` tokens, refilled at `per_second`.
    pub fn new(burst: u32, per_second: u32, now: Instant) -> NoticeBudget {
        let interval = Duration::from_secs(1) / per_second.max(1);
        let capacity = interval * burst.max(1);
        NoticeBudget {
            interval,
            capacity,
            credit: capacity,
            at: now,
        }
    }

    /// Takes a token if one is there (returns zero), else returns how long until one is.
    pub fn take(&mut self, now: Instant) -> Duration {
        self.credit = (self.credit + now.saturating_duration_since(self.at)).min(self.capacity);
        self.at = now.max(self.at);
        if self.credit >= self.interval {
            self.credit -= self.interval;
            Duration::ZERO
        } else {
            self.interval - self.credit
        }
    }
}

/// Where the controller hands its Events.
#[derive(Clone, Debug)]
pub struct EventSink {
    warnings: mpsc::Sender<(Event, ObjectReference)>,
    notices: mpsc::Sender<(Event, ObjectReference)>,
    problems: mpsc::Sender<(Event, ObjectReference)>,
    dropped_notices: Counter,
}

impl EventSink {
    /// Starts the publishing lanes. Notices wait while `writing` is true. Events are published only while `role`
    /// is [`Role::Leader`]: what is still queued when the replica steps down is dropped.
    pub fn spawn(
        recorder: EventRecorder,
        writing: watch::Receiver<bool>,
        role: watch::Receiver<Role>,
        dropped_notices: Counter,
    ) -> EventSink {
        let (warnings, warning_rx) = mpsc::channel(WARNING_QUEUE);
        let (notices, notice_rx) = mpsc::channel(NOTICE_QUEUE);
        let (problems, problem_rx) = mpsc::channel(NOTICE_QUEUE);
        let recorder = Leading { recorder, role };
        tokio::spawn(publish_warnings(recorder.clone(), warning_rx));
        tokio::spawn(publish_budgeted(recorder.clone(), problem_rx, None));
        tokio::spawn(publish_budgeted(recorder, notice_rx, Some(writing)));
        EventSink {
            warnings,
            notices,
            problems,
            dropped_notices,
        }
    }

    /// Queues a Warning (never rate-limited).
    pub fn warning(&self, event: Event, regarding: ObjectReference) {
        if self.warnings.try_send((event, regarding)).is_err() {
            tracing::warn!("event queue full; warning event dropped");
        }
    }

    /// Queues an Event about a configuration object (rate-limited like the notices, but not waiting for status
    /// writes; dropped, and logged, when its queue is full).
    pub fn rate_limited(&self, event: Event, regarding: ObjectReference) {
        if self.problems.try_send((event, regarding)).is_err() {
            tracing::warn!("event queue full; configuration event dropped");
        }
    }

    /// Queues a routine Normal notice (rate-limited, dropped when its queue is full).
    pub fn notice(&self, event: Event, regarding: ObjectReference) {
        if self.notices.try_send((event, regarding)).is_err() {
            self.dropped_notices.inc();
            tracing::debug!("notice queue full; normal event dropped");
        }
    }
}

/// The recorder, used only while this replica leads.
#[derive(Clone)]
struct Leading {
    recorder: EventRecorder,
    role: watch::Receiver<Role>,
}

async fn publish(leading: &Leading, event: &Event, regarding: &ObjectReference) {
    if *leading.role.borrow() != Role::Leader {
        tracing::debug!(object = ?regarding.name, reason = %event.reason, "not leading; event dropped");
        return;
    }
    if let Err(err) = leading.recorder.publish(event, regarding).await {
        tracing::warn!(object = ?regarding.name, reason = %event.reason, error = %err,
            "cannot record event");
    }
}

async fn publish_warnings(recorder: Leading, rx: mpsc::Receiver<(Event, ObjectReference)>) {
    use futures::StreamExt;
    let stream =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) });
    stream
        .for_each_concurrent(WARNING_CONCURRENCY, |(event, regarding)| {
            let recorder = recorder.clone();
            async move { publish(&recorder, &event, &regarding).await }
        })
        .await;
}

/// Publishes at most [`NOTICE_BURST`] at once and [`NOTICES_PER_SECOND`] after that; with `writing`, only while
/// no status writes are in flight.
async fn publish_budgeted(
    recorder: Leading,
    mut rx: mpsc::Receiver<(Event, ObjectReference)>,
    mut writing: Option<watch::Receiver<bool>>,
) {
    let mut budget = NoticeBudget::new(NOTICE_BURST, NOTICES_PER_SECOND, Instant::now());
    while let Some((event, regarding)) = rx.recv().await {
        loop {
            // Status writes first: wait until none is in flight.
            if let Some(writing) = writing.as_mut()
                && writing.wait_for(|busy| !*busy).await.is_err()
            {
                return;
            }
            let wait = budget.take(Instant::now());
            if wait.is_zero() {
                break;
            }
            tokio::time::sleep(wait).await;
        }
        publish(&recorder, &event, &regarding).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_allows_a_burst_then_the_steady_rate() {
        let t0 = Instant::now();
        let mut budget = NoticeBudget::new(3, 5, t0);
        for _ in 0..3 {
            assert_eq!(budget.take(t0), Duration::ZERO);
        }
        // Empty: the next token comes in 1/5 s.
        assert_eq!(budget.take(t0), Duration::from_millis(200));
        assert_eq!(
            budget.take(t0 + Duration::from_millis(100)),
            Duration::from_millis(100)
        );
        assert_eq!(budget.take(t0 + Duration::from_millis(200)), Duration::ZERO);
        // A long quiet period refills to the burst, no further.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(budget.take(later), Duration::ZERO);
        }
        assert!(!budget.take(later).is_zero());
    }
}

//! Kubernetes Events of the speaker (`nodeAnnouncing` / `nodeWithdrew`), published in the background and
//! rate-limited.

use crate::event_recorder::EventRecorder;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::Event;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// At most this many Events are published per second (the rest are dropped and counted in the log).
const EVENTS_PER_SECOND: u32 = 20;
/// Events that may wait for their turn: about 13 s at [`EVENTS_PER_SECOND`]. More are dropped at once (a
/// speaker that starts with 10,000 Services would otherwise hold a thousand Events, about 0.5 MB, only to
/// publish them a minute late).
const EVENT_QUEUE: usize = 256;

/// Publishes Events in the background, at most [`EVENTS_PER_SECOND`], dropping (and logging) the excess.
pub fn spawn_event_publisher(recorder: EventRecorder) -> mpsc::Sender<(Event, ObjectReference)> {
    let (tx, mut rx) = mpsc::channel::<(Event, ObjectReference)>(EVENT_QUEUE);
    tokio::spawn(async move {
        let mut window = Instant::now();
        let mut sent = 0u32;
        let mut dropped = 0u64;
        while let Some((event, reference)) = rx.recv().await {
            if window.elapsed() >= Duration::from_secs(1) {
                if dropped > 0 {
                    tracing::info!(dropped, "events dropped by the rate limit");
                }
                window = Instant::now();
                sent = 0;
                dropped = 0;
            }
            if sent >= EVENTS_PER_SECOND {
                dropped += 1;
                continue;
            }
            sent += 1;
            if let Err(err) = recorder.publish(&event, &reference).await {
                tracing::warn!(object = ?reference.name, reason = %event.reason, error = %err, "cannot record event");
            }
        }
    });
    tx
}

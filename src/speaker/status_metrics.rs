//! Followers of the sessions' status channels: they keep the per-peer metrics current and observe the
//! event-to-UPDATE latency once a handed-over route change is written.

use super::metrics::{PeerErrorLabels, PeerLabels, SpeakerMetrics, state_number};
use ferrolb_bgp::fsm::State;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::watch;

/// Follows one session's status: metrics, and the event-to-UPDATE latency once a handed-over change is written.
pub async fn monitor(
    mut status: tokio::sync::watch::Receiver<ferrolb_bgp::session::SessionStatus>,
    peer: String,
    handoff: Arc<Mutex<Option<Instant>>>,
    metrics: SpeakerMetrics,
) {
    let labels = PeerLabels { peer: peer.clone() };
    let mut last_error: Option<String> = None;
    loop {
        let s = status.borrow_and_update().clone();
        let up = s.state == State::Established;
        metrics.session_up.get_or_create(&labels).set(i64::from(up));
        metrics
            .session_state
            .get_or_create(&labels)
            .set(state_number(s.state));
        metrics
            .announced_prefixes
            .get_or_create(&labels)
            .set(i64::try_from(s.prefixes_sent).unwrap_or(i64::MAX));
        if let Some(reason) = &s.last_down {
            let text = reason.to_string();
            if last_error.as_deref() != Some(&text) {
                if let Some(old) = last_error.take() {
                    metrics.last_error.remove(&PeerErrorLabels {
                        peer: peer.clone(),
                        error: old,
                    });
                }
                metrics
                    .last_error
                    .get_or_create(&PeerErrorLabels {
                        peer: peer.clone(),
                        error: text.clone(),
                    })
                    .set(1);
                last_error = Some(text);
            }
        }
        // The driver publishes its status after writing a route change (or the initial table).
        if up && s.negotiated.is_some() {
            let since = handoff.lock().ok().and_then(|mut h| h.take());
            if let Some(since) = since {
                metrics
                    .event_to_update
                    .observe(since.elapsed().as_secs_f64());
                metrics.route_updates.get_or_create(&labels).inc();
            }
        }
        if s.finished || status.changed().await.is_err() {
            return;
        }
    }
}

/// Records that the route change of events that began arriving at `since` is being handed to an Established
/// session; [`monitor`] observes the latency when the session next publishes its status, which its task does
/// after writing the change to the socket. Call it before handing the routes over (the task may write and
/// publish before the hand-over returns), and only for a change that is not empty (an empty one is never
/// written, and the mark would be taken by a later, unrelated write). The oldest unobserved mark is kept.
pub fn mark_handoff(handoff: &Mutex<Option<Instant>>, since: Option<Instant>, established: bool) {
    if let (Some(since), true, Ok(mut h)) = (since, established, handoff.lock()) {
        h.get_or_insert(since);
    }
}

/// Follows one BFD session's status into the `ferrolb_bfd_*` metrics.
pub async fn monitor_bfd(
    mut status: watch::Receiver<ferrolb_bfd::SessionStatus>,
    peer: String,
    metrics: SpeakerMetrics,
) {
    let labels = PeerLabels { peer };
    let mut counted = 0u64;
    loop {
        let s = *status.borrow_and_update();
        metrics
            .bfd_session_up
            .get_or_create(&labels)
            .set(i64::from(s.state == ferrolb_bfd::State::Up));
        // The driver reports a running total; the counter takes what is new since the last look.
        metrics
            .bfd_transitions
            .get_or_create(&labels)
            .inc_by(s.transitions.saturating_sub(counted));
        counted = counted.max(s.transitions);
        metrics
            .bfd_detection_time
            .get_or_create(&labels)
            .set(s.detection_time.map_or(0.0, |d| d.as_secs_f64()));
        if status.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_hand_off_is_marked_only_for_an_established_session_and_keeps_the_oldest_event() {
        let h = Mutex::new(None);
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_millis(5);
        mark_handoff(&h, Some(t0), false);
        assert_eq!(*h.lock().unwrap(), None);
        mark_handoff(&h, None, true);
        assert_eq!(*h.lock().unwrap(), None);
        mark_handoff(&h, Some(t0), true);
        mark_handoff(&h, Some(t1), true);
        assert_eq!(*h.lock().unwrap(), Some(t0));
    }
}

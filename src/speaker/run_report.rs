//! The speaker's reports on Services: the per-Service announced metric and the `nodeAnnouncing` /
//! `nodeWithdrew` Events (an `impl` block of [`Speaker`], kept apart so that run.rs stays one screenful of glue).

use super::Speaker;
use crate::speaker::metrics::ServiceLabels;
use ferrolb_announce::DecisionState;
use kube::runtime::events::{Event, EventType};

impl Speaker {
    /// Updates the per-Service metric and records `nodeAnnouncing` / `nodeWithdrew` Events on changes. Only new,
    /// changed and removed Services are touched (a burst of changes to one Service costs no pass over the metric
    /// family of all of them).
    pub(super) fn report_services(&mut self, state: &DecisionState) {
        for (key, d) in state.services() {
            let known = self.announced.get(&**key).copied();
            if known == Some(d.announce()) {
                continue;
            }
            self.metrics
                .service_announced
                .get_or_create(&ServiceLabels {
                    service: key.clone(),
                })
                .set(i64::from(d.announce()));
            if known.unwrap_or(false) != d.announce() {
                self.service_event(key, d.announce(), state);
            }
            self.announced.insert(key.clone(), d.announce());
        }
        // Updated in place: a second map of every Service is never built.
        let metrics = &self.metrics;
        self.announced.retain(|key, before| {
            if state.service(key).is_some() {
                return true;
            }
            metrics.service_announced.remove(&ServiceLabels {
                service: key.clone(),
            });
            if *before {
                tracing::info!(service = %key, "service gone; no longer announced");
            }
            false
        });
    }

    /// [`Self::report_services`] for the one Service `key`, decided again.
    pub(super) fn report_service(&mut self, key: &str, state: &DecisionState) {
        let known = self.announced.get(key).copied();
        match state
            .service_key(key)
            .zip(state.service(key).map(|d| d.announce()))
        {
            Some((shared, announce)) if known != Some(announce) => {
                let labels = ServiceLabels {
                    service: shared.clone(),
                };
                self.metrics
                    .service_announced
                    .get_or_create(&labels)
                    .set(i64::from(announce));
                if known.unwrap_or(false) != announce {
                    self.service_event(key, announce, state);
                }
                self.announced.insert(shared.clone(), announce);
            }
            Some(_) => {}
            None => {
                if let Some((gone, before)) = self.announced.remove_entry(key) {
                    self.metrics.service_announced.remove(&ServiceLabels {
                        service: gone.clone(),
                    });
                    if before {
                        tracing::info!(service = %gone, "service gone; no longer announced");
                    }
                }
            }
        }
    }

    fn service_event(&self, key: &str, announce: bool, state: &DecisionState) {
        let Some((ns, name)) = key.split_once('/') else {
            return;
        };
        let Some(svc) = self.services.get(ns, name) else {
            return;
        };
        let ips = state
            .service(key)
            .map(|d| {
                d.announced_ips()
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        let (reason, note) = if announce {
            (
                "nodeAnnouncing",
                format!("announcing from node {}: {ips}", self.args.node_name),
            )
        } else {
            (
                "nodeWithdrew",
                format!("node {} withdrew the announcement", self.args.node_name),
            )
        };
        tracing::info!(service = %key, reason, "{note}");
        let ev = Event {
            type_: EventType::Normal,
            reason: reason.into(),
            note: Some(note),
            action: "Announce".into(),
            secondary: None,
        };
        if self.events.try_send((ev, svc.object_reference())).is_err() {
            tracing::debug!(service = %key, "event queue full; event dropped");
        }
    }
}

//! The speaker's reports on Services: the per-Service announced metric and the `nodeAnnouncing` /
//! `nodeWithdrew` Events (an `impl` block of [`Speaker`], kept apart so that run.rs stays one screenful of glue).

use super::Speaker;
use ferrolb_announce::DecisionState;
use kube::runtime::events::{Event, EventType};

impl Speaker {
    /// Updates the record behind `ferrolb_speaker_service_announced` and records `nodeAnnouncing` /
    /// `nodeWithdrew` Events, for every Service (after a full recompute): only new, changed and removed Services
    /// change it. A change to some Services goes through [`Self::report_service`], with no pass over all.
    pub(super) fn report_services(&mut self, state: &DecisionState) {
        let mut announced = self.metrics.service_announced.entries();
        for (key, d) in state.services() {
            let known = announced.get(&**key).copied();
            if known == Some(d.announce()) {
                continue;
            }
            if known.unwrap_or(false) != d.announce() {
                self.service_event(key, d.announce(), state);
            }
            announced.insert(key.clone(), d.announce());
        }
        announced.retain(|key, before| {
            if state.service(key).is_some() {
                return true;
            }
            if *before {
                tracing::info!(service = %key, "service gone; no longer announced");
            }
            false
        });
    }

    /// [`Self::report_services`] for the one Service `key`, decided again.
    pub(super) fn report_service(&mut self, key: &str, state: &DecisionState) {
        let mut announced = self.metrics.service_announced.entries();
        let known = announced.get(key).copied();
        match state
            .service_key(key)
            .zip(state.service(key).map(|d| d.announce()))
        {
            Some((shared, announce)) if known != Some(announce) => {
                if known.unwrap_or(false) != announce {
                    self.service_event(key, announce, state);
                }
                announced.insert(shared.clone(), announce);
            }
            Some(_) => {}
            None => {
                if announced.remove(key) == Some(true) {
                    tracing::info!(service = %key, "service gone; no longer announced");
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

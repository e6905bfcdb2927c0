//! `ferrolb_speaker_service_announced{service}`, encoded when `/metrics` is scraped from the speaker's own record
//! of which Services it announces: one entry per Service, keyed by the decision's shared name, and no metric
//! family beside it (a `Family` kept a label set and a gauge per Service: about 0.7 MB at 10,000 Services).

use super::metric_labels::ServiceLabels;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Whether this node announces each Service the decision knows, by `namespace/name`; a [`Collector`] registered
/// with the speaker's registry. Cheap to clone (shared).
#[derive(Clone, Debug, Default)]
pub struct ServiceAnnounced(Arc<Mutex<BTreeMap<Arc<str>, bool>>>);

impl ServiceAnnounced {
    /// The record, locked (never held across an `await`).
    pub fn entries(&self) -> MutexGuard<'_, BTreeMap<Arc<str>, bool>> {
        // A panic while it was held leaves a map of plain values, still whole.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Collector for ServiceAnnounced {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let entries = self.entries();
        let mut family = encoder.encode_descriptor(
            "speaker_service_announced",
            "1 when this node announces the Service",
            None,
            MetricType::Gauge,
        )?;
        for (service, announced) in entries.iter() {
            let labels = ServiceLabels {
                service: service.clone(),
            };
            ConstGauge::new(i64::from(*announced)).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

//! Per-peer UPDATE and message counters, read from the running sessions' [`SessionCounters`] when
//! `/metrics` is scraped (the session tasks count where they write and read; nothing is copied
//! in between).

use super::metrics::PeerLabels;
use ferrolb_bgp::session::{CounterSnapshot, FailureReason, RECEIVED_TYPES, SessionCounters};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Labels of the received-messages counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MessageLabels {
    peer: String,
    r#type: &'static str,
}

/// Labels of the failed-attempts counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    peer: String,
    reason: &'static str,
}

/// A counter family read off a [`CounterSnapshot`]: name, help, value.
type CounterField = (&'static str, &'static str, fn(&CounterSnapshot) -> u64);

/// The counters of every running session, by peer; a [`Collector`] registered with the speaker's
/// registry. A restarted session starts its counters from zero (a counter reset, which
/// `rate()` handles).
#[derive(Clone, Debug, Default)]
pub struct SessionTraffic(Arc<Mutex<BTreeMap<String, Arc<SessionCounters>>>>);

impl SessionTraffic {
    /// Exports `counters` as `peer`'s (replacing a previous session's).
    pub fn insert(&self, peer: String, counters: Arc<SessionCounters>) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(peer, counters);
        }
    }

    /// Stops exporting `peer`'s counters.
    pub fn remove(&self, peer: &str) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(peer);
        }
    }
}

/// Encodes the counter family `name` with one series per peer and per kind: `kinds` names them in the order of
/// the counts `counts` reads off a snapshot, and `labels` makes a series' labels from the peer and the kind.
fn encode_by_kind<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    (name, help): (&str, &str),
    snapshots: &[(PeerLabels, CounterSnapshot)],
    kinds: [&'static str; 5],
    counts: fn(&CounterSnapshot) -> [u64; 5],
    labels: fn(String, &'static str) -> L,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(
        name,
        help,
        None,
        prometheus_client::metrics::MetricType::Counter,
    )?;
    for (peer, s) in snapshots {
        for (kind, count) in kinds.iter().zip(counts(s)) {
            let labels = labels(peer.peer.clone(), kind);
            ConstCounter::new(count).encode(family.encode_family(&labels)?)?;
        }
    }
    Ok(())
}

impl Collector for SessionTraffic {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snapshots: Vec<_> = match self.0.lock() {
            Ok(m) => m
                .iter()
                .map(|(peer, c)| (PeerLabels { peer: peer.clone() }, c.snapshot()))
                .collect(),
            Err(_) => Vec::new(),
        };
        let counters: [CounterField; 3] = [
            (
                "bgp_updates_sent",
                "UPDATE messages written to the peer (End-of-RIB included)",
                |s| s.updates_sent,
            ),
            (
                "bgp_update_bytes_sent",
                "Octets of the UPDATE messages written to the peer, headers included",
                |s| s.update_bytes_sent,
            ),
            (
                "bgp_prefixes_withdrawn",
                "Prefixes withdrawn from the peer",
                |s| s.prefixes_withdrawn,
            ),
        ];
        for (name, help, value) in counters {
            let mut family = encoder.encode_descriptor(
                name,
                help,
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for (labels, s) in &snapshots {
                ConstCounter::new(value(s)).encode(family.encode_family(labels)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "bgp_prefixes_advertised",
            "Prefixes the peer has from us now (the Adj-RIB-Out's size)",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (labels, s) in &snapshots {
            let advertised = i64::try_from(s.prefixes_advertised).unwrap_or(i64::MAX);
            ConstGauge::new(advertised).encode(family.encode_family(labels)?)?;
        }
        encode_by_kind(
            &mut encoder,
            (
                "bgp_messages_received",
                "Messages received from the peer, by type",
            ),
            &snapshots,
            RECEIVED_TYPES,
            |s| s.received,
            |peer, r#type| MessageLabels { peer, r#type },
        )?;
        encode_by_kind(
            &mut encoder,
            (
                "bgp_connect_failures",
                "Failed attempts to reach the peer, by reason (refused, no_reply, no_open, md5_mismatch, other)",
            ),
            &snapshots,
            FailureReason::ALL.map(FailureReason::label),
            |s| s.connect_failures,
            |peer, reason| FailureLabels { peer, reason },
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrolb_bgp::wire::{Message, Update};
    use prometheus_client::registry::Registry;

    fn scrape(r: &Registry) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, r).unwrap();
        text
    }

    #[test]
    fn each_session_exports_its_counters_under_its_peer() {
        let traffic = SessionTraffic::default();
        let mut r = Registry::with_prefix("ferrolb");
        r.register_collector(Box::new(traffic.clone()));
        let text = scrape(&r);
        // No session: the families are declared, with no series.
        assert!(
            text.contains("# TYPE ferrolb_bgp_updates_sent counter\n"),
            "{text}"
        );
        assert!(!text.contains("peer="), "{text}");

        let c = Arc::new(SessionCounters::default());
        let update = Message::Update(Update {
            nlri: vec!["203.0.113.1/32".parse().unwrap()],
            withdrawn: vec!["203.0.113.2/32".parse().unwrap()],
            ..Update::default()
        });
        c.sent(&update, 50);
        c.sent(&update, 50);
        c.set_advertised(7);
        c.received(&Message::Keepalive);
        c.connect_failed(FailureReason::NoReply);
        traffic.insert("198.18.0.1".into(), c.clone());
        let text = scrape(&r);
        for line in [
            "ferrolb_bgp_updates_sent_total{peer=\"198.18.0.1\"} 2\n",
            "ferrolb_bgp_update_bytes_sent_total{peer=\"198.18.0.1\"} 100\n",
            "ferrolb_bgp_prefixes_withdrawn_total{peer=\"198.18.0.1\"} 2\n",
            "ferrolb_bgp_prefixes_advertised{peer=\"198.18.0.1\"} 7\n",
            "ferrolb_bgp_messages_received_total{peer=\"198.18.0.1\",type=\"keepalive\"} 1\n",
            "ferrolb_bgp_messages_received_total{peer=\"198.18.0.1\",type=\"update\"} 0\n",
            "ferrolb_bgp_connect_failures_total{peer=\"198.18.0.1\",reason=\"no_reply\"} 1\n",
            "ferrolb_bgp_connect_failures_total{peer=\"198.18.0.1\",reason=\"md5_mismatch\"} 0\n",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
        // Read at scrape time: a later write shows without any copy.
        c.sent(&update, 50);
        assert!(scrape(&r).contains("ferrolb_bgp_updates_sent_total{peer=\"198.18.0.1\"} 3\n"));
        traffic.remove("198.18.0.1");
        assert!(!scrape(&r).contains("peer="));
    }
}

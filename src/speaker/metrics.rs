//! The speaker's Prometheus metrics, named like MetalLB's under the `ferrolb_` prefix.

use crate::watch::WatchLists;
use ferrolb_bgp::fsm::State;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// Bucket bounds (seconds) of `ferrolb_speaker_event_to_update_seconds`: every millisecond from 1 to 6 ms, where
/// the speaker's latency lies and its 5 ms p99 target must be readable, then doubling up to about 4 s.
const EVENT_TO_UPDATE_BUCKETS: [f64; 17] = [
    0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256,
    0.512, 1.024, 2.048, 4.096,
];

pub use super::metric_labels::{PeerErrorLabels, PeerLabels};
pub use super::service_announced::ServiceAnnounced;
pub use super::session_status::StatusMetrics;
pub use super::session_traffic::SessionTraffic;

/// Every metric the speaker exports.
#[derive(Clone, Debug)]
pub struct SpeakerMetrics {
    /// `ferrolb_bgp_session_up{peer}`: 1 while Established.
    pub session_up: Family<PeerLabels, Gauge>,
    /// `ferrolb_bgp_session_state{peer}`: 0 Idle, 1 Connect, 2 OpenSent, 3 OpenConfirm, 4 Established.
    pub session_state: Family<PeerLabels, Gauge>,
    /// `ferrolb_bgp_announced_prefixes_total{peer}`: prefixes the peer has from us.
    pub announced_prefixes: Family<PeerLabels, Gauge>,
    /// `ferrolb_bgp_route_updates_total{peer}`: route-set changes handed to the session while Established (each
    /// becomes one or more packed UPDATEs).
    pub route_updates: Family<PeerLabels, Counter>,
    /// `ferrolb_bgp_session_last_error_info{peer,error}`: 1 for the reason the session last went down.
    pub last_error: Family<PeerErrorLabels, Gauge>,
    /// `ferrolb_bfd_session_up{peer}`: 1 while the BFD session guarding the peer's BGP session is Up.
    pub bfd_session_up: Family<PeerLabels, Gauge>,
    /// `ferrolb_bfd_session_transitions_total{peer}`: BFD state changes since the peer's BFD session started
    /// (the series is removed, so it restarts from zero, when the session is restarted or stopped).
    pub bfd_transitions: Family<PeerLabels, Counter>,
    /// `ferrolb_bfd_detection_time_seconds{peer}`: the negotiated detection time (0 until the remote is heard).
    pub bfd_detection_time: Family<PeerLabels, Gauge<f64, AtomicU64>>,
    /// `ferrolb_speaker_service_announced{service}`: 1 when this node announces the Service (the speaker's
    /// record of it, encoded at scrape time).
    pub service_announced: ServiceAnnounced,
    /// `ferrolb_k8s_client_config_loaded_bool`.
    pub config_loaded: Gauge,
    /// `ferrolb_k8s_client_config_stale_bool`.
    pub config_stale: Gauge,
    /// `ferrolb_speaker_event_to_update_seconds`: from a watch event reaching the speaker to the route change
    /// written to a peer's socket.
    pub event_to_update: Histogram,
    /// `ferrolb_bgp_updates_sent_total{peer}`, `ferrolb_bgp_update_bytes_sent_total{peer}`,
    /// `ferrolb_bgp_prefixes_withdrawn_total{peer}`, `ferrolb_bgp_prefixes_advertised{peer}` and
    /// `ferrolb_bgp_messages_received_total{peer,type}` and `ferrolb_bgp_connect_failures_total{peer,reason}`,
    /// read from the sessions at scrape time.
    pub traffic: SessionTraffic,
    /// `ferrolb_k8s_watch_lists_total{watch}`: complete LISTs of each watch (re-lists after an outage).
    pub watch_lists: WatchLists,
    /// `ferrolb_speaker_session_status_writes_total{operation}` and
    /// `ferrolb_speaker_session_status_api_errors_total{operation}`: the BGPSessionStatus writer's API calls.
    pub session_status: StatusMetrics,
}

/// The number `ferrolb_bgp_session_state` shows for a state.
pub fn state_number(state: State) -> i64 {
    match state {
        State::Idle => 0,
        State::Connect => 1,
        State::OpenSent => 2,
        State::OpenConfirm => 3,
        State::Established => 4,
    }
}

impl SpeakerMetrics {
    /// Fresh metrics, registered in a new registry with the `ferrolb` prefix.
    pub fn registered() -> (SpeakerMetrics, Registry) {
        let m = SpeakerMetrics {
            session_up: Family::default(),
            session_state: Family::default(),
            announced_prefixes: Family::default(),
            route_updates: Family::default(),
            last_error: Family::default(),
            bfd_session_up: Family::default(),
            bfd_transitions: Family::default(),
            bfd_detection_time: Family::default(),
            service_announced: ServiceAnnounced::default(),
            config_loaded: Gauge::default(),
            config_stale: Gauge::default(),
            event_to_update: Histogram::new(EVENT_TO_UPDATE_BUCKETS.iter().copied()),
            traffic: SessionTraffic::default(),
            watch_lists: WatchLists::default(),
            session_status: StatusMetrics::default(),
        };
        let mut r = Registry::with_prefix("ferrolb");
        let m = SpeakerMetrics {
            watch_lists: WatchLists::registered(&mut r),
            ..m
        };
        r.register(
            "bgp_session_up",
            "1 while the BGP session is Established",
            m.session_up.clone(),
        );
        r.register(
            "bgp_session_state",
            "BGP state: 0 Idle, 1 Connect, 2 OpenSent, 3 OpenConfirm, 4 Established",
            m.session_state.clone(),
        );
        r.register(
            "bgp_announced_prefixes_total",
            "Prefixes the peer has from this speaker",
            m.announced_prefixes.clone(),
        );
        r.register(
            "bgp_route_updates",
            "Route-set changes sent to the peer (each as one or more packed UPDATEs)",
            m.route_updates.clone(),
        );
        r.register(
            "bgp_session_last_error_info",
            "1 for the reason the session last went down",
            m.last_error.clone(),
        );
        r.register(
            "bfd_session_up",
            "1 while the BFD session guarding the BGP session is Up",
            m.bfd_session_up.clone(),
        );
        r.register(
            "bfd_session_transitions",
            "BFD session state changes",
            m.bfd_transitions.clone(),
        );
        r.register(
            "bfd_detection_time_seconds",
            "Negotiated BFD detection time (0 until the remote is heard)",
            m.bfd_detection_time.clone(),
        );
        r.register(
            "k8s_client_config_loaded_bool",
            "1 once a valid configuration has been loaded",
            m.config_loaded.clone(),
        );
        r.register(
            "k8s_client_config_stale_bool",
            "1 when the newest configuration was invalid and an older one stays in force",
            m.config_stale.clone(),
        );
        r.register(
            "speaker_event_to_update_seconds",
            "From a watch event reaching the speaker to the resulting route change written to the peer",
            m.event_to_update.clone(),
        );
        m.session_status.register(&mut r);
        r.register_collector(Box::new(m.traffic.clone()));
        r.register_collector(Box::new(m.service_announced.clone()));
        (m, r)
    }

    /// Forgets a peer's metrics (its session was removed).
    pub fn remove_peer(&self, peer: &str) {
        let labels = PeerLabels {
            peer: peer.to_owned(),
        };
        self.session_up.remove(&labels);
        self.session_state.remove(&labels);
        self.announced_prefixes.remove(&labels);
        self.route_updates.remove(&labels);
        self.traffic.remove(peer);
        self.remove_bfd_peer(peer);
    }

    /// Forgets a peer's BFD metrics (its BFD session was removed).
    pub fn remove_bfd_peer(&self, peer: &str) {
        let labels = PeerLabels {
            peer: peer.to_owned(),
        };
        self.bfd_session_up.remove(&labels);
        self.bfd_transitions.remove(&labels);
        self.bfd_detection_time.remove(&labels);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_follow_metallb_under_ferrolb() {
        let (m, r) = SpeakerMetrics::registered();
        let peer = PeerLabels {
            peer: "198.18.0.1".into(),
        };
        m.session_up.get_or_create(&peer).set(1);
        m.announced_prefixes.get_or_create(&peer).set(3);
        m.service_announced
            .entries()
            .insert("default/whoami".into(), true);
        m.config_stale.set(1);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &r).unwrap();
        assert!(
            text.contains("ferrolb_bgp_session_up{peer=\"198.18.0.1\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("ferrolb_bgp_announced_prefixes_total{peer=\"198.18.0.1\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("ferrolb_speaker_service_announced{service=\"default/whoami\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("ferrolb_k8s_client_config_stale_bool 1\n"),
            "{text}"
        );
        m.remove_peer("198.18.0.1");
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &r).unwrap();
        assert!(!text.contains("peer=\"198.18.0.1\""), "{text}");
        assert_eq!(state_number(State::Established), 4);
    }

    #[test]
    fn bfd_metrics_are_named_as_documented_and_appear_only_with_a_bfd_peer() {
        let (m, r) = SpeakerMetrics::registered();
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &r).unwrap();
        // A family with no series exports nothing, not even `# TYPE` (what the README check reads): the BFD
        // metrics appear only on a speaker with a peer that has a `bfd-profile`.
        assert!(!text.contains("ferrolb_bfd_"), "{text}");
        let peer = PeerLabels {
            peer: "198.18.0.1".into(),
        };
        m.bfd_session_up.get_or_create(&peer).set(1);
        m.bfd_transitions.get_or_create(&peer).inc_by(3);
        m.bfd_detection_time.get_or_create(&peer).set(0.9);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &r).unwrap();
        for line in [
            "ferrolb_bfd_session_up{peer=\"198.18.0.1\"} 1\n",
            "ferrolb_bfd_session_transitions_total{peer=\"198.18.0.1\"} 3\n",
            "ferrolb_bfd_detection_time_seconds{peer=\"198.18.0.1\"} 0.9\n",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
        m.remove_bfd_peer("198.18.0.1");
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &r).unwrap();
        assert!(!text.contains("peer=\"198.18.0.1\""), "{text}");
    }
}

//! control-plane-vip's Prometheus metrics, under `ferrolb_control_plane_vip_`.

use crate::speaker::metrics::PeerLabels;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Labels of the health-check counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `success` or `failure` (HTTP checks), or `not-listening` (the listen probe found no listener and
    /// withdrew).
    pub result: &'static str,
}

/// Every metric control-plane-vip exports.
#[derive(Clone, Debug, Default)]
pub struct VipMetrics {
    /// `ferrolb_control_plane_vip_healthy`: 1 while the gate is healthy (after `rise`, until `fall`).
    pub healthy: Gauge,
    /// `ferrolb_control_plane_vip_consecutive_successes`.
    pub successes: Gauge,
    /// `ferrolb_control_plane_vip_consecutive_failures`.
    pub failures: Gauge,
    /// `ferrolb_control_plane_vip_announced`: 1 while the addresses are handed to the sessions.
    pub announced: Gauge,
    /// `ferrolb_control_plane_vip_health_checks_total{result}`.
    pub checks: Family<ResultLabels, Counter>,
    /// `ferrolb_control_plane_vip_bgp_session_up{peer}`: 1 while Established.
    pub session_up: Family<PeerLabels, Gauge>,
    /// `ferrolb_control_plane_vip_bfd_session_up{peer}`: 1 while the peer's BFD session is Up.
    pub bfd_up: Family<PeerLabels, Gauge>,
}

impl VipMetrics {
    /// Fresh metrics in a new registry.
    pub fn registered() -> (VipMetrics, Registry) {
        let m = VipMetrics::default();
        let mut r = Registry::with_prefix("ferrolb_control_plane_vip");
        r.register(
            "healthy",
            "1 while the health gate is up (rise successes seen, fall failures not)",
            m.healthy.clone(),
        );
        r.register(
            "consecutive_successes",
            "Successful health checks in a row",
            m.successes.clone(),
        );
        r.register(
            "consecutive_failures",
            "Failed health checks in a row",
            m.failures.clone(),
        );
        r.register(
            "announced",
            "1 while the addresses are announced",
            m.announced.clone(),
        );
        r.register("health_checks", "Health checks by result", m.checks.clone());
        r.register(
            "bgp_session_up",
            "1 while the BGP session is Established",
            m.session_up.clone(),
        );
        r.register(
            "bfd_session_up",
            "1 while the BFD session guarding the peer is Up",
            m.bfd_up.clone(),
        );
        (m, r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_plane_metric_names() {
        let (m, r) = VipMetrics::registered();
        m.healthy.set(1);
        m.checks
            .get_or_create(&ResultLabels { result: "success" })
            .inc();
        m.session_up
            .get_or_create(&PeerLabels {
                peer: "198.18.0.1".into(),
            })
            .set(1);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &r).unwrap();
        for line in [
            "ferrolb_control_plane_vip_healthy 1",
            "ferrolb_control_plane_vip_consecutive_successes 0",
            "ferrolb_control_plane_vip_consecutive_failures 0",
            "ferrolb_control_plane_vip_announced 0",
            "ferrolb_control_plane_vip_health_checks_total{result=\"success\"} 1",
            "ferrolb_control_plane_vip_bgp_session_up{peer=\"198.18.0.1\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
    }
}

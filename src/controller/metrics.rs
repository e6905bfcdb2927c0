//! The controller's Prometheus metrics, named like MetalLB's under the `ferrolb_` prefix.

use crate::watch::WatchLists;
use ferrolb_ipam::{Family, PoolStats};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family as MetricFamily;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// Labels of the per-pool gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    /// The pool name.
    pub pool: String,
    /// `ipv4` or `ipv6`.
    pub family: String,
}

/// Labels of the failure counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// The condition reason code (`PoolExhausted`, ...).
    pub reason: String,
}

/// Every metric the controller exports.
#[derive(Clone, Debug)]
pub struct ControllerMetrics {
    /// `ferrolb_allocator_addresses_total{pool,family}`.
    pub addresses_total: MetricFamily<PoolLabels, Gauge<f64, AtomicU64>>,
    /// `ferrolb_allocator_addresses_in_use_total{pool,family}`.
    pub addresses_in_use: MetricFamily<PoolLabels, Gauge<f64, AtomicU64>>,
    /// `ferrolb_allocator_stranded_addresses`: held addresses no current pool contains.
    pub stranded: Gauge,
    /// `ferrolb_address_outside_allocation_rules`: held addresses the current `service-allocation` rules, namespace
    /// fences or sharing opt-ins would not give their Service now (kept, like stranded ones).
    pub outside_rules: Gauge,
    /// `ferrolb_allocator_allocation_failures_total{reason}`: Services that went into a failed state, by reason.
    pub failures: MetricFamily<ReasonLabels, Counter>,
    /// `ferrolb_k8s_client_config_loaded_bool`.
    pub config_loaded: Gauge,
    /// `ferrolb_k8s_client_config_stale_bool`.
    pub config_stale: Gauge,
    /// `ferrolb_controller_leader_bool`: whether this replica is the one writing.
    pub leader: Gauge,
    /// `ferrolb_controller_reconcile_duration_seconds`: time to reconcile one batch of changes (excluding writes).
    pub reconcile_seconds: Histogram,
    /// `ferrolb_controller_notices_dropped_total`: routine Normal Events dropped because their rate-limited queue
    /// was full (warnings are never dropped this way).
    pub notices_dropped: Counter,
    /// `ferrolb_k8s_watch_lists_total{watch}`: complete LISTs of each watch (re-lists after an outage).
    pub watch_lists: WatchLists,
}

impl ControllerMetrics {
    /// Fresh metrics, registered in a new registry with the `ferrolb` prefix.
    pub fn registered() -> (ControllerMetrics, Registry) {
        let metrics = ControllerMetrics {
            addresses_total: MetricFamily::default(),
            addresses_in_use: MetricFamily::default(),
            stranded: Gauge::default(),
            outside_rules: Gauge::default(),
            failures: MetricFamily::default(),
            config_loaded: Gauge::default(),
            config_stale: Gauge::default(),
            leader: Gauge::default(),
            reconcile_seconds: Histogram::new(exponential_buckets(0.0001, 4.0, 10)),
            notices_dropped: Counter::default(),
            watch_lists: WatchLists::default(),
        };
        let mut registry = Registry::with_prefix("ferrolb");
        let metrics = ControllerMetrics {
            watch_lists: WatchLists::registered(&mut registry),
            ..metrics
        };
        registry.register(
            "allocator_addresses_total",
            "Addresses in each pool, by family",
            metrics.addresses_total.clone(),
        );
        registry.register(
            "allocator_addresses_in_use_total",
            "Addresses assigned to Services in each pool, by family",
            metrics.addresses_in_use.clone(),
        );
        registry.register(
            "allocator_stranded_addresses",
            "Addresses kept by Services although no current pool contains them",
            metrics.stranded.clone(),
        );
        registry.register(
            "address_outside_allocation_rules",
            "Addresses kept by Services although the current service-allocation rules would not give them now",
            metrics.outside_rules.clone(),
        );
        registry.register(
            "allocator_allocation_failures",
            "Services that could not get addresses, by reason",
            metrics.failures.clone(),
        );
        registry.register(
            "k8s_client_config_loaded_bool",
            "1 once a valid configuration has been loaded",
            metrics.config_loaded.clone(),
        );
        registry.register(
            "k8s_client_config_stale_bool",
            "1 when the newest configuration was invalid and an older one stays in force",
            metrics.config_stale.clone(),
        );
        registry.register(
            "controller_leader_bool",
            "1 when this replica holds the leader Lease and writes statuses",
            metrics.leader.clone(),
        );
        registry.register(
            "controller_reconcile_duration_seconds",
            "Time to compute the status changes for one batch of watch events",
            metrics.reconcile_seconds.clone(),
        );
        registry.register(
            "controller_notices_dropped",
            "Routine Normal Events (IPAllocated) dropped because their rate-limited queue was full",
            metrics.notices_dropped.clone(),
        );
        (metrics, registry)
    }

    /// Replaces the per-pool gauges with `stats` (pools that disappeared disappear from the output).
    pub fn set_pools(&self, stats: &[PoolStats], stranded: usize) {
        self.addresses_total.clear();
        self.addresses_in_use.clear();
        for s in stats {
            let labels = PoolLabels {
                pool: s.pool.clone(),
                family: match s.family {
                    Family::V4 => "ipv4",
                    Family::V6 => "ipv6",
                }
                .to_owned(),
            };
            // IPv6 pools can be larger than any integer gauge; f64 keeps the magnitude.
            self.addresses_total
                .get_or_create(&labels)
                .set(s.total as f64);
            self.addresses_in_use
                .get_or_create(&labels)
                .set(s.in_use as f64);
        }
        self.stranded
            .set(i64::try_from(stranded).unwrap_or(i64::MAX));
    }

    /// Sets how many held addresses are outside the current allocation rules.
    pub fn set_outside_rules(&self, count: usize) {
        self.outside_rules
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// Counts one Service going into the failed state `reason`.
    pub fn count_failure(&self, reason: &str) {
        self.failures
            .get_or_create(&ReasonLabels {
                reason: reason.to_owned(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_metallb_compatible_names() {
        let (metrics, registry) = ControllerMetrics::registered();
        metrics.set_pools(
            &[PoolStats {
                pool: "gold".into(),
                family: Family::V4,
                total: 16,
                in_use: 3,
            }],
            1,
        );
        metrics.count_failure("PoolExhausted");
        metrics.set_outside_rules(2);
        metrics.config_loaded.set(1);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            "ferrolb_allocator_addresses_total{pool=\"gold\",family=\"ipv4\"} 16.0",
            "ferrolb_allocator_addresses_in_use_total{pool=\"gold\",family=\"ipv4\"} 3.0",
            "ferrolb_allocator_stranded_addresses 1",
            "ferrolb_address_outside_allocation_rules 2",
            "ferrolb_allocator_allocation_failures_total{reason=\"PoolExhausted\"} 1",
            "ferrolb_k8s_client_config_loaded_bool 1",
            "ferrolb_k8s_client_config_stale_bool 0",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        metrics.set_pools(&[], 0);
        text.clear();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(!text.contains("pool=\"gold\""), "{text}");
    }
}

//! `IPAddressPool.status` (with `--config-source metallb`): how many addresses of each pool Services hold and
//! how many are still free, per family, as MetalLB v0.15 writes them.
//!
//! [`pool_counts`] is the pure part; [`PoolStatusWriter`] merge-patches the status subresource of each pool
//! whose counts changed, off the controller's write path: the main loop hands it the latest counts after every
//! reconcile ([`PoolStatusWriter::update`]), and a background task writes at most one round per second, so a
//! burst of allocations costs one patch per pool.

use ferrolb_ipam::{Family, PoolStats};
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::watch;

use super::leader::Role;
use crate::crds::{GROUP, IPAddressPoolStatus};

/// Minimum time between two rounds of pool status writes (bursts of changes are coalesced into one).
const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Wait before retrying writes the API server refused for a reason other than a missing pool.
const RETRY_AFTER: Duration = Duration::from_secs(5);
/// Pools of at least this many addresses (per family) count as `i64::MAX`, as MetalLB does for ranges with 62
/// or more host bits.
const ENORMOUS: u128 = 1 << 62;

/// The status of every pool in `stats` (the allocator's [`ferrolb_ipam::Allocator::pool_stats`]), by pool name.
///
/// `assigned*`: addresses of the pool held by at least one Service (a shared address counts once);
/// `available*`: the pool's usable addresses (without those `avoidBuggyIPs` excludes) minus the assigned ones.
/// A family the pool has no addresses of counts 0; a pool with no usable address at all is absent.
pub fn pool_counts(stats: &[PoolStats]) -> BTreeMap<String, IPAddressPoolStatus> {
    let mut out: BTreeMap<String, IPAddressPoolStatus> = BTreeMap::new();
    for s in stats {
        let capacity = if s.total >= ENORMOUS {
            i64::MAX
        } else {
            i64::try_from(s.total).unwrap_or(i64::MAX)
        };
        let assigned = i64::try_from(s.in_use).unwrap_or(i64::MAX);
        let available = capacity.saturating_sub(assigned);
        let entry = out.entry(s.pool.clone()).or_default();
        match s.family {
            Family::V4 => {
                entry.assigned_ipv4 = assigned;
                entry.available_ipv4 = available;
            }
            Family::V6 => {
                entry.assigned_ipv6 = assigned;
                entry.available_ipv6 = available;
            }
        }
    }
    out
}

/// The merge patch of an `IPAddressPool`'s status subresource for `status`.
pub fn status_patch(status: &IPAddressPoolStatus) -> serde_json::Value {
    serde_json::json!({ "status": status })
}

/// What the main loop hands the background task: the latest counts, and a generation that, when it moves,
/// makes the task forget what it wrote (the pool objects were replaced, or leadership changed).
#[derive(Clone, Debug, Default, PartialEq)]
struct Wanted {
    counts: BTreeMap<String, IPAddressPoolStatus>,
    generation: u64,
}

/// Writes `IPAddressPool.status` in the background; cheap to call after every reconcile.
pub struct PoolStatusWriter {
    tx: watch::Sender<Wanted>,
}

impl PoolStatusWriter {
    /// Starts the background writer for the `IPAddressPool`s of `namespace` (the config namespace). It writes
    /// only while `role` is [`Role::Leader`]: a replica that stepped down sends nothing more.
    pub fn spawn(
        client: Client,
        namespace: &str,
        field_manager: &str,
        role: watch::Receiver<Role>,
    ) -> PoolStatusWriter {
        let (tx, rx) = watch::channel(Wanted::default());
        let resource = ApiResource {
            group: GROUP.into(),
            version: "v1beta1".into(),
            api_version: format!("{GROUP}/v1beta1"),
            kind: "IPAddressPool".into(),
            plural: "ipaddresspools".into(),
        };
        let api: Api<DynamicObject> = Api::namespaced_with(client, namespace, &resource);
        let params = PatchParams {
            field_manager: Some(field_manager.into()),
            ..PatchParams::default()
        };
        tokio::spawn(write_loop(api, params, rx, role));
        PoolStatusWriter { tx }
    }

    /// Hands over the allocator's current pool statistics; pools whose counts changed are written within about
    /// a second.
    pub fn update(&self, stats: &[PoolStats]) {
        let counts = pool_counts(stats);
        self.tx.send_if_modified(|wanted| {
            if wanted.counts == counts {
                return false;
            }
            wanted.counts = counts;
            true
        });
    }

    /// Forgets what was written, so every pool's status is written again (call when the `IPAddressPool`
    /// objects were re-listed or replaced, or on becoming leader).
    pub fn rewrite_all(&self) {
        self.tx.send_modify(|wanted| wanted.generation += 1);
    }
}

/// Writes the changed pools, then waits [`MIN_INTERVAL`] (or [`RETRY_AFTER`] after a failure) and for the next
/// change. Ends when the [`PoolStatusWriter`] is dropped.
async fn write_loop(
    api: Api<DynamicObject>,
    params: PatchParams,
    mut rx: watch::Receiver<Wanted>,
    role: watch::Receiver<Role>,
) {
    let mut written: BTreeMap<String, IPAddressPoolStatus> = BTreeMap::new();
    let mut generation = 0;
    let mut failed = false;
    loop {
        if failed {
            tokio::time::sleep(RETRY_AFTER).await;
        } else if rx.changed().await.is_err() {
            return;
        }
        let wanted = rx.borrow_and_update().clone();
        if wanted.generation != generation {
            written.clear();
            generation = wanted.generation;
        }
        failed = false;
        for (pool, status) in &wanted.counts {
            if written.get(pool) == Some(status) {
                continue;
            }
            if *role.borrow() != Role::Leader {
                // Not written; on becoming leader again `rewrite_all` starts over.
                break;
            }
            match api
                .patch_status(pool, &params, &Patch::Merge(status_patch(status)))
                .await
            {
                Ok(_) => {
                    written.insert(pool.clone(), status.clone());
                }
                Err(kube::Error::Api(e)) if e.code == 404 => {
                    tracing::debug!(
                        pool,
                        "no IPAddressPool object of this name; status not written"
                    );
                    written.insert(pool.clone(), status.clone());
                }
                Err(err) => {
                    tracing::warn!(pool, error = %err, "cannot write IPAddressPool status; retrying");
                    failed = true;
                }
            }
        }
        written.retain(|pool, _| wanted.counts.contains_key(pool));
        tokio::time::sleep(MIN_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrolb_ipam::{Allocator, FamilyPolicy, FamilyRequest, PoolDef, Request, ServiceKey};
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn pools() -> Vec<PoolDef> {
        vec![
            PoolDef {
                name: "web".into(),
                // A /24 with avoidBuggyIPs: 254 usable; and 8 IPv6 addresses.
                ranges: vec![
                    (ip("203.0.113.0"), ip("203.0.113.255")),
                    (ip("2001:db8::"), ip("2001:db8::7")),
                ],
                avoid_buggy_ips: true,
                auto_assign: true,
                allocation: None,
            },
            PoolDef {
                name: "small".into(),
                ranges: vec![(ip("198.51.100.10"), ip("198.51.100.13"))],
                avoid_buggy_ips: false,
                auto_assign: false,
                allocation: None,
            },
            PoolDef {
                name: "huge".into(),
                ranges: vec![(ip("2001:db8:1::"), ip("2001:db8:1:0:ffff:ffff:ffff:ffff"))],
                avoid_buggy_ips: false,
                auto_assign: false,
                allocation: None,
            },
        ]
    }

    fn status(
        assigned4: i64,
        assigned6: i64,
        available4: i64,
        available6: i64,
    ) -> IPAddressPoolStatus {
        IPAddressPoolStatus {
            assigned_ipv4: assigned4,
            assigned_ipv6: assigned6,
            available_ipv4: available4,
            available_ipv6: available6,
        }
    }

    fn in_pool(pool: &str) -> Request {
        Request {
            pool: Some(pool.into()),
            ..Request::default()
        }
    }

    #[test]
    fn counts_follow_allocations_and_releases_exactly() {
        let mut alloc = Allocator::new(&pools()).unwrap();
        let counts = pool_counts(&alloc.pool_stats());
        assert_eq!(counts["web"], status(0, 0, 254, 8));
        assert_eq!(counts["small"], status(0, 0, 4, 0));
        assert_eq!(counts["huge"], status(0, 0, 0, i64::MAX));

        let dual = Request {
            families: FamilyRequest::dual(Family::V4, FamilyPolicy::RequireDualStack),
            ..Request::default()
        };
        alloc.allocate(&ServiceKey::new("ns", "a"), &dual).unwrap();
        alloc
            .allocate(&ServiceKey::new("ns", "b"), &Request::default())
            .unwrap();
        alloc
            .allocate(&ServiceKey::new("ns", "c"), &in_pool("small"))
            .unwrap();
        let mut v6 = in_pool("huge");
        v6.families = FamilyRequest::single(Family::V6);
        alloc.allocate(&ServiceKey::new("ns", "d"), &v6).unwrap();
        let counts = pool_counts(&alloc.pool_stats());
        assert_eq!(counts["web"], status(2, 1, 252, 7));
        assert_eq!(counts["small"], status(1, 0, 3, 0));
        assert_eq!(counts["huge"], status(0, 1, 0, i64::MAX - 1));

        alloc.release(&ServiceKey::new("ns", "a"));
        alloc.release(&ServiceKey::new("ns", "c"));
        let counts = pool_counts(&alloc.pool_stats());
        assert_eq!(counts["web"], status(1, 0, 253, 8));
        assert_eq!(counts["small"], status(0, 0, 4, 0));
    }

    #[test]
    fn a_shared_address_counts_once() {
        let mut alloc = Allocator::new(&pools()).unwrap();
        let shared = |port| Request {
            pool: Some("small".into()),
            sharing_key: Some("k".into()),
            ports: vec![ferrolb_ipam::PortSpec::tcp(port)],
            ..Request::default()
        };
        let a = alloc
            .allocate(&ServiceKey::new("ns", "a"), &shared(80))
            .unwrap();
        let b = alloc
            .allocate(&ServiceKey::new("ns", "b"), &shared(443))
            .unwrap();
        assert_eq!(a.ips(), b.ips());
        assert_eq!(
            pool_counts(&alloc.pool_stats())["small"],
            status(1, 0, 3, 0)
        );
    }

    #[test]
    fn the_patch_has_metallbs_field_names() {
        assert_eq!(
            status_patch(&status(2, 1, 252, 7)),
            serde_json::json!({"status": {
                "assignedIPv4": 2, "assignedIPv6": 1, "availableIPv4": 252, "availableIPv6": 7
            }})
        );
    }
}

//! Address pools: their definitions, validation, and the per-family free space of each.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use crate::family::{Family, Numbering, from_bits, to_bits};
use crate::free_runs::FreeRuns;
use ferrolb_config::ServiceAllocation;

/// One address pool as the allocator needs it (the `address-pools` entries of the ConfigMap).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolDef {
    /// The pool's unique name.
    pub name: String,
    /// Inclusive address ranges (a CIDR is its first and last address). Both ends of a range are of one family.
    pub ranges: Vec<(IpAddr, IpAddr)>,
    /// Skip IPv4 addresses ending in `.0` or `.255`.
    pub avoid_buggy_ips: bool,
    /// Whether Services without a pool annotation or requested address may get addresses from this pool.
    pub auto_assign: bool,
    /// Which Services the pool serves and which namespaces it fences in (`service-allocation`); `None`: every
    /// Service of a namespace no pool fences in.
    pub allocation: Option<ServiceAllocation>,
}

/// Why a set of pools was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// Two pools have the same name.
    #[error("address pool name {name:?} is used twice")]
    DuplicateName {
        /// The name.
        name: String,
    },
    /// A range's ends are of different families.
    #[error("address pool {pool:?}: range {first}-{last} mixes IPv4 and IPv6")]
    MixedFamilies {
        /// The pool.
        pool: String,
        /// Range start.
        first: IpAddr,
        /// Range end.
        last: IpAddr,
    },
    /// A range starts after it ends.
    #[error("address pool {pool:?}: range {first}-{last} starts after it ends")]
    Reversed {
        /// The pool.
        pool: String,
        /// Range start.
        first: IpAddr,
        /// Range end.
        last: IpAddr,
    },
    /// Two ranges (of one pool or of two pools) share addresses.
    #[error("address pool {pool:?}: range {first}-{last} overlaps a range of pool {other:?}")]
    Overlap {
        /// The pool whose range was being added.
        pool: String,
        /// Its range start.
        first: IpAddr,
        /// Its range end.
        last: IpAddr,
        /// The pool already holding some of those addresses (may be the same pool).
        other: String,
    },
}

/// Addresses total and in use in one pool for one family (for metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolStats {
    /// The pool's name.
    pub pool: String,
    /// The family.
    pub family: Family,
    /// Usable addresses (after `avoid-buggy-ips`). Saturates at `u128::MAX` for an IPv6 `::/0`.
    pub total: u128,
    /// Addresses held by at least one Service.
    pub in_use: u128,
}

/// One family's free space in a pool.
#[derive(Debug, Clone)]
struct Space {
    numbering: Numbering,
    free: FreeRuns,
    total: u128,
    in_use: u128,
}

/// A validated pool with its free space.
#[derive(Debug, Clone)]
pub(crate) struct Pool {
    pub(crate) def: PoolDef,
    /// The name, shared with every assignment that reports it.
    shared_name: Arc<str>,
    spaces: [Space; 2],
}

/// The outcome of taking a specific address from a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Take {
    /// The address was free and is now used.
    Taken,
    /// The address is already used.
    NotFree,
    /// `avoid-buggy-ips` excludes the address.
    Avoided,
}

/// All pools, in config order, with an index from address to pool.
#[derive(Debug, Clone, Default)]
pub(crate) struct PoolSet {
    pools: Vec<Pool>,
    by_name: BTreeMap<String, usize>,
    /// The auto-assign pools, in the order they are tried: pools with a `priority`, lowest first, then the
    /// others, each in config order.
    auto_assign: Vec<usize>,
    /// The pools with `exclusive` rules (which fence namespaces in).
    fencing: Vec<usize>,
    /// Per family: range start -> (range end, pool index), in address space.
    ranges: [BTreeMap<u128, (u128, usize)>; 2],
}

impl PoolSet {
    /// Validates and builds the pools.
    pub(crate) fn build(defs: &[PoolDef]) -> Result<PoolSet, PoolError> {
        let mut set = PoolSet::default();
        for def in defs {
            let idx = set.pools.len();
            if set.by_name.insert(def.name.clone(), idx).is_some() {
                return Err(PoolError::DuplicateName {
                    name: def.name.clone(),
                });
            }
            let mut spaces = Family::ALL.map(|family| Space {
                numbering: Numbering::for_pool(family, def.avoid_buggy_ips),
                free: FreeRuns::default(),
                total: 0,
                in_use: 0,
            });
            for &(first, last) in &def.ranges {
                let family = Family::of(first);
                if family != Family::of(last) {
                    return Err(PoolError::MixedFamilies {
                        pool: def.name.clone(),
                        first,
                        last,
                    });
                }
                let (lo, hi) = (to_bits(first), to_bits(last));
                if lo > hi {
                    return Err(PoolError::Reversed {
                        pool: def.name.clone(),
                        first,
                        last,
                    });
                }
                let index = &mut set.ranges[family.slot()];
                let overlapping = index
                    .range(..=hi)
                    .next_back()
                    .filter(|(_, (end, _))| *end >= lo)
                    .map(|(_, &(_, p))| p);
                if let Some(other) = overlapping {
                    let other = match set.pools.get(other) {
                        Some(p) => p.def.name.clone(),
                        None => def.name.clone(),
                    };
                    return Err(PoolError::Overlap {
                        pool: def.name.clone(),
                        first,
                        last,
                        other,
                    });
                }
                index.insert(lo, (hi, idx));
                let space = &mut spaces[family.slot()];
                if let Some((a, b)) = space.numbering.index_range(lo, hi) {
                    space.free.add_run(a, b);
                    space.total = space.total.saturating_add((b - a).saturating_add(1));
                }
            }
            if def.auto_assign {
                set.auto_assign.push(idx);
            }
            if def.allocation.as_ref().is_some_and(|a| a.exclusive) {
                set.fencing.push(idx);
            }
            set.pools.push(Pool {
                shared_name: Arc::from(def.name.as_str()),
                def: def.clone(),
                spaces,
            });
        }
        let priority = |p: &usize| {
            let priority = set
                .pools
                .get(*p)
                .and_then(|p| p.def.allocation.as_ref())
                .and_then(|a| a.priority);
            (priority.is_none(), priority)
        };
        // Stable: equal priorities (and every pool without one) keep config order.
        set.auto_assign.sort_by_key(priority);
        Ok(set)
    }

    /// A pool's `service-allocation` rules.
    pub(crate) fn rules(&self, pool: usize) -> Option<&ServiceAllocation> {
        self.pools.get(pool).and_then(|p| p.def.allocation.as_ref())
    }

    /// Whether any pool has `service-allocation` rules (if none, every Service may use every pool).
    pub(crate) fn has_rules(&self) -> bool {
        self.pools.iter().any(|p| p.def.allocation.is_some())
    }

    /// The pools with `exclusive` rules, in config order.
    pub(crate) fn fencing_pools(&self) -> &[usize] {
        &self.fencing
    }

    /// The auto-assign pools, in the order they are tried (see [`PoolDef::allocation`]).
    pub(crate) fn auto_assign_pools(&self) -> &[usize] {
        &self.auto_assign
    }

    /// The index of a pool by name.
    pub(crate) fn index_of(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// The name of a pool.
    pub(crate) fn shared_name(&self, pool: usize) -> Option<Arc<str>> {
        self.pools.get(pool).map(|p| Arc::clone(&p.shared_name))
    }

    /// The name of a pool.
    pub(crate) fn name(&self, pool: usize) -> &str {
        self.pools.get(pool).map_or("", |p| p.def.name.as_str())
    }

    /// The pool whose ranges contain an address.
    pub(crate) fn locate(&self, ip: IpAddr) -> Option<usize> {
        let bits = to_bits(ip);
        self.ranges[Family::of(ip).slot()]
            .range(..=bits)
            .next_back()
            .filter(|(_, (end, _))| bits <= *end)
            .map(|(_, &(_, pool))| pool)
    }

    fn space(&self, pool: usize, family: Family) -> Option<&Space> {
        self.pools.get(pool).map(|p| &p.spaces[family.slot()])
    }

    fn space_mut(&mut self, pool: usize, family: Family) -> Option<&mut Space> {
        self.pools
            .get_mut(pool)
            .map(|p| &mut p.spaces[family.slot()])
    }

    /// Whether a pool has any usable address of a family.
    pub(crate) fn serves(&self, pool: usize, family: Family) -> bool {
        self.space(pool, family).is_some_and(|s| s.total > 0)
    }

    /// The lowest free address of a family in a pool.
    pub(crate) fn lowest_free(&self, pool: usize, family: Family) -> Option<IpAddr> {
        let space = self.space(pool, family)?;
        let index = space.free.first()?;
        Some(from_bits(family, space.numbering.address(index)))
    }

    /// Whether an address of a pool is free (and usable).
    pub(crate) fn is_free(&self, pool: usize, ip: IpAddr) -> bool {
        self.space(pool, Family::of(ip)).is_some_and(|s| {
            s.numbering
                .index(to_bits(ip))
                .is_some_and(|i| s.free.contains(i))
        })
    }

    /// Takes a specific address (which [`PoolSet::locate`] put in this pool).
    pub(crate) fn take(&mut self, pool: usize, ip: IpAddr) -> Take {
        let Some(space) = self.space_mut(pool, Family::of(ip)) else {
            return Take::NotFree;
        };
        let Some(index) = space.numbering.index(to_bits(ip)) else {
            return Take::Avoided;
        };
        if space.free.take(index) {
            space.in_use += 1;
            Take::Taken
        } else {
            Take::NotFree
        }
    }

    /// Returns an address to its pool.
    pub(crate) fn put(&mut self, pool: usize, ip: IpAddr) {
        if let Some(space) = self.space_mut(pool, Family::of(ip))
            && let Some(index) = space.numbering.index(to_bits(ip))
            && space.free.put(index)
        {
            space.in_use = space.in_use.saturating_sub(1);
        }
    }

    /// Totals and use per pool and family, for every family a pool has addresses of.
    pub(crate) fn stats(&self) -> Vec<PoolStats> {
        let mut out = Vec::new();
        for pool in &self.pools {
            for family in Family::ALL {
                let space = &pool.spaces[family.slot()];
                if space.total > 0 {
                    out.push(PoolStats {
                        pool: pool.def.name.clone(),
                        family,
                        total: space.total,
                        in_use: space.in_use,
                    });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn def(name: &str, ranges: &[(&str, &str)]) -> PoolDef {
        PoolDef {
            name: name.into(),
            ranges: ranges.iter().map(|(a, b)| (ip(a), ip(b))).collect(),
            avoid_buggy_ips: false,
            auto_assign: true,
            allocation: None,
        }
    }

    #[test]
    fn overlapping_pools_are_rejected_with_both_names() {
        let err = PoolSet::build(&[
            def("a", &[("203.0.113.0", "203.0.113.15")]),
            def("b", &[("203.0.113.15", "203.0.113.20")]),
        ])
        .unwrap_err();
        assert_eq!(
            err,
            PoolError::Overlap {
                pool: "b".into(),
                first: ip("203.0.113.15"),
                last: ip("203.0.113.20"),
                other: "a".into()
            }
        );
    }

    #[test]
    fn overlap_inside_one_pool_is_rejected() {
        let err = PoolSet::build(&[def(
            "a",
            &[
                ("203.0.113.10", "203.0.113.20"),
                ("203.0.113.0", "203.0.113.10"),
            ],
        )])
        .unwrap_err();
        assert!(matches!(err, PoolError::Overlap { ref other, .. } if other == "a"));
    }

    #[test]
    fn reversed_mixed_and_duplicate_are_rejected() {
        assert!(matches!(
            PoolSet::build(&[def("a", &[("203.0.113.9", "203.0.113.1")])]),
            Err(PoolError::Reversed { .. })
        ));
        assert!(matches!(
            PoolSet::build(&[def("a", &[("203.0.113.1", "2001:db8::1")])]),
            Err(PoolError::MixedFamilies { .. })
        ));
        assert_eq!(
            PoolSet::build(&[def("a", &[]), def("a", &[])]).unwrap_err(),
            PoolError::DuplicateName { name: "a".into() }
        );
    }

    #[test]
    fn adjacent_ranges_of_two_pools_are_fine_and_located_exactly() {
        let set = PoolSet::build(&[
            def("a", &[("203.0.113.0", "203.0.113.15")]),
            def(
                "b",
                &[
                    ("203.0.113.16", "203.0.113.31"),
                    ("2001:db8::", "2001:db8::ff"),
                ],
            ),
        ])
        .unwrap();
        assert_eq!(set.locate(ip("203.0.113.15")), Some(0));
        assert_eq!(set.locate(ip("203.0.113.16")), Some(1));
        assert_eq!(set.locate(ip("203.0.113.32")), None);
        assert_eq!(set.locate(ip("2001:db8::ff")), Some(1));
        assert_eq!(set.locate(ip("2001:db8::100")), None);
        assert!(!set.serves(0, Family::V6));
        assert!(set.serves(1, Family::V6));
    }

    #[test]
    fn avoid_buggy_ips_counts_and_hands_out_only_usable_addresses() {
        let mut d = def("a", &[("198.51.100.0", "198.51.101.255")]);
        d.avoid_buggy_ips = true;
        let mut set = PoolSet::build(&[d]).unwrap();
        let stats = set.stats();
        assert_eq!(stats[0].total, 2 * 254);
        assert_eq!(set.lowest_free(0, Family::V4), Some(ip("198.51.100.1")));
        assert_eq!(set.take(0, ip("198.51.100.255")), Take::Avoided);
        assert_eq!(set.take(0, ip("198.51.100.1")), Take::Taken);
        assert_eq!(set.take(0, ip("198.51.100.1")), Take::NotFree);
        assert_eq!(set.stats()[0].in_use, 1);
        set.put(0, ip("198.51.100.1"));
        set.put(0, ip("198.51.100.1"));
        assert_eq!(set.stats()[0].in_use, 0);
    }
}

//! The allocator: which Service holds which addresses, and the rules for handing out new ones.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use crate::family::Family;
use crate::fast_hash::{FxBuildHasher, HashedKey, KeyProbe, Probe};
use crate::holders::Holders;
use crate::pool::{PoolDef, PoolError, PoolSet, PoolStats, Take};
use crate::refusal::{Refusal, SharingMismatch};
use crate::request::{Alternatives, Request, ServiceKey};
use crate::sharing::can_share;
use crate::tenancy::{namespaces_may_share, pool_denial};

/// One address held by a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignedAddress {
    /// The address.
    pub ip: IpAddr,
    /// The pool it belongs to, or `None` when it is *stranded*: the current pools would not hand it out (it lies
    /// outside every pool, or `avoid-buggy-ips` now excludes it), yet the Service keeps it so traffic keeps flowing.
    pub pool: Option<Arc<str>>,
}

/// The addresses a Service holds, in the Service's `spec.ipFamilies` order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The addresses.
    pub addresses: Vec<AssignedAddress>,
}

impl Assignment {
    /// Just the addresses, for `status.loadBalancer.ingress`.
    pub fn ips(&self) -> Vec<IpAddr> {
        self.addresses.iter().map(|a| a.ip).collect()
    }

    /// Whether any address is stranded (see [`AssignedAddress::pool`]).
    pub fn is_stranded(&self) -> bool {
        self.addresses.iter().any(|a| a.pool.is_none())
    }
}

/// What a new set of pools means for existing assignments (see [`Allocator::set_pools`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PoolChange {
    /// Held addresses the new pools would not hand out, by Service. They stay assigned (and announced), so nothing
    /// is dropped silently and nothing else can get them; flag them on the Service and in a metric.
    pub stranded: Vec<(ServiceKey, IpAddr)>,
    /// Services whose addresses now lie in a pool other than their annotated one. The next
    /// [`Allocator::allocate`] for each moves it into its pool.
    pub misplaced: Vec<ServiceKey>,
}

/// The result of re-registering an existing assignment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Registered {
    /// Newer Services that held one of the addresses without being able to share it. They lost their whole
    /// assignment and need a conflict condition (and a new [`Allocator::allocate`]).
    pub displaced: Vec<ServiceKey>,
}

/// An existing assignment to re-register: the Service, its request and the addresses its status shows.
pub type ExistingAssignment = (ServiceKey, Request, Vec<IpAddr>);

#[derive(Debug, Clone)]
struct Held {
    request: Request,
    ips: Vec<IpAddr>,
}

#[derive(Debug, Clone)]
struct IpRecord {
    /// Sorted.
    holders: Holders,
    /// The pool index, or `None` when stranded.
    pool: Option<usize>,
    /// The sharing key of the holders (all holders have the same one).
    sharing_key: Option<String>,
}

/// Assigns addresses from pools to Services. Pure: no I/O, no clock; deterministic for a given call sequence.
///
/// Costs: allocate, release and re-register are O(log n) in pool size and number of held addresses; a Service with
/// a sharing key also looks at the addresses already held under that key.
#[derive(Debug, Clone, Default)]
pub struct Allocator {
    pools: PoolSet,
    // Hash maps: every decision looks entries up by key; whatever is listed is sorted first, so the results stay
    // deterministic.
    // Boxed values keep the table small, so growing it moves 24-byte entries, not whole requests.
    services: HashMap<HashedKey, Box<Held>, FxBuildHasher>,
    ips: HashMap<IpAddr, IpRecord, FxBuildHasher>,
    /// Sharing key -> addresses held under it.
    shared: BTreeMap<String, BTreeSet<IpAddr>>,
}

impl Allocator {
    /// An allocator over the given pools, holding nothing.
    pub fn new(pools: &[PoolDef]) -> Result<Allocator, PoolError> {
        Ok(Allocator {
            pools: PoolSet::build(pools)?,
            ..Allocator::default()
        })
    }

    /// Builds an allocator and re-registers every existing assignment, oldest Service first, so the result does not
    /// depend on the order of `existing` and of two Services claiming one address the older keeps it. Returns the
    /// refusals (one per Service whose status could not be kept).
    pub fn from_existing(
        pools: &[PoolDef],
        existing: impl IntoIterator<Item = ExistingAssignment>,
    ) -> Result<(Allocator, Vec<(ServiceKey, Refusal)>), PoolError> {
        let mut allocator = Allocator::new(pools)?;
        let mut existing: Vec<ExistingAssignment> = existing.into_iter().collect();
        existing.sort_by(|a, b| (&a.1.created, &a.0).cmp(&(&b.1.created, &b.0)));
        let mut refused = Vec::new();
        for (key, request, ips) in existing {
            if let Err(refusal) = allocator.register_existing(&key, &request, &ips) {
                refused.push((key, refusal));
            }
        }
        Ok((allocator, refused))
    }

    /// The assignment a Service holds.
    pub fn assignment(&self, key: &ServiceKey) -> Option<Assignment> {
        self.held(key).map(|held| self.describe(&held.ips))
    }

    /// Every assignment, ordered by Service.
    pub fn assignments(&self) -> impl Iterator<Item = (&ServiceKey, Assignment)> + '_ {
        let mut keys: Vec<&HashedKey> = self.services.keys().collect();
        // Sorted by the Service key itself.
        keys.sort_unstable_by(|a, b| a.as_ref().cmp(b.as_ref()));
        keys.into_iter()
            .filter_map(|key| self.services.get_key_value(key as &dyn KeyProbe))
            .map(|(key, held)| (key.as_ref(), self.describe(&held.ips)))
    }

    /// The Services holding an address (several when shared), ordered.
    pub fn holders(&self, ip: IpAddr) -> Vec<ServiceKey> {
        self.ips
            .get(&ip)
            .map(|r| r.holders.iter().map(|k| ServiceKey::clone(k)).collect())
            .unwrap_or_default()
    }

    /// Held addresses the current pools would not hand out, by Service (see [`AssignedAddress::pool`]).
    pub fn stranded(&self) -> Vec<(ServiceKey, IpAddr)> {
        let mut out = Vec::new();
        for (ip, record) in &self.ips {
            if record.pool.is_none() {
                out.extend(record.holders.iter().map(|k| (ServiceKey::clone(k), *ip)));
            }
        }
        out.sort();
        out
    }

    /// Held addresses the current rules would not give the Service now (a pool's `service-allocation`, a
    /// namespace fence, or sharing across namespaces without both sides' opt-in), with the rule in words, ordered.
    /// They stay assigned: nothing moves by itself.
    pub fn outside_rules(&self) -> Vec<(ServiceKey, IpAddr, String)> {
        let mut out: Vec<(ServiceKey, IpAddr, String)> = self
            .services
            .iter()
            .flat_map(|(key, held)| {
                self.held_outside_rules(key, held)
                    .into_iter()
                    .map(|(ip, rule)| (ServiceKey::clone(key), ip, rule))
            })
            .collect();
        out.sort();
        out
    }

    /// The addresses one Service holds outside the current rules (see [`Allocator::outside_rules`]), with the rule.
    pub fn outside_rules_of(&self, key: &ServiceKey) -> Vec<(IpAddr, String)> {
        self.held(key)
            .map(|held| self.held_outside_rules(key, held))
            .unwrap_or_default()
    }

    fn held_outside_rules(&self, key: &ServiceKey, held: &Held) -> Vec<(IpAddr, String)> {
        let mut out = Vec::new();
        for &ip in &held.ips {
            let Some(record) = self.ips.get(&ip) else {
                continue;
            };
            let pool_rule = record
                .pool
                .and_then(|p| pool_denial(&self.pools, p, key, &held.request));
            let sharing_rule = || {
                self.conflicts(key, &held.request, ip, true)
                    .into_iter()
                    .find_map(|(holder, m)| match m {
                        SharingMismatch::Namespace => {
                            Some(format!("address {ip} is shared with {holder}: {m}"))
                        }
                        _ => None,
                    })
            };
            if let Some(rule) = pool_rule.or_else(sharing_rule) {
                out.push((ip, rule));
            }
        }
        out
    }

    /// Addresses total and in use per pool and family, in config order (for metrics). Stranded addresses are in
    /// no pool's count; see [`Allocator::stranded`].
    pub fn pool_stats(&self) -> Vec<PoolStats> {
        self.pools.stats()
    }

    /// Gives a Service addresses for its request.
    ///
    /// Idempotent: a Service that already holds a valid assignment for `request` keeps it unchanged (its stored
    /// request is updated). A Service whose assignment no longer fits (requested address, pool annotation, families
    /// or sharing changed) is released and allocated afresh; if that fails it holds nothing.
    ///
    /// Order: the requested addresses; else the annotated pool; else auto-assign pools in config order. Within a
    /// pool the lowest usable address wins, where a Service with a sharing key may also take an address already
    /// held under that key if it can share it (as MetalLB does).
    pub fn allocate(&mut self, key: &ServiceKey, request: &Request) -> Result<Assignment, Refusal> {
        validate(request)?;
        if let Some(held) = self.held(key) {
            if let Ok(ips) = self.check_existing(key, request, &held.ips) {
                // Same addresses; only their order may follow a changed `spec.ipFamilies`.
                self.update_request(key, request, &ips);
                return Ok(self.describe(&ips));
            }
            self.release(key);
        }
        if request.requested_ips.is_empty() {
            let (ips, pool) = self.pick_from_pools(key, request)?;
            let name = self.pools.shared_name(pool);
            let assignment = Assignment {
                addresses: ips
                    .iter()
                    .map(|&ip| AssignedAddress {
                        ip,
                        pool: name.clone(),
                    })
                    .collect(),
            };
            self.commit(key, request, ips);
            Ok(assignment)
        } else {
            let ips = self.check_requested(key, request)?;
            self.commit(key, request, ips.clone());
            Ok(self.describe(&ips))
        }
    }

    /// Re-registers what a Service's status says it holds (at start-up and after a watch re-list, before anything
    /// new is allocated). A valid assignment is kept exactly, even one in no current pool (it is then stranded).
    ///
    /// Refused when the addresses do not fit the request (families, requested addresses, annotated pool), or when
    /// an address is held by an older Service that cannot share it. Newer Services that cannot share are displaced
    /// instead, and returned. A Service already registered is released first.
    pub fn register_existing(
        &mut self,
        key: &ServiceKey,
        request: &Request,
        ips: &[IpAddr],
    ) -> Result<Registered, Refusal> {
        validate(request)?;
        self.release(key);
        let ordered = order_by_family(request, ips)?;
        self.check_fit(request, &ordered)?;
        let mut displaced = BTreeSet::new();
        for &ip in &ordered {
            for (holder, mismatch) in self.conflicts(key, request, ip, false) {
                let older = self
                    .held(&holder)
                    .is_some_and(|h| (&h.request.created, &holder) < (&request.created, key));
                if older {
                    return Err(refusal_for(ip, holder, mismatch));
                }
                displaced.insert(holder);
            }
        }
        for holder in &displaced {
            self.release(holder);
        }
        self.commit(key, request, ordered);
        Ok(Registered {
            displaced: displaced.into_iter().collect(),
        })
    }

    /// Releases whatever a Service holds. Returns the released assignment.
    pub fn release(&mut self, key: &ServiceKey) -> Option<Assignment> {
        let probe = Probe::new(key);
        let held = self.services.get(&probe as &dyn KeyProbe)?;
        let released = self.describe(&held.ips);
        let held = self.services.remove(&probe as &dyn KeyProbe)?;
        for ip in held.ips {
            let Some(record) = self.ips.get_mut(&ip) else {
                continue;
            };
            record.holders.remove(key);
            if !record.holders.is_empty() {
                continue;
            }
            let pool = record.pool;
            let sharing_key = record.sharing_key.clone();
            self.ips.remove(&ip);
            if let Some(pool) = pool {
                self.pools.put(pool, ip);
            }
            if let Some(k) = sharing_key
                && let Some(set) = self.shared.get_mut(&k)
            {
                set.remove(&ip);
                if set.is_empty() {
                    self.shared.remove(&k);
                }
            }
        }
        Some(released)
    }

    /// Replaces the pools. Every held address stays held: those the new pools would not hand out become stranded
    /// (reported, still assigned, never handed to anyone else). The caller decides what to tell users; ferrolb keeps
    /// them and flags them rather than refusing the config or dropping traffic.
    ///
    /// On error (invalid pools) nothing changes: the last good pools stay in force.
    pub fn set_pools(&mut self, pools: &[PoolDef]) -> Result<PoolChange, PoolError> {
        let mut set = PoolSet::build(pools)?;
        for (ip, record) in self.ips.iter_mut() {
            record.pool = match set.locate(*ip) {
                Some(pool) if set.take(pool, *ip) == Take::Taken => Some(pool),
                _ => None,
            };
        }
        self.pools = set;
        let mut misplaced: Vec<ServiceKey> = self
            .services
            .iter()
            .filter(|(_, held)| self.check_fit(&held.request, &held.ips).is_err())
            .map(|(key, _)| ServiceKey::clone(key))
            .collect();
        misplaced.sort();
        Ok(PoolChange {
            stranded: self.stranded(),
            misplaced,
        })
    }

    fn held(&self, key: &ServiceKey) -> Option<&Held> {
        self.services
            .get(&Probe::new(key) as &dyn KeyProbe)
            .map(|h| &**h)
    }

    fn describe(&self, ips: &[IpAddr]) -> Assignment {
        Assignment {
            addresses: ips
                .iter()
                .map(|&ip| AssignedAddress {
                    ip,
                    pool: self
                        .ips
                        .get(&ip)
                        .and_then(|r| r.pool)
                        .and_then(|p| self.pools.shared_name(p)),
                })
                .collect(),
        }
    }

    /// Whether held addresses still satisfy a (possibly changed) request; if so, them in the request's family
    /// order.
    fn check_existing(
        &self,
        key: &ServiceKey,
        request: &Request,
        ips: &[IpAddr],
    ) -> Result<Vec<IpAddr>, Refusal> {
        let ordered = order_by_family(request, ips)?;
        self.check_fit(request, &ordered)?;
        for &ip in &ordered {
            if let Some((holder, mismatch)) =
                self.conflicts(key, request, ip, false).into_iter().next()
            {
                return Err(refusal_for(ip, holder, mismatch));
            }
        }
        Ok(ordered)
    }

    /// Requested addresses and pool annotation against held addresses (ordered by family already).
    fn check_fit(&self, request: &Request, ips: &[IpAddr]) -> Result<(), Refusal> {
        if !request.requested_ips.is_empty() {
            let want: BTreeSet<_> = request.requested_ips.iter().collect();
            let have: BTreeSet<_> = ips.iter().collect();
            if want != have {
                return Err(Refusal::InvalidRequest {
                    reason: "held addresses differ from the requested ones".into(),
                });
            }
        }
        if let Some(name) = &request.pool {
            for &ip in ips {
                // Stranded addresses (in no pool now) are kept; an address inside another pool is not.
                if let Some(pool) = self.pools.locate(ip)
                    && self.pools.name(pool) != name
                {
                    return Err(Refusal::NotInRequestedPool {
                        ip,
                        pool: name.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Holders of `ip` (other than `key`) that cannot share it with `request`. `new_claim`: the Service does not
    /// hold `ip` yet, so sharing across namespaces needs both sides' opt-in (held addresses are kept as they are).
    fn conflicts(
        &self,
        key: &ServiceKey,
        request: &Request,
        ip: IpAddr,
        new_claim: bool,
    ) -> Vec<(ServiceKey, SharingMismatch)> {
        let Some(record) = self.ips.get(&ip) else {
            return Vec::new();
        };
        record
            .holders
            .iter()
            .filter(|h| h.as_ref() != key)
            .filter_map(|h| {
                let theirs = &self.services.get(h as &dyn KeyProbe)?.request;
                let shared = can_share(request, theirs);
                let fenced = new_claim
                    && !matches!(shared, Err(SharingMismatch::Key { .. }))
                    && !namespaces_may_share(key, request, h, theirs);
                let mismatch = if fenced {
                    Err(SharingMismatch::Namespace)
                } else {
                    shared
                };
                mismatch.err().map(|m| (ServiceKey::clone(h), m))
            })
            .collect()
    }

    fn check_requested(&self, key: &ServiceKey, request: &Request) -> Result<Vec<IpAddr>, Refusal> {
        let ordered = order_by_family(request, &request.requested_ips)?;
        let wanted_pool = match &request.pool {
            Some(name) => Some(
                self.pools
                    .index_of(name)
                    .ok_or_else(|| Refusal::NoSuchPool { pool: name.clone() })?,
            ),
            None => None,
        };
        for &ip in &ordered {
            let pool = self.pools.locate(ip).ok_or(Refusal::NotInAnyPool { ip })?;
            if let (Some(wanted), Some(name)) = (wanted_pool, &request.pool)
                && wanted != pool
            {
                return Err(Refusal::NotInRequestedPool {
                    ip,
                    pool: name.clone(),
                });
            }
            if let Some(rule) = pool_denial(&self.pools, pool, key, request) {
                return Err(Refusal::NotAllowed {
                    rule: format!("requested address {ip}: {rule}"),
                });
            }
            if self.pools.is_free(pool, ip) {
                continue;
            }
            match self.ips.get(&ip) {
                // Held and usable in its pool (a held address the pool skips is stranded: never shared out).
                Some(record)
                    if record.pool.is_some()
                        && record.holders.iter().any(|h| h.as_ref() != key) =>
                {
                    if let Some((holder, mismatch)) =
                        self.conflicts(key, request, ip, true).into_iter().next()
                    {
                        return Err(refusal_for(ip, holder, mismatch));
                    }
                }
                _ => {
                    return Err(Refusal::AvoidedAddress {
                        ip,
                        pool: self.pools.name(pool).to_owned(),
                    });
                }
            }
        }
        Ok(ordered)
    }

    /// Addresses (one per family) from the first pool that can give them all, and that pool.
    fn pick_from_pools(
        &self,
        key: &ServiceKey,
        request: &Request,
    ) -> Result<(Vec<IpAddr>, usize), Refusal> {
        let annotated;
        let allowed: Vec<usize>;
        let candidates: &[usize] = match &request.pool {
            Some(name) => {
                annotated = self
                    .pools
                    .index_of(name)
                    .ok_or_else(|| Refusal::NoSuchPool { pool: name.clone() })?;
                if let Some(rule) = pool_denial(&self.pools, annotated, key, request) {
                    return Err(Refusal::NotAllowed { rule });
                }
                std::slice::from_ref(&annotated)
            }
            None if !self.pools.has_rules() => self.pools.auto_assign_pools(),
            None => {
                let all = self.pools.auto_assign_pools();
                allowed = all
                    .iter()
                    .copied()
                    .filter(|&p| pool_denial(&self.pools, p, key, request).is_none())
                    .collect();
                if allowed.is_empty()
                    && let Some(rule) = all
                        .iter()
                        .find_map(|&p| pool_denial(&self.pools, p, key, request))
                {
                    return Err(Refusal::NotAllowed {
                        rule: format!("no auto-assign address pool serves {key}: {rule}"),
                    });
                }
                &allowed
            }
        };
        let alternatives = request.families.alternatives();
        for families in alternatives.iter() {
            for &pool in candidates {
                if !families.iter().all(|&f| self.pools.serves(pool, f)) {
                    continue;
                }
                let picked: Option<Vec<IpAddr>> = families
                    .iter()
                    .map(|&f| self.pick_in_pool(key, request, pool, f))
                    .collect();
                if let Some(ips) = picked {
                    return Ok((ips, pool));
                }
            }
        }
        Err(self.diagnose(request, candidates, &alternatives))
    }

    /// The lowest address of `family` in `pool` this Service can take: free, or already held under its sharing key
    /// by Services it can share with.
    fn pick_in_pool(
        &self,
        key: &ServiceKey,
        request: &Request,
        pool: usize,
        family: Family,
    ) -> Option<IpAddr> {
        let free = self.pools.lowest_free(pool, family);
        let shared = request.sharing_key.as_ref().and_then(|k| {
            self.shared.get(k)?.iter().copied().find(|&ip| {
                Family::of(ip) == family
                    && self.ips.get(&ip).is_some_and(|r| r.pool == Some(pool))
                    && self.conflicts(key, request, ip, true).is_empty()
            })
        });
        match (free, shared) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Why no pool could serve the request.
    fn diagnose(
        &self,
        request: &Request,
        candidates: &[usize],
        alternatives: &Alternatives,
    ) -> Refusal {
        let explain = |families: &[Family]| -> Refusal {
            for &f in families {
                if !candidates.iter().any(|&p| self.pools.serves(p, f)) {
                    return Refusal::FamilyUnavailable {
                        family: f,
                        pool: request.pool.clone(),
                    };
                }
            }
            if families.len() > 1
                && !candidates
                    .iter()
                    .any(|&p| families.iter().all(|&f| self.pools.serves(p, f)))
            {
                return Refusal::NoDualStackPool {
                    pool: request.pool.clone(),
                };
            }
            let family = families
                .iter()
                .copied()
                .find(|&f| {
                    candidates.iter().all(|&p| {
                        !self.pools.serves(p, f) || self.pools.lowest_free(p, f).is_none()
                    })
                })
                .or_else(|| families.first().copied())
                .unwrap_or(Family::V4);
            Refusal::PoolExhausted {
                family,
                pool: request.pool.clone(),
            }
        };
        // For PreferDualStack, the single-family fallbacks say more than the dual-stack attempt.
        let tried: Vec<Refusal> = if alternatives.len() > 1 {
            alternatives.iter().skip(1).map(explain).collect()
        } else {
            alternatives.iter().map(explain).collect()
        };
        tried
            .iter()
            .find(|r| matches!(r, Refusal::PoolExhausted { .. }))
            .or(tried.first())
            .cloned()
            .unwrap_or_else(|| Refusal::InvalidRequest {
                reason: "no address family requested".into(),
            })
    }

    /// Records that a Service holds addresses (already checked).
    fn commit(&mut self, key: &ServiceKey, request: &Request, ips: Vec<IpAddr>) {
        let shared_key = HashedKey::new(key);
        for &ip in &ips {
            match self.ips.entry(ip) {
                Entry::Occupied(mut record) => {
                    record.get_mut().holders.insert(shared_key.clone());
                }
                Entry::Vacant(slot) => {
                    let pool = match self.pools.locate(ip) {
                        Some(pool) if self.pools.take(pool, ip) == Take::Taken => Some(pool),
                        _ => None,
                    };
                    if let Some(k) = &request.sharing_key {
                        self.shared.entry(k.clone()).or_default().insert(ip);
                    }
                    slot.insert(IpRecord {
                        holders: Holders::One(shared_key.clone()),
                        pool,
                        sharing_key: request.sharing_key.clone(),
                    });
                }
            }
        }
        self.services.insert(
            shared_key,
            Box::new(Held {
                request: request.clone(),
                ips,
            }),
        );
    }

    /// Stores a changed request for a Service whose assignment stays valid, moving its addresses to its new sharing
    /// key when it is their only holder.
    fn update_request(&mut self, key: &ServiceKey, request: &Request, ips: &[IpAddr]) {
        if let Some(held) = self.services.get_mut(&Probe::new(key) as &dyn KeyProbe) {
            if held.request == *request {
                return;
            }
            held.request = request.clone();
            held.ips = ips.to_vec();
        }
        for ip in ips {
            let Some(record) = self.ips.get_mut(ip) else {
                continue;
            };
            if record.sharing_key == request.sharing_key {
                continue;
            }
            if let Some(old) = record.sharing_key.take()
                && let Some(set) = self.shared.get_mut(&old)
            {
                set.remove(ip);
                if set.is_empty() {
                    self.shared.remove(&old);
                }
            }
            record.sharing_key = request.sharing_key.clone();
            if let Some(k) = &request.sharing_key {
                self.shared.entry(k.clone()).or_default().insert(*ip);
            }
        }
    }
}

/// Checks a request on its own.
fn validate(request: &Request) -> Result<(), Refusal> {
    let families = &request.families.families;
    let distinct = match families.as_slice() {
        [_] => true,
        [a, b] => a != b,
        _ => false,
    };
    if !distinct {
        return Err(Refusal::InvalidRequest {
            reason: "spec.ipFamilies must list one or two distinct families".into(),
        });
    }
    Ok(())
}

/// Orders addresses by the Service's family order, refusing a set whose families are not one the request allows.
fn order_by_family(request: &Request, ips: &[IpAddr]) -> Result<Vec<IpAddr>, Refusal> {
    let mut ordered = ips.to_vec();
    let position = |ip: &IpAddr| {
        let family = Family::of(*ip);
        request.families.families.iter().position(|&f| f == family)
    };
    ordered.sort_by_key(|ip| (position(ip), *ip));
    let mut got: Vec<Family> = ordered.iter().map(|&ip| Family::of(ip)).collect();
    got.dedup();
    let allowed = request
        .families
        .alternatives()
        .iter()
        .any(|a| a == got.as_slice())
        && got.len() == ordered.len();
    if !allowed {
        let list: Vec<String> = ips.iter().map(IpAddr::to_string).collect();
        return Err(Refusal::InvalidRequest {
            reason: format!(
                "addresses [{}] do not match spec.ipFamilies {:?} with policy {:?}",
                list.join(", "),
                request.families.families,
                request.families.policy
            ),
        });
    }
    Ok(ordered)
}

fn refusal_for(ip: IpAddr, holder: ServiceKey, mismatch: SharingMismatch) -> Refusal {
    match mismatch {
        SharingMismatch::Key { .. } => Refusal::InUse { ip, by: holder },
        SharingMismatch::Namespace => Refusal::NotAllowed {
            rule: format!("address {ip} is held by {holder}: {mismatch}"),
        },
        other => Refusal::SharingConflict {
            ip,
            with: holder,
            mismatch: other,
        },
    }
}

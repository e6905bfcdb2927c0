//! The controller's state and its pure reconcile: cached Services and the configuration in, status writes out.
//!
//! Restart safety: after every (re-)list of Services, and whenever this replica becomes the leader, the allocator
//! is rebuilt from what the Services' statuses say (oldest Service first), before anything new is assigned.
//! Nothing is written until both the Service and the ConfigMap caches have synced.

use crate::config_source::state::{Candidate, ConfigState, Outcome, Rejection, fingerprint};
use ferrolb_config::Config;
use ferrolb_ipam::{Allocator, Assignment, PoolDef, Refusal, Request, ServiceKey};
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use super::attributes::AttributePolicy;
use super::status::{
    DesiredCondition, DesiredStatus, REASON_ASSIGNED, REASON_CONFIG_INVALID, REASON_CONFLICT,
    REASON_OUTSIDE_ALLOCATION, REASON_STRANDED, ServiceEvent, events_for, status_patch,
    stored_attributes, stored_condition,
};
use super::view::ServiceView;
use crate::service_filter::{Handling, ServiceFilter};

/// A status write the controller wants to make.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusWrite {
    /// The Service.
    pub key: ServiceKey,
    /// The merge patch for its status subresource.
    pub patch: Value,
    /// The Events to record once the patch succeeded.
    pub events: Vec<ServiceEvent>,
    /// The failure reason when the Service newly goes into a failed state (for the failure metric).
    pub failure: Option<String>,
}

/// What a new configuration input did (`Loaded`: how many held addresses the new pools do not contain; they
/// are kept, and flagged).
pub type ConfigOutcome = Outcome<usize>;

/// The controller's state.
#[derive(Debug)]
pub struct ControllerState {
    filter: ServiceFilter,
    config_name: String,
    /// What is kept of each Service.
    services: BTreeMap<ServiceKey, ServiceView>,
    services_synced: bool,
    config_synced: bool,
    /// The pools in force, from the last good configuration.
    pools: Option<Vec<PoolDef>>,
    /// What Services may set as BGP attributes, from the last good configuration.
    attribute_policy: Option<AttributePolicy>,
    /// The configuration in force and the state of the newest input.
    config: ConfigState,
    allocator: Option<Allocator>,
    /// The allocator must be rebuilt from the Services' statuses before the next reconcile.
    needs_rebuild: bool,
    /// Services that lost a contested address to an older Service, with the request they had then. They stay
    /// without an address (and say why) until their request changes.
    conflicts: BTreeMap<ServiceKey, (Request, String)>,
    dirty: BTreeSet<ServiceKey>,
    /// The last reconcile left some of `dirty` for the next.
    left_over: bool,
    /// Namespace labels by namespace name (for pools' `namespace-selectors`), shared with the requests.
    namespaces: BTreeMap<String, Arc<Labels>>,
    namespaces_synced: bool,
}

/// Labels of an object.
pub type Labels = BTreeMap<String, String>;

impl ControllerState {
    /// A new state for `filter`. `config_name` (`namespace/name`) is used in messages.
    pub fn new(filter: ServiceFilter, config_name: impl Into<String>) -> ControllerState {
        ControllerState {
            filter,
            config_name: config_name.into(),
            services: BTreeMap::new(),
            services_synced: false,
            config_synced: false,
            pools: None,
            attribute_policy: None,
            config: ConfigState::default(),
            allocator: None,
            needs_rebuild: true,
            conflicts: BTreeMap::new(),
            dirty: BTreeSet::new(),
            namespaces: BTreeMap::new(),
            namespaces_synced: false,
            left_over: false,
        }
    }

    /// Whether the caches have synced (the controller may decide things): Services and configuration, and the
    /// Namespaces too once a pool selects namespaces by label (until then a fence could not be seen).
    pub fn synced(&self) -> bool {
        self.services_synced
            && self.config_synced
            && (self.namespaces_synced || !self.selects_namespaces_by_label())
    }

    /// Whether a pool in force has `namespace-selectors`.
    fn selects_namespaces_by_label(&self) -> bool {
        self.pools.iter().flatten().any(|p| {
            p.allocation
                .as_ref()
                .is_some_and(|a| !a.namespace_selectors.is_empty())
        })
    }

    /// A complete list of Namespaces and their labels (the watch started or re-listed). Services of namespaces
    /// whose labels changed are looked at again.
    pub fn namespaces_relisted(&mut self, namespaces: impl IntoIterator<Item = (String, Labels)>) {
        let new: BTreeMap<String, Arc<Labels>> = namespaces
            .into_iter()
            .map(|(name, labels)| (name, Arc::new(labels)))
            .collect();
        let changed: BTreeSet<String> = self
            .namespaces
            .iter()
            .filter(|(name, labels)| new.get(*name) != Some(*labels))
            .chain(
                new.iter()
                    .filter(|(name, labels)| self.namespaces.get(*name) != Some(*labels)),
            )
            .map(|(name, _)| name.clone())
            .collect();
        self.namespaces = new;
        self.namespaces_synced = true;
        self.namespaces_touched(&changed);
    }

    /// A Namespace was added or changed: if its labels changed, its Services are looked at again.
    pub fn namespace_applied(&mut self, name: String, labels: Labels) {
        if self.namespaces.get(&name).map(|l| &**l) != Some(&labels) {
            self.namespaces_touched(&BTreeSet::from([name.clone()]));
            self.namespaces.insert(name, Arc::new(labels));
        }
    }

    /// A Namespace was deleted.
    pub fn namespace_deleted(&mut self, name: &str) {
        if self.namespaces.remove(name).is_some() {
            self.namespaces_touched(&BTreeSet::from([name.to_owned()]));
        }
    }

    fn namespaces_touched(&mut self, names: &BTreeSet<String>) {
        let keys = self
            .services
            .keys()
            .filter(|k| names.contains(&k.namespace))
            .cloned();
        self.dirty.extend(keys);
    }

    /// The Service's request with its Namespace's labels.
    fn request_for(&self, key: &ServiceKey, svc: &ServiceView) -> Result<Request, Refusal> {
        let mut request = svc.request.clone()?;
        if let Some(labels) = self.namespaces.get(&key.namespace) {
            request.namespace_labels = labels.clone();
        }
        Ok(request)
    }

    /// Whether a valid configuration is in force.
    pub fn config_loaded(&self) -> bool {
        self.config.loaded()
    }

    /// Whether the newest configuration was rejected (or removed) while an older one, or none, stays in force.
    pub fn config_stale(&self) -> bool {
        self.config.stale()
    }

    /// Why the newest configuration was rejected, if it was.
    pub fn config_rejection(&self) -> Option<&Rejection> {
        self.config.rejection()
    }

    /// The allocator, once built.
    pub fn allocator(&self) -> Option<&Allocator> {
        self.allocator.as_ref()
    }

    /// A complete list of Services (the watch started or re-listed), as views by key. Replaces the cache, and
    /// makes the next reconcile rebuild the allocator from their statuses first.
    pub fn services_listed(&mut self, services: BTreeMap<ServiceKey, ServiceView>) {
        self.services = services;
        self.services_synced = true;
        self.needs_rebuild = true;
    }

    /// A Service was added or changed. Events older than the cached object (e.g. queued before our own write
    /// returned) are ignored, and so is an event that says nothing new (the echo of our own status write, whose
    /// result [`Self::service_written`] already recorded).
    pub fn service_applied(&mut self, key: ServiceKey, svc: ServiceView) {
        let cached = self.services.get(&key);
        if let Some(cached) = cached {
            if let (Some(have), Some(new)) = (cached.resource_version, svc.resource_version)
                && new < have
            {
                return;
            }
            if *cached == svc {
                return;
            }
        }
        let change = Change::since(cached, &svc);
        self.services.insert(key.clone(), svc);
        self.changed(key, change);
    }

    /// Records the object the API server returned for our own status write. It is the newest version, so the
    /// watch's echo of it will say nothing new: when someone changed the Service between our reconcile and our
    /// write (the returned object carries that change), it is looked at again now.
    pub fn service_written(&mut self, key: ServiceKey, svc: ServiceView) {
        let change = Change::since(self.services.get(&key), &svc);
        self.services.insert(key.clone(), svc);
        if change != Change::StatusOnly {
            self.changed(key, change);
        }
    }

    /// Marks `key` to be looked at again, and with it the Services sharing its addresses when what sharing
    /// reads changed (a changed sharing opt-in may put theirs outside the rules, or back).
    fn changed(&mut self, key: ServiceKey, change: Change) {
        if change == Change::Sharing
            && let Some(assignment) = self.allocator.as_ref().and_then(|a| a.assignment(&key))
        {
            for ip in assignment.ips() {
                let holders = self.allocator.as_ref().map(|a| a.holders(ip));
                self.dirty.extend(holders.into_iter().flatten());
            }
        }
        self.dirty.insert(key);
    }

    /// A status write for `key` failed: look at the Service again on the next reconcile.
    pub fn retry(&mut self, key: ServiceKey) {
        self.dirty.insert(key);
    }

    /// A Service was deleted: its addresses are free again.
    pub fn service_deleted(&mut self, key: &ServiceKey) {
        self.services.remove(key);
        self.conflicts.remove(key);
        self.dirty.remove(key);
        if let Some(allocator) = self.allocator.as_mut() {
            allocator.release(key);
        }
    }

    /// This replica became the leader: rebuild from the statuses (another replica may have written them) and
    /// look at every Service.
    pub fn became_leader(&mut self) {
        self.needs_rebuild = true;
    }

    /// The configuration source has listed once (with or without a configuration).
    pub fn config_listed(&mut self) {
        self.config_synced = true;
    }

    /// The ConfigMap's `config` text changed (`None`: the ConfigMap or its key is gone).
    pub fn config_changed(&mut self, text: Option<&str>) -> ConfigOutcome {
        self.config_offered(fingerprint(&text), || Candidate::from_config_text(text))
    }

    /// The source offers a new input. A valid configuration is refused (as a rejection) when the allocator
    /// cannot take its pools.
    pub fn config_offered(
        &mut self,
        fingerprint: u64,
        candidate: impl FnOnce() -> Candidate,
    ) -> ConfigOutcome {
        let allocator = &mut self.allocator;
        let needs_rebuild = &mut self.needs_rebuild;
        let outcome = self.config.offer(fingerprint, candidate, |config| {
            let pools = pool_defs(config);
            let stranded = match allocator.as_mut() {
                Some(allocator) if !*needs_rebuild => allocator
                    .set_pools(&pools)
                    .map_err(|err| err.to_string())?
                    .stranded
                    .len(),
                _ => {
                    Allocator::new(&pools).map_err(|err| err.to_string())?;
                    *needs_rebuild = true;
                    0
                }
            };
            Ok((stranded, pools, AttributePolicy::from_config(config)))
        });
        outcome.map(|(stranded, pools, policy)| {
            self.pools = Some(pools);
            self.attribute_policy = Some(policy);
            self.dirty.extend(self.services.keys().cloned());
            stranded
        })
    }

    /// The status writes needed now (empty until both caches synced). Rebuilds the allocator first when needed.
    #[cfg(test)]
    pub fn reconcile(&mut self, now: Timestamp) -> Vec<StatusWrite> {
        self.reconcile_some(now, usize::MAX)
    }

    /// The status writes needed now for at most `limit` Services (in key order; empty until both caches
    /// synced; the allocator rebuilt first when needed); the rest stay to be looked at
    /// ([`Self::more_to_reconcile`]). Bounds what is held at once: at start-up every Service needs a write, and
    /// 10,000 patches with their Events held together were most of the controller's peak memory.
    pub fn reconcile_some(&mut self, now: Timestamp, limit: usize) -> Vec<StatusWrite> {
        if !self.synced() {
            return Vec::new();
        }
        if self.needs_rebuild {
            self.rebuild();
        }
        let rest = match self.dirty.iter().nth(limit) {
            Some(first_left) => {
                let first_left = first_left.clone();
                self.dirty.split_off(&first_left)
            }
            None => BTreeSet::new(),
        };
        self.left_over = !rest.is_empty();
        let batch = std::mem::replace(&mut self.dirty, rest);
        batch
            .into_iter()
            .filter_map(|key| self.reconcile_one(&key, now))
            .collect()
    }

    /// Whether the last [`Self::reconcile_some`] left Services for the next one (a failed write waits for the
    /// caller's retry instead).
    pub fn more_to_reconcile(&self) -> bool {
        self.left_over && self.synced()
    }

    /// Re-registers every assignment the Services' statuses show, oldest Service first.
    fn rebuild(&mut self) {
        self.needs_rebuild = false;
        self.dirty.extend(self.services.keys().cloned());
        self.conflicts.clear();
        let Some(pools) = &self.pools else {
            self.allocator = None;
            return;
        };
        let mut existing = Vec::new();
        let mut requests = BTreeMap::new();
        for (key, svc) in &self.services {
            if svc.handling(&self.filter) != Handling::Ours {
                continue;
            }
            let Ok(request) = self.request_for(key, svc) else {
                continue;
            };
            let ips = svc.status.ingress.clone();
            if ips.is_empty() {
                // Still in conflict from before a restart: the spec has not changed since.
                if let Some(c) = stored_condition(svc)
                    && c.reason == REASON_CONFLICT
                    && c.observed_generation == svc.generation
                {
                    self.conflicts
                        .insert(key.clone(), (request, c.message.clone()));
                }
                continue;
            }
            requests.insert(key.clone(), request.clone());
            existing.push((key.clone(), request, ips));
        }
        match Allocator::from_existing(pools, existing) {
            Ok((allocator, refused)) => {
                for (key, refusal) in refused {
                    if let Refusal::InUse { .. } | Refusal::SharingConflict { .. } = refusal
                        && let Some(request) = requests.remove(&key)
                    {
                        let message = format!(
                            "{refusal}; the older Service keeps the address. Change this Service's request to get another one"
                        );
                        tracing::warn!(service = %key, %message, "address conflict at re-list");
                        self.conflicts.insert(key, (request, message));
                    }
                }
                self.allocator = Some(allocator);
            }
            Err(err) => {
                // Pools were validated when the config was loaded; this cannot happen, but never panic.
                tracing::error!(error = %err, "address pools rejected while rebuilding");
                self.allocator = None;
            }
        }
    }

    fn reconcile_one(&mut self, key: &ServiceKey, now: Timestamp) -> Option<StatusWrite> {
        let svc = self.services.get(key)?;
        let handling = svc.handling(&self.filter);
        let request = self.request_for(key, svc);
        let mut desired = match handling {
            Handling::OtherClass => return None,
            Handling::NotLoadBalancer => {
                self.conflicts.remove(key);
                if let Some(allocator) = self.allocator.as_mut() {
                    allocator.release(key);
                }
                DesiredStatus::cleared()
            }
            Handling::Ours => match self.allocator.as_mut() {
                None => DesiredStatus {
                    ingress: None,
                    condition: Some(DesiredCondition {
                        ok: false,
                        reason: REASON_CONFIG_INVALID.into(),
                        message: format!(
                            "no valid configuration in {} yet; addresses are left as they are",
                            self.config_name
                        ),
                    }),
                    attributes: None,
                },
                Some(allocator) => match request {
                    Err(refusal) => {
                        allocator.release(key);
                        refused(&refusal)
                    }
                    Ok(request) => match self.conflicts.get(key) {
                        Some((was, message)) if *was == request => DesiredStatus {
                            ingress: Some(Vec::new()),
                            condition: Some(DesiredCondition {
                                ok: false,
                                reason: REASON_CONFLICT.into(),
                                message: message.clone(),
                            }),
                            attributes: None,
                        },
                        _ => {
                            self.conflicts.remove(key);
                            match allocator.allocate(key, &request) {
                                Ok(assignment) => {
                                    assigned(&assignment, &allocator.outside_rules_of(key))
                                }
                                Err(refusal) => refused(&refusal),
                            }
                        }
                    },
                },
            },
        };
        desired.attributes = match (handling, &desired.ingress, &self.attribute_policy) {
            (Handling::Ours, Some(ips), Some(policy)) => {
                policy.condition(&svc.attribute_annotations, ips)
            }
            // No valid configuration yet: leave what the status says.
            (Handling::Ours, _, _) => stored_attributes(svc).map(DesiredCondition::from_stored),
            _ => None,
        };
        let patch = status_patch(svc, &desired, now)?;
        let events = events_for(svc, &desired);
        let failure = match &desired.condition {
            Some(c)
                if !c.ok
                    && events
                        .iter()
                        .any(|e| e.warning && e.action == super::status::ACTION_ALLOCATE) =>
            {
                Some(c.reason.clone())
            }
            _ => None,
        };
        Some(StatusWrite {
            key: key.clone(),
            patch,
            events,
            failure,
        })
    }
}

/// What changed between two views of one Service, for who must be looked at again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Change {
    /// Only the status and the version: what our own write changed.
    StatusOnly,
    /// Something only the Service's own reconcile reads: its generation or BGP attribute annotations.
    Own,
    /// What the Services sharing its addresses read too: its type, class or request.
    Sharing,
}

impl Change {
    /// From the view we held (none: a Service new to us, which everything about it concerns) to `new`.
    fn since(old: Option<&ServiceView>, new: &ServiceView) -> Change {
        let Some(old) = old else {
            return Change::Sharing;
        };
        if old.load_balancer != new.load_balancer
            || old.class != new.class
            || old.request != new.request
        {
            Change::Sharing
        } else if old.generation != new.generation
            || old.attribute_annotations != new.attribute_annotations
        {
            Change::Own
        } else {
            Change::StatusOnly
        }
    }
}

fn assigned(assignment: &Assignment, outside: &[(IpAddr, String)]) -> DesiredStatus {
    let stranded: Vec<String> = assignment
        .addresses
        .iter()
        .filter(|a| a.pool.is_none())
        .map(|a| a.ip.to_string())
        .collect();
    let listed: Vec<String> = assignment
        .addresses
        .iter()
        .map(|a| match &a.pool {
            Some(pool) => super::status::address_in_pool(a.ip, pool),
            None => a.ip.to_string(),
        })
        .collect();
    let condition = if !stranded.is_empty() {
        DesiredCondition {
            ok: true,
            reason: REASON_STRANDED.into(),
            message: format!(
                "{} no longer in any configured address pool; kept (still announced) so traffic keeps \
                 flowing. Add it back to a pool, or change this Service's request to move it",
                stranded.join(", ")
            ),
        }
    } else if !outside.is_empty() {
        let rules: Vec<&str> = outside.iter().map(|(_, rule)| rule.as_str()).collect();
        DesiredCondition {
            ok: true,
            reason: REASON_OUTSIDE_ALLOCATION.into(),
            message: format!(
                "assigned {}, which the current rules would not give it ({}); kept (still announced) so \
                 traffic keeps flowing. Change the rules back, or remove the address from this Service to move it",
                listed.join(", "),
                rules.join("; ")
            ),
        }
    } else {
        DesiredCondition {
            ok: true,
            reason: REASON_ASSIGNED.into(),
            message: format!("assigned {}", listed.join(", ")),
        }
    };
    DesiredStatus {
        ingress: Some(assignment.ips()),
        condition: Some(condition),
        attributes: None,
    }
}

fn refused(refusal: &Refusal) -> DesiredStatus {
    DesiredStatus {
        ingress: Some(Vec::new()),
        condition: Some(DesiredCondition {
            ok: false,
            reason: refusal.reason_code().into(),
            message: refusal.to_string(),
        }),
        attributes: None,
    }
}

/// The allocator's pools from a configuration, in config order.
pub fn pool_defs(config: &Config) -> Vec<PoolDef> {
    ferrolb_ipam::pools_from_config(config)
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;

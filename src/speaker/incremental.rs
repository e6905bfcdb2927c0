//! The speaker's decision across events: the pure [`DecisionState`] fed from the reflector stores, deciding
//! only the Services a batch of events touched ([`super::touched`]), and fully again when this node's labels or
//! conditions, or the configuration in force, differ from those of the decision, or a watch re-listed.

use super::touched::{Key, SliceIndex, Touched, services_to_decide};
use super::views::{ServiceView, SliceView, with_endpoints};
use ferrolb_announce::{
    AnnounceConfig, AnnounceDecision, DecisionState, PeerDecision, ServiceChange, ServiceInput,
    StateConfig,
};
use ferrolb_config::Config;
use ipnet::IpNet;
use kube::runtime::reflector::{ObjectRef, Store};
use std::collections::BTreeSet;
use std::sync::Arc;

/// What changed in the decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    /// Anything may have (the full recompute): rebuild every route table, report every Service.
    All,
    /// Only these prefixes' routes changed (possibly none), and only these Services (`namespace/name`) were
    /// decided again.
    Some {
        /// Prefixes whose route changed in some table.
        prefixes: BTreeSet<IpNet>,
        /// Services decided again.
        services: Vec<String>,
    },
}

/// The decision and what keeps it current.
#[derive(Default)]
pub struct Decisions {
    state: Option<DecisionState>,
    /// The configuration the state was computed with (compared by pointer: a new load is a new `Arc`).
    config: Option<Arc<Config>>,
    index: SliceIndex,
}

impl Decisions {
    /// The decision in force, once there is one.
    pub fn decision(&self) -> Option<&AnnounceDecision> {
        self.state.as_ref().map(DecisionState::decision)
    }

    /// Brings the decision up to date with the stores after the events in `touched`, under `config` for `node`.
    pub fn update(
        &mut self,
        touched: Touched,
        config: &Arc<Config>,
        node: ferrolb_announce::Node,
        services: &Store<ServiceView>,
        slices: &Store<SliceView>,
    ) -> Changed {
        let same_config = self.config.as_ref().is_some_and(|c| Arc::ptr_eq(c, config));
        let state = match self.state.as_mut() {
            Some(state) if same_config && *state.node() == node => state,
            _ => return self.reset(config, node, services, slices),
        };
        let service_of_slice = |(ns, name): &Key| {
            slices
                .get(&ObjectRef::new(name).within(ns))
                .and_then(|s| s.service.clone())
        };
        let Some(keys) = services_to_decide(touched, &mut self.index, service_of_slice) else {
            return self.reset(config, node, services, slices);
        };
        let before: Vec<PeerDecision> = state.decision().peers.clone();
        let changes: Vec<ServiceChange> = keys
            .iter()
            .map(|key| match input_of(key, &self.index, services, slices) {
                Some(input) => ServiceChange::Upsert(input),
                None => ServiceChange::Remove(format!("{}/{}", key.0, key.1)),
            })
            .collect();
        let prefixes = state.apply(changes);
        if state.decision().peers != before {
            // A class of peers started or stopped getting every route: its peers change tables.
            return Changed::All;
        }
        Changed::Some {
            prefixes,
            services: keys
                .into_iter()
                .map(|(ns, name)| format!("{ns}/{name}"))
                .collect(),
        }
    }

    /// The full recompute.
    fn reset(
        &mut self,
        config: &Arc<Config>,
        node: ferrolb_announce::Node,
        services: &Store<ServiceView>,
        slices: &Store<SliceView>,
    ) -> Changed {
        let slice_views = slices.state();
        self.index = SliceIndex::new(
            slice_views
                .iter()
                .map(|s| ((s.namespace.clone(), s.name.clone()), s.service.as_deref())),
        );
        let state_config = StateConfig {
            announce: AnnounceConfig::from_config(config, &node),
            aliases: config.bgp_communities.clone(),
        };
        let inputs: Vec<ServiceInput> = services
            .state()
            .iter()
            .filter_map(|v| {
                let key = (v.namespace.clone(), v.name.clone());
                input_of(&key, &self.index, services, slices)
            })
            .collect();
        match self.state.as_mut() {
            Some(state) => state.reset(node, state_config, inputs),
            None => self.state = Some(DecisionState::new(node, state_config, inputs)),
        }
        self.config = Some(config.clone());
        Changed::All
    }
}

/// The decision's input for the Service `key` from the stores, or `None` when it is gone or not a
/// LoadBalancer Service.
fn input_of(
    (ns, name): &Key,
    index: &SliceIndex,
    services: &Store<ServiceView>,
    slices: &Store<SliceView>,
) -> Option<ServiceInput> {
    let view = services.get(&ObjectRef::new(name).within(ns))?;
    let own: Vec<Arc<SliceView>> = index
        .slices_of(&(ns.clone(), name.clone()))
        .filter_map(|s| slices.get(&ObjectRef::new(s).within(ns)))
        .collect();
    let service = with_endpoints(&view, own.iter().map(|s| &**s))?;
    Some(ServiceInput {
        service,
        annotations: view.attribute_annotations.clone(),
    })
}

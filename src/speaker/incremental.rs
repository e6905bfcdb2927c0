//! The speaker's decision across events: the pure [`DecisionState`] fed from the reflector stores, deciding
//! only the Services a batch of events touched ([`super::touched`]), and fully again when this node's labels or
//! conditions, or the configuration in force, differ from those of the decision, or a watch re-listed.

use super::store::Store;
use super::touched::{Key, SliceIndex, Touched, services_to_decide};
use super::views::{ServiceView, SliceView, with_endpoints};
use ferrolb_announce::{AnnounceConfig, DecisionState, ServiceChange, ServiceInput, StateConfig};
use ferrolb_config::Config;
use ipnet::IpNet;
use std::collections::BTreeSet;
use std::sync::Arc;

/// What changed in the decision.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Changed {
    /// The prefixes whose route changed in some table (see [`ferrolb_announce::changed_prefixes`]): with
    /// them, a session whose [`peers::TableKey`](super::peers::TableKey) is the same as before gets its routes.
    pub prefixes: BTreeSet<IpNet>,
    /// The Services (`namespace/name`) decided again; `None` after the full recompute: all of them.
    pub services: Option<Vec<String>>,
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
    /// The decision in force with the per-Service outcomes, once there is one.
    pub fn state(&self) -> Option<&DecisionState> {
        self.state.as_ref()
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
                .get(ns, name)
                .and_then(|s| Some((s.name.clone(), s.service.clone()?)))
        };
        let Some(keys) = services_to_decide(touched, &mut self.index, service_of_slice) else {
            return self.reset(config, node, services, slices);
        };
        let changes: Vec<ServiceChange> = keys
            .iter()
            .map(|key| match input_of(key, &self.index, services, slices) {
                Some(input) => ServiceChange::Upsert(input),
                None => ServiceChange::Remove(format!("{}/{}", key.0, key.1)),
            })
            .collect();
        // A class of peers that starts or stops getting every route changes its peers' tables: the speaker sees
        // their new table key.
        Changed {
            prefixes: state.apply(changes),
            services: Some(
                keys.into_iter()
                    .map(|(ns, name)| format!("{ns}/{name}"))
                    .collect(),
            ),
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
        // The old index goes first: built beside it, the new one would double the index at its peak.
        self.index = SliceIndex::default();
        self.index = SliceIndex::new_shared(slice_views.iter().map(|s| {
            (
                (s.namespace.to_string(), s.name.to_string()),
                s.service.clone().map(|service| (s.name.clone(), service)),
            )
        }));
        let state_config = StateConfig {
            announce: AnnounceConfig::from_config(config, &node),
            aliases: config.bgp_communities.clone(),
        };
        // Built one at a time as the state takes them: never every Service's input at once.
        let index = &self.index;
        let inputs = services.state().into_iter().filter_map(move |v| {
            let key = (v.namespace.to_string(), v.name.to_string());
            input_of(&key, index, services, slices)
        });
        let state = self.state.get_or_insert_with(DecisionState::default);
        let prefixes = state.reset(node, state_config, inputs);
        self.config = Some(config.clone());
        Changed {
            prefixes,
            services: None,
        }
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
    let view = services.get(ns, name)?;
    let own: Vec<Arc<SliceView>> = index
        .slices_of(&(ns.clone(), name.clone()))
        .filter_map(|s| slices.get(ns, s))
        .collect();
    let service = with_endpoints(&view, own.iter().map(|s| &**s))?;
    Some(ServiceInput {
        service,
        annotations: view.attribute_annotations.clone(),
    })
}

//! ferrolb announce crate: the pure announce decision.
//!
//! Given this node, the LoadBalancer Services (with their ingress IPs and flattened
//! EndpointSlice endpoints) and the configuration, [`decide`] returns the prefixes this node
//! announces, their attributes, the peers that receive them, and for every Service the
//! [`Reason`]s behind its fate. [`explain()`] renders those reasons for one Service in words.
//!
//! No I/O, no clocks, no Kubernetes types: the speaker's glue flattens its caches into
//! [`input`] types, builds the configuration part with [`AnnounceConfig::from_config`] from the
//! loaded `ferrolb_config::Config`, and hands [`AnnounceDecision::routes_for`] each peer in
//! [`AnnounceDecision::selected_peers`] to that peer's Adj-RIB-Out.
#![warn(missing_docs)]

mod contribution;
pub mod decision;
pub mod endpoints;
pub mod explain;
mod from_config;
pub mod incremental;
pub mod input;
pub mod reason;
pub mod service_attributes;

pub use decision::{
    AnnounceDecision, PeerDecision, PeerTable, Route, RouteAttributes, RouteTable, RoutesView,
    ServiceDecision, decide, longest_prepend,
};
pub use explain::{ExplainedReason, ExplainedRoute, Explanation, explain, explanation, not_known};
pub use incremental::{
    DecisionState, ServiceChange, ServiceInput, ServiceOutcome, StateConfig, changed_prefixes,
};
pub use input::{
    AddressRange, Advertisement, AnnounceConfig, AnnounceFrom, Community, EXCLUDE_LABEL, Endpoint,
    LargeCommunity, Node, Peer, PeerKey, Pool, Service, ServiceAllowances, TrafficPolicy,
};
pub use reason::{Effect, Reason};
pub use service_attributes::{
    AS_PATH_PREPEND_ANNOTATION, AttributeProblem, AttributeRefusal, COMMUNITIES_ANNOTATION,
    CONDITION_TYPE, LARGE_COMMUNITIES_ANNOTATION, LOCAL_PREF_ANNOTATION, ServiceAttributes,
    accepted_for, apply_service_attributes, service_attributes,
};

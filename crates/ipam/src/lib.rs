//! ferrolb's address allocator: which LoadBalancer Service gets which IP.
//!
//! Pure (no Kubernetes types, no I/O, no clock) and deterministic. Services are [`ServiceKey`]s with a plain
//! [`Request`]; pools are [`PoolDef`]s. Free space is kept as runs of free addresses per pool and family, so
//! allocating the lowest free address, taking a specific one and releasing one are O(log n) and never scan.
//!
//! The controller uses it in this order:
//! 1. at start-up and after every watch re-list, [`Allocator::from_existing`] (or
//!    [`Allocator::register_existing`]) with what each Service's status says, before allocating anything;
//! 2. [`Allocator::allocate`] for each Service (idempotent: a valid assignment is never changed);
//! 3. [`Allocator::release`] when a Service is deleted or stops being `LoadBalancer`;
//! 4. [`Allocator::set_pools`] on a valid new config: held addresses outside the new pools stay assigned and are
//!    reported as stranded, never handed to another Service.
//!
//! Every refusal is a [`Refusal`] whose [`Refusal::reason_code`] is the Service condition reason.
//!
//! Pools may carry `service-allocation` rules ([`PoolDef::allocation`]): a pool with rules serves only the Services
//! they select (for automatic assignment, requested addresses and pool annotations alike), and a namespace an
//! `exclusive` pool selects is fenced in: it gets addresses only from pools whose namespace rules select it. Services
//! of different namespaces share an address only when both name each other's namespace in
//! [`SHARE_WITH_NAMESPACES`]. Refusals are [`Refusal::NotAllowed`]; existing assignments that a change puts outside
//! the rules are kept and reported by [`Allocator::outside_rules`].

#![warn(missing_docs)]

mod allocator;
pub mod annotations;
mod family;
mod fast_hash;
mod free_runs;
mod from_config;
mod holders;
mod pool;
mod refusal;
mod request;
mod sharing;
mod tenancy;

pub use allocator::{
    Allocator, AssignedAddress, Assignment, ExistingAssignment, PoolChange, Registered,
};
pub use annotations::SHARE_WITH_NAMESPACES;
pub use family::Family;
pub use from_config::pools_from_config;
pub use pool::{PoolDef, PoolError, PoolStats};
pub use refusal::{Refusal, SharingMismatch};
pub use request::{
    CreationOrder, FamilyPolicy, FamilyRequest, PortSpec, Protocol, Request, ServiceKey,
    TrafficPolicy,
};
pub use sharing::can_share;

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

pub use allocator::{
    Allocator, AssignedAddress, Assignment, ExistingAssignment, PoolChange, Registered,
};
pub use family::Family;
pub use from_config::pools_from_config;
pub use pool::{PoolDef, PoolError, PoolStats};
pub use refusal::{Refusal, SharingMismatch};
pub use request::{
    CreationOrder, FamilyPolicy, FamilyRequest, PortSpec, Protocol, Request, ServiceKey,
    TrafficPolicy,
};
pub use sharing::can_share;

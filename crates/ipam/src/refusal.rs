//! Why a Service gets no address: one typed reason per case, each mapping to a Service condition reason.

use std::net::IpAddr;

use crate::family::Family;
use crate::request::{PortSpec, ServiceKey};

/// Why two Services may not share an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SharingMismatch {
    /// Both use the same protocol and port.
    #[error("both use port {0}")]
    Port(PortSpec),
    /// Different `allow-shared-ip` keys (or one has none).
    #[error("sharing keys differ ({ours:?} vs {theirs:?})")]
    Key {
        /// The requesting Service's key.
        ours: Option<String>,
        /// The holder's key.
        theirs: Option<String>,
    },
    /// `externalTrafficPolicy: Local` on either side with selectors that are not identical (or one is `Cluster`).
    #[error("externalTrafficPolicy Local needs identical selectors on both")]
    Backends,
    /// Services of two namespaces, without both naming the other's namespace in
    /// [`crate::SHARE_WITH_NAMESPACES`].
    #[error(
        "sharing an address across namespaces needs both Services to name the other's namespace in annotation ferrolb.io/share-with-namespaces"
    )]
    Namespace,
}

/// Why the allocator refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The annotated pool does not exist.
    #[error("address pool {pool:?} does not exist")]
    NoSuchPool {
        /// The pool name asked for.
        pool: String,
    },
    /// No pool (the annotated one, or any auto-assign pool) has addresses of a family the Service needs.
    #[error("{}", match pool {
        Some(p) => format!("address pool {p:?} has no {family} addresses"),
        None => format!("no auto-assign address pool has {family} addresses"),
    })]
    FamilyUnavailable {
        /// The family.
        family: Family,
        /// The annotated pool, if any.
        pool: Option<String>,
    },
    /// Dual-stack is required but no candidate pool has addresses of both families.
    #[error("{}", match pool {
        Some(p) => format!("address pool {p:?} does not have both IPv4 and IPv6 addresses"),
        None => "no auto-assign address pool has both IPv4 and IPv6 addresses".to_owned(),
    })]
    NoDualStackPool {
        /// The annotated pool, if any.
        pool: Option<String>,
    },
    /// The pools that could serve the Service have no free address.
    #[error("{}", match pool {
        Some(p) => format!("address pool {p:?} has no free {family} address"),
        None => format!("no auto-assign address pool has a free {family} address"),
    })]
    PoolExhausted {
        /// The family that ran out.
        family: Family,
        /// The annotated pool, if any.
        pool: Option<String>,
    },
    /// A requested address lies in no pool.
    #[error("requested address {ip} is not in any address pool")]
    NotInAnyPool {
        /// The address.
        ip: IpAddr,
    },
    /// A requested address lies in a pool other than the annotated one.
    #[error("requested address {ip} is not in the requested pool {pool:?}")]
    NotInRequestedPool {
        /// The address.
        ip: IpAddr,
        /// The annotated pool.
        pool: String,
    },
    /// A requested IPv4 address ends in `.0` or `.255` and its pool has `avoid-buggy-ips`.
    #[error("requested address {ip} is excluded by avoid-buggy-ips in pool {pool:?}")]
    AvoidedAddress {
        /// The address.
        ip: IpAddr,
        /// Its pool.
        pool: String,
    },
    /// A requested address is held by a Service that does not share it with this one.
    #[error("requested address {ip} is in use by {by}")]
    InUse {
        /// The address.
        ip: IpAddr,
        /// The Service that holds it.
        by: ServiceKey,
    },
    /// A requested address is held by a Service with the same sharing key, but the two cannot share.
    #[error("cannot share {ip} with {with}: {mismatch}")]
    SharingConflict {
        /// The address.
        ip: IpAddr,
        /// The Service that holds it.
        with: ServiceKey,
        /// What prevents sharing.
        mismatch: SharingMismatch,
    },
    /// A `service-allocation` rule, a namespace fence or the missing sharing opt-in forbids the request.
    #[error("not allowed: {rule}")]
    NotAllowed {
        /// The rule, in words (pool, namespace, selector or fence).
        rule: String,
    },
    /// The request contradicts itself (e.g. two requested addresses of one family, or a requested family the
    /// Service does not list in `spec.ipFamilies`).
    #[error("invalid request: {reason}")]
    InvalidRequest {
        /// What is wrong.
        reason: String,
    },
}

impl Refusal {
    /// The Service condition reason (`ferrolb.io/AddressAssigned`, status `False`) for this refusal.
    pub fn reason_code(&self) -> &'static str {
        match self {
            Refusal::NoSuchPool { .. }
            | Refusal::FamilyUnavailable { .. }
            | Refusal::NoDualStackPool { .. } => "NoPool",
            Refusal::PoolExhausted { .. } => "PoolExhausted",
            Refusal::NotInAnyPool { .. }
            | Refusal::NotInRequestedPool { .. }
            | Refusal::AvoidedAddress { .. }
            | Refusal::InUse { .. } => "RequestedIPUnavailable",
            Refusal::SharingConflict { .. } => "SharingConflict",
            Refusal::InvalidRequest { .. } => "InvalidRequest",
            Refusal::NotAllowed { .. } => "NotAllowed",
        }
    }
}

//! The ferrolb configuration: MetalLB v0.12's ConfigMap format (`peers`, `bgp-communities`,
//! `address-pools` with `bgp-advertisements`), read strictly into a typed model and validated.
//!
//! Every problem is reported, not just the first, each with its path in the model
//! (`address-pools[1].addresses[0]`) and its line in the text given:
//!
//! ```
//! let text = "address-pools:\n- name: a\n  protocol: bgp\n  addresses: [203.0.113.9-203.0.113.4]\n";
//! let errors = ferrolb_config::Config::from_yaml(text).unwrap_err();
//! assert_eq!(
//!     errors.to_string(),
//!     "address-pools[0].addresses[0] (line 4): range start 203.0.113.9 is after end 203.0.113.4"
//! );
//! ```
#![warn(missing_docs)]

mod address;
mod bfd;
mod community;
mod control_plane_vip;
mod device;
mod duration;
mod error;
mod fields;
mod manifest;
pub mod metallb;
mod model;
mod parse;
mod prepend;
mod secret;
mod selector;
mod service_policy;
mod validate;
mod yaml;

pub use address::{AddressError, AddressRange};
pub use bfd::{
    BFD_DETECT_MULTIPLIER, BFD_ECHO_INTERVAL_MS, BFD_MINIMUM_TTL, BFD_RECEIVE_INTERVAL_MS,
    BFD_TRANSMIT_INTERVAL_MS, BfdProfile,
};
pub use community::{CommunityError, CommunityValue};
pub use control_plane_vip::{
    ControlPlaneVip, DEFAULT_HEALTH_URL, DEFAULT_METRICS_ADDR, DEFAULT_PRIORITY,
    DEFAULT_VIP_INTERFACE, HealthCheck, TlsTrust, VipError, VipMode, med_from_priority,
};
pub use device::{DeviceName, DeviceNameError, MAX_DEVICE_NAME_LEN};
pub use duration::{DurationError, format_duration, parse_duration};
pub use error::{ConfigError, ConfigErrorKind, ConfigErrors, Overlap};
pub use manifest::load;
pub use model::{
    AddressPool, AnnounceFrom, BgpAdvertisement, Config, DEFAULT_HOLD_TIME, DEFAULT_PEER_PORT,
    DynamicAsn, LocalAsn, NodeValueError, Peer, Protocol, ServiceAllocation,
};
pub use prepend::{AsPathPrepend, AsPathPrependAllowance, AsPathPrependError, MAX_PREPEND_COUNT};
pub use secret::{Password, REDACTED};
pub use selector::{NodeSelector, SelectorOperator, SelectorRequirement, is_dns_label};
pub use service_policy::{
    Bandwidth, BandwidthError, DEFAULT_BANDWIDTH_PER_ENDPOINT, LocalPrefRange, LocalPrefRangeError,
    MAX_BANDWIDTH_PER_ENDPOINT,
};

/// The keys each kind of configuration object accepts, as `(object, keys)`, in the order they are documented:
/// `config` (the top level), `peer`, `bfd-profile`, `node-selector`, `match-expression`, `address-pool`,
/// `bgp-advertisement`, `as-path-prepend`, `allowed-service-as-path-prepend`. Any other key is an error. Documentation is checked against this list.
pub fn known_keys() -> impl Iterator<Item = (&'static str, &'static [&'static str])> {
    parse::OBJECTS
        .iter()
        .map(|(name, schema)| (*name, schema.known))
}

/// Keys ferrolb recognises but rejects because it does not support them yet, as `(object, key)`.
pub fn unsupported_keys() -> impl Iterator<Item = (&'static str, &'static str)> {
    parse::OBJECTS.iter().flat_map(|(name, schema)| {
        schema
            .not_supported
            .iter()
            .map(move |(key, _)| (*name, *key))
    })
}

impl Config {
    /// Parses the YAML of the ConfigMap's `data.config` (not a whole manifest: see [`load`]).
    pub fn from_yaml(text: &str) -> Result<Config, ConfigErrors> {
        manifest::parse_at(text, 0)
    }

    /// Total IPv4 and IPv6 addresses over all pools (IPv6 saturating at `u128::MAX`).
    pub fn address_counts(&self) -> (u128, u128) {
        self.address_pools
            .iter()
            .map(AddressPool::address_counts)
            .fold((0u128, 0u128), |(a4, a6), (b4, b6)| {
                (a4.saturating_add(b4), a6.saturating_add(b6))
            })
    }
}

//! MetalLB's custom resources (group `metallb.io`) as Rust types, for `ferrolb crds` (the CRD definitions of
//! `manifests/components/metallb-crds/`, for clusters without MetalLB) and for reading the objects.
//!
//! Field names, types and defaults are MetalLB's (v0.15: `api/v1beta1/*_types.go`, `api/v1beta2/bgppeer_types.go`),
//! so objects written for MetalLB validate and read the same. `BGPPeer` is served in v1beta2 only (MetalLB's
//! storage version; its v1beta1 needs MetalLB's conversion webhook). A cluster that already has MetalLB's CRDs
//! keeps them: ferrolb reads the same objects either way.

use k8s_openapi::api::core::v1::SecretReference;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::{CustomResource, CustomResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

// Used by the speaker's status writer and `ferrolb status` (in progress).
#[allow(dead_code)]
pub mod session_status;
#[cfg(test)]
mod tests;

/// The API group of MetalLB's resources.
pub const GROUP: &str = "metallb.io";

/// `IPAddressPool.spec`: addresses the controller may give to Services.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "metallb.io",
    version = "v1beta1",
    kind = "IPAddressPool",
    plural = "ipaddresspools",
    namespaced,
    status = "IPAddressPoolStatus",
    doc = "A set of addresses the controller may assign to LoadBalancer Services.",
    printcolumn = r#"{"name": "Auto Assign", "type": "boolean", "jsonPath": ".spec.autoAssign"}"#,
    printcolumn = r#"{"name": "Avoid Buggy IPs", "type": "boolean", "jsonPath": ".spec.avoidBuggyIPs"}"#,
    printcolumn = r#"{"name": "Addresses", "type": "string", "jsonPath": ".spec.addresses"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct IPAddressPoolSpec {
    /// Address ranges, each a CIDR prefix or an explicit `first-last` range.
    pub addresses: Vec<String>,
    /// Whether Services without a pool annotation or requested address may get addresses from this pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = true))]
    pub auto_assign: Option<bool>,
    /// Skip IPv4 addresses ending in `.0` and `.255`.
    #[serde(default, rename = "avoidBuggyIPs")]
    #[schemars(extend("default" = false))]
    pub avoid_buggy_ips: bool,
    /// Which namespaces and Services may use the pool, and its priority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_allocation: Option<ServiceAllocation>,
}

/// `IPAddressPool.spec.serviceAllocation`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAllocation {
    /// Lower values are tried first; 0 (unset) after every pool with a priority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// Namespaces whose Services may use the pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Label selectors of namespaces whose Services may use the pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespace_selectors: Vec<LabelSelector>,
    /// Label selectors of Services that may use the pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_selectors: Vec<LabelSelector>,
}

/// `IPAddressPool.status`, written by the controller (MetalLB v0.15's counters).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub struct IPAddressPoolStatus {
    /// IPv4 addresses of the pool held by Services.
    #[serde(rename = "assignedIPv4")]
    pub assigned_ipv4: i64,
    /// IPv6 addresses of the pool held by Services.
    #[serde(rename = "assignedIPv6")]
    pub assigned_ipv6: i64,
    /// IPv4 addresses of the pool still free (without those `avoidBuggyIPs` excludes).
    #[serde(rename = "availableIPv4")]
    pub available_ipv4: i64,
    /// IPv6 addresses of the pool still free.
    #[serde(rename = "availableIPv6")]
    pub available_ipv6: i64,
}

/// `BGPAdvertisement.spec`: how the addresses of some pools are announced, to which peers, from which nodes.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "metallb.io",
    version = "v1beta1",
    kind = "BGPAdvertisement",
    plural = "bgpadvertisements",
    namespaced,
    status = "EmptyStatus",
    doc = "How the addresses of the selected pools are announced over BGP.",
    printcolumn = r#"{"name": "IPAddressPools", "type": "string", "jsonPath": ".spec.ipAddressPools"}"#,
    printcolumn = r#"{"name": "IPAddressPool Selectors", "type": "string", "jsonPath": ".spec.ipAddressPoolSelectors"}"#,
    printcolumn = r#"{"name": "Peers", "type": "string", "jsonPath": ".spec.peers"}"#,
    printcolumn = r#"{"name": "Node Selectors", "type": "string", "jsonPath": ".spec.nodeSelectors", "priority": 10}"#
)]
#[serde(rename_all = "camelCase")]
pub struct BGPAdvertisementSpec {
    /// Prefix length IPv4 addresses are rolled up to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 32), range(min = 1))]
    pub aggregation_length: Option<i32>,
    /// Prefix length IPv6 addresses are rolled up to.
    #[serde(
        default,
        rename = "aggregationLengthV6",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(extend("default" = 128))]
    pub aggregation_length_v6: Option<i32>,
    /// The LOCAL_PREF attribute (iBGP only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_pref: Option<u32>,
    /// Communities: `1234:1234`, `large:1:2:3`, or the name of a `Community` alias.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub communities: Vec<String>,
    /// Pools announced, by name.
    #[serde(
        default,
        rename = "ipAddressPools",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ip_address_pools: Vec<String>,
    /// Pools announced, by label (with the names above; neither: every pool).
    #[serde(
        default,
        rename = "ipAddressPoolSelectors",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ip_address_pool_selectors: Vec<LabelSelector>,
    /// Nodes that announce (empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_selectors: Vec<LabelSelector>,
    /// Peers announced to, by `BGPPeer` name (empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<String>,
    /// Services announced (empty: all of the selected pools').
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_selectors: Vec<LabelSelector>,
}

/// The status of the kinds that have a status subresource but no status fields (as MetalLB's).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub struct EmptyStatus {}

/// `BGPPeer.spec` (v1beta2): one BGP session, from the nodes its selectors pick.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "metallb.io",
    version = "v1beta2",
    kind = "BGPPeer",
    plural = "bgppeers",
    namespaced,
    status = "EmptyStatus",
    doc = "A BGP session the speakers on the selected nodes open.",
    printcolumn = r#"{"name": "Address", "type": "string", "jsonPath": ".spec.peerAddress"}"#,
    printcolumn = r#"{"name": "ASN", "type": "string", "jsonPath": ".spec.peerASN"}"#,
    printcolumn = r#"{"name": "BFD Profile", "type": "string", "jsonPath": ".spec.bfdProfile"}"#,
    printcolumn = r#"{"name": "Multi Hops", "type": "string", "jsonPath": ".spec.ebgpMultiHop"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct BGPPeerSpec {
    /// Local AS number.
    #[serde(rename = "myASN")]
    pub my_asn: u32,
    /// The peer's AS number (or `dynamicASN`).
    #[serde(default, rename = "peerASN", skip_serializing_if = "Option::is_none")]
    pub peer_asn: Option<u32>,
    /// AS number shown to this peer instead of `myASN` (local-as).
    #[serde(default, rename = "localASN", skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub local_asn: Option<u32>,
    /// Accept any internal or any external peer AS instead of `peerASN`.
    #[serde(
        default,
        rename = "dynamicASN",
        skip_serializing_if = "Option::is_none"
    )]
    pub dynamic_asn: Option<DynamicAsn>,
    /// Address to dial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_address: Option<String>,
    /// Node interface for unnumbered BGP (instead of `peerAddress`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// Source address of the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_address: Option<String>,
    /// Port to dial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 179), range(min = 1, max = 16384))]
    pub peer_port: Option<u16>,
    /// Hold time, a Go duration (`90s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_time: Option<String>,
    /// Keepalive time, a Go duration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keepalive_time: Option<String>,
    /// Time between connection attempts, a Go duration of whole seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_time: Option<String>,
    /// BGP router id.
    #[serde(default, rename = "routerID", skip_serializing_if = "Option::is_none")]
    pub router_id: Option<String>,
    /// Nodes that open the session (empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_selectors: Vec<LabelSelector>,
    /// TCP MD5 password, in clear.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// TCP MD5 password from a `kubernetes.io/basic-auth` Secret (key `password`) in the config namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret: Option<SecretReference>,
    /// Name of the `BFDProfile` of the session's BFD (unset: no BFD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bfd_profile: Option<String>,
    /// Graceful restart (RFC 4724).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_graceful_restart: Option<bool>,
    /// The peer is more than one hop away.
    #[serde(
        default,
        rename = "ebgpMultiHop",
        skip_serializing_if = "Option::is_none"
    )]
    pub ebgp_multi_hop: Option<bool>,
    /// Host VRF of the session.
    #[serde(default, rename = "vrf", skip_serializing_if = "Option::is_none")]
    pub vrf: Option<String>,
    /// Deprecated in favour of `dualStackAddressFamily`.
    #[serde(default, rename = "disableMP", skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = false))]
    pub disable_mp: Option<bool>,
    /// Carry both address families on this session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = false))]
    pub dual_stack_address_family: Option<bool>,
}

/// `BGPPeer.spec.dynamicASN`.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DynamicAsn {
    /// The peer's AS must equal `myASN`.
    Internal,
    /// The peer's AS must differ from `myASN`.
    External,
}

/// `Community.spec`: named aliases for community values.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "metallb.io",
    version = "v1beta1",
    kind = "Community",
    plural = "communities",
    namespaced,
    status = "EmptyStatus",
    doc = "Named aliases for BGP community values."
)]
pub struct CommunitySpec {
    /// The aliases.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub communities: Vec<CommunityAlias>,
}

/// One `Community.spec.communities` entry.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub struct CommunityAlias {
    /// The alias.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `1234:1234` or `large:1:2:3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `BFDProfile.spec`: the BFD settings a `BGPPeer` names.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "metallb.io",
    version = "v1beta1",
    kind = "BFDProfile",
    plural = "bfdprofiles",
    namespaced,
    status = "EmptyStatus",
    doc = "BFD settings for the BGP sessions whose BGPPeer names this profile.",
    printcolumn = r#"{"name": "Passive Mode", "type": "boolean", "jsonPath": ".spec.passiveMode"}"#,
    printcolumn = r#"{"name": "Transmit Interval", "type": "integer", "jsonPath": ".spec.transmitInterval"}"#,
    printcolumn = r#"{"name": "Receive Interval", "type": "integer", "jsonPath": ".spec.receiveInterval"}"#,
    printcolumn = r#"{"name": "Multiplier", "type": "integer", "jsonPath": ".spec.detectMultiplier"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct BFDProfileSpec {
    /// Minimum receive interval, milliseconds (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 60000))]
    pub receive_interval: Option<u32>,
    /// Minimum transmit interval, milliseconds (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 60000))]
    pub transmit_interval: Option<u32>,
    /// Detection multiplier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 2, max = 255))]
    pub detect_multiplier: Option<u32>,
    /// Echo interval, milliseconds (default 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 60000))]
    pub echo_interval: Option<u32>,
    /// Echo mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub echo_mode: Option<bool>,
    /// Wait for the peer's control packets before sending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passive_mode: Option<bool>,
    /// Minimum TTL of incoming control packets (multi-hop).
    #[serde(
        default,
        rename = "minimumTtl",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 1, max = 254))]
    pub minimum_ttl: Option<u32>,
}

/// Every CRD ferrolb reads, in a stable order.
pub fn definitions() -> Vec<CustomResourceDefinition> {
    vec![
        IPAddressPool::crd(),
        BGPAdvertisement::crd(),
        BGPPeer::crd(),
        Community::crd(),
        BFDProfile::crd(),
    ]
}

/// The definitions as multi-document YAML (what `ferrolb crds` prints).
pub fn definitions_yaml() -> Result<String, serde_yaml::Error> {
    let mut out = String::new();
    for crd in definitions() {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&crd)?);
    }
    Ok(out)
}

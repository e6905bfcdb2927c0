//! The typed configuration: one struct per YAML object. Serialises back to the YAML it is read
//! from (aliases resolved, defaults written out).

use crate::address::AddressRange;
use crate::bfd::BfdProfile;
use crate::community::CommunityValue;
use crate::prepend::{AsPathPrepend, AsPathPrependAllowance};
use crate::selector::NodeSelector;
use crate::service_policy::{Bandwidth, DEFAULT_BANDWIDTH_PER_ENDPOINT, LocalPrefRange};
use serde::Serialize;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// The BGP port.
pub const DEFAULT_PEER_PORT: u16 = 179;
/// The hold time when none is configured.
pub const DEFAULT_HOLD_TIME: Duration = Duration::from_secs(90);

/// A whole configuration (the ConfigMap's `data.config`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Config {
    /// BGP routers to peer with.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<Peer>,
    /// Community aliases (`no-advertise: 65535:65282`), already parsed.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub bgp_communities: BTreeMap<String, CommunityValue>,
    /// BFD profiles peers may refer to, in file order (names unique).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bfd_profiles: Vec<BfdProfile>,
    /// Address pools, in file order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub address_pools: Vec<AddressPool>,
}

/// One BGP router (`peers[i]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Peer {
    /// The peer's name: a `BGPPeer`'s `metadata.name`, or the optional `name` of a ConfigMap
    /// peer (a ferrolb extension). Advertisements limited by `peers` refer to it. Unique.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Our AS number; 0 when it comes from a Node label ([`Peer::my_asn_from_node_label`]).
    #[serde(skip_serializing_if = "is_zero")]
    pub my_asn: u32,
    /// The router's AS number (equal to `my_asn` for iBGP); 0 when [`Peer::dynamic_asn`] is set.
    #[serde(skip_serializing_if = "is_zero")]
    pub peer_asn: u32,
    /// Accept the router's AS from its OPEN, as long as the session is of this kind (MetalLB's
    /// `dynamicASN`, FRR's `remote-as internal|external`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dynamic_asn: Option<DynamicAsn>,
    /// Present this AS to the router instead of `my_asn` (RFC 7705 local AS); written as the
    /// keys `local-asn` and `local-asn-replace-as`.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub local_asn: Option<LocalAsn>,
    /// Take our AS on each node from this Node label (each rack its own AS); the session of a
    /// node without a valid value is not started, and that node alone reports why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub my_asn_from_node_label: Option<String>,
    /// Take the router ID on each node from this Node label (an IPv4 address).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub router_id_from_node_label: Option<String>,
    /// The router's address; `::` for an unnumbered peer ([`Peer::interface`]), whose address
    /// is found on the link.
    #[serde(skip_serializing_if = "IpAddr::is_unspecified")]
    pub peer_address: IpAddr,
    /// Unnumbered peering (instead of `peer-address`): the router sending IPv6 router
    /// advertisements on this interface, reached at its link-local address, with IPv4 routes
    /// sent with an IPv6 next hop (RFC 8950). The session's socket is bound to the interface.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Option<crate::DeviceName>,
    /// The VRF device the session's socket is bound to (`SO_BINDTODEVICE`): sessions in
    /// different VRFs may share a peer address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vrf: Option<crate::DeviceName>,
    /// The router's TCP port (default 179).
    pub peer_port: u16,
    /// The local address to connect from, if pinned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_address: Option<IpAddr>,
    /// The proposed hold time, in whole seconds (0 or ≥ 3 s; default 90 s).
    #[serde(serialize_with = "crate::duration::serialize")]
    pub hold_time: Duration,
    /// The keepalive interval (default hold time / 3; never more than the hold time).
    #[serde(serialize_with = "crate::duration::serialize")]
    pub keepalive_time: Duration,
    /// How long to wait between connection attempts (`connectTime`); none means the speaker's
    /// default.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::duration::serialize_opt"
    )]
    pub connect_time: Option<Duration>,
    /// Graceful restart for this session: `Some(true)` on, `Some(false)` off, `None` the
    /// speaker's default (`--graceful-restart-time` / `--no-graceful-restart`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub graceful_restart: Option<bool>,
    /// Whether the session carries both address families (IPv4 and IPv6 Service routes) or
    /// only the peer address's own family. ConfigMap peers carry both (ferrolb's behaviour
    /// since the start); a `BGPPeer` carries both only with `dualStackAddressFamily: true`,
    /// as in MetalLB.
    #[serde(skip_serializing_if = "crate::model::is_true")]
    pub dual_stack_address_family: bool,
    /// Our BGP identifier, if not the session's local IPv4 address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub router_id: Option<Ipv4Addr>,
    /// TCP-MD5 password (`Debug` shows it redacted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<crate::Password>,
    /// Allow an eBGP router that is more than one hop away (eBGP only).
    pub ebgp_multihop: bool,
    /// The BFD profile (in [`Config::bfd_profiles`]) for this router; none means no BFD.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bfd_profile: Option<String>,
    /// Which nodes peer with this router: empty means every node; otherwise a node matching any
    /// one selector.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub node_selectors: Vec<NodeSelector>,
}

impl Peer {
    /// True when a node with these labels should peer with this router: no selectors means
    /// every node, otherwise any one selector matching is enough.
    pub fn selects_node(&self, labels: &BTreeMap<String, String>) -> bool {
        self.node_selectors.is_empty() || self.node_selectors.iter().any(|s| s.matches(labels))
    }

    /// True when this is an iBGP session (`my-asn == peer-asn`, or `dynamic-asn: internal`).
    pub fn is_ibgp(&self) -> bool {
        match self.dynamic_asn {
            Some(kind) => kind == DynamicAsn::Internal,
            None => self.my_asn != 0 && self.my_asn == self.peer_asn,
        }
    }

    /// Our AS on the node with these labels: `my-asn`, or the value of the label
    /// `my-asn-from-node-label` names.
    pub fn my_asn_on(&self, labels: &BTreeMap<String, String>) -> Result<u32, NodeValueError> {
        let Some(key) = &self.my_asn_from_node_label else {
            return Ok(self.my_asn);
        };
        let value = labels.get(key).ok_or_else(|| NodeValueError::Missing {
            field: "my-asn-from-node-label",
            label: key.clone(),
        })?;
        match value.parse::<u32>() {
            Ok(asn) if asn != 0 => Ok(asn),
            _ => Err(NodeValueError::Invalid {
                field: "my-asn-from-node-label",
                label: key.clone(),
                value: value.clone(),
                want: "an AS number from 1 to 4294967295",
            }),
        }
    }

    /// The router ID on the node with these labels: `router-id`, the value of the label
    /// `router-id-from-node-label` names, or `None` (the session's local IPv4 address).
    pub fn router_id_on(
        &self,
        labels: &BTreeMap<String, String>,
    ) -> Result<Option<Ipv4Addr>, NodeValueError> {
        let Some(key) = &self.router_id_from_node_label else {
            return Ok(self.router_id);
        };
        let value = labels.get(key).ok_or_else(|| NodeValueError::Missing {
            field: "router-id-from-node-label",
            label: key.clone(),
        })?;
        match value.parse::<Ipv4Addr>() {
            Ok(id) if !id.is_unspecified() => Ok(Some(id)),
            _ => Err(NodeValueError::Invalid {
                field: "router-id-from-node-label",
                label: key.clone(),
                value: value.clone(),
                want: "an IPv4 address other than 0.0.0.0",
            }),
        }
    }
}

/// `dynamic-asn`: which kind of AS the router may have, learned from its OPEN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DynamicAsn {
    /// Our own AS (iBGP).
    Internal,
    /// Any other AS (eBGP).
    External,
}

/// `local-asn`: the AS presented to the router instead of ours (RFC 7705).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct LocalAsn {
    /// The AS in the OPEN.
    #[serde(rename = "local-asn")]
    pub asn: u32,
    /// Our routes carry only `asn`, not our AS after it (`local-asn-replace-as`).
    #[serde(rename = "local-asn-replace-as", skip_serializing_if = "is_false")]
    pub replace_as: bool,
}

/// Why a per-node value of a peer (taken from a Node label) is missing on one node. Only that
/// node's session is affected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NodeValueError {
    /// The node has no such label.
    #[error("{field}: the node has no label {label:?}")]
    Missing {
        /// The peer key that names the label.
        field: &'static str,
        /// The label key.
        label: String,
    },
    /// The label's value is not usable.
    #[error("{field}: the node's label {label:?} is {value:?}, not {want}")]
    Invalid {
        /// The peer key that names the label.
        field: &'static str,
        /// The label key.
        label: String,
        /// The label's value.
        value: String,
        /// What it should be, in words.
        want: &'static str,
    },
}

/// How a pool's addresses are announced. Only BGP: `layer2` is rejected when parsing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Announce over BGP.
    #[default]
    Bgp,
}

/// Which nodes announce a pool's Service IPs (`announce-from`, a ferrolb extension).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnnounceFrom {
    /// Only nodes that host a ready endpoint of the Service (the default, for every traffic
    /// policy).
    #[default]
    NodesWithEndpoints,
    /// MetalLB's behaviour for `externalTrafficPolicy: Cluster`: every eligible node announces
    /// while the Service has a ready endpoint anywhere. Ignored for `Local` Services, where it
    /// would black-hole traffic.
    AllNodes,
}

impl AnnounceFrom {
    /// True for the default, which is not written back when serialising.
    pub fn is_default(&self) -> bool {
        *self == AnnounceFrom::default()
    }
}

/// One address pool (`address-pools[i]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct AddressPool {
    /// The pool's unique name (Services ask for it by annotation).
    pub name: String,
    /// Always BGP.
    pub protocol: Protocol,
    /// The addresses, as written (CIDRs and ranges, IPv4 and IPv6, never overlapping).
    pub addresses: Vec<AddressRange>,
    /// Skip `.0` and `.255` addresses when allocating.
    pub avoid_buggy_ips: bool,
    /// Whether Services without a pool annotation or requested IP may get addresses from here.
    pub auto_assign: bool,
    /// Which nodes announce the pool's Service IPs.
    #[serde(skip_serializing_if = "AnnounceFrom::is_default")]
    pub announce_from: AnnounceFrom,
    /// How to announce, as written; empty means one default advertisement (see
    /// [`AddressPool::advertisements`]) unless [`AddressPool::announced`] is false.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bgp_advertisements: Vec<BgpAdvertisement>,
    /// Whether the pool's addresses are announced at all. Always true for a ConfigMap pool;
    /// false for an `IPAddressPool` that no `BGPAdvertisement` selects (MetalLB allocates from
    /// such a pool but announces nothing). Written only when false.
    #[serde(skip_serializing_if = "crate::model::is_true")]
    pub announced: bool,
    /// Which Services may get addresses from this pool, and which namespaces it fences in
    /// (`service-allocation`); none means every Service of an unfenced namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_allocation: Option<ServiceAllocation>,
}

/// A pool's `service-allocation` (MetalLB's `serviceAllocation`, plus `exclusive`): which
/// Services the pool serves, in which order pools are tried, and whether the namespaces it
/// selects are fenced in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ServiceAllocation {
    /// Lower values are tried first; pools with a priority come before pools without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// Namespaces served, by name.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Namespaces served, by the Namespace object's labels (any one selector matching).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub namespace_selectors: Vec<NodeSelector>,
    /// Services served, by the Service's own labels (any one selector matching). Not a
    /// security boundary: a Service's labels are written by whoever owns the Service.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub service_selectors: Vec<NodeSelector>,
    /// Fences the namespaces this pool selects in: they get addresses only from pools whose
    /// `namespaces` or `namespace-selectors` select them (a ferrolb extension).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub exclusive: bool,
}

impl ServiceAllocation {
    /// Whether the namespace part names this namespace: `namespaces` lists it or a
    /// `namespace-selectors` entry matches its labels. False when both are empty.
    pub fn names_namespace(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        self.namespaces.iter().any(|n| n == name)
            || self.namespace_selectors.iter().any(|s| s.matches(labels))
    }

    /// Whether the pool serves Services of this namespace: it names it, or restricts no
    /// namespace at all.
    pub fn selects_namespace(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        (self.namespaces.is_empty() && self.namespace_selectors.is_empty())
            || self.names_namespace(name, labels)
    }

    /// Whether the pool serves a Service with these labels (no `service-selectors`: every
    /// Service).
    pub fn selects_service(&self, labels: &BTreeMap<String, String>) -> bool {
        self.service_selectors.is_empty()
            || self.service_selectors.iter().any(|s| s.matches(labels))
    }

    /// Whether this pool fences in the namespace (it is `exclusive` and names it).
    pub fn fences(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        self.exclusive && self.names_namespace(name, labels)
    }
}

/// For `skip_serializing_if`: true values are the default.
pub(crate) fn is_true(b: &bool) -> bool {
    *b
}

/// For `skip_serializing_if`: false values are the default.
pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

/// For `skip_serializing_if`: an AS of 0 means "not a number here" (taken from elsewhere).
pub(crate) fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl AddressPool {
    /// True when `ip` is in one of the pool's entries.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.addresses.iter().any(|a| a.contains(ip))
    }

    /// The advertisements in force: those written, or the default one (/32, /128, no
    /// local preference, no communities) when none are; none when the pool is not announced.
    pub fn advertisements(&self) -> Cow<'_, [BgpAdvertisement]> {
        if !self.announced {
            Cow::Borrowed(&[])
        } else if self.bgp_advertisements.is_empty() {
            Cow::Owned(vec![BgpAdvertisement::default()])
        } else {
            Cow::Borrowed(&self.bgp_advertisements)
        }
    }

    /// How many IPv4 and IPv6 addresses the pool holds (IPv6 saturating at `u128::MAX`).
    pub fn address_counts(&self) -> (u128, u128) {
        self.addresses.iter().fold((0u128, 0u128), |(v4, v6), a| {
            if a.is_ipv4() {
                (v4.saturating_add(a.len()), v6)
            } else {
                (v4, v6.saturating_add(a.len()))
            }
        })
    }
}

/// One entry of a pool's `bgp-advertisements`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct BgpAdvertisement {
    /// Prefix length announced for IPv4 addresses (default 32).
    pub aggregation_length: u8,
    /// Prefix length announced for IPv6 addresses (default 128).
    pub aggregation_length_v6: u8,
    /// LOCAL_PREF for iBGP peers, if set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub localpref: Option<u32>,
    /// Communities to attach, aliases resolved, duplicates removed, in the order written.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub communities: Vec<CommunityValue>,
    /// Weighted ECMP (a ferrolb extension): for `externalTrafficPolicy: Local` Services, each
    /// node attaches a link-bandwidth extended community proportional to its ready endpoints.
    /// Only on host routes (aggregation lengths 32 and 128).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub weighted_ecmp: bool,
    /// What one ready endpoint is worth in the link-bandwidth community (default 1 Mbps);
    /// only with `weighted-ecmp: true`.
    #[serde(skip_serializing_if = "BgpAdvertisement::is_default_bandwidth")]
    pub link_bandwidth_per_endpoint: Bandwidth,
    /// Communities (standard or large) a Service may add with its annotations; aliases
    /// resolved, duplicates removed. Only on host routes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_service_communities: Vec<CommunityValue>,
    /// LOCAL_PREF values a Service may set with its annotation. Only on host routes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_service_localprefs: Vec<LocalPrefRange>,
    /// AS_PATH prepends a Service may ask for with its annotation (a ferrolb extension). Only on
    /// host routes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_service_as_path_prepends: Vec<AsPathPrependAllowance>,
    /// AS_PATH prepending for these routes (a ferrolb extension): `count` copies of `asn` after
    /// the AS the session presents.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_path_prepend: Option<AsPathPrepend>,
    /// Names of the peers ([`Peer::name`]) that get these routes; empty means every peer.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<String>,
    /// Which nodes announce with this advertisement: empty means every node; otherwise a node
    /// matching any one selector.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub node_selectors: Vec<NodeSelector>,
    /// Which Services it applies to, by the Service's own labels: empty means every Service;
    /// otherwise a Service matching any one selector. Not a security boundary: a Service's
    /// labels are written by whoever owns the Service.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub service_selectors: Vec<NodeSelector>,
}

impl BgpAdvertisement {
    fn is_default_bandwidth(b: &Bandwidth) -> bool {
        *b == DEFAULT_BANDWIDTH_PER_ENDPOINT
    }

    /// Whether this advertisement applies on a node with these labels (no selectors: every
    /// node; otherwise any one selector matching).
    pub fn selects_node(&self, labels: &BTreeMap<String, String>) -> bool {
        self.node_selectors.is_empty() || self.node_selectors.iter().any(|s| s.matches(labels))
    }

    /// Whether this advertisement applies to a Service with these labels.
    pub fn selects_service(&self, labels: &BTreeMap<String, String>) -> bool {
        self.service_selectors.is_empty()
            || self.service_selectors.iter().any(|s| s.matches(labels))
    }

    /// Whether the peer called `name` gets these routes (no `peers`: every peer).
    pub fn selects_peer(&self, name: Option<&str>) -> bool {
        self.peers.is_empty() || name.is_some_and(|n| self.peers.iter().any(|p| p == n))
    }

    /// Whether `value` is a LOCAL_PREF a Service may set here.
    pub fn allows_service_localpref(&self, value: u32) -> bool {
        self.allowed_service_localprefs
            .iter()
            .any(|r| r.contains(value))
    }
}

impl Default for BgpAdvertisement {
    fn default() -> Self {
        BgpAdvertisement {
            aggregation_length: 32,
            aggregation_length_v6: 128,
            localpref: None,
            communities: Vec::new(),
            weighted_ecmp: false,
            link_bandwidth_per_endpoint: DEFAULT_BANDWIDTH_PER_ENDPOINT,
            allowed_service_communities: Vec::new(),
            allowed_service_localprefs: Vec::new(),
            allowed_service_as_path_prepends: Vec::new(),
            as_path_prepend: None,
            peers: Vec::new(),
            node_selectors: Vec::new(),
            service_selectors: Vec::new(),
        }
    }
}

impl Config {
    /// The BFD profile called `name`.
    pub fn bfd_profile(&self, name: &str) -> Option<&BfdProfile> {
        self.bfd_profiles.iter().find(|p| p.name == name)
    }

    /// The pool called `name`.
    pub fn pool(&self, name: &str) -> Option<&AddressPool> {
        self.address_pools.iter().find(|p| p.name == name)
    }

    /// The pool holding `ip` (pools never overlap, so there is at most one).
    pub fn pool_containing(&self, ip: IpAddr) -> Option<&AddressPool> {
        self.address_pools.iter().find(|p| p.contains(ip))
    }

    /// Serialises to the YAML form [`Config::from_yaml`] reads back unchanged (except for
    /// strings holding U+0085, U+2028 or U+2029, which serde_yaml writes raw and YAML 1.2
    /// reads as other text).
    pub fn to_yaml(&self) -> Result<String, serde_yaml::Error> {
        serde_yaml::to_string(self)
    }
}

//! The decision's inputs: plain data, no Kubernetes types.
//!
//! The speaker's glue flattens its reflector stores (Node, Services, EndpointSlices) and the
//! loaded configuration into these types, then calls [`crate::decide`].

use ferrolb_config::{AsPathPrepend, AsPathPrependAllowance, NodeSelector};
use ipnet::IpNet;
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

/// The node label that keeps a node out of external load balancers (any value counts).
pub const EXCLUDE_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";

/// BGP's default port, omitted when a [`PeerKey`] is displayed.
pub const BGP_PORT: u16 = 179;

/// The node this speaker runs on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Node {
    /// `metadata.name` of the Node.
    pub name: String,
    /// `metadata.labels` of the Node.
    pub labels: BTreeMap<String, String>,
    /// Whether the Node's `NetworkUnavailable` condition has status `True`.
    pub network_unavailable: bool,
}

/// A Service's `spec.externalTrafficPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TrafficPolicy {
    /// `Cluster` (the Kubernetes default): any node forwards to any endpoint.
    #[default]
    Cluster,
    /// `Local`: a node forwards only to endpoints on itself.
    Local,
}

impl fmt::Display for TrafficPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrafficPolicy::Cluster => "Cluster",
            TrafficPolicy::Local => "Local",
        })
    }
}

/// One endpoint of a Service, flattened from an EndpointSlice (`discovery.k8s.io/v1`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Endpoint {
    /// `endpoint.nodeName`, when set (shared: every endpoint on a node can hold the same name).
    pub node_name: Option<Arc<str>>,
    /// `conditions.ready`.
    pub ready: bool,
    /// `conditions.serving`.
    pub serving: bool,
    /// `conditions.terminating`.
    pub terminating: bool,
}

impl Endpoint {
    /// Builds an endpoint from the EndpointSlice conditions as the API states them, applying
    /// the API's rules for unset conditions: `ready` unset means ready, `serving` unset defers
    /// to `ready`, `terminating` unset means not terminating.
    pub fn from_conditions(
        node_name: Option<Arc<str>>,
        ready: Option<bool>,
        serving: Option<bool>,
        terminating: Option<bool>,
    ) -> Self {
        let ready = ready.unwrap_or(true);
        Endpoint {
            node_name,
            ready,
            serving: serving.unwrap_or(ready),
            terminating: terminating.unwrap_or(false),
        }
    }
}

/// A Service of type LoadBalancer, as the decision needs it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Service {
    /// `namespace/name`.
    pub key: String,
    /// `status.loadBalancer.ingress[].ip`.
    pub ingress_ips: Vec<IpAddr>,
    /// `spec.externalTrafficPolicy`.
    pub traffic_policy: TrafficPolicy,
    /// `metadata.labels`, sorted by key (advertisements' `service-selectors` match them). A
    /// vector rather than a map: the speaker keeps one per Service, and most are never read.
    pub labels: Vec<(String, String)>,
    /// The pool named by the Service's pool annotation, if any (informational: the pool that
    /// contains each IP is the one that applies).
    pub requested_pool: Option<String>,
    /// Whether ferrolb handles this Service (its `spec.loadBalancerClass` is ours, or unset
    /// while ferrolb is the default implementation).
    pub ours: bool,
    /// Every endpoint of every EndpointSlice of the Service.
    pub endpoints: Vec<Endpoint>,
}

/// Which nodes announce the Services of a pool (the pool's `announce-from` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AnnounceFrom {
    /// Only nodes hosting a ready endpoint of the Service (ferrolb's default).
    #[default]
    NodesWithEndpoints,
    /// MetalLB's Cluster behaviour: every eligible node announces a Service with
    /// `externalTrafficPolicy: Cluster` while it has any ready endpoint.
    AllNodes,
}

/// A BGP community (RFC 1997), shown as `high:low`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Community(pub u32);

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.0 >> 16, self.0 & 0xffff)
    }
}

/// A BGP large community (RFC 8092), shown as `global:local1:local2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LargeCommunity {
    /// Global administrator (an AS number).
    pub global_admin: u32,
    /// First local data part.
    pub local_data1: u32,
    /// Second local data part.
    pub local_data2: u32,
}

impl fmt::Display for LargeCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.global_admin, self.local_data1, self.local_data2
        )
    }
}

/// One `bgp-advertisements` entry of a pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertisement {
    /// Prefix length announced for IPv4 addresses (32: the address itself).
    pub aggregation_length: u8,
    /// Prefix length announced for IPv6 addresses (128: the address itself).
    pub aggregation_length_v6: u8,
    /// LOCAL_PREF to send (iBGP), if configured.
    pub local_pref: Option<u32>,
    /// COMMUNITIES to attach.
    pub communities: Vec<Community>,
    /// LARGE_COMMUNITIES to attach.
    pub large_communities: Vec<LargeCommunity>,
    /// AS_PATH prepending for the routes, if configured.
    pub as_path_prepend: Option<AsPathPrepend>,
    /// Weighted ECMP: the bandwidth, in bits per second, each ready endpoint on this node is
    /// worth in the link-bandwidth community of a `Local` Service's route; None when off.
    pub link_bandwidth_per_endpoint: Option<u64>,
    /// What a Service may add to its own route with annotations.
    pub service_allowances: ServiceAllowances,
    /// The names of the peers that get this advertisement's routes; empty: every peer.
    pub peers: Vec<String>,
    /// Whether the advertisement's node-selectors select this node (none selects every node).
    pub selects_node: bool,
    /// The Services whose IPs it announces: any selector matching the Service's labels; empty:
    /// every Service.
    pub service_selectors: Vec<NodeSelector>,
}

/// What a Service may set with its annotations (an advertisement's `allowed-service-*` keys).
/// The default allows nothing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceAllowances {
    /// Standard communities a Service may add.
    pub communities: Vec<Community>,
    /// Large communities a Service may add.
    pub large_communities: Vec<LargeCommunity>,
    /// LOCAL_PREF values a Service may set, as inclusive `(first, last)` ranges.
    pub local_prefs: Vec<(u32, u32)>,
    /// AS_PATH prepends a Service may ask for.
    pub as_path_prepends: Vec<AsPathPrependAllowance>,
}

impl Advertisement {
    /// The advertisement MetalLB uses for a pool that lists none: each address alone, no
    /// attributes.
    pub const HOST_ROUTES: Advertisement = Advertisement {
        aggregation_length: 32,
        aggregation_length_v6: 128,
        local_pref: None,
        communities: Vec::new(),
        large_communities: Vec::new(),
        as_path_prepend: None,
        link_bandwidth_per_endpoint: None,
        service_allowances: ServiceAllowances {
            communities: Vec::new(),
            large_communities: Vec::new(),
            local_prefs: Vec::new(),
            as_path_prepends: Vec::new(),
        },
        peers: Vec::new(),
        selects_node: true,
        service_selectors: Vec::new(),
    };

    /// Whether the advertisement applies to the Service with `labels`.
    pub fn selects_service(&self, labels: &BTreeMap<String, String>) -> bool {
        self.service_selectors.is_empty()
            || self.service_selectors.iter().any(|s| s.matches(labels))
    }

    /// Whether the peer named `name` gets the advertisement's routes (a peer without a name
    /// gets only those of advertisements not limited to named peers).
    pub fn selects_peer(&self, name: Option<&str>) -> bool {
        self.peers.is_empty() || name.is_some_and(|n| self.peers.iter().any(|p| p == n))
    }
}

impl Default for Advertisement {
    /// [`Advertisement::HOST_ROUTES`].
    fn default() -> Self {
        Advertisement::HOST_ROUTES
    }
}

/// An inclusive range of addresses of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressRange {
    /// First address of the range.
    pub first: IpAddr,
    /// Last address of the range (inclusive).
    pub last: IpAddr,
}

impl AddressRange {
    /// Whether `ip` lies in the range (an address of the other family never does).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.first, self.last, ip) {
            (IpAddr::V4(a), IpAddr::V4(b), IpAddr::V4(x)) => a <= x && x <= b,
            (IpAddr::V6(a), IpAddr::V6(b), IpAddr::V6(x)) => a <= x && x <= b,
            _ => false,
        }
    }
}

impl From<IpNet> for AddressRange {
    fn from(net: IpNet) -> Self {
        AddressRange {
            first: net.network(),
            last: net.broadcast(),
        }
    }
}

/// An address pool, as the decision needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    /// The pool's unique name.
    pub name: String,
    /// The pool's addresses.
    pub addresses: Vec<AddressRange>,
    /// The pool's `bgp-advertisements`; when empty, one [`Advertisement::default`] applies.
    pub advertisements: Vec<Advertisement>,
    /// The pool's `announce-from` option.
    pub announce_from: AnnounceFrom,
    /// False when no advertisement covers the pool (a MetalLB IPAddressPool no BGPAdvertisement
    /// selects): its Services are not announced at all.
    pub announced: bool,
}

impl Default for Pool {
    /// An announced pool with no name, addresses or advertisements.
    fn default() -> Self {
        Pool {
            name: String::new(),
            addresses: Vec::new(),
            advertisements: Vec::new(),
            announce_from: AnnounceFrom::default(),
            announced: true,
        }
    }
}

impl Pool {
    /// Whether `ip` is one of the pool's addresses.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.addresses.iter().any(|r| r.contains(ip))
    }
}

/// Identifies a BGP peer: its address and port, and the device its session is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerKey {
    /// `peer-address`; `::` for an unnumbered peer (its `interface` in `device`).
    pub address: IpAddr,
    /// `peer-port`.
    pub port: u16,
    /// `interface` (unnumbered) or `vrf`: the device the session's socket is bound to.
    pub device: Option<ferrolb_config::DeviceName>,
}

impl PeerKey {
    /// The key of a configured peer.
    pub fn of(p: &ferrolb_config::Peer) -> PeerKey {
        PeerKey {
            address: p.peer_address,
            port: p.peer_port,
            device: p.interface.or(p.vrf),
        }
    }
}

impl fmt::Display for PeerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.device, self.address.is_unspecified()) {
            // Unnumbered: the interface names the peer, as FRR's `neighbor eth1 interface`.
            (Some(d), true) if self.port == BGP_PORT => return write!(f, "{d}"),
            (Some(d), true) => return write!(f, "{d}:{}", self.port),
            _ => {}
        }
        match (self.port, self.address) {
            (BGP_PORT, a) => write!(f, "{a}"),
            (p, IpAddr::V4(a)) => write!(f, "{a}:{p}"),
            (p, IpAddr::V6(a)) => write!(f, "[{a}]:{p}"),
        }?;
        match self.device {
            Some(vrf) => write!(f, "%{vrf}"),
            None => Ok(()),
        }
    }
}

/// A configured BGP peer, with its node-selectors already evaluated against this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Which peer.
    pub key: PeerKey,
    /// Whether the peer's `node-selectors` select this node (no selector selects every node).
    pub selects_node: bool,
    /// The peer's name, which advertisements limited to some peers refer to.
    pub name: Option<String>,
    /// Whether the session carries both address families; when false, only routes of the
    /// peer address's family are sent to it.
    pub dual_stack: bool,
}

impl Peer {
    /// A dual-stack peer without a name, selecting this node or not.
    pub fn new(key: PeerKey, selects_node: bool) -> Self {
        Peer {
            key,
            selects_node,
            name: None,
            dual_stack: true,
        }
    }

    /// Whether routes for `prefix` may go on this peer's session.
    pub fn carries(&self, prefix: &IpNet) -> bool {
        self.dual_stack || prefix.addr().is_ipv4() == self.key.address.is_ipv4()
    }
}

/// The part of the configuration the decision reads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AnnounceConfig {
    /// Address pools (BGP protocol only).
    pub pools: Vec<Pool>,
    /// BGP peers.
    pub peers: Vec<Peer>,
}

impl AnnounceConfig {
    /// The pool that contains `ip`, if any.
    pub fn pool_of(&self, ip: IpAddr) -> Option<&Pool> {
        self.pools.iter().find(|p| p.contains(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_conditions_follow_the_endpointslice_api() {
        let e = Endpoint::from_conditions(Some("n1".into()), None, None, None);
        assert_eq!((e.ready, e.serving, e.terminating), (true, true, false));
        let e = Endpoint::from_conditions(None, Some(false), None, Some(true));
        assert_eq!((e.ready, e.serving, e.terminating), (false, false, true));
        let e = Endpoint::from_conditions(None, Some(false), Some(true), Some(true));
        assert_eq!((e.ready, e.serving, e.terminating), (false, true, true));
    }

    #[test]
    fn range_contains_only_its_family_and_bounds() {
        let r = AddressRange {
            first: "203.0.113.10".parse().unwrap(),
            last: "203.0.113.20".parse().unwrap(),
        };
        assert!(r.contains("203.0.113.10".parse().unwrap()));
        assert!(r.contains("203.0.113.20".parse().unwrap()));
        assert!(!r.contains("203.0.113.21".parse().unwrap()));
        assert!(!r.contains("203.0.113.9".parse().unwrap()));
        assert!(!r.contains("2001:db8::a".parse().unwrap()));
        let net: AddressRange = "2001:db8::/126".parse::<IpNet>().unwrap().into();
        assert!(net.contains("2001:db8::3".parse().unwrap()));
        assert!(!net.contains("2001:db8::4".parse().unwrap()));
    }

    #[test]
    fn communities_and_peers_display_like_the_config() {
        assert_eq!(Community(0xffff_ff02).to_string(), "65535:65282");
        let lc = LargeCommunity {
            global_admin: 64500,
            local_data1: 1,
            local_data2: 2,
        };
        assert_eq!(lc.to_string(), "64500:1:2");
        let p = PeerKey {
            address: "198.18.0.1".parse().unwrap(),
            port: 179,
            device: None,
        };
        assert_eq!(p.to_string(), "198.18.0.1");
        let p = PeerKey {
            address: "2001:db8::1".parse().unwrap(),
            port: 1790,
            device: None,
        };
        assert_eq!(p.to_string(), "[2001:db8::1]:1790");
        let eth1 = Some("eth1".parse().unwrap());
        let p = PeerKey {
            address: "::".parse().unwrap(),
            port: 179,
            device: eth1,
        };
        assert_eq!(p.to_string(), "eth1");
        let p = PeerKey {
            address: "198.18.0.1".parse().unwrap(),
            port: 179,
            device: Some("red".parse().unwrap()),
        };
        assert_eq!(p.to_string(), "198.18.0.1%red");
    }
}

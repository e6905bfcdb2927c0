//! What a Service asks for, as plain data (no Kubernetes types).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use crate::family::Family;

/// Identifies a Service: `namespace/name`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceKey {
    /// The Service's namespace.
    pub namespace: String,
    /// The Service's name.
    pub name: String,
}

impl ServiceKey {
    /// A key from a namespace and a name.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> ServiceKey {
        ServiceKey {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Which of `spec.ipFamilies` a Service must get (`spec.ipFamilyPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FamilyPolicy {
    /// One address, of the first family listed.
    #[default]
    SingleStack,
    /// One address per listed family when a pool can give them all, else one address of a single family. An
    /// assignment that fell back to one family is kept as it is; it is not widened later when space appears.
    PreferDualStack,
    /// One address per listed family, or nothing.
    RequireDualStack,
}

/// The address families a Service asks for: `spec.ipFamilies` (in order) and `spec.ipFamilyPolicy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyRequest {
    /// `spec.ipFamilies`, in the Service's order (primary first). One or two distinct families.
    pub families: Vec<Family>,
    /// `spec.ipFamilyPolicy`.
    pub policy: FamilyPolicy,
}

impl FamilyRequest {
    /// A single-stack request for one family.
    pub fn single(family: Family) -> FamilyRequest {
        FamilyRequest {
            families: vec![family],
            policy: FamilyPolicy::SingleStack,
        }
    }

    /// A dual-stack request: `primary` first, then the other family.
    pub fn dual(primary: Family, policy: FamilyPolicy) -> FamilyRequest {
        let other = match primary {
            Family::V4 => Family::V6,
            Family::V6 => Family::V4,
        };
        FamilyRequest {
            families: vec![primary, other],
            policy,
        }
    }

    /// The family sets to try, best first. Each set is in the Service's family order.
    pub(crate) fn alternatives(&self) -> Alternatives {
        let mut out = Alternatives {
            sets: [([Family::V4; 2], 0); 3],
            len: 0,
        };
        let Some(&primary) = self.families.first() else {
            return out;
        };
        let mut push = |families: &[Family]| {
            if let Some(slot) = out.sets.get_mut(out.len) {
                for (dst, src) in slot.0.iter_mut().zip(families) {
                    *dst = *src;
                }
                slot.1 = families.len().min(2);
                out.len += 1;
            }
        };
        match self.policy {
            FamilyPolicy::SingleStack => push(&[primary]),
            FamilyPolicy::RequireDualStack => push(&self.families),
            FamilyPolicy::PreferDualStack => {
                push(&self.families);
                if self.families.len() > 1 {
                    for &f in &self.families {
                        push(&[f]);
                    }
                }
            }
        }
        out
    }
}

/// Up to three sets of families to try, best first (no allocation: this is on every allocation's path).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Alternatives {
    sets: [([Family; 2], usize); 3],
    len: usize,
}

impl Alternatives {
    /// The sets, best first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &[Family]> + '_ {
        self.sets
            .iter()
            .take(self.len)
            .map(|(families, n)| families.get(..*n).unwrap_or(&[]))
    }

    /// How many sets there are.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Default for FamilyRequest {
    fn default() -> FamilyRequest {
        FamilyRequest::single(Family::V4)
    }
}

/// A transport protocol of a Service port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        })
    }
}

/// One `spec.ports[]` entry as far as sharing is concerned: protocol and (external) port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortSpec {
    /// The protocol.
    pub protocol: Protocol,
    /// The Service port.
    pub port: u16,
}

impl PortSpec {
    /// A TCP port.
    pub fn tcp(port: u16) -> PortSpec {
        PortSpec {
            protocol: Protocol::Tcp,
            port,
        }
    }

    /// A UDP port.
    pub fn udp(port: u16) -> PortSpec {
        PortSpec {
            protocol: Protocol::Udp,
            port,
        }
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.protocol, self.port)
    }
}

/// `spec.externalTrafficPolicy`, with the selector that matters for sharing under `Local`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TrafficPolicy {
    /// `Cluster`: any node may receive the traffic.
    #[default]
    Cluster,
    /// `Local`: only nodes with endpoints announce, so Services sharing an IP must select the same pods.
    Local {
        /// `spec.selector`.
        selector: BTreeMap<String, String>,
    },
}

/// Orders Services by age, so that of two Services claiming one IP the older keeps it. Older sorts first.
///
/// Compare `metadata.creationTimestamp` (seconds since the epoch) first, then `metadata.uid` to break ties.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct CreationOrder {
    /// `metadata.creationTimestamp` as Unix seconds.
    pub created_unix_secs: i64,
    /// `metadata.uid`.
    pub uid: String,
}

/// Everything the allocator needs to know about a Service.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    /// Requested addresses (`spec.loadBalancerIP` or the `loadBalancerIPs` annotation; see
    /// [`crate::annotations::requested_ips`]). Empty: any address. At most one per family.
    pub requested_ips: Vec<IpAddr>,
    /// The pool named by the `address-pool` annotation.
    pub pool: Option<String>,
    /// The address families wanted.
    pub families: FamilyRequest,
    /// The `allow-shared-ip` key. `None`: the Service shares with nobody.
    pub sharing_key: Option<String>,
    /// The Service's ports.
    pub ports: Vec<PortSpec>,
    /// `spec.externalTrafficPolicy` (with the selector for `Local`).
    pub traffic_policy: TrafficPolicy,
    /// The Service's age, for conflicts between existing claims.
    pub created: CreationOrder,
    /// The Service's own labels (for pools' `service-selectors`).
    pub labels: BTreeMap<String, String>,
    /// The labels of the Service's Namespace (for pools' `namespace-selectors` and fences), shared by every
    /// request of the namespace (the allocator keeps each Service's request).
    pub namespace_labels: Arc<BTreeMap<String, String>>,
    /// The namespaces the Service agrees to share its address with
    /// ([`crate::SHARE_WITH_NAMESPACES`]); sharing across namespaces needs both sides to agree.
    pub share_with_namespaces: BTreeSet<String>,
}

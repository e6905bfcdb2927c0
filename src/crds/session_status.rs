//! ferrolb's own status kind (group `ferrolb.io`): `BGPSessionStatus`, one object per node × BGP peer, written by
//! that node's speaker and read by `kubectl get bgpsessionstatus` and `ferrolb status`.
//!
//! The spec holds the identity (node and peer), set once; the status subresource holds what changes. The object
//! is named by [`object_name`], labelled with [`NODE_LABEL`], lives in the speaker's namespace and is owned by its
//! Node, so the garbage collector deletes it with the Node.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The API group of ferrolb's own resources.
pub const GROUP: &str = "ferrolb.io";

/// The label that carries the node name, for `kubectl get bgpsessionstatus -l ferrolb.io/node=NAME`.
pub const NODE_LABEL: &str = "ferrolb.io/node";

/// `BGPSessionStatus.spec`: which session this object describes.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "ferrolb.io",
    version = "v1alpha1",
    kind = "BGPSessionStatus",
    plural = "bgpsessionstatuses",
    shortname = "bgpss",
    namespaced,
    status = "SessionStatus",
    doc = "The state of one BGP session of one node's speaker, written by that speaker.",
    printcolumn = r#"{"name": "Node", "type": "string", "jsonPath": ".spec.node"}"#,
    printcolumn = r#"{"name": "Peer", "type": "string", "jsonPath": ".spec.peer"}"#,
    printcolumn = r#"{"name": "State", "type": "string", "jsonPath": ".status.state"}"#,
    printcolumn = r#"{"name": "Since", "type": "date", "jsonPath": ".status.lastTransitionTime"}"#,
    printcolumn = r#"{"name": "Prefixes", "type": "integer", "jsonPath": ".status.prefixesSent"}"#,
    printcolumn = r#"{"name": "BFD", "type": "string", "jsonPath": ".status.bfd"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct BGPSessionStatusSpec {
    /// The node whose speaker holds the session.
    pub node: String,
    /// The peer's address, as configured (`198.18.0.1`, `2001:db8::1`).
    pub peer: String,
    /// The peer's ASN, as configured; 0 when the speaker learns it from the peer's OPEN (`dynamic-asn`).
    pub peer_asn: u32,
    /// The peer's name in the configuration (the `BGPPeer` object's name, or empty for the ConfigMap).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub peer_name: String,
}

/// `BGPSessionStatus.status`: what the speaker knows about the session now.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SessionStatus {
    /// The RFC 4271 FSM state: `Idle`, `Connect`, `OpenSent`, `OpenConfirm` or `Established` (the speaker only
    /// dials out, so it has no separate `Active`).
    #[serde(default)]
    pub state: String,
    /// When the session entered `state`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
    /// The last reason the session went down or failed to come up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<SessionError>,
    /// The negotiated hold time, seconds (while `Established`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_time_seconds: Option<u16>,
    /// The keepalive interval, seconds (while `Established`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keepalive_seconds: Option<u16>,
    /// The capabilities both sides announced, in words (`ipv4-unicast`, `ipv6-unicast`, `4-octet-as`,
    /// `graceful-restart`, `route-refresh`, `enhanced-route-refresh`, `extended-nexthop`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
    /// Prefixes advertised to the peer now (IPv4 and IPv6).
    #[serde(default)]
    pub prefixes_sent: u32,
    /// BFD for this session: `Up`, `Down`, `Init`, `AdminDown`, or `Disabled` when it has no BFD profile.
    #[serde(default)]
    pub bfd: String,
    /// The pools whose Service addresses this node may advertise to this peer (by the advertisements' peer and
    /// node selectors), sorted. A Service of another pool is never advertised over this session.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pools: Vec<String>,
    /// Why this node advertises nothing at all, when that is so (for example the
    /// `node.kubernetes.io/exclude-from-external-load-balancers` label).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_excluded: Option<String>,
}

/// The last error of a session, as the speaker saw it.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SessionError {
    /// In words: `received NOTIFICATION 6/2 (Cease / Administrative Shutdown)`, `sent NOTIFICATION 4/0 (Hold
    /// Timer Expired)`, `connection: connection to 198.18.0.1 refused: nothing listens on its BGP port, ...`.
    pub message: String,
    /// The NOTIFICATION error code, when the error was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u8>,
    /// The NOTIFICATION error subcode, when the error was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subcode: Option<u8>,
    /// When the speaker saw it (each time the session goes down, even for the same reason again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Time>,
}

/// The object name for `node` × `peer`: `<node>.<peer>` with the peer's `:` (IPv6) written as `-`, which is a
/// valid DNS subdomain for node names and peer addresses.
pub fn object_name(node: &str, peer: &str) -> String {
    let peer: String = peer
        .chars()
        .map(|c| match c {
            ':' => '-',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    let peer = peer.trim_matches('-');
    format!("{node}.{peer}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::CustomResourceExt;

    #[test]
    fn names_are_dns_subdomains() {
        assert_eq!(object_name("node-1", "198.18.0.1"), "node-1.198.18.0.1");
        assert_eq!(object_name("node-1", "2001:db8::1"), "node-1.2001-db8--1");
        assert_eq!(object_name("node-1", "fe80::1"), "node-1.fe80--1");
        assert_eq!(object_name("n", "::1"), "n.1");
    }

    #[test]
    fn definition_has_the_printer_columns_and_status_subresource() {
        let crd = BGPSessionStatus::crd();
        assert_eq!(crd.spec.group, GROUP);
        assert_eq!(crd.spec.names.kind, "BGPSessionStatus");
        assert_eq!(crd.spec.names.plural, "bgpsessionstatuses");
        let version = &crd.spec.versions[0];
        let columns: Vec<&str> = version
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(
            columns,
            ["Node", "Peer", "State", "Since", "Prefixes", "BFD"]
        );
        assert!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some()
        );
    }
}

//! What `ferrolb status` reports, computed from what a read-only user can list: the LoadBalancer Services, their
//! EndpointSlices and the speakers' BGPSessionStatus objects. Pure: no I/O.
//!
//! A node announces a Service when all of these hold, and each that fails is one [`WhyNot`]:
//! - its speaker reports at least one session (a BGPSessionStatus object for the node);
//! - the speaker does not report the node as excluded (`nodeExcluded`);
//! - the node hosts a usable endpoint of the Service, by the speaker's own rule
//!   ([`ferrolb_announce::endpoints::endpoint_reason`]: ready endpoints, or serving-terminating ones while none is
//!   ready anywhere);
//! - one of the node's sessions carries the Service's pool (its `pools`), and one of those is `Established`.
//!
//! The pool of each address is the one the controller recorded in the Service's `ferrolb.io/AddressAssigned`
//! condition, else the one the pool annotation names.

use crate::controller::status::{CONDITION_TYPE, recorded_pools};
use crate::crds::session_status::{BGPSessionStatus, SessionError};
use crate::service_filter::ServiceFilter;
use crate::speaker::views::{NodeNames, ServiceView, SliceView, with_endpoints};
use ferrolb_announce::endpoints::endpoint_reason;
use ferrolb_announce::{Effect, TrafficPolicy};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// The BGP session state in which routes are exchanged.
pub const ESTABLISHED: &str = "Established";

/// The whole report: `ferrolb status -o json` prints it as is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The LoadBalancer Services ferrolb handles, by namespace and name.
    pub services: Vec<ServiceReport>,
    /// The nodes whose speakers report sessions, by name.
    pub nodes: Vec<NodeReport>,
}

/// One Service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceReport {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `status.loadBalancer.ingress[].ip`, in order.
    pub addresses: Vec<String>,
    /// The pools of the addresses (sorted, unique); empty when unknown.
    pub pools: Vec<String>,
    /// `spec.externalTrafficPolicy`: `Cluster` or `Local`.
    pub external_traffic_policy: String,
    /// Why the Service has no address, when it has none (the controller's condition message); `null` otherwise.
    pub pending: Option<String>,
    /// The nodes that announce it, by name.
    pub announced_by: Vec<String>,
    /// Every other node known (reporting sessions, or hosting an endpoint of the Service), by name, and why it
    /// does not announce the Service. Empty while the Service is pending.
    pub not_announced_by: Vec<NodeWhyNot>,
}

/// Why one node does not announce a Service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeWhyNot {
    /// The node.
    pub node: String,
    /// Every reason, in the order of the checks.
    pub reasons: Vec<WhyNot>,
}

/// One reason a node does not announce a Service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WhyNot {
    /// Which check failed.
    pub kind: WhyNotKind,
    /// The reason in words.
    pub message: String,
}

/// The checks of a node, as `kind` in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum WhyNotKind {
    /// No BGPSessionStatus object names the node.
    NoSpeakerStatus,
    /// The speaker reports the node as excluded.
    NodeExcluded,
    /// The node hosts no usable endpoint of the Service.
    NoUsableEndpoint,
    /// None of the node's sessions carries the Service's pool.
    PoolNotAdvertised,
    /// The sessions that carry the pool are not `Established`.
    NoEstablishedSession,
}

/// One node and its sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeReport {
    /// The node.
    pub node: String,
    /// Why the speaker advertises nothing from this node, when it says so; `null` otherwise.
    pub excluded: Option<String>,
    /// Its sessions, by peer address.
    pub sessions: Vec<SessionReport>,
}

/// One session, from its BGPSessionStatus object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionReport {
    /// The peer's address.
    pub peer: String,
    /// The peer's name in the configuration (empty for the ConfigMap).
    pub peer_name: String,
    /// The peer's ASN.
    pub peer_asn: u32,
    /// The FSM state (empty when the speaker has not written a status yet).
    pub state: String,
    /// When the session entered `state` (RFC 3339), or `null`.
    pub since: Option<String>,
    /// Prefixes advertised to the peer.
    pub prefixes_sent: u32,
    /// BFD state, or `Disabled`.
    pub bfd: String,
    /// Negotiated hold time, seconds, while `Established`.
    pub hold_time_seconds: Option<u16>,
    /// Keepalive interval, seconds, while `Established`.
    pub keepalive_seconds: Option<u16>,
    /// Negotiated capabilities, in words.
    pub capabilities: Vec<String>,
    /// The pools this node may advertise to the peer.
    pub pools: Vec<String>,
    /// The last error, or `null`.
    pub last_error: Option<ErrorReport>,
}

/// The last error of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorReport {
    /// In words.
    pub message: String,
    /// NOTIFICATION code, or `null`.
    pub code: Option<u8>,
    /// NOTIFICATION subcode, or `null`.
    pub subcode: Option<u8>,
    /// When (RFC 3339), or `null`.
    pub time: Option<String>,
}

/// A time as RFC 3339 in UTC, to the second (as the API server stores it).
pub fn rfc3339(t: &Time) -> String {
    format!("{:.0}", t.0)
}

impl From<&SessionError> for ErrorReport {
    fn from(e: &SessionError) -> Self {
        ErrorReport {
            message: e.message.clone(),
            code: e.code,
            subcode: e.subcode,
            time: e.time.as_ref().map(rfc3339),
        }
    }
}

impl From<&BGPSessionStatus> for SessionReport {
    fn from(s: &BGPSessionStatus) -> Self {
        let st = s.status.clone().unwrap_or_default();
        SessionReport {
            peer: s.spec.peer.clone(),
            peer_name: s.spec.peer_name.clone(),
            peer_asn: s.spec.peer_asn,
            state: st.state,
            since: st.last_transition_time.as_ref().map(rfc3339),
            prefixes_sent: st.prefixes_sent,
            bfd: st.bfd,
            hold_time_seconds: st.hold_time_seconds,
            keepalive_seconds: st.keepalive_seconds,
            capabilities: st.capabilities,
            pools: st.pools,
            last_error: st.last_error.as_ref().map(ErrorReport::from),
        }
    }
}

/// The nodes and their sessions, from the BGPSessionStatus objects.
pub fn node_reports(sessions: &[BGPSessionStatus]) -> Vec<NodeReport> {
    let mut by_node: BTreeMap<&str, NodeReport> = BTreeMap::new();
    for s in sessions {
        let node = by_node
            .entry(s.spec.node.as_str())
            .or_insert_with(|| NodeReport {
                node: s.spec.node.clone(),
                excluded: None,
                sessions: Vec::new(),
            });
        if node.excluded.is_none() {
            node.excluded = s.status.as_ref().and_then(|st| st.node_excluded.clone());
        }
        node.sessions.push(SessionReport::from(s));
    }
    let mut nodes: Vec<NodeReport> = by_node.into_values().collect();
    for n in &mut nodes {
        n.sessions.sort_by(|a, b| a.peer.cmp(&b.peer));
    }
    nodes
}

/// The Service's pools: the controller's record of each address, else the pool annotation.
fn pools_of(svc: &Service, addresses: &[std::net::IpAddr]) -> Vec<String> {
    let recorded: Vec<_> = assigned_condition(svc)
        .map(|c| recorded_pools(&c.message))
        .unwrap_or_default();
    let mut pools: BTreeSet<String> = recorded
        .into_iter()
        .filter(|(ip, _)| addresses.contains(ip))
        .map(|(_, pool)| pool)
        .collect();
    if pools.is_empty() {
        let annotations = svc.metadata.annotations.clone().unwrap_or_default();
        if let Ok(Some(pool)) = ferrolb_ipam::annotations::address_pool(&annotations) {
            pools.insert(pool.trim().to_owned());
        }
    }
    pools.into_iter().collect()
}

/// The controller's `ferrolb.io/AddressAssigned` condition on the Service.
fn assigned_condition(
    svc: &Service,
) -> Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    svc.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == CONDITION_TYPE)
}

/// Why node `node` (with `sessions`, none when its speaker reports nothing) does not announce the Service of
/// `pools` whose decision input is `service`; empty when it does.
fn why_not(
    node: &str,
    sessions: Option<&NodeReport>,
    service: &ferrolb_announce::Service,
    pools: &[String],
) -> Vec<WhyNot> {
    let mut out = Vec::new();
    let mut push = |kind, message: String| out.push(WhyNot { kind, message });
    let report = sessions.filter(|n| !n.sessions.is_empty());
    match report {
        None => push(
            WhyNotKind::NoSpeakerStatus,
            "no BGPSessionStatus object for this node: no speaker reports from it".to_owned(),
        ),
        Some(NodeReport {
            excluded: Some(why),
            ..
        }) => push(WhyNotKind::NodeExcluded, format!("node excluded: {why}")),
        Some(_) => {}
    }
    let endpoints = endpoint_reason(node, service);
    if endpoints.effect() == Effect::Blocks {
        push(WhyNotKind::NoUsableEndpoint, endpoints.to_string());
    }
    let Some(report) = report.filter(|n| n.excluded.is_none()) else {
        return out;
    };
    let carrying: Vec<&SessionReport> = report
        .sessions
        .iter()
        .filter(|s| pools.is_empty() || s.pools.iter().any(|p| pools.contains(p)))
        .collect();
    if carrying.is_empty() {
        push(
            WhyNotKind::PoolNotAdvertised,
            match pools {
                [pool] => format!("pool {pool} is advertised to none of this node's peers"),
                _ => format!(
                    "pools {} are advertised to none of this node's peers",
                    pools.join(", ")
                ),
            },
        );
    } else if !carrying.iter().any(|s| s.state == ESTABLISHED) {
        let states: Vec<String> = carrying
            .iter()
            .map(|s| {
                let state = if s.state.is_empty() {
                    "unknown"
                } else {
                    &s.state
                };
                format!("{} is {state}", s.peer)
            })
            .collect();
        push(
            WhyNotKind::NoEstablishedSession,
            format!("no Established session: {}", states.join(", ")),
        );
    }
    out
}

/// The report for `services` (any type; only the LoadBalancer Services `filter` says are ferrolb's are
/// reported), their `slices` and the `sessions` the speakers wrote.
pub fn report(
    filter: &ServiceFilter,
    services: &[Service],
    slices: &[EndpointSlice],
    sessions: &[BGPSessionStatus],
) -> Report {
    let nodes = node_reports(sessions);
    let by_node: BTreeMap<&str, &NodeReport> = nodes.iter().map(|n| (n.node.as_str(), n)).collect();
    let names = &mut NodeNames::default();
    let slices: Vec<SliceView> = slices.iter().map(|s| SliceView::new(s, names)).collect();
    let mut out: Vec<ServiceReport> = services
        .iter()
        .filter_map(|svc| {
            let view = ServiceView::new(filter, svc, names);
            let service = with_endpoints(
                &view,
                slices
                    .iter()
                    .filter(|s| s.belongs_to(&view.namespace, &view.name)),
            )
            .filter(|s| s.ours)?;
            Some(service_report(svc, view, &service, &by_node))
        })
        .collect();
    out.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    Report {
        services: out,
        nodes,
    }
}

/// The report of one Service of ours, with its decision input `service`.
fn service_report(
    svc: &Service,
    view: ServiceView,
    service: &ferrolb_announce::Service,
    by_node: &BTreeMap<&str, &NodeReport>,
) -> ServiceReport {
    let pools = pools_of(svc, &service.ingress_ips);
    let mut report = ServiceReport {
        namespace: view.namespace.to_string(),
        name: view.name.into(),
        addresses: service
            .ingress_ips
            .iter()
            .map(ToString::to_string)
            .collect(),
        pools,
        external_traffic_policy: match service.traffic_policy {
            TrafficPolicy::Cluster => "Cluster",
            TrafficPolicy::Local => "Local",
        }
        .to_owned(),
        pending: None,
        announced_by: Vec::new(),
        not_announced_by: Vec::new(),
    };
    if service.ingress_ips.is_empty() {
        report.pending = Some(
            assigned_condition(svc)
                .map(|c| c.message.clone())
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| "no address assigned yet".to_owned()),
        );
        return report;
    }
    let mut known: BTreeSet<&str> = by_node.keys().copied().collect();
    known.extend(
        service
            .endpoints
            .iter()
            .filter_map(|e| e.node_name.as_deref()),
    );
    for node in known {
        let reasons = why_not(node, by_node.get(node).copied(), service, &report.pools);
        if reasons.is_empty() {
            report.announced_by.push(node.to_owned());
        } else {
            report.not_announced_by.push(NodeWhyNot {
                node: node.to_owned(),
                reasons,
            });
        }
    }
    report
}

//! A Service's endpoints seen from one node: how many are usable there and elsewhere, and the [`Reason`] that
//! says so. The decision ([`crate::decide`]) uses it per Service; [`endpoint_reason`] gives the same reason to
//! readers that see the endpoints but not the node's own view (`ferrolb status`).

use crate::input::{Endpoint, Service};
use crate::reason::{NAMED_NODES, Reason};
use std::sync::Arc;

/// Endpoint counts of one Service, seen from this node.
#[derive(Default)]
pub(crate) struct EndpointTally<'a> {
    ready_here: u32,
    serving_here: u32,
    ready_total: u32,
    serving_total: u32,
    endpoints: &'a [Endpoint],
    ready_without_node: u32,
    serving_without_node: u32,
}

impl<'a> EndpointTally<'a> {
    pub(crate) fn count(node: &str, service: &'a Service) -> Self {
        let mut t = EndpointTally {
            endpoints: &service.endpoints,
            ..EndpointTally::default()
        };
        for e in &service.endpoints {
            let here = e.node_name.as_deref() == Some(node);
            // kube-proxy's fallback set: serving and terminating, not ready.
            let fallback = !e.ready && e.serving && e.terminating;
            if e.ready {
                t.ready_total = t.ready_total.saturating_add(1);
                match e.node_name {
                    _ if here => t.ready_here = t.ready_here.saturating_add(1),
                    Some(_) => {}
                    None => t.ready_without_node = t.ready_without_node.saturating_add(1),
                }
            } else if fallback {
                t.serving_total = t.serving_total.saturating_add(1);
                match e.node_name {
                    _ if here => t.serving_here = t.serving_here.saturating_add(1),
                    Some(_) => {}
                    None => t.serving_without_node = t.serving_without_node.saturating_add(1),
                }
            }
        }
        t
    }

    /// Whether no endpoint is ready anywhere, so that serving ones are used.
    pub(crate) fn fallback(&self) -> bool {
        self.ready_total == 0 && self.serving_total > 0
    }

    /// The other nodes hosting usable endpoints, sorted and unique.
    fn usable_elsewhere(&self, node: &str) -> Vec<&'a str> {
        let fallback = self.fallback();
        let mut nodes: Vec<&'a str> = self
            .endpoints
            .iter()
            .filter(|e| {
                if fallback {
                    !e.ready && e.serving && e.terminating
                } else {
                    e.ready
                }
            })
            .filter_map(|e| e.node_name.as_deref())
            .filter(|n| *n != node)
            .collect();
        nodes.sort_unstable();
        nodes.dedup();
        nodes
    }

    /// Usable endpoints on this node.
    pub(crate) fn usable_here(&self) -> u32 {
        if self.fallback() {
            self.serving_here
        } else {
            self.ready_here
        }
    }

    /// Usable endpoints in the cluster.
    pub(crate) fn usable_total(&self) -> u32 {
        if self.fallback() {
            self.serving_total
        } else {
            self.ready_total
        }
    }
}

/// What `tally` says about the endpoints on `node`, naming the other nodes with `name_nodes` (up to
/// [`NAMED_NODES`] names, and how many more there are).
pub(crate) fn tally_reason<'a>(
    node: &Arc<str>,
    tally: &EndpointTally<'a>,
    mut name_nodes: impl FnMut(&[&'a str]) -> (Vec<Arc<str>>, u32),
) -> Reason {
    match (tally.usable_total(), tally.fallback(), tally.usable_here()) {
        (0, _, _) => Reason::NoEndpoints,
        (_, false, 0) => {
            let (ready_on, more_nodes) = name_nodes(&tally.usable_elsewhere(node));
            Reason::NoReadyHere {
                ready_on,
                more_nodes,
                without_node: tally.ready_without_node,
            }
        }
        (_, false, count) => Reason::ReadyHere {
            node: node.clone(),
            count,
        },
        (_, true, 0) => {
            let (serving_on, more_nodes) = name_nodes(&tally.usable_elsewhere(node));
            Reason::NoServingHere {
                serving_on,
                more_nodes,
                without_node: tally.serving_without_node,
            }
        }
        (_, true, count) => Reason::ServingHere {
            node: node.clone(),
            count,
        },
    }
}

/// What the Service's endpoints say about `node` announcing it, by the rule [`crate::decide`] applies to a pool
/// without `announce-from: all-nodes`: [`Reason::ReadyHere`] or [`Reason::ServingHere`] when the node hosts
/// usable endpoints (ready ones, or serving-terminating ones when none is ready anywhere), otherwise
/// [`Reason::NoReadyHere`], [`Reason::NoServingHere`] or [`Reason::NoEndpoints`]. For readers that see the
/// endpoints but not the node's own view (`ferrolb status`).
pub fn endpoint_reason(node: &str, service: &Service) -> Reason {
    let tally = EndpointTally::count(node, service);
    let node: Arc<str> = Arc::from(node);
    tally_reason(&node, &tally, |nodes| named_nodes(nodes, Arc::from))
}

/// Up to [`NAMED_NODES`] of `nodes`, as names made by `name`, and how many more there are.
pub(crate) fn named_nodes<'a>(
    nodes: &[&'a str],
    name: impl FnMut(&'a str) -> Arc<str>,
) -> (Vec<Arc<str>>, u32) {
    let named = nodes.iter().copied().take(NAMED_NODES).map(name).collect();
    let more = u32::try_from(nodes.len().saturating_sub(NAMED_NODES)).unwrap_or(u32::MAX);
    (named, more)
}

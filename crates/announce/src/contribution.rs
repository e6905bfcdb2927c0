//! One IP's share of a route, and how shares merge into routes.

use crate::decision::Route;
use crate::input::{Advertisement, Peer};
use ipnet::IpNet;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Whether a contribution goes to `peer`: its advertisement selects the peer and the peer's
/// session carries the prefix's family.
pub(crate) fn applies_to(c: &Contribution<'_>, peer: &Peer) -> bool {
    c.advertisement.selects_peer(peer.name.as_deref()) && peer.carries(&c.prefix)
}

/// One IP's share of a route: the prefix an advertisement gives it.
#[derive(Clone, Copy)]
pub(crate) struct Contribution<'a> {
    pub(crate) prefix: IpNet,
    pub(crate) ip: IpAddr,
    pub(crate) advertisement: &'a Advertisement,
    /// Index of the advertisement's pool in the configuration, and of the advertisement in the
    /// pool's (or in [`DEFAULT_ADVERTISEMENTS`]).
    pub(crate) pool: usize,
    pub(crate) adv: usize,
    /// Index of the Service in the input.
    pub(crate) service: usize,
    /// The link bandwidth this Service gives the prefix, when weighted.
    pub(crate) link_bandwidth: Option<u64>,
}

/// The link bandwidth of each weighted prefix: per Service the largest of its contributions
/// (two weighted advertisements of one pool do not double its weight), summed over Services.
pub(crate) fn link_bandwidths(contributions: &mut [Contribution<'_>]) -> BTreeMap<IpNet, u64> {
    let mut out = BTreeMap::new();
    if contributions.iter().all(|c| c.link_bandwidth.is_none()) {
        return out;
    }
    contributions.sort_unstable_by_key(|c| (c.prefix, c.service));
    for group in contributions.chunk_by(|a, b| a.prefix == b.prefix) {
        let mut total: Option<u64> = None;
        for service in group.chunk_by(|a, b| a.service == b.service) {
            if let Some(bw) = service.iter().filter_map(|c| c.link_bandwidth).max() {
                total = Some(total.unwrap_or(0).saturating_add(bw));
            }
        }
        if let (Some(first), Some(total)) = (group.first(), total) {
            out.insert(first.prefix, total);
        }
    }
    out
}

/// Merges the contributions into routes: one per prefix, attributes merged, covered IPs
/// sorted and unique.
pub(crate) fn merge_routes(mut contributions: Vec<Contribution<'_>>) -> BTreeMap<IpNet, Route> {
    contributions.sort_unstable_by_key(|c| (c.prefix, c.ip));
    let mut routes: Vec<(IpNet, Route)> = Vec::new();
    for group in contributions.chunk_by(|a, b| a.prefix == b.prefix) {
        let Some(first) = group.first() else {
            continue;
        };
        let mut route = Route::default();
        for c in group {
            route.attributes.merge(c.advertisement);
        }
        let mut ips: Vec<IpAddr> = group.iter().map(|c| c.ip).collect();
        ips.dedup();
        route.covered_ips = ips.as_slice().to_vec();
        routes.push((first.prefix, route));
    }
    // Already sorted and unique: the tree is built in bulk.
    routes.into_iter().collect()
}

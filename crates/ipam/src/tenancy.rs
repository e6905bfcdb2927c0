//! Who may take which addresses: a pool's `service-allocation` rules, the fence of `exclusive`
//! pools, and sharing an address across namespaces. Each denial is a sentence naming the rule.

use crate::pool::PoolSet;
use crate::request::{Request, ServiceKey};
use ferrolb_config::ServiceAllocation;

/// The first pool (in config order) that fences the Service's namespace in, if any.
pub(crate) fn fenced_by<'p>(
    pools: &'p PoolSet,
    key: &ServiceKey,
    request: &Request,
) -> Option<&'p str> {
    pools
        .fencing_pools()
        .iter()
        .find(|&&p| {
            pools
                .rules(p)
                .is_some_and(|r| r.fences(&key.namespace, &request.namespace_labels))
        })
        .map(|&p| pools.name(p))
}

/// Why the Service may not take addresses from `pool`, or `None` when it may.
pub(crate) fn pool_denial(
    pools: &PoolSet,
    pool: usize,
    key: &ServiceKey,
    request: &Request,
) -> Option<String> {
    let (ns, ns_labels) = (&key.namespace, &request.namespace_labels);
    let name = pools.name(pool);
    let rules = pools.rules(pool);
    if let Some(fence) = fenced_by(pools, key, request)
        && !rules.is_some_and(|r| r.names_namespace(ns, ns_labels))
    {
        return Some(format!(
            "namespace {ns:?} is fenced in by address pool {fence:?} (exclusive): it gets addresses only from pools whose namespaces or namespace-selectors select it, and address pool {name:?} does not"
        ));
    }
    let rules = rules?;
    if !rules.selects_namespace(ns, ns_labels) {
        return Some(format!(
            "address pool {name:?} does not serve namespace {ns:?} (its service-allocation {})",
            describe_namespaces(rules)
        ));
    }
    if !rules.selects_service(&request.labels) {
        return Some(format!(
            "address pool {name:?} serves only Services matching its service-selectors, and the labels of {key} match none"
        ));
    }
    None
}

/// `names namespaces [a, b] and has 1 namespace-selector`, in words.
fn describe_namespaces(rules: &ServiceAllocation) -> String {
    let mut parts = Vec::new();
    if !rules.namespaces.is_empty() {
        parts.push(format!(
            "names namespaces [{}]",
            rules.namespaces.join(", ")
        ));
    }
    match rules.namespace_selectors.len() {
        0 => {}
        1 => parts.push("has 1 namespace-selector, which does not match".to_owned()),
        n => parts.push(format!("has {n} namespace-selectors, none of which match")),
    }
    parts.join(" and ")
}

/// Whether two Services may share an address as far as namespaces go: the same namespace, or
/// each names the other's namespace in [`crate::SHARE_WITH_NAMESPACES`].
pub(crate) fn namespaces_may_share(
    ours_key: &ServiceKey,
    ours: &Request,
    theirs_key: &ServiceKey,
    theirs: &Request,
) -> bool {
    ours_key.namespace == theirs_key.namespace
        || (ours.share_with_namespaces.contains(&theirs_key.namespace)
            && theirs.share_with_namespaces.contains(&ours_key.namespace))
}

//! `--explain`: why this node does or does not announce one Service, in words.

use crate::decision::{AnnounceDecision, RouteAttributes};
use crate::reason::{Effect, Reason};
use std::fmt::Write;

fn marker(reason: &Reason) -> char {
    match reason.effect() {
        Effect::Allows => '+',
        Effect::Blocks => '-',
        Effect::Note => '*',
    }
}

fn render_attributes(attrs: &RouteAttributes) -> String {
    let mut parts = Vec::new();
    if let Some(lp) = attrs.local_pref {
        parts.push(format!("local-pref {lp}"));
    }
    if !attrs.communities.is_empty() {
        let c: Vec<String> = attrs.communities.iter().map(|c| c.to_string()).collect();
        parts.push(format!("communities {}", c.join(" ")));
    }
    if !attrs.large_communities.is_empty() {
        let c: Vec<String> = attrs
            .large_communities
            .iter()
            .map(|c| c.to_string())
            .collect();
        parts.push(format!("large-communities {}", c.join(" ")));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

/// Renders, for the Service `key` (`namespace/name`), whether this node announces it, the
/// routes and peers involved, and every reason, one per line: `+` allows, `-` blocks,
/// `*` is context.
pub fn explain(decision: &AnnounceDecision, key: &str) -> String {
    let mut out = String::new();
    let Some(sd) = decision.services.get(key) else {
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "Service {key}: not known to node {}: it does not exist, is not of type LoadBalancer, or is not in the cache yet",
            decision.node
        );
        return out;
    };
    let verdict = if sd.announce {
        "announced"
    } else {
        "not announced"
    };
    let _ = writeln!(out, "Service {key} on node {}: {verdict}", decision.node);
    if sd.announce {
        let _ = writeln!(out, "  routes:");
        for prefix in &sd.prefixes {
            let attrs = decision
                .routes
                .get(prefix)
                .map(|r| render_attributes(&r.attributes))
                .unwrap_or_default();
            let _ = writeln!(out, "    {prefix}{attrs}");
        }
        let peers: Vec<String> = decision.selected_peers().map(|p| p.to_string()).collect();
        let _ = writeln!(out, "  to peers: {}", peers.join(", "));
        let _ = writeln!(out, "  local endpoints: {}", sd.local_endpoints);
    }
    let _ = writeln!(out, "  because:");
    for reason in decision.node_reasons.iter().chain(&sd.reasons) {
        let _ = writeln!(out, "    {} {reason}", marker(reason));
    }
    out
}

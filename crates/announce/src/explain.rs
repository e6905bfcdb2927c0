//! `--explain`: why this node does or does not announce one Service, in words.

use crate::decision::{AnnounceDecision, ServiceDecision};
use crate::reason::Effect;
use std::fmt;

/// Why this node does or does not announce one Service: the content of `--explain` and of the
/// speaker's `/explain` endpoint, as data ([`Explanation`]'s `Display` is the text form, and it
/// serializes to JSON).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Explanation {
    /// The Service, `namespace/name`.
    pub service: String,
    /// This node.
    pub node: String,
    /// Whether this node announces at least one of the Service's IPs.
    pub announced: bool,
    /// The routes carrying them (empty when not announced).
    pub routes: Vec<ExplainedRoute>,
    /// The peers that get them (empty when not announced).
    pub peers: Vec<String>,
    /// Ready (or, failing any, serving) endpoints of the Service on this node.
    pub local_endpoints: u32,
    /// Every reason, node-wide ones first.
    pub reasons: Vec<ExplainedReason>,
}

/// One announced route of an [`Explanation`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExplainedRoute {
    /// The prefix, e.g. `203.0.113.5/32`.
    pub prefix: String,
    /// LOCAL_PREF, when the advertisement sets one.
    pub local_pref: Option<u32>,
    /// COMMUNITIES, `asn:value`.
    pub communities: Vec<String>,
    /// LARGE_COMMUNITIES, `global:local1:local2`.
    pub large_communities: Vec<String>,
    /// AS_PATH prepending, `ASN:COUNT`, when the route has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_path_prepend: Option<String>,
}

/// One reason of an [`Explanation`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExplainedReason {
    /// How it weighs on the decision.
    pub effect: Effect,
    /// The reason in words.
    pub text: String,
}

/// The explanation for the Service `key` (`namespace/name`), or `None` when the decision does
/// not know it (it does not exist, is not of type LoadBalancer, or is not cached yet; see
/// [`not_known`]).
pub fn explanation(decision: &AnnounceDecision, key: &str) -> Option<Explanation> {
    let sd = decision.services.get(key)?;
    Some(explanation_for(decision, key, sd))
}

/// The explanation for the Service `key` whose decision is `sd`, with the node's reasons, routes
/// and peers of `decision` (which need not hold `sd` itself).
pub(crate) fn explanation_for(
    decision: &AnnounceDecision,
    key: &str,
    sd: &ServiceDecision,
) -> Explanation {
    let (routes, peers) = if sd.announce {
        let routes = sd
            .prefixes
            .iter()
            .map(|prefix| {
                let attrs = decision
                    .routes
                    .get(prefix)
                    .map(|r| r.attributes.clone())
                    .unwrap_or_default();
                ExplainedRoute {
                    prefix: prefix.to_string(),
                    local_pref: attrs.local_pref,
                    communities: attrs.communities.iter().map(|c| c.to_string()).collect(),
                    large_communities: attrs
                        .large_communities
                        .iter()
                        .map(|c| c.to_string())
                        .collect(),
                    as_path_prepend: attrs.as_path_prepend.map(|p| p.to_string()),
                }
            })
            .collect();
        // The peers that get at least one of the Service's prefixes (advertisements limited to
        // named peers, or single-family sessions, can leave some out).
        let peers = decision
            .peers
            .iter()
            .filter(|p| {
                decision
                    .view(p.table)
                    .is_some_and(|v| sd.prefixes.iter().any(|x| v.routes.contains_key(x)))
            })
            .map(|p| p.peer.to_string())
            .collect();
        (routes, peers)
    } else {
        (Vec::new(), Vec::new())
    };
    let reasons = decision
        .node_reasons
        .iter()
        .chain(&sd.reasons)
        .map(|r| ExplainedReason {
            effect: r.effect(),
            text: r.to_string(),
        })
        .collect();
    Explanation {
        service: key.to_owned(),
        node: decision.node.clone(),
        announced: sd.announce,
        routes,
        peers,
        local_endpoints: sd.local_endpoints,
        reasons,
    }
}

/// The sentence for a Service the decision does not know.
pub fn not_known(key: &str, node: &str) -> String {
    format!(
        "Service {key}: not known to node {node}: it does not exist, is not of type LoadBalancer, or is not in the cache yet"
    )
}

impl fmt::Display for ExplainedRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(lp) = self.local_pref {
            parts.push(format!("local-pref {lp}"));
        }
        if !self.communities.is_empty() {
            parts.push(format!("communities {}", self.communities.join(" ")));
        }
        if !self.large_communities.is_empty() {
            parts.push(format!(
                "large-communities {}",
                self.large_communities.join(" ")
            ));
        }
        if let Some(p) = &self.as_path_prepend {
            parts.push(format!("as-path-prepend {p}"));
        }
        if parts.is_empty() {
            write!(f, "{}", self.prefix)
        } else {
            write!(f, "{} ({})", self.prefix, parts.join(", "))
        }
    }
}

/// The text form, one fact per line: `+` allows, `-` blocks, `*` is context.
impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.announced {
            "announced"
        } else {
            "not announced"
        };
        writeln!(
            f,
            "Service {} on node {}: {verdict}",
            self.service, self.node
        )?;
        if self.announced {
            writeln!(f, "  routes:")?;
            for route in &self.routes {
                writeln!(f, "    {route}")?;
            }
            writeln!(f, "  to peers: {}", self.peers.join(", "))?;
            writeln!(f, "  local endpoints: {}", self.local_endpoints)?;
        }
        writeln!(f, "  because:")?;
        for reason in &self.reasons {
            let marker = match reason.effect {
                Effect::Allows => '+',
                Effect::Blocks => '-',
                Effect::Note => '*',
            };
            writeln!(f, "    {marker} {}", reason.text)?;
        }
        Ok(())
    }
}

/// Renders, for the Service `key` (`namespace/name`), whether this node announces it, the
/// routes and peers involved, and every reason, one per line: `+` allows, `-` blocks,
/// `*` is context ([`Explanation`]'s text form, or the [`not_known`] sentence).
pub fn explain(decision: &AnnounceDecision, key: &str) -> String {
    match explanation(decision, key) {
        Some(e) => e.to_string(),
        None => format!("{}\n", not_known(key, &decision.node)),
    }
}

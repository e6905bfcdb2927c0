//! Node selectors with Kubernetes label-selector semantics.

use serde::Serialize;
use std::collections::BTreeMap;

/// One entry of a peer's `node-selectors`: a node matches when every `match-labels` pair and
/// every `match-expressions` requirement holds. An empty selector matches every node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct NodeSelector {
    /// Labels the node must carry with exactly these values.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    /// Further requirements, all of which must hold.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<SelectorRequirement>,
}

/// One `match-expressions` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SelectorRequirement {
    /// The label key.
    pub key: String,
    /// How the label is tested.
    pub operator: SelectorOperator,
    /// The values for `In` and `NotIn`; empty for `Exists` and `DoesNotExist`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// A `match-expressions` operator, spelled as Kubernetes spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum SelectorOperator {
    /// The label is present and its value is one of `values`.
    In,
    /// The label is absent, or its value is none of `values`.
    NotIn,
    /// The label is present.
    Exists,
    /// The label is absent.
    DoesNotExist,
}

impl SelectorOperator {
    /// Parses Kubernetes' spelling (case-sensitive, as Kubernetes is).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "In" => Some(SelectorOperator::In),
            "NotIn" => Some(SelectorOperator::NotIn),
            "Exists" => Some(SelectorOperator::Exists),
            "DoesNotExist" => Some(SelectorOperator::DoesNotExist),
            _ => None,
        }
    }

    /// The name as written in YAML.
    pub fn name(&self) -> &'static str {
        match self {
            SelectorOperator::In => "In",
            SelectorOperator::NotIn => "NotIn",
            SelectorOperator::Exists => "Exists",
            SelectorOperator::DoesNotExist => "DoesNotExist",
        }
    }

    /// True for `In` and `NotIn`, which need values; the others take none.
    pub fn takes_values(&self) -> bool {
        matches!(self, SelectorOperator::In | SelectorOperator::NotIn)
    }
}

impl SelectorRequirement {
    /// True when a node with `labels` satisfies this requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            SelectorOperator::In => value.is_some_and(|v| self.values.contains(v)),
            SelectorOperator::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            SelectorOperator::Exists => value.is_some(),
            SelectorOperator::DoesNotExist => value.is_none(),
        }
    }
}

impl NodeSelector {
    /// True when a node with `labels` matches every label and every expression.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| r.matches(labels))
    }
}

/// A label name part: at most 63 characters, alphanumerics at both ends, `-_.` inside.
fn is_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// A DNS label (RFC 1123), as namespace names are: at most 63 characters, lower-case
/// alphanumerics and `-`, alphanumeric at both ends.
pub fn is_dns_label(label: &str) -> bool {
    let b = label.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.first()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && b.last()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// A DNS subdomain (RFC 1123): at most 253 characters, lower-case dot-separated labels.
fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// True for a label key Kubernetes accepts: `[prefix/]name`.
pub fn is_label_key(key: &str) -> bool {
    match key.split_once('/') {
        Some((prefix, name)) => is_dns_subdomain(prefix) && is_label_name(name),
        None => is_label_name(key),
    }
}

/// True for a label value Kubernetes accepts: empty, or a label name.
pub fn is_label_value(value: &str) -> bool {
    value.is_empty() || is_label_name(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn req(key: &str, operator: SelectorOperator, values: &[&str]) -> SelectorRequirement {
        SelectorRequirement {
            key: key.into(),
            operator,
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    #[test]
    fn operators_follow_kubernetes() {
        use SelectorOperator::*;
        let node = labels(&[("rack", "a"), ("gpu", "")]);
        assert!(req("rack", In, &["a", "b"]).matches(&node));
        assert!(!req("rack", In, &["b"]).matches(&node));
        assert!(!req("zone", In, &["a"]).matches(&node));
        assert!(req("rack", NotIn, &["b"]).matches(&node));
        assert!(!req("rack", NotIn, &["a"]).matches(&node));
        assert!(
            req("zone", NotIn, &["a"]).matches(&node),
            "absent label passes NotIn"
        );
        assert!(req("gpu", Exists, &[]).matches(&node));
        assert!(!req("zone", Exists, &[]).matches(&node));
        assert!(req("zone", DoesNotExist, &[]).matches(&node));
        assert!(!req("gpu", DoesNotExist, &[]).matches(&node));
    }

    #[test]
    fn selector_needs_all_labels_and_expressions() {
        let sel = NodeSelector {
            match_labels: labels(&[("rack", "a")]),
            match_expressions: vec![req("spine", SelectorOperator::Exists, &[])],
        };
        assert!(sel.matches(&labels(&[("rack", "a"), ("spine", "1")])));
        assert!(!sel.matches(&labels(&[("rack", "a")])));
        assert!(!sel.matches(&labels(&[("rack", "b"), ("spine", "1")])));
        assert!(NodeSelector::default().matches(&labels(&[])));
    }

    #[test]
    fn label_syntax() {
        assert!(is_label_key("kubernetes.io/hostname"));
        assert!(is_label_key("rack"));
        assert!(!is_label_key("Bad_Prefix/x"));
        assert!(!is_label_key("-x"));
        assert!(!is_label_key(""));
        assert!(is_label_value(""));
        assert!(is_label_value("node-1.a_b"));
        assert!(!is_label_value("a b"));
        assert!(!is_label_value(&"x".repeat(64)));
    }
}

//! A pool's `service-allocation`: what it reads to, what it refuses (path, line, kind), and what
//! it selects.

mod common;

use common::assert_one_error;
use ferrolb_config::{Config, ConfigErrorKind as K, NodeSelector, ServiceAllocation};
use std::collections::BTreeMap;

const POOL: &str = "address-pools:\n- name: a\n  protocol: bgp\n  addresses: [203.0.113.0/28]\n";

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn allocation(yaml: &str) -> Option<ServiceAllocation> {
    let config = Config::from_yaml(&format!("{POOL}{yaml}")).unwrap();
    config.address_pools[0].service_allocation.clone()
}

#[test]
fn every_field_is_read() {
    let got = allocation(
        "  service-allocation:\n    priority: -5\n    namespaces: [team-a, team-a, b]\n    namespace-selectors:\n    - match-labels: {tenant: a}\n    service-selectors:\n    - match-labels: {app: web}\n    exclusive: true\n",
    );
    assert_eq!(
        got,
        Some(ServiceAllocation {
            priority: Some(-5),
            namespaces: vec!["team-a".into(), "b".into()],
            namespace_selectors: vec![NodeSelector {
                match_labels: labels(&[("tenant", "a")]),
                match_expressions: vec![],
            }],
            service_selectors: vec![NodeSelector {
                match_labels: labels(&[("app", "web")]),
                match_expressions: vec![],
            }],
            exclusive: true,
        })
    );
}

#[test]
fn absent_means_none_and_empty_means_no_rule() {
    assert_eq!(allocation(""), None);
    assert_eq!(
        allocation("  service-allocation: {}\n"),
        Some(ServiceAllocation::default())
    );
}

#[test]
fn round_trips_through_yaml() {
    let text = format!(
        "{POOL}  service-allocation:\n    priority: 10\n    namespaces: [team-a]\n    exclusive: true\n"
    );
    let config = Config::from_yaml(&text).unwrap();
    let yaml = config.to_yaml().unwrap();
    assert!(yaml.contains("service-allocation:\n    priority: 10\n    namespaces:\n    - team-a\n    exclusive: true\n"), "{yaml}");
    assert_eq!(Config::from_yaml(&yaml).unwrap(), config);
}

/// Name, YAML after the pool, path under `service-allocation`, line, expected kind.
type Case = (
    &'static str,
    &'static str,
    &'static str,
    usize,
    fn(&K) -> bool,
);

#[test]
fn refusals_name_path_line_and_rule() {
    let p = "address-pools[0].service-allocation";
    let cases: &[Case] = &[
        (
            "exclusive without namespaces",
            "  service-allocation:\n    service-selectors: [{match-labels: {a: b}}]\n    exclusive: true\n",
            "exclusive",
            7,
            |k| matches!(k, K::ExclusiveWithoutNamespaces),
        ),
        (
            "bad namespace name",
            "  service-allocation:\n    namespaces: [Team_A]\n",
            "namespaces[0]",
            6,
            |k| matches!(k, K::BadNamespaceName(n) if n == "Team_A"),
        ),
        (
            "priority beyond i32",
            "  service-allocation:\n    priority: 2147483648\n",
            "priority",
            6,
            |k| matches!(k, K::OutOfRange { value, .. } if value == "2147483648"),
        ),
        (
            "priority not a number",
            "  service-allocation:\n    priority: high\n",
            "priority",
            6,
            |k| {
                matches!(
                    k,
                    K::WrongType {
                        expected: "an integer",
                        ..
                    }
                )
            },
        ),
        (
            "unknown key",
            "  service-allocation:\n    namespace: [a]\n",
            "namespace",
            6,
            |k| matches!(k, K::UnknownKey { key, .. } if key == "namespace"),
        ),
        (
            "bad selector operator",
            "  service-allocation:\n    namespace-selectors:\n    - match-expressions: [{key: a, operator: Is}]\n",
            "namespace-selectors[0].match-expressions[0].operator",
            7,
            |k| matches!(k, K::UnknownOperator(o) if o == "Is"),
        ),
    ];
    for (name, yaml, path, line, check) in cases {
        assert_one_error(
            name,
            &format!("{POOL}{yaml}"),
            &format!("{p}.{path}"),
            *line,
            *check,
        );
    }
}

#[test]
fn selection_rules() {
    let rules = ServiceAllocation {
        namespaces: vec!["team-a".into()],
        namespace_selectors: vec![NodeSelector {
            match_labels: labels(&[("tenant", "b")]),
            match_expressions: vec![],
        }],
        service_selectors: vec![NodeSelector {
            match_labels: labels(&[("app", "web")]),
            match_expressions: vec![],
        }],
        ..ServiceAllocation::default()
    };
    let none = labels(&[]);
    assert!(rules.selects_namespace("team-a", &none));
    assert!(rules.selects_namespace("x", &labels(&[("tenant", "b")])));
    assert!(!rules.selects_namespace("team-b", &labels(&[("tenant", "a")])));
    assert!(rules.selects_service(&labels(&[("app", "web"), ("x", "y")])));
    assert!(!rules.selects_service(&none));
    assert!(!rules.fences("team-a", &none), "not exclusive");
    let open = ServiceAllocation::default();
    assert!(open.selects_namespace("any", &none));
    assert!(!open.names_namespace("any", &none));
    let fence = ServiceAllocation {
        exclusive: true,
        ..rules
    };
    assert!(fence.fences("team-a", &none));
    assert!(!fence.fences("team-c", &none));
}

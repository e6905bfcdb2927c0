//! `IPAddressPool.spec.serviceAllocation` and the `ferrolb.io/exclusive-namespaces` annotation,
//! translated into the ConfigMap's `service-allocation`.

use ferrolb_config::metallb::{Secrets, parse_documents, parse_object_json, translate};
use ferrolb_config::{NodeSelector, SelectorOperator, SelectorRequirement, ServiceAllocation};
use std::collections::BTreeMap;

fn pool(annotations: &str, spec: &str) -> String {
    format!(
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  namespace: metallb-system\n  name: team-a\n{annotations}spec:\n  addresses: [203.0.113.0/28]\n{spec}"
    )
}

fn translated(text: &str) -> Result<Option<ServiceAllocation>, Vec<String>> {
    let objects = parse_documents(text).map_err(|e| vec![e.to_string()])?;
    match translate(&objects, &Secrets::new()).config {
        Ok(c) => Ok(c.address_pools[0].service_allocation.clone()),
        Err(e) => Err(e.errors().iter().map(ToString::to_string).collect()),
    }
}

const ALLOCATION: &str = "  serviceAllocation:\n    priority: 10\n    namespaces: [team-a]\n    namespaceSelectors:\n    - matchLabels: {tenant: a}\n    serviceSelectors:\n    - matchExpressions: [{key: app, operator: In, values: [web]}]\n";

fn expected(exclusive: bool) -> ServiceAllocation {
    ServiceAllocation {
        priority: Some(10),
        namespaces: vec!["team-a".into()],
        namespace_selectors: vec![NodeSelector {
            match_labels: BTreeMap::from([("tenant".into(), "a".into())]),
            match_expressions: vec![],
        }],
        service_selectors: vec![NodeSelector {
            match_labels: BTreeMap::new(),
            match_expressions: vec![SelectorRequirement {
                key: "app".into(),
                operator: SelectorOperator::In,
                values: vec!["web".into()],
            }],
        }],
        exclusive,
    }
}

#[test]
fn service_allocation_maps_field_by_field() {
    assert_eq!(translated(&pool("", ALLOCATION)), Ok(Some(expected(false))));
    assert_eq!(translated(&pool("", "")), Ok(None));
}

#[test]
fn the_annotation_sets_exclusive() {
    let yes = "  annotations:\n    ferrolb.io/exclusive-namespaces: \"true\"\n";
    let no = "  annotations:\n    ferrolb.io/exclusive-namespaces: \"false\"\n";
    assert_eq!(translated(&pool(yes, ALLOCATION)), Ok(Some(expected(true))));
    assert_eq!(translated(&pool(no, ALLOCATION)), Ok(Some(expected(false))));
}

#[test]
fn annotation_errors_name_the_annotation() {
    let bad = "  annotations:\n    ferrolb.io/exclusive-namespaces: \"yes\"\n";
    assert_eq!(
        translated(&pool(bad, ALLOCATION)),
        Err(vec![
            "IPAddressPool metallb-system/team-a: metadata.annotations.ferrolb.io/exclusive-namespaces (line 7): annotation ferrolb.io/exclusive-namespaces must be \"true\" or \"false\", not \"yes\"".to_string()
        ])
    );
    let yes = "  annotations:\n    ferrolb.io/exclusive-namespaces: \"true\"\n";
    assert_eq!(
        translated(&pool(yes, "")),
        Err(vec![
            "IPAddressPool metallb-system/team-a: metadata.annotations.ferrolb.io/exclusive-namespaces (line 1): exclusive fences in the namespaces the pool selects, so it needs namespaces or namespace-selectors".to_string()
        ])
    );
}

#[test]
fn service_allocation_errors_are_in_camel_case() {
    let text = pool(
        "",
        "  serviceAllocation:\n    priority: x\n    namespaces: [Bad]\n    exclusive: true\n",
    );
    assert_eq!(
        translated(&text),
        Err(vec![
            "IPAddressPool metallb-system/team-a: spec.serviceAllocation.priority (line 9): expected an integer, found \"x\"".to_string(),
            "IPAddressPool metallb-system/team-a: spec.serviceAllocation.namespaces[0] (line 10): invalid namespace name \"Bad\" (expected a DNS label: lower-case letters, digits and '-', at most 63 characters)".to_string(),
            "IPAddressPool metallb-system/team-a: spec.serviceAllocation.exclusive (line 11): unknown key `exclusive` (expected one of: priority, namespaces, namespaceSelectors, serviceSelectors)".to_string(),
        ])
    );
}

#[test]
fn api_json_reads_annotations_too() {
    let json = r#"{"apiVersion":"metallb.io/v1beta1","kind":"IPAddressPool","metadata":{"name":"p","namespace":"metallb-system","annotations":{"ferrolb.io/exclusive-namespaces":"true"}},"spec":{"addresses":["203.0.113.0/28"],"serviceAllocation":{"namespaces":["team-a"]}}}"#;
    let object = parse_object_json(json).unwrap();
    let config = translate(&[object], &Secrets::new()).config.unwrap();
    let got = config.address_pools[0].service_allocation.clone().unwrap();
    assert!(got.exclusive);
    assert_eq!(got.namespaces, vec!["team-a".to_string()]);
}

#[test]
fn convert_round_trips_service_allocation_and_exclusive() {
    let text = "address-pools:\n- name: team-a\n  protocol: bgp\n  addresses: [203.0.113.0/28]\n  service-allocation:\n    priority: 10\n    namespaces: [team-a]\n    namespace-selectors:\n    - match-labels: {tenant: a}\n    service-selectors:\n    - match-expressions: [{key: app, operator: In, values: [web]}]\n    exclusive: true\n";
    let config = ferrolb_config::Config::from_yaml(text).unwrap();
    let converted = ferrolb_config::metallb::convert(&config, "metallb-system");
    assert!(
        converted
            .yaml
            .contains("annotations:\n    ferrolb.io/exclusive-namespaces: 'true'\n"),
        "{}",
        converted.yaml
    );
    assert_eq!(translated(&converted.yaml), Ok(Some(expected(true))));
}

use super::*;
use serde_json::Value;

/// (kind, plural, version) of each CRD, in `definitions()` order.
const EXPECTED: &[(&str, &str, &str)] = &[
    ("IPAddressPool", "ipaddresspools", "v1beta1"),
    ("BGPAdvertisement", "bgpadvertisements", "v1beta1"),
    ("BGPPeer", "bgppeers", "v1beta2"),
    ("Community", "communities", "v1beta1"),
    ("BFDProfile", "bfdprofiles", "v1beta1"),
];

/// The spec fields the configuration reader takes or refuses by name for `kind` (MetalLB's fields: checked
/// against MetalLB's `config/crd/bases` storage versions when written), sorted.
fn reader_fields(kind: &str) -> Vec<String> {
    let mut fields: Vec<String> = ferrolb_config::metallb::known_fields()
        .filter(|(k, _)| *k == kind)
        .flat_map(|(_, f)| f.iter().map(|f| f.to_string()))
        .chain(
            ferrolb_config::metallb::unsupported_fields()
                .filter(|(k, _)| *k == kind)
                .map(|(_, f)| f.to_string()),
        )
        .collect();
    fields.sort();
    fields
}

fn schema_of(crd: &CustomResourceDefinition) -> Value {
    let version = &crd.spec.versions[0];
    serde_json::to_value(
        version
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .expect("a schema"),
    )
    .unwrap()
}

fn keys(v: &Value) -> Vec<String> {
    let mut keys: Vec<String> = v
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort();
    keys
}

#[test]
fn each_crd_has_metallb_names_scope_version_and_exactly_its_spec_fields() {
    let crds = definitions();
    assert_eq!(crds.len(), EXPECTED.len());
    for (crd, (kind, plural, version)) in crds.iter().zip(EXPECTED) {
        assert_eq!(crd.spec.group, GROUP);
        assert_eq!(crd.spec.names.kind, *kind);
        assert_eq!(crd.spec.names.plural, *plural);
        assert_eq!(
            crd.metadata.name.as_deref(),
            Some(&*format!("{plural}.{GROUP}"))
        );
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(crd.spec.versions.len(), 1, "{kind}");
        let v = &crd.spec.versions[0];
        assert_eq!(
            (v.name.as_str(), v.served, v.storage),
            (*version, true, true),
            "{kind}"
        );
        assert!(
            v.subresources.as_ref().is_some_and(|s| s.status.is_some()),
            "{kind} has a status subresource, as MetalLB's"
        );
        let schema = schema_of(crd);
        // The CRD admits exactly the fields the configuration reader takes or refuses by name.
        assert_eq!(
            keys(&schema["properties"]["spec"]["properties"]),
            reader_fields(kind),
            "{kind}"
        );
    }
}

#[test]
fn ipaddresspool_status_has_the_four_counters_and_spec_the_defaults() {
    let schema = schema_of(&IPAddressPool::crd());
    let status = &schema["properties"]["status"];
    assert_eq!(
        keys(&status["properties"]),
        [
            "assignedIPv4",
            "assignedIPv6",
            "availableIPv4",
            "availableIPv6"
        ]
    );
    for field in ["assignedIPv4", "availableIPv6"] {
        assert_eq!(status["properties"][field]["type"], "integer");
    }
    let spec = &schema["properties"]["spec"];
    assert_eq!(spec["required"], serde_json::json!(["addresses"]));
    assert_eq!(spec["properties"]["autoAssign"]["default"], true);
    assert_eq!(spec["properties"]["avoidBuggyIPs"]["default"], false);
    let peer = schema_of(&BGPPeer::crd());
    assert_eq!(
        peer["properties"]["spec"]["required"],
        serde_json::json!(["myASN"])
    );
    assert_eq!(
        peer["properties"]["spec"]["properties"]["peerPort"]["default"],
        179
    );
    assert_eq!(
        peer["properties"]["spec"]["properties"]["dynamicASN"]["enum"],
        serde_json::json!(["internal", "external"])
    );
}

#[test]
fn print_columns_are_metallbs() {
    let columns = |crd: CustomResourceDefinition| -> Vec<(String, String)> {
        crd.spec.versions[0]
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| (c.name.clone(), c.json_path.clone()))
            .collect()
    };
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    assert_eq!(
        columns(IPAddressPool::crd()),
        pairs(&[
            ("Auto Assign", ".spec.autoAssign"),
            ("Avoid Buggy IPs", ".spec.avoidBuggyIPs"),
            ("Addresses", ".spec.addresses"),
        ])
    );
    assert_eq!(
        columns(BGPPeer::crd()),
        pairs(&[
            ("Address", ".spec.peerAddress"),
            ("ASN", ".spec.peerASN"),
            ("BFD Profile", ".spec.bfdProfile"),
            ("Multi Hops", ".spec.ebgpMultiHop"),
        ])
    );
}

#[test]
fn a_metallb_object_reads_into_the_types() {
    let peer: BGPPeer = serde_json::from_value(serde_json::json!({
        "apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer",
        "metadata": {"name": "r1", "namespace": "metallb-system"},
        "spec": {"myASN": 64500, "peerASN": 64501, "peerAddress": "198.51.100.1",
                 "holdTime": "90s", "passwordSecret": {"name": "s"}, "ebgpMultiHop": true,
                 "dynamicASN": "external"}
    }))
    .unwrap();
    assert_eq!(peer.spec.my_asn, 64500);
    assert_eq!(peer.spec.peer_asn, Some(64501));
    assert_eq!(peer.spec.hold_time.as_deref(), Some("90s"));
    assert_eq!(peer.spec.dynamic_asn, Some(DynamicAsn::External));
    assert_eq!(peer.spec.ebgp_multi_hop, Some(true));
    assert_eq!(
        peer.spec.password_secret.and_then(|s| s.name).as_deref(),
        Some("s")
    );
}

#[test]
fn yaml_is_one_document_per_crd() {
    let yaml = definitions_yaml().unwrap();
    assert_eq!(yaml.matches("---\n").count(), 5);
    assert!(
        yaml.starts_with(
            "---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
        )
    );
}

#[test]
fn committed_ferrolb_crds_are_what_the_types_generate() {
    let committed = include_str!("../../manifests/crds.yaml");
    assert!(
        committed == ferrolb_definitions_yaml().unwrap(),
        "manifests/crds.yaml differs from `ferrolb crds --ferrolb`; regenerate it with\n  \
         cargo run -q -- crds --ferrolb > manifests/crds.yaml"
    );
    assert_eq!(committed.matches("---\n").count(), 1);
}

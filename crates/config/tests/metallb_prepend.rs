//! The `ferrolb.io/bgp-as-path-prepend` annotation on a `BGPAdvertisement`, translated into the ConfigMap
//! advertisement's `as-path-prepend` (MetalLB's CRD has no such field), and `ferrolb config convert` writing it
//! back.

use ferrolb_config::metallb::{Secrets, convert, parse_documents, translate};
use ferrolb_config::{AsPathPrepend, Config};

const POOL: &str = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {namespace: metallb-system, name: p}\nspec:\n  addresses: [203.0.113.0/28]\n---\n";

fn advertisement(annotations: &str) -> String {
    format!(
        "{POOL}apiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata:\n  namespace: metallb-system\n  name: ad\n{annotations}spec:\n  ipAddressPools: [p]\n"
    )
}

fn prepend_of(text: &str) -> Result<Option<AsPathPrepend>, Vec<String>> {
    let objects = parse_documents(text).map_err(|e| vec![e.to_string()])?;
    match translate(&objects, &Secrets::new()).config {
        // A plain advertisement is stored as none (the pool's default).
        Ok(c) => Ok(c.address_pools[0]
            .bgp_advertisements
            .first()
            .and_then(|a| a.as_path_prepend)),
        Err(e) => Err(e.errors().iter().map(ToString::to_string).collect()),
    }
}

#[test]
fn the_annotation_is_the_advertisements_prepend() {
    let text = advertisement("  annotations:\n    ferrolb.io/bgp-as-path-prepend: \"65000:3\"\n");
    assert_eq!(
        prepend_of(&text),
        Ok(Some(AsPathPrepend {
            asn: 65000,
            count: 3
        }))
    );
    assert_eq!(prepend_of(&advertisement("")), Ok(None));
}

#[test]
fn a_bad_annotation_names_the_object_and_the_annotation() {
    let text = advertisement("  annotations:\n    ferrolb.io/bgp-as-path-prepend: \"65000:11\"\n");
    assert_eq!(
        prepend_of(&text),
        Err(vec![
            "BGPAdvertisement metallb-system/ad: metadata.annotations.ferrolb.io/bgp-as-path-prepend (line 13): \
             AS_PATH prepend \"65000:11\": the count must be 1 to 10"
                .to_owned()
        ])
    );
}

#[test]
fn convert_writes_the_annotation_and_reports_the_service_allowance_as_lost() {
    let text = "address-pools:\n- name: p\n  protocol: bgp\n  addresses: [203.0.113.0/28]\n  bgp-advertisements:\n  - as-path-prepend: {asn: 65000, count: 3}\n    node-selectors: [{match-labels: {rack: r1}}]\n  - allowed-service-as-path-prepends: [{asn: 65000, max-count: 2}]\n";
    let config = Config::from_yaml(text).unwrap();
    let converted = convert(&config, "metallb-system");
    assert!(
        converted
            .yaml
            .contains("annotations:\n    ferrolb.io/bgp-as-path-prepend: 65000:3\n"),
        "{}",
        converted.yaml
    );
    assert!(
        converted
            .yaml
            .contains("nodeSelectors:\n  - matchLabels:\n      rack: r1\n"),
        "{}",
        converted.yaml
    );
    assert_eq!(
        converted.report,
        [
            "address-pools[0] (pool \"p\").bgp-advertisements[1].allowed-service-as-path-prepends: no MetalLB \
          equivalent (a ferrolb extension); left out"
        ]
    );
    let objects = parse_documents(&converted.yaml).unwrap();
    let back = translate(&objects, &Secrets::new()).config.unwrap();
    let ads = &back.address_pools[0].bgp_advertisements;
    assert_eq!(
        ads[0].as_path_prepend,
        config.address_pools[0].bgp_advertisements[0].as_path_prepend
    );
    assert_eq!(
        ads[0].node_selectors,
        config.address_pools[0].bgp_advertisements[0].node_selectors
    );
}

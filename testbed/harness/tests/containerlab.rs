//! The containerlab topology cannot run here (no Docker), so check what can be checked: it parses, every
//! link names a defined node, and it uses the namespace lab's FRR configuration file.

use std::fs;

use serde_yaml::Value;

fn topology() -> Value {
    let path = ferrolb_testbed::testbed_dir().join("containerlab/ferrolb.clab.yml");
    serde_yaml::from_str(&fs::read_to_string(&path).unwrap()).unwrap()
}

#[test]
fn topology_parses_and_links_name_defined_nodes() {
    let topo = topology();
    assert_eq!(topo["name"].as_str(), Some("ferrolb"));
    let nodes = topo["topology"]["nodes"].as_mapping().unwrap();
    let names: Vec<&str> = nodes.keys().map(|k| k.as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["router", "k8s", "k8s-control-plane", "k8s-worker", "client"]
    );
    let links = topo["topology"]["links"].as_sequence().unwrap();
    assert_eq!(links.len(), 3);
    for link in links {
        let ends = link["endpoints"].as_sequence().unwrap();
        assert_eq!(ends.len(), 2);
        for end in ends {
            let (node, iface) = end.as_str().unwrap().split_once(':').unwrap();
            assert!(names.contains(&node), "link names unknown node {node}");
            assert!(iface.starts_with("eth"), "{iface}");
        }
    }
}

#[test]
fn router_binds_the_namespace_labs_frr_files() {
    let topo = topology();
    let router = &topo["topology"]["nodes"]["router"];
    let binds: Vec<&str> = router["binds"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|b| b.as_str().unwrap())
        .collect();
    assert!(binds.contains(&"../frr/frr.conf:/etc/frr/frr.conf"));
    let dir = ferrolb_testbed::testbed_dir().join("containerlab");
    for bind in binds {
        let host = bind.split(':').next().unwrap();
        assert!(dir.join(host).is_file(), "bound file {host} is missing");
    }
    let daemons = fs::read_to_string(dir.join("daemons")).unwrap();
    assert!(daemons.lines().any(|l| l == "bgpd=yes"));
}

#[test]
fn kind_cluster_uses_only_lab_ranges() {
    let path = ferrolb_testbed::testbed_dir().join("containerlab/kind-cluster.yaml");
    let kind: Value = serde_yaml::from_str(&fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(kind["kind"].as_str(), Some("Cluster"));
    assert_eq!(
        kind["networking"]["podSubnet"].as_str(),
        Some("198.19.0.0/17")
    );
    assert_eq!(
        kind["networking"]["serviceSubnet"].as_str(),
        Some("198.19.128.0/17")
    );
    assert_eq!(kind["nodes"].as_sequence().unwrap().len(), 2);
}

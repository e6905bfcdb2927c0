//! Per-node AS numbers (`my-asn-from-node-label`) against the lab's real FRR router over eBGP: each node
//! peers in the AS its Node label names, the router keeps one path per node (multipath across ASes) with that
//! AS as the path, a node without the label starts no session (only it, and it says why), and labelling it
//! brings its session and path.
//!
//! Needs root and the lab (`testbed/lab deps`); fails loudly without them.

mod speaker_common;

use ferrolb_testbed::Lab;
use ferrolb_testbed::serde_json::json;
use speaker_common::*;
use std::collections::BTreeSet;
use std::time::Duration;

const NS: &str = "fabric";
const LABEL: &str = "example.com/asn";

/// The ConfigMap: one peer, the router over eBGP, our AS from each node's label; one pool.
fn config(lab: &Lab) -> String {
    let router = lab.env("ROUTER_LAN4").unwrap_or("198.18.0.1");
    configmap_of(&format!(
        "    peers:
    - peer-address: {router}
      peer-asn: 65559
      my-asn-from-node-label: {LABEL}
      password: \"foo\"
    address-pools:
    - name: fabric
      protocol: bgp
      addresses:
      - 203.0.113.40-203.0.113.47
"
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_node_peers_in_the_as_its_label_names() {
    let lab = Lab::shared().expect("lab up (run testbed/lab deps first)");
    let client = lab.kube_client().await.unwrap();
    lab.kubectl(&["create", "namespace", CONFIG_NS]).unwrap();
    lab.kubectl(&["create", "namespace", NS]).unwrap();
    // The router takes the node LAN's speakers over eBGP now, in whatever AS each comes.
    router_config(lab, &["neighbor NODES remote-as external"]);
    for (node, asn) in [("node-1", "64601"), ("node-2", "64602")] {
        lab.kubectl(&["label", "node", node, &format!("{LABEL}={asn}")])
            .unwrap();
    }
    kubectl_apply(lab, &config(lab));

    let log = lab.dir().join("logs").join("asn-controller.log");
    let _controller = Controller::spawn(
        &["--config-namespace", CONFIG_NS],
        free_port(),
        "asn-controller",
        &lab.kubeconfig_path(),
        &log,
    );
    let speakers: Vec<_> = (1..=3)
        .map(|i| {
            let state = lab.dir().join(format!("asn-state-{i}"));
            spawn_speaker(lab, i, &format!("asn-{i}"), &lab.kubeconfig_path(), &state)
        })
        .collect();

    // A Service with a ready endpoint on every node.
    let vip = manual_service(&client, NS).await;
    let endpoints: Vec<_> = (1..=3)
        .map(|i| {
            json!({"addresses": [format!("198.19.{i}.201")], "nodeName": format!("node-{i}"),
                        "conditions": {"ready": true}})
        })
        .collect();
    apply(
        &client,
        json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "manual-1", "namespace": NS,
                         "labels": {"kubernetes.io/service-name": "manual"}},
            "addressType": "IPv4",
            "ports": [{"port": 80, "protocol": "TCP"}],
            "endpoints": endpoints
        }),
    )
    .await;
    let prefix = format!("{vip}/32");

    // Nodes 1 and 2 in their own ASes; node 3 has no label, so no session and no path.
    let two: BTreeSet<String> = [node_addr(1), node_addr(2)].into();
    wait_paths(lab, &prefix, &two, "paths from node-1 and node-2");
    assert_eq!(
        paths_by_peer(lab, &prefix),
        vec![
            (node_addr(1), "64601".to_owned()),
            (node_addr(2), "64602".to_owned())
        ]
    );
    let neighbors = neighbors(lab);
    assert_eq!(neighbors[&node_addr(1)]["remoteAs"], 64601);
    assert_eq!(neighbors[&node_addr(2)]["remoteAs"], 64602);
    assert!(
        !neighbors.contains_key(&node_addr(3)),
        "node-3 has no label but peered: {:?}",
        neighbors.keys()
    );
    let why = "my-asn-from-node-label: the node has no label \\\"example.com/asn\\\"";
    lab.wait_until(Duration::from_secs(10), "node-3 saying why", || {
        Ok(speakers[2]
            .log()
            .contains("no BGP session with this peer on this node"))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", speakers[2].log()));
    let metrics = speaker_metrics(lab, 3);
    let router = lab.env("ROUTER_LAN4").unwrap_or("198.18.0.1");
    assert!(
        metrics.contains(&format!("ferrolb_bgp_session_up{{peer=\"{router}\"}} 0")),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "ferrolb_bgp_session_last_error_info{{peer=\"{router}\",error=\"{why}\"}} 1"
        )),
        "{metrics}"
    );

    // Labelled, node 3 peers in its AS and its path joins the others.
    lab.kubectl(&["label", "node", "node-3", &format!("{LABEL}=64603")])
        .unwrap();
    let three: BTreeSet<String> = (1..=3).map(node_addr).collect();
    wait_paths(lab, &prefix, &three, "paths from all three nodes");
    assert_eq!(
        paths_by_peer(lab, &prefix),
        vec![
            (node_addr(1), "64601".to_owned()),
            (node_addr(2), "64602".to_owned()),
            (node_addr(3), "64603".to_owned())
        ]
    );
    for p in speakers {
        stop_speaker(p);
    }
}

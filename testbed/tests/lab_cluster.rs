//! The lab's control plane, router and data plane, checked on one lab shared by this test binary.
//! Needs root, FRR, GoBGP and the control plane (`testbed/lab deps`); fails loudly without them.

use std::collections::BTreeSet;
use std::time::Duration;

use ferrolb_testbed::k8s_openapi::api::apps::v1::Deployment;
use ferrolb_testbed::k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use ferrolb_testbed::k8s_openapi::api::discovery::v1::EndpointSlice;
use ferrolb_testbed::kube::api::{ListParams, PostParams};
use ferrolb_testbed::kube::{Api, Client};
use ferrolb_testbed::serde_json::{self, json};
use ferrolb_testbed::{Lab, LabError};

fn lab() -> &'static Lab {
    Lab::shared().expect("shared lab up (run testbed/lab deps first)")
}

fn route_gateways(lab: &Lab, prefix: &str) -> BTreeSet<String> {
    let out = lab
        .exec_in_router(&["ip", "-j", "route", "show", prefix])
        .unwrap();
    let routes: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut gws = BTreeSet::new();
    for r in routes.as_array().unwrap() {
        assert_eq!(r["protocol"], "bgp", "{r}");
        if let Some(gw) = r["gateway"].as_str() {
            gws.insert(gw.to_owned());
        }
        for nh in r["nexthops"].as_array().into_iter().flatten() {
            gws.insert(nh["gateway"].as_str().unwrap().to_owned());
        }
    }
    gws
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn control_plane_answers_and_kwok_nodes_are_ready() {
    let lab = lab();
    assert_eq!(
        lab.kubectl(&["get", "--raw", "/readyz"]).unwrap().trim(),
        "ok"
    );
    let client: Client = lab.kube_client().await.unwrap();
    let nodes = Api::<Node>::all(client)
        .list(&ListParams::default())
        .await
        .unwrap();
    let mut ready = BTreeSet::new();
    for n in &nodes.items {
        let status = n.status.as_ref().unwrap();
        let is_ready = status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        if is_ready {
            ready.insert(n.metadata.name.clone().unwrap());
        }
        let name = n.metadata.name.as_deref().unwrap();
        let i: usize = name.trim_start_matches("node-").parse().unwrap();
        let internal: Vec<&str> = status
            .addresses
            .iter()
            .flatten()
            .filter(|a| a.type_ == "InternalIP")
            .map(|a| a.address.as_str())
            .collect();
        assert_eq!(internal, [lab.node_ipv4(i).unwrap()], "{name}");
    }
    assert_eq!(ready, set(&["node-1", "node-2", "node-3"]));
    // A ServiceAccount token can be minted for components.
    let token = lab.token("default", "default").unwrap();
    assert_eq!(token.split('.').count(), 3, "not a JWT: {token}");
}

#[tokio::test]
async fn deployment_of_three_replicas_yields_three_ready_endpoints_on_the_right_nodes() {
    let lab = lab();
    let client = lab.kube_client().await.unwrap();
    let ns = "lab-deploy";
    let pp = PostParams::default();
    Api::<Namespace>::all(client.clone())
        .create(
            &pp,
            &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
        )
        .await
        .unwrap();
    let labels = json!({"app": "whoami"});
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "whoami"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    // one replica per node, so "the right nodes" is exactly node-1..3
                    "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                        {"labelSelector": {"matchLabels": labels}, "topologyKey": "kubernetes.io/hostname"}
                    ]}},
                    "containers": [{"name": "whoami", "image": "traefik/whoami",
                                    "ports": [{"containerPort": 80}]}]
                }
            }
        }
    }))
    .unwrap();
    Api::<Deployment>::namespaced(client.clone(), ns)
        .create(&pp, &deployment)
        .await
        .unwrap();
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "whoami"},
        "spec": {"selector": labels, "ports": [{"port": 80}]}
    }))
    .unwrap();
    Api::<Service>::namespaced(client.clone(), ns)
        .create(&pp, &service)
        .await
        .unwrap();

    let slices = Api::<EndpointSlice>::namespaced(client.clone(), ns);
    let by_service = ListParams::default().labels("kubernetes.io/service-name=whoami");
    let mut endpoints = Vec::new();
    for _ in 0..300 {
        endpoints = slices
            .list(&by_service)
            .await
            .unwrap()
            .items
            .into_iter()
            .flat_map(|s| s.endpoints)
            .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
            .collect();
        if endpoints.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(endpoints.len(), 3, "ready endpoints: {endpoints:?}");

    let ep_nodes: BTreeSet<String> = endpoints
        .iter()
        .map(|e| e.node_name.clone().unwrap())
        .collect();
    assert_eq!(ep_nodes, set(&["node-1", "node-2", "node-3"]));
    // Each endpoint is the pod on that node, with a pod IP from that node's pod CIDR.
    let pods = Api::<Pod>::namespaced(client, ns)
        .list(&ListParams::default().labels("app=whoami"))
        .await
        .unwrap();
    for e in &endpoints {
        let node = e.node_name.as_deref().unwrap();
        let pod = pods
            .items
            .iter()
            .find(|p| p.spec.as_ref().unwrap().node_name.as_deref() == Some(node))
            .unwrap();
        let pod_ip = pod.status.as_ref().unwrap().pod_ip.clone().unwrap();
        assert_eq!(e.addresses, std::slice::from_ref(&pod_ip));
        let i = node.trim_start_matches("node-");
        assert!(
            pod_ip.starts_with(&format!("198.19.{i}.")),
            "{node}: {pod_ip}"
        );
        assert_eq!(
            e.target_ref.as_ref().unwrap().name,
            pod.metadata.name,
            "{node}"
        );
    }
}

#[test]
fn frr_establishes_a_session_with_gobgp_in_a_node_and_installs_its_route() {
    let lab = lab();
    let speaker = lab.start_gobgp(3).unwrap();
    lab.wait_established("198.18.0.13", Duration::from_secs(60))
        .map_err(|e: LabError| format!("{e}\ngobgpd log:\n{}", log_of(lab, "gobgpd-3")))
        .unwrap();
    speaker.announce("203.0.113.13/32").unwrap();
    lab.wait_until(Duration::from_secs(20), "203.0.113.13 in the FIB", || {
        Ok(route_gateways(lab, "203.0.113.13") == set(&["198.18.0.13"]))
    })
    .unwrap();
    let summary = lab.vtysh("show bgp summary json").unwrap();
    let peer = &summary["ipv4Unicast"]["peers"]["198.18.0.13"];
    assert_eq!(peer["state"], "Established");
    assert_eq!(peer["pfxRcd"], 1);
    assert_eq!(summary["ipv4Unicast"]["as"], 65559);
}

#[test]
fn client_curl_reaches_only_announcing_responders_through_router_ecmp() {
    let lab = lab();
    let vip = "203.0.113.12";
    let mut speakers = Vec::new();
    for node in [1, 2] {
        lab.exec_in_node(
            node,
            &["ip", "addr", "add", &format!("{vip}/32"), "dev", "flb-vip"],
        )
        .unwrap();
        let s = lab.start_gobgp(node).unwrap();
        lab.wait_established(s.address(), Duration::from_secs(60))
            .unwrap();
        s.announce(&format!("{vip}/32")).unwrap();
        speakers.push(s);
    }
    lab.wait_until(Duration::from_secs(20), "two ECMP next hops", || {
        Ok(route_gateways(lab, vip) == set(&["198.18.0.11", "198.18.0.12"]))
    })
    .unwrap();

    let url = format!("http://{vip}/");
    let mut seen = BTreeSet::new();
    for port in 40000..40020 {
        let out = lab
            .exec_in_client(&[
                "curl",
                "-sS",
                "--max-time",
                "5",
                "--local-port",
                &port.to_string(),
                &url,
            ])
            .unwrap();
        seen.insert(String::from_utf8(out.stdout).unwrap().trim().to_owned());
    }
    assert!(!seen.is_empty());
    assert!(
        seen.is_subset(&set(&["node-1", "node-2"])),
        "answers from a node that does not announce: {seen:?}"
    );
    // The responder answers on VIPs only: a node's own address is refused.
    let out = lab
        .exec_in_client(&[
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "http://198.18.0.13/",
        ])
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "404");
}

fn log_of(lab: &Lab, name: &str) -> String {
    std::fs::read_to_string(lab.dir().join("logs").join(format!("{name}.log"))).unwrap_or_default()
}

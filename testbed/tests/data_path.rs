//! The Service data path end to end (issue 19), in one lab started with `--data-path`: real FRR, the real API
//! server, real kube-proxy in every node namespace, a network namespace with an HTTP server for every Running
//! Pod (`testbed/podagent.py`, answering `POD NODE PEER`), and ferrolb's controller and speakers. A request from
//! the client goes router (layer-4 ECMP) → node → kube-proxy → Pod, so a route to a node without a serving Pod
//! shows up as a failed request, as in a real cluster.
//!
//! - a rolling update of an `externalTrafficPolicy: Local` Deployment (3 replicas, `maxUnavailable: 1`) under
//!   bounded load, and the same Pods behind an ETP Cluster Service: 0 failed requests, every node served;
//! - Pods on one node only: with ETP Local only that node announces and serves; with ETP Cluster every node
//!   announces and forwards to that node;
//! - a speaker restart with graceful restart under load: 0 failed requests, the router keeps the restarting
//!   node's path as stale with the same next hops, every node served before and after;
//! - a speaker restart while a Pod on its node is deleted: the restarted speaker never announces it again, and once
//!   its End-of-RIB is in, the router drops that node's stale path (within 5 s, the time bgpd takes to process it).
//!
//! The Pods carry `ferrolb.io/lab-ready: agent` (Ready once their server listens, as after a readiness probe)
//! and `pod-delete.stage.kwok.x-k8s.io/delay` (a deleted Pod serves that long, as in a preStop sleep): see
//! testbed/kwok/pod-stages.yaml.

mod speaker_common;

use ferrolb_testbed::kube::Client;
use ferrolb_testbed::serde_json::{Value, json};
use ferrolb_testbed::{Lab, LabOptions};
use speaker_common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const NS: &str = "datapath";
/// Requests/s of one load client (two run at once at most: 160 requests/s in all, within the 200 bound).
const RATE: u32 = 80;

/// The lab: 3 nodes with the Service data path.
fn lab() -> &'static Lab {
    Lab::shared_with(LabOptions {
        data_path: true,
        ..LabOptions::default()
    })
    .expect("lab up --data-path (run testbed/lab deps first)")
}

/// Annotations of every Pod of this test (see the module comment).
fn pod_annotations(delete_delay: &str) -> Value {
    json!({"ferrolb.io/lab-ready": "agent", "pod-delete.stage.kwok.x-k8s.io/delay": delete_delay})
}

/// Deployment `name`: `replicas` Pods labelled `app: name`, at most one per node, or all on `only_node`;
/// rolling update with `maxUnavailable: 1` and no surge (a surge Pod would have no node to go to).
fn deployment(name: &str, replicas: u32, only_node: Option<&str>, version: u32) -> Value {
    let mut pod = json!({
        "containers": [{"name": "web", "image": "web", "ports": [{"containerPort": 80}],
                        "env": [{"name": "VERSION", "value": version.to_string()}]}]
    });
    match only_node {
        Some(node) => pod["nodeSelector"] = json!({"kubernetes.io/hostname": node}),
        None => {
            pod["affinity"] = json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": name}}, "topologyKey": "kubernetes.io/hostname"}
            ]}})
        }
    }
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
            "template": {
                "metadata": {"labels": {"app": name}, "annotations": pod_annotations("4s")},
                "spec": pod
            }
        }
    })
}

/// LoadBalancer Service `name` selecting `app: app` on port 80, with `policy` (`Local` or `Cluster`).
fn service(name: &str, app: &str, policy: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"type": "LoadBalancer", "externalTrafficPolicy": policy,
                 "selector": {"app": app}, "ports": [{"port": 80}]}
    })
}

fn all_nodes() -> BTreeSet<String> {
    set(&[&node_addr(1), &node_addr(2), &node_addr(3)])
}

fn node_names(names: &[&str]) -> BTreeSet<String> {
    set(names)
}

/// The nodes that received the requests of an ETP Cluster Service: a Pod sees the receiving node's LAN address
/// (kube-proxy masquerades), or the node-side gateway 169.254.1.1 when the Pod is on the receiving node itself.
fn receiving_nodes(result: &LoadResult) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    // 169.254.1.1: the Pod's own node received the request (its replies name it).
    for (peer, n) in result.peers.iter().filter(|(p, _)| *p != "169.254.1.1") {
        let i = (1..=3)
            .find(|&i| node_addr(i) == *peer)
            .unwrap_or_else(|| panic!("a Pod saw peer {peer}: not a node address"));
        *out.entry(format!("node-{i}")).or_insert(0) += n;
    }
    out
}

/// Waits until Deployment `name` has rolled out (every replica updated and available).
fn rollout(lab: &Lab, name: &str) {
    lab.kubectl(&[
        "rollout",
        "status",
        &format!("deployment/{name}"),
        "-n",
        NS,
        "--timeout=120s",
    ])
    .unwrap_or_else(|e| panic!("rollout of {name}: {e}"));
}

/// Load on `vip` for `secs` seconds: what the client saw.
fn load_for(lab: &Lab, vip: &str, secs: u64, tag: &str) -> LoadResult {
    let stop = lab.dir().join(format!("load-stop-{tag}"));
    let load = Load::start(lab, vip, RATE, &stop);
    std::thread::sleep(Duration::from_secs(secs));
    load.finish(&stop)
}

/// Checks that every failed request of `result` was a connection reset after the connection was established,
/// within 2 s of a change of the VIP's next hops in the router (`changes`, from a [`FibWatch`]): an in-flight
/// connection whose later packets the router's ECMP hash sent to another node once the set of next hops changed
/// (that node has no state for it and resets it). Any other failure (a refused or unanswered connection: traffic
/// to a node that cannot serve) fails the test. Returns the number of such resets.
fn rehash_resets(result: &LoadResult, changes: &[f64], what: &str) -> u64 {
    assert_eq!(
        result.failures.len() as u64,
        result.failed,
        "{what}: more failures than recorded: {result}"
    );
    for f in &result.failures {
        let near_change = changes.iter().any(|c| f.at >= c - 0.5 && f.at <= c + 2.0);
        assert!(
            f.connected && f.error == "Connection reset by peer" && near_change,
            "{what}: a failure that no next-hop change explains: {f:?} (next-hop changes at {changes:?}); {result}"
        );
    }
    result.failed
}

fn assert_every_node(result: &LoadResult, want: &BTreeSet<String>, what: &str) {
    let served: BTreeSet<String> = result
        .by_node()
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(node, _)| node)
        .collect();
    assert_eq!(&served, want, "{what}: nodes that served: {result}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_data_path_through_kube_proxy() {
    let lab = lab();
    let client = lab.kube_client().await.unwrap();
    println!(
        "lab {}: kube-proxy in {} mode",
        lab.name(),
        lab.env("PROXY_MODE").unwrap_or("?")
    );
    lab.kubectl(&["create", "namespace", CONFIG_NS]).unwrap();
    lab.kubectl(&["create", "namespace", NS]).unwrap();
    kubectl_apply(lab, &configmap(lab, "", ""));
    let mut ferrolb = Ferrolb::start(lab, Identities::admin(lab), "dp");

    apply(&client, deployment("web", 3, None, 1)).await;
    apply(&client, service("web-local", "web", "Local")).await;
    apply(&client, service("web-cluster", "web", "Cluster")).await;
    rollout(lab, "web");
    let local = ingress_ip(&client, NS, "web-local").await;
    let cluster = ingress_ip(&client, NS, "web-cluster").await;
    wait_paths(lab, &local, &all_nodes(), "web-local from the 3 nodes");
    wait_paths(lab, &cluster, &all_nodes(), "web-cluster from the 3 nodes");

    rolling_update(lab, &client, &local, &cluster).await;
    one_node_only(lab, &client).await;
    graceful_restart_under_load(lab, &mut ferrolb, &local);
    restart_while_a_pod_goes(lab, &client, &mut ferrolb).await;
    ferrolb.stop();
}

/// A rolling update of `web` (ETP Local on `local`, ETP Cluster on `cluster`) under two load clients of
/// 80 requests/s each for 60 s: 0 failed requests on both, and every node served on both.
async fn rolling_update(lab: &Lab, client: &Client, local: &str, cluster: &str) {
    let (stop_l, stop_c) = (lab.dir().join("stop-local"), lab.dir().join("stop-cluster"));
    let load_l = Load::start(lab, local, RATE, &stop_l);
    let load_c = Load::start(lab, cluster, RATE, &stop_c);
    let watch_l = FibWatch::start(lab.router_netns(), local.to_owned());
    let watch_c = FibWatch::start(lab.router_netns(), cluster.to_owned());
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    apply(client, deployment("web", 3, None, 2)).await;
    rollout(lab, "web");
    let rolled = started.elapsed();
    std::thread::sleep(Duration::from_secs(60).saturating_sub(started.elapsed()));
    let l = load_l.finish(&stop_l);
    let c = load_c.finish(&stop_c);
    let (changes_l, changes_c) = (watch_l.changes(), watch_c.changes());
    let ((_, missing_l), (_, missing_c)) = (watch_l.finish(), watch_c.finish());
    println!(
        "rolling update (rolled out in {:.1} s) under load for {:.1} s:",
        rolled.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    println!(
        "  ETP Local   {local}: {l}; answers by node {:?}",
        l.by_node()
    );
    println!(
        "  ETP Cluster {cluster}: {c}; answers by Pod's node {:?}, by receiving node (other than the Pod's) {:?}",
        c.by_node(),
        receiving_nodes(&c)
    );
    let resets_l = rehash_resets(&l, &changes_l, "ETP Local");
    let resets_c = rehash_resets(&c, &changes_c, "ETP Cluster");
    println!(
        "  next-hop changes: ETP Local {}, ETP Cluster {}; in-flight connections reset by the ECMP rehash at those changes: ETP Local {resets_l}, ETP Cluster {resets_c}",
        changes_l.len(),
        changes_c.len()
    );
    // Requests answered only after a resent SYN: how many started within 1.5 s after a next-hop change (a node
    // announced before its kube-proxy forwards to the new Pod drops SYNs until kube-proxy's next sync).
    for (what, r, changes) in [
        ("ETP Local", &l, &changes_l),
        ("ETP Cluster", &c, &changes_c),
    ] {
        let after_change = r
            .slow_at
            .iter()
            .filter(|t| changes.iter().any(|c| **t >= c - 0.1 && **t <= c + 1.5))
            .count();
        println!(
            "  {what}: {} requests answered after a resent SYN, {after_change} of them started within 1.5 s after a next-hop change",
            r.slow
        );
    }
    assert_eq!(
        (missing_l, missing_c),
        (0, 0),
        "a VIP left the router's FIB"
    );
    assert!(l.rate + c.rate <= 200.0);
    let names = node_names(&["node-1", "node-2", "node-3"]);
    assert_every_node(&l, &names, "ETP Local");
    assert_every_node(&c, &names, "ETP Cluster");
    wait_paths(
        lab,
        local,
        &all_nodes(),
        "web-local from the 3 nodes after the roll",
    );
}

/// Pods of `solo` only on node-2: with ETP Local and ETP Cluster alike (ferrolb's default `announce-from:
/// nodes-with-endpoints`), node-2 alone announces, and every request reaches node-2 only: the Pods saw the
/// client's address (ETP Local) or node-2's own gateway (ETP Cluster, masqueraded on node-2), never another
/// node's address.
async fn one_node_only(lab: &Lab, client: &Client) {
    apply(client, deployment("solo", 2, Some("node-2"), 1)).await;
    apply(client, service("solo-local", "solo", "Local")).await;
    apply(client, service("solo-cluster", "solo", "Cluster")).await;
    rollout(lab, "solo");
    let local = ingress_ip(client, NS, "solo-local").await;
    let cluster = ingress_ip(client, NS, "solo-cluster").await;
    let node2 = set(&[&node_addr(2)]);
    wait_paths(lab, &local, &node2, "solo-local from node-2 only");
    wait_paths(lab, &cluster, &node2, "solo-cluster from node-2 only");
    let l = load_for(lab, &local, 5, "solo-local");
    let c = load_for(lab, &cluster, 5, "solo-cluster");
    println!(
        "Pods on node-2 only, ETP Local {local}: {l}; answers by node {:?}; router paths from {:?}",
        l.by_node(),
        path_peers(lab, &local)
    );
    println!(
        "Pods on node-2 only, ETP Cluster {cluster}: {c}; answers by node {:?}; router paths from {:?}; receiving nodes other than node-2 {:?}",
        c.by_node(),
        path_peers(lab, &cluster),
        receiving_nodes(&c)
    );
    assert_eq!(
        path_peers(lab, &local),
        node2,
        "ETP Local announced by other nodes"
    );
    assert_eq!(
        path_peers(lab, &cluster),
        node2,
        "ETP Cluster announced by other nodes"
    );
    assert_eq!(
        (l.failed, c.failed),
        (0, 0),
        "{:?} {:?}",
        l.errors,
        c.errors
    );
    assert_every_node(&l, &node_names(&["node-2"]), "solo ETP Local");
    assert_every_node(
        &c,
        &node_names(&["node-2"]),
        "solo ETP Cluster (the Pods' node)",
    );
    assert_eq!(
        receiving_nodes(&c),
        BTreeMap::new(),
        "ETP Cluster: other nodes forwarded requests to node-2"
    );
    assert_eq!(
        l.peers.keys().map(String::as_str).collect::<Vec<_>>(),
        vec![lab.env("CLIENT4").expect("CLIENT4 in the lab env")],
        "ETP Local: the Pods saw the client's address"
    );
    for name in ["solo-local", "solo-cluster"] {
        delete_service(
            lab,
            client,
            NS,
            name,
            if name == "solo-local" {
                &local
            } else {
                &cluster
            },
        )
        .await;
    }
    lab.kubectl(&["delete", "deployment", "solo", "-n", NS])
        .unwrap();
}

/// The router's BGP path for `prefix` from `peer`: whether it is marked stale.
fn stale_from(lab: &Lab, prefix: &str, peer: &str) -> Option<bool> {
    bgp_paths(lab, prefix)
        .iter()
        .find(|p| p["peer"]["peerId"] == peer)
        .map(|p| p["stale"].as_bool() == Some(true))
}

/// Node 1's speaker stopped (SIGTERM: graceful restart) and started again under load on `vip`: 0 failed
/// requests; while it is down, the router holds its path as stale and the FIB keeps the same 3 next hops;
/// every node served before and after.
fn graceful_restart_under_load(lab: &Lab, ferrolb: &mut Ferrolb, vip: &str) {
    let names = node_names(&["node-1", "node-2", "node-3"]);
    let before = load_for(lab, vip, 4, "before-restart");
    assert_eq!(before.failed, 0, "{before}");
    assert_every_node(&before, &names, "before the restart");
    let fib_before = fib(lab, vip);
    assert_eq!(fib_before, all_nodes());

    let stop = lab.dir().join("load-stop-restart");
    let load = Load::start(lab, vip, RATE, &stop);
    let watch = FibWatch::start(lab.router_netns(), vip.to_owned());
    std::thread::sleep(Duration::from_secs(2));
    let node1 = node_addr(1);
    stop_speaker(ferrolb.speakers[0].take().expect("speaker 1 runs"));
    // While it is down: the path from node-1 is stale, and the FIB has the same next hops.
    let mut stale_samples = 0;
    let down = Instant::now();
    while down.elapsed() < Duration::from_secs(3) {
        assert_eq!(
            stale_from(lab, vip, &node1),
            Some(true),
            "node-1's path while its speaker is down (paths {:?})",
            bgp_paths(lab, vip)
        );
        assert_eq!(
            fib(lab, vip),
            fib_before,
            "FIB next hops while node-1's speaker is down"
        );
        stale_samples += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    let route = lab
        .exec_in_router(&["ip", "-j", "route", "show", vip])
        .unwrap();
    println!(
        "speaker 1 down: {stale_samples} samples, each with node-1's path stale and FIB next hops {fib_before:?}; ip -j route: {}",
        String::from_utf8_lossy(&route.stdout).trim()
    );
    ferrolb.speakers[0] = Some(ferrolb.start_speaker(lab, 1));
    lab.wait_established(&node1, Duration::from_secs(30))
        .unwrap();
    lab.wait_until(Duration::from_secs(30), "node-1's path fresh again", || {
        Ok(stale_from(lab, vip, &node1) == Some(false))
    })
    .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let fewest = watch.fewest_next_hops();
    let (samples, missing) = watch.finish();
    let during = load.finish(&stop);
    println!(
        "  router FIB sampled {samples} times during the restart: missing {missing} times, fewest next hops {fewest}"
    );
    let after = load_for(lab, vip, 4, "after-restart");
    println!(
        "graceful restart of speaker 1: before {before}, by node {:?}",
        before.by_node()
    );
    println!("  during {during}, by node {:?}", during.by_node());
    println!("  after {after}, by node {:?}", after.by_node());
    assert_eq!(
        during.failed, 0,
        "failed during the restart: {:?}",
        during.errors
    );
    assert_eq!(
        (missing, fewest),
        (0, 3),
        "the FIB lost a next hop during the restart"
    );
    assert_eq!(after.failed, 0, "{after}");
    assert_every_node(&after, &names, "after the restart");
    assert_eq!(fib(lab, vip), all_nodes());
}

/// Three bare Pods of `pinned`, one per node, behind an ETP Local Service. Node 3's speaker stops (graceful
/// restart: its path stays, stale), node 3's Pod is deleted meanwhile, the speaker starts again: it never
/// announces the path again, and once the router has its End-of-RIB, node 3's stale path goes (the other two stay).
async fn restart_while_a_pod_goes(lab: &Lab, client: &Client, ferrolb: &mut Ferrolb) {
    for i in 1..=3 {
        kubectl_apply(
            lab,
            &json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": format!("pinned-{i}"), "namespace": NS, "labels": {"app": "pinned"},
                             "annotations": pod_annotations("0s")},
                "spec": {"nodeName": format!("node-{i}"),
                         "containers": [{"name": "web", "image": "web", "ports": [{"containerPort": 80}]}]}
            })
            .to_string(),
        );
    }
    apply(client, service("pinned", "pinned", "Local")).await;
    let vip = ingress_ip(client, NS, "pinned").await;
    wait_paths(lab, &vip, &all_nodes(), "pinned from the 3 nodes");
    let node3 = node_addr(3);
    stop_speaker(ferrolb.speakers[2].take().expect("speaker 3 runs"));
    assert_eq!(
        stale_from(lab, &vip, &node3),
        Some(true),
        "{:?}",
        bgp_paths(lab, &vip)
    );
    lab.kubectl(&["delete", "pod", "pinned-3", "-n", NS, "--wait=true"])
        .unwrap();
    // The Pod is gone once the EndpointSlice controller has dropped it too (a speaker starting before that
    // would rightly announce the endpoint the API server still lists).
    lab.wait_until(
        Duration::from_secs(30),
        "pinned's EndpointSlice without node-3",
        || {
            let nodes = lab.kubectl(&[
                "get",
                "endpointslices",
                "-n",
                NS,
                "-l",
                "kubernetes.io/service-name=pinned",
                "-o",
                "jsonpath={.items[*].endpoints[*].nodeName}",
            ])?;
            Ok(!nodes.is_empty() && !nodes.split_whitespace().any(|n| n == "node-3"))
        },
    )
    .unwrap();
    assert_eq!(
        stale_from(lab, &vip, &node3),
        Some(true),
        "node-3's stale path while its speaker is down"
    );
    let restarted = Instant::now();
    ferrolb.speakers[2] = Some(ferrolb.start_speaker(lab, 3));
    // The moment the router has node-3's End-of-RIB on the new session.
    let mut eor_at = None;
    lab.wait_until(Duration::from_secs(30), "node-3's End-of-RIB", || {
        let n = lab.vtysh(&format!("show bgp neighbors {node3} json"))?;
        let n = &n[&node3];
        let new_session = n["bgpState"] == "Established"
            && n["bgpTimerUpMsec"]
                .as_u64()
                .is_some_and(|up| u128::from(up) <= restarted.elapsed().as_millis());
        let eor = n["gracefulRestartInfo"]["endOfRibRecv"]["ipv4Unicast"] == true;
        if new_session && eor && eor_at.is_none() {
            eor_at = Some(restarted.elapsed());
        }
        Ok(eor_at.is_some())
    })
    .unwrap();
    // bgpd marks the stale paths at End-of-RIB and removes them when it next processes the prefix: until then the
    // only node-3 path allowed is the old, stale one (the restarted speaker must not announce the Pod it lost).
    let eor_seen = Instant::now();
    lab.wait_until(
        Duration::from_secs(5),
        "node-3's stale path removed after its End-of-RIB",
        || {
            let fresh = stale_from(lab, &vip, &node3) == Some(false);
            assert!(
                !fresh,
                "node-3 announced pinned again after its restart: {:?}",
                bgp_paths(lab, &vip)
            );
            Ok(path_peers(lab, &vip) == set(&[&node_addr(1), &node_addr(2)]))
        },
    )
    .unwrap_or_else(|e| panic!("{e}: paths {:?}", bgp_paths(lab, &vip)));
    println!(
        "speaker 3 restarted after its Pod was deleted: End-of-RIB after {:.2} s; node-3's stale path gone {:.2} s \
         later",
        eor_at.unwrap_or_default().as_secs_f64(),
        eor_seen.elapsed().as_secs_f64()
    );
    wait_paths(
        lab,
        &vip,
        &set(&[&node_addr(1), &node_addr(2)]),
        "FIB without node-3",
    );
}

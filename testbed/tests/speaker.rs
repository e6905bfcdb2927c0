//! `ferrolb speaker` end to end in the lab: the real control plane with kwok nodes, `ferrolb controller` on the
//! host, one `ferrolb speaker` per node namespace (with `--vip-interface flb-vip`, where the lab's responder
//! answers), and the FRR router, checked through `vtysh ... json` and its kernel FIB.
//!
//! One scenario, in order, because the speakers and the ConfigMap are shared by every step: the whoami scenario
//! (`speaker_common::whoami_scenario`: 3 paths, curls, scale to 1, a pod move, the exclusion label); communities
//! and local-pref without a reset; a peer node-selector; graceful restart of every speaker under 60 requests/s;
//! rolling updates under the same load; the serving-terminating fallback under load; the API server away for
//! 60 s; EndpointSlice-write-to-FIB latency; deletion; per-peer UPDATE counters equal to FRR's. Figures are
//! printed (`cargo test --test speaker -- --nocapture`). Needs root, FRR, GoBGP and the control plane
//! (`testbed/lab deps`); fails loudly without them. IPv6 and the one-peer edit: `speaker_dual_stack.rs`.
//!
//! Traffic here is answered by the lab's per-node responder, not by kube-proxy and Pods (the lab has no
//! `--data-path`): the serving-terminating and EndpointSlice-to-FIB steps write EndpointSlices whose addresses
//! are no Pod, which kube-proxy would forward to nowhere. What this file shows about traffic is routing (a
//! request reaches a node that announces); the same rolling update and graceful restart through kube-proxy to
//! real Pods, with per-node counts and the stale flag, are in `data_path.rs`.

mod speaker_common;

use ferrolb_testbed::Lab;
use ferrolb_testbed::k8s_openapi::api::core::v1::Service;
use ferrolb_testbed::k8s_openapi::api::discovery::v1::EndpointSlice;
use ferrolb_testbed::kube::Client;
use ferrolb_testbed::kube::api::{Api, DeleteParams};
use ferrolb_testbed::serde_json::{Value, json};
use speaker_common::*;
use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

const NS: &str = "whoami";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speaker_announces_from_exactly_the_nodes_with_ready_endpoints() {
    let lab = Lab::shared().expect("lab up (run testbed/lab deps first)");
    let client = lab.kube_client().await.unwrap();
    lab.kubectl(&["create", "namespace", CONFIG_NS]).unwrap();
    lab.kubectl(&["create", "namespace", NS]).unwrap();
    kubectl_apply(lab, &configmap(lab, "", ""));
    let mut ferrolb = Ferrolb::start(lab, Identities::admin(lab), "speaker");

    // --- The seed's whoami scenario: 3 paths, scale to 1, a pod move, the exclusion label.
    let vip = whoami_scenario(lab, &client, &ferrolb, &Whoami::new(NS, 3)).await;
    let all = set(&[&node_addr(1), &node_addr(2), &node_addr(3)]);

    // --- Communities and local-pref from the config reach the router, without a session reset.
    let established_before = connections_established(lab);
    kubectl_apply(
        lab,
        &configmap(
            lab,
            "",
            "      bgp-advertisements:\n      - localpref: 150\n        communities:\n        - 64512:100\n",
        ),
    );
    lab.wait_until(
        Duration::from_secs(30),
        "local-pref 150 and community 64512:100",
        || {
            let paths = bgp_paths(lab, &vip);
            Ok(paths.len() == 3
                && paths.iter().all(|p| {
                    p["locPrf"] == 150 && p["community"]["string"].as_str() == Some("64512:100")
                }))
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {:?}", bgp_paths(lab, &vip)));
    assert_eq!(
        connections_established(lab),
        established_before,
        "attribute change reset a session"
    );

    // --- A peer node-selector that leaves out node-3 removes its path and session; the others stay up.
    kubectl_apply(
        lab,
        &configmap(lab, "", "").replace(
            "      password: \"foo\"\n",
            "      password: \"foo\"\n      node-selectors:\n      - match-expressions:\n        - key: kubernetes.io/hostname\n          operator: In\n          values: [node-1, node-2]\n",
        ),
    );
    wait_paths(
        lab,
        &vip,
        &set(&["198.18.0.11", "198.18.0.12"]),
        "node-3 not selected",
    );
    let now = connections_established(lab);
    for peer in ["198.18.0.11", "198.18.0.12"] {
        assert_eq!(
            now.get(peer),
            established_before.get(peer),
            "{peer} was reset by an unrelated change"
        );
    }
    kubectl_apply(lab, &configmap(lab, "", ""));
    wait_paths(lab, &vip, &all, "node-3 selected again");
    lab.wait_until(Duration::from_secs(30), "default attributes back", || {
        Ok(bgp_paths(lab, &vip)
            .iter()
            .all(|p| p["locPrf"] == 100 && p["community"].is_null()))
    })
    .unwrap();

    // --- Graceful restart of every speaker, one by one, under >= 50 requests/s: no failure, no FIB gap.
    let stop_file = lab.dir().join("load-stop");
    let load = Load::start(lab, &vip, 60, &stop_file);
    let load_started = Instant::now();
    let watch = FibWatch::start(lab.router_netns(), vip.clone());
    std::thread::sleep(Duration::from_secs(2));
    for i in 1..=3 {
        ferrolb.restart_speaker(lab, i);
        lab.wait_established(&node_addr(i), Duration::from_secs(30))
            .unwrap();
        // Wait until the restarted speaker's path is fresh again (End-of-RIB cleared the stale mark).
        lab.wait_until(Duration::from_secs(30), "fresh path after restart", || {
            Ok(bgp_paths(lab, &vip)
                .iter()
                .any(|p| p["peer"]["peerId"] == node_addr(i) && p["stale"].is_null()))
        })
        .unwrap();
        std::thread::sleep(Duration::from_secs(2));
    }
    let (samples, missing) = watch.finish();
    let result = load.finish(&stop_file);
    let LoadResult {
        ok,
        failed,
        rate,
        ref errors,
        ..
    } = result;
    println!(
        "load over {:.1} s: {result}",
        load_started.elapsed().as_secs_f64()
    );
    println!(
        "graceful restart of 3 speakers: {ok} requests ok, {failed} failed; FIB sampled {samples} times, route missing {missing} times"
    );
    assert_eq!(failed, 0, "failed requests: {errors:?}");
    assert!(
        rate >= 50.0,
        "the load client sent {rate:.1} requests/s, fewer than 50"
    );
    assert_eq!(missing, 0, "the router lost the route from its FIB");
    assert!(samples > 50);
    wait_paths(lab, &vip, &all, "3 paths after the restarts");
    // From here on, no session reconnects: both ends' UPDATE counters must grow by the same amounts.
    let counters_since = all_update_counts(lab, "198.18.0.1", &node_addr);

    // --- Rolling updates under >= 50 requests/s: no failure.
    rolling_update_under_load(lab, &client, &vip, &all).await;
    serving_terminating_fallback_under_load(lab, &client).await;

    // --- API server away for 60 s (from the speakers: a blackhole route toward it in every node namespace;
    // stopping the process would also make Kubernetes itself mark the kwok nodes NotReady when it returns):
    // routes unchanged, sessions up; when it returns, nothing is re-sent.
    let apiserver = lab
        .env("APISERVER")
        .and_then(|a| a.strip_prefix("https://"))
        .and_then(|a| a.split(':').next())
        .expect("APISERVER in the lab env")
        .to_owned();
    let before = updates_received(lab);
    assert_eq!(before.len(), 3, "{before:?}");
    let conns = connections_established(lab);
    for i in 1..=3 {
        lab.exec_in_node(
            i,
            &[
                "ip",
                "route",
                "add",
                "blackhole",
                &format!("{apiserver}/32"),
            ],
        )
        .unwrap();
    }
    let cut = Instant::now();
    let mut checks = 0;
    while cut.elapsed() < Duration::from_secs(60) {
        assert_eq!(
            path_peers(lab, &vip),
            all,
            "paths changed while the API server was away"
        );
        assert_eq!(fib(lab, &vip), all);
        checks += 1;
        std::thread::sleep(Duration::from_secs(5));
    }
    let unreachable = lab
        .exec_in_node(
            1,
            &[
                "curl",
                "-sk",
                "--max-time",
                "2",
                &format!("https://{apiserver}:6443/readyz"),
            ],
        )
        .is_err();
    for i in 1..=3 {
        lab.exec_in_node(
            i,
            &[
                "ip",
                "route",
                "del",
                "blackhole",
                &format!("{apiserver}/32"),
            ],
        )
        .unwrap();
    }
    assert!(
        unreachable,
        "the API server was still reachable from node-1"
    );
    // Give the watchers time to reconnect (their backoff) and re-list.
    std::thread::sleep(Duration::from_secs(20));
    assert_eq!(
        updates_received(lab),
        before,
        "UPDATEs were sent after the API server returned"
    );
    assert_eq!(connections_established(lab), conns, "a session was reset");
    println!(
        "API server away 60 s: {checks} checks, paths and sessions unchanged, nothing re-sent on return"
    );

    // --- Latency: EndpointSlice write in the API server -> route change in the router's FIB.
    measure_endpointslice_to_fib(lab, &client).await;

    // --- Delete the Service: the route is gone.
    delete_service(lab, &client, NS, "whoami", &vip).await;

    // --- Per-peer UPDATE counters grew as much as the router's since the restarts.
    let counts = wait_update_counters_match(lab, "198.18.0.1", node_addr, Some(&counters_since));
    println!(
        "UPDATEs since the restarts [speaker sent, router received, router sent, speaker received] per node: {counts:?}"
    );
    ferrolb.stop();
}

/// A selector-less LoadBalancer Service whose EndpointSlice the test writes itself: each write flips node-2's
/// endpoint between ready and not ready, and the router's FIB is polled until node-2's next hop follows.
async fn measure_endpointslice_to_fib(lab: &Lab, client: &Client) {
    apply(client, json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "manual", "namespace": NS},
            "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local", "ports": [{"port": 80}]}
        }),
    )
    .await;
    let vip = ingress_ip(client, NS, "manual").await;
    let slice = |ready2: bool| {
        json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "manual-1", "namespace": NS,
                         "labels": {"kubernetes.io/service-name": "manual"}},
            "addressType": "IPv4",
            "ports": [{"port": 80, "protocol": "TCP"}],
            "endpoints": [
                {"addresses": ["198.19.1.200"], "nodeName": "node-1", "conditions": {"ready": true}},
                {"addresses": ["198.19.2.200"], "nodeName": "node-2", "conditions": {"ready": ready2}}
            ]
        })
    };
    apply(client, slice(true)).await;
    let both = set(&["198.18.0.11", "198.18.0.12"]);
    let one = set(&["198.18.0.11"]);
    wait_paths(lab, &vip, &both, "manual Service on node-1 and node-2");
    let router = lab.router_netns();
    let mut samples = Vec::new();
    for round in 0..40 {
        let ready2 = round % 2 == 1;
        let want = if ready2 { &both } else { &one };
        let started = Instant::now();
        apply(client, slice(ready2)).await;
        loop {
            let out = Command::new("ip")
                .args(["-n", &router, "-j", "route", "show", &vip])
                .output()
                .unwrap();
            let gws = gateways(&out.stdout);
            if gws == *want {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "FIB never followed: {gws:?}"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    samples.sort_by(f64::total_cmp);
    println!(
        "EndpointSlice write -> router FIB ({} samples): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        samples.len(),
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        samples.last().copied().unwrap_or(f64::NAN)
    );
    let metrics = speaker_metrics(lab, 2);
    let hist: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("ferrolb_speaker_event_to_update_seconds"))
        .collect();
    println!(
        "node-2 speaker event-to-UPDATE histogram:\n{}",
        hist.join("\n")
    );
    assert!(!hist.is_empty(), "no latency histogram in:\n{metrics}");
    Api::<Service>::namespaced(client.clone(), NS)
        .delete("manual", &DeleteParams::default())
        .await
        .unwrap();
    let _ = Api::<EndpointSlice>::namespaced(client.clone(), NS)
        .delete("manual-1", &DeleteParams::default())
        .await;
    wait_paths(lab, &vip, &BTreeSet::new(), "manual Service withdrawn");
}

/// Rolls the whoami Deployment (its `VERSION` changes) under 60 requests/s to the VIP and returns what the
/// client saw and the fewest next hops the router's FIB had meanwhile (it must never lose the route).
async fn roll(lab: &Lab, client: &Client, vip: &str, app: &Whoami) -> (LoadResult, u64) {
    let stop_file = lab.dir().join("load-stop");
    let load = Load::start(lab, vip, 60, &stop_file);
    let watch = FibWatch::start(lab.router_netns(), vip.to_owned());
    std::thread::sleep(Duration::from_secs(2));
    apply(client, app.deployment()).await;
    rollout_done(lab);
    std::thread::sleep(Duration::from_secs(2));
    let fewest = watch.fewest_next_hops();
    let (samples, missing) = watch.finish();
    let result = load.finish(&stop_file);
    assert!(
        result.rate >= 50.0,
        "the load client sent {:.1} requests/s",
        result.rate
    );
    assert_eq!(missing, 0, "the router lost the route during the rollout");
    assert!(samples > 50);
    let versions = lab
        .kubectl(&[
            "-n",
            NS,
            "get",
            "pods",
            "-l",
            "app=whoami",
            "-o",
            "jsonpath={.items[*].spec.containers[0].env[0].value}",
        ])
        .unwrap();
    let want = app.version.to_string();
    assert!(
        versions.split_whitespace().all(|v| v == want),
        "pods after the rollout: versions {versions}"
    );
    (result, fewest)
}

/// Replaces the whoami pods by `app`'s through zero replicas (without load: switching between one pod per node
/// and an even spread cannot roll, since the old pods' anti-affinity keeps new ones off their nodes).
async fn recreate(lab: &Lab, client: &Client, app: &Whoami) {
    let mut none = app.clone();
    none.replicas = 0;
    apply(client, none.deployment()).await;
    wait_pod_nodes(client, NS, "pods gone", |n| n.is_empty()).await;
    apply(client, app.deployment()).await;
    rollout_done(lab);
}

fn rollout_done(lab: &Lab) {
    lab.kubectl(&[
        "-n",
        NS,
        "rollout",
        "status",
        "deployment/whoami",
        "--timeout=120s",
    ])
    .unwrap_or_else(|e| panic!("rollout: {e}"));
}

/// Rolling updates of the whoami Deployment (one pod at a time, readiness-gated, no surge) under 60
/// requests/s.
///
/// kwok's stages (testbed/controlplane/build: `pod/fast`) delete a pod as soon as it has a deletion timestamp,
/// so a replaced pod goes ready -> gone without a serving-terminating phase (that phase is exercised by
/// [`serving_terminating_fallback_under_load`]).
///
/// 1. Two pods per node (6 replicas spread evenly): every node keeps a ready pod throughout, so the router
///    keeps its 3 next hops (none withdrawn, none flapped) and no request fails.
/// 2. One pod per node: each node withdraws while its pod is replaced and announces again when the new one is
///    ready. The router's ECMP then moves the flows hashed to that node, and requests in flight at that
///    moment are reset by the node that receives the rest of their packets: inherent to stateless ECMP (the
///    same holds for MetalLB), so the test checks that resets are the only failures (never a timeout: no
///    blackhole; never a 404: no packet reached a node without the VIP) and prints their number.
async fn rolling_update_under_load(lab: &Lab, client: &Client, vip: &str, all: &BTreeSet<String>) {
    let mut app = Whoami::new(NS, 6);
    app.even_spread = true;
    recreate(lab, client, &app).await;
    wait_paths(lab, vip, all, "3 paths with 2 pods per node");
    app.version = 2;
    let (r, fewest) = roll(lab, client, vip, &app).await;
    println!("rolling update, 2 pods per node: {r}; fewest next hops {fewest}");
    assert_eq!(r.failed, 0, "failed requests: {:?}", r.errors);
    assert_eq!(fewest, 3, "a node withdrew although it kept a ready pod");
    wait_paths(lab, vip, all, "3 paths after the rollout");

    let mut app = Whoami::new(NS, 3);
    recreate(lab, client, &app).await;
    wait_paths(lab, vip, all, "3 paths with 1 pod per node");
    app.version = 3;
    let (r, fewest) = roll(lab, client, vip, &app).await;
    println!("rolling update, 1 pod per node: {r}; fewest next hops {fewest}");
    assert!(
        r.errors.keys().all(|e| e.contains("reset")),
        "failures other than ECMP resets: {:?}",
        r.errors
    );
    assert!(
        fewest < 3,
        "no node withdrew while its only pod was replaced"
    );
    wait_paths(lab, vip, all, "3 paths after the rollout");
}

/// A single-replica rolling update as the EndpointSlice controller writes it when a pod terminates
/// gracefully (a selector-less Service whose slice the test writes): the old pod on node-1 turns
/// serving-terminating before its replacement on node-2 is ready, so for a while the Service has no ready
/// endpoint anywhere. node-1 must keep announcing (the kube-proxy fallback): under 60 requests/s to the VIP
/// through that phase, no request fails and the route never leaves the FIB. Then the path moves to node-2.
async fn serving_terminating_fallback_under_load(lab: &Lab, client: &Client) {
    apply(
        client,
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "rollout", "namespace": NS},
            "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local", "ports": [{"port": 80}]}
        }),
    )
    .await;
    let vip = ingress_ip(client, NS, "rollout").await;
    let endpoint = |node: usize, ready: bool, serving: bool, terminating: bool| {
        json!({"addresses": [format!("198.19.{node}.210")], "nodeName": format!("node-{node}"),
               "conditions": {"ready": ready, "serving": serving, "terminating": terminating}})
    };
    let slice = |endpoints: Vec<Value>| {
        json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "rollout-1", "namespace": NS,
                         "labels": {"kubernetes.io/service-name": "rollout"}},
            "addressType": "IPv4",
            "ports": [{"port": 80, "protocol": "TCP"}],
            "endpoints": endpoints
        })
    };
    apply(client, slice(vec![endpoint(1, true, true, false)])).await;
    wait_paths(
        lab,
        &vip,
        &set(&[&node_addr(1)]),
        "rollout Service on node-1",
    );

    let stop_file = lab.dir().join("load-stop");
    let load = Load::start(lab, &vip, 60, &stop_file);
    let watch = FibWatch::start(lab.router_netns(), vip.clone());
    std::thread::sleep(Duration::from_secs(2));
    // The old pod terminates; the new one on node-2 exists but is not ready yet.
    apply(
        client,
        slice(vec![
            endpoint(1, false, true, true),
            endpoint(2, false, false, false),
        ]),
    )
    .await;
    for _ in 0..10 {
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            path_peers(lab, &vip),
            set(&[&node_addr(1)]),
            "serving-terminating node-1 must keep announcing while nothing is ready"
        );
    }
    let (samples, missing) = watch.finish();
    let result = load.finish(&stop_file);
    let LoadResult {
        failed,
        rate,
        ref errors,
        ..
    } = result;
    println!(
        "single replica, serving-terminating and nothing ready for 3 s: {result}; FIB sampled {samples} times, \
         route missing {missing} times"
    );
    assert!(rate >= 50.0, "the load client sent {rate:.1} requests/s");
    assert_eq!(failed, 0, "failed requests: {errors:?}");
    assert_eq!(missing, 0, "the router lost the route");
    // The new pod is ready: the path moves to node-2, the terminating pod stops receiving new traffic.
    apply(
        client,
        slice(vec![
            endpoint(1, false, true, true),
            endpoint(2, true, true, false),
        ]),
    )
    .await;
    wait_paths(
        lab,
        &vip,
        &set(&[&node_addr(2)]),
        "the path moves to the new pod",
    );
    // The old pod is gone.
    apply(client, slice(vec![endpoint(2, true, true, false)])).await;
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(path_peers(lab, &vip), set(&[&node_addr(2)]));
    Api::<Service>::namespaced(client.clone(), NS)
        .delete("rollout", &DeleteParams::default())
        .await
        .unwrap();
    let _ = Api::<EndpointSlice>::namespaced(client.clone(), NS)
        .delete("rollout-1", &DeleteParams::default())
        .await;
    wait_paths(lab, &vip, &BTreeSet::new(), "rollout Service withdrawn");
}

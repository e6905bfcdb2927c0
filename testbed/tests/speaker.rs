//! `ferrolb speaker` end to end in the lab: the real control plane with kwok nodes, `ferrolb controller` on the
//! host, one `ferrolb speaker` per node namespace (with `--vip-interface flb-vip`, where the lab's responder
//! answers), and the FRR router, checked through `vtysh ... json` and its kernel FIB.
//!
//! One scenario, in order, because the speakers and the ConfigMap are shared by every step. Figures are printed
//! (`cargo test --test speaker -- --nocapture`). Needs root, FRR, GoBGP and the control plane
//! (`testbed/lab deps`); fails loudly without them.

use ferrolb_testbed::k8s_openapi::api::apps::v1::Deployment;
use ferrolb_testbed::k8s_openapi::api::core::v1::{Pod, Service};
use ferrolb_testbed::k8s_openapi::api::discovery::v1::EndpointSlice;
use ferrolb_testbed::kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use ferrolb_testbed::kube::{Api, Client};
use ferrolb_testbed::serde_json::{self, Value, json};
use ferrolb_testbed::{Lab, NodeProcess};
use std::collections::BTreeSet;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const SIGTERM: i32 = 15;
const NS: &str = "whoami";
const CONFIG_NS: &str = "ferrolb-system";

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn node_addr(i: usize) -> String {
    format!("198.18.0.{}", 10 + i)
}

/// Next hops of `prefix` in the router's kernel FIB (empty when absent).
fn fib(lab: &Lab, prefix: &str) -> BTreeSet<String> {
    let Ok(out) = lab.exec_in_router(&["ip", "-j", "route", "show", prefix]) else {
        return BTreeSet::new();
    };
    gateways(&out.stdout)
}

/// The router's BGP paths for `prefix` (`show bgp ipv4|ipv6 unicast PREFIX json`).
fn bgp_paths(lab: &Lab, prefix: &str) -> Vec<Value> {
    let family = if prefix.contains(':') { "ipv6" } else { "ipv4" };
    lab.vtysh(&format!("show bgp {family} unicast {prefix} json"))
        .ok()
        .and_then(|v| v["paths"].as_array().cloned())
        .unwrap_or_default()
}

/// The peers the router has a path for `prefix` from.
fn path_peers(lab: &Lab, prefix: &str) -> BTreeSet<String> {
    bgp_paths(lab, prefix)
        .iter()
        .filter_map(|p| p["peer"]["peerId"].as_str().map(str::to_owned))
        .collect()
}

fn wait_paths(lab: &Lab, prefix: &str, want: &BTreeSet<String>, what: &str) {
    lab.wait_until(Duration::from_secs(30), what, || {
        Ok(path_peers(lab, prefix) == *want && fib(lab, prefix) == *want)
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}\nBGP paths: {:?}\nFIB: {:?}\nspeaker logs:\n{}",
            path_peers(lab, prefix),
            fib(lab, prefix),
            speaker_logs(lab)
        )
    });
}

fn speaker_logs(lab: &Lab) -> String {
    let mut out = String::new();
    for i in 1..=lab.nodes() {
        let log = std::fs::read_to_string(lab.dir().join("logs").join(format!("speaker-{i}.log")))
            .unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(25).collect();
        out.push_str(&format!("--- speaker-{i} (last lines)\n"));
        for l in tail.into_iter().rev() {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

/// `curl` from the client: the answering node's name, or the error.
fn curl(lab: &Lab, vip: &str) -> Result<String, String> {
    let out = Command::new("ip")
        .args(["netns", "exec", &lab.client_netns().unwrap()])
        .args([
            "curl",
            "-sS",
            "--fail",
            "--max-time",
            "3",
            &format!("http://{vip}/"),
        ])
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Runs `ferrolb speaker` in node `i`'s namespace.
fn start_speaker(lab: &Lab, i: usize) -> NodeProcess {
    let kubeconfig = lab.kubeconfig_path();
    let state = lab.dir().join(format!("speaker-state-{i}"));
    lab.spawn_in_node(
        i,
        &format!("speaker-{i}"),
        &[
            "env",
            &format!("KUBECONFIG={}", kubeconfig.display()),
            "RUST_LOG=info",
            env!("CARGO_BIN_EXE_ferrolb"),
            "speaker",
            "--node-name",
            &format!("node-{i}"),
            "--config-namespace",
            CONFIG_NS,
            "--vip-interface",
            "flb-vip",
            "--metrics-addr",
            "127.0.0.1:7472",
            "--state-dir",
            &state.display().to_string(),
        ],
    )
    .expect("start ferrolb speaker")
}

/// Stops a speaker with SIGTERM and waits for it to exit.
fn stop_speaker(mut p: NodeProcess) {
    p.signal(SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(15);
    while p.is_running() {
        assert!(
            Instant::now() < deadline,
            "speaker did not exit on SIGTERM:\n{}",
            p.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A metric of node `i`'s speaker.
fn speaker_metrics(lab: &Lab, i: usize) -> String {
    lab.exec_in_node(
        i,
        &[
            "curl",
            "-sS",
            "--max-time",
            "3",
            "http://127.0.0.1:7472/metrics",
        ],
    )
    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    .unwrap_or_default()
}

/// `ferrolb controller` on the host, killed on drop.
struct Controller(Child);

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A client sending HTTP requests to the VIP at a fixed rate from the client namespace until dropped or
/// finished; prints `ok fail` at the end.
struct Load(Child);

const LOAD_SCRIPT: &str = r#"
import os, sys, time, urllib.request
url, rate, stop = sys.argv[1], float(sys.argv[2]), sys.argv[3]
ok = fail = 0
errors = []
period = 1.0 / rate
nxt = time.monotonic()
while not os.path.exists(stop):
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            r.read()
            ok += 1
    except Exception as e:
        fail += 1
        errors.append(str(e))
    nxt += period
    d = nxt - time.monotonic()
    if d > 0:
        time.sleep(d)
print(ok, fail, "|".join(errors[:5]))
"#;

impl Load {
    fn start(lab: &Lab, vip: &str, rate: u32, stop: &std::path::Path) -> Load {
        let _ = std::fs::remove_file(stop);
        let child = Command::new("ip")
            .args(["netns", "exec", &lab.client_netns().unwrap()])
            .args(["python3", "-c", LOAD_SCRIPT])
            .args([
                &format!("http://{vip}/"),
                &rate.to_string(),
                &stop.display().to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the load client");
        Load(child)
    }

    /// Stops the client and returns (ok, failed, first errors).
    fn finish(mut self, stop: &std::path::Path) -> (u64, u64, String) {
        std::fs::write(stop, b"stop").unwrap();
        let _ = self.0.wait();
        let mut out = String::new();
        if let Some(mut s) = self.0.stdout.take() {
            let _ = s.read_to_string(&mut out);
        }
        let mut it = out.trim().splitn(3, ' ');
        let ok = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        let fail = it.next().and_then(|s| s.parse().ok()).unwrap_or(u64::MAX);
        (ok, fail, it.next().unwrap_or_default().to_owned())
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Watches the router's FIB for `prefix` in a thread and counts the samples where it was absent.
struct FibWatch {
    stop: Arc<AtomicBool>,
    missing: Arc<AtomicU64>,
    samples: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FibWatch {
    fn start(router_ns: String, prefix: String) -> FibWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let missing = Arc::new(AtomicU64::new(0));
        let samples = Arc::new(AtomicU64::new(0));
        let (s, m, n) = (stop.clone(), missing.clone(), samples.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let out = Command::new("ip")
                    .args(["-n", &router_ns, "route", "show", &prefix])
                    .output();
                if let Ok(out) = out {
                    n.fetch_add(1, Ordering::Relaxed);
                    if out.stdout.is_empty() {
                        m.fetch_add(1, Ordering::Relaxed);
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        FibWatch {
            stop,
            missing,
            samples,
            thread: Some(thread),
        }
    }

    /// (samples, samples without the route).
    fn finish(mut self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        (
            self.samples.load(Ordering::Relaxed),
            self.missing.load(Ordering::Relaxed),
        )
    }
}

impl Drop for FibWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

async fn apply(client: &Client, api_version_kind: (&str, &str), ns: Option<&str>, obj: Value) {
    let name = obj["metadata"]["name"].as_str().unwrap().to_owned();
    let pp = PatchParams::apply("ferrolb-speaker-test").force();
    let result = match (api_version_kind.1, ns) {
        ("Deployment", Some(ns)) => Api::<Deployment>::namespaced(client.clone(), ns)
            .patch(&name, &pp, &Patch::Apply(&obj))
            .await
            .map(|_| ()),
        ("Service", Some(ns)) => Api::<Service>::namespaced(client.clone(), ns)
            .patch(&name, &pp, &Patch::Apply(&obj))
            .await
            .map(|_| ()),
        ("EndpointSlice", Some(ns)) => Api::<EndpointSlice>::namespaced(client.clone(), ns)
            .patch(&name, &pp, &Patch::Apply(&obj))
            .await
            .map(|_| ()),
        other => panic!("unsupported {other:?}"),
    };
    result.unwrap_or_else(|e| panic!("apply {name}: {e}"));
}

fn deployment(replicas: u32) -> Value {
    let labels = json!({"app": "whoami"});
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "whoami", "namespace": NS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                        {"labelSelector": {"matchLabels": labels}, "topologyKey": "kubernetes.io/hostname"}
                    ]}},
                    "containers": [{"name": "whoami", "image": "traefik/whoami", "ports": [{"containerPort": 80}]}]
                }
            }
        }
    })
}

async fn ingress_ip(client: &Client, ns: &str, name: &str) -> String {
    let api = Api::<Service>::namespaced(client.clone(), ns);
    for _ in 0..150 {
        if let Ok(svc) = api.get(name).await
            && let Some(ip) = svc
                .status
                .and_then(|s| s.load_balancer)
                .and_then(|lb| lb.ingress)
                .and_then(|i| i.into_iter().find_map(|i| i.ip))
        {
            return ip;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{ns}/{name} got no ingress IP");
}

async fn pod_nodes(client: &Client) -> BTreeSet<String> {
    Api::<Pod>::namespaced(client.clone(), NS)
        .list(&ListParams::default().labels("app=whoami"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| p.spec.and_then(|s| s.node_name))
        .collect()
}

fn addr_of_node(name: &str) -> String {
    node_addr(name.trim_start_matches("node-").parse().unwrap())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn kubectl_apply(lab: &Lab, yaml: &str) {
    let file = lab.dir().join("speaker-test-apply.yaml");
    std::fs::write(&file, yaml).unwrap();
    lab.kubectl(&["apply", "-f", &file.display().to_string()])
        .unwrap_or_else(|e| panic!("kubectl apply: {e}"));
}

fn configmap(lab: &Lab, extra_peer: &str, advertisement: &str) -> String {
    let router = lab.env("ROUTER_LAN4").unwrap_or("198.18.0.1");
    format!(
        "apiVersion: v1
kind: ConfigMap
metadata:
  name: config
  namespace: {CONFIG_NS}
data:
  config: |
    peers:
    - peer-address: {router}
      peer-asn: 65559
      my-asn: 65559
      password: \"foo\"
{extra_peer}    address-pools:
    - name: public-pool
      protocol: bgp
      addresses:
      - 203.0.113.10-203.0.113.20
{advertisement}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speaker_announces_from_exactly_the_nodes_with_ready_endpoints() {
    let lab = Lab::shared().expect("lab up (run testbed/lab deps first)");
    let client = lab.kube_client().await.unwrap();
    lab.kubectl(&["create", "namespace", CONFIG_NS]).unwrap();
    lab.kubectl(&["create", "namespace", NS]).unwrap();
    kubectl_apply(lab, &configmap(lab, "", ""));

    let controller_log = lab.dir().join("logs").join("controller.log");
    let log = std::fs::File::create(&controller_log).unwrap();
    let _controller = Controller(
        Command::new(env!("CARGO_BIN_EXE_ferrolb"))
            .args([
                "controller",
                "--config-namespace",
                CONFIG_NS,
                "--metrics-addr",
                "127.0.0.1:0",
            ])
            .env("KUBECONFIG", lab.kubeconfig_path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start ferrolb controller"),
    );
    let mut speakers: Vec<Option<NodeProcess>> =
        (1..=3).map(|i| Some(start_speaker(lab, i))).collect();
    for i in 1..=3 {
        lab.wait_established(&node_addr(i), Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{e}\n{}", speaker_logs(lab)));
    }

    // --- The seed's whoami scenario: 3 replicas on 3 nodes, Local policy, the pool annotation.
    apply(&client, ("apps/v1", "Deployment"), Some(NS), deployment(3)).await;
    apply(
        &client,
        ("v1", "Service"),
        Some(NS),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "whoami", "namespace": NS,
                         "annotations": {"metallb.universe.tf/address-pool": "public-pool"}},
            "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local",
                     "selector": {"app": "whoami"}, "ports": [{"port": 80}]}
        }),
    )
    .await;
    let vip = ingress_ip(&client, NS, "whoami").await;
    let all = set(&["198.18.0.11", "198.18.0.12", "198.18.0.13"]);
    wait_paths(lab, &vip, &all, "3 paths for the whoami VIP");
    let paths = bgp_paths(lab, &vip);
    assert_eq!(paths.len(), 3, "{paths:?}");
    for p in &paths {
        assert_eq!(p["locPrf"], 100, "iBGP default local-pref: {p}");
    }

    // --- Client curls through the router reach only nodes with endpoints.
    let mut seen = BTreeSet::new();
    for _ in 0..20 {
        seen.insert(curl(lab, &vip).unwrap());
    }
    assert!(
        seen.is_subset(&set(&["node-1", "node-2", "node-3"])),
        "{seen:?}"
    );

    // --- Scale to 1: exactly the remaining pod's node.
    apply(&client, ("apps/v1", "Deployment"), Some(NS), deployment(1)).await;
    let mut nodes = BTreeSet::new();
    for _ in 0..150 {
        nodes = pod_nodes(&client).await;
        if nodes.len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(nodes.len(), 1, "{nodes:?}");
    let home = nodes.iter().next().unwrap().clone();
    wait_paths(
        lab,
        &vip,
        &set(&[&addr_of_node(&home)]),
        "1 path after scaling to 1",
    );
    for _ in 0..10 {
        assert_eq!(curl(lab, &vip).as_deref(), Ok(home.as_str()));
    }
    // The other nodes no longer hold the VIP on their VIP interface.
    for i in 1..=3 {
        let out = lab
            .exec_in_node(i, &["ip", "-o", "addr", "show", "dev", "flb-vip"])
            .unwrap();
        let has = String::from_utf8_lossy(&out.stdout).contains(&format!("{vip}/32"));
        assert_eq!(has, format!("node-{i}") == home, "node-{i} VIP interface");
    }
    let explain = lab
        .exec_in_node(
            1,
            &[
                "env",
                &format!("KUBECONFIG={}", lab.kubeconfig_path().display()),
                env!("CARGO_BIN_EXE_ferrolb"),
                "speaker",
                "--node-name",
                "node-1",
                "--config-namespace",
                CONFIG_NS,
                "--explain",
                "whoami/whoami",
            ],
        )
        .unwrap();
    let explain = String::from_utf8_lossy(&explain.stdout).into_owned();
    println!("--explain on node-1 with the pod on {home}:\n{explain}");
    assert!(explain.contains(&vip), "{explain}");

    // --- A pod moves to another node: the path moves.
    lab.kubectl(&["cordon", &home]).unwrap();
    lab.kubectl(&[
        "-n",
        NS,
        "delete",
        "pod",
        "-l",
        "app=whoami",
        "--wait=false",
    ])
    .unwrap();
    let mut moved = BTreeSet::new();
    for _ in 0..150 {
        moved = pod_nodes(&client).await;
        if moved.len() == 1 && !moved.contains(&home) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let new_home = moved.iter().next().unwrap().clone();
    assert_ne!(new_home, home);
    wait_paths(
        lab,
        &vip,
        &set(&[&addr_of_node(&new_home)]),
        "the path follows the pod",
    );
    lab.kubectl(&["uncordon", &home]).unwrap();

    // --- An excluded node loses its path.
    apply(&client, ("apps/v1", "Deployment"), Some(NS), deployment(3)).await;
    wait_paths(lab, &vip, &all, "3 paths again");
    lab.kubectl(&[
        "label",
        "node",
        "node-2",
        "node.kubernetes.io/exclude-from-external-load-balancers=",
    ])
    .unwrap();
    wait_paths(
        lab,
        &vip,
        &set(&["198.18.0.11", "198.18.0.13"]),
        "node-2 excluded",
    );
    lab.kubectl(&[
        "label",
        "node",
        "node-2",
        "node.kubernetes.io/exclude-from-external-load-balancers-",
    ])
    .unwrap();
    wait_paths(lab, &vip, &all, "node-2 back");

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
        let old = speakers[i - 1].take().unwrap();
        stop_speaker(old);
        std::thread::sleep(Duration::from_millis(500));
        speakers[i - 1] = Some(start_speaker(lab, i));
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
    let (ok, failed, errors) = load.finish(&stop_file);
    let rate = ok as f64 / load_started.elapsed().as_secs_f64();
    println!(
        "load: {rate:.1} requests/s over {:.1} s",
        load_started.elapsed().as_secs_f64()
    );
    println!(
        "graceful restart of 3 speakers: {ok} requests ok, {failed} failed; FIB sampled {samples} times, route missing {missing} times"
    );
    assert_eq!(failed, 0, "failed requests: {errors}");
    assert!(
        rate >= 50.0,
        "the load client sent {rate:.1} requests/s, fewer than 50"
    );
    assert_eq!(missing, 0, "the router lost the route from its FIB");
    assert!(samples > 50);
    wait_paths(lab, &vip, &all, "3 paths after the restarts");

    // --- API server away for 60 s (from the speakers: a blackhole route toward it in every node namespace;
    // stopping the process would also make Kubernetes itself mark the kwok nodes NotReady when it returns):
    // routes unchanged, sessions up; when it returns, nothing is re-sent.
    let apiserver = lab
        .env("APISERVER")
        .and_then(|a| a.strip_prefix("https://"))
        .and_then(|a| a.split(':').next())
        .expect("APISERVER in the lab env")
        .to_owned();
    let before = path_update_times(lab, &vip);
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
        path_update_times(lab, &vip),
        before,
        "paths were re-sent after the API server returned"
    );
    assert_eq!(connections_established(lab), conns, "a session was reset");
    println!(
        "API server away 60 s: {checks} checks, paths and sessions unchanged, nothing re-sent on return"
    );

    // --- Latency: EndpointSlice write in the API server -> route change in the router's FIB.
    measure_endpointslice_to_fib(lab, &client).await;

    // --- Delete the Service: the route is gone.
    Api::<Service>::namespaced(client.clone(), NS)
        .delete("whoami", &DeleteParams::default())
        .await
        .unwrap();
    wait_paths(
        lab,
        &vip,
        &BTreeSet::new(),
        "route withdrawn after the Service is deleted",
    );
    for s in speakers.into_iter().flatten() {
        stop_speaker(s);
    }
}

/// For each peer, how many times the router's session with it reached Established.
fn connections_established(lab: &Lab) -> std::collections::BTreeMap<String, u64> {
    let v = lab.vtysh("show bgp neighbors json").unwrap();
    v.as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, n)| Some((k.clone(), n["connectionsEstablished"].as_u64()?)))
        .collect()
}

/// When the router last updated each path of `prefix`.
fn path_update_times(lab: &Lab, prefix: &str) -> BTreeSet<(String, u64)> {
    bgp_paths(lab, prefix)
        .iter()
        .filter_map(|p| {
            Some((
                p["peer"]["peerId"].as_str()?.to_owned(),
                p["lastUpdate"]["epoch"].as_u64()?,
            ))
        })
        .collect()
}

/// A selector-less LoadBalancer Service whose EndpointSlice the test writes itself: each write flips node-2's
/// endpoint between ready and not ready, and the router's FIB is polled until node-2's next hop follows.
async fn measure_endpointslice_to_fib(lab: &Lab, client: &Client) {
    apply(
        client,
        ("v1", "Service"),
        Some(NS),
        json!({
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
    apply(
        client,
        ("discovery.k8s.io/v1", "EndpointSlice"),
        Some(NS),
        slice(true),
    )
    .await;
    let both = set(&["198.18.0.11", "198.18.0.12"]);
    let one = set(&["198.18.0.11"]);
    wait_paths(lab, &vip, &both, "manual Service on node-1 and node-2");
    let router = lab.router_netns();
    let mut samples = Vec::new();
    for round in 0..40 {
        let ready2 = round % 2 == 1;
        let want = if ready2 { &both } else { &one };
        let started = Instant::now();
        apply(
            client,
            ("discovery.k8s.io/v1", "EndpointSlice"),
            Some(NS),
            slice(ready2),
        )
        .await;
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

/// The next hops in `ip -j route show` output.
fn gateways(json_out: &[u8]) -> BTreeSet<String> {
    let routes: Value = serde_json::from_slice(json_out).unwrap_or(Value::Null);
    let mut gws = BTreeSet::new();
    for r in routes.as_array().into_iter().flatten() {
        if let Some(gw) = r["gateway"].as_str() {
            gws.insert(gw.to_owned());
        }
        for nh in r["nexthops"].as_array().into_iter().flatten() {
            if let Some(gw) = nh["gateway"].as_str() {
                gws.insert(gw.to_owned());
            }
        }
    }
    gws
}

//! Weighted ECMP and per-Service BGP attributes end to end in the lab: the real control plane with kwok nodes,
//! `ferrolb controller` in the router namespace, one `ferrolb speaker` per node namespace, and the lab's FRR 8.4
//! router, which peers with the speakers over **iBGP** (AS 65559, `bgp listen range`, `maximum-paths ibgp 64`).
//! FRR honours the link-bandwidth community for iBGP multipath as well as eBGP: it installs each path's weight
//! as `floor(100 × bandwidth / total)` (bgpd's `bgp_zebra_use_nhop_weighted`), checked here exactly.
//!
//! The Service is selectorless and its EndpointSlice is written by the test, so each node's ready endpoint
//! count is exact (1, 2, 3, then 1, 2, 1); their addresses are no Pod, so the lab's per-node responder answers
//! (no kube-proxy, no `--data-path`): what is counted is the router's split. The router namespace hashes flows on L4
//! (`net.ipv4.fib_multipath_hash_policy=1`, set by this test: the kernel default hashes on addresses only, and
//! the lab has one client address), so many source ports spread over the weighted next hops.
//!
//! One scenario, in order (the speakers and the Service are shared by every step). Figures are printed:
//! `cargo test --test weighted_ecmp -- --nocapture`. Needs root, FRR and the control plane (`testbed/lab deps`);
//! fails loudly without them.

mod speaker_common;

use ferrolb_testbed::serde_json::{self, Value};
use ferrolb_testbed::{Lab, LabOptions, NodeProcess};
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const CONFIG_NS: &str = "ferrolb-system";
const NS: &str = "wecmp";
const SERVICE: &str = "web";
/// The pool's own attributes (the `bgp-advertisements` entry below).
const POOL_LOCAL_PREF: u64 = 100;
const POOL_COMMUNITY: &str = "64512:1";
/// Requests per traffic sample (the issue asks for at least 600).
const REQUESTS: u64 = 900;
/// Tolerance of each node's share, in binomial standard deviations of that share.
const SIGMAS: f64 = 4.5;

const CONFIGMAP: &str = r#"apiVersion: v1
kind: ConfigMap
metadata: {name: config, namespace: ferrolb-system}
data:
  config: |
    peers:
    - peer-address: 198.18.0.1
      peer-asn: 65559
      my-asn: 65559
      password: "foo"
    bgp-communities:
      gold: 64512:100
    address-pools:
    - name: weighted
      protocol: bgp
      addresses: [203.0.113.10-203.0.113.20]
      bgp-advertisements:
      - weighted-ecmp: true
        localpref: 100
        communities: [64512:1]
        allowed-service-communities: [gold, 64512:200]
        allowed-service-localprefs: [150-200]
"#;

fn node_addr(i: usize) -> String {
    format!("198.18.0.{}", 10 + i)
}

/// `ferrolb controller` in the router namespace (its pid is recorded, so `lab down` stops it too); killed on drop.
struct Controller {
    child: Child,
    pid_file: std::path::PathBuf,
}

impl Controller {
    fn start(lab: &Lab) -> Controller {
        let log_path = lab.dir().join("logs").join("wecmp-controller.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &lab.router_netns()])
            .args(["env", "RUST_LOG=info"])
            .arg(format!("KUBECONFIG={}", lab.kubeconfig_path().display()))
            .arg(env!("CARGO_BIN_EXE_ferrolb"))
            .args(["controller", "--config-namespace", CONFIG_NS])
            .args(["--metrics-addr", "127.0.0.1:17472"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start ferrolb controller");
        let pid_file = lab.dir().join("pids").join("wecmp-controller");
        std::fs::write(&pid_file, child.id().to_string()).unwrap();
        Controller { child, pid_file }
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.pid_file);
    }
}

fn start_speaker(lab: &Lab, i: usize) -> NodeProcess {
    let state = lab.dir().join(format!("wecmp-state-{i}"));
    speaker_common::spawn_speaker(
        lab,
        i,
        &format!("wecmp-speaker-{i}"),
        &lab.kubeconfig_path(),
        &state,
    )
}

fn logs(lab: &Lab) -> String {
    let mut out = String::new();
    for name in [
        "wecmp-controller",
        "wecmp-speaker-1",
        "wecmp-speaker-2",
        "wecmp-speaker-3",
    ] {
        let log = std::fs::read_to_string(lab.dir().join("logs").join(format!("{name}.log")))
            .unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        out.push_str(&format!("--- {name} (last lines)\n"));
        for l in tail.into_iter().rev() {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

fn kubectl_apply(lab: &Lab, yaml: &str) {
    let file = lab.dir().join("wecmp-apply.yaml");
    std::fs::write(&file, yaml).unwrap();
    lab.kubectl(&["apply", "-f", &file.display().to_string()])
        .unwrap_or_else(|e| panic!("kubectl apply: {e}"));
}

/// The selectorless `Local` Service's EndpointSlice with `counts[i]` ready endpoints on `node-(i+1)`.
fn endpoint_slice(counts: [usize; 3]) -> String {
    let mut endpoints = String::new();
    for (i, n) in counts.iter().enumerate() {
        for e in 0..*n {
            endpoints.push_str(&format!(
                "- {{addresses: [198.19.{}.{}], nodeName: node-{}, conditions: {{ready: true}}}}\n",
                i + 1,
                10 + e,
                i + 1
            ));
        }
    }
    format!(
        "apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {SERVICE}-1
  namespace: {NS}
  labels: {{kubernetes.io/service-name: {SERVICE}}}
addressType: IPv4
ports: [{{port: 80}}]
endpoints:
{endpoints}"
    )
}

/// The Service with these attribute annotations (exactly these: `kubectl apply` removes the others).
fn service(annotations: &[(&str, &str)]) -> String {
    let mut ann = String::new();
    for (k, v) in annotations {
        ann.push_str(&format!("    {k}: {v:?}\n"));
    }
    let ann = if ann.is_empty() {
        "  annotations: {}\n".to_owned()
    } else {
        format!("  annotations:\n{ann}")
    };
    format!(
        "apiVersion: v1
kind: Service
metadata:
  name: {SERVICE}
  namespace: {NS}
{ann}spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  ports: [{{port: 80}}]
"
    )
}

fn service_json(lab: &Lab) -> Value {
    let out = lab
        .kubectl(&["get", "service", SERVICE, "-n", NS, "-o", "json"])
        .unwrap_or_else(|e| panic!("kubectl get service: {e}"));
    serde_json::from_str(&out).unwrap()
}

fn vip(lab: &Lab) -> String {
    let mut ip = None;
    lab.wait_until(Duration::from_secs(30), "the Service's ingress IP", || {
        ip = service_json(lab)
            .pointer("/status/loadBalancer/ingress/0/ip")
            .and_then(Value::as_str)
            .map(str::to_owned);
        Ok(ip.is_some())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", logs(lab)));
    ip.unwrap()
}

/// Next hop → weight of `prefix` in the router's kernel FIB (`ip -j route show`), empty when absent. A route with
/// one next hop has no `nexthops` list; its weight is 1.
fn parse_fib(json: &[u8]) -> BTreeMap<String, u64> {
    let routes: Value = serde_json::from_slice(json).unwrap_or(Value::Null);
    let mut out = BTreeMap::new();
    for r in routes.as_array().into_iter().flatten() {
        if let Some(hops) = r["nexthops"].as_array() {
            for h in hops {
                if let Some(gw) = h["gateway"].as_str() {
                    out.insert(gw.to_owned(), h["weight"].as_u64().unwrap_or(1));
                }
            }
        } else if let Some(gw) = r["gateway"].as_str() {
            out.insert(gw.to_owned(), 1);
        }
    }
    out
}

fn fib(lab: &Lab, prefix: &str) -> BTreeMap<String, u64> {
    lab.exec_in_router(&["ip", "-j", "route", "show", prefix])
        .map(|o| parse_fib(&o.stdout))
        .unwrap_or_default()
}

/// What FRR installs for these ready-endpoint counts: `floor(100 × count / total)` per node (the bandwidth is
/// count × 1 Mbps, so the unit cancels).
fn expected_weights(counts: [usize; 3]) -> BTreeMap<String, u64> {
    let total: usize = counts.iter().sum();
    counts
        .iter()
        .enumerate()
        .map(|(i, c)| (node_addr(i + 1), (100 * c / total) as u64))
        .collect()
}

fn wait_weights(lab: &Lab, vip: &str, want: &BTreeMap<String, u64>) {
    lab.wait_until(
        Duration::from_secs(30),
        &format!("FIB weights {want:?} for {vip}"),
        || Ok(fib(lab, vip) == *want),
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e}\nFIB: {:?}\nBGP: {:#}\n{}",
            fib(lab, vip),
            lab.vtysh(&format!("show bgp ipv4 unicast {vip}/32 json"))
                .unwrap_or_default(),
            logs(lab)
        )
    });
}

/// UPDATE messages the router has received from node `i`.
fn updates_received(lab: &Lab, i: usize) -> u64 {
    let peer = node_addr(i);
    lab.vtysh(&format!("show bgp neighbors {peer} json"))
        .ok()
        .and_then(|v| v[&peer]["messageStats"]["updatesRecv"].as_u64())
        .unwrap_or_else(|| panic!("no updatesRecv for {peer}"))
}

/// A Service's attribute annotations, as (key, value).
type Annotations<'a> = &'a [(&'a str, &'a str)];

/// One path of the router's BGP table: (LOCAL_PREF, communities).
type PathAttributes = (u64, BTreeSet<String>);

/// The router's paths for `vip`/32 by peer.
fn router_paths(lab: &Lab, vip: &str) -> BTreeMap<String, PathAttributes> {
    let v = lab
        .vtysh(&format!("show bgp ipv4 unicast {vip}/32 json"))
        .unwrap_or_default();
    v["paths"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let peer = p["peer"]["peerId"].as_str()?.to_owned();
            let lp = p["locPrf"].as_u64().unwrap_or(0);
            let communities = p["community"]["list"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect();
            Some((peer, (lp, communities)))
        })
        .collect()
}

/// The same attributes on the paths from all three nodes.
fn on_every_node(local_pref: u64, communities: &[&str]) -> BTreeMap<String, PathAttributes> {
    let set: BTreeSet<String> = communities.iter().map(|s| s.to_string()).collect();
    (1..=3)
        .map(|i| (node_addr(i), (local_pref, set.clone())))
        .collect()
}

/// Waits until the router's paths for `vip` are `want`; panics at once if a path ever carries `forbidden`.
/// Then keeps watching for `settle`, still refusing `forbidden`.
fn wait_router_paths(
    lab: &Lab,
    vip: &str,
    want: &BTreeMap<String, PathAttributes>,
    forbidden: Option<&str>,
    settle: Duration,
) {
    let check_forbidden = |paths: &BTreeMap<String, PathAttributes>| {
        if let Some(f) = forbidden {
            for (peer, (_, communities)) in paths {
                assert!(
                    !communities.contains(f),
                    "the refused community {f} reached the router from {peer}: {paths:?}"
                );
            }
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let paths = router_paths(lab, vip);
        check_forbidden(&paths);
        if paths == *want {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "router paths for {vip}: want {want:?}, have {paths:?}\n{}",
            logs(lab)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let end = Instant::now() + settle;
    while Instant::now() < end {
        let paths = router_paths(lab, vip);
        check_forbidden(&paths);
        assert_eq!(paths, *want, "the router's paths changed again");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits for the Service's `ferrolb.io/BGPAttributesAccepted` condition (and, for `False`, its Warning
/// Event); returns the condition's message.
fn wait_condition(lab: &Lab, status: &str, reason: &str) -> String {
    speaker_common::wait_attributes_condition(lab, NS, SERVICE, status, reason, &|| logs(lab))
}

/// Samples the router's FIB entry for a prefix every 10 ms in a thread.
struct FibWatch {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<FibSamples>>,
}

#[derive(Debug, Default)]
struct FibSamples {
    samples: u64,
    absent: u64,
    fewest_next_hops: usize,
    /// Every distinct set of weights seen, in order.
    weights_seen: Vec<BTreeMap<String, u64>>,
    /// When each of `weights_seen` was first sampled.
    first_seen: Vec<Instant>,
}

impl FibWatch {
    fn start(router_ns: String, prefix: String) -> FibWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut r = FibSamples {
                fewest_next_hops: usize::MAX,
                ..FibSamples::default()
            };
            while !s.load(Ordering::Relaxed) {
                if let Ok(out) = Command::new("ip")
                    .args(["-n", &router_ns, "-j", "route", "show", &prefix])
                    .output()
                {
                    let w = parse_fib(&out.stdout);
                    r.samples += 1;
                    if w.is_empty() {
                        r.absent += 1;
                    }
                    r.fewest_next_hops = r.fewest_next_hops.min(w.len());
                    if r.weights_seen.last() != Some(&w) {
                        r.weights_seen.push(w);
                        r.first_seen.push(Instant::now());
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            r
        });
        FibWatch {
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> FibSamples {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for FibWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// `n` HTTP requests from the client, each on a new connection (a new source port, so a new flow for the
/// router's L4 hash); prints `{"node-1": count, ...}` and the failures as JSON.
const SPREAD_SCRIPT: &str = r#"
import json, socket, sys
vip, n = sys.argv[1], int(sys.argv[2])
counts, fails = {}, []
for _ in range(n):
    try:
        s = socket.create_connection((vip, 80), timeout=3)
        s.sendall(b"GET / HTTP/1.0\r\nHost: vip\r\n\r\n")
        data = b""
        while True:
            b = s.recv(4096)
            if not b:
                break
            data += b
        s.close()
        head, _, body = data.partition(b"\r\n\r\n")
        if b" 200 " not in head.split(b"\r\n")[0]:
            raise RuntimeError(head.split(b"\r\n")[0].decode())
        node = body.decode().strip()
        counts[node] = counts.get(node, 0) + 1
    except Exception as e:
        fails.append(str(e))
print(json.dumps({"counts": counts, "fails": fails[:5], "failed": len(fails)}))
"#;

/// Sends `REQUESTS` requests to `vip` and checks each node's share against its FIB weight: the flows' hashes are
/// independent draws, so node j's count is Binomial(n, p_j) with p_j = weight_j / Σ weights, and its share must
/// lie within `SIGMAS` standard deviations sqrt(p_j (1 − p_j) / n) of p_j (a false failure has probability
/// below 3 × 7e-6 at 4.5 σ).
fn check_spread(lab: &Lab, vip: &str, weights: &BTreeMap<String, u64>) {
    let out = lab
        .exec_in_client(&["python3", "-c", SPREAD_SCRIPT, vip, &REQUESTS.to_string()])
        .unwrap_or_else(|e| panic!("client requests: {e}"));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["failed"], 0, "failed requests: {}", v["fails"]);
    let total_weight: u64 = weights.values().sum();
    let n = REQUESTS as f64;
    println!("  {REQUESTS} requests, tolerance {SIGMAS} binomial sigma per node:");
    let mut answered = 0;
    for i in 1..=3 {
        let weight = weights[&node_addr(i)];
        let p = weight as f64 / total_weight as f64;
        let count = v["counts"][format!("node-{i}")].as_u64().unwrap_or(0);
        answered += count;
        let share = count as f64 / n;
        let tolerance = SIGMAS * (p * (1.0 - p) / n).sqrt();
        println!(
            "    node-{i}: weight {weight:>3}  expected share {p:.3}  measured {share:.3} ({count})  tolerance ±{tolerance:.3}"
        );
        assert!(
            (share - p).abs() <= tolerance,
            "node-{i}'s share {share:.3} is not within ±{tolerance:.3} of its weight's {p:.3}: {}",
            v["counts"]
        );
    }
    assert_eq!(
        answered, REQUESTS,
        "answers from unexpected nodes: {}",
        v["counts"]
    );
}

#[test]
fn weights_follow_ready_endpoints_and_per_service_attributes_reach_the_router_only_when_allowed() {
    let lab = Lab::start(LabOptions::default()).expect("lab up (run testbed/lab deps first)");
    lab.exec_in_router(&["sysctl", "-qw", "net.ipv4.fib_multipath_hash_policy=1"])
        .expect("L4 multipath hash in the router namespace");
    lab.kubectl(&["create", "namespace", CONFIG_NS]).unwrap();
    lab.kubectl(&["create", "namespace", NS]).unwrap();
    kubectl_apply(&lab, CONFIGMAP);
    let _controller = Controller::start(&lab);
    let _speakers: Vec<NodeProcess> = (1..=3).map(|i| start_speaker(&lab, i)).collect();
    for i in 1..=3 {
        lab.wait_established(&node_addr(i), Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{e}\n{}", logs(&lab)));
    }

    // 1. Ready endpoints 1, 2, 3 → weights 16, 33, 50 (1:2:3 within FRR's truncation).
    kubectl_apply(&lab, &service(&[]));
    kubectl_apply(&lab, &endpoint_slice([1, 2, 3]));
    let vip = vip(&lab);
    let before = expected_weights([1, 2, 3]);
    wait_weights(&lab, &vip, &before);
    let paths = lab
        .vtysh(&format!("show bgp ipv4 unicast {vip}/32 json"))
        .unwrap();
    let mut lb: Vec<(String, String)> = paths["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["peer"]["peerId"].as_str().unwrap_or_default().to_owned(),
                p["extendedCommunity"]["string"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    lb.sort();
    println!("{vip}: router paths (iBGP) {lb:?}");
    println!("{vip}: FIB weights {before:?}");
    // AS 65559 does not fit in two octets: AS_TRANS; 1 Mbps per ready endpoint = 125000 bytes/s.
    assert_eq!(
        lb,
        [
            (node_addr(1), "LB:23456:125000 (1.000 Mbps)".to_owned()),
            (node_addr(2), "LB:23456:250000 (2.000 Mbps)".to_owned()),
            (node_addr(3), "LB:23456:375000 (3.000 Mbps)".to_owned()),
        ]
    );

    // 2. Traffic follows the weights.
    check_spread(&lab, &vip, &before);

    // 3. Scale node-3 from 3 ready endpoints to 1: the weights change (25, 50, 25), with one UPDATE from node-3
    // only, and the route never leaves the FIB nor loses a next hop.
    let updates: Vec<u64> = (1..=3).map(|i| updates_received(&lab, i)).collect();
    let watch = FibWatch::start(lab.router_netns(), vip.clone());
    std::thread::sleep(Duration::from_millis(300));
    let apply_started = Instant::now();
    kubectl_apply(&lab, &endpoint_slice([1, 2, 1]));
    let apply_returned = Instant::now();
    let after = expected_weights([1, 2, 1]);
    wait_weights(&lab, &vip, &after);
    std::thread::sleep(Duration::from_millis(500));
    let samples = watch.finish();
    let updates_after: Vec<u64> = (1..=3).map(|i| updates_received(&lab, i)).collect();
    let ms = |t: Option<&Instant>, since: Instant| {
        t.map_or(f64::NAN, |t| {
            t.saturating_duration_since(since).as_secs_f64() * 1000.0
        })
    };
    println!(
        "scale 3 -> 1 on node-3: FIB weights {after:?} first sampled {:.0} ms after `kubectl apply` of the \
         EndpointSlice returned ({:.0} ms after it started); {} FIB samples (every 10 ms), {} without the \
         route, fewest next hops {}; weights seen {:?}; UPDATEs received per node {:?} -> {:?}",
        ms(samples.first_seen.get(1), apply_returned),
        ms(samples.first_seen.get(1), apply_started),
        samples.samples,
        samples.absent,
        samples.fewest_next_hops,
        samples.weights_seen,
        updates,
        updates_after
    );
    assert!(samples.samples >= 20, "too few FIB samples: {samples:?}");
    assert_eq!(samples.absent, 0, "the route left the FIB: {samples:?}");
    assert_eq!(samples.fewest_next_hops, 3, "a next hop left: {samples:?}");
    assert_eq!(samples.weights_seen, [before, after.clone()]);
    assert_eq!(
        updates_after,
        [updates[0], updates[1], updates[2] + 1],
        "one UPDATE from node-3, none from the others"
    );
    check_spread(&lab, &vip, &after);

    // 4. Per-Service attributes. Allowed ones: communities added to the pool's, local-pref replacing it.
    let accepted = [
        ("ferrolb.io/bgp-communities", "gold, 64512:200"),
        ("ferrolb.io/bgp-local-pref", "150"),
    ];
    let accepted_paths = on_every_node(150, &[POOL_COMMUNITY, "64512:100", "64512:200"]);
    let defaults = on_every_node(POOL_LOCAL_PREF, &[POOL_COMMUNITY]);
    // Attribute changes are implicit replaces too: no session reset, and the route never leaves the FIB. (While
    // the three speakers' UPDATEs arrive one after another, paths briefly differ in local-pref and the router
    // installs only the preferred ones, so fewer next hops for a moment is the router's rule, not a withdrawal.)
    let conns = speaker_common::connections_established(&lab);
    let watch = FibWatch::start(lab.router_netns(), vip.clone());
    wait_router_paths(&lab, &vip, &defaults, None, Duration::ZERO);
    kubectl_apply(&lab, &service(&accepted));
    wait_router_paths(&lab, &vip, &accepted_paths, None, Duration::ZERO);
    let message = wait_condition(&lab, "True", "Accepted");
    println!("accepted: router paths {accepted_paths:?}; condition True: {message}");
    // The weights are untouched by the attributes.
    assert_eq!(fib(&lab, &vip), after);

    // Refused: a community outside the allow-list (65535:666 is BLACKHOLE), a local-pref that is not a number,
    // one outside the allowed range. All or nothing: the pool's defaults, never the refused value.
    let refusals: [(Annotations, Option<&str>, &str); 3] = [
        (
            &[
                ("ferrolb.io/bgp-communities", "gold, 65535:666"),
                ("ferrolb.io/bgp-local-pref", "150"),
            ],
            Some("65535:666"),
            "CommunityNotAllowed",
        ),
        (
            &[
                ("ferrolb.io/bgp-communities", "gold"),
                ("ferrolb.io/bgp-local-pref", "abc"),
            ],
            None,
            "InvalidLocalPref",
        ),
        (
            &[
                ("ferrolb.io/bgp-communities", "gold"),
                ("ferrolb.io/bgp-local-pref", "250"),
            ],
            None,
            "LocalPrefNotAllowed",
        ),
    ];
    for (annotations, forbidden, reason) in refusals {
        kubectl_apply(&lab, &service(annotations));
        wait_router_paths(&lab, &vip, &defaults, forbidden, Duration::from_secs(2));
        let message = wait_condition(&lab, "False", reason);
        println!(
            "refused {annotations:?}: router paths are the pool's defaults; condition False {reason}: {message}"
        );
        // Back to an accepted state, so the next refusal is a visible change.
        kubectl_apply(&lab, &service(&accepted));
        wait_router_paths(&lab, &vip, &accepted_paths, None, Duration::ZERO);
    }
    let samples = watch.finish();
    println!(
        "attribute changes: {} FIB samples, {} without the route, fewest next hops {}, weights seen {:?}",
        samples.samples, samples.absent, samples.fewest_next_hops, samples.weights_seen
    );
    assert_eq!(samples.absent, 0, "the route left the FIB: {samples:?}");
    assert_eq!(
        speaker_common::connections_established(&lab),
        conns,
        "a session was reset by an attribute change"
    );
    for seen in &samples.weights_seen {
        assert!(
            seen.keys().all(|hop| after.contains_key(hop)),
            "an unexpected next hop: {samples:?}"
        );
    }
    assert_eq!(samples.weights_seen.first(), Some(&after));
    assert_eq!(samples.weights_seen.last(), Some(&after));
    assert_eq!(fib(&lab, &vip), after);
    lab.down().expect("lab down");
}

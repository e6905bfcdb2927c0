//! `--config-source metallb` end to end in the lab: MetalLB v0.15.2's own CRD definitions installed in the real
//! API server, ferrolb's controller on the host and a speaker per node namespace reading the metallb.io objects,
//! and the FRR router checked through `vtysh ... json`.
//!
//! One scenario, in order, because the router, the whoami app and the objects are shared by every step:
//! 1. the ConfigMap source (`speaker_common::configmap`): two whoami Services get addresses, and the router's
//!    `show bgp ipv4 unicast json` is recorded (prefix → next hops); the Services are deleted and ferrolb stopped;
//! 2. the same configuration converted by `ferrolb config convert` and applied as metallb.io objects, ferrolb
//!    started with `--config-source metallb`: the same Services get the same addresses and the router ends with
//!    exactly the recorded routes;
//! 3. node-1's peer moves to a BGPPeer with a `passwordSecret` (the router's second address; its own peer-group
//!    for node-1):
//!    the session comes up; rotating the Secret with the router's password re-establishes node-1's session only;
//! 4. bad objects one at a time (a bad CIDR, overlapping pools, an advertisement naming a missing pool or peer, a
//!    missing passwordSecret): routes unchanged, `ferrolb_k8s_client_config_stale_bool` 1 on the
//!    controller and every speaker, a Warning Event on the object naming the field; deleting it recovers;
//! 5. a `Community` alias on the advertisement: every path carries exactly 64512:100; editing the communities
//!    to 64512:200 reaches every path as an UPDATE, without a session reset (uptimes and UPDATE counters);
//! 6. `peers: [node1]` (node-1's session only), `peers: [peer1]` (node-2 and node-3), `nodeSelectors` on a
//!    node label (exactly the labelled node, following the label when it moves);
//! 7. pools `lab-pool` (selected by an advertisement's `ipAddressPoolSelectors`) and `other-pool` (selected by
//!    none): the two Services of `lab-pool` are announced, the one of `other-pool` is not (the router's whole
//!    table is exact);
//! 8. `IPAddressPool.status` of the three pools is exact after the allocations and after a Service is deleted.
//!
//! `config/seed-crds.yaml` is checked by `ferrolb config check` and by MetalLB's CRD schemas (a server-side dry
//! run); its pool is outside the lab's address ranges, so the scenario converts the lab's ConfigMap instead.
//! Needs root, FRR, Go (for MetalLB's CRDs) and the control plane (`testbed/lab deps`); fails loudly without them.

mod speaker_common;

use ferrolb_testbed::k8s_openapi::api::core::v1::Service;
use ferrolb_testbed::k8s_openapi::api::events::v1::Event;
use ferrolb_testbed::kube::Client;
use ferrolb_testbed::kube::api::{Api, DeleteParams};
use ferrolb_testbed::serde_json::Value;
use ferrolb_testbed::{Lab, NodeProcess};
use speaker_common::*;

#[path = "metallb_source/advertisements.rs"]
mod advertisements;
#[path = "metallb_source/bad_objects.rs"]
mod bad_objects;

use advertisements::advertisement_phases;
use bad_objects::{BAD_OBJECTS, bad_object};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NS: &str = "whoami";
const METALLB_NS: &str = "metallb-system";
const METALLB_VERSION: &str = "v0.15.2";
const SERVICES: [&str; 2] = ["whoami", "whoami-b"];

/// MetalLB's own CRD definitions (`config/crd/bases/*.yaml` of its Go module), as the bench installs them.
fn metallb_crds() -> Vec<PathBuf> {
    let tmp = std::env::temp_dir().join(format!("ferrolb-metallb-mod-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let out = Command::new("go")
        .args(["mod", "download", "-json"])
        .arg(format!("go.universe.tf/metallb@{METALLB_VERSION}"))
        .env("GONOSUMDB", "go.universe.tf")
        .env("GOFLAGS", "-mod=mod")
        .current_dir(&tmp)
        .output()
        .expect("run `go mod download` (Go is needed for MetalLB's CRDs)");
    let _ = std::fs::remove_dir_all(&tmp);
    let info: Value = ferrolb_testbed::serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "go mod download go.universe.tf/metallb@{METALLB_VERSION}: {e}\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let dir = PathBuf::from(
        info["Dir"]
            .as_str()
            .unwrap_or_else(|| panic!("no Dir in {info}")),
    )
    .join("config/crd/bases");
    let mut crds: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    crds.sort();
    assert!(!crds.is_empty(), "no CRDs under {}", dir.display());
    crds
}

fn install_metallb_crds(lab: &Lab) {
    let crds = metallb_crds();
    let mut wait = vec![
        "wait".to_owned(),
        "--for=condition=Established".into(),
        "--timeout=60s".into(),
    ];
    for crd in &crds {
        let path = crd.display().to_string();
        lab.kubectl(&["apply", "--server-side", "-f", &path])
            .unwrap_or_else(|e| panic!("apply {path}: {e}"));
        wait.extend(["-f".to_owned(), path]);
    }
    let wait: Vec<&str> = wait.iter().map(String::as_str).collect();
    lab.kubectl(&wait).unwrap();
}

/// `config/seed-crds.yaml` passes `ferrolb config check` and MetalLB's own CRD schemas (a server-side dry run:
/// its pool, 1.2.3.4-1.2.3.8, is not announced in the lab, whose routes stay inside the documentation ranges;
/// the scenario uses the same conversion of the lab's ConfigMap instead).
fn seed_crds_accepted(lab: &Lab) {
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/config/seed-crds.yaml");
    let check = Command::new(env!("CARGO_BIN_EXE_ferrolb"))
        .args(["config", "check", seed])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&check.stdout),
        "ok: 1 peer, 1 pool, 5 IPv4 + 0 IPv6 addresses\n"
    );
    assert!(check.status.success());
    let out = lab
        .kubectl(&["apply", "--dry-run=server", "-f", seed])
        .unwrap_or_else(|e| panic!("MetalLB's CRDs refuse {seed}: {e}"));
    assert_eq!(
        out.lines().count(),
        3,
        "three objects accepted (server dry run): {out}"
    );
}

/// Gives node-1 (198.18.0.11) its own peer-group NODE1 with password `foo`, before any session is up: the
/// NODES listen range is narrowed to the other nodes (listen ranges may not overlap).
fn router_node1_group(lab: &Lab) {
    router_config(
        lab,
        &[
            "neighbor NODE1 peer-group",
            "neighbor NODE1 remote-as internal",
            "neighbor NODE1 password foo",
            "no bgp listen range 198.18.0.0/24 peer-group NODES",
            "bgp listen range 198.18.0.12/31 peer-group NODES",
            "bgp listen range 198.18.0.11/32 peer-group NODE1",
            "address-family ipv4 unicast",
            "neighbor NODE1 activate",
        ],
    );
}

/// The router's IPv4 unicast table: prefix → next hops of its paths.
fn routes(lab: &Lab) -> BTreeMap<String, BTreeSet<String>> {
    let table = lab
        .vtysh("show bgp ipv4 unicast json")
        .unwrap_or(Value::Null);
    let mut out = BTreeMap::new();
    for (prefix, paths) in table["routes"].as_object().into_iter().flatten() {
        let hops = paths
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|p| p["nexthops"].as_array().cloned().unwrap_or_default())
            .filter_map(|n| n["ip"].as_str().map(str::to_owned))
            .collect();
        out.insert(prefix.clone(), hops);
    }
    out
}

/// Whether any path in the router's table is stale (graceful restart).
fn any_stale(lab: &Lab) -> bool {
    let table = lab
        .vtysh("show bgp ipv4 unicast json")
        .unwrap_or(Value::Null);
    table["routes"]
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(_, paths)| paths.as_array().cloned().unwrap_or_default())
        .any(|p| !p["stale"].is_null())
}

/// Each node session's uptime on the router (`bgpTimerUpMsec`), by peer address.
fn uptimes(lab: &Lab) -> BTreeMap<String, u64> {
    neighbors(lab)
        .into_iter()
        .filter_map(|(k, n)| Some((k, n["bgpTimerUpMsec"].as_u64()?)))
        .collect()
}

/// The value of an unlabelled gauge in a `/metrics` text.
fn gauge(text: &str, name: &str) -> Option<i64> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as i64)
}

/// Without the metallb.io CRDs, `--config-source metallb` stops at start-up and says what to install.
fn crds_missing_is_a_clear_error(lab: &Lab) {
    let out = Command::new(env!("CARGO_BIN_EXE_ferrolb"))
        .args(["controller", "--config-source", "metallb"])
        .args([
            "--config-namespace",
            METALLB_NS,
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .env("KUBECONFIG", lab.kubeconfig_path())
        .stdin(Stdio::null())
        .output()
        .expect("run ferrolb controller");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the controller ran without the CRDs: {stderr}"
    );
    assert!(
        stderr.contains("the API server has no metallb.io/v1beta1 IPAddressPool (ipaddresspools)")
            && stderr.contains("kubectl apply -k manifests/components/metallb-crds"),
        "{stderr}"
    );
}

/// Where both daemons read their configuration: the metallb.io objects in `METALLB_NS`, Secrets re-read every 2 s.
const CONFIG_ARGS: &[&str] = &[
    "--config-source",
    "metallb",
    "--config-namespace",
    METALLB_NS,
    "--secret-refresh",
    "2",
];

/// `--config-source metallb` ferrolb: the controller on the host and a speaker per node.
struct MetallbFerrolb {
    controller: Controller,
    controller_port: u16,
    speakers: Vec<NodeProcess>,
}

impl MetallbFerrolb {
    fn start(lab: &Lab) -> MetallbFerrolb {
        let controller_port = free_port();
        let controller = Controller::spawn(
            CONFIG_ARGS,
            controller_port,
            "metallb-controller",
            &lab.kubeconfig_path(),
            &lab.dir().join("logs/metallb-controller.log"),
        );
        let kubeconfig = lab.kubeconfig_path();
        let speakers = (1..=lab.nodes())
            .map(|i| {
                let state = lab.dir().join(format!("metallb-state-{i}"));
                spawn_speaker_with(
                    lab,
                    i,
                    &format!("metallb-{i}"),
                    &kubeconfig,
                    &state,
                    CONFIG_ARGS,
                )
            })
            .collect();
        MetallbFerrolb {
            controller,
            controller_port,
            speakers,
        }
    }

    fn controller_metrics(&self) -> String {
        Command::new("curl")
            .args(["-sS", "--max-time", "3"])
            .arg(format!("http://127.0.0.1:{}/metrics", self.controller_port))
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    /// `(loaded, stale)` of the controller, then of each speaker.
    fn config_gauges(&self, lab: &Lab) -> Vec<(Option<i64>, Option<i64>)> {
        let mut texts = vec![self.controller_metrics()];
        texts.extend((1..=lab.nodes()).map(|i| speaker_metrics(lab, i)));
        texts
            .iter()
            .map(|t| {
                (
                    gauge(t, "ferrolb_k8s_client_config_loaded_bool"),
                    gauge(t, "ferrolb_k8s_client_config_stale_bool"),
                )
            })
            .collect()
    }

    /// Waits until the controller and every speaker have a configuration loaded and are `stale` (or not).
    fn wait_stale(&self, lab: &Lab, stale: bool, what: &str) {
        let want = vec![(Some(1), Some(i64::from(stale))); 1 + lab.nodes()];
        lab.wait_until(Duration::from_secs(30), what, || {
            Ok(self.config_gauges(lab) == want)
        })
        .unwrap_or_else(|e| panic!("{e}: {:?}\n{}", self.config_gauges(lab), self.logs(lab)));
    }

    fn logs(&self, lab: &Lab) -> String {
        let controller = std::fs::read_to_string(lab.dir().join("logs/metallb-controller.log"))
            .unwrap_or_default();
        let tail: Vec<&str> = controller.lines().rev().take(40).collect();
        let mut out = String::from("--- controller (last lines)\n");
        for l in tail.into_iter().rev() {
            out.push_str(l);
            out.push('\n');
        }
        out + &speaker_logs(lab, "metallb")
    }

    fn stop(self) {
        for s in self.speakers {
            stop_speaker(s);
        }
        drop(self.controller);
    }
}

/// Applies the whoami Services (and the Deployment) and waits for their addresses.
async fn services_up(client: &Client, app: &Whoami) -> Vec<String> {
    apply(client, app.deployment()).await;
    let mut ips = Vec::new();
    for name in SERVICES {
        let mut svc = app.service("public-pool");
        svc["metadata"]["name"] = name.into();
        apply(client, svc).await;
        ips.push(ingress_ip(client, NS, name).await);
    }
    ips
}

async fn services_down(lab: &Lab, client: &Client, ips: &[String]) {
    for (name, ip) in SERVICES.iter().zip(ips) {
        delete_service(lab, client, NS, name, ip).await;
    }
}

fn wait_routes(
    lab: &Lab,
    want: &BTreeMap<String, BTreeSet<String>>,
    what: &str,
    logs: impl Fn() -> String,
) {
    lab.wait_until(Duration::from_secs(60), what, || {
        Ok(routes(lab) == *want && !any_stale(lab))
    })
    .unwrap_or_else(|e| panic!("{e}\nwant {want:?}\nhave {:?}\n{}", routes(lab), logs()));
}

/// The router's second address on the node LAN, node-1's peer address in step 3 (ferrolb, like MetalLB, refuses
/// two BGPPeers with the same address, port and ASN even when their node selectors do not overlap).
const ROUTER_SECOND: &str = "198.18.0.2";

/// The BGPPeers of step 3: `peer1` (password `foo`) for every node but node-1, `node1` (the router's second
/// address) with a passwordSecret for node-1.
fn split_peers(router: &str) -> String {
    format!(
        "apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {{name: peer1, namespace: {METALLB_NS}}}
spec:
  myASN: 65559
  peerASN: 65559
  peerAddress: {router}
  password: foo
  nodeSelectors:
  - matchExpressions:
    - {{key: kubernetes.io/hostname, operator: NotIn, values: [node-1]}}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {{name: node1, namespace: {METALLB_NS}}}
spec:
  myASN: 65559
  peerASN: 65559
  peerAddress: {ROUTER_SECOND}
  passwordSecret: {{name: node1-bgp, namespace: {METALLB_NS}}}
  nodeSelectors:
  - matchLabels: {{kubernetes.io/hostname: node-1}}
"
    )
}

fn secret(password: &str) -> String {
    format!(
        "apiVersion: v1
kind: Secret
metadata: {{name: node1-bgp, namespace: {METALLB_NS}}}
type: kubernetes.io/basic-auth
stringData: {{password: {password}}}
"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metallb_objects_configure_ferrolb_like_the_configmap() {
    let lab = Lab::shared().expect("lab up (run testbed/lab deps first)");
    let client = lab.kube_client().await.unwrap();
    for ns in [CONFIG_NS, METALLB_NS, NS] {
        lab.kubectl(&["create", "namespace", ns]).unwrap();
    }
    crds_missing_is_a_clear_error(lab);
    install_metallb_crds(lab);
    install_ferrolb_advertisement_crd(lab);
    seed_crds_accepted(lab);
    router_node1_group(lab);
    let router = lab.env("ROUTER_LAN4").unwrap_or("198.18.0.1").to_owned();
    let app = Whoami::new(NS, 3);

    // --- 1. The ConfigMap source: the routes to compare with.
    let configmap_yaml = configmap(lab, "", "");
    kubectl_apply(lab, &configmap_yaml);
    let ferrolb = Ferrolb::start(lab, Identities::admin(lab), "configmap");
    let ips = services_up(&client, &app).await;
    let all = set(&[&node_addr(1), &node_addr(2), &node_addr(3)]);
    for ip in &ips {
        wait_paths(lab, ip, &all, "3 paths per VIP (ConfigMap source)");
    }
    let want = routes(lab);
    println!("ConfigMap source: routes {want:?}");
    assert_eq!(want.len(), 2, "{want:?}");
    services_down(lab, &client, &ips).await;
    let configmap_logs = ferrolb.logs(lab);
    ferrolb.stop();
    assert!(
        configmap_logs.contains("configuration loaded"),
        "{configmap_logs}"
    );

    // --- 2. The same configuration as metallb.io objects (`ferrolb config convert`), the same routes.
    let file = lab.dir().join("metallb-configmap.yaml");
    std::fs::write(&file, &configmap_yaml).unwrap();
    let converted = Command::new(env!("CARGO_BIN_EXE_ferrolb"))
        .args(["config", "convert", &file.display().to_string()])
        .args(["--namespace", METALLB_NS])
        .output()
        .unwrap();
    assert!(
        converted.status.success(),
        "{}",
        String::from_utf8_lossy(&converted.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&converted.stderr),
        "",
        "conversion report"
    );
    let objects = String::from_utf8(converted.stdout).unwrap();
    println!("converted objects:\n{objects}");
    kubectl_apply(lab, &objects);
    let ferrolb = MetallbFerrolb::start(lab);
    for i in 1..=lab.nodes() {
        lab.wait_established(&node_addr(i), Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{e}\n{}", ferrolb.logs(lab)));
    }
    let metallb_ips = services_up(&client, &app).await;
    assert_eq!(metallb_ips, ips, "the same addresses from the same pools");
    wait_routes(
        lab,
        &want,
        "the ConfigMap source's routes (metallb source)",
        || ferrolb.logs(lab),
    );
    assert_eq!(
        ferrolb.config_gauges(lab),
        vec![(Some(1), Some(0)); 1 + lab.nodes()],
        "config loaded, not stale: controller, speakers"
    );

    // --- 3. A passwordSecret peer for node-1; a rotation re-establishes node-1's session only.
    lab.exec_in_router(&[
        "ip",
        "addr",
        "add",
        &format!("{ROUTER_SECOND}/24"),
        "dev",
        "lan",
    ])
    .unwrap();
    kubectl_apply(lab, &secret("foo"));
    kubectl_apply(lab, &split_peers(&router));
    for i in 1..=lab.nodes() {
        lab.wait_established(&node_addr(i), Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{e}\n{}", ferrolb.logs(lab)));
    }
    wait_routes(lab, &want, "routes with the passwordSecret peer", || {
        ferrolb.logs(lab)
    });
    // Let every session run a while, so a reset shows as a short uptime.
    std::thread::sleep(Duration::from_secs(3));
    let rotated_at = Instant::now();
    router_config(lab, &["neighbor NODE1 password bar"]);
    kubectl_apply(lab, &secret("bar"));
    lab.wait_until(
        Duration::from_secs(60),
        "node-1 re-established with the new password",
        || {
            let up = uptimes(lab);
            Ok(up
                .get(&node_addr(1))
                .is_some_and(|&ms| ms < rotated_at.elapsed().as_millis() as u64)
                && neighbors(lab)
                    .get(&node_addr(1))
                    .is_some_and(|n| n["bgpState"] == "Established"))
        },
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e}: {:?}\n{}",
            neighbors(lab).get(&node_addr(1)),
            ferrolb.logs(lab)
        )
    });
    let up = uptimes(lab);
    let since = rotated_at.elapsed().as_millis() as u64;
    for i in 2..=lab.nodes() {
        let ms = up.get(&node_addr(i)).copied().unwrap_or(0);
        assert!(
            ms >= since,
            "node-{i}'s session was reset by node-1's rotation (up {ms} ms, rotated {since} ms ago)"
        );
    }
    wait_routes(lab, &want, "routes after the rotation", || {
        ferrolb.logs(lab)
    });
    println!("Secret rotation: node-1 re-established, node-2..3 up for more than {since} ms");

    // --- 4. Bad objects, one at a time: routes unchanged, stale everywhere, a Warning Event on the object that
    // names the field; deleting it recovers.
    for case in BAD_OBJECTS {
        bad_object(lab, &client, &ferrolb, &want, case).await;
    }

    advertisement_phases(lab, &client, &app, &ferrolb, &ips).await;

    for name in SERVICES.iter().chain(&["whoami-c", "whoami-e"]) {
        Api::<Service>::namespaced(client.clone(), NS)
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }
    ferrolb.stop();
}

/// ferrolb's own BGPAdvertisement CRD (`ferrolb crds`) in place of MetalLB v0.15.2's, before anything runs:
/// `serviceSelectors` came with MetalLB v0.16, so v0.15.2's schema refuses it. The other kinds stay under MetalLB's
/// own definitions, so ferrolb reads objects created under both. (Replacing a CRD under running daemons is not
/// what this tests: their open watches may go on being served under the old schema, which prunes new fields.)
fn install_ferrolb_advertisement_crd(lab: &Lab) {
    let out = Command::new(env!("CARGO_BIN_EXE_ferrolb"))
        .arg("crds")
        .output()
        .expect("run ferrolb crds");
    assert!(
        out.status.success(),
        "ferrolb crds: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let crd = text
        .split("\n---\n")
        .find(|doc| doc.contains("name: bgpadvertisements.metallb.io"))
        .expect("ferrolb crds prints the BGPAdvertisement CRD");
    kubectl_apply(lab, crd);
    lab.kubectl(&[
        "wait",
        "--for=condition=Established",
        "crd/bgpadvertisements.metallb.io",
        "--timeout=30s",
    ])
    .unwrap_or_else(|e| panic!("BGPAdvertisement CRD not established: {e}"));
}

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

/// Runs configuration commands on the router (`router bgp` context).
fn router_config(lab: &Lab, lines: &[&str]) {
    let mut cmd = Command::new("vtysh");
    cmd.args([
        "-N",
        lab.name(),
        "-c",
        "configure terminal",
        "-c",
        "router bgp 65559",
    ]);
    for l in lines {
        cmd.args(["-c", l]);
    }
    let out = cmd.output().expect("run vtysh");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && text.trim().is_empty(),
        "vtysh {lines:?}: {text}"
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

/// `--config-source metallb` ferrolb: the controller on the host and a speaker per node.
struct MetallbFerrolb {
    controller: Controller,
    controller_port: u16,
    speakers: Vec<NodeProcess>,
}

impl MetallbFerrolb {
    fn start(lab: &Lab) -> MetallbFerrolb {
        let controller_port = free_port();
        let log = std::fs::File::create(lab.dir().join("logs/metallb-controller.log")).unwrap();
        let controller = Controller(
            Command::new(env!("CARGO_BIN_EXE_ferrolb"))
                .args(["controller", "--config-source", "metallb"])
                .args(["--config-namespace", METALLB_NS, "--secret-refresh", "2"])
                .args(["--metrics-addr", &format!("127.0.0.1:{controller_port}")])
                .args(["--identity", "metallb-controller"])
                .env("KUBECONFIG", lab.kubeconfig_path())
                .env("RUST_LOG", "info")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start ferrolb controller"),
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
                    &[
                        "--config-source",
                        "metallb",
                        "--config-namespace",
                        METALLB_NS,
                        "--secret-refresh",
                        "2",
                    ],
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

/// One bad object: its kind, name (in metallb-system), version and spec, and its Warning Event's exact note.
struct BadObject {
    kind: &'static str,
    name: &'static str,
    version: &'static str,
    spec: &'static str,
    note: &'static str,
}

/// Each case issue 16 names that the API server's schema does not already refuse.
const BAD_OBJECTS: &[BadObject] = &[
    BadObject {
        kind: "IPAddressPool",
        name: "bad-cidr",
        version: "v1beta1",
        spec: "  addresses: [203.0.113.300/32]\n",
        note: "spec.addresses[0]: invalid CIDR \"203.0.113.300/32\"",
    },
    BadObject {
        kind: "IPAddressPool",
        name: "overlapping",
        version: "v1beta1",
        spec: "  addresses: [203.0.113.15/32]\n",
        note: "spec.addresses[0]: 203.0.113.15/32 in pool \"overlapping\" overlaps 203.0.113.10-203.0.113.20 in pool \"public-pool\" (IPAddressPool metallb-system/public-pool spec.addresses[0])",
    },
    BadObject {
        kind: "BGPAdvertisement",
        name: "missing-pool",
        version: "v1beta1",
        spec: "  ipAddressPools: [nope]\n",
        note: "spec.ipAddressPools[0]: no IPAddressPool named \"nope\" (defined: public-pool)",
    },
    BadObject {
        kind: "BGPAdvertisement",
        name: "missing-peer",
        version: "v1beta1",
        spec: "  ipAddressPools: [public-pool]\n  peers: [ghost]\n",
        note: "spec.peers[0]: no BGPPeer named \"ghost\" (defined: node1, peer1)",
    },
    BadObject {
        kind: "BGPPeer",
        name: "missing-secret",
        version: "v1beta2",
        spec: "  myASN: 65559\n  peerASN: 65559\n  peerAddress: 198.18.0.3\n  passwordSecret: {name: nope, namespace: metallb-system}\n",
        note: "spec.passwordSecret.name: Secret \"nope\" not found in the configuration namespace",
    },
];

/// Applies `case`, checks what a rejected object must do, and deletes it again.
async fn bad_object(
    lab: &Lab,
    client: &Client,
    ferrolb: &MetallbFerrolb,
    want: &BTreeMap<String, BTreeSet<String>>,
    case: &BadObject,
) {
    let BadObject {
        kind,
        name,
        version,
        spec,
        note,
    } = case;
    kubectl_apply(
        lab,
        &format!(
            "apiVersion: metallb.io/{version}\nkind: {kind}\nmetadata: {{name: {name}, namespace: {METALLB_NS}}}\nspec:\n{spec}"
        ),
    );
    ferrolb.wait_stale(
        lab,
        true,
        &format!("{kind} {name}: stale on the controller and every speaker"),
    );
    let events = Api::<Event>::namespaced(client.clone(), METALLB_NS);
    let mut warning = None;
    for _ in 0..100 {
        warning = events
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .find(|e| {
                e.regarding.as_ref().is_some_and(|r| {
                    r.kind.as_deref() == Some(*kind)
                        && r.name.as_deref() == Some(*name)
                        && r.uid.is_some()
                }) && e.type_.as_deref() == Some("Warning")
            });
        if warning.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let warning = warning
        .unwrap_or_else(|| panic!("no Warning Event on {kind} {name}\n{}", ferrolb.logs(lab)));
    println!(
        "{kind} {name}: Warning Event {:?} {:?}",
        warning.reason, warning.note
    );
    assert_eq!(
        warning.reason.as_deref(),
        Some("ConfigInvalid"),
        "{kind} {name}"
    );
    let text = warning.note.unwrap_or_default();
    assert!(
        text.starts_with(note),
        "{kind} {name}: note {text:?} does not start with {note:?}"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        &routes(lab),
        want,
        "{kind} {name}: a rejected object changed the routes"
    );
    lab.kubectl(&["delete", &kind.to_lowercase(), name, "-n", METALLB_NS])
        .unwrap();
    ferrolb.wait_stale(
        lab,
        false,
        &format!("{kind} {name} deleted: not stale anywhere"),
    );
    assert_eq!(&routes(lab), want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metallb_objects_configure_ferrolb_like_the_configmap() {
    let lab = Lab::shared().expect("lab up (run testbed/lab deps first)");
    let client = lab.kube_client().await.unwrap();
    for ns in [CONFIG_NS, METALLB_NS, NS] {
        lab.kubectl(&["create", "namespace", ns]).unwrap();
    }
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

/// The router's table `prefix → next hops` with each of `prefixes` from exactly the nodes `nodes`.
fn table(prefixes: &[&String], nodes: &[usize]) -> BTreeMap<String, BTreeSet<String>> {
    let hops: BTreeSet<String> = nodes.iter().map(|&i| node_addr(i)).collect();
    prefixes
        .iter()
        .map(|p| (format!("{p}/32"), hops.clone()))
        .collect()
}

/// The communities (`community.string`, empty when none) of the router's paths for `prefix`, by peer.
fn path_communities(lab: &Lab, prefix: &str) -> BTreeMap<String, String> {
    bgp_paths(lab, prefix)
        .iter()
        .filter_map(|p| {
            let peer = p["peer"]["peerId"].as_str()?.to_owned();
            let community = p["community"]["string"].as_str().unwrap_or("").to_owned();
            Some((peer, community))
        })
        .collect()
}

/// A BGPAdvertisement `name` with the spec lines `spec` (indented by two spaces).
fn advertisement(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {{name: {name}, namespace: {METALLB_NS}}}
spec:
{spec}"
    )
}

const COMMUNITY: &str = "apiVersion: metallb.io/v1beta1
kind: Community
metadata: {name: lab-communities, namespace: metallb-system}
spec:
  communities:
  - {name: lab-tag, value: \"64512:100\"}
";

/// Two more pools, 198.51.100.10-14 labelled `tier: lab` and 198.51.100.20-24 labelled `tier: other` (5
/// addresses each), and an advertisement that selects the first by its label.
const LAB_POOLS: &str = "apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: lab-pool
  namespace: metallb-system
  labels: {tier: lab}
spec:
  addresses: [198.51.100.10-198.51.100.14]
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: other-pool
  namespace: metallb-system
  labels: {tier: other}
spec:
  addresses: [198.51.100.20-198.51.100.24]
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: by-label, namespace: metallb-system}
spec:
  ipAddressPoolSelectors:
  - matchLabels: {tier: lab}
  serviceSelectors:
  - matchLabels: {announce: \"yes\"}
";

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

/// Label under which step 6's advertisement selects its nodes.
const ANNOUNCE_LABEL: &str = "lab.ferrolb.io/announce";

/// The `status` of IPAddressPool `name`, read with kubectl.
fn pool_status(lab: &Lab, name: &str) -> Value {
    lab.kubectl(&["get", "ipaddresspool", name, "-n", METALLB_NS, "-o", "json"])
        .ok()
        .and_then(|t| ferrolb_testbed::serde_json::from_str::<Value>(&t).ok())
        .map(|v| v["status"].clone())
        .unwrap_or(Value::Null)
}

/// Waits until the IPAddressPools' statuses are exactly `want` (pool → `[assignedIPv4, availableIPv4,
/// assignedIPv6, availableIPv6]`); the controller writes them at most once a second.
fn wait_pool_status(lab: &Lab, want: &[(&str, [i64; 4])], what: &str, logs: impl Fn() -> String) {
    let want: BTreeMap<&str, Value> = want
        .iter()
        .map(|(pool, [a4, f4, a6, f6])| {
            let v = ferrolb_testbed::serde_json::json!({
                "assignedIPv4": a4, "availableIPv4": f4, "assignedIPv6": a6, "availableIPv6": f6
            });
            (*pool, v)
        })
        .collect();
    let have =
        || -> BTreeMap<&str, Value> { want.keys().map(|p| (*p, pool_status(lab, p))).collect() };
    lab.wait_until(Duration::from_secs(30), what, || Ok(have() == want))
        .unwrap_or_else(|e| panic!("{e}\nwant {want:?}\nhave {:?}\n{}", have(), logs()));
}

/// Steps 5 to 8, with the two whoami Services at `ips` (public-pool) announced from every node through
/// `bgpadvertisement1`, node-1 peering with the router's second address (BGPPeer `node1`), the others with
/// its first (`peer1`).
async fn advertisement_phases(
    lab: &Lab,
    client: &Client,
    app: &Whoami,
    ferrolb: &MetallbFerrolb,
    ips: &[String],
) {
    let public: Vec<&String> = ips.iter().collect();
    let logs = || ferrolb.logs(lab);
    let public_ad = |extra: &str| {
        advertisement(
            "bgpadvertisement1",
            &format!("  ipAddressPools: [public-pool]\n{extra}"),
        )
    };

    // --- 5. A Community alias; editing the advertisement's communities is an UPDATE, no session reset.
    kubectl_apply(lab, COMMUNITY);
    kubectl_apply(lab, &public_ad("  communities: [lab-tag]\n"));
    let tagged = |value: &str| -> BTreeMap<String, String> {
        (1..=lab.nodes())
            .map(|i| (node_addr(i), value.to_owned()))
            .collect()
    };
    let have_communities = || -> Vec<BTreeMap<String, String>> {
        ips.iter().map(|ip| path_communities(lab, ip)).collect()
    };
    let wait_communities = |value: &str, what: &str| {
        let want = vec![tagged(value); ips.len()];
        lab.wait_until(Duration::from_secs(30), what, || {
            Ok(have_communities() == want)
        })
        .unwrap_or_else(|e| {
            panic!(
                "{e}\nwant {want:?}\nhave {:?}\n{}",
                have_communities(),
                logs()
            )
        });
    };
    wait_communities("64512:100", "the alias lab-tag's community on every path");
    // FRR shows uptimes as whole seconds of one clock (now - start, each truncated): a session that was not
    // reset shows, `e` ms after an earlier reading, more than that reading + e - 1000 ms; one reset during the
    // wait shows at most e + 1000 ms, below that bound once the earlier reading is 4 s or more.
    lab.wait_until(Duration::from_secs(15), "every session up 4 s", || {
        let up = uptimes(lab);
        Ok((1..=lab.nodes()).all(|i| up.get(&node_addr(i)).is_some_and(|&ms| ms >= 4000)))
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}\n{}", uptimes(lab), logs()));
    let (up_before, updates_before) = (uptimes(lab), updates_received(lab));
    let edited = Instant::now();
    kubectl_apply(lab, &public_ad("  communities: [\"64512:200\"]\n"));
    wait_communities("64512:200", "the edited community on every path");
    let elapsed = edited.elapsed().as_millis() as u64;
    let (up_after, updates_after) = (uptimes(lab), updates_received(lab));
    for i in 1..=lab.nodes() {
        let peer = node_addr(i);
        let (before, after) = (up_before[&peer], up_after.get(&peer).copied().unwrap_or(0));
        assert!(
            after + 1000 >= before + elapsed,
            "node-{i}'s session was reset by the community edit: up {before} ms, then {after} ms {elapsed} ms \
             later\n{}",
            logs()
        );
        assert!(
            updates_after.get(&peer) > updates_before.get(&peer),
            "node-{i}: no UPDATE received for the edit: {updates_before:?} → {updates_after:?}"
        );
    }
    println!(
        "community edit: UPDATEs {updates_before:?} → {updates_after:?}, uptimes {up_before:?} → {up_after:?}"
    );

    // --- 6. `peers` and `nodeSelectors` limit who gets the routes.
    kubectl_apply(lab, &public_ad("  peers: [node1]\n"));
    wait_routes(
        lab,
        &table(&public, &[1]),
        "peers: [node1]: node-1's session only",
        logs,
    );
    kubectl_apply(lab, &public_ad("  peers: [peer1]\n"));
    wait_routes(
        lab,
        &table(&public, &[2, 3]),
        "peers: [peer1]: node-2 and node-3 only",
        logs,
    );
    lab.kubectl(&["label", "node", "node-3", &format!("{ANNOUNCE_LABEL}=yes")])
        .unwrap();
    let selector = format!("  nodeSelectors:\n  - matchLabels: {{{ANNOUNCE_LABEL}: \"yes\"}}\n");
    kubectl_apply(lab, &public_ad(&selector));
    wait_routes(
        lab,
        &table(&public, &[3]),
        "nodeSelectors: the labelled node-3 only",
        logs,
    );
    lab.kubectl(&["label", "node", "node-2", &format!("{ANNOUNCE_LABEL}=yes")])
        .unwrap();
    lab.kubectl(&["label", "node", "node-3", &format!("{ANNOUNCE_LABEL}-")])
        .unwrap();
    wait_routes(
        lab,
        &table(&public, &[2]),
        "the label moved from node-3 to node-2",
        logs,
    );
    kubectl_apply(lab, &public_ad(""));
    wait_routes(lab, &table(&public, &[1, 2, 3]), "every node again", logs);

    // --- 7. `ipAddressPoolSelectors` and `serviceSelectors` (under ferrolb's own CRD definition): of the
    // selected pool's Services only the labelled one is announced; the pool no advertisement selects is not.
    kubectl_apply(lab, LAB_POOLS);
    let mut lab_ips = Vec::new();
    for (name, pool, labelled) in [
        ("whoami-c", "lab-pool", true),
        ("whoami-d", "lab-pool", false),
        ("whoami-e", "other-pool", true),
    ] {
        let mut svc = app.service(pool);
        svc["metadata"]["name"] = name.into();
        if labelled {
            svc["metadata"]["labels"] = ferrolb_testbed::serde_json::json!({"announce": "yes"});
        }
        apply(client, svc).await;
        lab_ips.push(ingress_ip(client, NS, name).await);
    }
    println!("whoami-c, -d, -e: {lab_ips:?}");
    assert!(
        lab_ips[..2].iter().all(|ip| ip.starts_with("198.51.100.1")),
        "{lab_ips:?}"
    );
    assert!(lab_ips[2].starts_with("198.51.100.2"), "{lab_ips:?}");
    let mut announced = public.clone();
    announced.push(&lab_ips[0]);
    wait_routes(
        lab,
        &table(&announced, &[1, 2, 3]),
        "lab-pool's labelled whoami-c announced; its unlabelled whoami-d and other-pool's whoami-e not",
        logs,
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        routes(lab),
        table(&announced, &[1, 2, 3]),
        "whoami-d (not selected by serviceSelectors) or whoami-e (pool not selected) was announced"
    );
    // Labelling whoami-d makes it selected.
    lab.kubectl(&["label", "service", "-n", NS, "whoami-d", "announce=yes"])
        .unwrap();
    announced.push(&lab_ips[1]);
    wait_routes(
        lab,
        &table(&announced, &[1, 2, 3]),
        "whoami-d announced once labelled announce=yes",
        logs,
    );

    // --- 8. IPAddressPool.status after the allocations and after a release.
    // public-pool: 203.0.113.10-20 (11 addresses), lab-pool and other-pool 5 each.
    wait_pool_status(
        lab,
        &[
            ("public-pool", [2, 9, 0, 0]),
            ("lab-pool", [2, 3, 0, 0]),
            ("other-pool", [1, 4, 0, 0]),
        ],
        "pool status after 5 allocations",
        logs,
    );
    delete_service(lab, client, NS, "whoami-d", &lab_ips[1]).await;
    wait_pool_status(
        lab,
        &[
            ("public-pool", [2, 9, 0, 0]),
            ("lab-pool", [1, 4, 0, 0]),
            ("other-pool", [1, 4, 0, 0]),
        ],
        "pool status after whoami-d is deleted",
        logs,
    );
    announced.pop();
    assert_eq!(
        routes(lab),
        table(&announced, &[1, 2, 3]),
        "only whoami-d's route withdrawn"
    );
}

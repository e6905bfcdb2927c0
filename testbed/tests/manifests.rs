//! `manifests/` on the lab's real, RBAC-enforcing kube-apiserver, in one scenario (the lab is shared by every
//! step):
//!
//! 1. `manifests/ferrolb.yaml` is exactly `kubectl kustomize manifests/`, and the opt-in components render;
//! 2. `kubectl apply --dry-run=server` accepts every manifest, then they are applied for real;
//! 3. `kubectl auth can-i` as each ServiceAccount: yes for every verb the code uses (the named [`CHECKS`]),
//!    no for the [`DENIED`] ones;
//! 4. each rule of each Role/ClusterRole, removed alone, makes the checks it covers fail (so every rule is
//!    needed), then is put back;
//! 5. the controller and three speakers run under tokens of exactly these ServiceAccounts: a Service gets an
//!    address, the router has a path from every node with a ready endpoint and then from only the one left
//!    after scaling down, and `--explain` works under the speaker's token;
//! 6. every metric the README documents is registered by the running controller or speaker, and the other way
//!    round; RSS and CPU of the processes are printed (the figures behind the manifests' resources).
//!
//! Needs root, FRR, GoBGP and the control plane (`testbed/lab deps`); fails loudly without them. Figures:
//! `cargo test --test manifests -- --nocapture`.

use ferrolb_testbed::k8s_openapi::api::core::v1::{Pod, Service};
use ferrolb_testbed::kube::api::{Api, ListParams, Patch, PatchParams};
use ferrolb_testbed::kube::config::Kubeconfig;
use ferrolb_testbed::serde_json::{self, Value, json};
use ferrolb_testbed::{Lab, LabOptions, NodeProcess};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

#[path = "manifests_rbac.rs"]
mod rbac;

use rbac::{
    APP_NS, CHECKS, DENIED, SYSTEM, every_rule_is_needed, kubectl_ok, rendered_objects, replace,
    repo, wait_answers, wrong,
};

/// Checks 1 and 2: rendering, server-side dry run, and the real apply.
fn render_and_apply(lab: &Lab) {
    let dir = repo().join("manifests");
    let rendered = kubectl_ok(lab, &["kustomize", &dir.display().to_string()]);
    let committed =
        std::fs::read_to_string(dir.join("ferrolb.yaml")).expect("manifests/ferrolb.yaml");
    let body: String = committed
        .lines()
        .skip_while(|l| l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        body == rendered,
        "manifests/ferrolb.yaml differs from `kubectl kustomize manifests/`; regenerate it with\n  \
         (sed -n '1,/^#$/p' manifests/ferrolb.yaml; kubectl kustomize manifests/) > /tmp/f && mv /tmp/f manifests/ferrolb.yaml"
    );
    // The opt-in components render onto the base.
    let overlay = std::env::temp_dir().join(format!("ferrolb-overlay-{}", std::process::id()));
    std::fs::create_dir_all(&overlay).unwrap();
    // kustomize takes only relative paths to other kustomizations.
    let up = "../".repeat(overlay.components().count() - 1);
    let base = format!("{up}{}", dir.display().to_string().trim_start_matches('/'));
    std::fs::write(
        overlay.join("kustomization.yaml"),
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [{base}]\n\
             components: [{base}/components/control-plane-tolerations, {base}/components/vip-interface]\n"
        ),
    )
    .unwrap();
    let with_components = kubectl_ok(lab, &["kustomize", &overlay.display().to_string()]);
    assert!(
        with_components.contains("--vip-interface=flb-vip"),
        "{with_components}"
    );
    assert!(with_components.contains("- NET_ADMIN"), "{with_components}");
    assert!(
        with_components.contains("node-role.kubernetes.io/control-plane"),
        "{with_components}"
    );
    assert!(!rendered.contains("NET_ADMIN"), "the base grants NET_ADMIN");

    // Server-side dry run of the base (-k), the rendered file and the overlay, then the real thing. A dry run
    // creates nothing, so the namespace the others live in goes first (dry run, then for real).
    let namespace = dir.join("namespace.yaml").display().to_string();
    kubectl_ok(lab, &["apply", "--dry-run=server", "-f", &namespace]);
    kubectl_ok(lab, &["apply", "-f", &namespace]);
    kubectl_ok(
        lab,
        &[
            "apply",
            "--dry-run=server",
            "-k",
            &dir.display().to_string(),
        ],
    );
    let overlay_file = overlay.join("rendered.yaml");
    std::fs::write(&overlay_file, &with_components).unwrap();
    kubectl_ok(
        lab,
        &[
            "apply",
            "--dry-run=server",
            "-f",
            &overlay_file.display().to_string(),
        ],
    );
    let _ = std::fs::remove_dir_all(&overlay);
    let out = kubectl_ok(
        lab,
        &[
            "apply",
            "-f",
            &dir.join("ferrolb.yaml").display().to_string(),
        ],
    );
    println!("kubectl apply -f manifests/ferrolb.yaml:\n{out}");
}

/// A kubeconfig for ServiceAccount `account` (a minted token), next to the admin one.
fn account_kubeconfig(lab: &Lab, account: &str) -> PathBuf {
    let admin = Kubeconfig::read_from(lab.kubeconfig_path()).expect("admin kubeconfig");
    let cluster = admin
        .clusters
        .first()
        .and_then(|c| c.cluster.clone())
        .expect("a cluster");
    let mut cluster_json = json!({"server": cluster.server});
    if let Some(ca) = &cluster.certificate_authority {
        cluster_json["certificate-authority"] = json!(ca);
    }
    if let Some(ca) = &cluster.certificate_authority_data {
        cluster_json["certificate-authority-data"] = json!(ca);
    }
    let token = lab.token(account, SYSTEM).expect("mint token");
    let kubeconfig = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "lab", "cluster": cluster_json}],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": account, "context": {"cluster": "lab", "user": account}}],
        "current-context": account,
    });
    let path = lab.dir().join(format!("kubeconfig-{account}"));
    std::fs::write(&path, serde_json::to_vec_pretty(&kubeconfig).unwrap()).unwrap();
    path
}

struct Controller(Child);

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn start_speaker(lab: &Lab, i: usize, kubeconfig: &Path) -> NodeProcess {
    let state = lab.dir().join(format!("rbac-speaker-state-{i}"));
    lab.spawn_in_node(
        i,
        &format!("rbac-speaker-{i}"),
        &[
            "env",
            &format!("KUBECONFIG={}", kubeconfig.display()),
            "RUST_LOG=info",
            env!("CARGO_BIN_EXE_ferrolb"),
            "speaker",
            "--node-name",
            &format!("node-{i}"),
            "--vip-interface",
            "flb-vip",
            "--metrics-addr",
            "127.0.0.1:7472",
            "--state-dir",
            &state.display().to_string(),
        ],
    )
    .expect("start speaker")
}

fn logs(lab: &Lab, controller_log: &Path) -> String {
    let mut out = format!(
        "--- controller\n{}\n",
        std::fs::read_to_string(controller_log).unwrap_or_default()
    );
    for i in 1..=lab.nodes() {
        let p = lab.dir().join("logs").join(format!("rbac-speaker-{i}.log"));
        out.push_str(&format!(
            "--- speaker {i}\n{}\n",
            std::fs::read_to_string(p).unwrap_or_default()
        ));
    }
    out
}

/// Peers the router has a path for `prefix` from.
fn path_peers(lab: &Lab, prefix: &str) -> BTreeSet<String> {
    lab.vtysh(&format!("show bgp ipv4 unicast {prefix} json"))
        .ok()
        .and_then(|v| v["paths"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|p| p["peer"]["peerId"].as_str().map(str::to_owned))
        .collect()
}

fn whoami(replicas: u32) -> Value {
    let labels = json!({"app": "whoami"});
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "whoami", "namespace": APP_NS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                        {"labelSelector": {"matchLabels": labels}, "topologyKey": "kubernetes.io/hostname"}
                    ]}},
                    "tolerations": [{"operator": "Exists"}],
                    "containers": [{"name": "whoami", "image": "traefik/whoami"}]
                }
            }
        }
    })
}

/// Peak RSS (KiB) and CPU seconds (user + system) of `pid`, from /proc.
fn usage(pid: u32) -> (u64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    // After the command: state is field 3, utime 14 and stime 15 (1-based), so indexes 11 and 12 here.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    // USER_HZ: 100 on Linux for every architecture the lab runs on.
    (hwm, ticks as f64 / 100.0)
}

/// Metric families a `/metrics` text exports (`# TYPE name kind`), with the names samples use.
fn exported_metrics(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
            continue;
        };
        let sample = match kind {
            "counter" if !name.ends_with("_total") => format!("{name}_total"),
            "info" if !name.ends_with("_info") => format!("{name}_info"),
            _ => name.to_owned(),
        };
        names.insert(sample);
    }
    names
}

/// The metric names of the README's metrics reference (between `<!-- metrics:begin -->` and `<!-- metrics:end -->`).
fn documented_metrics() -> BTreeSet<String> {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let section = readme
        .split_once("<!-- metrics:begin -->")
        .and_then(|(_, r)| r.split_once("<!-- metrics:end -->"))
        .map(|(s, _)| s)
        .expect("README.md has a metrics reference between <!-- metrics:begin --> and <!-- metrics:end -->");
    section
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| s.starts_with("ferrolb_"))
        .map(|s| s.split(['{', ' ']).next().unwrap_or(s).to_owned())
        .collect()
}

async fn ingress_ip(api: &Api<Service>, name: &str, what: &str) -> String {
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
    panic!("{what}: {APP_NS}/{name} got no ingress IP");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_grant_exactly_what_ferrolb_calls_on_a_real_api_server() {
    let lab = Lab::start(LabOptions::default()).expect("lab up (run testbed/lab deps first)");
    let client = lab.kube_client().await.unwrap();

    // 1, 2.
    render_and_apply(&lab);
    kubectl_ok(&lab, &["create", "namespace", APP_NS]);
    // The lab's ConfigMap: the seed's shape, pointed at the lab router.
    let cm = lab.dir().join("configmap.yaml");
    kubectl_ok(&lab, &["apply", "-f", &cm.display().to_string()]);

    // 3.
    wait_answers(&lab, CHECKS, true, "every call the code makes");
    let allowed = wrong(&lab, DENIED, false);
    assert!(allowed.is_empty(), "granted but must not be: {allowed:?}");

    // 4.
    every_rule_is_needed(&lab);

    // 5. The controller and the speakers under their own ServiceAccounts' tokens.
    let controller_kc = account_kubeconfig(&lab, "controller");
    let speaker_kc = account_kubeconfig(&lab, "speaker");
    let port = free_port();
    let controller_log = lab.dir().join("logs").join("rbac-controller.log");
    let log = std::fs::File::create(&controller_log).unwrap();
    let controller = Controller(
        Command::new(env!("CARGO_BIN_EXE_ferrolb"))
            .args(["controller", "--metrics-addr", &format!("127.0.0.1:{port}")])
            .args(["--identity", "rbac-test"])
            .env("KUBECONFIG", &controller_kc)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start ferrolb controller"),
    );
    let speakers: Vec<NodeProcess> = (1..=3)
        .map(|i| start_speaker(&lab, i, &speaker_kc))
        .collect();
    for i in 1..=3 {
        lab.wait_established(&format!("198.18.0.{}", 10 + i), Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{e}\n{}", logs(&lab, &controller_log)));
    }
    let pp = PatchParams::apply("ferrolb-manifests-test").force();
    let deployments: Api<ferrolb_testbed::k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), APP_NS);
    deployments
        .patch("whoami", &pp, &Patch::Apply(&whoami(3)))
        .await
        .unwrap();
    let services: Api<Service> = Api::namespaced(client.clone(), APP_NS);
    let svc = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "whoami", "namespace": APP_NS},
        "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local",
                 "selector": {"app": "whoami"}, "ports": [{"port": 80}]}
    });
    services
        .patch("whoami", &pp, &Patch::Apply(&svc))
        .await
        .unwrap();
    let vip = ingress_ip(&services, "whoami", "controller under its ServiceAccount").await;
    let all: BTreeSet<String> = (1..=3).map(|i| format!("198.18.0.{}", 10 + i)).collect();
    lab.wait_until(Duration::from_secs(60), "3 paths for the VIP", || {
        Ok(path_peers(&lab, &vip) == all)
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}: {:?}\n{}",
            path_peers(&lab, &vip),
            logs(&lab, &controller_log)
        )
    });

    deployments
        .patch("whoami", &pp, &Patch::Apply(&whoami(1)))
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), APP_NS);
    let mut home = BTreeSet::new();
    for _ in 0..150 {
        home = pods
            .list(&ListParams::default().labels("app=whoami"))
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter_map(|p| p.spec.and_then(|s| s.node_name))
            .collect();
        if home.len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let home: BTreeSet<String> = home
        .iter()
        .map(|n| {
            format!(
                "198.18.0.{}",
                10 + n.trim_start_matches("node-").parse::<usize>().unwrap()
            )
        })
        .collect();
    assert_eq!(home.len(), 1, "{home:?}");
    lab.wait_until(Duration::from_secs(60), "1 path after scaling to 1", || {
        Ok(path_peers(&lab, &vip) == home)
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}: {:?}\n{}",
            path_peers(&lab, &vip),
            logs(&lab, &controller_log)
        )
    });
    let explain = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.node_netns(1).unwrap(),
            env!("CARGO_BIN_EXE_ferrolb"),
        ])
        .args([
            "speaker",
            "--node-name",
            "node-1",
            "--explain",
            &format!("{APP_NS}/whoami"),
        ])
        .env("KUBECONFIG", &speaker_kc)
        .output()
        .unwrap();
    assert!(
        explain.status.success(),
        "--explain under the speaker's token: {}",
        String::from_utf8_lossy(&explain.stderr)
    );
    // `ip netns exec` and `env` exec the speaker: the recorded pids are the speakers' own.
    let all_logs = logs(&lab, &controller_log);
    assert!(
        !all_logs.to_lowercase().contains("forbidden"),
        "a component was refused:\n{all_logs}"
    );

    // 6. Documented metrics are registered, and registered ones are documented. A labelled family with no
    // series is not exported at all, so first give the two that start empty a series: an allocation failure
    // (a Service asking for a pool that does not exist) and a session that went down (the router resets it).
    let nopool = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "nopool", "namespace": APP_NS,
                     "annotations": {"metallb.universe.tf/address-pool": "no-such-pool"}},
        "spec": {"type": "LoadBalancer", "selector": {"app": "nopool"}, "ports": [{"port": 80}]}
    });
    services
        .patch("nopool", &pp, &Patch::Apply(&nopool))
        .await
        .unwrap();
    lab.vtysh_text("clear bgp 198.18.0.11")
        .expect("reset node-1's session");
    let documented = documented_metrics();
    let mut exported = BTreeSet::new();
    for _ in 0..100 {
        let controller_metrics = http_get(port, "/metrics").await;
        let speaker_metrics = lab
            .exec_in_node(
                1,
                &[
                    "curl",
                    "-sS",
                    "--max-time",
                    "3",
                    "http://127.0.0.1:7472/metrics",
                ],
            )
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        exported = exported_metrics(&controller_metrics);
        exported.extend(exported_metrics(&speaker_metrics));
        if documented.is_subset(&exported) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let undocumented: Vec<&String> = exported.difference(&documented).collect();
    let unregistered: Vec<&String> = documented.difference(&exported).collect();
    assert!(
        unregistered.is_empty(),
        "documented in README.md but not registered: {unregistered:?}"
    );
    assert!(
        undocumented.is_empty(),
        "registered but missing from README.md's metrics reference: {undocumented:?}"
    );
    println!("metrics documented and registered: {}", documented.len());

    // End to end without a rule: with the controller's `services/status` rule removed, a new Service gets no
    // address and the controller reports the refusal; with the rule back, it gets one.
    let role = rendered_objects(&lab)
        .into_iter()
        .find(|o| o["kind"] == "ClusterRole" && o["metadata"]["name"] == "ferrolb-controller")
        .expect("the controller's ClusterRole");
    let mut without = role.clone();
    without["rules"]
        .as_array_mut()
        .unwrap()
        .retain(|r| r["resources"] != json!(["services/status"]));
    replace(&lab, &without);
    let status_check: Vec<rbac::Check> = CHECKS
        .iter()
        .filter(|c| c.name == "controller patches Service status")
        .copied()
        .collect();
    wait_answers(&lab, &status_check, false, "services/status rule removed");
    let denied = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "denied", "namespace": APP_NS},
        "spec": {"type": "LoadBalancer", "selector": {"app": "whoami"}, "ports": [{"port": 8080}]}
    });
    services
        .patch("denied", &pp, &Patch::Apply(&denied))
        .await
        .unwrap();
    lab.wait_until(
        Duration::from_secs(30),
        "the controller reports a refused status write",
        || {
            Ok(std::fs::read_to_string(&controller_log)
                .unwrap_or_default()
                .to_lowercase()
                .contains("forbidden"))
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", logs(&lab, &controller_log)));
    let status = services.get("denied").await.unwrap().status;
    assert!(
        status
            .and_then(|s| s.load_balancer)
            .and_then(|lb| lb.ingress)
            .is_none_or(|i| i.is_empty()),
        "a Service got an address without the services/status rule"
    );
    replace(&lab, &role);
    wait_answers(&lab, CHECKS, true, "services/status rule restored");
    let ip = ingress_ip(&services, "denied", "after the rule is restored").await;
    println!("without services/status: no address and a refusal logged; restored: {ip}");

    let (rss, cpu) = usage(controller.0.id());
    println!(
        "controller (leader, 3 Services, 3 nodes): peak RSS {} KiB, CPU {cpu:.2} s",
        rss
    );
    for (i, s) in speakers.iter().enumerate() {
        let (rss, cpu) = usage(s.pid());
        println!(
            "speaker node-{} (1 peer, 3 Services): peak RSS {} KiB, CPU {cpu:.2} s",
            i + 1,
            rss
        );
    }
    drop(speakers);
    drop(controller);
    lab.down().expect("lab down");
}

async fn http_get(port: u16, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect to /metrics");
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).await.unwrap();
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

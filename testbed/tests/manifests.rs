//! `manifests/` on the lab's real, RBAC-enforcing kube-apiserver, in one scenario (the lab is shared by every
//! step):
//!
//! 1. `manifests/ferrolb.yaml` is exactly `kubectl kustomize manifests/`, and the opt-in components render
//!    (`components/tenant-fence-policy` is tested on the API server by `tenant_fences.rs`);
//! 2. `kubectl apply --dry-run=server` accepts every manifest, then they are applied for real;
//! 3. `kubectl auth can-i` as each ServiceAccount: yes for every verb the code uses (the named [`CHECKS`]),
//!    no for the [`DENIED`] ones;
//! 4. each rule of each Role/ClusterRole, removed alone, makes the checks it covers fail (so every rule is
//!    needed), then is put back;
//! 5. `components/metallb-crds` and `components/metallb-source` (`manifests_metallb.rs`): the CRDs are exactly
//!    `ferrolb crds`, render, validate and take MetalLB-style objects and the controller's pool status; the added
//!    Roles answer yes for every call of `--config-source=metallb`, no for the rest, each rule needed;
//! 6. the controller and three speakers run under tokens of exactly these ServiceAccounts and the whoami
//!    scenario passes (`speaker_common::whoami_scenario`: 3 paths, scale to 1, a pod move, the exclusion label,
//!    `--explain` under the speaker's token), the Service's deletion withdraws the route, and no log shows a
//!    refusal;
//! 7. every metric the README documents is registered by the running controller or speaker, and the other way
//!    round; RSS and CPU of the processes are printed (the figures behind the manifests' resources).
//!
//! Needs root, FRR, GoBGP and the control plane (`testbed/lab deps`); fails loudly without them. Figures:
//! `cargo test --test manifests -- --nocapture`.

use ferrolb_testbed::k8s_openapi::api::core::v1::Service;
use ferrolb_testbed::kube::api::{Api, Patch, PatchParams};
use ferrolb_testbed::serde_json::json;
use ferrolb_testbed::{Lab, LabOptions};
use std::collections::BTreeSet;
use std::time::Duration;

mod kustomize_overlay;
#[path = "manifests_metallb.rs"]
mod metallb;
#[path = "manifests_rbac.rs"]
mod rbac;
mod readme_metrics;
mod speaker_common;

use rbac::{
    APP_NS, CHECKS, DENIED, every_rule_is_needed, kubectl_ok, rendered_objects, replace, repo,
    wait_answers, wrong,
};
use speaker_common::{
    Ferrolb, Identities, Whoami, delete_service, ingress_ip, speaker_metrics, whoami_scenario,
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
    let with_components = kustomize_overlay::render(
        lab,
        "manifests-overlay",
        &[
            "control-plane-tolerations",
            "vip-interface",
            "tenant-fence-policy",
            "metrics-network-policy",
            "unnumbered-peers",
        ],
    );
    assert!(
        with_components.contains("--vip-interface=flb-vip"),
        "{with_components}"
    );
    // Both capability components append: neither replaces the other's.
    assert!(
        with_components.contains("add:\n            - NET_ADMIN\n            - NET_RAW\n"),
        "{with_components}"
    );
    assert!(
        with_components.contains("node-role.kubernetes.io/control-plane"),
        "{with_components}"
    );
    assert!(
        with_components.contains("kind: ValidatingAdmissionPolicyBinding"),
        "{with_components}"
    );
    assert!(
        with_components.contains("kind: NetworkPolicy"),
        "{with_components}"
    );
    // The daemons listen on the Pod's address, not 0.0.0.0.
    assert_eq!(
        rendered.matches("- --metrics-addr=$(POD_IP):7472").count(),
        2,
        "{rendered}"
    );
    assert_eq!(
        rendered.matches("fieldPath: status.podIP").count(),
        2,
        "{rendered}"
    );
    assert!(!rendered.contains("NET_ADMIN"), "the base grants NET_ADMIN");
    assert!(!rendered.contains("NET_RAW"), "the base grants NET_RAW");
    assert!(
        !rendered.contains("ValidatingAdmissionPolicy"),
        "the base refuses Services at admission"
    );

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
    let overlay_file = lab.dir().join("manifests-overlay").join("rendered.yaml");
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

    // 5.
    metallb::metallb_source(&lab).await;

    // 6. The controller and the speakers under their own ServiceAccounts' tokens: the whoami scenario (3 paths,
    // scale to 1, a pod move, the exclusion label, `--explain`), then the Service's deletion withdraws the route.
    let identities = Identities::service_accounts(&lab);
    let ferrolb = Ferrolb::start(&lab, identities, "rbac-speaker");
    let mut app = Whoami::new(APP_NS, 3);
    app.tolerate_all = true;
    let vip = whoami_scenario(&lab, &client, &ferrolb, &app).await;
    delete_service(&lab, &client, APP_NS, "whoami", &vip).await;
    if let Some(refusal) = ferrolb.refused(&lab) {
        panic!("a component was refused: {refusal}\n{}", ferrolb.logs(&lab));
    }
    println!(
        "whoami scenario under the controller and speaker ServiceAccounts: passed, nothing refused"
    );
    let controller_log = lab.dir().join("logs").join("rbac-speaker-controller.log");
    let port = ferrolb.controller_port;
    let pp = PatchParams::apply("ferrolb-manifests-test").force();
    let services: Api<Service> = Api::namespaced(client.clone(), APP_NS);

    // 7. Documented metrics are registered, and registered ones are documented. A labelled family with no
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
    let documented = readme_metrics::documented_metrics(&repo());
    let mut exported = BTreeSet::new();
    for _ in 0..100 {
        let controller_metrics = http_get(port, "/metrics").await;
        let speaker_metrics = speaker_metrics(&lab, 1);
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
    .unwrap_or_else(|e| panic!("{e}\n{}", ferrolb.logs(&lab)));
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
    let ip = ingress_ip(&client, APP_NS, "denied").await;
    // KEP-1860: the nodes are the load balancer, so kube-proxy keeps its in-cluster rules for the address.
    let ingress = services
        .get("denied")
        .await
        .unwrap()
        .status
        .and_then(|s| s.load_balancer);
    assert_eq!(
        ingress
            .and_then(|lb| lb.ingress)
            .map(|i| i.iter().map(|e| e.ip_mode.clone()).collect::<Vec<_>>()),
        Some(vec![Some("VIP".to_owned())])
    );
    println!("without services/status: no address and a refusal logged; restored: {ip}");

    let (rss, cpu) = usage(ferrolb.controller.0.id());
    println!(
        "controller (leader, 3 Services, 3 nodes): peak RSS {} KiB, CPU {cpu:.2} s",
        rss
    );
    for (i, s) in ferrolb.speakers.iter().flatten().enumerate() {
        let (rss, cpu) = usage(s.pid());
        println!(
            "speaker node-{} (1 peer, 3 Services): peak RSS {} KiB, CPU {cpu:.2} s",
            i + 1,
            rss
        );
    }
    ferrolb.stop();
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

//! The Helm chart `manifests/helm/ferrolb` with the real `helm` (built from the Go module proxy by
//! `testbed/controlplane/build`, version in `testbed/controlplane/helm.env`) on the lab's real API server, in one
//! scenario on one lab:
//!
//! 1. for the default values `helm template` renders exactly the objects of `kubectl kustomize manifests/`, and
//!    with the values of [`ALL_OPTIONS`] exactly those of the base plus every opt-in component ([`COMPONENTS`]),
//!    object by object (parsed, so formatting and comments do not count);
//! 2. the values without a component (`podMonitor`, `metrics.port` with the NetworkPolicy's port and namespace,
//!    `speaker.explainEndpoint`, `config.inline`, node selectors, the Grafana dashboard ConfigMap) render what
//!    they say;
//! 3. `helm lint --strict` passes for both value sets;
//! 4. `helm install` on the lab cluster, then `kubectl apply --dry-run=server` accepts both renderings (the
//!    lab's API server validates them against its schemas; the PrometheusRule and PodMonitor are left out:
//!    the lab has no Prometheus Operator CRDs);
//! 5. the controller and three speakers run under tokens of the ServiceAccounts the release created, a Service
//!    gets an address, and its route reaches the router from every node with an endpoint; deleting the Service
//!    withdraws it;
//! 6. `helm uninstall` removes what the release created.
//!
//! Needs root, FRR, the control plane and helm (`testbed/lab deps`); fails loudly without them. Figures:
//! `cargo test --test helm -- --nocapture`.

use ferrolb_testbed::serde_json::{self, Value};
use ferrolb_testbed::{Lab, LabOptions};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

mod kustomize_overlay;
mod speaker_common;

use speaker_common::{
    Ferrolb, Identities, Whoami, apply, curl, delete_service, ingress_ip, kubectl_apply, node_addr,
    set, wait_paths,
};

/// The release's name; its record lives in `default` (the chart creates ferrolb-system itself).
const RELEASE: &str = "ferrolb";
/// Namespace of the test's Service.
const APP_NS: &str = "helm-app";

/// The kustomize components, in the order their patches append arguments (as the chart does).
const COMPONENTS: &[&str] = &[
    "control-plane-tolerations",
    "metallb-crds",
    "metallb-source",
    "vip-interface",
    "unnumbered-peers",
    "tenant-fence-policy",
    "prometheus-rules",
    "metrics-network-policy",
];

/// The chart's values that match [`COMPONENTS`].
const ALL_OPTIONS: &str = "\
speaker:
  tolerations:
    - {key: node-role.kubernetes.io/control-plane, operator: Exists, effect: NoSchedule}
  vipInterface: flb-vip
  unnumberedPeers: true
config: {source: metallb, metallbCRDs: true}
fences: {admissionPolicy: true}
alerts: {enabled: true}
metrics: {networkPolicy: {enabled: true}}
";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn chart() -> String {
    repo().join("manifests/helm/ferrolb").display().to_string()
}

/// Runs `program` and returns its standard output; panics with its standard error when it fails.
fn ok(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e} (run testbed/lab deps)"));
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `helm` from the lab's control-plane bin, with the lab's kubeconfig and its state under the lab directory.
fn helm(lab: &Lab, args: &[&str]) -> String {
    let bin = lab.kubectl_path().with_file_name("helm");
    let home = lab.dir().join("helm");
    let mut cmd = Command::new(&bin);
    cmd.args(args)
        .arg("--kubeconfig")
        .arg(lab.kubeconfig_path())
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"));
    ok(&mut cmd, &format!("{} {}", bin.display(), args.join(" ")))
}

fn kubectl(lab: &Lab, args: &[&str]) -> String {
    ok(
        Command::new(lab.kubectl_path())
            .arg("--kubeconfig")
            .arg(lab.kubeconfig_path())
            .args(args),
        &format!("kubectl {}", args.join(" ")),
    )
}

/// `value` with every number as a float: YAML's `255.0` and `255` are the same number (kustomize writes the
/// CRDs' `maximum: 255.0` as `255`).
fn normalised(value: Value) -> Value {
    match value {
        Value::Number(n) => n.as_f64().map_or(Value::Number(n), Value::from),
        Value::Array(a) => Value::Array(a.into_iter().map(normalised).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, normalised(v))).collect()),
        other => other,
    }
}

/// The objects of a multi-document YAML text, keyed `Kind namespace/name`, numbers [`normalised`].
fn objects(text: &str) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let value: Value =
            Value::deserialize(doc).unwrap_or_else(|e| panic!("invalid YAML: {e}\n{text}"));
        if value.is_null() {
            continue;
        }
        let value = normalised(value);
        let key = format!(
            "{} {}/{}",
            value["kind"].as_str().expect("kind"),
            value["metadata"]["namespace"].as_str().unwrap_or(""),
            value["metadata"]["name"].as_str().expect("name")
        );
        assert!(
            out.insert(key.clone(), value).is_none(),
            "{key} rendered twice"
        );
    }
    out
}

/// Fails unless `helm` and `kustomize` hold the same objects.
fn assert_same(helm: &str, kustomize: &str, what: &str) {
    let (h, k) = (objects(helm), objects(kustomize));
    let only_helm: Vec<&String> = h.keys().filter(|key| !k.contains_key(*key)).collect();
    let only_kustomize: Vec<&String> = k.keys().filter(|key| !h.contains_key(*key)).collect();
    assert!(
        only_helm.is_empty() && only_kustomize.is_empty(),
        "{what}: only in helm {only_helm:?}, only in kustomize {only_kustomize:?}"
    );
    for (key, object) in &h {
        assert!(
            object == &k[key],
            "{what}: {key} differs\nhelm:\n{}\nkustomize:\n{}",
            serde_json::to_string_pretty(object).unwrap(),
            serde_json::to_string_pretty(&k[key]).unwrap()
        );
    }
    println!("{what}: the same {} objects", h.len());
}

/// Writes `text` to `name` under the lab directory and returns the path.
fn lab_file(lab: &Lab, name: &str, text: &str) -> String {
    let path = lab.dir().join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// `text` without the objects of API group monitoring.coreos.com (no Prometheus Operator in the lab).
fn without_monitoring(text: &str) -> String {
    objects(text)
        .into_values()
        .filter(|o| {
            !o["apiVersion"]
                .as_str()
                .is_some_and(|v| v.starts_with("monitoring.coreos.com/"))
        })
        .map(|o| format!("---\n{}", serde_yaml::to_string(&o).unwrap()))
        .collect()
}

/// Check 2: the values that no component matches.
fn other_values(lab: &Lab) {
    let values = lab_file(
        lab,
        "helm-other-values.yaml",
        "podMonitor: {enabled: true, interval: 15s, labels: {release: prom}}\nmetrics: {port: 9100, networkPolicy: {enabled: true, monitoringNamespace: prom}}\n\
         speaker: {explainEndpoint: false}\n\
         config: {inline: \"peers: []\\n\"}\ncontroller: {nodeSelector: {pool: infra}}\n\
         dashboard: {enabled: true}\n",
    );
    let rendered = objects(&helm(lab, &["template", RELEASE, &chart(), "-f", &values]));
    let monitor = &rendered["PodMonitor ferrolb-system/ferrolb"];
    assert_eq!(monitor["metadata"]["labels"]["release"], "prom");
    assert_eq!(monitor["spec"]["podMetricsEndpoints"][0]["port"], "metrics");
    assert_eq!(monitor["spec"]["podMetricsEndpoints"][0]["interval"], "15s");
    assert_eq!(
        rendered["ConfigMap ferrolb-system/config"]["data"]["config"],
        "peers: []\n"
    );
    for (key, container) in [
        ("Deployment ferrolb-system/controller", "controller"),
        ("DaemonSet ferrolb-system/speaker", "speaker"),
    ] {
        let pod = &rendered[key]["spec"]["template"];
        let c = &pod["spec"]["containers"][0];
        assert_eq!(c["name"], container);
        assert_eq!(c["ports"][0]["containerPort"], 9100.0, "{key}");
        let args = c["args"].as_array().unwrap();
        assert!(
            args.contains(&Value::from("--metrics-addr=$(POD_IP):9100")),
            "{key}: {c}"
        );
        assert_eq!(
            args.contains(&Value::from("--no-explain-endpoint")),
            container == "speaker",
            "{key}: {c}"
        );
        assert!(
            c["env"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["name"] == "POD_IP"
                    && e["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"),
            "{key}: {c}"
        );
        assert_eq!(pod["metadata"]["annotations"]["prometheus.io/port"], "9100");
    }
    assert_eq!(
        rendered["Deployment ferrolb-system/controller"]["spec"]["template"]["spec"]["nodeSelector"]
            ["pool"],
        "infra"
    );
    let policy = &rendered["NetworkPolicy ferrolb-system/ferrolb-metrics"]["spec"]["ingress"][0];
    assert_eq!(policy["ports"][0]["port"], 9100.0);
    assert_eq!(
        policy["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "prom"
    );
    let dashboard = &rendered["ConfigMap ferrolb-system/ferrolb-dashboard"];
    assert_eq!(dashboard["metadata"]["labels"]["grafana_dashboard"], "1");
    let json = dashboard["data"]["ferrolb-dashboard.json"]
        .as_str()
        .expect("the dashboard");
    let committed =
        std::fs::read_to_string(repo().join("manifests/grafana/ferrolb-dashboard.json")).unwrap();
    assert_eq!(json, committed);
    println!(
        "podMonitor, metrics.port, metrics.networkPolicy, speaker.explainEndpoint, config.inline, \
         controller.nodeSelector, dashboard: rendered as set"
    );
}

/// Check 5: the route of a Service reaches the router under the release's ServiceAccounts.
async fn route_reaches_router(lab: &Lab) {
    kubectl(
        lab,
        &[
            "apply",
            "-f",
            &lab.dir().join("configmap.yaml").display().to_string(),
        ],
    );
    let client = lab.kube_client().await.unwrap();
    let ferrolb = Ferrolb::start(lab, Identities::service_accounts(lab), "helm");
    kubectl_apply(
        lab,
        &format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {APP_NS}}}\n"),
    );
    let mut app = Whoami::new(APP_NS, 3);
    app.tolerate_all = true;
    apply(&client, app.deployment()).await;
    apply(&client, app.service("public-pool")).await;
    let vip = ingress_ip(&client, APP_NS, "whoami").await;
    let all = set(&[&node_addr(1), &node_addr(2), &node_addr(3)]);
    wait_paths(
        lab,
        &vip,
        &all,
        "3 paths for the whoami VIP after helm install",
    );
    let answer = curl(lab, &vip).unwrap_or_else(|e| panic!("curl {vip}: {e}"));
    assert!(answer.starts_with("node-"), "{answer}");
    delete_service(lab, &client, APP_NS, "whoami", &vip).await;
    if let Some(refusal) = ferrolb.refused(lab) {
        panic!("a component was refused: {refusal}\n{}", ferrolb.logs(lab));
    }
    println!(
        "helm install: {vip} routed through the 3 nodes, curl answered by {answer}, withdrawn on delete"
    );
    ferrolb.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_chart_renders_the_kustomize_objects_installs_and_routes() {
    let lab = Lab::start(LabOptions::default()).expect("lab up (run testbed/lab deps first)");
    let started = Instant::now();

    // 1.
    let default = helm(&lab, &["template", RELEASE, &chart()]);
    assert_same(
        &default,
        &kubectl(
            &lab,
            &["kustomize", &repo().join("manifests").display().to_string()],
        ),
        "default values vs kubectl kustomize manifests/",
    );
    let options = lab_file(&lab, "helm-all-options.yaml", ALL_OPTIONS);
    let all = helm(&lab, &["template", RELEASE, &chart(), "-f", &options]);
    assert_same(
        &all,
        &kustomize_overlay::render(&lab, "helm-overlay", COMPONENTS),
        "all options vs manifests/ with every component",
    );
    // 2.
    other_values(&lab);
    // 3.
    helm(&lab, &["lint", "--strict", &chart()]);
    helm(&lab, &["lint", "--strict", &chart(), "-f", &options]);
    println!("render, lint: {:.1} s", started.elapsed().as_secs_f64());

    // 4.
    let t = Instant::now();
    helm(
        &lab,
        &["install", RELEASE, &chart(), "--namespace", "default"],
    );
    let status = helm(
        &lab,
        &["status", RELEASE, "--namespace", "default", "-o", "json"],
    );
    let status: Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["info"]["status"], "deployed", "{status}");
    println!("helm install: {:.1} s", t.elapsed().as_secs_f64());
    kubectl(&lab, &["create", "namespace", "metallb-system"]);
    for (name, text) in [("default", &default), ("all-options", &all)] {
        let file = lab_file(
            &lab,
            &format!("helm-{name}.yaml"),
            &without_monitoring(text),
        );
        kubectl(&lab, &["apply", "--dry-run=server", "-f", &file]);
        println!("kubectl apply --dry-run=server: the {name} rendering is accepted");
    }

    // 5.
    let t = Instant::now();
    route_reaches_router(&lab).await;
    println!("route check: {:.1} s", t.elapsed().as_secs_f64());

    // 6.
    helm(
        &lab,
        &["uninstall", RELEASE, "--namespace", "default", "--wait"],
    );
    let left = kubectl(
        &lab,
        &[
            "get",
            "clusterroles,clusterrolebindings",
            "-l",
            "app.kubernetes.io/name=ferrolb",
            "-o",
            "name",
        ],
    );
    assert_eq!(left, "", "left after helm uninstall");
    lab.wait_until(
        std::time::Duration::from_secs(60),
        "ferrolb-system deleted by helm uninstall",
        || Ok(!namespace_exists(&lab, "ferrolb-system")),
    )
    .unwrap();
    println!("helm test: {:.1} s in all", started.elapsed().as_secs_f64());
    lab.down().expect("lab down");
}

fn namespace_exists(lab: &Lab, name: &str) -> bool {
    Command::new(lab.kubectl_path())
        .arg("--kubeconfig")
        .arg(lab.kubeconfig_path())
        .args(["get", "namespace", name])
        .output()
        .is_ok_and(|o| o.status.success())
}

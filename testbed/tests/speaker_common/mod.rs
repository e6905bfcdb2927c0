//! Helpers of the speaker end-to-end tests (`speaker.rs`, `speaker_dual_stack.rs`, `manifests.rs`): ferrolb's
//! controller and speakers as processes in the lab (under the admin identity or ServiceAccount tokens), the
//! whoami Deployment and Service, what the FRR router holds (`vtysh ... json`, its kernel FIB), a load client,
//! and the whoami scenario they share.
#![allow(dead_code)] // each test binary uses a different subset

mod conditions;
mod load;
mod manual;
mod router;

#[allow(unused_imports)] // only the tests of per-Service attributes
pub use conditions::*;
#[allow(unused_imports)] // not every test binary puts load on a VIP
pub use load::*;
#[allow(unused_imports)] // only the tests with a hand-written EndpointSlice
pub use manual::*;
pub use router::*;

use ferrolb_testbed::k8s_openapi::api::apps::v1::Deployment;
use ferrolb_testbed::k8s_openapi::api::core::v1::{Pod, Service};
use ferrolb_testbed::k8s_openapi::api::discovery::v1::EndpointSlice;
use ferrolb_testbed::kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use ferrolb_testbed::kube::config::Kubeconfig;
use ferrolb_testbed::kube::{Api, Client};
use ferrolb_testbed::serde_json::{self, Value, json};
use ferrolb_testbed::{Lab, NodeProcess};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// SIGTERM, for stopping a speaker the way the kubelet does.
pub const SIGTERM: i32 = 15;
/// Namespace of the ConfigMap (and the controller's Lease).
pub const CONFIG_NS: &str = "ferrolb-system";

/// A set of strings.
pub fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Node `i`'s IPv4 address on the node LAN.
pub fn node_addr(i: usize) -> String {
    format!("198.18.0.{}", 10 + i)
}

/// Node `i`'s IPv6 address on the node LAN (`--ipv6` labs).
pub fn node_addr6(i: usize) -> String {
    format!("2001:db8:0:1::{}", 10 + i)
}

/// The node number of `node-N`.
pub fn node_number(name: &str) -> usize {
    name.trim_start_matches("node-")
        .parse()
        .unwrap_or_else(|_| panic!("not a lab node name: {name}"))
}

/// The IPv4 address of the node called `name` (`node-N`).
pub fn addr_of_node(name: &str) -> String {
    node_addr(node_number(name))
}

/// The last lines of the logs of the speakers started as `<prefix>-<i>`.
pub fn speaker_logs(lab: &Lab, prefix: &str) -> String {
    let mut out = String::new();
    for i in 1..=lab.nodes() {
        let log = std::fs::read_to_string(lab.dir().join("logs").join(format!("{prefix}-{i}.log")))
            .unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(25).collect();
        out.push_str(&format!("--- {prefix}-{i} (last lines)\n"));
        for l in tail.into_iter().rev() {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

/// The last lines of every speaker log of the lab (`*speaker*-<i>.log`).
pub fn all_speaker_logs(lab: &Lab) -> String {
    let mut prefixes: BTreeSet<String> = BTreeSet::new();
    for entry in std::fs::read_dir(lab.dir().join("logs"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some((prefix, _)) = name.strip_suffix(".log").and_then(|n| n.rsplit_once('-'))
            && prefix.contains("speaker")
        {
            prefixes.insert(prefix.to_owned());
        }
    }
    prefixes.iter().map(|p| speaker_logs(lab, p)).collect()
}

/// `curl` from the client to `http://VIP/` (IPv4 or IPv6): the answering node's name, or the error.
pub fn curl(lab: &Lab, vip: &str) -> Result<String, String> {
    let url = if vip.contains(':') {
        format!("http://[{vip}]/")
    } else {
        format!("http://{vip}/")
    };
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.client_netns().map_err(|e| e.to_string())?,
        ])
        .args(["curl", "-sS", "--fail", "--max-time", "3", &url])
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Stops a speaker with SIGTERM and waits for it to exit.
pub fn stop_speaker(mut p: NodeProcess) {
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

/// The `/metrics` text of node `i`'s speaker (empty when unreachable).
pub fn speaker_metrics(lab: &Lab, i: usize) -> String {
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

/// `ferrolb controller` on the host, killed (by its pid) on drop.
pub struct Controller(pub Child);

impl Controller {
    /// Runs `ferrolb controller` on the host with `config_args` (where its configuration is), metrics on
    /// 127.0.0.1:`port`, Lease identity `identity`, the API server through `kubeconfig`, logging to `log`.
    pub fn spawn(
        config_args: &[&str],
        port: u16,
        identity: &str,
        kubeconfig: &std::path::Path,
        log: &std::path::Path,
    ) -> Controller {
        let log = std::fs::File::create(log).unwrap();
        Controller(
            Command::new(env!("CARGO_BIN_EXE_ferrolb"))
                .arg("controller")
                .args(config_args)
                .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
                .args(["--identity", identity])
                .env("KUBECONFIG", kubeconfig)
                .env("RUST_LOG", "info")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start ferrolb controller"),
        )
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Which kubeconfig the controller and the speakers use.
#[derive(Debug, Clone)]
pub struct Identities {
    /// The controller's kubeconfig.
    pub controller: PathBuf,
    /// Every speaker's kubeconfig.
    pub speaker: PathBuf,
}

impl Identities {
    /// The lab's admin kubeconfig for both.
    pub fn admin(lab: &Lab) -> Identities {
        Identities {
            controller: lab.kubeconfig_path(),
            speaker: lab.kubeconfig_path(),
        }
    }

    /// Minted tokens of the ServiceAccounts `controller` and `speaker` (ferrolb-system), as the manifests create
    /// them.
    pub fn service_accounts(lab: &Lab) -> Identities {
        Identities {
            controller: account_kubeconfig(lab, "controller"),
            speaker: account_kubeconfig(lab, "speaker"),
        }
    }
}

/// A kubeconfig for ServiceAccount `account` of ferrolb-system (a minted token), next to the admin one.
pub fn account_kubeconfig(lab: &Lab, account: &str) -> PathBuf {
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
    let token = lab.token(account, CONFIG_NS).expect("mint token");
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

/// ferrolb running in the lab: a controller on the host and a speaker in every node namespace (with
/// `--vip-interface flb-vip`, where the lab's responder answers), named `<prefix>-controller` and
/// `<prefix>-<i>` (logs in `<lab dir>/logs/`, state in `<lab dir>/<prefix>-state-<i>`).
pub struct Ferrolb {
    /// The speakers, node 1 first; `None` while one is stopped.
    pub speakers: Vec<Option<NodeProcess>>,
    /// The controller.
    pub controller: Controller,
    /// The port of the controller's `/metrics` on 127.0.0.1.
    pub controller_port: u16,
    /// The identities in use.
    pub identities: Identities,
    prefix: String,
}

impl Ferrolb {
    /// Starts the controller and one speaker per node, and waits until every node's session with the router's
    /// IPv4 address is Established.
    pub fn start(lab: &Lab, identities: Identities, prefix: &str) -> Ferrolb {
        let controller_port = free_port();
        let log_path = lab
            .dir()
            .join("logs")
            .join(format!("{prefix}-controller.log"));
        let controller = Controller::spawn(
            &["--config-namespace", CONFIG_NS],
            controller_port,
            &format!("{prefix}-controller"),
            &identities.controller,
            &log_path,
        );
        let mut f = Ferrolb {
            speakers: Vec::new(),
            controller,
            controller_port,
            identities,
            prefix: prefix.to_owned(),
        };
        f.speakers = (1..=lab.nodes())
            .map(|i| Some(f.start_speaker(lab, i)))
            .collect();
        for i in 1..=lab.nodes() {
            lab.wait_established(&node_addr(i), Duration::from_secs(60))
                .unwrap_or_else(|e| panic!("{e}\n{}", f.logs(lab)));
        }
        f
    }

    /// Runs `ferrolb speaker` in node `i`'s namespace.
    pub fn start_speaker(&self, lab: &Lab, i: usize) -> NodeProcess {
        let state = lab.dir().join(format!("{}-state-{i}", self.prefix));
        spawn_speaker(
            lab,
            i,
            &format!("{}-{i}", self.prefix),
            &self.identities.speaker,
            &state,
        )
    }

    /// Stops node `i`'s speaker with SIGTERM (graceful restart: its routes stay) and starts it again.
    pub fn restart_speaker(&mut self, lab: &Lab, i: usize) {
        if let Some(old) = self.speakers[i - 1].take() {
            stop_speaker(old);
        }
        std::thread::sleep(Duration::from_millis(500));
        self.speakers[i - 1] = Some(self.start_speaker(lab, i));
    }

    /// `ferrolb speaker --explain ns/name` on node `i`, under the speakers' identity: its standard output.
    pub fn explain(&self, lab: &Lab, i: usize, service: &str) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &lab.node_netns(i).unwrap()])
            .arg(env!("CARGO_BIN_EXE_ferrolb"))
            .args(["speaker", "--node-name", &format!("node-{i}")])
            .args(["--config-namespace", CONFIG_NS, "--explain", service])
            .env("KUBECONFIG", &self.identities.speaker)
            .output()
            .expect("run ferrolb speaker --explain");
        assert!(
            out.status.success(),
            "--explain {service}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The controller's log and the speakers' last lines.
    pub fn logs(&self, lab: &Lab) -> String {
        let controller = lab
            .dir()
            .join("logs")
            .join(format!("{}-controller.log", self.prefix));
        let controller = std::fs::read_to_string(controller).unwrap_or_default();
        let tail: Vec<&str> = controller.lines().rev().take(40).collect();
        let mut out = String::from("--- controller (last lines)\n");
        for l in tail.into_iter().rev() {
            out.push_str(l);
            out.push('\n');
        }
        out + &speaker_logs(lab, &self.prefix)
    }

    /// Whether any log of the controller or a speaker mentions a refusal by the API server.
    pub fn refused(&self, lab: &Lab) -> Option<String> {
        let mut names = vec![format!("{}-controller", self.prefix)];
        names.extend((1..=lab.nodes()).map(|i| format!("{}-{i}", self.prefix)));
        names.into_iter().find_map(|n| {
            let log = std::fs::read_to_string(lab.dir().join("logs").join(format!("{n}.log")))
                .unwrap_or_default();
            log.lines()
                .find(|l| l.to_lowercase().contains("forbidden"))
                .map(|l| format!("{n}: {l}"))
        })
    }

    /// Stops every speaker with SIGTERM (each exits on its own), then the controller.
    pub fn stop(self) {
        for s in self.speakers.into_iter().flatten() {
            stop_speaker(s);
        }
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Server-side applies `obj` (a Deployment, Service or EndpointSlice, by its `kind`) in its namespace.
pub async fn apply(client: &Client, obj: Value) {
    let name = obj["metadata"]["name"].as_str().unwrap().to_owned();
    let ns = obj["metadata"]["namespace"].as_str().unwrap().to_owned();
    let pp = PatchParams::apply("ferrolb-speaker-test").force();
    let result = match obj["kind"].as_str() {
        Some("Deployment") => Api::<Deployment>::namespaced(client.clone(), &ns)
            .patch(&name, &pp, &Patch::Apply(&obj))
            .await
            .map(|_| ()),
        Some("Service") => Api::<Service>::namespaced(client.clone(), &ns)
            .patch(&name, &pp, &Patch::Apply(&obj))
            .await
            .map(|_| ()),
        Some("EndpointSlice") => Api::<EndpointSlice>::namespaced(client.clone(), &ns)
            .patch(&name, &pp, &Patch::Apply(&obj))
            .await
            .map(|_| ()),
        other => panic!("unsupported kind {other:?}"),
    };
    result.unwrap_or_else(|e| panic!("apply {ns}/{name}: {e}"));
}

/// The whoami Deployment: `replicas` pods, at most one per node (required anti-affinity) or spread evenly, a
/// readiness probe, and a rolling update that replaces one pod at a time without a surge pod (with one pod per
/// node, a surge pod would have no node to go to).
#[derive(Debug, Clone)]
pub struct Whoami {
    /// Its namespace.
    pub namespace: String,
    /// Pod count.
    pub replicas: u32,
    /// Tolerate every taint (the manifests test runs right after the lab starts, while the kwok nodes may
    /// still carry `not-ready` taints); without it, a cordoned node takes no pod.
    pub tolerate_all: bool,
    /// A node the pods must not run on (moves a pod away from it).
    pub avoid: Option<String>,
    /// The value of the `VERSION` environment variable: changing it rolls the pods.
    pub version: u32,
    /// Spread the pods evenly over the nodes (a topology spread constraint, several per node allowed) instead
    /// of at most one per node.
    pub even_spread: bool,
}

impl Whoami {
    /// `replicas` whoami pods in `namespace`, version 1, no tolerations, any node.
    pub fn new(namespace: &str, replicas: u32) -> Whoami {
        Whoami {
            namespace: namespace.to_owned(),
            replicas,
            tolerate_all: false,
            avoid: None,
            version: 1,
            even_spread: false,
        }
    }

    /// The Deployment object.
    pub fn deployment(&self) -> Value {
        let labels = json!({"app": "whoami"});
        let mut affinity = if self.even_spread {
            json!({})
        } else {
            json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": labels}, "topologyKey": "kubernetes.io/hostname"}
            ]}})
        };
        if let Some(node) = &self.avoid {
            affinity["nodeAffinity"] = json!({"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "kubernetes.io/hostname", "operator": "NotIn", "values": [node]}
                ]}]
            }});
        }
        let mut pod = json!({
            "affinity": affinity,
            "containers": [{
                "name": "whoami", "image": "traefik/whoami",
                "ports": [{"containerPort": 80}],
                "env": [{"name": "VERSION", "value": self.version.to_string()}],
                "readinessProbe": {"httpGet": {"path": "/", "port": 80}, "periodSeconds": 1}
            }]
        });
        if self.even_spread {
            pod["topologySpreadConstraints"] = json!([{
                "maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": labels}
            }]);
        }
        if self.tolerate_all {
            pod["tolerations"] = json!([{"operator": "Exists"}]);
        }
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "whoami", "namespace": self.namespace},
            "spec": {
                "replicas": self.replicas,
                "selector": {"matchLabels": labels},
                "strategy": {"type": "RollingUpdate",
                             "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
                "template": {"metadata": {"labels": labels}, "spec": pod}
            }
        })
    }

    /// The seed's Service: LoadBalancer, `externalTrafficPolicy: Local`, the pool annotation.
    pub fn service(&self, pool: &str) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "whoami", "namespace": self.namespace,
                         "annotations": {"metallb.universe.tf/address-pool": pool}},
            "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local",
                     "selector": {"app": "whoami"}, "ports": [{"port": 80}]}
        })
    }
}

/// The ingress IPs of Service `ns/name` once the controller has written at least `count`.
pub async fn ingress_ips(client: &Client, ns: &str, name: &str, count: usize) -> Vec<String> {
    let api = Api::<Service>::namespaced(client.clone(), ns);
    let mut last = Vec::new();
    for _ in 0..150 {
        if let Ok(svc) = api.get(name).await {
            last = svc
                .status
                .and_then(|s| s.load_balancer)
                .and_then(|lb| lb.ingress)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|i| i.ip)
                .collect();
            if last.len() >= count {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{ns}/{name} got {last:?}, not {count} ingress IP(s)");
}

/// The first ingress IP of Service `ns/name`.
pub async fn ingress_ip(client: &Client, ns: &str, name: &str) -> String {
    ingress_ips(client, ns, name, 1).await.remove(0)
}

/// The nodes of the whoami pods that are not being deleted.
pub async fn pod_nodes(client: &Client, ns: &str) -> BTreeSet<String> {
    Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels("app=whoami"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| p.spec.and_then(|s| s.node_name))
        .collect()
}

/// Polls the whoami pods' nodes until `done` holds for them (30 s at most).
pub async fn wait_pod_nodes(
    client: &Client,
    ns: &str,
    what: &str,
    done: impl Fn(&BTreeSet<String>) -> bool,
) -> BTreeSet<String> {
    let mut nodes = BTreeSet::new();
    for _ in 0..150 {
        nodes = pod_nodes(client, ns).await;
        if done(&nodes) {
            return nodes;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{what}: whoami pods on {nodes:?}");
}

/// The `p` percentile (0..=1) of sorted samples.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// `kubectl apply -f` of a YAML text.
pub fn kubectl_apply(lab: &Lab, yaml: &str) {
    let file = lab.dir().join("speaker-test-apply.yaml");
    std::fs::write(&file, yaml).unwrap();
    lab.kubectl(&["apply", "-f", &file.display().to_string()])
        .unwrap_or_else(|e| panic!("kubectl apply: {e}"));
}

/// The ConfigMap: the seed's shape (iBGP with MD5 to the router's IPv4 address), `extra_peer` appended to
/// the peers, one pool `public-pool` with `advertisement` (its `bgp-advertisements` block) appended.
pub fn configmap(lab: &Lab, extra_peer: &str, advertisement: &str) -> String {
    let router = lab.env("ROUTER_LAN4").unwrap_or("198.18.0.1");
    configmap_of(&format!(
        "    peers:
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
    ))
}

/// The ConfigMap `config` in `CONFIG_NS` whose `config` key is `text` (already indented by four spaces).
pub fn configmap_of(text: &str) -> String {
    format!(
        "apiVersion: v1
kind: ConfigMap
metadata:
  name: config
  namespace: {CONFIG_NS}
data:
  config: |
{text}"
    )
}

/// The seed's whoami scenario, with ferrolb started by the caller (under whichever identities) and the
/// ConfigMap's pool `public-pool` in force: 3 replicas on 3 nodes give the VIP exactly 3 paths (local-pref
/// 100) and client curls reach only those nodes; scaled to 1, exactly the remaining pod's node has a path and
/// the VIP on its VIP interface, and `--explain` names the VIP; a moved pod moves the path; at 3 replicas
/// again, the exclusion label on node-2 removes its path and removing the label restores it. Returns the VIP,
/// with 3 replicas and 3 paths.
pub async fn whoami_scenario(
    lab: &Lab,
    client: &Client,
    ferrolb: &Ferrolb,
    app: &Whoami,
) -> String {
    let ns = app.namespace.as_str();
    let mut app = app.clone();
    app.replicas = 3;
    apply(client, app.deployment()).await;
    apply(client, app.service("public-pool")).await;
    let vip = ingress_ip(client, ns, "whoami").await;
    let all = set(&[&node_addr(1), &node_addr(2), &node_addr(3)]);
    wait_paths(lab, &vip, &all, "3 paths for the whoami VIP");
    let paths = bgp_paths(lab, &vip);
    assert_eq!(paths.len(), 3, "{paths:?}");
    for p in &paths {
        assert_eq!(p["locPrf"], 100, "iBGP default local-pref: {p}");
    }

    // Client curls through the router reach only nodes with endpoints.
    let mut seen = BTreeSet::new();
    for _ in 0..20 {
        seen.insert(curl(lab, &vip).unwrap());
    }
    assert!(
        seen.is_subset(&set(&["node-1", "node-2", "node-3"])),
        "{seen:?}"
    );

    // Scale to 1: exactly the remaining pod's node.
    app.replicas = 1;
    apply(client, app.deployment()).await;
    let nodes = wait_pod_nodes(client, ns, "scale to 1", |n| n.len() == 1).await;
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
    // Soon the other nodes no longer hold the VIP on their VIP interface (a speaker may keep a withdrawn VIP
    // a few seconds for packets already on their way).
    let holders = || -> BTreeSet<String> {
        (1..=3)
            .filter(|&i| {
                lab.exec_in_node(i, &["ip", "-o", "addr", "show", "dev", "flb-vip"])
                    .is_ok_and(|o| {
                        String::from_utf8_lossy(&o.stdout).contains(&format!("{vip}/32"))
                    })
            })
            .map(|i| format!("node-{i}"))
            .collect()
    };
    lab.wait_until(
        Duration::from_secs(10),
        "the VIP only on the pod's node",
        || Ok(holders() == set(&[&home])),
    )
    .unwrap_or_else(|e| panic!("{e}: VIP on {:?}", holders()));
    let explain = ferrolb.explain(lab, 1, &format!("{ns}/whoami"));
    println!("--explain on node-1 with the pod on {home}:\n{explain}");
    assert!(explain.contains(&vip), "{explain}");

    // A pod moves to another node: the path moves.
    app.avoid = Some(home.clone());
    apply(client, app.deployment()).await;
    let moved = wait_pod_nodes(client, ns, "pod moved", |n| {
        n.len() == 1 && !n.contains(&home)
    })
    .await;
    let new_home = moved.iter().next().unwrap().clone();
    wait_paths(
        lab,
        &vip,
        &set(&[&addr_of_node(&new_home)]),
        "the path follows the pod",
    );

    // An excluded node loses its path.
    app.avoid = None;
    app.replicas = 3;
    apply(client, app.deployment()).await;
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
        &set(&[&node_addr(1), &node_addr(3)]),
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
    vip
}

/// Deletes Service `ns/name` and waits until the router has no route for `vip`.
pub async fn delete_service(lab: &Lab, client: &Client, ns: &str, name: &str, vip: &str) {
    Api::<Service>::namespaced(client.clone(), ns)
        .delete(name, &DeleteParams::default())
        .await
        .unwrap();
    wait_paths(
        lab,
        vip,
        &BTreeSet::new(),
        "route withdrawn after the Service is deleted",
    );
}

/// Runs `ferrolb speaker --node-name node-<i>` in node `i`'s namespace as the process `name`, reading the API
/// server with `kubeconfig`, with the lab's VIP interface, metrics on 127.0.0.1:7472 and its graceful-restart
/// state under `state`; the configuration is the lab ConfigMap in `CONFIG_NS`.
pub fn spawn_speaker(
    lab: &Lab,
    i: usize,
    name: &str,
    kubeconfig: &std::path::Path,
    state: &std::path::Path,
) -> NodeProcess {
    spawn_speaker_with(
        lab,
        i,
        name,
        kubeconfig,
        state,
        &["--config-namespace", CONFIG_NS],
    )
}

/// [`spawn_speaker`] with `config_args` (say, `--config-source metallb --config-namespace NS`) in place of the
/// ConfigMap in `CONFIG_NS`.
pub fn spawn_speaker_with(
    lab: &Lab,
    i: usize,
    name: &str,
    kubeconfig: &std::path::Path,
    state: &std::path::Path,
    config_args: &[&str],
) -> NodeProcess {
    let kubeconfig = format!("KUBECONFIG={}", kubeconfig.display());
    let node = format!("node-{i}");
    let state = state.display().to_string();
    let mut args = vec![
        "env",
        &kubeconfig,
        "RUST_LOG=info",
        env!("CARGO_BIN_EXE_ferrolb"),
        "speaker",
        "--node-name",
        &node,
    ];
    args.extend_from_slice(config_args);
    args.extend_from_slice(&[
        "--vip-interface",
        "flb-vip",
        "--metrics-addr",
        "127.0.0.1:7472",
        "--state-dir",
        &state,
    ]);
    lab.spawn_in_node(i, name, &args)
        .expect("start ferrolb speaker")
}

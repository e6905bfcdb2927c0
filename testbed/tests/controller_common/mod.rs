//! Helpers of the controller integration tests: a `ferrolb controller` process against the lab's real
//! kube-apiserver, Services and ConfigMaps, and polling what the API server stores.
#![allow(dead_code)]

use ferrolb_testbed::k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
use ferrolb_testbed::k8s_openapi::api::events::v1::Event;
use ferrolb_testbed::kube::api::{GetParams, ListParams, ObjectMeta, PostParams};
use ferrolb_testbed::kube::runtime::{WatchStreamExt, watcher};
use ferrolb_testbed::kube::{Api, Client};
use ferrolb_testbed::{Lab, LabOptions};
use futures::{StreamExt, TryStreamExt};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A running `ferrolb controller`, killed (by its pid) on drop.
pub struct ControllerProcess {
    child: Child,
    log: PathBuf,
    /// The port of its `/metrics`, `/healthz` and `/readyz`.
    pub metrics_port: u16,
    /// Its Lease identity.
    pub identity: String,
}

impl ControllerProcess {
    /// Starts a controller watching Services of `namespace` only, with its ConfigMap `config` and its Lease in
    /// the same namespace. `extra` is appended to the command line.
    pub fn start(
        kubeconfig: &Path,
        namespace: &str,
        identity: &str,
        extra: &[&str],
    ) -> ControllerProcess {
        ControllerProcess::start_in(None, kubeconfig, namespace, identity, extra)
    }

    /// [`ControllerProcess::start`] in network namespace `netns` (`ip netns exec`, which execs: the recorded pid
    /// is the controller's). Its HTTP port is then inside that namespace.
    pub fn start_in(
        netns: Option<&str>,
        kubeconfig: &Path,
        namespace: &str,
        identity: &str,
        extra: &[&str],
    ) -> ControllerProcess {
        let metrics_port = free_port();
        let log =
            std::env::temp_dir().join(format!("ferrolb-controller-{namespace}-{identity}.log"));
        let file = std::fs::File::create(&log).expect("create controller log");
        let err = file.try_clone().expect("clone log handle");
        // `FERROLB_CONTROLLER_BIN` runs another build (e.g. an older commit's, for before/after figures).
        let binary = std::env::var("FERROLB_CONTROLLER_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_ferrolb").to_owned());
        let mut command = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, &binary]);
                c
            }
            None => Command::new(&binary),
        };
        let child = command
            .args([
                "controller",
                "--config-namespace",
                namespace,
                "--namespace",
                namespace,
            ])
            .args(["--metrics-addr", &format!("127.0.0.1:{metrics_port}")])
            .args([
                "--identity",
                identity,
                "--lease-duration-secs",
                "4",
                "--lease-renew-deadline-secs",
                "3",
                "--lease-retry-secs",
                "1",
                "--lease-request-timeout-secs",
                "1",
            ])
            .args(extra)
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info,ferrolb=debug")
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .expect("start ferrolb controller");
        ControllerProcess {
            child,
            log,
            metrics_port,
            identity: identity.to_owned(),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The controller's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills it with SIGKILL and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops it with SIGTERM (sent to its recorded pid) and waits up to 10 s for it to exit; returns whether it
    /// exited successfully. Panics if it does not exit.
    pub fn terminate(&mut self) -> bool {
        if let Ok(Some(status)) = self.child.try_wait() {
            return status.success();
        }
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {} failed", self.child.id());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            assert!(
                Instant::now() < deadline,
                "controller {} ignored SIGTERM for 10 s; log:\n{}",
                self.identity,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Peak resident memory (`VmHWM`, bytes) and CPU time (user + system, seconds) so far, from `/proc`.
    pub fn resources(&self) -> (u64, f64) {
        let pid = self.child.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
        let hwm_kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/PID/status");
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("proc stat");
        // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
        let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        // USER_HZ is 100 on Linux.
        (hwm_kb * 1024, ticks as f64 / 100.0)
    }

    /// GETs a path of its HTTP server: (status code, body).
    pub async fn http_get(&self, path: &str) -> Option<(u16, String)> {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.metrics_port))
            .await
            .ok()?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut out = String::new();
        stream.read_to_string(&mut out).await.ok()?;
        let code = out.get(9..12)?.parse().ok()?;
        let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
        Some((code, body))
    }

    /// The value of one metric line (`name{labels}` exactly as exported).
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let (_, body) = self.http_get("/metrics").await?;
        body.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }
}

impl Drop for ControllerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// Creates a namespace (fine if it exists).
pub async fn namespace(client: &Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => {}
        Err(ferrolb_testbed::kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => panic!("create namespace {name}: {e}"),
    }
}

/// Creates or replaces the ConfigMap `config` in `ns` with `config` as its `config` key.
pub async fn put_config(client: &Client, ns: &str, config: &str) {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let mut cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some("config".into()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([("config".to_owned(), config.to_owned())])),
        ..ConfigMap::default()
    };
    match api.get_opt("config").await.expect("get configmap") {
        None => {
            api.create(&PostParams::default(), &cm)
                .await
                .expect("create configmap");
        }
        Some(old) => {
            cm.metadata.resource_version = old.metadata.resource_version;
            api.replace("config", &PostParams::default(), &cm)
                .await
                .expect("replace configmap");
        }
    }
}

/// A `LoadBalancer` Service `name` with one TCP port, selecting `app: name`; `extra` is merged into it (JSON).
pub fn lb_service(name: &str, extra: serde_json::Value) -> Service {
    let mut value = json!({
        "metadata": {"name": name},
        "spec": {"type": "LoadBalancer", "selector": {"app": name}, "ports": [{"port": 80, "protocol": "TCP"}]}
    });
    merge(&mut value, &extra);
    serde_json::from_value(value).expect("valid Service")
}

/// Merges `patch` into `target`: objects key by key, anything else replaced.
pub fn merge(target: &mut serde_json::Value, patch: &serde_json::Value) {
    match (target, patch) {
        (serde_json::Value::Object(t), serde_json::Value::Object(p)) => {
            for (k, v) in p {
                merge(t.entry(k.clone()).or_insert(serde_json::Value::Null), v);
            }
        }
        (t, p) => *t = p.clone(),
    }
}

/// Creates a Service in `ns`.
pub async fn create(client: &Client, ns: &str, svc: &Service) -> Service {
    Api::<Service>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), svc)
        .await
        .unwrap_or_else(|e| panic!("create service {:?}: {e}", svc.metadata.name))
}

/// The Service as stored.
pub async fn get(client: &Client, ns: &str, name: &str) -> Service {
    Api::<Service>::namespaced(client.clone(), ns)
        .get(name)
        .await
        .unwrap_or_else(|e| panic!("get service {ns}/{name}: {e}"))
}

/// Every Service in `ns`, by name.
pub async fn list(client: &Client, ns: &str) -> BTreeMap<String, Service> {
    Api::<Service>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .expect("list services")
        .items
        .into_iter()
        .map(|s| (s.metadata.name.clone().unwrap_or_default(), s))
        .collect()
}

/// `status.loadBalancer.ingress[].ip` as stored.
pub fn ingress(svc: &Service) -> Vec<String> {
    svc.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|l| l.ingress.as_ref())
        .map(|i| i.iter().filter_map(|i| i.ip.clone()).collect())
        .unwrap_or_default()
}

/// The `ferrolb.io/AddressAssigned` condition as stored: (status, reason, message).
pub fn condition(svc: &Service) -> Option<(String, String, String)> {
    svc.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "ferrolb.io/AddressAssigned")
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// The `ferrolb.io/BGPAttributesAccepted` condition as stored: (status, reason, message).
pub fn attributes_condition(svc: &Service) -> Option<(String, String, String)> {
    svc.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "ferrolb.io/BGPAttributesAccepted")
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// Events (events.k8s.io/v1) in `ns` about the object `name`: (type, reason, note).
pub async fn events_about(client: &Client, ns: &str, name: &str) -> Vec<(String, String, String)> {
    Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .map(|e| {
            (
                e.type_.unwrap_or_default(),
                e.reason.unwrap_or_default(),
                e.note.unwrap_or_default(),
            )
        })
        .collect()
}

/// Polls `probe` every 100 ms until it returns `Some`, or panics after `timeout` with `what` and the controller
/// log.
pub async fn wait_for<T, F, Fut>(
    what: &str,
    timeout: Duration,
    ctl: Option<&ControllerProcess>,
    mut probe: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        if Instant::now() > deadline {
            let log = ctl.map(ControllerProcess::log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            panic!(
                "timed out after {timeout:?} waiting for {what}; controller log tail:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `name` in `ns` has a condition (any), and returns the stored Service.
pub async fn wait_assigned_or_refused(
    client: &Client,
    ns: &str,
    name: &str,
    ctl: &ControllerProcess,
) -> Service {
    wait_for(
        &format!("a condition on {ns}/{name}"),
        Duration::from_secs(30),
        Some(ctl),
        || async {
            let svc = get(client, ns, name).await;
            condition(&svc).map(|_| svc)
        },
    )
    .await
}

/// A lab of its own with an IPv6 Service range (the shared control plane has none), and a client.
pub async fn ipv6_lab() -> (Lab, Client) {
    let lab = Lab::start(LabOptions {
        nodes: 1,
        ipv6: true,
        control_plane_only: true,
        ..LabOptions::default()
    })
    .expect("an IPv6 control plane (run `testbed/lab deps` as root)");
    let client = lab.kube_client().await.expect("kube client");
    (lab, client)
}

/// Waits until every Service named in `names` has an address; returns the stored addresses by name. Watches
/// (rather than polling lists of many objects), so that waiting does not load the API server.
pub async fn wait_all_assigned(
    client: &Client,
    ns: &str,
    names: &BTreeSet<String>,
    ctl: &ControllerProcess,
) -> BTreeMap<String, Vec<String>> {
    let api: Api<Service> = Api::namespaced(client.clone(), ns);
    let mut stream = watcher(api, watcher::Config::default())
        .applied_objects()
        .boxed();
    let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let done = tokio::time::timeout(Duration::from_secs(300), async {
        while let Some(svc) = stream.try_next().await.expect("watch services") {
            let name = svc.metadata.name.clone().unwrap_or_default();
            if !names.contains(&name) {
                continue;
            }
            let ips = ingress(&svc);
            if ips.is_empty() {
                got.remove(&name);
            } else {
                got.insert(name, ips);
            }
            if got.len() == names.len() {
                return;
            }
        }
    })
    .await;
    assert!(
        done.is_ok(),
        "timed out: {} of {} Services assigned; controller log tail:\n{}",
        got.len(),
        names.len(),
        log_tail(ctl, 20)
    );
    got
}

fn log_tail(ctl: &ControllerProcess, lines: usize) -> String {
    let log = ctl.log();
    let tail: Vec<&str> = log.lines().rev().take(lines).collect();
    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// Waits until the metric line `series` of `ctl` has `value`.
pub async fn wait_metric(ctl: &ControllerProcess, series: &str, value: f64) {
    wait_for(
        &format!("{series} = {value}"),
        Duration::from_secs(10),
        Some(ctl),
        || async { (ctl.metric(series).await? == value).then_some(()) },
    )
    .await;
}

/// Waits until there are Events of `type_` about `name` in `ns`; returns them.
pub async fn wait_events(
    client: &Client,
    ns: &str,
    name: &str,
    type_: &str,
    ctl: &ControllerProcess,
) -> Vec<(String, String, String)> {
    wait_for(
        &format!("a {type_} Event about {ns}/{name}"),
        Duration::from_secs(20),
        Some(ctl),
        || async {
            let ev: Vec<_> = events_about(client, ns, name)
                .await
                .into_iter()
                .filter(|e| e.0 == type_)
                .collect();
            (!ev.is_empty()).then_some(ev)
        },
    )
    .await
}

/// The API server's `apiserver_request_total`, summed by `VERB resource[/subresource]`.
pub async fn apiserver_requests(client: &Client) -> BTreeMap<String, f64> {
    let request = ferrolb_testbed::kube::core::Request::new("")
        .get("metrics", &GetParams::default())
        .expect("build GET /metrics");
    let text = client
        .request_text(request)
        .await
        .expect("GET /metrics from the API server");
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let label = |name: &str| {
            labels
                .split(',')
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix("=\""))
                .map(|v| v.trim_end_matches('"').to_owned())
                .unwrap_or_default()
        };
        let mut key = format!("{} {}", label("verb"), label("resource"));
        let sub = label("subresource");
        if !sub.is_empty() {
            key = format!("{key}/{sub}");
        }
        *out.entry(key).or_insert(0.0) += value.trim().parse::<f64>().unwrap_or(0.0);
    }
    out
}

/// `after - before`, non-zero entries only.
pub fn request_delta(
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
) -> BTreeMap<String, f64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, v)| *v > 0.0)
        .collect()
}

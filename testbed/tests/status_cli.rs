//! `ferrolb status` in the lab, as a read-only user: the real API server, ferrolb's controller and a speaker per
//! node (reading MetalLB-style objects, writing their BGPSessionStatus objects), and the FRR router.
//!
//! The user is a ServiceAccount whose only rights are get/list/watch on services, endpointslices and
//! bgpsessionstatuses (its token from `kubectl create token`): any other read would fail the command with a
//! 403. The seed scenario, three nodes:
//! - BGPPeer `router` (the lab's router, iBGP) selects every node; BGPPeer `backup` (198.18.0.11, node-1's own
//!   address, where nothing listens on port 179) selects node-3 only, so node-3 has a session that stays down;
//! - pool `public` is advertised to every peer, pool `private` only to `backup`;
//! - node-2 carries the exclusion label;
//! - Services (EndpointSlices written by the test, nodes named): `web` (Cluster, ready on node-1 and node-2),
//!   `api` (Local, ready on node-1, serving-terminating on node-3), `internal` (pool `private`, ready on node-1
//!   and node-3) and `pending` (a pool that does not exist).
//!
//! The router's paths are checked first (web and api from node-1 only, internal from nobody); pool `spare` (every
//! peer) is added then, so the speakers write their prefix counts at once rather than in their 30 s slot; then the table
//! and the JSON are compared exactly with what they must say, the values the speakers own (times, the down
//! session's state and error, negotiated timers and capabilities) taken from the objects as an administrator
//! reads them around the command. Also: the missing CRD and a user without the status objects get typed errors.
//! Needs root, FRR and the control plane (`testbed/lab deps`); fails loudly without them.

mod speaker_common;

use ferrolb_testbed::serde_json::{self, Value, json};
use ferrolb_testbed::{Lab, NodeProcess};
use speaker_common::*;
use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

const NS: &str = "status";
/// The read-only user.
const READER: &str = "status-reader";
/// A user that may read Services and EndpointSlices but not the status objects.
const NO_STATUS: &str = "status-no-sessions";
const EXCLUDE: &str = "node.kubernetes.io/exclude-from-external-load-balancers";

/// Both daemons read the metallb.io objects in `CONFIG_NS`.
const CONFIG_ARGS: &[&str] = &[
    "--config-source",
    "metallb",
    "--config-namespace",
    CONFIG_NS,
];

/// The read-only ClusterRole, its binding, and a second account with no right on the status objects.
fn rbac() -> String {
    let account = |name: &str, resources: &str| {
        format!(
            "apiVersion: v1
kind: ServiceAccount
metadata: {{name: {name}, namespace: {CONFIG_NS}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: {name}}}
rules:
{resources}---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: {name}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {name}}}
subjects:
- {{kind: ServiceAccount, name: {name}, namespace: {CONFIG_NS}}}
"
        )
    };
    let core = "- {apiGroups: [\"\"], resources: [services], verbs: [get, list, watch]}
- {apiGroups: [discovery.k8s.io], resources: [endpointslices], verbs: [get, list, watch]}
";
    let sessions =
        "- {apiGroups: [ferrolb.io], resources: [bgpsessionstatuses], verbs: [get, list, watch]}\n";
    format!(
        "{}---\n{}",
        account(READER, &format!("{core}{sessions}")),
        account(NO_STATUS, core)
    )
}

/// The seed's metallb.io objects.
fn objects(router: &str) -> String {
    format!(
        "apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {{name: public, namespace: {CONFIG_NS}}}
spec: {{addresses: [203.0.113.10-203.0.113.20]}}
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {{name: private, namespace: {CONFIG_NS}}}
spec: {{addresses: [198.51.100.10-198.51.100.20]}}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {{name: router, namespace: {CONFIG_NS}}}
spec: {{myASN: 65559, peerASN: 65559, peerAddress: {router}, password: foo}}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {{name: backup, namespace: {CONFIG_NS}}}
spec:
  myASN: 65559
  peerASN: 64999
  peerAddress: {}
  nodeSelectors:
  - matchLabels: {{kubernetes.io/hostname: node-3}}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {{name: public, namespace: {CONFIG_NS}}}
spec: {{ipAddressPools: [public]}}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {{name: private, namespace: {CONFIG_NS}}}
spec: {{ipAddressPools: [private], peers: [backup]}}
",
        node_addr(1)
    )
}

/// Pool `spare`, advertised to every peer, added once the routes are up.
const SPARE_POOL: &str = "apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: spare, namespace: ferrolb-system}
spec: {addresses: [198.51.100.100-198.51.100.110]}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: spare, namespace: ferrolb-system}
spec: {ipAddressPools: [spare]}
";

/// A selector-less LoadBalancer Service in `NS` with `policy` and `pool`.
fn service(name: &str, policy: &str, pool: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": NS,
                     "annotations": {"metallb.universe.tf/address-pool": pool}},
        "spec": {"type": "LoadBalancer", "externalTrafficPolicy": policy, "ports": [{"port": 80}]}
    })
}

/// The EndpointSlice of Service `name`: `(node, ready, serving, terminating)` per endpoint.
fn slice(name: &str, endpoints: &[(&str, bool, bool, bool)]) -> Value {
    let endpoints: Vec<Value> = endpoints
        .iter()
        .enumerate()
        .map(|(i, (node, ready, serving, terminating))| {
            json!({"addresses": [format!("198.19.9.{}", i + 1)], "nodeName": node,
                   "conditions": {"ready": ready, "serving": serving, "terminating": terminating}})
        })
        .collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("{name}-1"), "namespace": NS,
                     "labels": {"kubernetes.io/service-name": name}},
        "addressType": "IPv4",
        "ports": [{"port": 80, "protocol": "TCP"}],
        "endpoints": endpoints
    })
}

/// `ferrolb status ARGS` under the kubeconfig `kubeconfig`: exit success, stdout, stderr.
fn status(kubeconfig: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ferrolb"))
        .arg("status")
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .expect("run ferrolb status");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The BGPSessionStatus objects, as the administrator reads them (`items`, by name).
fn session_objects(lab: &Lab) -> Vec<Value> {
    let out = lab
        .kubectl(&["get", "bgpsessionstatuses", "-n", CONFIG_NS, "-o", "json"])
        .unwrap();
    let list: Value = serde_json::from_str(&out).unwrap();
    let mut items = list["items"].as_array().cloned().unwrap_or_default();
    items.sort_by_key(|o| o["metadata"]["name"].as_str().map(str::to_owned));
    items
}

/// The object of `node` × `peer`.
fn object<'a>(objects: &'a [Value], node: &str, peer: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["spec"]["node"] == node && o["spec"]["peer"] == peer)
        .unwrap_or_else(|| panic!("no BGPSessionStatus for {node} × {peer}: {objects:?}"))
}

/// The JSON of one session: the speaker-owned values from `o`, the rest as the scenario fixes them.
fn session_json(o: &Value, state: &str, prefixes: u32, pools: &[&str]) -> Value {
    let st = &o["status"];
    let or_null = |v: &Value| if v.is_null() { Value::Null } else { v.clone() };
    let last_error = if st["lastError"].is_null() {
        Value::Null
    } else {
        let e = &st["lastError"];
        json!({"message": e["message"], "code": or_null(&e["code"]),
               "subcode": or_null(&e["subcode"]), "time": or_null(&e["time"])})
    };
    json!({
        "peer": o["spec"]["peer"], "peerName": o["spec"]["peerName"].as_str().unwrap_or(""),
        "peerAsn": o["spec"]["peerAsn"], "state": state, "since": or_null(&st["lastTransitionTime"]),
        "prefixesSent": prefixes, "bfd": "Disabled",
        "holdTimeSeconds": or_null(&st["holdTimeSeconds"]),
        "keepaliveSeconds": or_null(&st["keepaliveSeconds"]),
        "capabilities": st["capabilities"].as_array().cloned().unwrap_or_default(),
        "pools": pools, "lastError": last_error,
    })
}

/// What `ferrolb status` must print for the seed, given the objects `o`, the down session's `state` and the
/// pending Service's condition message: (table, JSON).
fn expected(o: &[Value], router: &str, down: &str, pending: &str) -> (String, Value) {
    let backup = node_addr(1);
    let excluded_why = format!("node is labelled {EXCLUDE}");
    let excluded =
        json!({"kind": "nodeExcluded", "message": format!("node excluded: {excluded_why}")});
    let no_ready = |on: &str| json!({"kind": "noUsableEndpoint", "message": format!("no ready endpoint on this node (ready on {on})")});
    let svc = |name: &str, address: &str, pool: &str, policy: &str, by: &[&str], not: Value| {
        json!({"namespace": NS, "name": name, "addresses": [address], "pools": [pool],
               "externalTrafficPolicy": policy, "pending": null, "announcedBy": by, "notAnnouncedBy": not})
    };
    let node = |name: &str, sessions: Vec<Value>| {
        let ex = if name == "node-2" {
            json!(excluded_why)
        } else {
            Value::Null
        };
        json!({"node": name, "excluded": ex, "sessions": sessions})
    };
    let json = json!({
        "services": [
            svc("api", "203.0.113.11", "public", "Local", &["node-1"], json!([
                {"node": "node-2", "reasons": [excluded, no_ready("node-1")]},
                {"node": "node-3", "reasons": [no_ready("node-1")]},
            ])),
            svc("internal", "198.51.100.10", "private", "Cluster", &[], json!([
                {"node": "node-1", "reasons": [{"kind": "poolNotAdvertised", "message": "pool private is advertised to none of this node's peers"}]},
                {"node": "node-2", "reasons": [excluded, no_ready("node-1, node-3")]},
                {"node": "node-3", "reasons": [{"kind": "noEstablishedSession", "message": format!("no Established session: {backup} is {down}")}]},
            ])),
            {"namespace": NS, "name": "pending", "addresses": [], "pools": ["nowhere"],
             "externalTrafficPolicy": "Cluster", "pending": pending, "announcedBy": [], "notAnnouncedBy": []},
            svc("web", "203.0.113.10", "public", "Cluster", &["node-1"], json!([
                {"node": "node-2", "reasons": [excluded]},
                {"node": "node-3", "reasons": [no_ready("node-1, node-2")]},
            ])),
        ],
        "nodes": [
            node("node-1", vec![session_json(object(o, "node-1", router), "Established", 2, &["public", "spare"])]),
            node("node-2", vec![session_json(object(o, "node-2", router), "Established", 0, &["public", "spare"])]),
            node("node-3", vec![
                session_json(object(o, "node-3", router), "Established", 0, &["public", "spare"]),
                session_json(object(o, "node-3", &backup), down, 0, &["private", "public", "spare"]),
            ]),
        ],
    });
    let since = |node: &str, peer: &str| {
        object(o, node, peer)["status"]["lastTransitionTime"]
            .as_str()
            .unwrap_or("-")
            .to_owned()
    };
    let error = object(o, "node-3", &backup)["status"]["lastError"]["message"]
        .as_str()
        .unwrap_or("-")
        .to_owned();
    let ex = format!("node excluded: {excluded_why}");
    let table = format!(
        "\
SERVICE           ADDRESS         POOL      POLICY    ANNOUNCED BY
status/api        203.0.113.11    public    Local     node-1
status/internal   198.51.100.10   private   Cluster   <none>
status/pending    <pending>       nowhere   Cluster   -
status/web        203.0.113.10    public    Cluster   node-1

SERVICE           NODES    WHY NOT
status/api        node-2   {ex}; no ready endpoint on this node (ready on node-1)
status/api        node-3   no ready endpoint on this node (ready on node-1)
status/internal   node-1   pool private is advertised to none of this node's peers
status/internal   node-2   {ex}; no ready endpoint on this node (ready on node-1, node-3)
status/internal   node-3   no Established session: {backup} is {down}
status/pending    <all>    no address: {pending}
status/web        node-2   {ex}
status/web        node-3   no ready endpoint on this node (ready on node-1, node-2)

NODE     PEER          ASN     STATE         SINCE                  PREFIXES   BFD        POOLS                  LAST ERROR
node-1   {router}    65559   Established   {}   2          Disabled   public,spare           -
node-2   {router}    65559   Established   {}   0          Disabled   public,spare           -
node-3   {router}    65559   Established   {}   0          Disabled   public,spare           -
node-3   {backup}   64999   {down:<11}   {}   0          Disabled   private,public,spare   {error}
",
        since("node-1", router),
        since("node-2", router),
        since("node-3", router),
        since("node-3", &backup),
    );
    (table, json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ferrolb_status_tells_a_read_only_user_who_announces_what_and_why_not() {
    let started = Instant::now();
    let lab = Lab::shared().expect("lab up (run testbed/lab deps first)");
    let client = lab.kube_client().await.unwrap();
    let router = lab.env("ROUTER_LAN4").unwrap_or("198.18.0.1").to_owned();
    lab.kubectl(&["create", "namespace", CONFIG_NS]).unwrap();
    lab.kubectl(&["create", "namespace", NS]).unwrap();

    // MetalLB's kinds, as `ferrolb crds` prints them, and the read-only users.
    let crds = Command::new(env!("CARGO_BIN_EXE_ferrolb"))
        .arg("crds")
        .output()
        .unwrap();
    assert!(crds.status.success());
    kubectl_apply(lab, &String::from_utf8_lossy(&crds.stdout));
    kubectl_apply(lab, &rbac());
    let reader = account_kubeconfig(lab, READER);
    let no_status = account_kubeconfig(lab, NO_STATUS);

    // Without the BGPSessionStatus CRD: a typed error that says so.
    let (ok, out, err) = status(&reader, &[]);
    assert!(!ok, "{out}");
    assert_eq!(
        err,
        "ferrolb status: the API server has no ferrolb.io/v1alpha1 BGPSessionStatus (bgpsessionstatuses.ferrolb.io): \
         its CRD is not installed; install ferrolb's manifests, which include it\n"
    );
    let own_crds = concat!(env!("CARGO_MANIFEST_DIR"), "/manifests/crds.yaml");
    lab.kubectl(&["apply", "-f", own_crds])
        .unwrap_or_else(|e| panic!("apply {own_crds}: {e}"));
    lab.kubectl(&[
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/bgpsessionstatuses.ferrolb.io",
        "crd/bgppeers.metallb.io",
        "crd/ipaddresspools.metallb.io",
        "crd/bgpadvertisements.metallb.io",
    ])
    .unwrap();

    // A user who may not read the status objects: a typed 403 naming what is missing.
    let (ok, _, err) = status(&no_status, &[]);
    assert!(!ok);
    assert!(
        err.starts_with(&format!(
            "ferrolb status: forbidden: cannot list bgpsessionstatuses.ferrolb.io in namespace {CONFIG_NS}: "
        )) && err.ends_with(
            "; `ferrolb status` needs get and list on services, endpointslices.discovery.k8s.io and \
             bgpsessionstatuses.ferrolb.io\n"
        ),
        "{err}"
    );

    // The seed: objects, the exclusion label, ferrolb.
    kubectl_apply(lab, &objects(&router));
    lab.kubectl(&["label", "node", "node-2", &format!("{EXCLUDE}=")])
        .unwrap();
    let controller = Controller::spawn(
        CONFIG_ARGS,
        free_port(),
        "status-controller",
        &lab.kubeconfig_path(),
        &lab.dir().join("logs/status-controller.log"),
    );
    let speakers: Vec<NodeProcess> = (1..=lab.nodes())
        .map(|i| {
            let state = lab.dir().join(format!("status-state-{i}"));
            let name = format!("status-speaker-{i}");
            spawn_speaker_with(lab, i, &name, &lab.kubeconfig_path(), &state, CONFIG_ARGS)
        })
        .collect();
    for i in 1..=lab.nodes() {
        lab.wait_established(&node_addr(i), Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{e}\n{}", all_speaker_logs(lab)));
    }
    let setup = started.elapsed();

    // Services one at a time, so that each gets the lowest free address of its pool.
    for (name, policy, pool, endpoints) in [
        (
            "web",
            "Cluster",
            "public",
            vec![("node-1", true, true, false), ("node-2", true, true, false)],
        ),
        (
            "api",
            "Local",
            "public",
            vec![("node-1", true, true, false), ("node-3", false, true, true)],
        ),
        (
            "internal",
            "Cluster",
            "private",
            vec![("node-1", true, true, false), ("node-3", true, true, false)],
        ),
    ] {
        apply(&client, slice(name, &endpoints)).await;
        apply(&client, service(name, policy, pool)).await;
        ingress_ip(&client, NS, name).await;
    }
    apply(&client, service("pending", "Cluster", "nowhere")).await;

    // The router first: web and api from node-1 only, internal from nobody.
    let node_1 = set(&[&node_addr(1)]);
    wait_paths(lab, "203.0.113.10", &node_1, "web from node-1");
    wait_paths(lab, "203.0.113.11", &node_1, "api from node-1");
    wait_paths(
        lab,
        "198.51.100.10",
        &BTreeSet::new(),
        "internal from nobody",
    );
    // The speakers write a change of `prefixesSent` alone once per 30 s (in each object's slot), any other change
    // within a second, with the counts of the moment: a third pool, advertised to every peer, changes every
    // object's `pools` now, so the counts the router already has are written at once.
    kubectl_apply(lab, SPARE_POOL);

    // Then the report, once the speakers' objects have caught up: exact, with the speaker-owned values read by
    // the administrator before and after the command (retried when they moved in between).
    let deadline = Instant::now() + Duration::from_secs(30);
    let (table, json, want_table, want_json) =
        loop {
            let before = session_objects(lab);
            let (ok_t, table, err_t) = status(&reader, &[]);
            let (ok_j, json, err_j) = status(&reader, &["-o", "json"]);
            let after = session_objects(lab);
            assert!(
                ok_t && ok_j,
                "ferrolb status failed as the read-only user: {err_t}{err_j}"
            );
            assert_eq!((err_t.as_str(), err_j.as_str()), ("", ""));
            let json: Value = serde_json::from_str(&json).unwrap();
            let pending = lab
            .kubectl(&["get", "service", "pending", "-n", NS, "-o",
                "jsonpath={.status.conditions[?(@.type==\"ferrolb.io/AddressAssigned\")].message}"])
            .unwrap();
            let down = object(&after, "node-3", &node_addr(1))["status"]["state"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let (want_table, want_json) = expected(&after, &router, &down, &pending);
            let settled = before == after && json == want_json && table == want_table;
            if settled || Instant::now() > deadline {
                break (table, json, want_table, want_json);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
    println!("ferrolb status (read-only user):\n{table}");
    assert_eq!(
        json,
        want_json,
        "JSON:\n{}\nwant:\n{}",
        serde_json::to_string_pretty(&json).unwrap(),
        serde_json::to_string_pretty(&want_json).unwrap()
    );
    assert_eq!(table, want_table, "table:\n{table}\nwant:\n{want_table}");
    let down = json["nodes"][2]["sessions"][1]["state"]
        .as_str()
        .unwrap_or_default();
    assert!(
        ["Idle", "Connect"].contains(&down),
        "the backup session is down: {down}"
    );
    assert!(
        json["services"][2]["pending"]
            .as_str()
            .is_some_and(|m| m.contains("nowhere")),
        "{json}"
    );

    // One Service, by NAMESPACE/NAME and by -n: the same row.
    let (ok, one, err) = status(&reader, &[&format!("{NS}/web")]);
    assert!(ok, "{err}");
    let (ok, one_n, err) = status(&reader, &["-n", NS, "web"]);
    assert!(ok, "{err}");
    assert_eq!(one, one_n);
    assert!(
        one.starts_with(
            "SERVICE      ADDRESS        POOL     POLICY    ANNOUNCED BY\n\
         status/web   203.0.113.10   public   Cluster   node-1\n"
        ),
        "{one}"
    );
    println!(
        "figures: set-up (CRDs, users, ferrolb, sessions) {:.1} s; whole test {:.1} s",
        setup.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );

    for s in speakers {
        stop_speaker(s);
    }
    drop(controller);
    lab.kubectl(&["label", "node", "node-2", &format!("{EXCLUDE}-")])
        .unwrap();
}

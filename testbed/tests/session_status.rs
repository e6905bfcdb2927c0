//! The speakers' `BGPSessionStatus` objects (src/speaker/session_status) on the lab's real API server with the
//! real FRR router, in one scenario on one lab. The speakers run under the token of the `speaker`
//! ServiceAccount with the committed RBAC (`manifests/rbac-speaker.yaml`) and CRD (`manifests/crds.yaml`), so
//! every call they make is one the Role grants (no log shows a refusal).
//!
//! Each node has two peers: the router (Established) and the router on port 1790, where nothing listens
//! (refused). With a Service announced from node-1 and node-2:
//!
//! 1. one object per node × peer appears, with exact fields: spec, label, the Node as owner, state, hold
//!    time and keepalive as FRR negotiated them, the capabilities both sides announced, `prefixesSent` equal to
//!    FRR's `pfxRcd` from that node, BFD `Disabled`, the pool; the refused peer's `lastError` says so; `kubectl
//!    get bgpsessionstatus` prints the columns;
//! 2. `clear bgp X` on FRR (the lab's neighbors are dynamic, so `neighbor X shutdown` is refused): node-1's
//!    object leaves Established with `lastError` naming the received Cease / Administrative Reset (6/4) and 0
//!    prefixes, then is Established again with its prefix and a later transition time, the error kept; the
//!    other nodes' objects are untouched;
//! 3. the peer on port 1790 removed from the configuration: its objects are deleted;
//! 4. Node node-3 deleted: the garbage collector deletes its objects, and its running speaker does not write
//!    them again;
//! 5. the speakers stopped with SIGTERM (graceful restart): before exiting, each wrote its objects' final state,
//!    Idle, still counting the prefixes the router keeps as stale.
//!
//! Needs root, FRR and the control plane (`testbed/lab deps`); fails loudly without them. Figures (how soon the
//! objects follow, the writes): `cargo test --test session_status -- --nocapture`.

mod speaker_common;

use ferrolb_testbed::Lab;
use ferrolb_testbed::kube::Client;
use ferrolb_testbed::kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use ferrolb_testbed::serde_json::{Value, json};
use speaker_common::*;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Namespace of the test's Service.
const NS: &str = "status-app";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn api(client: &Client) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("ferrolb.io", "v1alpha1", "BGPSessionStatus");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "bgpsessionstatuses");
    Api::namespaced_with(client.clone(), CONFIG_NS, &resource)
}

/// Every BGPSessionStatus object of the speakers' namespace, by name, as JSON.
async fn objects(client: &Client) -> BTreeMap<String, Value> {
    api(client)
        .list(&ListParams::default())
        .await
        .expect("list bgpsessionstatuses")
        .items
        .into_iter()
        .map(|o| {
            let v = ferrolb_testbed::serde_json::to_value(&o).unwrap();
            (o.metadata.name.unwrap_or_default(), v)
        })
        .collect()
}

/// Polls the objects every 100 ms until `done` holds, for at most `limit`; returns them and how long it took.
async fn wait_objects(
    client: &Client,
    logs: &dyn Fn() -> String,
    limit: Duration,
    what: &str,
    done: impl Fn(&BTreeMap<String, Value>) -> bool,
) -> (BTreeMap<String, Value>, Duration) {
    let started = Instant::now();
    loop {
        let now = objects(client).await;
        if done(&now) {
            return (now, started.elapsed());
        }
        assert!(
            started.elapsed() < limit,
            "{what}: not within {limit:?}; objects: {:#}\n{}",
            json!(now),
            logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// FRR's view of its neighbor `addr` (`show bgp neighbors ADDR json`).
fn frr_neighbor(lab: &Lab, addr: &str) -> Value {
    lab.vtysh(&format!("show bgp neighbors {addr} json"))
        .unwrap()[addr]
        .clone()
}

/// Prefixes FRR holds from `addr` (`show bgp ipv4 unicast summary json`, `pfxRcd`).
fn pfx_rcd(lab: &Lab, addr: &str) -> u64 {
    lab.vtysh("show bgp ipv4 unicast summary json").unwrap()["peers"][addr]["pfxRcd"]
        .as_u64()
        .unwrap_or_else(|| panic!("no pfxRcd for {addr}"))
}

fn kubectl_json(lab: &Lab, args: &[&str]) -> Value {
    let out = lab.kubectl(args).unwrap();
    ferrolb_testbed::serde_json::from_str(&out).unwrap()
}

/// A counter of `text` (Prometheus exposition) with exactly these labels, 0 when absent.
fn counter(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_status_objects_follow_the_sessions() {
    let started = Instant::now();
    let lab = Lab::shared().expect("lab up (run testbed/lab deps first)");
    let client = lab.kube_client().await.unwrap();
    let router = lab.env("ROUTER_LAN4").unwrap_or("198.18.0.1").to_owned();
    lab.kubectl(&["create", "namespace", CONFIG_NS]).unwrap();
    lab.kubectl(&["create", "namespace", NS]).unwrap();
    for file in ["serviceaccounts.yaml", "rbac-speaker.yaml", "crds.yaml"] {
        let path = repo().join("manifests").join(file);
        lab.kubectl(&["apply", "-f", &path.display().to_string()])
            .unwrap_or_else(|e| panic!("apply manifests/{file}: {e}"));
    }
    lab.kubectl(&[
        "wait",
        "--for=condition=Established",
        "crd/bgpsessionstatuses.ferrolb.io",
        "--timeout=30s",
    ])
    .unwrap();
    let refused_peer = format!(
        "    - peer-address: {router}\n      peer-port: 1790\n      peer-asn: 65559\n      my-asn: 65559\n"
    );
    kubectl_apply(lab, &configmap(lab, &refused_peer, ""));
    let identities = Identities {
        controller: lab.kubeconfig_path(),
        speaker: account_kubeconfig(lab, "speaker"),
    };
    let ferrolb = Ferrolb::start(lab, identities, "status");
    let vip = manual_service(&client, NS).await;
    apply(&client, manual_slice(NS, true)).await;
    wait_paths(
        lab,
        &vip,
        &set(&[&node_addr(1), &node_addr(2)]),
        "the Service on node-1 and node-2",
    );
    let setup = started.elapsed();
    let logs = || ferrolb.logs(lab);

    // --- 1. One object per node × peer, with exact fields.
    let name = |i: usize| format!("node-{i}.{router}");
    let refused_name = |i: usize| format!("node-{i}.{router}-1790");
    let want_prefixes = |i: usize| u64::from(i != 3);
    let (all, took) = wait_objects(
        &client,
        &logs,
        Duration::from_secs(20),
        "six objects",
        |o| {
            o.len() == 6
                && (1..=3).all(|i| {
                    let s = &o.get(&name(i)).map_or(Value::Null, |v| v["status"].clone());
                    s["state"] == "Established" && s["prefixesSent"] == want_prefixes(i)
                })
                && (1..=3).all(|i| {
                    o.get(&refused_name(i))
                        .is_some_and(|v| !v["status"]["lastError"].is_null())
                })
        },
    )
    .await;
    println!("objects complete {took:?} after the Service's routes ({setup:?} from the start)");
    for i in 1..=3 {
        let node = format!("node-{i}");
        let uid =
            kubectl_json(lab, &["get", "node", &node, "-o", "json"])["metadata"]["uid"].clone();
        let frr = frr_neighbor(lab, &node_addr(i));
        let hold = frr["bgpTimerHoldTimeMsecs"].as_u64().unwrap() / 1000;
        let o = &all[&name(i)];
        assert_eq!(o["metadata"]["labels"]["ferrolb.io/node"], node, "{o:#}");
        assert_eq!(
            o["metadata"]["ownerReferences"],
            json!([{"apiVersion": "v1", "kind": "Node", "name": node, "uid": uid}]),
            "{o:#}"
        );
        assert_eq!(
            o["spec"],
            json!({"node": node, "peer": router, "peerAsn": 65559}),
            "{o:#}"
        );
        let s = &o["status"];
        assert_eq!(s["holdTimeSeconds"], hold, "{o:#}");
        assert_eq!(s["keepaliveSeconds"], hold / 3, "{o:#}");
        assert_eq!(
            s["capabilities"],
            json!([
                "4-octet-as",
                "graceful-restart",
                "ipv4-unicast",
                "ipv6-unicast",
                "route-refresh"
            ]),
            "{o:#}"
        );
        assert_eq!(s["prefixesSent"], pfx_rcd(lab, &node_addr(i)), "{o:#}");
        assert_eq!(
            (s["bfd"].as_str(), s["pools"].clone()),
            (Some("Disabled"), json!(["public-pool"]))
        );
        assert!(
            s["lastTransitionTime"].is_string()
                && s["lastError"].is_null()
                && s["nodeExcluded"].is_null(),
            "{o:#}"
        );
        let r = &all[&refused_name(i)];
        assert_eq!(r["spec"]["peer"], format!("{router}:1790"));
        assert_ne!(r["status"]["state"], "Established");
        let message = r["status"]["lastError"]["message"]
            .as_str()
            .unwrap_or_default();
        assert!(
            message.starts_with(&format!("connection: connection to {router} refused")),
            "{r:#}"
        );
        assert!(
            r["status"]["holdTimeSeconds"].is_null() && r["status"]["prefixesSent"] == 0,
            "{r:#}"
        );
    }
    let table = lab
        .kubectl(&["get", "bgpsessionstatus", "-n", CONFIG_NS])
        .unwrap();
    println!("{table}");
    let mut lines = table.lines();
    assert_eq!(
        lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["NAME", "NODE", "PEER", "STATE", "SINCE", "PREFIXES", "BFD"]
    );
    let row: Vec<&str> = lines
        .find(|l| l.starts_with(&format!("{} ", name(1))))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        (row[1], row[2], row[3], row[5], row[6]),
        ("node-1", router.as_str(), "Established", "1", "Disabled"),
        "{table}"
    );
    assert_eq!(
        lab.kubectl(&["get", "bgpss", "-n", CONFIG_NS, "-o", "name"])
            .unwrap()
            .lines()
            .count(),
        6
    );

    // --- 2. A session reset on the router.
    let before = all[&name(1)]["status"].clone();
    let others: Vec<Value> = (2..=3).map(|i| all[&name(i)]["status"].clone()).collect();
    let shut = Instant::now();
    lab.vtysh_text(&format!("clear bgp {}", node_addr(1)))
        .expect("reset node-1's session");
    let (down, took) = wait_objects(
        &client,
        &logs,
        Duration::from_secs(10),
        "node-1 down with the Cease",
        |o| {
            let s = &o[&name(1)]["status"];
            s["state"] != "Established" && s["lastError"]["code"] == 6
        },
    )
    .await;
    let s = &down[&name(1)]["status"];
    println!("router reset node-1's session: object down {took:?} later: {s}");
    assert!(
        s["lastError"]["message"]
            .as_str()
            .unwrap()
            .starts_with("received NOTIFICATION 6/4 (Cease / Administrative Reset"),
        "{s:#}"
    );
    assert_eq!(
        (s["lastError"]["subcode"].clone(), s["prefixesSent"].clone()),
        (json!(4), json!(0))
    );
    assert!(
        s["holdTimeSeconds"].is_null() && s["capabilities"].is_null(),
        "{s:#}"
    );
    let (up, took) = wait_objects(
        &client,
        &logs,
        Duration::from_secs(30),
        "node-1 up again",
        |o| {
            let s = &o[&name(1)]["status"];
            s["state"] == "Established" && s["prefixesSent"] == 1
        },
    )
    .await;
    println!(
        "node-1's session back: object Established {took:?} later ({:?} after the reset)",
        shut.elapsed()
    );
    let s = &up[&name(1)]["status"];
    // Times have whole seconds: the order is checked, not that each step took a second.
    let since = |v: &Value| v["lastTransitionTime"].as_str().unwrap().to_owned();
    let down_since = since(&down[&name(1)]["status"]);
    assert!(
        since(&before) <= down_since && down_since <= since(s),
        "{s:#}"
    );
    assert_eq!(
        s["lastError"],
        down[&name(1)]["status"]["lastError"],
        "the error is kept"
    );
    assert_eq!(s["holdTimeSeconds"], before["holdTimeSeconds"]);
    assert_eq!(pfx_rcd(lab, &node_addr(1)), 1);
    for (i, other) in (2..=3).zip(&others) {
        assert_eq!(&up[&name(i)]["status"], other, "node-{i}'s object changed");
    }

    // --- 3. The refused peer removed from the configuration: its objects go.
    kubectl_apply(lab, &configmap(lab, "", ""));
    let (_, took) = wait_objects(
        &client,
        &logs,
        Duration::from_secs(20),
        "the 1790 peer's objects deleted",
        |o| o.len() == 3 && (1..=3).all(|i| o.contains_key(&name(i))),
    )
    .await;
    println!("peer removed from the configuration: its objects deleted {took:?} later");

    // --- 4. Node node-3 deleted: the garbage collector deletes its object; its speaker writes it no more.
    let deleted = Instant::now();
    lab.kubectl(&["delete", "node", "node-3", "--wait=false"])
        .unwrap();
    // The garbage collector finds a new kind at its next discovery (every 30 s), so up to a minute here with
    // the CRD created at the start; on a cluster whose CRD is older, the first seconds.
    let (_, took) = wait_objects(
        &client,
        &logs,
        Duration::from_secs(60),
        "node-3's object collected",
        |o| !o.contains_key(&name(3)),
    )
    .await;
    println!("Node node-3 deleted: its object collected {took:?} later");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = objects(&client).await;
    assert_eq!(
        after.keys().cloned().collect::<Vec<_>>(),
        [name(1), name(2)],
        "node-3's speaker wrote its object again ({:?} after the deletion)",
        deleted.elapsed()
    );

    // The writes, and no refusal.
    for i in 1..=3 {
        let metrics = speaker_metrics(lab, i);
        let writes = |op: &str| {
            counter(
                &metrics,
                &format!("ferrolb_speaker_session_status_writes_total{{operation=\"{op}\"}}"),
            )
        };
        let errors: u64 = ["apply", "apply_status", "delete", "list"]
            .iter()
            .map(|op| {
                counter(
                    &metrics,
                    &format!(
                        "ferrolb_speaker_session_status_api_errors_total{{operation=\"{op}\"}}"
                    ),
                )
            })
            .sum();
        println!(
            "node-{i}: {} applies, {} status applies, {} deletes, {} lists, {errors} errors",
            writes("apply"),
            writes("apply_status"),
            writes("delete"),
            writes("list")
        );
        assert_eq!(writes("list"), 1, "node-{i}");
        assert_eq!(writes("delete"), 1, "node-{i} deleted its 1790 object");
        assert_eq!(
            writes("apply"),
            2,
            "node-{i} applied each object's spec once"
        );
        // node-3's writer may have raced the garbage collector once (a 404), never the others.
        if i < 3 {
            assert_eq!(errors, 0, "node-{i}: {metrics}");
        }
    }
    assert_eq!(ferrolb.refused(lab), None, "{}", ferrolb.logs(lab));

    // --- 5. The speakers stopped (SIGTERM, graceful restart): each wrote its sessions' final state first. The
    // router keeps their routes as stale meanwhile, and the objects still count them; the last error stays.
    let before_stop = objects(&client).await;
    ferrolb.stop();
    let last = objects(&client).await;
    for i in 1..=2 {
        let s = &last[&name(i)]["status"];
        assert_eq!(s["state"], "Idle", "{s:#}");
        assert_eq!(s["prefixesSent"], pfx_rcd(lab, &node_addr(i)), "{s:#}");
        assert_eq!(
            s["lastError"],
            before_stop[&name(i)]["status"]["lastError"],
            "{s:#}"
        );
    }
    println!("session_status: {:?} in all", started.elapsed());
}

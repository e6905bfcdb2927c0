//! `ferrolb controller` replicas on the real kube-apiserver: only the Lease holder writes; when it is killed, the
//! standby takes over within the lease time and writes from then on; when it is stopped gracefully (SIGTERM),
//! it releases the Lease and a standby takes over at its next read, well before the Lease would expire. A leader
//! cut off from the API server (an nftables DROP in its own namespace, the process running on) stops writing at
//! its renew deadline, before the standby takes over, as the API server's audit log shows.
//!
//! Needs root and the built control plane (`testbed/lab deps`); fails loudly without them.

mod controller_common;

use controller_common::*;
use ferrolb_testbed::k8s_openapi::api::coordination::v1::Lease;
use ferrolb_testbed::k8s_openapi::jiff::Timestamp;
use ferrolb_testbed::kube::{Api, Client};
use ferrolb_testbed::{ControlPlane, Lab};
use serde_json::json;
use std::time::{Duration, Instant};

/// Seconds; the helper starts controllers with `--lease-duration-secs 4 --lease-renew-deadline-secs 3
/// --lease-retry-secs 1 --lease-request-timeout-secs 1`.
const LEASE_SECS: u64 = 4;
const RETRY_SECS: u64 = 1;

async fn holder(client: &Client, ns: &str) -> Option<String> {
    Api::<Lease>::namespaced(client.clone(), ns)
        .get_opt("ferrolb-controller")
        .await
        .ok()??
        .spec?
        .holder_identity
}

/// The shared control plane and a client; namespace `ns` with a ConfigMap of one pool of `addresses`.
async fn fixture(ns: &str, addresses: &str) -> (&'static ControlPlane, Client) {
    let cp =
        ControlPlane::shared().expect("the lab control plane (run `testbed/lab deps` as root)");
    let client = cp.kube_client().await.expect("kube client");
    namespace(&client, ns).await;
    let config =
        format!("address-pools:\n- name: default\n  protocol: bgp\n  addresses: [{addresses}]\n");
    put_config(&client, ns, &config).await;
    (cp, client)
}

/// Waits up to `secs` for `ctl` to hold the Lease.
async fn holds_lease(client: &Client, ns: &str, ctl: &ControllerProcess, secs: u64) {
    wait_for(
        &format!("{} to hold the Lease", ctl.identity),
        Duration::from_secs(secs),
        Some(ctl),
        || async {
            (holder(client, ns).await.as_deref() == Some(ctl.identity.as_str())).then_some(())
        },
    )
    .await;
}

fn writes_in(ctl: &ControllerProcess) -> usize {
    ctl.log().matches("status written").count()
}

#[tokio::test]
async fn only_the_leader_writes_and_the_standby_takes_over_within_the_lease_time() {
    let ns = "ctl-ha";
    let (cp, client) = fixture(ns, "203.0.113.32/29").await;
    let kubeconfig = cp.lab().kubeconfig_path();
    let mut a = ControllerProcess::start(&kubeconfig, ns, "ctl-a", &[]);
    holds_lease(&client, ns, &a, 20).await;
    let b = ControllerProcess::start(&kubeconfig, ns, "ctl-b", &[]);
    // The standby knows its role: ready, not leader.
    wait_for(
        "ctl-b ready as standby",
        Duration::from_secs(20),
        Some(&b),
        || async {
            let ready = b.http_get("/readyz").await?.0 == 200;
            let leader = b.metric("ferrolb_controller_leader_bool").await?;
            (ready && leader == 0.0).then_some(())
        },
    )
    .await;
    assert_eq!(a.metric("ferrolb_controller_leader_bool").await, Some(1.0));

    create(&client, ns, &lb_service("first", json!({}))).await;
    let first = wait_assigned_or_refused(&client, ns, "first", &a).await;
    assert_eq!(ingress(&first), vec!["203.0.113.32"]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(writes_in(&a), 1, "{}", a.log());
    assert_eq!(writes_in(&b), 0, "the standby wrote:\n{}", b.log());

    // Kill the leader outright: no chance to release the Lease.
    a.kill();
    let killed = Instant::now();
    holds_lease(&client, ns, &b, 30).await;
    let takeover = killed.elapsed();
    println!(
        "TAKEOVER after {:.2}s (lease {LEASE_SECS}s, retry {RETRY_SECS}s)",
        takeover.as_secs_f64()
    );
    // The standby waits for the Lease to stay unchanged for its full duration, measured from the first read
    // that saw the last renewal: at most lease + one retry period after the kill, plus scheduling slack.
    assert!(
        takeover <= Duration::from_secs(LEASE_SECS + 2 * RETRY_SECS + 1),
        "takeover took {takeover:?}"
    );

    // The new leader keeps the first Service's address and assigns the next one.
    create(&client, ns, &lb_service("second", json!({}))).await;
    let second = wait_assigned_or_refused(&client, ns, "second", &b).await;
    assert_eq!(ingress(&second), vec!["203.0.113.33"]);
    assert_eq!(
        ingress(&crate::get(&client, ns, "first").await),
        vec!["203.0.113.32"]
    );
    assert_eq!(writes_in(&b), 1, "{}", b.log());

    // A rolling restart: a new standby, then SIGTERM to the leader. It releases the Lease on its way out.
    let mut c = ControllerProcess::start(&kubeconfig, ns, "ctl-c", &[]);
    wait_for(
        "ctl-c ready as standby",
        Duration::from_secs(20),
        Some(&c),
        || async { (c.http_get("/readyz").await?.0 == 200).then_some(()) },
    )
    .await;
    let mut b = b;
    let stopping = Instant::now();
    assert!(
        b.terminate(),
        "ctl-b exits cleanly on SIGTERM:\n{}",
        b.log()
    );
    assert!(b.log().contains("lease released"), "{}", b.log());
    holds_lease(&client, ns, &c, 30).await;
    let handover = stopping.elapsed();
    println!(
        "HANDOVER after SIGTERM {:.2}s (lease {LEASE_SECS}s, retry {RETRY_SECS}s; SIGKILL took {:.2}s)",
        handover.as_secs_f64(),
        takeover.as_secs_f64()
    );
    // Expiry would take the full lease duration after the last renewal; a release is seen at the next read.
    assert!(
        handover < Duration::from_secs(LEASE_SECS),
        "handover after SIGTERM took {handover:?}, no faster than lease expiry"
    );
    create(&client, ns, &lb_service("third", json!({}))).await;
    let third = wait_assigned_or_refused(&client, ns, "third", &c).await;
    assert_eq!(ingress(&third), vec!["203.0.113.34"]);
    assert!(c.terminate(), "{}", c.log());
}

/// Waits until `ctl` logs that it stands by for `leader` (JSON log).
async fn standing_by(ctl: &ControllerProcess, leader: &str) {
    let line = format!(r#"Standby(Some(\"{leader}\"))"#);
    wait_for(
        &format!("{} to stand by for {leader}", ctl.identity),
        Duration::from_secs(20),
        Some(ctl),
        || async { ctl.log().contains(&line).then_some(()) },
    )
    .await;
}

/// Creates Service `name` and waits for its condition (`ctl`'s log shown on a timeout); its ingress addresses.
async fn created_and_assigned(
    client: &Client,
    ns: &str,
    name: &str,
    ctl: &ControllerProcess,
) -> Vec<String> {
    create(client, ns, &lb_service(name, json!({}))).await;
    ingress(&wait_assigned_or_refused(client, ns, name, ctl).await)
}

/// One successful write from the API server's audit log: who (by source address), what, when it arrived.
#[derive(Debug, Clone)]
struct AuditedWrite {
    /// The controller identity the source address belongs to.
    writer: &'static str,
    /// `leases/<name>` or `services/<name>/status`.
    object: String,
    /// `requestReceivedTimestamp`.
    received: Timestamp,
    /// `responseStatus.code`.
    code: u16,
}

/// Every write of a Lease or a Service status in namespace `ns` that the audit log recorded, in order; a write
/// from an address other than `sources` (address, identity) fails the test.
fn audited_writes(lab: &Lab, ns: &str, sources: &[(&str, &'static str)]) -> Vec<AuditedWrite> {
    let path = lab.audit_log_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("audit log {}: {e}", path.display()));
    let mut out = Vec::new();
    for line in text.lines() {
        let ev: serde_json::Value = serde_json::from_str(line).expect("audit line is JSON");
        let obj = &ev["objectRef"];
        if ev["stage"] != "ResponseComplete" || obj["namespace"] != ns {
            continue;
        }
        let object = match (obj["resource"].as_str(), obj["subresource"].as_str()) {
            (Some("leases"), None) => format!("leases/{}", obj["name"].as_str().unwrap_or("")),
            (Some("services"), Some("status")) => {
                format!("services/{}/status", obj["name"].as_str().unwrap_or(""))
            }
            _ => continue,
        };
        let source = ev["sourceIPs"][0].as_str().unwrap_or("");
        let writer = sources
            .iter()
            .find(|(addr, _)| *addr == source)
            .map(|(_, id)| *id)
            .unwrap_or_else(|| panic!("a write from an unexpected source {source}: {line}"));
        out.push(AuditedWrite {
            writer,
            object,
            received: ev["requestReceivedTimestamp"]
                .as_str()
                .expect("requestReceivedTimestamp")
                .parse()
                .expect("an RFC 3339 time"),
            code: ev["responseStatus"]["code"]
                .as_u64()
                .expect("response code") as u16,
        });
    }
    out.sort_by_key(|w| w.received);
    out
}

/// The time of the first JSON log line of `log` whose message contains `message`.
fn logged_at(log: &str, message: &str) -> Option<Timestamp> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(message))
        })
        .and_then(|l| l["timestamp"].as_str()?.parse().ok())
}

/// Drops (`true`) or restores (`false`) all traffic between namespace `netns` and the API server, with an nftables
/// table in that namespace only; the processes keep running.
fn cut_off(netns: &str, cut: bool) {
    let script = if cut {
        format!(
            "table inet ferrolb_cut {{
               chain out {{ type filter hook output priority 0; ip daddr {API_ADDR} tcp dport {API_PORT} drop; }}
               chain in {{ type filter hook input priority 0; ip saddr {API_ADDR} tcp sport {API_PORT} drop; }}
             }}"
        )
    } else {
        "delete table inet ferrolb_cut".to_owned()
    };
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", netns, "nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("nft stdin")
                .write_all(script.as_bytes())?;
            child.wait_with_output()
        })
        .expect("run nft (Debian package nftables)");
    assert!(out.status.success(), "nft in {netns} failed: {out:?}");
}

/// The router's LAN address and port, where the API server is reached from a `lan-host` namespace.
const API_ADDR: &str = "198.18.0.1";
const API_PORT: u16 = 6443;
const ADDR_A: &str = "198.18.0.201";
const ADDR_B: &str = "198.18.0.202";
/// `--lease-renew-deadline-secs` of the helper.
const RENEW_DEADLINE_SECS: u64 = 3;

#[tokio::test]
async fn a_leader_cut_off_from_the_api_server_stops_writing_before_the_standby_takes_over() {
    let ns = "ctl-cut";
    let (cp, client) = fixture(ns, "203.0.113.48/29").await;
    let lab = cp.lab();
    let (netns_a, kubeconfig_a) = lab.lan_host("ctla", ADDR_A).expect("namespace for ctl-a");
    let (netns_b, kubeconfig_b) = lab.lan_host("ctlb", ADDR_B).expect("namespace for ctl-b");
    let json = ["--log-format", "json"];
    let a = ControllerProcess::start_in(Some(&netns_a), &kubeconfig_a, ns, "ctl-a", &json);
    holds_lease(&client, ns, &a, 20).await;
    let b = ControllerProcess::start_in(Some(&netns_b), &kubeconfig_b, ns, "ctl-b", &json);
    standing_by(&b, "ctl-a").await;
    assert_eq!(
        created_and_assigned(&client, ns, "before", &a).await,
        vec!["203.0.113.48"]
    );

    // Cut ctl-a off; the process keeps running. A Service created now is one only the new leader can see.
    cut_off(&netns_a, true);
    let cut_at = Timestamp::now();
    let cut = Instant::now();
    assert_eq!(
        created_and_assigned(&client, ns, "during", &b).await,
        vec!["203.0.113.49"]
    );
    println!(
        "the standby assigned a new Service {:.2}s after the leader was cut off",
        cut.elapsed().as_secs_f64()
    );
    wait_for(
        "ctl-a to step down",
        Duration::from_secs(10),
        Some(&a),
        || async { logged_at(&a.log(), "stepping down").map(|_| ()) },
    )
    .await;

    // Back on the network, ctl-a sees ctl-b's Lease and stays a standby: it writes nothing.
    cut_off(&netns_a, false);
    standing_by(&a, "ctl-b").await;
    assert_eq!(
        created_and_assigned(&client, ns, "after", &b).await,
        vec!["203.0.113.50"]
    );
    // One more second for any late write of ctl-a to show up in the audit log.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let writes = audited_writes(lab, ns, &[(ADDR_A, "ctl-a"), (ADDR_B, "ctl-b")]);
    let ok: Vec<&AuditedWrite> = writes.iter().filter(|w| w.code < 300).collect();
    let status_by = |id: &str| -> Vec<&str> {
        ok.iter()
            .filter(|w| w.writer == id && w.object.starts_with("services/"))
            .map(|w| w.object.as_str())
            .collect()
    };
    // Exactly who wrote which Service status.
    assert_eq!(
        status_by("ctl-a"),
        vec!["services/before/status"],
        "{writes:#?}"
    );
    assert_eq!(
        status_by("ctl-b"),
        vec!["services/during/status", "services/after/status"],
        "{writes:#?}"
    );
    // No overlap: every write of ctl-a (Lease or status) arrived before the first of ctl-b, and ctl-b wrote
    // nothing while it stood by.
    let last_a = ok
        .iter()
        .filter(|w| w.writer == "ctl-a")
        .map(|w| w.received)
        .max();
    let first_b = ok
        .iter()
        .filter(|w| w.writer == "ctl-b")
        .map(|w| w.received)
        .min();
    let (last_a, first_b) = (last_a.expect("ctl-a wrote"), first_b.expect("ctl-b wrote"));
    assert!(last_a < first_b, "write windows overlap: {writes:#?}");
    assert!(
        last_a < cut_at,
        "ctl-a wrote after it was cut off: {writes:#?}"
    );
    // Whatever ctl-a sent that arrived late (after the network came back) was refused (409: stale Lease).
    for late in writes
        .iter()
        .filter(|w| w.writer == "ctl-a" && w.received > cut_at)
    {
        assert_eq!(late.code, 409, "{late:?}");
    }
    let count = |id: &str, late: bool| {
        writes
            .iter()
            .filter(|w| w.writer == id && (w.received > cut_at) == late)
            .count()
    };
    println!(
        "audit log: ctl-a {} writes before the cut, {} arriving after it (refused); ctl-b {} writes",
        count("ctl-a", false),
        count("ctl-a", true),
        count("ctl-b", true)
    );
    // ctl-a stopped writing (its own log) before ctl-b's first write reached the API server.
    let stepped_down = logged_at(&a.log(), "stepping down").expect("ctl-a logged its step-down");
    assert!(
        stepped_down < first_b,
        "ctl-a stepped down at {stepped_down}, ctl-b wrote at {first_b}"
    );
    // ctl-b took over within lease duration + renew deadline of the cut.
    let takeover = first_b.duration_since(cut_at);
    println!(
        "TAKEOVER after the cut {:.2}s; ctl-a stepped down {:.2}s after the cut (lease {LEASE_SECS}s, renew \
         deadline {RENEW_DEADLINE_SECS}s, retry {RETRY_SECS}s)",
        takeover.as_secs_f64(),
        stepped_down.duration_since(cut_at).as_secs_f64()
    );
    assert!(
        takeover
            < ferrolb_testbed::k8s_openapi::jiff::SignedDuration::from_secs(
                (LEASE_SECS + RENEW_DEADLINE_SECS) as i64
            ),
        "takeover took {takeover:?}"
    );
    let lease = Api::<Lease>::namespaced(client.clone(), ns)
        .get("ferrolb-controller")
        .await
        .expect("the Lease")
        .spec
        .expect("its spec");
    assert_eq!(
        (lease.holder_identity.as_deref(), lease.lease_transitions),
        (Some("ctl-b"), Some(1))
    );
}

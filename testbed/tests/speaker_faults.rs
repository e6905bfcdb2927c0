//! Faults around `ferrolb speaker` in the lab, on the real control plane and the FRR router: what the speaker
//! reports, and that the routes stay put. One scenario on one lab, in order, because the speakers, the ConfigMap
//! and the API server are shared by every step:
//!
//! 1. An invalid ConfigMap: every speaker posts its own Warning Event `ConfigInvalid` on the ConfigMap (once:
//!    no series of repeats), `ferrolb_k8s_client_config_stale_bool` is 1 on every speaker, and the router's
//!    paths and FIB for the VIP are unchanged at every sample; the valid ConfigMap back, stale returns to 0.
//! 2. A TCP-MD5 password mismatch: node-3's peer gets a password the router does not have (the router's kernel
//!    drops its SYNs), and a second peer on a port nothing listens on. The log says "no BGP reply from
//!    198.18.0.1: check that both sides use the same TCP-MD5 password" and "connection to 198.18.0.1
//!    refused", and `ferrolb_bgp_connect_failures_total` counts `no_reply` and `refused` for those peers;
//!    node-1 and node-2 are not disturbed.
//! 3. The API server killed for 60 s (`testbed/lab apiserver stop`, SIGKILL: every watch breaks): no session
//!    flaps and the VIP's paths and FIB are unchanged at every one-second sample; after `apiserver start`,
//!    every speaker and the controller re-list (`ferrolb_k8s_watch_lists_total{watch="services"}` grows),
//!    and a Service created right after the return reaches the router's FIB (time printed).
//!
//! Figures: `cargo test --test speaker_faults -- --nocapture`. Needs root, FRR and the control plane
//! (`testbed/lab deps`); fails loudly without them.

mod speaker_common;

use ferrolb_testbed::Lab;
use ferrolb_testbed::k8s_openapi::api::core::v1::Service;
use ferrolb_testbed::k8s_openapi::api::events::v1::Event;
use ferrolb_testbed::kube::{Api, Client};
use ferrolb_testbed::serde_json::json;
use speaker_common::*;
use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

const NS: &str = "faults";
const PREFIX: &str = "faults";
const ROUTER: &str = "198.18.0.1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speaker_faults_are_reported_and_leave_the_routes_alone() {
    let lab = Lab::shared().expect("lab up (run testbed/lab deps first)");
    let client = lab.kube_client().await.unwrap();
    lab.kubectl(&["create", "namespace", CONFIG_NS]).unwrap();
    lab.kubectl(&["create", "namespace", NS]).unwrap();
    let good = configmap(lab, "", "");
    kubectl_apply(lab, &good);
    let ferrolb = Ferrolb::start(lab, Identities::admin(lab), PREFIX);
    let whoami = Whoami::new(NS, 3);
    apply(&client, whoami.deployment()).await;
    apply(&client, whoami.service("public-pool")).await;
    let vip = ingress_ip(&client, NS, "whoami").await;
    let all = set(&[&node_addr(1), &node_addr(2), &node_addr(3)]);
    wait_paths(lab, &vip, &all, "3 paths for the whoami VIP");

    invalid_configmap(lab, &client, &ferrolb, &good, &vip, &all).await;
    md5_mismatch(lab, &good, &vip, &all);
    apiserver_outage(lab, &client, &ferrolb, &vip, &all).await;
    ferrolb.stop();
}

/// Asserts that the VIP's BGP paths and FIB next hops on the router are exactly `all`.
fn assert_routes(lab: &Lab, vip: &str, all: &BTreeSet<String>, when: &str) {
    assert_eq!(&path_peers(lab, vip), all, "BGP paths changed {when}");
    assert_eq!(&fib(lab, vip), all, "FIB changed {when}");
}

/// The value of an unlabelled sample `name` in a `/metrics` text.
fn scalar(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
}

/// Waits until every speaker reports `ferrolb_k8s_client_config_stale_bool` = `stale`, checking the routes at
/// each poll; returns the number of route samples taken.
fn wait_stale_everywhere(lab: &Lab, stale: bool, vip: &str, all: &BTreeSet<String>) -> usize {
    let mut samples = 0;
    lab.wait_until(
        Duration::from_secs(60),
        &format!("config_stale {} on every speaker", u8::from(stale)),
        || {
            assert_routes(lab, vip, all, "while the ConfigMap was invalid");
            samples += 1;
            Ok((1..=3).all(|i| {
                scalar(
                    &speaker_metrics(lab, i),
                    "ferrolb_k8s_client_config_stale_bool",
                ) == Some(u64::from(stale))
            }))
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", all_speaker_logs(lab)));
    samples
}

/// The speakers' `ConfigInvalid` Warning Events on the ConfigMap, by reporting node.
async fn speaker_warnings(client: &Client) -> Vec<Event> {
    Api::<Event>::namespaced(client.clone(), CONFIG_NS)
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| {
            e.regarding.as_ref().is_some_and(|r| {
                r.kind.as_deref() == Some("ConfigMap") && r.name.as_deref() == Some("config")
            }) && e.type_.as_deref() == Some("Warning")
                && e.reporting_controller.as_deref() == Some("ferrolb-speaker")
        })
        .collect()
}

/// Step 1: an invalid ConfigMap, then the valid one again.
async fn invalid_configmap(
    lab: &Lab,
    client: &Client,
    ferrolb: &Ferrolb,
    good: &str,
    vip: &str,
    all: &BTreeSet<String>,
) {
    let bad = good.replace("203.0.113.10-203.0.113.20", "203.0.113.10-not-an-ip");
    assert_ne!(bad, good);
    kubectl_apply(lab, &bad);
    let mut samples = wait_stale_everywhere(lab, true, vip, all);
    let mut warnings = Vec::new();
    for _ in 0..100 {
        warnings = speaker_warnings(client).await;
        if warnings.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Later updates of the speakers (any watch event) must not post the same rejection again.
    for _ in 0..5 {
        assert_routes(lab, vip, all, "while the ConfigMap was invalid");
        samples += 1;
        std::thread::sleep(Duration::from_secs(1));
    }
    let warnings_later = speaker_warnings(client).await;
    let by_node: BTreeSet<String> = warnings
        .iter()
        .filter_map(|e| e.reporting_instance.clone())
        .collect();
    assert_eq!(
        by_node,
        set(&["node-1", "node-2", "node-3"]),
        "one ConfigInvalid Warning per speaker: {warnings:?}\n{}",
        ferrolb.logs(lab)
    );
    for e in &warnings_later {
        let node = e.reporting_instance.clone().unwrap_or_default();
        let note = e.note.clone().unwrap_or_default();
        assert_eq!(e.reason.as_deref(), Some("ConfigInvalid"), "{e:?}");
        assert!(
            note.starts_with(&format!(
                "speaker on {node}: configuration rejected, the last good one stays in force: "
            )) && note.contains("not-an-ip"),
            "{note}"
        );
        assert!(e.series.is_none(), "a rejection was posted again: {e:?}");
    }
    assert_eq!(warnings_later.len(), 3, "{warnings_later:?}");
    println!(
        "invalid ConfigMap: {} speaker Warning Events ({:?}), stale 1 on 3 speakers, routes unchanged at {samples} samples",
        warnings_later.len(),
        warnings_later[0].note
    );
    kubectl_apply(lab, good);
    let samples = wait_stale_everywhere(lab, false, vip, all);
    println!("valid ConfigMap back: stale 0 on 3 speakers, routes unchanged at {samples} samples");
}

/// `ferrolb_bgp_connect_failures_total{peer,reason}` on node `i`'s speaker.
fn connect_failures(lab: &Lab, i: usize, peer: &str, reason: &str) -> Option<u64> {
    metric_value(
        &speaker_metrics(lab, i),
        "ferrolb_bgp_connect_failures_total",
        &format!("peer=\"{peer}\",reason=\"{reason}\""),
    )
}

/// Step 2: node-3 with a password the router does not have, and a peer on a port nothing listens on.
fn md5_mismatch(lab: &Lab, good: &str, vip: &str, all: &BTreeSet<String>) {
    let established = connections_established(lab);
    let only = |op: &str| {
        format!(
            "      node-selectors:\n      - match-expressions:\n        - key: kubernetes.io/hostname\n          \
             operator: {op}\n          values: [node-3]\n"
        )
    };
    // node-3's peers differ from the others' in my-asn or port (a peer is unique by address, port and my-asn);
    // with the wrong password the router's kernel drops the SYNs, so the AS number is never looked at.
    let node3_peers = format!(
        "    - peer-address: {ROUTER}\n      peer-asn: 65559\n      my-asn: 65560\n      password: \"not-foo\"\n{sel}\
         \x20   - peer-address: {ROUTER}\n      peer-port: 1179\n      peer-asn: 65559\n      my-asn: 65559\n{sel}",
        sel = only("In"),
    );
    let mismatched = configmap(lab, &node3_peers, "").replacen(
        "      password: \"foo\"\n",
        &format!("      password: \"foo\"\n{}", only("NotIn")),
        1,
    );
    kubectl_apply(lab, &mismatched);
    let two = set(&[&node_addr(1), &node_addr(2)]);
    wait_paths(lab, vip, &two, "node-3's path gone with its session");
    let log_path = lab.dir().join("logs").join(format!("{PREFIX}-3.log"));
    let want_log =
        format!("no BGP reply from {ROUTER}: check that both sides use the same TCP-MD5 password");
    let refused_log = format!("connection to {ROUTER} refused");
    let started = Instant::now();
    lab.wait_until(
        Duration::from_secs(60),
        "node-3: no_reply and refused counted and logged",
        || {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            Ok(
                connect_failures(lab, 3, ROUTER, "no_reply").unwrap_or(0) >= 1
                    && connect_failures(lab, 3, &format!("{ROUTER}:1179"), "refused").unwrap_or(0)
                        >= 1
                    && log.contains(&want_log)
                    && log.contains(&refused_log),
            )
        },
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e}\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        )
    });
    let seen = started.elapsed();
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let line = log
        .lines()
        .find(|l| l.contains(&want_log))
        .unwrap_or_default()
        .to_owned();
    let mut counts = Vec::new();
    for peer in [ROUTER.to_owned(), format!("{ROUTER}:1179")] {
        for reason in ["refused", "no_reply", "no_open", "md5_mismatch", "other"] {
            counts.push((
                peer.clone(),
                reason,
                connect_failures(lab, 3, &peer, reason),
            ));
        }
    }
    println!("MD5 mismatch: seen after {seen:?}; node-3 log: {line}");
    println!("MD5 mismatch: node-3 ferrolb_bgp_connect_failures_total: {counts:?}");
    // The wrong password looks like silence (the router's kernel counts the drops, not ours), and the closed
    // port like a refusal: nothing else is counted for these peers.
    for (peer, reason, value) in &counts {
        let expected_nonzero = (peer == ROUTER && *reason == "no_reply")
            || (peer.ends_with(":1179") && *reason == "refused");
        assert_eq!(
            value.unwrap_or(0) >= 1,
            expected_nonzero,
            "{peer} {reason}: {counts:?}"
        );
    }
    for node in [1, 2] {
        let addr = node_addr(node);
        assert_eq!(
            connections_established(lab).get(&addr),
            established.get(&addr),
            "node-{node}'s session was reset"
        );
    }
    kubectl_apply(lab, good);
    wait_paths(lab, vip, all, "node-3's path back with the right password");
}

/// `ferrolb_k8s_watch_lists_total{watch}` in a `/metrics` text.
fn lists(text: &str, watch: &str) -> u64 {
    metric_value(
        text,
        "ferrolb_k8s_watch_lists_total",
        &format!("watch=\"{watch}\""),
    )
    .unwrap_or(0)
}

/// The controller's `/metrics` text (empty when unreachable).
fn controller_metrics(ferrolb: &Ferrolb) -> String {
    Command::new("curl")
        .args(["-sS", "--max-time", "3"])
        .arg(format!(
            "http://127.0.0.1:{}/metrics",
            ferrolb.controller_port
        ))
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// The Services watch's LIST count of the controller and of each speaker.
fn services_lists(lab: &Lab, ferrolb: &Ferrolb) -> Vec<u64> {
    let mut out = vec![lists(&controller_metrics(ferrolb), "services")];
    out.extend((1..=3).map(|i| lists(&speaker_metrics(lab, i), "services")));
    out
}

/// Step 3: the API server killed for 60 s, then back, and a new Service at once.
async fn apiserver_outage(
    lab: &Lab,
    client: &Client,
    ferrolb: &Ferrolb,
    vip: &str,
    all: &BTreeSet<String>,
) {
    let established = connections_established(lab);
    let lists_before = services_lists(lab, ferrolb);
    assert!(
        lists_before.iter().all(|&n| n >= 1),
        "every daemon listed Services once at start: {lists_before:?}"
    );
    lab.command(&["apiserver", "stop"]).unwrap();
    let cut = Instant::now();
    let mut samples = 0;
    while cut.elapsed() < Duration::from_secs(60) {
        assert_routes(lab, vip, all, "while the API server was down");
        samples += 1;
        std::thread::sleep(Duration::from_secs(1));
    }
    assert!(
        lab.kubectl(&["get", "--raw", "/readyz"]).is_err(),
        "the API server answered while stopped"
    );
    lab.command(&["apiserver", "start"]).unwrap();
    let back = Instant::now();
    // A change right after the return: a second Service on the same Pods.
    let after = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "after", "namespace": NS,
                     "annotations": {"metallb.universe.tf/address-pool": "public-pool"}},
        "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local",
                 "selector": {"app": "whoami"}, "ports": [{"port": 80}]}
    });
    apply(client, after).await;
    let services = Api::<Service>::namespaced(client.clone(), NS);
    let mut new_vip = None;
    let mut addressed_at = None;
    // When each daemon (controller, speakers 1-3) first showed one more Services LIST than before.
    let mut relisted_at: Vec<Option<Duration>> = vec![None; lists_before.len()];
    let mut after_samples = 0;
    while back.elapsed() < Duration::from_secs(180) {
        assert_routes(lab, vip, all, "after the API server returned");
        after_samples += 1;
        for ((at, now), before) in relisted_at
            .iter_mut()
            .zip(services_lists(lab, ferrolb))
            .zip(&lists_before)
        {
            if at.is_none() && now > *before {
                *at = Some(back.elapsed());
            }
        }
        if new_vip.is_none() {
            new_vip = services
                .get("after")
                .await
                .ok()
                .and_then(|s| s.status?.load_balancer?.ingress?.first()?.ip.clone());
            if new_vip.is_some() {
                addressed_at = Some(back.elapsed());
            }
        }
        if let Some(ip) = &new_vip
            && &fib(lab, ip) == all
            && relisted_at.iter().all(Option::is_some)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let reached = back.elapsed();
    let lists_after = services_lists(lab, ferrolb);
    let new_vip =
        new_vip.unwrap_or_else(|| panic!("Service after got no address\n{}", ferrolb.logs(lab)));
    assert_eq!(
        &fib(lab, &new_vip),
        all,
        "the Service created after the return did not reach the router in 180 s\n{}",
        ferrolb.logs(lab)
    );
    assert!(
        relisted_at.iter().all(Option::is_some),
        "not every daemon re-listed Services: before {lists_before:?}, after {lists_after:?}\n{}",
        ferrolb.logs(lab)
    );
    assert_eq!(
        connections_established(lab),
        established,
        "a BGP session was reset by the API server outage"
    );
    println!(
        "API server killed 60 s: routes unchanged at {samples} one-second samples during and {after_samples} after; \
         Services LISTs (controller, speakers 1-3) {lists_before:?} -> {lists_after:?}, re-listed at {relisted_at:?} \
         after the return; the Service created on return got {new_vip} at {addressed_at:?} and reached the FIB \
         at {reached:?}"
    );
}

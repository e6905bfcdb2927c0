//! `ferrolb speaker` with IPv6 in the lab (`testbed/lab up --ipv6`: the router also has 2001:db8:0:1::1, node N
//! 2001:db8:0:1::(10+N), the client 2001:db8:0:2::2), with a dual-stack pool and an IPv6-only one.
//!
//! 1. A dual-stack Service (`ipFamilyPolicy: RequireDualStack`) gets one address per family; its IPv6 address
//!    is a /128 on the router (`show bgp ipv6 unicast json`) with exactly one next hop per node with a ready
//!    endpoint (the node's global IPv6 address), in the router's kernel FIB, and the client reaches it. The
//!    routes travel over the IPv4 session as MP-BGP (RFC 4760): one peer, both families, which is what FRR
//!    does with `neighbor X activate` under `address-family ipv6 unicast`.
//! 2. An IPv6-only Service too. kwok pods have IPv4 addresses only (the lab's nodes have IPv4 pod CIDRs), so
//!    the Kubernetes EndpointSlice controller would leave its IPv6 slice empty: the test writes that slice.
//! 3. Two real peers (the router's IPv4 and IPv6 addresses): a config change that edits only the IPv6 peer's
//!    hold time re-establishes that session with the new hold time, and leaves the IPv4 session up, its uptime
//!    still counting (`show bgp neighbors json`). Then, per session, the UPDATEs the speaker counts as sent
//!    (`ferrolb_bgp_updates_sent_total{peer}`) equal those FRR counts as received, and the other way round.
//!
//! The client's requests are answered by the lab's per-node responder, not kube-proxy and Pods: the lab's Pod
//! data path (`--data-path`) is IPv4 only (IPv4 pod CIDRs), and what is checked is which node the router sends to.
//!
//! Needs root, FRR, GoBGP and the control plane (`testbed/lab deps`); fails loudly without them. Figures:
//! `cargo test --test speaker_dual_stack -- --nocapture`.

mod speaker_common;

use ferrolb_testbed::k8s_openapi::api::core::v1::Service;
use ferrolb_testbed::kube::Client;
use ferrolb_testbed::kube::api::{Api, DeleteParams};
use ferrolb_testbed::serde_json::{Value, json};
use ferrolb_testbed::{Lab, LabOptions};
use speaker_common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const NS: &str = "dual";

/// The global IPv6 next hops of the router's paths for `prefix`, and the peers they came from.
fn v6_paths(lab: &Lab, prefix: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let paths = bgp_paths(lab, prefix);
    let hops = paths
        .iter()
        .flat_map(|p| p["nexthops"].as_array().cloned().unwrap_or_default())
        .filter(|h| h["scope"] == "global")
        .filter_map(|h| h["ip"].as_str().map(str::to_owned))
        .collect();
    let peers = paths
        .iter()
        .filter_map(|p| p["peer"]["peerId"].as_str().map(str::to_owned))
        .collect();
    (hops, peers)
}

/// Waits until the router's paths for IPv6 `vip` have exactly the global next hops `hops` (one path each) and
/// its kernel FIB routes `vip` via exactly those.
fn wait_v6(lab: &Lab, vip: &str, hops: &BTreeSet<String>, what: &str) {
    lab.wait_until(Duration::from_secs(30), what, || {
        Ok(v6_paths(lab, vip).0 == *hops
            && bgp_paths(lab, vip).len() == hops.len()
            && fib(lab, vip) == *hops)
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}\nBGP paths: {:?}\nFIB: {:?}\n{}",
            bgp_paths(lab, vip),
            fib(lab, vip),
            all_speaker_logs(lab)
        )
    });
}

fn v6_set(nodes: &[usize]) -> BTreeSet<String> {
    nodes.iter().map(|&i| node_addr6(i)).collect()
}

fn v4_set(nodes: &[usize]) -> BTreeSet<String> {
    nodes.iter().map(|&i| node_addr(i)).collect()
}

/// The ConfigMap with `peers`, a dual-stack pool `public-pool` (a dual-stack Service takes both addresses from
/// one pool, as in MetalLB) and an IPv6-only pool `public-pool-v6`.
fn configmap_with_peers(peers: &str) -> String {
    configmap_of(&format!(
        "    peers:
{peers}    address-pools:
    - name: public-pool
      protocol: bgp
      addresses:
      - 203.0.113.10-203.0.113.20
      - 2001:db8:0:ff::10-2001:db8:0:ff::1f
    - name: public-pool-v6
      protocol: bgp
      addresses:
      - 2001:db8:0:ff::20-2001:db8:0:ff::2f
"
    ))
}

fn peer(address: &str, hold_time: &str) -> String {
    format!(
        "    - peer-address: {address}\n      peer-asn: 65559\n      my-asn: 65559\n      password: \"foo\"\n{hold_time}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_and_dual_stack_services_and_a_peer_edit_that_leaves_the_other_session_up() {
    let lab = Lab::start(LabOptions {
        ipv6: true,
        ..LabOptions::default()
    })
    .expect("lab up (run testbed/lab deps first)");
    let client = lab.kube_client().await.unwrap();
    lab.kubectl(&["create", "namespace", CONFIG_NS]).unwrap();
    lab.kubectl(&["create", "namespace", NS]).unwrap();
    let router4 = lab.env("ROUTER_LAN4").unwrap_or("198.18.0.1").to_owned();
    let router6 = lab
        .env("ROUTER_LAN6")
        .unwrap_or("2001:db8:0:1::1")
        .to_owned();
    kubectl_apply(&lab, &configmap_with_peers(&peer(&router4, "")));
    let ferrolb = Ferrolb::start(&lab, Identities::admin(&lab), "v6-speaker");

    dual_stack_service(&lab, &client).await;
    ipv6_only_service(&lab, &client).await;
    peer_edit_leaves_the_other_session_up(&lab, &router4, &router6);

    ferrolb.stop();
    lab.down().expect("lab down");
}

/// Part 1.
async fn dual_stack_service(lab: &Lab, client: &Client) {
    let mut app = Whoami::new(NS, 3);
    apply(client, app.deployment()).await;
    apply(
        client,
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "whoami", "namespace": NS},
            "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local",
                     "ipFamilyPolicy": "RequireDualStack", "ipFamilies": ["IPv4", "IPv6"],
                     "selector": {"app": "whoami"}, "ports": [{"port": 80}]}
        }),
    )
    .await;
    let ips = ingress_ips(client, NS, "whoami", 2).await;
    let vip4 = ips
        .iter()
        .find(|ip| !ip.contains(':'))
        .expect("an IPv4 address")
        .clone();
    let vip6 = ips
        .iter()
        .find(|ip| ip.contains(':'))
        .expect("an IPv6 address")
        .clone();
    assert!(vip6.starts_with("2001:db8:0:ff::"), "{vip6}");
    println!("dual-stack Service: {vip4} and {vip6}");
    wait_paths(lab, &vip4, &v4_set(&[1, 2, 3]), "3 IPv4 paths");
    wait_v6(lab, &vip6, &v6_set(&[1, 2, 3]), "3 IPv6 paths");
    let paths = bgp_paths(lab, &vip6);
    println!(
        "IPv6 paths: {}",
        paths
            .iter()
            .map(|p| format!("{} via {}", p["peer"]["peerId"], p["nexthops"]))
            .collect::<Vec<_>>()
            .join("; ")
    );
    let prefix = lab
        .vtysh(&format!("show bgp ipv6 unicast {vip6} json"))
        .unwrap()["prefix"]
        .clone();
    assert_eq!(prefix, json!(format!("{vip6}/128")), "a /128 route");
    // The IPv6 routes come over the IPv4 sessions (MP-BGP).
    assert_eq!(v6_paths(lab, &vip6).1, v4_set(&[1, 2, 3]));
    let summary = lab.vtysh("show bgp ipv6 unicast summary json").unwrap();
    for i in 1..=3 {
        assert_eq!(
            summary["peers"][node_addr(i)]["pfxRcd"],
            1,
            "node-{i}'s IPv4 session carries one IPv6 prefix: {summary}"
        );
    }
    let mut seen = BTreeSet::new();
    for _ in 0..20 {
        seen.insert(curl(lab, &vip6).unwrap_or_else(|e| panic!("curl [{vip6}]: {e}")));
    }
    assert!(
        seen.is_subset(&set(&["node-1", "node-2", "node-3"])),
        "{seen:?}"
    );
    for i in 1..=3 {
        let out = lab
            .exec_in_node(i, &["ip", "-o", "addr", "show", "dev", "flb-vip"])
            .unwrap();
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(&format!("{vip6}/128")),
            "node-{i} holds {vip6}/128 on its VIP interface"
        );
    }

    // Scale to 1: one path per family, from the pod's node.
    app.replicas = 1;
    apply(client, app.deployment()).await;
    let home = wait_pod_nodes(client, NS, "scale to 1", |n| n.len() == 1).await;
    let home = node_number(home.iter().next().unwrap());
    wait_paths(lab, &vip4, &v4_set(&[home]), "1 IPv4 path");
    wait_v6(lab, &vip6, &v6_set(&[home]), "1 IPv6 path");
    for _ in 0..5 {
        assert_eq!(curl(lab, &vip6), Ok(format!("node-{home}")));
    }

    // Delete: both routes are gone.
    Api::<Service>::namespaced(client.clone(), NS)
        .delete("whoami", &DeleteParams::default())
        .await
        .unwrap();
    wait_paths(lab, &vip4, &BTreeSet::new(), "IPv4 route withdrawn");
    wait_v6(lab, &vip6, &BTreeSet::new(), "IPv6 route withdrawn");
    println!("dual-stack: 3 paths per family, 1 after scaling to 1, none after deletion");
}

/// Part 2.
async fn ipv6_only_service(lab: &Lab, client: &Client) {
    apply(
        client,
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "v6only", "namespace": NS,
                         "annotations": {"metallb.universe.tf/address-pool": "public-pool-v6"}},
            "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local",
                     "ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv6"], "ports": [{"port": 80}]}
        }),
    )
    .await;
    let vip = ingress_ip(client, NS, "v6only").await;
    assert!(
        vip.starts_with("2001:db8:0:ff::2"),
        "{vip} from public-pool-v6"
    );
    let slice = |nodes: &[usize]| -> Value {
        let endpoints: Vec<Value> = nodes
            .iter()
            .map(|i| {
                json!({"addresses": [format!("2001:db8:0:ee::{i}")], "nodeName": format!("node-{i}"),
                       "conditions": {"ready": true}})
            })
            .collect();
        json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "v6only-1", "namespace": NS,
                         "labels": {"kubernetes.io/service-name": "v6only"}},
            "addressType": "IPv6",
            "ports": [{"port": 80, "protocol": "TCP"}],
            "endpoints": endpoints
        })
    };
    apply(client, slice(&[1, 3])).await;
    wait_v6(
        lab,
        &vip,
        &v6_set(&[1, 3]),
        "IPv6-only Service on node-1 and node-3",
    );
    let mut seen = BTreeSet::new();
    for _ in 0..20 {
        seen.insert(curl(lab, &vip).unwrap_or_else(|e| panic!("curl [{vip}]: {e}")));
    }
    assert!(seen.is_subset(&set(&["node-1", "node-3"])), "{seen:?}");
    apply(client, slice(&[2])).await;
    wait_v6(
        lab,
        &vip,
        &v6_set(&[2]),
        "IPv6-only Service moved to node-2",
    );
    assert_eq!(curl(lab, &vip), Ok("node-2".to_owned()));
    Api::<Service>::namespaced(client.clone(), NS)
        .delete("v6only", &DeleteParams::default())
        .await
        .unwrap();
    wait_v6(lab, &vip, &BTreeSet::new(), "IPv6-only route withdrawn");
    println!("IPv6-only: /128 from node-1 and node-3, then node-2 only, then none");
}

/// `(connectionsEstablished, bgpTimerUpEstablishedEpoch, bgpTimerUpMsec, negotiated hold time ms)` of each of
/// the router's neighbours `addrs`.
fn sessions(lab: &Lab, addrs: &BTreeSet<String>) -> BTreeMap<String, (u64, u64, u64, u64)> {
    let n = neighbors(lab);
    addrs
        .iter()
        .map(|a| {
            let v = n.get(a).cloned().unwrap_or(Value::Null);
            let field = |k: &str| v[k].as_u64().unwrap_or(0);
            (
                a.clone(),
                (
                    field("connectionsEstablished"),
                    field("bgpTimerUpEstablishedEpoch"),
                    field("bgpTimerUpMsec"),
                    field("bgpTimerHoldTimeMsecs"),
                ),
            )
        })
        .collect()
}

/// Part 3.
fn peer_edit_leaves_the_other_session_up(lab: &Lab, router4: &str, router6: &str) {
    let v4 = v4_set(&[1, 2, 3]);
    let v6 = v6_set(&[1, 2, 3]);
    kubectl_apply(
        lab,
        &configmap_with_peers(&(peer(router4, "") + &peer(router6, ""))),
    );
    for i in 1..=3 {
        lab.wait_established(&node_addr6(i), Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{e}\n{}", all_speaker_logs(lab)));
    }
    let before4 = sessions(lab, &v4);
    let before6 = sessions(lab, &v6);
    for (a, s) in before4.iter().chain(&before6) {
        // min(ours: 90 s by default, FRR's `frr defaults datacenter`: 9 s).
        assert_eq!(s.3, 9_000, "{a}: negotiated hold time 9 s: {s:?}");
    }
    let edited = Instant::now();
    kubectl_apply(
        lab,
        &configmap_with_peers(&(peer(router4, "") + &peer(router6, "      hold-time: 6s\n"))),
    );
    lab.wait_until(
        Duration::from_secs(60),
        "the IPv6 sessions re-established with hold time 6 s",
        || {
            // The hold time is negotiated in OPEN, so 6 s means a new session. (FRR forgets a dynamic
            // neighbour when its session goes down, so its connection counter starts again at 1.)
            let n = neighbors(lab);
            Ok(sessions(lab, &v6).iter().all(|(a, s)| {
                s.3 == 6_000 && n.get(a).is_some_and(|v| v["bgpState"] == "Established")
            }))
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {:?}\n{}", sessions(lab, &v6), all_speaker_logs(lab)));
    // Let the untouched sessions' uptime visibly grow past the edit.
    std::thread::sleep(Duration::from_secs(3));
    let after4 = sessions(lab, &v4);
    let waited = edited.elapsed().as_millis() as u64;
    for (a, (conns, epoch, up_ms, hold)) in &after4 {
        let (conns0, epoch0, up_ms0, _) = before4[a];
        assert_eq!(*conns, conns0, "{a}: the untouched IPv4 session was reset");
        // FRR derives this epoch from two clocks read at different sub-second phases, so an unchanged session's
        // value can move by one second between two reads; a reset moves it by the seconds since the edit.
        assert!(
            epoch.abs_diff(epoch0) <= 1,
            "{a}: the untouched session's Established time moved from {epoch0} to {epoch}"
        );
        assert!(
            *up_ms + 1000 >= up_ms0 + waited,
            "{a}: uptime {up_ms} ms, was {up_ms0} ms {waited} ms ago"
        );
        assert_eq!(*hold, 9_000, "{a}");
    }
    // Both ends count the same UPDATEs on every session (each one connected once since its speaker started
    // or since the edit).
    let counts4 = wait_update_counters_match(lab, router4, node_addr, None);
    let counts6 = wait_update_counters_match(lab, router6, node_addr6, None);
    println!(
        "UPDATEs [speaker sent, router received, router sent, speaker received]: IPv4 peer {counts4:?}, IPv6 \
         peer {counts6:?}"
    );
    println!(
        "hold-time edit of the IPv6 peer: IPv6 sessions re-established ({:?}), IPv4 sessions untouched ({:?})",
        sessions(lab, &v6),
        after4
    );
}

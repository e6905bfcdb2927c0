//! Restart safety and throughput of `ferrolb controller` on the real kube-apiserver, with 1,000 Services.
//!
//! 1. Throughput, side by side: a plain loop patches 1,000 Services' statuses (sequentially, and 16 in flight),
//!    then the controller assigns 1,000 other Services from start-up. The figures are printed (run with
//!    `--nocapture`); they are measurements, not assertions.
//! 2. Restart: the controller is killed, 50 Services are created while it is down (one of them claims an
//!    address of an older Service by a hand-written status), and it starts again. No existing address changes,
//!    the 50 get new distinct addresses, and the hand-made claim gets a conflict condition.
//!
//! IPv6 Services, because the documentation ranges allowed for pools hold only 512 IPv4 addresses.
//! Needs root and the built control plane (`testbed/lab deps`); fails loudly without them.

mod controller_common;

use controller_common::*;
use ferrolb_testbed::k8s_openapi::api::core::v1::Service;
use ferrolb_testbed::kube::api::{Patch, PatchParams};
use ferrolb_testbed::kube::runtime::{WatchStreamExt, watcher};
use ferrolb_testbed::kube::{Api, Client};
use ferrolb_testbed::{Lab, LabOptions};
use futures::{StreamExt, TryStreamExt};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const SERVICES: usize = 1000;
const WHILE_DOWN: usize = 50;
const CONFIG: &str =
    "address-pools:\n- name: v6\n  protocol: bgp\n  addresses: [2001:db8:100::/116]\n";

fn v6_service(name: &str) -> Service {
    lb_service(
        name,
        json!({"spec": {
            "ipFamilies": ["IPv6"], "ipFamilyPolicy": "SingleStack",
            // 2,051 Services would nearly exhaust the NodePort range; none is needed here.
            "allocateLoadBalancerNodePorts": false,
        }}),
    )
}

async fn create_many(client: &Client, ns: &str, names: Vec<String>) {
    futures::stream::iter(names)
        .map(|name| {
            let client = client.clone();
            async move {
                create(&client, ns, &v6_service(&name)).await;
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
}

/// The status the controller writes for `ip` (same shape and size).
fn status_patch(ip: &str) -> serde_json::Value {
    json!({"status": {
        "loadBalancer": {"ingress": [{"ip": ip}]},
        "conditions": [{
            "type": "ferrolb.io/AddressAssigned", "status": "True", "reason": "Assigned",
            "message": format!("assigned {ip} (pool v6)"), "observedGeneration": 1,
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }],
    }})
}

/// Patches every Service's status in `ns`, `in_flight` at a time; returns the elapsed time.
async fn plain_loop(client: &Client, ns: &str, names: &[String], in_flight: usize) -> Duration {
    let api: Api<Service> = Api::namespaced(client.clone(), ns);
    let params = PatchParams {
        field_manager: Some("plain-loop".into()),
        ..PatchParams::default()
    };
    let started = Instant::now();
    futures::stream::iter(names.iter().enumerate())
        .map(|(i, name)| {
            let (api, params) = (api.clone(), params.clone());
            async move {
                let patch = status_patch(&format!("2001:db8:100::{:x}", i + 1));
                api.patch_status(name, &params, &Patch::Merge(&patch))
                    .await
                    .unwrap_or_else(|e| panic!("plain patch {name}: {e}"));
            }
        })
        .buffer_unordered(in_flight)
        .collect::<Vec<()>>()
        .await;
    started.elapsed()
}

/// Waits until every Service named in `names` has an address; returns the stored addresses by name. Watches
/// (rather than polling lists of 1,000 objects), so that measuring does not load the API server.
async fn wait_all_assigned(
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
        ctl.log()
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    );
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_address_changes_across_a_restart_and_throughput_matches_a_plain_loop() {
    let lab = Lab::start(LabOptions {
        nodes: 1,
        ipv6: true,
        control_plane_only: true,
    })
    .expect("an IPv6 control plane (run `testbed/lab deps` as root)");
    let client = lab.kube_client().await.expect("kube client");
    let names: Vec<String> = (0..SERVICES).map(|i| format!("svc-{i:04}")).collect();

    // 1. The plain loop, on Services nobody else touches.
    namespace(&client, "plain").await;
    create_many(&client, "plain", names.clone()).await;
    let sequential = plain_loop(&client, "plain", &names, 1).await;
    let parallel = plain_loop(&client, "plain", &names, 16).await;

    // 2. The controller, from start-up, on 1,000 unassigned Services.
    let ns = "restart";
    namespace(&client, ns).await;
    put_config(&client, ns, CONFIG).await;
    create_many(&client, ns, names.clone()).await;
    let started = Instant::now();
    let mut ctl = ControllerProcess::start(&lab.kubeconfig_path(), ns, "first", &[]);
    let wanted: BTreeSet<String> = names.iter().cloned().collect();
    let before = wait_all_assigned(&client, ns, &wanted, &ctl).await;
    let controller = started.elapsed();
    let rate = |d: Duration| SERVICES as f64 / d.as_secs_f64();
    println!(
        "THROUGHPUT {SERVICES} Services: plain loop sequential {:.2}s ({:.0}/s), plain loop 16 in flight {:.2}s \
         ({:.0}/s), controller from process start {:.2}s ({:.0}/s); controller / sequential = {:.0}%, \
         controller / 16-in-flight = {:.0}%",
        sequential.as_secs_f64(),
        rate(sequential),
        parallel.as_secs_f64(),
        rate(parallel),
        controller.as_secs_f64(),
        rate(controller),
        100.0 * sequential.as_secs_f64() / controller.as_secs_f64(),
        100.0 * parallel.as_secs_f64() / controller.as_secs_f64(),
    );
    let distinct: BTreeSet<&Vec<String>> = before.values().collect();
    assert_eq!(
        distinct.len(),
        SERVICES,
        "every Service has its own address"
    );
    assert!(
        before
            .values()
            .all(|ips| ips.len() == 1 && ips[0].starts_with("2001:db8:100::"))
    );

    // 3. Kill it; while it is down, create 50 Services, and one that claims svc-0000's address by hand.
    ctl.kill();
    let late: Vec<String> = (0..WHILE_DOWN).map(|i| format!("late-{i:02}")).collect();
    create_many(&client, ns, late.clone()).await;
    create(&client, ns, &v6_service("hand-claim")).await;
    let claimed = before["svc-0000"][0].clone();
    Api::<Service>::namespaced(client.clone(), ns)
        .patch_status(
            "hand-claim",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"loadBalancer": {"ingress": [{"ip": claimed}]}}})),
        )
        .await
        .expect("hand-written status");

    // 4. Start again.
    let ctl = ControllerProcess::start(&lab.kubeconfig_path(), ns, "second", &[]);
    let late_set: BTreeSet<String> = late.iter().cloned().collect();
    let after_late = wait_all_assigned(&client, ns, &late_set, &ctl).await;
    let conflict = wait_for(
        "hand-claim conflict condition",
        Duration::from_secs(30),
        Some(&ctl),
        || async {
            let svc = get(&client, ns, "hand-claim").await;
            condition(&svc).map(|c| (c, ingress(&svc)))
        },
    )
    .await;
    assert_eq!(conflict.0.0, "False");
    assert_eq!(conflict.0.1, "AddressConflict");
    assert!(
        conflict.0.2.contains(&format!("in use by {ns}/svc-0000")),
        "{:?}",
        conflict.0
    );
    assert!(
        conflict.1.is_empty(),
        "the newer claimant loses the address"
    );

    let after: BTreeMap<String, Vec<String>> = list(&client, ns)
        .await
        .iter()
        .filter(|(n, _)| wanted.contains(*n))
        .map(|(n, s)| (n.clone(), ingress(s)))
        .collect();
    let changed: Vec<&String> = before.keys().filter(|n| before[*n] != after[*n]).collect();
    assert!(
        changed.is_empty(),
        "addresses changed across the restart: {changed:?}"
    );
    let old: BTreeSet<&String> = before.values().flatten().collect();
    let new: BTreeSet<&String> = after_late.values().flatten().collect();
    assert_eq!(
        new.len(),
        WHILE_DOWN,
        "the late Services got distinct addresses"
    );
    assert!(
        new.is_disjoint(&old),
        "a late Service got an address already in use"
    );
    assert!(!ctl.log().contains("panicked"));
    drop(ctl);
    lab.down().expect("lab down");
}

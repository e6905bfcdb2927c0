//! `ferrolb controller` replicas on the real kube-apiserver: only the Lease holder writes; when it is killed, the
//! standby takes over within the lease time and writes from then on; when it is stopped gracefully (SIGTERM),
//! it releases the Lease and a standby takes over at its next read, well before the Lease would expire.
//!
//! Needs root and the built control plane (`testbed/lab deps`); fails loudly without them.

mod controller_common;

use controller_common::*;
use ferrolb_testbed::ControlPlane;
use ferrolb_testbed::k8s_openapi::api::coordination::v1::Lease;
use ferrolb_testbed::kube::{Api, Client};
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

fn writes_in(ctl: &ControllerProcess) -> usize {
    ctl.log().matches("status written").count()
}

#[tokio::test]
async fn only_the_leader_writes_and_the_standby_takes_over_within_the_lease_time() {
    let cp =
        ControlPlane::shared().expect("the lab control plane (run `testbed/lab deps` as root)");
    let client = cp.kube_client().await.expect("kube client");
    let ns = "ctl-ha";
    namespace(&client, ns).await;
    put_config(
        &client,
        ns,
        "address-pools:\n- name: default\n  protocol: bgp\n  addresses: [203.0.113.32/29]\n",
    )
    .await;
    let kubeconfig = cp.lab().kubeconfig_path();
    let mut a = ControllerProcess::start(&kubeconfig, ns, "ctl-a", &[]);
    wait_for(
        "ctl-a to hold the Lease",
        Duration::from_secs(20),
        Some(&a),
        || async { (holder(&client, ns).await.as_deref() == Some("ctl-a")).then_some(()) },
    )
    .await;
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
    wait_for(
        "ctl-b to take the Lease",
        Duration::from_secs(30),
        Some(&b),
        || async { (holder(&client, ns).await.as_deref() == Some("ctl-b")).then_some(()) },
    )
    .await;
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
    wait_for(
        "ctl-c to take the released Lease",
        Duration::from_secs(30),
        Some(&c),
        || async { (holder(&client, ns).await.as_deref() == Some("ctl-c")).then_some(()) },
    )
    .await;
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

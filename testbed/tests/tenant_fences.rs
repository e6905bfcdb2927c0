//! Address fences between tenants (issue 17) end to end in the lab: the real API server, ferrolb's controller on
//! the host, a speaker per node namespace, and the FRR router checked through `show bgp ipv4 unicast json`.
//!
//! Namespaces `team-a`, `team-b` and `shared`, each with a whoami Deployment (so every Service that gets an
//! address has ready endpoints and is announced), and the ConfigMap [`config`] (config/README.md's worked example):
//! `team-a`'s exclusive pool, `team-b`'s pool, a pool for namespaces labelled `tier: gold` (team-b is), a pool for
//! Services labelled `app: web`, and an open pool. One scenario, in order, each attack its own case:
//!
//! 1. team-b requests team-a's address (`spec.loadBalancerIP`, and the annotation for a free one): `NotAllowed`;
//! 2. team-b annotates team-a's pool: `NotAllowed`;
//! 3. team-b reuses team-a's `allow-shared-ip` key with team-a's address: `NotAllowed`, even with both sides'
//!    `ferrolb.io/share-with-namespaces` (team-a's pool does not serve team-b); between `shared` and team-b on an
//!    open-pool address, one opt-in is refused and both opt-ins share (the positive control); withdrawing one
//!    opt-in keeps the address on both (`OutsideServiceAllocation`), restoring it returns both to `Assigned`;
//! 4. team-b relabels a Service to match the `service-selectors` pool: allowed (not a fence);
//! 5. team-b's `tier: gold` label is removed: its address stays (`OutsideServiceAllocation`, the gauge), a new
//!    request for the gold pool is `NotAllowed`;
//! 6. team-a's exhausted exclusive pool: `PoolExhausted`, never an address from another pool;
//! 7. team-a (fenced) never gets an open-pool address, nor one from the `service-selectors` pool;
//! 8. `manifests/components/tenant-fence-policy` on the API server: a fenced namespace's Service with
//!    `spec.loadBalancerIP` is refused at admission with the policy's message, an unfenced one is accepted.
//!
//! After every case the router carries exactly the addresses held by Services (so never a refused Service's
//! route), and each refused address is checked absent for a few seconds more. Needs root, FRR and the control
//! plane (`testbed/lab deps`); fails loudly without them. `cargo test --test tenant_fences -- --nocapture`.

mod controller_common;
mod speaker_common;

use controller_common::{condition, events_about, ingress, merge};
use ferrolb_testbed::Lab;
use ferrolb_testbed::k8s_openapi::api::core::v1::Service;
use ferrolb_testbed::kube::Client;
use ferrolb_testbed::kube::api::{Api, Patch, PatchParams, PostParams};
use ferrolb_testbed::serde_json::{self, Value, json};
use speaker_common::{CONFIG_NS, Ferrolb, Identities, Whoami, apply, configmap, kubectl_apply};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const TEAM_A: &str = "team-a";
const TEAM_B: &str = "team-b";
const SHARED: &str = "shared";
/// The controller's gauge of held addresses outside the current rules.
const OUTSIDE_GAUGE: &str = "ferrolb_address_outside_allocation_rules";
/// The test's address ranges: every route the router carries inside them is one of the test's.
const RANGES: [&str; 2] = ["198.51.100.", "203.0.113."];

/// The tenants' pools: config/README.md's worked example ("Multi-tenant clusters"), checked equal to it. team-b's pool
/// comes last, so only its `priority` puts it before the others for team-b's automatic assignments.
const POOLS: &str = "address-pools:
- name: team-a            # team-a's own addresses, and team-a is fenced in
  protocol: bgp
  addresses:
  - 198.51.100.10-198.51.100.13
  service-allocation:
    namespaces: [team-a]
    exclusive: true
- name: gold              # namespaces an admin labelled tier=gold
  protocol: bgp
  addresses:
  - 198.51.100.40-198.51.100.49
  service-allocation:
    namespace-selectors:
    - match-labels: {tier: gold}
- name: web               # Services labelled app=web: a convenience, not a fence
  protocol: bgp
  addresses:
  - 198.51.100.60-198.51.100.69
  service-allocation:
    service-selectors:
    - match-labels: {app: web}
- name: open              # no rules: every namespace that is not fenced in
  protocol: bgp
  addresses:
  - 203.0.113.10-203.0.113.20
- name: team-b            # team-b's pool: last, but tried first for team-b (priority)
  protocol: bgp
  addresses:
  - 198.51.100.20-198.51.100.29
  service-allocation:
    priority: 10
    namespaces: [team-b]
";

/// The ConfigMap: the lab's peer (the seed's shape, `speaker_common::configmap`) and [`POOLS`].
fn config(lab: &Lab) -> String {
    let seed = configmap(lab, "", "");
    let (peers, _) = seed
        .split_once("    address-pools:")
        .expect("the seed ConfigMap has address-pools");
    let pools: String = POOLS.lines().map(|l| format!("    {l}\n")).collect();
    format!("{peers}{pools}")
}

/// A LoadBalancer Service `ns/name` selecting the whoami pods on `port`; `extra` is merged into it.
fn service(ns: &str, name: &str, port: u16, extra: Value) -> Value {
    let mut svc = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"type": "LoadBalancer", "selector": {"app": "whoami"}, "ports": [{"port": port}]}
    });
    merge(&mut svc, &extra);
    svc
}

/// The router's IPv4 prefixes inside the test's ranges, as addresses (`198.51.100.10/32` → `198.51.100.10`).
fn routed(lab: &Lab) -> BTreeSet<String> {
    lab.vtysh("show bgp ipv4 unicast json")
        .ok()
        .and_then(|v| v["routes"].as_object().cloned())
        .into_iter()
        .flatten()
        .map(|(prefix, _)| prefix.trim_end_matches("/32").to_owned())
        .filter(|a| RANGES.iter().any(|r| a.starts_with(r)))
        .collect()
}

/// The scenario's state: the lab, ferrolb, and the addresses Services hold (what the router must carry).
struct Scenario<'a> {
    lab: &'a Lab,
    client: Client,
    ferrolb: Ferrolb,
    held: BTreeSet<String>,
}

impl Scenario<'_> {
    /// Polls until Service `ns/name` has the AddressAssigned condition with `reason`; returns it (status,
    /// reason, message) and its ingress addresses. Panics after 30 s with the Service and the logs.
    async fn wait_reason(
        &self,
        ns: &str,
        name: &str,
        reason: &str,
    ) -> (String, String, Vec<String>) {
        let api: Api<Service> = Api::namespaced(self.client.clone(), ns);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let svc = api.get(name).await.ok();
            let cond = svc.as_ref().and_then(condition);
            if let (Some(svc), Some((status, r, message))) = (&svc, &cond)
                && r == reason
            {
                return (status.clone(), message.clone(), ingress(svc));
            }
            assert!(
                Instant::now() < deadline,
                "{ns}/{name}: no condition with reason {reason} after 30 s; condition {cond:?}, status {:?}\n{}",
                svc.and_then(|s| s.status),
                self.ferrolb.logs(self.lab)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Applies `svc` and waits until it holds an address (condition True); returns the address.
    async fn assigned(&mut self, svc: Value) -> String {
        let ns = svc["metadata"]["namespace"].as_str().unwrap().to_owned();
        let name = svc["metadata"]["name"].as_str().unwrap().to_owned();
        apply(&self.client, svc).await;
        let api: Api<Service> = Api::namespaced(self.client.clone(), &ns);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let svc = api.get(&name).await.ok();
            let cond = svc.as_ref().and_then(condition);
            let ips = svc.as_ref().map(ingress).unwrap_or_default();
            if cond.as_ref().is_some_and(|c| c.0 == "True") && ips.len() == 1 {
                self.held.insert(ips[0].clone());
                return ips[0].clone();
            }
            assert!(
                Instant::now() < deadline,
                "{ns}/{name}: no address after 30 s; condition {cond:?}, ingress {ips:?}\n{}",
                self.ferrolb.logs(self.lab)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Applies `svc` and expects it refused: condition False with `reason` and exactly `message`, no address,
    /// and a Warning Event with the message. `requested`, when given, is then checked
    /// absent from the router for 3 s.
    async fn refused(&self, svc: Value, reason: &str, message: &str, requested: Option<&str>) {
        let ns = svc["metadata"]["namespace"].as_str().unwrap().to_owned();
        let name = svc["metadata"]["name"].as_str().unwrap().to_owned();
        apply(&self.client, svc).await;
        let (status, got, ips) = self.wait_reason(&ns, &name, reason).await;
        assert_eq!(status, "False", "{ns}/{name}: {reason}: {got}");
        assert_eq!(got, message, "{ns}/{name}: the {reason} message");
        assert!(ips.is_empty(), "{ns}/{name} refused yet holds {ips:?}");
        self.warning_event(&ns, &name, message).await;
        if let Some(ip) = requested {
            self.never_routed(ip, Duration::from_secs(3)).await;
        }
        self.routes_are_held().await;
        println!("{ns}/{name}: {reason}: {message}");
    }

    /// Waits (20 s) for a Warning Event about `ns/name` whose note is `message`.
    async fn warning_event(&self, ns: &str, name: &str, message: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let events = events_about(&self.client, ns, name).await;
            if events
                .iter()
                .any(|(t, _, note)| t == "Warning" && note == message)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{ns}/{name}: no Warning Event with the message after 20 s: {events:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits (20 s) until the controller's `ferrolb_address_outside_allocation_rules` is `value`.
    async fn wait_outside_gauge(&self, value: f64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.metric(OUTSIDE_GAUGE) != Some(value) {
            assert!(
                Instant::now() < deadline,
                "{OUTSIDE_GAUGE} is {:?}, not {value}\n{}",
                self.metric(OUTSIDE_GAUGE),
                self.ferrolb.logs(self.lab)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `ip` stays off the router for `window`.
    async fn never_routed(&self, ip: &str, window: Duration) {
        let end = Instant::now() + window;
        while Instant::now() < end {
            let now = routed(self.lab);
            assert!(
                !now.contains(ip),
                "the router carries refused {ip}: {now:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits (30 s) until the router's routes in the test's ranges are exactly the held addresses.
    async fn routes_are_held(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let now = routed(self.lab);
            if now == self.held {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "router carries {now:?}, Services hold {:?}\n{}",
                self.held,
                self.ferrolb.logs(self.lab)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The value of the controller's metric line `series` (None when absent or unreachable).
    fn metric(&self, series: &str) -> Option<f64> {
        let out = std::process::Command::new("curl")
            .args(["-sS", "--max-time", "3"])
            .arg(format!(
                "http://127.0.0.1:{}/metrics",
                self.ferrolb.controller_port
            ))
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }
}

fn in_range(ip: &str, first: u8, last: u8) -> bool {
    ip.strip_prefix("198.51.100.")
        .and_then(|o| o.parse::<u8>().ok())
        .is_some_and(|o| (first..=last).contains(&o))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_get_addresses_only_from_their_pools() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/README.md")).unwrap();
    assert!(
        readme.contains(&format!("```yaml\n{POOLS}```")),
        "config/README.md's Multi-tenant clusters example differs from this test's pools:\n{POOLS}"
    );
    let lab = Lab::shared().expect("lab up (run testbed/lab deps first)");
    let client = lab.kube_client().await.unwrap();
    for ns in [CONFIG_NS, TEAM_A, TEAM_B, SHARED] {
        lab.kubectl(&["create", "namespace", ns]).unwrap();
    }
    lab.kubectl(&["label", "namespace", TEAM_B, "tier=gold"])
        .unwrap();
    for ns in [TEAM_A, TEAM_B, SHARED] {
        let mut app = Whoami::new(ns, 1);
        app.tolerate_all = true;
        apply(&client, app.deployment()).await;
    }
    kubectl_apply(lab, &config(lab));
    let ferrolb = Ferrolb::start(lab, Identities::admin(lab), "fences");
    let mut s = Scenario {
        lab,
        client: client.clone(),
        ferrolb,
        held: BTreeSet::new(),
    };

    // --- Each tenant's first Service: its own pool (team-b's has priority 10 over the open one).
    let a_ip = s.assigned(service(TEAM_A, "web", 80, json!({}))).await;
    assert!(in_range(&a_ip, 10, 13), "team-a got {a_ip}");
    let b_ip = s.assigned(service(TEAM_B, "web", 80, json!({}))).await;
    assert!(
        in_range(&b_ip, 20, 29),
        "team-b got {b_ip}: its pool's priority puts it before gold and open"
    );
    let shared_ip = s.assigned(service(SHARED, "web", 80, json!({}))).await;
    assert!(
        shared_ip.starts_with("203.0.113."),
        "shared got {shared_ip}"
    );
    s.routes_are_held().await;
    println!(
        "baseline: team-a {a_ip}, team-b {b_ip}, shared {shared_ip}; router {:?}",
        s.held
    );

    // --- 1. team-b requests team-a's address: the held one, and a free one through the annotation.
    s.refused(
        service(
            TEAM_B,
            "steal-ip",
            80,
            json!({"spec": {"loadBalancerIP": a_ip}}),
        ),
        "NotAllowed",
        &not_allowed_ip(&a_ip, "team-a", TEAM_B),
        None,
    )
    .await;
    s.refused(
        service(
            TEAM_B,
            "steal-free-ip",
            80,
            json!({"metadata": {"annotations": {"metallb.universe.tf/loadBalancerIPs": "198.51.100.13"}}}),
        ),
        "NotAllowed",
        &not_allowed_ip("198.51.100.13", "team-a", TEAM_B),
        Some("198.51.100.13"),
    )
    .await;

    // --- 2. team-b annotates team-a's pool.
    s.refused(
        service(
            TEAM_B,
            "steal-pool",
            80,
            json!({"metadata": {"annotations": {"metallb.universe.tf/address-pool": "team-a"}}}),
        ),
        "NotAllowed",
        &not_allowed_pool("team-a", TEAM_B),
        None,
    )
    .await;

    // --- 3. team-b reuses team-a's sharing key with team-a's address (other ports: compatible otherwise).
    let key =
        json!({"metadata": {"annotations": {"metallb.universe.tf/allow-shared-ip": "key-a"}}});
    let a_shared = s
        .assigned(service(TEAM_A, "shared-key", 80, key.clone()))
        .await;
    let mut steal = key.clone();
    steal["spec"] = json!({"loadBalancerIP": a_shared});
    s.refused(
        service(TEAM_B, "steal-key", 8080, steal),
        "NotAllowed",
        &not_allowed_ip(&a_shared, "team-a", TEAM_B),
        None,
    )
    .await;
    let opt_in = |key: &str, other: &str| {
        json!({"metadata": {"annotations": {
            "metallb.universe.tf/allow-shared-ip": key,
            "ferrolb.io/share-with-namespaces": other}}})
    };
    // Both opting in does not open team-a's pool to team-b: the pool's rules come first.
    let kept = s
        .assigned(service(TEAM_A, "shared-key", 80, opt_in("key-a", TEAM_B)))
        .await;
    assert_eq!(kept, a_shared, "team-a's opt-in moved its address");
    let mut both_a = opt_in("key-a", TEAM_A);
    both_a["spec"] = json!({"loadBalancerIP": a_shared});
    s.refused(
        service(TEAM_B, "steal-key-both", 8080, both_a),
        "NotAllowed",
        &not_allowed_ip(&a_shared, "team-a", TEAM_B),
        None,
    )
    .await;
    // Positive control, on an open-pool address: `shared` opts in for team-b; team-b without its own opt-in is
    // refused, with it the address is shared.
    let shared_key = s
        .assigned(service(SHARED, "shared-key", 80, opt_in("key-s", TEAM_B)))
        .await;
    let mut one_sided =
        json!({"metadata": {"annotations": {"metallb.universe.tf/allow-shared-ip": "key-s"}}});
    one_sided["spec"] = json!({"loadBalancerIP": shared_key});
    s.refused(
        service(TEAM_B, "join-key", 8080, one_sided),
        "NotAllowed",
        &not_allowed_sharing(&shared_key, "shared/shared-key"),
        None,
    )
    .await;
    let mut both = opt_in("key-s", SHARED);
    both["spec"] = json!({"loadBalancerIP": shared_key});
    let joined = s.assigned(service(TEAM_B, "join-key", 8080, both)).await;
    assert_eq!(joined, shared_key, "both opted in: the address is shared");
    s.routes_are_held().await;
    println!("both opted in: shared/shared-key and team-b/join-key share {joined}");
    // `shared` withdraws its opt-in: neither side loses the address (OutsideServiceAllocation on both, the
    // route stays); putting it back returns both to Assigned.
    let key_only =
        json!({"metadata": {"annotations": {"metallb.universe.tf/allow-shared-ip": "key-s"}}});
    apply(&s.client, service(SHARED, "shared-key", 80, key_only)).await;
    for (ns, name, holder) in [
        (SHARED, "shared-key", "team-b/join-key"),
        (TEAM_B, "join-key", "shared/shared-key"),
    ] {
        let (status, message, ips) = s.wait_reason(ns, name, "OutsideServiceAllocation").await;
        assert_eq!(
            (status.as_str(), ips),
            ("True", vec![joined.clone()]),
            "{message}"
        );
        let rule = format!(
            "address {joined} is shared with {holder}: sharing an address across namespaces needs both \
             Services to name the other's namespace in annotation ferrolb.io/share-with-namespaces"
        );
        assert_eq!(message, outside(&joined, "open", &rule));
        s.warning_event(ns, name, &message).await;
    }
    s.wait_outside_gauge(2.0).await;
    s.routes_are_held().await;
    apply(
        &s.client,
        service(SHARED, "shared-key", 80, opt_in("key-s", TEAM_B)),
    )
    .await;
    for (ns, name) in [(SHARED, "shared-key"), (TEAM_B, "join-key")] {
        let (status, message, ips) = s.wait_reason(ns, name, "Assigned").await;
        assert_eq!(
            (status.as_str(), ips),
            ("True", vec![joined.clone()]),
            "{message}"
        );
    }
    s.wait_outside_gauge(0.0).await;
    println!("opt-in withdrawn: both kept {joined} (OutsideServiceAllocation); restored: Assigned");

    // --- 4. team-b relabels a Service to match the service-selectors pool: allowed (not a fence).
    let web_pool =
        json!({"metadata": {"annotations": {"metallb.universe.tf/address-pool": "web"}}});
    s.refused(
        service(TEAM_B, "relabel", 80, web_pool.clone()),
        "NotAllowed",
        &not_allowed_selector("web", "team-b/relabel"),
        None,
    )
    .await;
    let mut relabelled = web_pool.clone();
    relabelled["metadata"]["labels"] = json!({"app": "web"});
    let web_ip = s.assigned(service(TEAM_B, "relabel", 80, relabelled)).await;
    assert!(in_range(&web_ip, 60, 69), "relabelled got {web_ip}");
    s.routes_are_held().await;
    println!(
        "team-b/relabel labelled app=web: {web_ip} from the web pool (service-selectors are no fence)"
    );

    // --- 5. The Namespace label that matched the gold pool is removed: the address stays, new ones are refused.
    let gold_pool =
        json!({"metadata": {"annotations": {"metallb.universe.tf/address-pool": "gold"}}});
    let gold_ip = s
        .assigned(service(TEAM_B, "gold", 80, gold_pool.clone()))
        .await;
    assert!(in_range(&gold_ip, 40, 49), "gold got {gold_ip}");
    s.routes_are_held().await;
    lab.kubectl(&["label", "namespace", TEAM_B, "tier-"])
        .unwrap();
    let (status, message, ips) = s
        .wait_reason(TEAM_B, "gold", "OutsideServiceAllocation")
        .await;
    assert_eq!(ips, vec![gold_ip.clone()], "the address stays: {message}");
    assert_eq!(status, "True", "{message}");
    assert_eq!(message, outside_message(&gold_ip, "gold", TEAM_B));
    s.warning_event(TEAM_B, "gold", &message).await;
    s.wait_outside_gauge(1.0).await;
    s.routes_are_held().await;
    s.refused(
        service(TEAM_B, "gold-new", 80, gold_pool),
        "NotAllowed",
        &not_allowed_namespace("gold", TEAM_B),
        None,
    )
    .await;
    println!(
        "tier label removed: team-b/gold keeps {gold_ip} (OutsideServiceAllocation, {OUTSIDE_GAUGE} 1)"
    );

    // --- 6. team-a's exclusive pool runs out: PoolExhausted, never an address from another pool.
    let mut filled = vec![a_ip.clone(), a_shared.clone()];
    for i in 0..2 {
        let ip = s
            .assigned(service(TEAM_A, &format!("fill-{i}"), 80, json!({})))
            .await;
        assert!(in_range(&ip, 10, 13), "team-a got {ip}");
        filled.push(ip);
    }
    filled.sort();
    filled.dedup();
    assert_eq!(filled.len(), 4, "team-a's 4 addresses: {filled:?}");
    s.refused(
        service(TEAM_A, "overflow", 80, json!({})),
        "PoolExhausted",
        EXHAUSTED,
        None,
    )
    .await;

    // --- 7. team-a is fenced: no open-pool address, by pool or by address, and not the service-selectors pool.
    s.refused(
        service(
            TEAM_A,
            "open-pool",
            80,
            json!({"metadata": {"annotations": {"metallb.universe.tf/address-pool": "open"}}}),
        ),
        "NotAllowed",
        &not_allowed_fence("open", TEAM_A, None),
        None,
    )
    .await;
    s.refused(
        service(
            TEAM_A,
            "open-ip",
            80,
            json!({"spec": {"loadBalancerIP": "203.0.113.19"}}),
        ),
        "NotAllowed",
        &not_allowed_fence("open", TEAM_A, Some("203.0.113.19")),
        Some("203.0.113.19"),
    )
    .await;
    let mut web_a = web_pool;
    web_a["metadata"]["labels"] = json!({"app": "web"});
    s.refused(
        service(TEAM_A, "web-pool", 80, web_a),
        "NotAllowed",
        &not_allowed_fence("web", TEAM_A, None),
        None,
    )
    .await;

    // --- 8. The admission policy, on the API server.
    admission_policy(lab, &client).await;

    s.routes_are_held().await;
    println!("router at the end: exactly {:?}", s.held);
    if let Some(refusal) = s.ferrolb.refused(lab) {
        panic!("a component was refused by the API server: {refusal}");
    }
    s.ferrolb.stop();
}

/// Case 8: `components/tenant-fence-policy` applied; `team-a` labelled `ferrolb.io/fenced`. A Service with
/// `spec.loadBalancerIP` (or the annotation) is refused there with the policy's message; in `shared` it is
/// accepted; an update of an existing Service that keeps its request passes, one that changes it is refused.
/// Server-side dry runs: nothing is created or changed.
async fn admission_policy(lab: &Lab, client: &Client) {
    let policy = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/manifests/components/tenant-fence-policy/policy.yaml"
    );
    lab.kubectl(&["apply", "-f", policy])
        .unwrap_or_else(|e| panic!("apply {policy}: {e}"));
    lab.kubectl(&["label", "namespace", TEAM_A, "ferrolb.io/fenced=true"])
        .unwrap();
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let try_create = |ns: &'static str, extra: Value| {
        let client = client.clone();
        let dry = dry.clone();
        async move {
            let svc: Service = serde_json::from_value(service(ns, "admission", 80, extra)).unwrap();
            Api::<Service>::namespaced(client, ns)
                .create(&dry, &svc)
                .await
        }
    };
    let by_ip = json!({"spec": {"loadBalancerIP": "198.51.100.11"}});
    // The policy reaches the API server's admission chain through a watch: poll until it refuses.
    let deadline = Instant::now() + Duration::from_secs(30);
    let refusal = loop {
        match try_create(TEAM_A, by_ip.clone()).await {
            Err(ferrolb_testbed::kube::Error::Api(e)) => break e,
            other => assert!(
                Instant::now() < deadline,
                "the policy does not refuse after 30 s: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let denied = "services \"admission\" is forbidden: ValidatingAdmissionPolicy 'ferrolb-tenant-fence' with binding 'ferrolb-tenant-fence' denied request: ";
    assert_eq!(
        refusal.message,
        format!(
            "{denied}ferrolb tenant fence: Services of type LoadBalancer in namespaces labelled \
             ferrolb.io/fenced may not set spec.loadBalancerIP; their addresses come from the pools that \
             select the namespace"
        )
    );
    assert_eq!((refusal.code, refusal.reason.as_str()), (403, "Forbidden"));
    let by_annotation =
        json!({"metadata": {"annotations": {"metallb.io/loadBalancerIPs": "198.51.100.11"}}});
    match try_create(TEAM_A, by_annotation.clone()).await {
        Err(ferrolb_testbed::kube::Error::Api(e)) => assert_eq!(
            e.message,
            format!(
                "{denied}ferrolb tenant fence: Services of type LoadBalancer in namespaces labelled \
                 ferrolb.io/fenced may not set the metallb.universe.tf/loadBalancerIPs or \
                 metallb.io/loadBalancerIPs annotation; their addresses come from the pools that select \
                 the namespace"
            )
        ),
        other => panic!("the annotation passed admission in a fenced namespace: {other:?}"),
    }
    // An existing request (team-a/open-ip, created before the label) does not lock the Service: an update
    // that keeps it passes, one that changes it is refused.
    let existing: Api<Service> = Api::namespaced(client.clone(), TEAM_A);
    let pp = PatchParams {
        dry_run: true,
        ..PatchParams::default()
    };
    existing
        .patch(
            "open-ip",
            &pp,
            &Patch::Merge(json!({"metadata": {"labels": {"edited": "yes"}}})),
        )
        .await
        .unwrap_or_else(|e| panic!("an update keeping spec.loadBalancerIP refused: {e}"));
    match existing
        .patch(
            "open-ip",
            &pp,
            &Patch::Merge(json!({"spec": {"loadBalancerIP": "198.51.100.12"}})),
        )
        .await
    {
        Err(ferrolb_testbed::kube::Error::Api(e)) => {
            assert_eq!(
                e.message,
                refusal.message.replace("\"admission\"", "\"open-ip\"")
            )
        }
        other => panic!("a changed spec.loadBalancerIP passed admission: {other:?}"),
    }
    // Without an explicit address, and in an unfenced namespace, the same Services pass.
    try_create(TEAM_A, json!({}))
        .await
        .unwrap_or_else(|e| panic!("a plain Service refused in {TEAM_A}: {e}"));
    for extra in [by_ip, by_annotation] {
        try_create(SHARED, extra)
            .await
            .unwrap_or_else(|e| panic!("refused in unfenced {SHARED}: {e}"));
    }
    println!("admission: {}", refusal.message);
}

// The condition messages (ferrolb-ipam's `Refusal` in words), checked exactly.

/// A pool whose `namespaces` leave out `ns`.
fn not_served(pool: &str, ns: &str, rule: &str) -> String {
    format!("address pool {pool:?} does not serve namespace {ns:?} (its service-allocation {rule})")
}

/// `ns` asking a pool of another team.
fn not_allowed_pool(pool: &str, ns: &str) -> String {
    format!(
        "not allowed: {}",
        not_served(pool, ns, &format!("names namespaces [{pool}]"))
    )
}

/// `ip` (requested explicitly) in another team's pool.
fn not_allowed_ip(ip: &str, pool: &str, ns: &str) -> String {
    format!(
        "not allowed: requested address {ip}: {}",
        not_served(pool, ns, &format!("names namespaces [{pool}]"))
    )
}

/// Joining `holder`'s `ip` across namespaces without both opt-ins.
fn not_allowed_sharing(ip: &str, holder: &str) -> String {
    format!(
        "not allowed: address {ip} is held by {holder}: sharing an address across namespaces needs both \
         Services to name the other's namespace in annotation ferrolb.io/share-with-namespaces"
    )
}

/// A `service-selectors` pool and a Service whose labels match none.
fn not_allowed_selector(pool: &str, service: &str) -> String {
    format!(
        "not allowed: address pool {pool:?} serves only Services matching its service-selectors, and the \
         labels of {service} match none"
    )
}

/// A `namespace-selectors` pool whose selector no longer matches `ns`.
fn not_allowed_namespace(pool: &str, ns: &str) -> String {
    format!(
        "not allowed: {}",
        not_served(pool, ns, "has 1 namespace-selector, which does not match")
    )
}

/// Fenced `ns` asking `pool`; `ip` when it asked for an address.
fn not_allowed_fence(pool: &str, ns: &str, ip: Option<&str>) -> String {
    let ip = ip
        .map(|ip| format!("requested address {ip}: "))
        .unwrap_or_default();
    format!(
        "not allowed: {ip}namespace {ns:?} is fenced in by address pool {ns:?} (exclusive): it gets \
         addresses only from pools whose namespaces or namespace-selectors select it, and address pool \
         {pool:?} does not"
    )
}

/// The fenced namespace's pools are full (the fence leaves no other candidate).
const EXHAUSTED: &str = "no auto-assign address pool has a free IPv4 address";

/// A held `ip` of `pool` that `rule` would not give now: kept.
fn outside(ip: &str, pool: &str, rule: &str) -> String {
    format!(
        "assigned {ip} (pool {pool}), which the current rules would not give it ({rule}); kept (still \
         announced) so traffic keeps flowing. Change the rules back, or remove the address from this \
         Service to move it"
    )
}

/// A held `ip` of a `namespace-selectors` pool whose selector no longer matches `ns`: kept.
fn outside_message(ip: &str, pool: &str, ns: &str) -> String {
    outside(
        ip,
        pool,
        &not_served(pool, ns, "has 1 namespace-selector, which does not match"),
    )
}

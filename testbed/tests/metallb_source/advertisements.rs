//! Steps 5 to 8 of the metallb source test: Community aliases, `peers`, `nodeSelectors`, pool and Service
//! selectors, and `IPAddressPool.status`.

use super::*;

/// The router's table `prefix → next hops` with each of `prefixes` from exactly the nodes `nodes`.
fn table(prefixes: &[&String], nodes: &[usize]) -> BTreeMap<String, BTreeSet<String>> {
    let hops: BTreeSet<String> = nodes.iter().map(|&i| node_addr(i)).collect();
    prefixes
        .iter()
        .map(|p| (format!("{p}/32"), hops.clone()))
        .collect()
}

/// The communities (`community.string`, empty when none) of the router's paths for `prefix`, by peer.
fn path_communities(lab: &Lab, prefix: &str) -> BTreeMap<String, String> {
    bgp_paths(lab, prefix)
        .iter()
        .filter_map(|p| {
            let peer = p["peer"]["peerId"].as_str()?.to_owned();
            let community = p["community"]["string"].as_str().unwrap_or("").to_owned();
            Some((peer, community))
        })
        .collect()
}

/// A BGPAdvertisement `name` with the spec lines `spec` (indented by two spaces).
fn advertisement(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {{name: {name}, namespace: {METALLB_NS}}}
spec:
{spec}"
    )
}

const COMMUNITY: &str = "apiVersion: metallb.io/v1beta1
kind: Community
metadata: {name: lab-communities, namespace: metallb-system}
spec:
  communities:
  - {name: lab-tag, value: \"64512:100\"}
";

/// Two more pools, 198.51.100.10-14 labelled `tier: lab` and 198.51.100.20-24 labelled `tier: other` (5
/// addresses each), and an advertisement that selects the first by its label.
const LAB_POOLS: &str = "apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: lab-pool
  namespace: metallb-system
  labels: {tier: lab}
spec:
  addresses: [198.51.100.10-198.51.100.14]
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: other-pool
  namespace: metallb-system
  labels: {tier: other}
spec:
  addresses: [198.51.100.20-198.51.100.24]
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: by-label, namespace: metallb-system}
spec:
  ipAddressPoolSelectors:
  - matchLabels: {tier: lab}
  serviceSelectors:
  - matchLabels: {announce: \"yes\"}
";

/// Label under which step 6's advertisement selects its nodes.
const ANNOUNCE_LABEL: &str = "lab.ferrolb.io/announce";

/// The `status` of IPAddressPool `name`, read with kubectl.
fn pool_status(lab: &Lab, name: &str) -> Value {
    lab.kubectl(&["get", "ipaddresspool", name, "-n", METALLB_NS, "-o", "json"])
        .ok()
        .and_then(|t| ferrolb_testbed::serde_json::from_str::<Value>(&t).ok())
        .map(|v| v["status"].clone())
        .unwrap_or(Value::Null)
}

/// Waits until the IPAddressPools' statuses are exactly `want` (pool → `[assignedIPv4, availableIPv4,
/// assignedIPv6, availableIPv6]`); the controller writes them at most once a second.
fn wait_pool_status(lab: &Lab, want: &[(&str, [i64; 4])], what: &str, logs: impl Fn() -> String) {
    let want: BTreeMap<&str, Value> = want
        .iter()
        .map(|(pool, [a4, f4, a6, f6])| {
            let v = ferrolb_testbed::serde_json::json!({
                "assignedIPv4": a4, "availableIPv4": f4, "assignedIPv6": a6, "availableIPv6": f6
            });
            (*pool, v)
        })
        .collect();
    let have =
        || -> BTreeMap<&str, Value> { want.keys().map(|p| (*p, pool_status(lab, p))).collect() };
    lab.wait_until(Duration::from_secs(30), what, || Ok(have() == want))
        .unwrap_or_else(|e| panic!("{e}\nwant {want:?}\nhave {:?}\n{}", have(), logs()));
}

/// Steps 5 to 8, with the two whoami Services at `ips` (public-pool) announced from every node through
/// `bgpadvertisement1`, node-1 peering with the router's second address (BGPPeer `node1`), the others with
/// its first (`peer1`).
pub(super) async fn advertisement_phases(
    lab: &Lab,
    client: &Client,
    app: &Whoami,
    ferrolb: &MetallbFerrolb,
    ips: &[String],
) {
    let public: Vec<&String> = ips.iter().collect();
    let logs = || ferrolb.logs(lab);
    let public_ad = |extra: &str| {
        advertisement(
            "bgpadvertisement1",
            &format!("  ipAddressPools: [public-pool]\n{extra}"),
        )
    };

    // --- 5. A Community alias; editing the advertisement's communities is an UPDATE, no session reset.
    kubectl_apply(lab, COMMUNITY);
    kubectl_apply(lab, &public_ad("  communities: [lab-tag]\n"));
    let tagged = |value: &str| -> BTreeMap<String, String> {
        (1..=lab.nodes())
            .map(|i| (node_addr(i), value.to_owned()))
            .collect()
    };
    let have_communities = || -> Vec<BTreeMap<String, String>> {
        ips.iter().map(|ip| path_communities(lab, ip)).collect()
    };
    let wait_communities = |value: &str, what: &str| {
        let want = vec![tagged(value); ips.len()];
        lab.wait_until(Duration::from_secs(30), what, || {
            Ok(have_communities() == want)
        })
        .unwrap_or_else(|e| {
            panic!(
                "{e}\nwant {want:?}\nhave {:?}\n{}",
                have_communities(),
                logs()
            )
        });
    };
    wait_communities("64512:100", "the alias lab-tag's community on every path");
    // FRR shows uptimes as whole seconds of one clock (now - start, each truncated): a session that was not
    // reset shows, `e` ms after an earlier reading, more than that reading + e - 1000 ms; one reset during the
    // wait shows at most e + 1000 ms, below that bound once the earlier reading is 4 s or more.
    lab.wait_until(Duration::from_secs(15), "every session up 4 s", || {
        let up = uptimes(lab);
        Ok((1..=lab.nodes()).all(|i| up.get(&node_addr(i)).is_some_and(|&ms| ms >= 4000)))
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}\n{}", uptimes(lab), logs()));
    let (up_before, updates_before) = (uptimes(lab), updates_received(lab));
    let edited = Instant::now();
    kubectl_apply(lab, &public_ad("  communities: [\"64512:200\"]\n"));
    wait_communities("64512:200", "the edited community on every path");
    let elapsed = edited.elapsed().as_millis() as u64;
    let (up_after, updates_after) = (uptimes(lab), updates_received(lab));
    for i in 1..=lab.nodes() {
        let peer = node_addr(i);
        let (before, after) = (up_before[&peer], up_after.get(&peer).copied().unwrap_or(0));
        assert!(
            after + 1000 >= before + elapsed,
            "node-{i}'s session was reset by the community edit: up {before} ms, then {after} ms {elapsed} ms \
             later\n{}",
            logs()
        );
        assert!(
            updates_after.get(&peer) > updates_before.get(&peer),
            "node-{i}: no UPDATE received for the edit: {updates_before:?} → {updates_after:?}"
        );
    }
    println!(
        "community edit: UPDATEs {updates_before:?} → {updates_after:?}, uptimes {up_before:?} → {up_after:?}"
    );

    // --- 6. `peers` and `nodeSelectors` limit who gets the routes.
    kubectl_apply(lab, &public_ad("  peers: [node1]\n"));
    wait_routes(
        lab,
        &table(&public, &[1]),
        "peers: [node1]: node-1's session only",
        logs,
    );
    kubectl_apply(lab, &public_ad("  peers: [peer1]\n"));
    wait_routes(
        lab,
        &table(&public, &[2, 3]),
        "peers: [peer1]: node-2 and node-3 only",
        logs,
    );
    lab.kubectl(&["label", "node", "node-3", &format!("{ANNOUNCE_LABEL}=yes")])
        .unwrap();
    let selector = format!("  nodeSelectors:\n  - matchLabels: {{{ANNOUNCE_LABEL}: \"yes\"}}\n");
    kubectl_apply(lab, &public_ad(&selector));
    wait_routes(
        lab,
        &table(&public, &[3]),
        "nodeSelectors: the labelled node-3 only",
        logs,
    );
    lab.kubectl(&["label", "node", "node-2", &format!("{ANNOUNCE_LABEL}=yes")])
        .unwrap();
    lab.kubectl(&["label", "node", "node-3", &format!("{ANNOUNCE_LABEL}-")])
        .unwrap();
    wait_routes(
        lab,
        &table(&public, &[2]),
        "the label moved from node-3 to node-2",
        logs,
    );
    kubectl_apply(lab, &public_ad(""));
    wait_routes(lab, &table(&public, &[1, 2, 3]), "every node again", logs);

    // --- 7. `ipAddressPoolSelectors` and `serviceSelectors` (under ferrolb's own CRD definition): of the
    // selected pool's Services only the labelled one is announced; the pool no advertisement selects is not.
    kubectl_apply(lab, LAB_POOLS);
    let mut lab_ips = Vec::new();
    for (name, pool, labelled) in [
        ("whoami-c", "lab-pool", true),
        ("whoami-d", "lab-pool", false),
        ("whoami-e", "other-pool", true),
    ] {
        let mut svc = app.service(pool);
        svc["metadata"]["name"] = name.into();
        if labelled {
            svc["metadata"]["labels"] = ferrolb_testbed::serde_json::json!({"announce": "yes"});
        }
        apply(client, svc).await;
        lab_ips.push(ingress_ip(client, NS, name).await);
    }
    println!("whoami-c, -d, -e: {lab_ips:?}");
    assert!(
        lab_ips[..2].iter().all(|ip| ip.starts_with("198.51.100.1")),
        "{lab_ips:?}"
    );
    assert!(lab_ips[2].starts_with("198.51.100.2"), "{lab_ips:?}");
    let mut announced = public.clone();
    announced.push(&lab_ips[0]);
    wait_routes(
        lab,
        &table(&announced, &[1, 2, 3]),
        "lab-pool's labelled whoami-c announced; its unlabelled whoami-d and other-pool's whoami-e not",
        logs,
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        routes(lab),
        table(&announced, &[1, 2, 3]),
        "whoami-d (not selected by serviceSelectors) or whoami-e (pool not selected) was announced"
    );
    // Labelling whoami-d makes it selected.
    lab.kubectl(&["label", "service", "-n", NS, "whoami-d", "announce=yes"])
        .unwrap();
    announced.push(&lab_ips[1]);
    wait_routes(
        lab,
        &table(&announced, &[1, 2, 3]),
        "whoami-d announced once labelled announce=yes",
        logs,
    );

    // --- 8. IPAddressPool.status after the allocations and after a release.
    // public-pool: 203.0.113.10-20 (11 addresses), lab-pool and other-pool 5 each.
    wait_pool_status(
        lab,
        &[
            ("public-pool", [2, 9, 0, 0]),
            ("lab-pool", [2, 3, 0, 0]),
            ("other-pool", [1, 4, 0, 0]),
        ],
        "pool status after 5 allocations",
        logs,
    );
    delete_service(lab, client, NS, "whoami-d", &lab_ips[1]).await;
    wait_pool_status(
        lab,
        &[
            ("public-pool", [2, 9, 0, 0]),
            ("lab-pool", [1, 4, 0, 0]),
            ("other-pool", [1, 4, 0, 0]),
        ],
        "pool status after whoami-d is deleted",
        logs,
    );
    announced.pop();
    assert_eq!(
        routes(lab),
        table(&announced, &[1, 2, 3]),
        "only whoami-d's route withdrawn"
    );
}

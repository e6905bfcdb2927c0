//! AS_PATH prepending against the lab's real FRR router over eBGP, driven by real speakers through the
//! ConfigMap: two advertisements of one pool, node-1's (rack r1) prepending our AS 3 times and node-2's
//! (rack r2) none. The router shows the prepended path, prefers the shorter one (best path and kernel FIB:
//! node-2 only); a Service's allowed `ferrolb.io/bgp-as-path-prepend` lengthens node-2's path (node-1 keeps
//! its longer one), one beyond the pool's allowance is refused (condition `False`, Warning Event, path back to
//! the pool's); without the prepend the router does ECMP over both nodes again.
//!
//! Figures are printed: `cargo test --test speaker_prepend -- --nocapture`. Needs root and the lab
//! (`testbed/lab deps`); fails loudly without them.

mod speaker_common;

use ferrolb_testbed::Lab;
use speaker_common::*;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const NS: &str = "prepend";
/// Every node's AS (eBGP to the router's 65559).
const ASN: &str = "64600";
const ANNOTATION: &str = "ferrolb.io/bgp-as-path-prepend";

/// The ConfigMap: the router over eBGP, one pool whose advertisement for rack r1 prepends `r1_prepend`
/// (a YAML flow mapping, or nothing) and whose advertisement for the other racks lets Services prepend
/// our AS up to twice.
fn config(lab: &Lab, r1_prepend: &str) -> String {
    let router = lab.env("ROUTER_LAN4").unwrap_or("198.18.0.1");
    configmap_of(&format!(
        "    peers:
    - peer-address: {router}
      peer-asn: 65559
      my-asn: {ASN}
      password: \"foo\"
    address-pools:
    - name: te
      protocol: bgp
      addresses:
      - 203.0.113.56-203.0.113.63
      bgp-advertisements:
      - node-selectors:
        - match-labels: {{rack: r1}}
{r1_prepend}      - node-selectors:
        - match-expressions: [{{key: rack, operator: NotIn, values: [r1]}}]
        allowed-service-as-path-prepends: [{{asn: {ASN}, max-count: 2}}]
"
    ))
}

/// `n` copies of our AS, as FRR prints an AS path.
fn path_of(n: usize) -> String {
    vec![ASN; n].join(" ")
}

/// Waits until the router's AS paths for `prefix` are node-1's `n1` ASes and node-2's `n2`, and its kernel FIB
/// holds exactly `fib`; returns how long that took.
fn wait_router(lab: &Lab, prefix: &str, n1: usize, n2: usize, fib_want: &[usize]) -> Duration {
    let want = vec![(node_addr(1), path_of(n1)), (node_addr(2), path_of(n2))];
    let want_fib: BTreeSet<String> = fib_want.iter().map(|i| node_addr(*i)).collect();
    let start = Instant::now();
    lab.wait_until(
        Duration::from_secs(30),
        &format!("paths {want:?}, FIB {want_fib:?}"),
        || Ok(paths_by_peer(lab, prefix) == want && fib(lab, prefix) == want_fib),
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e}\nBGP paths: {:?}\nFIB: {:?}\n{}",
            paths_by_peer(lab, prefix),
            fib(lab, prefix),
            speaker_logs(lab, "prepend-speaker")
        )
    });
    start.elapsed()
}

/// The peer of the router's best path for `prefix`, and FRR's reason for choosing it.
fn best_path(lab: &Lab, prefix: &str) -> (String, String) {
    let paths = bgp_paths(lab, prefix);
    let best = paths
        .iter()
        .find(|p| p["bestpath"]["overall"] == true)
        .unwrap_or_else(|| panic!("no best path for {prefix}: {paths:?}"));
    (
        best["peer"]["peerId"].as_str().unwrap_or("?").to_owned(),
        best["bestpath"]["selectionReason"]
            .as_str()
            .unwrap_or("?")
            .to_owned(),
    )
}

fn annotate(lab: &Lab, value: Option<&str>) {
    let arg = value.map_or(format!("{ANNOTATION}-"), |v| format!("{ANNOTATION}={v}"));
    lab.kubectl(&[
        "annotate",
        "--overwrite",
        "service",
        "manual",
        "-n",
        NS,
        &arg,
    ])
    .unwrap_or_else(|e| panic!("kubectl annotate {arg}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_prefers_the_node_without_the_prepend() {
    let lab = Lab::shared().expect("lab up (run testbed/lab deps first)");
    let client = lab.kube_client().await.unwrap();
    lab.kubectl(&["create", "namespace", CONFIG_NS]).unwrap();
    lab.kubectl(&["create", "namespace", NS]).unwrap();
    router_config(lab, &["neighbor NODES remote-as external"]);
    for (node, rack) in [("node-1", "r1"), ("node-2", "r2")] {
        lab.kubectl(&["label", "node", node, &format!("rack={rack}")])
            .unwrap();
    }
    kubectl_apply(
        lab,
        &config(
            lab,
            &format!("        as-path-prepend: {{asn: {ASN}, count: 3}}\n"),
        ),
    );
    let log = lab.dir().join("logs").join("prepend-controller.log");
    let _controller = Controller::spawn(
        &["--config-namespace", CONFIG_NS],
        free_port(),
        "prepend-controller",
        &lab.kubeconfig_path(),
        &log,
    );
    let logs = || {
        let controller = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = controller.lines().rev().take(20).collect();
        format!(
            "--- controller (last lines, newest first)\n{}\n{}",
            tail.join("\n"),
            speaker_logs(lab, "prepend-speaker")
        )
    };
    let speakers: Vec<_> = (1..=2)
        .map(|i| {
            let state = lab.dir().join(format!("prepend-state-{i}"));
            let name = format!("prepend-speaker-{i}");
            spawn_speaker(lab, i, &name, &lab.kubeconfig_path(), &state)
        })
        .collect();
    let vip = manual_service(&client, NS).await;
    apply(&client, manual_slice(NS, true)).await;
    let prefix = format!("{vip}/32");

    // 1. node-1 prepends 3: the router keeps both paths and uses node-2's only.
    let took = wait_router(lab, &prefix, 4, 1, &[2]);
    let (best, reason) = best_path(lab, &prefix);
    println!(
        "prepend 3 on node-1: paths {:?}, best {best} ({reason}), FIB {:?}, {} ms after the Service's slice",
        paths_by_peer(lab, &prefix),
        fib(lab, &prefix),
        took.as_millis()
    );
    assert_eq!(best, node_addr(2));
    assert_eq!(reason, "AS Path");

    // 2. The Service asks for 2 more of our AS: node-2's path grows to 3; node-1 keeps its longer prepend.
    annotate(lab, Some(&format!("{ASN}:2")));
    wait_router(lab, &prefix, 4, 3, &[2]);
    let message = wait_attributes_condition(lab, NS, "manual", "True", "Accepted", &logs);
    assert_eq!(message, format!("announced with as-path-prepend {ASN}:2"));
    println!(
        "annotation {ASN}:2: paths {:?}; condition True: {message}",
        paths_by_peer(lab, &prefix)
    );

    // 3. More than the pool allows: refused, node-2 back to the pool's (no prepend).
    annotate(lab, Some(&format!("{ASN}:5")));
    wait_router(lab, &prefix, 4, 1, &[2]);
    let message =
        wait_attributes_condition(lab, NS, "manual", "False", "AsPathPrependNotAllowed", &logs);
    assert_eq!(
        message,
        format!(
            "{ANNOTATION}: {ASN}:5 is not in allowed-service-as-path-prepends of pool \"te\"; \
             announcing with the pool's attributes instead"
        )
    );
    println!(
        "annotation {ASN}:5: paths {:?}; condition False: {message}",
        paths_by_peer(lab, &prefix)
    );

    // 4. No prepend anywhere: equal paths, ECMP over both nodes again.
    annotate(lab, None);
    let conns = connections_established(lab);
    kubectl_apply(lab, &config(lab, ""));
    let took = wait_router(lab, &prefix, 1, 1, &[1, 2]);
    println!(
        "prepend removed: paths {:?}, FIB {:?}, {} ms after kubectl apply of the ConfigMap",
        paths_by_peer(lab, &prefix),
        fib(lab, &prefix),
        took.as_millis()
    );
    assert_eq!(
        connections_established(lab),
        conns,
        "a session was reset by a prepend change"
    );
    for p in speakers {
        stop_speaker(p);
    }
}

/// The leaf-spine guide's FRR configuration (`config/routers/frr-leaf-spine.conf`) is one FRR 8.4's parser
/// accepts (`vtysh --dryrun`), and a broken line is caught the same way.
#[test]
fn the_leaf_spine_guides_frr_configuration_parses() {
    let dry_run = |path: &std::path::Path| {
        let out = std::process::Command::new("vtysh")
            .arg("--dryrun")
            .arg("-f")
            .arg(path)
            .output()
            .expect("run vtysh (FRR; testbed/lab deps installs it)");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let guide =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/routers/frr-leaf-spine.conf");
    let (ok, text) = dry_run(&guide);
    assert!(ok && text.trim().is_empty(), "{}: {text}", guide.display());
    let broken = std::env::temp_dir().join(format!("frr-leaf-spine-{}.conf", std::process::id()));
    let conf = std::fs::read_to_string(&guide).unwrap();
    std::fs::write(
        &broken,
        conf.replace("remote-as external", "remote-as outside"),
    )
    .unwrap();
    let (ok, text) = dry_run(&broken);
    std::fs::remove_file(&broken).unwrap();
    assert!(!ok && text.contains("remote-as outside"), "{text}");
}

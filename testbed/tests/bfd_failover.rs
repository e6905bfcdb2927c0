//! BFD failover end to end in the lab: the real control plane, `ferrolb controller` and one `ferrolb speaker` per
//! node (peer with a `bfd-profile` of 100 ms × 3, hold time 9 s), and the FRR router running bfdd with the lab's
//! versioned configuration (`testbed/frr/frr.conf`: profile `lab`, 100 ms / 100 ms / ×3). One VIP is served by
//! both nodes (a selector-less Service with a hand-written EndpointSlice), and the client sends it traffic. The
//! lab's per-node responder answers it (no kube-proxy, no `--data-path`): the endpoint addresses are no Pod,
//! and what is timed is the router's FIB.
//!
//! 1. A BFD-only failure (nft drops UDP 3784 in one node's namespace, BGP's TCP untouched): the router's BGP
//!    session goes down with Cease / BFD Down and the path leaves its FIB; restored, BFD comes Up and BGP
//!    re-establishes.
//! 2. 20 link cuts (nft drops every packet on the node's LAN interface, both ways: a dead node, no carrier loss
//!    to help the router) alternating between the nodes: the router removes the dead node's path from its kernel
//!    FIB, FRR logs Cease / BFD Down for it, and then every client request is answered by the other node.
//! 3. The same without BFD (hold time 9 s, keepalive 3 s) for a few cuts, printed side by side.
//!
//! Cut → FIB removal is timed from the moment the nft rule is in force to the `ip monitor route` event (in the
//! router's namespace) after which the FIB no longer holds the node's next hop. Figures are printed, not
//! asserted (`cargo test --test bfd_failover -- --nocapture`). Needs root, FRR, nftables and the control plane
//! (`testbed/lab deps`); fails loudly without them. The lab (namespaces, processes) is removed at the end, also
//! on failure.

mod speaker_common;

use ferrolb_testbed::{Lab, LabOptions};
use speaker_common::{
    CONFIG_NS, Ferrolb, Identities, Load, curl, fib, kubectl_apply, node_addr, speaker_metrics,
};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const APP_NS: &str = "failover";
/// Link cuts with BFD (the target is stated over at least 20): the measurement's default. The test suite's run
/// (`testbed/lab test`) sets `FERROLB_BFD_TRIALS=6`, its short form.
const BFD_TRIALS: usize = 20;

/// How many link cuts with BFD: `FERROLB_BFD_TRIALS` (at least 2, both nodes), else [`BFD_TRIALS`].
fn bfd_trials() -> usize {
    std::env::var("FERROLB_BFD_TRIALS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .map_or(BFD_TRIALS, |n| n.max(2))
}
/// Link cuts without BFD: each costs the hold time.
const HOLD_TRIALS: usize = 3;
/// nft table the test adds in a node namespace to cut it off, removed to restore it.
const CUT_TABLE: &str = "flbfailover";

/// The profile the speakers use with BFD: 100 ms / 100 ms / × 3, as the router's.
const BFD_PROFILES: &str = "    bfd-profiles:
    - name: fast
      receive-interval: 100
      transmit-interval: 100
      detect-multiplier: 3
";

/// The ConfigMap: the lab's peer (iBGP, MD5) with a 9 s hold time, and with `bfd-profile: fast` when `bfd`.
fn configmap(lab: &Lab, bfd: bool) -> String {
    let peer = if bfd {
        "      hold-time: 9s\n      bfd-profile: fast\n"
    } else {
        "      hold-time: 9s\n"
    };
    speaker_common::configmap(lab, peer, "")
        .replace("    peers:\n", &format!("{BFD_PROFILES}    peers:\n"))
}

/// A selector-less LoadBalancer Service whose EndpointSlice puts one ready endpoint on each node.
const SERVICE: &str = "apiVersion: v1
kind: Service
metadata: {name: web, namespace: failover}
spec: {type: LoadBalancer, externalTrafficPolicy: Local, ports: [{port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: failover, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{port: 80, protocol: TCP}]
endpoints:
- {addresses: [198.19.1.200], nodeName: node-1, conditions: {ready: true}}
- {addresses: [198.19.2.200], nodeName: node-2, conditions: {ready: true}}
";

/// What a cut drops in the node's namespace.
#[derive(Clone, Copy, Debug)]
enum Cut {
    /// Every packet in or out of the LAN interface (`eth0`).
    Link,
    /// Only BFD Control packets (UDP 3784), both ways.
    BfdOnly,
}

/// Adds the nft table that cuts node `node` off; returns when the rule is in force.
fn cut(lab: &Lab, node: usize, what: Cut) {
    let (input, output) = match what {
        Cut::Link => ("iifname \"eth0\" drop", "oifname \"eth0\" drop"),
        Cut::BfdOnly => ("udp dport 3784 drop", "udp dport 3784 drop"),
    };
    let ruleset = format!(
        "table inet {CUT_TABLE} {{
  chain in {{ type filter hook input priority 0; {input}; }}
  chain out {{ type filter hook output priority 0; {output}; }}
}}
"
    );
    let file = lab.dir().join(format!("bfd-failover-cut-{node}.nft"));
    std::fs::write(&file, ruleset).unwrap();
    lab.exec_in_node(node, &["nft", "-f", &file.display().to_string()])
        .unwrap_or_else(|e| {
            panic!("nft in node-{node} (is nftables installed? testbed/lab deps): {e}")
        });
}

fn restore(lab: &Lab, node: usize) {
    lab.exec_in_node(node, &["nft", "delete", "table", "inet", CUT_TABLE])
        .unwrap_or_else(|e| panic!("removing the cut of node-{node}: {e}"));
}

/// `ip monitor route nexthop` in the router's namespace (zebra may change a nexthop group rather than the
/// route); each line is stamped when it arrives.
struct RouteMonitor {
    child: Child,
    lines: mpsc::Receiver<(Instant, String)>,
}

impl RouteMonitor {
    fn start(lab: &Lab) -> RouteMonitor {
        // Line-buffered: `ip` does not flush each event into a pipe by itself.
        let mut child = Command::new("stdbuf")
            .args([
                "-oL",
                "ip",
                "-n",
                &lab.router_netns(),
                "monitor",
                "route",
                "nexthop",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ip monitor route");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        RouteMonitor { child, lines }
    }

    fn drain(&self) {
        while self.lines.try_recv().is_ok() {}
    }

    /// Waits until the FIB no longer holds `gone` as a next hop of `vip`. Returns when that became true: the
    /// arrival of the monitor event of the change (`true`), or, should it have changed without an event, the
    /// 10 ms poll that saw it (`false`).
    fn wait_removed(
        &self,
        lab: &Lab,
        vip: &str,
        gone: &str,
        limit: Duration,
    ) -> Option<(Instant, bool)> {
        let start = Instant::now();
        while start.elapsed() < limit {
            match self.lines.recv_timeout(Duration::from_millis(10)) {
                Ok((at, _)) => {
                    if !fib(lab, vip).contains(gone) {
                        return Some((at, true));
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if !fib(lab, vip).contains(gone) {
                        // The change's event may have arrived while the poll ran: it is the earlier time.
                        return Some(match self.lines.try_recv() {
                            Ok((at, _)) => (at, true),
                            Err(_) => (Instant::now(), false),
                        });
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => panic!("ip monitor exited"),
            }
        }
        None
    }
}

impl Drop for RouteMonitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The router's bgpd log from byte `from` on.
fn bgpd_log_since(lab: &Lab, from: usize) -> String {
    let log = std::fs::read(lab.dir().join("logs").join("bgpd.log")).unwrap_or_default();
    String::from_utf8_lossy(log.get(from..).unwrap_or_default()).into_owned()
}

fn bgpd_log_len(lab: &Lab) -> usize {
    std::fs::metadata(lab.dir().join("logs").join("bgpd.log")).map_or(0, |m| m.len() as usize)
}

/// Whether bgpd logged a Cease / BFD Down (6/10) NOTIFICATION, sent or received, for `peer`.
fn cease_bfd_down_logged(log: &str, peer: &str) -> bool {
    log.lines().any(|l| {
        l.contains("%NOTIFICATION") && l.contains(&format!("neighbor {peer} 6/10 (Cease/BFD Down)"))
    })
}

fn bgp_established(lab: &Lab, peer: &str) -> bool {
    lab.vtysh("show bgp summary json").ok().and_then(|s| {
        s.pointer(&format!("/ipv4Unicast/peers/{peer}/state"))
            .and_then(|v| v.as_str())
            .map(|s| s == "Established")
    }) == Some(true)
}

/// Whether the router's BFD session with `peer` is up with 100 ms timers in force on both sides.
fn frr_bfd_settled(lab: &Lab, peer: &str) -> bool {
    let Ok(peers) = lab.vtysh("show bfd peers json") else {
        return false;
    };
    peers.as_array().into_iter().flatten().any(|p| {
        p["peer"] == peer
            && p["status"] == "up"
            && p["transmit-interval"] == 100
            && p["remote-transmit-interval"] == 100
            && p["remote-receive-interval"] == 100
            && p["remote-detect-multiplier"] == 3
    })
}

/// `ferrolb_bfd_session_up{peer="198.18.0.1"}` of node `node`'s speaker.
fn speaker_bfd_up(lab: &Lab, node: usize) -> Option<u8> {
    let router = lab.env("ROUTER_LAN4").unwrap_or("198.18.0.1");
    let series = format!("ferrolb_bfd_session_up{{peer=\"{router}\"}} ");
    speaker_metrics(lab, node)
        .lines()
        .find_map(|l| l.strip_prefix(&series)?.trim().parse().ok())
}

/// Waits until both nodes are Established with both paths in the router's FIB (and, with BFD, the router's BFD
/// sessions settled at 100 ms).
fn wait_ready(lab: &Lab, vip: &str, bfd: bool, ferrolb: &Ferrolb) {
    let both: BTreeSet<String> = (1..=2).map(node_addr).collect();
    lab.wait_until(Duration::from_secs(90), "both paths, sessions up", || {
        Ok(fib(lab, vip) == both
            && (1..=2).all(|i| bgp_established(lab, &node_addr(i)))
            && (!bfd || (1..=2).all(|i| frr_bfd_settled(lab, &node_addr(i)))))
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}\nFIB: {:?}\nBFD: {}\n{}",
            fib(lab, vip),
            lab.vtysh_text("show bfd peers brief").unwrap_or_default(),
            ferrolb.logs(lab)
        )
    });
}

/// What one link cut measured.
struct Trial {
    /// Cut → the dead node's path out of the router's FIB.
    took: Duration,
    /// Whether that moment is a monitor event's arrival (else a 10 ms poll).
    by_event: bool,
    /// Client requests (20/s, 2 s timeout) that failed between just before the cut and the end of the checks.
    failed: u64,
}

/// One link cut of `node`, after checking the functional facts.
fn link_cut_trial(
    lab: &Lab,
    monitor: &RouteMonitor,
    vip: &str,
    node: usize,
    bfd: bool,
    ferrolb: &Ferrolb,
) -> Trial {
    let other = 3 - node;
    wait_ready(lab, vip, bfd, ferrolb);
    let stop = lab.dir().join("bfd-failover-load-stop");
    let load = Load::start(lab, vip, 20, &stop);
    std::thread::sleep(Duration::from_secs(1));
    let log_from = bgpd_log_len(lab);
    monitor.drain();
    cut(lab, node, Cut::Link);
    let cut_at = Instant::now();
    let limit = if bfd {
        Duration::from_secs(5)
    } else {
        Duration::from_secs(20)
    };
    let (removed, by_event) = monitor
        .wait_removed(lab, vip, &node_addr(node), limit)
        .unwrap_or_else(|| {
            panic!(
                "node-{node} cut: its path is still in the router's FIB after {limit:?}: {:?}",
                fib(lab, vip)
            )
        });
    let took = removed.saturating_duration_since(cut_at);
    assert_eq!(
        fib(lab, vip),
        BTreeSet::from([node_addr(other)]),
        "only node-{other} is left in the FIB"
    );
    // Every request now reaches the other node.
    for _ in 0..10 {
        assert_eq!(
            curl(lab, vip).as_deref(),
            Ok(format!("node-{other}").as_str()),
            "after node-{node}'s path was removed"
        );
    }
    let load = load.finish(&stop);
    assert!(load.ok > 0, "the client got no answer at all: {load:?}");
    if bfd {
        let peer = node_addr(node);
        lab.wait_until(
            Duration::from_secs(5),
            "Cease / BFD Down in bgpd's log",
            || Ok(cease_bfd_down_logged(&bgpd_log_since(lab, log_from), &peer)),
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", bgpd_log_since(lab, log_from)));
    }
    assert!(
        !bgp_established(lab, &node_addr(node)),
        "the router still has an Established session with the cut node"
    );
    restore(lab, node);
    Trial {
        took,
        by_event,
        failed: load.failed,
    }
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

fn summary(label: &str, trials: &[Trial]) -> String {
    let mut sorted: Vec<Duration> = trials.iter().map(|t| t.took).collect();
    sorted.sort();
    format!(
        "{label:<26} n={:<3} p50 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms  ({} of n timed by a monitor event; \
         {} client requests failed in all)",
        sorted.len(),
        percentile(&sorted, 50).as_secs_f64() * 1e3,
        percentile(&sorted, 99).as_secs_f64() * 1e3,
        sorted[sorted.len() - 1].as_secs_f64() * 1e3,
        trials.iter().filter(|t| t.by_event).count(),
        trials.iter().map(|t| t.failed).sum::<u64>(),
    )
}

/// `trials` link cuts alternating between node-1 and node-2.
fn link_cut_trials(
    lab: &Lab,
    monitor: &RouteMonitor,
    vip: &str,
    trials: usize,
    bfd: bool,
    ferrolb: &Ferrolb,
) -> Vec<Trial> {
    (0..trials)
        .map(|n| {
            let node = 1 + n % 2;
            let trial = link_cut_trial(lab, monitor, vip, node, bfd, ferrolb);
            eprintln!(
                "{} trial {n}: node-{node} cut → FIB removal {:.1} ms ({}), {} requests failed",
                if bfd { "BFD" } else { "hold-time" },
                trial.took.as_secs_f64() * 1e3,
                if trial.by_event { "event" } else { "poll" },
                trial.failed
            );
            trial
        })
        .collect()
}

/// The BFD-only failure on node `node`: BGP goes down with Cease / BFD Down although its TCP connection is
/// untouched, the path leaves the FIB; restored, BFD and then BGP come back.
fn bfd_only_failure(lab: &Lab, monitor: &RouteMonitor, vip: &str, node: usize, ferrolb: &Ferrolb) {
    wait_ready(lab, vip, true, ferrolb);
    assert_eq!(speaker_bfd_up(lab, node), Some(1), "speaker's BFD metric");
    let peer = node_addr(node);
    let log_from = bgpd_log_len(lab);
    monitor.drain();
    cut(lab, node, Cut::BfdOnly);
    let cut_at = Instant::now();
    let (removed, _) = monitor
        .wait_removed(lab, vip, &peer, Duration::from_secs(5))
        .unwrap_or_else(|| panic!("node-{node}'s path stayed in the FIB with BFD dropped"));
    lab.wait_until(
        Duration::from_secs(5),
        "Cease / BFD Down in bgpd's log",
        || Ok(cease_bfd_down_logged(&bgpd_log_since(lab, log_from), &peer)),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", bgpd_log_since(lab, log_from)));
    assert!(!bgp_established(lab, &peer));
    lab.wait_until(Duration::from_secs(5), "speaker's BFD metric 0", || {
        Ok(speaker_bfd_up(lab, node) == Some(0))
    })
    .unwrap();
    // While BFD is dropped, BGP stays down (the speaker may reconnect, but holds in OpenConfirm until BFD is Up).
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !bgp_established(lab, &peer),
        "BGP re-established while BFD was still dropped"
    );
    let restored_at = Instant::now();
    restore(lab, node);
    lab.wait_until(Duration::from_secs(60), "BGP Established again", || {
        Ok(bgp_established(lab, &peer))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", ferrolb.logs(lab)));
    let reestablished = restored_at.elapsed();
    wait_ready(lab, vip, true, ferrolb);
    assert_eq!(speaker_bfd_up(lab, node), Some(1));
    println!(
        "BFD-only failure of node-{node} (UDP 3784 dropped, TCP alive): path out of the router's FIB after {:.1} ms \
         (Cease / BFD Down logged by FRR); restored: BGP Established again after {:.1} s",
        removed.saturating_duration_since(cut_at).as_secs_f64() * 1e3,
        reestablished.as_secs_f64()
    );
}

#[test]
fn bfd_removes_a_dead_nodes_path_from_the_router_fib_within_detection_time() {
    let lab = Lab::start(LabOptions {
        nodes: 2,
        ..LabOptions::default()
    })
    .expect("lab up (run testbed/lab deps first)");
    lab.kubectl(&["create", "namespace", CONFIG_NS]).unwrap();
    lab.kubectl(&["create", "namespace", APP_NS]).unwrap();
    kubectl_apply(&lab, &configmap(&lab, true));
    let ferrolb = Ferrolb::start(&lab, Identities::admin(&lab), "bfd-speaker");
    kubectl_apply(&lab, SERVICE);
    let mut vip = String::new();
    lab.wait_until(Duration::from_secs(30), "the Service's address", || {
        vip = lab.kubectl(&[
            "-n",
            APP_NS,
            "get",
            "service",
            "web",
            "-o",
            "jsonpath={.status.loadBalancer.ingress[0].ip}",
        ])?;
        Ok(!vip.is_empty())
    })
    .unwrap();
    let monitor = RouteMonitor::start(&lab);

    bfd_only_failure(&lab, &monitor, &vip, 2, &ferrolb);

    let with_bfd = link_cut_trials(&lab, &monitor, &vip, bfd_trials(), true, &ferrolb);

    // Without BFD: the same speakers, the peer without a bfd-profile (the session restarts without BFD).
    kubectl_apply(&lab, &configmap(&lab, false));
    lab.wait_until(Duration::from_secs(30), "speakers without BFD", || {
        Ok((1..=2).all(|i| speaker_bfd_up(&lab, i).is_none()))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", ferrolb.logs(&lab)));
    let without_bfd = link_cut_trials(&lab, &monitor, &vip, HOLD_TRIALS, false, &ferrolb);

    println!(
        "link cut (nft drops all of node-N's LAN traffic) → the router's kernel FIB loses its path:"
    );
    println!("{}", summary("BFD 100 ms x 3", &with_bfd));
    println!("{}", summary("no BFD (hold 9 s, ka 3 s)", &without_bfd));
    drop(monitor);
    ferrolb.stop();
    lab.down().unwrap();
}

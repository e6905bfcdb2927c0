//! Highly available API servers over BGP (issue 18) in the lab: three extra kube-apiservers, one per node
//! namespace, on the lab's etcd (`testbed/lab node-apiserver`, `--shutdown-delay-duration 5s`), and
//! `ferrolb control-plane-vip` next to each, announcing the VIP to the lab's FRR router (iBGP, `maximum-paths
//! ibgp 64`). A client in the client namespace sends 10 requests/s to `https://VIP:6443/version` (a new TLS
//! connection each, checked against the lab CA) and every failure is counted against the fault that was going on.
//!
//! The client asks for `/version`, not `/readyz`: an API server that is shutting down answers `/readyz` with 500
//! on purpose (that is what withdraws it) while it goes on serving requests, and those requests are what must not
//! fail.
//!
//! One scenario, one lab (`--ipv6`), about 5 minutes. Each setup goes through the same faults (see [`faults`] for
//! the composite ones):
//! - `ecmp` (BFD 100 ms × 3 toward the router), announcing an IPv4 and an IPv6 address: all three nodes are next
//!   hops for both; SIGKILL of one API server (the listen probe withdraws at once, IPv6 too); a rolling restart of
//!   the three API servers (SIGTERM, shutdown delay; the first one is also the "graceful restart" row); SIGKILL of
//!   one `control-plane-vip` process (then it is started again); a link cut of node-3 (its port on the router's
//!   bridge) with 30 watches open.
//! - `active-backup` with priorities 250/200/100 (keepalived's range, 1 to 255): node-1's path alone is best (lowest
//!   MED) and in the FIB; a rolling restart; a link cut of node-3, a backup, with watches; SIGKILL of node-1's API
//!   server moves the address to node-2.
//! - the setup this replaces, keepalived + HAProxy (see [`baseline`]), on the same API servers: SIGKILL of an API
//!   server, a rolling restart, the link cut with watches, SIGKILL of the VRRP master's keepalived and HAProxy.
//!
//! The assertions are the paths, next hops and MEDs on the router and that the address answers after each fault.
//! Failure counts, times and broken watches are measured and printed as tables (`cargo test --test
//! control_plane_vip -- --nocapture`), not asserted. Needs root, FRR, keepalived, HAProxy and the control plane
//! (`testbed/lab deps`); fails loudly without them.

#[path = "control_plane_vip/baseline.rs"]
mod baseline;
#[path = "control_plane_vip/clients.rs"]
mod clients;
#[path = "control_plane_vip/faults.rs"]
mod faults;
mod speaker_common;

use clients::{Client, Ticker};
use faults::WatchRow;
use ferrolb_testbed::{Lab, LabOptions, NodeProcess, lab_script};
use speaker_common::{bgp_paths, fib, path_peers};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The control-plane VIP: in 198.18.0.0/15 and on no lab link (the node LAN is 198.18.0.0/24, the client link
/// 198.18.1.0/30).
const VIP: &str = "198.18.2.100";
/// The IPv6 address announced with it (ecmp), on no lab link either (the node LAN is 2001:db8:0:1::/64, the
/// client's 2001:db8:0:2::/64).
const VIP6: &str = "2001:db8:0:3::100";
const SIGKILL: i32 = 9;
const SIGTERM: i32 = 15;
/// Health check interval (s) and fall; the API servers' shutdown delay (s) exceeds interval × fall.
const INTERVAL: u64 = 1;
const FALL: u64 = 3;

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

fn node_addr(i: usize) -> String {
    format!("198.18.0.{}", 10 + i)
}

fn addrs(nodes: &[usize]) -> BTreeSet<String> {
    nodes.iter().map(|&i| node_addr(i)).collect()
}

/// One row of the table.
struct Row {
    fault: &'static str,
    mode: &'static str,
    sent: usize,
    failed: usize,
    /// From the fault to the start of the last failed request (0 without failures).
    recovery: f64,
    /// From the fault to the router's FIB reaching its new next hops, when they change.
    reroute: Option<f64>,
}

/// Counts the client's requests started in `[from, to)`.
fn row(
    client: &Client,
    fault: &'static str,
    mode: &'static str,
    from: f64,
    to: f64,
    reroute: Option<f64>,
) -> Row {
    let window: Vec<(f64, bool)> = client
        .results()
        .into_iter()
        .filter(|(t, _)| *t >= from && *t < to)
        .collect();
    let failed: Vec<f64> = window.iter().filter(|r| !r.1).map(|r| r.0).collect();
    let recovery = failed.iter().fold(0.0f64, |m, t| m.max(t - from));
    Row {
        fault,
        mode,
        sent: window.len(),
        failed: failed.len(),
        recovery,
        reroute,
    }
}

/// `testbed/lab node-apiserver NODE --vip VIP`: (re)starts node NODE's API server, waits for /readyz; its pid.
fn start_apiserver(lab: &Lab, node: usize) -> i32 {
    let out = Command::new(lab_script())
        .args(["--lab", lab.name(), "node-apiserver", &node.to_string()])
        .args(["--vip", &format!("{VIP},{VIP6},{}", baseline::VRRP_VIP)])
        .args(["--shutdown-delay", "5"])
        .output()
        .expect("run testbed/lab node-apiserver");
    assert!(
        out.status.success(),
        "node-apiserver {node}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("node-apiserver prints the pid")
}

/// Sends `sig` (e.g. "KILL") to `pid`, a process `testbed/lab` started and recorded in this test's lab.
fn signal(pid: i32, sig: &str) {
    let _ = Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .status();
}

fn running(pid: i32) -> bool {
    Command::new("kill")
        .args(["-0".to_owned(), pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn config(lab: &Lab, node: usize, mode: &str) -> PathBuf {
    let priority = match mode {
        "active-backup" => format!("priority: {}\n", [250, 200, 100][node - 1]),
        _ => String::new(),
    };
    // ecmp announces both families (the IPv6 route over the IPv4 session, MP-BGP).
    let addresses = match mode {
        "ecmp" => format!("{VIP}, {VIP6}"),
        _ => VIP.to_owned(),
    };
    let text = format!(
        "addresses: [{addresses}]
mode: {mode}
{priority}interface: flb-cp-vip
health-check:
  url: https://127.0.0.1:6443/readyz
  ca-file: {ca}
  interval: {INTERVAL}s
  timeout: 1s
  rise: 2
  fall: {FALL}
drain-time: 2s
metrics-addr: 127.0.0.1:7473
bfd-profiles:
- name: lab
  receive-interval: 100
  transmit-interval: 100
  detect-multiplier: 3
peers:
- peer-address: 198.18.0.1
  peer-asn: 65559
  my-asn: 65559
  password: foo
  bfd-profile: lab
",
        ca = lab.dir().join("pki").join("ca.crt").display()
    );
    let path = lab.dir().join(format!("cpvip-{mode}-{node}.yaml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn start_vip(lab: &Lab, node: usize, mode: &str) -> NodeProcess {
    let cfg = config(lab, node, mode);
    let cfg = cfg.to_str().unwrap();
    lab.spawn_in_node(
        node,
        &format!("cpvip-{node}"),
        &[
            "env",
            "RUST_LOG=info",
            env!("CARGO_BIN_EXE_ferrolb"),
            "control-plane-vip",
            "--config",
            cfg,
        ],
    )
    .expect("start ferrolb control-plane-vip")
}

fn logs(lab: &Lab) -> String {
    (1..=3)
        .map(|i| {
            let log = lab.dir().join("logs").join(format!("cpvip-{i}.log"));
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            format!(
                "--- cpvip-{i}\n{}\n",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            )
        })
        .collect()
}

/// Waits until the router has a path for the VIP from exactly `peers` and its FIB exactly `hops`; the time it took.
fn wait_routes(lab: &Lab, peers: &[usize], hops: &[usize], what: &str) -> f64 {
    let t0 = Instant::now();
    let (peers, hops) = (addrs(peers), addrs(hops));
    lab.wait_until(Duration::from_secs(40), what, || {
        Ok(path_peers(lab, VIP) == peers && fib(lab, VIP) == hops)
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}\nBGP paths: {:?}\nFIB: {:?}\n{}",
            path_peers(lab, VIP),
            fib(lab, VIP),
            logs(lab)
        )
    });
    t0.elapsed().as_secs_f64()
}

/// Waits until the router has an IPv6 path for [`VIP6`] from exactly `peers` (over their IPv4 sessions) and as many
/// next hops in its FIB.
fn wait_v6(lab: &Lab, peers: &[usize], what: &str) {
    let want = addrs(peers);
    lab.wait_until(Duration::from_secs(40), what, || {
        Ok(path_peers(lab, VIP6) == want && fib(lab, VIP6).len() == peers.len())
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}\nBGP paths: {:?}\nFIB: {:?}\n{}",
            path_peers(lab, VIP6),
            fib(lab, VIP6),
            logs(lab)
        )
    });
}

/// `https://host:port/version` answers (over TLS, checked against the lab CA) in the client namespace, within 15 s.
fn assert_answers(lab: &Lab, ca: &Path, host: &str, port: u16) {
    let url = format!("https://{host}:{port}/version");
    let ca = ca.to_str().unwrap();
    lab.wait_until(Duration::from_secs(15), &format!("{url} to answer"), || {
        let out = lab.exec_in_client(&["curl", "-sf", "--max-time", "3", "--cacert", ca, &url])?;
        Ok(String::from_utf8_lossy(&out.stdout).contains("gitVersion"))
    })
    .unwrap_or_else(|e| panic!("{e}"));
}

/// Sets node `node`'s port on the router's LAN bridge `up` or `down` (a link cut; the node sees no carrier).
fn set_link(lab: &Lab, node: usize, state: &str) {
    lab.exec_in_router(&["ip", "link", "set", &format!("n{node}"), state])
        .unwrap();
}

/// Waits `secs`, so the client's window covers the time after the change.
fn settle(secs: u64) {
    std::thread::sleep(Duration::from_secs(secs));
}

/// Waits until the router has exactly `peers` / `hops` for the VIP (see [`wait_routes`]), lets the client run 2 s
/// more, and checks that the VIP answers; the time until the routes changed.
fn rerouted(lab: &Lab, ca: &Path, peers: &[usize], hops: &[usize], what: &str) -> f64 {
    let took = wait_routes(lab, peers, hops, what);
    settle(2);
    assert_answers(lab, ca, VIP, 6443);
    took
}

/// keepalived + HAProxy on the same API servers, the same faults (see [`baseline`]).
fn baseline_scenario(
    lab: &Lab,
    apiservers: &mut [i32],
    rows: &mut Vec<Row>,
    watch_rows: &mut Vec<WatchRow>,
) {
    const MODE: &str = "keepalived + HAProxy";
    let ca = lab.dir().join("pki").join("ca.crt");
    let (vip, port) = (baseline::VRRP_VIP, baseline::PORT);
    let mut haproxy: Vec<NodeProcess> = (1..=3).map(|i| baseline::start_haproxy(lab, i)).collect();
    let mut keepalived: Vec<NodeProcess> = (1..=3)
        .map(|i| baseline::start_keepalived(lab, i))
        .collect();
    let wait_holders = |want: &[usize], what: &str| {
        let t0 = Instant::now();
        lab.wait_until(Duration::from_secs(30), what, || {
            Ok(baseline::holders(lab) == want)
        })
        .unwrap_or_else(|e| panic!("{e}: held by {:?}", baseline::holders(lab)));
        t0.elapsed().as_secs_f64()
    };
    wait_holders(&[1], "VRRP: node-1 (priority 250) master");
    assert_answers(lab, &ca, vip, port);
    let client = Client::start(lab, vip, port, "baseline");
    settle(2);

    // SIGKILL of node-3's API server: HAProxy's check takes it out after inter 2 s × fall 3.
    let t = now();
    signal(apiservers[2], "KILL");
    settle(9);
    assert_answers(lab, &ca, vip, port);
    rows.push(row(&client, "SIGKILL API server", MODE, t, now(), None));
    apiservers[2] = start_apiserver(lab, 3);
    settle(5);

    // Rolling restart: HAProxy's check (inter 2 s, rise 2) takes each API server back in within 5 s.
    faults::rolling_restart(lab, apiservers, &client, MODE, rows, &|_| None, &|_| {
        settle(5);
        assert_answers(lab, &ca, vip, port);
        None
    });

    // Link cut of node-3 (a backup): HAProxy's check on node-1 takes it out; node-3 turns VRRP master on its own
    // until the link returns.
    faults::link_cut_with_watches(
        lab,
        vip,
        port,
        &client,
        MODE,
        rows,
        watch_rows,
        &|_| {
            settle(3);
            assert_answers(lab, &ca, vip, port);
            None
        },
        &|_| {
            wait_holders(
                &[1],
                "VRRP: node-1 alone master after node-3's link returns",
            );
            assert_answers(lab, &ca, vip, port);
            None
        },
    );

    // SIGKILL of node-1's keepalived (both processes) and HAProxy: node-2 takes the address; then both start
    // again and node-1 takes it back (preemption).
    let t = now();
    let vrrp_child = std::fs::read_to_string(baseline::vrrp_pid_file(lab, 1)).unwrap_or_default();
    // The VRRP child gets SIGTERM when its parent dies (and then leaves gracefully): stop it first, so both die
    // by SIGKILL.
    let vrrp_child: i32 = vrrp_child
        .trim()
        .parse()
        .expect("keepalived's VRRP child pid file");
    signal(vrrp_child, "STOP");
    keepalived[0].signal(SIGKILL);
    signal(vrrp_child, "KILL");
    haproxy[0].signal(SIGKILL);
    let t0 = Instant::now();
    lab.wait_until(Duration::from_secs(30), "VRRP: node-2 master", || {
        Ok(baseline::holds_vip(lab, 2))
    })
    .unwrap_or_else(|e| panic!("{e}: held by {:?}", baseline::holders(lab)));
    let takeover = t0.elapsed().as_secs_f64();
    println!(
        "VRRP address after SIGKILL of node-1's keepalived: held by {:?}",
        baseline::holders(lab)
    );
    settle(2);
    haproxy[0] = baseline::start_haproxy(lab, 1);
    keepalived[0] = baseline::start_keepalived(lab, 1);
    wait_holders(&[1], "VRRP: node-1 master again");
    settle(2);
    assert_answers(lab, &ca, vip, port);
    rows.push(row(
        &client,
        "SIGKILL VIP process (then restart)",
        MODE,
        t,
        now(),
        Some(takeover),
    ));
    drop(client);
}

/// ECMP: every healthy node is a next hop. SIGKILL of an API server, a rolling restart, SIGKILL of a VIP
/// process, a link cut with watches.
fn ecmp_scenario(
    lab: &Lab,
    apiservers: &mut [i32],
    rows: &mut Vec<Row>,
    watch_rows: &mut Vec<WatchRow>,
) -> Vec<NodeProcess> {
    const MODE: &str = "ecmp";
    let ca = lab.dir().join("pki").join("ca.crt");
    let mut vips: Vec<NodeProcess> = (1..=3).map(|i| start_vip(lab, i, MODE)).collect();
    wait_routes(lab, &[1, 2, 3], &[1, 2, 3], "ecmp: three next hops");
    assert_answers(lab, &ca, VIP, 6443);
    wait_v6(
        lab,
        &[1, 2, 3],
        "ecmp: the IPv6 address from all three nodes",
    );
    assert_answers(lab, &ca, &format!("[{VIP6}]"), 6443);
    let client = Client::start(lab, VIP, 6443, "cpvip");
    settle(2);
    let others = |node: usize| -> Vec<usize> { (1..=3).filter(|&i| i != node).collect() };
    let all = [1, 2, 3];

    // SIGKILL of node-3's API server: the listen probe sees its port closed and withdraws at once.
    let t = now();
    signal(apiservers[2], "KILL");
    let reroute = rerouted(lab, &ca, &[1, 2], &[1, 2], "ecmp: node-3 withdrawn");
    rows.push(row(
        &client,
        "SIGKILL API server",
        MODE,
        t,
        now(),
        Some(reroute),
    ));
    apiservers[2] = start_apiserver(lab, 3);
    rerouted(lab, &ca, &all, &all, "ecmp: node-3 back");

    // Rolling restart: /readyz fails at once on SIGTERM, each API server serves on for the shutdown delay.
    faults::rolling_restart(
        lab,
        apiservers,
        &client,
        MODE,
        rows,
        &|node| {
            let rest = others(node);
            Some(wait_routes(lab, &rest, &rest, "ecmp: withdrawn on SIGTERM"))
        },
        &|_| Some(rerouted(lab, &ca, &all, &all, "ecmp: back after restart")),
    );

    // SIGKILL of node-1's control-plane-vip, then it is started again.
    let t = now();
    // The kernel closes the dead process's TCP session, so the router drops node-1's path at once; the address
    // stays on node-1 (nobody removes it) and its API server serves on.
    vips[0].signal(SIGKILL);
    let reroute = wait_routes(
        lab,
        &[2, 3],
        &[2, 3],
        "ecmp: node-1 withdrawn with its VIP process",
    );
    settle(2);
    vips[0] = start_vip(lab, 1, MODE);
    rerouted(
        lab,
        &ca,
        &all,
        &all,
        "ecmp: node-1 back after its VIP process restarted",
    );
    rows.push(row(
        &client,
        "SIGKILL VIP process (then restart)",
        MODE,
        t,
        now(),
        Some(reroute),
    ));

    // Link cut of node-3 (its port on the router's bridge): BFD (100 ms × 3) takes its path out.
    faults::link_cut_with_watches(
        lab,
        VIP,
        6443,
        &client,
        MODE,
        rows,
        watch_rows,
        &|_| {
            Some(rerouted(
                lab,
                &ca,
                &[1, 2],
                &[1, 2],
                "ecmp: node-3 withdrawn on link cut (BFD)",
            ))
        },
        &|_| {
            Some(rerouted(
                lab,
                &ca,
                &all,
                &all,
                "ecmp: node-3 back after its link returns",
            ))
        },
    );
    vips
}

/// Active-backup with priorities 250/200/100: node-1's path alone is best (lowest MED) and in the FIB. A
/// rolling restart, a link cut of a backup with watches, SIGKILL of the active node's API server.
fn active_backup_scenario(
    lab: &Lab,
    apiservers: &mut [i32],
    rows: &mut Vec<Row>,
    watch_rows: &mut Vec<WatchRow>,
) {
    const MODE: &str = "active-backup";
    let ca = lab.dir().join("pki").join("ca.crt");
    let _vips: Vec<NodeProcess> = (1..=3).map(|i| start_vip(lab, i, MODE)).collect();
    let all = [1, 2, 3];
    wait_routes(lab, &all, &[1], "active-backup: node-1 alone in the FIB");
    let meds: Vec<(String, Option<u64>, bool)> = bgp_paths(lab, VIP)
        .iter()
        .map(|p| {
            (
                p["peer"]["peerId"].as_str().unwrap_or_default().to_owned(),
                p["metric"].as_u64(),
                p["bestpath"]["overall"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    println!("active-backup paths (peer, MED, best): {meds:?}");
    let best: Vec<&str> = meds.iter().filter(|m| m.2).map(|m| m.0.as_str()).collect();
    assert_eq!(
        best,
        [node_addr(1).as_str()],
        "node-1 (priority 250) is the best path"
    );
    let med = |i: usize| meds.iter().find(|m| m.0 == node_addr(i)).and_then(|m| m.1);
    assert!(
        med(1) < med(2) && med(2) < med(3),
        "MED falls as priority rises: {meds:?}"
    );
    assert_answers(lab, &ca, VIP, 6443);
    let client = Client::start(lab, VIP, 6443, "cpvip-ab");
    settle(2);
    // The best of the nodes other than `node` (they rank 1, 2, 3).
    let others = |node: usize| -> Vec<usize> { (1..=3).filter(|&i| i != node).collect() };

    // Rolling restart: while node-1 restarts, node-2 carries everything; node-1 takes it back after `rise`.
    faults::rolling_restart(
        lab,
        apiservers,
        &client,
        MODE,
        rows,
        &|node| {
            let rest = others(node);
            Some(wait_routes(
                lab,
                &rest,
                &rest[..1],
                "active-backup: withdrawn on SIGTERM",
            ))
        },
        &|_| {
            Some(rerouted(
                lab,
                &ca,
                &all,
                &[1],
                "active-backup: back after restart",
            ))
        },
    );

    // Link cut of node-3, a backup: nothing moves.
    faults::link_cut_with_watches(
        lab,
        VIP,
        6443,
        &client,
        MODE,
        rows,
        watch_rows,
        &|_| {
            Some(rerouted(
                lab,
                &ca,
                &[1, 2],
                &[1],
                "active-backup: node-3 (backup) withdrawn on link cut",
            ))
        },
        &|_| Some(rerouted(lab, &ca, &all, &[1], "active-backup: node-3 back")),
    );

    // SIGKILL of node-1's API server: node-2 takes over.
    let t = now();
    signal(apiservers[0], "KILL");
    let reroute = rerouted(lab, &ca, &[2, 3], &[2], "active-backup: node-2 takes over");
    rows.push(row(
        &client,
        "SIGKILL API server",
        MODE,
        t,
        now(),
        Some(reroute),
    ));
    drop(client);
    apiservers[0] = start_apiserver(lab, 1);
}

#[test]
fn control_plane_vip_ecmp_and_active_backup() {
    let t_start = Instant::now();
    let lab = Lab::start(LabOptions {
        ipv6: true,
        ..LabOptions::default()
    })
    .expect("start the lab");
    // Hash on L4 in the router, so the client's connections spread over the ECMP next hops.
    for family in ["ipv4", "ipv6"] {
        lab.exec_in_router(&[
            "sysctl",
            "-qw",
            &format!("net.{family}.fib_multipath_hash_policy=1"),
        ])
        .unwrap();
    }
    // One after the other: `testbed/lab` signs each certificate with the lab CA (one serial file).
    let mut apiservers: Vec<i32> = (1..=3).map(|i| start_apiserver(&lab, i)).collect();
    let ticker = Ticker::start(&lab);
    let (mut rows, mut watch_rows) = (Vec::new(), Vec::new());

    let mut vips = ecmp_scenario(&lab, &mut apiservers, &mut rows, &mut watch_rows);
    // SIGTERM withdraws, then the next mode announces with MEDs.
    for v in &vips {
        v.signal(SIGTERM);
    }
    lab.wait_until(
        Duration::from_secs(20),
        "ecmp VIP processes to exit",
        || Ok(vips.iter_mut().all(|v| !v.is_running())),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", logs(&lab)));
    wait_routes(
        &lab,
        &[],
        &[],
        "VIP withdrawn after SIGTERM of every VIP process",
    );
    drop(vips);
    active_backup_scenario(&lab, &mut apiservers, &mut rows, &mut watch_rows);
    baseline_scenario(&lab, &mut apiservers, &mut rows, &mut watch_rows);
    drop(ticker);

    println!();
    println!(
        "| fault | mode | requests | failed | recovery (s) | route / VRRP address moved after (s) |"
    );
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        let reroute = r
            .reroute
            .map(|s| format!("{s:.1}"))
            .unwrap_or_else(|| "-".into());
        println!(
            "| {} | {} | {} | {} | {:.1} | {} |",
            r.fault, r.mode, r.sent, r.failed, r.recovery, reroute
        );
    }
    println!();
    println!(
        "| setup | event | watches open | broken, served by node-3 | broken, served by other nodes | left half-open on the servers |"
    );
    println!("|---|---|---|---|---|---|");
    for w in &watch_rows {
        let half_open = w.half_open.map(|n| n.to_string()).unwrap_or_default();
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            w.mode, w.event, w.open, w.on_node, w.elsewhere, half_open
        );
    }
    println!("total runtime {:.0} s", t_start.elapsed().as_secs_f64());
    // Active-backup: a backup leaving or returning moves nothing, so no watch breaks.
    for w in watch_rows.iter().filter(|w| w.mode == "active-backup") {
        assert_eq!(
            (w.on_node, w.elsewhere),
            (0, 0),
            "active-backup, {}: no watch may break",
            w.event
        );
    }
    for r in &rows {
        assert!(
            r.sent > 0,
            "the client sent no request during '{}'",
            r.fault
        );
    }
    lab.down().unwrap();
}

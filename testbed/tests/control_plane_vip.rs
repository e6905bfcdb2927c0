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
//! One scenario, one lab (about 140 s). `ecmp` (BFD 100 ms × 3 toward the router): all three nodes are next hops;
//! SIGKILL of one API server (its path leaves after interval × fall); graceful restart of another (SIGTERM,
//! shutdown delay); SIGKILL of one `control-plane-vip` process (then it is started again); a link cut (the node's
//! port on the router's bridge). `active-backup` with priorities 250/200/100 (the file's range is keepalived's, 1
//! to 255): node-1's path alone is best (lowest MED) and in the FIB; SIGKILL of node-1's API server moves the VIP
//! to node-2. Then the setup this replaces, keepalived + HAProxy (see [`baseline`]), on the same API servers with
//! the same faults. The assertions are the paths, next hops and that the VIP answers after each fault; failure
//! counts and times are printed as a table (`cargo test --test control_plane_vip -- --nocapture`), not asserted.
//! Not covered yet: the rolling restart of all three API servers and broken watches. Needs root, FRR, keepalived,
//! HAProxy and the control plane (`testbed/lab deps`); fails loudly without them.

#[path = "control_plane_vip/baseline.rs"]
mod baseline;
mod speaker_common;

use ferrolb_testbed::{Lab, LabOptions, NodeProcess, lab_script};
use speaker_common::{bgp_paths, fib, path_peers};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The control-plane VIP: in 198.18.0.0/15 and on no lab link (the node LAN is 198.18.0.0/24, the client link
/// 198.18.1.0/30).
const VIP: &str = "198.18.2.100";
const SIGKILL: i32 = 9;
const SIGTERM: i32 = 15;
/// Health check interval (s) and fall; the API servers' shutdown delay (s) exceeds interval × fall.
const INTERVAL: u64 = 1;
const FALL: u64 = 3;

/// The client: one request every 100 ms, each on its own asyncio task with a 2 s budget; one line per request,
/// `<start unix time> ok|<error>`, flushed as it completes, until the file `stop` exists.
const CLIENT: &str = r#"
import asyncio, os, ssl, sys, time
vip, port, ca, stop = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=ca)
async def request():
    reader, writer = await asyncio.open_connection(vip, port, ssl=ctx, server_hostname=vip)
    try:
        writer.write(b"GET /version HTTP/1.1\r\nHost: " + vip.encode() + b"\r\nConnection: close\r\n\r\n")
        await writer.drain()
        return await reader.read()
    finally:
        writer.close()
async def one():
    started = time.time()
    try:
        data = await asyncio.wait_for(request(), 2)
        status = data.split(b"\r\n", 1)[0]
        res = "ok" if b" 200 " in status else "http:" + status.decode(errors="replace").replace(" ", "_")
    except asyncio.TimeoutError:
        res = "timeout"
    except (OSError, ssl.SSLError) as e:
        res = type(e).__name__
    print(f"{started:.3f} {res}", flush=True)
async def main():
    nxt = time.monotonic()
    tasks = set()
    while not os.path.exists(stop):
        t = asyncio.ensure_future(one())
        tasks.add(t)
        t.add_done_callback(tasks.discard)
        nxt += 0.1
        await asyncio.sleep(max(0, nxt - time.monotonic()))
    if tasks:
        await asyncio.wait(tasks)
asyncio.run(main())
"#;

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

/// The client loop in the client namespace; its pid is recorded so `lab down` stops it too.
struct Client {
    child: Child,
    out: PathBuf,
    stop: PathBuf,
}

impl Client {
    /// Requests to `https://host:port/version`; `tag` names its files.
    fn start(lab: &Lab, host: &str, port: u16, tag: &str) -> Client {
        let out = lab.dir().join("logs").join(format!("{tag}-client.out"));
        let stop = lab.dir().join(format!("{tag}-client.stop"));
        let script = lab.dir().join("cpvip-client.py");
        std::fs::write(&script, CLIENT).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &lab.client_netns().unwrap(), "python3"])
            .arg(&script)
            .arg(host)
            .arg(port.to_string())
            .arg(lab.dir().join("pki").join("ca.crt"))
            .arg(&stop)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the client loop");
        std::fs::write(
            lab.dir().join("pids").join(format!("{tag}-client")),
            child.id().to_string(),
        )
        .unwrap();
        Client { child, out, stop }
    }

    /// (start time, ok) of every finished request.
    fn results(&self) -> Vec<(f64, bool)> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let (t, r) = l.split_once(' ')?;
                Some((t.parse().ok()?, r == "ok"))
            })
            .collect()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.stop, "");
        std::thread::sleep(Duration::from_millis(2500));
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
        .args(["--vip", &format!("{VIP},{}", baseline::VRRP_VIP)])
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
    let text = format!(
        "addresses: [{VIP}]
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
fn baseline_scenario(lab: &Lab, apiservers: &mut [i32], rows: &mut Vec<Row>) {
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

    // Graceful restart of node-2's API server.
    let t = now();
    signal(apiservers[1], "TERM");
    lab.wait_until(
        Duration::from_secs(30),
        "node-2's API server to exit",
        || Ok(!running(apiservers[1])),
    )
    .unwrap();
    apiservers[1] = start_apiserver(lab, 2);
    settle(5);
    assert_answers(lab, &ca, vip, port);
    rows.push(row(
        &client,
        "graceful API server restart",
        MODE,
        t,
        now(),
        None,
    ));

    // Link cut of node-3 (a backup): HAProxy's check on node-1 takes it out; node-3 turns VRRP master on its own
    // until the link returns.
    let t = now();
    set_link(lab, 3, "down");
    settle(8);
    assert_answers(lab, &ca, vip, port);
    set_link(lab, 3, "up");
    wait_holders(
        &[1],
        "VRRP: node-1 alone master after node-3's link returns",
    );
    settle(3);
    assert_answers(lab, &ca, vip, port);
    rows.push(row(
        &client,
        "link cut (then restored)",
        MODE,
        t,
        now(),
        None,
    ));

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

#[test]
fn control_plane_vip_ecmp_and_active_backup() {
    let t_start = Instant::now();
    let lab = Lab::start(LabOptions::default()).expect("start the lab");
    let ca = lab.dir().join("pki").join("ca.crt");
    // Hash on L4 in the router, so the client's connections spread over the ECMP next hops.
    lab.exec_in_router(&["sysctl", "-qw", "net.ipv4.fib_multipath_hash_policy=1"])
        .unwrap();
    // One after the other: `testbed/lab` signs each certificate with the lab CA (one serial file).
    let mut apiservers: Vec<i32> = (1..=3).map(|i| start_apiserver(&lab, i)).collect();
    let mut rows = Vec::new();

    // ---- ecmp: every healthy node is a next hop.
    let mut vips: Vec<NodeProcess> = (1..=3).map(|i| start_vip(&lab, i, "ecmp")).collect();
    wait_routes(&lab, &[1, 2, 3], &[1, 2, 3], "ecmp: three next hops");
    assert_answers(&lab, &ca, VIP, 6443);
    let client = Client::start(&lab, VIP, 6443, "cpvip");
    settle(2);

    // SIGKILL of node-3's API server: its path leaves once the check failed `fall` times.
    let t = now();
    signal(apiservers[2], "KILL");
    let reroute = rerouted(&lab, &ca, &[1, 2], &[1, 2], "ecmp: node-3 withdrawn");
    rows.push(row(
        &client,
        "SIGKILL API server",
        "ecmp",
        t,
        now(),
        Some(reroute),
    ));
    apiservers[2] = start_apiserver(&lab, 3);
    rerouted(&lab, &ca, &[1, 2, 3], &[1, 2, 3], "ecmp: node-3 back");

    // Graceful restart of node-2's API server: /readyz fails at once, it serves on for the shutdown delay.
    let t = now();
    signal(apiservers[1], "TERM");
    let reroute = wait_routes(&lab, &[1, 3], &[1, 3], "ecmp: node-2 withdrawn on SIGTERM");
    lab.wait_until(
        Duration::from_secs(30),
        "node-2's API server to exit",
        || Ok(!running(apiservers[1])),
    )
    .unwrap();
    apiservers[1] = start_apiserver(&lab, 2);
    rerouted(
        &lab,
        &ca,
        &[1, 2, 3],
        &[1, 2, 3],
        "ecmp: node-2 back after restart",
    );
    rows.push(row(
        &client,
        "graceful API server restart",
        "ecmp",
        t,
        now(),
        Some(reroute),
    ));

    // SIGKILL of node-1's control-plane-vip, then it is started again.
    let t = now();
    // The kernel closes the dead process's TCP session, so the router drops node-1's path at once; the address
    // stays on node-1 (nobody removes it) and its API server serves on.
    vips[0].signal(SIGKILL);
    let reroute = wait_routes(
        &lab,
        &[2, 3],
        &[2, 3],
        "ecmp: node-1 withdrawn with its VIP process",
    );
    settle(2);
    vips[0] = start_vip(&lab, 1, "ecmp");
    rerouted(
        &lab,
        &ca,
        &[1, 2, 3],
        &[1, 2, 3],
        "ecmp: node-1 back after its VIP process restarted",
    );
    rows.push(row(
        &client,
        "SIGKILL VIP process (then restart)",
        "ecmp",
        t,
        now(),
        Some(reroute),
    ));

    // Link cut of node-3 (its port on the router's bridge): BFD (100 ms × 3) takes its path out.
    let t = now();
    set_link(&lab, 3, "down");
    let reroute = rerouted(
        &lab,
        &ca,
        &[1, 2],
        &[1, 2],
        "ecmp: node-3 withdrawn on link cut (BFD)",
    );
    set_link(&lab, 3, "up");
    rerouted(
        &lab,
        &ca,
        &[1, 2, 3],
        &[1, 2, 3],
        "ecmp: node-3 back after its link returns",
    );
    rows.push(row(
        &client,
        "link cut (then restored)",
        "ecmp",
        t,
        now(),
        Some(reroute),
    ));

    // ---- active-backup, priorities 250/200/100: SIGTERM withdraws, then the new mode announces with MEDs.
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
    let _vips: Vec<NodeProcess> = (1..=3)
        .map(|i| start_vip(&lab, i, "active-backup"))
        .collect();
    wait_routes(
        &lab,
        &[1, 2, 3],
        &[1],
        "active-backup: node-1 alone in the FIB",
    );
    let meds: Vec<(String, Option<u64>, bool)> = bgp_paths(&lab, VIP)
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
    assert_answers(&lab, &ca, VIP, 6443);
    settle(1);

    // SIGKILL of node-1's API server: node-2 takes over.
    let t = now();
    signal(apiservers[0], "KILL");
    let reroute = rerouted(&lab, &ca, &[2, 3], &[2], "active-backup: node-2 takes over");
    rows.push(row(
        &client,
        "SIGKILL API server",
        "active-backup",
        t,
        now(),
        Some(reroute),
    ));
    drop(client);
    drop(_vips);
    apiservers[0] = start_apiserver(&lab, 1);
    baseline_scenario(&lab, &mut apiservers, &mut rows);

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
    println!("total runtime {:.0} s", t_start.elapsed().as_secs_f64());
    for r in &rows {
        assert!(
            r.sent > 0,
            "the client sent no request during '{}'",
            r.fault
        );
    }
    lab.down().unwrap();
}

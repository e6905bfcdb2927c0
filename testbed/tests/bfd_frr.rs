//! Interop of `ferrolb-bfd` with FRR's bfdd, in two network namespaces joined by a veth pair.
//!
//! Needs root and the Debian `frr` package (/usr/lib/frr/bfdd, zebra, vtysh). Fails, never skips,
//! when they are missing. Everything it creates (namespaces `flbbfd-<pid>-a/b`, the FRR processes
//! it spawned, /etc/frr/<name>, /var/run/frr/<name>) is removed by name or pid on drop, also when
//! the test panics.

use std::fs;
use std::net::{IpAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferrolb_bfd::{Diagnostic, Endpoint, Profile, SessionHandle, State};

const OUR_V4: &str = "198.18.200.1";
const FRR_V4: &str = "198.18.200.2";
const OUR_V6: &str = "2001:db8:bfd::1";
const FRR_V6: &str = "2001:db8:bfd::2";

fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} {args:?}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The namespaces, FRR daemons and directories of one test, removed on drop.
struct Lab {
    ours: String,
    frr: String,
    daemons: Vec<Child>,
    dirs: Vec<PathBuf>,
}

impl Lab {
    /// `tag` keeps the namespaces of tests running at the same time apart.
    fn new(tag: &str) -> Lab {
        for binary in ["/usr/lib/frr/bfdd", "/usr/lib/frr/zebra", "/usr/bin/vtysh"] {
            assert!(
                Path::new(binary).exists(),
                "{binary} is missing: install Debian's frr package (apt-get install frr)"
            );
        }
        // SAFETY: geteuid has no preconditions.
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "this test needs root (network namespaces)"
        );
        let pid = std::process::id();
        let lab = Lab {
            ours: format!("flbbfd-{pid}-{tag}-a"),
            frr: format!("flbbfd-{pid}-{tag}-b"),
            daemons: Vec::new(),
            dirs: Vec::new(),
        };
        let (a, b) = (lab.ours.clone(), lab.frr.clone());
        run("ip", &["netns", "add", &a]);
        run("ip", &["netns", "add", &b]);
        run(
            "ip",
            &[
                "-n", &a, "link", "add", "veth0", "type", "veth", "peer", "name", "veth0", "netns",
                &b,
            ],
        );
        for (ns, v4, v6) in [(&a, OUR_V4, OUR_V6), (&b, FRR_V4, FRR_V6)] {
            run(
                "ip",
                &["-n", ns, "addr", "add", &format!("{v4}/24"), "dev", "veth0"],
            );
            run(
                "ip",
                &[
                    "-n",
                    ns,
                    "addr",
                    "add",
                    &format!("{v6}/64"),
                    "dev",
                    "veth0",
                    "nodad",
                ],
            );
            run("ip", &["-n", ns, "link", "set", "lo", "up"]);
            run("ip", &["-n", ns, "link", "set", "veth0", "up"]);
        }
        lab
    }

    fn conf_dir(&self) -> PathBuf {
        PathBuf::from(format!("/etc/frr/{}", self.frr))
    }

    fn run_dir(&self) -> PathBuf {
        PathBuf::from(format!("/var/run/frr/{}", self.frr))
    }

    /// Starts zebra and bfdd in the FRR namespace with `config`.
    fn start_frr(&mut self, config: &str) {
        let (conf, rundir) = (self.conf_dir(), self.run_dir());
        for dir in [&conf, &rundir] {
            fs::create_dir_all(dir).unwrap();
            self.dirs.push(dir.clone());
        }
        fs::write(conf.join("frr.conf"), config).unwrap();
        fs::write(conf.join("vtysh.conf"), "").unwrap();
        for dir in [&conf, &rundir] {
            run("chown", &["-R", "frr:frr", dir.to_str().unwrap()]);
        }
        let conf_file = conf.join("frr.conf");
        let zserv = rundir.join("zserv.api");
        for daemon in ["zebra", "bfdd"] {
            let child = Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &self.frr,
                    &format!("/usr/lib/frr/{daemon}"),
                    "-N",
                    &self.frr,
                ])
                .arg("-f")
                .arg(&conf_file)
                .arg("-i")
                .arg(rundir.join(format!("{daemon}.pid")))
                .arg("-z")
                .arg(&zserv)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {daemon}: {e}"));
            self.daemons.push(child);
            if daemon == "zebra" {
                wait_until(Duration::from_secs(10), "zebra's socket", || zserv.exists());
            }
        }
        wait_until(Duration::from_secs(10), "bfdd to answer vtysh", || {
            self.try_vtysh("show bfd peers json").is_some()
        });
    }

    fn try_vtysh(&self, command: &str) -> Option<String> {
        let output = Command::new("vtysh")
            .args(["-N", &self.frr, "-c", command])
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// bfdd's view of the session to `peer`.
    fn frr_peer(&self, peer: &str) -> serde_json::Value {
        self.try_frr_peer(peer)
            .unwrap_or_else(|| panic!("FRR has no BFD peer {peer}"))
    }

    fn try_frr_peer(&self, peer: &str) -> Option<serde_json::Value> {
        let json = self.try_vtysh("show bfd peers json")?;
        let peers: Vec<serde_json::Value> = serde_json::from_str(&json).ok()?;
        peers.into_iter().find(|p| p["peer"] == peer)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.daemons {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in [&self.ours, &self.frr] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        for dir in &self.dirs {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

fn wait_until(limit: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Moves the calling thread into namespace `name`.
fn enter_netns(name: &str) {
    let file = fs::File::open(format!("/var/run/netns/{name}")).expect("namespace file");
    // SAFETY: a valid namespace fd; setns only affects the calling thread.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns {name}: {}", std::io::Error::last_os_error());
}

async fn wait_state(session: &SessionHandle, state: State, limit: Duration) -> Duration {
    let start = Instant::now();
    let mut watch = session.watch();
    let reached = tokio::time::timeout(limit, watch.wait_for(|s| s.state == state)).await;
    assert!(
        matches!(reached, Ok(Ok(_))),
        "session did not reach {state} within {limit:?}: {:?}",
        session.status()
    );
    start.elapsed()
}

fn ms(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// bfdd's configuration: one single-hop peer per (ours, FRR's) address pair, each with `options`.
fn frr_config(peers: &[(&str, &str)], options: &str) -> String {
    let mut config = String::from("log stdout debugging\nbfd\n");
    for (ours, frr) in peers {
        config.push_str(&format!(
            " peer {ours} local-address {frr}\n{options}  no shutdown\n !\n"
        ));
    }
    config + "!\n"
}

/// The peer options of the fast profile on FRR's side.
const FRR_FAST: &str = "  detect-multiplier 3\n  receive-interval 100\n  transmit-interval 100\n";

/// 100 ms / 100 ms / × 3 on our side.
fn fast_profile() -> Profile {
    Profile {
        receive_interval_ms: 100,
        transmit_interval_ms: 100,
        detect_multiplier: 3,
        ..Profile::default()
    }
}

/// Starts a lab (namespaces tagged `tag`) with FRR's bfdd running `frr_config`, and runs `scenario` on a
/// tokio runtime in a thread that entered our namespace: sockets belong to the namespace of the thread that
/// creates them, and session tasks run on the runtime's workers, so blocking vtysh calls in the scenario
/// cannot stall them. The lab is removed afterwards, also when the scenario panics.
fn run_in_lab(tag: &str, frr_config: &str, scenario: impl AsyncFnOnce(&Lab) + Send + 'static) {
    let mut lab = Lab::new(tag);
    lab.start_frr(frr_config);
    let thread = std::thread::spawn(move || {
        enter_netns(&lab.ours);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(scenario(&lab));
        lab
    });
    match thread.join() {
        Ok(lab) => drop(lab),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// A link cut in progress: FRR's side of the veth pair set down at `at`, and the task that waits for our
/// session to notice.
struct LinkCut {
    at: Instant,
    ours: tokio::task::JoinHandle<Duration>,
}

impl LinkCut {
    /// Sets FRR's side of the link down.
    fn start(lab: &Lab, session: &SessionHandle) -> LinkCut {
        let mut watch = session.watch();
        watch.mark_unchanged();
        let at = Instant::now();
        run("ip", &["-n", &lab.frr, "link", "set", "veth0", "down"]);
        let ours = tokio::spawn(async move {
            let _ = watch.wait_for(|s| s.state == State::Down).await;
            at.elapsed()
        });
        LinkCut { at, ours }
    }

    /// Waits for `session` to go Down with diag 1 (Control Detection Time Expired); returns how long after
    /// the cut it did.
    async fn detected(self, session: &SessionHandle) -> Duration {
        let took = tokio::time::timeout(Duration::from_secs(5), self.ours)
            .await
            .unwrap_or_else(|_| panic!("the link cut was not detected: {:?}", session.status()))
            .unwrap();
        assert_eq!(
            session.status().diagnostic,
            Diagnostic::ControlDetectionTimeExpired
        );
        took
    }
}

#[test]
fn sessions_come_up_with_frr_bfdd_and_follow_poll_final_and_gtsm() {
    let config = frr_config(&[(OUR_V4, FRR_V4), (OUR_V6, FRR_V6)], FRR_FAST);
    run_in_lab("interop", &config, async |lab| scenario(lab).await);
}

async fn scenario(lab: &Lab) {
    let profile = fast_profile();
    let v4 = Endpoint::bind(OUR_V4.parse().unwrap()).expect("bind v4");
    let v6 = Endpoint::bind(OUR_V6.parse().unwrap()).expect("bind v6");
    let s4 = v4.add_session(FRR_V4.parse().unwrap(), &profile).unwrap();
    let s6 = v6.add_session(FRR_V6.parse().unwrap(), &profile).unwrap();
    // Log every status change seen, to explain a failure.
    for session in [&s4, &s6] {
        let mut watch = session.watch();
        tokio::spawn(async move {
            let start = Instant::now();
            while watch.changed().await.is_ok() {
                let s = *watch.borrow();
                eprintln!(
                    "{:?} {} {} {} remote {}",
                    start.elapsed(),
                    s.peer,
                    s.state,
                    s.diagnostic,
                    s.remote_state
                );
            }
        });
    }

    for (session, peer, frr_peer) in [(&s4, FRR_V4, OUR_V4), (&s6, FRR_V6, OUR_V6)] {
        let took = wait_state(session, State::Up, Duration::from_secs(10)).await;
        eprintln!("{peer}: Up after {took:?}");
        // Let both Poll Sequences leaving slow start finish.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let status = session.status();
        assert_eq!(status.state, State::Up);
        // Down → Up (FRR already in Init) or Down → Init → Up; never through Down again.
        assert!(
            matches!(status.transitions, 1 | 2),
            "no flap on the way Up: {status:?}"
        );
        assert_eq!(
            status.detection_time,
            Some(Duration::from_millis(300)),
            "3 × max(100, 100)"
        );
        assert_eq!(status.transmit_interval, Duration::from_millis(100));
        let frr = lab.frr_peer(frr_peer);
        eprintln!("FRR peer {frr_peer}: {frr}");
        assert_eq!(frr["status"], "up", "{frr}");
        assert_eq!(
            frr["remote-id"].as_u64(),
            Some(u64::from(status.local_discriminator))
        );
        assert_eq!(
            frr["id"].as_u64(),
            Some(u64::from(status.remote_discriminator))
        );
        assert_eq!(ms(&frr["remote-receive-interval"]), 100);
        assert_eq!(ms(&frr["remote-transmit-interval"]), 100);
        assert_eq!(ms(&frr["remote-detect-multiplier"]), 3);
    }

    // Timer change while Up: a Poll Sequence FRR must answer with Final and adopt.
    let slower = Profile {
        receive_interval_ms: 250,
        transmit_interval_ms: 200,
        detect_multiplier: 4,
        ..Profile::default()
    };
    let transitions_before = s4.status().transitions;
    s4.change_profile(&slower).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let status = s4.status();
    assert_eq!(status.state, State::Up);
    assert_eq!(
        status.transitions, transitions_before,
        "the timer change did not flap the session"
    );
    assert_eq!(
        status.transmit_interval,
        Duration::from_millis(200),
        "new TX in force after Final"
    );
    assert_eq!(
        status.detection_time,
        Some(Duration::from_millis(750)),
        "FRR's 3 × max(250, 100)"
    );
    let frr = lab.frr_peer(OUR_V4);
    eprintln!("FRR peer after poll: {frr}");
    assert_eq!(frr["status"], "up");
    assert_eq!(ms(&frr["remote-receive-interval"]), 250);
    assert_eq!(ms(&frr["remote-transmit-interval"]), 200);
    assert_eq!(ms(&frr["remote-detect-multiplier"]), 4);

    // GTSM: a well-formed packet from the link with TTL 64 is dropped before any session sees it.
    let mut forged = ferrolb_bfd::ControlPacket::decode(&[
        0x20, 0x40, 3, 24, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0x0f, 0x42, 0x40, 0, 0x0f, 0x42, 0x40, 0, 0,
        0, 0,
    ])
    .unwrap();
    forged.state = State::AdminDown;
    let sender_ns = lab.frr.clone();
    std::thread::spawn(move || {
        enter_netns(&sender_ns);
        let socket = UdpSocket::bind((FRR_V4.parse::<IpAddr>().unwrap(), 50_000)).unwrap();
        socket.set_ttl(64).unwrap();
        socket.send_to(&forged.encode(), (OUR_V4, 3784)).unwrap();
    })
    .join()
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        v4.discards().get("ttl_below_255"),
        Some(&1),
        "{:?}",
        v4.discards()
    );
    assert_eq!(s4.status().state, State::Up);

    // Our graceful shutdown: FRR hears AdminDown and goes down at once.
    let stopped = Instant::now();
    s6.shutdown().await;
    wait_until(Duration::from_secs(2), "FRR to see our AdminDown", || {
        lab.try_frr_peer(OUR_V6)
            .is_some_and(|p| p["status"] == "down")
    });
    let frr = lab.frr_peer(OUR_V6);
    eprintln!(
        "FRR peer after our shutdown ({:?}): {frr}",
        stopped.elapsed()
    );
    assert_eq!(frr["remote-diagnostic"], "administratively down", "{frr}");
    assert_eq!(frr["diagnostic"], "neighbor signaled session down", "{frr}");

    // FRR shuts its side down administratively: we see AdminDown and go Down with diag 3.
    let peer_v4 = "peer 198.18.200.1 local-address 198.18.200.2";
    run_vtysh_config(lab, &["bfd", peer_v4, "shutdown"]);
    wait_state(&s4, State::Down, Duration::from_secs(5)).await;
    assert_eq!(
        s4.status().diagnostic,
        Diagnostic::NeighborSignaledSessionDown
    );
    // ... and back: the session comes Up again by itself.
    run_vtysh_config(lab, &["bfd", peer_v4, "no shutdown"]);
    wait_state(&s4, State::Up, Duration::from_secs(10)).await;

    // Cut the link: detection expires and the session goes Down with diag 1.
    let detection = s4.status().detection_time;
    let took = LinkCut::start(lab, &s4).detected(&s4).await;
    eprintln!("link cut → Down after {took:?} (detection time {detection:?})");
}

fn run_vtysh_config(lab: &Lab, lines: &[&str]) {
    let mut args = vec!["-N", lab.frr.as_str(), "-c", "configure terminal"];
    for line in lines {
        args.push("-c");
        args.push(line);
    }
    run("vtysh", &args);
}

/// With 100 ms × 3 on both sides, cuts the link 20 times and records how long each side takes to
/// declare the session Down. Prints the figures; asserts only that both sides detect every cut
/// (timings are reported, not asserted).
#[test]
fn link_cut_is_detected_by_both_sides_every_time() {
    let config = frr_config(&[(OUR_V4, FRR_V4)], FRR_FAST);
    run_in_lab("cut", &config, async |lab| link_cut_trials(lab, 20).await);
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let index = (sorted.len() * p).div_ceil(100).saturating_sub(1);
    sorted[index.min(sorted.len() - 1)]
}

async fn link_cut_trials(lab: &Lab, trials: usize) {
    let profile = fast_profile();
    let endpoint = Endpoint::bind(OUR_V4.parse().unwrap()).expect("bind v4");
    let session = endpoint
        .add_session(FRR_V4.parse().unwrap(), &profile)
        .unwrap();
    let (mut ours_down, mut frr_down) = (Vec::new(), Vec::new());
    for trial in 0..trials {
        wait_state(&session, State::Up, Duration::from_secs(10)).await;
        // Both Poll Sequences out of slow start done: 100 ms in force on both sides.
        let settled = Instant::now();
        loop {
            let status = session.status();
            let frr = lab.try_frr_peer(OUR_V4);
            let frr_settled = frr.as_ref().is_some_and(|p| {
                p["status"] == "up"
                    && p["remote-transmit-interval"] == 100
                    && p["transmit-interval"] == 100
            });
            if status.detection_time == Some(Duration::from_millis(300)) && frr_settled {
                break;
            }
            assert!(
                settled.elapsed() < Duration::from_secs(10),
                "trial {trial}: timers never settled: {status:?} {frr:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let cut = LinkCut::start(lab, &session);
        // bfdd's view, polled through vtysh (a few ms per call): an upper bound.
        let frr_took = loop {
            if lab
                .try_frr_peer(OUR_V4)
                .is_some_and(|p| p["status"] == "down")
            {
                break cut.at.elapsed();
            }
            assert!(
                cut.at.elapsed() < Duration::from_secs(5),
                "trial {trial}: FRR never saw the cut"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let ours_took = cut.detected(&session).await;
        ours_down.push(ours_took);
        frr_down.push(frr_took);
        run("ip", &["-n", &lab.frr, "link", "set", "veth0", "up"]);
    }
    ours_down.sort();
    frr_down.sort();
    for (side, sorted) in [
        ("ferrolb", &ours_down),
        ("FRR bfdd (vtysh-polled)", &frr_down),
    ] {
        eprintln!(
            "link cut → Down, 100 ms × 3, {} trials, {side}: min {:?} p50 {:?} p99 {:?} max {:?}",
            sorted.len(),
            sorted[0],
            percentile(sorted, 50),
            percentile(sorted, 99),
            sorted[sorted.len() - 1]
        );
    }
}

/// Passive on both sides: nobody speaks first and the session stays Down. Once FRR turns active,
/// our passive session answers and both come Up.
#[test]
fn passive_session_waits_for_the_remote_to_speak() {
    let config = frr_config(&[(OUR_V4, FRR_V4)], "  passive-mode\n");
    run_in_lab("passive", &config, async |lab| {
        let passive = Profile {
            passive_mode: true,
            ..Profile::default()
        };
        let endpoint = Endpoint::bind(OUR_V4.parse().unwrap()).expect("bind v4");
        let session = endpoint
            .add_session(FRR_V4.parse().unwrap(), &passive)
            .unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        let status = session.status();
        assert_eq!(status.state, State::Down);
        assert_eq!(status.remote_discriminator, 0, "FRR sent nothing");
        let frr = lab.frr_peer(OUR_V4);
        assert_eq!(frr["status"], "down", "{frr}");
        assert_eq!(frr["remote-id"], 0, "we sent nothing: {frr}");
        run_vtysh_config(
            lab,
            &[
                "bfd",
                "peer 198.18.200.1 local-address 198.18.200.2",
                "no passive-mode",
            ],
        );
        wait_state(&session, State::Up, Duration::from_secs(10)).await;
        wait_until(Duration::from_secs(5), "FRR up", || {
            lab.try_frr_peer(OUR_V4)
                .is_some_and(|p| p["status"] == "up")
        });
    });
}

//! Shared pieces of the BGP interop tests: a router/node namespace pair joined by a veth,
//! FRR and GoBGP instances in the router namespace, and `ferrolb bgp` processes in the node
//! namespace. Every guard kills exactly the processes it started (by recorded pid) and deletes
//! exactly the namespaces and directories it created, on drop, even when a test panics.
//!
//! These tests need root, `ip`, FRR (`/usr/lib/frr/bgpd`, `vtysh`) and GoBGP (`gobgpd`,
//! `gobgp`); a missing one fails the test with a message saying what to install.

#![allow(dead_code)] // each test binary uses a different subset

pub mod frr;
pub mod gobgp;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The router end of the link.
pub const RTR_V4: &str = "198.18.0.1";
/// The node end of the link.
pub const NODE_V4: &str = "198.18.0.2";
/// The router end of the link, IPv6.
pub const RTR_V6: &str = "2001:db8::1";
/// The node end of the link, IPv6.
pub const NODE_V6: &str = "2001:db8::2";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Runs a command, panicking with its output when it fails.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (is the package installed?)"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Panics unless `path` exists: a missing dependency is a test failure, never a skip.
pub fn require(path: &str, package: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: install the Debian package `{package}` (apt-get install -y {package})"
    );
    assert!(
        unsafe_is_root(),
        "the BGP interop tests need root (network namespaces)"
    );
}

fn unsafe_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
                .unwrap_or(false)
        })
        .unwrap_or(false)
}

/// Polls `probe` every 100 ms until it returns `Some`, or panics after `timeout` with `what`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Two namespaces, `<name>-rtr` and `<name>-node`, joined by a veth with
/// 198.18.0.1/30 + 2001:db8::1/64 on the router side and .2 / ::2 on the node side.
pub struct Link {
    /// The unique base name (`flbt-<pid>-<n>`).
    pub name: String,
    /// The router namespace.
    pub rtr: String,
    /// The node namespace.
    pub node: String,
    /// The router-side interface name.
    pub rtr_if: String,
    /// The node-side interface name.
    pub node_if: String,
    /// A scratch directory for configs and logs, removed on drop.
    pub dir: PathBuf,
}

impl Link {
    /// Creates the namespaces and the link.
    pub fn new() -> Self {
        require("/usr/sbin/ip", "iproute2");
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let name = format!("flbt-{pid}-{n}");
        let dir = std::env::temp_dir().join(&name);
        let link = Link {
            rtr: format!("{name}-rtr"),
            node: format!("{name}-node"),
            // Interface names are at most 15 bytes and briefly live in the root namespace.
            rtr_if: format!("fl{}x{n}r", pid % 1_000_000),
            node_if: format!("fl{}x{n}n", pid % 1_000_000),
            dir,
            name,
        };
        let node_if = link.node_if.clone();
        std::fs::create_dir_all(&link.dir).unwrap();
        // From here on, Drop cleans up whatever part was created.
        run(Command::new("ip").args(["netns", "add", &link.rtr]));
        run(Command::new("ip").args(["netns", "add", &link.node]));
        run(Command::new("ip").args([
            "link",
            "add",
            &link.rtr_if,
            "netns",
            &link.rtr,
            "type",
            "veth",
            "peer",
            "name",
            &node_if,
            "netns",
            &link.node,
        ]));
        for (ns, dev, v4, v6) in [
            (&link.rtr, &link.rtr_if, RTR_V4, RTR_V6),
            (&link.node, &node_if, NODE_V4, NODE_V6),
        ] {
            run(Command::new("ip").args([
                "-n",
                ns,
                "addr",
                "add",
                &format!("{v4}/30"),
                "dev",
                dev,
            ]));
            run(Command::new("ip").args([
                "-n",
                ns,
                "addr",
                "add",
                &format!("{v6}/64"),
                "dev",
                dev,
                "nodad",
            ]));
            run(Command::new("ip").args(["-n", ns, "link", "set", dev, "up"]));
            run(Command::new("ip").args(["-n", ns, "link", "set", "lo", "up"]));
        }
        link
    }

    /// Makes the router drop every packet it sends to the node (a blackhole route), or undoes it.
    pub fn silence_router(&self, silent: bool) {
        for dst in [format!("{NODE_V4}/32"), format!("{NODE_V6}/128")] {
            let verb = if silent { "add" } else { "del" };
            run(Command::new("ip").args(["-n", &self.rtr, "route", verb, "blackhole", &dst]));
        }
    }

    /// The router namespace's kernel routes of `family` ("-4" or "-6") installed by BGP.
    pub fn rtr_bgp_routes(&self, family: &str) -> Vec<String> {
        let out = run(
            Command::new("ip").args([family, "-n", &self.rtr, "route", "show", "proto", "bgp"])
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        for ns in [&self.node, &self.rtr] {
            // Kill whatever still runs in the namespaces we created, then delete them.
            if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-KILL", pid]).status();
                }
            }
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        if std::env::var_os("FLBT_KEEP_LOGS").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A `ferrolb bgp announce` process in the node namespace.
pub struct Announce {
    child: Option<Child>,
    /// Where its stderr (the log) goes.
    pub log: PathBuf,
    ns: String,
    args: Vec<String>,
}

/// The `ferrolb` binary under test.
pub fn ferrolb() -> &'static str {
    env!("CARGO_BIN_EXE_ferrolb")
}

impl Announce {
    /// Starts `ferrolb bgp announce ARGS` in `link`'s node namespace, logging to `<dir>/<tag>.log`.
    pub fn start(link: &Link, tag: &str, args: &[&str]) -> Self {
        let mut a = Announce {
            child: None,
            log: link.dir.join(format!("{tag}.log")),
            ns: link.node.clone(),
            args: args.iter().map(|s| s.to_string()).collect(),
        };
        a.spawn();
        a
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns, ferrolb(), "bgp", "announce"])
            .args(&self.args)
            .env("RUST_LOG", "info,ferrolb_bgp=debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn ferrolb");
        self.child = Some(child);
    }

    /// The process id (`ip netns exec` execs the binary, so this is ferrolb's pid).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("running")
    }

    /// Sends `signal` (e.g. "TERM", "HUP") to the process.
    pub fn signal(&self, signal: &str) {
        run(Command::new("kill").args([&format!("-{signal}"), &self.pid().to_string()]));
    }

    /// SIGKILLs the process and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the same command again (after `kill` or exit).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Waits for the process to exit on its own and returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let child = self.child.as_mut().expect("running");
        let status = wait_for(timeout, "ferrolb to exit", || child.try_wait().unwrap());
        self.child = None;
        status.code()
    }

    /// The log so far, without terminal colour codes.
    pub fn log_text(&self) -> String {
        strip_ansi(&std::fs::read_to_string(&self.log).unwrap_or_default())
    }
}

impl Drop for Announce {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- {} ---\n{}", self.log.display(), self.log_text());
        }
        self.kill();
    }
}

/// Removes ANSI escape sequences (`ESC [ ... letter`).
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Runs `ferrolb bgp check ARGS` in the node namespace and returns (exit code, stdout, stderr).
pub fn check(link: &Link, args: &[&str]) -> (i32, String, String) {
    let out = Command::new("ip")
        .args(["netns", "exec", &link.node, ferrolb(), "bgp", "check"])
        .args(args)
        .output()
        .expect("run ferrolb bgp check");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The `i`-th test host address (see [`write_prefix_file`]).
pub fn test_host(i: u32) -> std::net::Ipv4Addr {
    let (a, b, c, d) = if i < 256 {
        (203, 0, 113, i)
    } else if i < 512 {
        (198, 51, 100, i - 256)
    } else {
        let j = i - 512;
        (198, 18, 128 + (j >> 8), j & 0xff)
    };
    std::net::Ipv4Addr::new(a, b, c as u8, d as u8)
}

/// Writes `count` /32 prefixes from 203.0.113.0/24 and 198.51.100.0/24 upward, one per line
/// (10,000 /32s need more than those two /24s, so larger counts continue into 198.18.128.0/17,
/// which is still inside the ranges this project may use).
pub fn write_prefix_file(path: &Path, count: u32) {
    let mut text = String::new();
    for i in 0..count {
        text.push_str(&format!("{}/32\n", test_host(i)));
    }
    std::fs::write(path, text).unwrap();
}

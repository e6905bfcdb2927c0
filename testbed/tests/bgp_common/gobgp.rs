//! A GoBGP daemon (`gobgpd`) in a router namespace.

use super::{Link, require, wait_for};
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

static NEXT_API_PORT: AtomicU16 = AtomicU16::new(0);

/// A running gobgpd; killed (by its recorded pid) on drop.
pub struct GoBgp {
    child: Child,
    /// The gRPC API port on the router namespace's 127.0.0.1.
    pub api_port: u16,
    ns: String,
}

impl GoBgp {
    /// Starts gobgpd in `link`'s router namespace with the TOML `config`.
    pub fn start(link: &Link, config: &str) -> Self {
        Self::start_in(link, &link.rtr, config)
    }

    /// Starts gobgpd in namespace `ns` (one of `link`'s) with the TOML `config`.
    pub fn start_in(link: &Link, ns: &str, config: &str) -> Self {
        require("/usr/bin/gobgpd", "gobgpd");
        require("/usr/bin/gobgp", "gobgpd");
        // The API listens inside the router namespace, so ports only need to differ per test
        // process; spread them by pid anyway.
        let api_port = 50051
            + (std::process::id() % 1000) as u16 * 10
            + NEXT_API_PORT.fetch_add(1, Ordering::SeqCst) % 10;
        let conf = link.dir.join(format!("gobgpd-{api_port}.toml"));
        std::fs::write(&conf, config).unwrap();
        let log = std::fs::File::create(link.dir.join(format!("gobgpd-{api_port}.log"))).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "gobgpd", "-f"])
            .arg(&conf)
            .args(["--api-hosts", &format!("127.0.0.1:{api_port}")])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn gobgpd");
        let g = GoBgp {
            child,
            api_port,
            ns: ns.to_owned(),
        };
        wait_for(Duration::from_secs(10), "gobgpd API", || {
            g.try_json(&["neighbor"])
        });
        g
    }

    /// Runs `gobgp -p PORT ARGS` in gobgpd's namespace, panicking if it fails.
    pub fn run(&self, args: &[&str]) {
        super::run(
            Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &self.ns,
                    "gobgp",
                    "-p",
                    &self.api_port.to_string(),
                ])
                .args(args),
        );
    }

    /// Runs `gobgp -p PORT ARGS -j` in gobgpd's namespace and parses the JSON.
    pub fn try_json(&self, args: &[&str]) -> Option<Value> {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns,
                "gobgp",
                "-p",
                &self.api_port.to_string(),
            ])
            .args(args)
            .arg("-j")
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// The session state of `peer` (e.g. "established"), or "" if unknown.
    pub fn peer_state(&self, peer: &str) -> String {
        self.try_json(&["neighbor", peer])
            .and_then(|v| {
                v.get("state")?.get("session_state").and_then(|s| {
                    s.as_i64()
                        .map(|n| n.to_string())
                        .or(s.as_str().map(str::to_owned))
                })
            })
            .unwrap_or_default()
    }

    /// The routes in the global RIB of `family` ("ipv4"/"ipv6"), as JSON (prefix → paths).
    pub fn rib(&self, family: &str) -> Value {
        self.try_json(&["global", "rib", "-a", family])
            .unwrap_or(Value::Null)
    }

    /// How many prefixes the global RIB of `family` holds.
    pub fn rib_count(&self, family: &str) -> usize {
        self.rib(family).as_object().map_or(0, |m| m.len())
    }
}

impl Drop for GoBgp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

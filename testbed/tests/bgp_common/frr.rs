//! An FRR (zebra + bgpd) instance in a router namespace, with its own pathspace (`-N`).

use super::{Link, require, run, wait_for};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// A running FRR instance; stopped (by recorded pid) and its directories removed on drop.
pub struct Frr {
    /// The pathspace name (`-N`), equal to the link's base name.
    pub name: String,
    ns: String,
    conf_dir: PathBuf,
    run_dir: PathBuf,
}

impl Frr {
    /// Starts zebra and bgpd in `link`'s router namespace with `bgp_config` (the text from
    /// `router bgp ...` on) appended to a `frr defaults datacenter` preamble.
    pub fn start(link: &Link, bgp_config: &str) -> Self {
        require("/usr/lib/frr/bgpd", "frr");
        require("/usr/bin/vtysh", "frr");
        let name = link.name.clone();
        let frr = Frr {
            conf_dir: PathBuf::from(format!("/etc/frr/{name}")),
            run_dir: PathBuf::from(format!("/var/run/frr/{name}")),
            ns: link.rtr.clone(),
            name,
        };
        std::fs::create_dir_all(&frr.conf_dir).unwrap();
        std::fs::create_dir_all(&frr.run_dir).unwrap();
        let conf = frr.conf_dir.join("frr.conf");
        std::fs::write(
            &conf,
            format!(
                "frr defaults datacenter\nhostname {}\nlog file {}/frr.log\n{bgp_config}\n",
                frr.name,
                frr.run_dir.display()
            ),
        )
        .unwrap();
        std::fs::write(frr.conf_dir.join("vtysh.conf"), "").unwrap();
        run(Command::new("chown")
            .args(["-R", "frr:frr"])
            .arg(&frr.conf_dir)
            .arg(&frr.run_dir));
        frr.start_daemon("zebra");
        frr.start_daemon("bgpd");
        wait_for(Duration::from_secs(10), "bgpd to answer vtysh", || {
            frr.try_vtysh_json("show bgp summary json")
        });
        frr
    }

    fn start_daemon(&self, daemon: &str) {
        run(Command::new("ip").args(["netns", "exec", &self.ns]).args([
            &format!("/usr/lib/frr/{daemon}"),
            "-N",
            &self.name,
            "-d",
            "-f",
            &self.conf_dir.join("frr.conf").to_string_lossy(),
        ]));
    }

    /// The pid of `daemon` from its pid file.
    pub fn pid(&self, daemon: &str) -> Option<u32> {
        std::fs::read_to_string(self.run_dir.join(format!("{daemon}.pid")))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    /// SIGKILLs bgpd (the routes it installed stay with zebra until it comes back or zebra
    /// sweeps them).
    pub fn kill_bgpd(&self) {
        if let Some(pid) = self.pid("bgpd") {
            run(Command::new("kill").args(["-KILL", &pid.to_string()]));
            wait_for(Duration::from_secs(5), "bgpd to die", || {
                (!std::path::Path::new(&format!("/proc/{pid}")).exists()).then_some(())
            });
            let _ = std::fs::remove_file(self.run_dir.join("bgpd.pid"));
        }
    }

    /// Starts bgpd again after [`Frr::kill_bgpd`].
    pub fn restart_bgpd(&self) {
        self.start_daemon("bgpd");
        wait_for(Duration::from_secs(10), "bgpd to answer vtysh", || {
            self.try_vtysh_json("show bgp summary json")
        });
    }

    /// Runs a vtysh command whose output is JSON; `None` if vtysh fails or the output is not JSON.
    pub fn try_vtysh_json(&self, cmd: &str) -> Option<Value> {
        let out = Command::new("vtysh")
            .args(["-N", &self.name, "-c", cmd])
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// Runs a vtysh command whose output is JSON, panicking if it fails.
    pub fn vtysh_json(&self, cmd: &str) -> Value {
        self.try_vtysh_json(cmd)
            .unwrap_or_else(|| panic!("vtysh -N {} -c '{cmd}' gave no JSON", self.name))
    }

    /// The peer's entry in `show bgp summary json` for `family` ("ipv4Unicast"/"ipv6Unicast").
    pub fn peer_summary(&self, family: &str, peer: &str) -> Option<Value> {
        let v = self.try_vtysh_json("show bgp summary json")?;
        v.get(family)?.get("peers")?.get(peer).cloned()
    }

    /// The peer's FSM state as FRR sees it (e.g. "Established"), or "" if unknown.
    pub fn peer_state(&self, peer: &str) -> String {
        let v = self.try_vtysh_json(&format!("show bgp neighbor {peer} json"));
        v.and_then(|v| v.get(peer)?.get("bgpState")?.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// Prefixes received from `peer` in `family`, as `pfxRcd` says.
    pub fn pfx_rcd(&self, family: &str, peer: &str) -> Option<u64> {
        self.peer_summary(family, peer)?.get("pfxRcd")?.as_u64()
    }

    /// Waits until `peer` is Established.
    pub fn wait_established(&self, peer: &str, timeout: Duration) {
        wait_for(timeout, &format!("{peer} Established on FRR"), || {
            (self.peer_state(peer) == "Established").then_some(())
        });
    }

    /// Waits until FRR holds exactly `count` prefixes from `peer` in `family`.
    pub fn wait_pfx(&self, family: &str, peer: &str, count: u64, timeout: Duration) {
        wait_for(
            timeout,
            &format!("{count} {family} prefixes from {peer}"),
            || (self.pfx_rcd(family, peer) == Some(count)).then_some(()),
        );
    }

    /// The JSON of one route (`show bgp ipv4|ipv6 unicast PREFIX json`).
    pub fn route(&self, afi: &str, prefix: &str) -> Value {
        self.vtysh_json(&format!("show bgp {afi} unicast {prefix} json"))
    }
}

impl Drop for Frr {
    fn drop(&mut self) {
        for daemon in ["bgpd", "zebra"] {
            if let Some(pid) = self.pid(daemon) {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
        if std::thread::panicking()
            && let Ok(log) = std::fs::read_to_string(self.run_dir.join("frr.log"))
        {
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- FRR {} log (last lines) ---", self.name);
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
        let _ = std::fs::remove_dir_all(&self.conf_dir);
        let _ = std::fs::remove_dir_all(&self.run_dir);
    }
}

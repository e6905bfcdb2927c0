//! The setup `control-plane-vip` replaces, on the same three API servers: HAProxy on every node (`frontend
//! apiserver` on `:18080`, TCP mode, `backend` round-robin over the three API servers with `check`, HAProxy's
//! defaults `inter 2s fall 3 rise 2`) and keepalived holding a VRRP address on the node LAN (`vrrp_script
//! chk_haproxy` every 2 s, `fall 3`, priorities 250/200/100, advertisements every second).

use ferrolb_testbed::{Lab, NodeProcess};
use std::path::PathBuf;

/// The VRRP address: on the node LAN (198.18.0.0/24), as VRRP needs.
pub const VRRP_VIP: &str = "198.18.0.100";
/// HAProxy's frontend port (the API server itself has 6443 on every node).
pub const PORT: u16 = 18080;

/// keepalived's priority on node `node` (1-based).
fn priority(node: usize) -> u32 {
    [250, 200, 100][node - 1]
}

fn haproxy_config() -> String {
    let servers: String = (1..=3)
        .map(|i| format!("  server node-{i} 198.18.0.{}:6443 check\n", 10 + i))
        .collect();
    format!(
        "global
  maxconn 4000
defaults
  mode tcp
  timeout connect 2s
  timeout client 30s
  timeout server 30s
frontend apiserver
  bind *:{PORT}
  default_backend apiserver
backend apiserver
  balance roundrobin
{servers}"
    )
}

/// HAProxy in node `node`; its pid is written to `haproxy-<node>.pid`, which `chk_haproxy` of that node checks
/// (the lab's nodes share one pid namespace, so `killall -0 haproxy` would see the other nodes' HAProxy).
pub fn start_haproxy(lab: &Lab, node: usize) -> NodeProcess {
    let cfg = lab.dir().join(format!("haproxy-{node}.cfg"));
    std::fs::write(&cfg, haproxy_config()).unwrap();
    let p = lab
        .spawn_in_node(
            node,
            &format!("haproxy-{node}"),
            &["haproxy", "-db", "-f", cfg.to_str().unwrap()],
        )
        .expect("start haproxy");
    std::fs::write(pid_file(lab, node), p.pid().to_string()).unwrap();
    p
}

fn pid_file(lab: &Lab, node: usize) -> PathBuf {
    lab.dir().join(format!("haproxy-{node}.pid"))
}

/// The pid file of node `node`'s keepalived VRRP child.
pub fn vrrp_pid_file(lab: &Lab, node: usize) -> PathBuf {
    lab.dir().join(format!("keepalived-vrrp-{node}.pid"))
}

/// keepalived (VRRP only) in node `node`.
pub fn start_keepalived(lab: &Lab, node: usize) -> NodeProcess {
    let check = lab.dir().join(format!("chk_haproxy-{node}.sh"));
    std::fs::write(
        &check,
        format!(
            "#!/bin/sh\nkill -0 \"$(cat {})\"\n",
            pid_file(lab, node).display()
        ),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .args(["755", check.to_str().unwrap()])
        .status()
        .unwrap();
    let cfg = lab.dir().join(format!("keepalived-{node}.conf"));
    std::fs::write(
        &cfg,
        format!(
            "global_defs {{
  router_id node-{node}
  enable_script_security
  script_user root
}}
vrrp_script chk_haproxy {{
  script \"{check}\"
  interval 2
  fall 3
  rise 2
}}
vrrp_instance VI_1 {{
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority {priority}
  advert_int 1
  authentication {{
    auth_type PASS
    auth_pass 42
  }}
  virtual_ipaddress {{
    {VRRP_VIP}/24
  }}
  track_script {{
    chk_haproxy
  }}
}}
",
            check = check.display(),
            priority = priority(node),
        ),
    )
    .unwrap();
    let dir = lab.dir();
    let pid = |what: &str| dir.join(format!("keepalived-{what}-{node}.pid"));
    lab.spawn_in_node(
        node,
        &format!("keepalived-{node}"),
        &[
            "keepalived",
            "--dont-fork",
            "--log-console",
            "--vrrp",
            "--use-file",
            cfg.to_str().unwrap(),
            "--pid",
            pid("main").to_str().unwrap(),
            "--vrrp_pid",
            vrrp_pid_file(lab, node).to_str().unwrap(),
            "--checkers_pid",
            pid("checkers").to_str().unwrap(),
        ],
    )
    .expect("start keepalived")
}

/// Whether node `node` holds the VRRP address.
pub fn holds_vip(lab: &Lab, node: usize) -> bool {
    lab.exec_in_node(node, &["ip", "-4", "-o", "addr", "show", "dev", "eth0"])
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(&format!(" {VRRP_VIP}/")))
        .unwrap_or(false)
}

/// The nodes holding the VRRP address.
pub fn holders(lab: &Lab) -> Vec<usize> {
    (1..=3).filter(|&i| holds_vip(lab, i)).collect()
}

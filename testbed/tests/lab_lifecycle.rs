//! The lab comes up from nothing and `down` leaves no namespace, process, mount, link or file behind, even
//! when processes crashed or were started behind the lab's back in its namespaces.
//! Needs root, FRR, GoBGP and the control plane (`testbed/lab deps`); fails loudly without them.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use ferrolb_testbed::{Lab, LabOptions};

fn netns_of(lab: &str) -> BTreeSet<String> {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(&format!("{lab}-")))
        .map(str::to_owned)
        .collect()
}

fn pids_in(ns: &str) -> Vec<i32> {
    let out = Command::new("ip")
        .args(["netns", "pids", ns])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

fn mounts_of(lab: &str) -> Vec<String> {
    std::fs::read_to_string("/proc/mounts")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&format!("/{lab}-")) || l.contains(&format!("/{lab}/")))
        .map(str::to_owned)
        .collect()
}

fn host_link_exists(lab: &str) -> bool {
    Path::new("/sys/class/net")
        .join(format!("{lab}-h"))
        .exists()
}

/// A process that exists and is not a zombie (this machine's pid 1 may not reap orphans).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

#[test]
fn lab_comes_up_from_nothing_and_down_leaves_nothing_behind() {
    let lab = Lab::start(LabOptions::default()).expect("lab up (run testbed/lab deps first)");
    let name = lab.name().to_owned();
    let dir = lab.dir().to_owned();

    // Up made exactly the promised namespaces, and the control plane answers.
    let expected: BTreeSet<String> = ["router", "client", "node-1", "node-2", "node-3"]
        .iter()
        .map(|s| format!("{name}-{s}"))
        .collect();
    assert_eq!(netns_of(&name), expected);
    assert_eq!(
        lab.kubectl(&["get", "--raw", "/readyz"]).unwrap().trim(),
        "ok"
    );
    assert!(host_link_exists(&name));
    assert!(Path::new(&format!("/etc/frr/{name}/frr.conf")).is_file());

    // Every recorded daemon runs inside the lab's namespaces.
    let recorded: BTreeSet<String> = std::fs::read_dir(dir.join("pids"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let want: BTreeSet<String> = [
        "bfdd",
        "bgpd",
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kwok",
        "responder-1",
        "responder-2",
        "responder-3",
        "zebra",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(recorded, want);
    let mut pids: Vec<i32> = expected.iter().flat_map(|ns| pids_in(ns)).collect();
    for daemon in &recorded {
        let pid: i32 = std::fs::read_to_string(dir.join("pids").join(daemon))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(
            pids.contains(&pid),
            "{daemon} (pid {pid}) is not in a lab namespace"
        );
    }

    // Simulate a messy run: a daemon crashed, and a process the lab never recorded runs in node-2.
    let zebra: i32 = std::fs::read_to_string(dir.join("pids/zebra"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    sigkill(zebra);
    let stray = Command::new("ip")
        .args(["netns", "exec", &format!("{name}-node-2"), "sleep", "600"])
        .spawn()
        .unwrap();
    pids.push(i32::try_from(stray.id()).unwrap());

    lab.down().expect("lab down");

    assert_eq!(netns_of(&name), BTreeSet::new(), "namespaces left behind");
    assert_eq!(mounts_of(&name), Vec::<String>::new(), "mounts left behind");
    assert!(!host_link_exists(&name), "host link left behind");
    assert!(!dir.exists(), "lab directory left behind");
    assert!(!Path::new(&format!("/etc/frr/{name}")).exists());
    assert!(!Path::new(&format!("/var/run/frr/{name}")).exists());
    // The stray is our child: reap it so its pid disappears, then no lab pid may remain.
    let mut stray = stray;
    let _ = stray.wait();
    let left: Vec<i32> = pids.into_iter().filter(|p| alive(*p)).collect();
    assert_eq!(left, Vec::<i32>::new(), "processes left behind");
}

/// SIGKILL (zebra's pid was checked above to live in this lab's router namespace).
fn sigkill(pid: i32) {
    let status = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// `up --data-path`: kube-proxy runs in the node namespace, the Pod agent gives a Pod its own namespace with an
/// HTTP server answering `POD NODE PEER`, and `down` removes the agent (a host process), the Pod's namespace
/// and everything else.
#[test]
fn data_path_lab_serves_a_pod_and_down_removes_the_agent_and_pod_namespaces() {
    let lab = Lab::start(LabOptions {
        nodes: 1,
        data_path: true,
        ..LabOptions::default()
    })
    .expect("lab up --data-path (run testbed/lab deps first)");
    let name = lab.name().to_owned();
    let dir = lab.dir().to_owned();
    assert!(dir.join("pids/kube-proxy-1").is_file());
    let agent: i32 = std::fs::read_to_string(dir.join("host-pids"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(agent), "the Pod agent (pid {agent}) is not running");

    lab.kubectl(&["run", "web", "--image=web", "--port=80"])
        .unwrap();
    let mut ip = String::new();
    lab.wait_until(
        std::time::Duration::from_secs(30),
        "the Pod's namespace",
        || {
            ip = lab.kubectl(&["get", "pod", "web", "-o", "jsonpath={.status.podIP}"])?;
            Ok(!ip.is_empty() && netns_of(&name).contains(&format!("{name}-pod-1")))
        },
    )
    .unwrap();
    assert!(
        ip.starts_with("198.19.1."),
        "Pod IP {ip} outside node-1's podCIDR"
    );
    let mut reply = String::new();
    lab.wait_until(
        std::time::Duration::from_secs(10),
        "the Pod's answer",
        || {
            let out = lab.exec_in_node(
                1,
                &["curl", "-sS", "--max-time", "2", &format!("http://{ip}/")],
            )?;
            reply = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            Ok(!reply.is_empty())
        },
    )
    .unwrap();
    assert_eq!(reply, "web node-1 169.254.1.1");

    lab.down().expect("lab down");
    assert_eq!(netns_of(&name), BTreeSet::new(), "namespaces left behind");
    assert!(!dir.exists(), "lab directory left behind");
    assert!(
        !alive(agent),
        "the Pod agent (pid {agent}) is still running"
    );
}

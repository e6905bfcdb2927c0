//! Unnumbered peering (`interface:` in the ConfigMap, RFC 8950) against the lab's real FRR router: each of two
//! nodes gets a point-to-point veth `fab0` to the router with no IPv4 address and only IPv6 link-local
//! addresses; the router runs `neighbor fabrN interface remote-as external` with `capability extended-nexthop`
//! and router advertisements on those interfaces. The speakers find the router from its advertisements, peer
//! over the link-local addresses, and announce the Service's /32 with their link-local next hop: the router's
//! kernel FIB holds the /32 via exactly the two nodes' link-local addresses, each on its own interface.
//!
//! Needs root and the lab (`testbed/lab deps`); fails loudly without them.

mod speaker_common;

use ferrolb_testbed::Lab;
use ferrolb_testbed::serde_json::{self, Value};
use speaker_common::*;
use std::collections::BTreeSet;
use std::process::Command;

const NS: &str = "unnumbered";
/// The nodes' end of each fabric link (the same name on every node, as on a leaf-spine fabric).
const NODE_IF: &str = "fab0";
/// Our AS (eBGP to the router's 65559).
const MY_ASN: u32 = 64711;

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The fabric links: router `fabrN` ↔ node-N `fab0`, deleted (by the router end) on drop.
struct Fabric {
    router_ns: String,
    router_ifs: Vec<String>,
}

impl Fabric {
    fn new(lab: &Lab, nodes: &[usize]) -> Fabric {
        let router_ns = lab.router_netns();
        let mut fabric = Fabric {
            router_ns: router_ns.clone(),
            router_ifs: Vec::new(),
        };
        let pid = std::process::id() % 1_000_000;
        for &n in nodes {
            let node_ns = lab.node_netns(n).unwrap();
            let (r, t) = (format!("fabr{n}"), format!("u{pid}x{n}"));
            // Created in the router namespace with a unique peer name, moved, then renamed in its node.
            ip(&[
                "-n", &router_ns, "link", "add", &r, "type", "veth", "peer", "name", &t, "netns",
                &node_ns,
            ]);
            fabric.router_ifs.push(r.clone());
            ip(&["-n", &node_ns, "link", "set", &t, "name", NODE_IF]);
            // No IPv4, and no addresses from router advertisements: only the link-local address.
            let sysctl = format!("net.ipv6.conf.{NODE_IF}.autoconf=0");
            let out = lab.exec_in_node(n, &["sysctl", "-qw", &sysctl]);
            out.expect("sysctl autoconf");
            ip(&["-n", &node_ns, "link", "set", NODE_IF, "up"]);
            ip(&["-n", &router_ns, "link", "set", &r, "up"]);
        }
        fabric
    }

    /// Node `n`'s link-local address on its fabric link.
    fn node_link_local(lab: &Lab, n: usize) -> String {
        let out = lab
            .exec_in_node(
                n,
                &[
                    "ip", "-6", "-j", "addr", "show", "dev", NODE_IF, "scope", "link",
                ],
            )
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v[0]["addr_info"][0]["local"]
            .as_str()
            .unwrap_or_else(|| panic!("no link-local address on node-{n} {NODE_IF}: {v}"))
            .to_owned()
    }
}

impl Drop for Fabric {
    fn drop(&mut self) {
        for r in &self.router_ifs {
            let _ = Command::new("ip")
                .args(["-n", &self.router_ns, "link", "del", r])
                .status();
        }
    }
}

/// The router's configuration for the fabric links: router advertisements every 3 s, and an unnumbered eBGP
/// neighbor with extended next hop on each.
fn configure_router(lab: &Lab, router_ifs: &[String]) {
    for r in router_ifs {
        let mut cmd = Command::new("vtysh");
        cmd.args(["-N", lab.name(), "-c", "configure terminal"]);
        for l in [
            format!("interface {r}"),
            "ipv6 nd ra-interval 3".into(),
            "no ipv6 nd suppress-ra".into(),
        ] {
            cmd.args(["-c", &l]);
        }
        let out = cmd.output().expect("run vtysh");
        assert!(out.status.success(), "{out:?}");
        router_config(
            lab,
            &[
                &format!("neighbor {r} interface remote-as external"),
                &format!("neighbor {r} capability extended-nexthop"),
                &format!("neighbor {r} timers connect 1"),
                "address-family ipv4 unicast",
                &format!("neighbor {r} activate"),
                "exit-address-family",
            ],
        );
    }
}

/// The router's link-local address on `interface`.
fn router_link_local(lab: &Lab, interface: &str) -> String {
    let out = lab
        .exec_in_router(&[
            "ip", "-6", "-j", "addr", "show", "dev", interface, "scope", "link",
        ])
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v[0]["addr_info"][0]["local"]
        .as_str()
        .unwrap_or_else(|| panic!("no link-local address on the router's {interface}: {v}"))
        .to_owned()
}

/// The (next hop, interface) pairs of `prefix` in the router's kernel FIB.
fn fib_via(lab: &Lab, prefix: &str) -> BTreeSet<(String, String)> {
    let Ok(out) = lab.exec_in_router(&["ip", "-4", "-j", "route", "show", prefix]) else {
        return BTreeSet::new();
    };
    let routes: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let mut via = BTreeSet::new();
    for r in routes.as_array().into_iter().flatten() {
        let hops = match r["nexthops"].as_array() {
            Some(hops) => hops.clone(),
            None => vec![r.clone()],
        };
        for h in hops {
            // An IPv4 route via an IPv6 next hop is `"via": {"family": "inet6", "host": ...}`.
            let gw = h["gateway"].as_str().or(h["via"]["host"].as_str());
            if let (Some(gw), Some(dev)) = (gw, h["dev"].as_str()) {
                via.insert((gw.to_owned(), dev.to_owned()));
            }
        }
    }
    via
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_installs_the_nodes_ipv4_routes_via_their_link_local_addresses() {
    let lab = Lab::shared().expect("lab up (run testbed/lab deps first)");
    let client = lab.kube_client().await.unwrap();
    lab.kubectl(&["create", "namespace", CONFIG_NS]).unwrap();
    lab.kubectl(&["create", "namespace", NS]).unwrap();
    let fabric = Fabric::new(lab, &[1, 2]);
    configure_router(lab, &fabric.router_ifs);
    kubectl_apply(
        lab,
        &configmap_of(&format!(
            "    peers:
    - interface: {NODE_IF}
      peer-asn: 65559
      my-asn: {MY_ASN}
      hold-time: 9s
    address-pools:
    - name: fabric
      protocol: bgp
      addresses:
      - 203.0.113.56-203.0.113.59
"
        )),
    );
    let log = lab.dir().join("logs").join("unnumbered-controller.log");
    let _controller = Controller::spawn(
        &["--config-namespace", CONFIG_NS],
        free_port(),
        "unnumbered-controller",
        &lab.kubeconfig_path(),
        &log,
    );
    let speakers: Vec<_> = [1, 2]
        .iter()
        .map(|&i| {
            let state = lab.dir().join(format!("unnumbered-state-{i}"));
            spawn_speaker(
                lab,
                i,
                &format!("unnumbered-{i}"),
                &lab.kubeconfig_path(),
                &state,
            )
        })
        .collect();

    let vip = manual_service(&client, NS).await;
    apply(&client, manual_slice(NS, true)).await;
    let prefix = format!("{vip}/32");

    let want: BTreeSet<(String, String)> = [1, 2]
        .iter()
        .map(|&n| (Fabric::node_link_local(lab, n), format!("fabr{n}")))
        .collect();
    let waited = std::time::Instant::now();
    lab.wait_until(
        std::time::Duration::from_secs(40),
        "the /32 via both nodes' link-local addresses",
        || Ok(fib_via(lab, &prefix) == want),
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e}\nFIB: {:?}\nwant: {want:?}\n{}\n{}",
            fib_via(lab, &prefix),
            lab.vtysh_text("show bgp summary").unwrap_or_default(),
            speakers
                .iter()
                .map(|s| s.log())
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    eprintln!(
        "FIB held {prefix} via {want:?} {:?} after the Service had its address",
        waited.elapsed()
    );

    // What the router's RIB says: the route from each fabric neighbor, with the node's link-local address as
    // its IPv6 next hop, and the neighbors negotiated extended next hop for IPv4 unicast.
    let route = lab.vtysh(&format!("show ip route {prefix} json")).unwrap();
    let hops: BTreeSet<(String, String, String)> = route[&prefix][0]["nexthops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["ip"].as_str().unwrap_or("?").to_owned(),
                h["afi"].as_str().unwrap_or("?").to_owned(),
                h["interfaceName"].as_str().unwrap_or("?").to_owned(),
            )
        })
        .collect();
    let want_rib: BTreeSet<(String, String, String)> = want
        .iter()
        .map(|(gw, dev)| (gw.clone(), "ipv6".to_owned(), dev.clone()))
        .collect();
    assert_eq!(hops, want_rib, "{route}");
    assert_eq!(route[&prefix][0]["protocol"], "bgp");
    for r in &fabric.router_ifs {
        let n = lab.vtysh(&format!("show bgp neighbor {r} json")).unwrap();
        assert_eq!(n[r]["bgpState"], "Established", "{n}");
        assert_eq!(n[r]["remoteAs"], MY_ASN);
        assert_eq!(
            n[r]["neighborCapabilities"]["extendedNexthop"], "advertisedAndReceived",
            "{n}"
        );
    }

    // The router's link-local address changes (as when a leaf is replaced), with the link staying up: node-1's
    // session times out (hold time 9 s) and its speaker finds the router again at the new address.
    let router_ns = lab.router_netns();
    let old_router = router_link_local(lab, "fabr1");
    ip(&[
        "-n",
        &router_ns,
        "addr",
        "del",
        &format!("{old_router}/64"),
        "dev",
        "fabr1",
    ]);
    ip(&[
        "-n",
        &router_ns,
        "addr",
        "add",
        "fe80::5eff:fe00:5301/64",
        "dev",
        "fabr1",
        "nodad",
    ]);
    let new_router = "fe80::5eff:fe00:5301";
    let replaced = std::time::Instant::now();
    let connections = || {
        let out = lab
            .exec_in_node(
                1,
                &["ss", "-Htn", "state", "established", "dport", "=", ":179"],
            )
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
        out.unwrap_or_default()
    };
    lab.wait_until(
        std::time::Duration::from_secs(30),
        "node-1 connected to the router's new link-local address",
        || Ok(connections().contains(new_router) && fib_via(lab, &prefix) == want),
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e}\nrouter fabr1: {:?}\nnode-1 connections: {}\nFIB: {:?}\nRIB: {}\n{}",
            lab.exec_in_router(&["ip", "-6", "addr", "show", "dev", "fabr1"])
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned()),
            connections(),
            fib_via(lab, &prefix),
            lab.vtysh_text(&format!("show ip route {prefix}"))
                .unwrap_or_default(),
            speakers[0].log()
        )
    });
    eprintln!(
        "node-1 peered with the replaced router at {new_router} {:?} after the change",
        replaced.elapsed()
    );
    assert_eq!(
        speakers[0].log().matches("BGP session established").count(),
        2,
        "{}",
        speakers[0].log()
    );

    // The Service gone, the speakers withdraw the /32 (MP_UNREACH_NLRI, AFI 1 SAFI 1): the router forgets it.
    lab.kubectl(&["delete", "service", "manual", "-n", NS])
        .unwrap();
    lab.wait_until(
        std::time::Duration::from_secs(20),
        "the /32 withdrawn",
        || Ok(fib_via(lab, &prefix).is_empty() && bgp_paths(lab, &prefix).is_empty()),
    )
    .unwrap();
    for p in speakers {
        stop_speaker(p);
    }
    drop(fabric);
}

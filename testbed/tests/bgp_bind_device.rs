//! The mechanism behind a peer's `vrf:` (MetalLB's `BGPPeer.vrf`): the session's socket is bound to a device
//! (`SO_BINDTODEVICE`), so two sessions to the same peer address leave by different devices and reach
//! different routers.
//!
//! This machine's kernel has no VRF support (`ip link add vrf-a type vrf table 10` answers "Error: Unknown
//! device type."), so no real VRF device is tested here. What is tested is what a VRF binding relies on: in
//! one node namespace, two plain interfaces carry the same address 198.18.0.2/30 and each leads to its own
//! FRR router at 198.18.0.1; `ferrolb bgp announce --bind-device IF` (the same `TcpOptions::bind_device` the
//! speaker sets from `vrf:`) runs one session per interface, and each router holds exactly the routes of the
//! session bound to its link.
//!
//! Needs root and FRR (Debian package `frr`); a missing one fails loudly.

mod bgp_common;

use bgp_common::frr::Frr;
use bgp_common::{Announce, Link, NODE_V4, RTR_V4, run};
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

fn frr_router() -> String {
    format!(
        "router bgp 64512\n bgp router-id {RTR_V4}\n no bgp ebgp-requires-policy\n\
         neighbor {NODE_V4} remote-as 64513\n neighbor {NODE_V4} timers connect 1\n\
         address-family ipv4 unicast\n  neighbor {NODE_V4} activate\n exit-address-family\n"
    )
}

#[test]
fn two_sessions_to_one_peer_address_bound_to_two_devices_each_carry_their_own_routes() {
    let red = Link::new();
    let blue = Link::new();
    // Blue's node end joins red's node namespace with the same address: one namespace, two links, and the
    // router at 198.18.0.1 on each.
    run(Command::new("ip").args([
        "-n",
        &blue.node,
        "link",
        "set",
        &blue.node_if,
        "netns",
        &red.node,
    ]));
    run(Command::new("ip").args([
        "-n",
        &red.node,
        "addr",
        "add",
        &format!("{NODE_V4}/30"),
        "dev",
        &blue.node_if,
    ]));
    run(Command::new("ip").args(["-n", &red.node, "link", "set", &blue.node_if, "up"]));
    let frr_red = Frr::start(&red, &frr_router());
    let frr_blue = Frr::start(&blue, &frr_router());

    let announce = |tag: &str, device: &str, prefix: &str| {
        let state = red.dir.join(format!("state-{tag}"));
        Announce::start(
            &red,
            tag,
            &[
                "--peer",
                RTR_V4,
                "--peer-asn",
                "64512",
                "--my-asn",
                "64513",
                "--bind-device",
                device,
                "--prefix",
                prefix,
                "--state-dir",
                state.to_str().unwrap(),
            ],
        )
    };
    let _red_session = announce("red", &red.node_if, "203.0.113.31/32");
    let _blue_session = announce("blue", &blue.node_if, "203.0.113.32/32");
    for frr in [&frr_red, &frr_blue] {
        frr.wait_established(NODE_V4, T);
        frr.wait_pfx("ipv4Unicast", NODE_V4, 1, T);
    }
    // Each router has the one route of the session bound to its link, via the node's address on that link.
    assert_eq!(
        routes(&red),
        vec![format!(
            "203.0.113.31 via {NODE_V4} dev {} metric 20",
            red.rtr_if
        )]
    );
    assert_eq!(
        routes(&blue),
        vec![format!(
            "203.0.113.32 via {NODE_V4} dev {} metric 20",
            blue.rtr_if
        )]
    );
}

/// The router's BGP routes, without zebra's next-hop object ids (`nhid N`).
fn routes(link: &Link) -> Vec<String> {
    link.rtr_bgp_routes("-4")
        .iter()
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let mut out = Vec::new();
            let mut i = 0;
            while i < words.len() {
                if words[i] == "nhid" {
                    i += 2;
                    continue;
                }
                out.push(words[i]);
                i += 1;
            }
            out.join(" ")
        })
        .collect()
}

//! `ferrolb bgp` against FRR bgpd with the AS features of fabrics: a peer AS learned from the OPEN
//! (`--peer-asn internal|external`, MetalLB's `dynamicASN`), a presented local AS (RFC 7705,
//! `--local-asn`, with and without `--replace-as`), and AS_PATH prepending.
//!
//! Needs root and FRR (Debian package `frr`); a missing one fails loudly. Each test has its own
//! namespaces, FRR pathspace and scratch directory, as in `bgp_interop`.

mod bgp_common;

use bgp_common::frr::Frr;
use bgp_common::{Announce, Link, NODE_V4, RTR_V4, check};
use serde_json::Value;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

/// FRR in AS `asn` with the node as a neighbor of `neighbor_as` (a number, `internal` or
/// `external`), IPv4 unicast.
fn frr_router(asn: u32, neighbor_as: &str) -> String {
    format!(
        "router bgp {asn}\n bgp router-id {RTR_V4}\n no bgp ebgp-requires-policy\n\
         neighbor {NODE_V4} remote-as {neighbor_as}\n neighbor {NODE_V4} timers connect 1\n\
         address-family ipv4 unicast\n  neighbor {NODE_V4} activate\n exit-address-family\n"
    )
}

/// Announces 203.0.113.20/32 with `flags` and returns the AS path FRR shows for it, and FRR's
/// view of the neighbor.
fn announced_path(link: &Link, frr: &Frr, flags: &[&str]) -> (String, Value) {
    let state = link.dir.join("state");
    let mut args = vec!["--peer", RTR_V4, "--prefix", "203.0.113.20/32"];
    args.extend_from_slice(flags);
    args.extend(["--state-dir", state.to_str().unwrap()]);
    let _a = Announce::start(link, "announce", &args);
    frr.wait_established(NODE_V4, T);
    frr.wait_pfx("ipv4Unicast", NODE_V4, 1, T);
    let route = frr.route("ipv4", "203.0.113.20/32");
    let path = route["paths"][0]["aspath"]["string"]
        .as_str()
        .unwrap_or_else(|| panic!("no AS path in {route}"))
        .to_owned();
    let neighbor = frr.vtysh_json(&format!("show bgp neighbor {NODE_V4} json"))[NODE_V4].clone();
    (path, neighbor)
}

#[test]
fn external_peer_as_is_learned_from_the_open() {
    let link = Link::new();
    let frr = Frr::start(&link, &frr_router(64512, "64513"));
    let (path, n) = announced_path(
        &link,
        &frr,
        &["--peer-asn", "external", "--my-asn", "64513"],
    );
    assert_eq!(path, "64513");
    assert_eq!(n["localAs"], 64512);
    assert_eq!(n["remoteAs"], 64513);
}

#[test]
fn internal_peer_as_refuses_a_router_of_another_as_with_bad_peer_as() {
    let link = Link::new();
    let _frr = Frr::start(&link, &frr_router(64512, "64513"));
    let args = [
        "--peer",
        RTR_V4,
        "--peer-asn",
        "internal",
        "--my-asn",
        "64513",
    ];
    let (code, _, err) = check(&link, &args);
    assert_ne!(code, 0);
    assert!(
        err.contains("we sent a NOTIFICATION: OPEN Message Error / Bad Peer AS"),
        "{err}"
    );
}

#[test]
fn a_local_as_is_what_the_router_sees_and_our_as_follows_it_unless_replaced() {
    // The router is configured for AS 65000, the AS ferrolb had before a migration to 64513.
    let link = Link::new();
    let frr = Frr::start(&link, &frr_router(64512, "65000"));
    let flags = [
        "--peer-asn",
        "64512",
        "--my-asn",
        "64513",
        "--local-asn",
        "65000",
    ];
    let (path, n) = announced_path(&link, &frr, &flags);
    assert_eq!(path, "65000 64513");
    assert_eq!(n["remoteAs"], 65000);
    assert_eq!(n["bgpState"], "Established");
}

#[test]
fn a_local_as_with_replace_as_hides_our_as() {
    let link = Link::new();
    let frr = Frr::start(&link, &frr_router(64512, "65000"));
    let flags = [
        "--peer-asn",
        "64512",
        "--my-asn",
        "64513",
        "--local-asn",
        "65000",
        "--replace-as",
    ];
    let (path, _) = announced_path(&link, &frr, &flags);
    assert_eq!(path, "65000");
}

#[test]
fn as_path_prepending_on_ebgp_and_ibgp() {
    let link = Link::new();
    let frr = Frr::start(&link, &frr_router(64512, "64513"));
    let flags = [
        "--peer-asn",
        "64512",
        "--my-asn",
        "64513",
        "--as-path-prepend",
        "64513:3",
    ];
    let (path, _) = announced_path(&link, &frr, &flags);
    assert_eq!(path, "64513 64513 64513 64513");
    drop(frr);

    // iBGP: the prepended AS is the whole path. It must not be the router's own AS: FRR (like
    // every router) drops a path that contains its AS, iBGP or not (AS_PATH loop detection).
    let link = Link::new();
    let frr = Frr::start(&link, &frr_router(64512, "internal"));
    let flags = [
        "--peer-asn",
        "internal",
        "--my-asn",
        "64512",
        "--as-path-prepend",
        "65000:2",
    ];
    let (path, n) = announced_path(&link, &frr, &flags);
    assert_eq!(path, "65000 65000");
    assert_eq!(n["nbrInternalLink"], true);
}

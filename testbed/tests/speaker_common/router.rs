//! What the lab's FRR router holds: BGP paths (`vtysh ... json`), its kernel FIB, its neighbours, and the
//! UPDATE counters of both ends of each session.

use super::{all_speaker_logs, speaker_metrics};
use ferrolb_testbed::Lab;
use ferrolb_testbed::serde_json::{self, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::Duration;

/// Next hops of `prefix` in the router's kernel FIB (empty when absent); IPv4 or IPv6.
pub fn fib(lab: &Lab, prefix: &str) -> BTreeSet<String> {
    let family = if prefix.contains(':') { "-6" } else { "-4" };
    let Ok(out) = lab.exec_in_router(&["ip", family, "-j", "route", "show", prefix]) else {
        return BTreeSet::new();
    };
    gateways(&out.stdout)
}

/// The next hops in `ip -j route show` output.
pub fn gateways(json_out: &[u8]) -> BTreeSet<String> {
    let routes: Value = serde_json::from_slice(json_out).unwrap_or(Value::Null);
    let mut gws = BTreeSet::new();
    for r in routes.as_array().into_iter().flatten() {
        if let Some(gw) = r["gateway"].as_str() {
            gws.insert(gw.to_owned());
        }
        for nh in r["nexthops"].as_array().into_iter().flatten() {
            if let Some(gw) = nh["gateway"].as_str() {
                gws.insert(gw.to_owned());
            }
        }
    }
    gws
}

/// The router's BGP paths for `prefix` (`show bgp ipv4|ipv6 unicast PREFIX json`).
pub fn bgp_paths(lab: &Lab, prefix: &str) -> Vec<Value> {
    let family = if prefix.contains(':') { "ipv6" } else { "ipv4" };
    lab.vtysh(&format!("show bgp {family} unicast {prefix} json"))
        .ok()
        .and_then(|v| v["paths"].as_array().cloned())
        .unwrap_or_default()
}

/// The AS path the router shows for `prefix` from each peer (`peer`, `"64601 64601"`), sorted by peer.
pub fn paths_by_peer(lab: &Lab, prefix: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = bgp_paths(lab, prefix)
        .iter()
        .map(|p| {
            (
                p["peer"]["peerId"].as_str().unwrap_or("?").to_owned(),
                p["aspath"]["string"].as_str().unwrap_or("?").to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

/// The peers the router has a path for `prefix` from.
pub fn path_peers(lab: &Lab, prefix: &str) -> BTreeSet<String> {
    bgp_paths(lab, prefix)
        .iter()
        .filter_map(|p| p["peer"]["peerId"].as_str().map(str::to_owned))
        .collect()
}

/// Waits until the router has exactly one path for `prefix` from each peer in `want`, and its kernel FIB
/// exactly those next hops (IPv4 prefixes, where peer and next hop are the node's address).
pub fn wait_paths(lab: &Lab, prefix: &str, want: &BTreeSet<String>, what: &str) {
    lab.wait_until(Duration::from_secs(30), what, || {
        Ok(path_peers(lab, prefix) == *want && fib(lab, prefix) == *want)
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}\nBGP paths: {:?}\nFIB: {:?}\nspeaker logs:\n{}",
            path_peers(lab, prefix),
            fib(lab, prefix),
            all_speaker_logs(lab)
        )
    });
}

/// The router's neighbours (`show bgp neighbors json`), by address.
pub fn neighbors(lab: &Lab) -> BTreeMap<String, Value> {
    lab.vtysh("show bgp neighbors json")
        .ok()
        .and_then(|v| v.as_object().cloned())
        .map(|m| m.into_iter().collect())
        .unwrap_or_default()
}

/// For each peer, how many times the router's session with it reached Established.
pub fn connections_established(lab: &Lab) -> BTreeMap<String, u64> {
    neighbors(lab)
        .into_iter()
        .filter_map(|(k, n)| Some((k, n["connectionsEstablished"].as_u64()?)))
        .collect()
}

/// For each peer, how many UPDATE messages the router has received from it (`messageStats.updatesRecv`). An exact
/// count, unlike a path's `lastUpdate.epoch`, which FRR derives from two clocks read at different sub-second phases
/// and so can move by one second between two reads of an unchanged path.
pub fn updates_received(lab: &Lab) -> BTreeMap<String, u64> {
    neighbors(lab)
        .into_iter()
        .filter_map(|(k, n)| Some((k, n["messageStats"]["updatesRecv"].as_u64()?)))
        .collect()
}

/// The value of the sample `name{labels}` (labels exactly as exported) in a `/metrics` text.
pub fn metric_value(text: &str, name: &str, labels: &str) -> Option<u64> {
    let key = format!("{name}{{{labels}}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&key))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
}

/// Per-session message counts of both ends, for one node's session with the router address `router`:
/// (UPDATEs the speaker sent, UPDATEs the router received, UPDATEs the router sent, UPDATEs the speaker
/// received).
pub fn update_counts(lab: &Lab, node: usize, router: &str, node_peer: &str) -> [Option<u64>; 4] {
    let metrics = speaker_metrics(lab, node);
    let peer = format!("peer=\"{router}\"");
    let frr = neighbors(lab).remove(node_peer).unwrap_or(Value::Null);
    [
        metric_value(&metrics, "ferrolb_bgp_updates_sent_total", &peer),
        frr["messageStats"]["updatesRecv"].as_u64(),
        frr["messageStats"]["updatesSent"].as_u64(),
        metric_value(
            &metrics,
            "ferrolb_bgp_messages_received_total",
            &format!("{peer},type=\"update\""),
        ),
    ]
}

/// [`update_counts`] of every node's session with `router` (node `i` appears at the router as `node_peer(i)`).
pub fn all_update_counts(
    lab: &Lab,
    router: &str,
    node_peer: &impl Fn(usize) -> String,
) -> Vec<[Option<u64>; 4]> {
    (1..=lab.nodes())
        .map(|i| update_counts(lab, i, router, &node_peer(i)))
        .collect()
}

/// Waits until, for each node's session with `router` (node `i` appears at the router as `node_peer(i)`), the
/// UPDATEs the speaker counts as sent equal those FRR counts as received, and the other way round, counted
/// from `since` (earlier [`all_update_counts`]; `None`: from zero). Both sides count End-of-RIB markers. The
/// counts must cover the same connections: a speaker's counters start at zero when it starts, while FRR
/// keeps a neighbour's across a graceful restart and forgets a dynamic neighbour's when its session ends
/// without one, so take `since` after the last restart. Returns the counts since `since`, for printing.
pub fn wait_update_counters_match(
    lab: &Lab,
    router: &str,
    node_peer: impl Fn(usize) -> String,
    since: Option<&[[Option<u64>; 4]]>,
) -> Vec<[u64; 4]> {
    let mut last = Vec::new();
    let delta = |now: &[Option<u64>; 4], i: usize| -> Option<[u64; 4]> {
        let base = since.map_or([Some(0); 4], |b| b.get(i).copied().unwrap_or([None; 4]));
        let mut out = [0; 4];
        for ((o, n), b) in out.iter_mut().zip(now).zip(base) {
            *o = n.as_ref()?.checked_sub(b?)?;
        }
        Some(out)
    };
    let matched = lab.wait_until(
        Duration::from_secs(15),
        "UPDATE counters of both ends equal",
        || {
            last = all_update_counts(lab, router, &node_peer);
            Ok(last
                .iter()
                .enumerate()
                .all(|(i, c)| delta(c, i).is_some_and(|d| d[0] == d[1] && d[2] == d[3])))
        },
    );
    matched.unwrap_or_else(|e| {
        panic!(
            "{e}: [speaker sent, router received, router sent, speaker received] per node: {last:?}, since \
             {since:?}"
        )
    });
    last.iter()
        .enumerate()
        .filter_map(|(i, c)| delta(c, i))
        .collect()
}

/// Runs configuration commands on the router (`router bgp` context).
pub fn router_config(lab: &Lab, lines: &[&str]) {
    let mut cmd = Command::new("vtysh");
    cmd.args([
        "-N",
        lab.name(),
        "-c",
        "configure terminal",
        "-c",
        "router bgp 65559",
    ]);
    for l in lines {
        cmd.args(["-c", l]);
    }
    let out = cmd.output().expect("run vtysh");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && text.trim().is_empty(),
        "vtysh {lines:?}: {text}"
    );
}

//! The two composite faults every setup goes through: a rolling restart of the three API servers, and a link cut
//! of node 3 with long-lived watches open, counting the watches that break when node 3 leaves and when it returns.

use super::clients::{Client, Watches, connections_to, destroy_connections, holders};
use super::{Row, now, row, running, settle, signal, start_apiserver};
use ferrolb_testbed::Lab;
use std::collections::BTreeMap;
use std::time::Duration;

/// The client namespace's address (the source of every watch).
const CLIENT_ADDR: &str = "198.18.1.2";
/// Watches held open through the fault.
const WATCHES: usize = 30;

/// The node whose link is cut.
const LEAVING: usize = 3;

/// One line of the watch table.
pub struct WatchRow {
    pub mode: &'static str,
    pub event: &'static str,
    pub open: usize,
    /// Broken watches that the leaving node served (they cannot survive).
    pub on_node: usize,
    /// Broken watches that other nodes served: collateral.
    pub elsewhere: usize,
    /// After the watches were closed (at the end of the fault): connections of the client still established on
    /// the servers. A flow that a rehash moved away from a live server leaves it half-open there: the client's
    /// reset goes, by the same hash, to the new node, so the old server retransmits for minutes (and a
    /// kube-apiserver's graceful shutdown waits for it).
    pub half_open: Option<usize>,
}

/// Where the client's watches end.
pub enum Serving {
    /// On the API servers themselves (the VIP is routed to them): client port → node.
    Direct(BTreeMap<u16, usize>),
    /// Through HAProxy on the VRRP master, which holds this many connections to the leaving node's API server.
    Proxied { to_leaving: usize },
}

impl Serving {
    /// Reads where the watches end now.
    pub fn now(lab: &Lab, proxied: bool) -> Serving {
        if proxied {
            let to_leaving = connections_to(lab, LEAVING, 6443)
                .into_iter()
                .filter(|(addr, _)| *addr != CLIENT_ADDR)
                .count();
            Serving::Proxied { to_leaving }
        } else {
            Serving::Direct(holders(lab, CLIENT_ADDR))
        }
    }

    /// Splits the broken watches (client ports) into (served by the leaving node, served elsewhere).
    fn split(&self, broken: &[u16]) -> (usize, usize) {
        match self {
            Serving::Direct(map) => {
                let on = broken
                    .iter()
                    .filter(|p| map.get(p) == Some(&LEAVING))
                    .count();
                (on, broken.len() - on)
            }
            Serving::Proxied { to_leaving } => {
                let on = broken.len().min(*to_leaving);
                (on, broken.len() - on)
            }
        }
    }
}

/// What a setup does when node `node` leaves or comes back: waits until the router (or VRRP) settled and returns
/// how long that took, when it is known.
pub type Settled<'a> = &'a dyn Fn(usize) -> Option<f64>;

/// Restarts the three API servers one after the other: SIGTERM (each has a shutdown delay), `withdrawn(node)`,
/// start it again, `back(node)`. Pushes a row for the first node's restart ("graceful API server restart") and
/// one for the whole.
pub fn rolling_restart(
    lab: &Lab,
    apiservers: &mut [i32],
    client: &Client,
    mode: &'static str,
    rows: &mut Vec<Row>,
    withdrawn: Settled,
    back: Settled,
) {
    let t_all = now();
    for node in 1..=3 {
        let t = now();
        signal(apiservers[node - 1], "TERM");
        let reroute = withdrawn(node);
        lab.wait_until(
            Duration::from_secs(30),
            &format!("node-{node}'s API server to exit"),
            || Ok(!running(apiservers[node - 1])),
        )
        .unwrap_or_else(|e| {
            let log = lab
                .dir()
                .join("logs")
                .join(format!("apiserver-node-{node}.log"));
            let log = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(25).collect();
            let ss = lab
                .exec_in_node(node, &["ss", "-tn"])
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
            panic!(
                "{e}\n{}\n{:?}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
                ss
            )
        });
        apiservers[node - 1] = start_apiserver(lab, node);
        back(node);
        if node == 1 {
            rows.push(row(
                client,
                "graceful API server restart",
                mode,
                t,
                now(),
                reroute,
            ));
        }
    }
    rows.push(row(
        client,
        "rolling restart (3 API servers)",
        mode,
        t_all,
        now(),
        None,
    ));
}

/// Opens [`WATCHES`] watches through `host:port`, cuts node 3's link (`leave` waits for the setup to react),
/// restores it (`back`), and counts the watches that broke in each phase. Pushes the request row for the link
/// cut and two watch rows.
#[allow(clippy::too_many_arguments)]
pub fn link_cut_with_watches(
    lab: &Lab,
    host: &str,
    port: u16,
    client: &Client,
    mode: &'static str,
    rows: &mut Vec<Row>,
    watch_rows: &mut Vec<WatchRow>,
    leave: Settled,
    back: Settled,
) {
    let proxied = port != 6443;
    let tag = mode.split_whitespace().next().unwrap_or(mode);
    let watches = Watches::start(lab, host, port, WATCHES, &format!("{tag}-cut"));
    watches.wait_all_open(lab);
    settle(2);

    let mut phase = |event: &'static str, change: &dyn Fn() -> Option<f64>| {
        let serving = Serving::now(lab, proxied);
        let t = now();
        let reroute = change();
        settle(5);
        let broken = watches.broken_since(t);
        let (on_node, elsewhere) = serving.split(&broken);
        watch_rows.push(WatchRow {
            mode,
            event,
            open: WATCHES,
            on_node,
            elsewhere,
            half_open: None,
        });
        watches.wait_all_open(lab);
        (t, reroute)
    };
    let (t, reroute) = phase("node-3 leaves (link cut)", &|| {
        super::set_link(lab, LEAVING, "down");
        leave(LEAVING)
    });
    phase("node-3 returns", &|| {
        super::set_link(lab, LEAVING, "up");
        back(LEAVING)
    });
    rows.push(row(
        client,
        "link cut (then restored)",
        mode,
        t,
        now(),
        reroute,
    ));
    drop(watches);
    settle(1);
    let left = (1..=lab.nodes())
        .map(|node| {
            connections_to(lab, node, port)
                .into_iter()
                .filter(|(addr, _)| addr == CLIENT_ADDR)
                .count()
        })
        .sum();
    if let Some(last) = watch_rows.last_mut() {
        last.half_open = Some(left);
    }
    // So that they do not hold up the next API server shutdown.
    destroy_connections(lab, CLIENT_ADDR, port);
}

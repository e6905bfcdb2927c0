//! A GoBGP speaker in a node namespace: a stand-in for the ferrolb speaker in lab tests.

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::command::run_stdout;
use crate::{Lab, LabError, NodeProcess};

/// gobgpd's gRPC port inside the node namespace (each node has its own loopback, so it never collides).
const API_PORT: u16 = 50051;

/// A `gobgpd` running in a node namespace and peering with the lab router (iBGP AS 65559, password `foo`,
/// IPv4 and IPv6 unicast). Dropping it kills gobgpd.
#[derive(Debug)]
pub struct GobgpSpeaker {
    process: NodeProcess,
    netns: String,
    address: String,
}

impl GobgpSpeaker {
    /// Starts gobgpd in node `node`; it dials the router. Does not wait for the session.
    pub fn start(lab: &Lab, node: usize) -> Result<GobgpSpeaker, LabError> {
        let netns = lab.node_netns(node)?;
        let address = lab.node_ipv4(node)?;
        let router = lab.env("ROUTER_LAN4").unwrap_or("198.18.0.1").to_owned();
        let asn = lab.env("ROUTER_ASN").unwrap_or("65559").to_owned();
        let conf = lab.dir().join(format!("gobgp-node-{node}.toml"));
        let text = format!(
            "[global.config]\n  as = {asn}\n  router-id = \"{address}\"\n  port = -1\n\
             [[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{router}\"\n    peer-as = {asn}\n    auth-password = \"foo\"\n\
             [[neighbors.afi-safis]]\n  [neighbors.afi-safis.config]\n    afi-safi-name = \"ipv4-unicast\"\n\
             [[neighbors.afi-safis]]\n  [neighbors.afi-safis.config]\n    afi-safi-name = \"ipv6-unicast\"\n"
        );
        fs::write(&conf, text).map_err(|source| LabError::Io {
            path: conf.clone(),
            source,
        })?;
        let conf = conf.to_string_lossy().into_owned();
        let api = format!("127.0.0.1:{API_PORT}");
        let process = lab.spawn_in_node(
            node,
            &format!("gobgpd-{node}"),
            &["gobgpd", "-f", &conf, "--api-hosts", &api, "-l", "info"],
        )?;
        Ok(GobgpSpeaker {
            process,
            netns,
            address,
        })
    }

    /// The speaker's session address (the node's LAN address).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The gobgpd process (log, pid, signals).
    pub fn process(&mut self) -> &mut NodeProcess {
        &mut self.process
    }

    /// Runs the `gobgp` CLI against this speaker and returns its output.
    pub fn cli(&self, args: &[&str]) -> Result<String, LabError> {
        let port = API_PORT.to_string();
        run_stdout(
            Command::new("ip")
                .args(["netns", "exec", &self.netns, "gobgp", "-p", &port])
                .args(args),
        )
    }

    /// Announces `prefix` (e.g. `203.0.113.10/32`) with this node as next hop. The gRPC server may need a
    /// moment after start, so this retries for up to 10 s.
    pub fn announce(&self, prefix: &str) -> Result<(), LabError> {
        let family = if prefix.contains(':') { "ipv6" } else { "ipv4" };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.cli(&["global", "rib", "add", prefix, "-a", family]) {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// Withdraws `prefix`.
    pub fn withdraw(&self, prefix: &str) -> Result<(), LabError> {
        let family = if prefix.contains(':') { "ipv6" } else { "ipv4" };
        self.cli(&["global", "rib", "del", prefix, "-a", family])
            .map(|_| ())
    }
}

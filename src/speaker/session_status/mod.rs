//! The writer of this node's `BGPSessionStatus` objects (one per configured peer that selects the node), in
//! the speaker's namespace, labelled `ferrolb.io/node=<node>` and owned by the Node (the garbage collector
//! deletes them with it). Turned off with `--session-status=false`.
//!
//! - [`desired`]: what an object should say (pure); [`limiter`]: when to write it (pure);
//! - this module: the task that follows the sessions' status channels, server-side applies the objects (field
//!   manager [`FIELD_MANAGER`]: the spec and labels once, then `/status`), and deletes the objects of peers no
//!   longer configured (and, at start, those a previous run left). API errors are logged and counted in
//!   `ferrolb_speaker_session_status_api_errors_total{operation}` and retried with a backoff; never fatal.
//!
//! Writes: none while nothing changes; a state change, a new error, negotiated values, BFD, pools or node
//! exclusion are written within about [`SETTLE`] (at most one write per object per second); a prefix count alone
//! at most once per object per 30 s ([`limiter::Limits`]). The README's "Session status objects" gives the
//! figures at 1,000 nodes.

pub mod desired;
pub mod limiter;
#[cfg(test)]
mod tests;
mod writer;

use crate::crds::session_status::{BGPSessionStatusSpec, object_name};
use desired::{PeerFacts, pools_for_peer};
use ferrolb_announce::{AnnounceConfig, AnnounceDecision, PeerKey};
use ferrolb_config::Config;
use k8s_openapi::api::core::v1::Node;
use kube::{Api, Client};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::watch;

/// The field manager of the speaker's server-side applies.
pub const FIELD_MANAGER: &str = "ferrolb-speaker";

/// How long the writer lets a burst of status changes settle before it looks (a session going down reports
/// its new state and its reason in two steps).
pub const SETTLE: Duration = Duration::from_millis(100);

/// The Node that owns the objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeOwner {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.uid`.
    pub uid: String,
}

/// The BFD session of a peer, as the writer follows it.
#[derive(Clone, Debug)]
pub enum BfdInput {
    /// No `bfd-profile`.
    Disabled,
    /// BFD could not be set up.
    Failed,
    /// The running BFD session's status.
    Running(watch::Receiver<ferrolb_bfd::SessionStatus>),
}

/// One configured peer of this node and its running session.
#[derive(Clone, Debug)]
pub struct PeerInputs {
    /// From the configuration.
    pub facts: PeerFacts,
    /// The session's status channel.
    pub session: watch::Receiver<ferrolb_bgp::session::SessionStatus>,
    /// Its BFD session.
    pub bfd: BfdInput,
}

/// Everything the writer needs, sent by the speaker's loop after each recomputation.
#[derive(Clone, Debug, Default)]
pub struct StatusInputs {
    /// The Node (none before it is known or after it was deleted: then nothing is written).
    pub node: Option<NodeOwner>,
    /// Why the node announces nothing ([`desired::node_excluded`]).
    pub node_excluded: Option<String>,
    /// The configured peers that select this node, by object name.
    pub peers: BTreeMap<String, PeerInputs>,
}

/// The object name of `node` × `key`: the port joins the address when it is not 179, the VRF after it; an
/// unnumbered peer is named by its interface.
pub fn name_of(node: &str, key: &PeerKey) -> String {
    // An unnumbered peer is named by its interface; a peer in a VRF gets the VRF after its address.
    let unnumbered = key.address.is_unspecified();
    let mut peer = match key.device {
        Some(interface) if unnumbered => interface.to_string(),
        _ => key.address.to_string(),
    };
    if key.port != ferrolb_announce::input::BGP_PORT {
        peer = format!("{peer}:{}", key.port);
    }
    if let (Some(vrf), false) = (key.device, unnumbered) {
        peer = format!("{peer}:{vrf}");
    }
    // Device names may hold `_`, which object names may not.
    object_name(node, &peer.replace('_', "-"))
}

/// The writer's inputs from the configuration in force, the decision for this node and the running
/// sessions (`sessions`: each peer's status channel and BFD input).
pub fn inputs(
    node_name: &str,
    node: Option<&Node>,
    config: &Config,
    announce: &AnnounceConfig,
    decision: &AnnounceDecision,
    mut sessions: BTreeMap<
        PeerKey,
        (
            watch::Receiver<ferrolb_bgp::session::SessionStatus>,
            BfdInput,
        ),
    >,
) -> StatusInputs {
    let mut peers = BTreeMap::new();
    for (index, (p, a)) in config.peers.iter().zip(&announce.peers).enumerate() {
        let Some((session, bfd)) = sessions.remove(&a.key).filter(|_| a.selects_node) else {
            continue;
        };
        let facts = PeerFacts {
            spec: BGPSessionStatusSpec {
                node: node_name.to_owned(),
                peer: a.key.to_string(),
                peer_asn: p.peer_asn,
                peer_name: p.name.clone().unwrap_or_default(),
            },
            pools: pools_for_peer(announce, index),
        };
        peers.insert(
            name_of(node_name, &a.key),
            PeerInputs {
                facts,
                session,
                bfd,
            },
        );
    }
    StatusInputs {
        node: node.and_then(|n| {
            Some(NodeOwner {
                name: n.metadata.name.clone()?,
                uid: n.metadata.uid.clone()?,
            })
        }),
        node_excluded: desired::node_excluded(decision),
        peers,
    }
}

/// Labels of the writer's metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    /// `apply` (the object with its spec, labels and owner), `apply_status`, `delete` or `list`.
    pub operation: String,
}

/// The writer's metrics.
#[derive(Clone, Debug, Default)]
pub struct StatusMetrics {
    /// `ferrolb_speaker_session_status_writes_total{operation}`: successful API calls.
    pub writes: Family<OperationLabels, Counter>,
    /// `ferrolb_speaker_session_status_api_errors_total{operation}`: failed API calls (retried).
    pub errors: Family<OperationLabels, Counter>,
}

impl StatusMetrics {
    /// Registers both families in `registry` (under its prefix).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "speaker_session_status_writes",
            "Successful API calls of the BGPSessionStatus writer, by operation (apply, apply_status, delete, list)",
            self.writes.clone(),
        );
        registry.register(
            "speaker_session_status_api_errors",
            "Failed API calls of the BGPSessionStatus writer, by operation (retried with a backoff)",
            self.errors.clone(),
        );
    }

    /// Every operation's series, at 0, so that both families are exported from the start.
    pub const OPERATIONS: [&str; 4] = ["apply", "apply_status", "delete", "list"];

    /// Counts one API call of `operation`, successful or not.
    pub fn count(&self, operation: &str, ok: bool) {
        let labels = OperationLabels {
            operation: operation.to_owned(),
        };
        if ok { &self.writes } else { &self.errors }
            .get_or_create(&labels)
            .inc();
    }
}

/// The running writer: where its inputs go, and its task.
pub struct StatusWriter {
    inputs: watch::Sender<StatusInputs>,
    task: tokio::task::JoinHandle<()>,
}

/// How long [`StatusWriter::finish`] waits for the last writes (the pod's grace period is 10 s).
pub const FINISH_TIMEOUT: Duration = Duration::from_secs(2);

impl StatusWriter {
    /// Starts the writer for node `node` in `namespace`.
    pub fn spawn(
        client: Client,
        namespace: &str,
        node: &str,
        metrics: StatusMetrics,
    ) -> StatusWriter {
        let (tx, rx) = watch::channel(StatusInputs::default());
        for operation in StatusMetrics::OPERATIONS {
            let labels = OperationLabels {
                operation: operation.to_owned(),
            };
            metrics.writes.get_or_create(&labels).inc_by(0);
            metrics.errors.get_or_create(&labels).inc_by(0);
        }
        let writer = writer::Writer::new(Api::namespaced(client, namespace), node, metrics);
        StatusWriter {
            inputs: tx,
            task: tokio::spawn(writer.run(rx)),
        }
    }

    /// Hands the writer new inputs.
    pub fn send(&self, inputs: StatusInputs) {
        self.inputs.send_replace(inputs);
    }

    /// At shutdown, once the sessions are stopped: the writer writes every object whose status changed (their
    /// sessions' final state, without waiting for the limiter), then ends; waits for it at most
    /// [`FINISH_TIMEOUT`].
    pub async fn finish(self) {
        drop(self.inputs);
        if tokio::time::timeout(FINISH_TIMEOUT, self.task)
            .await
            .is_err()
        {
            tracing::warn!("the BGPSessionStatus objects' last writes did not finish in time");
        }
    }
}

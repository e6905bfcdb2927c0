//! The label sets of the speaker's metrics, apart from the metrics themselves so that the
//! scrape-time collectors ([`super::session_traffic`]) and the registry ([`super::metrics`]) both
//! use them without depending on each other.

use prometheus_client::encoding::EncodeLabelSet;
use std::sync::Arc;

/// Labels of the per-peer metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerLabels {
    /// The peer, `address` or `address:port`.
    pub peer: String,
}

/// Labels of the last-error metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerErrorLabels {
    /// The peer.
    pub peer: String,
    /// Why the session last went down, in words.
    pub error: String,
}

/// Labels of the per-Service metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceLabels {
    /// `namespace/name`: the decision's own copy, shared (one name per Service however many places keep it).
    pub service: Arc<str>,
}

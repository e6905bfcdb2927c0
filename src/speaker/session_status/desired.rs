//! What one `BGPSessionStatus` object should say, from what the speaker knows: the configuration (peer, ASN,
//! name, the pools its advertisements allow, whether the node is excluded), the session's status channel
//! (FSM state, negotiated OPENs, last down reason, Adj-RIB-Out size) and the BFD session. Pure functions.

use crate::crds::session_status::{BGPSessionStatusSpec, SessionError, SessionStatus};
use ferrolb_announce::{AnnounceConfig, AnnounceDecision, Reason};
use ferrolb_bgp::fsm::{DownReason, Negotiated, State};
use ferrolb_bgp::wire::{Capability, Family, Open};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use std::collections::BTreeSet;

/// What the configuration says about one peer of this node.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PeerFacts {
    /// The object's spec (node, peer, ASN, name).
    pub spec: BGPSessionStatusSpec,
    /// The pools this node may advertise to the peer ([`pools_for_peer`]).
    pub pools: Vec<String>,
}

/// The BFD side of a session, as the status shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BfdView {
    /// The peer has no `bfd-profile`.
    Disabled,
    /// BFD could not be set up (the BGP session is held down).
    Failed,
    /// The BFD session's local state.
    State(ferrolb_bfd::State),
}

impl BfdView {
    /// The `status.bfd` word.
    pub fn word(self) -> &'static str {
        match self {
            BfdView::Disabled => "Disabled",
            BfdView::Failed => "Down",
            BfdView::State(ferrolb_bfd::State::Up) => "Up",
            BfdView::State(ferrolb_bfd::State::Down) => "Down",
            BfdView::State(ferrolb_bfd::State::Init) => "Init",
            BfdView::State(ferrolb_bfd::State::AdminDown) => "AdminDown",
        }
    }
}

/// What the writer remembers of one session between looks: when its state and its last error changed (the
/// session's status channel carries only the current values).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tracker {
    state: Option<State>,
    since: Option<Timestamp>,
    /// The last down reason, the session's down count when it was seen, and when.
    error: Option<(DownReason, u64, Timestamp)>,
}

impl Tracker {
    /// Takes in the session's current `state`, `last_down` and `down_count` seen at `now`: a new state restarts
    /// `lastTransitionTime`; a new reason, or the same reason again (the down count moved), gets `now` as its
    /// time.
    pub fn observe(
        &mut self,
        state: State,
        last_down: Option<&DownReason>,
        down_count: u64,
        now: Timestamp,
    ) {
        if self.state != Some(state) {
            self.state = Some(state);
            self.since = Some(now);
        }
        match (last_down, &self.error) {
            (None, _) => self.error = None,
            (Some(r), Some((known, count, _))) if r == known && *count == down_count => {}
            (Some(r), _) => self.error = Some((r.clone(), down_count, now)),
        }
    }

    /// When the current state was entered (as first seen).
    pub fn since(&self) -> Option<Timestamp> {
        self.since
    }

    /// The last down reason and when it was seen.
    pub fn error(&self) -> Option<(&DownReason, Timestamp)> {
        self.error.as_ref().map(|(r, _, at)| (r, *at))
    }
}

/// The session's view at one moment, as the status fields take it.
#[derive(Clone, Copy, Debug)]
pub struct SessionView<'a> {
    /// The FSM state.
    pub state: State,
    /// What was negotiated, while Established.
    pub negotiated: Option<&'a Negotiated>,
    /// Prefixes in the Adj-RIB-Out.
    pub prefixes_sent: usize,
}

/// The status of one object: `session` with its `tracker`, the BFD view, the peer's pools and why the node
/// announces nothing (if it does not).
pub fn desired_status(
    facts: &PeerFacts,
    session: SessionView<'_>,
    tracker: &Tracker,
    bfd: BfdView,
    node_excluded: Option<&str>,
) -> SessionStatus {
    let negotiated = session
        .negotiated
        .filter(|_| session.state == State::Established);
    SessionStatus {
        state: session.state.to_string(),
        last_transition_time: tracker.since().map(Time),
        last_error: tracker.error().map(|(r, at)| session_error(r, at)),
        hold_time_seconds: negotiated.map(|n| n.context.hold_time),
        keepalive_seconds: negotiated
            .map(|n| u16::try_from(n.keepalive.as_secs()).unwrap_or(u16::MAX)),
        capabilities: negotiated.map(capabilities).unwrap_or_default(),
        prefixes_sent: u32::try_from(session.prefixes_sent).unwrap_or(u32::MAX),
        bfd: bfd.word().to_owned(),
        pools: facts.pools.clone(),
        node_excluded: node_excluded.map(str::to_owned),
    }
}

/// A down reason in words, with the NOTIFICATION's code and subcode when it was one:
/// `received NOTIFICATION 6/2 (Cease / Administrative Shutdown)`.
pub fn session_error(reason: &DownReason, at: Timestamp) -> SessionError {
    let (message, code) = match reason {
        DownReason::NotificationSent(e) | DownReason::NotificationReceived(e) => {
            let direction = if matches!(reason, DownReason::NotificationSent(_)) {
                "sent"
            } else {
                "received"
            };
            (
                format!(
                    "{direction} NOTIFICATION {}/{} ({e})",
                    e.code(),
                    e.subcode()
                ),
                Some((e.code(), e.subcode())),
            )
        }
        DownReason::Stopped => (
            "stopped by the speaker (it shut down, or the peer's settings changed)".to_owned(),
            None,
        ),
        other => (other.to_string(), None),
    };
    SessionError {
        message,
        code: code.map(|c| c.0),
        subcode: code.map(|c| c.1),
        time: Some(Time(at)),
    }
}

/// The capabilities both OPENs announced, in words, sorted: the negotiated families (`ipv4-unicast`,
/// `ipv6-unicast`) and `4-octet-as`, `extended-message`, `graceful-restart`, `route-refresh`, and any other
/// capability both sent, by name or as `capability-<code>`.
pub fn capabilities(n: &Negotiated) -> Vec<String> {
    let mut out: BTreeSet<String> = n
        .context
        .families
        .iter()
        .map(|f| family_word(*f).to_owned())
        .collect();
    let ours = capability_words(&n.local_open);
    out.extend(
        capability_words(&n.peer_open)
            .intersection(&ours)
            .cloned()
            .collect::<Vec<_>>(),
    );
    out.into_iter().collect()
}

fn family_word(f: Family) -> &'static str {
    match f {
        Family::Ipv4Unicast => "ipv4-unicast",
        Family::Ipv6Unicast => "ipv6-unicast",
    }
}

/// The non-family capabilities of one OPEN, in words.
fn capability_words(open: &Open) -> BTreeSet<String> {
    open.capabilities
        .iter()
        .filter_map(|c| match c {
            Capability::Multiprotocol(_) => None,
            Capability::RouteRefresh => Some("route-refresh".to_owned()),
            Capability::FourOctetAs(_) => Some("4-octet-as".to_owned()),
            Capability::GracefulRestart(_) => Some("graceful-restart".to_owned()),
            Capability::ExtendedMessage => Some("extended-message".to_owned()),
            Capability::ExtendedNextHop(_) => Some("extended-nexthop".to_owned()),
            Capability::Unknown { code, .. } => Some(
                match code {
                    9 => "bgp-role",
                    69 => "add-path",
                    70 => "enhanced-route-refresh",
                    71 => "long-lived-graceful-restart",
                    73 => "fqdn",
                    _ => return Some(format!("capability-{code}")),
                }
                .to_owned(),
            ),
        })
        .collect()
}

/// The pools whose Service addresses this node may advertise to the peer at `index` of `config.peers` (the
/// configuration evaluated for this node by [`AnnounceConfig::from_config`]), sorted: announced pools with an
/// advertisement (or the default one) that selects this node and this peer, and, for a single-family peer,
/// with addresses of its family. Empty when the peer does not select this node.
pub fn pools_for_peer(config: &AnnounceConfig, index: usize) -> Vec<String> {
    let Some(peer) = config.peers.get(index).filter(|p| p.selects_node) else {
        return Vec::new();
    };
    let mut out: Vec<String> = config
        .pools
        .iter()
        .filter(|pool| pool.announced)
        .filter(|pool| {
            pool.advertisements.is_empty()
                || pool
                    .advertisements
                    .iter()
                    .any(|a| a.selects_node && a.selects_peer(peer.name.as_deref()))
        })
        .filter(|pool| {
            peer.dual_stack
                || pool
                    .addresses
                    .iter()
                    .any(|r| r.first.is_ipv4() == peer.key.address.is_ipv4())
        })
        .map(|pool| pool.name.clone())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Why this node announces nothing, from the decision's node reasons (the exclusion label, a
/// `NetworkUnavailable` node), joined with `; `; `None` when the node may announce.
pub fn node_excluded(decision: &AnnounceDecision) -> Option<String> {
    let why: Vec<String> = decision
        .node_reasons
        .iter()
        .filter(|r| matches!(r, Reason::NodeExcluded | Reason::NodeNetworkUnavailable))
        .map(ToString::to_string)
        .collect();
    (!why.is_empty()).then(|| why.join("; "))
}

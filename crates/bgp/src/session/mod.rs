//! The tokio session driver: one task per peer.
//!
//! [`Session::spawn`] starts a task that connects to the peer ([`socket`]: source address,
//! TTL, TCP-MD5), feeds the [`Fsm`](crate::fsm::Fsm) with what arrives and with its timers, and
//! once Established sends the desired routes through the Adj-RIB-Out, then End-of-RIB per
//! family. The handle sets the desired routes (a whole table, [`Session::set_routes`], or the
//! prefixes that changed, [`Session::change_routes`]: the task then looks at those prefixes
//! alone), reports the session's [`SessionStatus`] on a watch channel, and stops the session
//! ([`StopMode`]).
//!
//! [`Session::spawn_with_bfd`] ties the session to a BFD session's status (RFC 9384): no
//! Established while BFD is not Up (the OPEN exchange happens, the session holds in OpenConfirm),
//! and Cease / BFD Down as soon as it goes Down.
//!
//! [`Session::counters`] gives the running totals of UPDATEs and octets written and of
//! messages received ([`SessionCounters`]), counted by the task where it writes and reads.
//!
//! A failed attempt (refused, no answer to the handshake, no OPEN, segments dropped for their TCP-MD5
//! signature) is logged in words that say what to check ([`failure`]) and counted by reason.
//!
//! [`check`] opens one session, reports what was negotiated and closes it with a Cease.

pub mod counters;
mod driver;
pub mod failure;
pub mod link_local;
pub mod next_hop;
mod probe;
pub mod restart_state;
mod routes;
pub mod socket;

pub use counters::{CounterSnapshot, RECEIVED_TYPES, SessionCounters};
pub use failure::FailureReason;
pub use probe::{CheckError, check};
pub use socket::{ConnectError, TcpOptions};

use crate::fsm::{DownReason, FsmConfig, Negotiated, State};
use crate::rib_out::Attributes;
use ipnet::IpNet;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Maps any status channel (such as a BFD session's) to the "BFD is Up" signal
/// [`Session::spawn_with_bfd`] takes, with a small task on the current runtime that ends when
/// either side is dropped.
pub fn bfd_up_signal<T, F>(mut source: watch::Receiver<T>, is_up: F) -> watch::Receiver<bool>
where
    T: Send + Sync + 'static,
    F: Fn(&T) -> bool + Send + 'static,
{
    let (tx, rx) = watch::channel(is_up(&source.borrow_and_update()));
    tokio::spawn(async move {
        loop {
            tokio::select! {
                changed = source.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let up = is_up(&source.borrow_and_update());
                    tx.send_if_modified(|v| std::mem::replace(v, up) != up);
                }
                () = tx.closed() => return,
            }
        }
    });
    rx
}

/// The routes a speaker wants the peer to have: prefix → attributes. Equal attribute sets should share one
/// `Arc` (a table of 10,000 routes then costs about 0.3 MB, not 1.2 MB); the session keeps the shared sets.
pub type DesiredRoutes = BTreeMap<IpNet, Arc<Attributes>>;

/// Changes to the routes a speaker wants the peer to have: prefix → its new attributes, or `None`
/// when the peer must no longer have it.
pub type RouteChanges = BTreeMap<IpNet, Option<Attributes>>;

/// Everything one session needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// How to reach the peer.
    pub tcp: TcpOptions,
    /// The state machine's configuration. When graceful restart is configured and
    /// `state_dir` is set, the driver decides the R bit itself from the restart record.
    pub fsm: FsmConfig,
    /// Where the graceful-restart "last alive" record lives (see [`restart_state`]).
    pub state_dir: Option<PathBuf>,
    /// NEXT_HOP for IPv4 routes; default: the session's local address, or an IPv4 address on
    /// the same interface for an IPv6 session.
    pub next_hop_v4: Option<Ipv4Addr>,
    /// Global next hop for IPv6 routes; default: the session's local address, or a global IPv6
    /// address on the same interface for an IPv4 session.
    pub next_hop_v6: Option<Ipv6Addr>,
}

/// What a session is doing, as published on the status channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionStatus {
    /// The FSM state.
    pub state: State,
    /// What was negotiated, while Established.
    pub negotiated: Option<Arc<Negotiated>>,
    /// Why the session last went down, if it did.
    pub last_down: Option<DownReason>,
    /// Prefixes the peer has from us (sent and not withdrawn), while Established.
    pub prefixes_sent: usize,
    /// Times the session reached Established.
    pub established_count: u64,
    /// Times the session went down (each sets [`SessionStatus::last_down`], which may repeat the same reason).
    pub down_count: u64,
    /// Whether the task has ended (after a stop).
    pub finished: bool,
}

/// How to stop a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopMode {
    /// Withdraw every route, then close with Cease / Administrative Shutdown and this
    /// communication (RFC 9003).
    Withdraw {
        /// The shutdown communication.
        communication: String,
    },
    /// For an upgrade: when graceful restart was negotiated, close the connection without a
    /// NOTIFICATION and without withdrawing, so the peer keeps our routes as stale until we
    /// are back (RFC 4724). Otherwise the same as [`StopMode::Withdraw`].
    Graceful {
        /// The shutdown communication used when falling back to a withdraw.
        communication: String,
    },
}

enum Command {
    Stop(StopMode),
}

/// The handle of one peer's session task.
#[derive(Debug)]
pub struct Session {
    routes: Arc<routes::RouteInbox>,
    status: watch::Receiver<SessionStatus>,
    commands: mpsc::Sender<Command>,
    counters: Arc<SessionCounters>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Stop(m) => write!(f, "Stop({m:?})"),
        }
    }
}

impl Session {
    /// Starts the session task (on the current tokio runtime) with an initial set of routes
    /// (a table, or an `Arc` of one that several sessions share without copying it).
    pub fn spawn(config: SessionConfig, routes: impl Into<Arc<DesiredRoutes>>) -> Session {
        Self::start(config, routes.into(), None)
    }

    /// Like [`Session::spawn`], guarded by a BFD session whose status `bfd_up` carries (true
    /// while BFD is Up). The session connects and exchanges OPENs while it is false but holds in
    /// OpenConfirm (no KEEPALIVE sent, so the peer cannot reach Established), and is closed at once
    /// with Cease subcode 10 "BFD Down" when it turns false, then retries through the normal
    /// backoff once BFD is Up again. If the sender is dropped, BFD is taken as Down for good.
    /// Sets [`FsmConfig::bfd_gated`]. See [`bfd_up_signal`] to adapt another status type.
    pub fn spawn_with_bfd(
        mut config: SessionConfig,
        routes: impl Into<Arc<DesiredRoutes>>,
        bfd_up: watch::Receiver<bool>,
    ) -> Session {
        config.fsm.bfd_gated = true;
        Self::start(config, routes.into(), Some(bfd_up))
    }

    fn start(
        config: SessionConfig,
        routes: Arc<DesiredRoutes>,
        bfd: Option<watch::Receiver<bool>>,
    ) -> Session {
        let inbox = Arc::new(routes::RouteInbox::default());
        inbox.replace(routes);
        let (status_tx, status_rx) = watch::channel(SessionStatus {
            state: State::Idle,
            negotiated: None,
            last_down: None,
            prefixes_sent: 0,
            established_count: 0,
            down_count: 0,
            finished: false,
        });
        let (cmd_tx, cmd_rx) = mpsc::channel(4);
        let counters = Arc::new(SessionCounters::default());
        let task = tokio::spawn(driver::run(
            config,
            Arc::clone(&inbox),
            cmd_rx,
            status_tx,
            bfd,
            counters.clone(),
        ));
        Session {
            routes: inbox,
            status: status_rx,
            commands: cmd_tx,
            counters,
            task,
        }
    }

    /// Replaces the desired routes; only the difference is sent. Sessions may be given the same
    /// `Arc` (the task reads it once and keeps its own table, with one `Arc` per distinct set of
    /// attributes).
    pub fn set_routes(&self, routes: impl Into<Arc<DesiredRoutes>>) {
        self.routes.replace(routes.into());
    }

    /// Changes the desired routes of the prefixes in `changes` only (the others stay as they
    /// are); changes given before the task took them add up, the last one of a prefix winning.
    /// The task's work follows the number of changed prefixes, not the size of the table, and
    /// the changes of one call that share attributes share UPDATEs.
    pub fn change_routes(&self, changes: RouteChanges) {
        if !changes.is_empty() {
            self.routes.change(changes);
        }
    }

    /// The session's running totals (UPDATEs and octets written, messages received), shared
    /// with the task: read them at any time, for example when metrics are scraped.
    pub fn counters(&self) -> Arc<SessionCounters> {
        Arc::clone(&self.counters)
    }

    /// A receiver of status changes.
    pub fn status(&self) -> watch::Receiver<SessionStatus> {
        self.status.clone()
    }

    /// Stops the session and waits for its task to end.
    pub async fn stop(self, mode: StopMode) {
        let _ = self.commands.send(Command::Stop(mode)).await;
        let _ = self.task.await;
    }
}

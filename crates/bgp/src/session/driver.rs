//! The per-peer task: owns the socket, the timers, the FSM and the Adj-RIB-Out.

use super::failure::{self, Attempt, Md5Counters};
use super::restart_state::RestartState;
use super::routes::{Desired, RouteInbox};
use super::{Command, SessionConfig, SessionCounters, SessionStatus, StopMode, next_hop, socket};
use crate::fsm::{Action, DownReason, Event, Fsm, Negotiated, OPEN_HOLD_TIME, State, Timer};
use crate::rib_out::AdjRibOut;
use crate::wire::{Family, Message, try_parse};
use bytes::BytesMut;
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};

/// How often the graceful-restart record is refreshed while Established.
const ALIVE_REFRESH: Duration = Duration::from_secs(5);
/// A write that takes longer than this (peer not reading) drops the connection.
const MIN_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

type ConnectFuture = Pin<Box<dyn Future<Output = Result<TcpStream, socket::ConnectError>> + Send>>;

struct Connection {
    reader: OwnedReadHalf,
    writer: OwnedWriteHalf,
    buf: BytesMut,
}

struct Driver {
    config: SessionConfig,
    fsm: Fsm,
    timers: [Option<Instant>; 4],
    connecting: Option<ConnectFuture>,
    conn: Option<Connection>,
    rib: Option<AdjRibOut>,
    /// Where the handle leaves route changes.
    inbox: Arc<RouteInbox>,
    /// The routes the peer should have (sent once Established).
    desired: Desired,
    status: watch::Sender<SessionStatus>,
    restart: Option<RestartState>,
    events: VecDeque<Event>,
    lingering: Vec<tokio::task::JoinHandle<()>>,
    peer: String,
    counters: Arc<SessionCounters>,
    /// The namespace's TCP-MD5 drop counters when the current attempt started.
    md5_at_connect: Option<Md5Counters>,
}

/// The deadline slot of one timer.
fn timer_slot(timers: &mut [Option<Instant>; 4], t: Timer) -> &mut Option<Instant> {
    let [connect_retry, hold, keepalive, stable] = timers;
    match t {
        Timer::ConnectRetry => connect_retry,
        Timer::Hold => hold,
        Timer::Keepalive => keepalive,
        Timer::Stable => stable,
    }
}

/// Runs one peer's session until stopped.
pub(super) async fn run(
    mut config: SessionConfig,
    inbox: Arc<RouteInbox>,
    mut commands: mpsc::Receiver<Command>,
    status: watch::Sender<SessionStatus>,
    mut bfd: Option<watch::Receiver<bool>>,
    counters: Arc<SessionCounters>,
) {
    let restart = config
        .state_dir
        .as_ref()
        .map(|dir| match &config.tcp.bind_device {
            Some(device) => RestartState::for_device(dir, config.tcp.peer.ip(), device),
            None => RestartState::new(dir, config.tcp.peer.ip()),
        });
    if let (Some(gr), Some(rs)) = (config.fsm.graceful_restart.as_mut(), &restart) {
        let restart_time = Duration::from_secs(u64::from(gr.restart_time));
        gr.restarting = rs.is_restarting(SystemTime::now(), restart_time);
        if gr.restarting {
            info!(peer = %config.tcp.peer, "restarting within the graceful-restart time: setting the R bit");
        }
    }
    if config.fsm.jitter_seed == 0 {
        config.fsm.jitter_seed = seed();
    }
    let mut d = Driver {
        peer: match (&config.tcp.bind_device, config.tcp.peer_on_link) {
            (Some(device), true) => format!("{device} (unnumbered)"),
            (Some(device), false) => format!("{}%{device}", config.tcp.peer),
            _ => config.tcp.peer.to_string(),
        },
        fsm: Fsm::new(config.fsm.clone()),
        config,
        timers: [None; 4],
        connecting: None,
        conn: None,
        rib: None,
        inbox: Arc::clone(&inbox),
        desired: Desired::default(),
        status,
        restart,
        events: VecDeque::new(),
        lingering: Vec::new(),
        counters,
        md5_at_connect: None,
    };
    if let Some(rx) = bfd.as_mut()
        && *rx.borrow_and_update()
    {
        d.events.push_back(Event::BfdUp);
    }
    d.events.push_back(Event::ManualStart);
    d.process().await;
    let mut alive = tokio::time::interval(ALIVE_REFRESH);
    loop {
        let established = d.fsm.state() == State::Established;
        let next_timer = d.timers.iter().flatten().min().copied();
        tokio::select! {
            res = async { d.connecting.as_mut().expect("guarded").await }, if d.connecting.is_some() => {
                d.connecting = None;
                match res.and_then(|s| {
                    let local = s.local_addr().map_err(|source| socket::ConnectError::Io {
                        step: "reading local address", peer: d.config.tcp.peer, source,
                    })?;
                    Ok((s, local))
                }) {
                    Ok((stream, local)) => {
                        let (reader, writer) = stream.into_split();
                        d.conn = Some(Connection { reader, writer, buf: BytesMut::with_capacity(8192) });
                        d.events.push_back(Event::TcpConnected { local: local.ip() });
                    }
                    Err(e) => {
                        let why = d.attempt_failed(Attempt::of(&e), &e.to_string());
                        d.events.push_back(Event::TcpFailed(why));
                    }
                }
            }
            read = async {
                let c = d.conn.as_mut().expect("guarded");
                c.reader.read_buf(&mut c.buf).await
            }, if d.conn.is_some() => {
                match read {
                    Ok(0) => {
                        // Drop the dead socket at once: reading it again would return at once.
                        d.conn = None;
                        d.events.push_back(Event::TcpClosed("the peer closed the connection".into()));
                    }
                    Ok(_) => { d.parse_and_process().await; continue; }
                    Err(e) => {
                        d.conn = None;
                        d.events.push_back(Event::TcpClosed(e.to_string()));
                    }
                }
            }
            () = sleep_until_opt(next_timer), if next_timer.is_some() => {
                let now = Instant::now();
                for t in Timer::ALL {
                    let slot = timer_slot(&mut d.timers, t);
                    if slot.is_some_and(|at| at <= now) {
                        *slot = None;
                        d.events.push_back(Event::TimerExpired(t));
                    }
                }
            }
            () = inbox.notify.notified(), if established => d.send_route_changes().await,
            _ = alive.tick(), if established => d.mark_alive(),
            changed = async { bfd.as_mut().expect("guarded").changed().await }, if bfd.is_some() => {
                let up = match (changed, bfd.as_mut()) {
                    (Ok(()), Some(rx)) => *rx.borrow_and_update(),
                    _ => {
                        warn!(peer = %d.peer, "BFD status source gone: treating BFD as Down");
                        bfd = None;
                        false
                    }
                };
                if up {
                    info!(peer = %d.peer, "BFD Up");
                    d.events.push_back(Event::BfdUp);
                } else {
                    warn!(peer = %d.peer, "BFD Down: closing the BGP session (RFC 9384)");
                    d.events.push_back(Event::BfdDown);
                }
            }
            cmd = commands.recv() => {
                let mode = match cmd {
                    Some(Command::Stop(mode)) => mode,
                    None => StopMode::Withdraw { communication: "ferrolb session handle dropped".into() },
                };
                d.stop(mode).await;
                d.status.send_modify(|s| s.finished = true);
                return;
            }
        }
        d.process().await;
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Closes a connection so that what was written (a NOTIFICATION) still reaches the peer:
/// send FIN, then read and discard until the peer closes too (or a second passes). Closing
/// with unread data in the receive buffer would make the kernel send a reset instead.
async fn linger_close(mut conn: Connection) {
    let _ = conn.writer.shutdown().await;
    let drain = async {
        let mut scratch = [0u8; 4096];
        while let Ok(n) = conn.reader.read(&mut scratch).await {
            if n == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
}

fn seed() -> u64 {
    let t = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    // The low 64 bits of the nanoseconds: a seed, truncation wanted.
    let nanos = u64::try_from(t.as_nanos() & u128::from(u64::MAX)).unwrap_or_default();
    nanos ^ (u64::from(std::process::id()) << 32) | 1
}

impl Driver {
    /// Takes whole messages off the receive buffer, one at a time (the FSM's context may change
    /// after each, e.g. after the OPEN), and feeds them to the FSM.
    async fn parse_and_process(&mut self) {
        loop {
            let Some(conn) = self.conn.as_mut() else {
                return;
            };
            let ctx = self.fsm.context();
            match try_parse(&mut conn.buf, &ctx) {
                Ok(None) => return,
                Ok(Some(msg)) => {
                    if let Message::Update(u) = &msg
                        && !u.issues.is_empty()
                    {
                        warn!(peer = %self.peer, issues = ?u.issues, "UPDATE with errors handled per RFC 7606");
                    }
                    debug!(peer = %self.peer, message_type = msg.message_type(), "received");
                    self.counters.received(&msg);
                    self.events.push_back(Event::MessageReceived(msg));
                }
                Err(e) => {
                    warn!(peer = %self.peer, error = %e, "cannot decode what the peer sent");
                    self.events.push_back(Event::DecodeFailed(e.error));
                }
            }
            self.process().await;
        }
    }

    /// Feeds queued events to the FSM and performs its actions until the queue is empty.
    async fn process(&mut self) {
        while let Some(event) = self.events.pop_front() {
            if event == Event::TimerExpired(Timer::Hold) && self.fsm.state() == State::OpenSent {
                // Our OPEN went out over a working connection and nothing came back.
                let why =
                    self.attempt_failed(Attempt::NoOpen(OPEN_HOLD_TIME), "hold timer expired");
                warn!(peer = %self.peer, "{why}");
            }
            let actions = self.fsm.handle(event);
            for action in actions {
                self.perform(action).await;
            }
        }
    }

    async fn perform(&mut self, action: Action) {
        match action {
            Action::Connect => {
                self.md5_at_connect = Md5Counters::read();
                let opts = self.config.tcp.clone();
                self.connecting = Some(Box::pin(async move { socket::connect(&opts).await }));
            }
            Action::Send(msg) => self.send(&[msg]).await,
            Action::ArmTimer(t, d) => {
                if t == Timer::ConnectRetry {
                    info!(peer = %self.peer, retry_in = ?d, failures = self.fsm.connect_failures(), "connecting again after a delay");
                }
                *timer_slot(&mut self.timers, t) = Some(Instant::now() + d);
            }
            Action::CancelTimer(t) => *timer_slot(&mut self.timers, t) = None,
            Action::CloseConnection => {
                if let Some(conn) = self.conn.take() {
                    self.lingering.retain(|h| !h.is_finished());
                    self.lingering.push(tokio::spawn(linger_close(conn)));
                }
                self.connecting = None;
            }
            Action::StateChanged { from, to } => {
                info!(peer = %self.peer, %from, %to, "BGP state change");
                self.status.send_modify(|s| s.state = to);
            }
            Action::Established(n) => self.established(n).await,
            Action::ResendTable(family) => {
                info!(peer = %self.peer, %family, "ROUTE-REFRESH: sending the table again");
                if let Some(rib) = self.rib.as_mut() {
                    let mut msgs = rib.resend_family(family);
                    msgs.push(rib.end_of_rib(family));
                    self.send(&msgs).await;
                }
            }
            Action::Down(reason) => {
                match &reason {
                    DownReason::Stopped => info!(peer = %self.peer, "BGP session stopped"),
                    r => warn!(peer = %self.peer, reason = %r, "BGP session down"),
                }
                self.rib = None;
                self.counters.set_advertised(0);
                self.status.send_modify(|s| {
                    s.negotiated = None;
                    s.prefixes_sent = 0;
                    s.last_down = Some(reason);
                    s.down_count += 1;
                });
            }
        }
    }

    /// Counts a failed attempt by its reason and words it (see [`failure`]), with the TCP-MD5 drops the
    /// kernel counted since the attempt started.
    fn attempt_failed(&mut self, attempt: Attempt, error: &str) -> String {
        let (reason, why) =
            failure::describe(attempt, self.md5_at_connect.take(), &self.config.tcp, error);
        self.counters.connect_failed(reason);
        why
    }

    async fn established(&mut self, n: Box<Negotiated>) {
        let (auto_v4, auto_v6) = next_hop::next_hops(n.local_addr);
        let v4 = self.config.next_hop_v4.or(auto_v4);
        let v6 = self.config.next_hop_v6.or(auto_v6);
        let link_local = next_hop::link_local_next_hop(n.local_addr);
        let peer_gr = n
            .context
            .peer_graceful_restart
            .as_ref()
            .map(|g| format!("restart time {} s, R={}", g.restart_time, g.restart_state));
        info!(
            peer = %self.peer,
            peer_router_id = %n.context.peer_bgp_id,
            hold_time = n.context.hold_time,
            families = ?n.context.families,
            four_octet_as = n.context.four_octet_as,
            peer_graceful_restart = peer_gr.as_deref().unwrap_or("no"),
            next_hop_v4 = ?v4,
            next_hop_v6 = ?v6,
            link_local_next_hop = ?link_local,
            extended_next_hop = n.context.extended_next_hop_send,
            "BGP session established"
        );
        let mut rib = AdjRibOut::new(&n.context, v4, v6).with_link_local_next_hop(link_local);
        self.desired.fold(self.inbox.take());
        let routes = self.desired.routes();
        let msgs = rib.apply(routes, routes.keys());
        self.rib = Some(rib);
        self.send(&msgs).await;
        // RFC 4724 §4.1/§4.2: after the initial table, End-of-RIB for each family.
        let families: Vec<Family> = n.context.families.clone();
        if let Some(rib) = self.rib.as_ref() {
            let eors: Vec<Message> = families.iter().map(|f| rib.end_of_rib(*f)).collect();
            self.send(&eors).await;
        }
        let sent = self.rib.as_ref().map_or(0, AdjRibOut::len);
        self.counters.set_advertised(sent);
        info!(peer = %self.peer, prefixes = sent, "initial table and End-of-RIB sent");
        self.status.send_modify(|s| {
            s.negotiated = Some(Arc::from(n));
            s.prefixes_sent = sent;
            s.established_count += 1;
        });
        self.mark_alive();
    }

    async fn send_route_changes(&mut self) {
        let changed = self.desired.fold(self.inbox.take());
        let Some(rib) = self.rib.as_mut() else {
            return;
        };
        let msgs = rib.apply(self.desired.routes(), &changed);
        let sent = rib.len();
        if !msgs.is_empty() {
            info!(peer = %self.peer, updates = msgs.len(), prefixes = sent, "sending route changes");
        }
        self.send(&msgs).await;
        self.counters.set_advertised(sent);
        self.status.send_modify(|s| s.prefixes_sent = sent);
    }

    /// Encodes and writes `msgs`; a failure queues a connection-closed event.
    async fn send(&mut self, msgs: &[Message]) {
        if msgs.is_empty() {
            return;
        }
        let ctx = self.fsm.context();
        let mut out = BytesMut::new();
        // Each message with its encoded length, counted once the write succeeded.
        let mut written: Vec<(&Message, usize)> = Vec::with_capacity(msgs.len());
        for m in msgs {
            let before = out.len();
            match m.encode_into(&ctx, &mut out) {
                Ok(()) => written.push((m, out.len() - before)),
                Err(e) => {
                    // Our own message does not fit: a bug or an impossible route set; say so
                    // and keep the session.
                    out.truncate(before);
                    warn!(peer = %self.peer, error = %e, "cannot encode a message; not sent");
                }
            }
        }
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        let hold = Duration::from_secs(u64::from(ctx.hold_time)).max(MIN_WRITE_TIMEOUT);
        let result = tokio::time::timeout(hold, conn.writer.write_all(&out)).await;
        let failure = match result {
            Ok(Ok(())) => {
                for (m, len) in written {
                    self.counters.sent(m, len);
                }
                None
            }
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some(format!(
                "write blocked for {hold:?}: the peer is not reading"
            )),
        };
        if let Some(why) = failure {
            self.conn = None;
            self.events.push_back(Event::TcpClosed(why));
        }
    }

    fn mark_alive(&self) {
        if self.config.fsm.graceful_restart.is_none() {
            return;
        }
        if let Some(rs) = &self.restart
            && let Err(e) = rs.mark_alive(SystemTime::now())
        {
            warn!(path = %rs.path().display(), error = %e, "cannot write the graceful-restart record");
        }
    }

    async fn stop(&mut self, mode: StopMode) {
        let gr_both = self.config.fsm.graceful_restart.is_some()
            && self
                .fsm
                .negotiated()
                .is_some_and(|n| n.context.peer_graceful_restart.is_some());
        match mode {
            StopMode::Graceful { .. } if gr_both && self.fsm.state() == State::Established => {
                // RFC 4724: close without a NOTIFICATION; the peer keeps our routes as stale.
                info!(peer = %self.peer, "graceful stop: closing without withdrawing (graceful restart)");
                self.mark_alive();
                self.conn = None;
            }
            StopMode::Graceful { communication } | StopMode::Withdraw { communication } => {
                if self.fsm.state() == State::Established
                    && let Some(rib) = self.rib.as_mut()
                {
                    let msgs = rib.set_desired(&BTreeMap::new());
                    info!(peer = %self.peer, updates = msgs.len(), "withdrawing every route");
                    self.send(&msgs).await;
                }
                self.events.push_back(Event::ManualStop { communication });
                self.process().await;
                if let Some(conn) = self.conn.take() {
                    linger_close(conn).await;
                }
                if let Some(rs) = &self.restart
                    && let Err(e) = rs.clear()
                {
                    warn!(path = %rs.path().display(), error = %e, "cannot remove the graceful-restart record");
                }
            }
        }
        for h in self.lingering.drain(..) {
            let _ = h.await;
        }
        self.status.send_modify(|s| s.state = State::Idle);
    }
}

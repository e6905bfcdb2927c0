//! The RFC 4271 §8 session state machine, sans-IO.
//!
//! [`Fsm::handle`] takes one [`Event`] (a decoded message, a TCP outcome, a timer that fired,
//! an operator command) and returns the [`Action`]s the driver must perform, in order: send a
//! message, arm or cancel a timer, open or close the connection, report a state change. There
//! are no sockets and no clocks here; timers are actions ("arm the hold timer for 90 s") and
//! the jitter of the connect-retry backoff comes from a seeded [`JitterSource`].
//!
//! This speaker connects actively and does not listen, so the states are Idle, Connect,
//! OpenSent, OpenConfirm and Established (Active, the listening state, is never entered). After
//! a failure the FSM waits in Idle for the connect-retry timer (RFC 4271 §8.1.1's automatic
//! start with peer oscillation damping), whose delay grows exponentially and is reset only
//! after a session has stayed Established for [`FsmConfig::stable_time`]. An OPEN exchange that
//! ends in a NOTIFICATION therefore never resets it.
//!
//! With [`FsmConfig::bfd_gated`], a BFD session guards the BGP session (RFC 9384): BGP does
//! not reach Established while BFD is not Up ([`Event::BfdUp`] / [`Event::BfdDown`]), and BFD
//! going Down closes the session at once with Cease subcode 10, "BFD Down", then retries
//! through the normal backoff. The FSM still connects and exchanges OPENs while BFD is Down,
//! then holds in OpenConfirm without sending its KEEPALIVE until BFD is Up (the peer stays in
//! OpenConfirm too; its hold timer bounds the wait). Connecting first matters: a router that
//! accepts dynamic neighbours (FRR's `bgp listen range`) creates the neighbour, and with it its
//! BFD session, only when the TCP connection arrives, so refusing to connect until BFD is Up
//! would wait forever.

use crate::backoff::{ConnectRetryBackoff, JitterSource};
use crate::wire::{
    Capability, Cease, ExtendedNextHop, Family, FsmErrorSubcode, GracefulRestart,
    GracefulRestartFamily, Message, Notification, NotificationError, Open, PeerAs, SessionContext,
    negotiate,
};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// The hold time used while waiting for the peer's OPEN (RFC 4271 §8.2.2: "a large value",
/// 4 minutes suggested).
pub const OPEN_HOLD_TIME: Duration = Duration::from_secs(240);

/// Configuration of one peer's state machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsmConfig {
    /// Our AS.
    pub my_asn: u32,
    /// The AS the peer must have: a number, or any of one kind ([`PeerAs::Internal`],
    /// [`PeerAs::External`]) learned from its OPEN.
    pub peer_asn: PeerAs,
    /// Present another AS than `my_asn` to this peer (RFC 7705's local AS, e.g. during an AS
    /// migration); `None` presents `my_asn`.
    pub local_as: Option<LocalAs>,
    /// Our BGP identifier; `None` uses the session's local IPv4 address.
    pub router_id: Option<Ipv4Addr>,
    /// The hold time we propose, in seconds (0, or at least 3).
    pub hold_time: u16,
    /// The keepalive interval; `None` is a third of the negotiated hold time. See
    /// [`keepalive_interval`] for how it meets a hold time the peer lowered.
    pub keepalive_time: Option<Duration>,
    /// The families we offer.
    pub families: Vec<Family>,
    /// Announce that we accept IPv4 unicast with IPv6 next hops (RFC 8950 extended next hop,
    /// tuple `<1, 1, 2>`), as unnumbered (link-local) sessions need.
    pub extended_next_hop: bool,
    /// Graceful restart (RFC 4724) as a restarting speaker; `None` advertises nothing.
    pub graceful_restart: Option<GracefulRestartConfig>,
    /// The first connect-retry delay (before jitter).
    pub connect_retry_initial: Duration,
    /// The largest connect-retry delay.
    pub connect_retry_max: Duration,
    /// How long a session must stay Established before the backoff resets.
    pub stable_time: Duration,
    /// Seed of the jitter source.
    pub jitter_seed: u64,
    /// A BFD session guards this peer: start with BFD considered Down, hold in OpenConfirm
    /// (our KEEPALIVE not sent) until it is Up, and close with Cease / BFD Down when it goes Down.
    pub bfd_gated: bool,
}

impl FsmConfig {
    /// Defaults: hold time 90 s, IPv4 and IPv6 unicast, graceful restart with 120 s, retry from
    /// 1 s up to 60 s, stable after 30 s.
    pub fn new(my_asn: u32, peer_asn: impl Into<PeerAs>) -> Self {
        Self {
            my_asn,
            peer_asn: peer_asn.into(),
            local_as: None,
            router_id: None,
            hold_time: 90,
            keepalive_time: None,
            families: vec![Family::Ipv4Unicast, Family::Ipv6Unicast],
            extended_next_hop: false,
            graceful_restart: Some(GracefulRestartConfig {
                restart_time: 120,
                restarting: false,
            }),
            connect_retry_initial: Duration::from_secs(1),
            connect_retry_max: Duration::from_secs(60),
            stable_time: Duration::from_secs(30),
            jitter_seed: 0,
            bfd_gated: false,
        }
    }
}

/// The AS a session presents instead of ours (RFC 7705). ferrolb receives no routes to pass on, so
/// RFC 7705's "no-prepend" (not adding the local AS to received routes) always holds; what is
/// left to choose is the AS_PATH of the routes we originate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalAs {
    /// The AS in our OPEN (and the 4-octet AS capability).
    pub asn: u32,
    /// `true`: our routes carry only `asn` (replace-as); `false`: `asn` followed by our real AS,
    /// as a router in the middle of a migration shows both.
    pub replace_as: bool,
}

impl FsmConfig {
    /// The AS our OPEN presents.
    pub fn presented_asn(&self) -> u32 {
        self.local_as.map_or(self.my_asn, |l| l.asn)
    }
}

/// The interval between our KEEPALIVEs on a session that negotiated `negotiated_hold` seconds
/// after we proposed `proposed_hold` with the configured `keepalive` (MetalLB's
/// `keepalive-time`; `None` when not configured).
///
/// - A negotiated hold time of 0 means no KEEPALIVEs at all (RFC 4271 §4.4): zero.
/// - Unconfigured (or configured as 0 with a non-zero hold time, which would let the peer's
///   hold timer expire): a third of the negotiated hold time, RFC 4271 §10's suggestion.
/// - Configured: exactly that interval while the peer accepted our hold time. When the peer
///   lowered it, the interval is capped at a third of the negotiated hold time, so that the
///   peer still hears from us about three times per hold time (as FRR and BIRD do).
pub fn keepalive_interval(
    keepalive: Option<Duration>,
    proposed_hold: u16,
    negotiated_hold: u16,
) -> Duration {
    let hold = Duration::from_secs(u64::from(negotiated_hold));
    if hold.is_zero() {
        return Duration::ZERO;
    }
    match keepalive.filter(|k| !k.is_zero()) {
        None => hold / 3,
        Some(k) if negotiated_hold < proposed_hold => k.min(hold / 3),
        Some(k) => k,
    }
}

/// Graceful restart as a restarting speaker (RFC 4724).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GracefulRestartConfig {
    /// Restart time advertised, in seconds (at most 4095).
    pub restart_time: u16,
    /// Whether this process restarted within the restart time: sets the R bit.
    pub restarting: bool,
}

/// The session states (RFC 4271 §8.2.2; Active is never entered, see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Not connected; waiting for a start or for the connect-retry timer.
    Idle,
    /// Waiting for the TCP connection to complete.
    Connect,
    /// Our OPEN is sent; waiting for the peer's.
    OpenSent,
    /// OPENs exchanged; waiting for the peer's KEEPALIVE.
    OpenConfirm,
    /// The session is up.
    Established,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Idle => "Idle",
            State::Connect => "Connect",
            State::OpenSent => "OpenSent",
            State::OpenConfirm => "OpenConfirm",
            State::Established => "Established",
        })
    }
}

/// The timers the FSM asks the driver to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Timer {
    /// Time to try connecting again.
    ConnectRetry,
    /// Nothing received from the peer for the hold time.
    Hold,
    /// Time to send a KEEPALIVE.
    Keepalive,
    /// The session has been Established long enough to reset the backoff.
    Stable,
}

impl Timer {
    /// Every timer, for drivers that keep one slot each.
    pub const ALL: [Timer; 4] = [
        Timer::ConnectRetry,
        Timer::Hold,
        Timer::Keepalive,
        Timer::Stable,
    ];
}

/// Inputs to the FSM, named after the RFC 4271 §8.1 events they stand for.
// Events live for one call and are moved once; boxing messages would cost an allocation each.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Event 1, ManualStart.
    ManualStart,
    /// Event 2, ManualStop: close with Cease / Administrative Shutdown and this RFC 9003
    /// communication, and do not reconnect.
    ManualStop {
        /// The shutdown communication (may be empty).
        communication: String,
    },
    /// Events 16/17, the TCP connection is up; `local` is our address on it.
    TcpConnected {
        /// Our address on the connection.
        local: IpAddr,
    },
    /// Event 18, the connection attempt failed; the reason in words.
    TcpFailed(String),
    /// The established TCP connection closed or failed.
    TcpClosed(String),
    /// Events 19–28: a message arrived and decoded.
    MessageReceived(Message),
    /// Events 21/22/28: the bytes received do not decode; the session must be reset with this.
    DecodeFailed(NotificationError),
    /// Events 9–12: a timer fired.
    TimerExpired(Timer),
    /// The guarding BFD session is Up (only meaningful with [`FsmConfig::bfd_gated`]).
    BfdUp,
    /// The guarding BFD session left Up (RFC 9384): close with Cease / BFD Down.
    BfdDown,
}

/// Outputs of the FSM, to be performed in order.
#[allow(clippy::large_enum_variant)] // as for `Event`
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Open a TCP connection to the peer; answer with `TcpConnected` or `TcpFailed`.
    Connect,
    /// Send a message (an OPEN, KEEPALIVE or NOTIFICATION; UPDATEs come from the Adj-RIB-Out).
    Send(Message),
    /// Start (or restart) a timer.
    ArmTimer(Timer, Duration),
    /// Stop a timer.
    CancelTimer(Timer),
    /// Close the TCP connection (after sending what came before).
    CloseConnection,
    /// The state changed.
    StateChanged {
        /// The old state.
        from: State,
        /// The new state.
        to: State,
    },
    /// The session is Established with what was negotiated: send the table, then End-of-RIB.
    Established(Box<Negotiated>),
    /// The peer asked for the table of one family again (ROUTE-REFRESH).
    ResendTable(Family),
    /// The session went down.
    Down(DownReason),
}

/// What a session negotiated, for the driver and for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// The codec context (families, 4-octet AS, hold time, peer identifier...).
    pub context: SessionContext,
    /// Our BGP identifier on this session.
    pub local_bgp_id: Ipv4Addr,
    /// Our address on the connection (the NEXT_HOP we announce).
    pub local_addr: IpAddr,
    /// The keepalive interval ([`keepalive_interval`]; zero when the hold time is 0).
    pub keepalive: Duration,
    /// The OPEN the peer sent (all capabilities, unknown ones included).
    pub peer_open: Open,
    /// The OPEN we sent.
    pub local_open: Open,
}

/// Why a session went down.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DownReason {
    /// We sent this NOTIFICATION.
    NotificationSent(NotificationError),
    /// The peer sent this NOTIFICATION.
    NotificationReceived(NotificationError),
    /// The TCP connection failed or closed.
    Connection(String),
    /// Stopped by the operator.
    Stopped,
}

impl fmt::Display for DownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DownReason::NotificationSent(e) => write!(f, "sent NOTIFICATION: {e}"),
            DownReason::NotificationReceived(e) => write!(f, "received NOTIFICATION: {e}"),
            DownReason::Connection(why) => write!(f, "connection: {why}"),
            DownReason::Stopped => f.write_str("stopped"),
        }
    }
}

/// One peer's state machine.
#[derive(Debug)]
pub struct Fsm {
    config: FsmConfig,
    state: State,
    stopped: bool,
    backoff: ConnectRetryBackoff,
    jitter: JitterSource,
    local_open: Option<Open>,
    local_addr: Option<IpAddr>,
    negotiated: Option<Box<Negotiated>>,
    /// False while a guarding BFD session is not Up (always true without BFD).
    bfd_up: bool,
    /// In OpenConfirm, our KEEPALIVE (which lets the peer reach Established) waits for BFD Up.
    keepalive_owed: bool,
    /// In OpenConfirm, the peer's KEEPALIVE arrived while we were waiting for BFD Up.
    peer_confirmed: bool,
}

impl Fsm {
    /// A state machine in Idle. Nothing happens until [`Event::ManualStart`].
    pub fn new(config: FsmConfig) -> Self {
        Self {
            backoff: ConnectRetryBackoff::new(
                config.connect_retry_initial,
                config.connect_retry_max,
            ),
            jitter: JitterSource::new(config.jitter_seed),
            bfd_up: !config.bfd_gated,
            keepalive_owed: false,
            peer_confirmed: false,
            config,
            state: State::Idle,
            stopped: true,
            local_open: None,
            local_addr: None,
            negotiated: None,
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The configuration.
    pub fn config(&self) -> &FsmConfig {
        &self.config
    }

    /// What the current session negotiated, while it is Established.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_deref()
    }

    /// The codec context for decoding what the peer sends now.
    pub fn context(&self) -> SessionContext {
        self.negotiated
            .as_ref()
            .map_or_else(SessionContext::before_open, |n| n.context.clone())
    }

    /// Whether the guarding BFD session is considered Up (always true without BFD).
    pub fn bfd_up(&self) -> bool {
        self.bfd_up
    }

    /// Connection failures since the backoff was last reset.
    pub fn connect_failures(&self) -> u32 {
        self.backoff.failures()
    }

    /// Feeds one event and returns what to do.
    pub fn handle(&mut self, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::ManualStart => {
                if self.state == State::Idle {
                    self.stopped = false;
                    out.push(Action::CancelTimer(Timer::ConnectRetry));
                    self.connect(&mut out);
                }
            }
            Event::ManualStop { communication } => self.manual_stop(communication, &mut out),
            Event::TcpConnected { local } => self.tcp_connected(local, &mut out),
            Event::TcpFailed(why) | Event::TcpClosed(why) => {
                if self.state != State::Idle {
                    out.push(Action::CloseConnection);
                    self.fail(DownReason::Connection(why), &mut out);
                }
            }
            Event::DecodeFailed(error) => {
                if self.connected() {
                    self.send_notification_and_fail(error, &mut out);
                }
            }
            Event::MessageReceived(message) => self.message(message, &mut out),
            Event::TimerExpired(timer) => self.timer(timer, &mut out),
            Event::BfdUp => self.bfd_came_up(&mut out),
            Event::BfdDown => self.bfd_went_down(&mut out),
        }
        out
    }

    fn connected(&self) -> bool {
        matches!(
            self.state,
            State::OpenSent | State::OpenConfirm | State::Established
        )
    }

    fn set_state(&mut self, to: State, out: &mut Vec<Action>) {
        if self.state != to {
            out.push(Action::StateChanged {
                from: self.state,
                to,
            });
            self.state = to;
        }
    }

    fn connect(&mut self, out: &mut Vec<Action>) {
        self.set_state(State::Connect, out);
        out.push(Action::Connect);
    }

    fn bfd_came_up(&mut self, out: &mut Vec<Action>) {
        if !self.config.bfd_gated || self.bfd_up {
            return;
        }
        self.bfd_up = true;
        if self.state == State::OpenConfirm && self.keepalive_owed {
            // The OPEN exchange is done: confirm it now, and finish if the peer already has.
            self.keepalive_owed = false;
            self.send_keepalive_and_arm(out);
            if self.peer_confirmed {
                self.establish(out);
            }
        }
    }

    /// Sends the KEEPALIVE that confirms the peer's OPEN and arms the keepalive timer.
    fn send_keepalive_and_arm(&self, out: &mut Vec<Action>) {
        out.push(Action::Send(Message::Keepalive));
        if let Some(n) = &self.negotiated
            && !n.keepalive.is_zero()
            && n.context.hold_time != 0
        {
            out.push(Action::ArmTimer(Timer::Keepalive, n.keepalive));
        }
    }

    fn establish(&mut self, out: &mut Vec<Action>) {
        self.set_state(State::Established, out);
        out.push(Action::ArmTimer(Timer::Stable, self.config.stable_time));
        if let Some(n) = &self.negotiated {
            out.push(Action::Established(n.clone()));
        }
    }

    fn bfd_went_down(&mut self, out: &mut Vec<Action>) {
        if !self.config.bfd_gated || !self.bfd_up {
            return;
        }
        self.bfd_up = false;
        match self.state {
            State::Idle => {}
            State::Connect => {
                out.push(Action::CloseConnection);
                self.fail(DownReason::Connection("BFD Down".to_string()), out);
            }
            State::OpenSent | State::OpenConfirm | State::Established => {
                self.send_notification_and_fail(NotificationError::Cease(Cease::BfdDown), out);
            }
        }
    }

    fn tcp_connected(&mut self, local: IpAddr, out: &mut Vec<Action>) {
        if self.state != State::Connect {
            // A stale connection (we were stopped meanwhile): drop it.
            out.push(Action::CloseConnection);
            return;
        }
        let open = self.build_open(local);
        self.local_addr = Some(local);
        self.local_open = Some(open.clone());
        out.push(Action::Send(Message::Open(open)));
        out.push(Action::ArmTimer(Timer::Hold, OPEN_HOLD_TIME));
        self.set_state(State::OpenSent, out);
    }

    /// The OPEN we send on a connection whose local address is `local`.
    pub fn build_open(&self, local: IpAddr) -> Open {
        let c = &self.config;
        let bgp_id = c.router_id.unwrap_or(match local {
            IpAddr::V4(v4) => v4,
            // No IPv4 address to borrow: any non-zero identifier will do; derive it from the
            // IPv6 address's last four octets.
            IpAddr::V6(v6) => {
                let o = v6.octets();
                let id = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
                if id.is_unspecified() {
                    Ipv4Addr::new(0, 0, 0, 1)
                } else {
                    id
                }
            }
        });
        let mut caps: Vec<Capability> = c
            .families
            .iter()
            .map(|f| Capability::Multiprotocol(*f))
            .collect();
        if c.extended_next_hop && c.families.contains(&Family::Ipv4Unicast) {
            caps.push(Capability::ExtendedNextHop(vec![
                ExtendedNextHop::IPV4_UNICAST_OVER_IPV6,
            ]));
        }
        caps.push(Capability::RouteRefresh);
        caps.push(Capability::FourOctetAs(c.presented_asn()));
        if let Some(gr) = c.graceful_restart {
            caps.push(Capability::GracefulRestart(GracefulRestart {
                restart_state: gr.restarting,
                notification: false,
                restart_time: gr.restart_time.min(0x0fff),
                families: c
                    .families
                    .iter()
                    .map(|f| GracefulRestartFamily {
                        family: *f,
                        forwarding: true,
                    })
                    .collect(),
            }));
        }
        Open::new(c.presented_asn(), c.hold_time, bgp_id, caps)
    }

    fn message(&mut self, message: Message, out: &mut Vec<Action>) {
        match (self.state, message) {
            (State::Idle | State::Connect, _) => {}
            (_, Message::Notification(n)) => {
                out.push(Action::CloseConnection);
                self.fail(DownReason::NotificationReceived(n.error()), out);
            }
            (State::OpenSent, Message::Open(open)) => self.open_received(open, out),
            (State::OpenConfirm, Message::Keepalive) => {
                self.restart_hold(out);
                if self.keepalive_owed {
                    // RFC 9384: not Established before BFD is Up; remember the peer is ready.
                    self.peer_confirmed = true;
                } else {
                    self.establish(out);
                }
            }
            (State::Established, Message::Keepalive | Message::Update(_)) => {
                self.restart_hold(out);
            }
            (State::Established, Message::RouteRefresh(rr)) => {
                self.restart_hold(out);
                // RFC 2918 §4: a request for a family not negotiated is ignored.
                if let Some(family) = rr.family()
                    && self.context().supports(family)
                {
                    out.push(Action::ResendTable(family));
                }
            }
            (state, _) => {
                let subcode = match state {
                    State::OpenSent => FsmErrorSubcode::UnexpectedInOpenSent,
                    State::OpenConfirm => FsmErrorSubcode::UnexpectedInOpenConfirm,
                    _ => FsmErrorSubcode::UnexpectedInEstablished,
                };
                self.send_notification_and_fail(
                    NotificationError::FiniteStateMachine(subcode),
                    out,
                );
            }
        }
    }

    fn open_received(&mut self, peer_open: Open, out: &mut Vec<Action>) {
        let (Some(local_open), Some(local_addr)) = (self.local_open.clone(), self.local_addr)
        else {
            return;
        };
        match negotiate(&local_open, &peer_open, self.config.peer_asn) {
            Err(error) => self.send_notification_and_fail(error, out),
            Ok(mut context) => {
                context.real_asn = self
                    .config
                    .local_as
                    .filter(|l| !l.replace_as && l.asn != self.config.my_asn)
                    .map(|_| self.config.my_asn);
                let hold = Duration::from_secs(u64::from(context.hold_time));
                let keepalive = keepalive_interval(
                    self.config.keepalive_time,
                    self.config.hold_time,
                    context.hold_time,
                );
                // With BFD not Up, our KEEPALIVE waits (see the module docs); the peer's
                // KEEPALIVEs still restart the hold timer meanwhile.
                self.keepalive_owed = !self.bfd_up;
                if !self.keepalive_owed {
                    out.push(Action::Send(Message::Keepalive));
                }
                if hold.is_zero() {
                    out.push(Action::CancelTimer(Timer::Hold));
                } else {
                    out.push(Action::ArmTimer(Timer::Hold, hold));
                    if !self.keepalive_owed {
                        out.push(Action::ArmTimer(Timer::Keepalive, keepalive));
                    }
                }
                self.negotiated = Some(Box::new(Negotiated {
                    local_bgp_id: local_open.bgp_id,
                    local_addr,
                    keepalive,
                    context,
                    peer_open,
                    local_open,
                }));
                self.set_state(State::OpenConfirm, out);
            }
        }
    }

    fn hold_time(&self) -> Duration {
        self.negotiated.as_ref().map_or(OPEN_HOLD_TIME, |n| {
            Duration::from_secs(u64::from(n.context.hold_time))
        })
    }

    fn restart_hold(&self, out: &mut Vec<Action>) {
        let hold = self.hold_time();
        if !hold.is_zero() {
            out.push(Action::ArmTimer(Timer::Hold, hold));
        }
    }

    fn timer(&mut self, timer: Timer, out: &mut Vec<Action>) {
        match (timer, self.state) {
            (Timer::ConnectRetry, State::Idle) if !self.stopped => self.connect(out),
            (Timer::Hold, State::OpenSent | State::OpenConfirm | State::Established) => {
                self.send_notification_and_fail(NotificationError::HoldTimerExpired, out);
            }
            (Timer::Keepalive, State::OpenConfirm | State::Established) => {
                if !self.keepalive_owed
                    && let Some(n) = &self.negotiated
                    && !n.keepalive.is_zero()
                {
                    out.push(Action::Send(Message::Keepalive));
                    out.push(Action::ArmTimer(Timer::Keepalive, n.keepalive));
                }
            }
            (Timer::Stable, State::Established) => self.backoff.reset(),
            // A timer that fired after its state was left: nothing to do.
            _ => {}
        }
    }

    fn send_notification_and_fail(&mut self, error: NotificationError, out: &mut Vec<Action>) {
        out.push(Action::Send(Message::Notification(Notification::from(
            error.clone(),
        ))));
        out.push(Action::CloseConnection);
        self.fail(DownReason::NotificationSent(error), out);
    }

    /// Leaves the session: cancel session timers, go Idle, report, and schedule a retry.
    fn fail(&mut self, reason: DownReason, out: &mut Vec<Action>) {
        self.reset_session(out);
        out.push(Action::Down(reason));
        if !self.stopped {
            let delay = self.backoff.record_failure(self.jitter.next_u32());
            out.push(Action::ArmTimer(Timer::ConnectRetry, delay));
        }
    }

    fn reset_session(&mut self, out: &mut Vec<Action>) {
        for t in [Timer::Hold, Timer::Keepalive, Timer::Stable] {
            out.push(Action::CancelTimer(t));
        }
        self.negotiated = None;
        self.local_open = None;
        self.local_addr = None;
        self.keepalive_owed = false;
        self.peer_confirmed = false;
        self.set_state(State::Idle, out);
    }

    fn manual_stop(&mut self, communication: String, out: &mut Vec<Action>) {
        self.stopped = true;
        out.push(Action::CancelTimer(Timer::ConnectRetry));
        match self.state {
            State::Idle => {}
            State::Connect => {
                out.push(Action::CloseConnection);
                self.reset_session(out);
                out.push(Action::Down(DownReason::Stopped));
            }
            _ => {
                let error =
                    NotificationError::Cease(Cease::AdministrativeShutdown { communication });
                out.push(Action::Send(Message::Notification(error.into())));
                out.push(Action::CloseConnection);
                self.reset_session(out);
                out.push(Action::Down(DownReason::Stopped));
            }
        }
    }
}

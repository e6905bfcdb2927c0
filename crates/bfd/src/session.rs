//! The sans-IO BFD session state machine (RFC 5880 §6.2, §6.5, §6.8), asynchronous mode.
//!
//! Time is an abstract monotonic clock passed in as a [`Duration`] since any fixed epoch, and the
//! randomness the RFC requires for jitter is an input ([`Jitter`]). Timers are outputs: the driver
//! arms or stops them as [`Action`]s say and feeds their expiry back as [`Event`]s.
//!
//! Deliberate choices, each allowed by the RFC:
//! - Demand mode is never requested locally (the D bit is always sent clear); a remote that asks
//!   for it is honoured by stopping periodic transmission (§6.8.7).
//! - Echo mode and authentication are not implemented: Required Min Echo RX is sent as zero.
//! - A packet is sent at once on every state change and at the start of a Poll Sequence, besides
//!   the jittered periodic ones, so that both ends converge without waiting a full interval.
//! - Timer changes while not Up are applied at once; while Up they go through a Poll Sequence.

use std::time::Duration;

use crate::packet::{ControlPacket, Diagnostic, DiscardReason, State};
use crate::profile::Timers;

/// The slow-start floor for bfd.DesiredMinTxInterval while the session is not Up (§6.8.3).
pub const SLOW_START_TX: Duration = Duration::from_secs(1);

/// A uniformly distributed random value used to jitter one periodic transmission (§6.8.7).
/// `Jitter::MIN` gives the shortest allowed interval (75 %), `Jitter::MAX` the longest (just
/// under 100 %, or 90 % when bfd.DetectMult is 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Jitter(u16);

impl Jitter {
    /// The shortest interval: 75 % of the nominal one.
    pub const MIN: Jitter = Jitter(0);
    /// The longest interval.
    pub const MAX: Jitter = Jitter(u16::MAX);

    /// Wraps a random value; every value is valid.
    pub fn from_random(value: u16) -> Jitter {
        Jitter(value)
    }

    /// The interval to wait: `nominal` reduced by 0–25 % (10–25 % when `detect_mult` is 1).
    pub fn apply(self, nominal: Duration, detect_mult: u8) -> Duration {
        let span: u128 = if detect_mult == 1 { 15 } else { 25 };
        let scaled =
            nominal.as_nanos() * (75 * 65_536 + span * u128::from(self.0)) / (100 * 65_536);
        Duration::from_nanos(u64::try_from(scaled).unwrap_or(u64::MAX))
    }
}

/// What a session is created with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// bfd.LocalDiscr: non-zero and unique among this system's sessions.
    pub local_discriminator: std::num::NonZeroU32,
    /// The timers to run with once Up.
    pub timers: Timers,
    /// Passive role (§6.1): send nothing until the remote's discriminator is known.
    pub passive: bool,
}

/// An input to the state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A Control packet for this session that passed [`ControlPacket::decode`] (and, for
    /// single-hop, the TTL check).
    Received(ControlPacket),
    /// The transmit timer armed by [`Action::ArmTransmitTimer`] fired.
    TransmitTimerExpired,
    /// The detection timer armed by [`Action::ArmDetectionTimer`] fired.
    DetectionTimerExpired,
    /// Take the session administratively down (§6.8.16).
    AdminDown,
    /// Leave AdminDown and start over from Down.
    AdminUp,
    /// Run with new timers; while Up this starts a Poll Sequence (§6.8.3).
    ChangeTimers(Timers),
}

/// An output of the state machine, to be carried out in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Transmit this packet now.
    Send(ControlPacket),
    /// (Re)arm the transmit timer to fire at this instant of the session clock.
    ArmTransmitTimer(Duration),
    /// Stop the transmit timer: no periodic transmission is allowed now.
    StopTransmitTimer,
    /// (Re)arm the detection timer to fire at this instant of the session clock.
    ArmDetectionTimer(Duration),
    /// Stop the detection timer.
    StopDetectionTimer,
    /// The local session state changed.
    StateChanged {
        /// State before.
        from: State,
        /// State after.
        to: State,
        /// bfd.LocalDiag after the change: why it happened.
        diagnostic: Diagnostic,
    },
    /// A received packet was discarded by a session-level rule of §6.8.6.
    Discarded(DiscardReason),
}

/// One BFD session: the state variables of RFC 5880 §6.8.1 and the timers derived from them.
#[derive(Debug, Clone)]
pub struct Session {
    target: Timers,
    passive: bool,
    state: State,
    remote_state: State,
    local_discr: u32,
    remote_discr: u32,
    local_diag: Diagnostic,
    /// bfd.DesiredMinTxInterval, as advertised.
    desired_min_tx: Duration,
    /// bfd.RequiredMinRxInterval, as advertised.
    required_min_rx: Duration,
    /// bfd.DetectMult, as advertised.
    detect_mult: u8,
    /// The desired TX interval our own transmissions follow; lags an increase until Final.
    tx_base: Duration,
    /// The required RX interval detection uses; lags a decrease until Final.
    detect_rx: Duration,
    remote_min_rx: Duration,
    remote_desired_min_tx: Duration,
    remote_detect_mult: u8,
    remote_demand: bool,
    poll_active: bool,
    poll_queued: bool,
    tx_deadline: Option<Duration>,
    detect_deadline: Option<Duration>,
}

fn micros(duration: Duration) -> u32 {
    u32::try_from(duration.as_micros()).unwrap_or(u32::MAX)
}

impl Session {
    /// Creates a session in state Down and returns the actions to start it: an active session
    /// sends its first packet at once and arms its transmit timer.
    pub fn new(config: SessionConfig, now: Duration, jitter: Jitter) -> (Session, Vec<Action>) {
        let timers = config.timers;
        let mut session = Session {
            target: timers,
            passive: config.passive,
            state: State::Down,
            remote_state: State::Down,
            local_discr: config.local_discriminator.get(),
            remote_discr: 0,
            local_diag: Diagnostic::None,
            desired_min_tx: timers.desired_min_tx.max(SLOW_START_TX),
            required_min_rx: timers.required_min_rx,
            detect_mult: timers.detect_mult,
            tx_base: timers.desired_min_tx.max(SLOW_START_TX),
            detect_rx: timers.required_min_rx,
            // §6.8.1: bfd.RemoteMinRxInterval starts at 1 µs.
            remote_min_rx: Duration::from_micros(1),
            remote_desired_min_tx: Duration::ZERO,
            remote_detect_mult: 0,
            remote_demand: false,
            poll_active: false,
            poll_queued: false,
            tx_deadline: None,
            detect_deadline: None,
        };
        let mut actions = Vec::new();
        if session.may_transmit_periodic() {
            actions.push(Action::Send(session.packet(false)));
        }
        session.schedule_transmit(now, jitter, &mut actions);
        (session, actions)
    }

    /// bfd.SessionState.
    pub fn state(&self) -> State {
        self.state
    }

    /// bfd.RemoteSessionState.
    pub fn remote_state(&self) -> State {
        self.remote_state
    }

    /// bfd.LocalDiag.
    pub fn local_diagnostic(&self) -> Diagnostic {
        self.local_diag
    }

    /// bfd.LocalDiscr.
    pub fn local_discriminator(&self) -> u32 {
        self.local_discr
    }

    /// bfd.RemoteDiscr (zero while unknown).
    pub fn remote_discriminator(&self) -> u32 {
        self.remote_discr
    }

    /// Whether a Poll Sequence is in progress.
    pub fn poll_active(&self) -> bool {
        self.poll_active
    }

    /// The (bfd.DesiredMinTxInterval, bfd.RequiredMinRxInterval, bfd.DetectMult) we advertise.
    pub fn advertised(&self) -> Timers {
        Timers {
            desired_min_tx: self.desired_min_tx,
            required_min_rx: self.required_min_rx,
            detect_mult: self.detect_mult,
        }
    }

    /// The nominal (unjittered) periodic transmit interval: the larger of our desired TX in force
    /// and the remote's required RX (§6.8.7).
    pub fn transmit_interval(&self) -> Duration {
        self.tx_base.max(self.remote_min_rx)
    }

    /// The detection time (§6.8.4): the remote's Detect Mult × max(our required RX in force, the
    /// remote's last Desired Min TX). `None` until a packet has been received.
    pub fn detection_time(&self) -> Option<Duration> {
        if self.remote_detect_mult == 0 {
            return None;
        }
        Some(self.detect_rx.max(self.remote_desired_min_tx) * u32::from(self.remote_detect_mult))
    }

    /// Feeds one event at time `now`. `jitter` is used if a periodic transmission gets scheduled.
    pub fn handle(&mut self, now: Duration, jitter: Jitter, event: Event) -> Vec<Action> {
        let mut actions = Vec::new();
        match event {
            Event::Received(packet) => self.receive(now, jitter, packet, &mut actions),
            Event::TransmitTimerExpired => {
                if self.tx_deadline.take().is_some() {
                    if self.may_transmit_periodic() {
                        actions.push(Action::Send(self.packet(false)));
                    }
                    self.schedule_transmit(now, jitter, &mut actions);
                }
            }
            Event::DetectionTimerExpired => {
                if self.detect_deadline.take().is_some() {
                    self.detection_expired(now, jitter, &mut actions);
                }
            }
            Event::AdminDown => {
                if self.state != State::AdminDown {
                    self.stop_detection(&mut actions);
                    self.transition(
                        State::AdminDown,
                        Diagnostic::AdministrativelyDown,
                        &mut actions,
                    );
                    self.send_now(false, &mut actions);
                    self.schedule_transmit(now, jitter, &mut actions);
                }
            }
            Event::AdminUp => {
                if self.state == State::AdminDown {
                    self.transition(State::Down, Diagnostic::None, &mut actions);
                    self.send_now(false, &mut actions);
                    self.schedule_transmit(now, jitter, &mut actions);
                }
            }
            Event::ChangeTimers(timers) => {
                self.target = timers;
                if self.advertise() {
                    self.send_now(false, &mut actions);
                }
                self.schedule_transmit(now, jitter, &mut actions);
            }
        }
        actions
    }

    fn receive(
        &mut self,
        now: Duration,
        jitter: Jitter,
        packet: ControlPacket,
        actions: &mut Vec<Action>,
    ) {
        // §6.8.6: a non-zero Your Discriminator selects the session.
        if packet.your_discriminator != 0 && packet.your_discriminator != self.local_discr {
            actions.push(Action::Discarded(DiscardReason::UnknownDiscriminator {
                discriminator: packet.your_discriminator,
            }));
            return;
        }
        let could_transmit = self.may_transmit_periodic();
        self.remote_discr = packet.my_discriminator;
        self.remote_state = packet.state;
        self.remote_demand = packet.demand;
        self.remote_min_rx = Duration::from_micros(u64::from(packet.required_min_rx_us));
        self.remote_desired_min_tx = Duration::from_micros(u64::from(packet.desired_min_tx_us));
        self.remote_detect_mult = packet.detect_mult;
        let requeued_poll = packet.final_bit && self.poll_active && self.finish_poll();
        if self.state == State::AdminDown {
            actions.push(Action::Discarded(DiscardReason::SessionAdminDown));
            return;
        }
        let before = self.state;
        if packet.state == State::AdminDown {
            if self.state != State::Down {
                self.transition(
                    State::Down,
                    Diagnostic::NeighborSignaledSessionDown,
                    actions,
                );
            }
        } else {
            match (self.state, packet.state) {
                (State::Down, State::Down) => {
                    self.transition(State::Init, Diagnostic::None, actions)
                }
                (State::Down, State::Init) | (State::Init, State::Init | State::Up) => {
                    self.transition(State::Up, Diagnostic::None, actions)
                }
                (State::Up, State::Down) => self.transition(
                    State::Down,
                    Diagnostic::NeighborSignaledSessionDown,
                    actions,
                ),
                _ => {}
            }
        }
        // Leaving slow start once Up is a timer change, hence a Poll Sequence (§6.8.3).
        let poll_started =
            requeued_poll || (self.state == State::Up && before != State::Up && self.advertise());
        if self.state != before || packet.poll || poll_started {
            // §6.8.6: a Poll is answered with Final at once, without regard to the timer.
            self.send_now(packet.poll, actions);
        }
        // §6.8.6: a valid packet restarts the detection timer (with the timers now in force).
        if let Some(detection) = self.detection_time() {
            let deadline = now + detection;
            self.detect_deadline = Some(deadline);
            actions.push(Action::ArmDetectionTimer(deadline));
        }
        let can_transmit = self.may_transmit_periodic();
        let too_late = self
            .tx_deadline
            .is_some_and(|deadline| deadline > now + self.transmit_interval());
        if can_transmit != could_transmit
            || (can_transmit && (self.tx_deadline.is_none() || too_late))
        {
            self.schedule_transmit(now, jitter, actions);
        }
    }

    fn detection_expired(&mut self, now: Duration, jitter: Jitter, actions: &mut Vec<Action>) {
        let goes_down = matches!(self.state, State::Init | State::Up);
        if goes_down {
            self.transition(
                State::Down,
                Diagnostic::ControlDetectionTimeExpired,
                actions,
            );
        }
        // §6.8.1: the remote's variables reset when the detection time passes without a packet.
        self.remote_discr = 0;
        self.remote_state = State::Down;
        self.remote_min_rx = Duration::from_micros(1);
        self.remote_demand = false;
        self.remote_detect_mult = 0;
        if goes_down && self.may_transmit_periodic() {
            self.send_now(false, actions);
        }
        self.schedule_transmit(now, jitter, actions);
    }

    fn transition(&mut self, to: State, diagnostic: Diagnostic, actions: &mut Vec<Action>) {
        let from = self.state;
        self.state = to;
        self.local_diag = diagnostic;
        if from == State::Up {
            // Back to slow start; a Poll Sequence in progress is abandoned.
            self.poll_active = false;
            self.poll_queued = false;
            self.desired_min_tx = self.target.desired_min_tx.max(SLOW_START_TX);
            self.required_min_rx = self.target.required_min_rx;
            self.detect_mult = self.target.detect_mult;
            self.tx_base = self.desired_min_tx;
            self.detect_rx = self.required_min_rx;
        }
        actions.push(Action::StateChanged {
            from,
            to,
            diagnostic,
        });
    }

    /// Brings the advertised timers to the target: at once when not Up, else by a Poll Sequence.
    /// Returns whether a Poll Sequence started (the caller sends its first packet).
    fn advertise(&mut self) -> bool {
        let wanted = Timers {
            desired_min_tx: if self.state == State::Up {
                self.target.desired_min_tx
            } else {
                self.target.desired_min_tx.max(SLOW_START_TX)
            },
            required_min_rx: self.target.required_min_rx,
            detect_mult: self.target.detect_mult,
        };
        if wanted == self.advertised() {
            return false;
        }
        if self.state != State::Up {
            self.desired_min_tx = wanted.desired_min_tx;
            self.required_min_rx = wanted.required_min_rx;
            self.detect_mult = wanted.detect_mult;
            self.tx_base = wanted.desired_min_tx;
            self.detect_rx = wanted.required_min_rx;
            return false;
        }
        if self.poll_active {
            self.poll_queued = true;
            return false;
        }
        self.desired_min_tx = wanted.desired_min_tx;
        self.required_min_rx = wanted.required_min_rx;
        self.detect_mult = wanted.detect_mult;
        // §6.8.3: a faster TX and a slower RX are safe at once; the reverse waits for Final.
        self.tx_base = self.tx_base.min(wanted.desired_min_tx);
        self.detect_rx = self.detect_rx.max(wanted.required_min_rx);
        self.poll_active = true;
        true
    }

    /// Ends the Poll Sequence on Final; returns whether a queued change started a new one.
    fn finish_poll(&mut self) -> bool {
        self.poll_active = false;
        self.tx_base = self.desired_min_tx;
        self.detect_rx = self.required_min_rx;
        if self.poll_queued {
            self.poll_queued = false;
            return self.advertise();
        }
        false
    }

    fn stop_detection(&mut self, actions: &mut Vec<Action>) {
        if self.detect_deadline.take().is_some() {
            actions.push(Action::StopDetectionTimer);
        }
    }

    /// §6.8.7: when periodic transmission is allowed at all.
    fn may_transmit_periodic(&self) -> bool {
        if self.passive && self.remote_discr == 0 {
            return false;
        }
        if self.remote_min_rx.is_zero() {
            return false;
        }
        let remote_demand_in_force =
            self.remote_demand && self.state == State::Up && self.remote_state == State::Up;
        !remote_demand_in_force || self.poll_active
    }

    fn schedule_transmit(&mut self, now: Duration, jitter: Jitter, actions: &mut Vec<Action>) {
        if self.may_transmit_periodic() {
            let deadline = now + jitter.apply(self.transmit_interval(), self.detect_mult);
            self.tx_deadline = Some(deadline);
            actions.push(Action::ArmTransmitTimer(deadline));
        } else if self.tx_deadline.take().is_some() {
            actions.push(Action::StopTransmitTimer);
        }
    }

    /// Sends one packet outside the periodic schedule. A Final is always sent when asked for
    /// (unless the remote requires no packets at all, or we are passive and know no remote).
    fn send_now(&mut self, final_bit: bool, actions: &mut Vec<Action>) {
        if (self.passive && self.remote_discr == 0) || (self.remote_min_rx.is_zero() && !final_bit)
        {
            return;
        }
        actions.push(Action::Send(self.packet(final_bit)));
    }

    /// The packet to send now (§6.8.7). P and F are never both set: a Final takes precedence.
    fn packet(&self, final_bit: bool) -> ControlPacket {
        ControlPacket {
            diagnostic: self.local_diag,
            state: self.state,
            poll: self.poll_active && !final_bit,
            final_bit,
            control_plane_independent: false,
            demand: false,
            detect_mult: self.detect_mult,
            my_discriminator: self.local_discr,
            your_discriminator: self.remote_discr,
            desired_min_tx_us: micros(self.desired_min_tx),
            required_min_rx_us: micros(self.required_min_rx),
            required_min_echo_rx_us: 0,
        }
    }
}

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;

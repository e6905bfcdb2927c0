//! A small tokio driver for RFC 5881 single-hop BFD over IPv4 or IPv6.
//!
//! An [`Endpoint`] owns the receive socket on `local:3784` and hands each datagram, once it has
//! passed the TTL 255 check and [`ControlPacket::decode`], to the session it belongs to (by Your
//! Discriminator, or by source address while that is zero). Each session runs in its own task
//! with its own transmit socket (a fixed source port in 49152–65535, TTL 255, connected to
//! `peer:3784`), carries out the [`Session`]'s actions with real timers, and publishes a
//! [`SessionStatus`] on a watch channel.

mod socket;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rand::Rng;
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::packet::{ControlPacket, Diagnostic, DiscardReason, State};
use crate::profile::{Profile, ProfileError};
use crate::session::{Action, Event, Jitter, Session, SessionConfig};

/// UDP destination port of single-hop BFD Control packets (RFC 5881 §4).
pub const CONTROL_PORT: u16 = 3784;
/// First UDP source port allowed (RFC 5881 §4).
pub const SOURCE_PORT_MIN: u16 = 49152;

/// Failure to set up an endpoint or a session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// The receive socket could not be opened or bound.
    #[error("cannot bind BFD receive socket on {local}: {source}")]
    Bind {
        /// Address we tried to bind.
        local: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// No transmit socket could be bound to a free source port.
    #[error("cannot open BFD transmit socket from {local} to {peer}: {source}")]
    Transmit {
        /// Local address (port varies).
        local: IpAddr,
        /// Peer address.
        peer: IpAddr,
        /// The last OS error.
        source: std::io::Error,
    },
    /// The peer's address family differs from the endpoint's.
    #[error("peer {peer} is not of the same address family as local address {local}")]
    FamilyMismatch {
        /// Local address.
        local: IpAddr,
        /// Peer address.
        peer: IpAddr,
    },
    /// A session to this peer already exists on this endpoint.
    #[error("a BFD session to {peer} already exists")]
    DuplicatePeer {
        /// Peer address.
        peer: IpAddr,
    },
    /// The profile cannot be used.
    #[error("invalid BFD profile: {0}")]
    Profile(#[from] ProfileError),
}

/// What a session looks like now; published on the session's watch channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionStatus {
    /// Peer address.
    pub peer: IpAddr,
    /// Local session state.
    pub state: State,
    /// The remote's last reported state.
    pub remote_state: State,
    /// Why the local state last changed.
    pub diagnostic: Diagnostic,
    /// Our discriminator.
    pub local_discriminator: u32,
    /// The remote's discriminator (zero while unknown).
    pub remote_discriminator: u32,
    /// The detection time in force, once a packet has been received.
    pub detection_time: Option<Duration>,
    /// The nominal periodic transmit interval in force.
    pub transmit_interval: Duration,
    /// How many state changes the session has made.
    pub transitions: u64,
}

enum Command {
    Event(Event),
    /// Go AdminDown (which sends one AdminDown packet at once), then end the task.
    Shutdown(tokio::sync::oneshot::Sender<()>),
}

struct Route {
    peer: IpAddr,
    packets: mpsc::Sender<ControlPacket>,
}

#[derive(Default)]
struct Routes {
    by_discriminator: HashMap<u32, Route>,
    by_peer: HashMap<IpAddr, u32>,
    discards: BTreeMap<&'static str, u64>,
}

type SharedRoutes = Arc<Mutex<Routes>>;

fn lock(routes: &SharedRoutes) -> std::sync::MutexGuard<'_, Routes> {
    routes.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A local address running single-hop BFD: the receive socket and the sessions on it.
pub struct Endpoint {
    local: IpAddr,
    routes: SharedRoutes,
    receiver: JoinHandle<()>,
}

impl Endpoint {
    /// Binds `local:3784` and starts demultiplexing. Must be called inside a tokio runtime.
    pub fn bind(local: IpAddr) -> Result<Endpoint, EndpointError> {
        let address = SocketAddr::new(local, CONTROL_PORT);
        let socket = socket::receive_socket(address).map_err(|source| EndpointError::Bind {
            local: address,
            source,
        })?;
        let routes = SharedRoutes::default();
        let receiver = tokio::spawn(receive_loop(socket, routes.clone()));
        Ok(Endpoint {
            local,
            routes,
            receiver,
        })
    }

    /// The local address.
    pub fn local(&self) -> IpAddr {
        self.local
    }

    /// Datagrams discarded on this endpoint, by the endpoint or by one of its sessions, counted
    /// by [`DiscardReason::kind`] (for metrics).
    pub fn discards(&self) -> BTreeMap<&'static str, u64> {
        lock(&self.routes).discards.clone()
    }

    /// Starts a session to `peer` with `profile`. The session runs until its handle is dropped.
    pub fn add_session(
        &self,
        peer: IpAddr,
        profile: &Profile,
    ) -> Result<SessionHandle, EndpointError> {
        let timers = profile.timers()?;
        if peer.is_ipv4() != self.local.is_ipv4() {
            return Err(EndpointError::FamilyMismatch {
                local: self.local,
                peer,
            });
        }
        let transmit = bind_transmit(self.local, peer)?;
        let (packets_tx, packets_rx) = mpsc::channel(64);
        let local_discriminator = {
            let mut routes = lock(&self.routes);
            if routes.by_peer.contains_key(&peer) {
                return Err(EndpointError::DuplicatePeer { peer });
            }
            let mut rng = rand::rng();
            let discriminator = loop {
                let candidate: u32 = rng.random();
                if let Some(nonzero) = NonZeroU32::new(candidate)
                    && !routes.by_discriminator.contains_key(&candidate)
                {
                    break nonzero;
                }
            };
            routes.by_discriminator.insert(
                discriminator.get(),
                Route {
                    peer,
                    packets: packets_tx,
                },
            );
            routes.by_peer.insert(peer, discriminator.get());
            discriminator
        };
        let config = SessionConfig {
            local_discriminator,
            timers,
            passive: profile.passive_mode,
        };
        let (session, actions) = Session::new(config, Duration::ZERO, random_jitter());
        let status = SessionStatus {
            peer,
            state: session.state(),
            remote_state: session.remote_state(),
            diagnostic: session.local_diagnostic(),
            local_discriminator: local_discriminator.get(),
            remote_discriminator: 0,
            detection_time: None,
            transmit_interval: session.transmit_interval(),
            transitions: 0,
        };
        let (status_tx, status_rx) = watch::channel(status);
        let (commands_tx, commands_rx) = mpsc::channel(16);
        let registration = Registration {
            routes: self.routes.clone(),
            discriminator: local_discriminator.get(),
            peer,
        };
        let runner = SessionRunner {
            session,
            socket: transmit,
            status: status_tx,
            epoch: Instant::now(),
            transmit_at: None,
            detect_at: None,
            registration,
        };
        let task = tokio::spawn(runner.run(actions, packets_rx, commands_rx));
        Ok(SessionHandle {
            status: status_rx,
            commands: commands_tx,
            task,
        })
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.receiver.abort();
    }
}

fn bind_transmit(local: IpAddr, peer: IpAddr) -> Result<UdpSocket, EndpointError> {
    let mut rng = rand::rng();
    let mut last = std::io::Error::other("no source port tried");
    for _ in 0..64 {
        let port = rng.random_range(SOURCE_PORT_MIN..=u16::MAX);
        match socket::transmit_socket(
            SocketAddr::new(local, port),
            SocketAddr::new(peer, CONTROL_PORT),
        ) {
            Ok(socket) => return Ok(socket),
            Err(error) => last = error,
        }
    }
    Err(EndpointError::Transmit {
        local,
        peer,
        source: last,
    })
}

fn random_jitter() -> Jitter {
    Jitter::from_random(rand::rng().random())
}

/// Removes a session's routes when its task ends, however it ends.
struct Registration {
    routes: SharedRoutes,
    discriminator: u32,
    peer: IpAddr,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut routes = lock(&self.routes);
        routes.by_discriminator.remove(&self.discriminator);
        routes.by_peer.remove(&self.peer);
    }
}

/// Control of one running session. Dropping it stops the session (nothing more is sent).
pub struct SessionHandle {
    status: watch::Receiver<SessionStatus>,
    commands: mpsc::Sender<Command>,
    task: JoinHandle<()>,
}

impl SessionHandle {
    /// A receiver of the session's status; `changed().await` wakes on every state change.
    pub fn watch(&self) -> watch::Receiver<SessionStatus> {
        self.status.clone()
    }

    /// The status now.
    pub fn status(&self) -> SessionStatus {
        *self.status.borrow()
    }

    /// Takes the session AdminDown (the remote sees AdminDown, diagnostic 7).
    pub async fn admin_down(&self) {
        let _ = self.commands.send(Command::Event(Event::AdminDown)).await;
    }

    /// Brings an AdminDown session back to Down, from where it comes Up again.
    pub async fn admin_up(&self) {
        let _ = self.commands.send(Command::Event(Event::AdminUp)).await;
    }

    /// Switches to a new profile's timers (a Poll Sequence if Up). The passive flag is fixed at
    /// creation and not changed here.
    pub async fn change_profile(&self, profile: &Profile) -> Result<(), ProfileError> {
        let timers = profile.timers()?;
        let _ = self
            .commands
            .send(Command::Event(Event::ChangeTimers(timers)))
            .await;
        Ok(())
    }
}

impl SessionHandle {
    /// Stops the session gracefully: the remote is told AdminDown (diagnostic 7) and goes Down
    /// at once instead of waiting for its detection time. Dropping the handle stops silently.
    pub async fn shutdown(self) {
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        if self.commands.send(Command::Shutdown(done_tx)).await.is_ok() {
            let _ = done_rx.await;
        }
    }
}

impl Drop for SessionHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive_loop(socket: UdpSocket, routes: SharedRoutes) {
    let mut buf = [0u8; 512];
    let fd = socket.as_raw_fd();
    loop {
        let received = match socket
            .async_io(Interest::READABLE, || socket::recv_with_ttl(fd, &mut buf))
            .await
        {
            Ok(received) => received,
            Err(error) => {
                tracing::warn!(%error, "BFD receive failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let payload = buf.get(..received.len).unwrap_or_default();
        let route = route_datagram(payload, received.source.ip(), received.ttl, &routes);
        match route {
            Ok((sender, packet)) => {
                // A full queue means the session is far behind; dropping is what the wire does.
                let _ = sender.try_send(packet);
            }
            Err(reason) => {
                tracing::debug!(source = %received.source, %reason, "BFD packet discarded");
                *lock(&routes).discards.entry(reason.kind()).or_default() += 1;
            }
        }
    }
}

fn route_datagram(
    payload: &[u8],
    source: IpAddr,
    ttl: Option<u8>,
    routes: &SharedRoutes,
) -> Result<(mpsc::Sender<ControlPacket>, ControlPacket), DiscardReason> {
    let ttl = ttl.unwrap_or(0);
    if ttl != 255 {
        return Err(DiscardReason::TtlBelow255 { ttl });
    }
    let packet = ControlPacket::decode(payload)?;
    let routes = lock(routes);
    let discriminator = if packet.your_discriminator != 0 {
        packet.your_discriminator
    } else {
        routes.by_peer.get(&source).copied().unwrap_or(0)
    };
    match routes.by_discriminator.get(&discriminator) {
        Some(route) if route.peer == source => Ok((route.packets.clone(), packet)),
        _ => Err(DiscardReason::UnknownDiscriminator {
            discriminator: packet.your_discriminator,
        }),
    }
}

struct SessionRunner {
    session: Session,
    socket: UdpSocket,
    status: watch::Sender<SessionStatus>,
    epoch: Instant,
    transmit_at: Option<Instant>,
    detect_at: Option<Instant>,
    registration: Registration,
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

impl SessionRunner {
    async fn run(
        mut self,
        initial: Vec<Action>,
        mut packets: mpsc::Receiver<ControlPacket>,
        mut commands: mpsc::Receiver<Command>,
    ) {
        self.apply(initial).await;
        loop {
            let event = tokio::select! {
                packet = packets.recv() => match packet {
                    Some(packet) => Event::Received(packet),
                    None => return,
                },
                command = commands.recv() => match command {
                    Some(Command::Event(event)) => event,
                    Some(Command::Shutdown(done)) => {
                        let now = self.epoch.elapsed();
                        let actions = self.session.handle(now, random_jitter(), Event::AdminDown);
                        self.apply(actions).await;
                        let _ = done.send(());
                        return;
                    }
                    None => return,
                },
                () = sleep_until(self.transmit_at) => {
                    self.transmit_at = None;
                    Event::TransmitTimerExpired
                }
                () = sleep_until(self.detect_at) => {
                    self.detect_at = None;
                    Event::DetectionTimerExpired
                }
            };
            let now = self.epoch.elapsed();
            let actions = self.session.handle(now, random_jitter(), event);
            self.apply(actions).await;
        }
    }

    async fn apply(&mut self, actions: Vec<Action>) {
        let mut transitions = 0;
        for action in actions {
            match action {
                Action::Send(packet) => {
                    if let Err(error) = self.socket.send(&packet.encode()).await {
                        tracing::debug!(%error, "BFD send failed");
                    }
                }
                Action::ArmTransmitTimer(at) => self.transmit_at = Some(self.epoch + at),
                Action::StopTransmitTimer => self.transmit_at = None,
                Action::ArmDetectionTimer(at) => self.detect_at = Some(self.epoch + at),
                Action::StopDetectionTimer => self.detect_at = None,
                Action::StateChanged {
                    from,
                    to,
                    diagnostic,
                } => {
                    tracing::info!(peer = %self.status.borrow().peer, %from, %to, %diagnostic, "BFD state change");
                    transitions += 1;
                }
                Action::Discarded(reason) => {
                    tracing::debug!(%reason, "BFD packet discarded by session");
                    *lock(&self.registration.routes)
                        .discards
                        .entry(reason.kind())
                        .or_default() += 1;
                }
            }
        }
        // Watchers wake only when something they can see changed.
        let session = &self.session;
        self.status.send_if_modified(|status| {
            let next = SessionStatus {
                state: session.state(),
                remote_state: session.remote_state(),
                diagnostic: session.local_diagnostic(),
                remote_discriminator: session.remote_discriminator(),
                detection_time: session.detection_time(),
                transmit_interval: session.transmit_interval(),
                transitions: status.transitions + transitions,
                ..*status
            };
            let modified = next != *status;
            *status = next;
            modified
        });
    }
}

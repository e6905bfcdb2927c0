//! `check`: open one session, report what was negotiated, close it with a Cease.

use super::failure::{self, Attempt, FailureReason, Md5Counters};
use super::{ConnectError, SessionConfig, socket};
use crate::fsm::{Action, DownReason, Event, Fsm, Negotiated};
use crate::wire::{NotificationError, try_parse};
use bytes::BytesMut;
use std::collections::VecDeque;
use std::time::Duration;
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

/// Why a session check failed, in words a person can act on.
#[derive(Debug, Error)]
pub enum CheckError {
    /// The TCP connection could not be opened (no route, bad source address, ...).
    #[error("{0}")]
    Connect(#[from] ConnectError),
    /// The peer refused the connection or did not answer it, with what to check (see
    /// [`failure`](super::failure)).
    #[error("{message}")]
    Unreachable {
        /// Why, as the speaker's metric labels it.
        reason: FailureReason,
        /// What to check, naming the peer.
        message: String,
    },
    /// The router sent a NOTIFICATION.
    #[error("the router sent a NOTIFICATION: {0}")]
    NotificationReceived(NotificationError),
    /// The router's OPEN failed our checks; we sent this NOTIFICATION.
    #[error("the router's OPEN was not acceptable; we sent a NOTIFICATION: {0}")]
    NotificationSent(NotificationError),
    /// The router closed the connection without saying why.
    #[error("the router closed the connection ({0}); is this node configured as its neighbor?")]
    Closed(String),
    /// No Established session within the time allowed.
    #[error("no session within {0:?}: the router connected but did not finish the OPEN exchange")]
    TimedOut(Duration),
    /// A socket error while talking.
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
}

/// Opens one session to the configured peer within `timeout`, returns what was negotiated,
/// and closes the session with Cease / Administrative Shutdown. No routes are sent.
pub async fn check(config: &SessionConfig, timeout: Duration) -> Result<Negotiated, CheckError> {
    let deadline = Instant::now() + timeout;
    let mut fsm_config = config.fsm.clone();
    fsm_config.jitter_seed = 1;
    let mut fsm = Fsm::new(fsm_config);
    let _ = fsm.handle(Event::ManualStart);
    let mut tcp = config.tcp.clone();
    tcp.connect_timeout = tcp.connect_timeout.min(timeout);
    let md5_before = Md5Counters::read();
    let stream = match socket::connect(&tcp).await {
        Ok(stream) => stream,
        Err(e) => {
            let attempt = Attempt::of(&e);
            if attempt == Attempt::Other {
                return Err(e.into());
            }
            let (reason, message) = failure::describe(attempt, md5_before, &tcp, &e.to_string());
            return Err(CheckError::Unreachable { reason, message });
        }
    };
    let local = stream.local_addr()?.ip();
    let (mut reader, mut writer) = stream.into_split();
    let mut buf = BytesMut::with_capacity(4096);
    let mut events = VecDeque::from([Event::TcpConnected { local }]);
    loop {
        while let Some(event) = events.pop_front() {
            for action in fsm.handle(event) {
                match action {
                    Action::Send(m) => {
                        let bytes = m.encode(&fsm.context()).map_err(std::io::Error::other)?;
                        writer.write_all(&bytes).await?;
                    }
                    Action::Established(n) => {
                        let bye = fsm.handle(Event::ManualStop {
                            communication: "ferrolb bgp check: session works, closing".into(),
                        });
                        for a in bye {
                            if let Action::Send(m) = a {
                                let bytes =
                                    m.encode(&fsm.context()).map_err(std::io::Error::other)?;
                                writer.write_all(&bytes).await?;
                            }
                        }
                        let _ = writer.shutdown().await;
                        // Give the NOTIFICATION time to leave before the socket closes.
                        let mut scratch = [0u8; 4096];
                        let _ = tokio::time::timeout(Duration::from_secs(1), async {
                            while let Ok(n) = reader.read(&mut scratch).await {
                                if n == 0 {
                                    break;
                                }
                            }
                        })
                        .await;
                        return Ok(*n);
                    }
                    Action::Down(DownReason::NotificationReceived(e)) => {
                        return Err(CheckError::NotificationReceived(e));
                    }
                    Action::Down(DownReason::NotificationSent(e)) => {
                        let _ = writer.shutdown().await;
                        return Err(CheckError::NotificationSent(e));
                    }
                    Action::Down(DownReason::Connection(why)) => {
                        return Err(CheckError::Closed(why));
                    }
                    _ => {}
                }
            }
        }
        // One message at a time: the context may change after each (after the OPEN).
        match try_parse(&mut buf, &fsm.context()) {
            Ok(Some(m)) => {
                events.push_back(Event::MessageReceived(m));
                continue;
            }
            Ok(None) => {}
            Err(e) => {
                events.push_back(Event::DecodeFailed(e.error));
                continue;
            }
        }
        let read = tokio::time::timeout_at(deadline, reader.read_buf(&mut buf)).await;
        match read {
            Err(_) => return Err(CheckError::TimedOut(timeout)),
            Ok(Ok(0)) => events.push_back(Event::TcpClosed("end of stream".into())),
            Ok(Err(e)) => events.push_back(Event::TcpClosed(e.to_string())),
            Ok(Ok(_)) => {}
        }
    }
}

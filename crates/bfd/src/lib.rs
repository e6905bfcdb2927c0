//! Bidirectional Forwarding Detection for ferrolb: RFC 5880 asynchronous mode over RFC 5881
//! single-hop IPv4/IPv6.
//!
//! - [`packet`]: the Control packet codec with the reception checks of RFC 5880 §6.8.6. Pure.
//! - [`session`]: the session state machine (states, discriminators, detection time, slow start,
//!   Poll/Final, diagnostics). Pure and sans-IO: time and randomness are inputs, timers outputs.
//! - [`profile`]: MetalLB's `bfd-profiles` fields with their defaults and ranges.
//! - [`driver`]: a small tokio driver: UDP port 3784, source ports 49152–65535, TTL 255 sent,
//!   packets received with a TTL below 255 dropped, jittered timers. Each session exposes its
//!   status on a `tokio::sync::watch` channel so a BGP session can follow it.
//!
//! Not implemented: Echo mode (a profile asking for it is rejected), authentication (packets with
//! the A bit are discarded, as RFC 5880 requires without configured authentication), Demand mode
//! on our side, multi-hop (RFC 5883), and IPv6 link-local peers (no scope id is carried).
//!
//! # Following a session from BGP
//!
//! ```no_run
//! use ferrolb_bfd::{Endpoint, Profile, State};
//!
//! # async fn example() -> Result<(), ferrolb_bfd::EndpointError> {
//! let endpoint = Endpoint::bind("198.18.0.2".parse().expect("address"))?;
//! let profile = Profile { receive_interval_ms: 100, transmit_interval_ms: 100, ..Profile::default() };
//! let session = endpoint.add_session("198.18.0.1".parse().expect("address"), &profile)?;
//! let mut status = session.watch();
//! // The BGP driver holds Established back until BFD is Up ...
//! let _ = status.wait_for(|s| s.state == State::Up).await;
//! // ... and closes the session with Cease/10 "BFD Down" the moment it leaves Up.
//! let _ = status.wait_for(|s| s.state != State::Up).await;
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]
// Decoders that cannot panic on input from the network (issue 20): no unchecked indexing, no
// silent truncating casts, no unwrap outside tests.
#![cfg_attr(
    not(test),
    warn(
        clippy::indexing_slicing,
        clippy::cast_possible_truncation,
        clippy::unwrap_used
    )
)]

pub mod driver;
pub mod packet;
pub mod profile;
pub mod session;

pub use driver::{Endpoint, EndpointError, SessionHandle, SessionStatus};
pub use packet::{ControlPacket, Diagnostic, DiscardReason, State};
pub use profile::{Profile, ProfileError, Timers};
pub use session::{Action, Event, Jitter, Session, SessionConfig};

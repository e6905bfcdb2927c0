//! ferrolb bgp crate: the BGP speaker routers see.
//!
//! - [`wire`]: pure codec of BGP messages (bytes in, typed messages out, and back).
//! - [`rib_out`]: the per-peer Adj-RIB-Out, which turns desired routes into packed UPDATEs.
//! - [`fsm`]: the RFC 4271 session state machine, sans-IO (events in, actions out).
//! - [`backoff`]: connect-retry backoff with jitter.
//! - [`session`]: the tokio driver, one task per peer: TCP (MD5, TTL), timers, FSM, Adj-RIB-Out.
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

pub mod backoff;
pub mod fsm;
pub mod rib_out;
pub mod session;
pub mod wire;

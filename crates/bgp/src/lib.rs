//! ferrolb bgp crate: the BGP speaker routers see.
//!
//! - [`wire`]: pure codec of BGP messages (bytes in, typed messages out, and back).
//! - [`rib_out`]: the per-peer Adj-RIB-Out, which turns desired routes into packed UPDATEs.
#![warn(missing_docs)]

pub mod rib_out;
pub mod wire;

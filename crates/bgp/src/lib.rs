//! ferrolb bgp crate.

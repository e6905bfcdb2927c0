//! ferrolb config crate.

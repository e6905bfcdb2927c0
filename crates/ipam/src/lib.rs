//! ferrolb ipam crate.

//! ferrolb bfd crate.

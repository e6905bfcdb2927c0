//! Criterion benchmarks of the wire codec (filled in below).
fn main() {}

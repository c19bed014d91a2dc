//! Benchmark: core_forward (being written).
fn main() {}

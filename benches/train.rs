//! Benchmark: train (being written).
fn main() {}

//! Benchmark: sampler (being written).
fn main() {}

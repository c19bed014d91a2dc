//! Cross-crate tests: sampler (being written).

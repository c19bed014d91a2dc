//! Cross-crate tests: cli (being written).

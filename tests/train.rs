//! Cross-crate tests: train (being written).

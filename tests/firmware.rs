//! Cross-crate tests: firmware (being written).

//! Cross-crate tests: cuda (being written).

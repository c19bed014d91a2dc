//! Shared by the core's integration tests: the PyTorch fixtures in `tests/fixtures`.

// Each test binary compiles this module and uses a subset of it.
#![allow(dead_code)]

use std::path::PathBuf;

use tinyddpm_core::{Model, SeedModel};

/// A file of the repository's `tests/fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures"
    ))
    .join(name)
}

/// The notebook's model trained 3,000 steps by PyTorch, read from its `state_dict`.
pub fn torch_model() -> Box<SeedModel> {
    let bytes = std::fs::read(fixture("torch_model_3k.safetensors")).expect("fixture model");
    let tensors = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    let mut model = Box::new(Model::ZERO);
    model.for_each_tensor_mut(|name, shape, data| {
        let t = tensors.tensor(&name.to_string()).expect("tensor present");
        assert_eq!(t.shape(), shape, "{name}");
        for (d, c) in data.iter_mut().zip(t.data().chunks_exact(4)) {
            *d = f32::from_le_bytes(c.try_into().unwrap());
        }
    });
    model
}

/// Rows of a fixture CSV (header skipped), every field parsed as f64.
pub fn csv_rows(name: &str) -> Vec<Vec<f64>> {
    std::fs::read_to_string(fixture(name))
        .expect("fixture csv")
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|v| v.parse().expect("number")).collect())
        .collect()
}

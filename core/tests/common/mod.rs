//! Shared by the core's integration tests: the PyTorch fixtures in `tests/fixtures`.

// Each test binary compiles this module and uses a subset of it.
#![allow(dead_code)]

use std::path::PathBuf;

use tinyddpm_core::{Linear, Model, SeedModel};

/// A file of the repository's `tests/fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures")).join(name)
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

/// GELU with the exact erf, in f64.
pub fn gelu64(x: f64) -> f64 {
    0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2))
}

pub fn linear64<const I: usize, const O: usize>(l: &Linear<I, O>, x: &[f64]) -> Vec<f64> {
    (0..O)
        .map(|j| l.bias[j] as f64 + (0..I).map(|k| l.weight[j][k] as f64 * x[k]).sum::<f64>())
        .collect()
}

/// The notebook's forward pass in f64 (nn.Module structure, not the core's code), for points
/// of any dimension D.
pub fn forward64<const H: usize, const B: usize, const D: usize>(
    m: &Model<H, B, D>,
    x: [f64; D],
    t_input: f64,
) -> [f64; D] {
    let temb = linear64(
        &m.time_out,
        &linear64(&m.time_in, &[t_input])
            .into_iter()
            .map(gelu64)
            .collect::<Vec<_>>(),
    );
    let mut h: Vec<f64> = linear64(&m.input, &x)
        .into_iter()
        .map(gelu64)
        .zip(&temb)
        .map(|(a, t)| a + t)
        .collect();
    for b in &m.blocks {
        let u: Vec<f64> = linear64(&b.first, &h).into_iter().map(gelu64).collect();
        let v: Vec<f64> = linear64(&b.second, &u).into_iter().map(gelu64).collect();
        h = v
            .iter()
            .zip(&h)
            .zip(&temb)
            .map(|((v, h), t)| (v + h + t) / std::f64::consts::SQRT_2)
            .collect();
    }
    let out = linear64(&m.output, &h);
    std::array::from_fn(|c| out[c])
}

//! The model's weights re-laid-out for the SIMD kernels ("prepared model").
//!
//! A [`Packed`] layer groups its outputs in blocks of `width` and stores, per block, the
//! weights k-major: `w[block][k][jj]` = `W[block·width + jj][k]`. The kernels walk k
//! ascending and find the weights of all outputs of a block side by side: `width` broadcasts
//! (lanes = samples) or `width / LANES` vector loads (lanes = outputs) per k, one sequential
//! stream per block. Outputs past `O` (when `width` does not divide it) have zero weights and
//! bias; the kernels never store them. Only the layout changes: every output's sum keeps the
//! core's order.

use tinyddpm_core::{Linear, Model};

/// One dense layer, blocked by `width` outputs.
#[derive(Clone, Debug)]
pub(crate) struct Packed {
    /// Outputs per block.
    pub width: usize,
    /// Inputs (I).
    pub inputs: usize,
    /// Real outputs (O); the blocks cover `O` rounded up to `width`.
    pub outputs: usize,
    /// `w[(block·I + k)·width + jj]`.
    pub weight: Vec<f32>,
    /// `b[block·width + jj]`.
    pub bias: Vec<f32>,
}

impl Packed {
    /// `layer` blocked by `width` outputs.
    pub fn new<const I: usize, const O: usize>(layer: &Linear<I, O>, width: usize) -> Self {
        let blocks = O.div_ceil(width);
        let mut weight = vec![0.0; blocks * I * width];
        let mut bias = vec![0.0; blocks * width];
        for (j, (row, &b)) in layer.weight.iter().zip(&layer.bias).enumerate() {
            let (block, jj) = (j / width, j % width);
            bias[j] = b;
            for (k, &w) in row.iter().enumerate() {
                weight[(block * I + k) * width + jj] = w;
            }
        }
        Self {
            width,
            inputs: I,
            outputs: O,
            weight,
            bias,
        }
    }
}

/// Every layer of a model, blocked for one kernel.
#[derive(Clone, Debug)]
pub(crate) struct Layers {
    /// `time_embed.embed.0` (used by the batch-1 path only).
    pub time_in: Packed,
    /// `time_embed.embed.2` (used by the batch-1 path only).
    pub time_out: Packed,
    /// `input_layer.0`.
    pub input: Packed,
    /// `hidden_layers`: (first, second) per block.
    pub blocks: Vec<(Packed, Packed)>,
    /// `output_layer`.
    pub output: Packed,
}

impl Layers {
    /// `model` with H-output layers blocked by `width`, the 2-output layer by `out_width`.
    pub fn new<const H: usize, const B: usize>(
        model: &Model<H, B>,
        width: usize,
        out_width: usize,
    ) -> Self {
        Self {
            time_in: Packed::new(&model.time_in, width),
            time_out: Packed::new(&model.time_out, width),
            input: Packed::new(&model.input, width),
            blocks: model
                .blocks
                .iter()
                .map(|b| (Packed::new(&b.first, width), Packed::new(&b.second, width)))
                .collect(),
            output: Packed::new(&model.output, out_width),
        }
    }
}

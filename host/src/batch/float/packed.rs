//! The model's weights re-laid-out for the SIMD kernels ("prepared model").
//!
//! A [`Packed`] layer groups its outputs in blocks of `width` and stores, per block, the
//! weights k-major: `w[block][k][jj]` = `W[block·width + jj][k]`. The kernels walk k
//! ascending and find the weights of all outputs of a block side by side: `width` broadcasts
//! (lanes = samples) or `width / LANES` vector loads (lanes = outputs) per k, one sequential
//! stream per block. Outputs past `O` (when `width` does not divide it) have zero weights and
//! bias; the kernels never store them. Only the layout changes: every output's sum keeps the
//! core's order.

use tinyddpm_core::{Dense, Layer};

use crate::flat::FlatModel;

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
    /// Layer `layer` of `model` blocked by `width` outputs.
    pub fn new(model: &FlatModel, layer: Layer, width: usize) -> Self {
        let Dense {
            i: inputs,
            o: outputs,
            ..
        } = model.layout().dense(layer);
        let (w, b) = model.tensors(layer);
        let blocks = outputs.div_ceil(width);
        let mut weight = vec![0.0; blocks * inputs * width];
        let mut bias = vec![0.0; blocks * width];
        for (j, (row, &bj)) in w.chunks_exact(inputs).zip(b).enumerate() {
            let (block, jj) = (j / width, j % width);
            bias[j] = bj;
            for (k, &wk) in row.iter().enumerate() {
                weight[(block * inputs + k) * width + jj] = wk;
            }
        }
        Self {
            width,
            inputs,
            outputs,
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
    /// `model` with H-output layers blocked by `width`, the D-output layer by `out_width`.
    pub fn new(model: &FlatModel, width: usize, out_width: usize) -> Self {
        let pack = |layer| Packed::new(model, layer, width);
        Self {
            time_in: pack(Layer::TimeIn),
            time_out: pack(Layer::TimeOut),
            input: pack(Layer::Input),
            blocks: (0..model.layout().blocks)
                .map(|i| (pack(Layer::BlockFirst(i)), pack(Layer::BlockSecond(i))))
                .collect(),
            output: Packed::new(model, Layer::Output, out_width),
        }
    }

    /// D: the input layer's inputs, the output layer's outputs.
    pub fn dim(&self) -> usize {
        self.input.inputs
    }
}

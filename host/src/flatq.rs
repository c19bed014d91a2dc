//! An integer model of any shape: its parameters as the model file's sections hold them, the
//! shape read from the file at run time instead of named at compile time — the integer
//! counterpart of [`FlatModel`](crate::flat::FlatModel).
//!
//! The core's [`QParams`] shows each layer ([`QParams::layer`]) as the const-generic
//! [`QModel`] shows it, and its integer time embedding runs on those views
//! ([`time_embedding_in`]), so the host's integer tiles draw a shape this build never named
//! with the core's bits. [`FlatQModel::of`] converts from the const-generic model, which stays
//! the `no_std` interface and the reference.

use tinyddpm_core::file::{self, FileError, Header};
use tinyddpm_core::quant::{QParams, QParamsMut, time_embedding_in};
use tinyddpm_core::{Layer, Layout, QModel};

/// An integer model's sections (every layer's biases, multipliers, weights and shifts, then
/// the exponents), with their layout.
#[derive(Clone, Debug, PartialEq)]
pub struct FlatQModel {
    layout: Layout,
    biases: Vec<i32>,
    multipliers: Vec<i32>,
    weights: Vec<i8>,
    shifts: Vec<u8>,
    exponents: Vec<u8>,
}

impl FlatQModel {
    /// Every section zero, sized for `layout`.
    fn zero(layout: Layout) -> Self {
        let [c, w, e] = QParams::lens(&layout);
        Self {
            layout,
            biases: vec![0; c],
            multipliers: vec![0; c],
            weights: vec![0; w],
            shifts: vec![0; c],
            exponents: vec![0; e],
        }
    }

    /// `model`'s sections.
    pub fn of<const H: usize, const B: usize, const D: usize>(model: &QModel<H, B, D>) -> Self {
        let (mut biases, mut multipliers) = (Vec::new(), Vec::new());
        let (mut weights, mut shifts, mut exponents) = (Vec::new(), Vec::new(), Vec::new());
        model.for_each_layer(|l| {
            biases.extend_from_slice(l.bias);
            multipliers.extend_from_slice(l.multiplier);
            weights.extend_from_slice(l.weight);
            shifts.extend_from_slice(l.shift);
        });
        model.for_each_exponent(|e| exponents.push(e));
        Self {
            layout: Layout::of_dim::<H, B, D>(),
            biases,
            multipliers,
            weights,
            shifts,
            exponents,
        }
    }

    /// The integer model a model file holds, of the shape its header names, with every check
    /// the core's decoder makes.
    pub fn decode(bytes: &[u8]) -> Result<Self, FileError> {
        let contents = file::open(bytes)?;
        let mut flat = Self::zero(contents.layout()?);
        contents.read_quant_params(QParamsMut {
            biases: &mut flat.biases,
            multipliers: &mut flat.multipliers,
            weights: &mut flat.weights,
            shifts: &mut flat.shifts,
            exponents: &mut flat.exponents,
        })?;
        Ok(flat)
    }

    /// The model file of this model with `header` (which must describe its shape).
    pub fn encode(&self, header: &Header) -> Result<Vec<u8>, FileError> {
        let mut out = vec![0; file::encoded_len(tinyddpm_core::Kind::Integer, header)?];
        let len = file::encode_quant_params(header, &self.params(), &mut out)?;
        out.truncate(len);
        Ok(out)
    }

    /// The sections as the core's view of them.
    pub fn params(&self) -> QParams<'_> {
        QParams {
            layout: self.layout,
            biases: &self.biases,
            multipliers: &self.multipliers,
            weights: &self.weights,
            shifts: &self.shifts,
            exponents: &self.exponents,
        }
    }

    /// The layout: H, B, D.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The integer time embedding for network input `t_input` into `temb` (H long): the
    /// core's [`time_embedding_in`], so the same bits as `QModel::time_embedding`.
    pub fn time_embedding(&self, t_input: f32, temb: &mut [i16]) {
        let params = self.params();
        let (time_in, time_out) = (params.layer(Layer::TimeIn), params.layer(Layer::TimeOut));
        let mut hidden = vec![[0i16; 1]; self.layout.hidden];
        time_embedding_in(&time_in, &time_out, t_input, &mut hidden, temb);
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use tinyddpm_core::file::{Data, Source};
    use tinyddpm_core::quant::Gelu;
    use tinyddpm_core::{Sampler, ScheduleKind};

    /// A valid model of shape (H, B, 3): every parameter distinct within its range.
    fn model<const H: usize, const B: usize>() -> Box<QModel<H, B, 3>> {
        let mut q = Box::new(QModel::<H, B, 3>::ZERO);
        let mut n = 0i32;
        q.for_each_layer_mut(|l| {
            for w in l.weight.iter_mut() {
                n += 1;
                *w = (n % 255 - 127) as i8;
            }
            for (j, b) in l.bias.iter_mut().enumerate() {
                *b = j as i32 * 1000 - 5000;
            }
            l.multiplier.fill(1 << 30);
            l.shift.fill(40);
        });
        let gelu = Gelu {
            pre_exp: 10,
            post_exp: 12,
        };
        q.time_act = gelu;
        (q.input_exp, q.input_pre_exp, q.stream_exp, q.output_exp) = (12, 10, 12, 11);
        for b in &mut q.blocks {
            (b.act, b.second_pre_exp) = (gelu, 10);
        }
        q.validate().expect("a valid model");
        q
    }

    #[test]
    fn files_and_time_embeddings_are_the_const_generic_models() {
        let q = model::<6, 2>();
        let data = Data {
            dim: 3,
            source: Source::File,
            units: None,
        };
        let header = Header::new::<6, 2, 1000>(ScheduleKind::SEED, Sampler::Ddpm).with_data(data);
        let mut typed = vec![0; file::encoded_len(tinyddpm_core::Kind::Integer, &header).unwrap()];
        let len = file::encode(&*q, &header, &mut typed).unwrap();
        typed.truncate(len);
        let flat = FlatQModel::of(&*q);
        assert_eq!(flat.encode(&header).unwrap(), typed);
        assert_eq!(FlatQModel::decode(&typed).unwrap(), flat);
        let mut temb = [0i16; 6];
        for t in [0.0, 0.5, 0.999] {
            flat.time_embedding(t, &mut temb);
            assert_eq!(temb, q.time_embedding(t));
        }
    }
}

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
    pub(crate) fn zero(layout: Layout) -> Self {
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
        contents.read_quant_params(flat.params_mut())?;
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

    /// The sections, writable.
    pub(crate) fn params_mut(&mut self) -> QParamsMut<'_> {
        QParamsMut {
            biases: &mut self.biases,
            multipliers: &mut self.multipliers,
            weights: &mut self.weights,
            shifts: &mut self.shifts,
            exponents: &mut self.exponents,
        }
    }

    /// The const-generic model of these sections, if its shape is (H, B, D).
    pub fn to_model<const H: usize, const B: usize, const D: usize>(
        &self,
    ) -> Option<Box<QModel<H, B, D>>> {
        if self.layout != Layout::of_dim::<H, B, D>() {
            return None;
        }
        let mut model = Box::new(QModel::<H, B, D>::ZERO);
        let params = self.params();
        let mut layers = params.layers();
        model.for_each_layer_mut(|to| {
            let Some(from) = layers.next() else { return };
            to.weight.copy_from_slice(from.weight);
            to.bias.copy_from_slice(from.bias);
            to.multiplier.copy_from_slice(from.multiplier);
            to.shift.copy_from_slice(from.shift);
        });
        let mut exponents = self.exponents.iter();
        model.for_each_exponent_mut(|e| *e = exponents.next().copied().unwrap_or(0));
        Some(model)
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

    #[test]
    fn converts_both_ways() {
        let mut q = Box::new(QModel::<8, 2, 3>::ZERO);
        let mut n = 0i32;
        q.for_each_layer_mut(|l| {
            for w in l.weight.iter_mut() {
                n += 1;
                *w = (n % 251 - 125) as i8;
            }
            for (k, b) in l.bias.iter_mut().enumerate() {
                *b = n * 1000 + k as i32;
            }
            for (k, (m, s)) in l.multiplier.iter_mut().zip(l.shift.iter_mut()).enumerate() {
                (*m, *s) = ((1 << 30) + n + k as i32, (n as usize + k) as u8 % 40);
            }
        });
        let mut e = 0u8;
        q.for_each_exponent_mut(|x| {
            e += 1;
            *x = e;
        });
        let flat = FlatQModel::of(&*q);
        assert_eq!(flat.to_model::<8, 2, 3>().as_deref(), Some(&*q));
        assert!(flat.to_model::<8, 2, 2>().is_none());
        assert!(flat.to_model::<8, 1, 3>().is_none());
    }
}

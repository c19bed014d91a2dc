//! An integer model of a shape known only at run time: its parameters as the model file's
//! sections hold them (every layer's biases, then multipliers, weights and shifts, in
//! [`QModel::for_each_layer`](super::QModel::for_each_layer) order, then the exponents), and
//! each layer's view, [`QLayer`], as the const-generic [`QModel`](super::QModel) shows it.
//!
//! Layer `n` of the layout (`Layout::layer(n)`) has H outputs unless it is the last, so its
//! channels start at `n·H` and its weights at its float offset less those channels: the
//! sections need no table of offsets.

use super::model::{QLayer, QLayerMut, QuantError, layer_exponents, validate_exponents};
use crate::layout::Layout;
use crate::model::Layer;

/// An integer model's parameters, borrowed, section by section in file order, with the
/// layout of its shape.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QParams<'a> {
    /// H, B, D and where each layer lies.
    pub layout: Layout,
    /// Every channel's bias, layer after layer.
    pub biases: &'a [i32],
    /// Every channel's requantization multiplier, likewise.
    pub multipliers: &'a [i32],
    /// Every layer's weights, `[out][in]` row-major, layer after layer.
    pub weights: &'a [i8],
    /// Every channel's requantization shift.
    pub shifts: &'a [u8],
    /// The activation exponents, in `QModel::for_each_exponent` order.
    pub exponents: &'a [u8],
}

/// Where the layout's layer `n` starts in the channel sections and in the weights.
fn offsets(layout: &Layout, n: usize) -> (usize, usize) {
    let d = layout.dense(layout.layer(n));
    let channels = n * layout.hidden;
    (channels, d.w - channels)
}

impl<'a> QParams<'a> {
    /// The sections' lengths for `layout`: channels (each of biases, multipliers and
    /// shifts), weights, exponents.
    pub fn lens(layout: &Layout) -> [usize; 3] {
        let channels = layout.channels();
        [channels, layout.len() - channels, 6 + 3 * layout.blocks]
    }

    /// Whether every section has its layout's length (else [`QParams::layer`] gives empty
    /// views past the end).
    pub fn fits(&self) -> bool {
        let [c, w, e] = Self::lens(&self.layout);
        [self.biases.len(), self.multipliers.len(), self.shifts.len()] == [c; 3]
            && self.weights.len() == w
            && self.exponents.len() == e
    }

    /// The `n`-th exponent (0 past the end).
    fn exponent(&self, n: usize) -> u8 {
        self.exponents.get(n).copied().unwrap_or(0)
    }

    /// Layer `n` of the layout (`n < layout.layers()`), with its exponents and GELU.
    pub fn layer_at(&self, n: usize) -> QLayer<'a> {
        let layout = &self.layout;
        let layer = layout.layer(n);
        let d = layout.dense(layer);
        let (c0, w0) = offsets(layout, n);
        let (in_exp, out_exp, act) = layer_exponents(|k| self.exponent(k), layer);
        let channels = c0..c0 + d.o;
        QLayer {
            layer,
            weight: self.weights.get(w0..w0 + d.o * d.i).unwrap_or(&[]),
            bias: self.biases.get(channels.clone()).unwrap_or(&[]),
            multiplier: self.multipliers.get(channels.clone()).unwrap_or(&[]),
            shift: self.shifts.get(channels).unwrap_or(&[]),
            in_exp,
            out_exp,
            act,
        }
    }

    /// Layer `layer` (a block index below B).
    pub fn layer(&self, layer: Layer) -> QLayer<'a> {
        let n = match layer {
            Layer::TimeIn => 0,
            Layer::TimeOut => 1,
            Layer::Input => 2,
            Layer::BlockFirst(k) => 3 + 2 * k,
            Layer::BlockSecond(k) => 4 + 2 * k,
            Layer::Output => self.layout.layers() - 1,
        };
        self.layer_at(n)
    }

    /// Every layer in file order.
    pub fn layers(&self) -> impl Iterator<Item = QLayer<'a>> + '_ {
        (0..self.layout.layers()).map(|n| self.layer_at(n))
    }

    /// `QModel::validate` on these parameters: the same checks in the same order, so the
    /// same error.
    pub fn validate(&self) -> Result<(), QuantError> {
        validate_exponents(|n| self.exponent(n), self.layout.blocks)?;
        match self.layers().find(|l| !l.is_valid()) {
            Some(l) => Err(QuantError::Parameters { layer: l.layer }),
            None => Ok(()),
        }
    }
}

/// [`QParams`]' sections, writable: what a decoder fills for a model of a shape read at run
/// time (each of its [`QParams::lens`] length).
#[derive(Debug, PartialEq)]
pub struct QParamsMut<'a> {
    /// Every channel's bias.
    pub biases: &'a mut [i32],
    /// Every channel's multiplier.
    pub multipliers: &'a mut [i32],
    /// Every layer's weights.
    pub weights: &'a mut [i8],
    /// Every channel's shift.
    pub shifts: &'a mut [u8],
    /// The exponents.
    pub exponents: &'a mut [u8],
}

impl QParamsMut<'_> {
    /// Layer `n` of `layout`, writable: the channels and weights [`QParams::layer_at`] shows
    /// (empty views past the sections' ends).
    pub fn layer_at(&mut self, layout: &Layout, n: usize) -> QLayerMut<'_> {
        let layer = layout.layer(n);
        let d = layout.dense(layer);
        let (c0, w0) = offsets(layout, n);
        let channels = c0..c0 + d.o;
        QLayerMut {
            layer,
            weight: self.weights.get_mut(w0..w0 + d.o * d.i).unwrap_or_default(),
            bias: self.biases.get_mut(channels.clone()).unwrap_or_default(),
            multiplier: self
                .multipliers
                .get_mut(channels.clone())
                .unwrap_or_default(),
            shift: self.shifts.get_mut(channels).unwrap_or_default(),
        }
    }
}

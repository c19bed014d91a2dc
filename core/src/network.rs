//! The two networks the samplers run — the float [`Model`] and the integer [`QModel`] — as one
//! kind of thing. Whatever takes "a model of either kind" is written once over [`Network`]: the
//! model file's decoder and encoder (`file`, over its `Stored` extension), the host's batched
//! executor and the firmware's build script.

use core::fmt;

use crate::model::Model;
use crate::quant::QModel;

/// Which network: f32 weights, or the integer model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "file", derive(serde::Serialize, serde::Deserialize))]
pub enum Kind {
    /// A [`Model`]: f32 weights.
    Float,
    /// A [`QModel`]: int8 weights, int32 biases, requantization multipliers and shifts,
    /// activation exponents.
    Integer,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Float => "float",
            Kind::Integer => "integer",
        })
    }
}

/// A noise-predicting network of `H` hidden units and `B` residual blocks on points of `D`
/// coordinates (2 unless named).
pub trait Network<const H: usize, const B: usize, const D: usize = 2>:
    Sized + Sync + 'static
{
    /// Which network this is.
    const KIND: Kind;
    /// Every parameter zero: the storage a decoder fills.
    const ZERO: Self;
}

impl<const H: usize, const B: usize, const D: usize> Network<H, B, D> for Model<H, B, D> {
    const KIND: Kind = Kind::Float;
    const ZERO: Self = Model::ZERO;
}

impl<const H: usize, const B: usize, const D: usize> Network<H, B, D> for QModel<H, B, D> {
    const KIND: Kind = Kind::Integer;
    const ZERO: Self = QModel::ZERO;
}

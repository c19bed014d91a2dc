//! Post-training quantization: a float model of any shape ([`FlatModel`]) into the core's
//! integer model of the same shape ([`FlatQModel`]; the core's `quant` module specifies its
//! arithmetic).
//!
//! In four steps, each in a file of its own: calibration (`calibrate.rs`) runs
//! forward-process inputs through the core's forward pass and records every activation's
//! range; the format choice (`format.rs`) gives each tensor the finest power-of-two scale
//! that covers it within the core's constraints; folding (`fold.rs`) turns each layer's
//! weights, bias and output scale into int8 weights, an int32 bias and a requantization
//! multiplier; the [`Report`] (`report.rs`) says what was chosen and how many calibration
//! values the format clips, per tensor.

mod calibrate;
mod fold;
mod format;
mod report;

use crate::data::DataSet;
use crate::flat::FlatModel;
use crate::flatq::FlatQModel;
use crate::scores::Points;
use tinyddpm_core::{Model, QModel, QuantError, Schedule};

use calibrate::Inputs;
pub use fold::weight_scales;
use format::Formats;
use report::Fit;
pub use report::{GeluReport, LayerReport, Report, TensorReport};

/// How to calibrate the activation ranges.
#[derive(Clone, Debug, PartialEq)]
pub struct Calibration {
    /// Forward-process inputs; sample `i` has timestep `i mod T`.
    pub samples: usize,
    /// Seed of their x₀ (from a data set) and ε.
    pub seed: u64,
    /// Where their x₀ come from: the model's own data.
    pub data: CalibrationData,
}

/// The data points x₀ of the calibration inputs, in the model's space.
#[derive(Clone, Debug, PartialEq)]
pub enum CalibrationData {
    /// Fresh points of a built-in set (the one the model file says it was trained on; a
    /// built-in set's points are 2-D).
    Set(DataSet),
    /// Given points (a model trained on a file's), already mapped into the model's space, as
    /// many coordinates as the model's D: input `i` takes point `i mod n`, so every point is
    /// used as evenly as the count allows.
    Points(Points),
}

impl Default for Calibration {
    /// 32,000 inputs: 32 at each of the 1,000 timesteps of the seed schedule, on the Swiss
    /// roll.
    fn default() -> Self {
        Self {
            samples: 32_000,
            seed: 0,
            data: CalibrationData::Set(DataSet::SwissRoll),
        }
    }
}

/// Why a model cannot be quantized.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum QuantizeError {
    /// No calibration inputs (or no calibration points).
    #[error("calibration needs at least one sample")]
    NoSamples,
    /// Calibration points of another width than the model's D.
    #[error("the calibration points have {points} coordinates, the model's data {model}")]
    Dim {
        /// The points' width.
        points: usize,
        /// The model's D.
        model: usize,
    },
    /// A weight or bias is NaN or infinite.
    #[error("{0} holds a value that is not finite")]
    NonFiniteWeight(String),
    /// An activation is NaN or infinite on a calibration input.
    #[error("{0} is not finite on a calibration input")]
    NonFiniteActivation(String),
    /// An activation beyond 32767 in magnitude: no int16 exponent ≥ 0 covers it.
    #[error("{name} reaches {max:e}, beyond the int16 range at scale 1")]
    Range {
        /// The tensor.
        name: String,
        /// Its largest magnitude.
        max: f64,
    },
    /// A channel's requantization scale of 2^31 or more (weights or ranges absurdly large).
    #[error("{0}: a requantization scale is too large for a 32-bit multiplier")]
    Scale(String),
    /// The result is outside the integer format (a quantizer bug, never expected).
    #[error("the quantized model is invalid: {0}")]
    Invalid(#[from] QuantError),
}

/// Quantizes `model`, calibrating its activations on forward-process inputs of `schedule`.
pub fn quantize<const T: usize>(
    model: &FlatModel,
    schedule: &Schedule<T>,
    calibration: &Calibration,
) -> Result<(FlatQModel, Report), QuantizeError> {
    let inputs = Inputs::new(calibration).ok_or(QuantizeError::NoSamples)?;
    if inputs.points.dim() != model.dim() {
        return Err(QuantizeError::Dim {
            points: inputs.points.dim(),
            model: model.dim(),
        });
    }
    let mut non_finite = None;
    model.for_each_tensor(|name, _, data| {
        if non_finite.is_none() && !data.iter().all(|v| v.is_finite()) {
            non_finite = Some(name.to_string());
        }
    });
    if let Some(name) = non_finite {
        return Err(QuantizeError::NonFiniteWeight(name));
    }
    let layout = model.layout();
    let ranges = calibrate::ranges(model, schedule, &inputs)?;
    let formats = Formats::choose(&ranges, layout.blocks)?;
    let clipped = calibrate::counts(model, schedule, &inputs, |site, v| formats.clipped(site, v));
    let fit = Fit {
        layout,
        ranges: &ranges,
        clipped: &clipped,
        formats: &formats,
        samples: calibration.samples,
    };
    let mut q = FlatQModel::zero(layout);
    q.params_mut()
        .exponents
        .copy_from_slice(&formats.exponents());
    let layers = fold::fold(model, &mut q, |layer| fit.input(layer))?;
    let report = fit.report(layers);
    q.params().validate()?;
    Ok((q, report))
}

/// [`quantize`] for a model whose shape this build names: the const-generic integer model of
/// the same shape (the firmware's and the `no_std` user's interface).
pub fn quantize_model<const H: usize, const B: usize, const D: usize, const T: usize>(
    model: &Model<H, B, D>,
    schedule: &Schedule<T>,
    calibration: &Calibration,
) -> Result<(Box<QModel<H, B, D>>, Report), QuantizeError> {
    let (q, report) = quantize(&FlatModel::of(model), schedule, calibration)?;
    let q = q
        .to_model()
        .expect("a quantized model has its float model's shape");
    Ok((q, report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::pytorch_init;
    use tinyddpm_core::{Layout, ScheduleKind};

    fn flat<const H: usize, const B: usize>(model: &Model<H, B>) -> FlatModel {
        FlatModel::of(model)
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        let schedule = Schedule::<1000>::new(ScheduleKind::SEED).unwrap();
        let mut model = pytorch_init::<8, 1>(1);
        let none = Calibration {
            samples: 0,
            ..Calibration::default()
        };
        assert_eq!(
            quantize(&flat(&model), &schedule, &none).unwrap_err(),
            QuantizeError::NoSamples
        );
        let points = |dim, values| CalibrationData::Points(Points::new(dim, values).unwrap());
        let no_points = Calibration {
            data: points(2, Vec::new()),
            ..Calibration::default()
        };
        assert_eq!(
            quantize(&flat(&model), &schedule, &no_points).unwrap_err(),
            QuantizeError::NoSamples
        );
        let three = Calibration {
            data: points(3, vec![0.5; 9]),
            ..Calibration::default()
        };
        let (points, model_dim) = (3, 2);
        assert_eq!(
            quantize(&flat(&model), &schedule, &three).unwrap_err(),
            QuantizeError::Dim {
                points,
                model: model_dim
            }
        );
        let model_3d = FlatModel::zero(Layout::with_dim(8, 1, 3).unwrap());
        assert_eq!(
            quantize(&model_3d, &schedule, &Calibration::default()).unwrap_err(),
            QuantizeError::Dim {
                points: 2,
                model: 3
            }
        );
        model.blocks[0].second.bias[3] = f32::NAN;
        assert_eq!(
            quantize(&flat(&model), &schedule, &Calibration::default()).unwrap_err(),
            QuantizeError::NonFiniteWeight("hidden_layers.0.2.bias".into())
        );
        let mut model = pytorch_init::<8, 1>(1);
        model.output.weight[0][0] = 1e30;
        assert!(matches!(
            quantize(&flat(&model), &schedule, &Calibration::default()),
            Err(QuantizeError::Range { .. } | QuantizeError::NonFiniteActivation(_))
        ));
    }

    /// A residual stream beyond 512 (here from a huge input bias) has no exponent a GELU
    /// can feed (at least 6): it saturates there, and the report counts what it clipped.
    #[test]
    fn a_stream_too_wide_for_any_gelu_saturates_and_is_reported() {
        let schedule = Schedule::<1000>::new(ScheduleKind::SEED).unwrap();
        let mut model = pytorch_init::<8, 1>(1);
        model.input.bias.fill(1000.0);
        let (q, report) = quantize(&flat(&model), &schedule, &Calibration::default()).unwrap();
        let q = q.to_model::<8, 1, 2>().unwrap();
        assert_eq!(q.stream_exp, 6);
        assert_eq!(q.validate(), Ok(()));
        assert!(report.clipped() > 0, "{report}");
    }
}

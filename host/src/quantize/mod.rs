//! Post-training quantization: a float [`Model<H, B>`] into the core's integer
//! [`QModel<H, B>`] (whose arithmetic the core's `quant` module specifies).
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
use tinyddpm_core::{Model, QModel, QuantError, Schedule};

pub use fold::weight_scales;
use format::Formats;
use report::Fit;
pub use report::{GeluReport, LayerReport, Report, TensorReport, layer_name};

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
    /// Fresh points of a built-in set (the one the model file says it was trained on).
    Set(DataSet),
    /// Given points (a model trained on a file's), already mapped into the model's space:
    /// input `i` takes point `i mod n`, so every point is used as evenly as the count allows.
    Points(Vec<[f32; 2]>),
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
pub fn quantize<const H: usize, const B: usize, const T: usize>(
    model: &Model<H, B>,
    schedule: &Schedule<T>,
    calibration: &Calibration,
) -> Result<(Box<QModel<H, B>>, Report), QuantizeError> {
    if calibration.samples == 0 || calibration.data == CalibrationData::Points(Vec::new()) {
        return Err(QuantizeError::NoSamples);
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
    let ranges = calibrate::ranges(model, schedule, calibration)?;
    let formats = Formats::<B>::choose(&ranges)?;
    let clipped = calibrate::counts(model, schedule, calibration, |site, v| {
        formats.clipped(site, v)
    });
    let fit = Fit::<H, B> {
        ranges: &ranges,
        clipped: &clipped,
        formats: &formats,
        samples: calibration.samples,
    };
    let mut q = Box::new(QModel::<H, B>::ZERO);
    formats.apply(&mut q);
    let layers = fold::fold(model, &mut q, |layer| fit.input(layer))?;
    let report = fit.report(layers);
    q.validate()?;
    Ok((q, report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::pytorch_init;
    use tinyddpm_core::ScheduleKind;

    #[test]
    fn bad_input_is_a_typed_error() {
        let schedule = Schedule::<1000>::new(ScheduleKind::SEED).unwrap();
        let mut model = pytorch_init::<8, 1>(1);
        let none = Calibration {
            samples: 0,
            ..Calibration::default()
        };
        assert_eq!(
            quantize(&*model, &schedule, &none).unwrap_err(),
            QuantizeError::NoSamples
        );
        let no_points = Calibration {
            data: CalibrationData::Points(Vec::new()),
            ..Calibration::default()
        };
        assert_eq!(
            quantize(&*model, &schedule, &no_points).unwrap_err(),
            QuantizeError::NoSamples
        );
        model.blocks[0].second.bias[3] = f32::NAN;
        assert_eq!(
            quantize(&*model, &schedule, &Calibration::default()).unwrap_err(),
            QuantizeError::NonFiniteWeight("hidden_layers.0.2.bias".into())
        );
        let mut model = pytorch_init::<8, 1>(1);
        model.output.weight[0][0] = 1e30;
        assert!(matches!(
            quantize(&*model, &schedule, &Calibration::default()),
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
        let (q, report) = quantize(&*model, &schedule, &Calibration::default()).unwrap();
        assert_eq!(q.stream_exp, 6);
        assert_eq!(q.validate(), Ok(()));
        assert!(report.clipped() > 0, "{report}");
    }
}

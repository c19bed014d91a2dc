//! Folding a float layer into an integer one, in f64.
//!
//! - **Weights**: int8, symmetric, one scale per output channel, `s_w = max|w|/127` — or
//!   coarser where the bias would not fit ±2^30 in the accumulator's scale otherwise.
//! - **Biases and requantization**: channel j's bias becomes `round(b·2^e_in/s_w)`, and its
//!   scale `s_w·2^(e_in − e_out)` becomes `M·2^−s` with `M ∈ [2^30, 2^31)`.

use tinyddpm_core::Layer;
use tinyddpm_core::quant::{MAX_BIAS, MAX_SHIFT, QLayer, QLayerMut};

use super::QuantizeError;
use super::report::{LayerReport, TensorReport};
use crate::flat::FlatModel;
use crate::flatq::FlatQModel;

/// The smallest and largest per-channel weight scale of a quantized layer, recovered from
/// its requantization: [`quantize`](super::quantize) folds `s_w` into
/// `M·2^−s = s_w·2^(e_out − e_in)`, so `s_w = M·2^(e_in − e_out − s)` (exact in f64 but for
/// the rounding of M, 2^−31 relative).
pub fn weight_scales(layer: &QLayer<'_>) -> [f64; 2] {
    let exp = i32::from(layer.in_exp) - i32::from(layer.out_exp);
    let scales = layer
        .multiplier
        .iter()
        .zip(layer.shift)
        .map(|(&m, &s)| f64::from(m) * 2f64.powi(exp - i32::from(s)));
    scales.fold([f64::INFINITY, f64::NEG_INFINITY], |[lo, hi], s| {
        [lo.min(s), hi.max(s)]
    })
}

/// `m ≈ M·2^−s` with `M ∈ [2^30, 2^31)` where `s ≤ 62` allows (else `s = 62` and a smaller M).
fn multiplier(m: f64, layer: Layer) -> Result<(i32, u8), QuantizeError> {
    if m == 0.0 {
        return Ok((0, 0));
    }
    let (_, k) = libm::frexp(m);
    let s = 31 - k;
    if s < 0 {
        return Err(QuantizeError::Scale(layer.to_string()));
    }
    let s = s.min(i32::from(MAX_SHIFT));
    let mut big = (m * 2f64.powi(s)).round();
    let mut s = s;
    // rounding up to 2^31: one bit less
    if big >= 2f64.powi(31) {
        big /= 2.0;
        s -= 1;
    }
    if s < 0 {
        return Err(QuantizeError::Scale(layer.to_string()));
    }
    Ok((big as i32, s as u8))
}

/// Quantizes a float layer (`weight` `[out][in]` row-major, `bias`) into `q`, its input at
/// exponent `e_in`, its output at `e_out`.
fn quantize_layer(
    weight: &[f32],
    bias: &[f32],
    q: QLayerMut<'_>,
    e_in: u8,
    e_out: u8,
    input: TensorReport,
) -> Result<LayerReport, QuantizeError> {
    let layer = q.layer;
    let inputs = weight.len() / bias.len();
    let mut scales = [f64::INFINITY, 0.0f64];
    let mut bias_limited = 0;
    let in_scale = 2f64.powi(-i32::from(e_in));
    let rows = weight
        .chunks_exact(inputs)
        .zip(q.weight.chunks_exact_mut(inputs));
    for (j, (row, qrow)) in rows.enumerate() {
        let max = row.iter().fold(0.0f64, |m, &w| m.max(f64::from(w).abs()));
        let b = f64::from(bias[j]);
        // The bias must fit ±2^30 in the accumulator's scale 2^−e_in·s_w: where it would not
        // (a channel of tiny weights and a large bias), the weights get a coarser scale.
        let bias_floor = b.abs() / in_scale / f64::from(MAX_BIAS);
        let s_w = match (max / 127.0).max(bias_floor) {
            0.0 => 1.0,
            s => s,
        };
        if bias_floor > max / 127.0 {
            bias_limited += 1;
        }
        scales = [scales[0].min(s_w), scales[1].max(s_w)];
        for (wq, &w) in qrow.iter_mut().zip(row) {
            *wq = (f64::from(w) / s_w).round() as i8;
        }
        let limit = f64::from(MAX_BIAS);
        q.bias[j] = (b / (in_scale * s_w)).round().clamp(-limit, limit) as i32;
        let m = s_w * 2f64.powi(i32::from(e_out) - i32::from(e_in));
        (q.multiplier[j], q.shift[j]) = multiplier(m, layer)?;
    }
    Ok(LayerReport {
        layer,
        input,
        weight_scale: scales,
        bias_limited,
    })
}

/// Folds every layer of `model` into `q`, whose exponents are already set; `input` reports
/// each layer's input.
pub(super) fn fold(
    model: &FlatModel,
    q: &mut FlatQModel,
    input: impl Fn(Layer) -> TensorReport,
) -> Result<Vec<LayerReport>, QuantizeError> {
    // Each layer's input and output exponents, as the core's layer walk derives them from
    // the model's exponents.
    let exponents: Vec<(u8, u8)> = q.params().layers().map(|l| (l.in_exp, l.out_exp)).collect();
    let layout = q.layout();
    let mut params = q.params_mut();
    exponents
        .into_iter()
        .enumerate()
        .map(|(n, (e_in, e_out))| {
            let ql = params.layer_at(&layout, n);
            let (weight, bias) = model.tensors(ql.layer);
            let input = input(ql.layer);
            quantize_layer(weight, bias, ql, e_in, e_out, input)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flat::FlatModel;
    use crate::quantize::{Calibration, quantize};
    use crate::train::pytorch_init;
    use tinyddpm_core::{Schedule, ScheduleKind};

    #[test]
    fn multipliers_hold_31_bits_and_the_scale() {
        for m in [
            2.4e-10,
            3.3e-7,
            0.0123,
            0.5,
            0.999_999_999_9,
            1.0,
            7.25,
            1e5,
        ] {
            let (big, s) = multiplier(m, Layer::Output).unwrap();
            assert!((1 << 30..=i32::MAX).contains(&big), "{m}: {big}");
            let back = f64::from(big) * 2f64.powi(-i32::from(s));
            assert!((back / m - 1.0).abs() <= 2f64.powi(-31), "{m}: {back}");
        }
        // below 2^−32 the shift limit leaves fewer bits, and 0 is exact
        let (big, s) = multiplier(1e-15, Layer::Output).unwrap();
        assert_eq!(s, MAX_SHIFT);
        assert_eq!(big, (1e-15 * 2f64.powi(62)).round() as i32);
        assert_eq!(multiplier(0.0, Layer::Output), Ok((0, 0)));
        assert!(multiplier(3e9, Layer::Output).is_err());
    }

    /// The scales recovered from the integer layers are the ones the quantizer chose.
    #[test]
    fn weight_scales_undo_the_fold() {
        let schedule = Schedule::<1000>::new(ScheduleKind::SEED).unwrap();
        let model = pytorch_init::<8, 2>(5);
        let calibration = Calibration {
            samples: 500,
            seed: 1,
            ..Calibration::default()
        };
        let (q, report) = quantize(&FlatModel::of(&*model), &schedule, &calibration).unwrap();
        let params = q.params();
        assert_eq!(params.layers().count(), report.layers.len());
        for (l, want) in params.layers().zip(&report.layers) {
            assert_eq!(l.layer, want.layer);
            let (got, want) = (weight_scales(&l), want.weight_scale);
            for k in 0..2 {
                assert!(
                    (got[k] / want[k] - 1.0).abs() < 1e-9,
                    "{:?}: {got:?} {want:?}",
                    l.layer
                );
            }
        }
    }
}

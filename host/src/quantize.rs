//! Post-training quantization: a float [`Model<H, B>`] into the core's integer
//! [`QModel<H, B>`] (whose arithmetic the core's `quant` module specifies).
//!
//! - **Weights**: int8, symmetric, one scale per output channel, `s_w = max|w|/127` — or
//!   coarser where the bias would not fit ±2^30 in the accumulator's scale otherwise.
//! - **Activations**: calibrated by their maximum magnitude over forward-process inputs
//!   `x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε` — Swiss-roll x₀ ([`true_samples`]), t stratified over all
//!   of `[0, T)` (ranges drift with t: sample `i` has `t = i mod T`), ε from the core's
//!   noise stream. Each tensor's exponent is the largest `e` with `32767·2^−e ≥ max`, so the
//!   calibration set never clips except where the core's format forces it (below).
//! - **Folding** (in f64): channel j's bias becomes `round(b·2^e_in/s_w)`, and its scale `s_w·2^(e_in − e_out)` becomes `M·2^−s` with `M ∈ [2^30, 2^31)`.
//!
//! Format constraints the choice respects: a GELU's pre-activation must cover its positive
//! values and its negative ones down to −5 (below, GELU is 0 to within 1.5e-6 and saturating
//! is harmless), its exponent lies in 6..=21 and at most 12 below its output's; the stream
//! exponent covers h before every block and the output layer, the time embedding, and the
//! GELU outputs added to it. The [`Report`] counts every calibration value the chosen format
//! clips anyway, per tensor.
//!
//! The float pass that records the activations is the core's own forward pass, observed
//! ([`Model::predict_noise_observed`]).

use std::fmt;

use rayon::prelude::*;
use tinyddpm_core::gelu::gelu;
use tinyddpm_core::quant::{
    Gelu, MAX_BIAS, MAX_EXP, MAX_GAP, MAX_PRE_EXP, MAX_SHIFT, MIN_PRE_EXP, QLayer, QLayerMut,
    TABLE_END, TIME_EXP,
};
use tinyddpm_core::{Layer, Model, NoiseStream, QModel, QuantError, Schedule, Tap, TensorName};

use crate::data::{Domain, true_samples};

/// How to calibrate the activation ranges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Calibration {
    /// Forward-process inputs; sample `i` has timestep `i mod T`.
    pub samples: usize,
    /// Seed of their x₀ and ε.
    pub seed: u64,
}

impl Default for Calibration {
    /// 32,000 inputs: 32 at each of the 1,000 timesteps of the seed schedule.
    fn default() -> Self {
        Self {
            samples: 32_000,
            seed: 0,
        }
    }
}

/// Why a model cannot be quantized.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum QuantizeError {
    /// No calibration inputs.
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

/// One activation tensor's calibration and format.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TensorReport {
    /// Its exponent: values are `q·2^−exp`.
    pub exp: u8,
    /// Most negative calibration value.
    pub min: f64,
    /// Largest calibration value.
    pub max: f64,
    /// Calibration values the format clips (for a GELU's pre-activation: only where the
    /// clip changes GELU).
    pub clipped: u64,
    /// Calibration values seen.
    pub values: u64,
}

/// One dense layer's quantization.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerReport {
    /// The layer.
    pub layer: Layer,
    /// Its input.
    pub input: TensorReport,
    /// Smallest and largest per-channel weight scale.
    pub weight_scale: [f64; 2],
    /// Channels whose weight scale was raised above `max|w|/127` so that the bias fits
    /// ±2^30 in the accumulator's scale (nothing is clipped).
    pub bias_limited: usize,
}

/// One GELU's pre-activation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GeluReport {
    /// The layer it follows.
    pub after: Layer,
    /// Its pre-activation.
    pub pre: TensorReport,
    /// Its output's exponent.
    pub post_exp: u8,
}

/// What quantization chose and how the calibration set fits it.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// Calibration inputs.
    pub samples: usize,
    /// The dense layers in file order.
    pub layers: Vec<LayerReport>,
    /// The GELUs in order.
    pub gelus: Vec<GeluReport>,
    /// The residual stream: h before each block and the output layer, the time embedding,
    /// the GELU outputs added to it.
    pub stream: TensorReport,
    /// The predicted noise.
    pub output: TensorReport,
}

impl Report {
    /// Calibration values clipped anywhere.
    pub fn clipped(&self) -> u64 {
        self.layers.iter().map(|l| l.input.clipped).sum::<u64>()
            + self.gelus.iter().map(|g| g.pre.clipped).sum::<u64>()
            + self.stream.clipped
            + self.output.clipped
    }
}

/// A layer's PyTorch name (`hidden_layers.1.0`).
pub fn layer_name(layer: Layer) -> String {
    let name = TensorName { layer, bias: true }.to_string();
    name.trim_end_matches(".bias").to_owned()
}

/// The smallest and largest per-channel weight scale of a quantized layer, recovered from
/// its requantization: [`quantize`] folds `s_w` into `M·2^−s = s_w·2^(e_out − e_in)`, so
/// `s_w = M·2^(e_in − e_out − s)` (exact in f64 but for the rounding of M, 2^−31 relative).
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

impl fmt::Display for TensorReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "2^-{:<2} [{:>8.3}, {:>7.3}]  clipped {}/{}",
            self.exp, self.min, self.max, self.clipped, self.values
        )
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "calibration: {} forward-process inputs", self.samples)?;
        writeln!(
            f,
            "{:<25} scale  [min, max]           clipped",
            "layer input"
        )?;
        for l in &self.layers {
            writeln!(
                f,
                "{:<25} {}  weight scales {:.2e}..{:.2e}, bias-limited {}",
                layer_name(l.layer),
                l.input,
                l.weight_scale[0],
                l.weight_scale[1],
                l.bias_limited
            )?;
        }
        for g in &self.gelus {
            let name = format!("GELU({})", layer_name(g.after));
            writeln!(f, "{name:<25} {}  out 2^-{}", g.pre, g.post_exp)?;
        }
        writeln!(f, "{:<25} {}", "residual stream", self.stream)?;
        write!(f, "{:<25} {}", "predicted noise", self.output)
    }
}

/// A tensor the calibration pass records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Site {
    /// t/T, `time_in`'s input.
    Time,
    /// `time_in`'s output.
    TimePre,
    /// Its GELU: `time_out`'s input.
    TimeHidden,
    /// `time_out`'s output, the time embedding (stream).
    Temb,
    /// x_t, `input`'s input.
    X,
    /// `input`'s output.
    InputPre,
    /// Its GELU (stream).
    InputAct,
    /// ε̂.
    Eps,
    /// h before block i (i < B) or before the output layer (i = B).
    Stream(usize),
    /// Block i's first output.
    FirstPre(usize),
    /// Its GELU: block i's second input.
    Hidden(usize),
    /// Block i's second output.
    SecondPre(usize),
    /// Its GELU (stream).
    Residual(usize),
}

impl Site {
    fn count(blocks: usize) -> usize {
        9 + 5 * blocks
    }

    fn index(self, blocks: usize) -> usize {
        match self {
            Site::Time => 0,
            Site::TimePre => 1,
            Site::TimeHidden => 2,
            Site::Temb => 3,
            Site::X => 4,
            Site::InputPre => 5,
            Site::InputAct => 6,
            Site::Eps => 7,
            Site::Stream(i) => 8 + i,
            Site::FirstPre(i) => 9 + blocks + 4 * i,
            Site::Hidden(i) => 10 + blocks + 4 * i,
            Site::SecondPre(i) => 11 + blocks + 4 * i,
            Site::Residual(i) => 12 + blocks + 4 * i,
        }
    }

    /// Every site of a model with `blocks` blocks, in index order.
    fn all(blocks: usize) -> impl Iterator<Item = Site> {
        let fixed = [
            Site::Time,
            Site::TimePre,
            Site::TimeHidden,
            Site::Temb,
            Site::X,
            Site::InputPre,
            Site::InputAct,
            Site::Eps,
        ];
        let per_block = (0..blocks).flat_map(|i| {
            [
                Site::FirstPre(i),
                Site::Hidden(i),
                Site::SecondPre(i),
                Site::Residual(i),
            ]
        });
        fixed
            .into_iter()
            .chain((0..=blocks).map(Site::Stream))
            .chain(per_block)
    }

    /// The sites of the stream.
    fn stream(blocks: usize) -> impl Iterator<Item = Site> {
        [Site::Temb, Site::InputAct]
            .into_iter()
            .chain((0..=blocks).map(Site::Stream))
            .chain((0..blocks).map(Site::Residual))
    }
}

/// [`Model::predict_noise`] with its time embedding, calling `seen` with every tensor: the
/// core's own forward pass, observed ([`Model::predict_noise_observed`]); the activations the
/// core computes inside a unit (GELUs feeding the stream) are formed here from its inputs.
fn observe<const H: usize, const B: usize>(
    m: &Model<H, B>,
    x: [f32; 2],
    t_input: f32,
    seen: &mut impl FnMut(Site, &[f32]),
) -> [f32; 2] {
    seen(Site::Time, &[t_input]);
    let temb = m.time_embedding_observed(t_input, |tap, v| match tap {
        Tap::TimePre => seen(Site::TimePre, v),
        Tap::TimeHidden => seen(Site::TimeHidden, v),
        _ => seen(Site::Temb, v),
    });
    seen(Site::X, &x);
    let gelus = |v: &[f32]| v.iter().map(|&a| gelu(a)).collect::<Vec<f32>>();
    m.predict_noise_observed(x, &temb, |tap, v| match tap {
        Tap::InputPre => {
            seen(Site::InputPre, v);
            seen(Site::InputAct, &gelus(v));
        }
        Tap::Stream(i) => seen(Site::Stream(i), v),
        Tap::FirstPre(i) => seen(Site::FirstPre(i), v),
        Tap::Hidden(i) => seen(Site::Hidden(i), v),
        Tap::SecondPre(i) => {
            seen(Site::SecondPre(i), v);
            seen(Site::Residual(i), &gelus(v));
        }
        Tap::Eps => seen(Site::Eps, v),
        Tap::TimePre | Tap::TimeHidden | Tap::Temb => {}
    })
}

/// Calibration input `i`: `(x_t, t/T)` with `t = i mod T`.
fn calibration_input<const T: usize>(
    schedule: &Schedule<T>,
    x0: [f32; 2],
    seed: u64,
    i: usize,
) -> ([f32; 2], f32) {
    let t = i % T;
    let (signal, noise) = schedule.forward_coefs(t);
    let z = NoiseStream::new(Domain::Calibration.key(seed), i as u64).gaussian_pair();
    let x = [0, 1].map(|c| signal * x0[c] + noise * z[c]);
    (x, t as f32 / T as f32)
}

/// Runs the calibration set through `observe`, each worker folding into its own `A`.
fn calibrate<const H: usize, const B: usize, const T: usize, A: Send>(
    model: &Model<H, B>,
    schedule: &Schedule<T>,
    calibration: &Calibration,
    init: impl Fn() -> A + Sync + Send,
    add: impl Fn(&mut A, Site, &[f32]) + Sync + Send,
    merge: impl Fn(A, A) -> A + Sync + Send,
) -> A {
    let x0 = true_samples(calibration.samples, calibration.seed);
    x0.par_iter()
        .enumerate()
        .fold(&init, |mut acc, (i, &x0)| {
            let (x, t_input) = calibration_input(schedule, x0, calibration.seed, i);
            observe(model, x, t_input, &mut |site, v| add(&mut acc, site, v));
            acc
        })
        .reduce(&init, merge)
}

/// Per site: most negative and largest value, and whether any was not finite.
#[derive(Clone, Debug)]
struct Ranges {
    min: Vec<f32>,
    max: Vec<f32>,
    non_finite: Vec<bool>,
}

impl Ranges {
    fn new(sites: usize) -> Self {
        Self {
            min: vec![0.0; sites],
            max: vec![0.0; sites],
            non_finite: vec![false; sites],
        }
    }

    fn add(&mut self, i: usize, values: &[f32]) {
        for &v in values {
            self.min[i] = self.min[i].min(v);
            self.max[i] = self.max[i].max(v);
            self.non_finite[i] |= !v.is_finite();
        }
    }

    fn merge(mut self, other: Self) -> Self {
        for i in 0..self.min.len() {
            self.min[i] = self.min[i].min(other.min[i]);
            self.max[i] = self.max[i].max(other.max[i]);
            self.non_finite[i] |= other.non_finite[i];
        }
        self
    }

    /// Largest magnitude at `i`.
    fn abs(&self, i: usize) -> f64 {
        f64::from(self.max[i]).max(-f64::from(self.min[i]))
    }
}

/// `⌊log2 y⌋` for a finite `y > 0`, exactly (from the binary exponent).
fn floor_log2(y: f64) -> i32 {
    libm::frexp(y).1 - 1
}

/// The largest exponent `e ≤ MAX_EXP` with `32767·2^−e ≥ max`.
fn exponent_for(max: f64, name: impl Fn() -> String) -> Result<u8, QuantizeError> {
    if max == 0.0 {
        return Ok(MAX_EXP);
    }
    let e = floor_log2(32767.0 / max);
    if e < 0 {
        return Err(QuantizeError::Range { name: name(), max });
    }
    Ok(e.min(i32::from(MAX_EXP)) as u8)
}

/// `m ≈ M·2^−s` with `M ∈ [2^30, 2^31)` where `s ≤ 62` allows (else `s = 62` and a smaller M).
fn multiplier(m: f64, layer: Layer) -> Result<(i32, u8), QuantizeError> {
    if m == 0.0 {
        return Ok((0, 0));
    }
    let (_, k) = libm::frexp(m);
    let s = 31 - k;
    if s < 0 {
        return Err(QuantizeError::Scale(layer_name(layer)));
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
        return Err(QuantizeError::Scale(layer_name(layer)));
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

/// The format of every tensor, chosen from the calibrated ranges.
struct Formats<const B: usize> {
    input_exp: u8,
    stream_exp: u8,
    output_exp: u8,
    time: Gelu,
    input_pre: u8,
    act: [Gelu; B],
    second_pre: [u8; B],
}

/// Exponent of a GELU's pre-activation: covers its positive values and its negative ones
/// down to −5; if its output's exponent is already fixed (the stream), within 12 below it.
fn pre_exponent(r: &Ranges, i: usize, post: Option<u8>, name: &str) -> Result<u8, QuantizeError> {
    let need = f64::from(r.max[i]).max((-f64::from(r.min[i])).min(TABLE_END));
    let e = exponent_for(need, || name.to_owned())?;
    let e = match post {
        Some(post) => e.min(post).max(post.saturating_sub(MAX_GAP)),
        None => e,
    };
    Ok(e.clamp(MIN_PRE_EXP, MAX_PRE_EXP))
}

/// Exponent of a GELU's output (not the stream): covers it, within the GELU's limits.
fn post_exponent(r: &Ranges, i: usize, pre: u8, name: &str) -> Result<u8, QuantizeError> {
    let e = exponent_for(r.abs(i), || name.to_owned())?;
    Ok(e.clamp(pre, (pre + MAX_GAP).min(MAX_EXP)))
}

impl<const B: usize> Formats<B> {
    fn choose(r: &Ranges) -> Result<Self, QuantizeError> {
        let at = |s: Site| s.index(B);
        let exp = |s: Site, name: &str| exponent_for(r.abs(at(s)), || name.to_owned());
        let stream_max = Site::stream(B).map(|s| r.abs(at(s))).fold(0.0, f64::max);
        let stream_exp = exponent_for(stream_max, || "the residual stream".to_owned())?;
        // The time GELU's pre-activation exponent, then its output within its limits.
        let time_pre = pre_exponent(r, at(Site::TimePre), None, "time_embed.embed.0")?;
        let time = Gelu {
            pre_exp: time_pre,
            post_exp: post_exponent(r, at(Site::TimeHidden), time_pre, "time_embed GELU")?,
        };
        let mut act = [time; B];
        let mut second_pre = [0; B];
        for i in 0..B {
            let name = layer_name(Layer::BlockFirst(i));
            let pre = pre_exponent(r, at(Site::FirstPre(i)), None, &name)?;
            act[i] = Gelu {
                pre_exp: pre,
                post_exp: post_exponent(r, at(Site::Hidden(i)), pre, &name)?,
            };
            let name = layer_name(Layer::BlockSecond(i));
            second_pre[i] = pre_exponent(r, at(Site::SecondPre(i)), Some(stream_exp), &name)?;
        }
        Ok(Self {
            input_exp: exp(Site::X, "x_t")?,
            stream_exp,
            output_exp: exp(Site::Eps, "the predicted noise")?,
            time,
            input_pre: pre_exponent(r, at(Site::InputPre), Some(stream_exp), "input_layer.0")?,
            act,
            second_pre,
        })
    }

    /// Each site's exponent, and whether it is a GELU pre-activation.
    fn site(&self, s: Site) -> (u8, bool) {
        match s {
            Site::Time => (TIME_EXP, false),
            Site::TimePre => (self.time.pre_exp, true),
            Site::TimeHidden => (self.time.post_exp, false),
            Site::X => (self.input_exp, false),
            Site::InputPre => (self.input_pre, true),
            Site::Eps => (self.output_exp, false),
            Site::Temb | Site::InputAct | Site::Stream(_) | Site::Residual(_) => {
                (self.stream_exp, false)
            }
            Site::FirstPre(i) => (self.act[i].pre_exp, true),
            Site::Hidden(i) => (self.act[i].post_exp, false),
            Site::SecondPre(i) => (self.second_pre[i], true),
        }
    }
}

/// Whether `v` leaves the int16 range at exponent `e` (for a GELU pre-activation, only where
/// that changes GELU).
fn clips(v: f32, e: u8, gelu_pre: bool) -> bool {
    let unit = 2f64.powi(-i32::from(e));
    let (lo, hi) = (-32768.5 * unit, 32767.5 * unit);
    let v = f64::from(v);
    v >= hi || (v <= lo && !(gelu_pre && -lo >= TABLE_END))
}

/// Quantizes `model`, calibrating its activations on forward-process inputs of `schedule`.
pub fn quantize<const H: usize, const B: usize, const T: usize>(
    model: &Model<H, B>,
    schedule: &Schedule<T>,
    calibration: &Calibration,
) -> Result<(Box<QModel<H, B>>, Report), QuantizeError> {
    if calibration.samples == 0 {
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
    let sites = Site::count(B);
    let ranges = calibrate(
        model,
        schedule,
        calibration,
        || Ranges::new(sites),
        |r, site, v| r.add(site.index(B), v),
        Ranges::merge,
    );
    if let Some(site) = Site::all(B).find(|s| ranges.non_finite[s.index(B)]) {
        return Err(QuantizeError::NonFiniteActivation(format!("{site:?}")));
    }
    let f = Formats::<B>::choose(&ranges)?;
    let clipped = calibrate(
        model,
        schedule,
        calibration,
        || vec![0u64; sites],
        |c, site, v| {
            let (e, gelu_pre) = f.site(site);
            c[site.index(B)] += v.iter().filter(|&&v| clips(v, e, gelu_pre)).count() as u64;
        },
        |a, b| a.iter().zip(&b).map(|(x, y)| x + y).collect(),
    );
    let n = calibration.samples as u64;
    let tensor = |sites: &[Site], width: usize| {
        let i = sites.iter().map(|s| s.index(B));
        TensorReport {
            exp: f.site(sites[0]).0,
            min: i
                .clone()
                .map(|i| f64::from(ranges.min[i]))
                .fold(0.0, f64::min),
            max: i
                .clone()
                .map(|i| f64::from(ranges.max[i]))
                .fold(0.0, f64::max),
            clipped: i.map(|i| clipped[i]).sum(),
            values: n * (width * sites.len()) as u64,
        }
    };

    let mut q = Box::new(QModel::<H, B>::ZERO);
    (q.time_act, q.input_exp, q.input_pre_exp) = (f.time, f.input_exp, f.input_pre);
    (q.stream_exp, q.output_exp) = (f.stream_exp, f.output_exp);
    for (i, qb) in q.blocks.iter_mut().enumerate() {
        (qb.act, qb.second_pre_exp) = (f.act[i], f.second_pre[i]);
    }
    // Each layer's input and output exponents, as the core's layer walk derives them from
    // the model's exponents.
    let mut exponents = Vec::new();
    q.for_each_layer(|l| exponents.push((l.in_exp, l.out_exp)));
    let mut exponents = exponents.into_iter();
    let mut layers = Vec::new();
    let mut failed = None;
    q.for_each_layer_mut(|ql| {
        let Some((e_in, e_out)) = exponents.next() else {
            return;
        };
        if failed.is_some() {
            return;
        }
        let input = match ql.layer {
            Layer::TimeIn => tensor(&[Site::Time], 1),
            Layer::TimeOut => tensor(&[Site::TimeHidden], H),
            Layer::Input => tensor(&[Site::X], 2),
            Layer::BlockFirst(i) => tensor(&[Site::Stream(i)], H),
            Layer::BlockSecond(i) => tensor(&[Site::Hidden(i)], H),
            Layer::Output => tensor(&[Site::Stream(B)], H),
        };
        let (weight, bias) = model.tensors(ql.layer);
        match quantize_layer(weight, bias, ql, e_in, e_out, input) {
            Ok(report) => layers.push(report),
            Err(e) => failed = Some(e),
        }
    });
    if let Some(e) = failed {
        return Err(e);
    }

    let mut gelus = vec![
        GeluReport {
            after: Layer::TimeIn,
            pre: tensor(&[Site::TimePre], H),
            post_exp: f.time.post_exp,
        },
        GeluReport {
            after: Layer::Input,
            pre: tensor(&[Site::InputPre], H),
            post_exp: f.stream_exp,
        },
    ];
    for i in 0..B {
        gelus.push(GeluReport {
            after: Layer::BlockFirst(i),
            pre: tensor(&[Site::FirstPre(i)], H),
            post_exp: f.act[i].post_exp,
        });
        gelus.push(GeluReport {
            after: Layer::BlockSecond(i),
            pre: tensor(&[Site::SecondPre(i)], H),
            post_exp: f.stream_exp,
        });
    }
    let stream: Vec<Site> = Site::stream(B).collect();
    let report = Report {
        samples: calibration.samples,
        layers,
        gelus,
        stream: tensor(&stream, H),
        output: tensor(&[Site::Eps], 2),
    };
    q.validate()?;
    Ok((q, report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::pytorch_init;
    use tinyddpm_core::ScheduleKind;

    /// The recording pass returns the model's own bits.
    #[test]
    fn observed_pass_is_the_models_forward_pass() {
        let model = pytorch_init::<16, 2>(3);
        let schedule = Schedule::<1000>::new(ScheduleKind::SEED).unwrap();
        let mut seen = vec![0usize; Site::count(2)];
        for i in 0..500 {
            let (x, t_input) = calibration_input(&schedule, [0.3, -0.7], 9, i * 7);
            let want = model.predict_noise(x, &model.time_embedding(t_input));
            let got = observe(&model, x, t_input, &mut |s, v| seen[s.index(2)] += v.len());
            assert_eq!(got.map(f32::to_bits), want.map(f32::to_bits));
        }
        // every site recorded, and the index order is the listing's
        assert!(seen.iter().all(|&n| n > 0), "{seen:?}");
        let order: Vec<usize> = Site::all(2).map(|s| s.index(2)).collect();
        assert_eq!(order, (0..Site::count(2)).collect::<Vec<_>>());
    }

    #[test]
    fn exponents_cover_the_maximum_with_at_most_one_bit_spare() {
        for max in [1e-9, 0.01, 0.999, 1.0, 1.27, 5.4, 25.6, 32767.0] {
            let e = exponent_for(max, String::new).unwrap();
            let range = 32767.0 * 2f64.powi(-i32::from(e));
            assert!(range >= max, "{max}: 2^-{e}");
            assert!(e == MAX_EXP || range / 2.0 < max, "{max}: 2^-{e}");
        }
        assert_eq!(exponent_for(0.0, String::new), Ok(MAX_EXP));
        assert!(exponent_for(32768.0, String::new).is_err());
    }

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
        };
        let (q, report) = quantize(&*model, &schedule, &calibration).unwrap();
        let mut i = 0;
        q.for_each_layer(|l| {
            let want = report.layers[i].weight_scale;
            assert_eq!(l.layer, report.layers[i].layer);
            let got = weight_scales(&l);
            for k in 0..2 {
                assert!(
                    (got[k] / want[k] - 1.0).abs() < 1e-9,
                    "{:?}: {got:?} {want:?}",
                    l.layer
                );
            }
            i += 1;
        });
        assert_eq!(i, report.layers.len());
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        let schedule = Schedule::<1000>::new(ScheduleKind::SEED).unwrap();
        let mut model = pytorch_init::<8, 1>(1);
        let none = Calibration {
            samples: 0,
            seed: 0,
        };
        assert_eq!(
            quantize(&*model, &schedule, &none).unwrap_err(),
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
}

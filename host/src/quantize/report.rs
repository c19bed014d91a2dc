//! The report: what quantization chose and how the calibration set fits it — every
//! tensor's exponent, range and clipped values, every layer's weight scales.

use std::fmt;

use tinyddpm_core::{Layer, Layout, Tap};

use super::calibrate::{Ranges, Site};
use super::format::Formats;

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

/// The calibration set against the chosen formats: the source of every [`TensorReport`].
pub(super) struct Fit<'a> {
    /// The model's shape.
    pub(super) layout: Layout,
    pub(super) ranges: &'a Ranges,
    /// Per site (by index), the calibration values its format clips.
    pub(super) clipped: &'a [u64],
    pub(super) formats: &'a Formats,
    pub(super) samples: usize,
}

impl Fit<'_> {
    /// The tensor made of `sites`, each `width` values per calibration input, at the first
    /// one's exponent.
    fn tensor(&self, sites: &[Site], width: usize) -> TensorReport {
        let i = sites.iter().map(|s| s.index(self.layout.blocks));
        TensorReport {
            exp: self.formats.site(sites[0]).0,
            min: i
                .clone()
                .map(|i| f64::from(self.ranges.min[i]))
                .fold(0.0, f64::min),
            max: i
                .clone()
                .map(|i| f64::from(self.ranges.max[i]))
                .fold(0.0, f64::max),
            clipped: i.map(|i| self.clipped[i]).sum(),
            values: self.samples as u64 * (width * sites.len()) as u64,
        }
    }

    /// A layer's input.
    pub(super) fn input(&self, layer: Layer) -> TensorReport {
        let Layout {
            hidden: h,
            blocks: b,
            dim: d,
            ..
        } = self.layout;
        match layer {
            Layer::TimeIn => self.tensor(&[Site::Time], 1),
            Layer::TimeOut => self.tensor(&[Site::Tap(Tap::TimeHidden)], h),
            Layer::Input => self.tensor(&[Site::X], d),
            Layer::BlockFirst(i) => self.tensor(&[Site::Tap(Tap::Stream(i))], h),
            Layer::BlockSecond(i) => self.tensor(&[Site::Tap(Tap::Hidden(i))], h),
            Layer::Output => self.tensor(&[Site::Tap(Tap::Stream(b))], h),
        }
    }

    /// The report, given each layer's.
    pub(super) fn report(&self, layers: Vec<LayerReport>) -> Report {
        let (f, h, blocks) = (self.formats, self.layout.hidden, self.layout.blocks);
        let gelu = |after, pre, post_exp| GeluReport {
            after,
            pre: self.tensor(&[Site::Tap(pre)], h),
            post_exp,
        };
        let mut gelus = vec![
            gelu(Layer::TimeIn, Tap::TimePre, f.time.post_exp),
            gelu(Layer::Input, Tap::InputPre, f.stream_exp),
        ];
        for i in 0..blocks {
            gelus.push(gelu(
                Layer::BlockFirst(i),
                Tap::FirstPre(i),
                f.act[i].post_exp,
            ));
            gelus.push(gelu(Layer::BlockSecond(i), Tap::SecondPre(i), f.stream_exp));
        }
        let stream: Vec<Site> = Site::stream(blocks).collect();
        Report {
            samples: self.samples,
            layers,
            gelus,
            stream: self.tensor(&stream, h),
            output: self.tensor(&[Site::Tap(Tap::Eps)], self.layout.dim),
        }
    }
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
                l.layer.to_string(),
                l.input,
                l.weight_scale[0],
                l.weight_scale[1],
                l.bias_limited
            )?;
        }
        for g in &self.gelus {
            let name = format!("GELU({})", g.after);
            writeln!(f, "{name:<25} {}  out 2^-{}", g.pre, g.post_exp)?;
        }
        writeln!(f, "{:<25} {}", "residual stream", self.stream)?;
        write!(f, "{:<25} {}", "predicted noise", self.output)
    }
}

//! What to sample: the one description the CPU executor, the GPU (`cuda`) and the CLI pass
//! around.

use tinyddpm_core::{Model, QModel, Sampler, Schedule, Step};

use crate::flat::FlatModel;

/// Where each sample starts.
#[derive(Clone, Copy, Debug)]
pub enum Init<'a> {
    /// x_T from each sample's own noise stream.
    Noise,
    /// x_T given, one per sample: D values a sample, one sample after another
    /// (`len == count·D`).
    Given(&'a [f32]),
}

/// Samples `first .. first + count` of `seed` from `model` with `sampler`, for a model of
/// either kind ([`BatchModel`](super::BatchModel)): sample `first + i` is the core's
/// `sample(model, schedule, sampler, seed, first + i)` (or `sample_from` with the `i`-th given
/// start), whoever computes it; for the integer `QModel`, the core's `chain` on `&QModel` from
/// that sample's x_T (the stream's, or the given one, the stream's pair still drawn), as
/// `sample` / `sample_from` run it on `&Model`. Written [`Request`] (float) or [`QRequest`]
/// (integer), so that a literal's `model: &boxed_model` still derefs to the model.
#[derive(Debug)]
pub struct SampleRequest<'a, const H: usize, const B: usize, const T: usize, M: ?Sized> {
    /// The model.
    pub model: &'a M,
    /// Its schedule.
    pub schedule: &'a Schedule<T>,
    /// The reverse process (valid for T).
    pub sampler: &'a Sampler,
    /// Where the samples start.
    pub init: Init<'a>,
    /// The seed of every sample's noise stream.
    pub seed: u64,
    /// Index of the first sample.
    pub first: u64,
    /// Number of samples.
    pub count: usize,
}

/// A request for the float model.
pub type Request<'a, const H: usize, const B: usize, const T: usize> =
    SampleRequest<'a, H, B, T, Model<H, B>>;

/// A request for the integer model.
pub type QRequest<'a, const H: usize, const B: usize, const T: usize> =
    SampleRequest<'a, H, B, T, QModel<H, B>>;

/// A request for a float model of any shape, read at run time ([`FlatModel`]): the GPU's.
/// Sample `first + i` is the core's `sample` (or `sample_from` with the `i`-th given start) of
/// the const-generic model of that shape ([`FlatModel::to_model`]), as for a [`Request`]; the
/// shape is the model's, so H and B are 0.
pub type FlatRequest<'a, const T: usize> = SampleRequest<'a, 0, 0, T, FlatModel>;

// By hand: a derive would ask `M: Clone`, and `QModel` is not `Copy`.
impl<const H: usize, const B: usize, const T: usize, M: ?Sized> Clone
    for SampleRequest<'_, H, B, T, M>
{
    fn clone(&self) -> Self {
        *self
    }
}

impl<const H: usize, const B: usize, const T: usize, M: ?Sized> Copy
    for SampleRequest<'_, H, B, T, M>
{
}

impl<const H: usize, const B: usize, const T: usize, M: ?Sized> SampleRequest<'_, H, B, T, M> {
    /// The sampler's step table (every backend applies these coefficients).
    pub fn steps(&self) -> Vec<Step> {
        self.sampler.steps(self.schedule).collect()
    }
}

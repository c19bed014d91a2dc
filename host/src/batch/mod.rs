//! The host's batched executor of every sampler: many samples at once, bit-identical to the
//! core's scalar `sample` / `sample_from` whatever the batch size, thread count or SIMD path.
//!
//! - [`Request`]: which samples of which model, with which sampler — the one description
//!   the CPU executor here, the GPU (`cuda`) and the CLI pass around; [`QRequest`] for the
//!   integer `QModel`, both a [`SampleRequest`] of a [`BatchModel`], run by the same
//!   [`sample`] / [`sample_with`] / [`frames`].
//! - [`sample`] / [`sample_with`]: throughput. Samples are cut into tiles of `S` SIMD
//!   vectors (lanes = samples, `S·LANES` samples per tile); rayon runs the tiles on `threads`
//!   threads, each tile running the core's reverse chain (`tinyddpm_core::chain`) with the
//!   SIMD forward pass (kernel.rs). The step table (`Sampler::steps`) and the time embeddings
//!   (`Model::time_embedding`, the core's scalar code) are computed once per call, one per
//!   step, and shared by all tiles. Noise comes from each sample's own core `NoiseStream`.
//! - [`frames`]: the states of the chain at chosen steps, for the reverse-process figure.
//! - [`Batch1`]: latency for one sample, lanes = outputs of each layer.
//! - [`Simd`]: which instruction set runs; [`Simd::detect`] picks the widest one the CPU has
//!   (AVX-512 with VNNI, AVX-512F/BW, AVX2, else portable Rust), and every path can be forced
//!   (the tests run all).
//!
//! Identity with the core holds because each lane performs the scalar sequence: the dense
//! layers vectorise across samples or outputs, never across the summation index, multiply
//! and add are separate instructions, and GELU and the reverse update are the core's generic
//! code instantiated on the lane types (lanes.rs).
//!
//! The integer model's tiles (qkernel.rs, qlanes.rs, qpacked.rs) have the same shape, lanes
//! = samples, with int16 activations paired for `vpmaddwd` (AVX2, AVX-512BW) or AVX-512
//! VNNI's `vpdpwssd`, and int32 sums: integer sums are exact, so they may run in any order;
//! the per-element requantization, GELU and residual are the specification's
//! (`tinyddpm_core::quant`), and the chain's reverse step the core's f32 code as above. The
//! integer time embedding is the core's, once per step.

mod kernel;
mod lanes;
mod packed;
mod qkernel;
mod qlanes;
mod qpacked;

use crate::threads::{ThreadsError, run_on};
use rayon::prelude::*;
use tinyddpm_core::{
    Lanes, Model, NoiseStream, PredictNoise, QModel, Real, Sampler, Schedule, Step, chain,
    gaussian_lanes,
};

use lanes::Portable;
#[cfg(target_arch = "x86_64")]
use lanes::{F32x8, F32x16};
use packed::Layers;
use qlanes::IPortable;
#[cfg(target_arch = "x86_64")]
use qlanes::{I32x8, I32x16};
use qpacked::QLayers;

/// Where each sample starts.
#[derive(Clone, Copy, Debug)]
pub enum Init<'a> {
    /// x_T from each sample's own noise stream.
    Noise,
    /// x_T given, one per sample (`len == count`).
    Given(&'a [[f32; 2]]),
}

/// Samples `first .. first + count` of `seed` from `model` with `sampler`, for a model of
/// either kind ([`BatchModel`]): sample `first + i` is the core's `sample(model, schedule,
/// sampler, seed, first + i)` (or `sample_from` with the `i`-th given start), whoever computes
/// it; for the integer `QModel`, the core's `chain` on `&QModel` from that sample's x_T (the
/// stream's, or the given one, the stream's pair still drawn), as `sample` / `sample_from`
/// run it on `&Model`. Written [`Request`] (float) or [`QRequest`] (integer), so that a
/// literal's `model: &boxed_model` still derefs to the model.
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

/// An instruction-set path of the sampler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Simd {
    /// [`Simd::Avx512`], the integer model's multiply-adds by AVX-512 VNNI (`vpdpwssd`);
    /// the float model runs exactly as on [`Simd::Avx512`].
    Avx512Vnni,
    /// 16 lanes of AVX-512F (with AVX-512BW, which the integer tiles use).
    Avx512,
    /// 8 lanes of AVX (selected on CPUs with AVX2).
    Avx2,
    /// 4 lanes of plain Rust, any CPU.
    Portable,
}

/// Tile shape of each throughput path: `S` sample vectors × `J` outputs in registers, each
/// k step `S` activation loads, `J` weight broadcasts and `S·J` multiplies and adds.
/// AVX-512: 24 accumulators + 6 activations of 32 zmm registers (the weight is a memory
/// operand broadcast into the multiply). AVX2 has no broadcast operand, and 16 ymm registers
/// must hold the accumulators, the activations, the weight and the product: 2 × 6 = 12 + 2 +
/// 1 + 1. The earlier 3 × 4 needed 17 and spilled: measured on one core of an AMD Zen 5
/// (AVX2 path forced), 59 GFLOP/s (46 % of the AVX2 unfused peak of 129) against 94 GFLOP/s
/// (72 % of 131) for 2 × 6 and 92 for 4 × 2. The integer tiles have the same shapes (`J`
/// even: outputs in pairs), so a tile holds as many samples on both kinds.
const AVX512_S: usize = 6;
const AVX512_J: usize = 4;
const AVX2_S: usize = 2;
const AVX2_J: usize = 6;
const PORTABLE_S: usize = 3;
const PORTABLE_J: usize = 4;
/// Lanes of the portable path (float and integer).
const PORTABLE_LANES: usize = Portable::LANES;
/// Output vectors per block on the batch-1 path: 8 independent add chains cover the add
/// latency, and 8·16 = 128 outputs are one seed-sized layer per block on AVX-512.
const BATCH1_VECTORS: usize = 8;

impl Simd {
    /// Every path, widest first.
    pub const ALL: [Simd; 4] = [Simd::Avx512Vnni, Simd::Avx512, Simd::Avx2, Simd::Portable];

    /// The widest path this CPU runs.
    pub fn detect() -> Self {
        Self::ALL
            .into_iter()
            .find(|s| s.is_available())
            .unwrap_or(Simd::Portable)
    }

    /// Whether this CPU has the instructions of the path.
    pub fn is_available(self) -> bool {
        match self {
            Simd::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512Vnni => {
                Simd::Avx512.is_available() && std::arch::is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512 => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
            }
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// Samples per throughput tile.
    pub fn tile_samples(self) -> usize {
        match self {
            Simd::Avx512Vnni | Simd::Avx512 => AVX512_S * 16,
            Simd::Avx2 => AVX2_S * 8,
            Simd::Portable => PORTABLE_S * PORTABLE_LANES,
        }
    }

    /// Outputs per throughput tile (`J`), the block width of the packed layers.
    fn tile_outputs(self) -> usize {
        match self {
            Simd::Avx512Vnni | Simd::Avx512 => AVX512_J,
            Simd::Avx2 => AVX2_J,
            Simd::Portable => PORTABLE_J,
        }
    }

    fn require(self) {
        assert!(self.is_available(), "{self:?} is not available on this CPU");
    }
}

/// A model the executor runs: the float `Model` and the integer `QModel`. Sealed: the
/// executor prepares it for a SIMD path (weights re-laid-out, every step's time embedding
/// computed once) and runs its tiles.
pub trait BatchModel<const H: usize, const B: usize>: sealed::Executor + Sync {}

impl<const H: usize, const B: usize> BatchModel<H, B> for Model<H, B> {}
impl<const H: usize, const B: usize> BatchModel<H, B> for QModel<H, B> {}

/// Lanes of the figure runner ([`frames`]).
const FRAME_LANES: usize = 16;

mod sealed {
    use super::*;

    /// What [`BatchModel`] needs of a model kind, kept out of the public API.
    pub trait Executor {
        /// The model prepared for one path and one step table.
        type Prepared: Sync;
        /// Prepares `self` for `simd` (available) and `steps`, on the current rayon pool.
        fn prepare(&self, simd: Simd, steps: &[Step]) -> Self::Prepared;
        /// Runs every step for up to `simd.tile_samples()` samples: `x` holds their x_T,
        /// `noise` their streams (past x_T's pair); `x` is overwritten with x_0.
        fn run_tile(
            prepared: &Self::Prepared,
            steps: &[Step],
            x: &mut [[f32; 2]],
            noise: &mut [NoiseStream],
        );
        /// The core's predictor on [`FRAME_LANES`] lanes, for the figure runner.
        fn lanes(&self) -> impl PredictNoise<Lanes<FRAME_LANES>> + '_;
    }

    /// A float model prepared: its packed layers and every step's time embedding.
    pub struct Float {
        pub(super) simd: Simd,
        pub(super) layers: Layers,
        pub(super) tembs: Vec<f32>,
    }

    impl<const H: usize, const B: usize> Executor for Model<H, B> {
        type Prepared = Float;
        fn prepare(&self, simd: Simd, steps: &[Step]) -> Float {
            let tembs: Vec<[f32; H]> = steps
                .par_iter()
                .map(|s| self.time_embedding(s.t_input))
                .collect();
            Float {
                simd,
                layers: Layers::new(self, simd.tile_outputs(), 2),
                tembs: tembs.into_flattened(),
            }
        }
        fn run_tile(p: &Float, steps: &[Step], x: &mut [[f32; 2]], noise: &mut [NoiseStream]) {
            run_tile(p.simd, &p.layers, steps, &p.tembs, x, noise)
        }
        fn lanes(&self) -> impl PredictNoise<Lanes<FRAME_LANES>> + '_ {
            self
        }
    }

    /// An integer model prepared: its packed layers and every step's integer time
    /// embedding (the core's `QModel::time_embedding`) at `tembs[k·stride ..]`, `stride` the
    /// hidden width rounded up to whole pairs (the padding unit's embedding is 0).
    pub struct Integer {
        pub(super) simd: Simd,
        pub(super) layers: QLayers,
        pub(super) tembs: Vec<i16>,
        pub(super) stride: usize,
    }

    impl<const H: usize, const B: usize> Executor for QModel<H, B> {
        type Prepared = Integer;
        fn prepare(&self, simd: Simd, steps: &[Step]) -> Integer {
            let stride = H.next_multiple_of(2);
            let mut tembs = vec![0; steps.len() * stride];
            tembs
                .par_chunks_mut(stride)
                .zip(steps)
                .for_each(|(t, s)| t[..H].copy_from_slice(&self.time_embedding(s.t_input)));
            Integer {
                simd,
                layers: QLayers::new(self, simd.tile_outputs()),
                tembs,
                stride,
            }
        }
        fn run_tile(p: &Integer, steps: &[Step], x: &mut [[f32; 2]], noise: &mut [NoiseStream]) {
            run_qtile(p, steps, x, noise)
        }
        fn lanes(&self) -> impl PredictNoise<Lanes<FRAME_LANES>> + '_ {
            self
        }
    }
}

/// The samples of `request` on `threads` threads (0 = the current rayon pool, see
/// [`crate::threads::run_on`]), with the widest SIMD path of this CPU: the core's bits.
/// `progress` is called with the number of finished samples from any thread.
pub fn sample<const H: usize, const B: usize, const T: usize, M: BatchModel<H, B> + ?Sized>(
    request: &SampleRequest<'_, H, B, T, M>,
    threads: usize,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Vec<[f32; 2]>, ThreadsError> {
    sample_with(Simd::detect(), request, threads, progress)
}

/// [`sample`] on a chosen path. Panics if the CPU lacks it ([`Simd::is_available`]), or if
/// `Init::Given` does not hold `count` points.
pub fn sample_with<const H: usize, const B: usize, const T: usize, M: BatchModel<H, B> + ?Sized>(
    simd: Simd,
    request: &SampleRequest<'_, H, B, T, M>,
    threads: usize,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Vec<[f32; 2]>, ThreadsError> {
    simd.require();
    let SampleRequest {
        model,
        init,
        seed,
        first,
        count,
        ..
    } = *request;
    if let Init::Given(xs) = init {
        assert_eq!(xs.len(), count, "one x_T per sample");
    }
    run_on(threads, || {
        let steps = request.steps();
        let prepared = model.prepare(simd, &steps);
        let tile = simd.tile_samples();
        let mut out = vec![[0.0f32; 2]; count];
        out.par_chunks_mut(tile).enumerate().for_each(|(t, xs)| {
            let first = first + (t * tile) as u64;
            let mut noise: Vec<NoiseStream> = (0..xs.len() as u64)
                .map(|i| NoiseStream::new(seed, first + i))
                .collect();
            for (i, (x, n)) in xs.iter_mut().zip(&mut noise).enumerate() {
                let pair = n.gaussian_pair();
                *x = match init {
                    Init::Noise => pair,
                    Init::Given(given) => given[t * tile + i],
                };
            }
            M::run_tile(&prepared, &steps, xs, &mut noise);
            progress(xs.len());
        });
        out
    })
}

/// The states of the chain of every sample of `request` (from noise, on all cores) before the
/// steps in `keep` — a `k` equal to the number of steps is the result, exactly what
/// [`sample`] returns: `frames[f][i]` is sample `first + i` before step `keep[f]`. The
/// figure runner: the core's `Lanes<16>` and chain with a hook that keeps frames.
pub fn frames<const H: usize, const B: usize, const T: usize, M: BatchModel<H, B> + ?Sized>(
    request: &SampleRequest<'_, H, B, T, M>,
    keep: &[usize],
) -> Vec<Vec<[f32; 2]>> {
    const LANES: usize = FRAME_LANES;
    let SampleRequest {
        model,
        sampler,
        schedule,
        seed,
        first,
        count,
        ..
    } = *request;
    // Per group of LANES samples: one [x, y] per kept frame, kept by the chain's step hook.
    let groups: Vec<Vec<[Lanes<LANES>; 2]>> = (0..count.div_ceil(LANES))
        .into_par_iter()
        .map(|g| {
            let lanes = LANES.min(count - g * LANES);
            let mut noise: Vec<NoiseStream> = (0..lanes)
                .map(|l| NoiseStream::new(seed, first + (g * LANES + l) as u64))
                .collect();
            let x = gaussian_lanes(&mut noise);
            let mut kept = Vec::with_capacity(keep.len());
            chain(
                model.lanes(),
                sampler.steps(schedule),
                x,
                &mut noise,
                |k, x| {
                    kept.extend(keep.iter().filter(|&&f| f == k).map(|_| *x));
                },
            );
            kept
        })
        .collect();
    (0..keep.len())
        .map(|f| {
            (0..count)
                .map(|i| {
                    let [x, y] = groups[i / LANES][f];
                    [x.lane(i % LANES), y.lane(i % LANES)]
                })
                .collect()
        })
        .collect()
}

/// One integer tile on the prepared path (available: checked by `sample_with`).
fn run_qtile(p: &sealed::Integer, steps: &[Step], x: &mut [[f32; 2]], noise: &mut [NoiseStream]) {
    let (layers, tembs, hidden) = (&p.layers, &p.tembs[..], p.stride);
    match p.simd {
        // SAFETY: `sample_with` checked that the CPU has the path's target features.
        #[cfg(target_arch = "x86_64")]
        Simd::Avx512Vnni => unsafe {
            x86::qtile_avx512vnni(layers, steps, tembs, hidden, x, noise)
        },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Simd::Avx512 => unsafe { x86::qtile_avx512(layers, steps, tembs, hidden, x, noise) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Simd::Avx2 => unsafe { x86::qtile_avx2(layers, steps, tembs, hidden, x, noise) },
        _ => qkernel::sample_tile::<IPortable<PORTABLE_LANES>, PORTABLE_S, PORTABLE_J>(
            layers, steps, tembs, hidden, x, noise,
        ),
    }
}

/// One tile on `simd` (available: checked by the caller).
fn run_tile(
    simd: Simd,
    layers: &Layers,
    steps: &[Step],
    tembs: &[f32],
    x: &mut [[f32; 2]],
    noise: &mut [NoiseStream],
) {
    match simd {
        // SAFETY: `sample_with` checked that the CPU has the path's target feature.
        #[cfg(target_arch = "x86_64")]
        Simd::Avx512Vnni | Simd::Avx512 => unsafe {
            x86::tile_avx512(layers, steps, tembs, x, noise)
        },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Simd::Avx2 => unsafe { x86::tile_avx2(layers, steps, tembs, x, noise) },
        _ => {
            kernel::sample_tile::<Portable, PORTABLE_S, PORTABLE_J>(layers, steps, tembs, x, noise)
        }
    }
}

/// The x86 entry points: the generic kernels compiled with each path's target feature.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::*;

    // Not generic: compiled once, here, with the target feature, so that the intrinsics inline
    // into it (instantiated in a downstream crate, they were left as calls: 10× slower).
    #[target_feature(enable = "avx512f")]
    pub(super) fn tile_avx512(
        layers: &Layers,
        steps: &[Step],
        tembs: &[f32],
        x: &mut [[f32; 2]],
        noise: &mut [NoiseStream],
    ) {
        kernel::sample_tile::<F32x16, AVX512_S, AVX512_J>(layers, steps, tembs, x, noise)
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn tile_avx2(
        layers: &Layers,
        steps: &[Step],
        tembs: &[f32],
        x: &mut [[f32; 2]],
        noise: &mut [NoiseStream],
    ) {
        kernel::sample_tile::<F32x8, AVX2_S, AVX2_J>(layers, steps, tembs, x, noise)
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) fn qtile_avx512vnni(
        layers: &QLayers,
        steps: &[Step],
        tembs: &[i16],
        hidden: usize,
        x: &mut [[f32; 2]],
        noise: &mut [NoiseStream],
    ) {
        qkernel::sample_tile::<I32x16<true>, AVX512_S, AVX512_J>(
            layers, steps, tembs, hidden, x, noise,
        )
    }

    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) fn qtile_avx512(
        layers: &QLayers,
        steps: &[Step],
        tembs: &[i16],
        hidden: usize,
        x: &mut [[f32; 2]],
        noise: &mut [NoiseStream],
    ) {
        qkernel::sample_tile::<I32x16<false>, AVX512_S, AVX512_J>(
            layers, steps, tembs, hidden, x, noise,
        )
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn qtile_avx2(
        layers: &QLayers,
        steps: &[Step],
        tembs: &[i16],
        hidden: usize,
        x: &mut [[f32; 2]],
        noise: &mut [NoiseStream],
    ) {
        qkernel::sample_tile::<I32x8, AVX2_S, AVX2_J>(layers, steps, tembs, hidden, x, noise)
    }

    #[target_feature(enable = "avx512f")]
    pub(super) fn batch1_avx512(
        layers: &Layers,
        x: [f32; 2],
        temb: &[f32],
        scratch: &mut kernel::Batch1Scratch,
    ) -> [f32; 2] {
        kernel::predict_noise_batch1::<F32x16, BATCH1_VECTORS>(layers, x, temb, scratch)
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn batch1_avx2(
        layers: &Layers,
        x: [f32; 2],
        temb: &[f32],
        scratch: &mut kernel::Batch1Scratch,
    ) -> [f32; 2] {
        kernel::predict_noise_batch1::<F32x8, BATCH1_VECTORS>(layers, x, temb, scratch)
    }

    #[target_feature(enable = "avx512f")]
    pub(super) fn temb_avx512(
        layers: &Layers,
        t_input: f32,
        scratch: &mut kernel::Batch1Scratch,
        temb: &mut [f32],
    ) {
        kernel::time_embedding_batch1::<F32x16, BATCH1_VECTORS>(layers, t_input, scratch, temb)
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn temb_avx2(
        layers: &Layers,
        t_input: f32,
        scratch: &mut kernel::Batch1Scratch,
        temb: &mut [f32],
    ) {
        kernel::time_embedding_batch1::<F32x8, BATCH1_VECTORS>(layers, t_input, scratch, temb)
    }
}

/// A model prepared for one sample at a time (lowest latency): each layer vectorised across
/// its outputs, weights re-laid-out once. Same bits as the core's `time_embedding` and
/// `predict_noise`.
#[derive(Clone, Debug)]
pub struct Batch1<const H: usize, const B: usize> {
    simd: Simd,
    layers: Layers,
    scratch: kernel::Batch1Scratch,
    temb: Vec<f32>,
}

impl<const H: usize, const B: usize> Batch1<H, B> {
    /// `model` prepared for `simd`. Panics if the CPU lacks it.
    pub fn new(model: &Model<H, B>, simd: Simd) -> Self {
        simd.require();
        let lanes = match simd {
            Simd::Avx512Vnni | Simd::Avx512 => 16,
            Simd::Avx2 => 8,
            Simd::Portable => Portable::LANES,
        };
        let layers = Layers::new(model, BATCH1_VECTORS * lanes, lanes);
        let scratch = kernel::Batch1Scratch::new(&layers);
        let temb = vec![0.0; layers.input.bias.len()];
        Self {
            simd,
            layers,
            scratch,
            temb,
        }
    }

    /// The time embedding for `t_input` (= t/T): the core's `Model::time_embedding`.
    pub fn time_embedding(&mut self, t_input: f32) -> [f32; H] {
        let Self {
            layers,
            scratch,
            temb,
            ..
        } = self;
        match self.simd {
            // SAFETY: `new` checked that the CPU has the path's target feature.
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512Vnni | Simd::Avx512 => unsafe {
                x86::temb_avx512(layers, t_input, scratch, temb)
            },
            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2 => unsafe { x86::temb_avx2(layers, t_input, scratch, temb) },
            _ => kernel::time_embedding_batch1::<Portable, BATCH1_VECTORS>(
                layers, t_input, scratch, temb,
            ),
        }
        core::array::from_fn(|j| temb[j])
    }

    /// Predicted noise ε̂(x, t) given that step's time embedding: the core's
    /// `Model::predict_noise` for one sample.
    pub fn predict_noise(&mut self, x: [f32; 2], temb: &[f32; H]) -> [f32; 2] {
        let Self {
            layers,
            scratch,
            temb: padded,
            ..
        } = self;
        padded[..H].copy_from_slice(temb);
        match self.simd {
            // SAFETY: `new` checked that the CPU has the path's target feature.
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512Vnni | Simd::Avx512 => unsafe {
                x86::batch1_avx512(layers, x, padded, scratch)
            },
            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2 => unsafe { x86::batch1_avx2(layers, x, padded, scratch) },
            _ => {
                kernel::predict_noise_batch1::<Portable, BATCH1_VECTORS>(layers, x, padded, scratch)
            }
        }
    }
}

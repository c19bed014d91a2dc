//! The host's batched and batch-1 samplers against the core's scalar code, bit for bit, for
//! the float model and the integer one.
//!
//! Every SIMD path the CPU has is forced in turn (a missing one is skipped with a message),
//! on 1 and 2 threads, for every sampler (the multistep solvers' history included), from noise
//! and from given x_T. References are the core's own `sample` / `sample_from` /
//! `predict_noise` (for the integer model, the core's `chain` on `&QModel`, as `sample` /
//! `sample_from` run it), computed here: no expected output is hard-coded. DDPM cases run on a
//! short (T = 40) schedule so the scalar reference stays fast; the long tests run the full
//! 1,000-step DDPM on the trained PyTorch fixture model and on its quantized integer model.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::OnceLock;

use proptest::prelude::*;
use rayon::prelude::*;
use tinyddpm::batch::{
    self, Batch1, BatchModel, Init, Prepared, QRequest, Request, SampleRequest, Simd,
};
use tinyddpm::flat::FlatModel;
use tinyddpm::quantize::{Calibration, quantize_model};
use tinyddpm::train::pytorch_init;
use tinyddpm_core::quant::Gelu;
use tinyddpm_core::{
    Guidance, Layout, Model, NoiseStream, QLinear, QModel, QSeedModel, Sampler, Schedule,
    ScheduleKind, SeedModel, Solver, Spacing, chain, gaussian_draw, gaussian_lanes, sample,
    sample_from, sample_guided,
};

/// SplitMix64: a small deterministic generator for test inputs.
struct Mix(u64);

impl Mix {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [−a, a).
    fn uniform(&mut self, a: f32) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * a
    }
}

/// The trained PyTorch model of the fixtures, read by the CLI's importer.
fn torch_model() -> Box<SeedModel> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/torch_model_3k.safetensors"
    );
    let bytes = std::fs::read(path).expect("fixture model");
    let tensors = tinyddpm::state_dict::parse(&bytes).expect("safetensors");
    tinyddpm::state_dict::import(&tensors)
        .expect("the notebook's state dict")
        .to_model()
        .expect("the seed shape")
}

fn bits(xs: &[[f32; 2]]) -> Vec<[u32; 2]> {
    xs.iter().map(|x| x.map(f32::to_bits)).collect()
}

/// Every path this CPU runs; the others are reported and skipped.
fn available_paths() -> Vec<Simd> {
    Simd::ALL
        .into_iter()
        .filter(|s| {
            let ok = s.is_available();
            if !ok {
                println!("skipping {s:?}: not available on this CPU");
            }
            ok
        })
        .collect()
}

/// A model kind and the core's scalar sampling of it.
trait Scalar<const H: usize, const B: usize>: BatchModel<H, B> {
    /// Sample `index` of `seed`, from `x_init` if given (the stream's x_T pair still drawn).
    fn scalar<const T: usize>(
        &self,
        schedule: &Schedule<T>,
        sampler: &Sampler,
        x_init: Option<[f32; 2]>,
        seed: u64,
        index: u64,
    ) -> [f32; 2];
}

impl<const H: usize, const B: usize> Scalar<H, B> for Model<H, B> {
    fn scalar<const T: usize>(
        &self,
        schedule: &Schedule<T>,
        sampler: &Sampler,
        x_init: Option<[f32; 2]>,
        seed: u64,
        index: u64,
    ) -> [f32; 2] {
        match x_init {
            None => sample(self, schedule, sampler, seed, index),
            Some(x) => sample_from(self, schedule, sampler, x, seed, index),
        }
    }
}

/// The core's chain on `&QModel` with f32 lanes, the steps of `sample` / `sample_from`.
impl<const H: usize, const B: usize> Scalar<H, B> for QModel<H, B> {
    fn scalar<const T: usize>(
        &self,
        schedule: &Schedule<T>,
        sampler: &Sampler,
        x_init: Option<[f32; 2]>,
        seed: u64,
        index: u64,
    ) -> [f32; 2] {
        let mut noise = [NoiseStream::new(seed, index)];
        let x_t = gaussian_lanes::<f32>(&mut noise);
        let steps = sampler.steps(schedule);
        chain(self, steps, x_init.unwrap_or(x_t), &mut noise, |_, _| ())
    }
}

/// The core's scalar result for each sample of `request` (in parallel: a pure function).
fn reference<const H: usize, const B: usize, const T: usize, M: Scalar<H, B>>(
    request: &SampleRequest<'_, H, B, T, M>,
) -> Vec<[f32; 2]> {
    let SampleRequest {
        model,
        schedule,
        sampler,
        init,
        seed,
        first,
        count,
    } = *request;
    (0..count)
        .into_par_iter()
        .map(|i| {
            let x_init = match init {
                Init::Noise => None,
                Init::Given(xs) => Some([xs[2 * i], xs[2 * i + 1]]),
            };
            model.scalar(schedule, sampler, x_init, seed, first + i as u64)
        })
        .collect()
}

/// Asserts that every path on 1 and 2 threads reproduces the core.
fn check<const H: usize, const B: usize, const T: usize, M: Scalar<H, B>>(
    request: &SampleRequest<'_, H, B, T, M>,
) -> Result<(), TestCaseError> {
    let want = bits(&reference(request));
    for simd in available_paths() {
        for threads in [1, 2] {
            let got = batch::sample_with(simd, request, threads, &|_| {}).expect("worker threads");
            prop_assert_eq!(
                &bits(&got),
                &want,
                "{:?} threads={} {:?}",
                simd,
                threads,
                request.sampler
            );
        }
    }
    Ok(())
}

fn spacing() -> impl Strategy<Value = Spacing> {
    prop_oneof![
        Just(Spacing::Trailing),
        Just(Spacing::Leading),
        Just(Spacing::Linspace)
    ]
}

/// DDIM with any η, spacing and clipping, at most `max_steps` steps.
fn ddim(max_steps: u32) -> impl Strategy<Value = Sampler> {
    (
        1..=max_steps,
        prop_oneof![Just(0.0f32), Just(1.0f32), 0.0f32..=1.0],
        spacing(),
        any::<bool>(),
    )
        .prop_map(|(steps, eta, spacing, clip)| Sampler::Ddim {
            steps,
            eta,
            spacing,
            clip,
        })
}

/// A multistep solver (DPM-Solver++ 2M, 3M, 2M SDE, UniPC) on any of its placements, with at
/// most `max_steps` steps (fewer than T: the last step goes to σ = 0).
fn multistep(max_steps: u32) -> impl Strategy<Value = Sampler> {
    let solver = prop_oneof![
        Just(Solver::DpmPp2m),
        Just(Solver::DpmPp3m),
        Just(Solver::DpmPp2mSde),
        Just(Solver::UniPc)
    ];
    let spacing = prop_oneof![
        Just(Spacing::Linspace),
        Just(Spacing::Karras),
        Just(Spacing::LogSnr)
    ];
    (solver, 1..=max_steps, spacing).prop_map(|(solver, steps, spacing)| Sampler::Multistep {
        solver,
        steps,
        spacing,
    })
}

/// Any sampler on the short (T = 40) schedule: DDPM, posterior DDPM, DDIM, a multistep solver.
fn short_schedule_sampler() -> impl Strategy<Value = Sampler> {
    prop_oneof![
        Just(Sampler::Ddpm),
        Just(Sampler::DdpmPosterior),
        ddim(40),
        multistep(39)
    ]
}

fn schedule_kind() -> impl Strategy<Value = ScheduleKind> {
    prop_oneof![Just(ScheduleKind::SEED), Just(ScheduleKind::COSINE)]
}

/// Given x_T for `count` samples, or `None` for x_T from the noise.
fn given(count: usize) -> impl Strategy<Value = Option<Vec<[f32; 2]>>> {
    prop::option::of(prop::collection::vec([-3.0f32..3.0, -3.0f32..3.0], count))
}

fn run_case<const H: usize, const B: usize, const T: usize>(
    model: &Model<H, B>,
    kind: ScheduleKind,
    sampler: Sampler,
    xs: &Option<Vec<[f32; 2]>>,
    seed: u64,
    first: u64,
    count: usize,
) -> Result<(), TestCaseError> {
    run_model::<H, B, T, _>(model, kind, sampler, xs, seed, first, count)
}

/// [`run_case`] for either model kind.
fn run_model<const H: usize, const B: usize, const T: usize, M: Scalar<H, B>>(
    model: &M,
    kind: ScheduleKind,
    sampler: Sampler,
    xs: &Option<Vec<[f32; 2]>>,
    seed: u64,
    first: u64,
    count: usize,
) -> Result<(), TestCaseError> {
    let schedule = Schedule::<T>::new(kind).expect("schedule");
    check(&SampleRequest {
        model,
        schedule: &schedule,
        sampler: &sampler,
        init: xs
            .as_deref()
            .map_or(Init::Noise, |xs| Init::Given(xs.as_flattened())),
        seed,
        first,
        count,
    })
}

/// Batch size, then a sampler whose work fits the batch (about 3,000 scalar sample-steps).
fn batch_and_sampler() -> impl Strategy<Value = (usize, Sampler, bool)> {
    prop_oneof![Just(1usize), Just(7), Just(64), Just(1000)].prop_flat_map(|n| {
        let budget = (3000 / n).clamp(1, 60) as u32;
        let ddpm = prop_oneof![Just(Sampler::Ddpm), Just(Sampler::DdpmPosterior)];
        // DDPM runs all T = 40 steps of the short schedule: only for the small batches.
        let s = if n <= 64 {
            prop_oneof![
                ddpm.prop_map(|s| (s, true)),
                ddim(budget).prop_map(|s| (s, false)),
                multistep(budget).prop_map(|s| (s, false))
            ]
            .boxed()
        } else {
            prop_oneof![
                ddim(budget).prop_map(|s| (s, false)),
                multistep(budget).prop_map(|s| (s, false))
            ]
            .boxed()
        };
        (Just(n), s).prop_map(|(n, (s, short))| (n, s, short))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// Seed-sized model, every sampler, batch sizes 1, 7, 64, 1000.
    #[test]
    fn batch_matches_core_bit_for_bit(
        (count, sampler, short) in batch_and_sampler(),
        kind in schedule_kind(),
        seed in any::<u64>(),
        first in prop_oneof![Just(0u64), any::<u64>().prop_map(|i| i % (u64::MAX - 2000))],
        model_seed in 0u64..4,
        xs in given(1000),
    ) {
        let model = pytorch_init::<128, 3>(model_seed);
        let xs = xs.map(|mut v| { v.truncate(count); v });
        if short {
            run_case::<128, 3, 40>(&model, kind, sampler, &xs, seed, first, count)?;
        } else {
            run_case::<128, 3, 1000>(&model, kind, sampler, &xs, seed, first, count)?;
        }
    }

    /// An odd shape (H = 19: no tile or lane width divides it) exercises the padded outputs.
    #[test]
    fn odd_shape_matches_core_bit_for_bit(
        count in 1usize..200,
        sampler in short_schedule_sampler(),
        seed in any::<u64>(),
        first in any::<u32>(),
        xs in given(200),
    ) {
        let model = pytorch_init::<19, 2>(seed ^ 5);
        let xs = xs.map(|mut v| { v.truncate(count); v });
        run_case::<19, 2, 40>(&model, ScheduleKind::SEED, sampler, &xs, seed, first.into(), count)?;
    }

    /// Batch-1 forward pass and time embedding equal the core's for every path, on the
    /// seed shape, an odd width and a model of 5-D points.
    #[test]
    fn batch1_matches_core_bit_for_bit(
        x in [-4.0f32..4.0, -4.0f32..4.0, -4.0f32..4.0, -4.0f32..4.0, -4.0f32..4.0],
        t in 0u32..1000,
        model_seed in 0u64..4,
    ) {
        let t_input = t as f32 / 1000.0;
        batch1_case(&*pytorch_init::<128, 3>(model_seed), [x[0], x[1]], t_input)?;
        batch1_case(&*pytorch_init::<19, 2>(model_seed), [x[0], x[1]], t_input)?;
        batch1_case(&*any_dim_model::<40, 2, 5>(model_seed), x, t_input)?;
    }
}

/// [`Batch1`] on `model` at `x` and `t_input` against the core's `time_embedding` and
/// `predict_noise`, on every path.
fn batch1_case<const H: usize, const B: usize, const D: usize>(
    model: &Model<H, B, D>,
    x: [f32; D],
    t_input: f32,
) -> Result<(), TestCaseError> {
    let temb = model.time_embedding(t_input);
    let want = model.predict_noise(x, &temb).map(f32::to_bits);
    for simd in available_paths() {
        let mut b = Batch1::new(&FlatModel::of(model), simd);
        let got: Vec<u32> = b
            .time_embedding(t_input)
            .iter()
            .map(|v| v.to_bits())
            .collect();
        prop_assert_eq!(got, temb.map(f32::to_bits).to_vec(), "{:?}", simd);
        let mut eps = [0.0f32; D];
        b.predict_noise(&x, &mut eps);
        prop_assert_eq!(eps.map(f32::to_bits), want, "{:?}", simd);
    }
    Ok(())
}

/// A quantized model: `quantize` on a short calibration (its quality is not under test here).
fn quantized<const H: usize, const B: usize>(model: &Model<H, B>) -> Box<QModel<H, B>> {
    let schedule = Schedule::<1000>::new(ScheduleKind::SEED).expect("schedule");
    let calibration = Calibration {
        samples: 4000,
        seed: 1,
        ..Calibration::default()
    };
    let (q, _) = quantize_model(model, &schedule, &calibration).expect("quantizable");
    q.validate().expect("a valid integer model");
    q
}

/// The integer models of `pytorch_init::<128, 3>` seeds 0..4, quantized once.
fn seed_qmodels() -> &'static [Box<QSeedModel>] {
    static MODELS: OnceLock<Vec<Box<QSeedModel>>> = OnceLock::new();
    MODELS.get_or_init(|| {
        (0..4)
            .into_par_iter()
            .map(|s| quantized(&pytorch_init::<128, 3>(s)))
            .collect()
    })
}

/// An integer model with parameters drawn over their whole types: −128 weights, biases and
/// multipliers of any size (sums that wrap, outputs that saturate), shifts and exponents
/// past their ranges (which evaluation clamps). Not a valid model, but one that every
/// implementation must evaluate as the core does. ε̂'s exponent stays at 10 or more so that
/// the chain stays finite.
fn arbitrary_qmodel<const H: usize, const B: usize, const D: usize>(
    seed: u64,
) -> Box<QModel<H, B, D>> {
    fn linear<const I: usize, const O: usize>(l: &mut QLinear<I, O>, rng: &mut Mix) {
        for w in l.weight.as_flattened_mut() {
            *w = rng.next_u64() as i8;
        }
        for j in 0..O {
            l.bias[j] = (rng.next_u64() as i32) >> (rng.next_u64() % 32);
            l.multiplier[j] = (rng.next_u64() as i32) >> (rng.next_u64() % 8);
            l.shift[j] = match rng.next_u64() % 8 {
                0 => (rng.next_u64() % 256) as u8,
                _ => 24 + (rng.next_u64() % 30) as u8,
            };
        }
    }
    let mut rng = Mix(seed);
    let mut exp = |lo: u64, n: u64| (lo + rng.next_u64() % n) as u8;
    let mut q = Box::new(QModel::<H, B, D>::ZERO);
    q.time_act = Gelu {
        pre_exp: exp(0, 30),
        post_exp: exp(0, 40),
    };
    (q.input_exp, q.input_pre_exp, q.stream_exp) = (exp(0, 30), exp(0, 30), exp(0, 30));
    q.output_exp = exp(10, 20);
    for b in &mut q.blocks {
        b.act = Gelu {
            pre_exp: exp(0, 30),
            post_exp: exp(0, 40),
        };
        b.second_pre_exp = exp(0, 30);
    }
    let mut rng = Mix(seed ^ 0x5eed);
    linear(&mut q.time_in, &mut rng);
    linear(&mut q.time_out, &mut rng);
    linear(&mut q.input, &mut rng);
    for b in &mut q.blocks {
        linear(&mut b.first, &mut rng);
        linear(&mut b.second, &mut rng);
    }
    linear(&mut q.output, &mut rng);
    q
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// The integer model: seed-sized, quantized, every sampler, batch sizes 1, 7, 64, 1000.
    #[test]
    fn integer_batch_matches_core_bit_for_bit(
        (count, sampler, short) in batch_and_sampler(),
        kind in schedule_kind(),
        seed in any::<u64>(),
        first in prop_oneof![Just(0u64), any::<u64>().prop_map(|i| i % (u64::MAX - 2000))],
        model_seed in 0usize..4,
        xs in given(1000),
    ) {
        let model = &*seed_qmodels()[model_seed];
        let xs = xs.map(|mut v| { v.truncate(count); v });
        if short {
            run_model::<128, 3, 40, _>(model, kind, sampler, &xs, seed, first, count)?;
        } else {
            run_model::<128, 3, 1000, _>(model, kind, sampler, &xs, seed, first, count)?;
        }
    }

    /// An odd integer shape (H = 19: odd input pairs, a padded output pair and block).
    #[test]
    fn integer_odd_shape_matches_core_bit_for_bit(
        count in 1usize..200,
        sampler in short_schedule_sampler(),
        seed in any::<u64>(),
        first in any::<u32>(),
        xs in given(200),
    ) {
        let model = quantized(&pytorch_init::<19, 2>(seed ^ 5));
        let xs = xs.map(|mut v| { v.truncate(count); v });
        run_model::<19, 2, 40, _>(&*model, ScheduleKind::SEED, sampler, &xs, seed, first.into(), count)?;
    }

    /// Integer models outside every range (H = 21, B = 2): wrapping sums, saturation and the
    /// clamped shifts and exponents take the core's path on every SIMD path.
    #[test]
    fn arbitrary_integer_model_matches_core_bit_for_bit(
        count in 1usize..120,
        sampler in prop_oneof![Just(Sampler::Ddpm), ddim(40), multistep(39)],
        seed in any::<u64>(),
        xs in given(120),
    ) {
        let model = arbitrary_qmodel::<21, 2, 2>(seed);
        let xs = xs.map(|mut v| { v.truncate(count); v });
        run_model::<21, 2, 40, _>(&*model, ScheduleKind::SEED, sampler, &xs, seed, 0, count)?;
    }
}

/// The trained model, quantized with the default calibration: DDIM-50 and a multistep solver
/// from noise and from given x_T, realistic activations through every path.
#[test]
fn trained_integer_model_matches_core() {
    let model = torch_model();
    let schedule = Schedule::<1000>::new(ScheduleKind::SEED).expect("schedule");
    let (q, _) = quantize_model(&*model, &schedule, &Calibration::default()).expect("quantizable");
    let mut rng = Mix(12);
    let xs: Vec<[f32; 2]> = (0..100)
        .map(|_| [rng.uniform(3.0), rng.uniform(3.0)])
        .collect();
    let multistep = Sampler::Multistep {
        solver: Solver::DpmPp2mSde,
        steps: 20,
        spacing: Spacing::Karras,
    };
    for sampler in [Sampler::DDIM_DEFAULT, multistep] {
        for init in [Init::Noise, Init::Given(xs.as_flattened())] {
            let request = QRequest {
                model: &q,
                schedule: &schedule,
                sampler: &sampler,
                init,
                seed: 43,
                first: 7,
                count: 100,
            };
            check(&request).expect("identical");
        }
    }
}

/// The long integer run: 1,000 samples × 1,000 DDPM steps of the quantized trained model, the
/// default path and all threads, against the core's scalar chain, compared by hash.
#[test]
fn long_integer_ddpm_run_hashes_equal_core() {
    let model = torch_model();
    let schedule = Schedule::<1000>::new(ScheduleKind::SEED).expect("schedule");
    let (q, _) = quantize_model(&*model, &schedule, &Calibration::default()).expect("quantizable");
    let request = QRequest {
        model: &q,
        schedule: &schedule,
        sampler: &Sampler::Ddpm,
        init: Init::Noise,
        seed: 2025,
        first: 3_000_000,
        count: 1000,
    };
    assert_long_run_hashes_equal_core(&request);
}

/// The figure runner on an integer model, on every SIMD path: every frame is the core's
/// chain stopped there.
#[test]
fn integer_frames_are_the_cores_chain_stopped_at_each_kept_step() {
    let q = &*seed_qmodels()[1];
    let schedule = Schedule::<1000>::new(ScheduleKind::SEED).expect("schedule");
    let sampler = Sampler::DDIM_DEFAULT;
    let keep = [0, 25, 50];
    for simd in Simd::ALL.into_iter().filter(|s| s.is_available()) {
        let frames = Prepared::new(simd, q, &schedule, &sampler).frames(4, 11, 19, &keep);
        for (frame, &k) in frames.iter().zip(&keep) {
            assert_eq!(frame.len(), 19 * 2);
            for (i, got) in frame.chunks_exact(2).enumerate() {
                let mut noise = [NoiseStream::new(4, 11 + i as u64)];
                let x_t = gaussian_lanes::<f32>(&mut noise);
                let steps = sampler.steps(&schedule).take(k);
                let want = chain(q, steps, x_t, &mut noise, |_, _| ());
                assert_eq!(
                    got,
                    want.map(f32::to_bits).map(f32::from_bits),
                    "{simd:?} k={k} i={i}"
                );
            }
        }
    }
}

/// The trained model's DDIM-50 from given x_T: realistic activations through every path.
#[test]
fn trained_model_ddim_matches_core() {
    let model = torch_model();
    let schedule = Schedule::<1000>::new(ScheduleKind::SEED).expect("schedule");
    let mut rng = Mix(11);
    let xs: Vec<[f32; 2]> = (0..100)
        .map(|_| [rng.uniform(3.0), rng.uniform(3.0)])
        .collect();
    for init in [Init::Noise, Init::Given(xs.as_flattened())] {
        let request = Request {
            model: &*model,
            schedule: &schedule,
            sampler: &Sampler::DDIM_DEFAULT,
            init,
            seed: 42,
            first: 0,
            count: 100,
        };
        check(&request).expect("identical");
    }
}

fn hash(xs: &[[f32; 2]]) -> u64 {
    let mut h = DefaultHasher::new();
    bits(xs).hash(&mut h);
    h.finish()
}

/// The long run: 1,000 samples × 1,000 DDPM steps of the trained seed-sized model, the
/// default path and all threads, against the core's scalar loop, compared by hash.
#[test]
fn long_ddpm_run_hashes_equal_core() {
    let model = torch_model();
    let schedule = Schedule::<1000>::new(ScheduleKind::SEED).expect("schedule");
    let request = Request {
        model: &*model,
        schedule: &schedule,
        sampler: &Sampler::Ddpm,
        init: Init::Noise,
        seed: 2024,
        first: 1_000_000,
        count: 1000,
    };
    assert_long_run_hashes_equal_core(&request);
}

/// The default path on all threads against the core's scalar chain, compared by hash.
fn assert_long_run_hashes_equal_core<const H: usize, const B: usize, M: Scalar<H, B>>(
    request: &SampleRequest<'_, H, B, 1000, M>,
) {
    let want = reference(request);
    let got = batch::sample(request, 0, &|_| {}).expect("worker threads");
    assert!(want.iter().flatten().all(|v| v.is_finite()));
    println!("hash {:#018x} ({:?})", hash(&got), Simd::detect());
    assert_eq!(hash(&got), hash(&want));
}

/// `progress` adds up to the sample count, and an empty batch is empty.
#[test]
fn progress_counts_every_sample_once() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let model = pytorch_init::<19, 2>(1);
    let schedule = Schedule::<40>::new(ScheduleKind::SEED).expect("schedule");
    let done = AtomicUsize::new(0);
    let progress = |n: usize| {
        done.fetch_add(n, Ordering::Relaxed);
    };
    let out = batch::sample(
        &Request {
            model: &*model,
            schedule: &schedule,
            sampler: &Sampler::Ddpm,
            init: Init::Noise,
            seed: 1,
            first: 0,
            count: 333,
        },
        2,
        &progress,
    )
    .expect("worker threads");
    assert_eq!((out.len(), done.load(Ordering::Relaxed)), (333, 333));
    assert!(
        batch::sample(
            &Request {
                model: &*model,
                schedule: &schedule,
                sampler: &Sampler::Ddpm,
                init: Init::Noise,
                seed: 1,
                first: 0,
                count: 0
            },
            2,
            &|_| {}
        )
        .expect("worker threads")
        .is_empty()
    );
}

/// The figure runner's frames on every SIMD path, for a 2-D and a 3-D model: the state
/// before step k of each sample is the core's chain stopped after k steps; frame 0 is x_T and
/// the last frame the core's `sample`. Counts spanning several tiles, the last partly
/// filled, a repeated step, one past the last (the result), and an offset first index.
#[test]
fn frames_are_the_cores_chain_stopped_at_each_kept_step() {
    fn check<const D: usize>(model: &Model<19, 2, D>) {
        let schedule = Schedule::<1000>::new(ScheduleKind::SEED).expect("schedule");
        let sampler = Sampler::Ddim {
            steps: 20,
            eta: 0.5,
            spacing: Spacing::Trailing,
            clip: false,
        };
        let keep = [0, 7, 7, 20, 99];
        for simd in Simd::ALL.into_iter().filter(|s| s.is_available()) {
            let prepared = Prepared::new(simd, model, &schedule, &sampler);
            let frames = prepared.frames(9, 3, 70, &keep);
            assert_eq!(frames.len(), keep.len());
            for (frame, &k) in frames.iter().zip(&keep) {
                assert_eq!(frame.len(), 70 * D);
                for i in [0usize, 15, 16, 20, 33, 69] {
                    let mut noise = [NoiseStream::new(9, 3 + i as u64)];
                    let x_t = noise[0].gaussians::<D>();
                    let steps = sampler.steps(&schedule).take(k);
                    let want = chain(model, steps, x_t, &mut noise, |_, _| ());
                    let got = &frame[i * D..(i + 1) * D];
                    let want = want.map(f32::to_bits).map(f32::from_bits);
                    assert_eq!(got, want, "{simd:?} D={D} k={k} i={i}");
                }
            }
            let last = sample(model, &schedule, &sampler, 9, 3 + 69);
            assert_eq!(&frames[4][69 * D..], last, "{simd:?} D={D}");
        }
    }
    check(&pytorch_init::<19, 2>(5));
    check(&any_dim_model::<19, 2, 3>(5));
}

/// A float model of shape (H, B, D) with weights uniform in ±1/√fan-in, as PyTorch
/// initialises a `Linear` (the generator is the test's own).
fn any_dim_model<const H: usize, const B: usize, const D: usize>(seed: u64) -> Box<Model<H, B, D>> {
    let mut m = Box::new(Model::<H, B, D>::ZERO);
    let mut rng = Mix(seed);
    m.for_each_tensor_mut(|_, shape, values| {
        let fan_in = shape.last().copied().unwrap_or(1).max(1) as f32;
        let bound = if shape.len() == 2 {
            1.0 / fan_in.sqrt()
        } else {
            0.1
        };
        values.iter_mut().for_each(|v| *v = rng.uniform(bound));
    });
    m
}

/// The batched sampler prepared by `prepare` for each path equals `scalar`, the core's sample
/// `index` (from the given x_T, if any) on every path and 1 and 2 threads, from noise and
/// from given x_T.
fn any_dim_check<const D: usize>(
    what: &str,
    scalar: impl Fn(Option<[f32; D]>, u64) -> [f32; D] + Sync,
    prepare: impl Fn(Simd) -> batch::Prepared,
    seed: u64,
    first: u64,
    count: usize,
    given: bool,
) -> Result<(), TestCaseError> {
    let mut rng = Mix(seed ^ 0x5eed);
    let starts: Vec<f32> = (0..count * D).map(|_| rng.uniform(3.0)).collect();
    let init = match given {
        true => Init::Given(&starts),
        false => Init::Noise,
    };
    let want: Vec<u32> = (0..count)
        .into_par_iter()
        .flat_map_iter(|i| {
            let x = given.then(|| std::array::from_fn(|c| starts[i * D + c]));
            scalar(x, first + i as u64).map(f32::to_bits)
        })
        .collect();
    for simd in available_paths() {
        let prepared = prepare(simd);
        for threads in [1, 2] {
            let got = tinyddpm::threads::run_on(threads, || {
                prepared.sample(init, seed, first, count, &|_| ())
            })
            .expect("thread pool");
            let got: Vec<u32> = got.iter().map(|v| v.to_bits()).collect();
            prop_assert_eq!(
                &got,
                &want,
                "{} D={} {:?} {} threads",
                what,
                D,
                simd,
                threads
            );
        }
    }
    Ok(())
}

/// The batched sampler on the float model of any shape ([`FlatModel`]) equals the core's
/// `sample` / `sample_from` on the const-generic model of that shape.
fn any_dim_case<const H: usize, const B: usize, const D: usize>(
    model_seed: u64,
    sampler: Sampler,
    seed: u64,
    first: u64,
    count: usize,
    given: bool,
) -> Result<(), TestCaseError> {
    let model = any_dim_model::<H, B, D>(model_seed);
    let schedule = Schedule::<40>::new(ScheduleKind::SEED).expect("schedule");
    let flat = FlatModel::of(&*model);
    any_dim_check(
        &format!("float H={H} B={B}"),
        |x, index| match x {
            Some(x) => sample_from(&*model, &schedule, &sampler, x, seed, index),
            None => sample(&*model, &schedule, &sampler, seed, index),
        },
        |simd| batch::Prepared::float(simd, &flat, &schedule, &sampler, None),
        seed,
        first,
        count,
        given,
    )
}

/// A model of shape (H, B, D) conditioned on `classes` classes, as the core holds it (the
/// network and the embedding's rows, uniform in ±0.5) and as the host reads it from a file
/// (its parameters in file order, the embedding last).
fn conditioned_model<const H: usize, const B: usize, const D: usize>(
    seed: u64,
    classes: u16,
) -> (Box<Model<H, B, D>>, Vec<f32>, FlatModel) {
    let model = any_dim_model::<H, B, D>(seed);
    let mut rng = Mix(seed ^ 0xc1a5);
    let rows: Vec<f32> = (0..(usize::from(classes) + 1) * H)
        .map(|_| rng.uniform(0.5))
        .collect();
    let mut params = FlatModel::of(&*model).params().to_vec();
    params.extend_from_slice(&rows);
    let layout = Layout::of_dim::<H, B, D>().with_classes(classes.into());
    let flat = FlatModel::new(layout.expect("a layout"), params).expect("its parameters");
    (model, rows, flat)
}

/// The batched sampler of a model conditioned on classes, guided or not, equals the core's
/// `sample_guided` on the const-generic model and its embedding.
fn guided_case<const H: usize, const B: usize, const D: usize>(
    model_seed: u64,
    sampler: Sampler,
    (seed, first, count): (u64, u64, usize),
    classes: u16,
    guidance: Option<Guidance>,
) -> Result<(), TestCaseError> {
    let (model, rows, flat) = conditioned_model::<H, B, D>(model_seed, classes);
    let schedule = Schedule::<40>::new(ScheduleKind::SEED).expect("schedule");
    let scalar = |_: Option<[f32; D]>, index| {
        let at = (seed, index);
        sample_guided(&*model, &rows, &schedule, &sampler, at, guidance).expect("a class")
    };
    any_dim_check(
        &format!("guided H={H} B={B} {guidance:?}"),
        scalar,
        |simd| batch::Prepared::float(simd, &flat, &schedule, &sampler, guidance),
        seed,
        first,
        count,
        false,
    )
}

/// The batched sampler on an integer model of D coordinates (parameters over their whole
/// types, [`arbitrary_qmodel`]) equals the core's chain on `&QModel<H, B, D>`, the steps of
/// `sample` / `sample_from`.
fn integer_dim_case<const H: usize, const B: usize, const D: usize>(
    sampler: Sampler,
    seed: u64,
    first: u64,
    count: usize,
    given: bool,
) -> Result<(), TestCaseError> {
    let model = arbitrary_qmodel::<H, B, D>(seed);
    let schedule = Schedule::<40>::new(ScheduleKind::SEED).expect("schedule");
    any_dim_check(
        &format!("integer H={H} B={B}"),
        |x, index| {
            let mut noise = [NoiseStream::new(seed, index)];
            let x_t = gaussian_draw::<f32, D>(&mut noise);
            let steps = sampler.steps(&schedule);
            chain(&*model, steps, x.unwrap_or(x_t), &mut noise, |_, _| ())
        },
        |simd| batch::Prepared::new(simd, &*model, &schedule, &sampler),
        seed,
        first,
        count,
        given,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    /// Any D from 1 to 16, and hidden widths no tile or lane count divides, through the
    /// model of a shape read at run time.
    #[test]
    fn any_shape_float_model_matches_core_bit_for_bit(
        count in 1usize..120,
        sampler in short_schedule_sampler(),
        seed in any::<u64>(),
        first in any::<u32>(),
        given in any::<bool>(),
    ) {
        let first = u64::from(first);
        any_dim_case::<16, 1, 1>(seed, sampler, seed, first, count, given)?;
        any_dim_case::<19, 2, 3>(seed ^ 1, sampler, seed, first, count, given)?;
        any_dim_case::<24, 1, 8>(seed ^ 2, sampler, seed, first, count, given)?;
        any_dim_case::<33, 2, 16>(seed ^ 3, sampler, seed, first, count, given)?;
    }

    /// Class-conditional models, unguided (∅), at w = 0 and 1 (one evaluation a step) and
    /// guided (two): every sampler, the multistep solvers' history included.
    #[test]
    fn guided_sampling_matches_core_bit_for_bit(
        count in 1usize..60,
        sampler in prop_oneof![Just(Sampler::Ddpm), ddim(40), multistep(39)],
        seed in any::<u64>(),
        first in any::<u32>(),
        class in 0u16..5,
        weight in prop_oneof![Just(0.0f32), Just(1.0f32), 0.0f32..6.0],
        guided in any::<bool>(),
    ) {
        let at = (seed, u64::from(first), count);
        let guidance = guided.then(|| Guidance::new(class, weight).expect("a weight"));
        guided_case::<16, 1, 2>(seed, sampler, at, 5, guidance)?;
        guided_case::<19, 2, 3>(seed ^ 1, sampler, at, 7, guidance)?;
    }

    /// The integer model of any D from 1 to 16 (odd ones: a padded input and output pair),
    /// its parameters over their whole types, on widths no tile divides.
    #[test]
    fn any_dim_integer_model_matches_core_bit_for_bit(
        count in 1usize..120,
        sampler in prop_oneof![Just(Sampler::Ddpm), ddim(40), multistep(39)],
        seed in any::<u64>(),
        first in any::<u32>(),
        given in any::<bool>(),
    ) {
        let first = u64::from(first);
        integer_dim_case::<16, 1, 1>(sampler, seed, first, count, given)?;
        integer_dim_case::<19, 2, 3>(sampler, seed ^ 1, first, count, given)?;
        integer_dim_case::<24, 1, 8>(sampler, seed ^ 2, first, count, given)?;
        integer_dim_case::<33, 2, 16>(sampler, seed ^ 3, first, count, given)?;
    }
}

//! GPU sampling of a float model of any shape the kernels hold (D 1 ..= 16, H a multiple of
//! 8 in 32 ..= 128, any B), bit-identical to the core's `sample`/`sample_from` (kernels in
//! `kernels/sample.cu`, compiled for each shape).
//!
//! The host builds what the core defines once per run — the step table
//! (`Sampler::step`, each row `Step::to_words`) — and uploads it with the weights; the device computes the time
//! embedding of every step (the core's arithmetic), seeds each sample's stream from
//! `(seed, index)`, and runs the reverse steps with one thread block per group of samples.
//! Each sample's state — x, its noise stream and the multistep solvers' history — lives in
//! buffers between launches. The whole run is one launch list ([`sample_plan`]), which the
//! GPU and the test suite's CPU emulation of the kernels run alike ([`sample_on`]).

use std::ops::Range;

use tinyddpm_core::units::MAX_DIM;
use tinyddpm_core::{Layer, Layout, Step};

use super::launch::{Arg, Buf, Device, Launch, Plan};
use super::{CudaError, SAMPLE, zero_seed_state};
use crate::batch::{FlatRequest, Init};
use crate::flat::FlatModel;

/// Largest sample tile per thread block: 4 samples per thread row, 32 rows.
const SMAX_CAP: usize = 128;
/// Reverse steps per launch: keeps each launch well under a display watchdog's limit.
const STEPS_PER_LAUNCH: usize = 100;
/// Floats of multistep history per coordinate of a sample between launches (`HIST_WORDS` in
/// `sample.cu` is D of them).
const HIST_PER_COORD: usize = 3;
/// Threads per block of `sample_init` (one per sample).
const INIT_THREADS: usize = 1024;

/// Dynamic shared memory of `sample_steps`: h and u tiles, one staged layer, x and ε̂ of D
/// coordinates each.
fn smem_bytes(layout: &Layout, smax: usize) -> usize {
    let (hidden, dim) = (layout.hidden, layout.dim);
    (2 * hidden * smax + hidden * hidden + 2 * dim * smax) * 4
}

/// Whether the sampling kernels hold a model of `layout`, on any device: H a multiple of 8
/// in 32 ..= 128 (a thread owns 8 outputs, and a block needs as many threads as samples), D
/// in 1 ..= 16 (the core's points); if not, why, in one line.
pub fn check_sample_shape(layout: &Layout) -> Result<(), CudaError> {
    let (hidden, dim) = (layout.hidden, layout.dim);
    if !hidden.is_multiple_of(8) || !(32..=128).contains(&hidden) {
        return Err(CudaError::Unsupported(format!(
            "the sampler needs a hidden width that is a multiple of 8 between 32 and 128, \
             the model has {hidden}"
        )));
    }
    if !(1..=MAX_DIM).contains(&dim) {
        return Err(CudaError::Unsupported(format!(
            "the sampler needs points of 1 to {MAX_DIM} coordinates, the model's have {dim}"
        )));
    }
    if layout.classes > 0 {
        return Err(CudaError::Unsupported(
            "the sampler does not take models conditioned on classes yet".into(),
        ));
    }
    Ok(())
}

/// The largest sample tile (a multiple of 4, at most 128) whose buffers fit in `smem_optin`
/// bytes of shared memory, for a model the kernels hold ([`check_sample_shape`]).
pub(super) fn samples_per_block_max(
    layout: &Layout,
    smem_optin: usize,
) -> Result<usize, CudaError> {
    check_sample_shape(layout)?;
    let hidden = layout.hidden;
    let smax = (1..=SMAX_CAP / 4)
        .rev()
        .map(|q| 4 * q)
        .find(|&s| smem_bytes(layout, s) <= smem_optin)
        .ok_or_else(|| {
            CudaError::Unsupported(format!(
                "the device's {smem_optin} bytes of shared memory per block cannot hold a \
                 {hidden}×{hidden} layer"
            ))
        })?;
    Ok(smax)
}

/// NVRTC `-D` options of `sample.cu` for a model of `layout`: the sizes, then the core's
/// parameter offsets (`Layout::named_offsets`) and step-table row layout
/// (`Step::named_words`).
pub(super) fn defines(layout: &Layout, smax: usize) -> Vec<(&'static str, usize)> {
    let mut defines = vec![
        ("HID", layout.hidden),
        ("NBLK", layout.blocks),
        ("DIM", layout.dim),
        ("SMAX", smax),
    ];
    defines.extend(layout.named_offsets());
    defines.extend(Step::named_words());
    defines
}

/// The model's 2·B hidden layers, each transposed to [k][j].
fn transposed_blocks(model: &FlatModel) -> Vec<f32> {
    let layout = model.layout();
    let h = layout.hidden;
    let mut wt = Vec::with_capacity(2 * layout.blocks * h * h);
    for d in layout.iter() {
        if let Layer::BlockFirst(_) | Layer::BlockSecond(_) = d.layer {
            let w = d.weight(model.params());
            wt.extend((0..d.i).flat_map(|k| (0..d.o).map(move |j| w[j * d.i + k])));
        }
    }
    wt
}

/// A sampling run as a launch list ([`sample_plan`]).
#[derive(Clone, Debug)]
pub struct SamplePlan {
    /// The buffers and launches.
    pub plan: Plan,
    /// The launches in waves, each a range of [`Plan::launches`] after which a number of
    /// samples are done (the first also holds the time embedding and the chains' starts).
    pub waves: Vec<Wave>,
    /// The samples, `[count × D]` floats, once every launch has run.
    pub xs: Buf,
}

/// A part of a [`SamplePlan`] whose end finishes samples.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wave {
    /// Its launches.
    pub launches: Range<usize>,
    /// The samples they finish.
    pub samples: usize,
}

/// The launch list of `request` on `device`: the step table and the time embedding of every
/// step, each sample's stream and x_T (`sample_init`), then the reverse steps
/// (`sample_steps`), 100 steps per launch, in waves that fill every multiprocessor
/// of the device once. Refuses a shape the kernels do not hold, a sampler invalid for T and
/// given starts of the wrong length.
pub fn sample_plan<const T: usize>(
    device: &dyn Device,
    request: &FlatRequest<'_, T>,
) -> Result<SamplePlan, CudaError> {
    let FlatRequest {
        model,
        schedule,
        sampler,
        init,
        seed,
        first: first_index,
        count,
        ..
    } = *request;
    sampler.validate(T)?;
    let layout = model.layout();
    let (h, d) = (layout.hidden, layout.dim);
    let smax = samples_per_block_max(&layout, device.smem_optin())?;
    if let Init::Given(xs) = init
        && Some(xs.len()) != count.checked_mul(d)
    {
        return Err(CudaError::Unsupported(format!(
            "{} starting values given for {count} samples of {d} coordinates",
            xs.len()
        )));
    }
    if count == 0 {
        let mut plan = Plan::new(SAMPLE, Vec::new());
        let xs = plan.zeros_f32(0);
        return Ok(SamplePlan {
            plan,
            waves: Vec::new(),
            xs,
        });
    }
    let count_i32 = i32::try_from(count)
        .map_err(|_| CudaError::Unsupported(format!("{count} samples in one batch")))?;
    let threads = (h / 8) * (smax / 4);
    let smem = smem_bytes(&layout, smax);
    let mut plan = Plan::new(SAMPLE, defines(&layout, smax));
    let resident = device
        .resident_blocks(
            SAMPLE,
            &plan.defines,
            "sample_steps",
            threads as u32,
            smem as u32,
        )?
        .max(1);

    let steps: Vec<Step> = sampler.steps(schedule).collect();
    let table: Vec<u8> = steps
        .iter()
        .flat_map(|step| step.to_words())
        .flat_map(u32::to_le_bytes)
        .collect();
    let t_inputs: Vec<f32> = steps.iter().map(|st| st.t_input).collect();
    let params = plan.f32s(model.params());
    let wt = plan.f32s(&transposed_blocks(model));
    let table = plan.buffer(table);
    let t_inputs = plan.f32s(&t_inputs);
    let fallback = plan.buffer(zero_seed_state());
    let temb = plan.zeros_f32(steps.len() * h);
    let xs = plan.zeros_f32(d * count);
    let rng = plan.zeros_f32(4 * count);
    let hist = plan.zeros_f32(HIST_PER_COORD * d * count);
    let (has_init, x_init) = match init {
        Init::Given(xs) => (1, plan.f32s(xs).ptr()),
        Init::Noise => (0, Arg::Null),
    };

    // Model::time_embedding of every step: one block per step, one thread per output.
    plan.launches.push(Launch {
        kernel: "time_embedding",
        grid: [steps.len() as u32, 1, 1],
        block: [h as u32, 1, 1],
        shared_bytes: 0,
        args: vec![params.ptr(), t_inputs.ptr(), temb.ptr()],
    });
    // sample/sample_from's start: each sample's stream and x_T, one thread per sample.
    plan.launches.push(Launch {
        kernel: "sample_init",
        grid: [count.div_ceil(INIT_THREADS) as u32, 1, 1],
        block: [INIT_THREADS as u32, 1, 1],
        shared_bytes: 0,
        args: vec![
            Arg::U64(seed),
            Arg::U64(first_index),
            Arg::I32(count_i32),
            Arg::I32(has_init),
            x_init,
            fallback.ptr(),
            xs.ptr(),
            rng.ptr(),
        ],
    });

    // A wave fills every multiprocessor once; samples are spread over its blocks so that
    // a batch smaller than a wave still uses every multiprocessor.
    let sm_count = device.sm_count().max(1);
    let wave = sm_count * resident * smax;
    let mut waves = Vec::new();
    let mut wave_start = 0;
    let mut done = 0;
    while done < count {
        let n = (count - done).min(wave);
        let spb = n
            .div_ceil(sm_count * resident)
            .next_multiple_of(4)
            .clamp(4, smax);
        let grid = n.div_ceil(spb);
        let mut k0 = 0;
        while k0 < steps.len() {
            let k1 = (k0 + STEPS_PER_LAUNCH).min(steps.len());
            // Samples [done, done + n) of xs/rng/hist, steps [k0, k1) of the tables; each
            // block touches only its own spb samples.
            plan.launches.push(Launch {
                kernel: "sample_steps",
                grid: [grid as u32, 1, 1],
                block: [threads as u32, 1, 1],
                shared_bytes: smem as u32,
                args: vec![
                    params.ptr(),
                    wt.ptr(),
                    temb.ptr(),
                    table.ptr(),
                    Arg::I32(k0 as i32),
                    Arg::I32(k1 as i32),
                    Arg::I32(done as i32),
                    Arg::I32(n as i32),
                    Arg::I32(spb as i32),
                    xs.ptr(),
                    rng.ptr(),
                    hist.ptr(),
                ],
            });
            k0 = k1;
        }
        waves.push(Wave {
            launches: wave_start..plan.launches.len(),
            samples: n,
        });
        wave_start = plan.launches.len();
        done += n;
    }
    Ok(SamplePlan { plan, waves, xs })
}

/// The samples of `request` on `device`, D values a sample, one sample after another: the
/// same bits as the core's `sample` (or `sample_from` with [`Init::Given`]) and the host's
/// `batch::sample`. `progress` is called with the number of samples each finished wave adds.
pub fn sample_on<const T: usize>(
    device: &dyn Device,
    request: &FlatRequest<'_, T>,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Vec<f32>, CudaError> {
    let SamplePlan { plan, waves, xs } = sample_plan(device, request)?;
    if waves.is_empty() {
        return Ok(Vec::new());
    }
    let mut session = device.load(&plan)?;
    for wave in waves {
        session.run(wave.launches, 1)?;
        session.finish()?;
        progress(wave.samples);
    }
    session.read_f32(xs)
}

#[cfg(test)]
mod tests {
    use tinyddpm_core::{Sampler, Schedule, ScheduleKind, Solver, Spacing};

    use super::super::KernelSource;
    use super::super::launch::Session;
    use super::super::launch::tests::assert_launches_match_signatures;
    use super::*;

    /// A device that only answers the geometry questions.
    struct Geometry {
        sm_count: usize,
        resident: usize,
    }

    impl Device for Geometry {
        fn smem_optin(&self) -> usize {
            232_448
        }

        fn sm_count(&self) -> usize {
            self.sm_count
        }

        fn resident_blocks(
            &self,
            _: KernelSource,
            _: &[(&'static str, usize)],
            _: &'static str,
            _: u32,
            _: u32,
        ) -> Result<usize, CudaError> {
            Ok(self.resident)
        }

        fn load(&self, _: &Plan) -> Result<Box<dyn Session>, CudaError> {
            Err(CudaError::Unsupported("geometry only".into()))
        }
    }

    fn int(arg: Arg) -> usize {
        match arg {
            Arg::I32(v) => v as usize,
            other => panic!("{other:?} is not an int"),
        }
    }

    /// Every launch matches sample.cu's signatures, and the waves' `sample_steps` launches
    /// run every step of every sample exactly once, in step order, with tiles that fit.
    #[test]
    fn the_sample_plan_covers_every_sample_and_step_once() {
        let schedule = Schedule::<1000>::new(ScheduleKind::SEED).expect("schedule");
        let samplers = [
            Sampler::Ddpm,
            Sampler::DDIM_DEFAULT,
            Sampler::multistep(Solver::UniPc),
            Sampler::Multistep {
                solver: Solver::DpmPp3m,
                steps: 250,
                spacing: Spacing::Karras,
            },
        ];
        for (sampler, count, sm_count, resident, dim) in [
            (samplers[0], 1, 1, 1, 2),
            (samplers[1], 7, 2, 1, 1),
            (samplers[2], 1000, 3, 2, 16),
            (samplers[3], 40_000, 132, 1, 3),
        ] {
            let layout = Layout::with_dim(32, 1, dim).expect("layout");
            let model = FlatModel::zero(layout);
            let request = FlatRequest {
                model: &model,
                schedule: &schedule,
                sampler: &sampler,
                init: Init::Noise,
                seed: 1,
                first: 0,
                count,
            };
            let device = Geometry { sm_count, resident };
            let SamplePlan { plan, waves, .. } = sample_plan(&device, &request).expect("plan");
            assert_launches_match_signatures(&plan, 3);
            let steps = sampler.num_steps(1000);
            let smax = samples_per_block_max(&layout, 232_448).expect("tile");
            let mut runs = vec![0usize; count];
            let mut next = 0;
            assert_eq!(waves[0].launches.start, 0);
            for (w, wave) in waves.iter().enumerate() {
                if w > 0 {
                    assert_eq!(wave.launches.start, waves[w - 1].launches.end);
                }
                let mut step = 0;
                for launch in &plan.launches[wave.launches.clone()] {
                    if launch.kernel != "sample_steps" {
                        continue;
                    }
                    let a = &launch.args;
                    let (k0, k1, base, n, spb) =
                        (int(a[4]), int(a[5]), int(a[6]), int(a[7]), int(a[8]));
                    assert_eq!((k0, base, n), (step, next, wave.samples));
                    assert!(spb % 4 == 0 && spb <= smax && k1 > k0);
                    let grid = launch.grid[0] as usize;
                    assert!(grid * spb >= n && (grid - 1) * spb < n);
                    assert!(grid <= sm_count * resident);
                    if k0 == 0 {
                        (base..base + n).for_each(|i| runs[i] += 1);
                    }
                    step = k1;
                }
                assert_eq!(step, steps);
                next += wave.samples;
            }
            assert_eq!(plan.launches.last().map(|l| l.kernel), Some("sample_steps"));
            assert!(runs.iter().all(|&r| r == 1), "{sampler:?} × {count}");
        }
    }

    /// A shape the kernels do not hold, or starts of the wrong length, are one line each.
    #[test]
    fn shapes_the_kernels_cannot_hold_are_refused_in_one_line() {
        let schedule = Schedule::<10>::new(ScheduleKind::SEED).expect("schedule");
        let device = Geometry {
            sm_count: 1,
            resident: 1,
        };
        let starts = [0.0f32; 5];
        for (hidden, dim, init, why) in [
            (24, 2, Init::Noise, "hidden width"),
            (136, 2, Init::Noise, "hidden width"),
            (36, 2, Init::Noise, "hidden width"),
            (32, 17, Init::Noise, "coordinates"),
            (32, 0, Init::Noise, "coordinates"),
            (32, 3, Init::Given(&starts), "5 starting values"),
        ] {
            let model = FlatModel::zero(Layout::with_dim(hidden, 1, dim).expect("layout"));
            let request = FlatRequest {
                model: &model,
                schedule: &schedule,
                sampler: &Sampler::Ddpm,
                init,
                seed: 1,
                first: 0,
                count: 2,
            };
            let e = sample_plan(&device, &request).expect_err("refused");
            let text = e.to_string();
            assert!(matches!(e, CudaError::Unsupported(_)), "{text}");
            assert!(text.contains(why) && !text.contains('\n'), "{text}");
        }
    }
}

//! GPU sampling, bit-identical to the core's `sample`/`sample_from` (kernels in
//! `kernels/sample.cu`).
//!
//! The host builds what the core defines once per run — the step table
//! (`Sampler::step`) — and uploads it with the weights; the device computes the time
//! embedding of every step (the core's arithmetic), seeds each sample's stream from
//! `(seed, index)`, and runs the reverse steps with one thread block per group of samples.

use std::sync::Arc;

use cudarc::driver::{CudaModule, CudaSlice, LaunchConfig, PushKernelArg, sys};
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro128PlusPlus;
use tinyddpm_core::{Model, Step, Update};

use super::{CudaError, Gpu, SAMPLE};
use crate::batch::{Init, Request};

/// Largest sample tile per thread block: 4 samples per thread row, 32 rows.
const SMAX_CAP: usize = 128;
/// Reverse steps per launch: keeps each launch well under a display watchdog's limit.
const STEPS_PER_LAUNCH: usize = 100;
/// Words per step in the uploaded step table (see `sample.cu`).
const STEP_WORDS: usize = 6;

/// Dynamic shared memory of `sample_steps`: h and u tiles, one staged layer, x and ε̂.
fn smem_bytes(hidden: usize, smax: usize) -> usize {
    (2 * hidden * smax + hidden * hidden + 4 * smax) * 4
}

/// The largest sample tile (a multiple of 4, at most 128) whose buffers fit in `smem_optin`
/// bytes of shared memory, for models the kernel handles (H a multiple of 8, 32 ≤ H ≤ 128).
pub(super) fn samples_per_block_max(hidden: usize, smem_optin: usize) -> Result<usize, CudaError> {
    if !hidden.is_multiple_of(8) || !(32..=128).contains(&hidden) {
        return Err(CudaError::Unsupported(format!(
            "GPU sampling needs a hidden width that is a multiple of 8 between 32 and 128, \
             the model has {hidden}"
        )));
    }
    let smax = (1..=SMAX_CAP / 4)
        .rev()
        .map(|q| 4 * q)
        .find(|&s| smem_bytes(hidden, s) <= smem_optin)
        .ok_or_else(|| {
            CudaError::Unsupported(format!(
                "the device's {smem_optin} bytes of shared memory per block cannot hold a \
                 {hidden}×{hidden} layer"
            ))
        })?;
    Ok(smax)
}

/// NVRTC `-D` options of `sample.cu`.
pub(super) fn defines(hidden: usize, blocks: usize, smax: usize) -> Vec<(&'static str, usize)> {
    vec![("HID", hidden), ("NBLK", blocks), ("SMAX", smax)]
}

/// One step as the kernel's table row: mode, four coefficients, sigma (as f32 bits); `None`
/// for an update the kernel does not implement yet (the multistep solvers run on the CPU).
fn step_words(step: &Step) -> Option<[u32; STEP_WORDS]> {
    let (mode, c) = match step.update {
        Update::Ddpm { c_eps, c_x } => (0, [c_eps, c_x, 0.0, 0.0]),
        Update::Ddim {
            sqrt_one_minus_ab,
            sqrt_ab,
            sqrt_ab_prev,
            dir,
            clip,
        } => (
            1 + u32::from(clip),
            [sqrt_one_minus_ab, sqrt_ab, sqrt_ab_prev, dir],
        ),
        Update::DpmSolver { .. } | Update::UniPc { .. } => return None,
    };
    Some([
        mode,
        c[0].to_bits(),
        c[1].to_bits(),
        c[2].to_bits(),
        c[3].to_bits(),
        step.sigma.to_bits(),
    ])
}

/// The model's parameters in file order, and its 2·B hidden layers transposed to [k][j].
fn flatten<const H: usize, const B: usize>(model: &Model<H, B>) -> (Vec<f32>, Vec<f32>) {
    let params = crate::train::params_of(model);
    let mut wt = Vec::with_capacity(2 * B * H * H);
    for block in &model.blocks {
        for layer in [&block.first, &block.second] {
            wt.extend((0..H).flat_map(|k| layer.weight.iter().map(move |row| row[k])));
        }
    }
    (params, wt)
}

/// rand_xoshiro's state for an all-zero seed (it remaps that seed), as four words.
fn zero_seed_state() -> [u32; 4] {
    let bytes = Xoshiro128PlusPlus::from_seed([0; 16]).state();
    std::array::from_fn(|i| u32::from_le_bytes(bytes[4 * i..4 * i + 4].try_into().unwrap()))
}

impl Gpu {
    /// The sampling module for shape (H, B) and its sample tile.
    pub(super) fn sample_module(
        &self,
        hidden: usize,
        blocks: usize,
    ) -> Result<(Arc<CudaModule>, usize), CudaError> {
        let smax = samples_per_block_max(hidden, self.smem_optin)?;
        let module = self.module(SAMPLE, defines(hidden, blocks, smax))?;
        Ok((module, smax))
    }

    /// The samples of `request` on the GPU: the same bits as the core's `sample` (or
    /// `sample_from` with [`Init::Given`]) and the host's `batch::sample`. `progress` is called
    /// with the number of finished samples.
    pub fn sample<const H: usize, const B: usize, const T: usize>(
        &self,
        request: &Request<'_, H, B, T>,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<Vec<[f32; 2]>, CudaError> {
        let Request {
            model,
            sampler,
            init,
            seed,
            first: first_index,
            count,
            ..
        } = *request;
        sampler.validate(T)?;
        if let Init::Given(xs) = init
            && xs.len() != count
        {
            return Err(CudaError::Unsupported(format!(
                "{} starting points given for {count} samples",
                xs.len()
            )));
        }
        if count == 0 {
            return Ok(Vec::new());
        }
        let count_i32 = i32::try_from(count)
            .map_err(|_| CudaError::Unsupported(format!("{count} samples in one batch")))?;
        let (module, smax) = self.sample_module(H, B)?;
        let driver = CudaError::driver;
        let s = &self.stream;

        let steps: Vec<Step> = request.steps();
        let table: Vec<u32> = steps
            .iter()
            .map(step_words)
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                CudaError::Unsupported(format!(
                    "the GPU sampler does not run {} yet; use --device cpu",
                    sampler.describe(T)
                ))
            })?
            .concat();
        let t_inputs: Vec<f32> = steps.iter().map(|st| st.t_input).collect();
        let (params, wt) = flatten(model);
        let d_params = s.clone_htod(&params).map_err(driver("upload"))?;
        let d_wt = s.clone_htod(&wt).map_err(driver("upload"))?;
        let d_table = s.clone_htod(&table).map_err(driver("upload"))?;
        let d_t = s.clone_htod(&t_inputs).map_err(driver("upload"))?;
        let d_fallback = s.clone_htod(&zero_seed_state()).map_err(driver("upload"))?;
        let mut d_temb: CudaSlice<f32> = s
            .alloc_zeros(steps.len() * H)
            .map_err(driver("allocation"))?;
        let mut d_xs: CudaSlice<f32> = s.alloc_zeros(2 * count).map_err(driver("allocation"))?;
        let mut d_rng: CudaSlice<u32> = s.alloc_zeros(4 * count).map_err(driver("allocation"))?;
        let (has_init, d_init) = match init {
            Init::Given(xs) => (1i32, s.clone_htod(xs.as_flattened())),
            Init::Noise => (0i32, s.alloc_zeros::<f32>(2)),
        };
        let d_init = d_init.map_err(driver("upload"))?;

        let temb_fn = Gpu::function(&module, "time_embedding")?;
        let mut b = s.launch_builder(&temb_fn);
        b.arg(&d_params).arg(&d_t).arg(&mut d_temb);
        // SAFETY: time_embedding(params, t_inputs, temb) reads params (file order, the
        // module's H and B) and steps.len() t-inputs, and writes steps.len()·H floats into
        // d_temb: one block per step, H threads, exactly the sizes allocated above.
        unsafe {
            b.launch(LaunchConfig {
                grid_dim: (steps.len() as u32, 1, 1),
                block_dim: (H as u32, 1, 1),
                shared_mem_bytes: 0,
            })
        }
        .map_err(driver("launch"))?;

        let init_fn = Gpu::function(&module, "sample_init")?;
        let mut b = s.launch_builder(&init_fn);
        b.arg(&seed)
            .arg(&first_index)
            .arg(&count_i32)
            .arg(&has_init)
            .arg(&d_init)
            .arg(&d_fallback)
            .arg(&mut d_xs)
            .arg(&mut d_rng);
        // SAFETY: sample_init writes 2·count floats to xs and 4·count words to rng, reading
        // 2·count floats of x_init only when has_init (then d_init holds exactly that), and
        // 4 words of the zero-seed fallback; threads past `count` return at once.
        unsafe { b.launch(LaunchConfig::for_num_elems(count as u32)) }.map_err(driver("launch"))?;

        let steps_fn = Gpu::function(&module, "sample_steps")?;
        let smem = smem_bytes(H, smax);
        steps_fn
            .set_attribute(
                sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                smem as i32,
            )
            .map_err(driver("kernel attribute"))?;
        let threads = (H / 8) * (smax / 4);
        let resident = steps_fn
            .occupancy_max_active_blocks_per_multiprocessor(threads as u32, smem, None)
            .map_err(driver("occupancy query"))?
            .max(1) as usize;
        // A wave fills every multiprocessor once; samples are spread over its blocks so that
        // a batch smaller than a wave still uses every multiprocessor.
        let wave = self.sm_count * resident * smax;
        let mut done = 0;
        while done < count {
            let n = (count - done).min(wave);
            let spb = n
                .div_ceil(self.sm_count * resident)
                .next_multiple_of(4)
                .clamp(4, smax);
            let grid = n.div_ceil(spb);
            let (base, n_i32, spb_i32) = (done as i32, n as i32, spb as i32);
            let mut k0 = 0;
            while k0 < steps.len() {
                let k1 = (k0 + STEPS_PER_LAUNCH).min(steps.len());
                let (k0_i32, k1_i32) = (k0 as i32, k1 as i32);
                let mut b = s.launch_builder(&steps_fn);
                b.arg(&d_params)
                    .arg(&d_wt)
                    .arg(&d_temb)
                    .arg(&d_table)
                    .arg(&k0_i32)
                    .arg(&k1_i32)
                    .arg(&base)
                    .arg(&n_i32)
                    .arg(&spb_i32)
                    .arg(&mut d_xs)
                    .arg(&mut d_rng);
                // SAFETY: sample_steps reads the parameters and transposed layers of the
                // module's shape, steps [k0, k1) of the time-embedding and step tables (both
                // steps.len() long), and reads/writes samples [base, base + n) of xs and rng
                // (count long, base + n ≤ count); each block touches only its own spb
                // samples, with exactly the dynamic shared memory the kernel carves up.
                unsafe {
                    b.launch(LaunchConfig {
                        grid_dim: (grid as u32, 1, 1),
                        block_dim: (threads as u32, 1, 1),
                        shared_mem_bytes: smem as u32,
                    })
                }
                .map_err(driver("launch"))?;
                k0 = k1;
            }
            s.synchronize().map_err(driver("sampling"))?;
            progress(n);
            done += n;
        }

        let xs = s.clone_dtoh(&d_xs).map_err(driver("download"))?;
        Ok(xs.chunks_exact(2).map(|p| [p[0], p[1]]).collect())
    }
}

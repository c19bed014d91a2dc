//! tinyddpm on a Cortex-M: draws diffusion samples on the device, bit for bit the host's.
//!
//! The model (float, or integer from `tinyddpm quantize`: whichever the model file holds) and
//! the sampler's step table are `static`s in flash, generated at build time by `build.rs`
//! from a model file (see there for the settings). The firmware draws samples
//! `0 .. SAMPLES` of `SEED` with the core's arithmetic, prints them as `index,x,y` (`index,x0,x1,…` for
//! points of another D; floats in Rust's shortest round-trip form, like the host CLI's CSV) over semihosting, or over RTT on
//! a board ([`out`]), then its budgets as `# ` lines, and ends (QEMU exits with status 0).
//!
//! Two paths, both the core's reverse chain ([`tinyddpm_core::chain`]) and checked against the
//! host by `tests/firmware.rs`: sample 0 (and any remainder short of a batch) runs alone, as
//! `f32`; the rest run [`LANES`] at a time as the core's [`Lanes`], so each weight read from
//! flash serves several samples. The integer model's dense layers run this core's kernel
//! (`src/kernel/`); everything else is the core's code.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

mod clock;
#[cfg(integer)]
mod kernel;
mod memory;
mod out;

/// What `build.rs` generated from the model file and the settings.
mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

use cortex_m as _;
use cortex_m_rt::entry;
use tinyddpm_core::{
    ColumnNames, Lanes, NoiseStream, PredictNoise, Real, Step, chain, gaussian_draw,
};

use clock::{Clock, Meter};
use embedded::{B, D, H, MODEL, SAMPLES, SEED, STEPS};
use out::say;

/// Samples per batch on the batched path, float model. The core's layers keep 8 outputs in
/// flight, so a batch holds 8·LANES accumulators: 3 lanes (24) leave room in the M4F's 32
/// float registers for the inputs and a weight, 4 lanes spill in the inner loop (the counts
/// per lane width: docs/performance.md, "Constants chosen by measurement").
#[cfg(not(integer))]
const LANES: usize = 3;
/// Samples per batch on the batched path, integer model: what the core's kernel takes.
#[cfg(integer)]
const LANES: usize = kernel::LANES;

/// Multiply-adds of the time embedding (`Linear(1,H)`, `Linear(H,H)`), once per step; none
/// where the build tabled the embeddings.
const TIME_MACS: u64 = if cfg!(time_table) {
    0
} else {
    (H + H * H) as u64
};
/// Multiply-adds of one sample's noise prediction: input, 2·B hidden layers, output.
const NET_MACS: u64 = (D * H + 2 * B * H * H + H * D) as u64;

#[entry]
fn main() -> ! {
    fp_defaults();
    let peripherals = cortex_m::Peripherals::take().expect("peripherals are taken once");
    let clock = Clock::start(peripherals.SYST);
    let (mut single, mut batched) = (Meter::default(), Meter::default());

    // The host CSV's column names (`x,y`, or `x0,x1,…` for another D) after the index.
    say!("index,{}", ColumnNames(D));
    let mut index = 0;
    while index < SAMPLES {
        if index > 0 && SAMPLES - index >= LANES as u64 {
            let points = sample_batch::<LANES>(index, &clock, &mut batched);
            for (i, &point) in (index..).zip(&points) {
                say!("{}", Row(i, in_data_units(point)));
            }
            index += LANES as u64;
        } else {
            let point = in_data_units(sample_one(index, &clock, &mut single));
            say!("{}", Row(index, point));
            index += 1;
        }
    }
    report(&single, &batched);
    out::finish()
}

/// A drawn point in the data's units, by the core's map, as the host's sampling job applies
/// it (untimed: two operations a coordinate, once per sample).
fn in_data_units(point: [f32; D]) -> [f32; D] {
    match &embedded::UNITS {
        Some(units) => units.to_data(point),
        None => point,
    }
}

/// One sample's line: its index, then its coordinates in Rust's shortest round-trip form.
struct Row(u64, [f32; D]);

impl core::fmt::Display for Row {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", self.0)?;
        self.1.iter().try_for_each(|v| write!(f, ",{v}"))
    }
}

/// FPSCR = 0: round to nearest, subnormals kept (no flush-to-zero), no default NaN — the
/// IEEE behaviour of the host's SSE code, which bit-identity needs.
#[cfg(target_abi = "eabihf")]
#[allow(unsafe_code)]
fn fp_defaults() {
    use cortex_m::register::fpscr::{self, Fpscr};
    // SAFETY: `write` is unsafe because a non-default mode would break the compiler's
    // assumptions about float arithmetic; 0 *is* the default mode the compiler assumes.
    unsafe { fpscr::write(Fpscr::from_bits(0)) };
}

/// Without an FPU (Cortex-M0) floats are software IEEE operations: nothing to set.
#[cfg(not(target_abi = "eabihf"))]
fn fp_defaults() {}

/// Sample `index` alone, timed step by step.
///
/// Not inlined (nor is [`sample_batch`]): compiled on its own rather than inside `main` next
/// to the other path, its loops get registers to themselves (fewer instructions per
/// multiply-add: docs/performance.md, "Constants chosen by measurement").
#[inline(never)]
fn sample_one(index: u64, clock: &Clock, meter: &mut Meter) -> [f32; D] {
    let [x] = sample_lanes::<f32, 1>(index, clock, meter);
    x
}

/// Samples `first .. first + N` together, lane `i` carrying sample `first + i` with its own
/// noise stream; the time embedding is computed once per step for the batch.
#[inline(never)]
fn sample_batch<const N: usize>(first: u64, clock: &Clock, meter: &mut Meter) -> [[f32; D]; N] {
    sample_lanes::<Lanes<N>, N>(first, clock, meter)
}

/// Samples `first .. first + N` as the lanes of `R` (`R::LANES == N`) through the core's
/// chain, each step's ticks added to `meter`.
#[inline(always)]
fn sample_lanes<R: Real, const N: usize>(
    first: u64,
    clock: &Clock,
    meter: &mut Meter,
) -> [[f32; D]; N]
where
    Predictor: PredictNoise<R, D>,
{
    let mut noise: [NoiseStream; N] =
        core::array::from_fn(|i| NoiseStream::new(SEED, first + i as u64));
    let x = gaussian_draw::<R, D>(&mut noise);
    let mut started = None;
    let steps = STEPS.iter().map(|row| step(row));
    let x = chain(predictor(), steps, x, &mut noise, |_, _| {
        if let Some(start) = started {
            meter.add(clock.ticks_since(start));
        }
        started = Some(clock.now());
    });
    core::array::from_fn(|i| x.map(|c| c.lane(i)))
}

/// A row of the build's step table as the core's step. The build script read every row
/// back before writing it, so none fails.
#[inline]
fn step(row: &[u32]) -> Step {
    Step::from_words(row).expect("build.rs checked every row")
}

/// What predicts the noise: the float model itself ...
#[cfg(not(integer))]
type Predictor = &'static tinyddpm_core::Model<H, B, D>;
/// ... or the integer model with this core's kernel for its dense layers ...
#[cfg(all(integer, not(time_table)))]
type Predictor = tinyddpm_core::quant::WithKernel<'static, kernel::Board, H, B>;
/// ... reading each step's time embedding from the build's table where it has one.
#[cfg(time_table)]
type Predictor = TimeTable;

#[cfg(not(integer))]
fn predictor() -> Predictor {
    &MODEL
}

#[cfg(all(integer, not(time_table)))]
fn predictor() -> Predictor {
    MODEL.with_kernel(kernel::Board)
}

#[cfg(time_table)]
fn predictor() -> Predictor {
    TimeTable
}

/// The integer model with this core's kernel, step `k`'s time embedding read from
/// `embedded::TIME_EMBEDDINGS` (computed by the core's `time_embedding_in` on the build host, so
/// the same bits) instead of computed: the core's `predict_noise_with` on a few-step
/// sampler's chain, 16,500 multiply-adds a step fewer for H = 128.
#[cfg(time_table)]
struct TimeTable;

#[cfg(time_table)]
impl PredictNoise<f32, D> for TimeTable {
    #[inline]
    fn predict_noise(&mut self, k: usize, _: &Step, x: [f32; D]) -> [f32; D] {
        let temb = &embedded::TIME_EMBEDDINGS[k];
        let eps = MODEL.predict_noise_with(&kernel::Board, x.map(|v| [v]), temb);
        eps.map(|[v]| v)
    }
}

#[cfg(time_table)]
impl<const N: usize> PredictNoise<Lanes<N>, D> for TimeTable {
    #[inline]
    fn predict_noise(&mut self, k: usize, _: &Step, x: [Lanes<N>; D]) -> [Lanes<N>; D] {
        let temb = &embedded::TIME_EMBEDDINGS[k];
        MODEL
            .predict_noise_with(&kernel::Board, x.map(|c| c.0), temb)
            .map(Lanes)
    }
}

/// The budget lines: image sizes, RAM, and work per step.
fn report(single: &Meter, batched: &Meter) {
    let sections = memory::Sections::of_image();
    let stack = memory::stack_high_water();
    let weights = size_of_val(&MODEL);
    let steps = size_of_val(&STEPS);
    let embeddings = time_table_bytes();
    say!(
        "# model: {} (H={}, B={}, T={}), sampler: {}, {} steps, seed {}, time embeddings {}",
        embedded::MODEL_FILE,
        H,
        B,
        embedded::TIMESTEPS,
        embedded::SAMPLER,
        STEPS.len(),
        SEED,
        if embeddings > 0 {
            "from the build's table"
        } else {
            "computed each step"
        }
    );
    say!(
        "# flash: {} B code, {} B weights, {} B step table, {} B time-embedding table, {} B other constants, {} B .data image, {} B in flash",
        sections.code,
        weights,
        steps,
        embeddings,
        sections.rodata - weights - steps - embeddings,
        sections.data,
        sections.flash()
    );
    say!(
        "# ram: {} B statics (.data {} + .bss {}), {} B stack high-water, {} B statics + stack",
        sections.static_ram(),
        sections.data,
        sections.bss,
        stack,
        sections.static_ram() + stack
    );
    work("single", 1, single);
    work("batched", LANES as u64, batched);
}

/// Bytes of the build's table of time embeddings (none without one).
fn time_table_bytes() -> usize {
    #[cfg(time_table)]
    return size_of_val(&embedded::TIME_EMBEDDINGS);
    #[cfg(not(time_table))]
    0
}

/// One path's instructions per sample-step and per multiply-add, and time estimates for a
/// chip of this class (a 168 MHz Cortex-M4F, the 16 MHz nRF51 Cortex-M0).
fn work(path: &str, lanes: u64, meter: &Meter) {
    if meter.steps == 0 {
        say!("# {}: not run (too few samples for a batch)", path);
        return;
    }
    let per_tick = 1e9 / embedded::QEMU_SYSTICK_HZ as f32;
    let ticks_per_step = meter.ticks as f32 / meter.steps as f32;
    let per_sample_step = ticks_per_step * per_tick / lanes as f32;
    // The time embedding is computed once per step for the whole batch.
    let macs = (TIME_MACS + lanes * NET_MACS) as f32 / lanes as f32;
    say!(
        "# {} ({} per batch): {} steps timed, {:.1} SysTick ticks per step; under QEMU -icount shift=0 ({} instructions per tick) {:.0} instructions and {:.0} multiply-adds per sample-step, {:.2} instructions per multiply-add",
        path,
        lanes,
        meter.steps,
        ticks_per_step,
        per_tick,
        per_sample_step,
        macs,
        per_sample_step / macs
    );
    let seconds = |steps: f32| per_sample_step * steps / embedded::CHIP_HZ as f32;
    say!(
        "# {} estimate at {} MHz and one instruction per cycle: {:.4} s per sample for this sampler ({} steps)",
        path,
        embedded::CHIP_HZ / 1_000_000,
        seconds(STEPS.len() as f32),
        STEPS.len()
    );
    // A build with tabled time embeddings does less per step than DDPM-1000 would.
    if time_table_bytes() == 0 {
        say!(
            "# {} estimate for DDPM-1000: {:.3} s per sample",
            path,
            seconds(1000.0)
        );
    }
}

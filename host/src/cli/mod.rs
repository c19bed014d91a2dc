//! The commands of the `tinyddpm` binary, one module each, and what they share: the device
//! choice, the sampler options, the named model shapes, the thread count, reading inputs,
//! printing, and the progress bars.

pub mod demo;
pub mod eval;
pub mod files;
pub mod inspect;
pub mod interrupt;
pub mod jobs;
pub mod plot;
pub mod quantize;
pub mod sample;
pub mod score;
pub mod shapes;
pub mod state_dict;
pub mod train;

use std::fmt;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::builder::PossibleValuesParser;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tinyddpm::cuda::Gpu;
use tinyddpm::data::points;
use tinyddpm::input::{self, Patience};
use tinyddpm::scores::Points;
use tinyddpm::threads;
use tinyddpm_core::{ChoiceError, Sampler, SamplerChoice, Spacing};

/// Diffusion timesteps of every model this build runs (the seed's T).
pub use tinyddpm::run::T;

/// Prints a line on stdout (as `println!`). A closed stdout (`tinyddpm … | head -1`) ends
/// the printing, not the command: every file the command writes is still written, and it
/// exits 0.
macro_rules! say {
    ($($arg:tt)*) => { $crate::cli::say_line(format_args!($($arg)*)) };
}

/// Prints a line on stderr (as `eprintln!`), never failing: a closed stderr loses the line,
/// not the command's work.
macro_rules! tell {
    ($($arg:tt)*) => { $crate::cli::tell_line(format_args!($($arg)*)) };
}

pub(crate) use {say, tell};

/// [`say!`]'s body: write errors (a closed pipe) are dropped.
#[allow(clippy::print_stdout)]
pub fn say_line(line: fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// [`tell!`]'s body: write errors are dropped.
#[allow(clippy::print_stderr)]
pub fn tell_line(line: fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Decides the run's thread count once, for every command (`--threads` where a command has
/// it, else `RAYON_NUM_THREADS`, else one per core; never more than the cores, said in a
/// note), and starts that many worker threads: every parallel loop of the run uses them.
/// Threads that cannot start (a process limit) are one error line, not an abort.
pub fn start_threads(requested: usize) -> Result<usize> {
    let env = std::env::var("RAYON_NUM_THREADS").ok();
    let cores = threads::cores();
    let decision = threads::decide(requested, env.as_deref(), cores);
    if let Some((asked, source)) = decision.lowered_from {
        tell!(
            "note: {source} {asked} is more than the {cores} cores here; using {cores} \
             (the results do not depend on it)"
        );
    }
    threads::start_global(decision.count)?;
    let _ = THREADS.set(decision.count);
    Ok(decision.count)
}

/// The run's thread count, once [`start_threads`] has decided it.
static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();

/// The thread count [`start_threads`] decided (one per core before it has run).
pub fn thread_count() -> usize {
    THREADS.get().copied().unwrap_or_else(threads::cores)
}

/// How long `inspect` waits for a FIFO's writer: it only looks, so it must not hang.
pub const INSPECT_PATIENCE: Duration = Duration::from_secs(5);

/// Opens the input `path` (named `flag` in the note) once, for reading whole: a FIFO or
/// pipe works as a file does, and a wait for its writer is said on stderr. The error names
/// the path; the caller says what it was reading.
pub fn open_input(path: &Path, flag: &str, patience: Patience) -> Result<File> {
    input::open(path, patience, || {
        tell!(
            "note: waiting for something to read from {} ({flag})",
            path.display()
        )
    })
    .map_err(|e| anyhow!("{}: {e}", path.display()))
}

/// The points of the file `path` (option `flag`, at most `max_rows` of them), which must have
/// the model's `dim` coordinates: every command that feeds a model points reads them here.
pub fn read_model_points(path: &Path, flag: &str, max_rows: usize, dim: usize) -> Result<Points> {
    let what = || format!("cannot read {flag}");
    let reader = open_input(path, flag, Patience::Unbounded).with_context(what)?;
    let name = path.display().to_string();
    let points = points::read_cloud(reader, &name, max_rows).with_context(what)?;
    if points.dim() != dim {
        bail!(
            "{flag} has {} columns, the model's data {dim}",
            points.dim()
        );
    }
    Ok(points)
}

/// Where to compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DeviceArg {
    /// The CPU (all cores unless --threads says otherwise).
    Cpu,
    /// An NVIDIA GPU; an error if none is usable.
    Cuda,
    /// The GPU when one is usable, the CPU otherwise.
    Auto,
}

/// Resolves `--device`: `cpu` is `None`; `cuda` is the GPU or an error naming why none can
/// be used; `auto` is the GPU when one is usable, else `None` with the reason on stderr.
pub fn device(device: DeviceArg) -> Result<Option<Gpu>> {
    match device {
        DeviceArg::Cpu => Ok(None),
        DeviceArg::Cuda => tinyddpm::cuda::probe()
            .map(Some)
            .map_err(|why| anyhow::anyhow!("--device cuda: no usable GPU: {why}")),
        DeviceArg::Auto => Ok(tinyddpm::cuda::probe()
            .map_err(|why| tell!("note: running on the CPU (no usable GPU: {why})"))
            .ok()),
    }
}

/// The most points a command holds in memory at once for figures and scores (`demo`,
/// `plot forward`, `plot reverse`): 8 MB each copy. `sample` streams instead and has no such
/// bound.
pub const MAX_POINTS: u64 = 1_000_000;

/// Fails unless `count` (of option `flag`) is at most [`MAX_POINTS`].
pub fn check_points(flag: &str, count: u64) -> Result<()> {
    if count > MAX_POINTS {
        bail!(
            "{flag} {count}: at most {MAX_POINTS} points are held in memory for the figures \
             and scores (use `tinyddpm sample` for more samples)"
        );
    }
    Ok(())
}

/// A progress bar on stderr (hidden when stderr is not a terminal).
pub fn progress_bar(len: u64, prefix: &'static str) -> ProgressBar {
    let style = ProgressStyle::with_template(
        "{prefix:>8} {wide_bar} {pos}/{len} [{elapsed_precise} < {eta_precise}] {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    bar.set_style(style);
    bar.set_prefix(prefix);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// The sampler options shared by `sample` and `plot reverse`. Names and defaults are the
/// core's ([`SamplerChoice`]), as the firmware's build settings read them.
#[derive(Args, Clone, Debug)]
pub struct SamplerArgs {
    /// Reverse process [default: the model file's default sampler]
    #[arg(long, value_parser = PossibleValuesParser::new(Sampler::NAMES.map(|(name, _)| name)))]
    pub sampler: Option<String>,
    /// Steps of DDIM (default 50) or of a multistep solver, dpmpp-* and unipc (default 20)
    #[arg(long)]
    pub steps: Option<u32>,
    /// DDIM eta in [0, 1]: 0 deterministic, 1 DDPM-like noise [default: 0]
    #[arg(long, allow_negative_numbers = true)]
    pub eta: Option<f32>,
    /// Timestep placement: trailing (DDIM's default), leading or linspace for DDIM; logsnr
    /// (the default), karras or linspace for the multistep solvers
    #[arg(long, value_parser = PossibleValuesParser::new(Spacing::NAMED.map(|(name, _)| name)))]
    pub spacing: Option<String>,
    /// DDIM: clip the predicted x₀ to [-1, 1]
    #[arg(long)]
    pub clip: bool,
}

impl SamplerArgs {
    /// The sampler asked for, `default` (the model file's) filling what was not said.
    pub fn resolve(&self, default: Sampler) -> Result<Sampler> {
        let choice = SamplerChoice {
            name: self.sampler.as_deref(),
            steps: self.steps,
            eta: self.eta,
            spacing: self.spacing.as_deref(),
            clip: self.clip,
        };
        choice.resolve(default, T).map_err(|e| choice_error(e, ""))
    }
}

/// The sampler a new model file names as its default (`train`, `import`): what `sample`,
/// `plot reverse` and the firmware run when not told otherwise.
#[derive(Args, Clone, Debug, Default)]
pub struct DefaultSamplerArgs {
    /// The model file's default sampler [default: ddpm, the notebook's]
    #[arg(long, value_parser = PossibleValuesParser::new(Sampler::NAMES.map(|(name, _)| name)))]
    pub default_sampler: Option<String>,
    /// Steps of the default sampler (ddim, dpmpp-*, unipc) [default: the sampler's]
    #[arg(long, requires = "default_sampler")]
    pub default_steps: Option<u32>,
    /// Timestep placement of the default sampler [default: the sampler's]
    #[arg(long, requires = "default_sampler",
          value_parser = PossibleValuesParser::new(Spacing::NAMED.map(|(name, _)| name)))]
    pub default_spacing: Option<String>,
}

impl DefaultSamplerArgs {
    /// The default sampler to write into the model file.
    pub fn resolve(&self) -> Result<Sampler> {
        let choice = SamplerChoice {
            name: self.default_sampler.as_deref(),
            steps: self.default_steps,
            spacing: self.default_spacing.as_deref(),
            ..SamplerChoice::default()
        };
        choice
            .resolve(Sampler::Ddpm, T)
            .map_err(|e| choice_error(e, "default-"))
    }
}

/// A sampler choice's error in the words of the command line, whose options are spelled
/// `--{prefix}steps` and so on.
fn choice_error(e: ChoiceError, prefix: &str) -> anyhow::Error {
    match e {
        ChoiceError::DdimOnly { named: true, .. } => {
            anyhow!("--{prefix}eta and --{prefix}clip apply to --{prefix}sampler ddim only")
        }
        ChoiceError::DdimOnly { sampler, .. } => anyhow!(
            "--{prefix}eta and --{prefix}clip apply to DDIM only, and the model's default \
             sampler is {}: add --{prefix}sampler ddim",
            describe(&sampler)
        ),
        ChoiceError::EveryTimestep { sampler, named } => {
            let sampler = describe(&sampler);
            let which = match named {
                true => sampler,
                false => format!("the model's default sampler, {sampler},"),
            };
            anyhow!(
                "--{prefix}steps and --{prefix}spacing apply to --{prefix}sampler ddim, \
                 dpmpp-2m, dpmpp-3m, dpmpp-2m-sde and unipc only; {which} runs every timestep"
            )
        }
        e => e.into(),
    }
}

/// A sampler in words on this build's T, e.g. "DDIM, 50 steps, trailing spacing, eta 0".
pub fn describe(sampler: &Sampler) -> String {
    sampler.describe(T).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(sampler: Option<&str>, steps: Option<u32>) -> SamplerArgs {
        SamplerArgs {
            sampler: sampler.map(String::from),
            steps,
            eta: None,
            spacing: None,
            clip: false,
        }
    }

    #[test]
    fn sampler_defaults_come_from_the_issue_and_the_model_file() {
        let ddim = args(Some("ddim"), None).resolve(Sampler::Ddpm);
        assert_eq!(ddim.unwrap(), Sampler::DDIM_DEFAULT);
        let from_file = args(None, None).resolve(Sampler::DdpmPosterior);
        assert_eq!(from_file.unwrap(), Sampler::DdpmPosterior);
        let file_ddim = Sampler::Ddim {
            steps: 20,
            eta: 0.5,
            spacing: Spacing::Leading,
            clip: true,
        };
        let more_steps = args(None, Some(100)).resolve(file_ddim).unwrap();
        assert!(matches!(
            more_steps,
            Sampler::Ddim {
                steps: 100,
                eta: 0.5,
                clip: true,
                ..
            }
        ));
        assert!(args(Some("ddpm"), Some(10)).resolve(Sampler::Ddpm).is_err());
        assert!(args(None, Some(10)).resolve(Sampler::Ddpm).is_err());
        assert!(
            args(Some("ddim"), Some(1001))
                .resolve(Sampler::Ddpm)
                .is_err()
        );
    }
}

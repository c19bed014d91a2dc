//! The commands of the `tinyddpm` binary, one module each, and what they share: the device
//! choice, the sampler options, the model-shape dispatch and the progress bars.

pub mod convert;
pub mod demo;
pub mod eval;
pub mod files;
pub mod inspect;
pub mod interrupt;
pub mod plot;
pub mod sample;
pub mod train;

use std::time::Duration;

use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tinyddpm::cuda::Gpu;
use tinyddpm_core::{Sampler, Spacing};

/// Diffusion timesteps of every model this build runs (the seed's T).
pub const T: usize = 1000;

/// Runs `$f::<H, B>(args…)` for the model shapes this build supports: the seed's H = 128,
/// B = 3 and the microcontroller's H = 32, B = 2 (const generics need the shape at compile
/// time, so each supported shape is one instantiation).
macro_rules! dispatch {
    ($hidden:expr, $blocks:expr, $f:ident($($arg:expr),* $(,)?)) => {
        match ($hidden as usize, $blocks as usize) {
            (128, 3) => $f::<128, 3>($($arg),*),
            (32, 2) => $f::<32, 2>($($arg),*),
            (h, b) => Err(anyhow::anyhow!(
                "model shape H={h} B={b} is not supported (this build runs H=128 B=3 and H=32 B=2)"
            )),
        }
    };
}
pub(crate) use dispatch;

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
            .map_err(|why| eprintln!("note: running on the CPU (no usable GPU: {why})"))
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

/// Which reverse process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SamplerKind {
    /// The seed notebook's DDPM step, all 1000 timesteps, noise √β_t.
    Ddpm,
    /// DDPM with the posterior variance β̃_t.
    DdpmPosterior,
    /// DDIM (default 50 steps, trailing spacing, eta 0).
    Ddim,
}

/// DDIM's choice of timesteps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SpacingArg {
    /// 999, 979, …, 19 for 50 steps (diffusers "trailing").
    Trailing,
    /// 980, 960, …, 0 for 50 steps (diffusers "leading").
    Leading,
    /// round(linspace(0, 999, K)).
    Linspace,
}

/// The sampler options shared by `sample` and `plot reverse`.
#[derive(Args, Clone, Debug)]
pub struct SamplerArgs {
    /// Reverse process [default: the model file's default sampler]
    #[arg(long, value_enum)]
    pub sampler: Option<SamplerKind>,
    /// DDIM steps [default: 50]
    #[arg(long)]
    pub steps: Option<u32>,
    /// DDIM eta in [0, 1]: 0 deterministic, 1 DDPM-like noise [default: 0]
    #[arg(long, allow_negative_numbers = true)]
    pub eta: Option<f32>,
    /// DDIM timestep spacing [default: trailing]
    #[arg(long, value_enum)]
    pub spacing: Option<SpacingArg>,
    /// DDIM: clip the predicted x₀ to [-1, 1]
    #[arg(long)]
    pub clip: bool,
}

impl SamplerArgs {
    /// The sampler asked for, `default` (the model file's) filling what was not said.
    pub fn resolve(&self, default: Sampler) -> Result<Sampler> {
        let ddim_options = self.steps.is_some() || self.eta.is_some() || self.spacing.is_some();
        let ddim_options = ddim_options || self.clip;
        let ddim = |base: Sampler| {
            let (steps, eta, spacing, clip) = match base {
                Sampler::Ddim {
                    steps,
                    eta,
                    spacing,
                    clip,
                } => (steps, eta, spacing, clip),
                _ => (50, 0.0, Spacing::Trailing, false),
            };
            Sampler::Ddim {
                steps: self.steps.unwrap_or(steps),
                eta: self.eta.unwrap_or(eta),
                spacing: match self.spacing {
                    Some(SpacingArg::Trailing) => Spacing::Trailing,
                    Some(SpacingArg::Leading) => Spacing::Leading,
                    Some(SpacingArg::Linspace) => Spacing::Linspace,
                    None => spacing,
                },
                clip: self.clip || clip,
            }
        };
        let sampler = match (self.sampler, default) {
            (Some(SamplerKind::Ddim), _) => ddim(Sampler::DDIM_DEFAULT),
            (None, Sampler::Ddim { .. }) => ddim(default),
            (kind, _) if ddim_options => match kind {
                Some(_) => {
                    bail!("--steps, --eta, --spacing and --clip apply to --sampler ddim only")
                }
                None => bail!(
                    "--steps, --eta, --spacing and --clip apply to DDIM only, and the model's \
                     default sampler is {}: add --sampler ddim",
                    describe(&default)
                ),
            },
            (Some(SamplerKind::Ddpm), _) => Sampler::Ddpm,
            (Some(SamplerKind::DdpmPosterior), _) => Sampler::DdpmPosterior,
            (None, default) => default,
        };
        sampler.validate(T)?;
        Ok(sampler)
    }
}

/// A sampler in words, e.g. "DDIM, 50 steps, trailing spacing, eta 0".
pub fn describe(sampler: &Sampler) -> String {
    match *sampler {
        Sampler::Ddpm => format!("DDPM (seed step, {T} steps)"),
        Sampler::DdpmPosterior => format!("DDPM with posterior variance ({T} steps)"),
        Sampler::Ddim {
            steps,
            eta,
            spacing,
            clip,
        } => format!(
            "DDIM, {steps} steps, {} spacing, eta {eta}{}",
            format!("{spacing:?}").to_lowercase(),
            if clip { ", x0 clipped" } else { "" }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(sampler: Option<SamplerKind>, steps: Option<u32>) -> SamplerArgs {
        SamplerArgs {
            sampler,
            steps,
            eta: None,
            spacing: None,
            clip: false,
        }
    }

    #[test]
    fn sampler_defaults_come_from_the_issue_and_the_model_file() {
        let ddim = args(Some(SamplerKind::Ddim), None).resolve(Sampler::Ddpm);
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
        assert!(
            args(Some(SamplerKind::Ddpm), Some(10))
                .resolve(Sampler::Ddpm)
                .is_err()
        );
        assert!(args(None, Some(10)).resolve(Sampler::Ddpm).is_err());
        assert!(
            args(Some(SamplerKind::Ddim), Some(1001))
                .resolve(Sampler::Ddpm)
                .is_err()
        );
    }
}

//! The sampler a user names — on the command line or in the firmware's build settings — read
//! once, here, and resolved against a default (the model file's sampler).

use crate::sampler::{Sampler, SamplerError};
use crate::spacing::Spacing;

/// A sampler as a user names it — the CLI's `--sampler`, `--steps`, `--eta`, `--spacing`,
/// `--clip` and the firmware's `TINYDDPM_SAMPLER`, `TINYDDPM_STEPS` — resolved against a
/// default (the model file's sampler) by [`SamplerChoice::resolve`]: the one place both read
/// sampler names.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SamplerChoice<'a> {
    /// One of [`Sampler::NAMES`]; `None` keeps the default's kind.
    pub name: Option<&'a str>,
    /// K of DDIM and the multistep solvers.
    pub steps: Option<u32>,
    /// DDIM's η.
    pub eta: Option<f32>,
    /// The spacing of DDIM or a multistep solver, one of [`Spacing::NAMED`].
    pub spacing: Option<&'a str>,
    /// DDIM: clip x̂₀ (only ever turns clipping on).
    pub clip: bool,
}

/// Why a [`SamplerChoice`] names no runnable sampler.
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
pub enum ChoiceError {
    /// The name is none of [`Sampler::NAMES`].
    #[error(
        "unknown sampler: expected ddpm, ddpm-posterior, ddim, dpmpp-2m, dpmpp-3m, dpmpp-2m-sde \
         or unipc"
    )]
    UnknownName,
    /// The spacing is none of [`Spacing::NAMED`].
    #[error("unknown spacing: expected trailing, leading, linspace, karras or logsnr")]
    UnknownSpacing,
    /// η or clipping given for a sampler other than DDIM.
    #[error("eta and clip apply to the ddim sampler only, not to {}", .sampler.name())]
    DdimOnly {
        /// The sampler they were given for.
        sampler: Sampler,
        /// Whether it was named (rather than the default).
        named: bool,
    },
    /// Steps or spacing given for a sampler that runs every timestep (DDPM).
    #[error(
        "steps and spacing apply to the ddim, dpmpp-2m, dpmpp-3m, dpmpp-2m-sde and unipc \
         samplers, not to {}, which runs every timestep",
        .sampler.name()
    )]
    EveryTimestep {
        /// The sampler they were given for.
        sampler: Sampler,
        /// Whether it was named (rather than the default).
        named: bool,
    },
    /// The resolved sampler's parameters are out of range.
    #[error(transparent)]
    Invalid(#[from] SamplerError),
}

impl SamplerChoice<'_> {
    /// The sampler this choice means, the parts it leaves unsaid taken from `default`,
    /// checked against a schedule of `timesteps` steps.
    pub fn resolve(&self, default: Sampler, timesteps: usize) -> Result<Sampler, ChoiceError> {
        let base = match self.name {
            Some(name) => Sampler::from_name(name).ok_or(ChoiceError::UnknownName)?,
            None => default,
        };
        let spacing = match self.spacing {
            Some(name) => Some(Spacing::from_name(name).ok_or(ChoiceError::UnknownSpacing)?),
            None => None,
        };
        let named = self.name.is_some();
        let ddim_options = self.eta.is_some() || self.clip;
        let step_options = self.steps.is_some() || spacing.is_some();
        let sampler = match base {
            Sampler::Ddim {
                steps,
                eta,
                spacing: base_spacing,
                clip,
            } => Sampler::Ddim {
                steps: self.steps.unwrap_or(steps),
                eta: self.eta.unwrap_or(eta),
                spacing: spacing.unwrap_or(base_spacing),
                clip: self.clip || clip,
            },
            sampler if ddim_options => return Err(ChoiceError::DdimOnly { sampler, named }),
            Sampler::Multistep {
                solver,
                steps,
                spacing: base_spacing,
            } => Sampler::Multistep {
                solver,
                steps: self.steps.unwrap_or(steps),
                spacing: spacing.unwrap_or(base_spacing),
            },
            sampler if step_options => {
                return Err(ChoiceError::EveryTimestep { sampler, named });
            }
            sampler => sampler,
        };
        sampler.validate(timesteps)?;
        Ok(sampler)
    }
}

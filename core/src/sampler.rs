//! Reverse-process samplers: which timesteps are visited and each step's update.
//!
//! A [`Sampler`] and a [`Schedule`] give, for step k, a [`Step`]: the timestep, the network's
//! time input t/T, and f32 coefficients computed once in f64 from the schedule. [`Step::apply`]
//! is the update every backend runs, per coordinate:
//!
//! - seed DDPM (notebook): `x' = (x − (β_t/√(1−ᾱ_t))·ε̂)·(1/√α_t) + σ·z`, σ = √β_t, 0 at t = 0;
//! - DDPM, posterior variance: same mean, σ² = β̃_t = β_t(1−ᾱ_{t−1})/(1−ᾱ_t);
//! - DDIM (Song et al., as diffusers' `DDIMScheduler`): `x̂₀ = (x − √(1−ᾱ_t)·ε̂)/√ᾱ_t`,
//!   optionally clipped to [−1, 1] (then ε̂ re-derived from x̂₀),
//!   `x' = √ᾱ_prev·x̂₀ + √(1−ᾱ_prev−σ²)·ε̂ + σ·z`,
//!   σ = η·√((1−ᾱ_prev)/(1−ᾱ_t))·√(1−ᾱ_t/ᾱ_prev); prev = t − T/K, ᾱ_prev = 1 when prev < 0.
//!
//! Every step adds σ·z (a zero σ adds zero), so all samplers consume one Gaussian pair per step.

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::real::Real;
use crate::schedule::Schedule;

/// How DDIM chooses its K timesteps out of T (diffusers' `timestep_spacing`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Spacing {
    /// `round(T − k·T/K) − 1`: starts at T−1 (999, 979, …, 19 for K = 50).
    Trailing,
    /// `k·(T/K)` descending: ends at 0 (980, 960, …, 0 for K = 50).
    Leading,
    /// `round(linspace(0, T−1, K))` descending.
    Linspace,
}

impl Spacing {
    /// Every spacing with its name, as the CLI and the firmware's settings spell it.
    pub const NAMED: [(&'static str, Spacing); 3] = [
        ("trailing", Spacing::Trailing),
        ("leading", Spacing::Leading),
        ("linspace", Spacing::Linspace),
    ];

    /// The spacing called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::NAMED
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, s)| s)
    }

    /// This spacing's name.
    pub fn name(self) -> &'static str {
        Self::NAMED
            .iter()
            .find(|(_, s)| *s == self)
            .map_or("", |&(n, _)| n)
    }
}

/// Which reverse process to run.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Sampler {
    /// The seed notebook's DDPM step over all T timesteps, noise scale √β_t.
    Ddpm,
    /// DDPM over all T timesteps with the posterior variance β̃_t.
    DdpmPosterior,
    /// DDIM over `steps` timesteps.
    Ddim {
        /// K, 1 ≤ K ≤ T.
        steps: u32,
        /// η ∈ [0, 1]: 0 is deterministic, 1 has DDPM-like variance.
        eta: f32,
        /// Which timesteps.
        spacing: Spacing,
        /// Clip the predicted x₀ to [−1, 1].
        clip: bool,
    },
}

/// Why a sampler cannot run on a schedule.
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
pub enum SamplerError {
    /// DDIM needs 1 ≤ K ≤ T.
    #[error("DDIM steps must be between 1 and {timesteps}, got {steps}")]
    Steps {
        /// K asked for.
        steps: u32,
        /// T of the schedule.
        timesteps: usize,
    },
    /// η outside [0, 1] or not finite.
    #[error("DDIM eta must be in [0, 1], got {0}")]
    Eta(f32),
}

/// A sampler as a user names it — the CLI's `--sampler`, `--steps`, `--eta`, `--spacing`,
/// `--clip` and the firmware's `TINYDDPM_SAMPLER`, `TINYDDPM_STEPS` — resolved against a
/// default (the model file's sampler) by [`SamplerChoice::resolve`]: the one place both read
/// sampler names.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SamplerChoice<'a> {
    /// One of [`Sampler::NAMES`]; `None` keeps the default's kind.
    pub name: Option<&'a str>,
    /// DDIM's K.
    pub steps: Option<u32>,
    /// DDIM's η.
    pub eta: Option<f32>,
    /// DDIM's spacing, one of [`Spacing::NAMED`].
    pub spacing: Option<&'a str>,
    /// DDIM: clip x̂₀ (only ever turns clipping on).
    pub clip: bool,
}

/// Why a [`SamplerChoice`] names no runnable sampler.
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
pub enum ChoiceError {
    /// The name is none of [`Sampler::NAMES`].
    #[error("unknown sampler: expected ddpm, ddpm-posterior or ddim")]
    UnknownName,
    /// The spacing is none of [`Spacing::NAMED`].
    #[error("unknown spacing: expected trailing, leading or linspace")]
    UnknownSpacing,
    /// Steps, η, spacing or clipping given for a sampler that has none.
    #[error("steps, eta, spacing and clip apply to the ddim sampler only")]
    DdimOnly {
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
        let options = self.steps.is_some() || self.eta.is_some() || spacing.is_some() || self.clip;
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
            sampler if options => {
                return Err(ChoiceError::DdimOnly {
                    sampler,
                    named: self.name.is_some(),
                });
            }
            sampler => sampler,
        };
        sampler.validate(timesteps)?;
        Ok(sampler)
    }
}

/// One reverse step: where it is and how it updates x.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Step {
    /// The timestep t being left.
    pub t: u32,
    /// The network's time input, t/T in f32.
    pub t_input: f32,
    /// The deterministic part of the update.
    pub update: Update,
    /// Noise scale: `x' = update(x, ε̂) + sigma·z`.
    pub sigma: f32,
}

/// The deterministic part of a reverse step (see the module docs for the formulas).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Update {
    /// `(x − c_eps·ε̂)·c_x`
    Ddpm {
        /// β_t/√(1−ᾱ_t)
        c_eps: f32,
        /// 1/√α_t
        c_x: f32,
    },
    /// `√ᾱ_prev·x̂₀ + dir·ε̂` with `x̂₀ = (x − √(1−ᾱ_t)·ε̂)/√ᾱ_t`
    Ddim {
        /// √(1−ᾱ_t)
        sqrt_one_minus_ab: f32,
        /// √ᾱ_t
        sqrt_ab: f32,
        /// √ᾱ_prev
        sqrt_ab_prev: f32,
        /// √(1−ᾱ_prev−σ²)
        dir: f32,
        /// Clip x̂₀ to [−1, 1].
        clip: bool,
    },
}

impl Sampler {
    /// The host CLI's and firmware's DDIM default: 50 steps, trailing, η = 0, no clipping.
    pub const DDIM_DEFAULT: Self = Self::Ddim {
        steps: 50,
        eta: 0.0,
        spacing: Spacing::Trailing,
        clip: false,
    };

    /// Every sampler's name with the sampler it names (DDIM with its defaults), as the CLI
    /// and the firmware's settings spell them.
    pub const NAMES: [(&'static str, Sampler); 3] = [
        ("ddpm", Sampler::Ddpm),
        ("ddpm-posterior", Sampler::DdpmPosterior),
        ("ddim", Sampler::DDIM_DEFAULT),
    ];

    /// The sampler called `name`, with its defaults.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, s)| s)
    }

    /// This sampler's name (its kind: DDIM's parameters are not part of it).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Ddpm => "ddpm",
            Self::DdpmPosterior => "ddpm-posterior",
            Self::Ddim { .. } => "ddim",
        }
    }

    /// The sampler in words on a schedule of `timesteps` steps, e.g.
    /// "DDIM, 50 steps, trailing spacing, eta 0".
    pub fn describe(&self, timesteps: usize) -> impl fmt::Display + '_ {
        Described(self, timesteps)
    }

    /// Checks the parameters against a schedule of `timesteps` steps.
    pub fn validate(&self, timesteps: usize) -> Result<(), SamplerError> {
        if let Self::Ddim { steps, eta, .. } = *self {
            if steps == 0 || steps as usize > timesteps {
                return Err(SamplerError::Steps { steps, timesteps });
            }
            if !(0.0..=1.0).contains(&eta) {
                return Err(SamplerError::Eta(eta));
            }
        }
        Ok(())
    }

    /// Number of reverse steps.
    pub fn num_steps(&self, timesteps: usize) -> usize {
        match *self {
            Self::Ddpm | Self::DdpmPosterior => timesteps,
            Self::Ddim { steps, .. } => steps as usize,
        }
    }

    /// The timestep of step `k` (k = 0 is the noisiest), as diffusers computes it.
    pub fn timestep(&self, timesteps: usize, k: usize) -> usize {
        let n = timesteps;
        match *self {
            Self::Ddpm | Self::DdpmPosterior => n - 1 - k,
            Self::Ddim { steps, spacing, .. } => {
                let kk = steps as usize;
                match spacing {
                    Spacing::Leading => (kk - 1 - k) * (n / kk),
                    Spacing::Trailing => {
                        let ratio = n as f64 / kk as f64;
                        libm::rint(n as f64 - k as f64 * ratio) as usize - 1
                    }
                    Spacing::Linspace => {
                        let i = kk - 1 - k;
                        if i + 1 == kk {
                            n - 1
                        } else {
                            let step = (n - 1) as f64 / (kk - 1) as f64;
                            libm::rint(i as f64 * step) as usize
                        }
                    }
                }
            }
        }
    }

    /// Every step of this sampler on `schedule`, noisiest first: the one table each backend
    /// applies. The sampler must be valid for T.
    pub fn steps<'a, const T: usize>(
        &'a self,
        schedule: &'a Schedule<T>,
    ) -> impl ExactSizeIterator<Item = Step> + Clone + 'a {
        (0..self.num_steps(T)).map(move |k| self.step(schedule, k))
    }

    /// Step `k` of this sampler on `schedule`. The sampler must be valid for T.
    pub fn step<const T: usize>(&self, schedule: &Schedule<T>, k: usize) -> Step {
        let t = self.timestep(T, k);
        let beta = schedule.beta[t];
        let ab = schedule.alpha_bar[t];
        let (update, sigma) = match *self {
            Self::Ddpm | Self::DdpmPosterior => {
                let variance = match (self, t) {
                    (_, 0) => 0.0,
                    (Self::Ddpm, _) => beta,
                    _ => beta * (1.0 - schedule.alpha_bar[t - 1]) / (1.0 - ab),
                };
                let update = Update::Ddpm {
                    c_eps: (beta / libm::sqrt(1.0 - ab)) as f32,
                    c_x: (1.0 / libm::sqrt(1.0 - beta)) as f32,
                };
                (update, libm::sqrt(variance))
            }
            Self::Ddim {
                steps, eta, clip, ..
            } => {
                let prev = t as isize - (T / steps as usize) as isize;
                let ab_prev = if prev >= 0 {
                    schedule.alpha_bar[prev as usize]
                } else {
                    1.0
                };
                let variance = (1.0 - ab_prev) / (1.0 - ab) * (1.0 - ab / ab_prev);
                let sigma = eta as f64 * libm::sqrt(variance);
                let update = Update::Ddim {
                    sqrt_one_minus_ab: libm::sqrt(1.0 - ab) as f32,
                    sqrt_ab: libm::sqrt(ab) as f32,
                    sqrt_ab_prev: libm::sqrt(ab_prev) as f32,
                    dir: libm::sqrt((1.0 - ab_prev - sigma * sigma).max(0.0)) as f32,
                    clip,
                };
                (update, sigma)
            }
        };
        Step {
            t: t as u32,
            t_input: t as f32 / T as f32,
            update,
            sigma: sigma as f32,
        }
    }
}

struct Described<'a>(&'a Sampler, usize);

impl fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self(sampler, timesteps) = *self;
        match *sampler {
            Sampler::Ddpm => write!(f, "DDPM (seed step, {timesteps} steps)"),
            Sampler::DdpmPosterior => {
                write!(f, "DDPM with posterior variance ({timesteps} steps)")
            }
            Sampler::Ddim {
                steps,
                eta,
                spacing,
                clip,
            } => {
                let spacing = spacing.name();
                write!(f, "DDIM, {steps} steps, {spacing} spacing, eta {eta}")?;
                if clip {
                    f.write_str(", x0 clipped")?;
                }
                Ok(())
            }
        }
    }
}

impl Step {
    /// The reverse update of one coordinate: x, its predicted noise ε̂ and fresh noise z.
    #[inline(always)]
    pub fn apply<R: Real>(&self, x: R, eps: R, z: R) -> R {
        let mean = match self.update {
            Update::Ddpm { c_eps, c_x } => (x - R::splat(c_eps) * eps) * R::splat(c_x),
            Update::Ddim {
                sqrt_one_minus_ab,
                sqrt_ab,
                sqrt_ab_prev,
                dir,
                clip,
            } => {
                let x0 = (x - R::splat(sqrt_one_minus_ab) * eps) / R::splat(sqrt_ab);
                let (x0, eps) = if clip {
                    let x0 = x0.max(R::splat(-1.0)).min(R::splat(1.0));
                    (
                        x0,
                        (x - R::splat(sqrt_ab) * x0) / R::splat(sqrt_one_minus_ab),
                    )
                } else {
                    (x0, eps)
                };
                R::splat(sqrt_ab_prev) * x0 + R::splat(dir) * eps
            }
        };
        mean + R::splat(self.sigma) * z
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ddim(steps: u32, spacing: Spacing) -> Sampler {
        Sampler::Ddim {
            steps,
            eta: 0.0,
            spacing,
            clip: false,
        }
    }

    fn timesteps(s: Sampler) -> [usize; 50] {
        core::array::from_fn(|k| s.timestep(1000, k))
    }

    #[test]
    fn ddim_timesteps_match_diffusers() {
        // diffusers DDIMScheduler(1000).set_timesteps(50), printed by benches/reference (diffusers)
        let trailing = timesteps(ddim(50, Spacing::Trailing));
        assert_eq!((trailing[0], trailing[1], trailing[49]), (999, 979, 19));
        let leading = timesteps(ddim(50, Spacing::Leading));
        assert_eq!((leading[0], leading[1], leading[49]), (980, 960, 0));
        let lin = timesteps(ddim(50, Spacing::Linspace));
        // np.linspace(0, 999, 50).round()[::-1]: 999, 979, 958, …, 20, 0
        assert_eq!(
            (lin[0], lin[1], lin[2], lin[48], lin[49]),
            (999, 979, 958, 20, 0)
        );
        assert_eq!(ddim(1, Spacing::Linspace).timestep(1000, 0), 999);
        assert_eq!(ddim(1, Spacing::Trailing).timestep(1000, 0), 999);
        assert_eq!(ddim(1, Spacing::Leading).timestep(1000, 0), 0);
        assert_eq!(ddim(1000, Spacing::Trailing).timestep(1000, 999), 0);
    }

    #[test]
    fn validation_rejects_bad_ddim_parameters() {
        assert!(ddim(0, Spacing::Trailing).validate(1000).is_err());
        assert!(ddim(1001, Spacing::Trailing).validate(1000).is_err());
        let bad_eta = Sampler::Ddim {
            steps: 10,
            eta: f32::NAN,
            spacing: Spacing::Leading,
            clip: false,
        };
        assert!(bad_eta.validate(1000).is_err());
        assert!(Sampler::DDIM_DEFAULT.validate(1000).is_ok());
    }

    #[test]
    fn names_resolve_against_the_default_as_the_cli_and_firmware_spell_them() {
        let choice = |name, steps| SamplerChoice {
            name,
            steps,
            ..SamplerChoice::default()
        };
        let ddim = choice(Some("ddim"), None).resolve(Sampler::Ddpm, 1000);
        assert_eq!(ddim, Ok(Sampler::DDIM_DEFAULT));
        let kept = choice(None, None).resolve(Sampler::DdpmPosterior, 1000);
        assert_eq!(kept, Ok(Sampler::DdpmPosterior));
        let file_ddim = Sampler::Ddim {
            steps: 20,
            eta: 0.5,
            spacing: Spacing::Leading,
            clip: true,
        };
        // Options refine the default's DDIM; naming ddim starts from DDIM's defaults.
        let more = choice(None, Some(100)).resolve(file_ddim, 1000).unwrap();
        assert!(matches!(
            more,
            Sampler::Ddim {
                steps: 100,
                eta: 0.5,
                clip: true,
                ..
            }
        ));
        let named = choice(Some("ddim"), Some(10)).resolve(file_ddim, 1000);
        assert_eq!(
            named,
            Ok(Sampler::Ddim {
                steps: 10,
                eta: 0.0,
                spacing: Spacing::Trailing,
                clip: false
            })
        );
        let linspace = SamplerChoice {
            spacing: Some("linspace"),
            ..choice(Some("ddim"), None)
        };
        assert!(matches!(
            linspace.resolve(Sampler::Ddpm, 1000),
            Ok(Sampler::Ddim {
                spacing: Spacing::Linspace,
                ..
            })
        ));
        assert_eq!(
            choice(Some("ddpm"), Some(10)).resolve(Sampler::Ddpm, 1000),
            Err(ChoiceError::DdimOnly {
                sampler: Sampler::Ddpm,
                named: true
            })
        );
        assert_eq!(
            choice(None, Some(10)).resolve(Sampler::Ddpm, 1000),
            Err(ChoiceError::DdimOnly {
                sampler: Sampler::Ddpm,
                named: false
            })
        );
        assert_eq!(
            choice(Some("euler"), None).resolve(Sampler::Ddpm, 1000),
            Err(ChoiceError::UnknownName)
        );
        assert_eq!(
            choice(Some("ddim"), Some(1001)).resolve(Sampler::Ddpm, 1000),
            Err(ChoiceError::Invalid(SamplerError::Steps {
                steps: 1001,
                timesteps: 1000
            }))
        );
        for (name, sampler) in Sampler::NAMES {
            assert_eq!(sampler.name(), name);
        }
        for (name, spacing) in Spacing::NAMED {
            assert_eq!(spacing.name(), name);
        }
    }

    #[test]
    fn last_step_of_every_sampler_is_noise_free() {
        let s = Schedule::<1000>::new(crate::ScheduleKind::SEED).unwrap();
        for sampler in [Sampler::Ddpm, Sampler::DdpmPosterior, Sampler::DDIM_DEFAULT] {
            let last = sampler.step(&s, sampler.num_steps(1000) - 1);
            assert_eq!(last.sigma, 0.0, "{sampler:?}");
        }
    }

    #[test]
    fn ddim_with_eta_one_has_posterior_variance() {
        let s = Schedule::<1000>::new(crate::ScheduleKind::SEED).unwrap();
        let ddim1000 = Sampler::Ddim {
            steps: 1000,
            eta: 1.0,
            spacing: Spacing::Leading,
            clip: false,
        };
        for k in [0usize, 500, 998] {
            let a = ddim1000.step(&s, k);
            let b = Sampler::DdpmPosterior.step(&s, k);
            assert_eq!(a.t, b.t);
            assert!((a.sigma - b.sigma).abs() <= 1e-6 * b.sigma, "k={k}");
        }
    }
}

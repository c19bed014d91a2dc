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
//!   σ = η·√((1−ᾱ_prev)/(1−ᾱ_t))·√(1−ᾱ_t/ᾱ_prev); prev = t − T/K, ᾱ_prev = 1 when prev < 0;
//! - the multistep solvers DPM-Solver++(2M), (3M), SDE-DPM-Solver++(2M) and UniPC (see
//!   [`multistep`](crate::multistep)), which also remember earlier steps' x̂₀ in a [`History`](crate::History).
//!
//! Every step adds σ·z (a zero σ adds zero), so all samplers consume one Gaussian pair per step.

use core::fmt;

pub use crate::choice::{ChoiceError, SamplerChoice};
use crate::multistep::{Grid, Solver};
use crate::schedule::Schedule;
pub use crate::spacing::Spacing;
pub use crate::step::{Step, Update};

/// Which reverse process to run.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "file", derive(serde::Serialize, serde::Deserialize))]
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
    /// A multistep solver (DPM-Solver++ or UniPC) over `steps` steps.
    Multistep {
        /// Which solver.
        solver: Solver,
        /// K, 1 ≤ K < T.
        steps: u32,
        /// Where the steps lie: linspace, karras or logsnr.
        spacing: Spacing,
    },
}

/// Why a sampler cannot run on a schedule.
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
pub enum SamplerError {
    /// K out of range: DDIM needs 1 ≤ K ≤ T, the multistep solvers 1 ≤ K < T.
    #[error("{sampler} steps must be between 1 and {max}, got {steps}")]
    Steps {
        /// The sampler, in words.
        sampler: &'static str,
        /// K asked for.
        steps: u32,
        /// The largest K on this schedule.
        max: usize,
    },
    /// η outside [0, 1] or not finite.
    #[error("DDIM eta must be in [0, 1], got {0}")]
    Eta(f32),
    /// A spacing the sampler does not place its steps by.
    #[error("{sampler} takes {accepted} spacing, not {}", .spacing.name())]
    Spacing {
        /// The sampler, in words.
        sampler: &'static str,
        /// The spacing asked for.
        spacing: Spacing,
        /// The spacings it takes, in words.
        accepted: &'static str,
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

    /// The multistep solvers' default K. At 20 steps DPM-Solver++(2M) on the log-SNR
    /// placement ends on average 0.011 from the converged ODE solution (the seed model, 512
    /// starting points; DDIM's 20 trailing steps: 0.079).
    pub const MULTISTEP_STEPS: u32 = 20;
    /// The multistep solvers' default placement: uniform in log-SNR, the closest of the three
    /// to the converged ODE solution at 20 steps for every solver on the seed model (2M:
    /// 0.011 against 0.023 for karras and 0.056 for linspace).
    pub const MULTISTEP_SPACING: Spacing = Spacing::LogSnr;

    /// `solver` with the default K and placement.
    pub const fn multistep(solver: Solver) -> Self {
        Self::Multistep {
            solver,
            steps: Self::MULTISTEP_STEPS,
            spacing: Self::MULTISTEP_SPACING,
        }
    }

    /// Every sampler's name with the sampler it names (DDIM and the multistep solvers with
    /// their defaults), as the CLI and the firmware's settings spell them.
    pub const NAMES: [(&'static str, Sampler); 7] = [
        ("ddpm", Sampler::Ddpm),
        ("ddpm-posterior", Sampler::DdpmPosterior),
        ("ddim", Sampler::DDIM_DEFAULT),
        ("dpmpp-2m", Sampler::multistep(Solver::DpmPp2m)),
        ("dpmpp-3m", Sampler::multistep(Solver::DpmPp3m)),
        ("dpmpp-2m-sde", Sampler::multistep(Solver::DpmPp2mSde)),
        ("unipc", Sampler::multistep(Solver::UniPc)),
    ];

    /// The sampler called `name`, with its defaults.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, s)| s)
    }

    /// This sampler's name (its kind: steps and other parameters are not part of it).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Ddpm => "ddpm",
            Self::DdpmPosterior => "ddpm-posterior",
            Self::Ddim { .. } => "ddim",
            Self::Multistep { solver, .. } => solver.name(),
        }
    }

    /// This sampler's kind in words, e.g. "DDIM", "DPM-Solver++(2M)".
    pub fn title(&self) -> &'static str {
        match self {
            Self::Ddpm => "DDPM",
            Self::DdpmPosterior => "DDPM with posterior variance",
            Self::Ddim { .. } => "DDIM",
            Self::Multistep { solver, .. } => solver.title(),
        }
    }

    /// The sampler in words on a schedule of `timesteps` steps, e.g.
    /// "DDIM, 50 steps, trailing spacing, eta 0".
    pub fn describe(&self, timesteps: usize) -> impl fmt::Display + '_ {
        Described(self, timesteps)
    }

    /// Checks the parameters against a schedule of `timesteps` steps.
    pub fn validate(&self, timesteps: usize) -> Result<(), SamplerError> {
        let (steps, spacing, max, accepted) = match *self {
            Self::Ddpm | Self::DdpmPosterior => return Ok(()),
            Self::Ddim { steps, spacing, .. } => (steps, spacing, timesteps, DDIM_SPACINGS),
            // The last step goes to σ = 0: at most T − 1 distinct timesteps precede it.
            Self::Multistep { steps, spacing, .. } => (
                steps,
                spacing,
                timesteps.saturating_sub(1),
                Solver::SPACINGS,
            ),
        };
        let sampler = self.title();
        if steps == 0 || steps as usize > max {
            return Err(SamplerError::Steps {
                sampler,
                steps,
                max,
            });
        }
        if let Self::Ddim { eta, .. } = *self
            && !(0.0..=1.0).contains(&eta)
        {
            return Err(SamplerError::Eta(eta));
        }
        if !accepted.contains(&spacing) {
            let accepted = match accepted[0] {
                Spacing::Trailing => "trailing, leading or linspace",
                _ => "linspace, karras or logsnr",
            };
            return Err(SamplerError::Spacing {
                sampler,
                spacing,
                accepted,
            });
        }
        Ok(())
    }

    /// Number of reverse steps.
    pub fn num_steps(&self, timesteps: usize) -> usize {
        match *self {
            Self::Ddpm | Self::DdpmPosterior => timesteps,
            Self::Ddim { steps, .. } | Self::Multistep { steps, .. } => steps as usize,
        }
    }

    /// The timestep of step `k` (k = 0 is the noisiest), as diffusers computes it: the
    /// network's time input is this over T. The sampler must be valid for T.
    pub fn timestep<const T: usize>(&self, schedule: &Schedule<T>, k: usize) -> usize {
        let n = T;
        match *self {
            Self::Ddpm | Self::DdpmPosterior => n - 1 - k,
            Self::Multistep { steps, spacing, .. } => {
                Grid::new(schedule, steps as usize, spacing).timestep(k)
            }
            Self::Ddim { steps, spacing, .. } => {
                let kk = steps as usize;
                match spacing {
                    Spacing::Leading => (kk - 1 - k) * (n / kk),
                    Spacing::Trailing => {
                        let ratio = n as f64 / kk as f64;
                        libm::rint(n as f64 - k as f64 * ratio) as usize - 1
                    }
                    // Karras and log-SNR placements are the multistep solvers' (validated).
                    Spacing::Linspace | Spacing::Karras | Spacing::LogSnr => {
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
        let t = self.timestep(schedule, k);
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
            Self::Multistep {
                solver,
                steps,
                spacing,
            } => Grid::new(schedule, steps as usize, spacing).update(solver, k),
        };
        Step {
            t: t as u32,
            t_input: t as f32 / T as f32,
            update,
            sigma: sigma as f32,
        }
    }
}

/// The placements DDIM accepts.
const DDIM_SPACINGS: [Spacing; 3] = [Spacing::Trailing, Spacing::Leading, Spacing::Linspace];

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
            Sampler::Multistep {
                solver,
                steps,
                spacing,
            } => {
                let (title, spacing) = (solver.title(), spacing.name());
                write!(f, "{title}, {steps} steps, {spacing} spacing")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::History;

    fn ddim(steps: u32, spacing: Spacing) -> Sampler {
        Sampler::Ddim {
            steps,
            eta: 0.0,
            spacing,
            clip: false,
        }
    }

    fn seed_schedule() -> Schedule<1000> {
        Schedule::new(crate::ScheduleKind::SEED).unwrap()
    }

    fn timesteps(s: Sampler) -> [usize; 50] {
        let schedule = seed_schedule();
        core::array::from_fn(|k| s.timestep(&schedule, k))
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
        let s = seed_schedule();
        assert_eq!(ddim(1, Spacing::Linspace).timestep(&s, 0), 999);
        assert_eq!(ddim(1, Spacing::Trailing).timestep(&s, 0), 999);
        assert_eq!(ddim(1, Spacing::Leading).timestep(&s, 0), 0);
        assert_eq!(ddim(1000, Spacing::Trailing).timestep(&s, 999), 0);
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
            Err(ChoiceError::EveryTimestep {
                sampler: Sampler::Ddpm,
                named: true
            })
        );
        assert_eq!(
            choice(None, Some(10)).resolve(Sampler::Ddpm, 1000),
            Err(ChoiceError::EveryTimestep {
                sampler: Sampler::Ddpm,
                named: false
            })
        );
        let eta = SamplerChoice {
            eta: Some(0.5),
            ..choice(Some("ddpm-posterior"), None)
        };
        assert_eq!(
            eta.resolve(Sampler::Ddpm, 1000),
            Err(ChoiceError::DdimOnly {
                sampler: Sampler::DdpmPosterior,
                named: true
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
                sampler: "DDIM",
                max: 1000
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
        for (_, sampler) in Sampler::NAMES {
            let last = sampler.step(&s, sampler.num_steps(1000) - 1);
            assert_eq!(last.sigma, 0.0, "{sampler:?}");
        }
    }

    #[test]
    fn multistep_last_step_lands_on_the_predicted_x0() {
        // σ_K = 0: x' = x̂₀ exactly, whatever the history.
        let s = Schedule::<1000>::new(crate::ScheduleKind::SEED).unwrap();
        for (solver, spacing, steps) in [
            (Solver::DpmPp2m, Spacing::Linspace, 1),
            (Solver::DpmPp3m, Spacing::Karras, 7),
            (Solver::DpmPp2mSde, Spacing::LogSnr, 20),
            (Solver::UniPc, Spacing::Karras, 2),
        ] {
            let sampler = Sampler::Multistep {
                solver,
                steps,
                spacing,
            };
            let last = sampler.step(&s, steps as usize - 1);
            let mut history = History {
                x0: [3.0f32, -7.0],
                x: 11.0,
            };
            let (x, eps) = (0.25f32, -1.5f32);
            let (sqrt_one_minus_ab, sqrt_ab) = match last.update {
                Update::DpmSolver {
                    sqrt_one_minus_ab,
                    sqrt_ab,
                    ..
                }
                | Update::UniPc {
                    sqrt_one_minus_ab,
                    sqrt_ab,
                    ..
                } => (sqrt_one_minus_ab, sqrt_ab),
                _ => unreachable!("{sampler:?}"),
            };
            let x0 = (x - sqrt_one_minus_ab * eps) / sqrt_ab;
            assert_eq!(last.apply(x, eps, 2.0, &mut history), x0, "{sampler:?}");
            assert_eq!(history.x0, [x0, 3.0]);
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

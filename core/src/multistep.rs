//! Multistep solvers: DPM-Solver++ (2M, 3M, 2M SDE) and UniPC, as diffusers runs them.
//!
//! Both solve the diffusion ODE (or, for the SDE variant, the reverse SDE) in the log-SNR
//! λ = ln(α/σ), extrapolating the network's x₀ prediction x̂₀ from the last steps. They work on
//! a grid of noise levels: σ_k, the variance-exploding σ = √((1−ᾱ)/ᾱ) of step k (k = 0 the
//! noisiest), with α_k = 1/√(1+σ_k²), s_k = σ_k·α_k (the VP signal and noise scales) and
//! λ_k = −ln σ_k; the grid ends at σ_K = 0 (diffusers' `final_sigmas_type="zero"`), so the
//! last step lands on x̂₀. Step k feeds the network the timestep t_k of its own σ_k: an
//! integer of the schedule under linspace placement, the continuous σ_k mapped back to t and
//! rounded under Karras and log-SNR placement (`_sigma_to_t` then `.round()`), so there the
//! network's t and the update's σ are not the same timestep's.
//!
//! With h = λ_{k+1} − λ_k, x̂₀_k = (x − s_k·ε̂)/α_k and the history x̂₀_{k−1}, x̂₀_{k−2}:
//!
//! - **DPM-Solver++(2M)** (Lu et al. 2022, midpoint): r₀ = (λ_k − λ_{k−1})/h,
//!   D₁ = (x̂₀_k − x̂₀_{k−1})/r₀,
//!   `x' = (s_{k+1}/s_k)·x − α_{k+1}(e^{−h} − 1)·(x̂₀_k + ½D₁)`;
//! - **DPM-Solver++(3M)**: with r₁ = (λ_{k−1} − λ_{k−2})/h, D₁₀ = (x̂₀_k − x̂₀_{k−1})/r₀,
//!   D₁₁ = (x̂₀_{k−1} − x̂₀_{k−2})/r₁, D₁ = D₁₀ + r₀/(r₀+r₁)·(D₁₀ − D₁₁),
//!   D₂ = (D₁₀ − D₁₁)/(r₀+r₁), φ = e^{−h} − 1:
//!   `x' = (s_{k+1}/s_k)·x − α_{k+1}φ·x̂₀_k + α_{k+1}(φ/h + 1)·D₁ − α_{k+1}((φ+h)/h² − ½)·D₂`;
//! - **SDE-DPM-Solver++(2M)**: with the step's Gaussian z,
//!   `x' = (s_{k+1}/s_k)e^{−h}·x + α_{k+1}(1 − e^{−2h})·(x̂₀_k + ½D₁) + s_{k+1}√(1 − e^{−2h})·z`;
//! - **UniPC** (Zhao et al. 2023, bh2, x₀-prediction, order 2): the predictor UniP-2 with
//!   ρ = ½ is the 2M step above; before it, from step 1 on, the corrector UniC replaces the x
//!   the previous predictor produced, using that step's start x_{k−1}, x̂₀_{k−1}, x̂₀_{k−2} and
//!   the new x̂₀_k (computed from the uncorrected x, as diffusers does). With
//!   h = λ_k − λ_{k−1}, φ = e^{−h} − 1, r = (λ_{k−2} − λ_{k−1})/h and
//!   D = (x̂₀_{k−2} − x̂₀_{k−1})/r:
//!   `x_c = (s_k/s_{k−1})·x_{k−1} − α_kφ·x̂₀_{k−1} − α_kφ·(ρ₀·D + ρ₁·(x̂₀_k − x̂₀_{k−1}))`,
//!   (ρ₀, ρ₁) solving `[1 1; r 1]·ρ = (b₁, b₂)`, b₁ = (φ/(−h) − 1)/φ,
//!   b₂ = 2((φ/(−h) − 1)/(−h) − ½)/φ; with order 1 (after the first step) ρ₁ = ½, no ρ₀ term.
//!
//! Orders as diffusers with `lower_order_final=True`: the first step is first order (no
//! history), the second at most second order, the last step first order (it ends at σ = 0),
//! and with fewer than 15 steps DPM-Solver++(3M)'s second-to-last step is second order. UniPC's
//! predictor is first order on the first and last steps, its corrector has the order of the
//! previous step's predictor.
//!
//! Each step is a linear combination of x, x̂₀ and the history with weights that depend on the
//! schedule only: they are computed here in f64 and stored as f32 in an
//! [`Update::DpmSolver`] or [`Update::UniPc`], which [`Step::apply`](crate::Step::apply) runs
//! with a [`History`] per coordinate.

use crate::schedule::Schedule;
use crate::spacing::Spacing;
pub use crate::step::History;
use crate::step::Update;

/// Which multistep solver (each as diffusers' scheduler of that name with its defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "file", derive(serde::Serialize, serde::Deserialize))]
pub enum Solver {
    /// `DPMSolverMultistepScheduler(algorithm_type="dpmsolver++", solver_order=2)`.
    DpmPp2m,
    /// `DPMSolverMultistepScheduler(algorithm_type="dpmsolver++", solver_order=3)`.
    DpmPp3m,
    /// `DPMSolverMultistepScheduler(algorithm_type="sde-dpmsolver++", solver_order=2)`.
    DpmPp2mSde,
    /// `UniPCMultistepScheduler(solver_type="bh2", predict_x0=True, solver_order=2)`.
    UniPc,
}

impl Solver {
    /// Every solver with its name, as the CLI and the firmware's settings spell it.
    pub const NAMED: [(&'static str, Solver); 4] = [
        ("dpmpp-2m", Solver::DpmPp2m),
        ("dpmpp-3m", Solver::DpmPp3m),
        ("dpmpp-2m-sde", Solver::DpmPp2mSde),
        ("unipc", Solver::UniPc),
    ];

    /// This solver's name.
    pub fn name(self) -> &'static str {
        Self::NAMED
            .iter()
            .find(|(_, s)| *s == self)
            .map_or("", |&(n, _)| n)
    }

    /// This solver in words, as papers write it.
    pub fn title(self) -> &'static str {
        match self {
            Self::DpmPp2m => "DPM-Solver++(2M)",
            Self::DpmPp3m => "DPM-Solver++(3M)",
            Self::DpmPp2mSde => "SDE-DPM-Solver++(2M)",
            Self::UniPc => "UniPC (bh2, order 2)",
        }
    }

    /// The placements the multistep solvers accept (diffusers' linspace,
    /// `use_karras_sigmas`, `use_lu_lambdas`).
    pub const SPACINGS: [Spacing; 3] = [Spacing::Linspace, Spacing::Karras, Spacing::LogSnr];

    /// The highest order of its predictor.
    fn order(self) -> usize {
        match self {
            Self::DpmPp3m => 3,
            Self::DpmPp2m | Self::DpmPp2mSde | Self::UniPc => 2,
        }
    }

    /// The order of step `k` of `steps` (diffusers' warm-up and `lower_order_final`).
    fn step_order(self, k: usize, steps: usize) -> usize {
        let last = k + 1 == steps;
        let second_last = k + 2 == steps && steps < 15 && self != Self::UniPc;
        if k == 0 || last {
            1
        } else if k == 1 || second_last {
            self.order().min(2)
        } else {
            self.order()
        }
    }
}

/// The placement of K steps on a schedule: the noise level σ_k (k = 0 … K, σ_K = 0) and the
/// network's timestep t_k (k < K), as diffusers' `set_timesteps` computes them in f64.
pub(crate) struct Grid<'a, const T: usize> {
    schedule: &'a Schedule<T>,
    steps: usize,
    spacing: Spacing,
}

impl<'a, const T: usize> Grid<'a, T> {
    /// The grid of `steps` steps placed by `spacing` (one of [`Solver::SPACINGS`]; validated
    /// by the sampler: 1 ≤ steps < T).
    pub(crate) fn new(schedule: &'a Schedule<T>, steps: usize, spacing: Spacing) -> Self {
        Self {
            schedule,
            steps,
            spacing,
        }
    }

    /// σ of the schedule's timestep t, √((1−ᾱ_t)/ᾱ_t).
    fn sigma_at(&self, t: usize) -> f64 {
        let ab = self.schedule.alpha_bar[t];
        libm::sqrt((1.0 - ab) / ab)
    }

    /// ln σ of the schedule's timestep t (diffusers' `log_sigmas`), increasing in t.
    fn log_sigma_at(&self, t: usize) -> f64 {
        libm::log(self.sigma_at(t))
    }

    /// `round(linspace(0, T−1, K+1))[j]`, numpy's arithmetic: j·((T−1)/K), the last point
    /// exactly T−1, ties to even.
    fn linspace_timestep(&self, j: usize) -> usize {
        if j == self.steps {
            T - 1
        } else {
            libm::rint(j as f64 * ((T - 1) as f64 / self.steps as f64)) as usize
        }
    }

    /// `linspace(0, 1, K)[k]` (0 when K = 1).
    fn ramp(&self, k: usize) -> f64 {
        if k == 0 {
            0.0
        } else if k + 1 == self.steps {
            1.0
        } else {
            k as f64 * (1.0 / (self.steps - 1) as f64)
        }
    }

    /// σ_k, k = 0 … K.
    pub(crate) fn sigma(&self, k: usize) -> f64 {
        if k == self.steps {
            return 0.0;
        }
        match self.spacing {
            Spacing::Karras => {
                // Karras et al. (2022), ρ = 7, from σ_max = σ(T−1) down to σ_min = σ(0).
                let inv = |t: usize| libm::pow(self.sigma_at(t), 1.0 / 7.0);
                let (max_inv, min_inv) = (inv(T - 1), inv(0));
                libm::pow(max_inv + self.ramp(k) * (min_inv - max_inv), 7.0)
            }
            // Uniform in ln σ = −λ (diffusers' `use_lu_lambdas`).
            Spacing::LogSnr => {
                let (lo, hi) = (self.log_sigma_at(0), self.log_sigma_at(T - 1));
                libm::exp(hi + self.ramp(k) * (lo - hi))
            }
            // Linspace (the sampler accepts no other placement).
            _ => self.sigma_at(self.timestep(k)),
        }
    }

    /// t_k, k < K: the timestep the network sees at step k.
    pub(crate) fn timestep(&self, k: usize) -> usize {
        match self.spacing {
            Spacing::Karras | Spacing::LogSnr => self.sigma_to_t(self.sigma(k)),
            _ => self.linspace_timestep(self.steps - k),
        }
    }

    /// diffusers' `_sigma_to_t(σ).round()`: ln σ interpolated linearly between the two
    /// schedule timesteps around it (clamped to [0, T−1]), rounded half to even.
    fn sigma_to_t(&self, sigma: f64) -> usize {
        let log_sigma = libm::log(sigma.max(1e-10));
        // The number of timesteps with ln σ_t ≤ ln σ (a prefix: ln σ_t increases with t).
        let (mut below, mut above) = (0, T);
        while below < above {
            let mid = (below + above) / 2;
            if self.log_sigma_at(mid) <= log_sigma {
                below = mid + 1;
            } else {
                above = mid;
            }
        }
        let low_idx = below.saturating_sub(1).min(T - 2);
        let (low, high) = (self.log_sigma_at(low_idx), self.log_sigma_at(low_idx + 1));
        let w = ((low - log_sigma) / (low - high)).clamp(0.0, 1.0);
        libm::rint((1.0 - w) * low_idx as f64 + w * (low_idx + 1) as f64) as usize
    }

    /// λ_k = ln(α_k/s_k) = −ln σ_k (+∞ at the grid's end).
    fn lambda(&self, k: usize) -> f64 {
        -libm::log(self.sigma(k))
    }

    /// (α_k, s_k): the VP signal and noise scales of σ_k.
    fn alpha_sigma(&self, k: usize) -> (f64, f64) {
        let sigma = self.sigma(k);
        let alpha = 1.0 / libm::sqrt(sigma * sigma + 1.0);
        (alpha, sigma * alpha)
    }

    /// The weights of a DPM-Solver++ step from σ_k to σ_{k+1} of `order` on
    /// (x, x̂₀_k, x̂₀_{k−1}, x̂₀_{k−2}), and for the SDE (order ≤ 2) the noise scale.
    fn dpm_weights(&self, k: usize, order: usize, sde: bool) -> ([f64; 4], f64) {
        let (alpha_t, s_t) = self.alpha_sigma(k + 1);
        let (_, s_s) = self.alpha_sigma(k);
        let (lambda_s, h) = (self.lambda(k), self.lambda(k + 1) - self.lambda(k));
        let ratio = s_t / s_s;
        // D₁ = (x̂₀_k − x̂₀_{k−1})/r₀ enters as (1/r₀, −1/r₀) on (x̂₀_k, x̂₀_{k−1}).
        let inv_r0 = || h / (lambda_s - self.lambda(k - 1));
        if sde {
            // c·(x̂₀_k + ½D₁), c = α_t(1 − e^{−2h}).
            let c = -alpha_t * libm::expm1(-2.0 * h);
            let noise = s_t * libm::sqrt(-libm::expm1(-2.0 * h));
            let x = ratio * libm::exp(-h);
            let weights = match order {
                1 => [x, c, 0.0, 0.0],
                _ => [x, c * (1.0 + 0.5 * inv_r0()), -0.5 * c * inv_r0(), 0.0],
            };
            return (weights, noise);
        }
        let phi = libm::expm1(-h);
        // c·x̂₀_k, c = −α_t(e^{−h} − 1): the first-order (DDIM) step.
        let c = -alpha_t * phi;
        let weights = match order {
            1 => [ratio, c, 0.0, 0.0],
            2 => [ratio, c * (1.0 + 0.5 * inv_r0()), -0.5 * c * inv_r0(), 0.0],
            _ => {
                let r0 = (lambda_s - self.lambda(k - 1)) / h;
                let r1 = (self.lambda(k - 1) - self.lambda(k - 2)) / h;
                let b1 = alpha_t * (phi / h + 1.0);
                let b2 = -alpha_t * ((phi + h) / (h * h) - 0.5);
                // b1·D₁ + b2·D₂ = u0·D₁₀ + u1·D₁₁.
                let u0 = b1 * (1.0 + r0 / (r0 + r1)) + b2 / (r0 + r1);
                let u1 = -b1 * r0 / (r0 + r1) - b2 / (r0 + r1);
                [ratio, c + u0 / r0, -u0 / r0 + u1 / r1, -u1 / r1]
            }
        };
        (weights, 0.0)
    }

    /// The weights of UniPC's corrector at step k ≥ 1, of `order` (the previous predictor's),
    /// on (x_{k−1}, x̂₀_k, x̂₀_{k−1}, x̂₀_{k−2}).
    fn unic_weights(&self, k: usize, order: usize) -> [f64; 4] {
        let (alpha_t, s_t) = self.alpha_sigma(k);
        let (_, s_s) = self.alpha_sigma(k - 1);
        let h = self.lambda(k) - self.lambda(k - 1);
        let phi = libm::expm1(-h);
        let ratio = s_t / s_s;
        // x_c = ratio·x_{k−1} + c·x̂₀_{k−1} + c·(ρ₀·D + ρ₁·(x̂₀_k − x̂₀_{k−1})), c = −α_t·φ.
        let c = -alpha_t * phi;
        if order == 1 {
            return [ratio, 0.5 * c, 0.5 * c, 0.0];
        }
        let r = (self.lambda(k - 2) - self.lambda(k - 1)) / h;
        // B(h) = φ (bh2); b_i = i!·h·φ_{i+1}(−h)/B(h), diffusers' recursion.
        let k1 = phi / -h - 1.0;
        let b1 = k1 / phi;
        let b2 = 2.0 * (k1 / -h - 0.5) / phi;
        let rho0 = (b1 - b2) / (1.0 - r);
        let rho1 = b1 - rho0;
        // D = (x̂₀_{k−2} − x̂₀_{k−1})/r.
        [ratio, c * rho1, c * (1.0 - rho0 / r - rho1), c * rho0 / r]
    }

    /// Step k of `solver`: its update and noise scale.
    pub(crate) fn update(&self, solver: Solver, k: usize) -> (Update, f64) {
        let (alpha, s) = self.alpha_sigma(k);
        let (sqrt_ab, sqrt_one_minus_ab) = (alpha as f32, s as f32);
        let order = solver.step_order(k, self.steps);
        let f32s = |w: [f64; 4]| w.map(|v| v as f32);
        match solver {
            Solver::UniPc => {
                let (p, _) = self.dpm_weights(k, order, false);
                let corrector = if k == 0 {
                    [0.0; 4]
                } else {
                    self.unic_weights(k, solver.step_order(k - 1, self.steps))
                };
                let update = Update::UniPc {
                    sqrt_one_minus_ab,
                    sqrt_ab,
                    correct: k > 0,
                    corrector: f32s(corrector),
                    predictor: [p[0] as f32, p[1] as f32, p[2] as f32],
                };
                (update, 0.0)
            }
            _ => {
                let (weights, noise) = self.dpm_weights(k, order, solver == Solver::DpmPp2mSde);
                let update = Update::DpmSolver {
                    sqrt_one_minus_ab,
                    sqrt_ab,
                    weights: f32s(weights),
                };
                (update, noise)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn orders(solver: Solver, steps: usize) -> [usize; 16] {
        core::array::from_fn(|k| {
            if k < steps {
                solver.step_order(k, steps)
            } else {
                0
            }
        })
    }

    #[test]
    fn orders_follow_diffusers_warm_up_and_lower_order_final() {
        // First step first order, second at most second; the last step (to σ = 0) first order.
        assert_eq!(
            orders(Solver::DpmPp3m, 16),
            [1, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 1]
        );
        // Fewer than 15 steps: 3M's second-to-last step is second order too.
        assert_eq!(
            orders(Solver::DpmPp3m, 14),
            [1, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 2, 1, 0, 0]
        );
        assert_eq!(
            orders(Solver::DpmPp3m, 3),
            [1, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        for solver in [Solver::DpmPp2m, Solver::DpmPp2mSde, Solver::UniPc] {
            assert_eq!(
                orders(solver, 5),
                [1, 2, 2, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
            );
            assert_eq!(orders(solver, 1)[0], 1);
        }
    }

    /// Every coefficient finite (no zero step h, no duplicate noise level) for every K a
    /// sampler accepts, on both schedules and two lengths.
    fn finite_everywhere<const T: usize>(kind: crate::ScheduleKind) {
        let s = Schedule::<T>::new(kind).unwrap();
        for (_, solver) in Solver::NAMED {
            for spacing in Solver::SPACINGS {
                for steps in [1, 2, 3, 4, 7, 14, 15, 20, T / 2, T - 1] {
                    let grid = Grid::new(&s, steps, spacing);
                    for k in 0..steps {
                        let (update, noise) = grid.update(solver, k);
                        let finite = |v: &[f32]| v.iter().all(|c| c.is_finite());
                        let ok = match update {
                            Update::DpmSolver {
                                sqrt_one_minus_ab,
                                sqrt_ab,
                                weights,
                            } => finite(&[sqrt_one_minus_ab, sqrt_ab]) && finite(&weights),
                            Update::UniPc {
                                sqrt_one_minus_ab,
                                sqrt_ab,
                                corrector,
                                predictor,
                                ..
                            } => {
                                finite(&[sqrt_one_minus_ab, sqrt_ab])
                                    && finite(&corrector)
                                    && finite(&predictor)
                            }
                            _ => false,
                        };
                        assert!(
                            ok && noise.is_finite(),
                            "{solver:?} {spacing:?} K={steps} k={k}: {update:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn coefficients_are_finite_for_every_valid_k() {
        finite_everywhere::<1000>(crate::ScheduleKind::SEED);
        finite_everywhere::<1000>(crate::ScheduleKind::COSINE);
        finite_everywhere::<100>(crate::ScheduleKind::SEED);
    }

    #[test]
    fn placements_start_at_the_top_and_decrease_to_zero() {
        let s = Schedule::<1000>::new(crate::ScheduleKind::SEED).unwrap();
        let top = libm::sqrt((1.0 - s.alpha_bar[999]) / s.alpha_bar[999]);
        let bottom = libm::sqrt((1.0 - s.alpha_bar[0]) / s.alpha_bar[0]);
        for spacing in Solver::SPACINGS {
            for steps in [1, 2, 20, 999] {
                let grid = Grid::new(&s, steps, spacing);
                assert!((grid.sigma(0) / top - 1.0).abs() < 1e-12, "{spacing:?}");
                assert_eq!(grid.timestep(0), 999);
                assert_eq!(grid.sigma(steps), 0.0);
                for k in 0..steps {
                    assert!(grid.sigma(k + 1) < grid.sigma(k), "{spacing:?} {steps} {k}");
                }
                if steps > 1 && spacing != Spacing::Linspace {
                    // Karras and log-SNR end at σ(0), whose timestep is 0.
                    assert!((grid.sigma(steps - 1) / bottom - 1.0).abs() < 1e-12);
                    assert_eq!(grid.timestep(steps - 1), 0);
                }
            }
        }
    }
}

//! The noise schedule: β_t, and ᾱ_t = ∏_{s≤t} (1 − β_s), in f64, built by one function.
//!
//! Every backend receives these numbers (or the [`Step`](crate::Step) coefficients derived
//! from them); none recomputes them. f64 keeps the table within ~1e-7 of the exact values,
//! and IEEE f64 `+ − × ÷ √` give the same bits on every machine (software f64 included).

/// How β_t is chosen.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "file", derive(serde::Serialize, serde::Deserialize))]
pub enum ScheduleKind {
    /// β_t evenly spaced from `beta_start` to `beta_end` (the seed: 1e-4 … 0.02).
    Linear {
        /// β_0
        beta_start: f64,
        /// β_(T−1)
        beta_end: f64,
    },
    /// Nichol & Dhariwal's cosine schedule: ᾱ(t) = f(t)/f(0), f(t) = cos²(((t/T)+s)/(1+s)·π/2),
    /// β_t = min(1 − ᾱ(t+1)/ᾱ(t), `max_beta`).
    Cosine {
        /// Offset s (0.008 in the paper).
        s: f64,
        /// Clip on β (0.999 in the paper).
        max_beta: f64,
    },
}

/// In words, as the tools print it: "linear betas 0.0001 … 0.02".
impl core::fmt::Display for ScheduleKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            ScheduleKind::Linear {
                beta_start,
                beta_end,
            } => write!(f, "linear betas {beta_start} … {beta_end}"),
            ScheduleKind::Cosine { s, max_beta } => {
                write!(f, "cosine, s = {s}, max beta {max_beta}")
            }
        }
    }
}

impl ScheduleKind {
    /// The seed notebook's schedule: linear 1e-4 … 0.02.
    pub const SEED: Self = Self::Linear {
        beta_start: 1e-4,
        beta_end: 0.02,
    };
    /// The cosine schedule with the paper's constants.
    pub const COSINE: Self = Self::Cosine {
        s: 0.008,
        max_beta: 0.999,
    };

    /// Whether the parameters give 0 < β < 1 everywhere.
    pub fn is_valid(&self) -> bool {
        match *self {
            Self::Linear {
                beta_start,
                beta_end,
            } => beta_start > 0.0 && beta_end >= beta_start && beta_end < 1.0,
            Self::Cosine { s, max_beta } => s > 0.0 && s < 1.0 && max_beta > 0.0 && max_beta < 1.0,
        }
    }
}

/// β and ᾱ for T steps.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule<const T: usize> {
    /// What the table was built from.
    pub kind: ScheduleKind,
    /// β_t, t = 0 … T−1.
    pub beta: [f64; T],
    /// ᾱ_t = ∏_{s≤t} (1 − β_s).
    pub alpha_bar: [f64; T],
}

impl<const T: usize> Schedule<T> {
    /// The table for `kind`, or `None` if its parameters are out of range or T < 2.
    pub fn new(kind: ScheduleKind) -> Option<Self> {
        if !kind.is_valid() || T < 2 {
            return None;
        }
        let mut beta = [0.0; T];
        match kind {
            ScheduleKind::Linear {
                beta_start,
                beta_end,
            } => {
                // numpy/torch linspace: start + i·step, the last point exactly `end`.
                let step = (beta_end - beta_start) / (T - 1) as f64;
                for (i, b) in beta.iter_mut().enumerate() {
                    *b = beta_start + i as f64 * step;
                }
                beta[T - 1] = beta_end;
            }
            ScheduleKind::Cosine { s, max_beta } => {
                let f = |t: usize| {
                    let c = libm::cos(
                        (t as f64 / T as f64 + s) / (1.0 + s) * core::f64::consts::FRAC_PI_2,
                    );
                    c * c
                };
                for (t, b) in beta.iter_mut().enumerate() {
                    *b = (1.0 - f(t + 1) / f(t)).min(max_beta);
                }
            }
        }
        let mut alpha_bar = [0.0; T];
        let mut prod = 1.0;
        for (ab, b) in alpha_bar.iter_mut().zip(&beta) {
            prod *= 1.0 - b;
            *ab = prod;
        }
        Some(Self {
            kind,
            beta,
            alpha_bar,
        })
    }

    /// The forward-process coefficients at t: x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε, as f32.
    pub fn forward_coefs(&self, t: usize) -> (f32, f32) {
        let ab = self.alpha_bar[t];
        (libm::sqrt(ab) as f32, libm::sqrt(1.0 - ab) as f32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_schedule_ends_and_monotone_alpha_bar() {
        let s = Schedule::<1000>::new(ScheduleKind::SEED).unwrap();
        assert_eq!(s.beta[0], 1e-4);
        assert_eq!(s.beta[999], 0.02);
        assert!(s.alpha_bar.windows(2).all(|w| w[1] < w[0]));
        // ᾱ_999 = ∏(1 − β): independent check via a sum of logs
        let log_sum: f64 = s.beta.iter().map(|b| libm::log1p(-b)).sum();
        assert!((s.alpha_bar[999] / libm::exp(log_sum) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn cosine_schedule_follows_its_closed_form() {
        let s = Schedule::<1000>::new(ScheduleKind::COSINE).unwrap();
        assert!(s.beta.iter().all(|&b| b > 0.0 && b <= 0.999));
        let f = |t: f64| {
            let c = libm::cos((t / 1000.0 + 0.008) / 1.008 * core::f64::consts::FRAC_PI_2);
            c * c
        };
        for t in [0usize, 10, 500, 900] {
            let closed = f(t as f64 + 1.0) / f(0.0);
            assert!((s.alpha_bar[t] - closed).abs() < 1e-9, "t={t}");
        }
    }

    #[test]
    fn invalid_parameters_are_rejected() {
        let bad = ScheduleKind::Linear {
            beta_start: 0.1,
            beta_end: 1.5,
        };
        assert!(Schedule::<10>::new(bad).is_none());
        assert!(Schedule::<1>::new(ScheduleKind::SEED).is_none());
        let nan = ScheduleKind::Linear {
            beta_start: f64::NAN,
            beta_end: 0.02,
        };
        assert!(Schedule::<10>::new(nan).is_none());
    }
}

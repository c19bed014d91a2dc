//! One reverse step — where it is, its f32 coefficients, how it updates x — and its
//! encoding as a row of words: the table the GPU and the firmware receive instead of
//! recomputing the schedule.
//!
//! A row ([`Step::to_words`], read back by [`Step::from_words`]):
//!
//! ```text
//! word 0   t
//!      1   t_input           f32 bits
//!      2   kind              STEP_DDPM 0, STEP_DDIM 1, STEP_DDIM_CLIP 2, STEP_DPM 3,
//!                            STEP_UNIPC 4, STEP_UNIPC_CORRECT 5
//!      3   sigma             f32 bits
//!      4…  coefficients      f32 bits, in the order the variant's fields are declared
//!                            (Ddpm: c_eps, c_x; Ddim: sqrt_one_minus_ab, sqrt_ab,
//!                            sqrt_ab_prev, dir; DpmSolver: sqrt_one_minus_ab, sqrt_ab,
//!                            weights; UniPc: sqrt_one_minus_ab, sqrt_ab, corrector,
//!                            predictor)
//! ```
//! A row is [`Step::WORDS`] long, its unused coefficients zero; a table of one kind may keep
//! only the first [`Step::row_len`] words of each row, which is all [`Step::from_words`] reads.

use crate::real::Real;

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

/// The deterministic part of a reverse step (the [`sampler`](crate::sampler) docs give the
/// formulas).
///
/// Every backend applies these f32 coefficients with the operations, in the order, that
/// [`Step::apply`] documents for each variant: each product rounded, then each sum rounded
/// (never fused), left to right as written.
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
    /// DPM-Solver++ (2M, 3M, 2M SDE) step k:
    /// `x̂₀ = (x − sqrt_one_minus_ab·ε̂)/sqrt_ab`, then
    /// `x' = w₀·x + w₁·x̂₀ + w₂·x̂₀_{k−1} + w₃·x̂₀_{k−2}` with x̂₀_{k−1}, x̂₀_{k−2} from the
    /// [`History`], which then records x̂₀. Lower-order steps have zero weights.
    DpmSolver {
        /// s_k = σ_k/√(1+σ_k²) of the grid's noise level σ_k (√(1−ᾱ) of that level).
        sqrt_one_minus_ab: f32,
        /// α_k = 1/√(1+σ_k²) (√ᾱ of that level).
        sqrt_ab: f32,
        /// w₀ … w₃.
        weights: [f32; 4],
    },
    /// UniPC step k: `x̂₀ = (x − sqrt_one_minus_ab·ε̂)/sqrt_ab`; if `correct`, the corrector
    /// `x_c = c₀·x_{k−1} + c₁·x̂₀ + c₂·x̂₀_{k−1} + c₃·x̂₀_{k−2}` (x_{k−1}: the [`History`]'s x),
    /// else `x_c = x`; then the predictor `x' = p₀·x_c + p₁·x̂₀ + p₂·x̂₀_{k−1}`; the history
    /// then records x_c and x̂₀.
    UniPc {
        /// s_k of the grid's noise level σ_k, as in [`Update::DpmSolver`].
        sqrt_one_minus_ab: f32,
        /// α_k of σ_k.
        sqrt_ab: f32,
        /// Run the corrector (every step but the first).
        correct: bool,
        /// c₀ … c₃ (zero when `correct` is false).
        corrector: [f32; 4],
        /// p₀ … p₂.
        predictor: [f32; 3],
    },
}

/// Kind codes of a row's word 2 (module docs).
const KINDS: [(&str, u32); 6] = [
    ("STEP_DDPM", 0),
    ("STEP_DDIM", 1),
    ("STEP_DDIM_CLIP", 2),
    ("STEP_DPM", 3),
    ("STEP_UNIPC", 4),
    ("STEP_UNIPC_CORRECT", 5),
];
/// Where a row's fields start.
const T: usize = 0;
const T_INPUT: usize = 1;
const KIND: usize = 2;
const SIGMA: usize = 3;
const COEF: usize = 4;
/// The most coefficients a variant holds (UniPC: 2 + 4 + 3).
const COEFS: usize = 9;

impl Update {
    /// The row's kind code and the coefficients, in declaration order.
    fn encode(&self) -> (u32, [f32; COEFS], usize) {
        let mut c = [0.0; COEFS];
        let (kind, used): (u32, &[f32]) = match *self {
            Update::Ddpm { c_eps, c_x } => (0, &[c_eps, c_x]),
            Update::Ddim {
                sqrt_one_minus_ab,
                sqrt_ab,
                sqrt_ab_prev,
                dir,
                clip,
            } => (
                1 + u32::from(clip),
                &[sqrt_one_minus_ab, sqrt_ab, sqrt_ab_prev, dir],
            ),
            Update::DpmSolver {
                sqrt_one_minus_ab,
                sqrt_ab,
                weights: [w0, w1, w2, w3],
            } => (3, &[sqrt_one_minus_ab, sqrt_ab, w0, w1, w2, w3]),
            Update::UniPc {
                sqrt_one_minus_ab,
                sqrt_ab,
                correct,
                corrector: [c0, c1, c2, c3],
                predictor: [p0, p1, p2],
            } => (
                4 + u32::from(correct),
                &[sqrt_one_minus_ab, sqrt_ab, c0, c1, c2, c3, p0, p1, p2],
            ),
        };
        c[..used.len()].copy_from_slice(used);
        (kind, c, used.len())
    }

    /// The update of kind `kind` with coefficients `c`; `None` for an unknown kind.
    fn decode(kind: u32, c: [f32; COEFS]) -> Option<Self> {
        let [a, b, c2, c3, c4, c5, c6, c7, c8] = c;
        Some(match kind {
            0 => Update::Ddpm { c_eps: a, c_x: b },
            1 | 2 => Update::Ddim {
                sqrt_one_minus_ab: a,
                sqrt_ab: b,
                sqrt_ab_prev: c2,
                dir: c3,
                clip: kind == 2,
            },
            3 => Update::DpmSolver {
                sqrt_one_minus_ab: a,
                sqrt_ab: b,
                weights: [c2, c3, c4, c5],
            },
            4 | 5 => Update::UniPc {
                sqrt_one_minus_ab: a,
                sqrt_ab: b,
                correct: kind == 5,
                corrector: [c2, c3, c4, c5],
                predictor: [c6, c7, c8],
            },
            _ => return None,
        })
    }
}

impl Step {
    /// Words of a whole row.
    pub const WORDS: usize = COEF + COEFS;

    /// The row's layout as named constants for generated code (the CUDA sampler's `-D`
    /// options): `STEP_WORDS`, the positions `STEP_T`, `STEP_T_INPUT`, `STEP_KIND`,
    /// `STEP_SIGMA`, `STEP_COEF`, and the kind codes.
    pub fn named_words() -> [(&'static str, usize); 12] {
        let [k0, k1, k2, k3, k4, k5] = KINDS.map(|(name, code)| (name, code as usize));
        [
            ("STEP_WORDS", Self::WORDS),
            ("STEP_T", T),
            ("STEP_T_INPUT", T_INPUT),
            ("STEP_KIND", KIND),
            ("STEP_SIGMA", SIGMA),
            ("STEP_COEF", COEF),
            k0,
            k1,
            k2,
            k3,
            k4,
            k5,
        ]
    }

    /// Words of the row [`Step::from_words`] reads: the fields and this kind's coefficients.
    pub fn row_len(&self) -> usize {
        COEF + self.update.encode().2
    }

    /// The step as a row (module docs).
    pub fn to_words(&self) -> [u32; Self::WORDS] {
        let (kind, coefs, _) = self.update.encode();
        let mut words = [0; Self::WORDS];
        words[T] = self.t;
        words[T_INPUT] = self.t_input.to_bits();
        words[KIND] = kind;
        words[SIGMA] = self.sigma.to_bits();
        for (w, c) in words[COEF..].iter_mut().zip(coefs) {
            *w = c.to_bits();
        }
        words
    }

    /// The step a row holds, bit for bit; `None` for an unknown kind or a row shorter than
    /// its kind's [`Step::row_len`]. Words past that are not read.
    pub fn from_words(words: &[u32]) -> Option<Self> {
        let &[t, t_input, kind, sigma, ref coefs @ ..] = words else {
            return None;
        };
        let mut c = [0.0; COEFS];
        for (c, &w) in c.iter_mut().zip(coefs) {
            *c = f32::from_bits(w);
        }
        let step = Self {
            t,
            t_input: f32::from_bits(t_input),
            update: Update::decode(kind, c)?,
            sigma: f32::from_bits(sigma),
        };
        (words.len() >= step.row_len()).then_some(step)
    }

    /// The reverse update of one coordinate: x, its predicted noise ε̂, fresh noise z and the
    /// coordinate's [`History`] (read and written by the multistep solvers only).
    ///
    /// The f32 operations, in order, each rounded (`a·b + c` is a rounded product, then a
    /// rounded sum; sums run left to right):
    /// - `Ddpm`: `(x − c_eps·ε̂)·c_x`;
    /// - `Ddim`: `x̂₀ = (x − sqrt_one_minus_ab·ε̂)/sqrt_ab`; if clipping, `x̂₀ = min(max(x̂₀,
    ///   −1), 1)` and `ε̂ = (x − sqrt_ab·x̂₀)/sqrt_one_minus_ab`; `sqrt_ab_prev·x̂₀ + dir·ε̂`;
    /// - `DpmSolver`: x̂₀ as DDIM's; `((w₀·x + w₁·x̂₀) + w₂·h.x0[0]) + w₃·h.x0[1]`; then
    ///   `h.x0 = [x̂₀, h.x0[0]]`;
    /// - `UniPc`: x̂₀ as DDIM's; `x_c = ((c₀·h.x + c₁·x̂₀) + c₂·h.x0[0]) + c₃·h.x0[1]` if
    ///   `correct`, else `x_c = x`; `(p₀·x_c + p₁·x̂₀) + p₂·h.x0[0]`; then `h.x = x_c`,
    ///   `h.x0 = [x̂₀, h.x0[0]]`;
    ///
    /// and last, for every variant, `+ sigma·z`.
    #[inline(always)]
    pub fn apply<R: Real>(&self, x: R, eps: R, z: R, history: &mut History<R>) -> R {
        let mean = match self.update {
            Update::Ddpm { c_eps, c_x } => (x - R::splat(c_eps) * eps) * R::splat(c_x),
            Update::Ddim {
                sqrt_one_minus_ab,
                sqrt_ab,
                sqrt_ab_prev,
                dir,
                clip,
            } => {
                let x0 = predict_x0(x, eps, sqrt_one_minus_ab, sqrt_ab);
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
            Update::DpmSolver {
                sqrt_one_minus_ab,
                sqrt_ab,
                weights,
            } => {
                let x0 = predict_x0(x, eps, sqrt_one_minus_ab, sqrt_ab);
                let out = weighted(weights, [x, x0, history.x0[0], history.x0[1]]);
                history.push_x0(x0);
                out
            }
            Update::UniPc {
                sqrt_one_minus_ab,
                sqrt_ab,
                correct,
                corrector,
                predictor,
            } => {
                let x0 = predict_x0(x, eps, sqrt_one_minus_ab, sqrt_ab);
                let x = if correct {
                    weighted(corrector, [history.x, x0, history.x0[0], history.x0[1]])
                } else {
                    x
                };
                let out = weighted(predictor, [x, x0, history.x0[0]]);
                history.x = x;
                history.push_x0(x0);
                out
            }
        };
        mean + R::splat(self.sigma) * z
    }
}

/// x̂₀ = (x − sqrt_one_minus_ab·ε̂)/sqrt_ab: x₀ as the network's noise implies it.
#[inline(always)]
fn predict_x0<R: Real>(x: R, eps: R, sqrt_one_minus_ab: f32, sqrt_ab: f32) -> R {
    (x - R::splat(sqrt_one_minus_ab) * eps) / R::splat(sqrt_ab)
}

/// `((w₀·v₀ + w₁·v₁) + w₂·v₂) + …`: each product rounded, the sum left to right.
#[inline(always)]
fn weighted<R: Real, const N: usize>(weights: [f32; N], values: [R; N]) -> R {
    let mut sum = R::splat(weights[0]) * values[0];
    for (w, v) in weights.into_iter().zip(values).skip(1) {
        sum = sum + R::splat(w) * v;
    }
    sum
}

/// What a multistep solver remembers of one coordinate of one sample between steps. The
/// reverse chain keeps one per coordinate (each a lane type, one lane per sample), starting
/// from [`History::new`]; samplers without memory leave it untouched.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct History<R> {
    /// x̂₀ of the previous step, then of the one before it (zero until written).
    pub x0: [R; 2],
    /// UniPC: the (corrected) x the previous step's predictor started from.
    pub x: R,
}

impl<R: Real> History<R> {
    /// The empty history of a chain's first step.
    pub fn new() -> Self {
        Self {
            x0: [R::splat(0.0); 2],
            x: R::splat(0.0),
        }
    }

    /// Records this step's x̂₀, forgetting the oldest.
    #[inline(always)]
    pub(crate) fn push_x0(&mut self, x0: R) {
        self.x0 = [x0, self.x0[0]];
    }
}

impl<R: Real> Default for History<R> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Sampler, Schedule, ScheduleKind, Solver, Spacing};

    /// Every step of every kind of sampler survives the row, bit for bit, also cut to its
    /// kind's length; a shorter row or an unknown kind is refused.
    #[test]
    fn rows_round_trip_for_every_sampler_kind() {
        let schedule = Schedule::<1000>::new(ScheduleKind::SEED).unwrap();
        let clipped = Sampler::Ddim {
            steps: 10,
            eta: 0.5,
            spacing: Spacing::Leading,
            clip: true,
        };
        let samplers = Sampler::NAMES.map(|(_, s)| s).into_iter().chain([
            clipped,
            Sampler::Multistep {
                solver: Solver::UniPc,
                steps: 7,
                spacing: Spacing::Karras,
            },
        ]);
        let mut kinds = [false; 6];
        for sampler in samplers {
            for step in sampler.steps(&schedule) {
                let words = step.to_words();
                kinds[words[KIND] as usize] = true;
                let row = &words[..step.row_len()];
                assert!(words[step.row_len()..].iter().all(|&w| w == 0));
                for read in [&words[..], row] {
                    let back = Step::from_words(read).unwrap();
                    assert_eq!(back.to_words(), words, "{sampler:?} {step:?}");
                    assert_eq!(back, step);
                }
                assert_eq!(Step::from_words(&row[..row.len() - 1]), None);
            }
        }
        assert_eq!(kinds, [true; 6], "every kind code is exercised");
        let mut unknown = Sampler::Ddpm.step(&schedule, 0).to_words();
        unknown[KIND] = 6;
        assert_eq!(Step::from_words(&unknown), None);
    }

    /// The named constants are the row's layout and codes.
    #[test]
    fn named_words_describe_the_row() {
        let named = Step::named_words();
        let get = |name| named.iter().find(|(n, _)| *n == name).unwrap().1;
        let schedule = Schedule::<1000>::new(ScheduleKind::SEED).unwrap();
        let step = Sampler::multistep(Solver::UniPc).step(&schedule, 3);
        let words = step.to_words();
        assert_eq!(words.len(), get("STEP_WORDS"));
        assert_eq!(words[get("STEP_T")], step.t);
        assert_eq!(words[get("STEP_T_INPUT")], step.t_input.to_bits());
        assert_eq!(words[get("STEP_KIND")] as usize, get("STEP_UNIPC_CORRECT"));
        assert_eq!(words[get("STEP_SIGMA")], step.sigma.to_bits());
        let Update::UniPc { predictor, .. } = step.update else {
            panic!("{step:?}");
        };
        assert_eq!(words[get("STEP_COEF") + 8], predictor[2].to_bits());
    }
}

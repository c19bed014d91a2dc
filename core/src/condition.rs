//! Class conditioning with classifier-free guidance (Ho & Salimans 2022), written once for
//! every backend:
//!
//! ```text
//! temb_c = temb(t) + E[c]                 class c ∈ 0..C; row C of E is ∅, "no class"
//! ε̂_w    = ε̂(∅) + w·(ε̂(c) − ε̂(∅))         guidance weight w ≥ 0
//! ```
//!
//! The network past the time embedding is unchanged: a class only changes what is added to
//! the embedding, once per (step, class), in f32, `temb` first (PyTorch's
//! `time_embed(t) + class_embed(c)`). E is the model's class embedding, (C + 1) rows of H
//! after every layer in file order ([`Layout::with_classes`](crate::Layout::with_classes)).
//!
//! Guidance combines the two predictions per lane before the reverse step, so the multistep
//! solvers' history holds the guided x̂₀ on every backend; it draws no noise, so a sample's
//! stream is the unconditional one. Two weights are one evaluation, by definition rather
//! than by the formula (whose f32 result is not exactly either prediction): w = 1 is ε̂(c)
//! alone — the conditional model — and w = 0 is ε̂(∅) alone ([`Guidance::evaluations`],
//! which every backend plans by).

use crate::model::Model;
use crate::noise::NoiseStream;
use crate::real::Real;
use crate::sample::{Fixed, PredictNoise, PredictNoiseIn, chain_in, gaussian_draw};
use crate::sampler::{Sampler, Step};
use crate::schedule::Schedule;
use crate::units::MAX_DIM;

/// The most classes a model holds: C is a u16 in the model file (classes 0 ..= C − 1 fit a
/// u16 too).
pub const MAX_CLASSES: usize = u16::MAX as usize;

/// The class a sample is drawn for and how strongly: `ε̂(∅) + weight·(ε̂(class) − ε̂(∅))`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Guidance {
    /// The class, below the model's C.
    pub class: u16,
    /// The guidance weight w: finite and ≥ 0 (1: the conditional model alone).
    pub weight: f32,
}

impl Guidance {
    /// Class `class` at weight `weight`, if the weight is finite and not negative.
    pub fn new(class: u16, weight: f32) -> Option<Self> {
        (weight.is_finite() && weight >= 0.0).then_some(Self { class, weight })
    }

    /// The predictions a sample drawn for `guidance` takes each step (`None`: unguided, ∅):
    /// one for w = 0 (∅) and w = 1 (the class), two for every other weight. Every backend
    /// plans its work by this, so all draw the same bits.
    pub fn evaluations(guidance: Option<Self>) -> Evaluations {
        match guidance {
            None => Evaluations::One(None),
            Some(g) if g.weight == 0.0 => Evaluations::One(None),
            Some(g) if g.weight == 1.0 => Evaluations::One(Some(g.class)),
            Some(g) => Evaluations::Two(g),
        }
    }
}

/// What a step predicts for a sample ([`Guidance::evaluations`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Evaluations {
    /// One prediction, with this class's embedding (`None`: ∅'s).
    One(Option<u16>),
    /// Two, the class's and ∅'s, combined by [`guide`] ([`Guided`]).
    Two(Guidance),
}

/// `temb[j] + row[j]` into `temb`: the conditioned time embedding (one f32 add per unit).
#[inline(always)]
pub fn add_class(temb: &mut [f32], row: &[f32]) {
    for (t, &e) in temb.iter_mut().zip(row) {
        *t += e;
    }
}

/// Row `class` of the class embedding `rows` ((C + 1) rows of `hidden`), or row C (∅) for
/// `None`; `None` if the class is C or more or `rows` is not (C + 1)·`hidden` long.
pub fn class_row(rows: &[f32], hidden: usize, class: Option<u16>) -> Option<&[f32]> {
    if hidden == 0 || !rows.len().is_multiple_of(hidden) || rows.len() < 2 * hidden {
        return None;
    }
    let classes = rows.len() / hidden - 1;
    let c = match class {
        Some(c) if usize::from(c) < classes => usize::from(c),
        Some(_) => return None,
        None => classes,
    };
    rows.get(c * hidden..(c + 1) * hidden)
}

/// `ε̂(∅) + w·(ε̂(c) − ε̂(∅))`, one lane's guided prediction, in that order.
#[inline(always)]
pub fn guide<R: Real>(unconditional: R, conditional: R, weight: f32) -> R {
    unconditional + R::splat(weight) * (conditional - unconditional)
}

/// Guided prediction from two predictors of the same network, one with the class's
/// embedding and one with ∅'s, combined by [`guide`]: the two-evaluation step of
/// [`Evaluations::Two`] (a weight of one evaluation is one predictor alone; see the module
/// docs).
pub struct Guided<P> {
    /// ε̂(c).
    pub conditional: P,
    /// ε̂(∅).
    pub unconditional: P,
    /// w.
    pub weight: f32,
}

impl<R: Real, P: PredictNoiseIn<R>> PredictNoiseIn<R> for Guided<P> {
    #[inline(always)]
    fn predict_noise_in(&mut self, k: usize, step: &Step, x: &[R], eps: &mut [R]) {
        self.unconditional.predict_noise_in(k, step, x, eps);
        let mut cond = [R::splat(0.0); MAX_DIM];
        let cond = &mut cond[..eps.len().min(MAX_DIM)];
        self.conditional.predict_noise_in(k, step, x, cond);
        // A plain loop, not `map`: see `Lanes`' note on closures under target features.
        for (e, &c) in eps.iter_mut().zip(cond.iter()) {
            *e = guide(*e, c, self.weight);
        }
    }
}

/// The float model with one row of its class embedding added to every step's time
/// embedding: ε̂(x, t, c) of the reference backend.
pub struct Conditioned<'m, const H: usize, const B: usize, const D: usize> {
    /// The network.
    pub model: &'m Model<H, B, D>,
    /// The class's row of E (H long).
    pub row: &'m [f32; H],
}

impl<R: Real, const H: usize, const B: usize, const D: usize> PredictNoise<R, D>
    for Conditioned<'_, H, B, D>
{
    #[inline]
    fn predict_noise(&mut self, _k: usize, step: &Step, x: [R; D]) -> [R; D] {
        let mut temb = self.model.time_embedding(step.t_input);
        add_class(&mut temb, self.row);
        self.model.predict_noise(x, &temb)
    }
}

/// Sample `index` of `seed` of a model conditioned on classes, whose class embedding is
/// `rows` ((C + 1) rows of H): guided toward `guidance`'s class, or from ∅ — the
/// unconditional model — for `None`. The same draws as [`sample`](crate::sample()): x_T,
/// then one per step. `None` if the class is C or more or `rows` is not (C + 1)·H long.
pub fn sample_guided<const H: usize, const B: usize, const T: usize, const D: usize>(
    model: &Model<H, B, D>,
    rows: &[f32],
    schedule: &Schedule<T>,
    sampler: &Sampler,
    (seed, index): (u64, u64),
    guidance: Option<Guidance>,
) -> Option<[f32; D]> {
    let row = |class| class_row(rows, H, class).and_then(|r| <&[f32; H]>::try_from(r).ok());
    let conditioned = |class| {
        let row = row(class)?;
        Some(Fixed(Conditioned { model, row }))
    };
    let mut noise = [NoiseStream::new(seed, index)];
    let mut x: [f32; D] = gaussian_draw(&mut noise);
    let steps = sampler.steps(schedule);
    match Guidance::evaluations(guidance) {
        Evaluations::One(class) => {
            chain_in(conditioned(class)?, steps, &mut x, &mut noise, |_, _| ())
        }
        Evaluations::Two(g) => {
            let guided = Guided {
                conditional: conditioned(Some(g.class))?,
                unconditional: conditioned(None)?,
                weight: g.weight,
            };
            chain_in(guided, steps, &mut x, &mut noise, |_, _| ())
        }
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_found_by_class_and_the_last_is_none() {
        let rows: [f32; 12] = core::array::from_fn(|i| i as f32);
        assert_eq!(class_row(&rows, 4, Some(0)), Some(&rows[0..4]));
        assert_eq!(class_row(&rows, 4, Some(1)), Some(&rows[4..8]));
        assert_eq!(class_row(&rows, 4, None), Some(&rows[8..12]));
        assert_eq!(class_row(&rows, 4, Some(2)), None);
        assert_eq!(class_row(&rows[..4], 4, None), None, "one row: no classes");
        assert_eq!(class_row(&rows[..10], 4, Some(0)), None, "not whole rows");
        assert_eq!(class_row(&rows, 0, None), None);
    }

    #[test]
    fn only_finite_non_negative_weights_guide() {
        for w in [-0.5, f32::NAN, f32::INFINITY, -f32::INFINITY] {
            assert_eq!(Guidance::new(0, w), None, "{w}");
        }
        let plan = |w| Guidance::evaluations(Guidance::new(2, w));
        assert_eq!(plan(0.0), Evaluations::One(None));
        assert_eq!(plan(-0.0), Evaluations::One(None));
        assert_eq!(plan(1.0), Evaluations::One(Some(2)));
        for w in [1.5, 3.0, 1e-30] {
            assert_eq!(
                plan(w),
                Evaluations::Two(Guidance {
                    class: 2,
                    weight: w
                })
            );
        }
        assert_eq!(Guidance::evaluations(None), Evaluations::One(None));
    }

    /// The formula against f64 on values where f32 rounds each operation: the same
    /// operations in the same order, so the same bits as the rounded f64 steps.
    #[test]
    fn guidance_rounds_each_operation_in_the_stated_order() {
        for (u, c, w) in [
            (0.1f32, 0.7f32, 3.0f32),
            (-1.25, 2.5e-3, 1.5),
            (3.0, -3.0, 5.0),
        ] {
            let diff = (f64::from(c) - f64::from(u)) as f32;
            let scaled = (f64::from(w) * f64::from(diff)) as f32;
            let want = (f64::from(u) + f64::from(scaled)) as f32;
            assert_eq!(guide(u, c, w).to_bits(), want.to_bits());
        }
    }
}

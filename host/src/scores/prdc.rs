//! k-nearest-neighbour precision and recall (Kynkäänniemi et al., "Improved precision and
//! recall metric for assessing generative models", 2019) and density and coverage (Naeem et
//! al., "Reliable fidelity and diversity metrics for generative models", 2020), `k` = [`K`]:
//!
//! - the radius `r_i` of real (reference) point `i` is the distance to its `k`-th nearest
//!   other real point (a duplicate counts, at distance 0); `s_j` likewise among the fake
//!   (sample) points;
//! - precision = share of fake points `y_j` with `‖y_j − x_i‖ < r_i` for some `i`;
//! - recall = share of real points `x_i` with `‖x_i − y_j‖ < s_j` for some `j`;
//! - density = `Σ_j Σ_i 1[‖y_j − x_i‖ < r_i] / (k·M)`, `M` fake points;
//! - coverage = share of real points `i` with `‖x_i − y_j‖ < r_i` for some `j`.
//!
//! The balls are open (`<`), as in the reference implementation of Naeem et al. (the `prdc`
//! package), which takes the radius as the `(k+1)`-th smallest distance of a point
//! including its own 0 — the same as the `k`-th excluding it. All comparisons are of squared
//! distances computed by one f32 formula (see `tiles`); a comparison can flip only where a
//! distance is within `1.1e-6` relative of a radius.

use super::tiles::lane_min;

/// Neighbours that set a point's radius.
pub const K: usize = 5;

/// The [`K`] smallest squared distances seen so far, ascending (+∞ for none yet).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Nearest([f32; K]);

impl Nearest {
    pub(crate) const NONE: Nearest = Nearest([f32::INFINITY; K]);

    /// Takes in a tile's squared distances, lane `skip` (the point itself) left out. Which
    /// values are kept depends on the values only, not on the order they come in.
    #[inline(always)]
    pub(crate) fn add(&mut self, d2: &[f32], skip: Option<usize>) {
        // Past the first tiles few distances beat the k-th: one vector minimum rules most
        // tiles out.
        if lane_min(d2) >= self.0[K - 1] {
            return;
        }
        for (j, &v) in d2.iter().enumerate() {
            if v < self.0[K - 1] && Some(j) != skip {
                let mut at = K - 1;
                while at > 0 && self.0[at - 1] > v {
                    self.0[at] = self.0[at - 1];
                    at -= 1;
                }
                self.0[at] = v;
            }
        }
    }

    /// The squared radius: the `K`-th smallest squared distance.
    pub(crate) fn radius2(&self) -> f32 {
        self.0[K - 1]
    }
}

/// For real point `i` (squared radius `radius2`) against a tile of fake points (squared
/// distances `d2`, squared radii `fake_radius2`): marks in `hit` the fake points inside
/// `i`'s ball, and returns how many there are and how many fake balls hold `i`.
#[inline(always)]
pub(crate) fn ball_counts(
    d2: &[f32],
    radius2: f32,
    fake_radius2: &[f32],
    hit: &mut [bool],
) -> (u32, u32) {
    let (mut inside, mut within) = (0u32, 0u32);
    for ((&v, &s), h) in d2.iter().zip(fake_radius2).zip(hit) {
        let a = v < radius2;
        *h |= a;
        inside += u32::from(a);
        within += u32::from(v < s);
    }
    (inside, within)
}

//! The two kinds of pass over point pairs that the O(n·m) scores share: each tile of
//! squared distances feeds the energy distance, the MMD kernel sums and the k-NN radii or
//! ball counts at once, so every pair's distance is computed once per pass.
//!
//! - [`self_pass`] over the pairs of one set: the sums of distances (the diagonal adds 0),
//!   the sums of kernels without the diagonal, and each point's radius;
//! - [`cross_pass`] over real × fake pairs: the sums of distances and kernels and the ball
//!   counts, given both sets' radii.

use super::prdc::{Nearest, ball_counts};
use super::tiles::{Columns, self_lane, sweep};
use super::{Points, energy, mmd};

/// What a self pass gives: the sums over all ordered pairs, and every point's squared radius.
pub(crate) struct SelfSums {
    pub(crate) distance: f64,
    pub(crate) kernel: f64,
    pub(crate) radius2: Vec<f32>,
}

/// What a cross pass gives (real points `i`, fake points `j`).
pub(crate) struct CrossSums {
    pub(crate) distance: f64,
    pub(crate) kernel: f64,
    /// `Σ_i Σ_j 1[‖x_i − y_j‖ < r_i]`.
    pub(crate) inside: u64,
    /// Real points whose ball holds a fake point.
    pub(crate) covered: usize,
    /// Real points inside some fake point's ball.
    pub(crate) recalled: usize,
    /// Fake points inside some real point's ball.
    pub(crate) precise: usize,
}

/// One point's share of a self pass.
#[derive(Clone, Copy)]
struct SelfRow {
    distance: f64,
    kernel: f64,
    nearest: Nearest,
}

/// One real point's share of a cross pass.
#[derive(Clone, Copy, Default)]
struct CrossRow {
    distance: f64,
    kernel: f64,
    inside: u32,
    within: u32,
}

/// The pass over the pairs of `points` with kernel factor `gamma`.
pub(crate) fn self_pass(points: &Points, gamma: f32) -> SelfSums {
    let row = SelfRow {
        distance: 0.0,
        kernel: 0.0,
        nearest: Nearest::NONE,
    };
    let tasks = sweep(
        points,
        &Columns::new(points),
        |range| (range.start, vec![row; range.len()]),
        // Inlined into the task, which is compiled for AVX2 where the CPU has it.
        #[inline(always)]
        |(start, rows), i, first, d2| {
            let skip = self_lane(i, first, d2.len());
            let r = &mut rows[i - *start];
            r.distance += energy::distance_sum(d2) as f64;
            r.kernel += mmd::kernel_sum(d2, gamma, skip) as f64;
            r.nearest.add(d2, skip);
        },
    );
    let rows: Vec<&SelfRow> = tasks.iter().flat_map(|t| &t.1).collect();
    SelfSums {
        distance: rows.iter().map(|r| r.distance).sum(),
        kernel: rows.iter().map(|r| r.kernel).sum(),
        radius2: rows.iter().map(|r| r.nearest.radius2()).collect(),
    }
}

/// The pass over the pairs of `real` × `fake`, with their squared radii from [`self_pass`].
pub(crate) fn cross_pass(
    real: &Points,
    fake: &Points,
    gamma: f32,
    real_radius2: &[f32],
    fake_radius2: &[f32],
) -> CrossSums {
    let m = fake.len();
    let tasks = sweep(
        real,
        &Columns::new(fake),
        |range| {
            (
                range.start,
                vec![CrossRow::default(); range.len()],
                vec![false; m],
            )
        },
        #[inline(always)]
        |(start, rows, hit), i, first, d2| {
            let r = &mut rows[i - *start];
            r.distance += energy::distance_sum(d2) as f64;
            r.kernel += mmd::kernel_sum(d2, gamma, None) as f64;
            let columns = first..first + d2.len();
            let (inside, within) = ball_counts(
                d2,
                real_radius2[i],
                &fake_radius2[columns.clone()],
                &mut hit[columns],
            );
            r.inside += inside;
            r.within += within;
        },
    );
    let rows: Vec<&CrossRow> = tasks.iter().flat_map(|t| &t.1).collect();
    // A fake point is precise if any task's real points hold it: an OR, exact in any order.
    let mut hit = vec![false; m];
    for task in &tasks {
        for (h, &t) in hit.iter_mut().zip(&task.2) {
            *h |= t;
        }
    }
    CrossSums {
        distance: rows.iter().map(|r| r.distance).sum(),
        kernel: rows.iter().map(|r| r.kernel).sum(),
        inside: rows.iter().map(|r| u64::from(r.inside)).sum(),
        covered: rows.iter().filter(|r| r.inside > 0).count(),
        recalled: rows.iter().filter(|r| r.within > 0).count(),
        precise: hit.iter().filter(|&&h| h).count(),
    }
}

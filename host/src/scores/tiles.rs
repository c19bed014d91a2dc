//! The pairwise engine of the O(n·m) scores: squared distances from every row point to every
//! column point, a tile of [`WIDTH`] columns at a time, handed to a visitor that folds them
//! into per-row state (sums, nearest neighbours, ball counts) — one pass shares a tile among
//! all the scores that need it.
//!
//! Distances are f32, `Σ_k (x_k − y_k)²` on differences (not `‖x‖² + ‖y‖² − 2x·y`, whose
//! cancellation loses everything for near points far from the origin): for `d ≤ 16`
//! coordinates the relative error of a squared distance is below `(d + 2)·2⁻²⁴ ≤ 1.1e-6`,
//! and in practice ~1e-7 (the roundings are not all one way). The points are first scaled by
//! a power of two (exact) so that the largest coordinate lies in [1, 2): squared distances
//! neither overflow (coordinates up to `f32::MAX`) nor underflow (coordinates of 1e-30).
//!
//! Determinism: the rows are split into tasks of a fixed [`ROWS`] rows, whatever the number
//! of threads; each task visits its rows' tiles in column order, every lane sum
//! ([`lane_sum`]) adds in one fixed order, and callers add the per-row results in row order.
//! Every operation is a plain IEEE one (Rust never fuses a multiply and an add), so the AVX2
//! build of a task and the portable one give the same bits too.

use std::ops::Range;

use rayon::prelude::*;

use super::Points;

/// Columns per tile: 64 f32 squared distances are 8 AVX2 registers of accumulators.
pub(crate) const WIDTH: usize = 64;
/// Rows per parallel task: fixed, so how the work is split never depends on the threads;
/// a tile (≤ 4 KiB) stays in L1 while a task's 64 rows pass over it.
const ROWS: usize = 64;
/// Lanes of the fixed-order sums (one AVX2 register of f32).
const LANES: usize = 8;

/// The power of two that brings the largest coordinate of `sets` into [1, 2) (1 when every
/// coordinate is 0).
pub(crate) fn unit_scale(sets: &[&Points]) -> f64 {
    let max = sets
        .iter()
        .flat_map(|p| p.values())
        .fold(0.0f32, |m, v| m.max(v.abs()));
    if max == 0.0 {
        return 1.0;
    }
    // The binary exponent of `max`, read from its f64 form (normal even when `max` is a
    // subnormal f32); 2^−e is exact in f64 for every f32's exponent.
    let exponent = (((max as f64).to_bits() >> 52) & 0x7ff) as i32 - 1023;
    2f64.powi(-exponent)
}

/// Column points packed a tile at a time: tile `t` holds, for each coordinate `k`, the
/// `k`-th coordinates of its [`WIDTH`] points side by side (0 past the last point), so that
/// one row's distances to a whole tile are [`WIDTH`]-wide vector operations.
pub(crate) struct Columns {
    dim: usize,
    len: usize,
    packed: Vec<f32>,
}

impl Columns {
    pub(crate) fn new(points: &Points) -> Self {
        let (dim, len) = (points.dim(), points.len());
        let mut packed = vec![0.0; len.div_ceil(WIDTH) * dim * WIDTH];
        for (j, row) in points.rows().enumerate() {
            let tile = &mut packed[(j / WIDTH) * dim * WIDTH..][..dim * WIDTH];
            for (k, &v) in row.iter().enumerate() {
                tile[k * WIDTH + j % WIDTH] = v;
            }
        }
        Self { dim, len, packed }
    }
}

/// Runs `visit(state, row, first, d2)` for every row of `rows` and every tile of `cols`:
/// `d2[j]` is the squared distance from row point `row` to column point `first + j`. The rows
/// are split into tasks of [`ROWS`]; `start(range)` makes a task's state, and the states
/// come back in row order. `rows` and `cols` must have the same width.
pub(crate) fn sweep<S, F, V>(rows: &Points, cols: &Columns, start: F, visit: V) -> Vec<S>
where
    S: Send,
    F: Fn(Range<usize>) -> S + Sync,
    V: Fn(&mut S, usize, usize, &[f32]) + Sync,
{
    let n = rows.len();
    (0..n.div_ceil(ROWS))
        .into_par_iter()
        .map(|task| {
            let range = task * ROWS..((task + 1) * ROWS).min(n);
            let mut state = start(range.clone());
            run_task(rows, cols, range, &mut state, &visit);
            state
        })
        .collect()
}

/// One task, compiled for AVX2 where the CPU has it: the default x86-64 target has SSE2
/// alone, and the tile loops vectorise twice as wide with AVX2.
fn run_task<S, V: Fn(&mut S, usize, usize, &[f32])>(
    rows: &Points,
    cols: &Columns,
    range: Range<usize>,
    state: &mut S,
    visit: &V,
) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            return unsafe { run_task_avx2(rows, cols, range, state, visit) };
        }
    }
    run_task_impl(rows, cols, range, state, visit)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn run_task_avx2<S, V: Fn(&mut S, usize, usize, &[f32])>(
    rows: &Points,
    cols: &Columns,
    range: Range<usize>,
    state: &mut S,
    visit: &V,
) {
    run_task_impl(rows, cols, range, state, visit)
}

#[inline(always)]
fn run_task_impl<S, V: Fn(&mut S, usize, usize, &[f32])>(
    rows: &Points,
    cols: &Columns,
    range: Range<usize>,
    state: &mut S,
    visit: &V,
) {
    let mut d2 = [0.0f32; WIDTH];
    for (t, tile) in cols.packed.chunks_exact(cols.dim * WIDTH).enumerate() {
        let first = t * WIDTH;
        let width = (cols.len - first).min(WIDTH);
        for i in range.clone() {
            tile_distances(rows.row(i), tile, &mut d2);
            visit(state, i, first, &d2[..width]);
        }
    }
}

/// Squared distances from `x` to the [`WIDTH`] points of a packed tile, coordinate by
/// coordinate in order.
#[inline(always)]
fn tile_distances(x: &[f32], tile: &[f32], out: &mut [f32; WIDTH]) {
    let mut acc = [0.0f32; WIDTH];
    for (&xk, column) in x.iter().zip(tile.chunks_exact(WIDTH)) {
        for (a, &c) in acc.iter_mut().zip(column) {
            let t = xk - c;
            *a += t * t;
        }
    }
    *out = acc;
}

/// The sum of at most [`WIDTH`] values in one fixed order: lane `l` adds values `l, l + 8,
/// …` in turn, then the lanes pairwise. Relative error below `10·2⁻²⁴` of the sum of the
/// magnitudes (at most 8 additions per lane, 3 levels of pairs).
#[inline(always)]
pub(crate) fn lane_sum(values: &[f32]) -> f32 {
    let mut lanes = [0.0f32; LANES];
    let mut chunks = values.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (l, &v) in lanes.iter_mut().zip(chunk) {
            *l += v;
        }
    }
    for (l, &v) in lanes.iter_mut().zip(chunks.remainder()) {
        *l += v;
    }
    let [a, b, c, d, e, f, g, h] = lanes;
    ((a + e) + (c + g)) + ((b + f) + (d + h))
}

/// The least of at most [`WIDTH`] values (+∞ for none), lane by lane like [`lane_sum`].
#[inline(always)]
pub(crate) fn lane_min(values: &[f32]) -> f32 {
    let min = |a: f32, b: f32| if b < a { b } else { a };
    let mut lanes = [f32::INFINITY; LANES];
    let mut chunks = values.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (l, &v) in lanes.iter_mut().zip(chunk) {
            *l = min(*l, v);
        }
    }
    for (l, &v) in lanes.iter_mut().zip(chunks.remainder()) {
        *l = min(*l, v);
    }
    lanes.into_iter().fold(f32::INFINITY, min)
}

/// The lane of `row` in the tile that starts at column `first` and holds `width` columns,
/// if it is there: a point's distance to itself, which the self-pairs leave out.
#[inline(always)]
pub(crate) fn self_lane(row: usize, first: usize, width: usize) -> Option<usize> {
    row.checked_sub(first).filter(|&j| j < width)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pair_is_visited_once_with_its_squared_distance() {
        // 130 columns: two full tiles and a partial one; 70 rows: a full task and a part.
        let make = |n: usize, dim: usize, salt: f32| {
            let values = (0..n * dim)
                .map(|v| (v as f32 * 0.37 + salt).sin() * 3.0)
                .collect();
            Points::new(dim, values).unwrap()
        };
        let (x, y) = (make(70, 3, 0.0), make(130, 3, 1.0));
        let tasks = sweep(
            &x,
            &Columns::new(&y),
            |range| (range.start, vec![vec![f32::NAN; 130]; range.len()]),
            |(start, seen), i, first, d2| {
                for (j, &v) in d2.iter().enumerate() {
                    seen[i - *start][first + j] = v;
                }
            },
        );
        let seen: Vec<&Vec<f32>> = tasks.iter().flat_map(|t| &t.1).collect();
        for (i, row) in seen.iter().enumerate() {
            for (j, &v) in row.iter().enumerate() {
                let exact: f64 = (0..3)
                    .map(|k| (x.row(i)[k] as f64 - y.row(j)[k] as f64).powi(2))
                    .sum();
                assert!((v as f64 - exact).abs() <= 1e-6 * exact, "{i} {j}");
            }
        }
        assert_eq!(seen.len(), 70);
    }

    #[test]
    fn lane_sum_and_min_take_partial_tiles() {
        let v: Vec<f32> = (1..=13).map(|i| i as f32).collect();
        assert_eq!(lane_sum(&v), 91.0);
        assert_eq!(lane_min(&v[3..]), 4.0);
        assert_eq!(lane_min(&[]), f32::INFINITY);
        assert_eq!(self_lane(70, 64, 64), Some(6));
        assert_eq!(self_lane(3, 64, 64), None);
        assert_eq!(self_lane(130, 64, 64), None);
    }

    #[test]
    fn the_scale_is_a_power_of_two_putting_the_largest_coordinate_in_one_to_two() {
        let p = Points::new(1, vec![-3e38, 1.0]).unwrap();
        let s = unit_scale(&[&p]);
        assert!((1.0..2.0).contains(&(3e38 * s)), "{s}");
        let tiny = Points::new(1, vec![1e-40]).unwrap();
        assert!((1.0..2.0).contains(&(1e-40f32 as f64 * unit_scale(&[&tiny]))));
        assert_eq!(unit_scale(&[&Points::new(1, vec![0.0]).unwrap()]), 1.0);
    }
}

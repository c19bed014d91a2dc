//! The integer kernels, instantiated per SIMD path by simd.rs inside `#[target_feature]`
//! functions (everything here is `#[inline(always)]`, plain loops, as in float/kernel.rs).
//!
//! Lanes = samples, as the float tiles: a tile of `S` vectors of samples runs every step
//! together through the core's chain (its state and reverse step stay f32, on the float
//! lanes `L::F`). Activations are stored as pairs of units (packed.rs), `[L; S]` per pair, so
//! a dense layer's inner loop loads `S` activation pairs and broadcasts `J` weight pairs per
//! input pair into `S·J` register accumulators, one `vpmaddwd` (or `vpdpwssd`) each: 2·LANES
//! multiply-adds per instruction. The sums are exact, so their order is free; everything per
//! element after them (requantization, GELU, residual) is the specification's fixed sequence
//! (vectors.rs), in `QModel::forward`'s layer order. The time embedding is the core's, once
//! per step, shared by all tiles.

use tinyddpm_core::quant::{from_i16, to_i16};
use tinyddpm_core::units::MAX_DIM;
use tinyddpm_core::{NoiseStream, PredictNoiseIn, Step};

use super::packed::{QGelu, QLayers, QPacked, pair};
use super::vectors::ILane;
use crate::batch::chain::{Kept, run_chain};
use crate::batch::float::vectors::{Lane, Tile};

/// What a layer does with its sums, per pair of outputs `j`, `j + 1` (`j` even): a trait with
/// inlined methods, not a closure, because a closure is compiled without the caller's target
/// feature and its vector operations are left as calls when it is not inlined.
trait Finish<L: ILane, const S: usize> {
    /// The sums of outputs `j` and `j + 1`, for each of `S` sample vectors.
    fn finish(&mut self, j: usize, lo: &[L; S], hi: &[L; S]);
}

/// `acc_j = b_j + Σ_k w_jk·x_k` for a tile: `x` has one row of `S` pair vectors per input
/// pair; `out` receives the sums once per output pair holding a real output.
#[inline(always)]
fn dense<L: ILane, const S: usize, const J: usize>(
    layer: &QPacked,
    x: &[[L; S]],
    out: &mut impl Finish<L, S>,
) {
    assert!(layer.width == J && J.is_multiple_of(2) && x.len() == layer.pairs);
    let blocks = layer.weight.chunks_exact(layer.pairs * J);
    for (block, (w, b)) in blocks.zip(layer.bias.chunks_exact(J)).enumerate() {
        let mut acc = [[L::splat(0); S]; J];
        for (a, &bj) in acc.iter_mut().zip(b) {
            *a = [L::splat(bj); S];
        }
        for (xp, wp) in x.iter().zip(w.chunks_exact(J)) {
            for (a, &wj) in acc.iter_mut().zip(wp) {
                let wj = L::splat(wj);
                for (a, &xs) in a.iter_mut().zip(xp) {
                    *a = a.dot2(xs, wj);
                }
            }
        }
        for jj in (0..J).step_by(2) {
            let j = block * J + jj;
            if j < layer.outputs {
                out.finish(j, &acc[jj], &acc[jj + 1]);
            }
        }
    }
}

/// The input layer into the stream: `h = sat16(GELU(requantize(acc)) + temb)`.
struct IntoStream<'a, L, const S: usize> {
    layer: &'a QPacked,
    act: &'a QGelu,
    temb: &'a [i16],
    h: &'a mut [[L; S]],
}

impl<L: ILane, const S: usize> Finish<L, S> for IntoStream<'_, L, S> {
    #[inline(always)]
    fn finish(&mut self, j: usize, lo: &[L; S], hi: &[L; S]) {
        let (qlo, qhi) = (&self.layer.requant[j], &self.layer.requant[j + 1]);
        let (tlo, thi) = (
            L::splat(self.temb[j].into()),
            L::splat(self.temb[j + 1].into()),
        );
        let h = &mut self.h[j / 2];
        for s in 0..S {
            let (l, hh) = L::gelu2(lo[s].requantize(qlo), hi[s].requantize(qhi), self.act);
            h[s] = L::pack(l.sat16().add(tlo), hh.sat16().add(thi));
        }
    }
}

/// A block's first layer: `v = GELU(requantize(acc))`.
struct Inner<'a, L, const S: usize> {
    layer: &'a QPacked,
    act: &'a QGelu,
    v: &'a mut [[L; S]],
}

impl<L: ILane, const S: usize> Finish<L, S> for Inner<'_, L, S> {
    #[inline(always)]
    fn finish(&mut self, j: usize, lo: &[L; S], hi: &[L; S]) {
        let (qlo, qhi) = (&self.layer.requant[j], &self.layer.requant[j + 1]);
        let v = &mut self.v[j / 2];
        for s in 0..S {
            let (l, h) = L::gelu2(lo[s].requantize(qlo), hi[s].requantize(qhi), self.act);
            v[s] = L::pack(l, h);
        }
    }
}

/// A block's second layer and the residual:
/// `h = requantize(GELU(requantize(acc)) + h + temb, 1/√2)`, the old `h` read from the
/// same pair it is written to.
struct Residual<'a, L, const S: usize> {
    layer: &'a QPacked,
    act: &'a QGelu,
    temb: &'a [i16],
    h: &'a mut [[L; S]],
}

impl<L: ILane, const S: usize> Finish<L, S> for Residual<'_, L, S> {
    #[inline(always)]
    fn finish(&mut self, j: usize, lo: &[L; S], hi: &[L; S]) {
        let (qlo, qhi) = (&self.layer.requant[j], &self.layer.requant[j + 1]);
        let (tlo, thi) = (
            L::splat(self.temb[j].into()),
            L::splat(self.temb[j + 1].into()),
        );
        let h = &mut self.h[j / 2];
        for s in 0..S {
            let (l, hh) = L::gelu2(lo[s].requantize(qlo), hi[s].requantize(qhi), self.act);
            let l = l.sat16().add(h[s].low()).add(tlo);
            let hh = hh.sat16().add(h[s].high()).add(thi);
            h[s] = L::pack(l.residual(), hh.residual());
        }
    }
}

/// The output layer: ε̂'s coordinates requantized, a pair at a time (the layer is blocked by
/// two outputs), coordinate `c` written to `eps[c·stride ..]` (i32 lanes, sample vector `s`
/// at `s·LANES` within it); an odd D's last pair drops its padding output.
struct Output<'a> {
    layer: &'a QPacked,
    eps: &'a mut [i32],
    stride: usize,
}

impl<L: ILane, const S: usize> Finish<L, S> for Output<'_> {
    #[inline(always)]
    fn finish(&mut self, j: usize, lo: &[L; S], hi: &[L; S]) {
        for (c, a) in [(j, lo), (j + 1, hi)] {
            if c < self.layer.outputs {
                let q = &self.layer.requant[c];
                let eps = &mut self.eps[c * self.stride..];
                for (s, a) in a.iter().enumerate() {
                    a.requantize(q).sat16().store(&mut eps[s * L::LANES..]);
                }
            }
        }
    }
}

/// Scratch of one tile: the stream `h` and a block's inner activations `v`, as pairs, and the
/// f32 boundary's lanes (`ints` holds D coordinates of `S·LANES` lanes each).
#[derive(Clone, Debug)]
pub(crate) struct QTileBuffers<L, const S: usize> {
    h: Vec<[L; S]>,
    v: Vec<[L; S]>,
    ints: Vec<i32>,
    floats: Vec<f32>,
}

impl<L: ILane, const S: usize> QTileBuffers<L, S> {
    /// Buffers for `pairs` pairs of hidden units and points of `dim` coordinates.
    #[inline(always)]
    pub fn new(pairs: usize, dim: usize) -> Self {
        Self {
            h: vec![[L::splat(0); S]; pairs],
            v: vec![[L::splat(0); S]; pairs],
            ints: vec![0; dim * S * L::LANES],
            floats: vec![0.0; S * L::LANES],
        }
    }
}

/// ε̂ for a tile into `eps`: `x[c].0[s]` is coordinate `c` of sample vector `s` (D =
/// `x.len()`, the model's); `temb` is the step's time embedding, padded to whole pairs.
/// `QModel::predict_noise`, per lane.
#[inline(always)]
pub(crate) fn predict_noise_tile<L: ILane, const S: usize, const J: usize>(
    layers: &QLayers,
    x: &[Tile<L::F, S>],
    temb: &[i16],
    buf: &mut QTileBuffers<L, S>,
    eps: &mut [Tile<L::F, S>],
) {
    let QTileBuffers { h, v, ints, floats } = buf;
    let (lanes, stride) = (L::LANES, S * L::LANES);
    // Boundary in, per sample (the core's `to_i16`): coordinates 2p and 2p + 1 make input
    // pair p, an odd D's last pair a zero high half (its weight is zero too).
    let mut xq = [[L::splat(0); S]; MAX_DIM.div_ceil(2)];
    for (p, coords) in x.chunks(2).enumerate() {
        let pair_lanes = &mut ints[..stride];
        for (c, xc) in coords.iter().enumerate() {
            for (s, xs) in xc.0.iter().enumerate() {
                xs.store(&mut floats[s * lanes..]);
            }
            for (q, &f) in pair_lanes.iter_mut().zip(floats.iter()) {
                let v = to_i16(f, layers.input_exp);
                *q = if c == 0 {
                    pair(v, 0)
                } else {
                    pair(*q as i16, v)
                };
            }
        }
        for (s, q) in xq[p].iter_mut().enumerate() {
            *q = L::load(&pair_lanes[s * lanes..]);
        }
    }
    let input = &mut IntoStream {
        layer: &layers.input,
        act: &layers.input_act,
        temb,
        h,
    };
    dense::<L, S, J>(&layers.input, &xq[..x.len().div_ceil(2)], input);
    for block in &layers.blocks {
        let inner = &mut Inner {
            layer: &block.first,
            act: &block.act,
            v,
        };
        dense::<L, S, J>(&block.first, h, inner);
        let residual = &mut Residual {
            layer: &block.second,
            act: &block.second_act,
            temb,
            h,
        };
        dense::<L, S, J>(&block.second, v, residual);
    }
    // Boundary out, per sample (the core's `from_i16`).
    let out = &mut Output {
        layer: &layers.output,
        eps: ints,
        stride,
    };
    dense::<L, S, 2>(&layers.output, h, out);
    for (e, q) in eps.iter_mut().zip(ints.chunks_exact(stride)) {
        for (f, &q) in floats.iter_mut().zip(q) {
            *f = from_i16(q as i16, layers.output_exp);
        }
        for (s, e) in e.0.iter_mut().enumerate() {
            *e = L::F::load(&floats[s * lanes..]);
        }
    }
}

/// The packed integer model of one tile with every step's time embedding (`tembs[k·hidden
/// ..]` is step `k`'s, `hidden` the padded width): what the core's chain calls for ε̂.
struct QTileModel<'a, L, const S: usize, const J: usize> {
    layers: &'a QLayers,
    tembs: &'a [i16],
    hidden: usize,
    buf: QTileBuffers<L, S>,
}

impl<L: ILane, const S: usize, const J: usize> PredictNoiseIn<Tile<L::F, S>>
    for QTileModel<'_, L, S, J>
{
    #[inline(always)]
    fn predict_noise_in(
        &mut self,
        k: usize,
        _: &Step,
        x: &[Tile<L::F, S>],
        eps: &mut [Tile<L::F, S>],
    ) {
        let temb = &self.tembs[k * self.hidden..(k + 1) * self.hidden];
        predict_noise_tile::<L, S, J>(self.layers, x, temb, &mut self.buf, eps)
    }
}

/// Runs every step for up to `S·LANES` samples through the core's chain ([`run_chain`]);
/// `tembs` holds step `k`'s time embedding at `k·hidden`, `hidden` the hidden width rounded
/// up to whole pairs.
#[inline(always)]
pub(crate) fn sample_tile<L: ILane, const S: usize, const J: usize>(
    layers: &QLayers,
    (steps, tembs, hidden): (&[Step], &[i16], usize),
    x: &mut [f32],
    noise: &mut [NoiseStream],
    kept: Option<&mut Kept<'_>>,
) {
    let d = layers.dim();
    let model = QTileModel::<L, S, J> {
        layers,
        tembs,
        hidden,
        buf: QTileBuffers::new(hidden / 2, d),
    };
    run_chain(model, (steps, d), x, noise, kept);
}

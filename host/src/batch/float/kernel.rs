//! The generic kernels, instantiated per SIMD path by simd.rs inside `#[target_feature]`
//! functions (everything here is `#[inline(always)]` so it compiles with that feature).
//! Plain loops, not `array::map` / `from_fn`: their closures are separate functions compiled
//! without the target feature, which would turn every vector operation into a call.
//!
//! Throughput (lanes = samples): a tile of `S` vectors of samples runs every step together.
//! Activations are stored k-major (`[V; S]` per hidden unit), so a dense layer's inner loop
//! loads `S` vectors and broadcasts `J` weights per k into `S·J` register accumulators. Each
//! accumulator is one output of one sample-vector: `acc = b; acc = acc + w·x` for k ascending,
//! exactly the core's `Linear::forward` per lane.
//!
//! Latency (batch 1, lanes = outputs): one sample, `NV` vectors of consecutive outputs per
//! block, each lane again the core's sequential sum.
//!
//! The model's wiring is the core's own lane-generic code: `gelu`, `input_unit` and
//! `residual_unit`, in `Model::predict_noise`'s layer order.

use tinyddpm_core::condition::guide;
use tinyddpm_core::gelu::gelu;
use tinyddpm_core::model::{input_unit, residual_unit};
use tinyddpm_core::units::MAX_DIM;
use tinyddpm_core::{NoiseStream, PredictNoiseIn, Step};

use super::packed::{Layers, Packed};
use super::vectors::{Lane, Tile};
use crate::batch::chain::{Kept, run_chain};

/// `y = W·x + b` for a tile: `x` has `I` rows of `S` sample vectors; `store(j, y_j)` receives
/// each real output once.
#[inline(always)]
fn dense_tile<V: Lane, const S: usize, const J: usize>(
    layer: &Packed,
    x: &[[V; S]],
    mut store: impl FnMut(usize, [V; S]),
) {
    assert!(layer.width == J && x.len() == layer.inputs);
    let blocks = layer.weight.chunks_exact(layer.inputs * J);
    for (block, (w, b)) in blocks.zip(layer.bias.chunks_exact(J)).enumerate() {
        let mut acc = [[V::splat(0.0); S]; J];
        for (a, &bj) in acc.iter_mut().zip(b) {
            *a = [V::splat(bj); S];
        }
        for (xk, wk) in x.iter().zip(w.chunks_exact(J)) {
            for (a, &wj) in acc.iter_mut().zip(wk) {
                let wj = V::splat(wj);
                for (a, &xs) in a.iter_mut().zip(xk) {
                    *a = *a + wj * xs;
                }
            }
        }
        for (jj, a) in acc.into_iter().enumerate() {
            let j = block * J + jj;
            if j < layer.outputs {
                store(j, a);
            }
        }
    }
}

/// Outputs per block of the output layer (D of them): ε̂'s coordinates in pairs, each
/// pair one pass over the residual stream.
pub(crate) const OUT_J: usize = 2;

/// Scratch activations of one tile: `h` (the residual stream) and `u` (inside a block).
pub(crate) struct TileBuffers<V, const S: usize> {
    h: Vec<[V; S]>,
    u: Vec<[V; S]>,
}

impl<V: Lane, const S: usize> TileBuffers<V, S> {
    /// Buffers for `hidden` units.
    #[inline(always)]
    pub fn new(hidden: usize) -> Self {
        Self {
            h: vec![[V::splat(0.0); S]; hidden],
            u: vec![[V::splat(0.0); S]; hidden],
        }
    }
}

/// ε̂ for a tile into `eps`: `x[c].0[s]` is coordinate `c` of sample vector `s` (D = `x.len()`
/// coordinates, as many as the input layer takes); `temb` is the step's time embedding. Same
/// operations as `Model::predict_noise`, per lane.
#[inline(always)]
pub(crate) fn predict_noise_tile<V: Lane, const S: usize, const J: usize>(
    layers: &Layers,
    x: &[Tile<V, S>],
    temb: &[f32],
    buf: &mut TileBuffers<V, S>,
    eps: &mut [Tile<V, S>],
) {
    let TileBuffers { h, u } = buf;
    let mut rows = [[V::splat(0.0); S]; MAX_DIM];
    for (r, xc) in rows.iter_mut().zip(x) {
        *r = xc.0;
    }
    dense_tile::<V, S, J>(&layers.input, &rows[..x.len()], |j, a| {
        let t = V::splat(temb[j]);
        for (hs, v) in h[j].iter_mut().zip(a) {
            *hs = input_unit(v, t);
        }
    });
    for (first, second) in &layers.blocks {
        dense_tile::<V, S, J>(first, h, |j, a| {
            for (us, v) in u[j].iter_mut().zip(a) {
                *us = gelu(v);
            }
        });
        dense_tile::<V, S, J>(second, u, |j, a| {
            let t = V::splat(temb[j]);
            for (hs, v) in h[j].iter_mut().zip(a) {
                *hs = residual_unit(v, *hs, t);
            }
        });
    }
    dense_tile::<V, S, OUT_J>(&layers.output, h, |j, a| eps[j] = Tile(a));
}

/// The packed model of one tile, with every step's time embedding computed beforehand
/// (`tembs[k·H ..]` is step `k`'s): what the core's chain calls for ε̂. Guided, it runs its
/// network twice a step — the class's embeddings, then ∅'s — and combines the two per lane
/// by the core's [`guide`] (a weight of two evaluations: `Float::new` plans by the core's
/// `Guidance::evaluations`). One call of the network in a loop, not the core's
/// `Guided` over two of these: a second call site of `predict_noise_tile` leaves the
/// closures of its layers out of line, compiled without the path's target feature, and
/// made every tile 11× slower.
struct TileModel<'a, V, const S: usize, const J: usize> {
    layers: &'a Layers,
    tembs: &'a [f32],
    /// ∅'s embeddings and the weight w, for a guided tile.
    guided: Option<(&'a [f32], f32)>,
    buf: TileBuffers<V, S>,
}

impl<V: Lane, const S: usize, const J: usize> PredictNoiseIn<Tile<V, S>>
    for TileModel<'_, V, S, J>
{
    #[inline(always)]
    fn predict_noise_in(&mut self, k: usize, _: &Step, x: &[Tile<V, S>], eps: &mut [Tile<V, S>]) {
        let hidden = self.layers.input.outputs;
        let at = k * hidden..(k + 1) * hidden;
        let mut cond = [Tile([V::splat(0.0); S]); MAX_DIM];
        let cond = &mut cond[..eps.len()];
        let passes = 1 + usize::from(self.guided.is_some());
        for pass in 0..passes {
            // Guided: the class's prediction into `cond`, then ∅'s into `eps`.
            let (tembs, out) = match (pass, self.guided) {
                (0, Some(_)) => (self.tembs, &mut *cond),
                (_, Some((unconditional, _))) => (unconditional, &mut *eps),
                (_, None) => (self.tembs, &mut *eps),
            };
            let temb = &tembs[at.clone()];
            predict_noise_tile::<V, S, J>(self.layers, x, temb, &mut self.buf, out);
        }
        if let Some((_, weight)) = self.guided {
            for (e, &c) in eps.iter_mut().zip(cond.iter()) {
                *e = guide(*e, c, weight);
            }
        }
    }
}

/// What a tile runs: the steps, and every step's time embedding (`tembs[k·H ..]` is step
/// `k`'s) for the class asked for — with ∅'s and the weight w when the sample is guided
/// by two evaluations a step.
#[derive(Clone, Copy)]
pub(crate) struct Run<'a> {
    pub(crate) steps: &'a [Step],
    pub(crate) tembs: &'a [f32],
    pub(crate) guided: Option<(&'a [f32], f32)>,
}

/// Runs every step for up to `S·LANES` samples through the core's chain ([`run_chain`]),
/// with the embeddings of `run`, guided when it says so.
#[inline(always)]
pub(crate) fn sample_tile<V: Lane, const S: usize, const J: usize>(
    layers: &Layers,
    run: Run<'_>,
    x: &mut [f32],
    noise: &mut [NoiseStream],
    kept: Option<&mut Kept<'_>>,
) {
    let model = TileModel::<V, S, J> {
        layers,
        tembs: run.tembs,
        guided: run.guided,
        buf: TileBuffers::new(layers.input.outputs),
    };
    run_chain(model, (run.steps, layers.dim()), x, noise, kept);
}

/// `y = W·x + b` for one sample, lanes = outputs: `NV` vectors of outputs per block.
/// `finish(j0, acc)` maps the accumulator of outputs `j0 .. j0 + LANES` before it is stored to
/// `y[j0 ..]` (`y` covers the padded outputs).
#[inline(always)]
fn dense_batch1<V: Lane, const NV: usize>(
    layer: &Packed,
    x: &[f32],
    y: &mut [f32],
    finish: impl Fn(usize, V) -> V,
) {
    let width = NV * V::LANES;
    assert!(layer.width == width && x.len() >= layer.inputs);
    let blocks = layer.weight.chunks_exact(layer.inputs * width);
    for (block, ((w, b), y)) in blocks
        .zip(layer.bias.chunks_exact(width))
        .zip(y.chunks_exact_mut(width))
        .enumerate()
    {
        let mut acc = [V::splat(0.0); NV];
        for (v, a) in acc.iter_mut().enumerate() {
            *a = V::load(&b[v * V::LANES..]);
        }
        for (&xk, wk) in x[..layer.inputs].iter().zip(w.chunks_exact(width)) {
            let xk = V::splat(xk);
            for (v, a) in acc.iter_mut().enumerate() {
                *a = *a + V::load(&wk[v * V::LANES..]) * xk;
            }
        }
        for (v, a) in acc.into_iter().enumerate() {
            let j0 = block * width + v * V::LANES;
            finish(j0, a).store(&mut y[v * V::LANES..]);
        }
    }
}

/// Scratch for the batch-1 path, each buffer of the padded hidden (or output) length.
#[derive(Clone, Debug)]
pub(crate) struct Batch1Scratch {
    hidden: Vec<f32>,
    h: Vec<f32>,
    u: Vec<f32>,
    v: Vec<f32>,
    out: Vec<f32>,
}

impl Batch1Scratch {
    /// Buffers sized for `layers`.
    pub fn new(layers: &Layers) -> Self {
        let n = layers.input.bias.len();
        Self {
            hidden: vec![0.0; n],
            h: vec![0.0; n],
            u: vec![0.0; n],
            v: vec![0.0; n],
            out: vec![0.0; layers.output.bias.len()],
        }
    }
}

/// The time embedding for one `t_input`, lanes = outputs: the core's `Model::time_embedding`
/// per lane, written to `temb` (padded hidden length).
#[inline(always)]
pub(crate) fn time_embedding_batch1<V: Lane, const NV: usize>(
    layers: &Layers,
    t_input: f32,
    scratch: &mut Batch1Scratch,
    temb: &mut [f32],
) {
    let hidden = &mut scratch.hidden;
    dense_batch1::<V, NV>(&layers.time_in, &[t_input], hidden, |_, a| gelu(a));
    dense_batch1::<V, NV>(&layers.time_out, hidden, temb, |_, a| a);
}

/// ε̂ for one sample, lanes = outputs, into `eps` (D long); `temb` has the padded hidden
/// length.
#[inline(always)]
pub(crate) fn predict_noise_batch1<V: Lane, const NV: usize>(
    layers: &Layers,
    x: &[f32],
    temb: &[f32],
    scratch: &mut Batch1Scratch,
    eps: &mut [f32],
) {
    let Batch1Scratch { h, u, v, out, .. } = scratch;
    let t = |j0: usize| V::load(&temb[j0..]);
    dense_batch1::<V, NV>(&layers.input, x, h, |j0, a| input_unit(a, t(j0)));
    for (first, second) in &layers.blocks {
        dense_batch1::<V, NV>(first, h, u, |_, a| gelu(a));
        let h_old = &*h;
        dense_batch1::<V, NV>(second, u, v, |j0, a| {
            residual_unit(a, V::load(&h_old[j0..]), t(j0))
        });
        core::mem::swap(h, v);
    }
    dense_batch1::<V, 1>(&layers.output, h, out, |_, a| a);
    eps.copy_from_slice(&out[..eps.len()]);
}

//! The core's model as a batched computation: forward pass keeping what the backward pass
//! needs, and the hand-written backward pass of the MSE loss, for one chunk of a batch.
//!
//! Activations are row-major `[n × H]` matrices (one row per example); every `Linear` is a
//! matrix product with the PyTorch-layout weight read transposed in place. The forward maths
//! is the core's ([`tinyddpm_core::Model::predict_noise`]) with the time embedding computed
//! per row, since every example has its own t; only the order of the products' sums differs.
//!
//! ```text
//! forward                                     backward (ḡ = ∂loss/∂·)
//! e  = GELU(time_in(t))                       ē = time_outᵀ(t̄emb) ⊙ GELU'
//! temb = time_out(e)                          t̄emb = Σ_k s̄_k + h̄_0
//! h_0 = GELU(input(x)) + temb                 x̄-side: input grads from h̄_0 ⊙ GELU'
//! u = GELU(first_k(h_k))                      s̄ = h̄_{k+1}/√2;  v̄ = s̄ ⊙ GELU'
//! h_{k+1} = (GELU(second_k(u)) + h_k + temb)/√2   ū = second_kᵀ(v̄) ⊙ GELU';  h̄_k = s̄ + first_kᵀ(ū)
//! ε̂ = output(h_B);  loss = mean((ε̂ − ε)²)      ε̂̄ = 2(ε̂ − ε)/(D·batch)
//! ```
//! A run conditioned on classes adds row c of the class embedding E to each example's
//! `temb` (the core's `add_class`; c its label, or ∅'s row C when dropped), and E's
//! gradient is each example's t̄emb row added to row c, in example order.

use tinyddpm_core::condition::add_class;

use super::act::gelu_with_derivative;
use super::gemm::{View, gemm};
use super::layout::{Dense, Layout};
use super::profile::{Phase, time};
use crate::data::{Classes, Examples};

/// `h / √2` as the core and the notebook write it (a true division).
const SQRT_2: f32 = core::f32::consts::SQRT_2;

/// One chunk's examples, the forward pass's cache, scratch and the chunk's gradient.
pub(crate) struct Chunk {
    /// Index of this chunk's first example within the batch.
    pub first: usize,
    /// The examples (filled per step).
    pub examples: Examples,
    /// GELU(time_in(t)), `[n × H]`.
    time_act: Vec<f32>,
    /// Its GELU'.
    time_der: Vec<f32>,
    /// The time embedding, `[n × H]`.
    temb: Vec<f32>,
    /// GELU' of the input layer.
    input_der: Vec<f32>,
    /// h_0 … h_B.
    h: Vec<Vec<f32>>,
    /// GELU(first_k(h_k)) per block.
    u: Vec<Vec<f32>>,
    /// GELU' of each block's first layer.
    u_der: Vec<Vec<f32>>,
    /// GELU' of each block's second layer.
    v_der: Vec<Vec<f32>>,
    /// ε̂, then ∂loss/∂ε̂, `[n × D]`.
    out: Vec<f32>,
    /// ∂loss/∂h (scratch).
    dh: Vec<f32>,
    /// ∂loss/∂temb (scratch).
    dtemb: Vec<f32>,
    /// Scratch for the pre-activation gradients.
    dv: Vec<f32>,
    /// Scratch for the first layer's pre-activation gradient.
    du: Vec<f32>,
    /// ∂(chunk's share of the loss)/∂parameters, in the layout's order.
    pub grad: Vec<f32>,
}

impl Chunk {
    /// Storage for `n` examples starting at batch index `first`, of a run conditioned on
    /// `classes` (which the layout's class embedding must fit).
    pub fn new(lay: &Layout, first: usize, n: usize, classes: Option<Classes>) -> Self {
        let act = || vec![0.0f32; n * lay.hidden];
        let per_block = || (0..lay.blocks.len()).map(|_| act()).collect::<Vec<_>>();
        Self {
            first,
            examples: Examples::with_classes(n, lay.dim(), classes),
            time_act: act(),
            time_der: act(),
            temb: act(),
            input_der: act(),
            h: (0..=lay.blocks.len()).map(|_| act()).collect(),
            u: per_block(),
            u_der: per_block(),
            v_der: per_block(),
            out: vec![0.0; lay.dim() * n],
            dh: act(),
            dtemb: act(),
            dv: act(),
            du: act(),
            grad: vec![0.0; lay.len],
        }
    }

    /// Rows in this chunk.
    pub fn len(&self) -> usize {
        self.examples.len()
    }

    /// The predicted noise after [`Chunk::forward`], `[n × D]`.
    pub fn prediction(&self) -> &[f32] {
        &self.out
    }

    /// Forward pass over the chunk's examples with parameters `p`; keeps the cache and ε̂.
    pub fn forward(&mut self, p: &[f32], lay: &Layout) {
        self.forward_impl(p, lay);
    }

    /// Forward and backward pass: fills [`Chunk::grad`] with the gradient of this chunk's
    /// share of `Σ(ε̂ − ε)²/count`; returns the chunk's sum of squared errors and whether
    /// every gradient is finite.
    pub fn forward_backward(&mut self, p: &[f32], lay: &Layout, count: usize) -> (f64, bool) {
        // The elementwise loops (GELU, its derivative, residual sums) vectorise across the
        // batch only where wide vector instructions are enabled; the default x86-64 target
        // has SSE2 alone, so pick the widest unit at run time.
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F (checked just above).
                return unsafe { self.forward_backward_avx512(p, lay, count) };
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2 (checked just above).
                return unsafe { self.forward_backward_avx2(p, lay, count) };
            }
        }
        self.forward_backward_impl(p, lay, count)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn forward_backward_avx512(&mut self, p: &[f32], lay: &Layout, count: usize) -> (f64, bool) {
        self.forward_backward_impl(p, lay, count)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn forward_backward_avx2(&mut self, p: &[f32], lay: &Layout, count: usize) -> (f64, bool) {
        self.forward_backward_impl(p, lay, count)
    }

    #[inline(always)]
    fn forward_impl(&mut self, p: &[f32], lay: &Layout) {
        let n = self.len();
        let ex = &self.examples;
        linear(p, lay.time_in, n, &ex.t_input, &mut self.time_act);
        gelu_with_derivative(&mut self.time_act, &mut self.time_der);
        linear(p, lay.time_out, n, &self.time_act, &mut self.temb);
        if let Some(rows) = lay.core.class_embedding() {
            let h = lay.hidden;
            for (temb, &c) in self.temb.chunks_exact_mut(h).zip(&ex.class) {
                add_class(temb, &p[rows.start + c as usize * h..][..h]);
            }
        }
        linear(p, lay.input, n, &ex.x_t, &mut self.h[0]);
        gelu_with_derivative(&mut self.h[0], &mut self.input_der);
        add_assign(&mut self.h[0], &self.temb);
        for (k, [first, second]) in lay.blocks.iter().enumerate() {
            let (done, rest) = self.h.split_at_mut(k + 1);
            let (h, next) = (&done[k], &mut rest[0]);
            linear(p, *first, n, h, &mut self.u[k]);
            gelu_with_derivative(&mut self.u[k], &mut self.u_der[k]);
            linear(p, *second, n, &self.u[k], next);
            gelu_with_derivative(next, &mut self.v_der[k]);
            for ((v, &h), &t) in next.iter_mut().zip(h).zip(&self.temb) {
                *v = (*v + h + t) / SQRT_2;
            }
        }
        linear(p, lay.output, n, &self.h[lay.blocks.len()], &mut self.out);
    }

    #[inline(always)]
    fn forward_backward_impl(&mut self, p: &[f32], lay: &Layout, count: usize) -> (f64, bool) {
        self.forward_impl(p, lay);
        let n = self.len();
        let scale = 2.0 / count as f32;
        let mut sse = 0.0f64;
        for (o, &e) in self.out.iter_mut().zip(&self.examples.noise) {
            let diff = *o - e;
            sse += f64::from(diff * diff);
            *o = diff * scale;
        }
        let g = &mut self.grad;
        let last = &self.h[lay.blocks.len()];
        param_grads(g, lay.output, n, last, &self.out);
        input_grad(p, lay.output, n, &self.out, 0.0, &mut self.dh);
        self.dtemb.fill(0.0);
        for (k, [first, second]) in lay.blocks.iter().enumerate().rev() {
            for d in &mut self.dh {
                *d /= SQRT_2;
            }
            add_assign(&mut self.dtemb, &self.dh);
            mul_into(&mut self.dv, &self.dh, &self.v_der[k]);
            param_grads(g, *second, n, &self.u[k], &self.dv);
            input_grad(p, *second, n, &self.dv, 0.0, &mut self.du);
            mul_assign(&mut self.du, &self.u_der[k]);
            param_grads(g, *first, n, &self.h[k], &self.du);
            input_grad(p, *first, n, &self.du, 1.0, &mut self.dh);
        }
        add_assign(&mut self.dtemb, &self.dh);
        if let Some(rows) = lay.core.class_embedding() {
            let (h, embedding) = (lay.hidden, &mut g[rows]);
            embedding.fill(0.0);
            for (dtemb, &c) in self.dtemb.chunks_exact(h).zip(&self.examples.class) {
                add_assign(&mut embedding[c as usize * h..][..h], dtemb);
            }
        }
        mul_assign(&mut self.dh, &self.input_der);
        param_grads(g, lay.input, n, &self.examples.x_t, &self.dh);
        param_grads(g, lay.time_out, n, &self.time_act, &self.dtemb);
        input_grad(p, lay.time_out, n, &self.dtemb, 0.0, &mut self.dv);
        mul_assign(&mut self.dv, &self.time_der);
        param_grads(g, lay.time_in, n, &self.examples.t_input, &self.dv);
        (sse, all_finite(g))
    }
}

/// `y = x·Wᵀ + b` for the `n` rows of `x`.
#[inline(always)]
fn linear(p: &[f32], d: Dense, n: usize, x: &[f32], y: &mut [f32]) {
    for row in y.chunks_exact_mut(d.o) {
        row.copy_from_slice(d.bias(p));
    }
    let w = View::transposed(d.weight(p), d.i);
    time(Phase::ForwardGemm, || {
        gemm(n, d.i, d.o, View::rows(x, d.i), w, 1.0, y)
    });
}

/// The layer's weight and bias gradients from its output gradient `dy` and input `x`.
#[inline(always)]
fn param_grads(g: &mut [f32], d: Dense, n: usize, x: &[f32], dy: &[f32]) {
    let dw = &mut g[d.w..d.b];
    time(Phase::BackwardGemm, || {
        gemm(
            d.o,
            n,
            d.i,
            View::transposed(dy, d.o),
            View::rows(x, d.i),
            0.0,
            dw,
        )
    });
    let db = &mut g[d.b..d.b + d.o];
    db.fill(0.0);
    for row in dy.chunks_exact(d.o) {
        add_assign(db, row);
    }
}

/// `dx = dy·W + beta·dx`: the gradient reaching the layer's input.
#[inline(always)]
fn input_grad(p: &[f32], d: Dense, n: usize, dy: &[f32], beta: f32, dx: &mut [f32]) {
    time(Phase::BackwardGemm, || {
        gemm(
            n,
            d.o,
            d.i,
            View::rows(dy, d.o),
            View::rows(d.weight(p), d.i),
            beta,
            dx,
        )
    });
}

#[inline(always)]
fn add_assign(a: &mut [f32], b: &[f32]) {
    for (a, &b) in a.iter_mut().zip(b) {
        *a += b;
    }
}

#[inline(always)]
fn mul_assign(a: &mut [f32], b: &[f32]) {
    for (a, &b) in a.iter_mut().zip(b) {
        *a *= b;
    }
}

#[inline(always)]
fn mul_into(out: &mut [f32], a: &[f32], b: &[f32]) {
    for ((o, &a), &b) in out.iter_mut().zip(a).zip(b) {
        *o = a * b;
    }
}

/// Whether no value is NaN or infinite (an OR over exponent tests, so it vectorises).
#[inline(always)]
fn all_finite(v: &[f32]) -> bool {
    v.iter().fold(0u32, |bad, x| {
        bad | u32::from(x.to_bits() & 0x7f80_0000 == 0x7f80_0000)
    }) == 0
}

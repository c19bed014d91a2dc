//! Adam with PyTorch's defaults and its exact update sequence, and the optional EMA.
//!
//! `torch.optim.Adam` (single-tensor path, the CPU default), step t ≥ 1:
//! ```text
//! m ← m + (1−β1)·(g − m)                    exp_avg.lerp_(grad, 1−β1)
//! v ← v·β2 + (1−β2)·g·g                     exp_avg_sq.mul_(β2).addcmul_(grad, grad, 1−β2)
//! step_size = lr/(1 − β1^t)                 Python floats (f64), then f32
//! denom = √v / √(1 − β2^t) + eps            (exp_avg_sq.sqrt() / bc2_sqrt).add_(eps)
//! p ← p + (−step_size)·m/denom              param.addcdiv_(exp_avg, denom, value=−step_size)
//! ```
//! EMA of the weights: `e ← e + (1−d)·(p − e)` after each update (`ema.lerp_(p, 1−d)`).
//! Every operation is elementwise, so splitting the vector over threads changes nothing.

use rayon::prelude::*;

/// β1, β2 and ε of `torch.optim.Adam`.
const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f32 = 1e-8;
/// Elements per parallel piece: small enough to spread over the cores, large enough to
/// keep the per-piece overhead negligible.
const PIECE: usize = 8192;

/// Adam's moment estimates, in the model file's parameter order.
#[derive(Clone, Debug, PartialEq)]
pub struct Adam {
    /// First moment (exp_avg).
    pub m: Vec<f32>,
    /// Second moment (exp_avg_sq).
    pub v: Vec<f32>,
}

/// The per-step scalars of the update.
#[derive(Clone, Copy)]
struct Coefs {
    one_minus_beta1: f32,
    beta2: f32,
    one_minus_beta2: f32,
    neg_step_size: f32,
    bias_correction2_sqrt: f32,
}

/// The scalars of update number `t` (1-based) that depend on `t`:
/// `(−lr/(1 − β1^t), √(1 − β2^t))`, in f64 rounded to f32 as PyTorch's Python floats are
/// (the GPU trainer tabulates the same pair).
pub(crate) fn step_scalars(lr: f32, t: u64) -> [f32; 2] {
    let t = t as f64;
    let bias_correction1 = 1.0 - libm::pow(BETA1, t);
    let bias_correction2 = 1.0 - libm::pow(BETA2, t);
    [
        -(f64::from(lr) / bias_correction1) as f32,
        libm::sqrt(bias_correction2) as f32,
    ]
}

impl Coefs {
    fn new(lr: f32, t: u64) -> Self {
        let [neg_step_size, bias_correction2_sqrt] = step_scalars(lr, t);
        Self {
            one_minus_beta1: (1.0 - BETA1) as f32,
            beta2: BETA2 as f32,
            one_minus_beta2: (1.0 - BETA2) as f32,
            neg_step_size,
            bias_correction2_sqrt,
        }
    }
}

impl Adam {
    /// Zero moments for `len` parameters.
    pub fn new(len: usize) -> Self {
        Self {
            m: vec![0.0; len],
            v: vec![0.0; len],
        }
    }

    /// Update number `t` (1-based) of `p` with learning rate `lr`. The gradient is the sum,
    /// in order, of `grad` and every slice of `more` (one per batch chunk); `grad` is
    /// overwritten with that sum.
    pub(crate) fn update(
        &mut self,
        p: &mut [f32],
        grad: &mut [f32],
        more: &[&[f32]],
        lr: f32,
        t: u64,
    ) {
        let c = Coefs::new(lr, t);
        p.par_chunks_mut(PIECE)
            .zip(grad.par_chunks_mut(PIECE))
            .zip(self.m.par_chunks_mut(PIECE))
            .zip(self.v.par_chunks_mut(PIECE))
            .enumerate()
            .for_each(|(i, (((p, g), m), v))| {
                for other in more {
                    let o = &other[i * PIECE..i * PIECE + g.len()];
                    for (g, &o) in g.iter_mut().zip(o) {
                        *g += o;
                    }
                }
                update_piece(p, g, m, v, c);
            });
    }
}

/// The Adam update over one piece; compiled for the widest vector unit present, since the
/// square root and division vectorise only where the instructions are enabled.
fn update_piece(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], c: Coefs) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (checked just above).
            return unsafe { update_piece_avx512(p, g, m, v, c) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            return unsafe { update_piece_avx2(p, g, m, v, c) };
        }
    }
    update_piece_impl(p, g, m, v, c)
}

/// 8 lanes instead of SSE2's 4 (`vsqrtps`/`vdivps` are exactly rounded at any width; Rust
/// fuses no multiply-add, so the bits are the scalar loop's).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn update_piece_avx2(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], c: Coefs) {
    update_piece_impl(p, g, m, v, c)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn update_piece_avx512(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], c: Coefs) {
    update_piece_impl(p, g, m, v, c)
}

#[inline(always)]
fn update_piece_impl(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], c: Coefs) {
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m).zip(v) {
        *m += c.one_minus_beta1 * (g - *m);
        *v = *v * c.beta2 + c.one_minus_beta2 * g * g;
        let denom = v.sqrt() / c.bias_correction2_sqrt + EPS;
        *p += c.neg_step_size * *m / denom;
    }
}

/// `e ← e + (1−decay)·(p − e)`, elementwise.
pub(crate) fn ema_update(e: &mut [f32], p: &[f32], decay: f32) {
    let w = 1.0 - decay;
    e.par_chunks_mut(PIECE)
        .zip(p.par_chunks(PIECE))
        .for_each(|(e, p)| {
            for (e, &p) in e.iter_mut().zip(p) {
                *e += w * (p - *e);
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// torch.optim.Adam on f64 for comparison: the same recurrences written plainly.
    fn reference(p: f64, gs: &[f64], lr: f64) -> f64 {
        let (mut p, mut m, mut v) = (p, 0.0, 0.0);
        for (i, &g) in gs.iter().enumerate() {
            let t = (i + 1) as f64;
            m = 0.9 * m + 0.1 * g;
            v = 0.999 * v + 0.001 * g * g;
            let mhat = m / (1.0 - 0.9f64.powf(t));
            let vhat = v / (1.0 - 0.999f64.powf(t));
            p -= lr * mhat / (vhat.sqrt() + 1e-8);
        }
        p
    }

    #[test]
    fn adam_follows_torchs_recurrence_and_sums_chunks() {
        let gs = [0.3, -1.2, 0.05, 2.0, -0.7, 1e-6, 0.4];
        let n = 3 * PIECE + 5;
        let mut adam = Adam::new(n);
        let mut p = vec![0.25f32; n];
        for (i, &g) in gs.iter().enumerate() {
            let mut grad = vec![g as f32 * 0.25; n];
            let rest = vec![g as f32 * 0.75; n];
            adam.update(&mut p, &mut grad, &[&rest], 1e-2, i as u64 + 1);
            assert!(grad.iter().all(|&s| s == g as f32));
        }
        let want = reference(0.25, &gs, 1e-2);
        assert!(
            p.iter().all(|&x| (f64::from(x) - want).abs() < 1e-6),
            "{} vs {want}",
            p[0]
        );
    }

    #[test]
    fn first_step_moves_every_weight_by_lr() {
        let mut adam = Adam::new(4);
        let mut p = vec![1.0f32; 4];
        let mut g = vec![3.0, -0.01, 1e-3, -50.0];
        adam.update(&mut p, &mut g, &[], 1e-3, 1);
        for (x, s) in p.iter().zip([-1.0f32, 1.0, -1.0, 1.0]) {
            assert!((x - (1.0 + s * 1e-3)).abs() < 1e-6);
        }
        let mut e = vec![0.0f32; 4];
        ema_update(&mut e, &[1.0; 4], 0.75);
        assert_eq!(e, [0.25; 4]);
    }
}

//! A dense layer with the project's one summation order.
//!
//! `y_j = (((b_j + w_j0·x_0) + w_j1·x_1) + …) + w_j(I−1)·x_(I−1)`: each product rounded, then
//! added, k ascending. Never fused (no `mul_add`), never reassociated, never vectorised over
//! k. Outputs are computed in blocks of [`BLOCK`] independent accumulators so a batch-1 pass
//! does not wait on one add chain; blocking changes which outputs run together, not the order
//! of any output's sum.

use crate::real::Real;

/// Outputs accumulated side by side: enough independent add chains to cover the FP add
/// latency on x86 (4 cycles, 2 pipes) and Cortex-M4F, few enough to stay in registers.
pub const BLOCK: usize = 8;

/// A layer's weight (`[out][in]` row-major) and bias, borrowed.
pub type Tensors<'a> = (&'a [f32], &'a [f32]);

/// `y = W·x + b` with `W` stored `[out][in]` (PyTorch's `nn.Linear` layout).
#[derive(Clone, Debug, PartialEq)]
pub struct Linear<const I: usize, const O: usize> {
    /// `weight[j][k]` multiplies input `k` into output `j`.
    pub weight: [[f32; I]; O],
    /// Added first, before any product.
    pub bias: [f32; O],
}

impl<const I: usize, const O: usize> Linear<I, O> {
    /// All weights and biases zero (a `const`, for `static` storage).
    pub const ZERO: Self = Self {
        weight: [[0.0; I]; O],
        bias: [0.0; O],
    };

    /// Number of parameters: `O·I + O`.
    pub const PARAMS: usize = O * I + O;

    /// The weight, flattened `[out][in]` row-major, and the bias.
    #[inline(always)]
    pub const fn tensors(&self) -> Tensors<'_> {
        (self.weight.as_flattened(), &self.bias)
    }

    /// `y = W·x + b` in the fixed order (module docs); `R` lanes are independent samples.
    #[inline]
    pub fn forward<R: Real>(&self, x: &[R; I], y: &mut [R; O]) {
        dense(self.weight.as_flattened(), &self.bias, x, y);
    }
}

/// `y = W·x + b` for a layer whose sizes are known only at run time: `weight` is `[O][I]`
/// row-major with `I = x.len()` and `O = y.len()`, `bias` holds O values; [`Linear::forward`]
/// is this function on its arrays, so a host that reads a model's shape from a file sums in
/// the same order. Outputs without a whole row or a bias are left as they are.
#[inline(always)]
pub fn dense<R: Real>(weight: &[f32], bias: &[f32], x: &[R], y: &mut [R]) {
    let inputs = x.len();
    let outputs = y.len().min(bias.len()).min(match inputs {
        0 => usize::MAX,
        i => weight.len() / i,
    });
    let mut j = 0;
    while j + BLOCK <= outputs {
        let rows = &weight[j * inputs..(j + BLOCK) * inputs];
        dense_block::<R, BLOCK>(rows, &bias[j..j + BLOCK], x, &mut y[j..j + BLOCK]);
        j += BLOCK;
    }
    while j < outputs {
        let row = &weight[j * inputs..(j + 1) * inputs];
        dense_block::<R, 1>(row, &bias[j..=j], x, &mut y[j..=j]);
        j += 1;
    }
}

/// N outputs, each its own accumulator (`b_j`, then `+ w_jk·x_k` for k ascending), all
/// advancing through k together: the one place the summation order is written. `rows` holds
/// the N rows back to back, `x.len()` weights each: addressed from one base pointer, so the
/// M4F keeps its registers for the accumulators (3.73 instructions a multiply-add on the
/// seed model's single path; an array of N row slices took 3.88).
#[inline(always)]
fn dense_block<R: Real, const N: usize>(rows: &[f32], bias: &[f32], x: &[R], y: &mut [R]) {
    let inputs = x.len();
    let mut acc = [R::splat(0.0); N];
    for (a, &b) in acc.iter_mut().zip(bias) {
        *a = R::splat(b);
    }
    for (k, &xk) in x.iter().enumerate() {
        for (n, a) in acc.iter_mut().enumerate() {
            *a = *a + R::splat(rows[n * inputs + k]) * xk;
        }
    }
    // Every caller passes exactly N biases and N outputs.
    y.copy_from_slice(&acc);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocked_forward_keeps_each_outputs_sequential_sum() {
        let mut l = Linear::<5, 11>::ZERO;
        for (j, row) in l.weight.iter_mut().enumerate() {
            for (k, w) in row.iter_mut().enumerate() {
                *w = 1.0 / (1.0 + j as f32 * 3.1 + k as f32 * 0.7) - 0.3;
            }
            l.bias[j] = j as f32 * 0.01 - 0.05;
        }
        let x = [0.3f32, -1.7, 2.9, 1e-3, -0.4];
        let mut y = [0.0f32; 11];
        l.forward(&x, &mut y);
        for ((yj, row), &b) in y.iter().zip(&l.weight).zip(&l.bias) {
            let acc = row.iter().zip(&x).fold(b, |acc, (w, xk)| acc + w * xk);
            assert_eq!(yj.to_bits(), acc.to_bits());
        }
    }
}

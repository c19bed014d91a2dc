//! Checked single-precision matrix products on top of `matrixmultiply` (AVX-512/AVX2
//! microkernels chosen at run time). Its summation order differs from the core's sequential
//! loop: fine for training, which is not part of the bit-identical sampling contract.
//!
//! It is one order all the same, on every x86 with FMA, and every training bit (loss logs,
//! checkpoints, model files) rests on it, so it is pinned by a test here: element (i, j) is
//!
//! ```text
//! for each block of KC = 256 consecutive q (matrixmultiply's kc), in order:
//!     s ← +0;  for q in the block, in order: s ← fma(A[i][q], B[q][j], s)
//!     C[i][j] ← s            (the first block when β = 0: C is not read)
//!     C[i][j] ← C[i][j] + s  (otherwise, β = 1)
//! ```
//!
//! one rounding per fused multiply-add and one per block. A faster kernel, another backend
//! (a browser's, without FMA instructions, needs an exactly rounded `fmaf`) or an update of
//! the dependency keeps the trainer's bits exactly when it keeps this order. A kernel of this
//! order without packing (a 6 × 16 AVX2 tile) was tried and matched every bit, but did not
//! beat matrixmultiply's 8 × 8 kernels at these sizes (2026-12-07, AMD Zen 3: 41–52 against
//! 43–57 GFLOP/s for the 64 × 128 × 128 products on a loaded core).

/// A matrix view: `data[r·row + c·col]` is element (r, c).
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    /// The elements.
    pub data: &'a [f32],
    /// Row stride.
    pub row: usize,
    /// Column stride.
    pub col: usize,
}

impl<'a> View<'a> {
    /// Row-major `[rows × cols]` storage.
    pub fn rows(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            row: cols,
            col: 1,
        }
    }

    /// The transpose of row-major `[rows × cols]` storage, i.e. a `[cols × rows]` matrix.
    pub fn transposed(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            row: 1,
            col: cols,
        }
    }

    /// Whether an `r × c` matrix fits inside `data`.
    fn fits(&self, r: usize, c: usize) -> bool {
        r == 0 || c == 0 || (r - 1) * self.row + (c - 1) * self.col < self.data.len()
    }
}

/// `C ← A·B + beta·C` for `A [m × k]`, `B [k × n]` and row-major `C [m × n]`; with
/// `beta = 0` the old contents of C are ignored (not even read, so garbage or NaN is fine).
pub(crate) fn gemm(m: usize, k: usize, n: usize, a: View, b: View, beta: f32, c: &mut [f32]) {
    assert!(
        a.fits(m, k) && b.fits(k, n) && m * n <= c.len(),
        "gemm shapes"
    );
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: the assertion above keeps every element matrixmultiply touches inside the
    // three slices, and `c` is a unique borrow, so the output aliases nothing.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.data.as_ptr(),
            a.row as isize,
            a.col as isize,
            b.data.as_ptr(),
            b.row as isize,
            b.col as isize,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Element (i, j) in the module's order: sequential FMAs in blocks of 256 q, each block's
    /// sum added to C (`first`: C's old value ignored).
    fn in_order(
        k: usize,
        a: impl Fn(usize) -> f32,
        b: impl Fn(usize) -> f32,
        c: f32,
        first: bool,
    ) -> f32 {
        let mut out = c;
        for k0 in (0..k).step_by(256) {
            let mut s = 0.0f32;
            for q in k0..k.min(k0 + 256) {
                s = a(q).mul_add(b(q), s);
            }
            out = if first && k0 == 0 { s } else { out + s };
        }
        out
    }

    /// matrixmultiply's products are the module's order, bit for bit, on shapes with k in one
    /// block, in two and in three (the trainer's k is D, H ≤ 512 or a chunk's 64 rows), for
    /// β = 0 and β = 1: the order every training bit rests on.
    #[test]
    fn products_keep_the_one_order_the_training_bits_rest_on() {
        for (m, k, n) in [(64, 128, 128), (64, 2, 128), (9, 300, 17), (3, 700, 20)] {
            let a: Vec<f32> = (0..m * k)
                .map(|i| (i as f32 * 0.37).sin() * (1.0 + (i % 7) as f32 * 3.1))
                .collect();
            let b: Vec<f32> = (0..k * n)
                .map(|i| (i as f32 * 0.11).cos() / (1.0 + (i % 5) as f32))
                .collect();
            let start: Vec<f32> = (0..m * n).map(|i| (i as f32 * 0.7).sin()).collect();
            for beta in [0.0, 1.0] {
                let mut c = start.clone();
                gemm(m, k, n, View::rows(&a, k), View::rows(&b, n), beta, &mut c);
                for i in 0..m {
                    for j in 0..n {
                        let want = in_order(
                            k,
                            |q| a[i * k + q],
                            |q| b[q * n + j],
                            start[i * n + j],
                            beta == 0.0,
                        );
                        assert_eq!(
                            c[i * n + j].to_bits(),
                            want.to_bits(),
                            "{m}x{k}x{n} beta {beta} ({i}, {j})"
                        );
                    }
                }
            }
        }
    }

    /// Every combination of row-major and transposed operands, the trainer's shapes and
    /// ragged ones, against f64 loops; nothing past C is written.
    #[test]
    fn products_match_plain_loops_for_every_layout_and_ragged_shapes() {
        let shapes = [
            (5, 7, 3),
            (64, 128, 128),
            (128, 64, 128),
            (64, 128, 2),
            (2, 64, 128),
            (7, 3, 130),
            (1, 1, 1),
            (13, 5, 33),
        ];
        for (m, k, n) in shapes {
            let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
            let bt: Vec<f32> = (0..k * n).map(|i| b[i % k * n + i / k]).collect();
            let at: Vec<f32> = (0..m * k).map(|i| a[i % m * k + i / m]).collect();
            let want = |i: usize, j: usize| -> f64 {
                (0..k)
                    .map(|q| f64::from(a[i * k + q]) * f64::from(b[q * n + j]))
                    .sum()
            };
            let a_views = [View::rows(&a, k), View::transposed(&at, m)];
            let b_views = [View::rows(&b, n), View::transposed(&bt, k)];
            for (av, bv) in a_views
                .iter()
                .flat_map(|&x| b_views.iter().map(move |&y| (x, y)))
            {
                // one slot past C: the kernel must not write it
                let mut c = vec![f32::NAN; m * n + 1];
                c[m * n] = 7.0;
                gemm(m, k, n, av, bv, 0.0, &mut c);
                let once = c.clone();
                gemm(m, k, n, av, bv, 1.0, &mut c);
                for i in 0..m {
                    for j in 0..n {
                        let (w, ij) = (want(i, j), i * n + j);
                        let tol = 1e-5 * (1.0 + w.abs());
                        assert!(
                            (f64::from(once[ij]) - w).abs() < tol,
                            "{m}x{k}x{n} ({i},{j})"
                        );
                        assert!((f64::from(c[ij]) - 2.0 * w).abs() < 2.0 * tol);
                    }
                }
                assert_eq!(c[m * n], 7.0, "{m}x{k}x{n}: wrote past C");
            }
        }
    }
}

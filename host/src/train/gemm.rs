//! Checked single-precision matrix products on top of `matrixmultiply` (AVX-512/AVX2
//! microkernels chosen at run time). Its summation order differs from the core's sequential
//! loop: fine for training, which is not part of the bit-identical sampling contract.

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

    #[test]
    fn transposed_views_multiply_like_plain_loops() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let bt: Vec<f32> = (0..n * k).map(|i| (i as f32 * 0.11).cos()).collect();
        let mut c = vec![f32::NAN; m * n];
        gemm(
            m,
            k,
            n,
            View::rows(&a, k),
            View::transposed(&bt, k),
            0.0,
            &mut c,
        );
        for i in 0..m {
            for j in 0..n {
                let want: f32 = (0..k).map(|q| a[i * k + q] * bt[j * k + q]).sum();
                assert!((c[i * n + j] - want).abs() < 1e-5);
            }
        }
        let before = c.clone();
        gemm(
            m,
            k,
            n,
            View::rows(&a, k),
            View::transposed(&bt, k),
            1.0,
            &mut c,
        );
        for (x, y) in c.iter().zip(&before) {
            assert!((x - 2.0 * y).abs() < 1e-5);
        }
    }
}

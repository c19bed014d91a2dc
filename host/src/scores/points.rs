//! A cloud of points of any width: `len` rows of `dim` coordinates, row-major, every one
//! finite — what the scores compare and what a CSV of numbers reads as
//! ([`crate::csv::read_point_cloud_from`]).

/// The most coordinates a point may have.
pub const MAX_DIM: usize = 16;

/// Why values cannot be points.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PointsError {
    /// The width is 0 or above [`MAX_DIM`].
    #[error("points of {dim} coordinates: 1 to {MAX_DIM} are allowed")]
    Dim {
        /// The width asked for.
        dim: usize,
    },
    /// The values do not fill whole rows.
    #[error("{values} values are not whole rows of {dim}")]
    Ragged {
        /// Values given.
        values: usize,
        /// The width.
        dim: usize,
    },
    /// A coordinate is NaN or infinite.
    #[error("point {row} is not finite")]
    NonFinite {
        /// Its row, from 0.
        row: usize,
    },
}

/// `len` points of `dim` coordinates, row-major; `1 ≤ dim ≤ MAX_DIM`, every value finite
/// (checked once, by the constructors, so that no score meets a NaN).
#[derive(Clone, Debug, PartialEq)]
pub struct Points {
    dim: usize,
    values: Vec<f32>,
}

impl Points {
    /// `n` points of N(shift·1, I) in `dim` coordinates, point `i` from the core's noise
    /// stream `(seed, i)` (⌈dim/2⌉ Gaussian pairs, the last value of an odd `dim` dropped): a
    /// pure function of the arguments, for tests and benchmarks.
    pub fn gaussian(n: usize, dim: usize, seed: u64, shift: f32) -> Result<Self, PointsError> {
        let values = (0..n as u64)
            .flat_map(|i| {
                let mut s = tinyddpm_core::NoiseStream::new(seed, i);
                (0..dim.div_ceil(2))
                    .flat_map(move |_| s.gaussian_pair())
                    .take(dim)
                    .map(move |v| v + shift)
            })
            .collect();
        Self::new(dim, values)
    }

    /// Points of width `dim` from row-major `values`.
    pub fn new(dim: usize, values: Vec<f32>) -> Result<Self, PointsError> {
        if !(1..=MAX_DIM).contains(&dim) {
            return Err(PointsError::Dim { dim });
        }
        if !values.len().is_multiple_of(dim) {
            return Err(PointsError::Ragged {
                values: values.len(),
                dim,
            });
        }
        if let Some(at) = values.iter().position(|v| !v.is_finite()) {
            return Err(PointsError::NonFinite { row: at / dim });
        }
        Ok(Self { dim, values })
    }

    /// Points whose values the caller has checked already: `1 ≤ dim ≤ MAX_DIM`, whole rows,
    /// every value finite (the CSV reader checks each field as it parses it).
    pub(crate) fn trusted(dim: usize, values: Vec<f32>) -> Self {
        debug_assert!(Self::new(dim, values.clone()).is_ok());
        Self { dim, values }
    }

    /// 2-D points, such as samples of the Swiss roll.
    pub fn from_pairs(pairs: &[[f32; 2]]) -> Result<Self, PointsError> {
        Self::new(2, pairs.iter().flatten().copied().collect())
    }

    /// Coordinates per point.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.values.len() / self.dim
    }

    /// Whether there are no points.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Every coordinate, row-major.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// The coordinates of point `i` (`i < len`).
    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.dim..(i + 1) * self.dim]
    }

    /// The rows, in order.
    pub fn rows(&self) -> std::slice::ChunksExact<'_, f32> {
        self.values.chunks_exact(self.dim)
    }

    /// At most `cap` points, evenly spread over the input (point `⌊i·len/cap⌋` for
    /// `i < cap`), all of them when there are no more than `cap`: the order of a file need
    /// not be random (a sorted reference), so the first `cap` could be one end of it.
    pub fn spread(&self, cap: usize) -> Points {
        let n = self.len();
        if n <= cap {
            return self.clone();
        }
        let values = (0..cap)
            .flat_map(|i| self.row((i as u128 * n as u128 / cap as u128) as usize))
            .copied()
            .collect();
        Points {
            dim: self.dim,
            values,
        }
    }

    /// The points multiplied by `factor` (a power of two: exact), in f32.
    pub(crate) fn scaled(&self, factor: f64) -> Points {
        Points {
            dim: self.dim,
            values: self
                .values
                .iter()
                .map(|&v| (v as f64 * factor) as f32)
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_check_width_rows_and_finiteness() {
        assert_eq!(Points::new(0, vec![]), Err(PointsError::Dim { dim: 0 }));
        assert_eq!(Points::new(17, vec![]), Err(PointsError::Dim { dim: 17 }));
        assert_eq!(
            Points::new(2, vec![1.0; 3]),
            Err(PointsError::Ragged { values: 3, dim: 2 })
        );
        assert_eq!(
            Points::new(3, vec![0.0, 0.0, 0.0, 1.0, f32::INFINITY, 2.0]),
            Err(PointsError::NonFinite { row: 1 })
        );
        let p = Points::from_pairs(&[[1.0, 2.0], [3.0, 4.0]]).unwrap();
        assert_eq!((p.dim(), p.len(), p.row(1)), (2, 2, &[3.0, 4.0][..]));
    }

    #[test]
    fn spread_takes_evenly_spaced_rows() {
        let p = Points::new(1, (0..10).map(|v| v as f32).collect()).unwrap();
        assert_eq!(p.spread(4).values(), &[0.0, 2.0, 5.0, 7.0]);
        assert_eq!(p.spread(10), p);
    }
}

//! The user's own points as training data: a CSV or NumPy `.npy` file of N rows × D
//! columns, read once, checked, normalized once and kept in the model's space.
//!
//! **Reading.** The format is told by the first bytes ([`crate::npy::is_npy`]); a CSV's header
//! line is optional. Both are read as streams, at most [`MAX_ROWS`] rows: a CSV row by row
//! (each line at most [`crate::csv::MAX_LINE`] bytes), an `.npy` after its shape has been
//! checked against the bounds, so the points take at most 4·D·N ≤ 4·16·10⁷ bytes (640 MB)
//! whatever the file's length.
//!
//! **Normalization** ([`Normalize::Standard`], the default for a file): per column, the shift
//! is the mean and the scale the population standard deviation `√(Σ(x − mean)²/N)`, both
//! summed in f64 over the rows in file order and rounded to f32 once. The map is the core's
//! [`Units`], and every row is mapped once, at load, by [`Units::to_model`]; the model file
//! records the units, and every backend's sampler maps its samples back to data units.
//!
//! **Drawing.** An example's point is row [`choice`]`(rng, N)`: one u32 draw of the
//! example's stream, sampling with replacement (see [`super::Examples::fill`]).
//!
//! **Identity.** A checkpoint names the points by N, the normalization and a CRC-64/XZ
//! ([`PointSet::fingerprint`]) of N and the normalized values, so a run resumes only on the
//! same points.

use std::io::{BufRead, BufReader, Read};

use rand_xoshiro::Xoshiro128PlusPlus;
use serde::{Deserialize, Serialize};
use tinyddpm_core::Units;
use tinyddpm_core::units::MAX_DIM;

use super::choice;
use crate::csv::{self, CsvError};
use crate::npy::{self, NpyError};
use crate::scores::Points;

/// The most rows read from a points file: the CSV readers' cap.
pub const MAX_ROWS: usize = csv::MAX_ROWS;

/// How a file's points are mapped to the model's space before training.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Normalize {
    /// Per column, minus the mean, divided by the population standard deviation (the
    /// default for a file).
    #[default]
    Standard,
    /// The values as they are (the only choice for a built-in set).
    None,
}

impl Normalize {
    /// The name the CLI takes.
    pub const fn name(self) -> &'static str {
        match self {
            Normalize::Standard => "standard",
            Normalize::None => "none",
        }
    }
}

/// Why a file's points cannot be trained on.
#[derive(Debug, thiserror::Error)]
pub enum PointsError {
    /// The CSV could not be read or parsed.
    #[error(transparent)]
    Csv(#[from] CsvError),
    /// The `.npy` file could not be read or is not a point set.
    #[error(transparent)]
    Npy(#[from] NpyError),
    /// Rows that make no point cloud (the readers' checks make this unreachable).
    #[error(transparent)]
    Cloud(#[from] crate::scores::PointsError),
    /// The file could not be read before its format was known.
    #[error("{name}: {source}")]
    Io {
        /// The file.
        name: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Points of a width no model takes (the readers never make one).
    #[error("{name} has {dim} columns; a model takes 1 to {MAX_DIM}")]
    Width {
        /// The file.
        name: String,
        /// Its columns.
        dim: usize,
    },
    /// No rows at all.
    #[error("{name} holds no points")]
    Empty {
        /// The file.
        name: String,
    },
    /// A column without spread cannot be standardized.
    #[error(
        "column {column} of {name} is constant: it cannot be standardized (use --normalize none)"
    )]
    Constant {
        /// The file.
        name: String,
        /// The column, from 1.
        column: usize,
    },
    /// A column's spread is positive but outside f32's normal range.
    #[error("column {column} of {name} has a spread of {spread:e}, outside f32's normal range")]
    Spread {
        /// The file.
        name: String,
        /// The column, from 1.
        column: usize,
        /// The standard deviation, in f64.
        spread: f64,
    },
    /// More rows than [`MAX_ROWS`].
    #[error("{name}: {rows} rows, more than the {MAX_ROWS} a run reads")]
    TooManyRows {
        /// The file.
        name: String,
        /// Its rows.
        rows: usize,
    },
    /// The labels do not fit the points.
    #[error("{name}: {why}")]
    Labels {
        /// The file.
        name: String,
        /// What is wrong.
        why: String,
    },
    /// A normalized value overflows f32 (a difference from the mean beyond f32's range).
    #[error("row {row} of {name} overflows f32 once normalized")]
    Overflow {
        /// The file.
        name: String,
        /// The row, from 1.
        row: usize,
    },
}

/// N points of D coordinates (1 to [`MAX_DIM`]) in the model's space, the file they came from and the map
/// back to its units.
#[derive(Clone, Debug, PartialEq)]
pub struct PointSet {
    name: String,
    /// Row-major, normalized, every value finite.
    values: Vec<f32>,
    /// D, the coordinates of a point.
    dim: usize,
    /// N, at most [`MAX_ROWS`] (so a u32 for [`choice`]).
    rows: u32,
    normalize: Normalize,
    units: Option<Units>,
    fingerprint: u64,
    /// Each row's class label, for a run conditioned on classes; empty otherwise.
    labels: Vec<u16>,
    /// C: the largest label plus one (0 without labels).
    classes: u16,
}

/// A CSV or `.npy` file's rows (told apart by the first bytes), at most `max_rows` of 1 to
/// 16 finite numbers: (the width, the values row-major). Every command that reads points
/// reads them here.
pub fn read_rows(
    reader: impl Read,
    name: &str,
    max_rows: usize,
) -> Result<(usize, Vec<f32>), PointsError> {
    let mut reader = BufReader::new(reader);
    let prefix = reader.fill_buf().map_err(|source| PointsError::Io {
        name: name.into(),
        source,
    })?;
    Ok(if npy::is_npy(prefix) {
        npy::read_points(reader, name, max_rows)?
    } else {
        let points = csv::read_point_cloud_from(reader, name, max_rows)?;
        (points.dim(), points.values().to_vec())
    })
}

/// [`read_rows`] as a point cloud, for the scores and the commands that take any width.
pub fn read_cloud(reader: impl Read, name: &str, max_rows: usize) -> Result<Points, PointsError> {
    let (dim, values) = read_rows(reader, name, max_rows)?;
    Ok(Points::new(dim, values)?)
}

impl PointSet {
    /// Reads a CSV or `.npy` file's points from `reader` (`name` names it in errors) and
    /// normalizes them as `normalize` says.
    pub fn read(reader: impl Read, name: &str, normalize: Normalize) -> Result<Self, PointsError> {
        let (dim, values) = read_rows(reader, name, MAX_ROWS)?;
        Self::new(name, dim, values, normalize)
    }

    /// The points of `dim` columns in row-major `values` (finite, as the readers leave them),
    /// normalized as `normalize` says.
    pub fn new(
        name: &str,
        dim: usize,
        mut values: Vec<f32>,
        normalize: Normalize,
    ) -> Result<Self, PointsError> {
        if !(1..=MAX_DIM).contains(&dim) || !values.len().is_multiple_of(dim) {
            return Err(PointsError::Width {
                name: name.into(),
                dim,
            });
        }
        let rows = values.len() / dim;
        if rows == 0 {
            return Err(PointsError::Empty { name: name.into() });
        }
        // At most MAX_ROWS < 2^32 rows: N is a u32 for `choice`.
        let Some(n) = u32::try_from(rows).ok().filter(|_| rows <= MAX_ROWS) else {
            return Err(PointsError::TooManyRows {
                name: name.into(),
                rows,
            });
        };
        let units = match normalize {
            Normalize::Standard => Some(standard_units(name, dim, &values)?),
            Normalize::None => None,
        };
        if let Some(units) = &units {
            for (row, p) in values.chunks_exact_mut(dim).enumerate() {
                units.to_model(p);
                if !p.iter().all(|v| v.is_finite()) {
                    return Err(PointsError::Overflow {
                        name: name.into(),
                        row: row + 1,
                    });
                }
            }
        }
        let fingerprint = fingerprint(n, &values, &[]);
        Ok(Self {
            name: name.into(),
            dim,
            rows: n,
            values,
            normalize,
            units,
            fingerprint,
            labels: Vec::new(),
            classes: 0,
        })
    }

    /// These points with a class label each (`labels[i]` row i's): C is the largest label
    /// plus one, at most 65,535 (a model file's C is a u16); the fingerprint then covers the
    /// labels too.
    pub fn with_labels(self, labels: Vec<u16>) -> Result<Self, PointsError> {
        let name = || self.name.clone();
        if labels.len() != self.len() {
            return Err(PointsError::Labels {
                name: name(),
                why: format!("{} labels for {} rows", labels.len(), self.len()),
            });
        }
        let largest = labels.iter().copied().max().unwrap_or(0);
        let classes = largest.checked_add(1).ok_or_else(|| PointsError::Labels {
            name: name(),
            why: "a label of 65535: labels go up to 65534".into(),
        })?;
        Ok(Self {
            fingerprint: fingerprint(self.rows, &self.values, &labels),
            labels,
            classes,
            ..self
        })
    }

    /// One example's point into `x` (D long): row `choice(rng, N)`, one draw; returns the
    /// row's label (0 without labels).
    pub fn point(&self, rng: &mut Xoshiro128PlusPlus, x: &mut [f32]) -> u16 {
        let row = choice(rng, self.rows) as usize;
        let i = row * self.dim;
        x.copy_from_slice(&self.values[i..i + self.dim]);
        self.labels.get(row).copied().unwrap_or(0)
    }

    /// C, the classes of the rows' labels (0: the points have none).
    pub fn classes(&self) -> u16 {
        self.classes
    }

    /// D, the coordinates of a point.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The file's name, as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// N, the number of rows.
    pub fn len(&self) -> usize {
        self.rows as usize
    }

    /// Whether there are no rows (never: a point set has at least one).
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The normalized points, row-major (what the trainers draw from).
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// How the file's values were mapped.
    pub fn normalize(&self) -> Normalize {
        self.normalize
    }

    /// The map from the model's space back to the file's units, if the values were
    /// normalized.
    pub fn units(&self) -> Option<&Units> {
        self.units.as_ref()
    }

    /// CRC-64/XZ of N (u64 LE) followed by every normalized value (f32 LE, row-major) and
    /// every label (u16 LE, none without labels): the points' identity in a checkpoint.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }
}

/// The fingerprint of `rows` normalized rows `values` and their `labels` (see
/// [`PointSet::fingerprint`]).
fn fingerprint(rows: u32, values: &[f32], labels: &[u16]) -> u64 {
    let crc = crc::Crc::<u64>::new(&crc::CRC_64_XZ);
    let mut digest = crc.digest();
    digest.update(&u64::from(rows).to_le_bytes());
    for v in values {
        digest.update(&v.to_le_bytes());
    }
    for l in labels {
        digest.update(&l.to_le_bytes());
    }
    digest.finalize()
}

/// The standard normalization's map of row-major `values` (see the module docs): per column
/// the mean and the population standard deviation, in f64 over the rows in order, each
/// rounded to f32 once.
fn standard_units(name: &str, dim: usize, values: &[f32]) -> Result<Units, PointsError> {
    let n = (values.len() / dim) as f64;
    let (mut scale, mut shift, mut spread) = (vec![0f32; dim], vec![0f32; dim], vec![0f64; dim]);
    for c in 0..dim {
        let column = || values.iter().skip(c).step_by(dim).map(|&v| f64::from(v));
        let mean = column().sum::<f64>() / n;
        let sd = (column().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt();
        if sd == 0.0 {
            return Err(PointsError::Constant {
                name: name.into(),
                column: c + 1,
            });
        }
        (scale[c], shift[c], spread[c]) = (sd as f32, mean as f32, sd);
    }
    // A mean of finite f32 values rounds to a finite f32, so a scale outside the normal
    // range (a spread below 2^-126, or beyond f32's largest value) is all `Units::new`
    // can refuse.
    Units::new(&scale, &shift).ok_or_else(|| {
        let c = scale.iter().position(|s| !s.is_normal()).unwrap_or(0);
        PointsError::Spread {
            name: name.into(),
            column: c + 1,
            spread: spread[c],
        }
    })
}

#[cfg(test)]
mod tests {
    use rand_core::{Rng, SeedableRng};
    use tinyddpm_core::noise::{box_muller, stream_seed};
    use tinyddpm_core::{Schedule, ScheduleKind};

    use super::*;
    use crate::data::{DataSet, Examples, TrainingData, forward_coefs, train_stream_key};

    /// `n` rows of distinct points around (100, −50), spread ×10 and ×3, a rational
    /// sequence so every value is exact in f32.
    fn values(n: usize) -> Vec<f32> {
        (0..n)
            .flat_map(|i| {
                let (a, b) = ((i * 37 % 101) as f32, (i * 53 % 89) as f32);
                [
                    100.0 + 10.0 * (a / 50.0 - 1.0),
                    -50.0 + 3.0 * (b / 44.0 - 1.0),
                ]
            })
            .collect()
    }

    /// A version 1 `.npy` file of `descr` and `shape` ([`crate::npy::version_1`]).
    fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        crate::npy::version_1(descr, shape, data)
    }

    fn csv_of(values: &[f32]) -> Vec<u8> {
        let mut text = String::from("x,y\n");
        for p in values.chunks_exact(2) {
            text += &format!("{},{}\n", p[0], p[1]);
        }
        text.into_bytes()
    }

    /// Example i's point is row ⌊u·N/2³²⌋ of its stream's first draw u, then t and ε follow:
    /// computed here from the stream, not with `choice`.
    #[test]
    fn each_example_takes_the_row_its_streams_first_draw_picks() {
        let raw = values(37);
        let set = PointSet::new("p", 2, raw.clone(), Normalize::None).unwrap();
        assert_eq!(set.values(), &raw[..]);
        let data = TrainingData::Points(std::sync::Arc::new(set));
        let coefs = forward_coefs(&Schedule::<1000>::new(ScheduleKind::SEED).unwrap());
        let mut ex = Examples::new(200, 2);
        ex.fill(&data, &coefs, 9, 4, 0);
        let base = train_stream_key(9).wrapping_add(4);
        let mut rows = std::collections::BTreeSet::new();
        for i in 0..200 {
            let mut rng = Xoshiro128PlusPlus::from_seed(stream_seed(base, i as u64));
            let row = ((u64::from(rng.next_u32()) * 37) >> 32) as usize;
            rows.insert(row);
            let t = ((u64::from(rng.next_u32()) * 1000) >> 32) as usize;
            let z = box_muller(rng.next_u32() >> 8, rng.next_u32() >> 8);
            let (a, b) = coefs[t];
            let x = [a * raw[2 * row] + b * z[0], a * raw[2 * row + 1] + b * z[1]];
            assert_eq!(ex.x_t[2 * i..2 * i + 2], x, "example {i}");
            assert_eq!(ex.noise[2 * i..2 * i + 2], z, "example {i}");
            assert_eq!(ex.t_input[i], t as f32 / 1000.0, "example {i}");
        }
        // with replacement, 200 draws of 37 rows reach nearly all of them
        assert!(rows.len() > 33, "{}", rows.len());
        assert_eq!(data.tag(), TrainingData::POINTS_TAG);
        assert!(DataSet::from_id(TrainingData::POINTS_TAG).is_none());
    }

    /// Points of 3 columns: the row's 3 values, then t, then ε from two Box–Muller pairs,
    /// the second pair's sine dropped (the samplers' rule for an odd D).
    #[test]
    fn an_odd_width_takes_its_noise_as_the_samplers_do() {
        let raw: Vec<f32> = (0..30).map(|i| (i * 7 % 13) as f32 - 6.0).collect();
        let set = PointSet::new("p", 3, raw.clone(), Normalize::None).unwrap();
        assert_eq!((set.dim(), set.len()), (3, 10));
        let data = TrainingData::Points(std::sync::Arc::new(set));
        assert_eq!(data.dim(), 3);
        let coefs = forward_coefs(&Schedule::<1000>::new(ScheduleKind::SEED).unwrap());
        let mut ex = Examples::new(20, 3);
        ex.fill(&data, &coefs, 2, 8, 5);
        let base = train_stream_key(2).wrapping_add(8);
        for i in 0..20 {
            let mut rng = Xoshiro128PlusPlus::from_seed(stream_seed(base, 5 + i as u64));
            let row = ((u64::from(rng.next_u32()) * 10) >> 32) as usize;
            let t = ((u64::from(rng.next_u32()) * 1000) >> 32) as usize;
            let z01 = box_muller(rng.next_u32() >> 8, rng.next_u32() >> 8);
            let z2 = box_muller(rng.next_u32() >> 8, rng.next_u32() >> 8)[0];
            let z = [z01[0], z01[1], z2];
            let (a, b) = coefs[t];
            let x: Vec<f32> = (0..3).map(|c| a * raw[3 * row + c] + b * z[c]).collect();
            assert_eq!(ex.x_t[3 * i..3 * i + 3], x[..], "example {i}");
            assert_eq!(ex.noise[3 * i..3 * i + 3], z, "example {i}");
            assert_eq!(ex.t_input[i], t as f32 / 1000.0, "example {i}");
        }
    }

    /// Shift and scale are the f64 mean and population standard deviation rounded once,
    /// and each value is `(x − shift)/scale` in f32.
    #[test]
    fn standard_normalization_is_the_f64_mean_and_population_deviation() {
        let raw = values(1000);
        let set = PointSet::new("p", 2, raw.clone(), Normalize::Standard).unwrap();
        let units = *set.units().unwrap();
        for c in 0..2 {
            let col: Vec<f64> = raw.iter().skip(c).step_by(2).map(|&v| v.into()).collect();
            let mean = col.iter().sum::<f64>() / 1000.0;
            let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 1000.0;
            assert_eq!(units.shift[c], mean as f32, "column {c}");
            assert_eq!(units.scale[c], var.sqrt() as f32, "column {c}");
            for (i, &v) in raw.iter().skip(c).step_by(2).enumerate() {
                let want = (v - mean as f32) / var.sqrt() as f32;
                assert_eq!(set.values()[2 * i + c], want, "row {i} column {c}");
            }
            let norm: Vec<f64> = set
                .values()
                .iter()
                .skip(c)
                .step_by(2)
                .map(|&v| v.into())
                .collect();
            let m = norm.iter().sum::<f64>() / 1000.0;
            let sd = (norm.iter().map(|v| (v - m).powi(2)).sum::<f64>() / 1000.0).sqrt();
            assert!(m.abs() < 1e-6 && (sd - 1.0).abs() < 1e-6, "{m} {sd}");
        }
        assert_eq!(units.scale[2..], [1.0; 14]);
        assert_eq!(
            TrainingData::Points(set.into()).model_data().units,
            Some(units)
        );
    }

    #[test]
    fn a_csv_and_an_npy_of_the_same_points_are_the_same_set() {
        let raw = values(50);
        let from_csv = PointSet::read(&csv_of(&raw)[..], "p", Normalize::Standard).unwrap();
        let le: Vec<u8> = raw.iter().flat_map(|v| v.to_le_bytes()).collect();
        let f4 = npy("<f4", "(50, 2)", &le);
        let from_npy = PointSet::read(&f4[..], "p", Normalize::Standard).unwrap();
        assert_eq!(from_csv, from_npy);
        let le8: Vec<u8> = raw
            .iter()
            .flat_map(|&v| f64::from(v).to_le_bytes())
            .collect();
        let f8 = npy("<f8", "(50, 2)", &le8);
        assert_eq!(
            PointSet::read(&f8[..], "p", Normalize::Standard).unwrap(),
            from_csv
        );
        // one value changed: another fingerprint
        let mut other = raw.clone();
        other[17] += 1.0;
        let other = PointSet::read(&csv_of(&other)[..], "p", Normalize::Standard).unwrap();
        assert_ne!(other.fingerprint(), from_csv.fingerprint());
    }

    #[test]
    fn bad_points_are_named() {
        let read = |bytes: &[u8], normalize| {
            PointSet::read(bytes, "f.csv", normalize)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            PointSet::new("f.csv", 17, vec![0.0; 17], Normalize::None)
                .unwrap_err()
                .to_string(),
            "f.csv has 17 columns; a model takes 1 to 16"
        );
        assert_eq!(
            read(b"1,2\n3,2\n5,2\n", Normalize::Standard),
            "column 2 of f.csv is constant: it cannot be standardized (use --normalize none)"
        );
        assert!(PointSet::read(&b"1,2\n3,2\n"[..], "f", Normalize::None).is_ok());
        assert_eq!(
            read(&npy("<f4", "(0, 2)", &[]), Normalize::None),
            "f.csv holds no points"
        );
        assert!(
            read(&npy("<i4", "(2, 2)", &[0; 16]), Normalize::Standard).contains("dtype <i4"),
            "{}",
            read(&npy("<i4", "(2, 2)", &[0; 16]), Normalize::Standard)
        );
        // the mean is 1e37: −3.4e38 minus it is beyond f32's range
        assert_eq!(
            read(b"3e38,0\n3.4e38,1\n-3.4e38,2\n", Normalize::Standard),
            "row 3 of f.csv overflows f32 once normalized"
        );
        let tiny = PointSet::new("f.csv", 2, vec![0.0, 0.0, 1e-39, 1.0], Normalize::Standard);
        assert!(
            matches!(tiny, Err(PointsError::Spread { column: 1, .. })),
            "{tiny:?}"
        );
    }
}

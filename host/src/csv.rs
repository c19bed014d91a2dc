//! The CLI's CSV files: sample points (`x,y`) and loss logs (`step,loss`).
//!
//! Reading is strict because these files feed numbers into a model or a metric: every field
//! used must parse as a finite `f32` (a text field or a NaN is an error naming its line and
//! column), every row must have the same number of columns, at least the ones asked for.
//! One header line is allowed: a first line none of whose fields is a number.
//!
//! Writing uses Rust's shortest round-trip float form (`{}` of `f32`), so a value parses back
//! to the exact same bits, and goes through [`crate::atomic`]: a reader never sees half a file.

use std::io::{self, Write};
use std::path::Path;

/// Why a CSV file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    /// The file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: io::Error,
    },
    /// A field is not a number.
    #[error("{path}: line {line}, column {column}: {text:?} is not a number")]
    NotANumber {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// 1-based column number.
        column: usize,
        /// The field as written.
        text: String,
    },
    /// A field is NaN or infinite.
    #[error("{path}: line {line}, column {column}: {text:?} is not a finite number")]
    NonFinite {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// 1-based column number.
        column: usize,
        /// The field as written.
        text: String,
    },
    /// A row has too few columns, or another count than the rows before it.
    #[error("{path}: line {line}: {found} column(s), expected {expected}")]
    Columns {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// Columns in this row.
        found: usize,
        /// Columns wanted (the first row's count, or the minimum needed).
        expected: String,
    },
    /// No data rows at all.
    #[error("{path}: no data rows")]
    Empty {
        /// The file.
        path: String,
    },
}

/// Reads the first `N` columns of every row as `f32` (see the module docs for the rules).
pub fn read_rows<const N: usize>(path: &Path) -> Result<Vec<[f32; N]>, CsvError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| CsvError::Io {
        path: name.clone(),
        source,
    })?;
    parse_rows(&name, &text)
}

/// [`read_rows`] on text already in memory; `name` is used in messages.
pub fn parse_rows<const N: usize>(name: &str, text: &str) -> Result<Vec<[f32; N]>, CsvError> {
    let mut rows = Vec::new();
    let mut width = None;
    let mut first = true;
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if std::mem::take(&mut first) && fields.iter().all(|f| f.parse::<f32>().is_err()) {
            continue;
        }
        let expected = *width.get_or_insert(fields.len());
        if fields.len() != expected || fields.len() < N {
            return Err(CsvError::Columns {
                path: name.to_string(),
                line: line_no,
                found: fields.len(),
                expected: if fields.len() < N {
                    format!("at least {N}")
                } else {
                    expected.to_string()
                },
            });
        }
        let mut row = [0.0f32; N];
        for (column, (value, text)) in row.iter_mut().zip(&fields).enumerate() {
            let bad = |nonfinite: bool| {
                let (path, line, column, text) =
                    (name.to_string(), line_no, column + 1, text.to_string());
                if nonfinite {
                    CsvError::NonFinite {
                        path,
                        line,
                        column,
                        text,
                    }
                } else {
                    CsvError::NotANumber {
                        path,
                        line,
                        column,
                        text,
                    }
                }
            };
            *value = text.parse::<f32>().map_err(|_| bad(false))?;
            if !value.is_finite() {
                return Err(bad(true));
            }
        }
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(CsvError::Empty {
            path: name.to_string(),
        });
    }
    Ok(rows)
}

/// Reads 2-D points: the first two columns of every row.
pub fn read_points(path: &Path) -> Result<Vec<[f32; 2]>, CsvError> {
    read_rows::<2>(path)
}

/// Reads a loss log written by [`write_losses`]: `(step, loss)` rows.
pub fn read_losses(path: &Path) -> Result<Vec<(u64, f32)>, CsvError> {
    Ok(read_rows::<2>(path)?
        .into_iter()
        .map(|[step, loss]| (step as u64, loss))
        .collect())
}

fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut io::BufWriter<std::fs::File>) -> io::Result<()>,
) -> Result<(), CsvError> {
    crate::atomic::write_with(path, fill).map_err(|source| CsvError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Writes points with the header `x,y`, one row per point, atomically.
pub fn write_points(path: &Path, points: &[[f32; 2]]) -> Result<(), CsvError> {
    write_atomic(path, |w| {
        writeln!(w, "x,y")?;
        points.iter().try_for_each(|[x, y]| writeln!(w, "{x},{y}"))
    })
}

/// Writes a loss log with the header `step,loss`, atomically.
pub fn write_losses(path: &Path, losses: &[(u64, f32)]) -> Result<(), CsvError> {
    write_atomic(path, |w| {
        writeln!(w, "step,loss")?;
        losses
            .iter()
            .try_for_each(|(step, loss)| writeln!(w, "{step},{loss}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_round_trip_to_the_exact_bits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.csv");
        let points = [
            [0.1f32, -3.0e-7],
            [f32::MIN_POSITIVE, 1.0 / 3.0],
            [-0.0, 7.5],
        ];
        write_points(&path, &points).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("x,y\n0.1,-0.0000003\n"), "{text}");
        let back = read_points(&path).unwrap();
        let bits = |p: &[[f32; 2]]| p.iter().flatten().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back), bits(&points));
    }

    #[test]
    fn header_is_optional_and_extra_columns_are_ignored() {
        let rows = parse_rows::<2>("a", "x0,x1,t\n1,2,3\n\n4,5,6\n").unwrap();
        assert_eq!(rows, vec![[1.0, 2.0], [4.0, 5.0]]);
        assert_eq!(parse_rows::<2>("a", "1,2\n").unwrap(), vec![[1.0, 2.0]]);
    }

    #[test]
    fn bad_fields_name_line_and_column() {
        let e = parse_rows::<2>("f.csv", "x,y\n1,2\n3,abc\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "f.csv: line 3, column 2: \"abc\" is not a number"
        );
        let e = parse_rows::<2>("f.csv", "x,y\nNaN,2\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "f.csv: line 2, column 1: \"NaN\" is not a finite number"
        );
        let e = parse_rows::<2>("f.csv", "x,y\n1\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "f.csv: line 2: 1 column(s), expected at least 2"
        );
        let e = parse_rows::<2>("f.csv", "1,2\n1,2,3\n").unwrap_err();
        assert_eq!(e.to_string(), "f.csv: line 2: 3 column(s), expected 2");
        let e = parse_rows::<2>("f.csv", "x,y\na,b\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "f.csv: line 2, column 1: \"a\" is not a number"
        );
        let e = parse_rows::<2>("f.csv", "x,y\n").unwrap_err();
        assert_eq!(e.to_string(), "f.csv: no data rows");
    }
}

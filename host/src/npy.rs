//! NumPy `.npy` point sets: an N × D array of float32 or float64 (C order), read as a stream
//! with `npyz`, bounded before any value is read.
//!
//! `npyz` allocates the header text at the length the file states (up to 4 GiB in format
//! versions 2 and 3): the preamble is checked here first, so a hostile header costs at most
//! [`MAX_HEADER`] bytes. The shape then bounds the rest: N ≤ the caller's row limit,
//! D ≤ [`MAX_DIM`], and the values are read one at a time, each checked finite.

use std::io::{self, Cursor, Read};

use npyz::{DType, NpyFile, Order};
use tinyddpm_core::units::MAX_DIM;

/// The most header bytes read: NumPy writes a header of a few dozen bytes padded to 64.
pub const MAX_HEADER: usize = 65_536;

/// Why a `.npy` file is not a point set.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    /// Not a `.npy` file, or its header is damaged.
    #[error("{name}: not a NumPy .npy file ({why})")]
    Format {
        /// The file's name.
        name: String,
        /// What is wrong.
        why: String,
    },
    /// An array that is not N × D (D = 1 … 16) of float32 or float64 in C order.
    #[error(
        "{name}: {what}; a point set is an N × D array (D = 1 … {MAX_DIM}) of float32 or float64 in C order"
    )]
    Shape {
        /// The file's name.
        name: String,
        /// What the file holds.
        what: String,
    },
    /// More rows than the limit.
    #[error("{name}: {rows} rows, more than the {limit} this command reads")]
    TooManyRows {
        /// The file's name.
        name: String,
        /// Its rows.
        rows: u64,
        /// The limit.
        limit: usize,
    },
    /// A value is NaN or infinite.
    #[error("{name}: row {row}, column {column} is not a finite number")]
    NotFinite {
        /// The file's name.
        name: String,
        /// Its row, from 1.
        row: usize,
        /// Its column, from 1.
        column: usize,
    },
    /// The file could not be read (or ended before its shape).
    #[error("{name}: {source}")]
    Io {
        /// The file's name.
        name: String,
        /// The error.
        source: io::Error,
    },
}

/// The `.npy` magic string.
const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Whether `prefix` starts like a `.npy` file.
pub fn is_npy(prefix: &[u8]) -> bool {
    prefix.starts_with(MAGIC)
}

/// A version 1 `.npy` file of dtype `descr` (`<f4`) and `shape` (`(2, 3)`), its data given as
/// bytes: the magic, the version, the header's length, the header dict padded with spaces and
/// a newline to 64 bytes, as NumPy's format specification writes them (not through npyz, so
/// that the reader's tests do not check npyz against itself).
pub fn version_1(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.extend_from_slice(data);
    out
}

/// Reads an N × D point set from `reader` (named `name` in errors), at most `max_rows` rows:
/// (D, the values row-major as f32). Float64 values are rounded to the nearest f32.
pub fn read_points(
    mut reader: impl Read,
    name: &str,
    max_rows: usize,
) -> Result<(usize, Vec<f32>), NpyError> {
    let io = |source| NpyError::Io {
        name: name.to_string(),
        source,
    };
    let format = |why: String| NpyError::Format {
        name: name.to_string(),
        why,
    };
    let shape = |what: String| NpyError::Shape {
        name: name.to_string(),
        what,
    };
    // Magic, version, and the header's length: 2 bytes in version 1, 4 in versions 2 and 3.
    let mut preamble = [0u8; 12];
    let mut got = 0;
    while got < 10 {
        match reader.read(&mut preamble[got..10]).map_err(io)? {
            0 => break,
            n => got += n,
        }
    }
    if !preamble[..got.min(6)].iter().eq(&MAGIC[..got.min(6)]) || got == 0 {
        return Err(format("no .npy magic".into()));
    }
    if got < 10 {
        return Err(format(format!("{got} bytes, shorter than a header")));
    }
    let (len, preamble) = match preamble[6] {
        1 => (
            usize::from(u16::from_le_bytes([preamble[8], preamble[9]])),
            &preamble[..10],
        ),
        2 | 3 => {
            reader.read_exact(&mut preamble[10..]).map_err(io)?;
            let [a, b, c, d] = [preamble[8], preamble[9], preamble[10], preamble[11]];
            (u32::from_le_bytes([a, b, c, d]) as usize, &preamble[..])
        }
        v => return Err(format(format!("format version {v}"))),
    };
    if len > MAX_HEADER {
        return Err(format(format!("a header of {len} bytes")));
    }
    let whole = Cursor::new(preamble.to_vec()).chain(reader);
    let file = NpyFile::new(whole).map_err(|e| format(e.to_string()))?;
    let (rows, dim) = match *file.shape() {
        [n, d] => (n, d),
        ref other => return Err(shape(format!("an array of shape {other:?}"))),
    };
    if file.order() != Order::C {
        return Err(shape("an array in Fortran order".into()));
    }
    if !(1..=MAX_DIM as u64).contains(&dim) {
        return Err(shape(format!("{dim} columns")));
    }
    if rows > max_rows as u64 {
        return Err(NpyError::TooManyRows {
            name: name.into(),
            rows,
            limit: max_rows,
        });
    }
    let (rows, dim) = (rows as usize, dim as usize);
    let dtype = file.dtype();
    let mut values = Vec::with_capacity(rows * dim);
    let mut push = |i: usize, v: f32| {
        if !v.is_finite() {
            return Err(NpyError::NotFinite {
                name: name.into(),
                row: i / dim + 1,
                column: i % dim + 1,
            });
        }
        values.push(v);
        Ok(())
    };
    let not_float = || shape(format!("an array of dtype {}", dtype_name(&dtype)));
    match &dtype {
        DType::Plain(t) if t.to_string().ends_with("f4") => {
            let data = file.data::<f32>().map_err(|_| not_float())?;
            for (i, v) in data.enumerate() {
                push(i, v.map_err(io)?)?;
            }
        }
        DType::Plain(t) if t.to_string().ends_with("f8") => {
            let data = file.data::<f64>().map_err(|_| not_float())?;
            for (i, v) in data.enumerate() {
                // A finite f64 beyond f32's range rounds to infinity and is refused.
                push(i, v.map_err(io)? as f32)?;
            }
        }
        _ => return Err(not_float()),
    }
    Ok((dim, values))
}

/// The dtype as NumPy writes it (`<f4`, `|u1`), or "a record".
fn dtype_name(dtype: &DType) -> String {
    match dtype {
        DType::Plain(t) => t.to_string(),
        _ => "a record or array".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        version_1(descr, shape, data)
    }

    fn f32s(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn float32_and_float64_arrays_read_row_major() {
        let bytes = npy("<f4", "(2, 3)", &f32s(&[1.0, 2.0, 3.0, 4.0, 5.0, 0.1]));
        let (dim, values) = read_points(&bytes[..], "a.npy", 10).unwrap();
        assert_eq!((dim, values), (3, vec![1.0, 2.0, 3.0, 4.0, 5.0, 0.1]));
        let data: Vec<u8> = [0.1f64, -2.5]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let (dim, values) = read_points(&npy("<f8", "(2, 1)", &data)[..], "b.npy", 10).unwrap();
        assert_eq!((dim, values), (1, vec![0.1f32, -2.5]));
    }

    #[test]
    fn what_is_not_a_point_set_is_one_clear_error() {
        let msg = |bytes: Vec<u8>| read_points(&bytes[..], "x.npy", 3).unwrap_err().to_string();
        assert!(msg(b"x,y\n1,2\n".to_vec()).contains("not a NumPy .npy file (no .npy magic)"));
        assert!(msg(Vec::new()).contains("(no .npy magic)"));
        assert!(msg(MAGIC[..4].to_vec()).contains("4 bytes, shorter than a header"));
        assert!(msg(npy("<f4", "(2,)", &f32s(&[1.0, 2.0]))).contains("an array of shape [2]"));
        assert!(msg(npy("<f4", "(1, 17)", &f32s(&[0.0; 17]))).contains("17 columns"));
        assert!(msg(npy("<i4", "(1, 2)", &[0; 8])).contains("an array of dtype <i4"));
        assert!(msg(npy("<f4", "(4, 1)", &f32s(&[0.0; 4]))).contains("4 rows, more than the 3"));
        assert!(
            msg(npy("<f4", "(1, 2)", &f32s(&[0.0, f32::NAN])))
                .contains("row 1, column 2 is not a finite number")
        );
        let data: Vec<u8> = 1e300f64.to_le_bytes().to_vec();
        assert!(msg(npy("<f8", "(1, 1)", &data)).contains("not a finite number"));
        // Short data: the stream ends early.
        assert!(msg(npy("<f4", "(2, 2)", &f32s(&[0.0; 3]))).starts_with("x.npy: "));
        // A version 2 header claiming 4 GiB is refused before anything is allocated.
        let mut huge = MAGIC.to_vec();
        huge.extend_from_slice(&[2, 0]);
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(msg(huge).contains("a header of 4294967295 bytes"));
    }
}

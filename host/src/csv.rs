//! The CLI's CSV files: sample points (`x,y`), points of any width (1 to
//! [`MAX_DIM`] columns, [`read_point_cloud_from`]) and loss logs (`step,loss`).
//!
//! Reading is strict because these files feed numbers into a model or a metric: every field
//! used must parse as a finite `f32` (a text field or a NaN is an error naming its line and
//! column), every row must have the same number of columns, at least the ones asked for.
//! One header line is allowed: a first line none of whose fields is a number. Blank lines
//! are skipped. The `csv` crate splits the records (quotes, CRLF, bytes that are not UTF-8,
//! line numbers); the column count is checked here rather than by its `flexible(false)`,
//! because the header line does not count toward the width and a blank line of spaces is
//! not a one-column row. A line longer than [`MAX_LINE`] is an error: a file without line
//! breaks (`/dev/zero`) must not be read into one ever-growing record.
//!
//! Writing uses Rust's shortest round-trip float form (`{}` of `f32`), so a value parses back
//! to the exact same bits (the `csv` crate's writer formats floats another way), and goes
//! through [`crate::atomic`]: a reader never sees half a file.

use std::io::{self, Read, Write};
use std::path::Path;

use crate::atomic::AtomicFile;
use crate::scores::{MAX_DIM, Points};

/// The longest line read, in bytes: far above any row of numbers.
pub const MAX_LINE: usize = 1 << 20;
/// The most data rows a reader takes unless its caller says fewer: 10 million points are
/// 80 MB held as `f32` pairs, and an endless input (`yes 0,0 |`) stops within seconds.
pub const MAX_ROWS: usize = 10_000_000;
/// The most rows of a loss log read: it is streamed (drawn in bounded memory, copied row by
/// row on resume), so this bounds the time only: 100 million steps of training.
pub const MAX_LOSS_ROWS: usize = 100_000_000;
/// Characters of a bad field quoted in an error message.
const QUOTE_CHARS: usize = 80;

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
        /// The field as written (its first 80 characters when longer).
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
        /// The field as written (its first 80 characters when longer).
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
    /// A row of a reader of every column has more than [`MAX_DIM`] of them.
    #[error("{path}: line {line}: {found} columns; at most {MAX_DIM} are read")]
    TooManyColumns {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// Columns in this row.
        found: usize,
    },
    /// A line is longer than [`MAX_LINE`] bytes.
    #[error("{path}: line {line} is longer than {} bytes", MAX_LINE)]
    LineTooLong {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
    },
    /// More data rows than the reader takes.
    #[error("{path}: more than {max} data rows, the most read here")]
    TooManyRows {
        /// The file.
        path: String,
        /// The most rows read.
        max: usize,
    },
    /// The text column asked for by name is not in the header line, or there is none.
    #[error("{path}: no column named {name:?}: {}", no_column_why(*.header))]
    NoColumn {
        /// The file.
        path: String,
        /// The name asked for.
        name: String,
        /// Whether the file has a header line (which lacks the name).
        header: bool,
    },
    /// No data rows at all.
    #[error("{path}: no data rows")]
    Empty {
        /// The file.
        path: String,
    },
}

/// Reads the first `N` columns of every row as `f32` (see the module docs for the rules),
/// at most [`MAX_ROWS`] rows.
pub fn read_rows<const N: usize>(path: &Path) -> Result<Vec<[f32; N]>, CsvError> {
    read_rows_from(open(path)?, &path.display().to_string(), MAX_ROWS)
}

/// [`read_rows`] on any reader, at most `max_rows` data rows (more is an error, found
/// after reading one row past the cap, not after the whole input); `name` is used in
/// messages. Each row costs `4·N` bytes of memory.
pub fn read_rows_from<const N: usize>(
    reader: impl Read,
    name: &str,
    max_rows: usize,
) -> Result<Vec<[f32; N]>, CsvError> {
    let mut rows = Vec::new();
    visit(name, reader, false, max_rows, |_, row| rows.push(row))?;
    Ok(rows)
}

/// [`read_rows`] on text already in memory; `name` is used in messages.
pub fn parse_rows<const N: usize>(name: &str, text: &str) -> Result<Vec<[f32; N]>, CsvError> {
    parse_reader(name, text.as_bytes())
}

/// A field as a message quotes it: at most [`QUOTE_CHARS`] characters, bytes that are not
/// UTF-8 replaced, and the full length said when cut.
pub(crate) fn quote(field: &[u8]) -> String {
    let text = String::from_utf8_lossy(field);
    match text.char_indices().nth(QUOTE_CHARS) {
        Some((cut, _)) => format!("{}… ({} bytes)", &text[..cut], field.len()),
        None => text.into_owned(),
    }
}

/// [`read_rows`] on any reader; `name` is used in messages.
pub fn parse_reader<const N: usize>(
    name: &str,
    reader: impl Read,
) -> Result<Vec<[f32; N]>, CsvError> {
    read_rows_from(reader, name, MAX_ROWS)
}

/// Reads rows of a text label followed by `N` numbers (the rules of [`read_rows`] for the
/// numbers; the label is any text, bytes that are not UTF-8 replaced), at most `max_rows`.
pub fn read_labeled_from<const N: usize>(
    reader: impl Read,
    name: &str,
    max_rows: usize,
) -> Result<Vec<(String, [f32; N])>, CsvError> {
    let mut rows = Vec::new();
    visit(name, reader, true, max_rows, |label, row| {
        rows.push((String::from_utf8_lossy(label).into_owned(), row))
    })?;
    Ok(rows)
}

/// Reads points of any width: every column of every row as `f32` (see the module docs for
/// the rules), the width set by the first data row and at most [`MAX_DIM`], at most
/// `max_rows` rows; `name` is used in messages. Each row costs `4·width` bytes of memory.
pub fn read_point_cloud_from(
    reader: impl Read,
    name: &str,
    max_rows: usize,
) -> Result<Points, CsvError> {
    let (mut values, mut dim) = (Vec::new(), 0);
    visit_fields(name, reader, None, max_rows, Columns::All, |_, _, row| {
        dim = row.len();
        values.extend_from_slice(row);
        true
    })?;
    Ok(Points::trusted(dim, values))
}

/// Which column of a row is text (a label, handed over as written) rather than a number,
/// for [`visit_with_text`]; every other column is one of the row's numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextColumn<'a> {
    /// Column `i`, from 0.
    At(usize),
    /// The last column (of the data rows).
    Last,
    /// The column whose field in the header line is this name.
    Named(&'a str),
}

/// Reads rows of numbers with one text field each, at `text`: the other columns are the
/// row's numbers (the rules of [`read_point_cloud_from`]: 1 to [`MAX_DIM`] of them, the
/// width set by the first data row), the text field is handed over as written (trimmed).
/// The header test (a first line none of whose fields is a number) skips the text column,
/// unless it is the line's only field.
/// `each` gets each row's 1-based line, text and numbers as it is read, and may stop the
/// read with its error. At most `max_rows` rows; returns how many were read.
pub fn visit_with_text<E: From<CsvError>>(
    reader: impl Read,
    name: &str,
    max_rows: usize,
    text: TextColumn<'_>,
    mut each: impl FnMut(usize, &[u8], &[f32]) -> Result<(), E>,
) -> Result<usize, E> {
    let mut failed = None;
    let rows = visit_fields(
        name,
        reader,
        Some(text),
        max_rows,
        Columns::All,
        |l, t, row| each(l, t, row).map_err(|e| failed = Some(e)).is_ok(),
    )?;
    failed.map_or(Ok(rows), Err)
}

/// Opens `path` for the readers that are given a path (a FIFO waited for as Unix tools do).
fn open(path: &Path) -> Result<std::fs::File, CsvError> {
    crate::input::open_path(path).map_err(|source| CsvError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Reads `reader` row by row, handing each row's label (empty unless `labeled`) and
/// numbers to `each` as it is read: nothing but the current record is held here. With
/// `labeled`, column 1 is a label and the numbers start at column 2. More than `max_rows`
/// data rows is an error; returns the number of rows.
pub fn visit<const N: usize>(
    name: &str,
    reader: impl Read,
    labeled: bool,
    max_rows: usize,
    mut each: impl FnMut(&[u8], [f32; N]),
) -> Result<usize, CsvError> {
    visit_fields(
        name,
        reader,
        labeled.then_some(TextColumn::At(0)),
        max_rows,
        Columns::First(N),
        |_, label, row| {
            let mut numbers = [0.0f32; N];
            // `visit_fields` hands over exactly N numbers for `Columns::First(N)`.
            numbers.copy_from_slice(row);
            each(label, numbers);
            true
        },
    )
}

/// Which columns of a row (the text column aside, if any) are its numbers.
#[derive(Clone, Copy)]
enum Columns {
    /// The first this many; a row may have more, which are not read.
    First(usize),
    /// All of them, at least 1 and at most [`MAX_DIM`].
    All,
}

/// [`visit`] for any [`Columns`] and [`TextColumn`]: `each` gets the row's line, its text
/// field (empty without a text column) and its numbers as a slice, and returns whether to go
/// on (the read stops, with the rows so far, when it says no).
fn visit_fields(
    name: &str,
    reader: impl Read,
    text: Option<TextColumn<'_>>,
    max_rows: usize,
    columns: Columns,
    mut each: impl FnMut(usize, &[u8], &[f32]) -> bool,
) -> Result<usize, CsvError> {
    let path = || name.to_string();
    let skip = usize::from(text.is_some());
    // The text column, once known (`Last`: at the first data row).
    let mut at = None;
    // The fewest columns a row may have: the numbers, the text column and those before it.
    let mut need = skip
        + match columns {
            Columns::First(n) => n,
            Columns::All => 1,
        };
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(::csv::Trim::All)
        .from_reader(LineCap::new(reader));
    let mut record = ::csv::ByteRecord::new();
    let mut row = Vec::new();
    let mut rows = 0usize;
    let mut width = None;
    let mut first = true;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let line = reader.get_ref().lines + 1;
                return Err(match e.into_kind() {
                    ::csv::ErrorKind::Io(e) if e.kind() == io::ErrorKind::FileTooLarge => {
                        CsvError::LineTooLong { path: path(), line }
                    }
                    ::csv::ErrorKind::Io(source) => CsvError::Io {
                        path: path(),
                        source,
                    },
                    other => CsvError::Io {
                        path: path(),
                        source: io::Error::other(format!("{other:?}")),
                    },
                });
            }
        }
        let line_no = record.position().map_or(0, |p| p.line() as usize);
        if record.len() == 1 && record[0].is_empty() {
            continue;
        }
        let number = |field: &[u8]| std::str::from_utf8(field).ok()?.parse::<f32>().ok();
        if std::mem::take(&mut first) {
            let here = text.and_then(|t| match t {
                TextColumn::At(i) => Some(i),
                TextColumn::Last => record.len().checked_sub(1),
                TextColumn::Named(n) => record.iter().position(|f| f == n.as_bytes()),
            });
            let header = record
                .iter()
                .enumerate()
                .all(|(i, f)| (Some(i) == here && record.len() > 1) || number(f).is_none());
            if let Some(TextColumn::Named(n)) = text
                && (here.is_none() || !header)
            {
                return Err(CsvError::NoColumn {
                    path: path(),
                    name: n.into(),
                    header,
                });
            }
            at = here.filter(|_| !matches!(text, Some(TextColumn::Last)));
            need = need.max(at.map_or(0, |i| i + 1));
            if header {
                continue;
            }
        }
        let expected = *width.get_or_insert(record.len());
        if let Some(TextColumn::Last) = text {
            at = expected.checked_sub(1);
        }
        if record.len() != expected || record.len() < need {
            return Err(CsvError::Columns {
                path: path(),
                line: line_no,
                found: record.len(),
                expected: if record.len() < need {
                    format!("at least {need}")
                } else {
                    expected.to_string()
                },
            });
        }
        let count = match columns {
            Columns::First(n) => n,
            Columns::All if record.len() - skip > MAX_DIM => {
                return Err(CsvError::TooManyColumns {
                    path: path(),
                    line: line_no,
                    found: record.len() - skip,
                });
            }
            Columns::All => record.len() - skip,
        };
        if rows == max_rows {
            return Err(CsvError::TooManyRows {
                path: path(),
                max: max_rows,
            });
        }
        row.clear();
        let numbers = record.iter().enumerate().filter(|&(i, _)| Some(i) != at);
        for (column, field) in numbers.take(count) {
            let (line, column, text) = (line_no, column + 1, quote(field));
            let value = number(field).ok_or_else(|| CsvError::NotANumber {
                path: path(),
                line,
                column,
                text: text.clone(),
            })?;
            if !value.is_finite() {
                return Err(CsvError::NonFinite {
                    path: path(),
                    line,
                    column,
                    text,
                });
            }
            row.push(value);
        }
        let label = at.map_or(&[][..], |i| &record[i]);
        rows += 1;
        if !each(line_no, label, &row) {
            return Ok(rows);
        }
    }
    if rows == 0 {
        return Err(CsvError::Empty { path: path() });
    }
    Ok(rows)
}

/// The end of [`CsvError::NoColumn`]'s message.
fn no_column_why(header: bool) -> &'static str {
    match header {
        true => "the header line has none",
        false => "the file has no header line",
    }
}

/// A reader that fails (`FileTooLarge`) once a line exceeds [`MAX_LINE`] bytes, and counts
/// the line breaks it has passed on.
struct LineCap<R> {
    inner: R,
    /// Line breaks read so far.
    lines: usize,
    /// Bytes since the last line break.
    current: usize,
}

impl<R> LineCap<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            lines: 0,
            current: 0,
        }
    }
}

impl<R: Read> Read for LineCap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        for &byte in &buf[..n] {
            if byte == b'\n' {
                self.lines += 1;
                self.current = 0;
            } else {
                self.current += 1;
                if self.current > MAX_LINE {
                    return Err(io::ErrorKind::FileTooLarge.into());
                }
            }
        }
        Ok(n)
    }
}

/// Reads 2-D points: the first two columns of every row, at most [`MAX_ROWS`].
pub fn read_points(path: &Path) -> Result<Vec<[f32; 2]>, CsvError> {
    read_rows::<2>(path)
}

/// Reads a loss log written by [`write_losses`]: `(step, loss)` rows, at most [`MAX_ROWS`].
pub fn read_losses(path: &Path) -> Result<Vec<(u64, f32)>, CsvError> {
    let mut rows = Vec::new();
    visit_losses(
        open(path)?,
        &path.display().to_string(),
        MAX_ROWS,
        |step, loss| rows.push((step, loss)),
    )?;
    Ok(rows)
}

/// Hands each `(step, loss)` row of a loss log to `each` as it is read, at most `max_rows`.
pub fn visit_losses(
    reader: impl Read,
    name: &str,
    max_rows: usize,
    mut each: impl FnMut(u64, f32),
) -> Result<usize, CsvError> {
    visit::<2>(name, reader, false, max_rows, |_, [step, loss]| {
        each(step as u64, loss)
    })
}

fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut AtomicFile) -> io::Result<()>,
) -> Result<(), CsvError> {
    crate::atomic::write_with(path, fill).map_err(|source| CsvError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Writes the header line of a points file of `dim` columns (the core's [`ColumnNames`]).
///
/// [`ColumnNames`]: tinyddpm_core::ColumnNames
pub fn write_points_header(w: &mut impl Write, dim: usize) -> io::Result<()> {
    writeln!(w, "{}", tinyddpm_core::ColumnNames(dim))
}

/// Writes points of `dim` coordinates (`rows`: one point after another) as rows of a points
/// file, in the shortest form that reads back exactly.
pub fn write_point_rows(w: &mut impl Write, rows: &[f32], dim: usize) -> io::Result<()> {
    for row in rows.chunks_exact(dim.max(1)) {
        let mut sep = "";
        for v in row {
            write!(w, "{sep}{v}")?;
            sep = ",";
        }
        writeln!(w)?;
    }
    Ok(())
}

/// Writes points with the header `x,y`, one row per point, atomically.
pub fn write_points(path: &Path, points: &[[f32; 2]]) -> Result<(), CsvError> {
    write_rows(path, points.as_flattened(), 2)
}

/// Writes points of any D with their header (`x,y` for D = 2), one row per point,
/// atomically: what `tinyddpm sample` writes.
pub fn write_cloud(path: &Path, points: &Points) -> Result<(), CsvError> {
    write_rows(path, points.values(), points.dim())
}

fn write_rows(path: &Path, rows: &[f32], dim: usize) -> Result<(), CsvError> {
    write_atomic(path, |w| {
        write_points_header(w, dim)?;
        write_point_rows(w, rows, dim)
    })
}

/// Writes the header line of a loss log (`step,loss`).
pub fn write_losses_header(w: &mut impl Write) -> io::Result<()> {
    writeln!(w, "step,loss")
}

/// Writes one row of a loss log.
pub fn write_loss_row(w: &mut impl Write, step: u64, loss: f32) -> io::Result<()> {
    writeln!(w, "{step},{loss}")
}

/// Writes a loss log with the header `step,loss`, atomically.
pub fn write_losses(path: &Path, losses: &[(u64, f32)]) -> Result<(), CsvError> {
    write_atomic(path, |w| {
        write_losses_header(w)?;
        losses
            .iter()
            .try_for_each(|&(step, loss)| write_loss_row(w, step, loss))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labeled_rows_keep_their_text_and_check_their_numbers() {
        let text = "sampler,steps,mean\nddim,20,0.06\ndpmpp-3m (karras),15,0.03\n";
        let rows = read_labeled_from::<2>(text.as_bytes(), "q.csv", 10).unwrap();
        assert_eq!(rows[1], ("dpmpp-3m (karras)".to_string(), [15.0, 0.03]));
        let e = read_labeled_from::<2>(&b"ddim,20,x\n"[..], "q.csv", 10)
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with("line 1, column 3: \"x\" is not a number"),
            "{e}"
        );
    }

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

    #[test]
    fn long_fields_are_quoted_short_and_bytes_that_are_not_utf8_get_a_line() {
        let long = format!("x,y\n1,{}\n", "7a".repeat(500_000));
        let e = parse_rows::<2>("f.csv", &long).unwrap_err().to_string();
        assert!(e.starts_with("f.csv: line 2, column 2: \"7a7a"), "{e}");
        assert!(e.ends_with("… (1000000 bytes)\" is not a number"), "{e}");
        assert!(e.len() < 160, "{e}");
        let e = parse_reader::<2>("f.csv", &b"x,y\n1,2\n\xff\xfe,3\n"[..]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "f.csv: line 3, column 1: \"\u{fffd}\u{fffd}\" is not a number"
        );
    }

    #[test]
    fn a_line_without_end_is_an_error_not_a_growing_record() {
        let endless = io::repeat(0).take(10 * MAX_LINE as u64);
        let head = &b"x,y\n1,2\n"[..];
        let e = parse_reader::<2>("zero", head.chain(endless)).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("zero: line 3 is longer than {MAX_LINE} bytes")
        );
    }

    #[test]
    fn quotes_crlf_and_blank_lines_are_read() {
        let rows = parse_rows::<2>("a", "\"x\",\"y\"\r\n\"1\", 2 \r\n   \r\n3,4").unwrap();
        assert_eq!(rows, vec![[1.0, 2.0], [3.0, 4.0]]);
    }

    #[test]
    fn more_rows_than_the_cap_stop_the_read_at_the_cap() {
        let rows = read_rows_from::<2>(&b"x,y\n1,2\n3,4\n"[..], "a", 2).unwrap();
        assert_eq!(rows, [[1.0, 2.0], [3.0, 4.0]]);
        // An endless input, as `yes 7,1` writes it: the error comes after the cap's rows.
        let endless = Yes {
            line: b"7,1\n",
            at: 0,
        };
        let e = read_rows_from::<2>(endless, "yes", 1000).unwrap_err();
        assert_eq!(
            e.to_string(),
            "yes: more than 1000 data rows, the most read here"
        );
    }

    #[test]
    fn point_clouds_take_every_column_up_to_sixteen() {
        let read = |text: &str| read_point_cloud_from(text.as_bytes(), "p.csv", 3);
        let p = read("a,b,c\n1,2,3\n\n4,5,6\n").unwrap();
        assert_eq!(
            (p.dim(), p.values()),
            (3, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0][..])
        );
        assert_eq!(read("7\n8\n").unwrap().values(), &[7.0, 8.0]);
        let sixteen = vec!["0.5"; 16].join(",");
        assert_eq!(read(&sixteen).unwrap().dim(), 16);
        let cases = [
            (
                "1,2\n3,x\n",
                "p.csv: line 2, column 2: \"x\" is not a number",
            ),
            ("1,2\n3,4,5\n", "p.csv: line 2: 3 column(s), expected 2"),
            ("1,2\n3\n", "p.csv: line 2: 1 column(s), expected 2"),
            (
                "1,nan\n",
                "p.csv: line 1, column 2: \"nan\" is not a finite number",
            ),
            (
                "x\n-inf\n",
                "p.csv: line 2, column 1: \"-inf\" is not a finite number",
            ),
            (
                "1\n2\n3\n4\n",
                "p.csv: more than 3 data rows, the most read here",
            ),
            ("x,y\n", "p.csv: no data rows"),
        ];
        for (text, message) in cases {
            assert_eq!(read(text).unwrap_err().to_string(), message, "{text}");
        }
        let seventeen = vec!["1"; 17].join(",");
        assert_eq!(
            read(&seventeen).unwrap_err().to_string(),
            "p.csv: line 1: 17 columns; at most 16 are read"
        );
    }

    /// `line` repeated forever.
    struct Yes {
        line: &'static [u8],
        at: usize,
    }

    impl Read for Yes {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            for byte in buf.iter_mut() {
                *byte = self.line[self.at];
                self.at = (self.at + 1) % self.line.len();
            }
            Ok(buf.len())
        }
    }
}

//! Labelled points: a CSV of N rows, each a point of D numbers (1 to [`MAX_DIM`]) and an
//! integer class label in one more column, for the class adherence of conditioned samples
//! ([`crate::scores::adherence`]).
//!
//! **Reading** is the CLI's CSV reading ([`crate::csv::visit_with_text`]): one optional
//! header line, blank lines skipped, every row of one width, every number finite, at most
//! `max_rows` rows, each line at most [`crate::csv::MAX_LINE`] bytes. The label column is
//! chosen by [`LabelColumn`]: a 0-based index, a name in the header line, or (the default)
//! the last column; the other columns, in order, are the point.
//!
//! **Labels** are integers from 0 to 65535 written in decimal, and must be exactly integral
//! *as written*: the text is checked digit by digit, never rounded through a float. So `3`,
//! `03`, `+3`, `3.`, `3.0`, `3.000` and `3.000000000000000000e+00` (NumPy's `savetxt`) are
//! all 3, and `-0` is 0; `3.5`, `3.0000000001`, `-1`, `65536`, `1e9`, `0x3`, `nan`, `inf`
//! and `three` are errors naming the line. The class count C is the largest label plus one,
//! whether or not every smaller label occurs.

use std::fmt;
use std::io::Read;
use std::str::FromStr;

use crate::csv::{self, CsvError, TextColumn};
use crate::scores::{MAX_DIM, Points};

/// Which column of a labelled CSV holds the labels.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum LabelColumn {
    /// The last column (the default).
    #[default]
    Last,
    /// The column at this 0-based index.
    Index(usize),
    /// The column of this name in the header line.
    Name(String),
}

impl LabelColumn {
    /// The column as the CSV reader takes it.
    fn text_column(&self) -> TextColumn<'_> {
        match self {
            LabelColumn::Last => TextColumn::Last,
            LabelColumn::Index(i) => TextColumn::At(*i),
            LabelColumn::Name(name) => TextColumn::Named(name),
        }
    }
}

/// Why a [`LabelColumn`] cannot be parsed from text.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is neither a column index nor a column name")]
pub struct BadLabelColumn(String);

impl FromStr for LabelColumn {
    type Err = BadLabelColumn;

    /// ASCII digits are a 0-based index; any other non-empty text is a header name (so a
    /// column named with digits only can be chosen by its index only).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadLabelColumn(s.into());
        if s.is_empty() {
            return Err(bad());
        }
        if s.bytes().all(|b| b.is_ascii_digit()) {
            return s.parse().map(LabelColumn::Index).map_err(|_| bad());
        }
        Ok(LabelColumn::Name(s.into()))
    }
}

impl fmt::Display for LabelColumn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabelColumn::Last => f.write_str("the last column"),
            LabelColumn::Index(i) => write!(f, "column {i} (from 0)"),
            LabelColumn::Name(name) => write!(f, "column {name:?}"),
        }
    }
}

/// Why a labelled CSV cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum LabelsError {
    /// The CSV could not be read or parsed (its numbers, its width, the label column).
    #[error(transparent)]
    Csv(#[from] CsvError),
    /// A label is not an integer from 0 to 65535.
    #[error("{path}: line {line}: label {text:?} is not an integer from 0 to 65535")]
    NotALabel {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// The field as written (its first 80 characters when longer).
        text: String,
    },
    /// Labels and points of different counts ([`LabelledPoints::new`]).
    #[error("{labels} labels for {points} points")]
    Count {
        /// Points given.
        points: usize,
        /// Labels given.
        labels: usize,
    },
}

/// N points of D coordinates (1 to [`MAX_DIM`]) and a class label for each; C, the class
/// count, is the largest label plus one.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelledPoints {
    points: Points,
    labels: Vec<u16>,
    classes: u32,
}

impl LabelledPoints {
    /// `points` labelled `labels`, one per point.
    pub fn new(points: Points, labels: Vec<u16>) -> Result<Self, LabelsError> {
        if points.len() != labels.len() {
            return Err(LabelsError::Count {
                points: points.len(),
                labels: labels.len(),
            });
        }
        let classes = labels.iter().max().map_or(0, |&l| u32::from(l) + 1);
        Ok(Self {
            points,
            labels,
            classes,
        })
    }

    /// The points, row-major, without their labels.
    pub fn points(&self) -> &Points {
        &self.points
    }

    /// Each point's label, in row order.
    pub fn labels(&self) -> &[u16] {
        &self.labels
    }

    /// C: the largest label plus one (0 when there are no points).
    pub fn classes(&self) -> u32 {
        self.classes
    }

    /// D, the coordinates of a point.
    pub fn dim(&self) -> usize {
        self.points.dim()
    }

    /// N, the number of points.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no points.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The points labelled `class`, in row order (none when it does not occur).
    pub fn class_points(&self, class: u16) -> Points {
        let values = self
            .points
            .rows()
            .zip(&self.labels)
            .filter(|&(_, &l)| l == class)
            .flat_map(|(row, _)| row)
            .copied()
            .collect();
        Points::trusted(self.dim(), values)
    }
}

/// Reads a labelled CSV (see the module docs) from `reader`, at most `max_rows` rows; `name`
/// names it in errors. The labels are in `column`; a bad one stops the read at once.
pub fn read_labelled(
    reader: impl Read,
    name: &str,
    max_rows: usize,
    column: &LabelColumn,
) -> Result<LabelledPoints, LabelsError> {
    let (mut values, mut labels, mut dim) = (Vec::new(), Vec::new(), 0);
    csv::visit_with_text(
        reader,
        name,
        max_rows,
        column.text_column(),
        |line, text, row| {
            let label = parse_label(text).ok_or_else(|| LabelsError::NotALabel {
                path: name.into(),
                line,
                text: csv::quote(text),
            })?;
            dim = row.len();
            values.extend_from_slice(row);
            labels.push(label);
            Ok::<(), LabelsError>(())
        },
    )?;
    // The reader hands over 1 to MAX_DIM finite numbers a row, every row of one width.
    debug_assert!((1..=MAX_DIM).contains(&dim));
    LabelledPoints::new(Points::trusted(dim, values), labels)
}

/// A label as written (see the module docs): a decimal number, sign and exponent allowed,
/// that is exactly an integer from 0 to 65535; `None` otherwise. Decided on the digits, not
/// through a float.
pub fn parse_label(text: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(text).ok()?;
    let (negative, text) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], parse_exponent(&text[at + 1..])?),
        None => (text, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = || whole.bytes().chain(fraction.bytes());
    if digits().next().is_none() || !digits().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // The value is 0.d₁d₂…dₙ × 10^point: the digits before `point` are the integer, every
    // digit from `point` on must be 0.
    let point = whole.len() as i64 + exponent;
    let mut value = 0u32;
    for (i, b) in digits().enumerate() {
        let digit = u32::from(b - b'0');
        if (i as i64) < point {
            value = value * 10 + digit;
            if value > u32::from(u16::MAX) {
                return None;
            }
        } else if digit != 0 {
            return None;
        }
    }
    // Zeros implied past the last digit (`3e2` is 300).
    let written = (whole.len() + fraction.len()) as i64;
    for _ in written..point {
        value *= 10;
        if value > u32::from(u16::MAX) {
            return None;
        }
        if value == 0 {
            break;
        }
    }
    match negative && value != 0 {
        true => None,
        false => u16::try_from(value).ok(),
    }
}

/// An exponent's digits, sign allowed, clamped to ±10⁶ (any exponent beyond makes a nonzero
/// label too large, or too small to be an integer; zero stays zero).
fn parse_exponent(text: &str) -> Option<i64> {
    let (sign, digits) = match text.as_bytes().first()? {
        b'-' => (-1, &text[1..]),
        b'+' => (1, &text[1..]),
        _ => (1, text),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let significant = digits.trim_start_matches('0');
    let magnitude = match significant.len() {
        0 => 0,
        1..=7 => significant.parse::<i64>().ok()?.min(1_000_000),
        _ => 1_000_000,
    };
    Some(sign * magnitude)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, column: &LabelColumn) -> Result<LabelledPoints, LabelsError> {
        read_labelled(text.as_bytes(), "l.csv", 100, column)
    }

    fn error(text: &str, column: &LabelColumn) -> String {
        read(text, column).unwrap_err().to_string()
    }

    #[test]
    fn labels_are_exact_integers_as_written() {
        for (text, want) in [
            ("3", Some(3)),
            ("03", Some(3)),
            ("+3", Some(3)),
            ("3.", Some(3)),
            ("3.0", Some(3)),
            ("3.000", Some(3)),
            ("3.000000000000000000e+00", Some(3)),
            ("1.2e1", Some(12)),
            ("300e-2", Some(3)),
            ("3e2", Some(300)),
            ("0", Some(0)),
            ("-0", Some(0)),
            ("-0.0e5", Some(0)),
            ("0e999999999999999999999", Some(0)),
            (".0", Some(0)),
            ("65535", Some(65535)),
            ("6.5535e4", Some(65535)),
            ("65536", None),
            ("6.5536e4", None),
            ("1e9", None),
            ("1e999999999999999999999", None),
            ("3.5", None),
            ("3.0000000001", None),
            ("35e-1", None),
            ("-1", None),
            ("", None),
            (".", None),
            ("e3", None),
            ("3e", None),
            ("3e+", None),
            ("0x3", None),
            ("nan", None),
            ("inf", None),
            ("three", None),
            ("3 4", None),
            ("٣", None),
        ] {
            assert_eq!(parse_label(text.as_bytes()), want, "{text:?}");
        }
        assert_eq!(parse_label(b"\xff"), None);
    }

    #[test]
    fn the_label_column_is_the_last_an_index_or_a_name() {
        let text = "x,class,y\n1,2,3\n4,0,6\n";
        let by_name = read(text, &LabelColumn::Name("class".into())).unwrap();
        assert_eq!(by_name.labels(), &[2, 0]);
        assert_eq!(by_name.points().values(), &[1.0, 3.0, 4.0, 6.0]);
        assert_eq!((by_name.dim(), by_name.len(), by_name.classes()), (2, 2, 3));
        assert_eq!(read(text, &LabelColumn::Index(1)).unwrap(), by_name);
        let last = read(text, &LabelColumn::Last).unwrap();
        assert_eq!(last.labels(), &[3, 6]);
        assert_eq!(last.points().values(), &[1.0, 2.0, 4.0, 0.0]);
        assert_eq!(last.classes(), 7);
        // No header, a label column first, blank lines and CRLF.
        let first = read("5,0.5\r\n\r\n1,-2\r\n", &LabelColumn::Index(0)).unwrap();
        assert_eq!(
            (first.labels(), first.points().values()),
            (&[5, 1][..], &[0.5, -2.0][..])
        );
        assert_eq!(first.class_points(1).values(), &[-2.0]);
        assert!(first.class_points(3).is_empty());
        // Sixteen coordinates and a label: seventeen columns.
        let wide = vec!["1"; 17].join(",");
        assert_eq!(read(&wide, &LabelColumn::Last).unwrap().dim(), 16);
        assert_eq!("2".parse(), Ok(LabelColumn::Index(2)));
        assert_eq!("class".parse(), Ok(LabelColumn::Name("class".into())));
        assert!("".parse::<LabelColumn>().is_err());
        assert!("99999999999999999999999".parse::<LabelColumn>().is_err());
    }

    #[test]
    fn bad_labelled_files_are_one_line_naming_the_place() {
        let last = LabelColumn::Last;
        let cases = [
            (
                "x,y,c\n1,2,0\n3,4,1.5\n",
                "l.csv: line 3: label \"1.5\" is not an integer from 0 to 65535",
            ),
            (
                "1,2,-1\n",
                "l.csv: line 1: label \"-1\" is not an integer from 0 to 65535",
            ),
            (
                "1,2,70000\n",
                "l.csv: line 1: label \"70000\" is not an integer from 0 to 65535",
            ),
            (
                "1,2,cat\n",
                "l.csv: line 1: label \"cat\" is not an integer from 0 to 65535",
            ),
            ("1,x,0\n", "l.csv: line 1, column 2: \"x\" is not a number"),
            ("1,2,0\n1,0\n", "l.csv: line 2: 2 column(s), expected 3"),
            ("7\n", "l.csv: line 1: 1 column(s), expected at least 2"),
            ("x,y,c\n", "l.csv: no data rows"),
        ];
        for (text, message) in cases {
            assert_eq!(error(text, &last), message, "{text}");
        }
        let wide = vec!["1"; 18].join(",");
        assert_eq!(
            error(&wide, &last),
            "l.csv: line 1: 17 columns; at most 16 are read"
        );
        assert_eq!(
            error("1,2,0\n", &LabelColumn::Index(3)),
            "l.csv: line 1: 3 column(s), expected at least 4"
        );
        let named = LabelColumn::Name("class".into());
        assert_eq!(
            error("x,y,c\n1,2,0\n", &named),
            "l.csv: no column named \"class\": the header line has none"
        );
        assert_eq!(
            error("1,2,0\n", &named),
            "l.csv: no column named \"class\": the file has no header line"
        );
        let long = format!("1,{}\n", "7a".repeat(100));
        let e = error(&long, &last);
        assert!(e.len() < 160 && e.contains("… (200 bytes)"), "{e}");
    }

    #[test]
    fn a_bad_label_stops_the_read() {
        // An endless input whose first row's label is bad: the error comes at once.
        let head = &b"1,2,0.5\n"[..];
        let endless = std::io::repeat(b'\n');
        let e = read_labelled(head.chain(endless), "yes", 1000, &LabelColumn::Last);
        assert!(
            matches!(e, Err(LabelsError::NotALabel { line: 1, .. })),
            "{e:?}"
        );
    }
}

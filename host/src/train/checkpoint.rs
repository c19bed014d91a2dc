//! The training checkpoint: everything a run needs to continue bit for bit, in the core's
//! container ([`tinyddpm_core::container`], [`FORMAT`]).
//!
//! ```text
//! offset 0   "TDDPMCKP"              magic, 8 bytes
//!        8   version                 u16 LE: 1 to 5
//!       10   header length n         u16 LE
//!       12   header                  postcard, n bytes
//!                                      version 1: CheckpointHeader (shape, schedule,
//!                                                 config, step), a Swiss-roll run
//!                                      version 2: the data set's id (u8, DataSet::id),
//!                                                 then CheckpointHeader
//!                                      version 3: a run on the user's points: the tag
//!                                                 255 (u8, TrainingData::POINTS_TAG),
//!                                                 PointsRecord (N as a varint, the
//!                                                 fingerprint as a u64 varint, the
//!                                                 normalization's variant index), then
//!                                                 CheckpointHeader
//!                                      version 4: a run on points of D ≠ 2: as version
//!                                                 3 with D (u8) after PointsRecord
//!                                      version 5: a run conditioned on classes: C
//!                                                 (u16), the label dropout (f32),
//!                                                 the set's id or the tag 255, an
//!                                                 optional PointsRecord, D (u8),
//!                                                 then CheckpointHeader
//!            weights, m, v [, EMA]   f32 LE, each in the model file's parameter order
//!   len − 4  CRC-32/ISO-HDLC         u32 LE, over every byte before it
//! ```
//! The random state is the data, the seed and the step: every example's stream is a
//! function of `(seed, step, index)` and its point one of the set's formulas or a row of the
//! points (see [`crate::data`]), so nothing else needs saving. The points themselves are not
//! saved: a run on them resumes only when given the same file again, which its
//! [`PointsRecord`] (N, the normalization, a CRC-64 of the normalized values) recognises.
//!
//! **Versions.** Version 1 is every checkpoint written before there were data sets, all of
//! the Swiss roll. Swiss-roll runs are still written as version 1, so their checkpoints keep
//! their bytes and older builds keep resuming them; version 2 puts the set's id in front of
//! the same header, for the other sets; version 3 the points' record, for a run on a file;
//! version 4 adds the points' D, for a file of other than 2 columns (a file of 2 keeps
//! version 3, so its checkpoints keep their bytes); version 5 holds a run conditioned on
//! classes, of any data (an unconditional run keeps its earlier version).
//!
//! A file is read no further than its header allows ([`read_bytes`]), so a foreign or
//! endless file given as a checkpoint is refused without being read whole.

use std::fmt;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tinyddpm_core::ScheduleKind;
use tinyddpm_core::container::{ContainerError, Format, PREAMBLE};

use super::adam::Adam;
use super::{CheckpointError, State, TrainConfig};
use crate::data::{Classes, DataSet, Normalize, PointSet, TrainingData};
use crate::modelfile::{ReadError, read_bounded};

/// The checkpoint's container, version 1 (a Swiss-roll run's): the arrays follow the header
/// directly (no alignment).
pub const FORMAT: Format = Format {
    magic: *b"TDDPMCKP",
    version: 1,
    align: 1,
};
/// Version 2 (a run on another data set): the set's id, then version 1's header.
pub const FORMAT_V2: Format = Format {
    version: 2,
    ..FORMAT
};
/// Version 3 (a run on the user's points): their record, then version 1's header.
pub const FORMAT_V3: Format = Format {
    version: 3,
    ..FORMAT
};
/// Version 4 (a run on points of D ≠ 2): version 3's header with D after the record.
pub const FORMAT_V4: Format = Format {
    version: 4,
    ..FORMAT
};
/// Version 5 (a run conditioned on classes): its classes, then any data's record and D,
/// then version 1's header.
pub const FORMAT_V5: Format = Format {
    version: 5,
    ..FORMAT
};
/// What the checkpoint is called in its errors.
const NAME: &str = "training checkpoint";
/// The most bytes read from any file given as a checkpoint: its four arrays (weights, Adam's
/// two moments, EMA) of the largest model file read.
pub const MAX_FILE_BYTES: u64 = 4 * crate::modelfile::MAX_FILE_BYTES;

/// Why bytes are not a usable checkpoint.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CheckpointFormatError {
    /// The container is damaged, foreign, or its header does not decode.
    #[error("{}", .0.named(NAME))]
    Container(ContainerError),
    /// A version of the format this build does not read.
    #[error("training checkpoint format version {found}, this build reads versions 1 to 5")]
    Version {
        /// The file's version.
        found: u16,
    },
    /// The header decodes but holds a value out of range.
    #[error("checkpoint header invalid: {0}")]
    Invalid(String),
    /// The checkpoint is of another model shape.
    #[error(
        "checkpoint of a model H={hidden} B={blocks} T={timesteps}, this run trains H={want_hidden} B={want_blocks} T={want_timesteps}"
    )]
    Shape {
        /// File's H.
        hidden: u32,
        /// File's B.
        blocks: u32,
        /// File's T.
        timesteps: u32,
        /// Expected H.
        want_hidden: usize,
        /// Expected B.
        want_blocks: usize,
        /// Expected T.
        want_timesteps: usize,
    },
    /// The data given for the run are not the ones it trains on.
    #[error(transparent)]
    Data(#[from] DataMismatch),
    /// A weight is NaN or infinite.
    #[error("checkpoint weight {index} is not finite")]
    NonFinite {
        /// Position in parameter order.
        index: usize,
    },
}

impl From<ContainerError> for CheckpointFormatError {
    fn from(e: ContainerError) -> Self {
        Self::Container(e)
    }
}

/// What the postcard header holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct CheckpointHeader {
    hidden: u32,
    blocks: u32,
    timesteps: u32,
    schedule: ScheduleKind,
    params: u64,
    step: u64,
    steps: u64,
    batch: u64,
    lr: f32,
    seed: u64,
    ema: Option<f32>,
}

/// The version 2 header: the data set's id, then the version 1 fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct DataHeader {
    data: u8,
    header: CheckpointHeader,
}

/// The version 3 header: [`TrainingData::POINTS_TAG`], the points' record, then the version
/// 1 fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct PointsHeader {
    data: u8,
    points: PointsRecord,
    header: CheckpointHeader,
}

/// The version 4 header: version 3's with the points' D after their record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct PointsDimHeader {
    data: u8,
    points: PointsRecord,
    dim: u8,
    header: CheckpointHeader,
}

/// The version 5 header: a conditioned run's classes, then its data (a set's id, or
/// [`TrainingData::POINTS_TAG`] with the points' record), D and the version 1 fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct ClassesHeader {
    classes: u16,
    dropout: f32,
    data: u8,
    points: Option<PointsRecord>,
    dim: u8,
    header: CheckpointHeader,
}

/// What a checkpoint records of a run's points, enough to recognise them again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointsRecord {
    /// N, the rows.
    pub rows: u64,
    /// [`PointSet::fingerprint`]: CRC-64/XZ of N and the normalized values.
    pub fingerprint: u64,
    /// How the file's values were normalized.
    pub normalize: Normalize,
}

impl PointsRecord {
    /// The record of `points`.
    pub fn of(points: &PointSet) -> Self {
        Self {
            rows: points.len() as u64,
            fingerprint: points.fingerprint(),
            normalize: points.normalize(),
        }
    }
}

/// What a checkpoint's run trains on, as the file says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckpointData {
    /// A built-in set (versions 1 and 2).
    Set(DataSet),
    /// Points from a file (version 3), which the checkpoint does not hold.
    Points(PointsRecord),
}

impl fmt::Display for CheckpointData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Set(set) => set.fmt(f),
            Self::Points(p) => write!(
                f,
                "points from a file ({} rows, --normalize {}, fingerprint {:016x})",
                p.rows,
                p.normalize.name(),
                p.fingerprint
            ),
        }
    }
}

/// The data given for a resumed run are not the ones it trains on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DataMismatch {
    /// Another set, or a set where the run trains on points, or points where it trains on
    /// a set.
    #[error("the checkpoint's run trains on {found}, not {asked} ({})", match found {
        CheckpointData::Set(_) => "leave out --data, or start a new run",
        CheckpointData::Points(_) => "give its file with --data, or start a new run",
    })]
    Other {
        /// What the checkpoint's run trains on.
        found: CheckpointData,
        /// What was given (its description).
        asked: String,
    },
    /// The run trains on points and none were given.
    #[error(
        "the checkpoint's run trains on {}: give the same file again with --data FILE",
        CheckpointData::Points(*.0)
    )]
    PointsNeeded(PointsRecord),
    /// The points given are normalized otherwise than the run's.
    #[error("the checkpoint's run normalizes its points with --normalize {found}, not {asked}",
            found = .found.name(), asked = .asked.name())]
    Normalization {
        /// The run's.
        found: Normalize,
        /// The one given.
        asked: Normalize,
    },
    /// Other points than the run's.
    #[error(
        "{name} is not the file the checkpoint's run trains on: {rows} rows with fingerprint \
         {fingerprint:016x}, the run's {} rows with {:016x}",
        found.rows, found.fingerprint
    )]
    PointsDiffer {
        /// The file given.
        name: String,
        /// Its rows.
        rows: u64,
        /// Its fingerprint.
        fingerprint: u64,
        /// The run's record.
        found: PointsRecord,
    },
}

impl CheckpointHeader {
    /// Bytes of the arrays the header announces, if that fits a `usize`.
    fn payload_len(&self) -> Option<usize> {
        let arrays = 3 + usize::from(self.ema.is_some());
        usize::try_from(self.params).ok()?.checked_mul(4 * arrays)
    }

    /// The run's configuration on `data`, conditioned on `classes`, checked (`threads` is
    /// not saved: the results do not depend on it).
    fn config(
        &self,
        data: TrainingData,
        classes: Option<Classes>,
    ) -> Result<TrainConfig, CheckpointFormatError> {
        use CheckpointFormatError as E;
        let config = TrainConfig {
            steps: self.steps,
            batch: usize::try_from(self.batch).map_err(|_| E::Invalid("batch too large".into()))?,
            lr: self.lr,
            seed: self.seed,
            ema: self.ema,
            threads: 0,
            data,
            classes,
        };
        config.validate().map_err(E::Invalid)?;
        Ok(config)
    }
}

/// The model shape a checkpoint is checked against: (H, B, T).
pub(crate) type Shape = (usize, usize, usize);

/// Encodes `state` of a model of `shape` (D the data's): version 1 for a Swiss-roll run (the
/// bytes such checkpoints have always had), version 2 with the set's id for another set,
/// version 3 with the points' record for a run on a file of 2 columns, version 4 with their
/// D too for any other.
pub(crate) fn encode(state: &State, shape: Shape) -> Vec<u8> {
    let c = &state.config;
    let header = CheckpointHeader {
        hidden: shape.0 as u32,
        blocks: shape.1 as u32,
        timesteps: shape.2 as u32,
        schedule: state.schedule,
        params: state.params.len() as u64,
        step: state.step,
        steps: c.steps,
        batch: c.batch as u64,
        lr: c.lr,
        seed: c.seed,
        ema: c.ema,
    };
    let arrays: Vec<&[f32]> = [&state.params, &state.adam.m, &state.adam.v]
        .into_iter()
        .chain(&state.ema)
        .map(Vec::as_slice)
        .collect();
    if let Some(classes) = c.classes {
        let points = match &c.data {
            TrainingData::Points(points) => Some(PointsRecord::of(points)),
            TrainingData::Set(_) => None,
        };
        let header = ClassesHeader {
            classes: classes.classes,
            dropout: classes.dropout,
            data: c.data.tag(),
            points,
            // At most MAX_DIM = 16 columns: D is a u8.
            dim: c.data.dim() as u8,
            header,
        };
        return seal(&FORMAT_V5, &header, &arrays);
    }
    match &c.data {
        TrainingData::Set(DataSet::SwissRoll) => seal(&FORMAT, &header, &arrays),
        TrainingData::Set(set) => seal(
            &FORMAT_V2,
            &DataHeader {
                data: set.id(),
                header,
            },
            &arrays,
        ),
        // At most MAX_DIM = 16 columns: D is a u8.
        TrainingData::Points(points) if points.dim() != 2 => seal(
            &FORMAT_V4,
            &PointsDimHeader {
                data: TrainingData::POINTS_TAG,
                points: PointsRecord::of(points),
                dim: points.dim() as u8,
                header,
            },
            &arrays,
        ),
        TrainingData::Points(points) => seal(
            &FORMAT_V3,
            &PointsHeader {
                data: TrainingData::POINTS_TAG,
                points: PointsRecord::of(points),
                header,
            },
            &arrays,
        ),
    }
}

/// The file of `format` holding `header` and the `arrays` one after another as its payload.
fn seal<H: Serialize>(format: &Format, header: &H, arrays: &[&[f32]]) -> Vec<u8> {
    let payload_len = 4 * arrays.iter().map(|a| a.len()).sum::<usize>();
    // The header is a few fixed-size fields: it always encodes, well within the u16 length.
    let len = format
        .sealed_len(header, payload_len)
        .expect("a checkpoint header encodes");
    let mut out = vec![0u8; len];
    format
        .seal(header, payload_len, &mut out, |payload| {
            for (bytes, v) in payload
                .chunks_exact_mut(4)
                .zip(arrays.iter().copied().flatten())
            {
                bytes.copy_from_slice(&v.to_le_bytes());
            }
        })
        .expect("a checkpoint header encodes, into a buffer of its sealed length");
    out
}

/// The format a file's version names; a file too short or foreign to tell goes to the
/// current one, whose container names what is wrong.
fn format_of(bytes: &[u8]) -> Result<&'static Format, CheckpointFormatError> {
    match (bytes.get(..8), bytes.get(8..10)) {
        (Some(magic), Some(&[lo, hi])) if magic == FORMAT.magic => {
            match u16::from_le_bytes([lo, hi]) {
                1 => Ok(&FORMAT),
                2 => Ok(&FORMAT_V2),
                3 => Ok(&FORMAT_V3),
                4 => Ok(&FORMAT_V4),
                5 => Ok(&FORMAT_V5),
                found => Err(CheckpointFormatError::Version { found }),
            }
        }
        _ => Ok(&FORMAT_V2),
    }
}

/// What a checkpoint is, opened: version, data, D, classes, header and payload.
struct Opened<'a> {
    version: u16,
    data: CheckpointData,
    dim: u8,
    classes: Option<Classes>,
    header: CheckpointHeader,
    payload: &'a [u8],
}

/// Checks the magic, version, CRC, length and header of a checkpoint of any version;
/// returns what it holds. `judge` checks the header of a model of D coordinates and C
/// classes as [`Format::open`]'s `payload_len` does.
fn open(
    bytes: &[u8],
    judge: impl FnOnce(&CheckpointHeader, u8, u16) -> Result<usize, CheckpointFormatError>,
) -> Result<Opened<'_>, CheckpointFormatError> {
    use CheckpointFormatError as E;
    let format = format_of(bytes)?;
    let points = |data: u8, record| {
        if data != TrainingData::POINTS_TAG {
            return Err(E::Invalid(format!("unknown data source tag {data}")));
        }
        Ok(CheckpointData::Points(record))
    };
    // An id this build does not know: a set added after it.
    let set = |id: u8| {
        DataSet::from_id(id)
            .map(CheckpointData::Set)
            .ok_or_else(|| E::Invalid(format!("unknown data set id {id}")))
    };
    let opened = |version, data, dim, classes, header, payload| Opened {
        version,
        data,
        dim,
        classes,
        header,
        payload,
    };
    let swiss_roll = CheckpointData::Set(DataSet::SwissRoll);
    match format.version {
        1 => {
            let (h, payload) = format.open(bytes, |h| judge(h, 2, 0))?;
            Ok(opened(1, swiss_roll, 2, None, h, payload))
        }
        2 => {
            let (h, payload) = format.open(bytes, |h: &DataHeader| judge(&h.header, 2, 0))?;
            Ok(opened(2, set(h.data)?, 2, None, h.header, payload))
        }
        3 => {
            let (h, payload) = format.open(bytes, |h: &PointsHeader| judge(&h.header, 2, 0))?;
            Ok(opened(
                3,
                points(h.data, h.points)?,
                2,
                None,
                h.header,
                payload,
            ))
        }
        4 => {
            let judge = |h: &PointsDimHeader| judge(&h.header, h.dim, 0);
            let (h, payload) = format.open(bytes, judge)?;
            let data = points(h.data, h.points)?;
            Ok(opened(4, data, h.dim, None, h.header, payload))
        }
        _ => {
            let judge = |h: &ClassesHeader| judge(&h.header, h.dim, h.classes);
            let (h, payload) = format.open(bytes, judge)?;
            let data = match h.points {
                Some(record) => points(h.data, record)?,
                None => set(h.data)?,
            };
            // A set's points are 2-D; C = 0 is an unconditional run's earlier version.
            if matches!(data, CheckpointData::Set(_)) && h.dim != 2 || h.classes == 0 {
                return Err(E::Invalid("classes or dimension out of range".into()));
            }
            let classes = Classes {
                classes: h.classes,
                dropout: h.dropout,
            };
            Ok(opened(5, data, h.dim, Some(classes), h.header, payload))
        }
    }
}

/// The f32 values of a checkpoint's payload, in file order.
fn values(payload: &[u8]) -> impl Iterator<Item = f32> + '_ {
    payload
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Reads a checkpoint's bytes from `reader`, no more than its header allows (and never
/// more than [`MAX_FILE_BYTES`]); [`decode`] or [`CheckpointFile::info`] then judge them.
fn read_bytes(mut reader: impl Read) -> std::io::Result<Vec<u8>> {
    // The version names the header's type: the preamble first, then the rest by its format
    // (an unknown version reads no further, and `decode` names it).
    let mut preamble = Vec::with_capacity(PREAMBLE);
    (&mut reader)
        .take(PREAMBLE as u64)
        .read_to_end(&mut preamble)?;
    let format = format_of(&preamble).unwrap_or(&FORMAT);
    let expected_len = |prefix: &[u8]| match format.version {
        1 => format.expected_len(prefix, CheckpointHeader::payload_len),
        2 => format.expected_len(prefix, |h: &DataHeader| h.header.payload_len()),
        3 => format.expected_len(prefix, |h: &PointsHeader| h.header.payload_len()),
        4 => format.expected_len(prefix, |h: &PointsDimHeader| h.header.payload_len()),
        _ => format.expected_len(prefix, |h: &ClassesHeader| h.header.payload_len()),
    };
    let reader = Cursor::new(preamble).chain(reader);
    read_bounded(reader, format, MAX_FILE_BYTES, expected_len).map_err(|e| match e {
        ReadError::Io(e) => e,
        ReadError::TooLong { max, .. } => std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("longer than a checkpoint can be ({max} bytes at most)"),
        ),
    })
}

/// A checkpoint file read once, not yet judged: [`CheckpointFile::info`] says what it holds
/// whatever its shape, `CheckpointFile::state` decodes it for the shape a run trains. A
/// run on points needs them given again ([`CheckpointFile::with_data`]).
#[derive(Clone)]
pub struct CheckpointFile {
    path: PathBuf,
    bytes: Vec<u8>,
    /// The run's points, once given and recognised.
    points: Option<Arc<PointSet>>,
}

/// The path, the length and the points given: not the bytes.
impl fmt::Debug for CheckpointFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckpointFile")
            .field("path", &self.path)
            .field("len", &self.bytes.len())
            .field("points", &self.points.as_ref().map(|p| p.name()))
            .finish()
    }
}

impl CheckpointFile {
    /// Reads the checkpoint at `path`.
    pub fn read(path: &Path) -> Result<Self, CheckpointError> {
        let file = crate::input::open_path(path).map_err(|source| CheckpointError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_reader(file, path)
    }

    /// Reads a checkpoint from `reader`; `path` names it in errors.
    pub fn from_reader(reader: impl Read, path: &Path) -> Result<Self, CheckpointError> {
        let bytes = read_bytes(reader).map_err(|source| CheckpointError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            bytes,
            points: None,
        })
    }

    /// The file it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The training state for a model of `shape` (H, B, T), every field checked; a run on
    /// points takes those given by [`CheckpointFile::with_data`] (none: an error saying so).
    pub(crate) fn state(&self, shape: Shape) -> Result<State, CheckpointError> {
        let data = |found: CheckpointData| match (found, &self.points) {
            (CheckpointData::Set(set), _) => Ok(TrainingData::Set(set)),
            (CheckpointData::Points(_), Some(points)) => {
                Ok(TrainingData::Points(Arc::clone(points)))
            }
            (CheckpointData::Points(record), None) => {
                Err(DataMismatch::PointsNeeded(record).into())
            }
        };
        decode_with(&self.bytes, shape, data).map_err(|source| CheckpointError::Format {
            path: self.path.display().to_string(),
            source,
        })
    }

    /// The file opened whatever its model shape: version, data, D, header and payload.
    fn open_any_shape(&self) -> Result<Opened<'_>, CheckpointError> {
        let any_shape =
            |h: &CheckpointHeader, _, _| h.payload_len().ok_or(ContainerError::Header.into());
        open(&self.bytes, any_shape).map_err(|source| CheckpointError::Format {
            path: self.path.display().to_string(),
            source,
        })
    }

    /// What the checkpoint's run trains on (magic, version, CRC and header checked).
    pub fn data(&self) -> Result<CheckpointData, CheckpointError> {
        Ok(self.open_any_shape()?.data)
    }

    /// The run's model shape, H and B (magic, version, CRC and header checked; D is the
    /// data's).
    pub fn shape(&self) -> Result<(usize, usize), CheckpointError> {
        let h = self.open_any_shape()?.header;
        Ok((h.hidden as usize, h.blocks as usize))
    }

    /// The checkpoint with `data` given for its run: the same set, or the same points (the
    /// same N, normalization and fingerprint), which a resumed run then draws from. The
    /// outer error is the file's; the inner says how `data` differs from the run's.
    pub fn with_data(
        &self,
        data: &TrainingData,
    ) -> Result<Result<Self, DataMismatch>, CheckpointError> {
        let found = self.data()?;
        let other = || DataMismatch::Other {
            found,
            asked: data.to_string(),
        };
        let points = match (found, data) {
            (CheckpointData::Set(found), TrainingData::Set(asked)) if found == *asked => None,
            (CheckpointData::Points(record), TrainingData::Points(points)) => {
                let given = PointsRecord::of(points);
                if given.normalize != record.normalize {
                    return Ok(Err(DataMismatch::Normalization {
                        found: record.normalize,
                        asked: given.normalize,
                    }));
                }
                if given != record {
                    return Ok(Err(DataMismatch::PointsDiffer {
                        name: points.name().into(),
                        rows: given.rows,
                        fingerprint: given.fingerprint,
                        found: record,
                    }));
                }
                Some(Arc::clone(points))
            }
            _ => return Ok(Err(other())),
        };
        Ok(Ok(Self {
            points,
            ..self.clone()
        }))
    }

    /// What the checkpoint holds, of any model shape: magic, version, CRC and length are
    /// checked, the values that are not finite counted, and every check a resume makes is
    /// made (its failure reported in [`CheckpointInfo::unusable`], not as an error).
    pub fn info(&self) -> Result<CheckpointInfo, CheckpointError> {
        let Opened {
            version,
            data,
            dim,
            classes,
            header: h,
            payload,
        } = self.open_any_shape()?;
        let mut non_finite: Option<(usize, usize)> = None;
        for (i, v) in values(payload).enumerate() {
            if !v.is_finite() {
                let (count, first) = non_finite.unwrap_or((0, i));
                non_finite = Some((count + 1, first));
            }
        }
        let own_shape = (h.hidden as usize, h.blocks as usize, h.timesteps as usize);
        Ok(CheckpointInfo {
            len: self.bytes.len(),
            version,
            data,
            dim,
            classes,
            hidden: h.hidden,
            blocks: h.blocks,
            timesteps: h.timesteps,
            schedule: h.schedule,
            params: h.params,
            step: h.step,
            steps: h.steps,
            batch: h.batch,
            lr: h.lr,
            seed: h.seed,
            ema: h.ema,
            non_finite,
            unusable: decode(&self.bytes, own_shape).err(),
        })
    }
}

/// Decodes a checkpoint of a model of `shape`, checking every field before trusting it; a
/// run on points is decoded as if on the Swiss roll (the file does not hold them), which is
/// how [`CheckpointFile::info`] judges it.
pub(crate) fn decode(bytes: &[u8], shape: Shape) -> Result<State, CheckpointFormatError> {
    decode_with(bytes, shape, |found| {
        Ok(match found {
            CheckpointData::Set(set) => TrainingData::Set(set),
            CheckpointData::Points(_) => TrainingData::default(),
        })
    })
}

/// [`decode`], the run's data made by `data` from what the file says of them.
fn decode_with(
    bytes: &[u8],
    shape: Shape,
    data: impl FnOnce(CheckpointData) -> Result<TrainingData, CheckpointFormatError>,
) -> Result<State, CheckpointFormatError> {
    use CheckpointFormatError as E;
    let judge = |h: &CheckpointHeader, dim: u8, classes: u16| {
        if (h.hidden as usize, h.blocks as usize, h.timesteps as usize) != shape {
            return Err(E::Shape {
                hidden: h.hidden,
                blocks: h.blocks,
                timesteps: h.timesteps,
                want_hidden: shape.0,
                want_blocks: shape.1,
                want_timesteps: shape.2,
            });
        }
        let (hidden, blocks) = (h.hidden as usize, h.blocks as usize);
        let params = tinyddpm_core::Layout::with_dim(hidden, blocks, dim.into())
            .and_then(|l| l.with_classes(classes.into()))
            .map(|l| l.len());
        if params.map(|n| n as u64) != Some(h.params) {
            return Err(E::Invalid(format!(
                "{} parameters for this shape",
                h.params
            )));
        }
        if !h.schedule.is_valid() {
            return Err(E::Invalid("schedule parameters out of range".into()));
        }
        // The configuration's ranges (the data and classes are no part of them).
        h.config(TrainingData::default(), None)?;
        h.payload_len().ok_or(ContainerError::Header.into())
    };
    let Opened {
        data: found,
        classes,
        header: h,
        payload,
        ..
    } = open(bytes, judge)?;
    let n = h.params as usize;
    let mut values = values(payload);
    let mut take = || -> Result<Vec<f32>, E> {
        let array: Vec<f32> = values.by_ref().take(n).collect();
        match array.iter().position(|v| !v.is_finite()) {
            Some(index) => Err(E::NonFinite { index }),
            None => Ok(array),
        }
    };
    let params = take()?;
    let adam = Adam {
        m: take()?,
        v: take()?,
    };
    let ema = if h.ema.is_some() { Some(take()?) } else { None };
    Ok(State {
        config: h.config(data(found)?, classes)?,
        schedule: h.schedule,
        step: h.step,
        params,
        adam,
        ema,
    })
}

/// What a checkpoint file holds, as `tinyddpm inspect` shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointInfo {
    /// Bytes in the file.
    pub len: usize,
    /// The format version: 1 (a Swiss-roll run), 2 (another set), 3 (points from a file),
    /// 4 (points of D ≠ 2) or 5 (a run conditioned on classes).
    pub version: u16,
    /// What the run trains on (its [`fmt::Display`] describes it in a line).
    pub data: CheckpointData,
    /// D, the coordinates of a point.
    pub dim: u8,
    /// The classes a conditioned run trains on and its label dropout.
    pub classes: Option<Classes>,
    /// H.
    pub hidden: u32,
    /// B.
    pub blocks: u32,
    /// T.
    pub timesteps: u32,
    /// The noise schedule the run trains for.
    pub schedule: ScheduleKind,
    /// Parameters of the model.
    pub params: u64,
    /// Steps done.
    pub step: u64,
    /// The run's total steps when it was started.
    pub steps: u64,
    /// Examples per step.
    pub batch: u64,
    /// Adam's learning rate.
    pub lr: f32,
    /// Seed of the initial weights and of every batch.
    pub seed: u64,
    /// EMA decay, when the run keeps an average.
    pub ema: Option<f32>,
    /// Values (weights, moments, EMA, in file order) that are NaN or infinite, and the
    /// position of the first.
    pub non_finite: Option<(usize, usize)>,
    /// Why a run cannot resume from it (a value out of range, a parameter count that does
    /// not fit the shape, an invalid schedule), if it cannot.
    pub unusable: Option<CheckpointFormatError>,
}

/// Reads what the checkpoint at `path` holds, of any model shape (see
/// [`CheckpointFile::info`]).
pub fn inspect(path: &Path) -> Result<CheckpointInfo, CheckpointError> {
    CheckpointFile::read(path)?.info()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use tinyddpm_core::Model;

    use super::*;

    /// The shape the tests' checkpoints are of, and its parameter count.
    const SHAPE: Shape = (1, 2, 3);
    const N: usize = Model::<1, 2>::PARAMS;

    fn state(ema: bool) -> State {
        State {
            config: TrainConfig {
                ema: ema.then_some(0.99),
                ..TrainConfig::default()
            },
            schedule: ScheduleKind::SEED,
            step: 77,
            params: (0..N).map(|i| i as f32 * 0.5).collect(),
            adam: Adam {
                m: vec![0.25; N],
                v: vec![1e-3; N],
            },
            ema: ema.then(|| vec![-1.0; N]),
        }
    }

    #[test]
    fn round_trips_with_and_without_ema() {
        for ema in [false, true] {
            let s = state(ema);
            let bytes = encode(&s, SHAPE);
            assert_eq!(decode(&bytes, SHAPE).unwrap(), s);
        }
    }

    /// The layout spelled out byte by byte, independently of the encoder: checkpoints
    /// written before the container was shared with the model file read the same.
    #[test]
    fn encoding_is_the_documented_layout() {
        let s = state(true);
        let header = CheckpointHeader {
            hidden: 1,
            blocks: 2,
            timesteps: 3,
            schedule: ScheduleKind::SEED,
            params: N as u64,
            step: 77,
            steps: 10_000,
            batch: 128,
            lr: 1e-3,
            seed: 42,
            ema: Some(0.99),
        };
        let head = postcard::to_allocvec(&header).unwrap();
        let mut want = b"TDDPMCKP".to_vec();
        want.extend_from_slice(&1u16.to_le_bytes());
        want.extend_from_slice(&(head.len() as u16).to_le_bytes());
        want.extend_from_slice(&head);
        for array in [&s.params, &s.adam.m, &s.adam.v, s.ema.as_ref().unwrap()] {
            want.extend(array.iter().flat_map(|v| v.to_le_bytes()));
        }
        let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&want);
        want.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(encode(&s, SHAPE), want);
    }

    /// Asserts `fails` of every truncation and every single-bit flip of `bytes`.
    fn every_damage_fails(bytes: &[u8], fails: impl Fn(&[u8]) -> bool) {
        for len in 0..bytes.len() {
            assert!(fails(&bytes[..len]), "length {len}");
        }
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut bad = bytes.to_vec();
                bad[i] ^= 1 << bit;
                assert!(fails(&bad), "byte {i} bit {bit}");
            }
        }
    }

    #[test]
    fn every_truncation_and_bit_flip_is_a_typed_error() {
        let bytes = encode(&state(true), SHAPE);
        every_damage_fails(&bytes, |b| decode(b, SHAPE).is_err());
        assert!(matches!(
            decode(&bytes, (1, 2, 4)),
            Err(CheckpointFormatError::Shape { .. })
        ));
    }

    /// A run on another set than the Swiss roll: version 2, the set's id in front.
    fn moons() -> State {
        let mut s = state(true);
        s.config.data = DataSet::Moons.into();
        s
    }

    #[test]
    fn another_data_set_is_version_2_with_its_id_and_round_trips() {
        let s = moons();
        let bytes = encode(&s, SHAPE);
        assert_eq!(bytes[8..10], 2u16.to_le_bytes());
        assert_eq!(bytes[12], DataSet::Moons.id());
        assert_eq!(decode(&bytes, SHAPE).unwrap(), s);
        // the same run on the Swiss roll: version 1, the header without the id
        let v1 = encode(&state(true), SHAPE);
        assert_eq!(v1[8..10], 1u16.to_le_bytes());
        assert_eq!(bytes.len(), v1.len() + 1);
        assert_eq!(bytes[13..bytes.len() - 4], v1[12..v1.len() - 4]);
        for set in DataSet::ALL {
            let mut s = state(false);
            s.config.data = set.into();
            assert_eq!(
                decode(&encode(&s, SHAPE), SHAPE).unwrap().config.data,
                set.into()
            );
        }
    }

    #[test]
    fn every_truncation_and_bit_flip_of_a_version_2_file_is_a_typed_error() {
        let bytes = encode(&moons(), SHAPE);
        every_damage_fails(&bytes, |b| decode(b, SHAPE).is_err());
    }

    #[test]
    fn an_unknown_set_id_or_version_is_named() {
        let mut bytes = encode(&moons(), SHAPE);
        bytes[12] = 10;
        reseal(&mut bytes);
        let e = decode(&bytes, SHAPE).unwrap_err();
        assert_eq!(
            e,
            CheckpointFormatError::Invalid("unknown data set id 10".into())
        );
        let mut bytes = encode(&moons(), SHAPE);
        bytes[8] = 6;
        reseal(&mut bytes);
        let e = decode(&bytes, SHAPE).unwrap_err();
        assert_eq!(e, CheckpointFormatError::Version { found: 6 });
        assert!(e.to_string().contains("reads versions 1 to 5"), "{e}");
    }

    /// A run on the moons conditioned on their two classes: its arrays hold the class
    /// embedding's (2 + 1)·H values too.
    fn conditioned() -> State {
        let mut s = moons();
        s.config.classes = Some(Classes {
            classes: 2,
            dropout: 0.25,
        });
        let n = N + 3;
        s.params = (0..n).map(|i| i as f32 * 0.5).collect();
        s.adam = Adam {
            m: vec![0.25; n],
            v: vec![1e-3; n],
        };
        s.ema = Some(vec![-1.0; n]);
        s
    }

    #[test]
    fn a_conditioned_run_is_version_5_and_round_trips() {
        let s = conditioned();
        let bytes = encode(&s, SHAPE);
        assert_eq!(bytes[8..10], 5u16.to_le_bytes());
        assert_eq!(decode(&bytes, SHAPE).unwrap(), s);
        // Its parameter count is the conditioned layout's: read as C = 1, it would not fit.
        let mut other = bytes.clone();
        other[12] = 1;
        reseal(&mut other);
        assert!(matches!(
            decode(&other, SHAPE),
            Err(CheckpointFormatError::Invalid(_))
        ));
        // C = 0 is an unconditional run's earlier version.
        other[12] = 0;
        reseal(&mut other);
        assert!(decode(&other, SHAPE).is_err());
        every_damage_fails(&bytes, |b| decode(b, SHAPE).is_err());
    }

    #[test]
    fn a_version_2_file_is_read_whole_and_inspected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.ckpt");
        let bytes = encode(&moons(), SHAPE);
        let mut longer = bytes.clone();
        longer.extend_from_slice(&[7u8; 64]);
        std::fs::write(&path, &longer).unwrap();
        assert!(read_bytes(std::fs::File::open(&path).unwrap()).is_err());
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(
            read_bytes(std::fs::File::open(&path).unwrap()).unwrap(),
            bytes
        );
        let file = CheckpointFile::read(&path).unwrap();
        assert_eq!(file.data().unwrap(), CheckpointData::Set(DataSet::Moons));
        let info = file.info().unwrap();
        assert_eq!(
            (info.version, info.data, info.unusable),
            (2, CheckpointData::Set(DataSet::Moons), None)
        );
    }

    #[test]
    fn a_longer_file_is_read_no_further_than_its_header_allows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.ckpt");
        let bytes = encode(&state(true), SHAPE);
        std::fs::write(&path, &bytes).unwrap();
        let read = |path: &Path| read_bytes(std::fs::File::open(path).unwrap());
        assert_eq!(read(&path).unwrap(), bytes);
        let mut longer = bytes.clone();
        longer.extend(std::iter::repeat_n(7u8, 1 << 20));
        std::fs::write(&path, &longer).unwrap();
        let e = read(&path).unwrap_err();
        assert!(
            e.to_string().contains(&format!("({} bytes", bytes.len())),
            "{e}"
        );
        let info = {
            std::fs::write(&path, &bytes).unwrap();
            inspect(&path).unwrap()
        };
        assert_eq!(
            (info.step, info.params, info.ema),
            (77, N as u64, Some(0.99))
        );
        assert_eq!(info.non_finite, None);
    }

    /// Points of `n` rows, standardized.
    fn points(n: usize, bump: f32) -> Arc<PointSet> {
        let values = (0..2 * n).map(|i| (i * i % 17) as f32 + bump).collect();
        Arc::new(PointSet::new("p.csv", 2, values, Normalize::Standard).unwrap())
    }

    /// A run on points: version 3, tag 255 and the record in front of the version 1 header.
    fn on_points(p: &Arc<PointSet>) -> State {
        let mut s = state(true);
        s.config.data = TrainingData::Points(Arc::clone(p));
        s
    }

    fn file_of(bytes: Vec<u8>) -> CheckpointFile {
        CheckpointFile {
            path: "c.ckpt".into(),
            bytes,
            points: None,
        }
    }

    #[test]
    fn a_run_on_points_is_version_3_and_resumes_only_on_the_same_points() {
        let p = points(200, 0.0);
        let s = on_points(&p);
        let bytes = encode(&s, SHAPE);
        assert_eq!(bytes[8..10], 3u16.to_le_bytes());
        assert_eq!(bytes[12], TrainingData::POINTS_TAG);
        let record = PointsRecord::of(&p);
        let mut head = vec![TrainingData::POINTS_TAG];
        head.extend(postcard::to_allocvec(&record).unwrap());
        assert_eq!(bytes[12..12 + head.len()], head[..]);
        let v1 = encode(&state(true), SHAPE);
        assert_eq!(
            bytes[12 + head.len()..bytes.len() - 4],
            v1[12..v1.len() - 4]
        );

        let file = file_of(bytes);
        assert_eq!(file.data().unwrap(), CheckpointData::Points(record));
        let info = file.info().unwrap();
        assert_eq!(
            (info.version, info.data, info.unusable),
            (3, CheckpointData::Points(record), None)
        );
        // without the points: the state cannot be had, and the error says what to give
        let e = file.state(SHAPE).unwrap_err().to_string();
        assert!(
            e.contains("give the same file again with --data FILE"),
            "{e}"
        );
        let given = file
            .with_data(&TrainingData::Points(Arc::clone(&p)))
            .unwrap()
            .unwrap();
        assert_eq!(given.state(SHAPE).unwrap(), s);
        // the same values read again are the same points
        let again =
            Arc::new(PointSet::new("q.csv", 2, p.values().to_vec(), Normalize::None).unwrap());
        let e = file
            .with_data(&TrainingData::Points(again))
            .unwrap()
            .unwrap_err();
        assert_eq!(
            e,
            DataMismatch::Normalization {
                found: Normalize::Standard,
                asked: Normalize::None
            }
        );
        let other = points(200, 1.0);
        let e = file
            .with_data(&TrainingData::Points(other))
            .unwrap()
            .unwrap_err();
        assert!(
            matches!(e, DataMismatch::PointsDiffer { rows: 200, .. }),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .starts_with("p.csv is not the file the checkpoint's run trains on")
        );
        let e = file.with_data(&DataSet::Moons.into()).unwrap().unwrap_err();
        assert!(
            e.to_string()
                .contains("not moons (give its file with --data"),
            "{e}"
        );
        // a set's checkpoint given points
        let moons = file_of(encode(&moons(), SHAPE));
        let e = moons
            .with_data(&TrainingData::Points(p))
            .unwrap()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "the checkpoint's run trains on moons, not the points of p.csv (leave out --data, \
             or start a new run)"
        );
    }

    /// Every truncation and bit flip of `bytes`, a run on `p`, is refused: by the reader, or
    /// by the points given to resume it.
    fn every_damage_of_a_run_on_points_fails(bytes: &[u8], p: &Arc<PointSet>) {
        let given = |bytes: &[u8]| {
            let file = file_of(bytes.to_vec());
            match file.with_data(&TrainingData::Points(Arc::clone(p))) {
                Ok(Ok(file)) => file.state(SHAPE).is_ok(),
                _ => false,
            }
        };
        assert!(given(bytes));
        every_damage_fails(bytes, |b| !given(b));
    }

    #[test]
    fn every_truncation_and_bit_flip_of_a_version_3_file_is_a_typed_error() {
        let p = points(200, 0.0);
        let bytes = encode(&on_points(&p), SHAPE);
        every_damage_of_a_run_on_points_fails(&bytes, &p);
        let mut bad = bytes.clone();
        bad[12] = 9;
        reseal(&mut bad);
        assert_eq!(
            decode(&bad, SHAPE).unwrap_err(),
            CheckpointFormatError::Invalid("unknown data source tag 9".into())
        );
    }

    /// A run on points of 3 columns, a model of their D: version 4, D after the record.
    fn on_points_3d() -> (Arc<PointSet>, State) {
        let values = (0..3 * 200).map(|i| (i * i % 23) as f32).collect();
        let p = Arc::new(PointSet::new("p3.csv", 3, values, Normalize::Standard).unwrap());
        let n = tinyddpm_core::Layout::with_dim(1, 2, 3).unwrap().len();
        let mut s = on_points(&p);
        s.params = (0..n).map(|i| i as f32 * 0.25).collect();
        s.adam = Adam {
            m: vec![0.5; n],
            v: vec![2e-3; n],
        };
        s.ema = Some(vec![1.5; n]);
        (p, s)
    }

    #[test]
    fn a_run_on_points_of_another_width_is_version_4_with_their_dimension() {
        let (p, s) = on_points_3d();
        let bytes = encode(&s, SHAPE);
        assert_eq!(bytes[8..10], 4u16.to_le_bytes());
        let mut head = vec![TrainingData::POINTS_TAG];
        head.extend(postcard::to_allocvec(&PointsRecord::of(&p)).unwrap());
        head.push(3);
        assert_eq!(bytes[12..12 + head.len()], head[..]);
        let file = file_of(bytes);
        let info = file.info().unwrap();
        assert_eq!((info.version, info.dim, info.unusable), (4, 3, None));
        assert_eq!(info.params, s.params.len() as u64);
        assert_eq!(file.shape().unwrap(), (1, 2));
        let given = file
            .with_data(&TrainingData::Points(Arc::clone(&p)))
            .unwrap()
            .unwrap();
        assert_eq!(given.state(SHAPE).unwrap(), s);
    }

    #[test]
    fn every_truncation_and_bit_flip_of_a_version_4_file_is_a_typed_error() {
        let (p, s) = on_points_3d();
        every_damage_of_a_run_on_points_fails(&encode(&s, SHAPE), &p);
    }

    /// Re-seals `bytes` with a correct CRC, so a test reaches the checks behind it.
    fn reseal(bytes: &mut [u8]) {
        let n = bytes.len() - 4;
        let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&bytes[..n]);
        bytes[n..].copy_from_slice(&crc.to_le_bytes());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5_000))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = decode(&bytes, SHAPE);
        }

        /// Past the magic, version and CRC: arbitrary headers and payloads, correctly sealed.
        #[test]
        fn arbitrary_sealed_bodies_never_panic(
            body in proptest::collection::vec(any::<u8>(), 0..400),
            header_len in 0u16..80,
        ) {
            let mut bytes = FORMAT.magic.to_vec();
            bytes.extend_from_slice(&FORMAT.version.to_le_bytes());
            bytes.extend_from_slice(&header_len.to_le_bytes());
            bytes.extend_from_slice(&body);
            bytes.extend_from_slice(&[0; 4]);
            reseal(&mut bytes);
            let _ = decode(&bytes, SHAPE);
        }
    }
}

//! Model files on disk: the core's format ([`tinyddpm_core::file`]) read into a boxed model,
//! float or integer, and written atomically.
//!
//! A file is read no further than its header allows ([`read_bytes`], through
//! `read_bounded`, which the training checkpoint shares): the preamble and the header come
//! first, the length the header implies bounds the rest, and a longer file (a model with
//! junk appended, `/dev/zero`, a 2 GB video) is refused after reading that much, not read
//! whole. The core's decoder then checks every byte.

use std::io::Read;
use std::path::Path;

use tinyddpm_core::Schedule;
use tinyddpm_core::container::{Format, PREAMBLE};
use tinyddpm_core::file::{self, FileError, Header, Kind, Stored};

use crate::batch::{self, Batch1, Init, Simd};
use crate::flat::FlatModel;
use crate::flatq::FlatQModel;
use crate::input;
use crate::run::sample::Point;

/// The most bytes read from any file given as a model file, whatever its header says (the
/// seed model's file is 466 KB; this allows shapes up to millions of parameters).
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// Why a model file could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
pub enum ModelFileError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is longer than its header allows.
    #[error("{path}: longer than its header allows ({max} bytes at most)")]
    TooLong {
        /// The file.
        path: String,
        /// The most bytes a file with this header can have.
        max: u64,
    },
    /// The file is larger than any model file read.
    #[error("{path}: larger than {} MiB, the most read from a model file", MAX_FILE_BYTES >> 20)]
    TooLarge {
        /// The file.
        path: String,
    },
    /// The bytes are not a valid model of the expected kind and shape.
    #[error("{path}: {source}")]
    Format {
        /// The file.
        path: String,
        /// What the core's decoder found.
        source: FileError,
    },
    /// An integer model where a float one is read.
    #[error(
        "{path} holds an integer model (made by `tinyddpm quantize`); this command reads float models only"
    )]
    Integer {
        /// The file.
        path: String,
    },
}

impl ModelFileError {
    /// The core's error about the file at `path`.
    fn format(path: &Path, source: FileError) -> Self {
        let path = path.display().to_string();
        match source {
            FileError::Kind {
                found: Kind::Integer,
                expected: Kind::Float,
            } => Self::Integer { path },
            source => Self::Format { path, source },
        }
    }
}

/// Why [`read_bounded`] stopped.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The file could not be read.
    Io(std::io::Error),
    /// The file goes on past `max` bytes: the length its header implies when `by_header`,
    /// else the most read from any file of its kind.
    TooLong {
        /// Bytes read at most.
        max: u64,
        /// Whether `max` is the header's length (not the cap).
        by_header: bool,
    },
}

/// Reads a file of the container `format` from `reader`, no more than its header allows:
/// the preamble and the header first, then at most the length `expected_len` finds in
/// them, and never more than `cap` bytes. A short, foreign or other-version file is
/// returned as far as it was read, for the decoder to name; only a file longer than allowed
/// is an error here.
pub(crate) fn read_bounded(
    reader: impl Read,
    format: &Format,
    cap: u64,
    expected_len: impl FnOnce(&[u8]) -> Option<usize>,
) -> Result<Vec<u8>, ReadError> {
    read_bounded_by(reader, |p| format.header_end(p), cap, expected_len)
}

/// [`read_bounded`] for a file whose header ends where `header_end` finds it (a format of
/// several versions).
fn read_bounded_by(
    mut reader: impl Read,
    header_end: impl FnOnce(&[u8]) -> Option<usize>,
    cap: u64,
    expected_len: impl FnOnce(&[u8]) -> Option<usize>,
) -> Result<Vec<u8>, ReadError> {
    let mut bytes = Vec::new();
    let mut read_to = |bytes: &mut Vec<u8>, len: u64| {
        let more = len.saturating_sub(bytes.len() as u64);
        (&mut reader)
            .take(more)
            .read_to_end(bytes)
            .map_err(ReadError::Io)
    };
    read_to(&mut bytes, PREAMBLE as u64)?;
    let Some(header_end) = header_end(&bytes) else {
        return Ok(bytes);
    };
    read_to(&mut bytes, header_end as u64)?;
    let by_header = expected_len(&bytes).map(|len| len as u64);
    let max = by_header.map_or(cap, |len| len.min(cap));
    read_to(&mut bytes, max + 1)?;
    if bytes.len() as u64 > max {
        return Err(ReadError::TooLong {
            max,
            by_header: by_header.is_some_and(|len| len < cap),
        });
    }
    Ok(bytes)
}

/// Reads a model file's bytes from `reader`, no more than its header allows (the core's
/// [`file::expected_len`]) and never more than [`MAX_FILE_BYTES`]; `path` names it in
/// errors. Whatever was read is left to the core's decoder to judge.
pub fn read_bytes_from(reader: impl Read, path: &Path) -> Result<Vec<u8>, ModelFileError> {
    let name = || path.display().to_string();
    let read = read_bounded_by(reader, file::header_end, MAX_FILE_BYTES, file::expected_len);
    read.map_err(|e| match e {
        ReadError::Io(source) => ModelFileError::Io {
            path: name(),
            source,
        },
        ReadError::TooLong {
            max,
            by_header: true,
        } => ModelFileError::TooLong { path: name(), max },
        ReadError::TooLong { .. } => ModelFileError::TooLarge { path: name() },
    })
}

/// [`read_bytes_from`] the file at `path`.
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, ModelFileError> {
    let file = input::open_path(path).map_err(|source| ModelFileError::Io {
        path: path.display().to_string(),
        source,
    })?;
    read_bytes_from(file, path)
}

/// A model file read once and checked whole by the core (magic, version, CRC, length,
/// header), of either kind and any shape: the one place every command gets a model from.
/// Its parameters are decoded for the kind and shape its header names ([`ModelFile::model`]).
pub struct ModelFile {
    /// Where it was read from, for messages.
    pub path: std::path::PathBuf,
    /// Float or integer.
    pub kind: Kind,
    /// The header: shape, schedule, default sampler.
    pub header: Header,
    bytes: Vec<u8>,
}

impl ModelFile {
    /// Reads and checks the model file at `path`.
    pub fn read(path: &Path) -> Result<Self, ModelFileError> {
        Self::checked(read_bytes(path)?, path)
    }

    /// Reads and checks a model file from `reader`; `path` names it in errors.
    pub fn from_reader(reader: impl Read, path: &Path) -> Result<Self, ModelFileError> {
        Self::checked(read_bytes_from(reader, path)?, path)
    }

    /// The file `bytes`, read from `path`, checked whole.
    fn checked(bytes: Vec<u8>, path: &Path) -> Result<Self, ModelFileError> {
        let contents = file::open(&bytes).map_err(|e| ModelFileError::format(path, e))?;
        let (kind, header) = (contents.kind, contents.header);
        Ok(Self {
            path: path.to_path_buf(),
            kind,
            header,
            bytes,
        })
    }

    /// The file's bytes, as read.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The model of kind `M` and shape `H`, `B` (an error for the other kind or another
    /// shape).
    pub fn model<const H: usize, const B: usize, M: Stored<H, B>>(
        &self,
    ) -> Result<Box<M>, ModelFileError> {
        let mut model = Box::new(M::ZERO);
        file::decode_into(&self.bytes, &mut *model)
            .map_err(|e| ModelFileError::format(&self.path, e))?;
        Ok(model)
    }

    /// The float model of any shape the file holds (an error for an integer file).
    pub fn flat(&self) -> Result<FlatModel, ModelFileError> {
        FlatModel::decode(&self.bytes).map_err(|e| ModelFileError::format(&self.path, e))
    }

    /// The integer model of any shape the file holds (an error for a float file).
    pub fn flat_integer(&self) -> Result<FlatQModel, ModelFileError> {
        FlatQModel::decode(&self.bytes).map_err(|e| ModelFileError::format(&self.path, e))
    }

    /// The noise schedule of this build's `T` steps: the one check of the header's
    /// timesteps and β every command makes before using a model.
    pub fn schedule<const T: usize>(&self) -> Result<Schedule<T>, FileError> {
        self.header.schedule::<T>()
    }

    /// Fails unless the file holds a float model.
    pub fn require_float(&self) -> Result<(), ModelFileError> {
        match self.kind {
            Kind::Float => Ok(()),
            found => Err(ModelFileError::format(
                &self.path,
                FileError::Kind {
                    found,
                    expected: Kind::Float,
                },
            )),
        }
    }
}

/// Reads a model file of kind `M` and shape `H`, `B`.
pub fn load<const H: usize, const B: usize, M: Stored<H, B>>(
    path: &Path,
) -> Result<(Box<M>, Header), ModelFileError> {
    let file = ModelFile::read(path)?;
    Ok((file.model()?, file.header))
}

/// Where a model's output is not finite, if anywhere it is probed: ε̂ at a few inputs (the
/// origin, a point on the data's scale and one far out — their coordinates alternate in sign
/// — at t = 0, T/2 and T − 1), then the first samples of seed 0 with the file's default
/// sampler. A model can load (every weight finite) and still overflow, e.g. with a huge
/// bias; sampling it would give NaN.
pub fn probe<const T: usize>(model: &FlatModel, header: &Header) -> Option<String> {
    const PROBE_SAMPLES: usize = 4;
    let d = model.dim();
    let mut b1 = Batch1::new(model, Simd::detect());
    let mut eps = vec![0.0; d];
    let point = |a: f32| -> Vec<f32> { (0..d).map(|c| if c % 2 == 0 { a } else { -a }).collect() };
    for t in [0, T / 2, T - 1] {
        b1.time_embedding(t as f32 / T as f32);
        for x in [point(0.0), point(1.5), point(-4.0)] {
            b1.predict_noise(&x, &mut eps);
            if !eps.iter().all(|v| v.is_finite()) {
                return Some(format!(
                    "the predicted noise at x = {}, t = {t} is {}",
                    Point(x),
                    Point(eps)
                ));
            }
        }
    }
    let schedule: Schedule<T> = header.schedule().ok()?;
    let prepared = batch::Prepared::float(Simd::detect(), model, &schedule, &header.sampler, None);
    let first = prepared.sample(Init::Noise, 0, 0, PROBE_SAMPLES, &|_| {});
    let (i, p) = first
        .chunks_exact(d)
        .enumerate()
        .find(|(_, p)| !p.iter().all(|v| v.is_finite()))?;
    Some(format!(
        "sample {i} of seed 0 with the default sampler is {}",
        Point(p.to_vec())
    ))
}

/// Encodes a model of either kind with its header into bytes.
pub fn encode<const H: usize, const B: usize, M: Stored<H, B>>(
    model: &M,
    header: &Header,
) -> Result<Vec<u8>, FileError> {
    let mut bytes = vec![0u8; file::encoded_len(M::KIND, header)?];
    let n = file::encode(model, header, &mut bytes)?;
    bytes.truncate(n);
    Ok(bytes)
}

/// Writes a model file of either kind atomically (temporary file + rename).
pub fn save<const H: usize, const B: usize, M: Stored<H, B>>(
    path: &Path,
    model: &M,
    header: &Header,
) -> Result<(), ModelFileError> {
    write(path, encode(model, header))
}

/// Writes a float model of any shape atomically: [`FlatModel::encode`]'s bytes, which are
/// [`save`]'s for a shape this build names.
pub fn save_flat(path: &Path, model: &FlatModel, header: &Header) -> Result<(), ModelFileError> {
    write(path, model.encode(header))
}

/// Writes an integer model of any shape atomically: [`FlatQModel::encode`]'s bytes.
pub fn save_flat_integer(
    path: &Path,
    model: &FlatQModel,
    header: &Header,
) -> Result<(), ModelFileError> {
    write(path, model.encode(header))
}

fn write(path: &Path, bytes: Result<Vec<u8>, FileError>) -> Result<(), ModelFileError> {
    let bytes = bytes.map_err(|e| ModelFileError::format(path, e))?;
    crate::atomic::write(path, &bytes).map_err(|source| ModelFileError::Io {
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tinyddpm_core::{Model, QModel, Sampler, ScheduleKind};

    fn model_file(dir: &Path) -> (std::path::PathBuf, Vec<u8>) {
        let model = Box::new(Model::<4, 1>::ZERO);
        let header = Header::new::<4, 1, 10>(ScheduleKind::SEED, Sampler::Ddpm);
        let bytes = encode(&*model, &header).unwrap();
        let path = dir.join("m.tdm");
        std::fs::write(&path, &bytes).unwrap();
        (path, bytes)
    }

    #[test]
    fn a_model_file_is_read_exactly_and_a_longer_one_no_further_than_its_header_allows() {
        let dir = tempfile::tempdir().unwrap();
        let (path, bytes) = model_file(dir.path());
        assert_eq!(read_bytes(&path).unwrap(), bytes);
        let mut longer = bytes.clone();
        longer.extend(std::iter::repeat_n(0u8, 1 << 20));
        std::fs::write(&path, &longer).unwrap();
        let e = read_bytes(&path).unwrap_err();
        let n = bytes.len() as u64;
        assert!(
            matches!(e, ModelFileError::TooLong { max, .. } if (n..n + 80).contains(&max)),
            "{e}"
        );
        std::fs::write(&path, &bytes[..7]).unwrap();
        assert_eq!(read_bytes(&path).unwrap(), &bytes[..7]);
    }

    /// A valid integer model: every exponent 6 (each GELU 2^-6 → 2^-6), parameters 1.
    fn small_qmodel() -> Box<QModel<4, 1>> {
        let mut q = Box::new(QModel::<4, 1>::ZERO);
        q.for_each_exponent_mut(|e| *e = 6);
        q.for_each_layer_mut(|l| {
            l.weight.fill(1);
            l.multiplier.fill(1 << 30);
            l.shift.fill(31);
        });
        q.validate().unwrap();
        q
    }

    #[test]
    fn an_integer_model_file_is_read_exactly_and_by_its_own_loader_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.tdm");
        let header = Header::new::<4, 1, 10>(ScheduleKind::SEED, Sampler::Ddpm);
        let q = small_qmodel();
        save(&path, &*q, &header).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(read_bytes(&path).unwrap(), bytes);
        let (back, h) = load::<4, 1, QModel<4, 1>>(&path).unwrap();
        assert_eq!((back, h), (q, header));
        let file = ModelFile::read(&path).unwrap();
        assert_eq!((file.kind, file.header), (Kind::Integer, header));
        let e = load::<4, 1, Model<4, 1>>(&path).unwrap_err();
        assert!(matches!(e, ModelFileError::Integer { .. }), "{e}");
        let e = file.require_float().unwrap_err().to_string();
        assert!(e.ends_with("q.tdm holds an integer model (made by `tinyddpm quantize`); this command reads float models only"), "{e}");
        let (float, _) = model_file(dir.path());
        let e = load::<4, 1, QModel<4, 1>>(&float).unwrap_err().to_string();
        assert!(
            e.ends_with("m.tdm: model file holds a float model, not an integer model"),
            "{e}"
        );
        // no further than its header allows
        let mut longer = bytes.clone();
        longer.extend(std::iter::repeat_n(0u8, 1 << 20));
        std::fs::write(&path, &longer).unwrap();
        let e = read_bytes(&path).unwrap_err();
        let n = bytes.len() as u64;
        assert!(
            matches!(e, ModelFileError::TooLong { max, .. } if max == n),
            "{e}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn an_endless_file_is_refused_after_its_preamble() {
        if !Path::new("/dev/zero").exists() {
            return;
        }
        let Err(e) = ModelFile::read(Path::new("/dev/zero")) else {
            panic!("/dev/zero read as a model file");
        };
        assert!(e.to_string().contains("bad magic"), "{e}");
    }

    #[test]
    fn probe_finds_an_overflowing_output() {
        let header = Header::new::<4, 1, 10>(ScheduleKind::SEED, Sampler::Ddpm);
        let mut model = Box::new(Model::<4, 1>::ZERO);
        assert_eq!(probe::<10>(&FlatModel::of(&*model), &header), None);
        model.for_each_param_mut(|p| *p = 3e38);
        assert!(probe::<10>(&FlatModel::of(&*model), &header).is_some());
    }
}

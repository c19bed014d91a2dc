//! The model file: a small postcard header, the model's parameters, a CRC-32, in the
//! project's [container](crate::container). It holds a float [`Model`] or an integer
//! [`QModel`] (its [`Kind`]).
//!
//! ```text
//! offset 0   "TINYDDPM"            magic, 8 bytes
//!        8   version               u16 LE: 1, 2, 3 or 4
//!       10   header length n       u16 LE
//!       12   header                postcard, n bytes
//!                                    version 1: Header                (a float model)
//!                                    version 2: Kind (0 float, 1 integer), then Header
//!                                    version 3: Kind, Header, then Data
//!                                    version 4: Kind, Header, Data, then C (u16)
//!            zero padding          to a multiple of 16 (the payload starts aligned)
//!            payload               the parameters, by kind (below)
//!   len − 4  CRC-32/ISO-HDLC       u32 LE, over every byte before it
//! ```
//!
//! **Float payload**: the weights as f32 LE, [`Model::for_each_param`] order (PyTorch
//! state_dict order; identical to postcard's encoding of the arrays); a model conditioned on
//! C > 0 classes then holds its class embedding, (C + 1) × H f32 LE, row C the "no class"
//! row ([`Layout::with_classes`]).
//!
//! **Integer payload**, for C = (3 + 2B)·H + D output channels (D = the [`Data`]'s `dim`),
//! W = [`param_count_dim`]`(H, B, D)` − C weights and 6 + 3B exponents; layers in
//! [`QModel::for_each_layer`] order (the same state_dict order), channels in order within a
//! layer:
//!
//! ```text
//!   biases        i32 LE × C       every layer's, channel by channel
//!   multipliers   i32 LE × C       requantization multipliers M, likewise
//!   weights       i8 × W           every layer's, [out][in] row-major
//!   shifts        u8 × C           requantization shifts s, likewise
//!   exponents     u8 × (6 + 3B)    QModel::for_each_exponent order
//! ```
//! The 32-bit sections come first, so every i32 is 4-byte aligned in the file without any
//! padding; the weights start 16-byte aligned whenever H is even.
//!
//! **Versions.** Version 1 is the header of every float file written before integer models.
//! Float models of the notebook's data are still written as version 1: those files keep
//! their bytes (decoding and encoding again gives them back) and every reader of them keeps
//! working. Version 2 puts the kind in front of the same fields and holds integer models; a
//! version 2 file of kind float (same payload as version 1) is read too. Version 3 adds the
//! [`Data`] — the dimension D, where the training data came from and its [`Units`] — and is
//! written only for a model whose data are not the notebook's ([`Data::SWISS_ROLL`], what
//! versions 1 and 2 mean), so every earlier file's bytes stay what they were. D sets the
//! input and output layers' widths (`Model<H, B, D>`, `QModel<H, B, D>`), so the payload's
//! length and a destination's shape depend on it: a file is decoded only into a model of its
//! D ([`FileError::Dim`]), and written only from one. Version 4 adds C, the classes a float
//! model is conditioned on, and is written only for C > 0 (a version 4 file of C = 0 is
//! refused, as a version 3 file of the notebook's data is): the const-generic models are
//! unconditional, so such a file is read by a host that learns the shape from the file
//! ([`Contents::float_params`]) and refused by [`decode_into`] ([`FileError::Classes`]).
//!
//! Decoding needs no allocator and writes into caller-owned storage; every malformed input
//! (truncated, bit-flipped, foreign, of another kind or shape, non-finite weights, integer
//! parameters out of their range) is a [`FileError`], never a panic, and the destination is
//! written only after every check has passed.

use serde::{Deserialize, Serialize};

use crate::container::{ContainerError, Format};
use crate::layout::Layout;
use crate::model::Model;
pub use crate::network::{Kind, Network};
use crate::quant::{
    QModel, QParams, QParamsMut, QuantError, bias_in_range, shift_in_range, validate_exponents,
    weight_in_range,
};
use crate::sampler::{Sampler, SamplerError};
use crate::schedule::{Schedule, ScheduleKind};
use crate::units::{MAX_DIM, Units};

/// First eight bytes of every model file.
pub const MAGIC: [u8; 8] = *b"TINYDDPM";
/// Version 1 of the model file: the float model's [`Header`]; the payload starts 16-byte
/// aligned.
pub const FORMAT_V1: Format = Format {
    magic: MAGIC,
    version: 1,
    align: 16,
};
/// Version 2: the [`Kind`], then the same [`Header`]; the payload starts 16-byte aligned.
pub const FORMAT_V2: Format = Format {
    magic: MAGIC,
    version: 2,
    align: 16,
};
/// Version 3: the [`Kind`], the [`Header`], then its [`Data`]; the payload starts 16-byte
/// aligned.
pub const FORMAT_V3: Format = Format {
    magic: MAGIC,
    version: 3,
    align: 16,
};
/// Version 4: the [`Kind`], the [`Header`], its [`Data`], then its classes C; the payload
/// starts 16-byte aligned.
pub const FORMAT_V4: Format = Format {
    magic: MAGIC,
    version: 4,
    align: 16,
};
/// What the model file is called in its errors.
const NAME: &str = "model file";

/// What a model file says about its model.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// H, hidden width.
    pub hidden: u32,
    /// B, residual blocks.
    pub blocks: u32,
    /// T, diffusion timesteps the model was trained for.
    pub timesteps: u32,
    /// The noise schedule it was trained with.
    pub schedule: ScheduleKind,
    /// The sampler to use when none is asked for.
    pub sampler: Sampler,
    /// What the model was trained on; written after the other fields, by versions 3 and 4.
    #[serde(skip, default = "Data::swiss_roll")]
    pub data: Data,
    /// C, the classes the model is conditioned on (0: unconditional); written by version 4
    /// only.
    #[serde(skip)]
    pub classes: u16,
}

/// Where a model's training data came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Source {
    /// A built-in data set, by the host's number for it (0: the notebook's Swiss roll).
    Builtin(u8),
    /// Points read from a file.
    File,
}

/// What a model file says about the data its model draws.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Data {
    /// D, the dimension of a point: 1 ..= [`MAX_DIM`].
    pub dim: u8,
    /// Where the training data came from.
    pub source: Source,
    /// The map from the model's space to the data's units, applied to every sample
    /// ([`Units::to_data`]); none when the model was trained on the data as they are.
    pub units: Option<Units>,
}

impl Data {
    /// The notebook's data: the 2-D Swiss roll as drawn, what every file of version 1 or 2
    /// holds.
    pub const SWISS_ROLL: Self = Self {
        dim: 2,
        source: Source::Builtin(0),
        units: None,
    };

    fn swiss_roll() -> Self {
        Self::SWISS_ROLL
    }

    /// Whether a file may hold this: D in 1 ..= [`MAX_DIM`], units valid for D.
    fn is_valid(&self) -> bool {
        let dim = usize::from(self.dim);
        (1..=MAX_DIM).contains(&dim) && self.units.is_none_or(|u| u.is_valid(dim))
    }
}

/// How each kind reads in a file.
impl Kind {
    /// "a float model", "an integer model".
    fn a_model(self) -> &'static str {
        match self {
            Kind::Float => "a float model",
            Kind::Integer => "an integer model",
        }
    }

    /// Bytes of the payload of a model of this kind with `h` hidden units and `b` blocks on
    /// points of `dim` coordinates, conditioned on `classes` classes, if that fits a usize
    /// (the integer model is unconditional: `None` for C > 0).
    pub fn payload_len(self, h: u32, b: u32, dim: u8, classes: u16) -> Option<usize> {
        match (self, classes) {
            (Kind::Float, _) => layout(h, b, dim)?
                .with_classes(classes.into())?
                .len()
                .checked_mul(4),
            (Kind::Integer, 0) => QuantSizes::with_dim(h, b, dim)?
                .lens()
                .into_iter()
                .try_fold(0usize, usize::checked_add),
            (Kind::Integer, _) => None,
        }
    }
}

/// The version 2 header: the kind, then the version 1 fields.
#[derive(Serialize, Deserialize)]
struct KindHeader {
    kind: Kind,
    header: Header,
}

/// The version 3 header: the version 2 fields, then the data.
#[derive(Serialize, Deserialize)]
struct DataHeader {
    kind: Kind,
    header: Header,
    data: Data,
}

/// The version 4 header: the version 3 fields, then the classes.
#[derive(Serialize, Deserialize)]
struct ClassHeader {
    kind: Kind,
    header: Header,
    data: Data,
    classes: u16,
}

/// A header as it is written: the earliest version that holds it.
enum Wire {
    V1(Header),
    V2(KindHeader),
    V3(DataHeader),
    V4(ClassHeader),
}

impl Wire {
    fn of(kind: Kind, header: &Header) -> Self {
        if header.classes > 0 {
            return Self::V4(ClassHeader {
                kind,
                header: *header,
                data: header.data,
                classes: header.classes,
            });
        }
        match (kind, header.data == Data::SWISS_ROLL) {
            (Kind::Float, true) => Self::V1(*header),
            (Kind::Integer, true) => Self::V2(KindHeader {
                kind,
                header: *header,
            }),
            (_, false) => Self::V3(DataHeader {
                kind,
                header: *header,
                data: header.data,
            }),
        }
    }

    fn sealed_len(&self, payload_len: usize) -> Result<usize, ContainerError> {
        match self {
            Self::V1(h) => FORMAT_V1.sealed_len(h, payload_len),
            Self::V2(h) => FORMAT_V2.sealed_len(h, payload_len),
            Self::V3(h) => FORMAT_V3.sealed_len(h, payload_len),
            Self::V4(h) => FORMAT_V4.sealed_len(h, payload_len),
        }
    }

    fn seal(
        &self,
        payload_len: usize,
        out: &mut [u8],
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<usize, ContainerError> {
        match self {
            Self::V1(h) => FORMAT_V1.seal(h, payload_len, out, fill),
            Self::V2(h) => FORMAT_V2.seal(h, payload_len, out, fill),
            Self::V3(h) => FORMAT_V3.seal(h, payload_len, out, fill),
            Self::V4(h) => FORMAT_V4.seal(h, payload_len, out, fill),
        }
    }
}

/// Why bytes are not a usable model file.
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
pub enum FileError {
    /// The container is damaged, foreign, or its header is invalid.
    #[error("{}", .0.named(NAME))]
    Container(ContainerError),
    /// A version of the format this build does not read.
    #[error("model file format version {found}, this build reads versions 1 to 4")]
    Version {
        /// The file's version.
        found: u16,
    },
    /// The file holds another kind of model than the one asked for.
    #[error("model file holds {}, not {}", .found.a_model(), .expected.a_model())]
    Kind {
        /// The file's kind.
        found: Kind,
        /// The kind asked for.
        expected: Kind,
    },
    /// The sampler stored in the header cannot run on its schedule.
    #[error("model file default sampler invalid: {0}")]
    Sampler(SamplerError),
    /// The file's model has another shape than the storage it is decoded into.
    #[error(
        "model shape H={hidden} B={blocks} T={timesteps}, this build expects H={want_hidden} B={want_blocks} T={want_timesteps}"
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
    /// The file's model takes points of another dimension than the storage it is decoded
    /// into (or, encoding, the header's D is not the model's).
    #[error("model file's data have D={found} dimensions, this model takes D={want}")]
    Dim {
        /// The file's D.
        found: u8,
        /// The model's D.
        want: usize,
    },
    /// The file's model is conditioned on classes, the storage it is decoded into is not
    /// (or, encoding, the header names classes the model does not have).
    #[error(
        "model file's model is conditioned on {found} classes; this build's model is unconditional"
    )]
    Classes {
        /// The file's C.
        found: u16,
    },
    /// A weight is NaN or infinite.
    #[error("model file weight {index} is not finite")]
    NonFinite {
        /// Position in file order.
        index: usize,
    },
    /// An integer model's parameter or exponent is out of its range
    /// ([`QModel::validate`]).
    #[error("model file holds an invalid integer model: {0}")]
    Quant(QuantError),
}

impl From<ContainerError> for FileError {
    fn from(e: ContainerError) -> Self {
        Self::Container(e)
    }
}

/// Number of parameters of a model of the notebook's 2-D data with hidden width `h` and `b`
/// blocks, if it fits a usize: [`param_count_dim`]`(h, b, 2)`.
pub fn param_count(h: u32, b: u32) -> Option<usize> {
    param_count_dim(h, b, 2)
}

/// Number of parameters of a model with hidden width `h` and `b` blocks on points of `dim`
/// coordinates, if it fits a usize.
pub fn param_count_dim(h: u32, b: u32, dim: u8) -> Option<usize> {
    layout(h, b, dim).map(|l| l.len())
}

fn layout(h: u32, b: u32, dim: u8) -> Option<Layout> {
    Layout::with_dim(
        usize::try_from(h).ok()?,
        usize::try_from(b).ok()?,
        usize::from(dim),
    )
}

/// What an integer payload holds (module docs), for a model of any shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuantSizes {
    /// Output channels C: an i32 bias, an i32 multiplier and a u8 shift each.
    pub channels: usize,
    /// Weights W, one byte each.
    pub weights: usize,
    /// Activation exponents, one byte each.
    pub exponents: usize,
}

impl QuantSizes {
    /// The sizes for `h` hidden units and `b` blocks on the notebook's 2-D data:
    /// [`QuantSizes::with_dim`]`(h, b, 2)`.
    pub fn new(h: u32, b: u32) -> Option<Self> {
        Self::with_dim(h, b, 2)
    }

    /// The sizes for `h` hidden units and `b` blocks on points of `dim` coordinates, if they
    /// fit a usize.
    pub fn with_dim(h: u32, b: u32, dim: u8) -> Option<Self> {
        let layout = layout(h, b, dim)?;
        Some(Self {
            channels: layout.channels(),
            weights: layout.len() - layout.channels(),
            exponents: (b as usize).checked_mul(3)?.checked_add(6)?,
        })
    }

    /// Bytes of each section, in file order: biases, multipliers, weights, shifts,
    /// exponents.
    fn lens(self) -> [usize; 5] {
        let c = self.channels;
        // An overflow saturates, and the sum of the lengths then fails its checked add.
        let words = c.saturating_mul(4);
        [words, words, self.weights, c, self.exponents]
    }
}

/// `bytes` cut into consecutive pieces of `lens` bytes (the rest ignored), if long enough.
fn pieces<const N: usize>(bytes: &[u8], lens: [usize; N]) -> Option<[&[u8]; N]> {
    let mut rest = bytes;
    let mut out = [&[][..]; N];
    for (piece, len) in out.iter_mut().zip(lens) {
        (*piece, rest) = rest.split_at_checked(len)?;
    }
    Some(out)
}

/// [`pieces`], writable.
fn pieces_mut<const N: usize>(bytes: &mut [u8], lens: [usize; N]) -> Option<[&mut [u8]; N]> {
    let mut rest = bytes;
    let mut out: [&mut [u8]; N] = core::array::from_fn(|_| Default::default());
    for (piece, len) in out.iter_mut().zip(lens) {
        (*piece, rest) = core::mem::take(&mut rest).split_at_mut_checked(len)?;
    }
    Some(out)
}

/// The integer payload's sections of `QModel<H, B, D>`.
fn quant_sizes<const H: usize, const B: usize, const D: usize>() -> Option<QuantSizes> {
    QuantSizes::with_dim(
        u32::try_from(H).ok()?,
        u32::try_from(B).ok()?,
        u8::try_from(D).ok()?,
    )
}

fn le_i32(c: &[u8]) -> i32 {
    i32::from_le_bytes([c[0], c[1], c[2], c[3]])
}

impl Header {
    /// A header describing `Model<H, B>` (or `QModel<H, B>`) on a `T`-step schedule, of the
    /// notebook's data; a model of other data, D ≠ 2 included, takes [`Header::with_data`].
    pub fn new<const H: usize, const B: usize, const T: usize>(
        schedule: ScheduleKind,
        sampler: Sampler,
    ) -> Self {
        Self {
            hidden: H as u32,
            blocks: B as u32,
            timesteps: T as u32,
            schedule,
            sampler,
            data: Data::SWISS_ROLL,
            classes: 0,
        }
    }

    /// This header with `data`.
    pub fn with_data(self, data: Data) -> Self {
        Self { data, ..self }
    }

    /// This header with `classes` classes (0: unconditional).
    pub fn with_classes(self, classes: u16) -> Self {
        Self { classes, ..self }
    }

    /// Number of parameters the header describes.
    pub fn params(&self) -> Option<usize> {
        self.layout().map(|l| l.len())
    }

    /// The layout of the model the header describes, if its count fits a usize.
    pub fn layout(&self) -> Option<Layout> {
        layout(self.hidden, self.blocks, self.data.dim)?.with_classes(self.classes.into())
    }

    /// The schedule table, if the file's T is this build's T.
    pub fn schedule<const T: usize>(&self) -> Result<Schedule<T>, FileError> {
        if self.timesteps as usize != T {
            return Err(self.shape_error::<0, 0, T>(false));
        }
        Schedule::new(self.schedule).ok_or(ContainerError::Header.into())
    }

    fn shape_error<const H: usize, const B: usize, const T: usize>(
        &self,
        model: bool,
    ) -> FileError {
        let (want_hidden, want_blocks) = if model {
            (H, B)
        } else {
            (self.hidden as usize, self.blocks as usize)
        };
        FileError::Shape {
            hidden: self.hidden,
            blocks: self.blocks,
            timesteps: self.timesteps,
            want_hidden,
            want_blocks,
            want_timesteps: if T == 0 { self.timesteps as usize } else { T },
        }
    }

    /// Fails unless the header describes `H`, `B` (else [`FileError::Shape`]), `D` (else
    /// [`FileError::Dim`]) and no classes (else [`FileError::Classes`]): the shape of the
    /// const-generic models.
    fn check_shape<const H: usize, const B: usize, const D: usize>(&self) -> Result<(), FileError> {
        if self.hidden as usize != H || self.blocks as usize != B {
            return Err(self.shape_error::<H, B, 0>(true));
        }
        if self.classes > 0 {
            return Err(FileError::Classes {
                found: self.classes,
            });
        }
        match usize::from(self.data.dim) == D {
            true => Ok(()),
            false => Err(FileError::Dim {
                found: self.data.dim,
                want: D,
            }),
        }
    }

    /// Payload bytes of a `kind` model the header describes, checked for values a model
    /// file cannot hold.
    fn payload_len(&self, kind: Kind) -> Result<usize, FileError> {
        if !self.schedule.is_valid() || self.timesteps < 2 || !self.data.is_valid() {
            return Err(ContainerError::Header.into());
        }
        self.sampler
            .validate(self.timesteps as usize)
            .map_err(FileError::Sampler)?;
        kind.payload_len(self.hidden, self.blocks, self.data.dim, self.classes)
            .ok_or(ContainerError::Header.into())
    }
}

/// A model file checked up to its payload's values: everything but the shape, non-finite
/// weights and integer parameter ranges, which the decoders judge.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Contents<'a> {
    /// The format version: 1 to 4.
    pub version: u16,
    /// What the payload holds.
    pub kind: Kind,
    /// The header.
    pub header: Header,
    /// The payload: the parameters, laid out as the module docs say for `kind`.
    pub payload: &'a [u8],
}

impl Contents<'_> {
    /// These contents, if they hold a model of kind `expected`.
    fn require_kind(self, expected: Kind) -> Result<Self, FileError> {
        match self.kind == expected {
            true => Ok(self),
            false => Err(FileError::Kind {
                found: self.kind,
                expected,
            }),
        }
    }
}

/// The format a file's version names; a file too short or foreign to tell goes to the
/// current one, whose container names what is wrong.
fn format_of(bytes: &[u8]) -> Result<&'static Format, FileError> {
    match (bytes.get(..8), bytes.get(8..10)) {
        (Some(magic), Some(&[lo, hi])) if magic == MAGIC => match u16::from_le_bytes([lo, hi]) {
            1 => Ok(&FORMAT_V1),
            2 => Ok(&FORMAT_V2),
            3 => Ok(&FORMAT_V3),
            4 => Ok(&FORMAT_V4),
            found => Err(FileError::Version { found }),
        },
        _ => Ok(&FORMAT_V4),
    }
}

/// Checks the magic, version, CRC, length and header of a model file of either kind.
pub fn open(bytes: &[u8]) -> Result<Contents<'_>, FileError> {
    let format = format_of(bytes)?;
    let (kind, header, payload) = if *format == FORMAT_V1 {
        let (header, payload) = format.open(bytes, |h: &Header| h.payload_len(Kind::Float))?;
        (Kind::Float, header, payload)
    } else if *format == FORMAT_V2 {
        let (h, payload) = format.open(bytes, |h: &KindHeader| h.header.payload_len(h.kind))?;
        (h.kind, h.header, payload)
    } else if *format == FORMAT_V3 {
        // A version 3 file of the notebook's data would have been written as version 1 or
        // 2: it is not one this project writes, and reading it would make two encodings of
        // one model.
        let (h, payload) = format.open(bytes, |h: &DataHeader| {
            let header = h.header.with_data(h.data);
            match h.data == Data::SWISS_ROLL {
                true => Err(ContainerError::Header.into()),
                false => header.payload_len(h.kind),
            }
        })?;
        (h.kind, h.header.with_data(h.data), payload)
    } else {
        // Likewise a version 4 file of no classes.
        let header = |h: &ClassHeader| h.header.with_data(h.data).with_classes(h.classes);
        let (h, payload) = format.open(bytes, |h: &ClassHeader| match h.classes {
            0 => Err(ContainerError::Header.into()),
            _ => header(h).payload_len(h.kind),
        })?;
        (h.kind, header(&h), payload)
    };
    Ok(Contents {
        version: format.version,
        kind,
        header,
        payload,
    })
}

/// Bytes of the file for a model of kind `kind` described by `header`.
pub fn encoded_len(kind: Kind, header: &Header) -> Result<usize, FileError> {
    let len = header.payload_len(kind)?;
    Ok(Wire::of(kind, header).sealed_len(len)?)
}

/// A network a model file holds: how its payload (module docs) is checked, read and
/// written. Implemented by both kinds, for any D; [`encode`] and [`decode_into`] are written
/// once over it.
pub trait Stored<const H: usize, const B: usize, const D: usize = 2>: Network<H, B, D> {
    /// Fails unless `self` can be written: no decoder would read a file that fails here.
    fn check(&self) -> Result<(), FileError>;
    /// Writes the payload into `payload`, which is exactly this kind's length for (H, B, D).
    fn write_payload(&self, payload: &mut [u8]);
    /// Judges `payload` (this kind's, exactly as long as (H, B, D) makes it) whole, then, only
    /// when it is valid, writes it into `self`.
    fn read_payload(&mut self, payload: &[u8]) -> Result<(), FileError>;
}

impl<const H: usize, const B: usize, const D: usize> Stored<H, B, D> for Model<H, B, D> {
    fn check(&self) -> Result<(), FileError> {
        Ok(())
    }

    fn write_payload(&self, payload: &mut [u8]) {
        let mut chunks = payload.chunks_exact_mut(4);
        self.for_each_param(|p| {
            if let Some(c) = chunks.next() {
                c.copy_from_slice(&p.to_le_bytes());
            }
        });
    }

    fn read_payload(&mut self, weights: &[u8]) -> Result<(), FileError> {
        let mut values = float_values(weights)?;
        self.for_each_param_mut(|p| {
            if let Some(v) = values.next() {
                *p = v;
            }
        });
        Ok(())
    }
}

/// A float payload's values in file order, once every one is known to be finite.
fn float_values(weights: &[u8]) -> Result<impl Iterator<Item = f32> + '_, FileError> {
    let value = |c: &[u8]| f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    if let Some(index) = weights.chunks_exact(4).position(|c| !value(c).is_finite()) {
        return Err(FileError::NonFinite { index });
    }
    Ok(weights.chunks_exact(4).map(value))
}

impl<'a> Contents<'a> {
    /// A float model's parameters in file order (the order of
    /// [`Layout::with_dim`](crate::Layout::with_dim) for the header's shape, exactly
    /// [`Header::params`] of them), for a host that learns the shape from the file: the same
    /// checks as [`decode_into`] on a `Model`, without naming its shape at compile time.
    pub fn float_params(&self) -> Result<impl Iterator<Item = f32> + 'a, FileError> {
        let c = self.require_kind(Kind::Float)?;
        float_values(c.payload)
    }
}

impl Contents<'_> {
    /// The layout of the model the header describes, its class embedding included.
    pub fn layout(&self) -> Result<Layout, FileError> {
        self.header.layout().ok_or(ContainerError::Header.into())
    }

    /// An integer model's parameters into `out`, whose sections have the lengths
    /// [`QParams::lens`] gives for [`Contents::layout`], for a host that learns the shape from
    /// the file: the same checks as [`decode_into`] on a `QModel`, without naming its shape at
    /// compile time; `out` is untouched unless the result is `Ok`.
    pub fn read_quant_params(&self, out: QParamsMut<'_>) -> Result<(), FileError> {
        let c = self.require_kind(Kind::Integer)?;
        let layout = c.layout()?;
        let [channels, weights, exponents] = QParams::lens(&layout);
        let lens = [channels, channels, weights, channels, exponents];
        let QParamsMut {
            biases,
            multipliers,
            weights: w,
            shifts,
            exponents: e,
        } = out;
        if [
            biases.len(),
            multipliers.len(),
            w.len(),
            shifts.len(),
            e.len(),
        ] != lens
        {
            return Err(ContainerError::Header.into());
        }
        let sizes = QuantSizes::with_dim(c.header.hidden, c.header.blocks, c.header.data.dim)
            .ok_or(ContainerError::Header)?;
        let sections = pieces(c.payload, sizes.lens()).ok_or(ContainerError::Header)?;
        check_quant(&layout, sections).map_err(FileError::Quant)?;
        let [bs, ms, ws, ss, es] = sections;
        for (v, c) in biases.iter_mut().zip(bs.chunks_exact(4)) {
            *v = le_i32(c);
        }
        for (v, c) in multipliers.iter_mut().zip(ms.chunks_exact(4)) {
            *v = le_i32(c);
        }
        for (v, &c) in w.iter_mut().zip(ws) {
            *v = i8::from_le_bytes([c]);
        }
        shifts.copy_from_slice(ss);
        e.copy_from_slice(es);
        Ok(())
    }
}

/// [`encode`] for an integer model held as its sections ([`QParams`]), of the shape `header`
/// describes: the same bytes as [`encode`] on the `QModel` of those parameters; parameters
/// of another layout than the header's, or that fail [`QParams::validate`], are refused.
pub fn encode_quant_params(
    header: &Header,
    params: &QParams<'_>,
    out: &mut [u8],
) -> Result<usize, FileError> {
    let len = header.payload_len(Kind::Integer)?;
    if header.layout() != Some(params.layout) || !params.fits() {
        return Err(ContainerError::Header.into());
    }
    params.validate().map_err(FileError::Quant)?;
    let write = |payload: &mut [u8]| {
        let mut bytes = payload.iter_mut();
        let words = params.biases.iter().chain(params.multipliers);
        for (w, b) in words.flat_map(|w| w.to_le_bytes()).zip(bytes.by_ref()) {
            *b = w;
        }
        let rest = params.weights.iter().map(|w| w.to_le_bytes()[0]);
        let rest = rest.chain(params.shifts.iter().copied());
        for (v, b) in rest.chain(params.exponents.iter().copied()).zip(bytes) {
            *b = v;
        }
    };
    Ok(Wire::of(Kind::Integer, header).seal(len, out, write)?)
}

/// [`encode`] for a float model held as its parameters in file order, of the shape
/// `header` describes (its D included): a model of any shape, written without naming it at
/// compile time. The same bytes as [`encode`] on the `Model` these parameters make;
/// parameters of another count than the header's shape are refused as a header that does
/// not describe them.
pub fn encode_params(header: &Header, params: &[f32], out: &mut [u8]) -> Result<usize, FileError> {
    let len = header.payload_len(Kind::Float)?;
    if header.params() != Some(params.len()) {
        return Err(ContainerError::Header.into());
    }
    let write = |payload: &mut [u8]| {
        for (c, p) in payload.chunks_exact_mut(4).zip(params) {
            c.copy_from_slice(&p.to_le_bytes());
        }
    };
    Ok(Wire::of(Kind::Float, header).seal(len, out, write)?)
}

impl<const H: usize, const B: usize, const D: usize> Stored<H, B, D> for QModel<H, B, D> {
    /// [`QModel::validate`].
    fn check(&self) -> Result<(), FileError> {
        self.validate().map_err(FileError::Quant)
    }

    fn write_payload(&self, payload: &mut [u8]) {
        let Some(sizes) = quant_sizes::<H, B, D>() else {
            return;
        };
        // The payload is exactly the sections' length: every piece is there.
        let Some([biases, multipliers, weights, shifts, exponents]) =
            pieces_mut(payload, sizes.lens())
        else {
            return;
        };
        let (mut bias, mut mult) = (biases.chunks_exact_mut(4), multipliers.chunks_exact_mut(4));
        let (mut weight, mut shift) = (weights.iter_mut(), shifts.iter_mut());
        // Each zip runs over the layer's slice first, so it takes exactly that many from the
        // section.
        self.for_each_layer(|l| {
            for (v, c) in l.bias.iter().zip(bias.by_ref()) {
                c.copy_from_slice(&v.to_le_bytes());
            }
            for (v, c) in l.multiplier.iter().zip(mult.by_ref()) {
                c.copy_from_slice(&v.to_le_bytes());
            }
            for (v, c) in l.weight.iter().zip(weight.by_ref()) {
                *c = v.to_le_bytes()[0];
            }
            for (v, c) in l.shift.iter().zip(shift.by_ref()) {
                *c = *v;
            }
        });
        let mut exponent = exponents.iter_mut();
        self.for_each_exponent(|e| {
            if let Some(c) = exponent.next() {
                *c = e;
            }
        });
    }

    /// Every check, [`QModel::validate`]'s included, runs on the bytes before anything is
    /// written.
    fn read_payload(&mut self, payload: &[u8]) -> Result<(), FileError> {
        let sizes = quant_sizes::<H, B, D>().ok_or(ContainerError::Header)?;
        let sections = pieces(payload, sizes.lens()).ok_or(ContainerError::Header)?;
        check_quant(&Layout::of_dim::<H, B, D>(), sections).map_err(FileError::Quant)?;
        let [biases, multipliers, weights, shifts, exponents] = sections;
        let (mut bias, mut mult) = (biases.chunks_exact(4), multipliers.chunks_exact(4));
        let (mut weight, mut shift) = (weights.iter(), shifts.iter());
        self.for_each_layer_mut(|l| {
            for (v, c) in l.bias.iter_mut().zip(bias.by_ref()) {
                *v = le_i32(c);
            }
            for (v, c) in l.multiplier.iter_mut().zip(mult.by_ref()) {
                *v = le_i32(c);
            }
            for (v, c) in l.weight.iter_mut().zip(weight.by_ref()) {
                *v = i8::from_le_bytes([*c]);
            }
            for (v, c) in l.shift.iter_mut().zip(shift.by_ref()) {
                *v = *c;
            }
        });
        set_exponents(self, exponents);
        Ok(())
    }
}

/// Writes `model` with `header` into `out` — as version 1 (the bytes every float file has
/// had) or 2 (an integer model) when its data are the notebook's, else as version 3 — and
/// returns the bytes written. A model that fails [`Stored::check`], a header of another
/// shape than the model's (its `data.dim` included), or a header no decoder would read, is
/// refused.
pub fn encode<const H: usize, const B: usize, M: Stored<H, B, D>, const D: usize>(
    model: &M,
    header: &Header,
    out: &mut [u8],
) -> Result<usize, FileError> {
    // The header's own validity first, as the decoder judges it before the shape.
    let len = header.payload_len(M::KIND)?;
    header.check_shape::<H, B, D>()?;
    model.check()?;
    let write = |payload: &mut [u8]| model.write_payload(payload);
    Ok(Wire::of(M::KIND, header).seal(len, out, write)?)
}

/// Checks everything but the model's shape of a float model file; returns the header and
/// the weight bytes. An integer file is a [`FileError::Kind`].
pub fn read_header(bytes: &[u8]) -> Result<(Header, &[u8]), FileError> {
    let c = open(bytes)?.require_kind(Kind::Float)?;
    Ok((c.header, c.payload))
}

/// Where the header of a model file starting with `prefix` ends, once `prefix` holds its
/// preamble (see [`Format::header_end`]); `None` for a shorter prefix, a foreign file or an
/// unknown version.
pub fn header_end(prefix: &[u8]) -> Option<usize> {
    format_of(prefix).ok()?.header_end(prefix)
}

/// The length of the model file whose first bytes are `prefix`, once they hold its whole
/// header (see [`Format::expected_len`]): how far a reader needs to read. Only the kind and
/// the shape are looked at; the decoder judges the rest of the header.
pub fn expected_len(prefix: &[u8]) -> Option<usize> {
    let format = format_of(prefix).ok()?;
    // Versions 1 and 2 hold the notebook's 2-D data; version 3 names its D.
    let dim = Data::SWISS_ROLL.dim;
    if *format == FORMAT_V1 {
        format.expected_len(prefix, |h: &Header| {
            Kind::Float.payload_len(h.hidden, h.blocks, dim, 0)
        })
    } else if *format == FORMAT_V2 {
        format.expected_len(prefix, |h: &KindHeader| {
            h.kind.payload_len(h.header.hidden, h.header.blocks, dim, 0)
        })
    } else if *format == FORMAT_V3 {
        format.expected_len(prefix, |h: &DataHeader| {
            h.kind
                .payload_len(h.header.hidden, h.header.blocks, h.data.dim, 0)
        })
    } else {
        format.expected_len(prefix, |h: &ClassHeader| {
            h.kind
                .payload_len(h.header.hidden, h.header.blocks, h.data.dim, h.classes)
        })
    }
}

/// Decodes a whole model file into `model` (caller-owned: a `static`, a `Box`, a stack
/// slot) of the kind and shape the file must hold, its D included. Every check runs on the
/// bytes first: `model` is untouched unless the result is `Ok`.
pub fn decode_into<const H: usize, const B: usize, M: Stored<H, B, D>, const D: usize>(
    bytes: &[u8],
    model: &mut M,
) -> Result<Header, FileError> {
    let c = open(bytes)?.require_kind(M::KIND)?;
    c.header.check_shape::<H, B, D>()?;
    model.read_payload(c.payload)?;
    Ok(c.header)
}

fn set_exponents<const H: usize, const B: usize, const D: usize>(
    model: &mut QModel<H, B, D>,
    bytes: &[u8],
) {
    let mut byte = bytes.iter();
    model.for_each_exponent_mut(|e| {
        if let Some(&b) = byte.next() {
            *e = b;
        }
    });
}

/// [`QModel::validate`] on an integer payload's sections, before they are decoded: the
/// same checks in the same order, so the same error. `layout` gives each layer's name and
/// sizes.
fn check_quant(
    layout: &Layout,
    [biases, _, weights, shifts, exponents]: [&[u8]; 5],
) -> Result<(), QuantError> {
    let exp = |n: usize| exponents.get(n).copied().unwrap_or(0);
    validate_exponents(exp, layout.blocks)?;
    let (mut bias, mut weight, mut shift) = (biases.chunks_exact(4), weights.iter(), shifts.iter());
    for d in layout.iter() {
        // Every layer before the first bad one reads its whole share of each section; from
        // the first bad value on, nothing more is judged.
        if !(bias.by_ref().take(d.o).all(|c| bias_in_range(le_i32(c)))
            && weight
                .by_ref()
                .take(d.o * d.i)
                .all(|&w| weight_in_range(i8::from_le_bytes([w])))
            && shift.by_ref().take(d.o).all(|&s| shift_in_range(s)))
        {
            return Err(QuantError::Parameters { layer: d.layer });
        }
    }
    Ok(())
}

//! The model file: a small postcard header, the weights, a CRC-32, in the project's
//! [container](crate::container) ([`FORMAT`]).
//!
//! ```text
//! offset 0   "TINYDDPM"            magic, 8 bytes
//!        8   version               u16 LE (= VERSION)
//!       10   header length n       u16 LE
//!       12   Header                postcard, n bytes
//!            zero padding          to a multiple of 16 (weights start aligned)
//!            weights               f32 LE, Model::for_each_param order (PyTorch state_dict
//!                                  order; identical to postcard's encoding of the arrays)
//!   len − 4  CRC-32/ISO-HDLC       u32 LE, over every byte before it
//! ```
//! Decoding needs no allocator and writes into caller-owned storage; every malformed input
//! (truncated, bit-flipped, foreign, wrong shape, non-finite weights) is a [`FileError`],
//! never a panic, and the destination is written only after every check has passed.

use serde::{Deserialize, Serialize};

use crate::container::{ContainerError, Format};
use crate::model::Model;
use crate::sampler::{Sampler, SamplerError};
use crate::schedule::{Schedule, ScheduleKind};

/// First eight bytes of every model file.
pub const MAGIC: [u8; 8] = *b"TINYDDPM";
/// The format version this crate reads and writes.
pub const VERSION: u16 = 1;
/// The model file's container: the weights start 16-byte aligned.
pub const FORMAT: Format = Format {
    magic: MAGIC,
    version: VERSION,
    align: 16,
};
/// What the model file is called in its errors.
const NAME: &str = "model file";

/// What a model file says about its model.
///
/// A later payload kind (e.g. integer weights) is a new header of a new [`VERSION`] in the
/// same container: the container does not depend on what the header holds.
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
}

/// Why bytes are not a usable model file.
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
pub enum FileError {
    /// The container is damaged, foreign, of another version, or its header is invalid.
    #[error("{}", .0.named(NAME))]
    Container(ContainerError),
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
    /// A weight is NaN or infinite.
    #[error("model file weight {index} is not finite")]
    NonFinite {
        /// Position in file order.
        index: usize,
    },
}

impl From<ContainerError> for FileError {
    fn from(e: ContainerError) -> Self {
        Self::Container(e)
    }
}

/// Number of parameters of a model with hidden width `h` and `b` blocks, if it fits a usize.
pub fn param_count(h: u32, b: u32) -> Option<usize> {
    let (h, b) = (h as usize, b as usize);
    let square = h.checked_mul(h)?.checked_add(h)?;
    let blocks = square.checked_mul(2)?.checked_mul(b)?;
    // time_in (2h) + time_out + input (3h) + blocks + output (2h + 2)
    (7 * h as u128 + 2 + square as u128 + blocks as u128)
        .try_into()
        .ok()
}

impl Header {
    /// A header describing `Model<H, B>` on a `T`-step schedule.
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
        }
    }

    /// Number of parameters the header describes.
    pub fn params(&self) -> Option<usize> {
        param_count(self.hidden, self.blocks)
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

    /// Payload bytes of the model the header describes: its weights as f32, checked for
    /// values a model file cannot hold.
    fn payload_len(&self) -> Result<usize, FileError> {
        if !self.schedule.is_valid() || self.timesteps < 2 {
            return Err(ContainerError::Header.into());
        }
        self.sampler
            .validate(self.timesteps as usize)
            .map_err(FileError::Sampler)?;
        self.params()
            .and_then(|n| n.checked_mul(4))
            .ok_or(ContainerError::Header.into())
    }
}

/// Bytes of the file for a model described by `header`.
pub fn encoded_len(header: &Header) -> Result<usize, FileError> {
    let params = header.params().ok_or(ContainerError::Header)?;
    let weights = params.checked_mul(4).ok_or(ContainerError::Header)?;
    Ok(FORMAT.sealed_len(header, weights)?)
}

/// Writes `model` with `header` into `out`; returns the bytes written.
pub fn encode<const H: usize, const B: usize>(
    model: &Model<H, B>,
    header: &Header,
    out: &mut [u8],
) -> Result<usize, FileError> {
    if header.hidden as usize != H || header.blocks as usize != B {
        return Err(header.shape_error::<H, B, 0>(true));
    }
    let written = FORMAT.seal(header, 4 * Model::<H, B>::PARAMS, out, |weights| {
        let mut chunks = weights.chunks_exact_mut(4);
        model.for_each_param(|p| {
            if let Some(c) = chunks.next() {
                c.copy_from_slice(&p.to_le_bytes());
            }
        });
    })?;
    Ok(written)
}

/// Checks everything but the model's shape; returns the header and the weight bytes.
pub fn read_header(bytes: &[u8]) -> Result<(Header, &[u8]), FileError> {
    FORMAT.open(bytes, Header::payload_len)
}

/// The length of the model file whose first bytes are `prefix`, once they hold its whole
/// header (see [`Format::expected_len`]): how far a reader needs to read. Only the shape is
/// looked at; the decoder judges the rest of the header.
pub fn expected_len(prefix: &[u8]) -> Option<usize> {
    FORMAT.expected_len(prefix, |h: &Header| h.params()?.checked_mul(4))
}

/// Decodes a whole file into `model` (caller-owned: a `static`, a `Box`, a stack slot).
/// `model` is untouched unless the result is `Ok`.
pub fn decode_into<const H: usize, const B: usize>(
    bytes: &[u8],
    model: &mut Model<H, B>,
) -> Result<Header, FileError> {
    let (header, weights) = read_header(bytes)?;
    if header.hidden as usize != H || header.blocks as usize != B {
        return Err(header.shape_error::<H, B, 0>(true));
    }
    let value = |c: &[u8]| f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    if let Some(index) = weights.chunks_exact(4).position(|c| !value(c).is_finite()) {
        return Err(FileError::NonFinite { index });
    }
    let mut chunks = weights.chunks_exact(4);
    model.for_each_param_mut(|p| {
        if let Some(c) = chunks.next() {
            *p = value(c);
        }
    });
    Ok(header)
}

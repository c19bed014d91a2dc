//! The model file: a small postcard header, the weights, a CRC-32.
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

use crate::model::Model;
use crate::sampler::{Sampler, SamplerError};
use crate::schedule::{Schedule, ScheduleKind};

/// First eight bytes of every model file.
pub const MAGIC: [u8; 8] = *b"TINYDDPM";
/// The format version this crate reads and writes.
pub const VERSION: u16 = 1;
/// Bytes before the postcard header.
const PREAMBLE: usize = 12;
/// Alignment of the weights within the file.
const WEIGHT_ALIGN: usize = 16;
/// Trailing CRC bytes.
const CRC_LEN: usize = 4;
/// Upper bound on the encoded header (its fields are all small).
pub const MAX_HEADER: usize = 64;

const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

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
}

/// Why bytes are not a usable model file.
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
pub enum FileError {
    /// Shorter than its own structure says.
    #[error("model file truncated: {len} bytes, at least {needed} needed")]
    Truncated {
        /// Bytes given.
        len: usize,
        /// Bytes the structure needs.
        needed: usize,
    },
    /// Not a tinyddpm model file.
    #[error("not a tinyddpm model file (bad magic)")]
    BadMagic,
    /// Another format version.
    #[error("model file format version {found}, this build reads version {VERSION}")]
    UnsupportedVersion {
        /// The file's version.
        found: u16,
    },
    /// Contents do not match the checksum.
    #[error("model file corrupt: CRC-32 {found:#010x}, expected {expected:#010x}")]
    Checksum {
        /// Stored in the file.
        expected: u32,
        /// Computed over the contents.
        found: u32,
    },
    /// The header does not decode or has out-of-range values.
    #[error("model file header invalid")]
    Header,
    /// The sampler stored in the header cannot run on its schedule.
    #[error("model file default sampler invalid: {0}")]
    Sampler(SamplerError),
    /// Length does not match the header's shape.
    #[error("model file length {found} does not match its shape ({expected} bytes expected)")]
    Length {
        /// Bytes the header implies.
        expected: usize,
        /// Bytes given.
        found: usize,
    },
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
    /// The output buffer is too small.
    #[error("output buffer of {len} bytes, {needed} needed")]
    BufferTooSmall {
        /// Bytes given.
        len: usize,
        /// Bytes needed.
        needed: usize,
    },
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

fn weights_offset(header_len: usize) -> usize {
    (PREAMBLE + header_len).div_ceil(WEIGHT_ALIGN) * WEIGHT_ALIGN
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
        Schedule::new(self.schedule).ok_or(FileError::Header)
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
}

/// Bytes of the file for a model described by `header`.
pub fn encoded_len(header: &Header) -> Result<usize, FileError> {
    let mut buf = [0u8; MAX_HEADER];
    let n = postcard::to_slice(header, &mut buf)
        .map_err(|_| FileError::Header)?
        .len();
    let params = header.params().ok_or(FileError::Header)?;
    Ok(weights_offset(n) + 4 * params + CRC_LEN)
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
    let needed = encoded_len(header)?;
    if out.len() < needed {
        return Err(FileError::BufferTooSmall {
            len: out.len(),
            needed,
        });
    }
    let out = &mut out[..needed];
    out.fill(0);
    let n = postcard::to_slice(header, &mut out[PREAMBLE..])
        .map_err(|_| FileError::Header)?
        .len();
    out[..8].copy_from_slice(&MAGIC);
    out[8..10].copy_from_slice(&VERSION.to_le_bytes());
    out[10..12].copy_from_slice(&(n as u16).to_le_bytes());
    let mut chunks = out[weights_offset(n)..needed - CRC_LEN].chunks_exact_mut(4);
    model.for_each_param(|p| {
        if let Some(c) = chunks.next() {
            c.copy_from_slice(&p.to_le_bytes());
        }
    });
    let crc = CRC.checksum(&out[..needed - CRC_LEN]);
    out[needed - CRC_LEN..].copy_from_slice(&crc.to_le_bytes());
    Ok(needed)
}

/// Checks everything but the model's shape; returns the header and the weight bytes.
pub fn read_header(bytes: &[u8]) -> Result<(Header, &[u8]), FileError> {
    let len = bytes.len();
    let truncated = |needed| FileError::Truncated { len, needed };
    let preamble = bytes.get(..PREAMBLE).ok_or(truncated(PREAMBLE + CRC_LEN))?;
    if preamble[..8] != MAGIC {
        return Err(FileError::BadMagic);
    }
    let version = u16::from_le_bytes([preamble[8], preamble[9]]);
    if version != VERSION {
        return Err(FileError::UnsupportedVersion { found: version });
    }
    let header_len = u16::from_le_bytes([preamble[10], preamble[11]]) as usize;
    let offset = weights_offset(header_len);
    if len < offset + CRC_LEN {
        return Err(truncated(offset + CRC_LEN));
    }
    let (body, stored) = bytes.split_at(len - CRC_LEN);
    let expected = u32::from_le_bytes([stored[0], stored[1], stored[2], stored[3]]);
    let found = CRC.checksum(body);
    if expected != found {
        return Err(FileError::Checksum { expected, found });
    }
    let header_bytes = &body[PREAMBLE..PREAMBLE + header_len];
    let header: Header = match postcard::take_from_bytes(header_bytes) {
        Ok((h, [])) => h,
        _ => return Err(FileError::Header),
    };
    if !header.schedule.is_valid() || header.timesteps < 2 {
        return Err(FileError::Header);
    }
    header
        .sampler
        .validate(header.timesteps as usize)
        .map_err(FileError::Sampler)?;
    let params = header.params().ok_or(FileError::Header)?;
    let expected_len = params
        .checked_mul(4)
        .and_then(|w| w.checked_add(offset + CRC_LEN))
        .ok_or(FileError::Header)?;
    if expected_len != len {
        return Err(FileError::Length {
            expected: expected_len,
            found: len,
        });
    }
    Ok((header, &body[offset..]))
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

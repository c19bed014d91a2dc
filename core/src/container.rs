//! The container every tinyddpm file is written in: a magic, a version, a postcard header
//! and a payload, sealed by a CRC-32.
//!
//! ```text
//! offset 0   magic                 8 bytes (the format's)
//!        8   version               u16 LE (the format's)
//!       10   header length n       u16 LE
//!       12   header                postcard, n bytes
//!            zero padding          to a multiple of the format's alignment
//!            payload               as many bytes as the header implies
//!   len − 4  CRC-32/ISO-HDLC       u32 LE, over every byte before it
//! ```
//! The model file ([`crate::file`]) and the trainer's checkpoint are two [`Format`]s of this
//! container, each with its own header type and payload. Nothing here allocates: [`Format::seal`]
//! writes into the caller's buffer, [`Format::open`] borrows the payload from the bytes given.
//! Every malformed input is a [`ContainerError`] (or the caller's error, for what only the
//! caller's header can judge), never a panic.

use core::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Bytes before the postcard header: magic, version, header length.
pub const PREAMBLE: usize = 12;
/// Trailing CRC bytes.
pub const CRC_LEN: usize = 4;

const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// What sets one kind of file apart from another in the same container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Format {
    /// First eight bytes of every file of the format.
    pub magic: [u8; 8],
    /// The version this build reads and writes.
    pub version: u16,
    /// Alignment of the payload within the file, in bytes: at least 1 (1: right after the
    /// header).
    pub align: usize,
}

/// Why bytes are not a usable container of a format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContainerError {
    /// Shorter than its own structure says.
    Truncated {
        /// Bytes given.
        len: usize,
        /// Bytes the structure needs.
        needed: usize,
    },
    /// Another format (or no tinyddpm file at all).
    BadMagic,
    /// Another version of the format.
    UnsupportedVersion {
        /// The file's version.
        found: u16,
        /// The version this build reads.
        supported: u16,
    },
    /// Contents do not match the checksum.
    Checksum {
        /// Stored in the file.
        expected: u32,
        /// Computed over the contents.
        found: u32,
    },
    /// The header does not decode, or holds values out of range.
    Header,
    /// The length does not match what the header implies.
    Length {
        /// Bytes the header implies.
        expected: usize,
        /// Bytes given.
        found: usize,
    },
    /// The output buffer is too small for the file being written.
    BufferTooSmall {
        /// Bytes given.
        len: usize,
        /// Bytes needed.
        needed: usize,
    },
}

impl ContainerError {
    /// The error as a sentence about a file called `name` ("model file", "training
    /// checkpoint"): the wording each format's own error type shows.
    pub fn named(&self, name: &'static str) -> Named<'_> {
        Named { name, error: self }
    }
}

/// A [`ContainerError`] worded for a named kind of file (see [`ContainerError::named`]).
#[derive(Clone, Copy, Debug)]
pub struct Named<'a> {
    name: &'static str,
    error: &'a ContainerError,
}

impl fmt::Display for Named<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.name;
        match *self.error {
            ContainerError::Truncated { len, needed } => {
                write!(f, "{name} truncated: {len} bytes, at least {needed} needed")
            }
            ContainerError::BadMagic => write!(f, "not a tinyddpm {name} (bad magic)"),
            ContainerError::UnsupportedVersion { found, supported } => write!(
                f,
                "{name} format version {found}, this build reads version {supported}"
            ),
            ContainerError::Checksum { expected, found } => write!(
                f,
                "{name} corrupt: CRC-32 {found:#010x}, expected {expected:#010x}"
            ),
            ContainerError::Header => write!(f, "{name} header invalid"),
            ContainerError::Length { expected, found } => write!(
                f,
                "{name} length {found} does not match its header ({expected} bytes expected)"
            ),
            ContainerError::BufferTooSmall { len, needed } => {
                write!(f, "output buffer of {len} bytes, {needed} needed")
            }
        }
    }
}

impl fmt::Display for ContainerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.named("file").fmt(f)
    }
}

impl core::error::Error for ContainerError {}

impl Format {
    /// Offset of the payload after a header of `header_len` bytes.
    pub const fn payload_offset(&self, header_len: usize) -> usize {
        (PREAMBLE + header_len).div_ceil(self.align) * self.align
    }

    /// Bytes of a file with a header of `header_len` bytes and `payload_len` payload bytes,
    /// if that fits a `usize`.
    pub fn len(&self, header_len: usize, payload_len: usize) -> Option<usize> {
        self.payload_offset(header_len)
            .checked_add(payload_len)?
            .checked_add(CRC_LEN)
    }

    /// Bytes of the file holding `header` and `payload_len` payload bytes.
    pub fn sealed_len<H: Serialize>(
        &self,
        header: &H,
        payload_len: usize,
    ) -> Result<usize, ContainerError> {
        let header_len = header_len(header)?;
        self.len(header_len, payload_len)
            .ok_or(ContainerError::Header)
    }

    /// Writes the file holding `header` and a payload of `payload_len` bytes into `out`;
    /// `fill` writes the payload into the (zeroed) slice it is given. Returns the bytes
    /// written, [`Format::sealed_len`]; the rest of `out` is left as it was.
    pub fn seal<H: Serialize>(
        &self,
        header: &H,
        payload_len: usize,
        out: &mut [u8],
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<usize, ContainerError> {
        let header_len = header_len(header)?;
        let needed = self
            .len(header_len, payload_len)
            .ok_or(ContainerError::Header)?;
        let len = out.len();
        let out = out
            .get_mut(..needed)
            .ok_or(ContainerError::BufferTooSmall { len, needed })?;
        out.fill(0);
        out[..8].copy_from_slice(&self.magic);
        out[8..10].copy_from_slice(&self.version.to_le_bytes());
        // header_len() checked that the length fits the u16 field.
        out[10..12].copy_from_slice(&(header_len as u16).to_le_bytes());
        postcard::to_slice(header, &mut out[PREAMBLE..]).map_err(|_| ContainerError::Header)?;
        let offset = self.payload_offset(header_len);
        fill(&mut out[offset..offset + payload_len]);
        let body = needed - CRC_LEN;
        let crc = CRC.checksum(&out[..body]);
        out[body..].copy_from_slice(&crc.to_le_bytes());
        Ok(needed)
    }

    /// Checks the magic, the version, the length and the CRC, decodes the header, and
    /// returns it with the payload. `payload_len` judges the header: the payload bytes it
    /// implies, or the caller's error for a header the container cannot judge (a shape, a
    /// value out of range); the file's length is checked against it afterwards.
    pub fn open<'a, H, E>(
        &self,
        bytes: &'a [u8],
        payload_len: impl FnOnce(&H) -> Result<usize, E>,
    ) -> Result<(H, &'a [u8]), E>
    where
        H: DeserializeOwned,
        E: From<ContainerError>,
    {
        let header_len = self.check_preamble(bytes)?;
        let len = bytes.len();
        let offset = self.payload_offset(header_len);
        if len < offset + CRC_LEN {
            return Err(ContainerError::Truncated {
                len,
                needed: offset + CRC_LEN,
            }
            .into());
        }
        let (body, stored) = bytes.split_at(len - CRC_LEN);
        let expected = u32::from_le_bytes([stored[0], stored[1], stored[2], stored[3]]);
        let found = CRC.checksum(body);
        if expected != found {
            return Err(ContainerError::Checksum { expected, found }.into());
        }
        let header: H = decode_header(&body[PREAMBLE..PREAMBLE + header_len])?;
        let expected = self
            .len(header_len, payload_len(&header)?)
            .ok_or(ContainerError::Header)?;
        if expected != len {
            return Err(ContainerError::Length {
                expected,
                found: len,
            }
            .into());
        }
        Ok((header, &body[offset..]))
    }

    /// Where the header of a file starting with `prefix` ends, once `prefix` holds the
    /// preamble of this format and version; `None` for a shorter prefix or another file
    /// (which [`Format::open`] then names).
    pub fn header_end(&self, prefix: &[u8]) -> Option<usize> {
        let header_len = self.check_preamble(prefix).ok()?;
        Some(PREAMBLE + header_len)
    }

    /// The length of the file whose first bytes are `prefix`, when they hold the whole
    /// header (see [`Format::header_end`]), it decodes, and `payload_len` accepts it: what a
    /// reader needs to read no further than the file's own structure allows.
    pub fn expected_len<H: DeserializeOwned>(
        &self,
        prefix: &[u8],
        payload_len: impl FnOnce(&H) -> Option<usize>,
    ) -> Option<usize> {
        let end = self.header_end(prefix)?;
        let header: H = decode_header(prefix.get(PREAMBLE..end)?).ok()?;
        self.len(end - PREAMBLE, payload_len(&header)?)
    }

    /// Checks magic and version; returns the header's length. A foreign file is named as
    /// such as soon as its first eight bytes are there.
    fn check_preamble(&self, bytes: &[u8]) -> Result<usize, ContainerError> {
        if bytes.get(..8).is_some_and(|m| *m != self.magic) {
            return Err(ContainerError::BadMagic);
        }
        let Some(preamble) = bytes.get(..PREAMBLE) else {
            return Err(ContainerError::Truncated {
                len: bytes.len(),
                needed: PREAMBLE + CRC_LEN,
            });
        };
        let found = u16::from_le_bytes([preamble[8], preamble[9]]);
        if found != self.version {
            return Err(ContainerError::UnsupportedVersion {
                found,
                supported: self.version,
            });
        }
        Ok(usize::from(u16::from_le_bytes([
            preamble[10],
            preamble[11],
        ])))
    }
}

/// The encoded length of `header`, checked to fit the u16 length field.
fn header_len<H: Serialize>(header: &H) -> Result<usize, ContainerError> {
    let n = postcard::serialize_with_flavor(header, postcard::ser_flavors::Size::default())
        .map_err(|_| ContainerError::Header)?;
    if n > usize::from(u16::MAX) {
        return Err(ContainerError::Header);
    }
    Ok(n)
}

/// Decodes a header that fills `bytes` exactly.
fn decode_header<H: DeserializeOwned>(bytes: &[u8]) -> Result<H, ContainerError> {
    match postcard::take_from_bytes(bytes) {
        Ok((header, [])) => Ok(header),
        _ => Err(ContainerError::Header),
    }
}

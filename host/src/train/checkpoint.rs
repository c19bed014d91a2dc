//! The training checkpoint: everything a run needs to continue bit for bit.
//!
//! ```text
//! offset 0   "TDDPMCKP"              magic, 8 bytes
//!        8   version                 u16 LE (= VERSION)
//!       10   header length n         u16 LE
//!       12   CheckpointHeader        postcard, n bytes: shape, schedule, config, step
//!            weights, m, v [, EMA]   f32 LE, each in the model file's parameter order
//!   len − 4  CRC-32/ISO-HDLC         u32 LE, over every byte before it
//! ```
//! The random state is the seed and the step: every example's stream is a function of
//! `(seed, step, index)` (see [`crate::data`]), so nothing else needs saving.
//!
//! A file is read no further than its header allows ([`read_bytes`]), so a foreign or
//! endless file given as a checkpoint is refused without being read whole.

use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};
use tinyddpm_core::ScheduleKind;

use super::adam::Adam;
use super::{CheckpointError, TrainConfig};

/// First eight bytes of every checkpoint.
const MAGIC: [u8; 8] = *b"TDDPMCKP";
/// The checkpoint format this build writes and reads.
pub const VERSION: u16 = 1;
/// Bytes before the postcard header.
const PREAMBLE: usize = 12;
/// Trailing CRC bytes.
const CRC_LEN: usize = 4;
const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
/// The most bytes read from any file given as a checkpoint: its four arrays (weights, Adam's
/// two moments, EMA) of the largest model file read.
pub const MAX_FILE_BYTES: u64 = 4 * crate::modelfile::MAX_FILE_BYTES;

/// Why bytes are not a usable checkpoint.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CheckpointFormatError {
    /// Shorter than its own structure says.
    #[error("checkpoint truncated: {len} bytes, at least {needed} needed")]
    Truncated {
        /// Bytes given.
        len: usize,
        /// Bytes the structure needs.
        needed: usize,
    },
    /// Not a tinyddpm training checkpoint.
    #[error("not a tinyddpm training checkpoint (bad magic)")]
    BadMagic,
    /// Another format version.
    #[error("checkpoint format version {found}, this build reads version {VERSION}")]
    UnsupportedVersion {
        /// The file's version.
        found: u16,
    },
    /// Contents do not match the checksum.
    #[error("checkpoint corrupt: CRC-32 {found:#010x}, expected {expected:#010x}")]
    Checksum {
        /// Stored in the file.
        expected: u32,
        /// Computed over the contents.
        found: u32,
    },
    /// The header does not decode or holds an invalid configuration.
    #[error("checkpoint header invalid: {0}")]
    Header(String),
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
    /// Length does not match the header.
    #[error("checkpoint length {found} does not match its header ({expected} bytes expected)")]
    Length {
        /// Bytes the header implies.
        expected: usize,
        /// Bytes given.
        found: usize,
    },
    /// A weight is NaN or infinite.
    #[error("checkpoint weight {index} is not finite")]
    NonFinite {
        /// Position in parameter order.
        index: usize,
    },
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

/// The state a checkpoint carries.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct State {
    /// The run's configuration (`threads` is not saved: the results do not depend on it).
    pub config: TrainConfig,
    /// The schedule the run trains for.
    pub schedule: ScheduleKind,
    /// Steps done.
    pub step: u64,
    /// Weights in parameter order.
    pub params: Vec<f32>,
    /// Adam's moments.
    pub adam: Adam,
    /// EMA weights, when the run keeps them.
    pub ema: Option<Vec<f32>>,
}

/// The model shape a checkpoint is checked against: (H, B, T).
pub(crate) type Shape = (usize, usize, usize);

/// Encodes `state` of a model of `shape`.
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
    let head = postcard::to_allocvec(&header).expect("a fixed-size header always encodes");
    let arrays = [&state.params, &state.adam.m, &state.adam.v]
        .into_iter()
        .chain(&state.ema);
    let mut out = Vec::with_capacity(PREAMBLE + head.len() + 16 * state.params.len() + CRC_LEN);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(head.len() as u16).to_le_bytes());
    out.extend_from_slice(&head);
    for array in arrays {
        out.extend(array.iter().flat_map(|v| v.to_le_bytes()));
    }
    let crc = CRC.checksum(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Checks the magic, version and CRC, and decodes the header; returns it and its length.
fn frame(bytes: &[u8]) -> Result<(CheckpointHeader, usize), CheckpointFormatError> {
    use CheckpointFormatError as E;
    let truncated = |needed| E::Truncated {
        len: bytes.len(),
        needed,
    };
    // A foreign file is named as such even when it is short (read_bytes stops after the
    // preamble of one).
    if bytes.get(..8).is_some_and(|m| m != MAGIC) {
        return Err(E::BadMagic);
    }
    if let Some(&[a, b]) = bytes.get(8..10)
        && u16::from_le_bytes([a, b]) != VERSION
    {
        return Err(E::UnsupportedVersion {
            found: u16::from_le_bytes([a, b]),
        });
    }
    if bytes.len() < PREAMBLE + CRC_LEN {
        return Err(truncated(PREAMBLE + CRC_LEN));
    }
    let (body, tail) = bytes.split_at(bytes.len() - CRC_LEN);
    let expected = u32::from_le_bytes(tail.try_into().expect("four bytes"));
    let found = CRC.checksum(body);
    if expected != found {
        return Err(E::Checksum { expected, found });
    }
    let head_len = usize::from(u16::from_le_bytes([bytes[10], bytes[11]]));
    let head = body
        .get(PREAMBLE..PREAMBLE + head_len)
        .ok_or(truncated(PREAMBLE + head_len + CRC_LEN))?;
    let h: CheckpointHeader =
        postcard::from_bytes(head).map_err(|e| E::Header(format!("does not decode ({e})")))?;
    Ok((h, head_len))
}

/// The length of the checkpoint `h` describes, with a header of `head_len` bytes.
fn expected_len(h: &CheckpointHeader, head_len: usize) -> Option<usize> {
    let arrays = 3 + usize::from(h.ema.is_some());
    usize::try_from(h.params)
        .ok()?
        .checked_mul(4 * arrays)?
        .checked_add(PREAMBLE + head_len + CRC_LEN)
}

/// Checks that `bytes` are as long as header `h` says.
fn check_len(
    bytes: &[u8],
    h: &CheckpointHeader,
    head_len: usize,
) -> Result<(), CheckpointFormatError> {
    let expected =
        expected_len(h, head_len).ok_or(CheckpointFormatError::Header("parameter count".into()))?;
    if bytes.len() != expected {
        return Err(CheckpointFormatError::Length {
            expected,
            found: bytes.len(),
        });
    }
    Ok(())
}

/// Reads a checkpoint file's bytes, no more than its header allows (and never more than
/// [`MAX_FILE_BYTES`]); [`decode`] or [`inspect`] then judge them.
pub(crate) fn read_bytes(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    let mut read_to = |bytes: &mut Vec<u8>, len: u64| {
        let more = len.saturating_sub(bytes.len() as u64);
        (&mut file).take(more).read_to_end(bytes)
    };
    read_to(&mut bytes, PREAMBLE as u64)?;
    if bytes.len() < PREAMBLE || bytes[..8] != MAGIC || bytes[8..10] != VERSION.to_le_bytes() {
        return Ok(bytes);
    }
    let head_len = u16::from_le_bytes([bytes[10], bytes[11]]) as usize;
    read_to(&mut bytes, (PREAMBLE + head_len) as u64)?;
    let limit = postcard::from_bytes::<CheckpointHeader>(&bytes[PREAMBLE..])
        .ok()
        .and_then(|h| expected_len(&h, head_len))
        .map_or(MAX_FILE_BYTES, |len| (len as u64).min(MAX_FILE_BYTES));
    read_to(&mut bytes, limit + 1)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("longer than a checkpoint can be ({limit} bytes at most)"),
        ));
    }
    Ok(bytes)
}

/// Decodes a checkpoint of a model of `shape`, checking every field before trusting it.
pub(crate) fn decode(bytes: &[u8], shape: Shape) -> Result<State, CheckpointFormatError> {
    use CheckpointFormatError as E;
    let (h, head_len) = frame(bytes)?;
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
    let config = TrainConfig {
        steps: h.steps,
        batch: usize::try_from(h.batch).map_err(|_| E::Header("batch too large".into()))?,
        lr: h.lr,
        seed: h.seed,
        ema: h.ema,
        threads: 0,
    };
    config.validate().map_err(E::Header)?;
    check_len(bytes, &h, head_len)?;
    let n = h.params as usize;
    let mut values = bytes[PREAMBLE + head_len..bytes.len() - CRC_LEN]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().expect("four bytes")));
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
    let schedule = h.schedule;
    if !schedule.is_valid() {
        return Err(E::Header("schedule parameters out of range".into()));
    }
    Ok(State {
        config,
        schedule,
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
    /// The format version (the one this build reads).
    pub version: u16,
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
}

/// Reads what the checkpoint at `path` holds, of any model shape: magic, version, CRC and
/// length are checked, and the values that are not finite counted.
pub fn inspect(path: &Path) -> Result<CheckpointInfo, CheckpointError> {
    let name = || path.display().to_string();
    let bytes = read_bytes(path).map_err(|source| CheckpointError::Io {
        path: name(),
        source,
    })?;
    let format = |source| CheckpointError::Format {
        path: name(),
        source,
    };
    let (h, head_len) = frame(&bytes).map_err(format)?;
    check_len(&bytes, &h, head_len).map_err(format)?;
    let values = bytes[PREAMBLE + head_len..bytes.len() - CRC_LEN]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().expect("four bytes")));
    let mut non_finite: Option<(usize, usize)> = None;
    for (i, v) in values.enumerate() {
        if !v.is_finite() {
            let (count, first) = non_finite.unwrap_or((0, i));
            non_finite = Some((count + 1, first));
        }
    }
    Ok(CheckpointInfo {
        len: bytes.len(),
        version: VERSION,
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(ema: bool) -> State {
        let n = 10;
        State {
            config: TrainConfig {
                ema: ema.then_some(0.99),
                ..TrainConfig::default()
            },
            schedule: ScheduleKind::SEED,
            step: 77,
            params: (0..n).map(|i| i as f32 * 0.5).collect(),
            adam: Adam {
                m: vec![0.25; n],
                v: vec![1e-3; n],
            },
            ema: ema.then(|| vec![-1.0; n]),
        }
    }

    #[test]
    fn round_trips_with_and_without_ema() {
        for ema in [false, true] {
            let s = state(ema);
            let bytes = encode(&s, (1, 2, 3));
            assert_eq!(decode(&bytes, (1, 2, 3)).unwrap(), s);
        }
    }

    #[test]
    fn every_truncation_and_bit_flip_is_a_typed_error() {
        let bytes = encode(&state(true), (1, 2, 3));
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len], (1, 2, 3)).is_err(), "length {len}");
        }
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert!(decode(&bad, (1, 2, 3)).is_err(), "flip at {i}");
        }
        assert!(matches!(
            decode(&bytes, (1, 2, 4)),
            Err(CheckpointFormatError::Shape { .. })
        ));
    }

    #[test]
    fn a_longer_file_is_read_no_further_than_its_header_allows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.ckpt");
        let bytes = encode(&state(true), (1, 2, 3));
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(read_bytes(&path).unwrap(), bytes);
        let mut longer = bytes.clone();
        longer.extend(std::iter::repeat_n(7u8, 1 << 20));
        std::fs::write(&path, &longer).unwrap();
        let e = read_bytes(&path).unwrap_err();
        assert!(
            e.to_string().contains(&format!("({} bytes", bytes.len())),
            "{e}"
        );
        let info = {
            std::fs::write(&path, &bytes).unwrap();
            inspect(&path).unwrap()
        };
        assert_eq!((info.step, info.params, info.ema), (77, 10, Some(0.99)));
        assert_eq!(info.non_finite, None);
    }
}

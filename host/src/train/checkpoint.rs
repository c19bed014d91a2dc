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

use serde::{Deserialize, Serialize};
use tinyddpm_core::ScheduleKind;

use super::TrainConfig;
use super::adam::Adam;

/// First eight bytes of every checkpoint.
const MAGIC: [u8; 8] = *b"TDDPMCKP";
/// The checkpoint format this build writes and reads.
pub const VERSION: u16 = 1;
/// Bytes before the postcard header.
const PREAMBLE: usize = 12;
/// Trailing CRC bytes.
const CRC_LEN: usize = 4;
const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

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

/// Decodes a checkpoint of a model of `shape`, checking every field before trusting it.
pub(crate) fn decode(bytes: &[u8], shape: Shape) -> Result<State, CheckpointFormatError> {
    use CheckpointFormatError as E;
    let truncated = |needed| E::Truncated {
        len: bytes.len(),
        needed,
    };
    if bytes.len() < PREAMBLE + CRC_LEN {
        return Err(truncated(PREAMBLE + CRC_LEN));
    }
    if bytes[..8] != MAGIC {
        return Err(E::BadMagic);
    }
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    if version != VERSION {
        return Err(E::UnsupportedVersion { found: version });
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
    let n = usize::try_from(h.params).map_err(|_| E::Header("parameter count".into()))?;
    let arrays = 3 + usize::from(h.ema.is_some());
    let expected = n
        .checked_mul(4 * arrays)
        .and_then(|w| w.checked_add(PREAMBLE + head_len + CRC_LEN))
        .ok_or(E::Header("parameter count".into()))?;
    if bytes.len() != expected {
        return Err(E::Length {
            expected,
            found: bytes.len(),
        });
    }
    let mut values = body[PREAMBLE + head_len..]
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
}

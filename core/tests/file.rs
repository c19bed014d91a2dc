//! The model file decoder against every malformed input we can enumerate: each truncation,
//! each single-bit flip, foreign magic/version/shape, non-finite weights, arbitrary bytes.
//! It must return a typed error — never panic, never a silently different model.

use proptest::prelude::*;
use tinyddpm_core::file::{self, FileError, Header, MAGIC};
use tinyddpm_core::{Model, Sampler, ScheduleKind, Spacing};

type Small = Model<4, 1>;

fn small_model() -> Small {
    let mut m = Small::ZERO;
    let mut i = 0u32;
    m.for_each_param_mut(|p| {
        i += 1;
        *p = (i as f32 * 0.37).sin();
    });
    m
}

fn header<const H: usize, const B: usize>() -> Header {
    let sampler = Sampler::Ddim {
        steps: 25,
        eta: 0.3,
        spacing: Spacing::Linspace,
        clip: true,
    };
    Header::new::<H, B, 1000>(ScheduleKind::SEED, sampler)
}

fn encoded(m: &Small) -> Vec<u8> {
    let h = header::<4, 1>();
    let mut out = vec![0u8; file::encoded_len(&h).unwrap()];
    assert_eq!(file::encode(m, &h, &mut out).unwrap(), out.len());
    out
}

#[test]
fn round_trip_keeps_every_bit_and_the_header() {
    let m = small_model();
    let bytes = encoded(&m);
    let mut back = Small::ZERO;
    assert_eq!(
        file::decode_into(&bytes, &mut back).unwrap(),
        header::<4, 1>()
    );
    assert_eq!(back, m);
    // weights are the f32 LE values in state_dict order, 16-byte aligned before the CRC
    let weights_start = bytes.len() - 4 - 4 * Small::PARAMS;
    assert_eq!(weights_start % 16, 0);
    assert_eq!(
        bytes[weights_start..weights_start + 4],
        m.time_in.weight[0][0].to_le_bytes()
    );
}

#[test]
fn seed_sized_model_round_trips() {
    let mut m = Box::new(tinyddpm_core::SeedModel::ZERO);
    let mut i = 0u32;
    m.for_each_param_mut(|p| {
        i = i.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        *p = f32::from_bits(0x3c00_0000 | (i >> 9));
    });
    let h = header::<128, 3>();
    let mut bytes = vec![0u8; file::encoded_len(&h).unwrap()];
    file::encode(&*m, &h, &mut bytes).unwrap();
    assert!(bytes.len() > 465_928);
    let mut back = Box::new(tinyddpm_core::SeedModel::ZERO);
    file::decode_into(&bytes, &mut back).unwrap();
    assert!(*back == *m);
    for cut in [
        0,
        11,
        12,
        100,
        4096,
        bytes.len() / 2,
        bytes.len() - 5,
        bytes.len() - 1,
    ] {
        assert!(
            file::decode_into(&bytes[..cut], &mut back).is_err(),
            "cut at {cut}"
        );
    }
}

#[test]
fn every_truncation_is_an_error_and_leaves_the_model_untouched() {
    let bytes = encoded(&small_model());
    for len in 0..bytes.len() {
        let mut dst = Small::ZERO;
        let err = file::decode_into(&bytes[..len], &mut dst).unwrap_err();
        assert!(
            matches!(
                err,
                FileError::Truncated { .. } | FileError::Checksum { .. } | FileError::BadMagic
            ),
            "len {len}: {err:?}"
        );
        assert_eq!(dst, Small::ZERO, "len {len}");
    }
}

#[test]
fn every_single_bit_flip_is_an_error() {
    let good = encoded(&small_model());
    for byte in 0..good.len() {
        for bit in 0..8 {
            let mut bad = good.clone();
            bad[byte] ^= 1 << bit;
            let mut dst = Small::ZERO;
            assert!(
                file::decode_into(&bad, &mut dst).is_err(),
                "byte {byte} bit {bit}"
            );
            assert_eq!(dst, Small::ZERO);
        }
    }
}

/// Re-seals `bytes` with a correct CRC, so a test reaches the checks behind the checksum.
fn reseal(bytes: &mut [u8]) {
    let n = bytes.len() - 4;
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&bytes[..n]);
    bytes[n..].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn foreign_magic_version_shape_and_weights_get_their_own_errors() {
    let good = encoded(&small_model());
    let mut dst = Small::ZERO;

    let mut bad = good.clone();
    bad[..8].copy_from_slice(b"PK\x03\x04....");
    assert_eq!(file::decode_into(&bad, &mut dst), Err(FileError::BadMagic));

    let mut bad = good.clone();
    bad[8] = 2;
    assert_eq!(
        file::decode_into(&bad, &mut dst),
        Err(FileError::UnsupportedVersion { found: 2 })
    );

    let mut wrong_shape = Model::<4, 2>::ZERO;
    assert!(matches!(
        file::decode_into(&good, &mut wrong_shape),
        Err(FileError::Shape {
            blocks: 1,
            want_blocks: 2,
            ..
        })
    ));
    assert!(matches!(
        header::<4, 1>().schedule::<500>(),
        Err(FileError::Shape { .. })
    ));

    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 8..n - 4].copy_from_slice(&f32::NAN.to_le_bytes());
    reseal(&mut bad);
    assert_eq!(
        file::decode_into(&bad, &mut dst),
        Err(FileError::NonFinite {
            index: Small::PARAMS - 1
        })
    );

    let mut bad = good.clone();
    bad.extend_from_slice(&[0; 4]);
    reseal(&mut bad);
    assert!(matches!(
        file::decode_into(&bad, &mut dst),
        Err(FileError::Length { .. })
    ));
    assert_eq!(dst, Small::ZERO);
}

#[test]
fn encode_checks_its_buffer_and_shape() {
    let m = small_model();
    let h = header::<4, 1>();
    let mut short = vec![0u8; 10];
    assert!(matches!(
        file::encode(&m, &h, &mut short),
        Err(FileError::BufferTooSmall { .. })
    ));
    let mut buf = vec![0u8; 100_000];
    assert!(matches!(
        file::encode(&m, &header::<8, 1>(), &mut buf),
        Err(FileError::Shape { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut dst = Small::ZERO;
        let _ = file::decode_into(&bytes, &mut dst);
        let _ = file::read_header(&bytes);
    }

    /// Past the magic, version and CRC: arbitrary headers and lengths, correctly sealed.
    #[test]
    fn arbitrary_sealed_bodies_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..400),
        header_len in 0u16..80,
    ) {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&1u16.to_le_bytes());
        bytes.extend_from_slice(&header_len.to_le_bytes());
        bytes.extend_from_slice(&body);
        bytes.extend_from_slice(&[0; 4]);
        reseal(&mut bytes);
        let mut dst = Small::ZERO;
        if file::decode_into(&bytes, &mut dst).is_err() {
            prop_assert_eq!(dst, Small::ZERO);
        }
        let _ = file::read_header(&bytes);
    }
}

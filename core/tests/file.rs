//! The model file decoder against every malformed input we can enumerate: each truncation,
//! each single-bit flip, foreign magic/version/shape, non-finite weights, arbitrary bytes.
//! It must return a typed error — never panic, never a silently different model.

use proptest::prelude::*;
use tinyddpm_core::ContainerError as C;
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
                FileError::Container(C::Truncated { .. } | C::Checksum { .. } | C::BadMagic)
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
    assert_eq!(
        file::decode_into(&bad, &mut dst),
        Err(FileError::Container(C::BadMagic))
    );

    let mut bad = good.clone();
    bad[8] = 2;
    assert_eq!(
        file::decode_into(&bad, &mut dst),
        Err(FileError::Container(C::UnsupportedVersion {
            found: 2,
            supported: 1
        }))
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
        Err(FileError::Container(C::Length { .. }))
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
        Err(FileError::Container(C::BufferTooSmall { .. }))
    ));
    let mut buf = vec![0u8; 100_000];
    assert!(matches!(
        file::encode(&m, &header::<8, 1>(), &mut buf),
        Err(FileError::Shape { .. })
    ));
}

/// The layout spelled out byte by byte, independently of the encoder: magic, version,
/// header length, postcard header, zero padding to 16, f32 LE weights, CRC-32.
#[test]
fn encoding_is_the_documented_layout() {
    let m = small_model();
    let h = header::<4, 1>();
    let mut head = [0u8; 64];
    let head = postcard::to_slice(&h, &mut head).unwrap();
    let mut want = b"TINYDDPM".to_vec();
    want.extend_from_slice(&1u16.to_le_bytes());
    want.extend_from_slice(&(head.len() as u16).to_le_bytes());
    want.extend_from_slice(head);
    want.resize(want.len().next_multiple_of(16), 0);
    m.for_each_param(|p| want.extend_from_slice(&p.to_le_bytes()));
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&want);
    want.extend_from_slice(&crc.to_le_bytes());
    assert_eq!(encoded(&m), want);
}

/// A committed model file decoded and encoded again gives its bytes back.
fn reencodes<const H: usize, const B: usize>(bytes: &[u8]) -> Vec<u8> {
    let mut model = Box::new(Model::<H, B>::ZERO);
    let header = file::decode_into(bytes, &mut model).unwrap();
    let mut out = vec![0u8; file::encoded_len(&header).unwrap()];
    let n = file::encode(&*model, &header, &mut out).unwrap();
    out.truncate(n);
    out
}

#[test]
fn committed_model_files_encode_to_the_same_bytes() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let files = [
        "firmware/models/seed.tdm",
        "firmware/models/tiny-h32-b2.tdm",
        "core/fuzz/seeds/decode/tiny-4x1-ddim.tdm",
        "core/fuzz/seeds/decode/tiny-4x1-ddpm.tdm",
    ];
    for name in files {
        let bytes = std::fs::read(format!("{root}/{name}")).unwrap();
        let (header, _) = file::read_header(&bytes).unwrap();
        let again = match (header.hidden, header.blocks) {
            (128, 3) => reencodes::<128, 3>(&bytes),
            (32, 2) => reencodes::<32, 2>(&bytes),
            (4, 1) => reencodes::<4, 1>(&bytes),
            other => panic!("{name}: unexpected shape {other:?}"),
        };
        assert!(again == bytes, "{name} encodes differently");
    }
}

/// A second format in the container, as the trainer's checkpoint uses it: payload right
/// after the header, a header with an optional field.
mod second_format {
    use super::*;
    use serde::{Deserialize, Serialize};
    use tinyddpm_core::container::{CRC_LEN, Format, PREAMBLE};

    const FORMAT: Format = Format {
        magic: *b"TESTFMT1",
        version: 3,
        align: 1,
    };

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Head {
        values: u32,
        decay: Option<f32>,
    }

    fn payload_len(h: &Head) -> Result<usize, C> {
        (h.values as usize).checked_mul(4).ok_or(C::Header)
    }

    fn sealed(head: &Head) -> Vec<u8> {
        let n = payload_len(head).unwrap();
        let mut out = vec![0u8; FORMAT.sealed_len(head, n).unwrap()];
        let written = FORMAT
            .seal(head, n, &mut out, |p| {
                for (i, c) in p.chunks_exact_mut(4).enumerate() {
                    c.copy_from_slice(&(i as f32).to_le_bytes());
                }
            })
            .unwrap();
        assert_eq!(written, out.len());
        out
    }

    #[test]
    fn round_trips_with_the_payload_right_after_the_header() {
        let head = Head {
            values: 5,
            decay: Some(0.5),
        };
        let bytes = sealed(&head);
        let (back, payload) = FORMAT.open(&bytes, payload_len).unwrap();
        assert_eq!(back, head);
        assert_eq!(payload.len(), 20);
        let header_len = u16::from_le_bytes([bytes[10], bytes[11]]) as usize;
        assert_eq!(bytes.len(), PREAMBLE + header_len + 20 + CRC_LEN);
        assert_eq!(payload[4..8], 1.0f32.to_le_bytes());
        assert_eq!(
            FORMAT.expected_len(&bytes, |h| payload_len(h).ok()),
            Some(bytes.len())
        );
        // A model file is a foreign file here, and the other way round.
        assert_eq!(
            FORMAT.open(&encoded(&small_model()), payload_len),
            Err(C::BadMagic)
        );
        let mut dst = Small::ZERO;
        assert_eq!(
            file::decode_into(&bytes, &mut dst),
            Err(FileError::Container(C::BadMagic))
        );
    }

    #[test]
    fn every_truncation_and_bit_flip_is_an_error() {
        let bytes = sealed(&Head {
            values: 6,
            decay: None,
        });
        for len in 0..bytes.len() {
            assert!(
                FORMAT.open(&bytes[..len], payload_len).is_err(),
                "len {len}"
            );
        }
        for byte in 0..bytes.len() {
            for bit in 0..8 {
                let mut bad = bytes.clone();
                bad[byte] ^= 1 << bit;
                assert!(
                    FORMAT.open(&bad, payload_len).is_err(),
                    "byte {byte} bit {bit}"
                );
            }
        }
    }

    #[test]
    fn the_buffer_and_the_header_are_checked_when_sealing() {
        let head = Head {
            values: 2,
            decay: None,
        };
        let mut short = [0u8; 10];
        assert!(matches!(
            FORMAT.seal(&head, 8, &mut short, |_| {}),
            Err(C::BufferTooSmall { len: 10, .. })
        ));
        let huge = [7u8; 70_000];
        let mut out = vec![0u8; 80_000];
        assert_eq!(
            FORMAT.seal(&huge.as_slice(), 0, &mut out, |_| {}),
            Err(C::Header),
            "a header longer than its u16 length field"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5_000))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = FORMAT.open(&bytes, payload_len);
            let _ = FORMAT.expected_len(&bytes, |h: &Head| payload_len(h).ok());
        }
    }
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

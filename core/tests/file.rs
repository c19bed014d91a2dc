//! The model file decoders, float and integer, against every malformed input we can
//! enumerate: each truncation, each single-bit flip, foreign magic/version/kind/shape,
//! non-finite weights, integer parameters and exponents out of range, arbitrary bytes. They
//! must return a typed error — never panic, never a silently different model.

#![cfg(feature = "file")]

use proptest::prelude::*;
use tinyddpm_core::ContainerError as C;
use tinyddpm_core::file::{self, FileError, Header, Kind, MAGIC};
use tinyddpm_core::quant::{Gelu, QBlock, QLinear};
use tinyddpm_core::{Layer, Model, QModel, QuantError, Sampler, ScheduleKind, Spacing};

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
    let mut out = vec![0u8; file::encoded_len(Kind::Float, &h).unwrap()];
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
    let mut bytes = vec![0u8; file::encoded_len(Kind::Float, &h).unwrap()];
    file::encode(&*m, &h, &mut bytes).unwrap();
    assert!(bytes.len() > 465_928);
    let mut back = Box::new(tinyddpm_core::SeedModel::ZERO);
    file::decode_into(&bytes, &mut *back).unwrap();
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
            file::decode_into(&bytes[..cut], &mut *back).is_err(),
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
    bad[8] = 5;
    assert_eq!(
        file::decode_into(&bad, &mut dst),
        Err(FileError::Version { found: 5 })
    );
    assert_eq!(
        FileError::Version { found: 5 }.to_string(),
        "model file format version 5, this build reads versions 1 to 4"
    );
    // A version 1 header read as version 2, 3 or 4: its first field is no kind.
    for version in [2, 3, 4] {
        bad[8] = version;
        reseal(&mut bad);
        assert_eq!(
            file::decode_into(&bad, &mut dst),
            Err(FileError::Container(C::Header)),
            "version {version}"
        );
    }

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
    let header = file::decode_into(bytes, &mut *model).unwrap();
    let mut out = vec![0u8; file::encoded_len(Kind::Float, &header).unwrap()];
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
        assert_eq!(file::open(&bytes).unwrap().version, 1, "{name}");
    }
    // The fuzzer's integer seed, likewise.
    let bytes = std::fs::read(format!("{root}/core/fuzz/seeds/decode/tiny-4x1-int.tdm")).unwrap();
    let mut model = QModel::<4, 1>::ZERO;
    let header = file::decode_into(&bytes, &mut model).unwrap();
    let mut again = vec![0u8; file::encoded_len(Kind::Integer, &header).unwrap()];
    file::encode(&model, &header, &mut again).unwrap();
    assert!(again == bytes, "the integer seed encodes differently");
}

/// Version 3: the data a model draws, after the version 2 fields.
mod data {
    use super::*;
    use tinyddpm_core::{Data, Source, Units};

    fn moons() -> Data {
        Data {
            dim: 2,
            source: Source::Builtin(3),
            units: None,
        }
    }

    fn from_file() -> Data {
        Data {
            dim: 2,
            source: Source::File,
            units: Units::new(&[2.5, 0.125], &[-1.0, 40.0]),
        }
    }

    fn encoded_with(data: Data) -> Vec<u8> {
        let h = header::<4, 1>().with_data(data);
        let mut out = vec![0u8; file::encoded_len(Kind::Float, &h).unwrap()];
        assert_eq!(
            file::encode(&small_model(), &h, &mut out).unwrap(),
            out.len()
        );
        out
    }

    /// The header spelled out independently of the encoder: the kind's byte, the version 1
    /// fields, then D, the source (postcard: variant index, then its value) and the units
    /// (`Option`: 0, or 1 and 32 f32 LE).
    #[test]
    fn version_3_is_the_documented_layout_and_round_trips() {
        for data in [moons(), from_file()] {
            let bytes = encoded_with(data);
            assert_eq!(bytes[8..10], 3u16.to_le_bytes());
            let mut v1 = [0u8; 64];
            let v1 = postcard::to_slice(&header::<4, 1>(), &mut v1).unwrap();
            let mut want = vec![0u8];
            want.extend_from_slice(v1);
            want.push(2);
            match data.source {
                Source::Builtin(id) => want.extend_from_slice(&[0, id]),
                Source::File => want.push(1),
            }
            match data.units {
                None => want.push(0),
                Some(u) => {
                    want.push(1);
                    for v in u.scale.iter().chain(&u.shift) {
                        want.extend_from_slice(&v.to_le_bytes());
                    }
                }
            }
            let n = usize::from(u16::from_le_bytes([bytes[10], bytes[11]]));
            assert_eq!(bytes[12..12 + n], want[..]);
            let mut back = Small::ZERO;
            let h = file::decode_into(&bytes, &mut back).unwrap();
            assert_eq!(h.data, data);
            assert_eq!(back, small_model());
        }
    }

    #[test]
    fn the_notebooks_data_keep_versions_1_and_2() {
        assert_eq!(
            file::open(&encoded(&small_model())).unwrap().header.data,
            Data::SWISS_ROLL
        );
        assert_eq!(
            file::open(&encoded_with(Data::SWISS_ROLL)).unwrap().version,
            1
        );
        // The same header by hand as version 3: a second encoding of one model, refused.
        let mut bad = encoded_with(moons());
        let n = 12 + usize::from(u16::from_le_bytes([bad[10], bad[11]]));
        assert_eq!(bad[n - 3..n], [0, 3, 0]);
        bad[n - 2] = 0;
        reseal(&mut bad);
        let mut dst = Small::ZERO;
        assert_eq!(
            file::decode_into(&bad, &mut dst),
            Err(FileError::Container(C::Header))
        );
    }

    #[test]
    fn every_truncation_and_bit_flip_of_version_3_is_an_error() {
        let good = encoded_with(from_file());
        for len in 0..good.len() {
            let mut dst = Small::ZERO;
            assert!(
                file::decode_into(&good[..len], &mut dst).is_err(),
                "len {len}"
            );
            assert_eq!(dst, Small::ZERO);
        }
        for byte in 0..good.len() {
            for bit in 0..8 {
                let mut bad = good.clone();
                bad[byte] ^= 1 << bit;
                let mut dst = Small::ZERO;
                assert!(file::decode_into(&bad, &mut dst).is_err(), "{byte}:{bit}");
                assert_eq!(dst, Small::ZERO);
            }
        }
    }

    #[test]
    fn dimensions_and_units_a_file_cannot_hold_are_refused() {
        let model = small_model();
        let mut out = vec![0u8; 100_000];
        let mut unusable = from_file();
        if let Some(u) = unusable.units.as_mut() {
            u.scale[5] = 3.0;
        }
        for (data, want) in [
            (Data { dim: 0, ..moons() }, FileError::Container(C::Header)),
            (Data { dim: 17, ..moons() }, FileError::Container(C::Header)),
            (unusable, FileError::Container(C::Header)),
        ] {
            let h = header::<4, 1>().with_data(data);
            assert_eq!(file::encode(&model, &h, &mut out), Err(want), "{data:?}");
            assert_eq!(file::encoded_len(Kind::Float, &h), Err(want));
        }
        // D = 3 is a shape a file can hold, but not this 2-D model's.
        let three = header::<4, 1>().with_data(Data { dim: 3, ..moons() });
        let dim_error = FileError::Dim { found: 3, want: 2 };
        assert_eq!(file::encode(&model, &three, &mut out), Err(dim_error));
        assert!(file::encoded_len(Kind::Float, &three).is_ok());
        assert_eq!(
            dim_error.to_string(),
            "model file's data have D=3 dimensions, this model takes D=2"
        );
        // A 2-D file whose header claims D = 3 (written by hand): its payload is a 2-D
        // model's, too short for D = 3.
        let mut bad = encoded_with(moons());
        let n = 12 + usize::from(u16::from_le_bytes([bad[10], bad[11]]));
        bad[n - 4] = 3;
        reseal(&mut bad);
        let mut dst = Small::ZERO;
        assert!(matches!(
            file::decode_into(&bad, &mut dst),
            Err(FileError::Container(C::Length { .. }))
        ));
        assert_eq!(dst, Small::ZERO);
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

/// Integer model files: version 2, kind integer, the payload of the module docs.
mod integer {
    use super::*;

    type SmallQ = QModel<4, 1>;

    /// A valid model whose every parameter differs from its neighbours (so a field read at
    /// the wrong place shows), with the extreme values the format allows.
    fn small_qmodel() -> SmallQ {
        let mut m = SmallQ::ZERO;
        let mut i = 0i64;
        let mut next = || {
            i += 1;
            i
        };
        m.for_each_layer_mut(|l| {
            for w in l.weight.iter_mut() {
                *w = (next() * 37 % 255 - 127) as i8;
            }
            for b in l.bias.iter_mut() {
                *b = ((next() * 7_654_321) % (2 << 30) - (1 << 30)) as i32;
            }
            for m in l.multiplier.iter_mut() {
                *m = (1 << 30) + (next() * 1_234_567) as i32;
            }
            for s in l.shift.iter_mut() {
                *s = (next() % 63) as u8;
            }
        });
        m.time_in.weight[0][0] = -127;
        m.time_out.bias[1] = -(1 << 30);
        m.input.bias[2] = 1 << 30;
        m.output.shift[1] = 62;
        m.output.multiplier[0] = i32::MIN;
        m.input_exp = 12;
        m.stream_exp = 10;
        m.output_exp = 13;
        m.time_act = Gelu {
            pre_exp: 11,
            post_exp: 14,
        };
        m.input_pre_exp = 9;
        m.blocks[0].act = Gelu {
            pre_exp: 8,
            post_exp: 20,
        };
        m.blocks[0].second_pre_exp = 7;
        m.validate().unwrap();
        m
    }

    fn encoded_q(m: &SmallQ) -> Vec<u8> {
        let h = header::<4, 1>();
        let mut out = vec![0u8; file::encoded_len(Kind::Integer, &h).unwrap()];
        assert_eq!(file::encode(m, &h, &mut out).unwrap(), out.len());
        out
    }

    /// A layer's weights, biases, multipliers and shifts.
    type Parts<'a> = (&'a [i8], &'a [i32], &'a [i32], &'a [u8]);

    /// Every layer's parts in state_dict order, spelled out field by field.
    fn layers<const H: usize, const B: usize>(m: &QModel<H, B>) -> Vec<Parts<'_>> {
        fn parts<const I: usize, const O: usize>(l: &QLinear<I, O>) -> Parts<'_> {
            (l.weight.as_flattened(), &l.bias, &l.multiplier, &l.shift)
        }
        let mut all = vec![parts(&m.time_in), parts(&m.time_out), parts(&m.input)];
        for b in &m.blocks {
            all.extend([parts(&b.first), parts(&b.second)]);
        }
        all.push(parts(&m.output));
        all
    }

    /// The documented layout written out field by field, independently of the encoder (and
    /// of any check: corrupt models are written with it too).
    fn documented<const H: usize, const B: usize>(m: &QModel<H, B>, h: &Header) -> Vec<u8> {
        let mut head = [0u8; 64];
        let head = postcard::to_slice(&(Kind::Integer, *h), &mut head).unwrap();
        assert_eq!(head[0], 1, "kind integer is the varint 1");
        let mut out = b"TINYDDPM".to_vec();
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&(head.len() as u16).to_le_bytes());
        out.extend_from_slice(head);
        out.resize(out.len().next_multiple_of(16), 0);
        let layers = layers(m);
        for (_, b, _, _) in &layers {
            b.iter()
                .for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
        }
        for (_, _, mul, _) in &layers {
            mul.iter()
                .for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
        }
        for (w, _, _, _) in &layers {
            out.extend(w.iter().map(|&v| v as u8));
        }
        for (_, _, _, s) in &layers {
            out.extend_from_slice(s);
        }
        out.extend([m.input_exp, m.stream_exp, m.output_exp]);
        out.extend([m.time_act.pre_exp, m.time_act.post_exp, m.input_pre_exp]);
        for b in &m.blocks {
            out.extend([b.act.pre_exp, b.act.post_exp, b.second_pre_exp]);
        }
        let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    #[test]
    fn round_trip_is_exact_and_the_encoding_is_the_documented_layout() {
        let m = small_qmodel();
        let bytes = encoded_q(&m);
        assert_eq!(bytes, documented(&m, &header::<4, 1>()));
        let mut back = SmallQ::ZERO;
        assert_eq!(
            file::decode_into(&bytes, &mut back).unwrap(),
            header::<4, 1>()
        );
        assert_eq!(back, m);
        let c = file::open(&bytes).unwrap();
        assert_eq!((c.version, c.kind), (2, Kind::Integer));
        assert_eq!(c.payload.len(), SmallQ::BYTES + SmallQ::EXPONENTS);
        // the biases start the 16-byte aligned payload
        let start = bytes.len() - 4 - c.payload.len();
        assert_eq!(start % 16, 0);
        assert_eq!(bytes[start..start + 4], m.time_in.bias[0].to_le_bytes());
        assert_eq!(file::expected_len(&bytes), Some(bytes.len()));
        let header_len = usize::from(u16::from_le_bytes([bytes[10], bytes[11]]));
        assert_eq!(file::header_end(&bytes), Some(12 + header_len));
        assert_eq!(start, (12 + header_len).next_multiple_of(16));
    }

    #[test]
    fn payload_sizes_are_the_models() {
        fn check<const H: usize, const B: usize, const D: usize>() {
            assert_eq!(
                Kind::Integer.payload_len(H as u32, B as u32, D as u8, 0),
                Some(QModel::<H, B, D>::BYTES + QModel::<H, B, D>::EXPONENTS),
                "H={H} B={B} D={D}"
            );
            let mut n = 0;
            QModel::<H, B, D>::ZERO.for_each_exponent(|_| n += 1);
            assert_eq!(n, QModel::<H, B, D>::EXPONENTS);
        }
        check::<4, 1, 2>();
        check::<32, 2, 2>();
        check::<128, 3, 2>();
        check::<7, 0, 2>();
        check::<4, 1, 1>();
        check::<8, 2, 3>();
        check::<16, 1, 16>();
        assert_eq!(Kind::Integer.payload_len(u32::MAX, u32::MAX, 2, 0), None);
        assert_eq!(
            Kind::Integer.payload_len(0, u32::MAX, 2, 0).map(|n| n > 0),
            Some(true)
        );
    }

    #[test]
    fn seed_sized_integer_model_round_trips() {
        let mut m = Box::new(tinyddpm_core::QSeedModel::ZERO);
        *m = QModel {
            time_act: small_qmodel().time_act,
            input_exp: 12,
            input_pre_exp: 9,
            stream_exp: 10,
            output_exp: 13,
            ..tinyddpm_core::QSeedModel::ZERO
        };
        let mut i = 0u32;
        m.for_each_layer_mut(|l| {
            for w in l.weight.iter_mut() {
                i = i.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                *w = ((i >> 24) as u8 as i8).max(-127);
            }
            l.multiplier.fill(1 << 30);
            l.shift.fill(40);
        });
        for b in m.blocks.iter_mut() {
            *b = QBlock {
                act: small_qmodel().blocks[0].act,
                second_pre_exp: 7,
                ..b.clone()
            };
        }
        let h = header::<128, 3>();
        let mut bytes = vec![0u8; file::encoded_len(Kind::Integer, &h).unwrap()];
        file::encode(&*m, &h, &mut bytes).unwrap();
        assert!(bytes.len() > tinyddpm_core::QSeedModel::BYTES);
        assert!(bytes == documented(&*m, &h));
        let mut back = Box::new(tinyddpm_core::QSeedModel::ZERO);
        file::decode_into(&bytes, &mut *back).unwrap();
        assert!(*back == *m);
        for cut in [0, 11, 12, 100, 4096, bytes.len() / 2, bytes.len() - 1] {
            assert!(file::decode_into(&bytes[..cut], &mut *back).is_err());
        }
    }

    #[test]
    fn every_truncation_and_bit_flip_is_an_error_and_leaves_the_model_untouched() {
        let good = encoded_q(&small_qmodel());
        for len in 0..good.len() {
            let mut dst = SmallQ::ZERO;
            let err = file::decode_into(&good[..len], &mut dst).unwrap_err();
            assert!(
                matches!(
                    err,
                    FileError::Container(C::Truncated { .. } | C::Checksum { .. } | C::BadMagic)
                ),
                "len {len}: {err:?}"
            );
            assert_eq!(dst, SmallQ::ZERO, "len {len}");
        }
        for byte in 0..good.len() {
            for bit in 0..8 {
                let mut bad = good.clone();
                bad[byte] ^= 1 << bit;
                let mut dst = SmallQ::ZERO;
                assert!(
                    file::decode_into(&bad, &mut dst).is_err(),
                    "byte {byte} bit {bit}"
                );
                assert_eq!(dst, SmallQ::ZERO);
            }
        }
    }

    /// A corrupt model written in the documented layout with a correct CRC: the decoder
    /// must give the error `validate()` gives for it, named, and write nothing.
    fn rejected(edit: impl FnOnce(&mut SmallQ)) -> QuantError {
        let mut m = small_qmodel();
        edit(&mut m);
        let want = m.validate().unwrap_err();
        let mut dst = SmallQ::ZERO;
        let got = file::decode_into(&documented(&m, &header::<4, 1>()), &mut dst);
        assert_eq!(got, Err(FileError::Quant(want)));
        assert_eq!(dst, SmallQ::ZERO);
        let mut buf = vec![0u8; 4096];
        assert_eq!(
            file::encode(&m, &header::<4, 1>(), &mut buf),
            Err(FileError::Quant(want)),
            "the encoder refuses it too"
        );
        want
    }

    #[test]
    fn parameters_and_exponents_out_of_range_are_typed_errors() {
        let layer = |e| match e {
            QuantError::Parameters { layer } => layer,
            other => panic!("{other:?}"),
        };
        let block = |i| Layer::BlockSecond(i);
        assert_eq!(
            layer(rejected(|m| m.blocks[0].second.weight[1][2] = -128)),
            block(0)
        );
        assert_eq!(
            layer(rejected(|m| m.time_in.weight[3][0] = -128)),
            Layer::TimeIn
        );
        assert_eq!(layer(rejected(|m| m.output.shift[1] = 63)), Layer::Output);
        assert_eq!(layer(rejected(|m| m.input.shift[0] = 255)), Layer::Input);
        assert_eq!(
            layer(rejected(|m| m.time_out.bias[3] = (1 << 30) + 1)),
            Layer::TimeOut
        );
        assert_eq!(
            layer(rejected(|m| m.blocks[0].first.bias[0] = i32::MIN)),
            Layer::BlockFirst(0)
        );
        // the first bad layer is named, wherever its bad value lies in the file
        let two = rejected(|m| {
            m.output.weight[0][0] = -128;
            m.input.shift[3] = 99;
        });
        assert_eq!(layer(two), Layer::Input);
        assert_eq!(
            rejected(|m| m.input_exp = 25),
            QuantError::Exponent {
                name: "input_exp",
                value: 25
            }
        );
        assert_eq!(
            rejected(|m| m.output_exp = 255),
            QuantError::Exponent {
                name: "output_exp",
                value: 255
            }
        );
        assert!(matches!(
            rejected(|m| m.time_act.pre_exp = 5),
            QuantError::Gelu {
                layer: Layer::TimeIn,
                pre_exp: 5,
                ..
            }
        ));
        assert!(matches!(
            rejected(|m| m.blocks[0].act.post_exp = 21),
            QuantError::Gelu {
                layer: Layer::BlockFirst(0),
                pre_exp: 8,
                post_exp: 21
            }
        ));
        // the stream's exponent pairs with the second layer's pre-activation
        assert!(matches!(
            rejected(|m| m.blocks[0].second_pre_exp = 11),
            QuantError::Gelu {
                layer: Layer::BlockSecond(0),
                ..
            }
        ));
        let e = FileError::Quant(QuantError::Parameters {
            layer: Layer::Output,
        });
        assert!(
            e.to_string()
                .starts_with("model file holds an invalid integer model: Output has"),
            "{e}"
        );
    }

    #[test]
    fn a_decoder_of_one_kind_names_the_other() {
        let int = encoded_q(&small_qmodel());
        let float = encoded(&small_model());
        let (mut f, mut q) = (Small::ZERO, SmallQ::ZERO);
        let want = FileError::Kind {
            found: Kind::Integer,
            expected: Kind::Float,
        };
        assert_eq!(file::decode_into(&int, &mut f), Err(want));
        assert_eq!(file::read_header(&int), Err(want));
        assert_eq!(
            want.to_string(),
            "model file holds an integer model, not a float model"
        );
        let want = FileError::Kind {
            found: Kind::Float,
            expected: Kind::Integer,
        };
        assert_eq!(file::decode_into(&float, &mut q), Err(want));
        assert_eq!(
            want.to_string(),
            "model file holds a float model, not an integer model"
        );
        assert_eq!((f, q), (Small::ZERO, SmallQ::ZERO));
        let c = file::open(&float).unwrap();
        assert_eq!((c.version, c.kind), (1, Kind::Float));
    }

    /// Headers edited under a correct CRC: kind, version, shape.
    #[test]
    fn corrupt_headers_are_rejected() {
        let good = encoded_q(&small_qmodel());
        let mut dst = SmallQ::ZERO;
        // the kind (the header's first byte): float, with an integer payload's length
        let mut bad = good.clone();
        bad[12] = 0;
        reseal(&mut bad);
        assert!(matches!(
            file::decode_into(&bad, &mut dst),
            Err(FileError::Container(C::Length { .. }))
        ));
        // no such kind
        bad[12] = 2;
        reseal(&mut bad);
        assert_eq!(
            file::decode_into(&bad, &mut dst),
            Err(FileError::Container(C::Header))
        );
        // an integer file read as version 1: the kind byte becomes H
        let mut bad = good.clone();
        bad[8] = 1;
        reseal(&mut bad);
        assert!(file::decode_into(&bad, &mut dst).is_err());
        let mut bad = good.clone();
        bad[8] = 7;
        assert_eq!(
            file::decode_into(&bad, &mut dst),
            Err(FileError::Version { found: 7 })
        );
        // another shape
        let mut other = QModel::<4, 2>::ZERO;
        assert!(matches!(
            file::decode_into(&good, &mut other),
            Err(FileError::Shape {
                blocks: 1,
                want_blocks: 2,
                ..
            })
        ));
        let mut buf = vec![0u8; 8192];
        assert!(matches!(
            file::encode(&small_qmodel(), &header::<8, 1>(), &mut buf),
            Err(FileError::Shape { .. })
        ));
        assert!(matches!(
            file::encode(&small_qmodel(), &header::<4, 1>(), &mut buf[..100]),
            Err(FileError::Container(C::BufferTooSmall { .. }))
        ));
        // a header a float file would be refused for: a sampler its schedule cannot run
        let mut h = header::<4, 1>();
        h.sampler = Sampler::Ddim {
            steps: 5000,
            eta: 0.0,
            spacing: Spacing::Linspace,
            clip: false,
        };
        assert!(matches!(
            file::decode_into(&documented(&small_qmodel(), &h), &mut dst),
            Err(FileError::Sampler(_))
        ));
        assert_eq!(dst, SmallQ::ZERO);
    }

    /// Version 2 can say "float": the same payload as version 1, the same model.
    #[test]
    fn a_version_2_float_file_reads_as_its_version_1_twin() {
        use tinyddpm_core::container::Format;
        let m = small_model();
        let h = header::<4, 1>();
        let v2 = Format {
            magic: MAGIC,
            version: 2,
            align: 16,
        };
        let mut bytes = vec![0u8; 4096];
        let n = v2
            .seal(&(Kind::Float, h), 4 * Small::PARAMS, &mut bytes, |p| {
                let mut chunks = p.chunks_exact_mut(4);
                m.for_each_param(|v| chunks.next().unwrap().copy_from_slice(&v.to_le_bytes()));
            })
            .unwrap();
        bytes.truncate(n);
        let mut back = Small::ZERO;
        assert_eq!(file::decode_into(&bytes, &mut back), Ok(h));
        assert_eq!(back, m);
        assert_eq!(file::open(&bytes).unwrap().version, 2);
        assert_eq!(file::expected_len(&bytes), Some(bytes.len()));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        /// Version 2 bodies, correctly sealed: arbitrary headers, kinds and payloads.
        #[test]
        fn arbitrary_sealed_version_2_bodies_never_panic(
            body in proptest::collection::vec(any::<u8>(), 0..700),
            header_len in 0u16..80,
        ) {
            let mut bytes = MAGIC.to_vec();
            bytes.extend_from_slice(&2u16.to_le_bytes());
            bytes.extend_from_slice(&header_len.to_le_bytes());
            bytes.extend_from_slice(&body);
            bytes.extend_from_slice(&[0; 4]);
            reseal(&mut bytes);
            let mut dst = SmallQ::ZERO;
            if file::decode_into(&bytes, &mut dst).is_err() {
                prop_assert_eq!(dst, SmallQ::ZERO);
            }
            let mut f = Small::ZERO;
            let _ = file::decode_into(&bytes, &mut f);
            let _ = file::open(&bytes);
            let _ = file::expected_len(&bytes);
        }

        /// A valid integer file with arbitrary payload bytes (sealed): decodes to a model
        /// that validates, or is refused with the model untouched.
        #[test]
        fn arbitrary_integer_payloads_decode_valid_or_not_at_all(
            seed in proptest::collection::vec(any::<u8>(), 0..40),
            at in 0usize..200,
        ) {
            let mut bytes = encoded_q(&small_qmodel());
            let start = bytes.len() - 4 - SmallQ::BYTES - SmallQ::EXPONENTS;
            for (i, b) in seed.iter().enumerate() {
                let k = start + (at + i * 7) % (bytes.len() - 4 - start);
                bytes[k] = *b;
            }
            reseal(&mut bytes);
            let mut dst = SmallQ::ZERO;
            match file::decode_into(&bytes, &mut dst) {
                Ok(_) => prop_assert_eq!(dst.validate(), Ok(())),
                Err(FileError::Quant(_)) => prop_assert_eq!(dst, SmallQ::ZERO),
                Err(e) => prop_assert!(false, "{e:?}"),
            }
        }
    }
}

/// Models of other data dimensions (version 3 files): their files round-trip, every
/// truncation and bit flip is an error, and a file decodes only into a model of its D.
mod dims {
    use super::*;
    use tinyddpm_core::{Data, Source};

    fn data(dim: u8) -> Data {
        Data {
            dim,
            source: Source::File,
            units: None,
        }
    }

    fn float_model<const D: usize>() -> Model<4, 1, D> {
        let mut m = Model::ZERO;
        let mut i = 0u32;
        m.for_each_param_mut(|p| {
            i += 1;
            *p = (i as f32 * 0.61).cos();
        });
        m
    }

    /// A valid integer model whose every parameter differs from its neighbours.
    fn int_model<const D: usize>() -> QModel<4, 1, D> {
        let mut m = QModel::ZERO;
        let mut i = 0i64;
        m.for_each_layer_mut(|l| {
            for w in l.weight.iter_mut() {
                i += 1;
                *w = (i * 53 % 255 - 127) as i8;
            }
            for ((b, m), s) in l
                .bias
                .iter_mut()
                .zip(l.multiplier.iter_mut())
                .zip(l.shift.iter_mut())
            {
                i += 1;
                (*b, *m, *s) = (
                    (i * 1_234_567 % (1 << 30)) as i32,
                    (1 << 30) + i as i32,
                    (i % 63) as u8,
                );
            }
        });
        let gelu = Gelu {
            pre_exp: 10,
            post_exp: 12,
        };
        (m.input_exp, m.stream_exp, m.output_exp, m.input_pre_exp) = (11, 12, 13, 9);
        m.time_act = gelu;
        m.blocks[0].act = gelu;
        m.blocks[0].second_pre_exp = 8;
        m.validate().unwrap();
        m
    }

    fn encode<const D: usize, M: file::Stored<4, 1, D>>(m: &M) -> (Header, Vec<u8>) {
        let h = header::<4, 1>().with_data(data(D as u8));
        let mut out = vec![0u8; file::encoded_len(M::KIND, &h).unwrap()];
        assert_eq!(file::encode(m, &h, &mut out).unwrap(), out.len());
        (h, out)
    }

    /// Round trip, the documented payload length (counted here from the layers' shapes),
    /// every truncation and bit flip an error that leaves the destination untouched.
    fn round_trips<const D: usize, M: file::Stored<4, 1, D> + PartialEq + std::fmt::Debug>(
        m: &M,
        payload_len: usize,
    ) {
        let (h, bytes) = encode(m);
        let c = file::open(&bytes).unwrap();
        assert_eq!((c.version, c.kind, c.header), (3, M::KIND, h), "D = {D}");
        assert_eq!(c.payload.len(), payload_len, "D = {D}");
        assert_eq!(file::expected_len(&bytes), Some(bytes.len()));
        let mut back = M::ZERO;
        assert_eq!(file::decode_into(&bytes, &mut back), Ok(h));
        assert_eq!(&back, m);
        for len in 0..bytes.len() {
            let mut dst = M::ZERO;
            assert!(
                file::decode_into(&bytes[..len], &mut dst).is_err(),
                "D = {D} len {len}"
            );
            assert!(dst == M::ZERO);
        }
        for byte in 0..bytes.len() {
            for bit in 0..8 {
                let mut bad = bytes.clone();
                bad[byte] ^= 1 << bit;
                let mut dst = M::ZERO;
                assert!(
                    file::decode_into(&bad, &mut dst).is_err(),
                    "D = {D} {byte}:{bit}"
                );
                assert!(dst == M::ZERO);
            }
        }
    }

    /// Parameters of `Model<4, 1, D>`, layer by layer: Linear(1,4), Linear(4,4), Linear(D,4),
    /// 2 × Linear(4,4), Linear(4,D).
    const fn params(d: usize) -> usize {
        (4 + 4) + (16 + 4) + (4 * d + 4) + 2 * (16 + 4) + (4 * d + d)
    }

    /// Integer payload bytes of `QModel<4, 1, D>`: per channel (5·4 + D of them) a bias, a
    /// multiplier and a shift, one byte per weight, 6 + 3 exponents.
    const fn int_bytes(d: usize) -> usize {
        let channels = 5 * 4 + d;
        channels * (4 + 4 + 1) + (params(d) - channels) + 9
    }

    #[test]
    fn files_of_1_3_and_16_dimensions_round_trip_and_every_damage_is_an_error() {
        round_trips(&float_model::<1>(), 4 * params(1));
        round_trips(&float_model::<3>(), 4 * params(3));
        round_trips(&float_model::<16>(), 4 * params(16));
        round_trips(&int_model::<1>(), int_bytes(1));
        round_trips(&int_model::<3>(), int_bytes(3));
        round_trips(&int_model::<16>(), int_bytes(16));
        assert_eq!(Model::<4, 1, 3>::PARAMS, params(3));
        assert_eq!(QModel::<4, 1, 3>::BYTES + 9, int_bytes(3));
    }

    #[test]
    fn a_file_decodes_only_into_a_model_of_its_dimension() {
        let (_, three) = encode(&float_model::<3>());
        let mut two = Model::<4, 1>::ZERO;
        let err = file::decode_into(&three, &mut two).unwrap_err();
        assert_eq!(err, FileError::Dim { found: 3, want: 2 });
        assert_eq!(
            err.to_string(),
            "model file's data have D=3 dimensions, this model takes D=2"
        );
        assert_eq!(two, Model::ZERO);
        let mut one = Model::<4, 1, 1>::ZERO;
        assert_eq!(
            file::decode_into(&three, &mut one),
            Err(FileError::Dim { found: 3, want: 1 })
        );
        // The notebook's 2-D file (version 1) into a 3-D model.
        let mut dst = Model::<4, 1, 3>::ZERO;
        assert_eq!(
            file::decode_into(&encoded(&small_model()), &mut dst),
            Err(FileError::Dim { found: 2, want: 3 })
        );
        assert_eq!(dst, Model::ZERO);
        // The integer decoder judges D the same way.
        let (_, three) = encode(&int_model::<3>());
        let mut two = QModel::<4, 1>::ZERO;
        assert_eq!(
            file::decode_into(&three, &mut two),
            Err(FileError::Dim { found: 3, want: 2 })
        );
        // H and B are judged before D.
        let mut wide = Model::<8, 1, 2>::ZERO;
        let (_, three) = encode(&float_model::<3>());
        assert!(matches!(
            file::decode_into(&three, &mut wide),
            Err(FileError::Shape { .. })
        ));
    }

    #[test]
    fn the_encoder_writes_only_the_models_dimension() {
        let mut out = vec![0u8; 10_000];
        let m = float_model::<3>();
        for dim in [2, 1, 16] {
            let h = header::<4, 1>().with_data(data(dim));
            assert_eq!(
                file::encode(&m, &h, &mut out),
                Err(FileError::Dim {
                    found: dim,
                    want: 3
                })
            );
        }
        let q = int_model::<16>();
        assert_eq!(
            file::encode(&q, &header::<4, 1>(), &mut out),
            Err(FileError::Dim { found: 2, want: 16 })
        );
    }
}

/// Models conditioned on classes (version 4 files): the class embedding after every layer,
/// every truncation and bit flip an error, C = 0 never written as version 4, and the
/// const-generic (unconditional) models refuse them.
mod classes {
    use super::*;
    use tinyddpm_core::Layout;
    use tinyddpm_core::container::Format;

    /// A conditioned model's parameters: `Model<4, 1>`'s, then (C + 1) × 4 embedding values,
    /// every one distinct.
    fn params(classes: u16) -> Vec<f32> {
        let len = Layout::of::<4, 1>()
            .with_classes(classes.into())
            .unwrap()
            .len();
        (0..len).map(|i| (i as f32 * 0.37).sin()).collect()
    }

    fn encode(classes: u16) -> (Header, Vec<f32>, Vec<u8>) {
        let h = header::<4, 1>().with_classes(classes);
        let p = params(classes);
        let mut out = vec![0u8; file::encoded_len(Kind::Float, &h).unwrap()];
        assert_eq!(file::encode_params(&h, &p, &mut out).unwrap(), out.len());
        (h, p, out)
    }

    #[test]
    fn the_embedding_follows_every_layer_and_round_trips() {
        for classes in [1u16, 3, 8] {
            let (h, p, bytes) = encode(classes);
            let c = file::open(&bytes).unwrap();
            assert_eq!((c.version, c.kind, c.header), (4, Kind::Float, h));
            // Model<4, 1> has 90 parameters, the embedding (C + 1)·4.
            assert_eq!(c.payload.len(), 4 * (90 + (usize::from(classes) + 1) * 4));
            let back: Vec<f32> = c.float_params().unwrap().collect();
            assert_eq!(back, p);
            assert_eq!(file::expected_len(&bytes), Some(bytes.len()));
            assert_eq!(c.layout().unwrap().class_embedding(), Some(90..p.len()));
            // The header, as the module docs lay it out: version 3's fields, then C.
            let format = Format {
                magic: *b"TINYDDPM",
                version: 4,
                align: 16,
            };
            let fields = (Kind::Float, h, h.data, classes);
            let mut want = vec![0u8; format.sealed_len(&fields, c.payload.len()).unwrap()];
            let payload: Vec<u8> = p.iter().flat_map(|v| v.to_le_bytes()).collect();
            format
                .seal(&fields, payload.len(), &mut want, |out| {
                    out.copy_from_slice(&payload)
                })
                .unwrap();
            assert_eq!(bytes, want, "C = {classes}");
        }
    }

    #[test]
    fn every_truncation_and_bit_flip_is_an_error() {
        let (_, _, bytes) = encode(3);
        let read = |b: &[u8]| file::open(b).and_then(|c| c.float_params().map(|_| ()));
        assert!(read(&bytes).is_ok());
        for len in 0..bytes.len() {
            assert!(read(&bytes[..len]).is_err(), "len {len}");
        }
        for byte in 0..bytes.len() {
            for bit in 0..8 {
                let mut bad = bytes.clone();
                bad[byte] ^= 1 << bit;
                assert!(read(&bad).is_err(), "{byte}:{bit}");
            }
        }
    }

    #[test]
    fn unconditional_models_and_version_4_of_no_classes_are_refused() {
        let (_, _, bytes) = encode(2);
        let mut dst = Small::ZERO;
        let err = file::decode_into(&bytes, &mut dst).unwrap_err();
        assert_eq!(err, FileError::Classes { found: 2 });
        assert_eq!(
            err.to_string(),
            "model file's model is conditioned on 2 classes; this build's model is unconditional"
        );
        assert_eq!(dst, Small::ZERO);
        // Nor does a const-generic model encode under a header that names classes.
        let mut out = vec![0u8; 4096];
        let h = header::<4, 1>().with_classes(2);
        assert_eq!(
            file::encode(&small_model(), &h, &mut out),
            Err(FileError::Classes { found: 2 })
        );
        // A version 4 header of C = 0 (a second encoding of a version 1 file) is refused.
        let plain = header::<4, 1>();
        let fields = (Kind::Float, plain, plain.data, 0u16);
        let format = Format {
            magic: *b"TINYDDPM",
            version: 4,
            align: 16,
        };
        let payload = vec![0u8; 4 * 90];
        let mut forged = vec![0u8; format.sealed_len(&fields, payload.len()).unwrap()];
        format
            .seal(&fields, payload.len(), &mut forged, |o| {
                o.copy_from_slice(&payload)
            })
            .unwrap();
        assert_eq!(
            file::open(&forged).map(|c| c.version),
            Err(FileError::Container(C::Header))
        );
        // The integer model holds no classes: no payload length, so no file.
        let h = header::<4, 1>().with_classes(1);
        assert!(file::encoded_len(Kind::Integer, &h).is_err());
    }
}

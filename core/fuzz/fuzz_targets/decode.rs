//! Any byte string handed to the model-file decoders, float and integer, is an `Ok` or a
//! `FileError`, never a panic; a float file that decodes can be sampled with the sampler its
//! header names, and an integer one validates and can be sampled too.
//!
//! Each input is tried twice: as given (magic, version, lengths and CRC as the fuzzer made
//! them), and re-sealed with a correct CRC-32, so that mutations reach the header, kind,
//! shape, schedule, sampler, weight and integer-range checks behind the checksum.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tinyddpm_core::{
    Model, NoiseStream, QModel, QSeedModel, SeedModel, chain, file, gaussian_lanes, sample,
};

/// The shape of the seed corpus's files: small enough to sample 1,000 steps per input.
type Tiny = Model<4, 1>;
type TinyQ = QModel<4, 1>;
/// The same on points of three coordinates (version 3 files of D = 3).
type Tiny3 = Model<4, 1, 3>;
type TinyQ3 = QModel<4, 1, 3>;

fuzz_target!(|data: &[u8]| {
    let mut seed_sized = Box::new(SeedModel::ZERO);
    let _ = file::decode_into(data, &mut *seed_sized);
    let mut seed_sized = Box::new(QSeedModel::ZERO);
    let _ = file::decode_into(data, &mut *seed_sized);
    let mut tiny = Tiny::ZERO;
    let _ = file::decode_into(data, &mut tiny);
    let mut tiny = TinyQ::ZERO;
    let _ = file::decode_into(data, &mut tiny);
    let mut tiny = Tiny3::ZERO;
    let _ = file::decode_into(data, &mut tiny);
    let mut tiny = TinyQ3::ZERO;
    let _ = file::decode_into(data, &mut tiny);
    let _ = file::expected_len(data);

    if data.len() < 4 {
        return;
    }
    let mut sealed = data.to_vec();
    let body = sealed.len() - 4;
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&sealed[..body]);
    sealed[body..].copy_from_slice(&crc.to_le_bytes());
    let mut tiny = Tiny::ZERO;
    if let Ok(header) = file::decode_into(&sealed, &mut tiny)
        && let Ok(schedule) = header.schedule::<1000>()
    {
        std::hint::black_box(sample(&tiny, &schedule, &header.sampler, 7, 3));
    }
    let mut tiny = Tiny3::ZERO;
    if let Ok(header) = file::decode_into(&sealed, &mut tiny)
        && let Ok(schedule) = header.schedule::<1000>()
    {
        std::hint::black_box(sample(&tiny, &schedule, &header.sampler, 7, 3));
    }
    let mut tiny = TinyQ3::ZERO;
    if file::decode_into(&sealed, &mut tiny).is_err() {
        assert!(tiny == TinyQ3::ZERO, "a refused file leaves the model untouched");
    }
    let mut tiny = TinyQ::ZERO;
    match file::decode_into(&sealed, &mut tiny) {
        Ok(header) => {
            assert_eq!(tiny.validate(), Ok(()), "a decoded integer model validates");
            if let Ok(schedule) = header.schedule::<1000>() {
                let mut noise = [NoiseStream::new(7, 3)];
                let x = gaussian_lanes::<f32>(&mut noise);
                let steps = header.sampler.steps(&schedule);
                std::hint::black_box(chain(&tiny, steps, x, &mut noise, |_, _| ()));
            }
        }
        Err(_) => assert!(tiny == TinyQ::ZERO, "a refused file leaves the model untouched"),
    }
});

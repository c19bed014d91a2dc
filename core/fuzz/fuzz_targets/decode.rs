//! Any byte string handed to the model-file decoder is an `Ok` or a `FileError`, never a
//! panic; and a file that decodes can be sampled with the sampler its header names.
//!
//! Each input is tried twice: as given (magic, version, lengths and CRC as the fuzzer made
//! them), and re-sealed with a correct CRC-32, so that mutations reach the header, shape,
//! schedule, sampler and weight checks behind the checksum.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tinyddpm_core::{Model, SeedModel, file, sample};

/// The shape of the seed corpus's file: small enough to sample 1,000 steps per input.
type Tiny = Model<4, 1>;

fuzz_target!(|data: &[u8]| {
    let mut seed_sized = Box::new(SeedModel::ZERO);
    let _ = file::decode_into(data, &mut seed_sized);
    let mut tiny = Tiny::ZERO;
    let _ = file::decode_into(data, &mut tiny);

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
});

//! Models of other data dimensions than the notebook's D = 2 (1, 3, 8, 16): the forward pass
//! against the f64 reference of `common`, the noise draw against `gaussian_pair` calls
//! written out, and the lanes of a batch against samples drawn alone. The D = 2 bits are
//! pinned by the golden values of `reference.rs`.

mod common;

use common::forward64;
use tinyddpm_core::{
    History, Lanes, Model, NoiseStream, Sampler, Schedule, ScheduleKind, Solver, Spacing, chain,
    gaussian_draw, sample, sample_from,
};

/// A model whose weights have the scale 1/√fan-in of PyTorch's initialisation (so every
/// activation stays of order 1) and whose every parameter differs: a SplitMix64 stream.
fn model<const H: usize, const B: usize, const D: usize>(seed: u64) -> Box<Model<H, B, D>> {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    };
    let mut m = Box::new(Model::ZERO);
    m.for_each_tensor_mut(|_, shape, data| {
        let fan_in = shape.get(1).copied().unwrap_or(H) as f32;
        data.iter_mut().for_each(|p| *p = next() / fan_in.sqrt());
    });
    m
}

/// The forward pass of D coordinates within 1e-5 (relative to the output's norm) of the
/// notebook's forward pass in f64, on 100 inputs of three scales.
fn forward_pass_matches_f64<const D: usize>() {
    let m = model::<32, 2, D>(D as u64);
    let mut worst = 0.0f64;
    for i in 0..100u64 {
        let mut noise = NoiseStream::new(5, i);
        let scale = [0.1f32, 1.0, 3.0][i as usize % 3];
        let x = noise.gaussians::<D>().map(|v| v * scale);
        let t = (i * 37 % 1000) as f32 / 1000.0;
        let ours = m.predict_noise(x, &m.time_embedding(t));
        let exact = forward64(&m, x.map(f64::from), f64::from(t));
        let norm = exact.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-3);
        let err = ours
            .iter()
            .zip(&exact)
            .map(|(&o, e)| (f64::from(o) - e).powi(2))
            .sum::<f64>()
            .sqrt()
            / norm;
        worst = worst.max(err);
    }
    println!("D = {D}: worst relative error {worst:e}");
    assert!(worst <= 1e-5, "D = {D}: worst relative error {worst:e}");
}

#[test]
fn forward_pass_of_every_dimension_within_1e_5_of_f64() {
    forward_pass_matches_f64::<1>();
    forward_pass_matches_f64::<3>();
    forward_pass_matches_f64::<8>();
    forward_pass_matches_f64::<16>();
}

/// A draw of D Gaussians is ⌈D/2⌉ whole pairs, coordinates in order, the last pair's second
/// value dropped for odd D: spelled out here with `gaussian_pair`.
#[test]
fn a_draw_takes_whole_pairs_in_order() {
    let (seed, index) = (9, 1 << 33);
    let mut pairs = NoiseStream::new(seed, index);
    let p: Vec<[f32; 2]> = (0..12).map(|_| pairs.gaussian_pair()).collect();
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();

    let mut s = NoiseStream::new(seed, index);
    assert_eq!(bits(&s.gaussians::<1>()), bits(&[p[0][0]]));
    assert_eq!(bits(&s.gaussians::<1>()), bits(&[p[1][0]]));
    assert_eq!(
        bits(&s.gaussians::<3>()),
        bits(&[p[2][0], p[2][1], p[3][0]])
    );
    assert_eq!(
        bits(&s.gaussians::<3>()),
        bits(&[p[4][0], p[4][1], p[5][0]])
    );
    assert_eq!(bits(&s.gaussians::<2>()), bits(&p[6]));
    let five = [p[7][0], p[7][1], p[8][0], p[8][1], p[9][0]];
    assert_eq!(bits(&s.gaussians::<5>()), bits(&five));
    assert_eq!(
        bits(&s.gaussian_pair()),
        bits(&p[10]),
        "the stream is at pair 10"
    );

    // Sixteen coordinates: eight pairs.
    let mut s = NoiseStream::new(seed, index);
    let sixteen: Vec<f32> = p[..8].iter().flatten().copied().collect();
    assert_eq!(bits(&s.gaussians::<16>()), bits(&sixteen));

    // Across lanes: lane i is stream i's draw; lanes past the streams are 0.
    let mut streams = [NoiseStream::new(1, 0), NoiseStream::new(1, 1)];
    let z = gaussian_draw::<Lanes<4>, 3>(&mut streams);
    for (i, lane) in [0u64, 1].into_iter().enumerate() {
        let mut one = NoiseStream::new(1, lane);
        let (a, b) = (one.gaussian_pair(), one.gaussian_pair());
        let want = [a[0], a[1], b[0]];
        assert_eq!(bits(&z.map(|c| c.0[i])), bits(&want), "lane {i}");
    }
    assert_eq!(z.map(|c| [c.0[2], c.0[3]]), [[0.0; 2]; 3]);
}

/// `sample` for D = 3, written out: x_T is the first draw (pairs 0, 1), step k's z the
/// (k + 1)-th (pairs 2k + 2, 2k + 3), every coordinate through `Step::apply` with its own
/// history.
#[test]
fn a_sample_of_three_coordinates_draws_its_noise_as_documented() {
    let m = model::<16, 2, 3>(3);
    let schedule = Schedule::<100>::new(ScheduleKind::SEED).unwrap();
    let samplers = [
        Sampler::Ddpm,
        Sampler::multistep(Solver::UniPc),
        Sampler::Ddim {
            steps: 10,
            eta: 1.0,
            spacing: Spacing::Trailing,
            clip: false,
        },
    ];
    for sampler in samplers {
        let mut s = NoiseStream::new(4, 7);
        let mut draw = || {
            let (a, b) = (s.gaussian_pair(), s.gaussian_pair());
            [a[0], a[1], b[0]]
        };
        let mut x = draw();
        let mut history = [History::new(); 3];
        for step in sampler.steps(&schedule) {
            let eps = m.predict_noise(x, &m.time_embedding(step.t_input));
            let z = draw();
            for c in 0..3 {
                x[c] = step.apply(x[c], eps[c], z[c], &mut history[c]);
            }
        }
        let got = sample(&*m, &schedule, &sampler, 4, 7);
        assert_eq!(got.map(f32::to_bits), x.map(f32::to_bits), "{sampler:?}");
        assert!(got.iter().all(|v| v.is_finite()));
    }
}

/// N samples as the lanes of `Lanes<N>` give the bits of the N scalar `sample`s, and
/// `sample_from` the stream's own x_T gives `sample`'s.
fn lanes_equal_scalar_samples<const D: usize>() {
    let m = model::<16, 2, D>(100 + D as u64);
    let schedule = Schedule::<1000>::new(ScheduleKind::SEED).unwrap();
    let samplers = [
        Sampler::DdpmPosterior,
        Sampler::DDIM_DEFAULT,
        Sampler::multistep(Solver::DpmPp2mSde),
    ];
    let index = [3u64, 0, 1 << 40, 17];
    for sampler in samplers {
        let mut streams = index.map(|i| NoiseStream::new(11, i));
        let x = gaussian_draw::<Lanes<4>, D>(&mut streams);
        let lanes = chain(&*m, sampler.steps(&schedule), x, &mut streams, |_, _| ());
        for (lane, &i) in index.iter().enumerate() {
            let alone = sample(&*m, &schedule, &sampler, 11, i);
            let bits = lanes.map(|c| c.0[lane].to_bits());
            assert_eq!(alone.map(f32::to_bits), bits, "D = {D} {sampler:?} {i}");
            let x_t = NoiseStream::new(11, i).gaussians::<D>();
            let from = sample_from(&*m, &schedule, &sampler, x_t, 11, i);
            assert_eq!(from.map(f32::to_bits), bits, "D = {D} {sampler:?} {i}");
        }
    }
}

#[test]
fn every_lane_of_a_batch_equals_the_sample_drawn_alone_for_every_dimension() {
    lanes_equal_scalar_samples::<1>();
    lanes_equal_scalar_samples::<3>();
    lanes_equal_scalar_samples::<8>();
    lanes_equal_scalar_samples::<16>();
}

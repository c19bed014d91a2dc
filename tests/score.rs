//! The anomaly score (`tinyddpm_core::anomaly_score`, `tinyddpm::run::score`): the host's
//! parallel job gives the core's scalar bits for any thread count and either kind of model,
//! and it tells outliers from data.

use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro128PlusPlus;
use tinyddpm::data;
use tinyddpm::quantize::{Calibration, quantize};
use tinyddpm::run::score::scores;
use tinyddpm_core::file;
use tinyddpm_core::{Model, PredictNoise, Schedule, SeedModel, Units, anomaly_score};

const T: usize = 1000;

fn seed_model() -> (Box<SeedModel>, Schedule<T>) {
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../firmware/models/seed.tdm"
    ))
    .unwrap();
    let mut model = Box::new(SeedModel::ZERO);
    let header = file::decode_into(&bytes, &mut *model).unwrap();
    (model, header.schedule().unwrap())
}

/// Area under the ROC curve of `scores` for `outlier` labels, by its definition: the share of
/// (outlier, inlier) pairs the score orders right, ties counting half.
fn auroc(scores: &[f32], outlier: &[bool]) -> f64 {
    let (mut right, mut pairs) = (0.0, 0.0);
    for (a, _) in scores.iter().zip(outlier).filter(|(_, o)| **o) {
        for (b, _) in scores.iter().zip(outlier).filter(|(_, o)| !**o) {
            pairs += 1.0;
            right += match a.partial_cmp(b).unwrap() {
                std::cmp::Ordering::Greater => 1.0,
                std::cmp::Ordering::Equal => 0.5,
                std::cmp::Ordering::Less => 0.0,
            };
        }
    }
    right / pairs
}

/// `inliers` with one outlier per ten inliers appended, each uniform in the inliers' bounding
/// box grown 1.5× about its centre (the "global anomalies" of anomaly benchmarks); the labels.
fn with_outliers(inliers: &[[f32; 2]], seed: u64) -> (Vec<[f32; 2]>, Vec<bool>) {
    let mut lo = [f32::INFINITY; 2];
    let mut hi = [f32::NEG_INFINITY; 2];
    for p in inliers {
        for c in 0..2 {
            lo[c] = lo[c].min(p[c]);
            hi[c] = hi[c].max(p[c]);
        }
    }
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(seed);
    let mut points = inliers.to_vec();
    for _ in 0..inliers.len() / 10 {
        let u = [0, 1].map(|_| (rng.next_u32() >> 8) as f32 / 16_777_216.0);
        points.push([0, 1].map(|c| {
            let (centre, half) = ((lo[c] + hi[c]) / 2.0, (hi[c] - lo[c]) * 0.75);
            centre + half * (2.0 * u[c] - 1.0)
        }));
    }
    let labels = (0..points.len()).map(|i| i >= inliers.len()).collect();
    (points, labels)
}

#[test]
fn outliers_of_the_swiss_roll_score_higher_than_its_points() {
    let (model, schedule) = seed_model();
    let (points, outlier) = with_outliers(&data::true_samples(2000, 11), 12);
    let s = scores(&*model, &schedule, None, 0, &points);
    let area = auroc(&s, &outlier);
    eprintln!("AUROC {area}");
    assert!(area >= 0.95, "AUROC {area}");
}

/// The core's scalar score of every point, in order.
fn scalar<M>(
    model: &M,
    schedule: &Schedule<T>,
    units: Option<&Units>,
    points: &[[f32; 2]],
) -> Vec<f32>
where
    for<'a> &'a M: PredictNoise<f32>,
{
    (0..points.len())
        .map(|i| anomaly_score(model, schedule, units, 7, i as u64, points[i]))
        .collect()
}

#[test]
fn the_parallel_job_gives_the_cores_bits_for_any_thread_count_and_kind() {
    let (model, schedule) = seed_model();
    let (integer, _) = quantize(&*model, &schedule, &Calibration::default()).unwrap();
    let points = data::true_samples(700, 3);
    let units = Units::new(&[0.5, 2.0], &[0.25, -1.0]).unwrap();
    for units in [None, Some(&units)] {
        let float = scalar(&*model, &schedule, units, &points);
        let int = scalar(&*integer, &schedule, units, &points);
        assert_ne!(float, int);
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                assert!(scores(&*model, &schedule, units, 7, &points) == float);
                assert!(scores(&*integer, &schedule, units, 7, &points) == int);
            });
        }
    }
    // The model space is where the points are scored: units move the points.
    let zero = Model::<4, 1>::ZERO;
    let a = scalar(&zero, &schedule, None, &points[..1]);
    let b = scalar(&zero, &schedule, Some(&units), &points[..1]);
    assert_eq!(
        a, b,
        "a silent network's error is the noise alone, wherever the point is"
    );
}

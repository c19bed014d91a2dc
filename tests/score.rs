//! The anomaly score (`tinyddpm_core::anomaly_score`, `tinyddpm::run::score`): the host's
//! parallel job gives the core's scalar bits for any thread count and either kind of model,
//! and it tells outliers from data.

use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro128PlusPlus;
use tinyddpm::batch::{Batch1, Simd};
use tinyddpm::data::{self, DataSet};
use tinyddpm::flat::FlatModel;
use tinyddpm::quantize::{Calibration, quantize_model};
use tinyddpm::run::score::scores;
use tinyddpm::train::{TrainConfig, Trainer};
use tinyddpm_core::file;
use tinyddpm_core::{
    Fixed, Model, PredictNoise, Schedule, ScheduleKind, SeedModel, Units, anomaly_score,
};

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

/// The float model's predictor of the scoring job: the batch-1 path.
fn batch1<const H: usize, const B: usize, const D: usize>(model: &Model<H, B, D>) -> Batch1 {
    Batch1::new(&FlatModel::of(model), Simd::detect())
}

/// AUROC of the scores of 2,000 fresh points of `set` and 200 outliers.
fn auroc_on(model: &SeedModel, schedule: &Schedule<T>, set: DataSet) -> f64 {
    let (points, outlier) = with_outliers(&data::true_samples(set, 2000, 11), 12);
    let b = batch1(model);
    let scored = scores(|| b.clone(), schedule, None, 0, points.as_flattened(), 2);
    let area = auroc(&scored, &outlier);
    eprintln!("{set}: AUROC {area}");
    area
}

/// Measured 0.948 (with t = 1, 2, 3, 5 alone the score reaches 0.956 here, and loses 0.03
/// on the thick sets: `anomaly::LEVELS`).
#[test]
fn outliers_of_the_swiss_roll_score_higher_than_its_points() {
    let (model, schedule) = seed_model();
    let area = auroc_on(&model, &schedule, DataSet::SwissRoll);
    assert!(area >= 0.94, "AUROC {area}");
}

/// The seed recipe (10,000 steps of 128) on `set`, trained here.
fn trained(set: DataSet, schedule: &Schedule<T>) -> Box<Model<128, 3>> {
    let config = TrainConfig {
        data: set.into(),
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::<T>::new(config, 128, 3, schedule).unwrap();
    for _ in 0..10_000 {
        trainer.step().unwrap();
    }
    trainer.model().to_model().expect("the seed shape")
}

/// Two sets without noise, whose outliers lie off the data: measured 0.990 (cos) and 0.999
/// (line).
#[test]
fn outliers_of_thin_sets_score_higher_than_their_points() {
    let schedule = Schedule::<T>::new(ScheduleKind::SEED).unwrap();
    for set in [DataSet::Cos, DataSet::Line] {
        let area = auroc_on(&trained(set, &schedule), &schedule, set);
        assert!(area >= 0.95, "{set}: AUROC {area}");
    }
}

/// The two moons' density at `p`, up to a constant factor, in f64: FFJORD's definition
/// (a uniform angle on either half circle, N(0, 0.1²) noise, then ×2 and (−1, −0.2)) as a
/// sum over 2 × 500 angles of N(p; 2·c(a) + (−1, −0.2), 0.2²).
fn moons_density(p: [f32; 2]) -> f64 {
    let (x, y) = (f64::from(p[0]), f64::from(p[1]));
    let mut sum = 0.0;
    for i in 0..500 {
        let a = std::f64::consts::PI * (i as f64 + 0.5) / 500.0;
        for (cx, cy) in [(a.cos(), a.sin()), (1.0 - a.cos(), 0.5 - a.sin())] {
            let (dx, dy) = (x - (2.0 * cx - 1.0), y - (2.0 * cy - 0.2));
            sum += (-(dx * dx + dy * dy) / (2.0 * 0.04)).exp();
        }
    }
    sum
}

/// On a thick set uniform outliers often land inside the data: no score can reach 0.95
/// there. The bound is what the true density achieves on the same points (0.928), less 0.04
/// (measured 0.893).
#[test]
fn outliers_of_a_thick_set_score_nearly_as_well_as_by_the_true_density() {
    let schedule = Schedule::<T>::new(ScheduleKind::SEED).unwrap();
    let area = auroc_on(
        &trained(DataSet::Moons, &schedule),
        &schedule,
        DataSet::Moons,
    );
    let (points, outlier) = with_outliers(&data::true_samples(DataSet::Moons, 2000, 11), 12);
    let density: Vec<f32> = points.iter().map(|&p| -moons_density(p) as f32).collect();
    let best = auroc(&density, &outlier);
    eprintln!("moons: the true density's AUROC {best}");
    assert!(
        area >= best - 0.04,
        "AUROC {area}, the true density's {best}"
    );
}

/// The core's scalar score of every point, in order.
fn scalar<M, const D: usize>(
    model: &M,
    schedule: &Schedule<T>,
    units: Option<&Units>,
    points: &[[f32; D]],
) -> Vec<f32>
where
    for<'a> &'a M: PredictNoise<f32, D>,
{
    (0..points.len())
        .map(|i| anomaly_score(model, schedule, units, 7, i as u64, points[i]))
        .collect()
}

#[test]
fn the_parallel_job_gives_the_cores_bits_for_any_thread_count_and_kind() {
    let (model, schedule) = seed_model();
    let (integer, _) = quantize_model(&*model, &schedule, &Calibration::default()).unwrap();
    let points = data::true_samples(DataSet::SwissRoll, 700, 3);
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
            let b = batch1(&*model);
            let flat = points.as_flattened();
            pool.install(|| {
                assert!(scores(|| b.clone(), &schedule, units, 7, flat, 2) == float);
                assert!(scores(|| Fixed(&*integer), &schedule, units, 7, flat, 2) == int);
            });
        }
    }
    // A model of 3-D points, its width no lane count divides.
    let mut model3 = Box::new(Model::<24, 1, 3>::ZERO);
    let mut n = 0u32;
    model3.for_each_param_mut(|w| {
        n += 1;
        *w = ((n as f32 * 0.618_034).fract() - 0.5) * 0.4;
    });
    let points3: Vec<[f32; 3]> = points.iter().map(|p| [p[0], p[1], p[0] - p[1]]).collect();
    let units3 = Units::new(&[0.5, 2.0, 1.5], &[0.25, -1.0, 0.0]).unwrap();
    for units in [None, Some(&units3)] {
        let want = scalar(&*model3, &schedule, units, &points3);
        let b = batch1(&*model3);
        let got = scores(|| b.clone(), &schedule, units, 7, points3.as_flattened(), 3);
        assert!(got == want, "D = 3");
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

//! Cross-crate tests of the trainer: its batched forward against the core's scalar one, its
//! gradients against f64 finite differences, bit-identical resume, thread independence (on
//! every data set), divergence handling and checkpoint errors.

use std::path::Path;

use tinyddpm::data::{
    Classes, DataSet, Examples, Normalize, PointSet, TrainingData, forward_coefs, true_samples,
};
use tinyddpm::flat::FlatModel;
use tinyddpm::train::{
    CheckpointError, CheckpointFile, CheckpointFormatError, DataMismatch, TrainConfig, TrainError,
    Trainer, Training, loss_and_gradient, predict_noise,
};
use tinyddpm_core::ContainerError;
use tinyddpm_core::{Header, Model, Sampler, Schedule, ScheduleKind};

fn schedule() -> Schedule<1000> {
    Schedule::new(ScheduleKind::SEED).expect("seed schedule")
}

fn examples(n: usize, seed: u64) -> Examples {
    let mut ex = Examples::new(n, 2);
    ex.fill(DataSet::SwissRoll, &forward_coefs(&schedule()), seed, 0, 0);
    ex
}

fn config(batch: usize, threads: usize) -> TrainConfig {
    TrainConfig {
        batch,
        threads,
        ..TrainConfig::default()
    }
}

/// A trained-a-little model, so activations are not all at initial scale.
fn warm_model<const H: usize, const B: usize>(steps: u64) -> Box<Model<H, B>> {
    let mut t = Trainer::<1000>::new(config(64, 1), H, B, &schedule()).unwrap();
    for _ in 0..steps {
        t.step().unwrap();
    }
    t.weights().to_model::<H, B, 2>().unwrap()
}

#[test]
fn batched_forward_agrees_with_the_cores_predict_noise() {
    let model = warm_model::<128, 3>(200);
    let ex = examples(300, 11);
    let batched = predict_noise(&FlatModel::of(&*model), &ex);
    let mut worst = 0.0f32;
    for i in 0..ex.len() {
        let temb = model.time_embedding(ex.t_input[i]);
        let eps = model.predict_noise([ex.x_t[2 * i], ex.x_t[2 * i + 1]], &temb);
        for c in 0..2 {
            let err = (batched[2 * i + c] - eps[c]).abs() / eps[c].abs().max(1.0);
            worst = worst.max(err);
        }
    }
    assert!(worst < 1e-5, "worst scaled difference {worst:e}");
}

/// The model in f64 with the exact (erf) GELU, parameters in file order, on the examples'
/// D coordinates; for examples of a run conditioned on classes, the class embedding's row of
/// each example (the last (C + 1)·H parameters) added to its time embedding.
fn loss_f64(p: &[f64], ex: &Examples, h: usize, blocks: usize) -> f64 {
    let d = ex.dim;
    let embedding = ex
        .classes
        .map(|c| p.len() - (usize::from(c.classes) + 1) * h);
    let gelu = |x: f64| 0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2));
    // `at` walks through the parameters in file order, layer by layer
    let dense = |at: &mut usize, x: &[f64], i: usize, o: usize| -> Vec<f64> {
        let (w, b) = (&p[*at..*at + i * o], &p[*at + i * o..*at + i * o + o]);
        *at += i * o + o;
        (0..o)
            .map(|j| b[j] + (0..i).map(|k| w[j * i + k] * x[k]).sum::<f64>())
            .collect()
    };
    let mut total = 0.0;
    for n in 0..ex.len() {
        let at = &mut 0;
        let e: Vec<f64> = dense(at, &[f64::from(ex.t_input[n])], 1, h);
        let e: Vec<f64> = e.into_iter().map(gelu).collect();
        let mut temb = dense(at, &e, h, h);
        if let Some(rows) = embedding {
            let row = rows + ex.class[n] as usize * h;
            for (t, e) in temb.iter_mut().zip(&p[row..row + h]) {
                *t += e;
            }
        }
        let x: Vec<f64> = ex.x_t[d * n..d * n + d].iter().map(|&v| v.into()).collect();
        let mut hid: Vec<f64> = dense(at, &x, d, h).into_iter().map(gelu).collect();
        for (v, t) in hid.iter_mut().zip(&temb) {
            *v += t;
        }
        for _ in 0..blocks {
            let u: Vec<f64> = dense(at, &hid, h, h).into_iter().map(gelu).collect();
            let v: Vec<f64> = dense(at, &u, h, h).into_iter().map(gelu).collect();
            for ((hj, vj), tj) in hid.iter_mut().zip(&v).zip(&temb) {
                *hj = (vj + *hj + tj) / std::f64::consts::SQRT_2;
            }
        }
        let out = dense(at, &hid, h, d);
        for (o, &e) in out.iter().zip(&ex.noise[d * n..d * n + d]) {
            total += (o - f64::from(e)).powi(2);
        }
    }
    total / (d * ex.len()) as f64
}

/// The trainer's loss equals the f64 model's, and its gradient the f64 loss's central
/// differences, parameter by parameter.
fn check_gradient(model: &FlatModel, ex: &Examples) {
    let lay = model.layout();
    let (loss, grad) = loss_and_gradient(model, ex);
    let p: Vec<f64> = model.params().iter().map(|&w| w.into()).collect();
    let g: Vec<f64> = grad.params().iter().map(|&w| w.into()).collect();
    assert_eq!((g.len(), grad.layout()), (p.len(), lay));
    let exact = loss_f64(&p, ex, lay.hidden, lay.blocks);
    assert!(
        (f64::from(loss) - exact).abs() < 1e-5 * exact,
        "{loss} vs {exact}"
    );
    let step = 1e-5;
    let mut checked_nonzero = 0;
    for i in 0..p.len() {
        let mut q = p.clone();
        q[i] = p[i] + step;
        let up = loss_f64(&q, ex, lay.hidden, lay.blocks);
        q[i] = p[i] - step;
        let down = loss_f64(&q, ex, lay.hidden, lay.blocks);
        let fd = (up - down) / (2.0 * step);
        assert!(
            (g[i] - fd).abs() <= 2e-3 * fd.abs() + 2e-6,
            "{lay:?} parameter {i}: backward {} vs finite difference {fd}",
            g[i]
        );
        checked_nonzero += usize::from(fd.abs() > 1e-4);
    }
    assert!(
        checked_nonzero > p.len() / 2,
        "{lay:?}: {checked_nonzero} informative parameters"
    );
}

#[test]
fn gradients_match_f64_finite_differences() {
    let model = warm_model::<8, 2>(30);
    assert_eq!(FlatModel::of(&*model).params().len(), Model::<8, 2>::PARAMS);
    check_gradient(&FlatModel::of(&*model), &examples(7, 5));
}

/// A run conditioned on the eight Gaussians' components, trained a little, with a third of
/// the labels dropped: its loss and gradient — the class embedding's included — are the f64
/// model's, and its forward pass is the core's with the class's row added to `temb`.
#[test]
fn gradients_of_a_class_conditioned_model_match_f64_finite_differences() {
    let classes = Classes {
        classes: 8,
        dropout: 0.3,
    };
    let run = TrainConfig {
        data: DataSet::EightGaussians.into(),
        classes: Some(classes),
        ..config(64, 1)
    };
    let mut t = Trainer::<1000>::new(run, 8, 2, &schedule()).unwrap();
    for _ in 0..30 {
        t.step().unwrap();
    }
    let model = t.weights();
    assert_eq!(model.classes(), 8);
    let mut ex = Examples::with_classes(24, 2, Some(classes));
    let coefs = forward_coefs(&schedule());
    ex.fill(DataSet::EightGaussians, &coefs, 5, 0, 0);
    assert!(ex.class.contains(&8) && ex.class.iter().any(|&c| c < 8));
    check_gradient(&model, &ex);
    // The batched forward against the core's, row by row.
    let batched = predict_noise(&model, &ex);
    let network = model.network().to_model::<8, 2, 2>().unwrap();
    for i in 0..ex.len() {
        let mut temb = network.time_embedding(ex.t_input[i]);
        let row = model
            .class_row(Some(ex.class[i] as u16))
            .or(model.class_row(None));
        tinyddpm_core::condition::add_class(&mut temb, row.unwrap());
        let eps = network.predict_noise([ex.x_t[2 * i], ex.x_t[2 * i + 1]], &temb);
        for c in 0..2 {
            let err = (batched[2 * i + c] - eps[c]).abs() / eps[c].abs().max(1.0);
            assert!(err < 1e-5, "row {i}: {} vs {}", batched[2 * i + c], eps[c]);
        }
    }
}

/// A run conditioned on classes is the same on one thread or two (two chunks a step).
#[test]
fn a_class_conditioned_run_is_thread_independent() {
    let run = |threads| {
        let config = TrainConfig {
            data: DataSet::Moons.into(),
            classes: Some(Classes {
                classes: 2,
                dropout: 0.1,
            }),
            ..config(128, threads)
        };
        let mut t = Trainer::<1000>::new(config, 16, 1, &schedule()).unwrap();
        let losses: Vec<u32> = (0..20).map(|_| t.step().unwrap().to_bits()).collect();
        (losses, t)
    };
    let ((one, mut t1), (two, t2)) = (run(1), run(2));
    assert_eq!((&one, t1.weights()), (&two, t2.weights()));
    // Its checkpoint (version 5, the classes recorded) resumes bit for bit.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.ckpt");
    t2.save_checkpoint(&path).unwrap();
    let mut resumed = Trainer::<1000>::resume(&path, Some(2)).unwrap();
    assert_eq!(resumed.config().classes, t2.config().classes);
    for _ in 0..5 {
        assert_eq!(
            t1.step().unwrap().to_bits(),
            resumed.step().unwrap().to_bits()
        );
    }
    assert_eq!(t1.model(), resumed.model());
}

/// 100 rows of `dim` columns, standardized: a rational sequence, every column its own.
fn points_of(dim: usize) -> TrainingData {
    let values = (0..100 * dim)
        .map(|i| ((i * 37 + i / dim * 11) % 97) as f32 / 8.0 - (i % dim) as f32)
        .collect();
    let points = PointSet::new("d.csv", dim, values, Normalize::Standard).unwrap();
    TrainingData::Points(points.into())
}

/// A shape no build names (H = 24, B = 1) on points of D = 1, 3 and 16, trained a little on
/// them by the runtime-shaped trainer: its loss and gradient are the f64 model's.
#[test]
fn gradients_of_any_shape_and_dimension_match_f64_finite_differences() {
    for dim in [1, 3, 16] {
        let data = points_of(dim);
        let run = TrainConfig {
            data: data.clone(),
            ..config(64, 1)
        };
        let mut t = Trainer::<1000>::new(run, 24, 1, &schedule()).unwrap();
        for _ in 0..20 {
            t.step().unwrap();
        }
        let model = t.weights();
        assert_eq!(
            (model.hidden(), model.layout().blocks, model.dim()),
            (24, 1, dim)
        );
        let mut ex = Examples::new(7, dim);
        ex.fill(&data, &forward_coefs(&schedule()), 5, 0, 0);
        check_gradient(&model, &ex);
    }
}

/// Points of D = 3 at a shape no build names, two chunks a step: one thread or two give the
/// same run, and its checkpoint (version 4, D recorded) resumes bit for bit given the same
/// points.
#[test]
fn a_run_of_any_shape_and_dimension_is_thread_independent_and_resumes_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let run = |threads| TrainConfig {
        data: points_of(3),
        ema: Some(0.9),
        ..config(100, threads)
    };
    let mut one = Trainer::<1000>::new(run(1), 24, 1, &schedule()).unwrap();
    let mut two = Trainer::<1000>::new(run(2), 24, 1, &schedule()).unwrap();
    let mut losses = Vec::new();
    for _ in 0..6 {
        let loss = one.step().unwrap();
        assert_eq!(loss.to_bits(), two.step().unwrap().to_bits());
        losses.push(loss.to_bits());
    }
    let mut half = Trainer::<1000>::new(run(2), 24, 1, &schedule()).unwrap();
    for _ in 0..3 {
        half.step().unwrap();
    }
    let ckpt = dir.path().join("d3.ckpt");
    half.save_checkpoint(&ckpt).unwrap();
    let file = CheckpointFile::read(&ckpt).unwrap();
    let info = file.info().unwrap();
    assert_eq!(
        (info.version, info.dim, info.hidden, info.blocks),
        (4, 3, 24, 1)
    );
    let given = file.with_data(&points_of(3)).unwrap().unwrap();
    let mut resumed = Trainer::<1000>::resume_from(&given, Some(1)).unwrap();
    for want in &losses[3..] {
        assert_eq!(resumed.step().unwrap().to_bits(), *want);
    }
    assert_eq!(model_bytes(&one), model_bytes(&resumed));
}

fn model_bytes(t: &Trainer<1000>) -> Vec<u8> {
    let model = t.model();
    let lay = model.layout();
    let header = Header {
        hidden: lay.hidden as u32,
        blocks: lay.blocks as u32,
        data: t.config().data.model_data(),
        ..Header::new::<0, 0, 1000>(t.schedule_kind(), Sampler::Ddpm)
    };
    model.encode(&header).unwrap()
}

#[test]
fn resume_continues_bit_for_bit_on_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let run = TrainConfig {
        ema: Some(0.99),
        ..config(128, 2)
    };
    let mut straight = Trainer::<1000>::new(run.clone(), 128, 3, &schedule()).unwrap();
    let mut losses = Vec::new();
    for _ in 0..300 {
        losses.push(straight.step().unwrap());
    }
    let whole = dir.path().join("whole.ckpt");
    straight.save_checkpoint(&whole).unwrap();

    let mut first = Trainer::<1000>::new(run, 128, 3, &schedule()).unwrap();
    let mut resumed_losses = Vec::new();
    for _ in 0..150 {
        resumed_losses.push(first.step().unwrap());
    }
    let half = dir.path().join("half.ckpt");
    first.save_checkpoint(&half).unwrap();
    drop(first);
    let mut second = Trainer::<1000>::resume(&half, Some(1)).unwrap();
    assert_eq!(second.step_index(), 150);
    for _ in 0..150 {
        resumed_losses.push(second.step().unwrap());
    }
    let again = dir.path().join("again.ckpt");
    second.save_checkpoint(&again).unwrap();

    assert_eq!(losses, resumed_losses);
    assert_eq!(
        std::fs::read(&whole).unwrap(),
        std::fs::read(&again).unwrap()
    );
    assert_eq!(model_bytes(&straight), model_bytes(&second));
    assert_ne!(
        straight.model(),
        straight.weights(),
        "EMA differs from the raw weights"
    );
    let early: f32 = losses[..50].iter().sum::<f32>() / 50.0;
    let late: f32 = losses[250..].iter().sum::<f32>() / 50.0;
    assert!(late < 0.8 * early, "loss {early} → {late}");
}

/// Every data set: two chunks on one thread or two give the same run, a checkpoint resumes
/// on its own set bit for bit (the set is in the checkpoint, not asked again), and the sets
/// are different runs.
#[test]
fn every_data_set_trains_thread_independently_and_resumes_on_its_set() {
    let dir = tempfile::tempdir().unwrap();
    let mut first_losses = Vec::new();
    for data in DataSet::ALL {
        let run = |threads| TrainConfig {
            data: data.into(),
            ..config(100, threads)
        };
        let mut one = Trainer::<1000>::new(run(1), 32, 2, &schedule()).unwrap();
        let mut two = Trainer::<1000>::new(run(2), 32, 2, &schedule()).unwrap();
        let mut losses = Vec::new();
        for _ in 0..6 {
            let loss = one.step().unwrap();
            assert_eq!(loss.to_bits(), two.step().unwrap().to_bits(), "{data}");
            losses.push(loss.to_bits());
        }
        let mut half = Trainer::<1000>::new(run(2), 32, 2, &schedule()).unwrap();
        for _ in 0..3 {
            half.step().unwrap();
        }
        let ckpt = dir.path().join(format!("{data}.ckpt"));
        half.save_checkpoint(&ckpt).unwrap();
        let mut resumed = Trainer::<1000>::resume(&ckpt, Some(1)).unwrap();
        assert_eq!(resumed.config().data, data.into());
        for want in &losses[3..] {
            assert_eq!(resumed.step().unwrap().to_bits(), *want, "{data}");
        }
        assert_eq!(model_bytes(&one), model_bytes(&resumed), "{data}");
        first_losses.push(losses[0]);
    }
    first_losses.sort_unstable();
    first_losses.dedup();
    assert_eq!(first_losses.len(), DataSet::ALL.len());
}

/// 500 points of the pinwheel, offset and scaled, standardized.
fn point_data(bump: f32) -> TrainingData {
    let values = true_samples(DataSet::Pinwheel, 500, 3)
        .into_iter()
        .flat_map(|p| [3.0 * p[0] + 7.0 + bump, 0.5 * p[1] - 2.0])
        .collect();
    let points = PointSet::new("pin.csv", 2, values, Normalize::Standard).unwrap();
    TrainingData::Points(points.into())
}

/// A run on points: its chunks (batch 200: four of them) on one thread or two give the same
/// run, and a checkpoint resumes bit for bit given the same points again — only them.
#[test]
fn a_run_on_points_trains_thread_independently_and_resumes_given_its_points() {
    let dir = tempfile::tempdir().unwrap();
    let run = |threads| TrainConfig {
        data: point_data(0.0),
        ema: Some(0.9),
        ..config(200, threads)
    };
    let mut one = Trainer::<1000>::new(run(1), 32, 2, &schedule()).unwrap();
    let mut two = Trainer::<1000>::new(run(2), 32, 2, &schedule()).unwrap();
    let mut losses = Vec::new();
    for _ in 0..8 {
        let loss = one.step().unwrap();
        assert_eq!(loss.to_bits(), two.step().unwrap().to_bits());
        losses.push(loss.to_bits());
    }
    assert_eq!(model_bytes(&one), model_bytes(&two));
    let mut half = Trainer::<1000>::new(run(2), 32, 2, &schedule()).unwrap();
    for _ in 0..4 {
        half.step().unwrap();
    }
    let ckpt = dir.path().join("points.ckpt");
    half.save_checkpoint(&ckpt).unwrap();
    let file = CheckpointFile::read(&ckpt).unwrap();
    // without its points the run cannot go on
    let e = Trainer::<1000>::resume_from(&file, Some(1)).err().unwrap();
    assert!(e.to_string().contains("--data FILE"), "{e}");
    let other = file.with_data(&point_data(0.5)).unwrap().unwrap_err();
    assert!(
        matches!(other, DataMismatch::PointsDiffer { rows: 500, .. }),
        "{other:?}"
    );
    let given = file.with_data(&point_data(0.0)).unwrap().unwrap();
    let mut resumed = Trainer::<1000>::resume_from(&given, Some(1)).unwrap();
    for want in &losses[4..] {
        assert_eq!(resumed.step().unwrap().to_bits(), *want);
    }
    assert_eq!(model_bytes(&one), model_bytes(&resumed));
    // another run than the Swiss roll's on the same seed
    let mut roll = Trainer::<1000>::new(config(200, 1), 32, 2, &schedule()).unwrap();
    assert_ne!(roll.step().unwrap().to_bits(), losses[0]);
}

#[test]
fn a_non_finite_loss_stops_training_and_keeps_the_last_good_state() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("run.ckpt");
    let mut t = Trainer::<1000>::new(config(64, 2), 32, 2, &schedule()).unwrap();
    for _ in 0..5 {
        t.step().unwrap();
    }
    t.save_checkpoint(&ckpt).unwrap();
    let good = std::fs::read(&ckpt).unwrap();
    let before = t.weights();
    t.set_weight(0, f32::NAN);
    match t.step() {
        Err(TrainError::NonFinite { step: 5, loss }) => assert!(loss.is_nan()),
        other => panic!("expected a non-finite loss at step 5, got {other:?}"),
    }
    assert_eq!(t.step_index(), 5);
    let after = t.weights();
    let (after, w_before) = (after.params(), before.params());
    let same = after.iter().filter(|w| !w.is_nan()).count();
    assert_eq!(same, after.len() - 1, "only the injected weight is NaN");
    for (i, w) in after.iter().enumerate() {
        assert!(
            i == 0 || w.to_bits() == w_before[i].to_bits(),
            "weight {i} changed"
        );
    }
    assert_eq!(std::fs::read(&ckpt).unwrap(), good);
    let resumed = Trainer::<1000>::resume(&ckpt, None).unwrap();
    assert_eq!(resumed.weights(), before);
}

#[test]
fn a_huge_learning_rate_diverges_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("run.ckpt");
    let run = TrainConfig {
        lr: 1e30,
        ..config(64, 2)
    };
    let mut t = Trainer::<1000>::new(run, 32, 2, &schedule()).unwrap();
    let err = loop {
        match t.step() {
            Ok(_) => t.save_checkpoint(&ckpt).unwrap(),
            Err(e) => break e,
        }
        assert!(t.step_index() < 20, "lr = 1e30 should diverge quickly");
    };
    let step = match err {
        TrainError::NonFinite { step, .. } | TrainError::NonFiniteGradient { step, .. } => step,
        other => panic!("unexpected error {other}"),
    };
    assert_eq!(step, t.step_index());
    assert!(err.to_string().contains("diverged at step"), "{err}");
    let resumed = Trainer::<1000>::resume(&ckpt, None).unwrap();
    assert_eq!(resumed.step_index(), step);
    assert_eq!(resumed.weights(), t.weights());
}

fn resume_error(path: &Path) -> CheckpointError {
    match Trainer::<1000>::resume(path, Some(1)) {
        Ok(_) => panic!("{} resumed", path.display()),
        Err(e) => e,
    }
}

#[test]
fn bad_checkpoints_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("run.ckpt");
    let t = Trainer::<1000>::new(config(16, 1), 32, 2, &schedule()).unwrap();
    t.save_checkpoint(&ckpt).unwrap();
    let bytes = std::fs::read(&ckpt).unwrap();

    assert!(matches!(
        resume_error(&dir.path().join("missing.ckpt")),
        CheckpointError::Io { .. }
    ));
    let cut = dir.path().join("cut.ckpt");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    assert!(matches!(resume_error(&cut), CheckpointError::Format { .. }));
    let flipped = dir.path().join("flipped.ckpt");
    let mut bad = bytes.clone();
    bad[bytes.len() / 3] ^= 1;
    std::fs::write(&flipped, &bad).unwrap();
    assert!(matches!(
        resume_error(&flipped),
        CheckpointError::Format {
            source: CheckpointFormatError::Container(ContainerError::Checksum { .. }),
            ..
        }
    ));
    let model_file = dir.path().join("model.tdm");
    std::fs::write(&model_file, model_bytes(&t)).unwrap();
    assert!(matches!(
        resume_error(&model_file),
        CheckpointError::Format {
            source: CheckpointFormatError::Container(ContainerError::BadMagic),
            ..
        }
    ));
    let other_schedule = Trainer::<500>::resume(&ckpt, Some(1));
    assert!(matches!(
        other_schedule.err(),
        Some(CheckpointError::Format {
            source: CheckpointFormatError::Shape { .. },
            ..
        })
    ));
    let msg = resume_error(&flipped).to_string();
    assert!(msg.contains("flipped.ckpt") && msg.contains("CRC"), "{msg}");
}

#[test]
fn invalid_configurations_are_rejected() {
    for bad in [
        config(0, 1),
        TrainConfig {
            lr: f32::NAN,
            ..config(8, 1)
        },
        TrainConfig {
            ema: Some(1.0),
            ..config(8, 1)
        },
    ] {
        assert!(matches!(
            Trainer::<1000>::new(bad, 8, 1, &schedule()),
            Err(TrainError::Config(_))
        ));
    }
}

//! The `tinyddpm` binary end to end: every command run as a user runs it, in a temporary
//! folder, and every kind of bad or hostile input (the table in [`failure_cases`]) answered
//! with one line, the right exit status, no output file, every input byte for byte as it was
//! and no temporary file left. Expected values come from the library and the core computed
//! here, or from the PyTorch fixtures in `tests/fixtures`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rayon::prelude::*;
use tinyddpm::batch::{self, Init, Request};
use tinyddpm::quantize::{Calibration, quantize_model};
use tinyddpm::{csv, data, modelfile, state_dict};
use tinyddpm_core::{
    Header, NoiseStream, QModel, QSeedModel, Sampler, Schedule, ScheduleKind, SeedModel, Solver,
    Spacing, chain, gaussian_lanes, sample, sample_from,
};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures")).join(name)
}

fn tinyddpm(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tinyddpm"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run tinyddpm")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs a command that must succeed; returns its stdout.
fn ok(dir: &Path, args: &[&str]) -> String {
    let out = tinyddpm(dir, args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// A temporary folder holding `m.tdm`, the PyTorch fixture model imported.
fn with_model() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let from = fixture("torch_model_3k.safetensors");
    ok(
        dir.path(),
        &["import", "--from", from.to_str().unwrap(), "--out", "m.tdm"],
    );
    dir
}

fn schedule() -> Schedule<1000> {
    Schedule::new(ScheduleKind::SEED).unwrap()
}

fn bits(points: &[[f32; 2]]) -> Vec<[u32; 2]> {
    points.iter().map(|p| p.map(f32::to_bits)).collect()
}

/// A number from `eval --json`'s one-line object.
fn json_number(json: &str, key: &str) -> f64 {
    let at = json.find(&format!("\"{key}\":")).expect(key) + key.len() + 3;
    let rest = &json[at..];
    let end = rest.find([',', '}']).unwrap();
    rest[..end].parse().unwrap()
}

#[test]
fn help_works_for_every_command() {
    let dir = tempfile::tempdir().unwrap();
    assert!(ok(dir.path(), &["--help"]).contains("Usage: tinyddpm"));
    for command in [
        "train", "sample", "eval", "inspect", "import", "export", "quantize", "demo", "plot",
    ] {
        assert!(ok(dir.path(), &[command, "--help"]).contains("Usage:"));
    }
    for figure in ["loss", "samples", "compare", "forward", "reverse"] {
        assert!(ok(dir.path(), &["plot", figure, "--help"]).contains("--out"));
    }
}

#[test]
fn import_then_export_round_trips_the_pytorch_file_byte_for_byte() {
    let dir = with_model();
    ok(
        dir.path(),
        &["export", "--model", "m.tdm", "--out", "back.safetensors"],
    );
    let original = std::fs::read(fixture("torch_model_3k.safetensors")).unwrap();
    let back = std::fs::read(dir.path().join("back.safetensors")).unwrap();
    assert!(
        back == original,
        "exported bytes differ from the PyTorch file"
    );
    let inspect = ok(dir.path(), &["inspect", "m.tdm"]);
    assert!(inspect.contains("H = 128, B = 3"), "{inspect}");
    assert!(inspect.contains("116482 (465928 bytes"), "{inspect}");
    assert!(inspect.contains("DDPM"), "{inspect}");
}

#[test]
fn imported_model_predicts_pytorchs_noise() {
    let dir = with_model();
    let (model, _) = modelfile::load::<128, 3, SeedModel>(&dir.path().join("m.tdm")).unwrap();
    let rows = csv::read_rows::<5>(&fixture("eps_ref.csv")).unwrap();
    assert_eq!(rows.len(), 512);
    let worst = rows
        .iter()
        .map(|&[x0, x1, t, e0, e1]| {
            let temb = model.time_embedding(t / 1000.0);
            let eps = model.predict_noise([x0, x1], &temb);
            (eps[0] - e0).abs().max((eps[1] - e1).abs())
        })
        .fold(0.0, f32::max);
    assert!(worst < 2e-5, "max |eps - torch| = {worst}");
}

#[test]
fn samples_are_the_cores_bits_in_index_order() {
    let dir = with_model();
    ok(
        dir.path(),
        &[
            "sample",
            "--model",
            "m.tdm",
            "-n",
            "37",
            "--seed",
            "5",
            "--sampler",
            "ddim",
            "--steps",
            "4",
            "--eta",
            "0.5",
            "--spacing",
            "leading",
            "--threads",
            "2",
            "--out",
            "s.csv",
        ],
    );
    let written = std::fs::read_to_string(dir.path().join("s.csv")).unwrap();
    assert!(written.starts_with("x,y\n"));
    let got = csv::read_points(&dir.path().join("s.csv")).unwrap();
    let (model, _) = modelfile::load::<128, 3, SeedModel>(&dir.path().join("m.tdm")).unwrap();
    let sampler = Sampler::Ddim {
        steps: 4,
        eta: 0.5,
        spacing: Spacing::Leading,
        clip: false,
    };
    let want: Vec<[f32; 2]> = (0..37)
        .map(|i| sample(&*model, &schedule(), &sampler, 5, i))
        .collect();
    assert_eq!(bits(&got), bits(&want));
}

#[test]
fn sampler_defaults_to_the_model_files() {
    let dir = with_model();
    ok(
        dir.path(),
        &["sample", "--model", "m.tdm", "-n", "3", "--out", "s.csv"],
    );
    let got = csv::read_points(&dir.path().join("s.csv")).unwrap();
    let model: Box<SeedModel> = modelfile::load(&dir.path().join("m.tdm")).unwrap().0;
    let want: Vec<[f32; 2]> = (0..3)
        .map(|i| sample(&*model, &schedule(), &Sampler::Ddpm, 42, i))
        .collect();
    assert_eq!(bits(&got), bits(&want));

    // A model imported with another default sampler: inspect names it, sample runs it.
    let from = fixture("torch_model_3k.safetensors");
    let from = from.to_str().unwrap();
    let import = [
        "import",
        "--from",
        from,
        "--out",
        "dpm.tdm",
        "--default-sampler",
        "dpmpp-3m",
        "--default-steps",
        "15",
        "--default-spacing",
        "karras",
    ];
    ok(dir.path(), &import);
    let inspect = ok(dir.path(), &["inspect", "dpm.tdm"]);
    assert!(
        inspect.contains("DPM-Solver++(3M), 15 steps, karras spacing"),
        "{inspect}"
    );
    ok(
        dir.path(),
        &["sample", "--model", "dpm.tdm", "-n", "3", "--out", "d.csv"],
    );
    let got = csv::read_points(&dir.path().join("d.csv")).unwrap();
    let dpm = Sampler::Multistep {
        solver: Solver::DpmPp3m,
        steps: 15,
        spacing: Spacing::Karras,
    };
    let want: Vec<[f32; 2]> = (0..3)
        .map(|i| sample(&*model, &schedule(), &dpm, 42, i))
        .collect();
    assert_eq!(bits(&got), bits(&want));
}

#[test]
fn train_writes_the_default_sampler_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let train = [
        "train",
        "--steps",
        "3",
        "--hidden",
        "32",
        "--out",
        "t.tdm",
        "--default-sampler",
        "dpmpp-2m-sde",
        "--default-steps",
        "12",
    ];
    ok(dir.path(), &train);
    let inspect = ok(dir.path(), &["inspect", "t.tdm"]);
    assert!(
        inspect.contains("SDE-DPM-Solver++(2M), 12 steps, logsnr spacing"),
        "{inspect}"
    );
}

#[test]
fn x_init_gives_the_starting_points_and_the_count() {
    let dir = with_model();
    let starts = [[0.5f32, -1.25], [2.0, 0.125], [-0.75, 0.0]];
    // The model's D columns (another width is one line: tests/cli/data_input.rs).
    std::fs::write(
        dir.path().join("init.csv"),
        "x0,x1\n0.5,-1.25\n2,0.125\n-0.75,0\n",
    )
    .unwrap();
    ok(
        dir.path(),
        &[
            "sample",
            "--model",
            "m.tdm",
            "--x-init",
            "init.csv",
            "--sampler",
            "ddim",
            "--steps",
            "5",
            "--seed",
            "1",
            "--out",
            "s.csv",
        ],
    );
    let got = csv::read_points(&dir.path().join("s.csv")).unwrap();
    let model: Box<SeedModel> = modelfile::load(&dir.path().join("m.tdm")).unwrap().0;
    let sampler = Sampler::Ddim {
        steps: 5,
        eta: 0.0,
        spacing: Spacing::Trailing,
        clip: false,
    };
    let want: Vec<[f32; 2]> = (0..3)
        .map(|i| sample_from(&*model, &schedule(), &sampler, starts[i], 1, i as u64))
        .collect();
    assert_eq!(bits(&got), bits(&want));
}

/// An integer model file decoded by the core itself.
fn core_qmodel(path: &Path) -> (Box<QSeedModel>, Header) {
    let bytes = std::fs::read(path).unwrap();
    let mut q = Box::new(QModel::ZERO);
    let header = tinyddpm_core::file::decode_into(&bytes, &mut *q).unwrap();
    (q, header)
}

/// Samples `0..n` of `seed` on the integer model by the core's chain, set up as the core's
/// `sample` / `sample_from` set up the float one: sample `i` draws from the stream
/// `(seed, i)`, x_T is its first Gaussian pair (drawn even when `starts` gives x_T).
fn core_int_samples(
    q: &QSeedModel,
    sampler: &Sampler,
    starts: Option<&[[f32; 2]]>,
    seed: u64,
    n: usize,
) -> Vec<[f32; 2]> {
    let schedule = schedule();
    (0..n)
        .into_par_iter()
        .map(|i| {
            let mut noise = [NoiseStream::new(seed, i as u64)];
            let x_t = gaussian_lanes::<f32>(&mut noise);
            let x_t = starts.map_or(x_t, |s| s[i]);
            chain(q, sampler.steps(&schedule), x_t, &mut noise, |_, _| ())
        })
        .collect()
}

const SDE_20: Sampler = Sampler::Multistep {
    solver: Solver::DpmPp2mSde,
    steps: 20,
    spacing: Spacing::LogSnr,
};

/// `sample` on an integer model file writes the core's integer chain bit for bit: the file's
/// default sampler (DDPM) and `dpmpp-2m-sde`, from noise and from `--x-init`, streamed in
/// chunks of 7 (the last one short) and on 2 threads.
#[test]
fn integer_samples_are_the_cores_integer_chain() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("q.tdm"), q_model_bytes()).unwrap();
    let (q, header) = core_qmodel(&d.join("q.tdm"));
    assert_eq!(header.sampler, Sampler::Ddpm);
    let starts: Vec<[f32; 2]> = (0..12).map(|i| [i as f32 / 4.0 - 1.5, 0.75]).collect();
    csv::write_points(&d.join("init.csv"), &starts).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_tinyddpm"))
            .args([
                "sample",
                "--model",
                "q.tdm",
                "--out",
                "s.csv",
                "--threads",
                "2",
            ])
            .args(args)
            .env("TINYDDPM_SAMPLE_CHUNK", "7")
            .current_dir(d)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        csv::read_points(&d.join("s.csv")).unwrap()
    };
    let sde = ["--sampler", "dpmpp-2m-sde", "--steps", "20"];
    let check = |args: &[&str], sampler: Sampler, init: Option<&[[f32; 2]]>, seed, n| {
        let got = run(args);
        let want = core_int_samples(&q, &sampler, init, seed, n);
        assert!(want.iter().flatten().all(|v| v.is_finite()));
        assert_eq!(bits(&got), bits(&want), "{args:?}");
    };
    check(&["-n", "16", "--seed", "5"], header.sampler, None, 5, 16);
    let sde_noise = [&sde[..], &["-n", "37", "--seed", "9"]].concat();
    check(&sde_noise, SDE_20, None, 9, 37);
    let ddpm_given = ["--x-init", "init.csv", "--seed", "3"];
    check(&ddpm_given, Sampler::Ddpm, Some(&starts), 3, 12);
    let sde_given = [&sde[..], &["--x-init", "init.csv"]].concat();
    check(&sde_given, SDE_20, Some(&starts), 42, 12);
}

/// An integer model runs on the CPU whatever `--device` says, with one note, and gives the
/// CPU's bits (with or without a GPU here).
#[test]
fn integer_models_sample_on_the_cpu_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("q.tdm"), q_model_bytes()).unwrap();
    let args = ["sample", "--model", "q.tdm", "-n", "5", "--sampler", "ddim"];
    ok(d, &[&args[..], &["--out", "cpu.csv"]].concat());
    for device in ["cuda", "auto"] {
        let out = tinyddpm(
            d,
            &[&args[..], &["--device", device, "--out", "d.csv"]].concat(),
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(
            text(&out.stderr).trim_end(),
            "note: integer models run on the CPU: the GPU kernels run float models only"
        );
        assert_eq!(
            std::fs::read(d.join("d.csv")).unwrap(),
            std::fs::read(d.join("cpu.csv")).unwrap()
        );
    }
}

/// The figures that read a model file take an integer one; `plot compare` draws two sets.
#[test]
fn integer_model_figures_and_two_sets_compared() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("q.tdm"), q_model_bytes()).unwrap();
    let reverse = ["plot", "reverse", "--model", "q.tdm", "-n", "40"];
    ok(
        d,
        &[
            &reverse[..],
            &["--sampler", "dpmpp-2m-sde", "--out", "r.png"],
        ]
        .concat(),
    );
    ok(
        d,
        &["plot", "forward", "--model", "q.tdm", "--out", "f.png"],
    );
    ok(
        d,
        &[
            "sample",
            "--model",
            "q.tdm",
            "-n",
            "50",
            "--sampler",
            "ddim",
            "--out",
            "i.csv",
        ],
    );
    std::fs::write(d.join("m.tdm"), model_bytes()).unwrap();
    ok(
        d,
        &[
            "sample",
            "--model",
            "m.tdm",
            "-n",
            "50",
            "--sampler",
            "ddim",
            "--out",
            "f.csv",
        ],
    );
    let compare = [
        "plot",
        "compare",
        "--samples",
        "i.csv",
        "--against",
        "f.csv",
    ];
    ok(
        d,
        &[
            &compare[..],
            &["--labels", "float", "integer", "--out", "c.png"],
        ]
        .concat(),
    );
    for png in ["r", "f", "c"] {
        let bytes = std::fs::read(d.join(format!("{png}.png"))).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{png}");
    }
}

#[test]
fn eval_scores_true_samples_near_zero_and_garbage_high() {
    let dir = tempfile::tempdir().unwrap();
    let truth = data::true_samples(data::DataSet::SwissRoll, 3000, 77);
    csv::write_points(&dir.path().join("true.csv"), &truth).unwrap();
    let json = ok(dir.path(), &["eval", "--samples", "true.csv", "--json"]);
    assert!(json_number(&json, "mean_distance") < 1e-4, "{json}");
    assert!(json_number(&json, "p95_distance") < 1e-4, "{json}");
    assert!(json_number(&json, "energy_distance") < 3e-3, "{json}");
    assert!(json_number(&json, "coverage_ks") < 0.05, "{json}");
    assert_eq!(json_number(&json, "energy_samples"), 2000.0);
    let shifted: Vec<[f32; 2]> = truth.iter().map(|p| [p[0] + 0.5, p[1] * 3.0]).collect();
    csv::write_points(&dir.path().join("bad.csv"), &shifted).unwrap();
    let json = ok(dir.path(), &["eval", "--samples", "bad.csv", "--json"]);
    assert!(json_number(&json, "mean_distance") > 0.1, "{json}");
    assert!(json_number(&json, "energy_distance") > 0.1, "{json}");
    let table = ok(dir.path(), &["eval", "--samples", "bad.csv"]);
    assert!(
        table.contains("mean distance") && table.contains("coverage KS"),
        "{table}"
    );
}

#[test]
fn train_writes_model_and_loss_log_and_resumes_bit_identically() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let common = ["--batch", "16", "--hidden", "32", "--blocks", "2"];
    let run = |extra: &[&str]| ok(d, &[&["train"][..], &common, extra].concat());
    run(&["--steps", "20", "--out", "straight.tdm"]);
    let losses = csv::read_losses(&d.join("straight.losses.csv")).unwrap();
    assert_eq!(losses.len(), 20);
    assert_eq!(losses[19].0, 19);
    run(&[
        "--steps",
        "10",
        "--out",
        "half.tdm",
        "--checkpoint",
        "run.ckpt",
    ]);
    ok(
        d,
        &[
            "train",
            "--steps",
            "20",
            "--resume",
            "run.ckpt",
            "--out",
            "resumed.tdm",
            "--losses",
            "half.losses.csv",
        ],
    );
    let straight = std::fs::read(d.join("straight.tdm")).unwrap();
    assert!(straight == std::fs::read(d.join("resumed.tdm")).unwrap());
    let resumed_losses = csv::read_losses(&d.join("half.losses.csv")).unwrap();
    assert_eq!(bits_of(&resumed_losses), bits_of(&losses));
    let inspect = ok(d, &["inspect", "resumed.tdm"]);
    assert!(inspect.contains("H = 32, B = 2"), "{inspect}");
}

fn bits_of(losses: &[(u64, f32)]) -> Vec<(u64, u32)> {
    losses.iter().map(|l| (l.0, l.1.to_bits())).collect()
}

#[test]
fn figures_are_written_as_png() {
    let dir = with_model();
    let d = dir.path();
    ok(
        d,
        &["train", "--steps", "5", "--batch", "8", "--out", "t.tdm"],
    );
    ok(
        d,
        &[
            "sample",
            "--model",
            "m.tdm",
            "-n",
            "40",
            "--sampler",
            "ddim",
            "--steps",
            "3",
            "--out",
            "s.csv",
        ],
    );
    ok(
        d,
        &[
            "plot",
            "loss",
            "--losses",
            "t.losses.csv",
            "--out",
            "loss.png",
        ],
    );
    ok(
        d,
        &[
            "plot",
            "samples",
            "--samples",
            "s.csv",
            "--out",
            "samples.png",
        ],
    );
    ok(
        d,
        &[
            "plot",
            "compare",
            "--samples",
            "s.csv",
            "--out",
            "compare.png",
        ],
    );
    ok(d, &["plot", "forward", "-n", "50", "--out", "forward.png"]);
    ok(
        d,
        &[
            "plot",
            "reverse",
            "--model",
            "m.tdm",
            "-n",
            "20",
            "--sampler",
            "ddim",
            "--steps",
            "10",
            "--out",
            "reverse.png",
        ],
    );
    for png in ["loss", "samples", "compare", "forward", "reverse"] {
        let bytes = std::fs::read(d.join(format!("{png}.png"))).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{png}");
    }
}

#[test]
fn demo_writes_everything_into_one_folder() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(
        dir.path(),
        &["demo", "--steps", "10", "-n", "30", "--out-dir", "run"],
    );
    assert!(out.contains("run"), "{out}");
    for name in [
        "model.tdm",
        "losses.csv",
        "samples.csv",
        "metrics.json",
        "loss.png",
        "samples.png",
        "compare.png",
        "forward.png",
        "reverse.png",
    ] {
        assert!(dir.path().join("run").join(name).exists(), "{name}");
    }
    let metrics = std::fs::read_to_string(dir.path().join("run/metrics.json")).unwrap();
    assert_eq!(json_number(&metrics, "samples"), 30.0);
}

/// `demo --data NAME` trains on the set, and scores and draws against its fresh samples: the
/// generic scores (no curve to measure a distance to), the integer model calibrated on it.
#[test]
fn demo_data_trains_scores_and_quantizes_on_the_set() {
    use tinyddpm::data::DataSet;
    use tinyddpm::quantize::CalibrationData;
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "demo",
        "--data",
        "moons",
        "--steps",
        "10",
        "-n",
        "40",
        "--quantize",
    ];
    let out = ok(dir.path(), &[&args[..], &["--out-dir", "run"]].concat());
    assert!(out.contains("fresh samples of moons"), "{out}");
    let run = dir.path().join("run");
    let metrics = std::fs::read_to_string(run.join("metrics.json")).unwrap();
    assert!(!metrics.contains("mean_distance"), "{metrics}");
    let samples = csv::read_points(&run.join("samples.csv")).unwrap();
    let fresh = data::true_samples(DataSet::Moons, 40, 0);
    let want = tinyddpm::scores::compare(
        &tinyddpm::scores::Points::from_pairs(&samples).unwrap(),
        &tinyddpm::scores::Points::from_pairs(&fresh).unwrap(),
    )
    .unwrap();
    assert_eq!(json_number(&metrics, "sliced_w2"), want.sliced_w2);
    let (model, _) = modelfile::load::<128, 3, SeedModel>(&run.join("model.tdm")).unwrap();
    let calibration = Calibration {
        data: CalibrationData::Set(DataSet::Moons),
        ..Calibration::default()
    };
    let (want, _) = quantize_model(&*model, &schedule(), &calibration).unwrap();
    let (q, _) = core_qmodel(&run.join("model.q.tdm"));
    assert!(q == want, "model.q.tdm is not calibrated on the moons");
}

/// `score` writes the library's scores (the core's `anomaly_score` of each point, in order),
/// in data units for a model with units; points of another width are one line.
#[test]
fn score_writes_each_points_anomaly_score() {
    use tinyddpm::data::DataSet;
    use tinyddpm_core::{Data, Source, Units, anomaly_score};
    let dir = with_model();
    let d = dir.path();
    let (model, header) = modelfile::load::<128, 3, SeedModel>(&d.join("m.tdm")).unwrap();
    let units = Units::new(&[3.0, 0.25], &[-1.0, 8.0]).unwrap();
    let data = Data {
        dim: 2,
        source: Source::File,
        units: Some(units),
    };
    modelfile::save(&d.join("u.tdm"), &*model, &header.with_data(data)).unwrap();
    let points = data::true_samples(DataSet::SwissRoll, 50, 2);
    csv::write_points(&d.join("p.csv"), &points).unwrap();
    for (name, units) in [("m.tdm", None), ("u.tdm", Some(&units))] {
        ok(
            d,
            &[
                "score", "--model", name, "--points", "p.csv", "--seed", "3", "--out", "s.csv",
            ],
        );
        let written = std::fs::read_to_string(d.join("s.csv")).unwrap();
        let mut lines = written.lines();
        assert_eq!(lines.next(), Some("score"));
        let got: Vec<f32> = lines.map(|l| l.parse().unwrap()).collect();
        let want: Vec<f32> = (0..points.len())
            .map(|i| anomaly_score(&*model, &schedule(), units, 3, i as u64, points[i]))
            .collect();
        assert!(got == want, "{name}");
    }
    std::fs::write(d.join("three.csv"), "1,2,3\n4,5,6\n").unwrap();
    let out = tinyddpm(
        d,
        &[
            "score",
            "--model",
            "m.tdm",
            "--points",
            "three.csv",
            "--out",
            "t.csv",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("--points has 3 columns, the model's data 2"),
        "{stderr}"
    );
    assert!(!d.join("t.csv").exists());
}

/// `eval --data NAME` scores against fresh samples of the set; samples of one set score
/// better against it than against another; `plot compare/forward --data` and `plot sets`
/// draw the sets.
#[test]
fn eval_and_plot_take_a_built_in_set() {
    use tinyddpm::data::DataSet;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    csv::write_points(
        &d.join("moons.csv"),
        &data::true_samples(DataSet::Moons, 500, 1),
    )
    .unwrap();
    let eval = |set: &str| {
        let out = ok(
            d,
            &[
                "eval",
                "--samples",
                "moons.csv",
                "--data",
                set,
                "--json",
                "--seed",
                "4",
            ],
        );
        json_number(&out, "sliced_w2")
    };
    let fresh = data::true_samples(DataSet::Moons, 500, 4);
    let want = tinyddpm::scores::compare(
        &tinyddpm::scores::Points::from_pairs(&data::true_samples(DataSet::Moons, 500, 1)).unwrap(),
        &tinyddpm::scores::Points::from_pairs(&fresh).unwrap(),
    )
    .unwrap();
    assert_eq!(eval("moons"), want.sliced_w2);
    assert!(eval("moons") * 5.0 < eval("circles"));
    let table = ok(d, &["eval", "--samples", "moons.csv", "--data", "moons"]);
    assert!(table.contains("fresh samples of moons, seed 0"), "{table}");
    ok(
        d,
        &[
            "plot",
            "compare",
            "--samples",
            "moons.csv",
            "--data",
            "moons",
            "--out",
            "c.png",
        ],
    );
    ok(
        d,
        &[
            "plot", "forward", "--data", "pinwheel", "-n", "300", "--out", "f.png",
        ],
    );
    ok(d, &["plot", "sets", "-n", "200", "--out", "sets.png"]);
    std::fs::create_dir(d.join("runs")).unwrap();
    std::fs::copy(d.join("moons.csv"), d.join("runs/moons.csv")).unwrap();
    ok(
        d,
        &[
            "plot",
            "sets",
            "--samples-from",
            "runs",
            "--out",
            "some.png",
        ],
    );
    for png in ["c.png", "f.png", "sets.png", "some.png"] {
        assert!(
            std::fs::read(d.join(png)).unwrap().starts_with(b"\x89PNG"),
            "{png}"
        );
    }
    std::fs::create_dir(d.join("empty")).unwrap();
    let out = tinyddpm(
        d,
        &["plot", "sets", "--samples-from", "empty", "--out", "e.png"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("holds no NAME.csv of a built-in set"));
    assert!(!d.join("e.png").exists());
}

/// `demo --quantize` writes the library's integer model of the trained model (default
/// calibration), the core's integer chain from it (DDPM, the demo's seed), both scores and
/// the side-by-side figure.
#[test]
fn demo_quantize_adds_the_integer_model_and_its_samples() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "demo",
        "--steps",
        "10",
        "-n",
        "24",
        "--seed",
        "3",
        "--quantize",
    ];
    let out = ok(dir.path(), &[&args[..], &["--out-dir", "run"]].concat());
    assert!(out.contains("integer model (model.q.tdm):"), "{out}");
    let run = dir.path().join("run");
    for name in [
        "model.q.tdm",
        "samples.q.csv",
        "metrics.q.json",
        "float_vs_int.png",
    ] {
        assert!(run.join(name).exists(), "{name}");
    }
    let (model, header) = modelfile::load::<128, 3, SeedModel>(&run.join("model.tdm")).unwrap();
    let (want, _) = quantize_model(&*model, &schedule(), &Calibration::default()).unwrap();
    let (q, q_header) = core_qmodel(&run.join("model.q.tdm"));
    assert!(q == want, "model.q.tdm is not the library's quantization");
    assert_eq!(q_header, header);
    let got = csv::read_points(&run.join("samples.q.csv")).unwrap();
    assert_eq!(
        bits(&got),
        bits(&core_int_samples(&q, &Sampler::Ddpm, None, 3, 24))
    );
    let metrics = std::fs::read_to_string(run.join("metrics.q.json")).unwrap();
    assert_eq!(json_number(&metrics, "samples"), 24.0);
    let want = tinyddpm::eval::evaluate(&got, &data::true_samples(data::DataSet::SwissRoll, 24, 0))
        .unwrap();
    assert!((json_number(&metrics, "mean_distance") - want.mean_distance).abs() < 1e-12);
}

/// Bytes of `m.tdm`, the PyTorch fixture model imported (made once, by the binary).
mod any_shape;
mod class_of;
mod classes;
mod data_input;
mod data_sets;
mod round_one;
mod round_two;
mod table;
mod train_data;
use table::*;

#[test]
fn an_output_symlink_is_written_through_to_its_target() {
    let dir = with_model();
    let d = dir.path();
    std::fs::create_dir(d.join("real")).unwrap();
    std::os::unix::fs::symlink("real/s.csv", d.join("link.csv")).unwrap();
    let args = ["--sampler", "ddim", "--steps", "2", "--out", "link.csv"];
    ok(
        d,
        &[&["sample", "--model", "m.tdm", "-n", "3"][..], &args].concat(),
    );
    assert!(
        std::fs::symlink_metadata(d.join("link.csv"))
            .unwrap()
            .is_symlink()
    );
    assert_eq!(csv::read_points(&d.join("real/s.csv")).unwrap().len(), 3);
    ok(
        d,
        &[&["sample", "--model", "m.tdm", "-n", "4"][..], &args].concat(),
    );
    assert!(
        std::fs::symlink_metadata(d.join("link.csv"))
            .unwrap()
            .is_symlink()
    );
    assert_eq!(csv::read_points(&d.join("real/s.csv")).unwrap().len(), 4);
}

#[test]
fn a_write_removes_the_temporaries_killed_writers_of_its_target_left() {
    let dir = with_model();
    let d = dir.path();
    // Left by a kill -9 of earlier versions (NAME.PID.tmp) and of this one
    // (NAME.PID.XXXXXX.tmp); a pid above Linux's maximum (2^22) is no running process.
    let stale = [
        "e.safetensors.99999999.tmp",
        "e.safetensors.99999999.aB3dE6.tmp",
    ];
    let kept = ["other.safetensors.99999999.tmp", "e.safetensors.mine.tmp"];
    for name in stale.iter().chain(&kept) {
        std::fs::write(d.join(name), vec![0u8; 1000]).unwrap();
    }
    ok(d, &["export", "--model", "m.tdm", "--out", "e.safetensors"]);
    for name in stale {
        assert!(!d.join(name).exists(), "{name} is still there");
    }
    for name in kept {
        assert!(d.join(name).exists(), "{name} was removed");
    }
}

#[test]
fn sample_streams_chunks_with_the_librarys_bits() {
    let dir = with_model();
    let d = dir.path();
    let (model, _) = modelfile::load::<128, 3, SeedModel>(&d.join("m.tdm")).unwrap();
    let sampler = Sampler::Ddim {
        steps: 3,
        eta: 0.5,
        spacing: Spacing::Trailing,
        clip: false,
    };
    let run = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_tinyddpm"))
            .args([
                "sample",
                "--model",
                "m.tdm",
                "--sampler",
                "ddim",
                "--steps",
                "3",
            ])
            .args(["--eta", "0.5", "--seed", "9", "--out", "s.csv"])
            .args(extra)
            .env("TINYDDPM_SAMPLE_CHUNK", "7")
            .current_dir(d)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        csv::read_points(&d.join("s.csv")).unwrap()
    };
    // 50 samples in chunks of 7: the last one short, every chunk starting at its index.
    let got = run(&["-n", "50"]);
    let want = batch::sample(
        &Request {
            model: &*model,
            schedule: &schedule(),
            sampler: &sampler,
            init: Init::Noise,
            seed: 9,
            first: 0,
            count: 50,
        },
        1,
        &|_| {},
    )
    .expect("worker threads");
    assert_eq!(bits(&got), bits(&want));
    let starts: Vec<[f32; 2]> = (0..20).map(|i| [i as f32 / 10.0, -1.0]).collect();
    csv::write_points(&d.join("init.csv"), &starts).unwrap();
    let got = run(&["--x-init", "init.csv"]);
    let given = Init::Given(starts.as_flattened());
    let want = batch::sample(
        &Request {
            model: &*model,
            schedule: &schedule(),
            sampler: &sampler,
            init: given,
            seed: 9,
            first: 0,
            count: 20,
        },
        1,
        &|_| {},
    )
    .expect("worker threads");
    assert_eq!(bits(&got), bits(&want));
}

#[test]
fn more_threads_than_cores_are_capped_with_a_note() {
    let dir = with_model();
    let args = [
        "-n",
        "3",
        "--sampler",
        "ddim",
        "--steps",
        "2",
        "--out",
        "s.csv",
    ];
    let out = tinyddpm(
        dir.path(),
        &[
            &["sample", "--model", "m.tdm", "--threads", "100000"][..],
            &args,
        ]
        .concat(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let note = text(&out.stderr);
    assert!(
        note.contains("note: --threads 100000 is more than the"),
        "{note}"
    );
}

#[test]
fn models_that_overflow_import_and_inspect_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut huge = Box::new(SeedModel::ZERO);
    tinyddpm_core::file::decode_into(&huge_bias_model(), &mut *huge).unwrap();
    std::fs::write(
        d.join("huge.safetensors"),
        state_dict::export(&tinyddpm::flat::FlatModel::of(&*huge)).unwrap(),
    )
    .unwrap();
    for args in [
        &["import", "--from", "huge.safetensors", "--out", "h.tdm"][..],
        &["inspect", "h.tdm"],
    ] {
        let out = tinyddpm(d, args);
        let stderr = text(&out.stderr);
        assert!(out.status.success(), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("warning: ") && stderr.contains("output is not finite"),
            "{stderr}"
        );
    }
    std::fs::write(d.join("nan.tdm"), nan_weight_model()).unwrap();
    let out = tinyddpm(d, &["inspect", "nan.tdm"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success());
    assert!(
        stdout.contains("CRC-32 ok; 1 weight is not finite (the first is number 116481)"),
        "{stdout}"
    );
    assert!(text(&out.stderr).contains("warning: nan.tdm has weights that are not finite"));
}

/// `quantize` calibrates on the model's own data: a model of the moons gets the library's
/// integer model calibrated on fresh moons (not the Swiss roll's); a model of a file's points
/// needs them (`--calibration-data`, in data units, mapped into the model's space by its
/// units) and says so in one line without them.
#[test]
fn quantize_calibrates_on_the_models_own_data() {
    use tinyddpm::data::DataSet;
    use tinyddpm::quantize::CalibrationData;
    use tinyddpm_core::{Data, Source, Units};
    let dir = with_model();
    let d = dir.path();
    let (model, header) = modelfile::load::<128, 3, SeedModel>(&d.join("m.tdm")).unwrap();
    let moons = Data {
        dim: 2,
        source: Source::Builtin(DataSet::Moons.id()),
        units: None,
    };
    modelfile::save(&d.join("moons.tdm"), &*model, &header.with_data(moons)).unwrap();
    let args = ["--calibration", "2000", "--seed", "5"];
    ok(
        d,
        &[
            &["quantize", "--model", "moons.tdm", "--out", "mq.tdm"][..],
            &args,
        ]
        .concat(),
    );
    let on = |data| Calibration {
        samples: 2000,
        seed: 5,
        data,
    };
    let (want, _) = quantize_model(
        &*model,
        &schedule(),
        &on(CalibrationData::Set(DataSet::Moons)),
    )
    .unwrap();
    let (roll, _) = quantize_model(
        &*model,
        &schedule(),
        &on(CalibrationData::Set(DataSet::SwissRoll)),
    )
    .unwrap();
    let (got, _) = modelfile::load::<128, 3, QModel<128, 3>>(&d.join("mq.tdm")).unwrap();
    assert!(*got == *want && *got != *roll);

    let units = Units::new(&[2.0, 0.5], &[10.0, -3.0]).unwrap();
    let file = Data {
        dim: 2,
        source: Source::File,
        units: Some(units),
    };
    modelfile::save(&d.join("file.tdm"), &*model, &header.with_data(file)).unwrap();
    let out = tinyddpm(d, &["quantize", "--model", "file.tdm", "--out", "fq.tdm"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("trained on points from a file"), "{stderr}");
    assert!(!d.join("fq.tdm").exists());
    // Points in data units: x = 10 + 2·m₀, y = −3 + 0.5·m₁ for model-space m on the roll.
    let roll_points = data::true_samples(DataSet::SwissRoll, 300, 9);
    let in_data: Vec<[f32; 2]> = roll_points.iter().map(|&p| units.to_data(p)).collect();
    csv::write_points(&d.join("pts.csv"), &in_data).unwrap();
    let flags = ["--calibration-data", "pts.csv"];
    ok(
        d,
        &[
            &["quantize", "--model", "file.tdm", "--out", "fq.tdm"][..],
            &args,
            &flags,
        ]
        .concat(),
    );
    let mut mapped = in_data.clone();
    mapped.iter_mut().for_each(|p| units.to_model(p));
    let (want, _) = quantize_model(
        &*model,
        &schedule(),
        &on(CalibrationData::Points(
            tinyddpm::scores::Points::from_pairs(&mapped).unwrap(),
        )),
    )
    .unwrap();
    let (got, _) = modelfile::load::<128, 3, QModel<128, 3>>(&d.join("fq.tdm")).unwrap();
    assert!(*got == *want);
    // Three columns for a model of two: one line.
    std::fs::write(d.join("three.csv"), "1,2,3\n4,5,6\n").unwrap();
    let out = tinyddpm(
        d,
        &[
            "quantize",
            "--model",
            "file.tdm",
            "--out",
            "f3.tdm",
            "--calibration-data",
            "three.csv",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--calibration-data has 3 columns, the model's data 2"),
        "{}",
        text(&out.stderr)
    );
}

/// `quantize` writes exactly the library's integer model for the same calibration, keeps the
/// float model's header, and prints the library's report; `inspect` shows each layer's
/// exponents and weight scales as the quantizer chose them.
#[test]
fn quantize_writes_the_librarys_model_and_inspect_shows_its_scales() {
    let dir = with_model();
    let d = dir.path();
    let calibration = ["--calibration", "3000", "--seed", "5"];
    let args = [
        &["quantize", "--model", "m.tdm", "--out", "q.tdm"][..],
        &calibration,
    ];
    let printed = ok(d, &args.concat());
    let (model, header) = modelfile::load::<128, 3, SeedModel>(&d.join("m.tdm")).unwrap();
    let calibration = Calibration {
        samples: 3000,
        seed: 5,
        ..Calibration::default()
    };
    let (want, report) = quantize_model(&*model, &schedule(), &calibration).unwrap();
    assert!(printed.contains(&report.to_string()), "{printed}");
    let (got, got_header) = modelfile::load::<128, 3, QModel<128, 3>>(&d.join("q.tdm")).unwrap();
    assert!(
        *got == *want,
        "the file holds another model than the library's"
    );
    assert_eq!(
        got_header, header,
        "T, schedule and default sampler are the float model's"
    );

    let shown = ok(d, &["inspect", "q.tdm"]);
    let len = std::fs::read(d.join("q.tdm")).unwrap().len();
    // H = 128, B = 3: weights 1·H + H·H + 2·H + 6·H·H + H·2; channels 3·H + 6·H + 2
    let (weights, channels) = (128 + 7 * 128 * 128 + 4 * 128, 9 * 128 + 2);
    for line in [
        format!("q.tdm ({len} bytes)"),
        "tinyddpm model file, version 2, CRC-32 ok\n".to_string(),
        "kind             integer".to_string(),
        format!(
            "{weights} int8 weights ({weights} bytes), {channels} channels ({} bytes",
            9 * channels
        ),
        "default sampler  DDPM".to_string(),
        format!(
            "residual stream 2^-{}, predicted noise 2^-{}",
            report.stream.exp, report.output.exp
        ),
    ] {
        assert!(shown.contains(&line), "{shown} lacks {line:?}");
    }
    let row = |name: String| -> Vec<String> {
        let line = shown.lines().find(|l| l.starts_with(&format!("{name} ")));
        let line = line.unwrap_or_else(|| panic!("{shown} lacks {name}"));
        line.split_whitespace().map(String::from).collect()
    };
    for l in &report.layers {
        let fields = row(l.layer.to_string());
        assert_eq!(fields[1], format!("2^-{}", l.input.exp), "{fields:?}");
        for (k, field) in [4, 6].into_iter().enumerate() {
            let shown: f64 = fields[field].parse().unwrap();
            let chosen = l.weight_scale[k];
            assert!(
                (shown / chosen - 1.0).abs() < 1e-3,
                "{fields:?} vs {chosen}"
            );
        }
    }
    for g in &report.gelus {
        let fields = row(g.after.to_string());
        assert_eq!(fields[2], format!("2^-{}", g.pre.exp), "{fields:?}");
        assert_eq!(fields[3], format!("2^-{}", g.post_exp), "{fields:?}");
    }
}

#[test]
fn an_integer_model_out_of_range_inspects_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("q.tdm"), bad_shift_q_model()).unwrap();
    let out = tinyddpm(d, &["inspect", "q.tdm"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains(
            "CRC-32 ok; model file holds an invalid integer model: Output has a weight of \
             -128, a bias beyond 2^30 or a shift above 62: it cannot be used"
        ),
        "{stdout}"
    );
    assert!(
        !stdout.contains("weight scales"),
        "no layers of an invalid model: {stdout}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("warning: q.tdm holds parameters out of their range"));
}

#[test]
fn inspect_shows_what_a_checkpoint_holds() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let args = [
        "--steps", "20", "--batch", "8", "--hidden", "32", "--lr", "0.002",
    ];
    let more = [
        "--seed",
        "7",
        "--ema",
        "0.9",
        "--checkpoint",
        "c.ckpt",
        "--out",
        "t.tdm",
    ];
    ok(d, &[&["train"][..], &args, &more].concat());
    let shown = ok(d, &["inspect", "c.ckpt"]);
    for line in [
        "tinyddpm training checkpoint, version 1, CRC-32 ok\n",
        "H = 32, B = 2 residual blocks",
        "step             20 (the run was started for 20 steps)",
        "batch            8\n",
        "learning rate    0.002\n",
        "seed             7\n",
        "EMA              decay 0.9\n",
    ] {
        assert!(shown.contains(line), "{shown} lacks {line:?}");
    }
}

/// Waits (polling) until `done` holds; a run that never gets there is a failure, not a hang.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let begin = Instant::now();
    while !done() {
        assert!(
            begin.elapsed() < Duration::from_secs(600),
            "{what} never happened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The stop signals — Ctrl-C, `kill`, a closed terminal — and the exit status a shell shows
/// for each (128 + its number).
const STOP_SIGNALS: [(&str, i32); 3] = [("INT", 130), ("TERM", 143), ("HUP", 129)];

fn send(child: &std::process::Child, signal: &str) {
    // The shell's own kill: no procps needed.
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("kill -{signal} {}", child.id()))
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for `child`; returns its exit status and stderr.
fn finish(mut child: std::process::Child) -> (Option<i32>, String) {
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status.code(), stderr)
}

/// The names in `dir` and its folders, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    snapshot(dir)
        .into_keys()
        .map(|p| p.to_string_lossy().into_owned())
        .collect()
}

#[test]
fn a_stop_signal_stops_training_and_says_how_to_resume() {
    for (signal, code) in STOP_SIGNALS {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let common = ["--batch", "8", "--hidden", "32", "--checkpoint", "c.ckpt"];
        let child = Command::new(env!("CARGO_BIN_EXE_tinyddpm"))
            .args(["train", "--steps", "1000000000", "--checkpoint-every", "5"])
            .args(common)
            .args(["--out", "t.tdm"])
            .current_dir(d)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for("a checkpoint", || d.join("c.ckpt").exists());
        send(&child, signal);
        let (status, stderr) = finish(child);
        assert_eq!(status, Some(code), "SIG{signal}: {stderr}");
        let line = stderr.trim_end();
        assert_eq!(line.lines().count(), 1, "{stderr}");
        assert!(line.starts_with("error: interrupted at step "), "{line}");
        assert!(line.contains("; no model was written; the last checkpoint is c.ckpt at step "));
        assert!(
            line.ends_with(": continue with `--resume c.ckpt`"),
            "{line}"
        );
        // The partial loss log is not left, as a file or a temporary.
        assert_eq!(names_in(d), ["c.ckpt"], "SIG{signal}: only the checkpoint");
        // The checkpoint is at the step the line says, and resumes (into itself) bit for bit.
        let at: u64 = line
            .split(" at step ")
            .nth(2)
            .unwrap()
            .split(':')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(at % 5, 0);
        let steps = (at + 3).to_string();
        let resume = [
            "--resume",
            "c.ckpt",
            "--checkpoint",
            "c.ckpt",
            "--steps",
            &steps,
        ];
        ok(
            d,
            &[&["train"][..], &resume, &["--out", "resumed.tdm"]].concat(),
        );
        let straight = [
            "--steps",
            &steps,
            "--batch",
            "8",
            "--hidden",
            "32",
            "--out",
            "straight.tdm",
        ];
        ok(d, &[&["train"][..], &straight].concat());
        assert!(
            std::fs::read(d.join("resumed.tdm")).unwrap()
                == std::fs::read(d.join("straight.tdm")).unwrap()
        );
    }
}

/// `sample` of a hundred million points, under way in `d`: its temporary holds a chunk.
fn sampling(d: &Path) -> std::process::Child {
    let child = Command::new(env!("CARGO_BIN_EXE_tinyddpm"))
        .args([
            "sample",
            "--model",
            "m.tdm",
            "-n",
            "100000000",
            "--sampler",
            "ddim",
        ])
        .args(["--steps", "1", "--out", "s.csv"])
        .env("TINYDDPM_SAMPLE_CHUNK", "1000")
        .current_dir(d)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let temp_size = || {
        std::fs::read_dir(d)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .map(|e| e.metadata().map_or(0, |m| m.len()))
            .max()
            .unwrap_or(0)
    };
    wait_for("a chunk of samples", || temp_size() > 10_000);
    child
}

#[test]
fn a_stop_signal_stops_sampling_and_leaves_no_file() {
    for (signal, code) in STOP_SIGNALS {
        let dir = with_model();
        let d = dir.path();
        let child = sampling(d);
        send(&child, signal);
        let (status, stderr) = finish(child);
        assert_eq!(status, Some(code), "SIG{signal}: {stderr}");
        assert!(stderr.starts_with("error: interrupted after "), "{stderr}");
        assert!(
            stderr
                .trim_end()
                .ends_with(" of 100000000 samples; no samples were written")
        );
        assert_eq!(names_in(d), ["m.tdm"], "SIG{signal}");
    }
}

#[test]
fn a_second_ctrl_c_exits_at_once_and_still_leaves_no_file() {
    let dir = with_model();
    let d = dir.path();
    let child = sampling(d);
    send(&child, "INT");
    send(&child, "INT");
    let (status, stderr) = finish(child);
    assert_eq!(status, Some(130), "{stderr}");
    assert_eq!(names_in(d), ["m.tdm"]);
}

#[test]
fn a_stop_signal_stops_the_demo_and_leaves_no_temporary() {
    for (signal, code) in STOP_SIGNALS {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let child = Command::new(env!("CARGO_BIN_EXE_tinyddpm"))
            .args(["demo", "--steps", "1000000000", "--out-dir", "out"])
            .current_dir(d)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Training has begun once its loss log's temporary exists.
        wait_for("the loss log", || {
            names_in(d)
                .iter()
                .any(|n| n.starts_with("out/") && n.ends_with(".tmp"))
        });
        send(&child, signal);
        let (status, stderr) = finish(child);
        assert_eq!(status, Some(code), "SIG{signal}: {stderr}");
        assert!(stderr.contains("error: interrupted"), "{stderr}");
        let left: Vec<String> = names_in(d)
            .into_iter()
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "SIG{signal}: left {left:?}");
    }
}

#[test]
fn unavailable_gpu_is_one_line_and_auto_falls_back() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    if tinyddpm::cuda::probe().is_ok() {
        eprintln!("skipped: a GPU is usable here");
        return;
    }
    run_case(&Case {
        args: &[
            "train", "--steps", "2", "--batch", "4", "--device", "cuda", "--out", "t.tdm",
        ],
        code: 1,
        message: "--device cuda: no usable GPU",
        ..Case::default()
    });
    // demo trains the float model on the GPU: it is refused before any work, --quantize or not.
    run_case(&Case {
        args: &[
            "demo",
            "--steps",
            "2",
            "-n",
            "4",
            "--quantize",
            "--device",
            "cuda",
            "--out-dir",
            "run",
        ],
        code: 1,
        message: "--device cuda: no usable GPU",
        ..Case::default()
    });
    let out = tinyddpm(
        d,
        &[
            "train", "--steps", "2", "--batch", "4", "--device", "auto", "--out", "t.tdm",
        ],
    );
    assert!(out.status.success());
    assert!(text(&out.stderr).contains("running on the CPU"));
    assert!(d.join("t.tdm").exists());
}

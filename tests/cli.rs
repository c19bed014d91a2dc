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
use tinyddpm::quantize::{Calibration, layer_name, quantize};
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
    let (model, _) = modelfile::load::<128, 3>(&dir.path().join("m.tdm")).unwrap();
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
    let (model, _) = modelfile::load::<128, 3>(&dir.path().join("m.tdm")).unwrap();
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
    std::fs::write(
        dir.path().join("init.csv"),
        "x0,x1,extra\n0.5,-1.25,9\n2,0.125,9\n-0.75,0,9\n",
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
    let header = tinyddpm_core::file::decode_quant_into(&bytes, &mut q).unwrap();
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
    let truth = data::true_samples(3000, 77);
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
    let (model, header) = modelfile::load::<128, 3>(&run.join("model.tdm")).unwrap();
    let (want, _) = quantize(&*model, &schedule(), &Calibration::default()).unwrap();
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
    let want = tinyddpm::eval::evaluate(&got, &data::true_samples(24, 0)).unwrap();
    assert!((json_number(&metrics, "mean_distance") - want.mean_distance).abs() < 1e-12);
}

/// Bytes of `m.tdm`, the PyTorch fixture model imported (made once, by the binary).
fn model_bytes() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let dir = with_model();
        std::fs::read(dir.path().join("m.tdm")).unwrap()
    })
}

/// Bytes of `q.tdm`, `m.tdm` quantized (made once, by the binary).
fn q_model_bytes() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("m.tdm"), model_bytes()).unwrap();
        let args = ["--calibration", "2000", "--out", "q.tdm"];
        ok(
            dir.path(),
            &[&["quantize", "--model", "m.tdm"][..], &args].concat(),
        );
        std::fs::read(dir.path().join("q.tdm")).unwrap()
    })
}

/// `q.tdm` with `edit` applied to its bytes and the CRC recomputed.
fn edited_q_model(edit: impl FnOnce(&mut [u8])) -> Vec<u8> {
    let mut bytes = q_model_bytes().to_vec();
    edit(&mut bytes);
    let n = bytes.len() - 4;
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&bytes[..n]);
    bytes[n..].copy_from_slice(&crc.to_le_bytes());
    bytes
}

/// `q.tdm` whose last shift (the output layer's second channel, just before the 15
/// exponents and the CRC) is 63, one above the format's limit.
fn bad_shift_q_model() -> Vec<u8> {
    edited_q_model(|b| {
        let at = b.len() - 4 - 15 - 1;
        b[at] = 63;
    })
}

/// Bytes of a checkpoint of a short H = 32 run (made once, by the binary).
fn checkpoint_bytes() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let args = ["--steps", "20", "--batch", "8", "--hidden", "32"];
        let more = ["--checkpoint", "c.ckpt", "--out", "t.tdm"];
        ok(dir.path(), &[&["train"][..], &args, &more].concat());
        std::fs::read(dir.path().join("c.ckpt")).unwrap()
    })
}

/// The seed model of `m.tdm` with `edit` applied, re-encoded (a valid CRC).
fn edited_model(edit: impl FnOnce(&mut SeedModel, &mut Header)) -> Vec<u8> {
    let mut model = Box::new(SeedModel::ZERO);
    let header = tinyddpm_core::file::decode_into(model_bytes(), &mut model).unwrap();
    let mut header = header;
    edit(&mut model, &mut header);
    modelfile::encode(&model, &header).unwrap()
}

/// A model whose input and output biases are 3e38: every weight finite, so it loads, but
/// its output overflows.
fn huge_bias_model() -> Vec<u8> {
    edited_model(|m, _| {
        m.for_each_tensor_mut(|name, _, data| {
            let name = name.to_string();
            if name == "output_layer.bias" || name == "input_layer.0.bias" {
                data.fill(3e38);
            }
        })
    })
}

/// A model whose header (CRC-valid) holds betas near 1: ᾱ vanishes and sampling overflows.
fn absurd_betas_model() -> Vec<u8> {
    edited_model(|_, h| {
        h.schedule = ScheduleKind::Linear {
            beta_start: 0.99,
            beta_end: 0.999,
        }
    })
}

/// `m.tdm` with its last weight NaN and the CRC recomputed, as a bad writer would leave it.
fn nan_weight_model() -> Vec<u8> {
    let mut bytes = model_bytes().to_vec();
    let n = bytes.len();
    bytes[n - 8..n - 4].copy_from_slice(&f32::NAN.to_le_bytes());
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&bytes[..n - 4]);
    bytes[n - 4..].copy_from_slice(&crc.to_le_bytes());
    bytes
}

/// The checkpoint header as `tinyddpm::train` encodes it (postcard, after the 12-byte
/// preamble), mirrored here to craft a CRC-valid checkpoint with a hostile field.
#[derive(serde::Serialize, serde::Deserialize)]
struct CheckpointHeader {
    hidden: u32,
    blocks: u32,
    timesteps: u32,
    schedule: ScheduleKind,
    params: u64,
    step: u64,
    steps: u64,
    batch: u64,
    lr: f32,
    seed: u64,
    ema: Option<f32>,
}

/// The short run's checkpoint claiming a batch of a billion examples.
fn huge_batch_checkpoint() -> Vec<u8> {
    let bytes = checkpoint_bytes();
    let head_len = u16::from_le_bytes([bytes[10], bytes[11]]) as usize;
    let mut header: CheckpointHeader = postcard::from_bytes(&bytes[12..12 + head_len]).unwrap();
    header.batch = 1_000_000_000;
    let head = postcard::to_allocvec(&header).unwrap();
    let mut out = bytes[..10].to_vec();
    out.extend_from_slice(&(head.len() as u16).to_le_bytes());
    out.extend_from_slice(&head);
    out.extend_from_slice(&bytes[12 + head_len..bytes.len() - 4]);
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The PyTorch state dict without tensor `drop`, and with `reshape` applied.
fn state_dict(drop: &str, reshape: Option<(&str, Vec<usize>)>) -> Vec<u8> {
    let bytes = std::fs::read(fixture("torch_model_3k.safetensors")).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .filter(|(name, _)| *name != drop)
        .map(|(name, view)| {
            let shape = match &reshape {
                Some((which, shape)) if *which == name => shape.clone(),
                _ => view.shape().to_vec(),
            };
            let view =
                safetensors::tensor::TensorView::new(view.dtype(), shape, view.data()).unwrap();
            (name.to_string(), view)
        })
        .collect();
    safetensors::serialize(views, None).unwrap()
}

/// One step of a case's setup, in its folder (which always holds `m.tdm`).
#[derive(Clone, Copy)]
enum Setup {
    /// A file with these bytes.
    File(&'static str, &'static [u8]),
    /// A file with the bytes the function makes.
    Make(&'static str, fn() -> Vec<u8>),
    /// A folder.
    Dir(&'static str),
    /// A symbolic link: path, then what it points to.
    Symlink(&'static str, &'static str),
    /// A hard link: path, then the file it links.
    HardLink(&'static str, &'static str),
    /// A FIFO (named pipe).
    Fifo(&'static str),
    /// A character device like /dev/null (needs root).
    NullDevice(&'static str),
}

/// A run that must fail: `args` in a folder prepared by `setup` exits with `code` and one
/// stderr line containing `message`; afterwards every file of the folder is as it was, byte
/// for byte (symbolic links, FIFOs and devices included), no file but those in `created`
/// appeared, and no temporary file is left.
#[derive(Default)]
struct Case {
    setup: &'static [Setup],
    args: &'static [&'static str],
    code: i32,
    message: &'static str,
    created: &'static [&'static str],
    /// Needs root (device nodes): skipped, visibly, otherwise.
    root: bool,
    /// Run with `ulimit -f` of this many blocks (a full disk).
    file_limit_blocks: Option<u32>,
}

/// What a folder holds, recursively, without following links.
#[derive(Debug, PartialEq)]
enum Entry {
    File(Vec<u8>),
    Link(PathBuf),
    Dir,
    Other(String),
}

fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Entry> {
    let mut all = BTreeMap::new();
    let mut todo = vec![PathBuf::new()];
    while let Some(rel) = todo.pop() {
        for e in std::fs::read_dir(dir.join(&rel)).unwrap() {
            let e = e.unwrap();
            let path = rel.join(e.file_name());
            let kind = e.file_type().unwrap();
            let entry = if kind.is_symlink() {
                Entry::Link(std::fs::read_link(e.path()).unwrap())
            } else if kind.is_dir() {
                todo.push(path.clone());
                Entry::Dir
            } else if kind.is_file() {
                Entry::File(std::fs::read(e.path()).unwrap())
            } else {
                Entry::Other(format!("{kind:?}"))
            };
            all.insert(path, entry);
        }
    }
    all
}

/// Whether this process runs as root (a new file's owner is the effective user).
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    let file = tempfile::NamedTempFile::new().unwrap();
    file.as_file().metadata().unwrap().uid() == 0
}

/// Prepares `setup` in `dir`; false when a step cannot be made here (then skipped).
fn prepare(dir: &Path, setup: &[Setup]) -> bool {
    std::fs::write(dir.join("m.tdm"), model_bytes()).unwrap();
    for step in setup {
        let made = match *step {
            Setup::File(path, bytes) => std::fs::write(dir.join(path), bytes).is_ok(),
            Setup::Make(path, make) => std::fs::write(dir.join(path), make()).is_ok(),
            Setup::Dir(path) => std::fs::create_dir_all(dir.join(path)).is_ok(),
            Setup::Symlink(path, to) => std::os::unix::fs::symlink(to, dir.join(path)).is_ok(),
            Setup::HardLink(path, of) => std::fs::hard_link(dir.join(of), dir.join(path)).is_ok(),
            Setup::Fifo(path) => Command::new("mkfifo")
                .arg(dir.join(path))
                .status()
                .is_ok_and(|s| s.success()),
            Setup::NullDevice(path) => Command::new("mknod")
                .arg(dir.join(path))
                .args(["c", "1", "3"])
                .status()
                .is_ok_and(|s| s.success()),
        };
        if !made {
            return false;
        }
    }
    true
}

fn run_case(case: &Case) {
    let what = case.args.join(" ");
    if case.root && !is_root() {
        eprintln!("skipped (needs root): {what}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    if !prepare(d, case.setup) {
        eprintln!("skipped (its files cannot be made here): {what}");
        return;
    }
    let before = snapshot(d);
    let out = match case.file_limit_blocks {
        Some(blocks) => Command::new("sh")
            .arg("-c")
            .arg(format!(
                "trap '' XFSZ; ulimit -f {blocks}; exec \"$0\" \"$@\""
            ))
            .arg(env!("CARGO_BIN_EXE_tinyddpm"))
            .args(case.args)
            .current_dir(d)
            .output()
            .unwrap(),
        None => tinyddpm(d, case.args),
    };
    let stderr = text(&out.stderr);
    let line = stderr.trim_end();
    assert_eq!(out.status.code(), Some(case.code), "{what}: {stderr}");
    assert_eq!(line.lines().count(), 1, "{what}: {stderr}");
    assert!(
        line.contains(case.message),
        "{what}: {line:?} lacks {:?}",
        case.message
    );
    assert!(
        !line.contains("panicked") && !line.contains("internal error"),
        "{what}: {line}"
    );
    assert!(line.len() < 400, "{what}: a line of {} bytes", line.len());
    // A cause is said once, not repeated by each layer of context.
    let parts: Vec<&str> = line.split(": ").filter(|p| p.len() > 12).collect();
    for (i, p) in parts.iter().enumerate() {
        assert!(
            !parts[i + 1..].contains(p),
            "{what}: {p:?} repeated in {line}"
        );
    }
    let mut after = snapshot(d);
    for name in case.created {
        assert!(
            after.remove(Path::new(name)).is_some(),
            "{what}: {name} not written"
        );
    }
    let temps: Vec<_> = after
        .keys()
        .filter(|p| p.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(temps.is_empty(), "{what}: left {temps:?}");
    let new: Vec<_> = after.keys().filter(|p| !before.contains_key(*p)).collect();
    assert!(new.is_empty(), "{what}: wrote {new:?}");
    for (path, entry) in &before {
        assert!(
            after.get(path) == Some(entry),
            "{what}: changed {}",
            path.display()
        );
    }
}

const U64_MAX: &str = "18446744073709551615";

/// Every defect of issue 10 §2 and the further cases found beside them.
fn failure_cases() -> Vec<Case> {
    use Setup::*;
    vec![
        // An output that is also an input, or another output.
        Case {
            args: &["sample", "--model", "m.tdm", "-n", "2", "--out", "m.tdm"],
            code: 1,
            message: "--out m.tdm is the same file as --model: refusing to overwrite an input",
            ..Case::default()
        },
        Case {
            args: &["sample", "--model", "m.tdm", "-n", "2", "--out", "./m.tdm"],
            code: 1,
            message: "is the same file as --model",
            ..Case::default()
        },
        Case {
            setup: &[HardLink("hard.tdm", "m.tdm")],
            args: &["sample", "--model", "m.tdm", "-n", "2", "--out", "hard.tdm"],
            code: 1,
            message: "is the same file as --model",
            ..Case::default()
        },
        Case {
            setup: &[Symlink("link.tdm", "m.tdm")],
            args: &["sample", "--model", "link.tdm", "-n", "2", "--out", "m.tdm"],
            code: 1,
            message: "is the same file as --model",
            ..Case::default()
        },
        Case {
            setup: &[File("init.csv", b"x,y\n1,2\n")],
            args: &[
                "sample", "--model", "m.tdm", "--x-init", "init.csv", "--out", "init.csv",
            ],
            code: 1,
            message: "--out init.csv is the same file as --x-init",
            ..Case::default()
        },
        Case {
            args: &["export", "--model", "m.tdm", "--out", "m.tdm"],
            code: 1,
            message: "--out m.tdm is the same file as --model",
            ..Case::default()
        },
        Case {
            setup: &[Make("sd.safetensors", || {
                std::fs::read(fixture("torch_model_3k.safetensors")).unwrap()
            })],
            args: &[
                "import",
                "--from",
                "sd.safetensors",
                "--out",
                "sd.safetensors",
            ],
            code: 1,
            message: "--out sd.safetensors is the same file as --from",
            ..Case::default()
        },
        Case {
            args: &[
                "plot", "reverse", "--model", "m.tdm", "-n", "2", "--out", "m.tdm",
            ],
            code: 1,
            message: "--out m.tdm is the same file as --model",
            ..Case::default()
        },
        Case {
            args: &["plot", "forward", "--model", "m.tdm", "--out", "m.tdm"],
            code: 1,
            message: "--out m.tdm is the same file as --model",
            ..Case::default()
        },
        Case {
            setup: &[File("l.csv", b"step,loss\n0,1\n1,0.5\n")],
            args: &["plot", "loss", "--losses", "l.csv", "--out", "l.csv"],
            code: 1,
            message: "--out l.csv is the same file as --losses",
            ..Case::default()
        },
        Case {
            setup: &[File("s.csv", b"x,y\n0,1\n")],
            args: &["plot", "samples", "--samples", "s.csv", "--out", "s.csv"],
            code: 1,
            message: "--out s.csv is the same file as --samples",
            ..Case::default()
        },
        Case {
            setup: &[File("s.csv", b"x,y\n0,1\n")],
            args: &["plot", "compare", "--samples", "s.csv", "--out", "s.csv"],
            code: 1,
            message: "--out s.csv is the same file as --samples",
            ..Case::default()
        },
        Case {
            args: &["train", "--steps", "2", "--out", "a", "--losses", "a"],
            code: 1,
            message: "--out and --losses are the same file (a): each output needs its own",
            ..Case::default()
        },
        Case {
            args: &["train", "--steps", "2", "--out", "a", "--checkpoint", "a"],
            code: 1,
            message: "--out and --checkpoint are the same file (a)",
            ..Case::default()
        },
        Case {
            args: &[
                "train",
                "--steps",
                "2",
                "--out",
                "t.tdm",
                "--losses",
                "c",
                "--checkpoint",
                "c",
            ],
            code: 1,
            message: "--losses and --checkpoint are the same file (c)",
            ..Case::default()
        },
        Case {
            setup: &[Make("c.ckpt", || checkpoint_bytes().to_vec())],
            args: &[
                "train", "--steps", "30", "--resume", "c.ckpt", "--out", "c.ckpt",
            ],
            code: 1,
            message: "--out c.ckpt is the same file as --resume",
            ..Case::default()
        },
        Case {
            setup: &[Dir("run"), Symlink("run/samples.csv", "model.tdm")],
            args: &["demo", "--steps", "1", "-n", "5", "--out-dir", "run"],
            code: 1,
            message: "model.tdm and samples.csv are the same file",
            ..Case::default()
        },
        // Outputs that are not regular files.
        Case {
            setup: &[Dir("folder")],
            args: &["sample", "--model", "m.tdm", "-n", "2", "--out", "folder"],
            code: 1,
            message: "cannot write folder (--out): is a directory; only regular files are written",
            ..Case::default()
        },
        Case {
            args: &["sample", "--model", "m.tdm", "-n", "2", "--out", "/"],
            code: 1,
            message: "cannot write / (--out): names a folder",
            ..Case::default()
        },
        Case {
            setup: &[Dir("folder")],
            args: &["export", "--model", "m.tdm", "--out", "folder/"],
            code: 1,
            message: "names a folder (ends with /), not a file",
            ..Case::default()
        },
        Case {
            setup: &[Fifo("pipe")],
            args: &["sample", "--model", "m.tdm", "-n", "2", "--out", "pipe"],
            code: 1,
            message: "cannot write pipe (--out): is a FIFO (named pipe)",
            ..Case::default()
        },
        Case {
            setup: &[Fifo("c.ckpt")],
            args: &[
                "train",
                "--steps",
                "2",
                "--out",
                "t.tdm",
                "--checkpoint",
                "c.ckpt",
            ],
            code: 1,
            message: "cannot write c.ckpt (--checkpoint): is a FIFO",
            ..Case::default()
        },
        Case {
            setup: &[NullDevice("null")],
            args: &["sample", "--model", "m.tdm", "-n", "2", "--out", "null"],
            code: 1,
            message: "cannot write null (--out): is a device; only regular files are written",
            root: true,
            ..Case::default()
        },
        Case {
            setup: &[NullDevice("null"), Symlink("link", "null")],
            args: &["plot", "forward", "-n", "5", "--out", "link"],
            code: 1,
            message: "cannot write link (--out): is a device",
            root: true,
            ..Case::default()
        },
        Case {
            setup: &[Symlink("loop", "loop")],
            args: &["export", "--model", "m.tdm", "--out", "loop"],
            code: 1,
            message: "cannot write loop (--out): has too many levels of symbolic links",
            ..Case::default()
        },
        Case {
            args: &[
                "export",
                "--model",
                "m.tdm",
                "--out",
                "no/such/dir/m.safetensors",
            ],
            code: 1,
            message: "cannot write no/such/dir/m.safetensors (--out): folder no/such/dir does not exist",
            ..Case::default()
        },
        Case {
            setup: &[File("run", b"not a folder")],
            args: &["demo", "--steps", "1", "-n", "5", "--out-dir", "run"],
            code: 1,
            message: "--out-dir run is not a folder",
            ..Case::default()
        },
        Case {
            setup: &[Dir("run/loss.png"), File("run/samples.csv", b"x,y\n1,2\n")],
            args: &["demo", "--steps", "1", "-n", "5", "--out-dir", "run"],
            code: 1,
            message: "cannot write run/loss.png (loss.png): is a directory",
            ..Case::default()
        },
        // Arguments that panicked.
        Case {
            args: &[
                "sample", "--model", "m.tdm", "-n", U64_MAX, "--out", "s.csv",
            ],
            code: 1,
            message: "18446744073709551615 samples need more bytes than any disk holds",
            ..Case::default()
        },
        Case {
            args: &["train", "--batch", U64_MAX, "--out", "t.tdm"],
            code: 1,
            message: "--batch 18446744073709551615 is too large: at most 65536",
            ..Case::default()
        },
        Case {
            setup: &[Dir("run"), File("run/samples.csv", b"x,y\n1,2\n")],
            args: &["demo", "--steps", "1", "-n", U64_MAX, "--out-dir", "run"],
            code: 1,
            message: "-n 18446744073709551615: at most 1000000 points",
            ..Case::default()
        },
        Case {
            args: &["plot", "forward", "-n", U64_MAX, "--out", "f.png"],
            code: 1,
            message: "at most 1000000 points",
            ..Case::default()
        },
        Case {
            args: &[
                "plot", "reverse", "--model", "m.tdm", "-n", U64_MAX, "--out", "r.png",
            ],
            code: 1,
            message: "at most 1000000 points",
            ..Case::default()
        },
        Case {
            setup: &[Make("huge.tdm", huge_bias_model)],
            args: &[
                "plot", "reverse", "--model", "huge.tdm", "-n", "5", "--out", "r.png",
            ],
            code: 1,
            message: "reverse process: point 0 of panel",
            ..Case::default()
        },
        // Resources without bound.
        Case {
            args: &[
                "sample",
                "--model",
                "m.tdm",
                "-n",
                "100000000000000000",
                "--out",
                "s.csv",
            ],
            code: 1,
            message: "100000000000000000 samples need at least 400.0 PB",
            ..Case::default()
        },
        Case {
            args: &["train", "--batch", "1000000000", "--out", "t.tdm"],
            code: 1,
            message: "--batch 1000000000 is too large",
            ..Case::default()
        },
        Case {
            setup: &[Make("big.ckpt", huge_batch_checkpoint)],
            args: &[
                "train", "--steps", "30", "--resume", "big.ckpt", "--out", "t.tdm",
            ],
            code: 1,
            message: "the checkpoint's batch 1000000000 is too large",
            ..Case::default()
        },
        Case {
            args: &["inspect", "/dev/zero"],
            code: 1,
            message: "/dev/zero: not a tinyddpm model file (bad magic)",
            ..Case::default()
        },
        Case {
            setup: &[Make("long.tdm", || {
                let mut b = model_bytes().to_vec();
                b.extend(std::iter::repeat_n(0u8, 3 << 20));
                b
            })],
            args: &["sample", "--model", "long.tdm", "-n", "2", "--out", "s.csv"],
            code: 1,
            message: "long.tdm: longer than its header allows (",
            ..Case::default()
        },
        Case {
            setup: &[Make("long.ckpt", || {
                let mut b = checkpoint_bytes().to_vec();
                b.extend(std::iter::repeat_n(0u8, 1 << 20));
                b
            })],
            args: &[
                "train",
                "--steps",
                "30",
                "--resume",
                "long.ckpt",
                "--out",
                "t.tdm",
            ],
            code: 1,
            message: "long.ckpt: longer than a checkpoint can be",
            ..Case::default()
        },
        Case {
            setup: &[Make("big.safetensors", || vec![0u8; 3 << 20])],
            args: &["import", "--from", "big.safetensors", "--out", "b.tdm"],
            code: 1,
            message: "more than a state dict of any supported model",
            ..Case::default()
        },
        Case {
            args: &["eval", "--samples", "/dev/zero"],
            code: 1,
            message: "/dev/zero: line 1 is longer than 1048576 bytes",
            ..Case::default()
        },
        // Samples that are not finite.
        Case {
            setup: &[Make("huge.tdm", huge_bias_model)],
            args: &["sample", "--model", "huge.tdm", "-n", "3", "--out", "s.csv"],
            code: 1,
            message: "sample 0 is not finite (NaN, NaN); the model's output overflows",
            ..Case::default()
        },
        Case {
            setup: &[File("big.csv", b"x,y\n0,0\n3e38,-3e38\n")],
            args: &[
                "sample", "--model", "m.tdm", "--x-init", "big.csv", "--out", "s.csv",
            ],
            code: 1,
            message: "sample 1 is not finite",
            ..Case::default()
        },
        Case {
            setup: &[Make("betas.tdm", absurd_betas_model)],
            args: &[
                "sample",
                "--model",
                "betas.tdm",
                "-n",
                "2",
                "--out",
                "s.csv",
            ],
            code: 1,
            message: "sample 0 is not finite",
            ..Case::default()
        },
        // Messages that were unclear.
        Case {
            setup: &[Make("long.csv", || {
                format!("x,y\n1,{}\n", "7a".repeat(500_000)).into_bytes()
            })],
            args: &["eval", "--samples", "long.csv"],
            code: 1,
            message: "long.csv: line 2, column 2: \"7a7a",
            ..Case::default()
        },
        Case {
            setup: &[File("latin.csv", b"x,y\n1,2\n\xe9t\xe9,3\n")],
            args: &["eval", "--samples", "latin.csv"],
            code: 1,
            message: "latin.csv: line 3, column 1: \"\u{fffd}t\u{fffd}\" is not a number",
            ..Case::default()
        },
        Case {
            args: &[
                "train",
                "--steps",
                "1000",
                "--batch",
                "8",
                "--hidden",
                "32",
                "--checkpoint",
                "c.ckpt",
                "--checkpoint-every",
                "10",
                "--out",
                "t.tdm",
            ],
            code: 1,
            message: "cannot write the checkpoint c.ckpt at step 10; no model was written: \
                      c.ckpt: File too large",
            file_limit_blocks: Some(40),
            ..Case::default()
        },
        Case {
            args: &[
                "train", "--steps", "30", "--resume", "m.tdm", "--out", "t.tdm",
            ],
            code: 1,
            message: "cannot resume training: m.tdm: not a tinyddpm training checkpoint (bad magic)",
            ..Case::default()
        },
        Case {
            args: &["sample", "--model", "nope.tdm", "-n", "2", "--out", "s.csv"],
            code: 1,
            message: "cannot load the model: nope.tdm: No such file or directory",
            ..Case::default()
        },
        // Unreadable inputs.
        Case {
            setup: &[Dir("folder")],
            args: &["eval", "--samples", "folder"],
            code: 1,
            message: "folder: Is a directory",
            ..Case::default()
        },
        Case {
            args: &["import", "--from", "none.safetensors", "--out", "n.tdm"],
            code: 1,
            message: "cannot read none.safetensors: No such file or directory",
            ..Case::default()
        },
        Case {
            setup: &[File(
                "init.csv",
                b"x0,x1,extra\n0.5,-1.25,9\n2,0.125,9\n-0.75,0,9\n",
            )],
            args: &[
                "sample", "--model", "m.tdm", "--x-init", "init.csv", "-n", "4", "--out", "t.csv",
            ],
            code: 1,
            message: "-n 4 does not match --x-init, which has 3 rows",
            ..Case::default()
        },
        // CSV files with text, NaN or ragged rows.
        Case {
            setup: &[File("bad.csv", b"x,y\n1,2\n3,abc\n")],
            args: &["eval", "--samples", "bad.csv", "--json"],
            code: 1,
            message: "bad.csv: line 3, column 2: \"abc\" is not a number",
            ..Case::default()
        },
        Case {
            setup: &[File("bad.csv", b"x,y\n1,2\n3,abc\n")],
            args: &[
                "sample", "--model", "m.tdm", "--x-init", "bad.csv", "--out", "s.csv",
            ],
            code: 1,
            message: "line 3, column 2",
            ..Case::default()
        },
        Case {
            setup: &[File("nan.csv", b"x,y\n1,2\nNaN,0.5\n")],
            args: &[
                "sample", "--model", "m.tdm", "--x-init", "nan.csv", "--out", "s.csv",
            ],
            code: 1,
            message: "nan.csv: line 3, column 1: \"NaN\" is not a finite number",
            ..Case::default()
        },
        Case {
            setup: &[File("nan.csv", b"x,y\n1,2\nNaN,0.5\n")],
            args: &["plot", "samples", "--samples", "nan.csv", "--out", "p.png"],
            code: 1,
            message: "not a finite number",
            ..Case::default()
        },
        Case {
            setup: &[File("one.csv", b"x\n1\n2\n")],
            args: &["eval", "--samples", "one.csv"],
            code: 1,
            message: "one.csv: line 2: 1 column(s), expected at least 2",
            ..Case::default()
        },
        Case {
            setup: &[File("ragged.csv", b"1,2\n3,4,5\n")],
            args: &[
                "plot",
                "compare",
                "--samples",
                "ragged.csv",
                "--out",
                "c.png",
            ],
            code: 1,
            message: "ragged.csv: line 2: 3 column(s), expected 2",
            ..Case::default()
        },
        // Options out of range.
        Case {
            args: &[
                "sample",
                "--model",
                "m.tdm",
                "-n",
                "2",
                "--sampler",
                "euler",
                "--out",
                "s.csv",
            ],
            code: 2,
            message: "invalid value 'euler' for '--sampler <SAMPLER>'",
            ..Case::default()
        },
        Case {
            args: &[
                "sample",
                "--model",
                "m.tdm",
                "-n",
                "2",
                "--sampler",
                "ddpm",
                "--steps",
                "5",
                "--out",
                "s.csv",
            ],
            code: 1,
            message: "--steps and --spacing apply to --sampler ddim, dpmpp-2m",
            ..Case::default()
        },
        Case {
            args: &[
                "import",
                "--from",
                "m.tdm",
                "--out",
                "n.tdm",
                "--default-steps",
                "5",
            ],
            code: 2,
            message: "the following required arguments were not provided: --default-sampler",
            ..Case::default()
        },
        Case {
            args: &[
                "import",
                "--from",
                "m.tdm",
                "--out",
                "n.tdm",
                "--default-sampler",
                "ddpm",
                "--default-steps",
                "5",
            ],
            code: 1,
            message: "--default-steps and --default-spacing apply to --default-sampler ddim",
            ..Case::default()
        },
        Case {
            args: &[
                "sample", "--model", "m.tdm", "-n", "2", "--steps", "5", "--out", "s.csv",
            ],
            code: 1,
            message: "only; the model's default sampler, DDPM (seed step, 1000 steps), runs",
            ..Case::default()
        },
        Case {
            args: &[
                "sample",
                "--model",
                "m.tdm",
                "-n",
                "2",
                "--sampler",
                "dpmpp-2m",
                "--eta",
                "0.5",
                "--out",
                "s.csv",
            ],
            code: 1,
            message: "--eta and --clip apply to --sampler ddim only",
            ..Case::default()
        },
        Case {
            args: &[
                "sample",
                "--model",
                "m.tdm",
                "-n",
                "2",
                "--sampler",
                "ddim",
                "--spacing",
                "karras",
                "--out",
                "s.csv",
            ],
            code: 1,
            message: "DDIM takes trailing, leading or linspace spacing, not karras",
            ..Case::default()
        },
        Case {
            args: &[
                "sample",
                "--model",
                "m.tdm",
                "-n",
                "2",
                "--sampler",
                "ddim",
                "--steps",
                "0",
                "--out",
                "s.csv",
            ],
            code: 1,
            message: "DDIM steps must be between 1 and 1000, got 0",
            ..Case::default()
        },
        Case {
            args: &["train", "--steps", "0", "--out", "t.tdm"],
            code: 2,
            message: "invalid value '0' for '--steps <STEPS>'",
            ..Case::default()
        },
        Case {
            args: &["sample", "--model", "m.tdm", "-n", "0", "--out", "s.csv"],
            code: 2,
            message: "invalid value '0' for '--count <COUNT>'",
            ..Case::default()
        },
        Case {
            args: &["train", "--lr", "-1", "--steps", "5", "--out", "neg.tdm"],
            code: 1,
            message: "learning rate must be positive",
            ..Case::default()
        },
        // Model files of another version, corrupt, short or foreign.
        Case {
            setup: &[Make("v3.tdm", || {
                let mut b = model_bytes().to_vec();
                b[8..10].copy_from_slice(&3u16.to_le_bytes());
                b
            })],
            args: &["sample", "--model", "v3.tdm", "-n", "2", "--out", "s.csv"],
            code: 1,
            message: "model file format version 3, this build reads versions 1 and 2",
            ..Case::default()
        },
        Case {
            setup: &[Make("flip.tdm", flipped_model)],
            args: &["export", "--model", "flip.tdm", "--out", "f.safetensors"],
            code: 1,
            message: "model file corrupt: CRC-32",
            ..Case::default()
        },
        Case {
            setup: &[Make("flip.tdm", flipped_model)],
            args: &["inspect", "flip.tdm"],
            code: 1,
            message: "CRC-32",
            ..Case::default()
        },
        Case {
            setup: &[Make("short.tdm", || model_bytes()[..100].to_vec())],
            args: &[
                "sample",
                "--model",
                "short.tdm",
                "-n",
                "2",
                "--out",
                "s.csv",
            ],
            code: 1,
            message: "short.tdm",
            ..Case::default()
        },
        Case {
            setup: &[File("text.tdm", b"hello, world\n")],
            args: &["plot", "reverse", "--model", "text.tdm", "--out", "r.png"],
            code: 1,
            message: "not a tinyddpm model file",
            ..Case::default()
        },
        // State dicts of another architecture.
        Case {
            setup: &[Make("missing.safetensors", || {
                state_dict("output_layer.bias", None)
            })],
            args: &["import", "--from", "missing.safetensors", "--out", "n.tdm"],
            code: 1,
            message: "missing tensor `output_layer.bias`",
            ..Case::default()
        },
        Case {
            setup: &[Make("shape.safetensors", || {
                state_dict("", Some(("hidden_layers.1.0.weight", vec![64, 256])))
            })],
            args: &["import", "--from", "shape.safetensors", "--out", "n.tdm"],
            code: 1,
            message: "tensor `hidden_layers.1.0.weight` has shape [64, 256], expected [128, 128]",
            ..Case::default()
        },
        Case {
            setup: &[File("junk.safetensors", b"not safetensors at all")],
            args: &["import", "--from", "junk.safetensors", "--out", "n.tdm"],
            code: 1,
            message: "not a safetensors file",
            ..Case::default()
        },
        // Quantization, and integer model files where only float ones can be read.
        Case {
            args: &["quantize", "--model", "m.tdm", "--out", "m.tdm"],
            code: 1,
            message: "--out m.tdm is the same file as --model: refusing to overwrite an input",
            ..Case::default()
        },
        Case {
            setup: &[Symlink("link.tdm", "m.tdm")],
            args: &["quantize", "--model", "m.tdm", "--out", "link.tdm"],
            code: 1,
            message: "--out link.tdm is the same file as --model",
            ..Case::default()
        },
        Case {
            setup: &[Dir("folder")],
            args: &["quantize", "--model", "m.tdm", "--out", "folder/"],
            code: 1,
            message: "names a folder (ends with /), not a file",
            ..Case::default()
        },
        Case {
            args: &["quantize", "--model", "nope.tdm", "--out", "q.tdm"],
            code: 1,
            message: "cannot load the model: nope.tdm: No such file or directory",
            ..Case::default()
        },
        Case {
            setup: &[File("text.tdm", b"hello, world\n")],
            args: &["quantize", "--model", "text.tdm", "--out", "q.tdm"],
            code: 1,
            message: "text.tdm: not a tinyddpm model file (bad magic)",
            ..Case::default()
        },
        Case {
            setup: &[Make("flip.tdm", flipped_model)],
            args: &["quantize", "--model", "flip.tdm", "--out", "q.tdm"],
            code: 1,
            message: "flip.tdm: model file corrupt: CRC-32",
            ..Case::default()
        },
        Case {
            setup: &[Make("nan.tdm", nan_weight_model)],
            args: &["quantize", "--model", "nan.tdm", "--out", "q.tdm"],
            code: 1,
            message: "nan.tdm: model file weight 116481 is not finite",
            ..Case::default()
        },
        Case {
            setup: &[Make("huge.tdm", huge_bias_model)],
            args: &["quantize", "--model", "huge.tdm", "--out", "q.tdm"],
            code: 1,
            message: "cannot quantize huge.tdm: ",
            ..Case::default()
        },
        Case {
            setup: &[Make("q.tdm", || q_model_bytes().to_vec())],
            args: &["quantize", "--model", "q.tdm", "--out", "qq.tdm"],
            code: 1,
            message: "cannot load the model: q.tdm holds an integer model (made by `tinyddpm \
                      quantize`); this command reads float models only",
            ..Case::default()
        },
        Case {
            args: &[
                "quantize",
                "--model",
                "m.tdm",
                "--out",
                "q.tdm",
                "--calibration",
                "0",
            ],
            code: 2,
            message: "invalid value '0' for '--calibration <CALIBRATION>'",
            ..Case::default()
        },
        Case {
            args: &[
                "quantize",
                "--model",
                "m.tdm",
                "--out",
                "q.tdm",
                "--calibration",
                U64_MAX,
            ],
            code: 1,
            message: "--calibration 18446744073709551615: at most 1000000 inputs",
            ..Case::default()
        },
        Case {
            setup: &[Make("q.tdm", || q_model_bytes().to_vec())],
            args: &["export", "--model", "q.tdm", "--out", "q.safetensors"],
            code: 1,
            message: "q.tdm holds an integer model: export writes float models only; export \
                      the float model it was quantized from",
            ..Case::default()
        },
        Case {
            setup: &[Make("q.tdm", || q_model_bytes().to_vec())],
            args: &["train", "--resume", "q.tdm", "--out", "t.tdm"],
            code: 1,
            message: "cannot resume training: q.tdm: not a tinyddpm training checkpoint",
            ..Case::default()
        },
        // Integer model files that decode but are out of the format's range.
        Case {
            setup: &[Make("q.tdm", bad_shift_q_model)],
            args: &["sample", "--model", "q.tdm", "-n", "2", "--out", "s.csv"],
            code: 1,
            message: "cannot load the model: q.tdm: model file holds an invalid integer model: \
                      Output has a weight of -128, a bias beyond 2^30 or a shift above 62",
            ..Case::default()
        },
        Case {
            setup: &[Make("q.tdm", bad_shift_q_model)],
            args: &[
                "plot", "reverse", "--model", "q.tdm", "-n", "2", "--out", "r.png",
            ],
            code: 1,
            message: "q.tdm: model file holds an invalid integer model",
            ..Case::default()
        },
        Case {
            setup: &[Make("q.tdm", || q_model_bytes().to_vec())],
            args: &["sample", "--model", "q.tdm", "-n", "2", "--out", "q.tdm"],
            code: 1,
            message: "--out q.tdm is the same file as --model: refusing to overwrite an input",
            ..Case::default()
        },
        Case {
            setup: &[Make("q.tdm", || q_model_bytes().to_vec())],
            args: &[
                "sample",
                "--model",
                "q.tdm",
                "-n",
                "2",
                "--sampler",
                "ddpm",
                "--steps",
                "5",
                "--out",
                "s.csv",
            ],
            code: 1,
            message: "--steps and --spacing apply to --sampler ddim",
            ..Case::default()
        },
        // demo --quantize checks its further outputs before training.
        Case {
            setup: &[Dir("run/float_vs_int.png")],
            args: &[
                "demo",
                "--steps",
                "2",
                "-n",
                "4",
                "--quantize",
                "--out-dir",
                "run",
            ],
            code: 1,
            message: "cannot write run/float_vs_int.png (float_vs_int.png): is a directory",
            ..Case::default()
        },
        Case {
            setup: &[Dir("run"), Symlink("run/model.q.tdm", "model.tdm")],
            args: &[
                "demo",
                "--steps",
                "2",
                "-n",
                "4",
                "--quantize",
                "--out-dir",
                "run",
            ],
            code: 1,
            message: "model.tdm and model.q.tdm are the same file (run/model.q.tdm)",
            ..Case::default()
        },
        // plot compare of two sets.
        Case {
            setup: &[File("a.csv", b"1,2\n"), File("b.csv", b"3,4\n")],
            args: &[
                "plot",
                "compare",
                "--samples",
                "a.csv",
                "--against",
                "b.csv",
                "--out",
                "b.csv",
            ],
            code: 1,
            message: "--out b.csv is the same file as --against: refusing to overwrite an input",
            ..Case::default()
        },
        Case {
            setup: &[File("a.csv", b"1,2\n")],
            args: &[
                "plot",
                "compare",
                "--samples",
                "a.csv",
                "--against",
                "nope.csv",
                "--out",
                "c.png",
            ],
            code: 1,
            message: "cannot read --against: nope.csv: No such file or directory",
            ..Case::default()
        },
        Case {
            setup: &[File("a.csv", b"1,2\n"), File("b.csv", b"1,NaN\n")],
            args: &[
                "plot",
                "compare",
                "--samples",
                "a.csv",
                "--against",
                "b.csv",
                "--out",
                "c.png",
            ],
            code: 1,
            message: "cannot read --against: b.csv: line 1, column 2: \"NaN\" is not a finite",
            ..Case::default()
        },
        Case {
            setup: &[File("a.csv", b"1,2\n")],
            args: &[
                "plot",
                "compare",
                "--samples",
                "a.csv",
                "--labels",
                "one",
                "--out",
                "c.png",
            ],
            code: 2,
            message: "2 values required for '--labels <LEFT> <RIGHT>' but 1 was provided",
            ..Case::default()
        },
        Case {
            setup: &[File("a.csv", b"1,2\n")],
            args: &[
                "plot",
                "compare",
                "--samples",
                "a.csv",
                "--against",
                "a.csv",
                "--seed",
                "1",
                "--out",
                "c.png",
            ],
            code: 2,
            message: "the argument '--against <AGAINST>' cannot be used with '--seed <SEED>'",
            ..Case::default()
        },
        Case {
            setup: &[Make("qflip.tdm", || {
                let mut b = q_model_bytes().to_vec();
                b[5000] ^= 0x04;
                b
            })],
            args: &["inspect", "qflip.tdm"],
            code: 1,
            message: "qflip.tdm: model file corrupt: CRC-32",
            ..Case::default()
        },
        Case {
            setup: &[Make("qshort.tdm", || q_model_bytes()[..5000].to_vec())],
            args: &["inspect", "qshort.tdm"],
            code: 1,
            message: "qshort.tdm: model file",
            ..Case::default()
        },
        // Training that diverges keeps its last checkpoint and writes no model or log.
        Case {
            args: &[
                "train",
                "--lr",
                "1e30",
                "--steps",
                "50",
                "--batch",
                "8",
                "--checkpoint",
                "c.ckpt",
                "--checkpoint-every",
                "1",
                "--out",
                "nan.tdm",
            ],
            code: 1,
            message: "; no model was written; the last checkpoint c.ckpt (step",
            created: &["c.ckpt"],
            ..Case::default()
        },
    ]
}

/// `m.tdm` with one bit flipped in its weights.
fn flipped_model() -> Vec<u8> {
    let mut b = model_bytes().to_vec();
    b[1000] ^= 0x10;
    b
}

#[test]
fn every_bad_input_is_one_line_and_loses_nothing() {
    for case in failure_cases() {
        run_case(&case);
    }
}

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
    let (model, _) = modelfile::load::<128, 3>(&d.join("m.tdm")).unwrap();
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
    let given = Init::Given(&starts);
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
    tinyddpm_core::file::decode_into(&huge_bias_model(), &mut huge).unwrap();
    std::fs::write(
        d.join("huge.safetensors"),
        state_dict::export(&huge).unwrap(),
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
    let (model, header) = modelfile::load::<128, 3>(&d.join("m.tdm")).unwrap();
    let calibration = Calibration {
        samples: 3000,
        seed: 5,
    };
    let (want, report) = quantize(&*model, &schedule(), &calibration).unwrap();
    assert!(printed.contains(&report.to_string()), "{printed}");
    let (got, got_header) = modelfile::load_quant::<128, 3>(&d.join("q.tdm")).unwrap();
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
        let fields = row(layer_name(l.layer));
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
        let fields = row(layer_name(g.after));
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

fn interrupt(child: &std::process::Child) {
    // The shell's own kill: no procps needed.
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("kill -INT {}", child.id()))
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn ctrl_c_stops_training_and_says_how_to_resume() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let common = ["--batch", "8", "--hidden", "32", "--checkpoint", "c.ckpt"];
    let mut child = Command::new(env!("CARGO_BIN_EXE_tinyddpm"))
        .args(["train", "--steps", "1000000000", "--checkpoint-every", "5"])
        .args(common)
        .args(["--out", "t.tdm"])
        .current_dir(d)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("a checkpoint", || d.join("c.ckpt").exists());
    interrupt(&child);
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    let line = stderr.trim_end();
    assert_eq!(line.lines().count(), 1, "{stderr}");
    assert!(line.starts_with("error: interrupted at step "), "{line}");
    assert!(line.contains("; no model was written; the last checkpoint is c.ckpt at step "));
    assert!(
        line.ends_with(": continue with `--resume c.ckpt`"),
        "{line}"
    );
    let names: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["c.ckpt"], "only the checkpoint is written");
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

#[test]
fn ctrl_c_stops_sampling_and_leaves_no_file() {
    let dir = with_model();
    let d = dir.path();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tinyddpm"))
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
    // A temporary file with a chunk in it: sampling has begun and Ctrl-C is watched.
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
    interrupt(&child);
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.starts_with("error: interrupted after "), "{stderr}");
    assert!(
        stderr
            .trim_end()
            .ends_with(" of 100000000 samples; no samples were written")
    );
    let names: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["m.tdm"]);
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

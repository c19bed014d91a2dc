//! The `tinyddpm` binary end to end: every command run as a user runs it, in a temporary
//! folder, and every kind of bad input answered with one line, a non-zero exit and no output
//! file. Expected values come from the library and the core computed here, or from the
//! PyTorch fixtures in `tests/fixtures`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tinyddpm::{csv, data, modelfile};
use tinyddpm_core::{Sampler, Schedule, ScheduleKind, SeedModel, Spacing, sample, sample_from};

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

/// Runs a command that must fail with exit `code` and one stderr line containing `needle`,
/// leaving `output` unwritten and no temporary file behind.
fn fails(dir: &Path, args: &[&str], code: i32, needle: &str, output: &str) {
    let out = tinyddpm(dir, args);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    assert!(
        stderr.contains(needle),
        "{args:?}: {stderr:?} lacks {needle:?}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!dir.join(output).exists(), "{args:?} wrote {output}");
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{args:?} left {leftovers:?}");
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
        "train", "sample", "eval", "inspect", "import", "export", "demo", "plot",
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
    fails(
        dir.path(),
        &[
            "sample", "--model", "m.tdm", "--x-init", "init.csv", "-n", "4", "--out", "t.csv",
        ],
        1,
        "-n 4 does not match --x-init, which has 3 rows",
        "t.csv",
    );
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

#[test]
fn missing_and_unreadable_files_are_named() {
    let dir = with_model();
    let d = dir.path();
    fails(
        d,
        &["sample", "--model", "nope.tdm", "-n", "2", "--out", "s.csv"],
        1,
        "nope.tdm: No such file or directory",
        "s.csv",
    );
    std::fs::create_dir(d.join("folder")).unwrap();
    fails(
        d,
        &["eval", "--samples", "folder"],
        1,
        "folder: Is a directory",
        "folder/x",
    );
    fails(
        d,
        &["import", "--from", "none.safetensors", "--out", "n.tdm"],
        1,
        "none.safetensors",
        "n.tdm",
    );
    fails(
        d,
        &[
            "export",
            "--model",
            "m.tdm",
            "--out",
            "no/such/dir/m.safetensors",
        ],
        1,
        "no/such/dir/m.safetensors",
        "no",
    );
}

#[test]
fn csv_with_text_is_rejected() {
    let dir = with_model();
    std::fs::write(dir.path().join("bad.csv"), "x,y\n1,2\n3,abc\n").unwrap();
    fails(
        dir.path(),
        &["eval", "--samples", "bad.csv", "--json"],
        1,
        "bad.csv: line 3, column 2: \"abc\" is not a number",
        "none",
    );
    fails(
        dir.path(),
        &[
            "sample", "--model", "m.tdm", "--x-init", "bad.csv", "--out", "s.csv",
        ],
        1,
        "line 3, column 2",
        "s.csv",
    );
}

#[test]
fn csv_with_nan_is_rejected() {
    let dir = with_model();
    std::fs::write(dir.path().join("nan.csv"), "x,y\n1,2\nNaN,0.5\n").unwrap();
    fails(
        dir.path(),
        &[
            "sample", "--model", "m.tdm", "--x-init", "nan.csv", "--out", "s.csv",
        ],
        1,
        "nan.csv: line 3, column 1: \"NaN\" is not a finite number",
        "s.csv",
    );
    fails(
        dir.path(),
        &["plot", "samples", "--samples", "nan.csv", "--out", "p.png"],
        1,
        "not a finite number",
        "p.png",
    );
}

#[test]
fn csv_with_wrong_column_count_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("one.csv"), "x\n1\n2\n").unwrap();
    fails(
        dir.path(),
        &["eval", "--samples", "one.csv"],
        1,
        "one.csv: line 2: 1 column(s), expected at least 2",
        "none",
    );
    std::fs::write(dir.path().join("ragged.csv"), "1,2\n3,4,5\n").unwrap();
    fails(
        dir.path(),
        &[
            "plot",
            "compare",
            "--samples",
            "ragged.csv",
            "--out",
            "c.png",
        ],
        1,
        "ragged.csv: line 2: 3 column(s), expected 2",
        "c.png",
    );
}

#[test]
fn unknown_sampler_is_a_usage_error() {
    let dir = with_model();
    fails(
        dir.path(),
        &[
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
        2,
        "invalid value 'euler' for '--sampler <SAMPLER>'",
        "s.csv",
    );
    fails(
        dir.path(),
        &[
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
        1,
        "apply to --sampler ddim only",
        "s.csv",
    );
}

#[test]
fn zero_steps_is_rejected() {
    let dir = with_model();
    fails(
        dir.path(),
        &[
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
        1,
        "DDIM steps must be between 1 and 1000, got 0",
        "s.csv",
    );
    fails(
        dir.path(),
        &["train", "--steps", "0", "--out", "t.tdm"],
        2,
        "invalid value '0' for '--steps <STEPS>'",
        "t.tdm",
    );
    fails(
        dir.path(),
        &["sample", "--model", "m.tdm", "-n", "0", "--out", "s.csv"],
        2,
        "invalid value '0' for '--count <COUNT>'",
        "s.csv",
    );
}

#[test]
fn model_files_of_another_version_or_corrupt_are_rejected() {
    let dir = with_model();
    let d = dir.path();
    let good = std::fs::read(d.join("m.tdm")).unwrap();
    let mut other_version = good.clone();
    other_version[8..10].copy_from_slice(&2u16.to_le_bytes());
    std::fs::write(d.join("v2.tdm"), &other_version).unwrap();
    fails(
        d,
        &["sample", "--model", "v2.tdm", "-n", "2", "--out", "s.csv"],
        1,
        "model file format version 2, this build reads version 1",
        "s.csv",
    );
    let mut flipped = good.clone();
    flipped[1000] ^= 0x10;
    std::fs::write(d.join("flip.tdm"), &flipped).unwrap();
    fails(
        d,
        &["export", "--model", "flip.tdm", "--out", "f.safetensors"],
        1,
        "model file corrupt: CRC-32",
        "f.safetensors",
    );
    fails(d, &["inspect", "flip.tdm"], 1, "CRC-32", "none");
    std::fs::write(d.join("short.tdm"), &good[..100]).unwrap();
    fails(
        d,
        &[
            "sample",
            "--model",
            "short.tdm",
            "-n",
            "2",
            "--out",
            "s.csv",
        ],
        1,
        "short.tdm",
        "s.csv",
    );
    std::fs::write(d.join("text.tdm"), "hello, world\n").unwrap();
    fails(
        d,
        &["plot", "reverse", "--model", "text.tdm", "--out", "r.png"],
        1,
        "not a tinyddpm model file",
        "r.png",
    );
}

#[test]
fn state_dicts_with_a_missing_or_misshaped_key_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bytes = std::fs::read(fixture("torch_model_3k.safetensors")).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let write_without = |path: &str, drop: &str, reshape: Option<(&str, Vec<usize>)>| {
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
        std::fs::write(d.join(path), safetensors::serialize(views, None).unwrap()).unwrap();
    };
    write_without("missing.safetensors", "output_layer.bias", None);
    fails(
        d,
        &["import", "--from", "missing.safetensors", "--out", "m.tdm"],
        1,
        "missing tensor `output_layer.bias`",
        "m.tdm",
    );
    write_without(
        "shape.safetensors",
        "",
        Some(("hidden_layers.1.0.weight", vec![64, 256])),
    );
    fails(
        d,
        &["import", "--from", "shape.safetensors", "--out", "m.tdm"],
        1,
        "tensor `hidden_layers.1.0.weight` has shape [64, 256], expected [128, 128]",
        "m.tdm",
    );
    std::fs::write(d.join("junk.safetensors"), b"not safetensors at all").unwrap();
    fails(
        d,
        &["import", "--from", "junk.safetensors", "--out", "m.tdm"],
        1,
        "not a safetensors file",
        "m.tdm",
    );
}

#[test]
fn diverging_training_keeps_the_last_checkpoint_and_writes_no_model() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fails(
        d,
        &[
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
        1,
        "; no model was written; the last checkpoint c.ckpt (step",
        "nan.tdm",
    );
    assert!(d.join("c.ckpt").exists());
    assert!(!d.join("nan.losses.csv").exists());
    fails(
        d,
        &["train", "--lr", "-1", "--steps", "5", "--out", "neg.tdm"],
        1,
        "learning rate must be positive",
        "neg.tdm",
    );
}

#[test]
fn unavailable_gpu_is_one_line_and_auto_falls_back() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    if tinyddpm::cuda::probe().is_ok() {
        eprintln!("skipped: a GPU is usable here");
        return;
    }
    fails(
        d,
        &[
            "train", "--steps", "2", "--batch", "4", "--device", "cuda", "--out", "t.tdm",
        ],
        1,
        "--device cuda: no usable GPU",
        "t.tdm",
    );
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

//! `train --data FILE`: the user's points from the command line — a CSV and an `.npy` of the
//! same points train the same model, the model samples in the data's units and records
//! them, a checkpoint resumes bit for bit given the same file again — and the table of bad
//! inputs, each one line, nothing written, the inputs unchanged.

use tinyddpm::data::{DataSet, Normalize, PointSet, true_samples};
use tinyddpm_core::{Data, Source};

use super::table::{Case, Feed, Setup, run_case};
use super::*;

/// 300 points of the moons, offset by (100, −50) and scaled ×10: data units far from the
/// model's.
fn cloud() -> Vec<[f32; 2]> {
    true_samples(DataSet::Moons, 300, 5)
        .into_iter()
        .map(|p| [100.0 + 10.0 * p[0], -50.0 + 10.0 * p[1]])
        .collect()
}

/// `points` as CSV with a header; `{}` writes each f32 so that it reads back to its bits.
fn csv_of(points: &[[f32; 2]]) -> Vec<u8> {
    let mut text = String::from("x,y\n");
    for p in points {
        text += &format!("{},{}\n", p[0], p[1]);
    }
    text.into_bytes()
}

/// A version 1 `.npy` file of `descr` and `shape` ([`tinyddpm::npy::version_1`]).
fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    tinyddpm::npy::version_1(descr, shape, data)
}

fn cloud_csv() -> Vec<u8> {
    csv_of(&cloud())
}

fn cloud_npy() -> Vec<u8> {
    let le: Vec<u8> = cloud()
        .iter()
        .flatten()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    npy("<f4", "(300, 2)", &le)
}

const SMALL: [&str; 6] = ["--batch", "16", "--hidden", "32", "--blocks", "2"];

#[test]
fn a_csv_and_an_npy_of_the_same_points_train_the_same_model() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("pts.csv"), cloud_csv()).unwrap();
    std::fs::write(d.join("pts.npy"), cloud_npy()).unwrap();
    for (data, out) in [("pts.csv", "c.tdm"), ("pts.npy", "n.tdm")] {
        let args = ["--data", data, "--steps", "30", "--out", out];
        ok(d, &[&["train"][..], &SMALL, &args].concat());
    }
    let model = std::fs::read(d.join("c.tdm")).unwrap();
    assert!(model == std::fs::read(d.join("n.tdm")).unwrap());
    let losses = std::fs::read(d.join("c.losses.csv")).unwrap();
    assert!(losses == std::fs::read(d.join("n.losses.csv")).unwrap());
}

/// Mean and population standard deviation of column `c`.
fn moments(points: &[[f32; 2]], c: usize) -> (f64, f64) {
    let n = points.len() as f64;
    let mean = points.iter().map(|p| f64::from(p[c])).sum::<f64>() / n;
    let var = points
        .iter()
        .map(|p| (f64::from(p[c]) - mean).powi(2))
        .sum::<f64>()
        / n;
    (mean, var.sqrt())
}

#[test]
fn a_run_on_points_samples_in_their_units_and_resumes_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("pts.csv"), cloud_csv()).unwrap();
    let run = |extra: &[&str]| {
        ok(
            d,
            &[&["train", "--data", "pts.csv"][..], &SMALL, extra].concat(),
        )
    };
    run(&["--steps", "200", "--out", "m.tdm"]);

    // version 3, the file's source and the standard units of its points
    let bytes = std::fs::read(d.join("m.tdm")).unwrap();
    assert_eq!(bytes[8..10], 3u16.to_le_bytes());
    let mut model = Box::new(tinyddpm_core::Model::<32, 2>::ZERO);
    let header = tinyddpm_core::file::decode_into(&bytes, &mut *model).unwrap();
    let points = PointSet::read(&cloud_csv()[..], "pts.csv", Normalize::Standard).unwrap();
    let want = Data {
        dim: 2,
        source: Source::File,
        units: points.units().copied(),
    };
    assert_eq!(header.data, want);

    // samples in data units: near the data's mean and spread, not the model space's (0, 1)
    ok(
        d,
        &["sample", "--model", "m.tdm", "-n", "2000", "--out", "s.csv"],
    );
    let samples = csv::read_points(&d.join("s.csv")).unwrap();
    for c in 0..2 {
        let (mean, sd) = moments(&cloud(), c);
        let (got, got_sd) = moments(&samples, c);
        assert!(
            (got - mean).abs() < 0.5 * sd,
            "column {c}: {got} vs {mean} (sd {sd})"
        );
        assert!(
            (0.5..2.0).contains(&(got_sd / sd)),
            "column {c}: sd {got_sd} vs {sd}"
        );
    }

    // half the run checkpointed, then resumed with the same file: the same model
    run(&["--steps", "100", "--out", "h.tdm", "--checkpoint", "c.ckpt"]);
    let inspect = ok(d, &["inspect", "c.ckpt"]);
    assert!(inspect.contains("version 3"), "{inspect}");
    let resume = [
        "train",
        "--resume",
        "c.ckpt",
        "--data",
        "pts.csv",
        "--steps",
        "200",
        "--out",
        "r.tdm",
        "--losses",
        "h.losses.csv",
    ];
    ok(d, &resume);
    assert!(bytes == std::fs::read(d.join("r.tdm")).unwrap());
    let straight = csv::read_losses(&d.join("m.losses.csv")).unwrap();
    let resumed = csv::read_losses(&d.join("h.losses.csv")).unwrap();
    assert_eq!(bits_of(&resumed), bits_of(&straight));
}

/// The cloud lifted onto a tilted plane: 300 rows of 3 columns, in data units.
fn cloud_3d_csv() -> Vec<u8> {
    let mut text = String::from("x,y,z\n");
    for p in cloud() {
        text += &format!("{},{},{}\n", p[0], p[1], 0.5 * p[0] - p[1] + 3.0);
    }
    text.into_bytes()
}

/// A shape no build names (H = 24, B = 1) on 3 columns: the model file records D = 3 and
/// the shape, `sample` draws 3 finite columns from it, and a run resumed from its midway
/// checkpoint writes the uninterrupted run's loss log and model, byte for byte.
#[test]
fn a_run_of_any_shape_on_three_columns_samples_them_and_resumes_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("pts3.csv"), cloud_3d_csv()).unwrap();
    let shape = ["--hidden", "24", "--blocks", "1", "--batch", "16"];
    let run = |extra: &[&str]| {
        ok(
            d,
            &[&["train", "--data", "pts3.csv"][..], &shape, extra].concat(),
        )
    };
    run(&["--steps", "200", "--out", "m.tdm"]);
    let bytes = std::fs::read(d.join("m.tdm")).unwrap();
    let model = tinyddpm::flat::FlatModel::decode(&bytes).unwrap();
    let lay = model.layout();
    assert_eq!((lay.hidden, lay.blocks, lay.dim), (24, 1, 3));
    assert!(model.params().iter().all(|w| w.is_finite()));

    ok(
        d,
        &["sample", "--model", "m.tdm", "-n", "100", "--out", "s.csv"],
    );
    let file = std::fs::File::open(d.join("s.csv")).unwrap();
    let samples = tinyddpm::data::points::read_cloud(file, "s.csv", 1000).unwrap();
    assert_eq!((samples.dim(), samples.len()), (3, 100));
    assert!(samples.values().iter().all(|v| v.is_finite()));

    run(&["--steps", "100", "--out", "h.tdm", "--checkpoint", "c.ckpt"]);
    let inspect = ok(d, &["inspect", "c.ckpt"]);
    assert!(inspect.contains("version 4"), "{inspect}");
    assert!(
        inspect.contains("H = 24, B = 1 residual blocks, D = 3"),
        "{inspect}"
    );
    let resume = [
        "train",
        "--resume",
        "c.ckpt",
        "--data",
        "pts3.csv",
        "--steps",
        "200",
        "--out",
        "r.tdm",
        "--losses",
        "h.losses.csv",
    ];
    ok(d, &resume);
    assert!(
        std::fs::read(d.join("h.losses.csv")).unwrap()
            == std::fs::read(d.join("m.losses.csv")).unwrap()
    );
    assert!(bytes == std::fs::read(d.join("r.tdm")).unwrap());
}

/// `demo --data FILE` on 3 columns is the commands it stands for, file for file: `train` on
/// the file (the model, its EMA as asked, and the loss log), `sample` of that model (in the data's units),
/// `quantize --calibration-data FILE` and `sample` of the integer model; the scores are the
/// library's against every point of the file, and every figure is drawn.
#[test]
fn demo_on_a_file_is_train_sample_quantize_and_eval_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("pts3.csv"), cloud_3d_csv()).unwrap();
    let demo = [
        "demo",
        "--data",
        "pts3.csv",
        "--steps",
        "20",
        "-n",
        "40",
        "--quantize",
        "--ema",
        "0.9",
        "--out-dir",
        "run",
    ];
    let out = ok(d, &demo);
    assert!(
        out.contains("vs 300 points of pts3.csv (3 columns"),
        "{out}"
    );
    let train = [
        "train", "--data", "pts3.csv", "--steps", "20", "--ema", "0.9", "--out", "t.tdm",
    ];
    ok(d, &train);
    let sample = |model: &str, out: &str| {
        ok(d, &["sample", "--model", model, "-n", "40", "--out", out]);
    };
    sample("t.tdm", "s.csv");
    let quantize = [
        "quantize",
        "--model",
        "t.tdm",
        "--calibration-data",
        "pts3.csv",
        "--out",
        "q.tdm",
    ];
    ok(d, &quantize);
    sample("q.tdm", "sq.csv");
    let read = |name: &str| std::fs::read(d.join(name)).unwrap();
    for (ours, theirs) in [
        ("run/model.tdm", "t.tdm"),
        ("run/losses.csv", "t.losses.csv"),
        ("run/samples.csv", "s.csv"),
        ("run/model.q.tdm", "q.tdm"),
        ("run/samples.q.csv", "sq.csv"),
    ] {
        assert!(read(ours) == read(theirs), "{ours} is not {theirs}");
    }
    let cloud = |name: &str| {
        let file = std::fs::File::open(d.join(name)).unwrap();
        tinyddpm::data::points::read_cloud(file, name, 1000).unwrap()
    };
    let samples = cloud("s.csv");
    assert_eq!((samples.dim(), samples.len()), (3, 40));
    let want = tinyddpm::scores::compare(&samples, &cloud("pts3.csv")).unwrap();
    let metrics = std::fs::read_to_string(d.join("run/metrics.json")).unwrap();
    assert_eq!(json_number(&metrics, "reference"), 300.0);
    assert_eq!(json_number(&metrics, "sliced_w2"), want.sliced_w2);
    assert_eq!(json_number(&metrics, "mmd2"), want.mmd2);
    for png in [
        "loss",
        "samples",
        "compare",
        "forward",
        "reverse",
        "float_vs_int",
    ] {
        let bytes = read(&format!("run/{png}.png"));
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{png}");
    }
}

/// A checkpoint of a short run on the cloud's CSV (made once, by the binary).
fn points_checkpoint() -> Vec<u8> {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("pts.csv"), cloud_csv()).unwrap();
            let args = [
                "--steps",
                "20",
                "--data",
                "pts.csv",
                "--checkpoint",
                "c.ckpt",
            ];
            ok(
                dir.path(),
                &[&["train"][..], &SMALL, &args, &["--out", "t.tdm"]].concat(),
            );
            std::fs::read(dir.path().join("c.ckpt")).unwrap()
        })
        .clone()
}

/// The cloud with its last point moved: another file of as many rows.
fn other_cloud_csv() -> Vec<u8> {
    let mut points = cloud();
    points[299][0] += 1.0;
    csv_of(&points)
}

/// The cloud with a last row of `row`.
fn with_row(row: &str) -> Vec<u8> {
    let mut bytes = cloud_csv();
    bytes.extend(format!("{row}\n").bytes());
    bytes
}

fn bad_cell() -> Vec<u8> {
    with_row("5,abc")
}

fn ragged() -> Vec<u8> {
    with_row("5")
}

fn nan() -> Vec<u8> {
    with_row("NaN,1")
}

fn inf() -> Vec<u8> {
    with_row("1,inf")
}

fn seventeen() -> Vec<u8> {
    (vec!["1"; 17].join(",") + "\n").repeat(20).into_bytes()
}

fn constant() -> Vec<u8> {
    (0..20)
        .map(|i| format!("{i},7\n"))
        .collect::<String>()
        .into_bytes()
}

/// A header claiming 20 million rows, and no data: refused by its shape, before any value.
fn huge_npy() -> Vec<u8> {
    npy("<f4", "(20000000, 2)", &[])
}

fn int32_npy() -> Vec<u8> {
    npy("<i4", "(20, 2)", &[0; 160])
}

#[test]
fn every_bad_training_file_is_one_line_and_writes_nothing() {
    use Setup::*;
    let small = |setup: &'static [Setup], data: &'static str, code, message| Case {
        setup,
        args: Box::leak(
            [
                &["train", "--data", data][..],
                &SMALL,
                &["--steps", "5", "--out", "t.tdm"],
            ]
            .concat()
            .into_boxed_slice(),
        ),
        code,
        message,
        ..Case::default()
    };
    let resume = |data: &'static [&'static str], message| Case {
        setup: &[
            Make("c.ckpt", points_checkpoint),
            Make("pts.csv", other_cloud_csv),
        ],
        args: Box::leak(
            [
                &[
                    "train", "--resume", "c.ckpt", "--steps", "30", "--out", "t.tdm",
                ][..],
                data,
            ]
            .concat()
            .into_boxed_slice(),
        ),
        code: 1,
        message,
        ..Case::default()
    };
    let cases = [
        small(
            &[Make("p.csv", bad_cell)],
            "p.csv",
            1,
            "cannot read the training data: p.csv: line 302, column 2: \"abc\" is not a number",
        ),
        small(
            &[Make("p.csv", ragged)],
            "p.csv",
            1,
            "p.csv: line 302: 1 column(s), expected 2",
        ),
        small(
            &[Make("p.csv", nan)],
            "p.csv",
            1,
            "\"NaN\" is not a finite number",
        ),
        small(
            &[Make("p.csv", inf)],
            "p.csv",
            1,
            "\"inf\" is not a finite number",
        ),
        small(
            &[Make("p.csv", seventeen)],
            "p.csv",
            1,
            "p.csv: line 1: 17 columns; at most 16",
        ),
        small(
            &[File("p.csv", b"1,2\n3,4\n5,6\n")],
            "p.csv",
            1,
            "p.csv has 3 rows, fewer than the batch of 16",
        ),
        small(
            &[Make("p.csv", constant)],
            "p.csv",
            1,
            "column 2 of p.csv is constant",
        ),
        small(
            &[Make("p.npy", int32_npy)],
            "p.npy",
            1,
            "p.npy: an array of dtype <i4",
        ),
        small(
            &[Make("p.npy", huge_npy)],
            "p.npy",
            1,
            "p.npy: 20000000 rows, more than the 10000000 this command reads",
        ),
        small(
            &[],
            "nosuch",
            2,
            "no such file, and unknown data set 'nosuch' (known: swissroll, circles",
        ),
        Case {
            args: &["train", "--hidden", "8", "--out", "t.tdm"],
            code: 2,
            message: "invalid value '8' for '--hidden <HIDDEN>': 8 is not in 16..=512",
            ..Case::default()
        },
        Case {
            args: &["train", "--blocks", "9", "--out", "t.tdm"],
            code: 2,
            message: "invalid value '9' for '--blocks <BLOCKS>': 9 is not in 1..=8",
            ..Case::default()
        },
        Case {
            args: &[
                "train",
                "--data",
                "moons",
                "--normalize",
                "standard",
                "--out",
                "t.tdm",
            ],
            code: 1,
            message: "--normalize standard applies to a file given with --data",
            ..Case::default()
        },
        // An endless stream: the row cap, in bounded memory (1 GB of address space).
        Case {
            stdin: Feed::Endless(b"0.5,0.25\n"),
            memory_limit_kib: Some(1_000_000),
            ..small(&[], "/dev/stdin", 1, "more than 10000000 data rows")
        },
        resume(
            &["--data", "pts.csv"],
            "pts.csv is not the file the checkpoint's run trains on: 300 rows with fingerprint",
        ),
        resume(&[], "give the same file again with --data FILE"),
        resume(
            &["--data", "moons"],
            "the checkpoint's run trains on points from a file (300 rows, --normalize \
             standard, fingerprint",
        ),
    ];
    let demo = |setup: &'static [Setup], data: &'static str, code, message| Case {
        setup,
        args: Box::leak(Box::new([
            "demo",
            "--data",
            data,
            "--steps",
            "5",
            "--out-dir",
            "run",
        ])),
        code,
        message,
        ..Case::default()
    };
    let demo_cases = [
        demo(
            &[Make("p.csv", ragged)],
            "p.csv",
            1,
            "p.csv: line 302: 1 column(s), expected 2",
        ),
        demo(
            &[File("p.csv", b"1,2\n3,4\n5,6\n")],
            "p.csv",
            1,
            "p.csv has 3 rows, fewer than the batch of 128",
        ),
        demo(
            &[],
            "nosuch",
            2,
            "no such file, and unknown data set 'nosuch' (known: swissroll, circles",
        ),
        Case {
            args: &["demo", "--ema", "1.5", "--out-dir", "run"],
            code: 1,
            message: "EMA decay must be in [0, 1), not 1.5",
            ..Case::default()
        },
    ];
    for case in cases.iter().chain(&demo_cases) {
        run_case(case);
    }
}

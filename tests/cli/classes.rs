//! Class conditioning from the command line: `train --classes` on a labelled set writes a
//! model of its C, `sample --class K --guidance W` draws the core's guided bits for it, and
//! the bad inputs — a class the model lacks, a weight that is no weight, a class for an
//! unconditional model, a set without labels — are one line each, nothing written.

use tinyddpm::flat::FlatModel;
use tinyddpm_core::{Guidance, Layout, Sampler, sample_guided};

use super::table::{Case, Setup, run_case};
use super::*;

/// A model of H = 32, B = 1 (a shape the GPU kernels hold) conditioned on 3 classes, every parameter distinct.
fn conditioned_bytes() -> Vec<u8> {
    let layout = Layout::with_dim(32, 1, 2).unwrap().with_classes(3).unwrap();
    let params = (0..layout.len())
        .map(|i| ((i * 7919 % 1000) as f32 / 1000.0 - 0.5) * 0.4)
        .collect();
    let model = FlatModel::new(layout, params).unwrap();
    let header = tinyddpm_core::file::Header::new::<32, 1, 1000>(ScheduleKind::SEED, Sampler::Ddpm)
        .with_data(tinyddpm_core::Data {
            dim: 2,
            source: tinyddpm_core::Source::Builtin(DataSet::Moons.id()),
            units: None,
        })
        .with_classes(3);
    model.encode(&header).unwrap()
}

use tinyddpm::data::DataSet;

/// `sample --class K --guidance W` is the core's `sample_guided` on the file's network and
/// embedding, bit for bit, for one evaluation a step and two; without `--class` it is ∅.
#[test]
fn guided_samples_are_the_cores_bits() {
    let dir = tempfile::tempdir().unwrap();
    ok(
        dir.path(),
        &[
            "train",
            "--data",
            "moons",
            "--classes",
            "--steps",
            "60",
            "--hidden",
            "32",
            "--out",
            "c.tdm",
        ],
    );
    let inspect = ok(dir.path(), &["inspect", "c.tdm"]);
    assert!(inspect.contains("C = 2, classes 0 to 1"), "{inspect}");
    let bytes = std::fs::read(dir.path().join("c.tdm")).unwrap();
    let model = FlatModel::decode(&bytes).unwrap();
    assert_eq!(model.classes(), 2);
    let network = model.network().to_model::<32, 2, 2>().unwrap();
    let rows: Vec<f32> = [Some(0), Some(1), None]
        .iter()
        .flat_map(|&c| model.class_row(c).unwrap().to_vec())
        .collect();
    let sampler = Sampler::Ddim {
        steps: 20,
        eta: 0.0,
        spacing: Spacing::Trailing,
        clip: false,
    };
    ok(
        dir.path(),
        &[
            "plot",
            "guidance",
            "--model",
            "c.tdm",
            "-n",
            "20",
            "--weights",
            "0,2",
            "--sampler",
            "ddim",
            "--steps",
            "5",
            "--out",
            "g.png",
        ],
    );
    let png = std::fs::read(dir.path().join("g.png")).unwrap();
    assert_eq!(png[..8], *b"\x89PNG\r\n\x1a\n");
    for (args, guidance) in [
        (
            &["--class", "1", "--guidance", "2.5"][..],
            Guidance::new(1, 2.5),
        ),
        (&["--class", "0"][..], Guidance::new(0, 1.0)),
        (&[][..], None),
    ] {
        let mut all = vec![
            "sample",
            "--model",
            "c.tdm",
            "-n",
            "37",
            "--sampler",
            "ddim",
            "--steps",
            "20",
            "--seed",
            "9",
            "--out",
            "s.csv",
        ];
        all.extend_from_slice(args);
        ok(dir.path(), &all);
        let got = csv::read_points(&dir.path().join("s.csv")).unwrap();
        for (i, p) in got.iter().enumerate() {
            let want = sample_guided(
                &*network,
                &rows,
                &schedule(),
                &sampler,
                (9, i as u64),
                guidance,
            )
            .unwrap();
            assert_eq!(bits(&[*p]), bits(&[want]), "{args:?} sample {i}");
        }
    }
}

#[test]
fn bad_classes_and_weights_are_one_line_and_write_nothing() {
    use Setup::Make;
    let sample = |args: &'static [&'static str], message| Case {
        setup: &[Make("c.tdm", conditioned_bytes)],
        args,
        code: 1,
        message,
        ..Case::default()
    };
    // The argument parser's refusals exit with 2, as every usage error does.
    let usage = |args, message| Case {
        code: 2,
        ..sample(args, message)
    };
    // `sample --model c.tdm -n 5`, the rest, `--out s.csv`.
    let draw = |rest: &[&'static str]| -> &'static [&'static str] {
        let (head, tail) = (
            ["sample", "--model", "c.tdm", "-n", "5"],
            ["--out", "s.csv"],
        );
        Box::leak([&head[..], rest, &tail].concat().into_boxed_slice())
    };
    let cases = [
        sample(
            draw(&["--class", "3"]),
            "--class 3: the model has 3 classes, 0 to 2",
        ),
        sample(
            draw(&["--class", "1", "--guidance", "-1"]),
            "--guidance -1 must be a finite weight of at least 0",
        ),
        sample(
            draw(&["--class", "1", "--guidance", "inf"]),
            "--guidance inf must be a finite weight of at least 0",
        ),
        usage(draw(&["--guidance", "2"]), "--class"),
        sample(
            &[
                "sample", "--model", "m.tdm", "-n", "5", "--class", "0", "--out", "s.csv",
            ],
            "--class 0: m.tdm is not conditioned on classes (train it with --classes)",
        ),
        sample(
            draw(&["--class", "0", "--device", "cuda"]),
            "does not take models conditioned on classes yet",
        ),
        sample(
            &["plot", "guidance", "--model", "m.tdm", "--out", "g.png"],
            "m.tdm is not conditioned on classes (train it with --classes)",
        ),
        sample(
            &[
                "plot",
                "guidance",
                "--model",
                "c.tdm",
                "--weights",
                "1,-2",
                "--out",
                "g.png",
            ],
            "--weights -2 is not a finite weight of at least 0",
        ),
        Case {
            setup: &[Make("p.csv", || b"x,y,l\n1,2,0\n".to_vec())],
            ..sample(
                &[
                    "train",
                    "--data",
                    "p.csv",
                    "--label-column",
                    "2",
                    "--out",
                    "t.tdm",
                ],
                "--label-column needs --classes",
            )
        },
        sample(
            &[
                "train",
                "--data",
                "moons",
                "--classes",
                "--label-column",
                "2",
                "--out",
                "t.tdm",
            ],
            "--label-column applies to a CSV file given with --data",
        ),
        Case {
            setup: &[Make("p.csv", || b"x,y,l\n1,2,0\n3,4,1.5\n".to_vec())],
            ..sample(
                &[
                    "train",
                    "--data",
                    "p.csv",
                    "--classes",
                    "--label-column",
                    "l",
                    "--out",
                    "t.tdm",
                ],
                "p.csv: line 3: label \"1.5\" is not an integer from 0 to 65535",
            )
        },
        Case {
            setup: &[Make("p.csv", || b"x,y,l\n1,2,0\n".to_vec())],
            ..sample(
                &[
                    "train",
                    "--data",
                    "p.csv",
                    "--classes",
                    "--label-column",
                    "k",
                    "--out",
                    "t.tdm",
                ],
                "k",
            )
        },
        sample(
            &["quantize", "--model", "c.tdm", "--out", "q.tdm"],
            "conditioned on classes",
        ),
        sample(
            &[
                "train",
                "--data",
                "swissroll",
                "--classes",
                "--steps",
                "3",
                "--out",
                "t.tdm",
            ],
            "swissroll has no labels to condition on (sets with labels: circles, rings, moons, \
             8gaussians, pinwheel, 2spirals; a CSV file's with --label-column)",
        ),
        sample(
            &[
                "train",
                "--data",
                "moons",
                "--classes",
                "--label-dropout",
                "1.5",
                "--steps",
                "3",
                "--out",
                "t.tdm",
            ],
            "label dropout must be a probability in [0, 1], not 1.5",
        ),
        usage(
            &[
                "train",
                "--data",
                "moons",
                "--label-dropout",
                "0.2",
                "--steps",
                "3",
                "--out",
                "t.tdm",
            ],
            "--classes",
        ),
        usage(
            &[
                "train",
                "--data",
                "moons",
                "--classes",
                "--resume",
                "k.ckpt",
                "--steps",
                "3",
                "--out",
                "t.tdm",
            ],
            "cannot be used with '--resume",
        ),
        sample(
            &[
                "train",
                "--data",
                "moons",
                "--classes",
                "--device",
                "cuda",
                "--steps",
                "3",
                "--out",
                "t.tdm",
            ],
            "--classes trains on the CPU only",
        ),
    ];
    for case in &cases {
        run_case(case);
    }
}

/// A class-conditioned PyTorch model imported from its state dict predicts PyTorch's noise
/// for every class and for "no class", and its guided noise at w = 2.5 (the fixtures of
/// `ddpm.py class-fixtures`): the embedding's layout, row C being ∅, the sum's place and the
/// guidance formula are PyTorch's.
#[test]
fn an_imported_pytorch_model_predicts_its_conditional_and_guided_noise() {
    let dir = tempfile::tempdir().unwrap();
    let from = fixture("torch_class_model.safetensors");
    ok(
        dir.path(),
        &["import", "--from", from.to_str().unwrap(), "--out", "c.tdm"],
    );
    let bytes = std::fs::read(dir.path().join("c.tdm")).unwrap();
    let model = FlatModel::decode(&bytes).unwrap();
    assert_eq!(model.classes(), 8);
    let network = model.network().to_model::<128, 3, 2>().unwrap();
    let eps = |x: [f32; 2], t: f32, class: Option<u16>| {
        let mut temb = network.time_embedding(t / 1000.0);
        tinyddpm_core::condition::add_class(&mut temb, model.class_row(class).unwrap());
        network.predict_noise(x, &temb)
    };
    let close = |got: [f32; 2], want: [f32; 2]| {
        (0..2)
            .map(|c| (got[c] - want[c]).abs() / want[c].abs().max(1.0))
            .fold(0.0, f32::max)
    };
    let rows = csv::read_rows::<6>(&fixture("class_eps_ref.csv")).unwrap();
    assert_eq!(rows.len(), 256);
    let worst = rows
        .iter()
        .map(|&[x0, x1, t, c, e0, e1]| {
            let class = (c < 8.0).then_some(c as u16);
            close(eps([x0, x1], t, class), [e0, e1])
        })
        .fold(0.0, f32::max);
    assert!(
        worst < 2e-5,
        "conditional: worst scaled difference {worst:e}"
    );
    let rows = csv::read_rows::<6>(&fixture("class_guided_ref.csv")).unwrap();
    assert_eq!(rows.len(), 64);
    let worst = rows
        .iter()
        .map(|&[x0, x1, t, c, e0, e1]| {
            let (cond, uncond) = (eps([x0, x1], t, Some(c as u16)), eps([x0, x1], t, None));
            let guided = [0, 1].map(|k| tinyddpm_core::condition::guide(uncond[k], cond[k], 2.5));
            close(guided, [e0, e1])
        })
        .fold(0.0, f32::max);
    assert!(worst < 1e-4, "guided: worst scaled difference {worst:e}");
}

/// 300 labelled points: the moons of `true_samples`, each row's label the side of x = 0.5
/// its point lies on, in a middle column named `side`.
fn labelled_csv() -> Vec<u8> {
    let mut text = String::from("x,side,y\n");
    for p in tinyddpm::data::true_samples(DataSet::Moons, 300, 3) {
        text += &format!("{},{},{}\n", p[0], u8::from(p[0] > 0.5), p[1]);
    }
    text.into_bytes()
}

/// `train --data FILE --classes --label-column`: the labels of a CSV column; the model file
/// holds their C, and a checkpoint of the run resumes bit for bit given the same file and
/// column again, and refuses the same points with other labels.
#[test]
fn a_csv_label_column_trains_a_conditioned_model_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.csv"), labelled_csv()).unwrap();
    let train = |extra: &[&str], out: &str| {
        let mut args = vec!["train", "--data", "p.csv", "--hidden", "32", "--out", out];
        args.extend_from_slice(extra);
        ok(dir.path(), &args);
    };
    let labels = ["--classes", "--label-column", "side"];
    train(&[&labels[..], &["--steps", "40"]].concat(), "a.tdm");
    let model = FlatModel::decode(&std::fs::read(dir.path().join("a.tdm")).unwrap()).unwrap();
    assert_eq!((model.classes(), model.dim()), (2, 2));
    train(
        &[&labels[..], &["--steps", "20", "--checkpoint", "k.ckpt"]].concat(),
        "b.tdm",
    );
    let inspect = ok(dir.path(), &["inspect", "k.ckpt"]);
    assert!(inspect.contains("C = 2"), "{inspect}");
    train(
        &[
            "--resume",
            "k.ckpt",
            "--label-column",
            "side",
            "--steps",
            "40",
        ],
        "c.tdm",
    );
    let read = |name: &str| std::fs::read(dir.path().join(name)).unwrap();
    assert_eq!(read("a.tdm"), read("c.tdm"), "resumed bit for bit");
    // The same points, labelled by another column: not the run's data.
    let mut flipped = String::from_utf8(labelled_csv()).unwrap();
    flipped = flipped
        .replace(",0,", ",2,")
        .replace(",1,", ",0,")
        .replace(",2,", ",1,");
    std::fs::write(dir.path().join("p.csv"), flipped).unwrap();
    let out = tinyddpm(
        dir.path(),
        &[
            "train",
            "--resume",
            "k.ckpt",
            "--data",
            "p.csv",
            "--label-column",
            "side",
            "--steps",
            "40",
            "--out",
            "d.tdm",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("is not the file the checkpoint's run trains on"),
        "{}",
        text(&out.stderr)
    );
}

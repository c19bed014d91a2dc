//! Float models of shapes this build never named — another D, another H and B — sampled,
//! scored and inspected by the binary on the CPU, against the core's const-generic model of
//! that shape computed here.

use std::path::Path;

use tinyddpm::flat::FlatModel;
use tinyddpm::flatq::FlatQModel;
use tinyddpm_core::file::{self, Data, Kind, Source};
use tinyddpm_core::{
    Fixed, Header, Model, NoiseStream, Sampler, ScheduleKind, Spacing, Units, anomaly_score,
    anomaly_score_in, chain, gaussian_draw, sample, sample_from,
};

use super::{ok, schedule, text, tinyddpm};

#[path = "../support/qmodel.rs"]
mod qmodel;
use qmodel::valid_qmodel;

/// A model of shape (H, B, D) with every weight distinct and small enough that samples stay
/// on the data's scale.
fn model<const H: usize, const B: usize, const D: usize>() -> Box<Model<H, B, D>> {
    let mut m = Box::new(Model::<H, B, D>::ZERO);
    let mut n = 0u32;
    m.for_each_param_mut(|w| {
        n += 1;
        *w = ((n as f32 * 0.618_034).fract() - 0.5) * 0.3;
    });
    m
}

/// Writes `model` with `data` and the default sampler DDIM (10 steps) to `path`.
fn save<const H: usize, const B: usize, const D: usize>(
    path: &Path,
    model: &Model<H, B, D>,
    data: Data,
) -> Header {
    let sampler = Sampler::Ddim {
        steps: 10,
        eta: 1.0,
        spacing: Spacing::Trailing,
        clip: false,
    };
    let header = Header::new::<H, B, 1000>(ScheduleKind::SEED, sampler).with_data(data);
    let bytes = FlatModel::of(model).encode(&header).unwrap();
    std::fs::write(path, bytes).unwrap();
    header
}

/// The rows of a CSV the binary wrote, after its header line.
fn rows(path: &Path) -> (String, Vec<Vec<f32>>) {
    let written = std::fs::read_to_string(path).unwrap();
    let mut lines = written.lines();
    let head = lines.next().unwrap().to_owned();
    let rows = lines
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    (head, rows)
}

#[test]
fn a_model_of_3d_points_samples_and_scores_as_the_core_in_data_units() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let m = model::<24, 1, 3>();
    let units = Units::new(&[2.0, 0.5, 10.0], &[1.0, -3.0, 0.25]).unwrap();
    let data = Data {
        dim: 3,
        source: Source::File,
        units: Some(units),
    };
    let header = save(&d.join("m3.tdm"), &*m, data);
    let info = ok(d, &["inspect", "m3.tdm"]);
    assert!(info.contains("D = 3"), "{info}");

    ok(
        d,
        &[
            "sample", "--model", "m3.tdm", "-n", "50", "--seed", "9", "--out", "s.csv",
        ],
    );
    let (head, got) = rows(&d.join("s.csv"));
    assert_eq!(head, "x0,x1,x2");
    let want: Vec<Vec<f32>> = (0..50)
        .map(|i| {
            units
                .to_data(sample(&*m, &schedule(), &header.sampler, 9, i))
                .to_vec()
        })
        .collect();
    assert!(got == want, "samples differ from the core's");

    // From given x_T: a 3-column file.
    let starts: Vec<[f32; 3]> = (0..20).map(|i| [i as f32 * 0.1, -1.0, 0.5]).collect();
    let csv: String = starts
        .iter()
        .map(|p| format!("{},{},{}\n", p[0], p[1], p[2]))
        .collect();
    std::fs::write(d.join("x.csv"), csv).unwrap();
    ok(
        d,
        &[
            "sample", "--model", "m3.tdm", "--x-init", "x.csv", "--out", "f.csv",
        ],
    );
    let (_, got) = rows(&d.join("f.csv"));
    let want: Vec<Vec<f32>> = (0..20)
        .map(|i| {
            let x = sample_from(&*m, &schedule(), &header.sampler, starts[i], 42, i as u64);
            units.to_data(x).to_vec()
        })
        .collect();
    assert!(got == want, "--x-init samples differ from the core's");

    ok(
        d,
        &[
            "score", "--model", "m3.tdm", "--points", "x.csv", "--seed", "4", "--out", "a.csv",
        ],
    );
    let (head, got) = rows(&d.join("a.csv"));
    assert_eq!(head, "score");
    let want: Vec<Vec<f32>> = (0..20)
        .map(|i| {
            vec![anomaly_score(
                &*m,
                &schedule(),
                Some(&units),
                4,
                i as u64,
                starts[i],
            )]
        })
        .collect();
    assert!(got == want, "scores differ from the core's");

    // A file of 2-D points is one line.
    std::fs::write(d.join("two.csv"), "1,2\n3,4\n").unwrap();
    let out = tinyddpm(
        d,
        &[
            "score", "--model", "m3.tdm", "--points", "two.csv", "--out", "t.csv",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr).lines().count(),
        1,
        "{}",
        text(&out.stderr)
    );
    assert!(!d.join("t.csv").exists());
}

#[test]
fn shapes_no_dispatch_names_sample_on_the_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let one = Data {
        dim: 1,
        source: Source::File,
        units: None,
    };
    let m1 = model::<40, 5, 1>();
    let h1 = save(&d.join("m1.tdm"), &*m1, one);
    let m2 = model::<17, 1, 2>();
    let h2 = save(&d.join("m2.tdm"), &*m2, Data::SWISS_ROLL);
    ok(
        d,
        &["sample", "--model", "m1.tdm", "-n", "30", "--out", "a.csv"],
    );
    ok(
        d,
        &["sample", "--model", "m2.tdm", "-n", "30", "--out", "b.csv"],
    );
    let (head, got) = rows(&d.join("a.csv"));
    assert_eq!(head, "x0");
    let want: Vec<Vec<f32>> = (0..30)
        .map(|i| sample(&*m1, &schedule(), &h1.sampler, 42, i).to_vec())
        .collect();
    assert!(got == want, "D = 1");
    let (head, got) = rows(&d.join("b.csv"));
    assert_eq!(head, "x,y");
    let want: Vec<Vec<f32>> = (0..30)
        .map(|i| sample(&*m2, &schedule(), &h2.sampler, 42, i).to_vec())
        .collect();
    assert!(got == want, "H = 17, B = 1");

    // The PyTorch state dict of a shape no dispatch names: the core model's tensors, and
    // imported back, the same model.
    ok(
        d,
        &["export", "--model", "m1.tdm", "--out", "m1.safetensors"],
    );
    let bytes = std::fs::read(d.join("m1.safetensors")).unwrap();
    let exported = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names = 0;
    m1.for_each_tensor(|name, shape, data| {
        let t = exported.tensor(&name.to_string()).unwrap();
        assert_eq!(t.shape(), shape, "{name}");
        let values: Vec<f32> = t
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert!(values == data, "{name}");
        names += 1;
    });
    assert_eq!(exported.len(), names);
    let said = ok(
        d,
        &["import", "--from", "m1.safetensors", "--out", "n1.tdm"],
    );
    assert!(said.contains("H = 40, B = 5, D = 1"), "{said}");
    let ddim = ["--sampler", "ddim", "--steps", "10", "-n", "30"];
    for (model, out) in [("m1.tdm", "a10.csv"), ("n1.tdm", "n10.csv")] {
        let args = [&["sample", "--model", model, "--out", out][..], &ddim].concat();
        ok(d, &args);
    }
    assert_eq!(
        std::fs::read(d.join("n10.csv")).unwrap(),
        std::fs::read(d.join("a10.csv")).unwrap()
    );

    // A width the GPU kernels do not hold: refused in one line before any device is looked
    // for, or run on the CPU under `auto` with a note.
    let out = tinyddpm(
        d,
        &[
            "sample", "--model", "m2.tdm", "-n", "30", "--device", "cuda", "--out", "c.csv",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("multiple of 8"), "{stderr}");
    assert!(!d.join("c.csv").exists());
    let out = tinyddpm(
        d,
        &[
            "sample", "--model", "m2.tdm", "-n", "30", "--device", "auto", "--out", "c.csv",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("note: running on the CPU"));
    assert!(rows(&d.join("c.csv")).1 == want, "auto on the CPU");
}

/// The width and height a PNG's header gives.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[1..4], b"PNG");
    let word = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (word(16), word(20))
}

/// `plot samples` draws points of any D: a panel per pair of the first coordinates (three
/// coordinates: three panels in a row), a histogram of one; `plot compare` draws two sets of
/// any one D (the pair panels in two rows, two histograms side by side) and refuses, in one
/// line, sets of two widths or a built-in (2-D) set against points of another D; `plot
/// forward --points` noises a file's points of any D.
#[test]
fn plot_samples_compare_and_forward_draw_any_dimension() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let three: String = (0..300)
        .map(|i| format!("{},{},{}\n", (i as f32 * 0.1).sin(), i as f32 / 300.0, -0.5))
        .collect();
    std::fs::write(d.join("three.csv"), three).unwrap();
    let one: String = (0..300)
        .map(|i| format!("{}\n", (i as f32 * 0.37).sin()))
        .collect();
    std::fs::write(d.join("one.csv"), one).unwrap();
    ok(
        d,
        &[
            "plot",
            "samples",
            "--samples",
            "three.csv",
            "--out",
            "t.png",
        ],
    );
    assert_eq!(png_size(&d.join("t.png")), (3 * 340, 340 + 40));
    ok(
        d,
        &["plot", "samples", "--samples", "one.csv", "--out", "o.png"],
    );
    assert_eq!(png_size(&d.join("o.png")), (600, 420));
    let out = tinyddpm(
        d,
        &[
            "plot",
            "compare",
            "--samples",
            "three.csv",
            "--out",
            "c.png",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("3 columns") && stderr.contains("--against"),
        "{stderr}"
    );
    assert!(!d.join("c.png").exists());
    let compare = |samples: &str, against: &str| {
        let args = [
            "plot",
            "compare",
            "--samples",
            samples,
            "--against",
            against,
        ];
        tinyddpm(d, &[&args[..], &["--out", "c.png"]].concat())
    };
    assert!(compare("three.csv", "three.csv").status.success());
    assert_eq!(png_size(&d.join("c.png")), (3 * 340, 2 * 340 + 40));
    std::fs::remove_file(d.join("c.png")).unwrap();
    assert!(compare("one.csv", "one.csv").status.success());
    assert_eq!(png_size(&d.join("c.png")), (1100, 460));
    std::fs::remove_file(d.join("c.png")).unwrap();
    let out = compare("three.csv", "one.csv");
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("has 1 columns, --samples"), "{stderr}");
    assert!(!d.join("c.png").exists());
    // the forward process of a file's points of any D: the seven panels in a row
    for points in ["three.csv", "one.csv"] {
        ok(
            d,
            &["plot", "forward", "--points", points, "--out", "f.png"],
        );
        let (width, height) = png_size(&d.join("f.png"));
        assert_eq!(png_size(&d.join("f.png")), (7 * 340, 340 + 40), "{points}");
        assert!(width > height);
        std::fs::remove_file(d.join("f.png")).unwrap();
    }
}

/// An integer model of 3-D points and a shape no dispatch names samples, scores and
/// inspects as the core's `QModel<H, B, D>` computed here.
#[test]
fn an_integer_model_of_any_shape_samples_and_scores_as_the_core() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let q = valid_qmodel::<20, 1, 3>();
    let sampler = Sampler::Ddim {
        steps: 10,
        eta: 1.0,
        spacing: Spacing::Trailing,
        clip: false,
    };
    let data = Data {
        dim: 3,
        source: Source::File,
        units: None,
    };
    let header = Header::new::<20, 1, 1000>(ScheduleKind::SEED, sampler).with_data(data);
    // The sections of a shape read at run time: the core's encoder's bytes, read back whole,
    // with the core's time embedding.
    let flat = FlatQModel::of(&*q);
    let mut typed = vec![0; file::encoded_len(Kind::Integer, &header).unwrap()];
    let len = file::encode(&*q, &header, &mut typed).unwrap();
    typed.truncate(len);
    assert_eq!(flat.encode(&header).unwrap(), typed);
    assert_eq!(FlatQModel::decode(&typed).unwrap(), flat);
    let mut temb = [0i16; 20];
    for t in [0.0, 0.5, 0.999] {
        flat.time_embedding(t, &mut temb);
        assert_eq!(temb, q.time_embedding(t));
    }
    std::fs::write(d.join("q3.tdm"), typed).unwrap();
    let info = ok(d, &["inspect", "q3.tdm"]);
    assert!(
        info.contains("D = 3") && info.contains("output_layer"),
        "{info}"
    );

    ok(
        d,
        &[
            "sample", "--model", "q3.tdm", "-n", "40", "--seed", "5", "--out", "s.csv",
        ],
    );
    let (head, got) = rows(&d.join("s.csv"));
    assert_eq!(head, "x0,x1,x2");
    let schedule = schedule();
    let want: Vec<Vec<f32>> = (0..40)
        .map(|i| {
            let mut noise = [NoiseStream::new(5, i)];
            let x_t = gaussian_draw::<f32, 3>(&mut noise);
            chain(&*q, sampler.steps(&schedule), x_t, &mut noise, |_, _| ()).to_vec()
        })
        .collect();
    assert!(got == want, "samples differ from the core's");

    let points: Vec<[f32; 3]> = (0..15)
        .map(|i| [i as f32 * 0.2 - 1.0, 0.5, -0.25])
        .collect();
    let csv: String = points
        .iter()
        .map(|p| format!("{},{},{}\n", p[0], p[1], p[2]))
        .collect();
    std::fs::write(d.join("p.csv"), csv).unwrap();
    ok(
        d,
        &[
            "score", "--model", "q3.tdm", "--points", "p.csv", "--seed", "3", "--out", "a.csv",
        ],
    );
    let (_, got) = rows(&d.join("a.csv"));
    let want: Vec<Vec<f32>> = points
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let model = Fixed::<_, 3>(&*q);
            vec![anomaly_score_in(model, &schedule, None, 3, i as u64, x)]
        })
        .collect();
    assert!(got == want, "scores differ from the core's");
}

/// `quantize` takes a model of 3-D points trained on a file (calibrating on the file's points,
/// mapped by the model's units): the file is the library's quantization, and the integer
/// model's noise prediction stays close to the float model's on forward-process inputs.
/// `plot reverse` draws both models' chains (their first two coordinates).
#[test]
fn quantize_and_plot_reverse_take_a_model_of_3d_points() {
    use tinyddpm::quantize::{Calibration, CalibrationData, quantize_model};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut csv = String::from("a,b,c\n");
    for i in 0..600 {
        let s = i as f32 * 0.01;
        csv += &format!("{},{},{}\n", 3.0 + 2.0 * s.cos(), -1.0 + s.sin(), 0.1 * s);
    }
    std::fs::write(d.join("p.csv"), &csv).unwrap();
    let train = [
        "train", "--data", "p.csv", "--steps", "200", "--hidden", "24",
    ];
    ok(
        d,
        &[&train[..], &["--blocks", "2", "--out", "f.tdm"]].concat(),
    );
    let quantize = ["quantize", "--model", "f.tdm", "--out", "q.tdm"];
    let flags = ["--calibration", "3000", "--calibration-data", "p.csv"];
    ok(d, &[&quantize[..], &flags].concat());

    let float = FlatModel::decode(&std::fs::read(d.join("f.tdm")).unwrap()).unwrap();
    let model = float.to_model::<24, 2, 3>().unwrap();
    let header = file::open(&std::fs::read(d.join("f.tdm")).unwrap())
        .unwrap()
        .header;
    let units = header.data.units.unwrap();
    let mut points: Vec<f32> = csv
        .lines()
        .skip(1)
        .flat_map(|l| l.split(','))
        .map(|v| v.parse().unwrap())
        .collect();
    points.chunks_exact_mut(3).for_each(|p| units.to_model(p));
    let points = tinyddpm::scores::Points::new(3, points).unwrap();
    let calibration = Calibration {
        samples: 3000,
        seed: Calibration::default().seed,
        data: CalibrationData::Points(points.clone()),
    };
    let (want, _) = quantize_model(&*model, &schedule(), &calibration).unwrap();
    let got = FlatQModel::decode(&std::fs::read(d.join("q.tdm")).unwrap()).unwrap();
    assert!(got == FlatQModel::of(&*want), "q.tdm is not the library's");
    for model in ["f.tdm", "q.tdm"] {
        let plot = [
            "plot", "reverse", "--model", model, "-n", "50", "--out", "r.png",
        ];
        ok(d, &plot);
        let (width, height) = png_size(&d.join("r.png"));
        assert!(width > 5 * height, "{model}: {width} × {height}");
        std::fs::remove_file(d.join("r.png")).unwrap();
    }

    // ε̂ of the integer model against the float model's at x_t of the data
    let schedule = schedule();
    let (mut sum, mut max, mut n) = (0f64, 0f64, 0);
    for t in (0..1000).step_by(50) {
        let t_input = t as f32 / 1000.0;
        let (temb, qtemb) = (model.time_embedding(t_input), want.time_embedding(t_input));
        let (signal, noise) = schedule.forward_coefs(t);
        for (i, p) in points.rows().enumerate().step_by(7) {
            let mut z = [0.0f32; 3];
            tinyddpm_core::NoiseStream::new(5, i as u64).fill_gaussians(&mut z);
            let x: [f32; 3] = std::array::from_fn(|c| signal * p[c] + noise * z[c]);
            let float = model.predict_noise(x, &temb);
            let int = want.predict_noise(x.map(|v| [v]), &qtemb).map(|[v]| v);
            for c in 0..3 {
                let e = f64::from((int[c] - float[c]).abs());
                (sum, max, n) = (sum + e, max.max(e), n + 1);
            }
        }
    }
    let mean = sum / f64::from(n);
    println!("ε̂ integer vs float, D = 3: mean {mean:.2e}, max {max:.2e} ({n} values)");
    assert!(mean < 5e-3 && max < 0.03, "mean {mean}, max {max}");
}

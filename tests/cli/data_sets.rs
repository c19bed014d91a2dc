//! `train --data`: the built-in data sets from the command line — a run on each is the
//! library's run on it, a checkpoint resumes on its own set, and a wrong name or a resume
//! on another set is one line.

use tinyddpm::data::DataSet;
use tinyddpm::train::{TrainConfig, Trainer, Training};

use super::table::{Case, Setup, checkpoint_bytes, run_case};
use super::*;

/// The losses of `steps` steps of the library's trainer on `data` at H = 32, B = 2, batch 16.
fn library_losses(data: DataSet, steps: u64) -> Vec<(u64, u32)> {
    let config = TrainConfig {
        batch: 16,
        data: data.into(),
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::<1000>::new(config, 32, 2, &schedule()).unwrap();
    let mut losses = Vec::new();
    trainer
        .run(steps, &mut |step, loss| losses.push((step, loss.to_bits())))
        .unwrap();
    losses
}

const SMALL: [&str; 6] = ["--batch", "16", "--hidden", "32", "--blocks", "2"];

#[test]
fn train_on_moons_is_the_librarys_run_and_resumes_on_moons_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = |extra: &[&str]| ok(d, &[&["train"][..], &SMALL, extra].concat());
    run(&["--data", "moons", "--steps", "200", "--out", "m.tdm"]);
    let inspect = ok(d, &["inspect", "m.tdm"]);
    assert!(inspect.contains("H = 32, B = 2"), "{inspect}");
    let losses = bits_of(&csv::read_losses(&d.join("m.losses.csv")).unwrap());
    assert_eq!(losses, library_losses(DataSet::Moons, 200));
    assert_ne!(losses[..5], library_losses(DataSet::SwissRoll, 5)[..]);

    // half the run, checkpointed, then resumed with and without naming the set
    let half = ["--data", "moons", "--steps", "100", "--out", "h.tdm"];
    run(&[&half[..], &["--checkpoint", "c.ckpt"]].concat());
    let inspect = ok(d, &["inspect", "c.ckpt"]);
    assert!(inspect.contains("version 2"), "{inspect}");
    for (name, data) in [("r1.tdm", &[][..]), ("r2.tdm", &["--data", "moons"][..])] {
        std::fs::copy(d.join("h.losses.csv"), d.join("r.losses.csv")).unwrap();
        let resume = [
            "train", "--resume", "c.ckpt", "--steps", "200", "--out", name,
        ];
        ok(
            d,
            &[&resume[..], data, &["--losses", "r.losses.csv"]].concat(),
        );
        assert!(std::fs::read(d.join("m.tdm")).unwrap() == std::fs::read(d.join(name)).unwrap());
        let resumed = bits_of(&csv::read_losses(&d.join("r.losses.csv")).unwrap());
        assert_eq!(resumed, losses, "{name}");
    }
}

/// A checkpoint of a short run on moons (made once, by the binary).
fn moons_checkpoint() -> Vec<u8> {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let args = ["--steps", "20", "--data", "moons", "--checkpoint", "c.ckpt"];
            ok(
                dir.path(),
                &[&["train"][..], &SMALL, &args, &["--out", "t.tdm"]].concat(),
            );
            std::fs::read(dir.path().join("c.ckpt")).unwrap()
        })
        .clone()
}

fn swiss_roll_checkpoint() -> Vec<u8> {
    checkpoint_bytes().to_vec()
}

#[test]
fn an_unknown_set_or_a_resume_on_another_set_is_one_line() {
    let resume = |make: fn() -> Vec<u8>, data, message| Case {
        setup: Box::leak(vec![Setup::Make("c.ckpt", make)].into_boxed_slice()),
        args: Box::leak(
            [
                "train", "--resume", "c.ckpt", "--steps", "30", "--data", data, "--out", "t.tdm",
            ]
            .to_vec()
            .into_boxed_slice(),
        ),
        code: 1,
        message,
        ..Case::default()
    };
    let cases = [
        Case {
            args: &["train", "--data", "nosuch", "--out", "t.tdm"],
            code: 2,
            message: "unknown data set 'nosuch' (known: swissroll, circles, rings, moons, \
                      8gaussians, pinwheel, 2spirals, checkerboard, line, cos)",
            ..Case::default()
        },
        resume(
            moons_checkpoint,
            "circles",
            "cannot resume training: the checkpoint's run trains on moons, not circles",
        ),
        // A checkpoint written before data sets (version 1) is a Swiss-roll run.
        resume(
            swiss_roll_checkpoint,
            "moons",
            "cannot resume training: the checkpoint's run trains on swissroll, not moons",
        ),
    ];
    for case in &cases {
        run_case(case);
    }
}

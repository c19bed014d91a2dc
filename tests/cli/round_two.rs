//! Round two of the hostile table: closed pipes, thread limits, endless and
//! oversized inputs, FIFOs and pipes as inputs, checkpoints `train --resume` refuses, long
//! names, headers every command must refuse alike, writers that hold their temporaries.
//! The signals are in `main.rs` (they need a run to be under way).

use super::*;
use Setup::*;

/// A small CSV of points (any points: `eval` scores them, `plot` draws them).
fn points() -> Vec<u8> {
    let mut csv = b"x,y\n".to_vec();
    for i in 0..200 {
        let t = i as f32 * 0.07;
        csv.extend(format!("{},{}\n", t.cos() * t, t.sin() * t).bytes());
    }
    csv
}

/// One more point than a figure holds (1,000,000).
fn too_many_points() -> Vec<u8> {
    b"x,y\n"
        .iter()
        .chain(&b"0.5,0.25\n".repeat(1_000_001))
        .copied()
        .collect()
}

/// The loss log `train --steps 2000000` writes: quadratic work would take minutes.
fn long_loss_log() -> Vec<u8> {
    let mut csv = b"step,loss\n".to_vec();
    for step in 0..2_000_000u32 {
        csv.extend(format!("{step},{}\n", 1.0 / (1.0 + step as f32)).bytes());
    }
    csv
}

/// A quality table of 50,000 samplers, one row each.
fn many_labels_table() -> Vec<u8> {
    let mut csv = b"label,evaluations,mean_distance,p95_distance\n".to_vec();
    for label in 0..50_000 {
        csv.extend(format!("s{label},10,0.1,0.2\n").bytes());
    }
    csv
}

/// `args` made `'static`, for a row whose arguments are built.
fn leak(args: Vec<String>) -> &'static [&'static str] {
    Box::leak(
        args.into_iter()
            .map(|a| &*Box::leak(a.into_boxed_str()))
            .collect::<Vec<&'static str>>()
            .into_boxed_slice(),
    )
}

/// A legal name of 250 bytes (the usual limit is 255), too long for any temporary name
/// that merely appends to it.
fn long_name() -> String {
    format!("{}.csv", "s".repeat(246))
}

/// The commands that print, with stdout closed: each ends its printing quietly and still
/// writes its file.
fn closed_stdout_cases() -> Vec<Case> {
    let quiet = |args, created| Case {
        setup: &[Make("s.csv", points)],
        args,
        code: 0,
        created,
        closed_stdout: true,
        ..Case::default()
    };
    vec![
        quiet(
            &[
                "quantize",
                "--model",
                "m.tdm",
                "--calibration",
                "2000",
                "--out",
                "q.tdm",
            ],
            &["q.tdm"],
        ),
        quiet(&["inspect", "m.tdm"], &[]),
        quiet(
            &["sample", "--model", "m.tdm", "-n", "5", "--out", "o.csv"],
            &["o.csv"],
        ),
        quiet(&["eval", "--samples", "s.csv"], &[]),
        quiet(&["eval", "--samples", "s.csv", "--json"], &[]),
        quiet(
            &[
                "train", "--steps", "3", "--batch", "8", "--hidden", "32", "--out", "t.tdm",
            ],
            &["t.tdm", "t.losses.csv"],
        ),
        quiet(
            &["export", "--model", "m.tdm", "--out", "m.safetensors"],
            &["m.safetensors"],
        ),
        quiet(
            &["plot", "samples", "--samples", "s.csv", "--out", "s.png"],
            &["s.png"],
        ),
    ]
}

/// Threads that cannot start (an nproc limit as an unprivileged user), and a thread count
/// from the environment.
fn thread_cases() -> Vec<Case> {
    let limited = |args, env| Case {
        setup: &[Make("s.csv", points)],
        args,
        code: 1,
        message: "cannot start 2 worker threads",
        nproc: Some(1),
        env,
        ..Case::default()
    };
    let mut cases = vec![
        limited(
            &["sample", "--model", "m.tdm", "-n", "2", "--out", "o.csv"],
            &[],
        ),
        limited(&["eval", "--samples", "s.csv"], &[]),
        limited(&["quantize", "--model", "m.tdm", "--out", "q.tdm"], &[]),
        limited(
            &[
                "plot", "reverse", "--model", "m.tdm", "-n", "2", "--out", "r.png",
            ],
            &[],
        ),
        limited(&["train", "--steps", "2", "--out", "t.tdm"], &[]),
        Case {
            message: "cannot start 2 worker threads",
            ..limited(
                &["sample", "--model", "m.tdm", "-n", "2", "--out", "o.csv"],
                &[("RAYON_NUM_THREADS", "100000")],
            )
        },
    ];
    // More threads than cores from the environment: lowered with a note, like --threads.
    for (args, created) in [
        (
            &["sample", "--model", "m.tdm", "-n", "2", "--out", "o.csv"][..],
            &["o.csv"][..],
        ),
        (&["eval", "--samples", "s.csv"], &[]),
        (
            &[
                "quantize",
                "--model",
                "m.tdm",
                "--calibration",
                "2000",
                "--out",
                "q.tdm",
            ],
            &["q.tdm"],
        ),
        (
            &[
                "plot", "reverse", "--model", "m.tdm", "-n", "20", "--out", "r.png",
            ],
            &["r.png"],
        ),
    ] {
        cases.push(Case {
            setup: &[Make("s.csv", points)],
            args,
            code: 0,
            message: "note: RAYON_NUM_THREADS 300 is more than the",
            created,
            env: &[("RAYON_NUM_THREADS", "300")],
            ..Case::default()
        });
    }
    cases
}

/// Endless and oversized inputs: a row cap with one line, memory bounded.
fn bounded_input_cases() -> Vec<Case> {
    // 1 GB of address space: an unbounded reader of an endless stream aborts within it.
    let endless = |args, message| Case {
        args,
        code: 1,
        message,
        stdin: Feed::Endless(b"0.5,0.25\n"),
        memory_limit_kib: Some(1_000_000),
        ..Case::default()
    };
    vec![
        endless(
            &[
                "sample",
                "--model",
                "m.tdm",
                "--x-init",
                "/dev/stdin",
                "--out",
                "o.csv",
            ],
            "more than 10000000 data rows",
        ),
        endless(
            &["eval", "--samples", "/dev/stdin"],
            "more than 10000000 data rows",
        ),
        endless(
            &[
                "plot",
                "samples",
                "--samples",
                "/dev/stdin",
                "--out",
                "s.png",
            ],
            "more than 1000000 data rows",
        ),
        // A test knob from the environment only lowers the chunk: bounded memory.
        Case {
            args: &[
                "sample",
                "--model",
                "m.tdm",
                "-n",
                "300000",
                "--sampler",
                "ddim",
                "--steps",
                "1",
                "--out",
                "o.csv",
            ],
            code: 0,
            created: &["o.csv"],
            memory_limit_kib: Some(1_000_000),
            env: &[("TINYDDPM_SAMPLE_CHUNK", U64_MAX)],
            ..Case::default()
        },
        Case {
            setup: &[Make("big.csv", too_many_points)],
            args: &["plot", "samples", "--samples", "big.csv", "--out", "s.png"],
            code: 1,
            message: "more than 1000000 data rows",
            ..Case::default()
        },
        Case {
            setup: &[Make("big.csv", too_many_points), Make("s.csv", points)],
            args: &["plot", "compare", "--samples", "big.csv", "--out", "c.png"],
            code: 1,
            message: "more than 1000000 data rows",
            ..Case::default()
        },
        Case {
            setup: &[Make("big.csv", too_many_points), Make("s.csv", points)],
            args: &[
                "plot",
                "compare",
                "--samples",
                "s.csv",
                "--against",
                "big.csv",
                "--out",
                "c.png",
            ],
            code: 1,
            message: "more than 1000000 data rows",
            ..Case::default()
        },
        // Linear in the log (a running sum): two million rows draw in about a second.
        Case {
            setup: &[Make("l.csv", long_loss_log)],
            args: &["plot", "loss", "--losses", "l.csv", "--out", "l.png"],
            code: 0,
            created: &["l.png"],
            ..Case::default()
        },
        Case {
            setup: &[Make("q.csv", many_labels_table)],
            args: &["plot", "quality", "--table", "q.csv", "--out", "q.png"],
            code: 1,
            message: "more than 24",
            ..Case::default()
        },
    ]
}

/// FIFOs and pipes as inputs: read once, `inspect` never hangs, the others say what they
/// wait for and go on when the writer comes.
fn pipe_cases() -> Vec<Case> {
    let late = |args, model: fn() -> Vec<u8>, message, created| Case {
        setup: &[Fifo("fifo"), Make("s.csv", points)],
        args,
        code: 0,
        message,
        created,
        late_writer: Some(("fifo", model)),
        ..Case::default()
    };
    let piped = |args, model: fn() -> Vec<u8>, created| Case {
        args,
        code: 0,
        created,
        stdin: Feed::Bytes(model),
        ..Case::default()
    };
    let model = || model_bytes().to_vec();
    let q_model = || q_model_bytes().to_vec();
    let checkpoint = || checkpoint_bytes().to_vec();
    vec![
        Case {
            setup: &[Fifo("fifo")],
            args: &["inspect", "fifo"],
            code: 1,
            message: "fifo: nothing to read after 5 s (a FIFO with no writer?)",
            ..Case::default()
        },
        late(&["inspect", "fifo"], model, "", &[]),
        late(
            &[
                "quantize",
                "--model",
                "fifo",
                "--calibration",
                "2000",
                "--out",
                "q.tdm",
            ],
            model,
            "note: waiting for something to read from fifo (--model)",
            &["q.tdm"],
        ),
        late(
            &[
                "sample", "--model", "m.tdm", "--x-init", "fifo", "--out", "o.csv",
            ],
            points,
            "note: waiting for something to read from fifo (--x-init)",
            &["o.csv"],
        ),
        late(
            &["import", "--from", "fifo", "--out", "i.tdm"],
            || std::fs::read(fixture("torch_model_3k.safetensors")).unwrap(),
            "note: waiting for something to read from fifo (--from)",
            &["i.tdm"],
        ),
        late(
            &["plot", "quality", "--table", "fifo", "--out", "q.png"],
            || b"label,evaluations,mean_distance,p95_distance\nddpm,1000,0.1,0.2\n".to_vec(),
            "note: waiting for something to read from fifo (--table)",
            &["q.png"],
        ),
        piped(&["inspect", "/dev/stdin"], model, &[]),
        piped(&["inspect", "/dev/stdin"], q_model, &[]),
        piped(
            &[
                "sample",
                "--model",
                "/dev/stdin",
                "-n",
                "2",
                "--out",
                "o.csv",
            ],
            q_model,
            &["o.csv"],
        ),
        piped(
            &[
                "plot",
                "reverse",
                "--model",
                "/dev/stdin",
                "-n",
                "20",
                "--out",
                "r.png",
            ],
            model,
            &["r.png"],
        ),
        piped(
            &["export", "--model", "/dev/stdin", "--out", "m.safetensors"],
            model,
            &["m.safetensors"],
        ),
        piped(
            &[
                "quantize",
                "--model",
                "/dev/stdin",
                "--calibration",
                "2000",
                "--out",
                "q.tdm",
            ],
            model,
            &["q.tdm"],
        ),
        piped(
            &[
                "train",
                "--resume",
                "/dev/stdin",
                "--steps",
                "25",
                "--out",
                "t.tdm",
            ],
            checkpoint,
            &["t.tdm", "t.losses.csv"],
        ),
    ]
}

/// Checkpoints `train --resume` refuses: `inspect` says so.
fn checkpoint_cases() -> Vec<Case> {
    let refused = |make: fn() -> Vec<u8>| {
        Case {
            setup: &[],
            args: &["inspect", "c.ckpt"],
            code: 0,
            message: "no command will load it (training cannot resume from it)",
            ..Case::default()
        }
        .with_setup(make)
    };
    vec![
        refused(|| edited_checkpoint(|h| h.batch = 0)),
        refused(|| edited_checkpoint(|h| h.lr = f32::NAN)),
        // One parameter more than the shape has, the payload as long as the header says.
        refused(|| {
            let mut bytes = edited_checkpoint(|h| h.params += 1);
            let n = bytes.len();
            bytes.splice(n - 4..n - 4, [0; 12]);
            let n = bytes.len();
            let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&bytes[..n - 4]);
            bytes[n - 4..].copy_from_slice(&crc.to_le_bytes());
            bytes
        }),
        refused(|| {
            edited_checkpoint(|h| {
                h.schedule = ScheduleKind::Linear {
                    beta_start: 0.0,
                    beta_end: 0.0,
                }
            })
        }),
        refused(|| edited_checkpoint(|h| h.batch = 65_537)),
    ]
}

impl Case {
    /// This case with `c.ckpt` made by `make` (a row's setup is `'static`).
    fn with_setup(self, make: fn() -> Vec<u8>) -> Case {
        Case {
            setup: Box::leak(vec![Make("c.ckpt", make)].into_boxed_slice()),
            ..self
        }
    }
}

/// Long names, one validation of a header, temporaries held by another writer, and the
/// messages of the report.
fn message_cases() -> Vec<Case> {
    let name = long_name();
    vec![
        Case {
            args: leak(
                ["sample", "--model", "m.tdm", "-n", "2", "--out", &name]
                    .map(String::from)
                    .to_vec(),
            ),
            code: 0,
            created: leak(vec![name.clone()]),
            ..Case::default()
        },
        // Every error while writing a temporary names the user's target, not the temporary.
        Case {
            args: leak(
                ["sample", "--model", "m.tdm", "-n", "20000", "--out", &name]
                    .map(String::from)
                    .to_vec(),
            ),
            code: 1,
            message: leak(vec![format!(
                "cannot write the samples to {name}: File too large"
            )])[0],
            file_limit_blocks: Some(8),
            ..Case::default()
        },
        Case {
            setup: &[Make("t2.tdm", || edited_model(|_, h| h.timesteps = 2))],
            args: &["plot", "forward", "--model", "t2.tdm", "--out", "f.png"],
            code: 1,
            message: "model shape H=128 B=3 T=2, this build expects H=128 B=3 T=1000",
            ..Case::default()
        },
        Case {
            setup: &[Make("t2.tdm", || edited_model(|_, h| h.timesteps = 2))],
            args: &["sample", "--model", "t2.tdm", "-n", "2", "--out", "o.csv"],
            code: 1,
            message: "model shape H=128 B=3 T=2, this build expects H=128 B=3 T=1000",
            ..Case::default()
        },
        Case {
            setup: &[Make("tmax.tdm", || {
                edited_model(|_, h| h.timesteps = u32::MAX)
            })],
            args: &["plot", "forward", "--model", "tmax.tdm", "--out", "f.png"],
            code: 1,
            message: "T=4294967295, this build expects",
            ..Case::default()
        },
        // A temporary a live writer holds (its pid invisible here) is left alone.
        Case {
            setup: &[Held("o.csv.999999.AbCdEf.tmp")],
            args: &["sample", "--model", "m.tdm", "-n", "2", "--out", "o.csv"],
            code: 0,
            created: &["o.csv"],
            ..Case::default()
        },
        // The loss log outgrows a full disk after a checkpoint: the line says how to go on.
        Case {
            args: &[
                "train",
                "--steps",
                "20000",
                "--batch",
                "8",
                "--hidden",
                "32",
                "--checkpoint",
                "c.ckpt",
                "--checkpoint-every",
                "1000",
                "--out",
                "t.tdm",
            ],
            code: 1,
            message: "cannot write the loss log t.losses.csv: File too large (os error 27); no \
                      model was written; the last checkpoint c.ckpt (step 6000) is intact: \
                      continue with `--resume c.ckpt`",
            created: &["c.ckpt"],
            file_limit_blocks: Some(200),
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
                "o.csv",
            ],
            code: 1,
            message: "the noise schedule",
            ..Case::default()
        },
    ]
}

#[test]
fn every_hostile_run_of_round_two_is_one_line_and_loses_nothing() {
    let cases = [
        closed_stdout_cases(),
        thread_cases(),
        bounded_input_cases(),
        pipe_cases(),
        checkpoint_cases(),
        message_cases(),
    ];
    for case in cases.iter().flatten() {
        run_case(case);
    }
}

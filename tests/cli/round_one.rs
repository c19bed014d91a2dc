//! Round one of the hostile table: bad files, same-file outputs, hostile
//! numbers, full disks.

use super::*;

/// Every defect of the first hostile round, and the further cases found beside them.
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
            setup: &[Make("big.safetensors", || vec![0u8; 66 << 20])],
            args: &["import", "--from", "big.safetensors", "--out", "b.tdm"],
            code: 1,
            message: "more than a state dict of any model a model file can hold",
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
            message: "folder: is a directory, not a file",
            ..Case::default()
        },
        Case {
            args: &["import", "--from", "none.safetensors", "--out", "n.tdm"],
            code: 1,
            message: "cannot read the state dict: none.safetensors: No such file or directory",
            ..Case::default()
        },
        Case {
            setup: &[File("init.csv", b"x0,x1\n0.5,-1.25\n2,0.125\n-0.75,0\n")],
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
            setup: &[Make("v5.tdm", || {
                let mut b = model_bytes().to_vec();
                b[8..10].copy_from_slice(&5u16.to_le_bytes());
                b
            })],
            args: &["sample", "--model", "v5.tdm", "-n", "2", "--out", "s.csv"],
            code: 1,
            message: "model file format version 5, this build reads versions 1 to 4",
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

#[test]
fn every_bad_input_is_one_line_and_loses_nothing() {
    for case in failure_cases() {
        run_case(&case);
    }
}

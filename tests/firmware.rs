//! Firmware parity: the Cortex-M images draw the host's samples bit for bit, under QEMU.
//!
//! Each case builds `firmware/` for a target with a model file, a sampler, a seed and a sample
//! count (the firmware's build-time settings), runs the image in QEMU with `-icount shift=0`
//! under a timeout, its output in a file, and compares every sample line (`index,x,y`, or
//! `index,x0,x1,…` for a model of other points) bit for bit with
//! `tinyddpm sample` for the same model file (float or integer), seed and sampler. The counts
//! are chosen so that both firmware paths run (sample 0 alone, then batches: 3 lanes for the
//! float model and on the M0, 5 for the integer model on the DSP cores), except DDPM-1000 on
//! the M0, one sample. It also guards the budgets the firmware prints: RAM, flash, and
//! instructions per multiply-add, with headroom for codegen drift between compilers.
//!
//! Needs `qemu-system-arm` and the Rust targets `thumbv7em-none-eabihf`, `thumbv6m-none-eabi`
//! and `thumbv8m.main-none-eabihf`; `scripts/install-firmware-tools.sh` installs them.

#[path = "support/qmodel.rs"]
mod qmodel;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// Seed of every case (not the firmware's default, so the setting is exercised).
const SEED: u64 = 7;
/// Wall-clock limit for one QEMU run, seconds.
const QEMU_TIMEOUT: &str = "300";
const INSTALL: &str = "run scripts/install-firmware-tools.sh";

/// A firmware build target and the QEMU machine that runs it.
struct Target {
    triple: &'static str,
    qemu_machine: &'static [&'static str],
}

const M4F: Target = Target {
    triple: "thumbv7em-none-eabihf",
    qemu_machine: &["-machine", "mps2-an386", "-cpu", "cortex-m4"],
};

const M0: Target = Target {
    triple: "thumbv6m-none-eabi",
    qemu_machine: &["-machine", "microbit"],
};

const M33: Target = Target {
    triple: "thumbv8m.main-none-eabihf",
    qemu_machine: &["-machine", "mps2-an505", "-cpu", "cortex-m33"],
};

/// Model files under `firmware/models/`: the seed model, its integer form, and the small
/// float model the M0 can hold.
const SEED_MODEL: &str = "seed.tdm";
const SEED_MODEL_INT: &str = "seed.q.tdm";
const TINY_MODEL: &str = "tiny-h32-b2.tdm";

/// One build and run: what the firmware printed.
struct Run {
    /// Each sample's coordinates, D of them.
    samples: Vec<Vec<f32>>,
    budget: Vec<String>,
}

#[test]
fn m4f_ddpm_1000_matches_host() {
    let run = check(&M4F, SEED_MODEL, "ddpm", 4);
    // Instruction counts are exact for one toolchain; the budgets are 4 and 2.5
    // (measured 3.86 and 2.39 with rustc 1.95). The asserts leave headroom for codegen
    // drift between compiler versions and catch a real regression (a spill, a libcall).
    guard_work(&run, 4.5, 3.0);
}

#[test]
fn m4f_ddim_50_matches_host() {
    check(&M4F, SEED_MODEL, "ddim", 8);
}

#[test]
fn m4f_dpmpp_2m_matches_host() {
    check(&M4F, SEED_MODEL, "dpmpp-2m", 8);
}

#[test]
fn m4f_unipc_matches_host() {
    check(&M4F, SEED_MODEL, "unipc", 4);
}

#[test]
fn m4f_integer_ddpm_1000_matches_host() {
    let run = check(&M4F, SEED_MODEL_INT, "ddpm", 6);
    guard_work(&run, INT_DSP_SINGLE, INT_DSP_BATCHED);
}

#[test]
fn m4f_integer_dpmpp_2m_sde_matches_host() {
    let run = check(&M4F, SEED_MODEL_INT, "dpmpp-2m-sde", 6);
    guard_work(&run, INT_DSP_SINGLE, INT_DSP_BATCHED);
}

#[test]
fn m33_ddpm_1000_matches_host() {
    check(&M33, SEED_MODEL, "ddpm", 4);
}

#[test]
fn m33_dpmpp_2m_sde_matches_host() {
    let run = check(&M33, SEED_MODEL, "dpmpp-2m-sde", 4);
    // LLVM's Cortex-M33 model splits VMLA into VMUL + VADD: more instructions than the
    // M4F's build (measured 4.53 and 3.39).
    guard_work(&run, 5.0, 3.8);
}

#[test]
fn m33_integer_ddpm_1000_matches_host() {
    let run = check(&M33, SEED_MODEL_INT, "ddpm", 6);
    guard_work(&run, INT_DSP_SINGLE, INT_DSP_BATCHED);
}

#[test]
fn m33_integer_dpmpp_2m_sde_matches_host() {
    let run = check(&M33, SEED_MODEL_INT, "dpmpp-2m-sde", 6);
    guard_work(&run, INT_DSP_SINGLE, INT_DSP_BATCHED);
}

#[test]
fn m0_ddpm_1000_matches_host() {
    // Software floats make a DDPM sample ~2e9 instructions on the M0: one is enough.
    check(&M0, TINY_MODEL, "ddpm", 1);
}

#[test]
fn m0_ddim_50_matches_host() {
    check(&M0, TINY_MODEL, "ddim", 4);
}

#[test]
fn m0_dpmpp_2m_sde_matches_host() {
    // The stochastic solver: its noise is each sample's own stream on the board too.
    check(&M0, TINY_MODEL, "dpmpp-2m-sde", 4);
}

#[test]
fn m0_integer_ddpm_1000_matches_host() {
    // One sample: DDPM-1000 is 1000 steps of ~0.65 M instructions here.
    let run = check(&M0, SEED_MODEL_INT, "ddpm", 1);
    guard_work(&run, INT_M0, INT_M0);
    guard_m0_memory(&run);
}

#[test]
fn m0_integer_dpmpp_2m_sde_matches_host() {
    let run = check(&M0, SEED_MODEL_INT, "dpmpp-2m-sde", 4);
    guard_work(&run, INT_M0, INT_M0);
    guard_m0_memory(&run);
}

/// Regression guards on the integer model's instructions per multiply-add (single,
/// batched). The budgets are 2.0 and 1.5 on the DSP cores (measured 1.99 and 1.48 on the
/// M4F, 1.97 and 1.47 on the M33, rustc 1.95) and 6 on the M0 (measured 5.41 and 5.36); the
/// guards leave headroom for codegen drift and catch a real regression.
const INT_DSP_SINGLE: f64 = 2.3;
const INT_DSP_BATCHED: f64 = 1.75;
const INT_M0: f64 = 6.5;

/// Asserts the instructions per multiply-add of both paths (where they ran).
fn guard_work(run: &Run, single: f64, batched: f64) {
    for (path, limit) in [("# single", single), ("# batched", batched)] {
        if let Some(v) = per_multiply_add(run, path) {
            println!("{path}: {v:.2} instructions per multiply-add (guard {limit})");
            assert!(
                v <= limit,
                "{path}: {v} instructions per multiply-add, guard {limit}"
            );
        }
    }
}

/// The M0's budgets for the seed-size integer model: statics + stack ≤ 8 KiB, and weights,
/// code and tables ≤ 200 KB of its 256 KiB flash.
fn guard_m0_memory(run: &Run) {
    let ram = budget_number(run, "# ram:", " B statics + stack");
    assert!(ram <= 8192.0, "statics + stack = {ram} B, budget 8 KiB");
    let flash = budget_number(run, "# flash:", " B in flash");
    assert!(flash <= 200_000.0, "{flash} B of flash, budget 200 KB");
}

/// The tiny model with data units (`x·scale + shift` on every sample), written as a
/// version 3 model file: what a model trained on a normalized CSV holds.
fn tiny_model_with_units() -> PathBuf {
    use tinyddpm_core::file::{self, Kind};
    use tinyddpm_core::{Data, Model, Source, Units};
    let bytes = fs::read(firmware_dir().join("models").join(TINY_MODEL)).unwrap();
    let mut model = Box::new(Model::<32, 2>::ZERO);
    let header = file::decode_into(&bytes, &mut *model).unwrap();
    let header = header.with_data(Data {
        dim: 2,
        source: Source::File,
        units: Units::new(&[1.7, 0.3], &[-0.25, 40.0]),
    });
    let mut out = vec![0; file::encoded_len(Kind::Float, &header).unwrap()];
    file::encode(&*model, &header, &mut out).unwrap();
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("tiny-units.tdm");
    fs::write(&path, out).unwrap();
    path
}

/// A model of 3-D points with data units, of a width no board kernel was tuned for (H = 24,
/// B = 1): what a model trained on a 3-column CSV holds. Its weights are the test's own.
fn model_3d(target: &Target) -> PathBuf {
    use tinyddpm_core::file::{self, Kind};
    use tinyddpm_core::{Data, Header, Model, Sampler, ScheduleKind, Source, Units};
    let mut model = Box::new(Model::<24, 1, 3>::ZERO);
    let mut n = 0u32;
    model.for_each_param_mut(|w| {
        n += 1;
        *w = ((n as f32 * 0.618_034).fract() - 0.5) * 0.3;
    });
    let header = Header::new::<24, 1, 1000>(ScheduleKind::SEED, Sampler::Ddpm).with_data(Data {
        dim: 3,
        source: Source::File,
        units: Units::new(&[1.7, 0.3, 2.0], &[-0.25, 40.0, 0.5]),
    });
    let mut out = vec![0; file::encoded_len(Kind::Float, &header).unwrap()];
    file::encode(&*model, &header, &mut out).unwrap();
    // One file per target: the cases run in parallel.
    let name = format!("model-3d-{}.tdm", target.triple);
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    fs::write(&path, out).unwrap();
    path
}

/// An integer model of 3-D points (H = 32, B = 1), valid, written to a file per target: the
/// build script writes a `QModel<H, B, D>` of whatever shape the file holds.
fn qmodel_3d(target: &Target) -> PathBuf {
    use tinyddpm_core::file::{self, Kind};
    use tinyddpm_core::{Data, Header, Sampler, ScheduleKind, Source};
    let q = qmodel::valid_qmodel::<32, 1, 3>();
    let header = Header::new::<32, 1, 1000>(ScheduleKind::SEED, Sampler::Ddpm).with_data(Data {
        dim: 3,
        source: Source::File,
        units: None,
    });
    let mut out = vec![0; file::encoded_len(Kind::Integer, &header).unwrap()];
    file::encode(&*q, &header, &mut out).unwrap();
    let name = format!("qmodel-3d-{}.tdm", target.triple);
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    fs::write(&path, out).unwrap();
    path
}

#[test]
fn m0_integer_model_of_3d_points_matches_host() {
    check_file(&M0, &qmodel_3d(&M0), "ddim", 4);
}

#[test]
fn m4f_integer_model_of_3d_points_matches_host() {
    check_file(&M4F, &qmodel_3d(&M4F), "dpmpp-2m", 4);
}

#[test]
fn m33_integer_model_of_3d_points_matches_host() {
    check_file(&M33, &qmodel_3d(&M33), "ddim", 4);
}

#[test]
fn m0_model_of_3d_points_matches_host() {
    check_file(&M0, &model_3d(&M0), "ddim", 4);
}

#[test]
fn m4f_model_of_3d_points_matches_host() {
    check_file(&M4F, &model_3d(&M4F), "dpmpp-2m", 4);
}

#[test]
fn m33_model_of_3d_points_matches_host() {
    check_file(&M33, &model_3d(&M33), "ddim", 4);
}

#[test]
fn m0_model_with_units_matches_host() {
    check_file(&M0, &tiny_model_with_units(), "ddim", 4);
}

#[test]
fn m4f_model_with_units_matches_host() {
    check_file(&M4F, &tiny_model_with_units(), "dpmpp-2m", 4);
}

/// [`check_file`] for a model file of `firmware/models/`.
fn check(target: &Target, model: &str, sampler: &str, count: u64) -> Run {
    check_file(
        target,
        &firmware_dir().join("models").join(model),
        sampler,
        count,
    )
}

/// Builds, runs and compares one case (`model` a model file); returns what the firmware
/// printed.
fn check_file(target: &Target, model: &Path, sampler: &str, count: u64) -> Run {
    require_tools(target);
    let name = model.file_name().unwrap().to_string_lossy();
    let case = format!("{}-{name}-{sampler}-{count}", target.triple);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("firmware-runs");
    fs::create_dir_all(&dir).unwrap();
    assert!(
        model.is_file(),
        "{} is missing: it is made by `tinyddpm train` or `tinyddpm quantize` (see \
         firmware/README.md)",
        model.display()
    );

    let elf = build(
        target,
        model,
        sampler,
        count,
        &dir.join(format!("{case}.elf")),
    );
    let run = run_qemu(target, &elf, &dir.join(format!("{case}.out")));
    for line in &run.budget {
        println!("{case}: {line}");
    }
    let host = host_samples(model, sampler, count, &dir.join(format!("{case}-host.csv")));
    assert_eq!(run.samples.len(), host.len(), "{case}: sample count");
    for (i, (fw, host)) in run.samples.iter().zip(&host).enumerate() {
        assert_eq!(fw.len(), host.len(), "{case}: sample {i}'s coordinates");
        for c in 0..host.len() {
            assert_eq!(
                fw[c].to_bits(),
                host[c].to_bits(),
                "{case}: sample {i} coordinate {c}: firmware {} host {}",
                fw[c],
                host[c]
            );
        }
    }
    let ram = budget_number(&run, "# ram:", " B statics + stack");
    assert!(
        ram <= 16_384.0,
        "{case}: statics + stack = {ram} B, budget 16 KiB"
    );
    run
}

fn firmware_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware")
}

/// Fails with what to install when QEMU or the target's standard library is missing.
fn require_tools(target: &Target) {
    let qemu = Command::new("qemu-system-arm")
        .arg("--version")
        .stdout(Stdio::null())
        .status();
    assert!(
        qemu.is_ok_and(|s| s.success()),
        "qemu-system-arm is not installed: `apt-get install -y qemu-system-arm` (or {INSTALL})"
    );
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .expect("rustc runs");
    let sysroot = String::from_utf8(sysroot.stdout).expect("sysroot is UTF-8");
    let lib = Path::new(sysroot.trim())
        .join("lib/rustlib")
        .join(target.triple);
    assert!(
        lib.is_dir(),
        "the Rust target {} is not installed: `rustup target add thumbv7em-none-eabihf \
         thumbv6m-none-eabi thumbv8m.main-none-eabihf` (or {INSTALL})",
        target.triple
    );
}

/// Builds in the test's own target directory, so the outer cargo's lock is not contended.
/// The cases share that directory and its one output path, so building and copying the image
/// out is serialised.
fn build(target: &Target, model: &Path, sampler: &str, count: u64, elf: &Path) -> PathBuf {
    static BUILD: Mutex<()> = Mutex::new(());
    let _guard = BUILD
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("firmware-target");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(firmware_dir())
        .args(["build", "--release", "--target", target.triple])
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("TINYDDPM_MODEL", model)
        .env("TINYDDPM_SAMPLER", sampler)
        .env("TINYDDPM_SAMPLES", count.to_string())
        .env("TINYDDPM_SEED", SEED.to_string())
        .env_remove("TINYDDPM_STEPS")
        // The outer build's flags would replace the firmware's `.cargo/config.toml` ones.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_MAKEFLAGS")
        .env_remove("MAKEFLAGS")
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "firmware build for {} failed:\n{}",
        target.triple,
        String::from_utf8_lossy(&output.stderr)
    );
    let built = target_dir
        .join(target.triple)
        .join("release/tinyddpm-firmware");
    fs::copy(&built, elf).expect("copy the firmware image");
    elf.to_path_buf()
}

/// Runs the image as `.cargo/config.toml`'s runner does, under `timeout` (QEMU spins forever
/// if its output goes away), stdout to `out`.
fn run_qemu(target: &Target, elf: &Path, out: &Path) -> Run {
    let status = Command::new("timeout")
        .args(["--kill-after=10", QEMU_TIMEOUT, "qemu-system-arm"])
        .args(target.qemu_machine)
        .args(["-nographic", "-monitor", "none", "-icount", "shift=0"])
        .args(["-semihosting-config", "enable=on,target=native", "-kernel"])
        .arg(elf)
        .stdin(Stdio::null())
        .stdout(File::create(out).unwrap())
        .stderr(Stdio::inherit())
        .status()
        .expect("timeout and qemu-system-arm run");
    let text = fs::read_to_string(out).unwrap();
    assert!(
        status.success(),
        "QEMU run of {} ended with {status} (124: timed out after {QEMU_TIMEOUT} s):\n{text}",
        elf.display()
    );
    let mut run = Run {
        samples: Vec::new(),
        budget: Vec::new(),
    };
    let mut lines = text.lines().skip_while(|l| !l.starts_with("index,"));
    let columns = lines.next().map_or(0, |head| head.split(',').count());
    for line in lines {
        if line.starts_with('#') {
            run.budget.push(line.to_owned());
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), columns, "bad firmware line {line:?}");
        let index: usize = fields[0].parse().expect("sample index");
        assert_eq!(index, run.samples.len(), "samples out of order: {line:?}");
        let point = fields[1..]
            .iter()
            .map(|f| f.parse().expect("firmware float"));
        run.samples.push(point.collect());
    }
    assert!(!run.budget.is_empty(), "no budget lines in:\n{text}");
    run
}

/// The same samples from the host CLI.
fn host_samples(model: &Path, sampler: &str, count: u64, csv: &Path) -> Vec<Vec<f32>> {
    let output = Command::new(env!("CARGO_BIN_EXE_tinyddpm"))
        .arg("sample")
        .arg("--model")
        .arg(model)
        .args(["-n", &count.to_string(), "--seed", &SEED.to_string()])
        .args(["--sampler", sampler, "--out"])
        .arg(csv)
        .output()
        .expect("tinyddpm runs");
    assert!(
        output.status.success(),
        "tinyddpm sample failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    fs::read_to_string(csv)
        .unwrap()
        .lines()
        .skip(1)
        .map(|line| {
            line.split(',')
                .map(|f| f.parse::<f32>().expect("host float"))
                .collect()
        })
        .collect()
}

/// The number just before the last `unit` on the budget line starting with `line`.
fn budget_number(run: &Run, line: &str, unit: &str) -> f64 {
    let text = run
        .budget
        .iter()
        .find(|l| l.starts_with(line))
        .unwrap_or_else(|| panic!("no {line:?} budget line in {:?}", run.budget));
    let end = text.rfind(unit).expect("budget unit");
    let number = text[..end].rsplit(' ').next().expect("budget number");
    number
        .parse()
        .unwrap_or_else(|_| panic!("{number:?} in budget line {text:?}"))
}

/// A path's instructions per multiply-add, if it ran.
fn per_multiply_add(run: &Run, path: &str) -> Option<f64> {
    run.budget
        .iter()
        .any(|l| l.starts_with(path) && l.ends_with(" instructions per multiply-add"))
        .then(|| budget_number(run, path, " instructions per multiply-add"))
}

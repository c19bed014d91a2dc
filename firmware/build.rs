//! Build-time embedding: the model file becomes a `static` in flash, the sampler a step table.
//!
//! The model file named by `TINYDDPM_MODEL` is checked with the core's decoder on the build
//! host (magic, version, CRC, shape, and finite weights or integer parameters in range) and
//! written out as Rust source: a float model as its parameters in file order, every weight as
//! `f32::from_bits(…)` (exact by construction, no decimal round trip), from which the core's
//! `Model::from_params` builds `static MODEL: Model<H, B, D>` at compile time; an
//! integer model (from `tinyddpm quantize`) as `static MODEL: QModel<H, B, D> = QModel { … }`
//! with its int8 weights, and the `integer` cfg set — either of any shape the file holds; then `static STEPS` computed here by
//! `Sampler::step` from the core's f64 schedule and written as the core's step rows, which is too big (16 KB) and too slow
//! (software f64) to build on the MCU. The firmware then needs neither a decoder, nor a copy of
//! the weights in RAM, nor `unsafe` to reinterpret bytes.
//!
//! Settings (each change rebuilds):
//! - `TINYDDPM_MODEL`: model file; default `models/seed.tdm` (Cortex-M4F, Cortex-M33), or
//!   `models/seed.q.tdm`, the seed model on integers, for the Cortex-M0.
//! - `TINYDDPM_SEED` (default 42), `TINYDDPM_SAMPLES` (default 8): samples `0 .. SAMPLES` of
//!   the seed, as `tinyddpm sample -n SAMPLES --seed SEED` draws them.
//! - `TINYDDPM_SAMPLER`: a sampler name as the CLI's `--sampler` takes it (`ddpm`, the seed's
//!   step; `ddpm-posterior`; `ddim`: K steps, trailing spacing, eta 0; `dpmpp-2m`, `dpmpp-3m`,
//!   `dpmpp-2m-sde`, `unipc`: K steps, log-SNR placement); default: the sampler
//!   stored in the model file.
//! - `TINYDDPM_STEPS`: K of DDIM (default 50) or of a multistep solver (`dpmpp-2m`,
//!   `dpmpp-3m`, `dpmpp-2m-sde`, `unipc`; default 20, log-SNR placement).
//!
//! The target picks the core ([`Chip`]): its memory map (`memory.x` is generated into
//! `OUT_DIR`: the QEMU machine's, or with the `rtt` feature the board's), the default model,
//! the clocks and the integer kernel (the `kernel` cfg).

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use tinyddpm_core::file::{self, Header, Kind};
use tinyddpm_core::quant::{QLayer, QParams, QParamsMut, time_embedding_in};
use tinyddpm_core::{ChoiceError, Layer, Sampler, SamplerChoice, Schedule, Step};

/// A core this firmware builds for: its memory map, default model and clocks.
struct Chip {
    /// `memory.x` under QEMU: the sizes of a real part of the class, so that the linker, not
    /// QEMU (whose MPS2 machines have 4 MiB of each), catches an overflow.
    memory: &'static str,
    /// `memory.x` with the `rtt` feature: the board named in `.cargo/config.toml`.
    board_memory: &'static str,
    /// Model file used when `TINYDDPM_MODEL` is not set, relative to the crate.
    default_model: &'static str,
    /// SysTick's clock on the QEMU machine (measured with a NOP loop under `-icount`).
    qemu_systick_hz: u32,
    /// Core clock of a typical chip of the class, for the time estimates.
    chip_hz: u32,
    /// The integer model's dense-layer kernel (`src/kernel/`), as the `kernel` cfg.
    kernel: &'static str,
}

/// 1 MiB of flash at 0, 256 KiB of RAM: the nRF52840, and the sizes of an STM32F407.
const MEMORY_1M_256K: &str = "MEMORY\n{\n  FLASH : ORIGIN = 0x00000000, LENGTH = 1024K\n  RAM : ORIGIN = 0x20000000, LENGTH = 256K\n}\n";

/// Cortex-M4F on QEMU's `mps2-an386`; on a board, the nRF52840 (nRF52840-DK). Estimates at
/// 168 MHz (an STM32F407; the nRF52840 runs at 64 MHz).
const M4F: Chip = Chip {
    memory: MEMORY_1M_256K,
    board_memory: MEMORY_1M_256K,
    default_model: "models/seed.tdm",
    qemu_systick_hz: 25_000_000,
    chip_hz: 168_000_000,
    kernel: "dsp",
};

/// Cortex-M0: the nRF51822 (256 KiB flash, 16 KiB RAM) of QEMU's `microbit` and of the
/// BBC micro:bit v1.
const M0: Chip = Chip {
    memory: MEMORY_NRF51,
    board_memory: MEMORY_NRF51,
    default_model: "models/seed.q.tdm",
    qemu_systick_hz: 16_000_000,
    chip_hz: 16_000_000,
    kernel: "thumb1",
};

/// The nRF51822's memory.
const MEMORY_NRF51: &str = "MEMORY\n{\n  FLASH : ORIGIN = 0x00000000, LENGTH = 256K\n  RAM : ORIGIN = 0x20000000, LENGTH = 16K\n}\n";

/// Cortex-M33 on QEMU's `mps2-an505`, which boots in the Secure state from its
/// secure-alias SRAMs (code at 0x1000_0000, where the SSE-200's initial secure vector
/// table is, data at 0x2800_0000), with the sizes of a 1 MiB / 256 KiB part; on a board, the
/// nRF5340's application core (nRF5340-DK: 1 MiB of flash at 0, 512 KiB of RAM). Estimates
/// at the M4F's 168 MHz, so that both are held to one table.
const M33: Chip = Chip {
    memory: "MEMORY\n{\n  FLASH : ORIGIN = 0x10000000, LENGTH = 1024K\n  RAM : ORIGIN = 0x28000000, LENGTH = 256K\n}\n",
    board_memory: "MEMORY\n{\n  FLASH : ORIGIN = 0x00000000, LENGTH = 1024K\n  RAM : ORIGIN = 0x20000000, LENGTH = 512K\n}\n",
    default_model: "models/seed.tdm",
    qemu_systick_hz: 20_000_000,
    chip_hz: 168_000_000,
    kernel: "dsp",
};

/// The largest table of time embeddings the integer model's build embeds: 16 KiB, 64 steps
/// at H = 128 (a few-step sampler's 20 take 5 KB; DDPM-1000's would take 256 KB, so it
/// computes them on the device).
const TIME_TABLE_MAX: usize = 16 * 1024;

/// Variables this script reads.
const SETTINGS: [&str; 5] = [
    "TINYDDPM_MODEL",
    "TINYDDPM_SEED",
    "TINYDDPM_SAMPLES",
    "TINYDDPM_SAMPLER",
    "TINYDDPM_STEPS",
];

fn main() {
    if let Err(message) = run() {
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    for var in SETTINGS {
        println!("cargo:rerun-if-env-changed={var}");
    }
    println!("cargo:rerun-if-changed=build.rs");
    let out = PathBuf::from(env::var("OUT_DIR").map_err(|e| e.to_string())?);
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let target = env::var("TARGET").map_err(|e| e.to_string())?;
    let chip = match target.split('-').next() {
        Some("thumbv6m") => M0,
        Some("thumbv7em") => M4F,
        Some("thumbv8m.main") => M33,
        _ => {
            return Err(format!(
                "target {target}: this firmware builds for thumbv6m (Cortex-M0), thumbv7em \
                 (Cortex-M4F) and thumbv8m.main (Cortex-M33)"
            ));
        }
    };
    println!("cargo::rustc-check-cfg=cfg(kernel, values(\"dsp\", \"thumb1\"))");
    println!("cargo::rustc-cfg=kernel=\"{}\"", chip.kernel);
    let board = env::var_os("CARGO_FEATURE_RTT").is_some();
    if board {
        // defmt's linker script: where the format strings go.
        println!("cargo:rustc-link-arg=-Tdefmt.x");
    }
    let memory = if board {
        chip.board_memory
    } else {
        chip.memory
    };
    write(&out.join("memory.x"), memory)?;
    println!("cargo:rustc-link-search={}", out.display());

    let model_path = match setting("TINYDDPM_MODEL") {
        Some(p) => PathBuf::from(p),
        None => manifest.join(chip.default_model),
    };
    println!("cargo:rerun-if-changed={}", model_path.display());
    let bytes = fs::read(&model_path).map_err(|e| format!("{}: {e}", model_path.display()))?;
    let contents = file::open(&bytes).map_err(|e| format!("{}: {e}", model_path.display()))?;
    let (kind, header) = (contents.kind, contents.header);

    let seed = number::<u64>("TINYDDPM_SEED")?.unwrap_or(42);
    let samples = number::<u64>("TINYDDPM_SAMPLES")?.unwrap_or(8);
    let sampler = sampler(&header)?;

    let mut src = String::new();
    let name = model_path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    writeln!(src, "/// File name of the embedded model.").unwrap();
    writeln!(src, "pub const MODEL_FILE: &str = {name:?};").unwrap();
    writeln!(src, "/// Seed of the noise streams.").unwrap();
    writeln!(src, "pub const SEED: u64 = {seed};").unwrap();
    writeln!(src, "/// Samples `0 .. SAMPLES` are drawn.").unwrap();
    writeln!(src, "pub const SAMPLES: u64 = {samples};").unwrap();
    writeln!(src, "/// The sampler, as the host CLI names it.").unwrap();
    let described = sampler.describe(header.timesteps as usize).to_string();
    writeln!(src, "pub const SAMPLER: &str = {described:?};").unwrap();
    writeln!(
        src,
        "/// The model file's map to data units, applied to every sample as the host applies it."
    )
    .unwrap();
    let units = match header.data.units {
        Some(u) => format!(
            "Some(tinyddpm_core::Units {{ scale: {:?}, shift: {:?} }})",
            u.scale, u.shift
        ),
        None => "None".into(),
    };
    writeln!(
        src,
        "pub const UNITS: Option<tinyddpm_core::Units> = {units};"
    )
    .unwrap();
    writeln!(src, "/// T of the model's schedule.").unwrap();
    writeln!(src, "pub const TIMESTEPS: usize = {};", header.timesteps).unwrap();
    let (systick_hz, chip_hz) = (chip.qemu_systick_hz, chip.chip_hz);
    writeln!(
        src,
        "/// SysTick's clock on the QEMU machine of this target."
    )
    .unwrap();
    writeln!(src, "pub const QEMU_SYSTICK_HZ: u32 = {systick_hz};").unwrap();
    writeln!(
        src,
        "/// Core clock of a typical chip of this class, for estimates."
    )
    .unwrap();
    writeln!(src, "pub const CHIP_HZ: u32 = {chip_hz};").unwrap();
    println!("cargo::rustc-check-cfg=cfg(integer)");
    println!("cargo::rustc-check-cfg=cfg(time_table)");
    if kind == Kind::Integer {
        println!("cargo::rustc-cfg=integer");
    }
    let t_inputs = steps_source(&header, &sampler, &mut src)?;
    model_source(kind, &bytes, &t_inputs, &mut src)
        .map_err(|e| format!("{}: {e}", model_path.display()))?;
    write(&out.join("embedded.rs"), &src)
}

fn write(path: &Path, contents: &str) -> Result<(), String> {
    fs::write(path, contents).map_err(|e| format!("{}: {e}", path.display()))
}

/// A non-empty environment variable.
fn setting(var: &str) -> Option<String> {
    env::var(var).ok().filter(|v| !v.is_empty())
}

/// A numeric environment variable, if set.
fn number<T: std::str::FromStr>(var: &str) -> Result<Option<T>, String> {
    setting(var)
        .map(|v| {
            v.trim()
                .parse()
                .map_err(|_| format!("{var}={v:?} is not a valid number"))
        })
        .transpose()
}

/// The sampler the host CLI would run for the same `--sampler` / `--steps`: the core's
/// [`SamplerChoice`], the one reader of sampler names.
fn sampler(header: &Header) -> Result<Sampler, String> {
    let name = setting("TINYDDPM_SAMPLER");
    let choice = SamplerChoice {
        name: name.as_deref(),
        steps: number::<u32>("TINYDDPM_STEPS")?,
        ..SamplerChoice::default()
    };
    choice
        .resolve(header.sampler, header.timesteps as usize)
        .map_err(|e| match e {
            ChoiceError::UnknownName => format!(
                "TINYDDPM_SAMPLER={:?}: expected one of {}",
                name.unwrap_or_default(),
                Sampler::NAMES.map(|(n, _)| n).join(", ")
            ),
            ChoiceError::EveryTimestep { sampler, .. } => format!(
                "TINYDDPM_STEPS does not apply to {}, which runs every timestep",
                sampler.name()
            ),
            e => format!("TINYDDPM_SAMPLER / TINYDDPM_STEPS: {e}"),
        })
}

/// The model's source for the file's kind, of any shape: a float model is written from its
/// parameters (the core's `Model::from_params` then builds it at compile time with the
/// file's H, B and D), an integer model as a `QModel<H, B, D>` literal from its sections.
/// `t_inputs` are the steps' network time inputs (for the integer model's table).
fn model_source(
    kind: Kind,
    bytes: &[u8],
    t_inputs: &[f32],
    src: &mut String,
) -> Result<(), String> {
    match kind {
        Kind::Float => emit_model(bytes, src),
        Kind::Integer => emit_qmodel(bytes, t_inputs, src),
    }
}

/// Writes H, B and D, and the shape consts every model's source starts with.
fn emit_shape(src: &mut String, hidden: usize, blocks: usize, dim: usize) {
    writeln!(src, "/// H, hidden width of the embedded model.").unwrap();
    writeln!(src, "pub const H: usize = {hidden};").unwrap();
    writeln!(src, "/// B, residual blocks of the embedded model.").unwrap();
    writeln!(src, "pub const B: usize = {blocks};").unwrap();
    writeln!(src, "/// D, coordinates of a sample.").unwrap();
    writeln!(src, "pub const D: usize = {dim};").unwrap();
}

/// Decodes with the core (so only a file it accepts is embedded: every weight finite) and
/// writes its parameters in file order, from which the core's `Model::from_params` builds
/// the `static` at compile time.
fn emit_model(bytes: &[u8], src: &mut String) -> Result<(), String> {
    let contents = file::open(bytes).map_err(|e| e.to_string())?;
    let params: Vec<f32> = contents
        .float_params()
        .map_err(|e| e.to_string())?
        .collect();
    let header = contents.header;
    src.push_str(
        "use tinyddpm_core::Model;
",
    );
    emit_shape(
        src,
        header.hidden as usize,
        header.blocks as usize,
        header.data.dim.into(),
    );
    let n = params.len();
    src.push_str(
        "/// The model's parameters in file order (compile time only: not in the image).\n",
    );
    src.push_str("#[allow(clippy::large_const_arrays)]\n");
    writeln!(src, "const PARAMS: [f32; {n}] = [").unwrap();
    emit_floats(&params, src);
    src.push_str("];\n");
    writeln!(src, "/// The model, in flash.").unwrap();
    // Copying the seed model's parameters takes the compile-time evaluator past the step
    // count after which it warns that it may not terminate; it does, in under a second.
    src.push_str(
        "#[allow(long_running_const_eval)]\n\
         pub static MODEL: Model<H, B, D> = match Model::from_params(&PARAMS) {\n    \
         Some(model) => model,\n    \
         None => panic!(\"the parameters are not the model's\"),\n};\n",
    );
    Ok(())
}

fn emit_floats(values: &[f32], src: &mut String) {
    for v in values {
        write!(src, "f32::from_bits({:#010x}),", v.to_bits()).unwrap();
    }
}

/// The integer model: read with the core (which checks every parameter's range) into its
/// sections, written as `static MODEL: QModel<H, B, D>` with its int8 weights as literals,
/// each field from the layer views the core gives (`QParams::layer`).
fn emit_qmodel(bytes: &[u8], t_inputs: &[f32], src: &mut String) -> Result<(), String> {
    let contents = file::open(bytes).map_err(|e| e.to_string())?;
    let layout = contents.layout().map_err(|e| e.to_string())?;
    let [c, w, e] = QParams::lens(&layout);
    let (mut biases, mut multipliers) = (vec![0; c], vec![0; c]);
    let (mut weights, mut shifts, mut exponents) = (vec![0; w], vec![0; c], vec![0; e]);
    contents
        .read_quant_params(QParamsMut {
            biases: &mut biases,
            multipliers: &mut multipliers,
            weights: &mut weights,
            shifts: &mut shifts,
            exponents: &mut exponents,
        })
        .map_err(|e| e.to_string())?;
    let q = QParams {
        layout,
        biases: &biases,
        multipliers: &multipliers,
        weights: &weights,
        shifts: &shifts,
        exponents: &exponents,
    };
    src.push_str("use tinyddpm_core::quant::{Gelu, QBlock, QLinear, QModel};\n");
    emit_shape(src, layout.hidden, layout.blocks, layout.dim);
    writeln!(src, "/// The integer model, in flash.").unwrap();
    // Every layer but time_out and output has its GELU.
    let gelu = |l: &QLayer<'_>| {
        let g = l.act.unwrap_or_default();
        format!(
            "Gelu {{ pre_exp: {}, post_exp: {} }}",
            g.pre_exp, g.post_exp
        )
    };
    let (time_in, time_out) = (q.layer(Layer::TimeIn), q.layer(Layer::TimeOut));
    let (input, output) = (q.layer(Layer::Input), q.layer(Layer::Output));
    src.push_str("pub static MODEL: QModel<H, B, D> = QModel {\n    time_in: ");
    emit_qlayer(&time_in, src);
    writeln!(src, ",\n    time_act: {},\n    time_out: ", gelu(&time_in)).unwrap();
    emit_qlayer(&time_out, src);
    writeln!(src, ",\n    input_exp: {},\n    input: ", input.in_exp).unwrap();
    emit_qlayer(&input, src);
    writeln!(
        src,
        ",\n    input_pre_exp: {},\n    stream_exp: {},\n    blocks: [",
        input.out_exp, time_out.out_exp
    )
    .unwrap();
    for k in 0..layout.blocks {
        let (first, second) = (
            q.layer(Layer::BlockFirst(k)),
            q.layer(Layer::BlockSecond(k)),
        );
        src.push_str("        QBlock { first: ");
        emit_qlayer(&first, src);
        write!(src, ", act: {}, second: ", gelu(&first)).unwrap();
        emit_qlayer(&second, src);
        writeln!(src, ", second_pre_exp: {} }},", second.out_exp).unwrap();
    }
    src.push_str("    ],\n    output: ");
    emit_qlayer(&output, src);
    writeln!(src, ",\n    output_exp: {},\n}};", output.out_exp).unwrap();
    let hidden = layout.hidden;
    if size_of::<i16>() * hidden * t_inputs.len() <= TIME_TABLE_MAX {
        // Each step's time embedding, by the core's own code: the firmware looks it up
        // instead of computing it (16,500 multiply-adds a step for H = 128).
        println!("cargo::rustc-cfg=time_table");
        writeln!(src, "/// Each step's time embedding, noisiest step first.").unwrap();
        let count = t_inputs.len();
        writeln!(src, "pub static TIME_EMBEDDINGS: [[i16; H]; {count}] = [").unwrap();
        let (mut scratch, mut temb) = (vec![[0i16; 1]; hidden], vec![0i16; hidden]);
        for &t in t_inputs {
            time_embedding_in(&time_in, &time_out, t, &mut scratch, &mut temb);
            writeln!(src, "    {temb:?},").unwrap();
        }
        src.push_str("];\n");
    }
    Ok(())
}

/// A layer as a `QLinear` literal: its weight rows, then its channels.
fn emit_qlayer(layer: &QLayer<'_>, src: &mut String) {
    src.push_str("QLinear { weight: [");
    for row in layer.weight.chunks(layer.inputs()) {
        writeln!(src, "{row:?},").unwrap();
    }
    write!(
        src,
        "], bias: {:?}, multiplier: {:?}, shift: {:?} }}",
        layer.bias, layer.multiplier, layer.shift
    )
    .unwrap();
}

/// Emits the step table; returns the steps' network time inputs.
fn steps_source(header: &Header, sampler: &Sampler, src: &mut String) -> Result<Vec<f32>, String> {
    match header.timesteps {
        100 => emit_steps::<100>(header, sampler, src),
        250 => emit_steps::<250>(header, sampler, src),
        500 => emit_steps::<500>(header, sampler, src),
        1000 => emit_steps::<1000>(header, sampler, src),
        2000 => emit_steps::<2000>(header, sampler, src),
        t => Err(format!(
            "T={t}: this build script supports T in [100, 250, 500, 1000, 2000]"
        )),
    }
}

/// The step table, computed here by the core exactly as `tinyddpm_core::sample` does.
fn emit_steps<const T: usize>(
    header: &Header,
    sampler: &Sampler,
    src: &mut String,
) -> Result<Vec<f32>, String> {
    let schedule: Box<Schedule<T>> = Box::new(header.schedule().map_err(|e| e.to_string())?);
    let count = sampler.num_steps(T);
    let t_inputs = sampler.steps(&schedule).map(|s| s.t_input).collect();
    // Each row is the core's word encoding (`Step::to_words`), cut to the words the widest
    // row's kind reads: a DDPM chain keeps 6 of the 13, so DDPM-1000 fits the M0's flash.
    let width = sampler
        .steps(&schedule)
        .map(|s| s.row_len())
        .max()
        .unwrap_or(0);
    writeln!(
        src,
        "/// The sampler's reverse steps, noisiest first, as rows of `Step::to_words`."
    )
    .unwrap();
    writeln!(src, "pub static STEPS: [[u32; {width}]; {count}] = [").unwrap();
    for step in sampler.steps(&schedule) {
        let row = &step.to_words()[..width];
        if Step::from_words(row) != Some(step) {
            return Err(format!("step {step:?} does not read back from its row"));
        }
        let words: Vec<String> = row.iter().map(|w| format!("{w:#010x}")).collect();
        writeln!(src, "    [{}],", words.join(", ")).unwrap();
    }
    src.push_str("];\n");
    Ok(t_inputs)
}

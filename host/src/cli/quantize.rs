//! `tinyddpm quantize`: a float model file to an integer one, by post-training quantization
//! ([`tinyddpm::quantize`]) calibrated on forward-process samples.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use tinyddpm::modelfile::{self, ModelFile};
use tinyddpm::quantize::{Calibration, quantize};
use tinyddpm_core::file;
use tinyddpm_core::{Kind, Model};

use super::plot::read_model;
use super::say;
use super::{MAX_POINTS, T, dispatch, files};

/// Options of `tinyddpm quantize`.
#[derive(Args, Clone, Debug)]
pub struct QuantizeArgs {
    /// The float model file
    #[arg(long)]
    pub model: PathBuf,
    /// The integer model file to write (the float model's schedule and default sampler)
    #[arg(long)]
    pub out: PathBuf,
    /// Calibration inputs: forward-process samples x_t, input i at timestep i mod T
    #[arg(long, default_value_t = Calibration::default().samples as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub calibration: u64,
    /// Seed of the calibration inputs (their x₀ and noise)
    #[arg(long, default_value_t = Calibration::default().seed)]
    pub seed: u64,
}

/// Runs `tinyddpm quantize`.
pub fn run(args: &QuantizeArgs) -> Result<()> {
    files::check(&[("--model", &args.model)], &[("--out", &args.out)], &[])?;
    if args.calibration > MAX_POINTS {
        bail!(
            "--calibration {}: at most {MAX_POINTS} inputs (they are held in memory)",
            args.calibration
        );
    }
    let calibration = Calibration {
        samples: args.calibration as usize,
        seed: args.seed,
    };
    let file = read_model(&args.model, "--model")?;
    file.require_float().context("cannot load the model")?;
    let header = &file.header;
    let report = dispatch!(
        header.hidden,
        header.blocks,
        quantize_shape(args, &file, &calibration)
    )?;
    // Written first, then said: a closed stdout cannot lose the file.
    say!("{report}");
    say!(
        "wrote the integer model {} ({} bytes; the float model's file: {} bytes)",
        args.out.display(),
        file::encoded_len(Kind::Integer, header)?,
        file::encoded_len(Kind::Float, header)?
    );
    Ok(())
}

/// Quantizes and writes the file; returns the report.
fn quantize_shape<const H: usize, const B: usize>(
    args: &QuantizeArgs,
    file: &ModelFile,
    calibration: &Calibration,
) -> Result<String> {
    let model = file
        .model::<H, B, Model<H, B>>()
        .context("cannot load the model")?;
    let schedule = file.schedule::<T>().context("cannot use the model")?;
    let (q, report) = quantize(&*model, &schedule, calibration)
        .with_context(|| format!("cannot quantize {}", args.model.display()))?;
    modelfile::save(&args.out, &*q, &file.header).context("cannot write the model")?;
    Ok(report.to_string())
}

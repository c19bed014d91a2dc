//! `tinyddpm quantize`: a float model file to an integer one, by post-training quantization
//! ([`tinyddpm::quantize`]) calibrated on forward-process samples.

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use tinyddpm::data::DataSet;
use tinyddpm::data::points;
use tinyddpm::input::Patience;
use tinyddpm::modelfile::{self, ModelFile};
use tinyddpm::quantize::{Calibration, CalibrationData, quantize};
use tinyddpm_core::file;
use tinyddpm_core::{Data, Kind, Model, Source};

use super::plot::read_model;
use super::say;
use super::{MAX_POINTS, T, dispatch, files, open_input};

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
    /// Points like the model's training data, in data units (CSV, a header line allowed, or
    /// .npy): the calibration's x₀ [default: fresh points of the built-in set the model file
    /// names; required for a model trained on a file's points]
    #[arg(long, value_name = "FILE")]
    pub calibration_data: Option<PathBuf>,
}

/// Runs `tinyddpm quantize`.
pub fn run(args: &QuantizeArgs) -> Result<()> {
    let mut inputs = vec![("--model", args.model.as_path())];
    if let Some(path) = &args.calibration_data {
        inputs.push(("--calibration-data", path.as_path()));
    }
    files::check(&inputs, &[("--out", &args.out)], &[])?;
    if args.calibration > MAX_POINTS {
        bail!(
            "--calibration {}: at most {MAX_POINTS} inputs (they are held in memory)",
            args.calibration
        );
    }
    let file = read_model(&args.model, "--model")?;
    file.require_float().context("cannot load the model")?;
    let calibration = Calibration {
        samples: args.calibration as usize,
        seed: args.seed,
        data: calibration_data(args, &file.header.data)?,
    };
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

/// The calibration's x₀: the given points mapped into the model's space, else the built-in
/// set the model was trained on.
fn calibration_data(args: &QuantizeArgs, data: &Data) -> Result<CalibrationData> {
    let Some(path) = &args.calibration_data else {
        return match data.source {
            Source::Builtin(id) => {
                DataSet::from_id(id)
                    .map(CalibrationData::Set)
                    .ok_or_else(|| {
                        anyhow!(
                            "{} was trained on a built-in data set this build does not know \
                     (number {id}); give points like its data with --calibration-data",
                            args.model.display()
                        )
                    })
            }
            Source::File => bail!(
                "{} was trained on points from a file: give them (or points like them) with \
                 --calibration-data FILE",
                args.model.display()
            ),
        };
    };
    let what = "cannot read --calibration-data";
    let reader = open_input(path, "--calibration-data", Patience::Unbounded).context(what)?;
    let name = path.display().to_string();
    let points = points::read_cloud(reader, &name, MAX_POINTS as usize).context(what)?;
    if points.dim() != usize::from(data.dim) {
        bail!(
            "--calibration-data has {} columns, the model's data {}",
            points.dim(),
            data.dim
        );
    }
    let mut rows: Vec<[f32; 2]> = points.rows().map(|r| [r[0], r[1]]).collect();
    if let Some(units) = &data.units {
        rows.iter_mut().for_each(|p| units.to_model(p));
    }
    Ok(CalibrationData::Points(rows))
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

//! `tinyddpm quantize`: a float model file to an integer one, by post-training quantization
//! ([`tinyddpm::quantize`]) calibrated on forward-process samples.

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use tinyddpm::data::DataSet;
use tinyddpm::modelfile;
use tinyddpm::quantize::{Calibration, CalibrationData, quantize};
use tinyddpm::scores::Points;
use tinyddpm_core::file;
use tinyddpm_core::{Data, Kind, Source};

use super::plot::read_model;
use super::say;
use super::{MAX_POINTS, T, files, read_model_points};

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
    let model = file.flat().context("cannot load the model")?;
    if model.classes() > 0 {
        bail!(
            "cannot quantize {}: it is conditioned on classes, and the integer model is not \
             conditioned yet",
            args.model.display()
        );
    }
    let schedule = file.schedule::<T>().context("cannot use the model")?;
    let (q, report) = quantize(&model, &schedule, &calibration)
        .with_context(|| format!("cannot quantize {}", args.model.display()))?;
    modelfile::save_flat_integer(&args.out, &q, header).context("cannot write the model")?;
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
    let dim = usize::from(data.dim);
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
    let points = read_model_points(path, "--calibration-data", MAX_POINTS as usize, dim)?;
    let Some(units) = &data.units else {
        return Ok(CalibrationData::Points(points));
    };
    let mut values = points.values().to_vec();
    values.chunks_exact_mut(dim).for_each(|p| units.to_model(p));
    let mapped = Points::new(dim, values).context(
        "--calibration-data: a point leaves f32's range in the model's space (its units)",
    )?;
    Ok(CalibrationData::Points(mapped))
}

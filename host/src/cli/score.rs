//! `tinyddpm score`: each point's anomaly score under a model (the core's
//! `anomaly_score`), written as CSV.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use tinyddpm::atomic::AtomicFile;
use tinyddpm::batch::{Batch1, QBatch1, Simd};
use tinyddpm::csv;
use tinyddpm::modelfile::ModelFile;
use tinyddpm::run::score::scores;
use tinyddpm::scores::Points;
use tinyddpm_core::PredictNoiseIn;
use tinyddpm_core::file::Kind;

use super::plot::read_model;
use super::{T, files, read_model_points, say};

/// Options of `tinyddpm score`.
#[derive(Args, Clone, Debug)]
pub struct ScoreArgs {
    /// The model file (float or integer)
    #[arg(long)]
    pub model: PathBuf,
    /// The points to score (CSV, a header line allowed, or .npy; as many columns as the
    /// model's data)
    #[arg(long)]
    pub points: PathBuf,
    /// Seed of the noise put on the points: point i uses stream (seed, i)
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Worker threads (0 = all cores); the scores do not depend on it
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// The CSV file to write (`score`, one row per point in order; larger is more anomalous)
    #[arg(long)]
    pub out: PathBuf,
}

/// Runs `tinyddpm score`.
pub fn run(args: &ScoreArgs) -> Result<()> {
    files::check(
        &[("--model", &args.model), ("--points", &args.points)],
        &[("--out", &args.out)],
        &[],
    )?;
    let file = read_model(&args.model, "--model")?;
    let dim = usize::from(file.header.data.dim);
    let points = read_model_points(&args.points, "--points", csv::MAX_ROWS, dim)?;
    let scored = match file.kind {
        // A float model of any shape, on the batch-1 path.
        Kind::Float => {
            let model = file.flat().context("cannot load the model")?;
            let batch1 = Batch1::new(&model, Simd::detect());
            score_with(args, &file, || batch1.clone(), &points)?
        }
        // An integer model of any shape, one sample at a time.
        Kind::Integer => {
            let model = file.flat_integer().context("cannot load the model")?;
            let batch1 = QBatch1::new(&model);
            score_with(args, &file, || batch1.clone(), &points)?
        }
    };
    let write_error = || format!("cannot write the scores to {}", args.out.display());
    let mut out = AtomicFile::create(&args.out).with_context(write_error)?;
    // Shortest round-trip form, as every CSV the tool writes.
    writeln!(out, "score").with_context(write_error)?;
    for s in &scored {
        writeln!(out, "{s}").with_context(write_error)?;
    }
    out.commit().with_context(write_error)?;
    say!(
        "wrote {} scores to {} (seed {})",
        scored.len(),
        args.out.display(),
        args.seed
    );
    Ok(())
}

/// The scores of `points` with the predictor `predictor` makes.
fn score_with<P: PredictNoiseIn<f32>>(
    args: &ScoreArgs,
    file: &ModelFile,
    predictor: impl Fn() -> P + Sync,
    points: &Points,
) -> Result<Vec<f32>> {
    let schedule = file.schedule::<T>().context("cannot use the model")?;
    let units = file.header.data.units.as_ref();
    let (values, dim) = (points.values(), points.dim());
    Ok(scores(predictor, &schedule, units, args.seed, values, dim))
}

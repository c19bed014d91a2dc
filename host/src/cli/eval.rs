//! `tinyddpm eval`: scores a CSV of samples against the true Swiss roll.

use std::path::PathBuf;

use super::{open_input, say};
use anyhow::{Context, Result};
use clap::Args;
use tinyddpm::eval::{ENERGY_CAP, Metrics, evaluate};
use tinyddpm::input::Patience;
use tinyddpm::{csv, data};

/// Options of `tinyddpm eval`.
#[derive(Args, Clone, Debug)]
pub struct EvalArgs {
    /// The samples (CSV, first two columns x, y; a header line allowed)
    #[arg(long)]
    pub samples: PathBuf,
    /// Print one JSON object instead of a table
    #[arg(long)]
    pub json: bool,
    /// Seed of the fresh true samples the energy distance compares with
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Runs `tinyddpm eval`.
pub fn run(args: &EvalArgs) -> Result<()> {
    let file = open_input(&args.samples, "--samples", Patience::Unbounded)
        .context("cannot read the samples")?;
    let name = args.samples.display().to_string();
    let points =
        csv::read_rows_from::<2>(file, &name, csv::MAX_ROWS).context("cannot read the samples")?;
    let metrics = score(&points, args.seed)?;
    if args.json {
        say!("{}", metrics.to_json());
    } else {
        say!("{}", table(&metrics, args.seed).trim_end());
    }
    Ok(())
}

/// Scores `points` against `min(n, ENERGY_CAP)` fresh true samples of `seed`.
pub fn score(points: &[[f32; 2]], seed: u64) -> Result<Metrics> {
    let reference =
        data::true_samples(data::DataSet::SwissRoll, points.len().min(ENERGY_CAP), seed);
    Ok(evaluate(points, &reference)?)
}

/// The scores as an aligned table with what each means.
pub fn table(m: &Metrics, seed: u64) -> String {
    format!(
        "samples          {}\n\
         mean distance    {:.4}  (to the Swiss-roll curve; true samples: 0)\n\
         p95 distance     {:.4}\n\
         energy distance  {:.5}  ({} vs {} fresh true samples, seed {seed})\n\
         coverage KS      {:.4}  (position along the roll vs uniform; 0 is even)\n",
        m.samples,
        m.mean_distance,
        m.p95_distance,
        m.energy_distance,
        m.energy_samples,
        m.energy_samples,
        m.coverage_ks
    )
}

//! `tinyddpm eval`: scores a CSV of samples against the true Swiss roll (its curve scores,
//! and the generic scores against fresh true samples), or with the generic scores only
//! against another built-in set's fresh samples (`--data NAME`) or a CSV of reference points
//! of the same width (`--reference`).

use std::path::{Path, PathBuf};

use super::{open_input, say};
use anyhow::{Context, Result, bail};
use clap::Args;
use tinyddpm::data::DataSet;
use tinyddpm::eval::{ENERGY_CAP, Metrics, evaluate};
use tinyddpm::input::Patience;
use tinyddpm::scores::{self, K, MAX_POINTS, PROJECTIONS, Points, Scores};
use tinyddpm::{csv, data};

/// Options of `tinyddpm eval`.
#[derive(Args, Clone, Debug)]
pub struct EvalArgs {
    /// The samples (CSV, a header line allowed): Swiss-roll samples in the first two
    /// columns x, y, or, with --reference, points of 1 to 16 columns
    #[arg(long)]
    pub samples: PathBuf,
    /// Reference points (CSV of the samples' width): print the generic scores against them
    /// instead of the Swiss roll's
    #[arg(long, conflicts_with = "data")]
    pub reference: Option<PathBuf>,
    /// The built-in data set the samples should follow: the generic scores against its fresh
    /// samples (the Swiss roll's curve scores too) [default: swissroll]
    #[arg(long, value_name = "NAME", help = format!(
        "The built-in data set the samples should follow ({}): the generic scores against \
         its fresh samples, and the Swiss roll's curve scores too [default: swissroll]",
        DataSet::names()
    ))]
    pub data: Option<DataSet>,
    /// Print one JSON object instead of a table
    #[arg(long)]
    pub json: bool,
    /// Seed of the fresh samples of the data set the samples are compared with
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Runs `tinyddpm eval`.
pub fn run(args: &EvalArgs) -> Result<()> {
    let set = args.data.unwrap_or_default();
    if args.reference.is_none() && set == DataSet::SwissRoll {
        return swiss_roll(args);
    }
    let samples = read_points(&args.samples, "--samples")?;
    let (reference, against, what) = match &args.reference {
        Some(path) => (
            read_points(path, "--reference")?,
            format!("points of {}", path.display()),
            "--reference".to_string(),
        ),
        // A built-in data set's reference is fresh samples of it.
        None => {
            let n = samples.len().min(MAX_POINTS);
            let fresh = data::true_samples(set, n, args.seed);
            (
                Points::from_pairs(&fresh)?,
                format!("fresh samples of {set}, seed {}", args.seed),
                format!("--data {set}"),
            )
        }
    };
    let s = compare(&samples, &reference, &what)?;
    if args.json {
        say!(
            "{{\"samples\":{},\"reference\":{},{}}}",
            samples.len(),
            reference.len(),
            s.json_fields()
        );
    } else {
        let head = format!("samples          {}\n", samples.len());
        say!("{}", (head + &table_of_scores(&s, &against)).trim_end());
    }
    Ok(())
}

/// The Swiss roll's samples: its curve scores, and the generic ones against its fresh
/// samples.
fn swiss_roll(args: &EvalArgs) -> Result<()> {
    let file = open_input(&args.samples, "--samples", Patience::Unbounded)
        .context("cannot read the samples")?;
    let name = args.samples.display().to_string();
    let points =
        csv::read_rows_from::<2>(file, &name, csv::MAX_ROWS).context("cannot read the samples")?;
    let metrics = score(&points, args.seed)?;
    let fresh = data::true_samples(DataSet::SwissRoll, points.len().min(MAX_POINTS), args.seed);
    let generic = if points.len() > K {
        Some(compare(
            &Points::from_pairs(&points)?,
            &Points::from_pairs(&fresh)?,
            "the true samples",
        )?)
    } else {
        None
    };
    let against = format!("fresh true samples, seed {}", args.seed);
    match (args.json, generic) {
        (true, Some(s)) => say!("{{{},{}}}", metrics.json_fields(), s.json_fields()),
        (true, None) => say!("{}", metrics.to_json()),
        (false, Some(s)) => say!(
            "{}",
            (table(&metrics, args.seed) + &table_of_scores(&s, &against)).trim_end()
        ),
        (false, None) => say!(
            "{}\n(the generic scores need at least {} samples)",
            table(&metrics, args.seed).trim_end(),
            K + 1
        ),
    }
    Ok(())
}

/// Reads the points of `path` (`flag` names it in messages), any width from 1 to 16.
fn read_points(path: &Path, flag: &str) -> Result<Points> {
    let what = || format!("cannot read the {}", flag.trim_start_matches('-'));
    let file = open_input(path, flag, Patience::Unbounded).with_context(what)?;
    let name = path.display().to_string();
    csv::read_point_cloud_from(file, &name, csv::MAX_ROWS).with_context(what)
}

/// The generic scores of `samples` against `reference` points, however these were had (a
/// file, `what` being its flag, or a data set's fresh samples).
pub fn compare(samples: &Points, reference: &Points, what: &str) -> Result<Scores> {
    if samples.dim() != reference.dim() {
        bail!(
            "{what} has {} columns, the samples {}",
            reference.dim(),
            samples.dim()
        );
    }
    Ok(scores::compare(samples, reference)?)
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

/// The generic scores as an aligned table, `against` naming the reference.
pub fn table_of_scores(s: &Scores, against: &str) -> String {
    format!(
        "scored           {} samples vs {} {against} ({} columns; at most {MAX_POINTS} of \
         each, evenly spread)\n\
         sliced W2        {:.5}  ({PROJECTIONS} fixed directions)\n\
         MMD²             {:.6}  (Gaussian kernel, σ = {:.4} = median pairwise distance; \
         unbiased, ~0 or below for one distribution)\n\
         energy           {:.5}  (energy distance, V-statistic)\n\
         precision        {:.4}  (samples inside a reference point's {K}-NN ball)\n\
         recall           {:.4}  (reference points inside a sample's {K}-NN ball)\n\
         density          {:.4}  (reference balls holding a sample, per sample, / {K}; ~1 \
         for one distribution)\n\
         coverage         {:.4}  (reference balls holding at least one sample)\n",
        s.samples,
        s.reference,
        s.dim,
        s.sliced_w2,
        s.mmd2,
        s.bandwidth,
        s.energy,
        s.precision,
        s.recall,
        s.density,
        s.coverage
    )
}

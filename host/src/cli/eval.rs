//! `tinyddpm eval`: scores a CSV of samples against the true Swiss roll (its curve scores,
//! and the generic scores against fresh true samples), or with the generic scores only
//! against another built-in set's fresh samples (`--data NAME`) or a CSV of reference points
//! of the same width (`--reference`), or, for samples of a model conditioned on classes,
//! their class adherence and the generic scores against one class's points of a labelled
//! CSV (`--class-of FILE --class K`).

use std::path::{Path, PathBuf};

use super::{open_input, say};
use anyhow::{Context, Result, bail};
use clap::Args;
use tinyddpm::data::DataSet;
use tinyddpm::data::labels::{self, LabelColumn, LabelledPoints};
use tinyddpm::data::points;
use tinyddpm::eval::{ENERGY_CAP, Metrics, evaluate};
use tinyddpm::input::Patience;
use tinyddpm::scores::adherence::adherence;
use tinyddpm::scores::{self, K, MAX_POINTS, NEIGHBOURS, PROJECTIONS, Points, Scores};
use tinyddpm::{csv, data};

/// Options of `tinyddpm eval`.
#[derive(Args, Clone, Debug)]
pub struct EvalArgs {
    /// The samples (CSV, a header line allowed): Swiss-roll samples in the first two columns
    /// x, y, or, with --reference or another --data, points of 1 to 16 columns (or .npy)
    #[arg(long)]
    pub samples: PathBuf,
    /// Reference points (CSV or .npy, of the samples' width): print the generic scores
    /// against them instead of the Swiss roll's
    #[arg(long, conflicts_with = "data")]
    pub reference: Option<PathBuf>,
    /// Labelled reference points (CSV, a header line allowed: the samples' columns and an
    /// integer label 0 to 65535 in one more): print the class adherence of the samples,
    /// all drawn for --class (the share a k-NN classifier fit on these points assigns to
    /// it), and the generic scores against the points of that class
    #[arg(long, value_name = "FILE", conflicts_with_all = ["data", "reference"],
          requires = "class")]
    pub class_of: Option<PathBuf>,
    /// The class the samples were drawn for (with --class-of)
    #[arg(long, value_name = "K", requires = "class_of")]
    pub class: Option<u32>,
    /// The column of --class-of holding the labels: its index from 0, or its name in the
    /// header line [default: the last]
    #[arg(long, value_name = "N|NAME", requires = "class_of")]
    pub label_column: Option<LabelColumn>,
    /// Neighbours that vote in the adherence's k-NN classifier (Euclidean, majority vote,
    /// a tie to the smallest label) [default: 10]
    #[arg(long, value_name = "K", requires = "class_of",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub neighbours: Option<usize>,
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
    if let Some(path) = &args.class_of {
        return run_class_of(args, path);
    }
    let Some(path) = &args.reference else {
        let set = args.data.unwrap_or_default();
        let scores = match set {
            // The Swiss roll's samples are read as x, y (its curve scores need no more).
            DataSet::SwissRoll => {
                let file = open_input(&args.samples, "--samples", Patience::Unbounded)
                    .context("cannot read the samples")?;
                let name = args.samples.display().to_string();
                let points = csv::read_rows_from::<2>(file, &name, csv::MAX_ROWS)
                    .context("cannot read the samples")?;
                score_set(&points, set, args.seed)?
            }
            _ => {
                let samples = read_points(&args.samples, "--samples")?;
                SetScores::generic(&samples, set, args.seed)?
            }
        };
        match args.json {
            true => say!("{}", scores.json()),
            false => say!("{}", scores.table(args.seed).trim_end()),
        }
        return Ok(());
    };
    let samples = read_points(&args.samples, "--samples")?;
    let reference = read_points(path, "--reference")?;
    let s = compare(&samples, &reference, "--reference")?;
    if args.json {
        say!(
            "{{\"samples\":{},\"reference\":{},{}}}",
            samples.len(),
            reference.len(),
            s.json_fields()
        );
    } else {
        let head = format!("samples          {}\n", samples.len());
        let against = format!("points of {}", path.display());
        say!("{}", (head + &table_of_scores(&s, &against)).trim_end());
    }
    Ok(())
}

/// `eval --class-of FILE --class K`: the class adherence of the samples, asked for class
/// K, by the k-NN classifier fit on every labelled point of FILE, and the generic scores
/// against FILE's points of class K (when both sides have more than [`K`] points).
fn run_class_of(args: &EvalArgs, path: &Path) -> Result<()> {
    let Some(class) = args.class else {
        bail!("--class-of needs --class: the class the samples were drawn for");
    };
    let column = args.label_column.clone().unwrap_or_default();
    let neighbours = args.neighbours.unwrap_or(NEIGHBOURS);
    let samples = read_points(&args.samples, "--samples")?;
    let labelled = read_labelled(path, &column)?;
    let file = path.display().to_string();
    if samples.dim() != labelled.dim() {
        bail!(
            "--class-of has {} columns besides its labels, the samples {}",
            labelled.dim(),
            samples.dim()
        );
    }
    let classes = labelled.classes();
    let Some(class) = u16::try_from(class)
        .ok()
        .filter(|&c| u32::from(c) < classes)
    else {
        bail!(
            "--class {class}: the labels of {file} are 0 to {} (C = {classes})",
            classes - 1
        );
    };
    let adherence = adherence(&labelled, &samples, class, neighbours)?;
    let share = adherence.share().unwrap_or(0.0);
    let reference = labelled.class_points(class);
    let scores = match samples.len() > K && reference.len() > K {
        true => {
            let name = format!("class {class} of {file}");
            Some(SetScores::against_points(&samples, &reference, &name)?)
        }
        false => None,
    };
    if args.json {
        let mut json = format!(
            "{{\"samples\":{},\"class\":{class},\"classes\":{classes},\"labelled\":{},\
             \"reference\":{},\"neighbours\":{},\"assigned\":{},\"adherence\":{share}",
            samples.len(),
            labelled.len(),
            reference.len(),
            adherence.neighbours,
            adherence.assigned,
        );
        if let Some(SetScores::Other { scores, .. }) = &scores {
            json += &format!(",{}", scores.json_fields());
        }
        say!("{json}}}");
        return Ok(());
    }
    let head = format!(
        "samples          {}\n\
         class            {class} of C = {classes} ({} points of it among {} labelled \
         points of {file}, labels in {column})\n\
         adherence        {share:.4}  ({} of the samples assigned to class {class} by the \
         majority label of their {} nearest labelled points; a tie to the smallest label)\n",
        samples.len(),
        reference.len(),
        labelled.len(),
        adherence.assigned,
        adherence.neighbours,
    );
    let rest = match &scores {
        Some(SetScores::Other {
            against, scores, ..
        }) => table_of_scores(scores, against),
        _ => format!(
            "(the generic scores need more than {K} samples and more than {K} points of \
             class {class})\n"
        ),
    };
    say!("{}", (head + &rest).trim_end());
    Ok(())
}

/// Reads the labelled points of `--class-of` (CSV), the labels in `column`.
fn read_labelled(path: &Path, column: &LabelColumn) -> Result<LabelledPoints> {
    let what = "cannot read --class-of";
    let file = open_input(path, "--class-of", Patience::Unbounded).context(what)?;
    let name = path.display().to_string();
    labels::read_labelled(file, &name, csv::MAX_ROWS, column).context(what)
}

/// The scores of samples of a built-in data set against fresh samples of it: the Swiss
/// roll's curve scores beside the generic ones, or the generic ones alone.
pub enum SetScores {
    /// The Swiss roll: its curve scores, and the generic scores when there are enough samples.
    SwissRoll(Metrics, Option<Scores>),
    /// Another set (the generic scores against its fresh samples) or a file's points (the
    /// generic scores against them).
    Other {
        /// What the samples were scored against, for the table.
        against: String,
        /// Samples scored.
        samples: usize,
        /// Reference points they were scored against.
        reference: usize,
        /// The scores.
        scores: Scores,
    },
}

/// Scores 2-D `points` as samples of `set`, against its fresh samples of `seed`.
pub fn score_set(points: &[[f32; 2]], set: DataSet, seed: u64) -> Result<SetScores> {
    match set {
        DataSet::SwissRoll => {
            let metrics = score(points, seed)?;
            let fresh = data::true_samples(set, points.len().min(MAX_POINTS), seed);
            let generic = match points.len() > K {
                true => Some(compare(
                    &Points::from_pairs(points)?,
                    &Points::from_pairs(&fresh)?,
                    "the true samples",
                )?),
                false => None,
            };
            Ok(SetScores::SwissRoll(metrics, generic))
        }
        _ => SetScores::generic(&Points::from_pairs(points)?, set, seed),
    }
}

impl SetScores {
    /// The generic scores of `samples` against fresh samples of `set` (as many, at most
    /// [`MAX_POINTS`]).
    fn generic(samples: &Points, set: DataSet, seed: u64) -> Result<Self> {
        let n = samples.len().min(MAX_POINTS);
        let fresh = Points::from_pairs(&data::true_samples(set, n, seed))?;
        let scores = compare(samples, &fresh, &format!("--data {set}"))?;
        Ok(Self::Other {
            against: format!("fresh samples of {set}, seed {seed}"),
            samples: samples.len(),
            reference: n,
            scores,
        })
    }

    /// The generic scores of `samples` against the `reference` points of the file `name`.
    pub fn against_points(samples: &Points, reference: &Points, name: &str) -> Result<Self> {
        let scores = compare(samples, reference, name)?;
        Ok(Self::Other {
            against: format!("points of {name}"),
            samples: samples.len(),
            reference: reference.len(),
            scores,
        })
    }

    /// One JSON object: the Swiss roll's curve scores' keys first.
    pub fn json(&self) -> String {
        match self {
            SetScores::SwissRoll(metrics, Some(s)) => {
                format!("{{{},{}}}", metrics.json_fields(), s.json_fields())
            }
            SetScores::SwissRoll(metrics, None) => metrics.to_json(),
            SetScores::Other {
                samples,
                reference,
                scores,
                ..
            } => format!(
                "{{\"samples\":{samples},\"reference\":{reference},{}}}",
                scores.json_fields()
            ),
        }
    }

    /// An aligned table with what each score means (`seed`: the fresh samples').
    pub fn table(&self, seed: u64) -> String {
        match self {
            SetScores::SwissRoll(metrics, Some(s)) => {
                let against = format!("fresh true samples, seed {seed}");
                table(metrics, seed) + &table_of_scores(s, &against)
            }
            SetScores::SwissRoll(metrics, None) => format!(
                "{}(the generic scores need at least {} samples)\n",
                table(metrics, seed),
                K + 1
            ),
            SetScores::Other {
                against,
                samples,
                scores,
                ..
            } => format!("samples          {samples}\n") + &table_of_scores(scores, against),
        }
    }

    /// The headline score, for a figure's panel: the mean distance to the Swiss roll, else
    /// the sliced W2.
    pub fn headline(&self) -> String {
        match self {
            SetScores::SwissRoll(metrics, _) => {
                format!("mean distance {:.4}", metrics.mean_distance)
            }
            SetScores::Other { scores, .. } => format!("sliced W2 {:.4}", scores.sliced_w2),
        }
    }
}

/// Reads the points of `path` (`flag` names it in messages), any width from 1 to 16.
fn read_points(path: &Path, flag: &str) -> Result<Points> {
    let what = || format!("cannot read the {}", flag.trim_start_matches('-'));
    let file = open_input(path, flag, Patience::Unbounded).with_context(what)?;
    let name = path.display().to_string();
    points::read_cloud(file, &name, csv::MAX_ROWS).with_context(what)
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

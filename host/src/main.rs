//! `tinyddpm`: train, sample, evaluate, plot, import, export and quantize the diffusion model
//! of the Swiss roll, the other built-in sets or a file's points.
//!
//! This file holds the command line (clap) and the error edge: every failure becomes one line
//! on stderr and a non-zero exit status (2 for a usage error, 130 after Ctrl-C, 1 otherwise).
//! The commands themselves live in `cli/`, one module each, on top of the `tinyddpm` library.

// Every line goes through `cli::say!`/`cli::tell!`, which a closed pipe cannot abort.
#![warn(clippy::print_stdout, clippy::print_stderr)]

mod cli;

use std::process::ExitCode;

use clap::error::ErrorKind::{
    DisplayHelp, DisplayHelpOnMissingArgumentOrSubcommand, DisplayVersion, MissingSubcommand,
};
use clap::{Parser, Subcommand};
use cli::tell;

/// Train, sample, evaluate and plot tinyddpm's diffusion models of the Swiss roll and other
/// point clouds.
#[derive(Parser)]
#[command(name = "tinyddpm", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model on the Swiss roll, another built-in set or a file of points (any D from 1
    /// to 16); writes a model file and a loss log (CSV).
    Train(cli::train::TrainArgs),
    /// Draw samples from a model file; writes them as CSV (`x,y`, or `x0,…` for D ≠ 2).
    Sample(cli::sample::SampleArgs),
    /// Score samples against the true Swiss roll, another built-in set or reference points.
    Eval(cli::eval::EvalArgs),
    /// Each point's anomaly score under a model: its mean noise-prediction error on noised
    /// copies of it (CSV, larger is more anomalous).
    Score(cli::score::ScoreArgs),
    /// Draw the notebook's figures as PNG.
    #[command(subcommand)]
    Plot(cli::plot::PlotCommand),
    /// Show a model file's header, parameter count and size.
    Inspect(cli::inspect::InspectArgs),
    /// Convert a PyTorch state dict (safetensors) of the seed notebook's model to a model file.
    Import(cli::state_dict::ImportArgs),
    /// Write a model file's weights as a PyTorch state dict (safetensors).
    Export(cli::state_dict::ExportArgs),
    /// Quantize a float model file to an integer one (int8 weights), calibrated on
    /// forward-process samples; prints each layer's scales and clipping.
    Quantize(cli::quantize::QuantizeArgs),
    /// The whole job in one go: train, sample, evaluate and draw every figure into one folder.
    Demo(cli::demo::DemoArgs),
}

/// A clap error as one line: its message and details, without the usage block and tip.
fn one_line(err: &clap::Error) -> String {
    let text = err.render().to_string();
    let mut lines = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with("Usage:") || line.starts_with("For more information") {
            break;
        }
        if !line.is_empty() {
            lines.push(line);
        }
    }
    lines.join(" ")
}

/// An error and its causes as one line. A typed error often names its cause in its own
/// message ("m.tdm: not a tinyddpm model file") and returns it as its source too: a cause
/// already in the line is not repeated. Line breaks inside a message become spaces.
fn error_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

fn main() -> ExitCode {
    // A bug must still end in one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info.location().map(|l| l.to_string()).unwrap_or_default();
        tell!("error: internal error at {at}: {what}");
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err)
            if matches!(
                err.kind(),
                DisplayHelp
                    | DisplayVersion
                    | MissingSubcommand
                    | DisplayHelpOnMissingArgumentOrSubcommand
            ) =>
        {
            let _ = err.print();
            return ExitCode::from(err.exit_code().clamp(0, 255) as u8);
        }
        Err(err) => {
            tell!("{}", one_line(&err));
            return ExitCode::from(2);
        }
    };
    // One thread count for every command, whatever asks for it, started before any work.
    let requested = match &cli.command {
        Command::Train(args) => args.threads,
        Command::Sample(args) => args.threads,
        Command::Score(args) => args.threads,
        Command::Demo(args) => args.threads,
        _ => 0,
    };
    if let Err(err) = cli::start_threads(requested) {
        tell!("error: {}", error_line(&err));
        return ExitCode::FAILURE;
    }
    let result = match cli.command {
        Command::Train(args) => cli::train::run(&args),
        Command::Sample(args) => cli::sample::run(&args),
        Command::Eval(args) => cli::eval::run(&args),
        Command::Score(args) => cli::score::run(&args),
        Command::Plot(command) => cli::plot::run(&command),
        Command::Inspect(args) => cli::inspect::run(&args),
        Command::Import(args) => cli::state_dict::import(&args),
        Command::Export(args) => cli::state_dict::export(&args),
        Command::Quantize(args) => cli::quantize::run(&args),
        Command::Demo(args) => cli::demo::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tell!("error: {}", error_line(&err));
            match err.downcast_ref::<cli::interrupt::Interrupted>() {
                Some(interrupted) => ExitCode::from(interrupted.exit_code()),
                None => ExitCode::FAILURE,
            }
        }
    }
}

//! `tinyddpm inspect`: what a model file holds, without running it.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use tinyddpm_core::ScheduleKind;
use tinyddpm_core::file::{self, VERSION};

use super::describe;

/// Options of `tinyddpm inspect`.
#[derive(Args, Clone, Debug)]
pub struct InspectArgs {
    /// The model file
    pub model: PathBuf,
}

/// Runs `tinyddpm inspect`.
pub fn run(args: &InspectArgs) -> Result<()> {
    let name = args.model.display();
    let bytes = std::fs::read(&args.model).with_context(|| format!("cannot read {name}"))?;
    // read_header checks magic, version, CRC and length before anything is shown.
    let (header, weights) =
        file::read_header(&bytes).with_context(|| format!("cannot load the model: {name}"))?;
    let params = weights.len() / 4;
    let schedule = match header.schedule {
        ScheduleKind::Linear {
            beta_start,
            beta_end,
        } => format!("linear betas {beta_start} … {beta_end}"),
        ScheduleKind::Cosine { s, max_beta } => format!("cosine, s = {s}, max beta {max_beta}"),
    };
    println!("file             {name} ({} bytes)", bytes.len());
    println!("format           tinyddpm model file, version {VERSION}, CRC-32 ok");
    println!(
        "model            H = {}, B = {} residual blocks",
        header.hidden, header.blocks
    );
    println!(
        "parameters       {params} ({} bytes of f32 weights)",
        4 * params
    );
    println!("timesteps        T = {}", header.timesteps);
    println!("schedule         {schedule}");
    println!("default sampler  {}", describe(&header.sampler));
    Ok(())
}

//! `tinyddpm inspect`: what a model file or a training checkpoint holds, without running it.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use tinyddpm::modelfile;
use tinyddpm::train::{CHECKPOINT_FORMAT, CheckpointInfo, inspect_checkpoint};
use tinyddpm_core::file::{self, Header, VERSION};
use tinyddpm_core::{Model, ScheduleKind};

use super::{T, describe, dispatch};

/// Options of `tinyddpm inspect`.
#[derive(Args, Clone, Debug)]
pub struct InspectArgs {
    /// The model file or training checkpoint
    pub model: PathBuf,
}

/// Runs `tinyddpm inspect`.
pub fn run(args: &InspectArgs) -> Result<()> {
    let mut magic = Vec::new();
    std::fs::File::open(&args.model)
        .and_then(|f| f.take(8).read_to_end(&mut magic))
        .with_context(|| format!("cannot read {}", args.model.display()))?;
    // A checkpoint is told apart by its magic; anything else is judged as a model file.
    if magic == CHECKPOINT_FORMAT.magic {
        let info = inspect_checkpoint(&args.model).context("cannot load the checkpoint")?;
        checkpoint(&args.model, &info);
        return Ok(());
    }
    model(&args.model)
}

fn schedule(kind: &ScheduleKind) -> String {
    match *kind {
        ScheduleKind::Linear {
            beta_start,
            beta_end,
        } => format!("linear betas {beta_start} … {beta_end}"),
        ScheduleKind::Cosine { s, max_beta } => format!("cosine, s = {s}, max beta {max_beta}"),
    }
}

/// "; 3 values are not finite (the first is weight 17)", or nothing.
fn non_finite(found: Option<(usize, usize)>, what: &str) -> String {
    match found {
        Some((count, first)) => format!(
            "; {count} {what}{} not finite (the first is number {first}): it cannot be used",
            if count == 1 { " is" } else { "s are" }
        ),
        None => String::new(),
    }
}

fn model(path: &Path) -> Result<()> {
    let name = path.display();
    let bytes = modelfile::read_bytes(path).context("cannot load the model")?;
    // read_header checks magic, version, CRC and length before anything is shown.
    let (header, weights) =
        file::read_header(&bytes).with_context(|| format!("cannot load the model: {name}"))?;
    let params = weights.len() / 4;
    let mut bad = None;
    for (i, c) in weights.chunks_exact(4).enumerate() {
        if !f32::from_le_bytes([c[0], c[1], c[2], c[3]]).is_finite() {
            let (count, first) = bad.unwrap_or((0, i));
            bad = Some((count + 1, first));
        }
    }
    println!("file             {name} ({} bytes)", bytes.len());
    println!(
        "format           tinyddpm model file, version {VERSION}, CRC-32 ok{}",
        non_finite(bad, "weight")
    );
    println!(
        "model            H = {}, B = {} residual blocks",
        header.hidden, header.blocks
    );
    println!(
        "parameters       {params} ({} bytes of f32 weights)",
        4 * params
    );
    println!("timesteps        T = {}", header.timesteps);
    println!("schedule         {}", schedule(&header.schedule));
    println!("default sampler  {}", describe(&header.sampler));
    if bad.is_some() {
        eprintln!("warning: {name} has weights that are not finite; no command will load it");
    } else if header.timesteps as usize == T {
        // Shapes this build cannot run are shown, not probed.
        let _ = dispatch!(header.hidden, header.blocks, probe(&bytes, &header, path));
    }
    Ok(())
}

/// Warns (one line on stderr) when the model's output is not finite where probed.
fn probe<const H: usize, const B: usize>(bytes: &[u8], header: &Header, path: &Path) -> Result<()> {
    let mut model = Box::new(Model::<H, B>::ZERO);
    file::decode_into(bytes, &mut model)?;
    if let Some(why) = modelfile::probe::<H, B, T>(&model, header) {
        eprintln!(
            "warning: {}: the model's output is not finite: {why}; sampling it will fail",
            path.display()
        );
    }
    Ok(())
}

fn checkpoint(path: &Path, info: &CheckpointInfo) {
    println!("file             {} ({} bytes)", path.display(), info.len);
    println!(
        "format           tinyddpm training checkpoint, version {}, CRC-32 ok{}",
        info.version,
        non_finite(info.non_finite, "value")
    );
    println!(
        "model            H = {}, B = {} residual blocks",
        info.hidden, info.blocks
    );
    println!("parameters       {}", info.params);
    println!("timesteps        T = {}", info.timesteps);
    println!("schedule         {}", schedule(&info.schedule));
    println!(
        "step             {} (the run was started for {} steps)",
        info.step, info.steps
    );
    println!("batch            {}", info.batch);
    println!("learning rate    {}", info.lr);
    println!("seed             {}", info.seed);
    match info.ema {
        Some(decay) => println!("EMA              decay {decay}"),
        None => println!("EMA              none"),
    }
    if info.non_finite.is_some() {
        eprintln!(
            "warning: {} holds values that are not finite; training cannot resume from it",
            path.display()
        );
    }
}

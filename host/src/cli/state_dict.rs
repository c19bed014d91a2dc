//! `tinyddpm import` and `tinyddpm export`: the seed notebook's PyTorch state dict
//! (safetensors) to a model file and back.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use tinyddpm::input::Patience;
use tinyddpm::modelfile;
use tinyddpm::{atomic, state_dict};
use tinyddpm_core::file::{Data, Kind, Source};
use tinyddpm_core::{Header, ScheduleKind};

use super::plot::read_model;
use super::{DefaultSamplerArgs, T, files, open_input};
use super::{say, tell};

/// Bytes a state dict may hold beyond the largest model file's float32 weights: its
/// safetensors header (JSON, about 2 kB), generously.
const MAX_STATE_DICT: u64 = 1 << 20;

/// Options of `tinyddpm import`.
#[derive(Args, Clone, Debug)]
pub struct ImportArgs {
    /// The state dict, saved with `safetensors.torch.save_file(model.state_dict(), …)`
    #[arg(long)]
    pub from: PathBuf,
    /// The model file to write (the notebook's schedule)
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub default_sampler: DefaultSamplerArgs,
}

/// Options of `tinyddpm export`.
#[derive(Args, Clone, Debug)]
pub struct ExportArgs {
    /// The model file
    #[arg(long)]
    pub model: PathBuf,
    /// The safetensors file to write (float32; loads with PyTorch's `load_state_dict`)
    #[arg(long)]
    pub out: PathBuf,
}

/// Runs `tinyddpm import`.
pub fn import(args: &ImportArgs) -> Result<()> {
    files::check(&[("--from", &args.from)], &[("--out", &args.out)], &[])?;
    let sampler = args.default_sampler.resolve()?;
    let name = args.from.display();
    let bytes = read_state_dict(&args.from)?;
    let context = || format!("cannot import {name}");
    let tensors = state_dict::parse(&bytes).with_context(context)?;
    let model = state_dict::import(&tensors).with_context(context)?;
    let layout = model.layout();
    // PyTorch state dicts carry no schedule: the seed notebook's is the one they were
    // trained with. Nor do they say what data: 2-D is the notebook's roll (so its import
    // keeps its bytes), any other D points from outside, in the model's own units.
    let data = match layout.dim {
        2 => Data::SWISS_ROLL,
        dim => Data {
            dim: dim as u8,
            source: Source::File,
            units: None,
        },
    };
    let header = Header {
        hidden: layout.hidden as u32,
        blocks: layout.blocks as u32,
        timesteps: T as u32,
        schedule: ScheduleKind::SEED,
        sampler,
        data,
        classes: layout.classes as u16,
    };
    if let Some(why) = modelfile::probe::<T>(&model, &header) {
        tell!("warning: the imported model's output is not finite: {why}; sampling it will fail");
    }
    modelfile::save_flat(&args.out, &model, &header).with_context(context)?;
    say!(
        "imported H = {}, B = {}, D = {} from {name} into {}",
        layout.hidden,
        layout.blocks,
        layout.dim,
        args.out.display()
    );
    Ok(())
}

/// The state dict's bytes, at most [`MAX_STATE_DICT`] plus the most weights a model file
/// holds.
fn read_state_dict(path: &Path) -> Result<Vec<u8>> {
    let limit = modelfile::MAX_FILE_BYTES + MAX_STATE_DICT;
    let mut bytes = Vec::new();
    open_input(path, "--from", Patience::Unbounded)
        .context("cannot read the state dict")?
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() as u64 > limit {
        bail!(
            "cannot read {}: larger than {limit} bytes, more than a state dict of any model a \
             model file can hold",
            path.display()
        );
    }
    Ok(bytes)
}

/// Runs `tinyddpm export`. An integer model is refused: a state dict of its dequantized
/// weights would run in PyTorch as a float model that is neither the integer model (whose
/// int16 activations, requantization and table GELU PyTorch does not do) nor the float
/// model it came from, which is the one to export.
pub fn export(args: &ExportArgs) -> Result<()> {
    files::check(&[("--model", &args.model)], &[("--out", &args.out)], &[])?;
    let file = read_model(&args.model, "--model")?;
    if file.kind == Kind::Integer {
        bail!(
            "{} holds an integer model: export writes float models only; export the float \
             model it was quantized from",
            args.model.display()
        );
    }
    let model = file.flat().context("cannot load the model")?;
    let bytes = state_dict::export(&model)?;
    atomic::write(&args.out, &bytes)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    say!(
        "exported {} to {}",
        args.model.display(),
        args.out.display()
    );
    Ok(())
}

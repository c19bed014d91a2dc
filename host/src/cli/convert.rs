//! `tinyddpm import` and `tinyddpm export`: the seed notebook's PyTorch state dict
//! (safetensors) to a model file and back.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use tinyddpm::{atomic, convert, modelfile};
use tinyddpm_core::{Header, Sampler, ScheduleKind};

use super::{T, dispatch};

/// Options of `tinyddpm import`.
#[derive(Args, Clone, Debug)]
pub struct ImportArgs {
    /// The state dict, saved with `safetensors.torch.save_file(model.state_dict(), …)`
    #[arg(long)]
    pub from: PathBuf,
    /// The model file to write (seed schedule, DDPM as its default sampler)
    #[arg(long)]
    pub out: PathBuf,
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
    let name = args.from.display();
    let bytes = std::fs::read(&args.from).with_context(|| format!("cannot read {name}"))?;
    let context = || format!("cannot import {name}");
    let tensors = convert::parse(&bytes).with_context(context)?;
    let (hidden, blocks) = convert::shape(&tensors).with_context(context)?;
    dispatch!(hidden, blocks, import_shape(args, &tensors)).with_context(context)?;
    println!(
        "imported H = {hidden}, B = {blocks} from {name} into {}",
        args.out.display()
    );
    Ok(())
}

fn import_shape<const H: usize, const B: usize>(
    args: &ImportArgs,
    tensors: &safetensors::SafeTensors<'_>,
) -> Result<()> {
    let model = convert::import::<H, B>(tensors)?;
    // PyTorch state dicts carry no schedule: the seed notebook's is the one they were
    // trained with.
    let header = Header::new::<H, B, T>(ScheduleKind::SEED, Sampler::Ddpm);
    Ok(modelfile::save(&args.out, &model, &header)?)
}

/// Runs `tinyddpm export`.
pub fn export(args: &ExportArgs) -> Result<()> {
    let header = modelfile::read_header(&args.model).context("cannot load the model")?;
    let bytes = dispatch!(header.hidden, header.blocks, export_shape(args))?;
    atomic::write(&args.out, &bytes)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    println!(
        "exported {} to {}",
        args.model.display(),
        args.out.display()
    );
    Ok(())
}

fn export_shape<const H: usize, const B: usize>(args: &ExportArgs) -> Result<Vec<u8>> {
    let (model, _) = modelfile::load::<H, B>(&args.model).context("cannot load the model")?;
    Ok(convert::export(&model)?)
}

//! `tinyddpm inspect`: what a model file (float or integer) or a training checkpoint holds,
//! without running it.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use tinyddpm::data::DataSet;
use tinyddpm::flat::FlatModel;
use tinyddpm::flatq::FlatQModel;
use tinyddpm::input::Patience;
use tinyddpm::modelfile::{self, ModelFile};
use tinyddpm::quantize::weight_scales;
use tinyddpm::train::{CHECKPOINT_FORMAT, CheckpointFile, CheckpointInfo};
use tinyddpm_core::file::{self, Contents, FileError, Header, Kind, QuantSizes};
use tinyddpm_core::{Data, Layer, Source};

use super::{INSPECT_PATIENCE, T, describe, open_input};
use super::{say, tell};

/// Options of `tinyddpm inspect`.
#[derive(Args, Clone, Debug)]
pub struct InspectArgs {
    /// The model file or training checkpoint
    pub model: PathBuf,
}

/// Runs `tinyddpm inspect`.
pub fn run(args: &InspectArgs) -> Result<()> {
    let path = &args.model;
    // Read once, as a stream: a pipe (`cat m.tdm | tinyddpm inspect /dev/stdin`) works, and
    // a FIFO with no writer is given up on instead of waited for forever.
    let mut file = open_input(path, "the file", Patience::Bounded(INSPECT_PATIENCE))
        .context("cannot inspect")?;
    let mut magic = Vec::new();
    (&mut file)
        .take(CHECKPOINT_FORMAT.magic.len() as u64)
        .read_to_end(&mut magic)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let whole = std::io::Cursor::new(magic.clone()).chain(file);
    // A checkpoint is told apart by its magic; anything else is judged as a model file.
    if magic == CHECKPOINT_FORMAT.magic {
        let info = CheckpointFile::from_reader(whole, path)
            .and_then(|c| c.info())
            .context("cannot load the checkpoint")?;
        checkpoint(path, &info);
        return Ok(());
    }
    let model_file = ModelFile::from_reader(whole, path).context("cannot load the model")?;
    model(&model_file)
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

fn model(model_file: &ModelFile) -> Result<()> {
    let (path, bytes) = (model_file.path.as_path(), model_file.bytes());
    // Reading checked magic, version, CRC, length and header: this cannot fail.
    let contents = file::open(bytes).with_context(|| format!("cannot load {}", path.display()))?;
    match contents.kind {
        Kind::Float => float_model(path, bytes, &contents),
        Kind::Integer => integer_model(path, bytes, &contents),
    }
    // The check every command makes before using a model.
    if let Err(e) = model_file.schedule::<T>() {
        tell!("warning: {}: {e}; no command will load it", path.display());
    }
    Ok(())
}

/// The lines every model file has: the file, its format and kind, the model's shape.
fn head(path: &Path, bytes: &[u8], contents: &Contents<'_>, format_note: &str, kind: &str) {
    let header = &contents.header;
    say!(
        "file             {} ({} bytes)",
        path.display(),
        bytes.len()
    );
    say!(
        "format           tinyddpm model file, version {}, CRC-32 ok{format_note}",
        contents.version
    );
    say!("kind             {kind}");
    say!(
        "model            H = {}, B = {} residual blocks",
        header.hidden,
        header.blocks
    );
    if header.classes > 0 {
        say!(
            "classes          C = {}, classes 0 to {} and \"no class\" (sample --class K \
             --guidance W)",
            header.classes,
            header.classes - 1
        );
    }
}

/// The lines after the parameters: what the header says about the data and sampling.
fn tail(header: &Header) {
    say!("data             {}", data_line(&header.data));
    say!("timesteps        T = {}", header.timesteps);
    say!("schedule         {}", header.schedule);
    say!("default sampler  {}", describe(&header.sampler));
}

/// "D = 2, the built-in set moons" and the units, if any: "; in data units x·(1.7, 0.3) +
/// (-0.25, 40)".
fn data_line(data: &Data) -> String {
    let dim = usize::from(data.dim);
    let source = match data.source {
        Source::Builtin(id) => match DataSet::from_id(id) {
            Some(set) => format!("the built-in set {set}"),
            None => format!("a built-in set this build does not know (number {id})"),
        },
        Source::File => "points from a file".into(),
    };
    let units = match &data.units {
        Some(u) => {
            let list = |v: &[f32]| v.iter().map(f32::to_string).collect::<Vec<_>>().join(", ");
            format!(
                "; samples in data units x·({}) + ({})",
                list(&u.scale[..dim]),
                list(&u.shift[..dim])
            )
        }
        None => String::new(),
    };
    format!("D = {dim}, {source}{units}")
}

fn float_model(path: &Path, bytes: &[u8], contents: &Contents<'_>) {
    let (header, weights) = (&contents.header, contents.payload);
    let params = weights.len() / 4;
    let mut bad = None;
    for (i, c) in weights.chunks_exact(4).enumerate() {
        if !f32::from_le_bytes([c[0], c[1], c[2], c[3]]).is_finite() {
            let (count, first) = bad.unwrap_or((0, i));
            bad = Some((count + 1, first));
        }
    }
    let note = non_finite(bad, "weight");
    head(path, bytes, contents, &note, "float (f32 weights)");
    say!(
        "parameters       {params} ({} bytes of f32 weights)",
        4 * params
    );
    tail(header);
    if bad.is_some() {
        tell!(
            "warning: {} has weights that are not finite; no command will load it",
            path.display()
        );
    } else if header.timesteps as usize == T
        && let Ok(model) = FlatModel::decode(bytes)
        && let Some(why) = modelfile::probe::<T>(&model, header)
    {
        tell!(
            "warning: {}: the model's output is not finite: {why}; sampling it will fail",
            path.display()
        );
    }
}

fn integer_model(path: &Path, bytes: &[u8], contents: &Contents<'_>) {
    let header = &contents.header;
    let layers = layer_table(bytes);
    let note = match &layers {
        Err(e) => format!("; {e}: it cannot be used"),
        Ok(_) => String::new(),
    };
    head(
        path,
        bytes,
        contents,
        &note,
        "integer (int8 weights, int32 sums, int16 activations)",
    );
    // open() checked the payload's length, so the sizes exist.
    if let Some(QuantSizes {
        channels,
        weights,
        exponents,
    }) = QuantSizes::with_dim(header.hidden, header.blocks, header.data.dim)
    {
        say!(
            "parameters       {weights} int8 weights ({weights} bytes), {channels} channels \
             ({} bytes of i32 biases, i32 multipliers, u8 shifts), {exponents} exponents",
            9 * channels
        );
    }
    tail(header);
    match layers {
        Ok(table) => say!("{}", table.trim_end()),
        Err(_) => tell!(
            "warning: {} holds parameters out of their range; no command will load it",
            path.display()
        ),
    }
}

/// The integer model's layers: each one's input and output exponents, its GELU's output
/// exponent and its range of weight scales (activations are `q·2^−e`); or why the file's
/// parameters are not a valid model.
fn layer_table(bytes: &[u8]) -> Result<String, FileError> {
    let model = FlatQModel::decode(bytes)?;
    let params = model.params();
    let (input, output) = (params.layer(Layer::Input), params.layer(Layer::Output));
    let mut table = String::new();
    let exp = |e: u8| format!("2^-{e}");
    table += &format!(
        "activations      x_t {}, residual stream {}, predicted noise {} (value q·2^-e)\n",
        exp(input.in_exp),
        exp(output.in_exp),
        exp(output.out_exp)
    );
    table += &format!(
        "{:<22} {:>6} {:>6} {:>9}  weight scales\n",
        "layer", "input", "output", "GELU out"
    );
    for l in params.layers() {
        let [lo, hi] = weight_scales(&l);
        let act = l.act.map_or_else(|| "-".to_owned(), |g| exp(g.post_exp));
        table += &format!(
            "{:<22} {:>6} {:>6} {:>9}  {lo:.3e} .. {hi:.3e}\n",
            l.layer.to_string(),
            exp(l.in_exp),
            exp(l.out_exp),
            act
        );
    }
    Ok(table)
}

fn checkpoint(path: &Path, info: &CheckpointInfo) {
    say!("file             {} ({} bytes)", path.display(), info.len);
    say!(
        "format           tinyddpm training checkpoint, version {}, CRC-32 ok{}",
        info.version,
        non_finite(info.non_finite, "value")
    );
    say!(
        "model            H = {}, B = {} residual blocks, D = {}",
        info.hidden,
        info.blocks,
        info.dim
    );
    if let Some(c) = info.classes {
        say!(
            "classes          C = {}, labels dropped to \"no class\" with probability {}",
            c.classes,
            c.dropout
        );
    }
    say!("parameters       {}", info.params);
    say!("data             {}", info.data);
    say!("timesteps        T = {}", info.timesteps);
    say!("schedule         {}", info.schedule);
    say!(
        "step             {} (the run was started for {} steps)",
        info.step,
        info.steps
    );
    say!("batch            {}", info.batch);
    say!("learning rate    {}", info.lr);
    say!("seed             {}", info.seed);
    match info.ema {
        Some(decay) => say!("EMA              decay {decay}"),
        None => say!("EMA              none"),
    }
    // What `train --resume` checks, in the same words: the first reason is enough. (The CPU
    // trainer resumes a model of any shape.)
    let unusable = info.unusable.as_ref().map(ToString::to_string).or_else(|| {
        (info.timesteps as usize != T)
            .then(|| format!("T = {}, and this build runs T = {T}", info.timesteps))
    });
    if let Some(why) = unusable {
        tell!(
            "warning: {}: {why}; no command will load it (training cannot resume from it)",
            path.display()
        );
    }
}

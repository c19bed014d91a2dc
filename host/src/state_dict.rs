//! The PyTorch `state_dict` bridge: the seed notebook's weights as safetensors, in and out.
//!
//! Keys and shapes are the notebook's (`time_embed.embed.{0,2}`, `input_layer.0`,
//! `hidden_layers.{i}.{0,2}`, `output_layer`, each `.weight` `[out, in]` and `.bias` `[out]`),
//! float32, as named by the core's [`Model::for_each_tensor`]. Import is strict, like PyTorch's
//! `load_state_dict(strict=True)`: a missing, extra, mis-typed or mis-shaped tensor is an
//! error naming the key, so a state dict of another architecture never loads half-way.
//! Export writes what `safetensors.torch.save_file(model.state_dict())` writes: the same keys,
//! no metadata, so the file loads with `load_state_dict` and round-trips byte for byte.

use std::collections::BTreeSet;

use safetensors::tensor::{Dtype, SafeTensorError, SafeTensors, TensorView};
use tinyddpm_core::Model;

/// The tensor whose shape gives the hidden width.
const INPUT_WEIGHT: &str = "input_layer.0.weight";

/// Why a state dict could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The bytes are not a safetensors file.
    #[error("not a safetensors file: {0}")]
    Format(SafeTensorError),
    /// A tensor the model needs is absent.
    #[error("missing tensor `{0}`")]
    Missing(String),
    /// A tensor is not float32.
    #[error("tensor `{name}` is {dtype:?}, expected F32 (save the state dict with .float())")]
    Dtype {
        /// The key.
        name: String,
        /// Its stored type.
        dtype: Dtype,
    },
    /// A tensor has another shape than the model's.
    #[error("tensor `{name}` has shape {found:?}, expected {expected}")]
    Shape {
        /// The key.
        name: String,
        /// Its stored shape.
        found: Vec<usize>,
        /// The model's shape for it.
        expected: String,
    },
    /// A tensor holds NaN or infinity.
    #[error("tensor `{0}` holds a value that is not finite")]
    NonFinite(String),
    /// A tensor that is not part of the model.
    #[error("unexpected tensor `{0}` (not part of the seed model)")]
    Unexpected(String),
    /// The state dict could not be encoded.
    #[error("cannot encode safetensors: {0}")]
    Encode(SafeTensorError),
}

/// Parses safetensors bytes.
pub fn parse(bytes: &[u8]) -> Result<SafeTensors<'_>, ConvertError> {
    SafeTensors::deserialize(bytes).map_err(ConvertError::Format)
}

/// The model shape `(H, B)` of a state dict: H from `input_layer.0.weight` (`[H, 2]`), B from
/// the number of consecutive `hidden_layers.{i}` blocks.
pub fn shape(tensors: &SafeTensors<'_>) -> Result<(usize, usize), ConvertError> {
    let input = tensors
        .tensor(INPUT_WEIGHT)
        .map_err(|_| ConvertError::Missing(INPUT_WEIGHT.into()))?;
    let hidden = match *input.shape() {
        [h, 2] => h,
        _ => {
            return Err(ConvertError::Shape {
                name: INPUT_WEIGHT.into(),
                found: input.shape().to_vec(),
                expected: "[H, 2]".into(),
            });
        }
    };
    let blocks = (0..)
        .take_while(|i| {
            tensors
                .tensor(&format!("hidden_layers.{i}.0.weight"))
                .is_ok()
        })
        .count();
    Ok((hidden, blocks))
}

fn read_tensor(
    tensors: &SafeTensors<'_>,
    name: &str,
    shape: &[usize],
    out: &mut [f32],
) -> Result<(), ConvertError> {
    let t = tensors
        .tensor(name)
        .map_err(|_| ConvertError::Missing(name.into()))?;
    if t.dtype() != Dtype::F32 {
        return Err(ConvertError::Dtype {
            name: name.into(),
            dtype: t.dtype(),
        });
    }
    if t.shape() != shape {
        return Err(ConvertError::Shape {
            name: name.into(),
            found: t.shape().to_vec(),
            expected: format!("{shape:?}"),
        });
    }
    for (v, c) in out.iter_mut().zip(t.data().chunks_exact(4)) {
        *v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    if out.iter().any(|v| !v.is_finite()) {
        return Err(ConvertError::NonFinite(name.into()));
    }
    Ok(())
}

/// Builds a `Model<H, B>` from a state dict (see [`shape`] to choose `H` and `B`).
pub fn import<const H: usize, const B: usize>(
    tensors: &SafeTensors<'_>,
) -> Result<Box<Model<H, B>>, ConvertError> {
    let mut model = Box::new(Model::<H, B>::ZERO);
    let mut result = Ok(());
    let mut used = BTreeSet::new();
    model.for_each_tensor_mut(|name, shape, data| {
        if result.is_ok() {
            let name = name.to_string();
            result = read_tensor(tensors, &name, shape, data);
            used.insert(name);
        }
    });
    result?;
    let extra = tensors
        .names()
        .into_iter()
        .filter(|n| !used.contains(*n))
        .min();
    match extra {
        Some(name) => Err(ConvertError::Unexpected(name.into())),
        None => Ok(model),
    }
}

/// The model's state dict as safetensors bytes (float32, no metadata).
pub fn export<const H: usize, const B: usize>(
    model: &Model<H, B>,
) -> Result<Vec<u8>, ConvertError> {
    let mut tensors = Vec::new();
    model.for_each_tensor(|name, shape, data| {
        let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        tensors.push((name.to_string(), shape.to_vec(), bytes));
    });
    let views = tensors
        .iter()
        .map(|(name, shape, bytes)| {
            TensorView::new(Dtype::F32, shape.clone(), bytes).map(|v| (name.as_str(), v))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(ConvertError::Encode)?;
    safetensors::serialize(views, None).map_err(ConvertError::Encode)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Box<Model<4, 1>> {
        let mut m = Box::new(Model::<4, 1>::ZERO);
        let mut k = 0.0f32;
        m.for_each_param_mut(|p| {
            k += 0.25;
            *p = k;
        });
        m
    }

    #[test]
    fn export_then_import_gives_the_same_model() {
        let m = small();
        let bytes = export(&m).unwrap();
        let t = parse(&bytes).unwrap();
        assert_eq!(shape(&t).unwrap(), (4, 1));
        assert_eq!(import::<4, 1>(&t).unwrap(), m);
    }

    #[test]
    fn errors_name_the_key() {
        let bytes = export(&small()).unwrap();
        let t = parse(&bytes).unwrap();
        let e = import::<4, 2>(&t).unwrap_err();
        assert_eq!(e.to_string(), "missing tensor `hidden_layers.1.0.weight`");
        let e = import::<8, 1>(&t).unwrap_err();
        assert_eq!(
            e.to_string(),
            "tensor `time_embed.embed.0.weight` has shape [4, 1], expected [8, 1]"
        );
        let bytes = export(&Model::<4, 2>::ZERO).unwrap();
        let e = import::<4, 1>(&parse(&bytes).unwrap()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unexpected tensor `hidden_layers.1.0.bias` (not part of the seed model)"
        );
        assert!(matches!(parse(b"garbage"), Err(ConvertError::Format(_))));
    }
}

//! The PyTorch `state_dict` bridge: the seed notebook's weights as safetensors, in and out.
//!
//! Keys and shapes are the notebook's, for a model of any shape (`time_embed.embed.{0,2}`, `input_layer.0`,
//! `hidden_layers.{i}.{0,2}`, `output_layer`, each `.weight` `[out, in]` and `.bias` `[out]`),
//! float32, as named by the core's [`Model::for_each_tensor`](tinyddpm_core::Model::for_each_tensor). Import is strict, like PyTorch's
//! `load_state_dict(strict=True)`: a missing, extra, mis-typed or mis-shaped tensor is an
//! error naming the key, so a state dict of another architecture never loads half-way.
//! Export writes what `safetensors.torch.save_file(model.state_dict())` writes: the same keys,
//! no metadata, so the file loads with `load_state_dict` and round-trips byte for byte.

use std::collections::BTreeSet;

use safetensors::tensor::{Dtype, SafeTensorError, SafeTensors, TensorView};
use tinyddpm_core::Layout;
use tinyddpm_core::condition::MAX_CLASSES;
use tinyddpm_core::units::MAX_DIM;

use crate::flat::FlatModel;

/// The tensor whose shape gives the hidden width.
const INPUT_WEIGHT: &str = "input_layer.0.weight";
/// The tensor whose shape gives the classes of a conditioned model.
const CLASS_EMBEDDING: &str = "class_embed.weight";

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
    #[error("unexpected tensor `{0}` (not part of the notebook's model)")]
    Unexpected(String),
    /// The state dict could not be encoded.
    #[error("cannot encode safetensors: {0}")]
    Encode(SafeTensorError),
}

/// Parses safetensors bytes.
pub fn parse(bytes: &[u8]) -> Result<SafeTensors<'_>, ConvertError> {
    SafeTensors::deserialize(bytes).map_err(ConvertError::Format)
}

/// The layout of a state dict's model: H and D from `input_layer.0.weight` (`[H, D]`, D from 1
/// to [`MAX_DIM`]), B from the number of consecutive `hidden_layers.{i}` blocks, and C from
/// `class_embed.weight` (`[C + 1, H]`, C ≥ 1) when there is one.
pub fn layout(tensors: &SafeTensors<'_>) -> Result<Layout, ConvertError> {
    let input = tensors
        .tensor(INPUT_WEIGHT)
        .map_err(|_| ConvertError::Missing(INPUT_WEIGHT.into()))?;
    let blocks = (0..)
        .take_while(|i| {
            tensors
                .tensor(&format!("hidden_layers.{i}.0.weight"))
                .is_ok()
        })
        .count();
    let layout = match *input.shape() {
        [h, d] if h > 0 && (1..=MAX_DIM).contains(&d) => Layout::with_dim(h, blocks, d),
        _ => None,
    };
    let layout = layout.ok_or_else(|| ConvertError::Shape {
        name: INPUT_WEIGHT.into(),
        found: input.shape().to_vec(),
        expected: format!("[H, D] with D from 1 to {MAX_DIM}"),
    })?;
    let Ok(embedding) = tensors.tensor(CLASS_EMBEDDING) else {
        return Ok(layout);
    };
    let classes = match *embedding.shape() {
        [rows, h] if h == layout.hidden && (2..=MAX_CLASSES + 1).contains(&rows) => {
            layout.with_classes(rows - 1)
        }
        _ => None,
    };
    classes.ok_or_else(|| ConvertError::Shape {
        name: CLASS_EMBEDDING.into(),
        found: embedding.shape().to_vec(),
        expected: format!("[C + 1, {}] with C from 1 to {MAX_CLASSES}", layout.hidden),
    })
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

/// The model of a state dict, of the shape its tensors have ([`layout`]).
pub fn import(tensors: &SafeTensors<'_>) -> Result<FlatModel, ConvertError> {
    let mut model = FlatModel::zero(layout(tensors)?);
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
pub fn export(model: &FlatModel) -> Result<Vec<u8>, ConvertError> {
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
    use tinyddpm_core::Model;

    /// A model of shape (H, B, D) with every parameter distinct.
    fn small<const H: usize, const B: usize, const D: usize>() -> FlatModel {
        let mut m = Box::new(Model::<H, B, D>::ZERO);
        let mut k = 0.0f32;
        m.for_each_param_mut(|p| {
            k += 0.25;
            *p = k;
        });
        FlatModel::of(&*m)
    }

    #[test]
    fn export_then_import_gives_the_same_model_of_any_shape() {
        for m in [small::<4, 1, 2>(), small::<5, 3, 1>(), small::<3, 2, 16>()] {
            let bytes = export(&m).unwrap();
            let t = parse(&bytes).unwrap();
            assert_eq!(layout(&t).unwrap(), m.layout());
            assert_eq!(import(&t).unwrap(), m);
        }
    }

    /// A model conditioned on classes: `class_embed.weight` `[C + 1, H]` out and in, and a
    /// wrong shape of it named.
    #[test]
    fn the_class_embedding_round_trips_and_its_shape_is_checked() {
        let plain = small::<4, 1, 2>();
        let layout = plain.layout().with_classes(3).unwrap();
        let params = (0..layout.len()).map(|i| i as f32 * 0.125).collect();
        let m = FlatModel::new(layout, params).unwrap();
        let bytes = export(&m).unwrap();
        let t = parse(&bytes).unwrap();
        assert_eq!(t.tensor(CLASS_EMBEDDING).unwrap().shape(), [4, 4]);
        assert_eq!(import(&t).unwrap(), m);
        for shape in [vec![4, 5], vec![1, 4], vec![16]] {
            let data = vec![0u8; 4 * shape.iter().product::<usize>()];
            let view = TensorView::new(Dtype::F32, shape.clone(), &data).unwrap();
            let mut named: Vec<(String, TensorView<'_>)> = t.tensors().into_iter().collect();
            named.retain(|(n, _)| n != CLASS_EMBEDDING);
            named.push((CLASS_EMBEDDING.into(), view));
            let bytes = safetensors::serialize(named, None).unwrap();
            let e = import(&parse(&bytes).unwrap()).unwrap_err();
            assert!(
                e.to_string().starts_with(&format!(
                    "tensor `class_embed.weight` has shape {shape:?}, expected [C + 1, 4]"
                )),
                "{e}"
            );
        }
    }

    #[test]
    fn errors_name_the_key() {
        let wide = [0u8; 4 * 8];
        let bytes = export(&small::<4, 1, 2>()).unwrap();
        let mut tensors: Vec<(String, TensorView<'_>)> =
            parse(&bytes).unwrap().tensors().into_iter().collect();
        let without = |key: &str, tensors: &[(String, TensorView<'_>)]| {
            let kept = tensors.iter().filter(|(n, _)| n != key).cloned();
            safetensors::serialize(kept, None).unwrap()
        };
        let bytes = without("output_layer.bias", &tensors);
        let e = import(&parse(&bytes).unwrap()).unwrap_err();
        assert_eq!(e.to_string(), "missing tensor `output_layer.bias`");
        let bytes = without("input_layer.0.weight", &tensors);
        let e = import(&parse(&bytes).unwrap()).unwrap_err();
        assert_eq!(e.to_string(), "missing tensor `input_layer.0.weight`");
        // A time embedding of another width than the input layer's.
        let at = tensors
            .iter()
            .position(|(n, _)| n == "time_embed.embed.0.weight")
            .unwrap();
        tensors[at].1 = TensorView::new(Dtype::F32, vec![8, 1], &wide).unwrap();
        let e = import(&parse(&without("", &tensors)).unwrap()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "tensor `time_embed.embed.0.weight` has shape [8, 1], expected [4, 1]"
        );
        let bytes = export(&small::<4, 2, 2>()).unwrap();
        let t = parse(&bytes).unwrap();
        let mut named: Vec<(String, TensorView<'_>)> = t.tensors().into_iter().collect();
        named.retain(|(n, _)| n != "hidden_layers.1.0.weight");
        let e = import(&parse(&safetensors::serialize(named, None).unwrap()).unwrap()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unexpected tensor `hidden_layers.1.0.bias` (not part of the notebook's model)"
        );
        assert!(matches!(parse(b"garbage"), Err(ConvertError::Format(_))));
    }

    #[test]
    fn an_input_layer_of_no_or_too_many_coordinates_is_refused() {
        for d in [0, 17] {
            let data = vec![0u8; 4 * 4 * d];
            let view = TensorView::new(Dtype::F32, vec![4, d], &data).unwrap();
            let bytes = safetensors::serialize([(INPUT_WEIGHT, view)], None).unwrap();
            let e = import(&parse(&bytes).unwrap()).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "tensor `input_layer.0.weight` has shape [4, {d}], expected [H, D] with D \
                     from 1 to 16"
                )
            );
        }
    }
}

//! Named tensors in a safetensors container with string metadata: the byte format of
//! model files, reusable by anything that stores tensors (checkpoints).
//!
//! f32 and f64 are stored as safetensors `F32` / `F64` (little-endian), so values come
//! back bit for bit. Decoding copies each tensor once; the container is validated by
//! the safetensors crate (header size, offsets, sizes against shapes) before anything
//! is allocated from it, so a hostile file never makes us allocate more than its size.

use crate::error::{Error, Result};
use crate::tensor::{DType, Shape, Tensor, INFERRED};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use std::collections::HashMap;

/// A decoded container: its metadata and its tensors, by name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Container {
    pub metadata: HashMap<String, String>,
    pub tensors: HashMap<String, Tensor>,
}

fn format_err(file: &str, detail: impl Into<String>) -> Error {
    Error::Format {
        file: file.to_string(),
        detail: detail.into(),
    }
}

fn le_bytes(t: &Tensor) -> Vec<u8> {
    match t.dtype() {
        DType::F32 => t
            .as_slice::<f32>()
            .unwrap_or_default()
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        DType::F64 => t
            .as_slice::<f64>()
            .unwrap_or_default()
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
    }
}

/// Serialize `tensors` (names must be distinct) and `metadata` into container bytes.
/// `file` names the destination in errors.
pub fn encode(
    file: &str,
    tensors: &[(String, Tensor)],
    metadata: HashMap<String, String>,
) -> Result<Vec<u8>> {
    let bytes: Vec<Vec<u8>> = tensors.iter().map(|(_, t)| le_bytes(t)).collect();
    let mut views = Vec::with_capacity(tensors.len());
    for ((name, t), b) in tensors.iter().zip(&bytes) {
        if t.shape().has_inferred() {
            return Err(Error::invalid(
                format!("saving {file}"),
                format!("tensor '{name}' has an unresolved shape {}", t.shape()),
            ));
        }
        let dtype = match t.dtype() {
            DType::F32 => Dtype::F32,
            DType::F64 => Dtype::F64,
        };
        let view = TensorView::new(dtype, t.shape().dims().to_vec(), b).map_err(|e| {
            Error::invalid(format!("saving {file}"), format!("tensor '{name}': {e}"))
        })?;
        views.push((name.as_str(), view));
    }
    let mut names: Vec<&str> = views.iter().map(|(n, _)| *n).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::invalid(
            format!("saving {file}"),
            format!("two tensors are named '{}'", w[0]),
        ));
    }
    safetensors::serialize(views, &Some(metadata))
        .map_err(|e| Error::invalid(format!("saving {file}"), e.to_string()))
}

/// Only the metadata of container bytes read from `file` (no tensor is copied).
pub fn metadata(file: &str, bytes: &[u8]) -> Result<HashMap<String, String>> {
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| not_a_container(file, e))?;
    Ok(meta.metadata().clone().unwrap_or_default())
}

fn not_a_container(file: &str, e: safetensors::SafeTensorError) -> Error {
    format_err(
        file,
        format!(
            "expected a safetensors container (8-byte little-endian header size, JSON \
             header, tensor data), found something else: {e}"
        ),
    )
}

/// Parse container bytes read from `file`. Only `F32` and `F64` tensors are accepted.
pub fn decode(file: &str, bytes: &[u8]) -> Result<Container> {
    let (header_len, meta) =
        SafeTensors::read_metadata(bytes).map_err(|e| not_a_container(file, e))?;
    // read_metadata checked that the header and every tensor's bytes lie in `bytes`.
    let data = bytes.get(8 + header_len..).unwrap_or_default();
    let metadata = meta.metadata().clone().unwrap_or_default();
    let infos = meta.tensors();
    let mut tensors = HashMap::with_capacity(infos.len());
    for (name, info) in infos {
        let (start, end) = info.data_offsets;
        let raw = data.get(start..end).ok_or_else(|| {
            format_err(
                file,
                format!("tensor '{name}': data offsets {start}..{end} lie outside the file"),
            )
        })?;
        if info.shape.contains(&INFERRED) {
            return Err(format_err(
                file,
                format!("tensor '{name}': dimension {INFERRED} is not a size"),
            ));
        }
        let shape = Shape::new(info.shape.clone());
        let t = match info.dtype {
            Dtype::F32 => Tensor::from_vec(
                shape,
                raw.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect::<Vec<f32>>(),
            ),
            Dtype::F64 => Tensor::from_vec(
                shape,
                raw.chunks_exact(8)
                    .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                    .collect::<Vec<f64>>(),
            ),
            other => {
                return Err(format_err(
                    file,
                    format!("tensor '{name}': expected dtype F32 or F64, found {other:?}"),
                ))
            }
        }
        .map_err(|e| format_err(file, format!("tensor '{name}': {e}")))?;
        tensors.insert(name, t);
    }
    Ok(Container { metadata, tensors })
}

//! Loading CNTK 2.x model files (the CNTKv2 format of `Function.save`): a bare
//! protobuf `CNTK.proto.Dictionary`, decoded with prost from the schema in
//! `proto/cntk.proto` (compiled at build time by protox), then rebuilt as an rntk graph
//! through the ordinary constructors, so shape inference checks it again.
//!
//! * Shapes are stored column-major (reversed); rntk uses Python order. Tensor values
//!   keep their order (CNTK's column-major order of the reversed shape is NumPy's C
//!   order of the Python shape).
//! * `times(x, W)` is stored as `Times(W, x)`; it is loaded as rntk's `times(x, W)`.
//! * Blocks (layers and many Python-level ops) stay blocks with their CNTK op name and
//!   name; `sequence.first/last`, `sequence.reduce_sum/max` and `softplus`, which CNTK
//!   writes as blocks over its internal packing ops, load as rntk's single ops.
//! * CNTK's sequential convolution, saved as an unpacking, a convolution over the free
//!   dimension and a `ToSequence` (`seq_conv.rs`), loads as rntk's sequential
//!   convolution op.
//! * Unsupported ops are reported together, with their op code, name and place, in one
//!   [`Error::Unsupported`]; nothing is loaded partially. Every defect of a file is an
//!   error ([`Error::Format`] naming the file and the function or variable), never a
//!   panic, and nothing is allocated beyond what the file's bytes hold.
//!
//! The loaded function evaluates and trains like any rntk model (its parameters are
//! ordinary parameters) and can be saved in rntk's format with [`Function::save`].

mod conv;
mod dict;
pub mod model;
pub mod op_codes;
pub mod proto;
mod rebuild;
mod seq_conv;

pub use model::{CntkModel, FnDesc, VarDesc, VarKindCode};
pub use op_codes::op_name;

use crate::error::{Error, Result};
use crate::graph::Function;
use std::path::Path;

/// Graphs up to this many functions and variables are rebuilt on the caller's thread.
const INLINE_NODES: usize = 500;
/// Stack reserved per node for larger graphs: rebuilding and the executor's loop check
/// recurse along chains of functions.
const STACK_PER_NODE: usize = 8192;

/// Whether `bytes` look like a CNTK v2 model rather than rntk's own format (a
/// safetensors container: an 8-byte little-endian header length, then a JSON header
/// starting with `{`).
pub fn is_cntk_model(bytes: &[u8]) -> bool {
    let rntk = match bytes.get(..8) {
        Some(h) => {
            let n = u64::from_le_bytes(h.try_into().unwrap_or([0xff; 8]));
            bytes.get(8) == Some(&b'{') && n <= bytes.len() as u64 - 8
        }
        None => false,
    };
    // A CNTK Dictionary starts with field 1 (varint version) or field 2 (a map entry).
    !rntk && matches!(bytes.first(), Some(0x08) | Some(0x12))
}

fn rebuild(file: &str, model: &CntkModel) -> Result<Function> {
    let b = rebuild::Builder::new(file, model);
    b.check_supported(&model.root)?;
    b.build(&model.root)
}

/// Rebuild the graph of a CNTK model file's bytes (`file` names it in errors).
pub fn load_cntk_bytes(file: &str, bytes: &[u8]) -> Result<Function> {
    let model = CntkModel::decode(file, bytes)?;
    let nodes = model.functions.len().saturating_add(model.variables.len());
    if nodes <= INLINE_NODES {
        return rebuild(file, &model);
    }
    // A long chain (legitimately large, or a hostile file) must not overflow the
    // caller's stack: rebuild it on a thread whose stack grows with the graph.
    let stack = nodes.saturating_mul(STACK_PER_NODE).saturating_add(1 << 20);
    let too_big = |detail: String| Error::Format {
        file: file.to_string(),
        detail: format!("a graph of {nodes} functions and variables cannot be rebuilt: {detail}"),
    };
    std::thread::scope(|s| {
        let worker = std::thread::Builder::new()
            .name("rntk-cntk-import".into())
            .stack_size(stack)
            .spawn_scoped(s, || rebuild(file, &model))
            .map_err(|e| too_big(format!("no thread with a {stack}-byte stack: {e}")))?;
        worker
            .join()
            .map_err(|_| too_big("rebuilding it failed unexpectedly".into()))?
    })
}

fn read(path: &Path) -> Result<(String, Vec<u8>)> {
    let file = path.display().to_string();
    let bytes = crate::files::read_whole(path, "a model file")?;
    Ok((file, bytes))
}

/// Load a model saved by CNTK 2.x (`Function.save`, CNTKv2 format).
pub fn load_cntk(path: impl AsRef<Path>) -> Result<Function> {
    let (file, bytes) = read(path.as_ref())?;
    load_cntk_bytes(&file, &bytes)
}

/// The decoded contents of a CNTK model file, without building the graph (for tools
/// that describe a model).
pub fn read_cntk(path: impl AsRef<Path>) -> Result<CntkModel> {
    let (file, bytes) = read(path.as_ref())?;
    CntkModel::decode(&file, &bytes)
}

impl Function {
    /// Load a model saved by CNTK 2.x (see [`load_cntk`]).
    pub fn load_cntk(path: impl AsRef<Path>) -> Result<Function> {
        load_cntk(path)
    }
}

//! ONNX: any rntk model (built in rntk or loaded from a CNTK file) written as an ONNX
//! model, and ONNX models read as rntk graphs (see docs/onnx.md).
//!
//! * [`Function::save_onnx`] / [`to_onnx_bytes`]: standard ONNX operators at opset
//!   13–21 (default 17); sequence values as `[sequence, batch, …]` with an int32
//!   lengths input per sequence axis (`sequence_lens`), batch-only values as
//!   `[batch, …]`; recurrences as `LSTM` / `GRU` / `RNN` or `Scan`; rntk's
//!   sequence-axis ops as model-local functions of domain `ai.rntk` whose bodies are
//!   standard operators. What cannot be written is refused in one error listing every
//!   such op and where it sits; nothing is written then.
//! * The schema is `proto/onnx.proto` of the ONNX project (Apache-2.0), compiled at
//!   build time by protox + prost-build ([`proto`]).

mod builder;
mod export;
pub mod import;
pub mod proto;

use crate::error::{Error, Result};
use crate::graph::Function;
use prost::Message;
use std::path::Path;

pub use builder::RNTK_DOMAIN;
pub use export::{BATCH_DIM, SEQUENCE_DIM, SEQUENCE_LENS};
pub use import::{is_onnx_model, load_onnx, load_onnx_bytes};

/// The opset written unless another is asked for.
pub const DEFAULT_OPSET: i64 = 17;
/// The lowest opset rntk writes (ONNX's LSTM/GRU/RNN, Squeeze/Unsqueeze with axes as
/// inputs and single-axis Softmax are all from 13 or earlier).
pub const MIN_OPSET: i64 = 13;
/// The highest opset rntk writes.
pub const MAX_OPSET: i64 = 21;

/// Options of [`Function::save_onnx`].
#[derive(Clone, Debug)]
pub struct OnnxOptions {
    /// The ONNX opset of the default domain (13–21).
    pub opset: i64,
}

impl Default for OnnxOptions {
    fn default() -> Self {
        OnnxOptions {
            opset: DEFAULT_OPSET,
        }
    }
}

impl OnnxOptions {
    pub fn opset(mut self, opset: i64) -> Self {
        self.opset = opset;
        self
    }
}

/// The IR version written with an opset: ONNX's pairing, but at least 8 (model-local
/// functions need IR 8).
pub(crate) fn ir_version(opset: i64) -> i64 {
    match opset {
        ..=18 => 8,
        19 | 20 => 9,
        _ => 10,
    }
}

/// The ONNX model of `model` as a message.
pub fn to_onnx_model(model: &Function, options: &OnnxOptions) -> Result<proto::ModelProto> {
    if !(MIN_OPSET..=MAX_OPSET).contains(&options.opset) {
        return Err(Error::invalid(
            "ONNX export",
            format!(
                "opset {} is not one rntk writes (choose {MIN_OPSET} to {MAX_OPSET})",
                options.opset
            ),
        ));
    }
    export::export(model, options)
}

/// The bytes of the ONNX file of `model`.
pub fn to_onnx_bytes(model: &Function, options: &OnnxOptions) -> Result<Vec<u8>> {
    Ok(to_onnx_model(model, options)?.encode_to_vec())
}

/// Write `model` as an ONNX file (atomically: a failed export leaves no file).
pub fn save_onnx(model: &Function, path: impl AsRef<Path>, options: &OnnxOptions) -> Result<()> {
    let bytes = to_onnx_bytes(model, options)?;
    crate::persist::write_atomic(path.as_ref(), &bytes)
}

impl Function {
    /// Write this function and everything it depends on as an ONNX model (see
    /// [`crate::onnx`]).
    pub fn save_onnx(&self, path: impl AsRef<Path>, options: &OnnxOptions) -> Result<()> {
        save_onnx(self, path, options)
    }
}

//! Integration tests of model files: native save/load, CNTK 2.x import, ONNX export and
//! import, each with its hostile inputs.
//!
//! One test binary for several files (each a module, its tests named
//! `FILE::test`): one binary to compile and link instead of one per file. One file's
//! tests: `cargo test -p rntk --test models FILE::`.

#[path = "../common/mod.rs"]
mod common;
#[path = "../onnx_support/mod.rs"]
mod onnx_support;
#[path = "../persist_support/mod.rs"]
mod persist_support;

mod cntk_import;
mod cntk_import_hostile;
mod onnx_export;
mod onnx_hostile;
mod onnx_import;
mod onnx_layers;
mod persist_hostile;
mod persist_roundtrip;

//! The ONNX schema's messages (`onnx.proto` of the ONNX project, Apache-2.0),
//! generated at build time from proto/onnx.proto; public so tools can read or write
//! ONNX files directly.
#![allow(missing_docs, clippy::all, clippy::pedantic)]

include!(concat!(env!("OUT_DIR"), "/onnx.rs"));

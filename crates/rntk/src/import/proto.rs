//! The CNTK model schema's messages (`CNTK.proto`), generated at build time from
//! proto/cntk.proto; public so tools can read or write model files directly.
#![allow(missing_docs, clippy::all, clippy::pedantic)]

include!(concat!(env!("OUT_DIR"), "/cntk.proto.rs"));

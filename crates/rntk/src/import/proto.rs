//! The CNTK model schema's messages, generated at build time from proto/cntk.proto.
#![allow(missing_docs, clippy::all, clippy::pedantic)]

include!(concat!(env!("OUT_DIR"), "/cntk.proto.rs"));

//! Integration tests of the engine: graph, executor, ops and their gradients, sequences,
//! recurrent loops, convolutions, attention, the backend seam.
//!
//! One test binary for several files (each a module, its tests named
//! `FILE::test`): one binary to compile and link instead of one per file. One file's
//! tests: `cargo test -p rntk --test engine FILE::`.

#[path = "../common/mod.rs"]
mod common;

mod attention;
mod backend_conformance;
mod conv_fixtures;
mod conv_init;
mod executor;
mod gradcheck_conv;
mod gradcheck_layers;
mod gradcheck_losses;
mod gradcheck_ops;
mod gradcheck_sequence;
mod graph;
mod large_minibatch;
mod lstm_loop;
mod lstm_scan;
mod ops_errors;
mod ops_fixtures;
mod roi_pooling;
mod sequence_fixtures;

//! Integration tests of training: the session (checkpoints, kill and resume), progress
//! text, TensorBoard files, the seed program against CNTK.
//!
//! One test binary for several files (each a module, its tests named
//! `FILE::test`): one binary to compile and link instead of one per file. One file's
//! tests: `cargo test -p rntk --test train FILE::`.

#[path = "../common/mod.rs"]
mod common;

mod progress_printer;
mod seed_oracle;
mod tensorboard;
mod train_session;

//! The `rntk` command end to end: one test binary for the files here (each a module, its
//! tests named `FILE::test`). One file's tests: `cargo test -p rntk-cli --test cli FILE::`.

#[path = "../support/mod.rs"]
mod support;

mod cli;
mod cli_cnn;
mod hostile;

//! Integration tests of the Layers library, losses and learners: CNTK-oracle fixtures,
//! errors, end to end.
//!
//! One test binary for several files (each a module, its tests named
//! `FILE::test`): one binary to compile and link instead of one per file. One file's
//! tests: `cargo test -p rntk --test layers FILE::`.

#[path = "../common/mod.rs"]
mod common;
#[path = "../learners_support/mod.rs"]
mod learners_support;

mod layers_errors;
mod layers_fixtures;
mod layers_recurrent;
mod learners_api;
mod learners_e2e;
mod learners_oracle;
mod losses_errors;
mod losses_fixtures;

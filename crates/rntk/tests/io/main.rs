//! Integration tests of the readers: the CTF grammar and number forms, files changing
//! underneath, `MinibatchSource` (against CNTK too), the `ImageDeserializer`.
//!
//! One test binary for several files (each a module, its tests named
//! `FILE::test`): one binary to compile and link instead of one per file. One file's
//! tests: `cargo test -p rntk --test io FILE::`.

mod ctf_files_changing;
mod ctf_grammar;
mod ctf_number_forms;
mod ctf_roundtrip;
mod image_reader;
mod minibatch_source;
mod minibatch_source_oracle;

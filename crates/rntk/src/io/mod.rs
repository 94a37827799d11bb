//! Data input: the CNTK Text Format reader and writer, the deserializer contract,
//! `MinibatchSource` (randomization, sweeps, checkpoints, prefetch) and the
//! in-memory `MinibatchSourceFromData` (readers.md).
//!
//! # Compatibility with CNTK 2.7
//!
//! Same as CNTK (checked against CNTK itself, tests/fixtures/cntk_reader): the CTF
//! grammar and sequence grouping, the float32 values bit for bit, minibatch
//! composition with `randomize=false` (sequences, per-stream `num_samples`,
//! `end_of_sweep`, the sample position), `max_samples`/`max_sweeps`/
//! `FULL_DATA_SWEEP`, `defines_mb_size`, frame mode, and MinibatchSourceFromData's
//! reading order and checkpoint fields.
//!
//! Accepted beyond CNTK (each harmless; CNTK refuses them):
//! * trailing blank lines at the end of a CTF file;
//! * numbers without a digit before the point (`.5`) or after it before an
//!   exponent (`3.e2`);
//! * blanks before the sequence id on any row (CNTK: only on the first);
//! * non-ASCII stream names;
//! * a `StreamDef` whose field is not set reads the field named like the stream;
//! * f64 output (`CtfOptions::dtype`);
//! * `MinibatchSourceFromData` always delivers at least one sequence (CNTK raises
//!   "The number of sequences must be > 0" when the next sequence is longer than
//!   the request) and can shuffle every sweep.
//!
//! Different on purpose:
//! * a number beyond the element type's range (`1e99` as float32) is an error,
//!   not infinity;
//! * errors name file, line, column, the text found and what was expected (CNTK
//!   names a byte offset), and the malformed-input policy can skip a sequence with
//!   a counted warning ([`ErrorPolicy`]);
//! * the randomized order is rntk's own (CNTK's is specific to its RNG): chunks in
//!   a random order per sweep, sequences drawn at random from a window of resident
//!   chunks; every sweep is a permutation, reproducible from the seed;
//! * frame mode delivers values with a batch axis only; sequence streams whose
//!   sequences all have one sample convert with [`MinibatchData::to_batch`];
//! * truncated BPTT delivers each piece as its own sequence and says in
//!   [`Minibatch::pieces`] which slot it continues (all streams of a sequence must
//!   have the same length);
//! * a checkpoint is a [`Checkpoint`] (sweep, draw index, samples — CNTK's
//!   `minibatchSourcePosition` — and BPTT slots).
//!
//! # Memory
//!
//! The CTF index keeps counts per ~1 MiB block (about 50 bytes each), not per
//! sequence, so it stays small for files larger than memory (a joined, secondary
//! file keeps one entry per sequence for its key lookups). A source holds the
//! chunks of its randomization window, plus those the prefetch decodes (one per
//! worker, at most four) and one waiting to be taken; the pages of the
//! memory-mapped file are released once a range has been indexed or decoded.

mod buffer;
mod chunk_loader;
pub mod ctf;
mod deserializer;
mod diagnostics;
mod from_data;
pub mod image;
mod minibatch;
mod minibatch_source;
mod randomizer;
mod stream;
mod truncation;

pub use buffer::{Floats, IoFloat, SequenceSet, StreamBuffer};
pub use ctf::{CtfDeserializer, CtfOptions, CtfWriter, SeqStream, DEFAULT_CHUNK_BYTES};
pub use deserializer::{ChunkDescription, Deserializer};
pub use diagnostics::{ErrorPolicy, Warning, WarningSink};
pub use from_data::{FromDataCheckpoint, InMemoryStream, MinibatchSourceFromData};
pub use image::{ImageDeserializer, ImageOptions, ImageTransform};
pub use minibatch::{Minibatch, MinibatchData, Piece};
pub use minibatch_source::{
    Checkpoint, MinibatchPartition, MinibatchSource, MinibatchSourceConfig,
    DEFAULT_RANDOMIZATION_WINDOW_IN_CHUNKS, FULL_DATA_SWEEP, INFINITELY_REPEAT,
};
pub use randomizer::RandomizationWindow;
pub use stream::{StorageFormat, StreamDef, StreamInformation};

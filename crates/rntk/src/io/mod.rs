//! Data input: the CNTK Text Format reader and writer, the deserializer contract,
//! `MinibatchSource` (randomization, sweeps, checkpoints, prefetch) and the
//! in-memory `MinibatchSourceFromData` (readers.md).

mod buffer;
pub mod ctf;
mod deserializer;
mod diagnostics;
mod stream;

pub use buffer::{Floats, IoFloat, SequenceSet, StreamBuffer};
pub use ctf::{CtfDeserializer, CtfOptions, CtfWriter, SeqStream, DEFAULT_CHUNK_BYTES};
pub use deserializer::{ChunkDescription, Deserializer};
pub use diagnostics::{ErrorPolicy, Warning, WarningSink};
pub use stream::{StorageFormat, StreamDef, StreamInformation};

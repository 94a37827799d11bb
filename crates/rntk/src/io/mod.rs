//! Data input: the CNTK Text Format reader and writer, the deserializer contract,
//! `MinibatchSource` (randomization, sweeps, checkpoints, prefetch) and the
//! in-memory `MinibatchSourceFromData` (readers.md).

mod buffer;
pub mod ctf;
mod deserializer;
mod diagnostics;
mod from_data;
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
pub use minibatch::{Minibatch, MinibatchData, Piece};
pub use minibatch_source::{
    Checkpoint, MinibatchSource, MinibatchSourceConfig, DEFAULT_RANDOMIZATION_WINDOW_IN_CHUNKS,
    FULL_DATA_SWEEP, INFINITELY_REPEAT,
};
pub use randomizer::RandomizationWindow;
pub use stream::{StorageFormat, StreamDef, StreamInformation};

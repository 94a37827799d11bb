//! The deserializer contract between a data format and `MinibatchSource`: streams,
//! chunks (the unit of loading and randomization) and decoded sequences.

use super::buffer::SequenceSet;
use super::stream::StreamInformation;
use crate::error::Result;

/// Size of one chunk, known from the index without decoding it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkDescription {
    pub num_sequences: usize,
    /// Samples counted per sequence as the maximum over streams (for CTF: rows).
    pub num_samples: u64,
}

/// A source of sequences, e.g. one CTF file.
///
/// The first deserializer of a `MinibatchSource` drives the order (its chunks are
/// randomized); the others are joined to it by sequence key.
pub trait Deserializer: Send + Sync {
    /// The streams it delivers, in the order of `SequenceSet::streams`.
    fn streams(&self) -> &[StreamInformation];
    fn chunks(&self) -> &[ChunkDescription];
    /// Decode chunk `i`: exactly `chunks()[i].num_sequences` sequences, in order
    /// (malformed ones skipped by policy keep their slot with `valid = false`).
    fn load_chunk(&self, i: usize) -> Result<SequenceSet>;
    /// Decode chunk `i` for sweep `sweep` (what the source calls): deserializers whose
    /// samples depend on the sweep (random image transforms) override it; the default
    /// is `load_chunk`.
    fn load_chunk_in_sweep(&self, i: usize, sweep: u64) -> Result<SequenceSet> {
        let _ = sweep;
        self.load_chunk(i)
    }
    /// Decode the sequences with these keys, in this order (the joined role).
    fn load_keys(&self, keys: &[u64]) -> Result<SequenceSet>;
    /// A name for messages (the file path).
    fn name(&self) -> &str;
    /// Take back a set it returned once the source is done with it, so that its
    /// buffers can hold a later chunk (already faulted-in memory instead of
    /// fresh pages for every chunk). The default drops it.
    fn recycle(&self, set: SequenceSet) {
        drop(set);
    }
}

//! What a source returns: per-stream packed `Value`s with their sample and
//! sequence counts (CNTK's `MinibatchData`), and the packing of decoded sequences.

use super::buffer::{IoFloat, StreamBuffer};
use super::stream::StreamInformation;
use crate::error::{Error, Result};
use crate::tensor::{Csr, Layout, PackedLayout, Value, ValueData};
use std::sync::Arc;

/// One stream's data in a minibatch.
#[derive(Clone, Debug, PartialEq)]
pub struct MinibatchData {
    /// Packed sequences (sequence axis), or a batch of samples in frame mode.
    pub data: Value,
    pub num_sequences: usize,
    pub num_samples: usize,
    /// The minibatch holds the last sequence of a sweep.
    pub end_of_sweep: bool,
}

impl MinibatchData {
    /// The same samples with a batch axis only, for an input without a sequence
    /// axis (e.g. the seed program's one-row `target` stream): every sequence must
    /// have exactly one sample.
    pub fn to_batch(&self) -> Result<Value> {
        match self.data.layout() {
            Layout::Batch(_) | Layout::Static => Ok(self.data.clone()),
            Layout::Sequence(p) => {
                if let Some(i) = p.lengths().iter().position(|&l| l != 1) {
                    return Err(Error::InvalidValue(format!(
                        "cannot drop the sequence axis: sequence {i} of the minibatch has {} samples (every sequence needs exactly one)",
                        p.lengths()[i]
                    )));
                }
                // With all lengths 1 the packed rows are already in caller order.
                Value::new(
                    self.data.shape().clone(),
                    Layout::Batch(p.num_sequences()),
                    self.data.data().clone(),
                )
            }
        }
    }
}

/// A minibatch: one [`MinibatchData`] per stream of the source.
#[derive(Clone, Debug, PartialEq)]
pub struct Minibatch {
    pub streams: Vec<StreamInformation>,
    pub data: Vec<MinibatchData>,
    /// Key of every sequence, in minibatch order (CTF: the sequence ids).
    pub keys: Vec<u64>,
    /// Truncated BPTT only: where each sequence of the minibatch comes from.
    pub pieces: Vec<Piece>,
}

/// Truncated BPTT: a minibatch sequence is a piece of a data sequence. A piece that
/// does not start its sequence continues the piece delivered in the same slot by
/// the previous minibatch (carry the recurrent state over).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    pub slot: usize,
    /// First step of the piece within its data sequence.
    pub offset: usize,
    pub starts_sequence: bool,
    pub ends_sequence: bool,
}

impl Minibatch {
    /// Data of the stream with this name.
    pub fn get(&self, name: &str) -> Option<&MinibatchData> {
        self.streams
            .iter()
            .position(|s| s.name == name)
            .map(|i| &self.data[i])
    }
    pub fn end_of_sweep(&self) -> bool {
        self.data.iter().any(|d| d.end_of_sweep)
    }
    pub fn num_sequences(&self) -> usize {
        self.keys.len()
    }
}

/// A run of rows of one buffer that becomes one sequence of a minibatch:
/// (buffer, first row, number of rows).
pub(crate) type RowRun<'a> = (&'a StreamBuffer, usize, usize);

/// Pack runs of rows (minibatch order) into one value.
pub(crate) fn pack(
    info: &StreamInformation,
    seqs: &[RowRun<'_>],
    batch_only: bool,
) -> Result<Value> {
    match info.element_type {
        crate::tensor::DType::F32 => pack_typed::<f32>(info, seqs, batch_only),
        crate::tensor::DType::F64 => pack_typed::<f64>(info, seqs, batch_only),
    }
}

fn pack_typed<T: IoFloat>(
    info: &StreamInformation,
    seqs: &[RowRun<'_>],
    batch_only: bool,
) -> Result<Value> {
    let lengths: Vec<usize> = seqs.iter().map(|r| r.2).collect();
    // Packed row of step `t` of sequence `i`: `offsets[t] + rank[i]` (a batch
    // has one step and keeps the caller's order).
    let (layout, offsets, rank): (Layout, Vec<usize>, Vec<usize>) = if batch_only {
        if let Some(i) = lengths.iter().position(|&l| l != 1) {
            return Err(Error::InvalidValue(format!(
                "stream '{}': sequence {i} of the minibatch has {} samples where one is needed",
                info.name, lengths[i]
            )));
        }
        (
            Layout::Batch(lengths.len()),
            vec![0, lengths.len()],
            (0..lengths.len()).collect(),
        )
    } else {
        let p = Arc::new(PackedLayout::new(&lengths)?);
        let rank = (0..lengths.len()).map(|i| p.rank_of(i)).collect();
        let offsets = p.offsets().to_vec();
        (Layout::Sequence(p), offsets, rank)
    };
    let total = layout.rows();
    let d = info.sample_size();
    let views = seqs
        .iter()
        .map(|r| {
            T::view(&r.0.values).ok_or_else(|| Error::DType {
                context: format!("packing stream '{}'", info.name),
                expected: T::DTYPE.to_string(),
                got: "another element type".into(),
            })
        })
        .collect::<Result<Vec<&[T]>>>()?;
    if info.is_sparse() {
        // Sequence by sequence, so that the source rows are read in order (the
        // hardware prefetcher follows; walking them in packed order jumps
        // between sequences on every row and misses the cache for each), into
        // places found first from the row sizes.
        let mut indptr = vec![0usize; total + 1];
        for (i, &(b, r0, n)) in seqs.iter().enumerate() {
            let ip = &b.indptr[r0..=r0 + n];
            for (t, w) in ip.windows(2).enumerate() {
                indptr[offsets[t] + rank[i] + 1] = w[1] - w[0];
            }
        }
        for k in 0..total {
            indptr[k + 1] += indptr[k];
        }
        let nnz = indptr[total];
        let mut indices = vec![0u32; nnz];
        let mut values = vec![T::zero(); nnz];
        for (i, &(b, r0, n)) in seqs.iter().enumerate() {
            let ip = &b.indptr[r0..=r0 + n];
            let lo = ip[0];
            let ix = &b.indices[lo..ip[n]];
            let vs = &views[i][lo..ip[n]];
            for (t, w) in ip.windows(2).enumerate() {
                let (a, e) = (w[0] - lo, w[1] - lo);
                let at = indptr[offsets[t] + rank[i]];
                if e - a == 1 {
                    // one-hot rows: a copy call costs more than the copy
                    indices[at] = ix[a];
                    values[at] = vs[a];
                } else {
                    indices[at..at + (e - a)].copy_from_slice(&ix[a..e]);
                    values[at..at + (e - a)].copy_from_slice(&vs[a..e]);
                }
            }
        }
        let csr = Csr {
            rows: total,
            cols: d,
            indptr,
            indices,
            values,
        };
        Value::from_csr(info.sample_shape.clone(), layout, csr)
    } else {
        // Dense rows are long enough to copy in packed order (no zero fill of
        // the output first).
        let mut sorted = vec![0usize; rank.len()];
        for (i, &r) in rank.iter().enumerate() {
            sorted[r] = i;
        }
        let mut out = Vec::with_capacity(total * d);
        for (t, w) in offsets.windows(2).enumerate() {
            for &i in &sorted[..w[1] - w[0]] {
                let r = seqs[i].1 + t;
                out.extend_from_slice(&views[i][r * d..(r + 1) * d]);
            }
        }
        Value::new(
            info.sample_shape.clone(),
            layout,
            ValueData::Dense(T::wrap(out)),
        )
    }
}

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
    // (sequence, source row) of every packed row, in packed order: rows are
    // then appended in order, with no zero fill and no index map per row.
    let (layout, order): (Layout, Vec<(usize, usize)>) = if batch_only {
        if let Some(i) = lengths.iter().position(|&l| l != 1) {
            return Err(Error::InvalidValue(format!(
                "stream '{}': sequence {i} of the minibatch has {} samples where one is needed",
                info.name, lengths[i]
            )));
        }
        let order = seqs.iter().enumerate().map(|(i, r)| (i, r.1)).collect();
        (Layout::Batch(lengths.len()), order)
    } else {
        let p = Arc::new(PackedLayout::new(&lengths)?);
        let mut order = Vec::with_capacity(p.total());
        for (t, &n) in p.batch_sizes().iter().enumerate() {
            for &i in &p.sorted()[..n] {
                order.push((i, seqs[i].1 + t));
            }
        }
        (Layout::Sequence(p), order)
    };
    let total = order.len();
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
        let nnz: usize = order
            .iter()
            .map(|&(i, r)| seqs[i].0.indptr[r + 1] - seqs[i].0.indptr[r])
            .sum();
        let mut indptr = Vec::with_capacity(total + 1);
        indptr.push(0);
        let mut indices = Vec::with_capacity(nnz);
        let mut values = Vec::with_capacity(nnz);
        for &(i, r) in &order {
            let b = seqs[i].0;
            let (a, e) = (b.indptr[r], b.indptr[r + 1]);
            if e - a <= 4 {
                // short rows (one-hot data): a copy call costs more than the copy
                for (&j, &v) in b.indices[a..e].iter().zip(&views[i][a..e]) {
                    indices.push(j);
                    values.push(v);
                }
            } else {
                indices.extend_from_slice(&b.indices[a..e]);
                values.extend_from_slice(&views[i][a..e]);
            }
            indptr.push(indices.len());
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
        let mut out = Vec::with_capacity(total * d);
        for &(i, r) in &order {
            out.extend_from_slice(&views[i][r * d..(r + 1) * d]);
        }
        Value::new(
            info.sample_shape.clone(),
            layout,
            ValueData::Dense(T::wrap(out)),
        )
    }
}

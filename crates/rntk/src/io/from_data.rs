//! `MinibatchSourceFromData`: minibatches from sequences held in memory (CNTK's
//! class of that name, readers.md §4), with optional shuffling per sweep.
//!
//! As CNTK: it reads linearly and a minibatch never wraps past the end of the data
//! (the minibatch that reaches the end has `end_of_sweep`); `max_samples` stops it
//! before a sequence that would exceed the limit. Unlike CNTK, a minibatch always
//! holds at least one sequence: CNTK raises "The number of sequences must be > 0"
//! when the next sequence is longer than the requested size (or than what is left
//! of `max_samples`); rntk delivers that sequence alone.

use super::buffer::{IoFloat, StreamBuffer};
use super::minibatch::{pack, Minibatch, MinibatchData};
use super::stream::{StorageFormat, StreamInformation};
use crate::error::{Error, Result};
use crate::tensor::Shape;
use rand_core::{RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// `n` is a whole number of samples of `d` elements (written without `%` so the
/// crate's MSRV, older than `is_multiple_of`, is kept).
fn whole(n: usize, d: usize) -> bool {
    d != 0 && n / d * d == n
}

/// One in-memory stream.
#[derive(Clone, Debug)]
pub struct InMemoryStream {
    info: StreamInformation,
    /// Values have a sequence axis (false: a batch of single samples).
    sequences: bool,
    buf: StreamBuffer,
}

impl InMemoryStream {
    /// Variable-length sequences; `seqs[i]` holds `T_i` samples of `shape`.
    pub fn sequences<T: IoFloat>(
        name: &str,
        shape: impl Into<Shape>,
        seqs: &[Vec<T>],
    ) -> Result<Self> {
        let shape = shape.into();
        let d = shape.numel();
        if d == 0 {
            return Err(Error::invalid(
                format!("stream '{name}'"),
                "sample shape has no elements",
            ));
        }
        let mut buf = StreamBuffer::new(d, false, T::DTYPE);
        let mut all = Vec::with_capacity(seqs.iter().map(|s| s.len()).sum());
        for (i, s) in seqs.iter().enumerate() {
            if s.is_empty() || !whole(s.len(), d) {
                return Err(Error::invalid(
                    format!("stream '{name}'"),
                    format!("sequence {i} has {} elements: not a whole number (≥ 1) of samples of shape {shape}", s.len()),
                ));
            }
            all.extend_from_slice(s);
            buf.seq_rows.push(all.len() / d);
        }
        buf.values = T::into_floats(all);
        Ok(Self::make(name, shape, false, true, buf))
    }

    /// `n` single samples (an array whose first axis is the sample axis): delivered
    /// with a batch axis only.
    pub fn samples<T: IoFloat>(name: &str, shape: impl Into<Shape>, data: &[T]) -> Result<Self> {
        let shape = shape.into();
        let d = shape.numel();
        if d == 0 || data.is_empty() || !whole(data.len(), d) {
            return Err(Error::invalid(
                format!("stream '{name}'"),
                format!(
                    "{} elements are not a whole number (≥ 1) of samples of shape {shape}",
                    data.len()
                ),
            ));
        }
        let mut buf = StreamBuffer::new(d, false, T::DTYPE);
        buf.seq_rows = (0..=data.len() / d).collect();
        buf.values = T::into_floats(data.to_vec());
        Ok(Self::make(name, shape, false, false, buf))
    }

    /// Sparse one-hot sequences: `seqs[i][t]` is the hot index of step t.
    pub fn one_hot_sequences<T: IoFloat>(
        name: &str,
        dim: usize,
        seqs: &[Vec<usize>],
    ) -> Result<Self> {
        let mut buf = StreamBuffer::new(dim, true, T::DTYPE);
        let mut vals: Vec<T> = Vec::new();
        for (i, s) in seqs.iter().enumerate() {
            if s.is_empty() {
                return Err(Error::invalid(
                    format!("stream '{name}'"),
                    format!("sequence {i} is empty"),
                ));
            }
            for &k in s {
                if k >= dim || k > u32::MAX as usize {
                    return Err(Error::invalid(
                        format!("stream '{name}'"),
                        format!("index {k} in sequence {i} is out of range for dimension {dim}"),
                    ));
                }
                buf.indices.push(k as u32);
                vals.push(T::one());
                buf.indptr.push(buf.indices.len());
            }
            buf.seq_rows.push(buf.indptr.len() - 1);
        }
        buf.values = T::into_floats(vals);
        Ok(Self::make(name, Shape::from([dim]), true, true, buf))
    }

    fn make(name: &str, shape: Shape, sparse: bool, sequences: bool, buf: StreamBuffer) -> Self {
        InMemoryStream {
            info: StreamInformation {
                name: name.to_string(),
                id: 0,
                storage_format: if sparse {
                    StorageFormat::Sparse
                } else {
                    StorageFormat::Dense
                },
                element_type: buf.values.dtype(),
                sample_shape: shape,
                defines_mb_size: false,
            },
            sequences,
            buf,
        }
    }

    fn len(&self) -> usize {
        self.buf.seq_rows.len() - 1
    }
}

/// Position of a [`MinibatchSourceFromData`] (CNTK: `{'cursor', 'total_num_samples'}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct FromDataCheckpoint {
    pub cursor: usize,
    pub total_num_samples: u64,
    pub sweep: u64,
}

/// Minibatches from in-memory streams.
#[derive(Clone, Debug)]
pub struct MinibatchSourceFromData {
    streams: Vec<InMemoryStream>,
    infos: Vec<StreamInformation>,
    n: usize,
    max_samples: u64,
    shuffle: Option<u64>,
    order: Vec<usize>,
    cursor: usize,
    sweep: u64,
    total: u64,
}

impl MinibatchSourceFromData {
    /// All streams must hold the same number of sequences (or samples).
    pub fn new(streams: Vec<InMemoryStream>, max_samples: u64) -> Result<Self> {
        let Some(first) = streams.first() else {
            return Err(Error::invalid("MinibatchSourceFromData", "no stream given"));
        };
        let n = first.len();
        for s in &streams {
            if s.len() != n {
                return Err(Error::invalid(
                    "MinibatchSourceFromData",
                    format!(
                        "all streams need the same number of entries: '{}' has {n}, '{}' has {}",
                        first.info.name,
                        s.info.name,
                        s.len()
                    ),
                ));
            }
        }
        let mut infos = Vec::new();
        for (i, s) in streams.iter().enumerate() {
            if infos
                .iter()
                .any(|o: &StreamInformation| o.name == s.info.name)
            {
                return Err(Error::invalid(
                    "MinibatchSourceFromData",
                    format!("stream name '{}' is used twice", s.info.name),
                ));
            }
            let mut info = s.info.clone();
            info.id = i;
            infos.push(info);
        }
        Ok(MinibatchSourceFromData {
            streams,
            infos,
            n,
            max_samples,
            shuffle: None,
            order: (0..n).collect(),
            cursor: 0,
            sweep: 0,
            total: 0,
        })
    }

    /// Visit the sequences in a new random order every sweep (an rntk extension;
    /// CNTK's class reads in order). Reproducible from `seed`.
    pub fn shuffled(mut self, seed: u64) -> Self {
        self.shuffle = Some(seed);
        self.order = self.sweep_order(self.sweep);
        self
    }

    pub fn streams(&self) -> &[StreamInformation] {
        &self.infos
    }

    fn sweep_order(&self, sweep: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.n).collect();
        if let Some(seed) = self.shuffle {
            let mut rng =
                Xoshiro256PlusPlus::seed_from_u64(seed ^ sweep.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            for i in (1..self.n).rev() {
                let j = ((u128::from(rng.next_u64()) * (i as u128 + 1)) >> 64) as usize;
                order.swap(i, j);
            }
        }
        order
    }

    fn lengths(&self, seq: usize) -> impl Iterator<Item = usize> + '_ {
        self.streams.iter().map(move |s| s.buf.len_of(seq))
    }

    pub fn next_minibatch(&mut self, size: usize) -> Result<Option<Minibatch>> {
        if size == 0 {
            return Err(Error::invalid(
                "next_minibatch",
                "the minibatch size must be at least one sample",
            ));
        }
        if self.total >= self.max_samples || self.n == 0 {
            return Ok(None);
        }
        let mut counts = vec![0usize; self.streams.len()];
        let mut picked = Vec::new();
        let mut end = self.cursor;
        while end < self.n {
            let seq = self.order[end];
            let next: Vec<usize> = counts
                .iter()
                .zip(self.lengths(seq))
                .map(|(a, b)| a + b)
                .collect();
            let m = next.iter().copied().max().unwrap_or(0) as u64;
            if !picked.is_empty() && (m > size as u64 || self.total + m > self.max_samples) {
                break;
            }
            counts = next;
            picked.push(seq);
            end += 1;
        }
        let measure = counts.iter().copied().max().unwrap_or(0) as u64;
        self.total += measure;
        let reached_end = end == self.n;
        let end_of_sweep = reached_end || self.total >= self.max_samples;
        if reached_end {
            self.cursor = 0;
            self.sweep += 1;
            self.order = self.sweep_order(self.sweep);
        } else {
            self.cursor = end;
        }
        let mut data = Vec::with_capacity(self.streams.len());
        for (g, s) in self.streams.iter().enumerate() {
            let runs: Vec<_> = picked
                .iter()
                .map(|&q| (&s.buf, s.buf.seq_rows[q], s.buf.len_of(q)))
                .collect();
            data.push(MinibatchData {
                data: pack(&self.infos[g], &runs, !s.sequences)?,
                num_sequences: picked.len(),
                num_samples: counts[g],
                end_of_sweep,
            });
        }
        Ok(Some(Minibatch {
            streams: self.infos.clone(),
            data,
            keys: picked.iter().map(|&q| q as u64).collect(),
            pieces: Vec::new(),
        }))
    }

    pub fn get_checkpoint_state(&self) -> FromDataCheckpoint {
        FromDataCheckpoint {
            cursor: self.cursor,
            total_num_samples: self.total,
            sweep: self.sweep,
        }
    }

    pub fn restore_from_checkpoint(&mut self, c: &FromDataCheckpoint) -> Result<()> {
        if c.cursor >= self.n.max(1) {
            return Err(Error::invalid(
                "MinibatchSourceFromData checkpoint",
                format!("cursor {} is beyond the {} sequences", c.cursor, self.n),
            ));
        }
        self.cursor = c.cursor;
        self.total = c.total_num_samples;
        self.sweep = c.sweep;
        self.order = self.sweep_order(c.sweep);
        Ok(())
    }
}

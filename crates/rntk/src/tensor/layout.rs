//! How samples of a minibatch are laid out in rows: static, batch-only, or packed
//! variable-length sequences.
//!
//! Packed sequences (the idea behind CNTK's MBLayout and PyTorch's PackedSequence):
//! sequences are sorted by length, longest first (ties keep the caller's order), and
//! stored time-major without padding. Step `t` occupies rows
//! `offsets[t] .. offsets[t] + batch_sizes[t]`, and within a step the row of the
//! sequence with sorted rank `j` is `offsets[t] + j`. The sequences still active at
//! step `t` are exactly ranks `0..batch_sizes[t]`, so a recurrent loop processes a
//! contiguous block of rows per step and never touches padding.
//!
//! ```text
//! lengths (caller order) [3, 1, 5, 2]  → sorted ranks: seq2, seq0, seq3, seq1
//! step:        0            1          2        3    4
//! rows:  [s2 s0 s3 s1] [s2 s0 s3]  [s2 s0]   [s2]  [s2]
//! batch_sizes = [4, 3, 2, 1, 1], offsets = [0, 4, 7, 9, 10, 11]
//! ```

use crate::error::{Error, Result};
use std::sync::Arc;

/// Packed layout of a batch of variable-length sequences.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackedLayout {
    lengths: Vec<usize>,
    sorted: Vec<usize>,
    rank_of: Vec<usize>,
    batch_sizes: Vec<usize>,
    offsets: Vec<usize>,
}

impl PackedLayout {
    /// Build the layout for sequences of the given lengths (caller order). Every
    /// sequence must have at least one step, as in CNTK.
    pub fn new(lengths: &[usize]) -> Result<Self> {
        if lengths.is_empty() {
            return Err(Error::InvalidValue(
                "a sequence batch needs at least one sequence".into(),
            ));
        }
        if let Some(i) = lengths.iter().position(|&l| l == 0) {
            return Err(Error::InvalidValue(format!(
                "sequence {i} has length 0: sequences must be at least one step long"
            )));
        }
        let mut sorted: Vec<usize> = (0..lengths.len()).collect();
        sorted.sort_by(|&a, &b| lengths[b].cmp(&lengths[a]));
        let mut rank_of = vec![0; lengths.len()];
        for (r, &i) in sorted.iter().enumerate() {
            rank_of[i] = r;
        }
        let max_len = lengths[sorted[0]];
        let mut batch_sizes = Vec::with_capacity(max_len);
        let mut active = lengths.len();
        for t in 0..max_len {
            while active > 0 && lengths[sorted[active - 1]] <= t {
                active -= 1;
            }
            batch_sizes.push(active);
        }
        let mut offsets = Vec::with_capacity(max_len + 1);
        let mut acc = 0;
        offsets.push(0);
        for &b in &batch_sizes {
            acc += b;
            offsets.push(acc);
        }
        Ok(PackedLayout {
            lengths: lengths.to_vec(),
            sorted,
            rank_of,
            batch_sizes,
            offsets,
        })
    }
    /// Number of sequences.
    pub fn num_sequences(&self) -> usize {
        self.lengths.len()
    }
    /// Length of each sequence, in the caller's order.
    pub fn lengths(&self) -> &[usize] {
        &self.lengths
    }
    /// Number of steps of the longest sequence.
    pub fn max_len(&self) -> usize {
        self.batch_sizes.len()
    }
    /// Total number of rows (sum of lengths).
    pub fn total(&self) -> usize {
        *self.offsets.last().unwrap_or(&0)
    }
    /// Active sequences at each step.
    pub fn batch_sizes(&self) -> &[usize] {
        &self.batch_sizes
    }
    /// First row of each step; `offsets[max_len]` = total.
    pub fn offsets(&self) -> &[usize] {
        &self.offsets
    }
    /// Caller index of the sequence with sorted rank `r`.
    pub fn sorted(&self) -> &[usize] {
        &self.sorted
    }
    /// Sorted rank of caller sequence `i`.
    pub fn rank_of(&self, i: usize) -> usize {
        self.rank_of[i]
    }
    /// Row of step `t` of caller sequence `i`.
    pub fn row(&self, i: usize, t: usize) -> usize {
        self.offsets[t] + self.rank_of[i]
    }
    /// Rows of step `t`.
    pub fn step_rows(&self, t: usize) -> std::ops::Range<usize> {
        self.offsets[t]..self.offsets[t] + self.batch_sizes[t]
    }
}

/// The dynamic layout of a value at run time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layout {
    /// No dynamic axes: one sample (parameters, constants, all-axes reductions).
    Static,
    /// A batch axis only: `n` samples in the caller's order.
    Batch(usize),
    /// Batch and sequence axes: packed sequences.
    Sequence(Arc<PackedLayout>),
}

impl Layout {
    /// Number of sample rows.
    pub fn rows(&self) -> usize {
        match self {
            Layout::Static => 1,
            Layout::Batch(n) => *n,
            Layout::Sequence(p) => p.total(),
        }
    }
    pub fn packed(&self) -> Option<&Arc<PackedLayout>> {
        match self {
            Layout::Sequence(p) => Some(p),
            _ => None,
        }
    }
    /// Whether two layouts describe the same rows (same Arc, or equal lengths).
    pub fn same_as(&self, other: &Layout) -> bool {
        match (self, other) {
            (Layout::Sequence(a), Layout::Sequence(b)) => Arc::ptr_eq(a, b) || a == b,
            (a, b) => a == b,
        }
    }
    pub fn describe(&self) -> String {
        match self {
            Layout::Static => "no dynamic axes".into(),
            Layout::Batch(n) => format!("batch of {n}"),
            Layout::Sequence(p) => format!(
                "{} sequences of lengths {:?}",
                p.num_sequences(),
                p.lengths()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn packs_ragged_lengths() {
        let p = PackedLayout::new(&[3, 1, 5, 2]).unwrap();
        assert_eq!(p.sorted(), &[2, 0, 3, 1]);
        assert_eq!(p.batch_sizes(), &[4, 3, 2, 1, 1]);
        assert_eq!(p.offsets(), &[0, 4, 7, 9, 10, 11]);
        assert_eq!(p.row(1, 0), 3);
        assert_eq!(p.row(2, 4), 10);
        assert_eq!(p.row(0, 2), 8);
        assert_eq!(p.total(), 11);
    }
    #[test]
    fn ties_keep_caller_order_and_refuse_empty() {
        let p = PackedLayout::new(&[2, 2, 1]).unwrap();
        assert_eq!(p.sorted(), &[0, 1, 2]);
        assert!(PackedLayout::new(&[2, 0]).is_err());
        assert!(PackedLayout::new(&[]).is_err());
    }
}

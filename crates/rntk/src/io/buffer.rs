//! Decoded sequences as readers hand them over: per stream, the samples of many
//! sequences back to back (dense rows or sparse rows) with row offsets per sequence.

use crate::error::{Error, Result};
use crate::tensor::{DType, Element};

/// Sample elements of one stream, in the element type the reader was asked for.
#[derive(Clone, Debug, PartialEq)]
pub enum Floats {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl Floats {
    pub fn new(dtype: DType) -> Self {
        match dtype {
            DType::F32 => Floats::F32(Vec::new()),
            DType::F64 => Floats::F64(Vec::new()),
        }
    }
    pub fn dtype(&self) -> DType {
        match self {
            Floats::F32(_) => DType::F32,
            Floats::F64(_) => DType::F64,
        }
    }
    pub fn len(&self) -> usize {
        match self {
            Floats::F32(v) => v.len(),
            Floats::F64(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn truncate(&mut self, n: usize) {
        match self {
            Floats::F32(v) => v.truncate(n),
            Floats::F64(v) => v.truncate(n),
        }
    }
    fn extend_from(&mut self, other: &Floats, range: std::ops::Range<usize>) -> Result<()> {
        match (self, other) {
            (Floats::F32(a), Floats::F32(b)) => a.extend_from_slice(&b[range]),
            (Floats::F64(a), Floats::F64(b)) => a.extend_from_slice(&b[range]),
            (a, b) => {
                return Err(Error::DType {
                    context: "joining decoded sequences".into(),
                    expected: a.dtype().to_string(),
                    got: b.dtype().to_string(),
                })
            }
        }
        Ok(())
    }
}

/// Ask the kernel for transparent huge pages under a large buffer (a hint:
/// nothing changes but how its memory is faulted in). A decoded chunk fills
/// tens of MiB of fresh memory, and faulting it in 4 KiB pages one at a time
/// cost more than zeroing it.
pub(crate) fn prefer_huge_pages<T>(v: &Vec<T>) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let bytes = v.capacity().saturating_mul(std::mem::size_of::<T>());
        if bytes < 2 * HUGE {
            return;
        }
        let start = v.as_ptr() as usize;
        let (Some(a), Some(end)) = (
            start.checked_next_multiple_of(HUGE),
            start.checked_add(bytes),
        ) else {
            return;
        };
        let e = end & !(HUGE - 1);
        if e > a {
            // SAFETY: [a, e) lies inside the allocation `v` owns; MADV_HUGEPAGE
            // only changes how later faults are served, never the contents.
            unsafe {
                libc::madvise(a as *mut libc::c_void, e - a, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = v;
}

/// The element types readers decode into (f32 and f64).
pub trait IoFloat: Element + fast_float2::FastFloat {
    /// `(±m, 10^frac)` when both are exact in this type, so that one division
    /// rounds correctly (Clinger's fast path, the same one fast-float takes
    /// first); `None` otherwise. Split so that callers can divide many at once.
    fn decimal_parts(m: u64, frac: usize, negative: bool) -> Option<(Self, Self)>;
    /// `±m / 10^frac`, correctly rounded, when [`IoFloat::decimal_parts`] applies.
    #[inline(always)]
    fn from_decimal(m: u64, frac: usize, negative: bool) -> Option<Self> {
        Self::decimal_parts(m, frac, negative).map(|(n, d)| n / d)
    }
    fn into_floats(v: Vec<Self>) -> Floats;
    fn view(f: &Floats) -> Option<&[Self]>;
    fn view_mut(f: &mut Floats) -> Option<&mut Vec<Self>>;
}

const POW10_F32: [f32; 11] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10];
const POW10_F64: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

impl IoFloat for f32 {
    #[inline(always)]
    fn decimal_parts(m: u64, frac: usize, negative: bool) -> Option<(Self, Self)> {
        if m > 1 << 24 || frac >= POW10_F32.len() {
            return None;
        }
        // The sign as a bit, not a branch: signs of data are a coin toss and a
        // mispredicted branch per number costs more than the division. (−0 / d
        // is −0, as a parser gives for "-0.0".)
        let n = f32::from_bits((m as f32).to_bits() | (u32::from(negative) << 31));
        Some((n, POW10_F32[frac]))
    }
    fn into_floats(v: Vec<Self>) -> Floats {
        Floats::F32(v)
    }
    fn view(f: &Floats) -> Option<&[Self]> {
        match f {
            Floats::F32(v) => Some(v),
            _ => None,
        }
    }
    fn view_mut(f: &mut Floats) -> Option<&mut Vec<Self>> {
        match f {
            Floats::F32(v) => Some(v),
            _ => None,
        }
    }
}

impl IoFloat for f64 {
    #[inline(always)]
    fn decimal_parts(m: u64, frac: usize, negative: bool) -> Option<(Self, Self)> {
        if m > 1 << 53 || frac >= POW10_F64.len() {
            return None;
        }
        let n = f64::from_bits((m as f64).to_bits() | (u64::from(negative) << 63));
        Some((n, POW10_F64[frac]))
    }
    fn into_floats(v: Vec<Self>) -> Floats {
        Floats::F64(v)
    }
    fn view(f: &Floats) -> Option<&[Self]> {
        match f {
            Floats::F64(v) => Some(v),
            _ => None,
        }
    }
    fn view_mut(f: &mut Floats) -> Option<&mut Vec<Self>> {
        match f {
            Floats::F64(v) => Some(v),
            _ => None,
        }
    }
}

/// One stream's samples for a run of sequences.
///
/// Dense: `values` holds `rows × sample_size` elements. Sparse: row `r` holds
/// `indices/values[indptr[r]..indptr[r+1]]` (indices sorted, no duplicates).
#[derive(Clone, Debug, PartialEq)]
pub struct StreamBuffer {
    pub sample_size: usize,
    pub sparse: bool,
    /// Row offsets per sequence: sequence `i` owns rows `seq_rows[i]..seq_rows[i+1]`.
    pub seq_rows: Vec<usize>,
    pub values: Floats,
    pub indptr: Vec<usize>,
    pub indices: Vec<u32>,
}

impl StreamBuffer {
    pub fn new(sample_size: usize, sparse: bool, dtype: DType) -> Self {
        StreamBuffer {
            sample_size,
            sparse,
            seq_rows: vec![0],
            values: Floats::new(dtype),
            indptr: if sparse { vec![0] } else { Vec::new() },
            indices: Vec::new(),
        }
    }
    /// Number of rows so far (all sequences).
    pub fn rows(&self) -> usize {
        if self.sparse {
            self.indptr.len() - 1
        } else {
            self.values.len() / self.sample_size.max(1)
        }
    }
    /// Number of samples of sequence `i`.
    pub fn len_of(&self, i: usize) -> usize {
        self.seq_rows[i + 1] - self.seq_rows[i]
    }
    /// Close the current sequence: all rows added since the last call belong to it.
    pub fn end_sequence(&mut self) {
        self.seq_rows.push(self.rows());
    }
    /// Drop the rows added since the last `end_sequence` (a malformed sequence).
    pub fn rollback(&mut self) {
        let rows = *self.seq_rows.last().unwrap_or(&0);
        if self.sparse {
            self.indptr.truncate(rows + 1);
            let nnz = self.indptr[rows];
            self.indices.truncate(nnz);
            self.values.truncate(nnz);
        } else {
            self.values.truncate(rows * self.sample_size);
        }
    }
    /// Drop every sequence, keeping the allocations.
    pub fn clear(&mut self) {
        self.seq_rows.clear();
        self.seq_rows.push(0);
        self.values.truncate(0);
        self.indptr.clear();
        if self.sparse {
            self.indptr.push(0);
        }
        self.indices.clear();
    }
    /// Append every sequence of `other`.
    pub fn append_all(&mut self, other: &StreamBuffer) -> Result<()> {
        let rows = self.rows();
        if self.sparse {
            let base = *self.indptr.last().unwrap_or(&0);
            self.indptr
                .extend(other.indptr[1..].iter().map(|&p| p + base));
            self.indices.extend_from_slice(&other.indices);
        }
        self.values
            .extend_from(&other.values, 0..other.values.len())?;
        self.seq_rows
            .extend(other.seq_rows[1..].iter().map(|&r| r + rows));
        Ok(())
    }
    /// Append sequence `i` of `other` as a new sequence.
    pub fn append_sequence(&mut self, other: &StreamBuffer, i: usize) -> Result<()> {
        let (r0, r1) = (other.seq_rows[i], other.seq_rows[i + 1]);
        if self.sparse {
            let (a, b) = (other.indptr[r0], other.indptr[r1]);
            let base = *self.indptr.last().unwrap_or(&0);
            self.indptr
                .extend(other.indptr[r0 + 1..=r1].iter().map(|&p| p - a + base));
            self.indices.extend_from_slice(&other.indices[a..b]);
            self.values.extend_from(&other.values, a..b)?;
        } else {
            let d = self.sample_size;
            self.values.extend_from(&other.values, r0 * d..r1 * d)?;
        }
        self.end_sequence();
        Ok(())
    }
}

/// Decoded sequences of one deserializer: keys, validity and per-stream samples.
#[derive(Clone, Debug, PartialEq)]
pub struct SequenceSet {
    /// Sequence key (CTF: the sequence id, or the ordinal when the file has none).
    pub keys: Vec<u64>,
    /// 1-based line of each sequence's first row (0 when not read from a file).
    pub lines: Vec<u64>,
    /// False for a malformed sequence dropped under the skip policy (it keeps its
    /// slot, with no samples, so positions stay those of the index).
    pub valid: Vec<bool>,
    pub streams: Vec<StreamBuffer>,
}

impl SequenceSet {
    pub fn new(streams: Vec<StreamBuffer>) -> Self {
        SequenceSet {
            keys: Vec::new(),
            lines: Vec::new(),
            valid: Vec::new(),
            streams,
        }
    }
    pub fn num_sequences(&self) -> usize {
        self.keys.len()
    }
    /// Samples of sequence `i` counted as a source does: the maximum over streams.
    pub fn samples_of(&self, i: usize) -> usize {
        self.streams.iter().map(|s| s.len_of(i)).max().unwrap_or(0)
    }
    /// Drop every sequence, keeping the allocations.
    pub fn clear(&mut self) {
        self.keys.clear();
        self.lines.clear();
        self.valid.clear();
        for b in &mut self.streams {
            b.clear();
        }
    }
    /// Reserve room for the sequences of all `parts` (before appending them).
    pub fn reserve_like(&mut self, parts: &[SequenceSet]) {
        let n: usize = parts.iter().map(|p| p.num_sequences()).sum();
        self.keys.reserve(n);
        self.lines.reserve(n);
        self.valid.reserve(n);
        for (k, b) in self.streams.iter_mut().enumerate() {
            let of = |f: fn(&StreamBuffer) -> usize| -> usize {
                parts.iter().filter_map(|p| p.streams.get(k)).map(f).sum()
            };
            b.seq_rows.reserve(n);
            b.indptr.reserve(of(|s| s.indptr.len()));
            b.indices.reserve(of(|s| s.indices.len()));
            let vals = of(|s| s.values.len());
            match &mut b.values {
                Floats::F32(v) => v.reserve(vals),
                Floats::F64(v) => v.reserve(vals),
            }
        }
    }

    /// Append all sequences of `other` (same streams, same element type).
    pub fn append(&mut self, other: &SequenceSet) -> Result<()> {
        self.check_streams(other)?;
        self.keys.extend_from_slice(&other.keys);
        self.lines.extend_from_slice(&other.lines);
        self.valid.extend_from_slice(&other.valid);
        for (a, b) in self.streams.iter_mut().zip(&other.streams) {
            a.append_all(b)?;
        }
        Ok(())
    }
    fn check_streams(&self, other: &SequenceSet) -> Result<()> {
        if other.streams.len() != self.streams.len() {
            return Err(Error::InvalidValue(format!(
                "joining sequence sets with {} and {} streams",
                self.streams.len(),
                other.streams.len()
            )));
        }
        Ok(())
    }
    /// Append sequence `i` of `other`.
    pub fn append_one(&mut self, other: &SequenceSet, i: usize) -> Result<()> {
        self.check_streams(other)?;
        self.keys.push(other.keys[i]);
        self.lines.push(other.lines[i]);
        self.valid.push(other.valid[i]);
        for (a, b) in self.streams.iter_mut().zip(&other.streams) {
            a.append_sequence(b, i)?;
        }
        Ok(())
    }
}

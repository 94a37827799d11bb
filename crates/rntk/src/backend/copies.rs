//! Copies, gathers and scatters: slices, splices and permutations within samples,
//! rows moved by index maps (the sequence ops), the per-step copies of
//! past_value / future_value, one_hot, gather by index values, sparse to dense.

use super::elementwise::MAX_RANK;
use super::memory::{Memory, Operand, SparseRows};
use crate::error::Result;
use crate::tensor::{Element, PackedLayout, Shape};

/// A sample viewed as `(outer, dim, inner)`; elements `begin, begin + stride, …`
/// (`count` of them) of the middle axis are taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SliceGeom {
    pub outer: usize,
    pub dim: usize,
    pub inner: usize,
    pub begin: usize,
    pub stride: usize,
    pub count: usize,
}

/// One operand's part of a splice: the output sample is `(outer, total, inner)`, the
/// operand fills `start .. start + extent` of the middle axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpliceGeom {
    pub outer: usize,
    pub inner: usize,
    pub total: usize,
    pub start: usize,
    pub extent: usize,
}

/// A permutation of a sample's axes: output element `e` (row-major) is input element
/// `src(e)`, walked with an odometer (ranks up to 8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PermuteGeom {
    rank: usize,
    numel: usize,
    out_dims: [usize; MAX_RANK],
    step: [usize; MAX_RANK],
}

impl PermuteGeom {
    /// Output axis `i` is input axis `perm[i]` (a valid permutation of `shape`'s axes,
    /// rank ≤ 8: checked by the op's shape rule).
    pub fn new(perm: &[usize], shape: &Shape) -> Self {
        let r = shape.rank().min(MAX_RANK);
        let mut in_strides = [1usize; MAX_RANK];
        for k in (0..r.saturating_sub(1)).rev() {
            in_strides[k] = in_strides[k + 1] * shape.dims()[k + 1];
        }
        let mut g = PermuteGeom {
            rank: r,
            numel: shape.numel(),
            out_dims: [1; MAX_RANK],
            step: [0; MAX_RANK],
        };
        for k in 0..r {
            g.out_dims[k] = shape.dims()[perm[k]];
            g.step[k] = in_strides[perm[k]];
        }
        g
    }
    pub fn numel(&self) -> usize {
        self.numel
    }
    /// Call `f(out_index, in_index)` for every element.
    #[inline]
    pub fn for_each(&self, mut f: impl FnMut(usize, usize)) {
        let r = self.rank;
        let mut idx = [0usize; MAX_RANK];
        let mut src = 0usize;
        for e in 0..self.numel {
            f(e, src);
            let mut k = r;
            while k > 0 {
                k -= 1;
                idx[k] += 1;
                src += self.step[k];
                if idx[k] < self.out_dims[k] {
                    break;
                }
                src -= self.step[k] * self.out_dims[k];
                idx[k] = 0;
            }
        }
    }
}

/// Everything one past_value / future_value node needs for one time step.
#[derive(Clone, Copy, Debug)]
pub struct DelayStep<'a> {
    pub layout: &'a PackedLayout,
    pub offset: usize,
    pub future: bool,
    /// Elements per sample.
    pub numel: usize,
    /// The initial state holds one element, broadcast to the sample.
    pub init_scalar: bool,
    /// The initial state has one sample per sequence (caller order).
    pub init_per_seq: bool,
}

impl DelayStep<'_> {
    /// Source row of sorted rank `j` at step `t`, if that step exists.
    #[inline]
    pub fn source(&self, t: usize, j: usize) -> Option<usize> {
        let l = self.layout;
        if self.future {
            let s = t + self.offset;
            (s < l.max_len() && j < l.batch_sizes()[s]).then(|| l.offsets()[s] + j)
        } else {
            (t >= self.offset).then(|| l.offsets()[t - self.offset] + j)
        }
    }
}

/// `gather(reference, indices)` along the reference's first axis: `len` entries of
/// `rest` elements each; `ni` indices per sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GatherGeom {
    pub len: usize,
    pub rest: usize,
    pub ni: usize,
}

/// A row map: `(source row, destination row)` pairs, rows of `d` elements.
pub type RowPairs<'a> = &'a [(usize, usize)];

/// Data-movement kernels.
pub trait Copies: Memory {
    /// Per row, the slice of `g` into `out`.
    fn slice<T: Element>(
        &self,
        g: &SliceGeom,
        x: Self::Ref<'_, T>,
        out: Self::Mut<'_, T>,
        n: usize,
    );
    /// `din +=` the slice's gradient (`din` one sample when `!per_row`).
    fn slice_backward<T: Element>(
        &self,
        g: &SliceGeom,
        dout: Self::Ref<'_, T>,
        din: Self::Mut<'_, T>,
        n: usize,
        per_row: bool,
    );
    /// Per row, one operand's part of a splice.
    fn splice<T: Element>(
        &self,
        g: &SpliceGeom,
        x: Operand<'_, Self, T>,
        out: Self::Mut<'_, T>,
        n: usize,
    );
    /// `din +=` that part of `dout`.
    fn splice_backward<T: Element>(
        &self,
        g: &SpliceGeom,
        dout: Self::Ref<'_, T>,
        din: Self::Mut<'_, T>,
        n: usize,
        per_row: bool,
    );
    /// Per row, the permuted sample.
    fn permute<T: Element>(
        &self,
        g: &PermuteGeom,
        x: Self::Ref<'_, T>,
        out: Self::Mut<'_, T>,
        n: usize,
    );
    /// `din +=` the inverse permutation of `dout`.
    fn permute_backward<T: Element>(
        &self,
        g: &PermuteGeom,
        dout: Self::Ref<'_, T>,
        din: Self::Mut<'_, T>,
        n: usize,
        per_row: bool,
    );
    /// The rows of step `t` of a delayed value: from `x` where the source step exists,
    /// else from the initial state.
    fn delay<T: Element>(
        &self,
        d: &DelayStep,
        x: Self::Ref<'_, T>,
        init: Self::Ref<'_, T>,
        y: Self::Mut<'_, T>,
        t: usize,
    );
    /// Route step `t`'s gradient rows to `dx` or to the initial state's `dinit`.
    fn delay_backward<T: Element>(
        &self,
        d: &DelayStep,
        dy: Self::Ref<'_, T>,
        dx: Option<Self::Mut<'_, T>>,
        dinit: Option<Self::Mut<'_, T>>,
        t: usize,
    );
    /// `dst[b] = src[a]` for every `(a, b)`.
    fn copy_rows<T: Element>(
        &self,
        d: usize,
        pairs: RowPairs,
        src: Self::Ref<'_, T>,
        dst: Self::Mut<'_, T>,
    );
    /// `dst[b] += src[a]` for every `(a, b)`, in order.
    fn add_rows<T: Element>(
        &self,
        d: usize,
        pairs: RowPairs,
        src: Self::Ref<'_, T>,
        dst: Self::Mut<'_, T>,
    );
    /// `dst[b] = max(dst[b], src[a])` element-wise (a NaN in `dst` stays).
    fn max_rows<T: Element>(
        &self,
        d: usize,
        pairs: RowPairs,
        src: Self::Ref<'_, T>,
        dst: Self::Mut<'_, T>,
    );
    /// The max's gradient: `dx[a] += dy[b]` where `x[a] == y[b]`, element-wise.
    #[allow(clippy::too_many_arguments)]
    fn max_rows_backward<T: Element>(
        &self,
        d: usize,
        pairs: RowPairs,
        x: Self::Ref<'_, T>,
        y: Self::Ref<'_, T>,
        dy: Self::Ref<'_, T>,
        dx: Self::Mut<'_, T>,
    );
    /// Rows `rows` of `dst` set to `v`.
    fn fill_rows<T: Element>(&self, d: usize, rows: &[usize], v: T, dst: Self::Mut<'_, T>);
    /// Per row, one-hot rows of `classes` for each of the `ni` index values; an index
    /// that is not an integer in range is an error naming row `row0 + r`.
    fn one_hot<T: Element>(
        &self,
        classes: usize,
        ni: usize,
        x: Operand<'_, Self, T>,
        out: Self::Mut<'_, T>,
        rows: (usize, usize),
    ) -> Result<()>;
    /// Per row, the reference's entries picked by the index values.
    fn gather<T: Element>(
        &self,
        g: &GatherGeom,
        reference: Operand<'_, Self, T>,
        idx: Operand<'_, Self, T>,
        out: Self::Mut<'_, T>,
        rows: (usize, usize),
    ) -> Result<()>;
    /// `dref +=` the gathered gradient, scattered back by the index values.
    fn gather_backward<T: Element>(
        &self,
        g: &GatherGeom,
        idx: Operand<'_, Self, T>,
        dout: Self::Ref<'_, T>,
        dref: Self::Mut<'_, T>,
        per_row: bool,
        rows: (usize, usize),
    ) -> Result<()>;
    /// Sparse rows written out dense (`d` columns; zeros elsewhere).
    fn densify<T: Element>(&self, s: SparseRows<'_, Self, T>, d: usize, out: Self::Mut<'_, T>);
}

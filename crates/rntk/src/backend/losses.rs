//! Softmax and the fused losses and metrics: softmax / log_softmax along one axis,
//! softmax along a sequence, hardmax, cross_entropy_with_softmax and top-1
//! classification error with dense or sparse targets, weighted logistic, top-N error.

use super::memory::{Arg, Memory, Operand, Par};
use crate::tensor::{Element, PackedLayout};

/// One sample viewed as `(outer, dim, inner)` around the normalized axis: every
/// (outer, inner) pair is one distribution over `dim` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AxisGeom {
    pub outer: usize,
    pub dim: usize,
    pub inner: usize,
}

impl AxisGeom {
    pub fn numel(&self) -> usize {
        self.outer * self.dim * self.inner
    }
}

/// A sample of `numel` elements holding `numel / dim` distributions of `dim`
/// contiguous values (the fused losses work along the last axis).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LastAxis {
    pub numel: usize,
    pub dim: usize,
}

impl LastAxis {
    /// Distributions per sample.
    pub fn outer(&self) -> usize {
        self.numel / self.dim.max(1)
    }
}

/// Softmax and fused-loss kernels.
pub trait Losses: Memory {
    /// `out = softmax(x)` (or log_softmax) along the axis of `g`, per row.
    fn softmax<T: Element>(
        &self,
        log: bool,
        g: AxisGeom,
        x: Operand<'_, Self, T>,
        out: Self::Mut<'_, T>,
        n: usize,
    );
    /// `din +=` the softmax (log_softmax) gradient from the output `out`; `din` is one
    /// sample when `!per_row`.
    #[allow(clippy::too_many_arguments)]
    fn softmax_backward<T: Element>(
        &self,
        log: bool,
        g: AxisGeom,
        out: Self::Ref<'_, T>,
        dout: Self::Ref<'_, T>,
        din: Self::Mut<'_, T>,
        n: usize,
        per_row: bool,
    );
    /// Softmax of every element along each sequence's steps (`d` elements per row).
    fn sequence_softmax<T: Element>(
        &self,
        layout: &PackedLayout,
        d: usize,
        x: Self::Ref<'_, T>,
        out: Self::Mut<'_, T>,
    );
    /// `din +=` its gradient.
    fn sequence_softmax_backward<T: Element>(
        &self,
        layout: &PackedLayout,
        d: usize,
        out: Self::Ref<'_, T>,
        dout: Self::Ref<'_, T>,
        din: Self::Mut<'_, T>,
    );
    /// One-hot of the first maximal element of each row of `d` elements.
    fn hardmax<T: Element>(
        &self,
        x: Operand<'_, Self, T>,
        d: usize,
        out: Self::Mut<'_, T>,
        n: usize,
    );
    /// Per distribution `lse(o) − Σ t·o` into `out`, `lse(o)` into `lse` (kept for
    /// the backward).
    #[allow(clippy::too_many_arguments)]
    fn cross_entropy<T: Element>(
        &self,
        g: LastAxis,
        o: Operand<'_, Self, T>,
        t: Arg<'_, Self, T>,
        lse: Self::Mut<'_, T>,
        out: Self::Mut<'_, T>,
        n: usize,
        par: Par,
    );
    /// `din +=` the gradient for `o` (`i == 0`: `dout·(softmax(o) − t)`, summed over
    /// rows when `o` is static) or for a dense `t` (`i == 1`: `−dout·o`).
    #[allow(clippy::too_many_arguments)]
    fn cross_entropy_backward<T: Element>(
        &self,
        g: LastAxis,
        i: usize,
        o: Operand<'_, Self, T>,
        t: Arg<'_, Self, T>,
        lse: Self::Ref<'_, T>,
        dout: Self::Ref<'_, T>,
        din: Self::Mut<'_, T>,
        n: usize,
        par: Par,
    );
    /// Per distribution `1 − t[argmax o]`.
    fn classification_error<T: Element>(
        &self,
        g: LastAxis,
        o: Operand<'_, Self, T>,
        t: Arg<'_, Self, T>,
        out: Self::Mut<'_, T>,
        n: usize,
        par: Par,
    );
    /// `din −= dout` at each distribution's argmax (the gradient for a dense target;
    /// `din` is one sample when `!per_row`).
    #[allow(clippy::too_many_arguments)]
    fn classification_error_backward<T: Element>(
        &self,
        g: LastAxis,
        o: Operand<'_, Self, T>,
        dout: Self::Ref<'_, T>,
        din: Self::Mut<'_, T>,
        n: usize,
        per_row: bool,
    );
    /// `out[0] = N·Σ w·ℓ(o, t) / Σ w` over `n` samples of one element (`w` one value
    /// for all samples when `!w.per_row`).
    fn weighted_logistic<T: Element>(
        &self,
        o: Self::Ref<'_, T>,
        t: Self::Ref<'_, T>,
        w: Operand<'_, Self, T>,
        n: usize,
        out: Self::Mut<'_, T>,
    );
    /// `din += dout[0]·w·∂ℓ/∂o` (CNTK's gradient, without the `N/Σw` factor).
    #[allow(clippy::too_many_arguments)]
    fn weighted_logistic_backward<T: Element>(
        &self,
        o: Self::Ref<'_, T>,
        t: Self::Ref<'_, T>,
        w: Operand<'_, Self, T>,
        n: usize,
        dout: Self::Ref<'_, T>,
        din: Self::Mut<'_, T>,
    );
    /// `out[0]` = the number of rows (of `d` elements) whose target index is not among
    /// the `top_n` largest outputs.
    fn top_n_error<T: Element>(
        &self,
        o: Self::Ref<'_, T>,
        t: Self::Ref<'_, T>,
        dims: (usize, usize),
        top_n: usize,
        out: Self::Mut<'_, T>,
    );
}

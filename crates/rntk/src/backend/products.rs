//! Products: GEMM on strided views (a transpose is a view), batches of GEMMs, and
//! sparse rows times a dense matrix.

use super::memory::{MatMut, MatRef, Memory, Par, SparseRows};
use crate::tensor::Element;

/// Element offsets between consecutive products of a batch (0: every product shares
/// the operand; for `c` only with `accumulate`, the products then add up).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Batch {
    pub count: usize,
    pub a: usize,
    pub b: usize,
    pub c: usize,
}

/// Matrix products.
pub trait Products: Memory {
    /// `c = a·b`, or `c += a·b` when `accumulate`.
    fn gemm<T: Element>(
        &self,
        a: MatRef<'_, Self, T>,
        b: MatRef<'_, Self, T>,
        c: MatMut<'_, Self, T>,
        accumulate: bool,
        par: Par,
    );

    /// `batch.count` products, product `q` on the views moved `q·batch.{a,b,c}`
    /// elements on (`a`, `b`, `c` describe product 0; the views hold all of them).
    fn gemm_batched<T: Element>(
        &self,
        batch: Batch,
        a: MatRef<'_, Self, T>,
        b: MatRef<'_, Self, T>,
        c: MatMut<'_, Self, T>,
        accumulate: bool,
        par: Par,
    );

    /// `out = a·B` for sparse rows `a` (n × k) and `B` (k × o, row-major), or
    /// `a·Bᵀ` for `B` stored (o × k) when `transposed`; `out` is n × o.
    fn sparse_times<T: Element>(
        &self,
        a: SparseRows<'_, Self, T>,
        b: Self::Ref<'_, T>,
        dims: (usize, usize),
        transposed: bool,
        out: Self::Mut<'_, T>,
    );

    /// `dB += aᵀ·dout` (`dB` laid out as `B` in [`Products::sparse_times`]).
    fn sparse_times_backward<T: Element>(
        &self,
        a: SparseRows<'_, Self, T>,
        dout: Self::Ref<'_, T>,
        dims: (usize, usize),
        transposed: bool,
        db: Self::Mut<'_, T>,
    );
}

//! The fused additive-attention kernels (the math is in `ops/attention.rs`): every
//! step of a query sequence attends over the key/value sequence of the same batch
//! item, a softmax over that item's steps only.

use super::memory::Memory;
use crate::tensor::{Element, PackedLayout};

/// Where the operands of an attention call live: the query rows (packed by `query`),
/// the key and value rows (packed by `keys`, the same number of sequences, paired in
/// the caller's order), the attention dimension `dim` of queries, keys and the
/// scoring vector, and the value dimension `value_dim`.
#[derive(Clone, Copy, Debug)]
pub struct AttentionGeom<'a> {
    pub query: &'a PackedLayout,
    pub keys: &'a PackedLayout,
    pub dim: usize,
    pub value_dim: usize,
}

impl AttentionGeom<'_> {
    /// The attention weights kept for the backward: for each sequence `s` in the
    /// caller's order, `T_q(s) × T_k(s)` values (query step major).
    pub fn weights_len(&self) -> usize {
        self.query
            .lengths()
            .iter()
            .zip(self.keys.lengths())
            .map(|(&a, &b)| a * b)
            .sum()
    }
    /// Elements of the four gradients `[∂q | ∂k | ∂v | ∂w]` in one buffer.
    pub fn grads_len(&self) -> usize {
        let (q, k) = (self.query.total(), self.keys.total());
        q * self.dim + k * self.dim + k * self.value_dim + self.dim
    }
}

/// Additive attention.
pub trait Attention: Memory {
    /// `out` (query rows × value_dim) = the attention of every query row over its
    /// sequence's keys and values; the weights are written to `weights`
    /// ([`AttentionGeom::weights_len`] values). `args` = `[q, k, v, w]`.
    fn additive_attention<T: Element>(
        &self,
        g: &AttentionGeom,
        args: [Self::Ref<'_, T>; 4],
        weights: Self::Mut<'_, T>,
        out: Self::Mut<'_, T>,
    );
    /// The vector-Jacobian product: adds into `grads` = `[∂q | ∂k | ∂v | ∂w]`
    /// ([`AttentionGeom::grads_len`] values) from `dout` and the forward's weights.
    fn additive_attention_backward<T: Element>(
        &self,
        g: &AttentionGeom,
        args: [Self::Ref<'_, T>; 4],
        weights: Self::Ref<'_, T>,
        dout: Self::Ref<'_, T>,
        grads: Self::Mut<'_, T>,
    );
}

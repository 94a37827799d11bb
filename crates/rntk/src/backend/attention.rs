//! The fused additive-attention kernels (the math is in `ops/attention.rs`): every
//! step of a query sequence attends over the key/value sequence of the same batch
//! item, a softmax over that item's steps only. A call computes a block of query rows
//! (all of them, or one time step's inside a recurrent loop: a decoder whose query is
//! its previous state).

use super::memory::Memory;
use crate::tensor::{Element, PackedLayout};

/// Where the operands of an attention call live: the query rows (packed by `query`),
/// the key and value rows (packed by `keys`, the same number of sequences, paired in
/// the caller's order), the attention dimension `dim` of queries, keys and the
/// scoring vector, the value dimension `value_dim`, and the block of query rows
/// `rows.0 .. rows.1` this call computes (absolute rows of `query`).
#[derive(Clone, Copy, Debug)]
pub struct AttentionGeom<'a> {
    pub query: &'a PackedLayout,
    pub keys: &'a PackedLayout,
    pub dim: usize,
    pub value_dim: usize,
    pub rows: (usize, usize),
}

impl AttentionGeom<'_> {
    /// The attention weights kept for the backward: `keys.max_len()` values per query
    /// row (row `r`'s weights over its item's `T_k` key steps start at
    /// `r · keys.max_len()`), so a block of rows finds its weights without a table.
    pub fn weights_len(&self) -> usize {
        self.query.total() * self.keys.max_len()
    }
    /// Elements of the four gradients `[∂q | ∂k | ∂v | ∂w]` in one buffer.
    pub fn grads_len(&self) -> usize {
        let (q, k) = (self.query.total(), self.keys.total());
        q * self.dim + k * self.dim + k * self.value_dim + self.dim
    }
    /// Each query row of the block with the caller index of its sequence, in row
    /// order (the packed layout's steps intersected with the block).
    pub fn block(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        let (r0, r1) = self.rows;
        let q = self.query;
        (0..q.max_len()).flat_map(move |t| {
            let s = q.step_rows(t);
            let (a, b) = (s.start.max(r0), s.end.min(r1));
            (a..b).map(move |r| (r, q.sorted()[r - s.start]))
        })
    }
    /// The rows of the key/value sequence of caller sequence `s`, in step order.
    pub fn key_rows(&self, s: usize) -> impl Iterator<Item = usize> + '_ {
        let k = self.keys;
        (0..k.lengths()[s]).map(move |t| k.row(s, t))
    }
}

/// Additive attention.
pub trait Attention: Memory {
    /// Writes `out` (the whole output buffer: query rows × value_dim) for the query
    /// rows of `g.rows`: the attention of each over its sequence's keys and values;
    /// their weights go to `weights` ([`AttentionGeom::weights_len`] values).
    /// `args` = `[q, k, v, w]` (whole buffers).
    fn additive_attention<T: Element>(
        &self,
        g: &AttentionGeom,
        args: [Self::Ref<'_, T>; 4],
        weights: Self::Mut<'_, T>,
        out: Self::Mut<'_, T>,
    );
    /// The vector-Jacobian product of the query rows of `g.rows`: adds into `grads` =
    /// `[∂q | ∂k | ∂v | ∂w]` ([`AttentionGeom::grads_len`] values) from `dout` (the
    /// whole output gradient) and the forward's weights.
    fn additive_attention_backward<T: Element>(
        &self,
        g: &AttentionGeom,
        args: [Self::Ref<'_, T>; 4],
        weights: Self::Ref<'_, T>,
        dout: Self::Ref<'_, T>,
        grads: Self::Mut<'_, T>,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_lists_its_rows_with_their_sequences() {
        let q = PackedLayout::new(&[2, 4, 1, 3]).unwrap(); // sorted: 1, 3, 0, 2
        let k = PackedLayout::new(&[3, 1, 5, 2]).unwrap();
        let g = |rows| AttentionGeom {
            query: &q,
            keys: &k,
            dim: 1,
            value_dim: 1,
            rows,
        };
        let all: Vec<_> = g((0, q.total())).block().collect();
        let want: Vec<_> = (0..q.total())
            .map(|r| {
                (
                    r,
                    (0..4)
                        .find(|&s| (0..q.lengths()[s]).any(|t| q.row(s, t) == r))
                        .unwrap(),
                )
            })
            .collect();
        assert_eq!(all, want);
        // step 1 alone: rows 4..7 are sequences 1, 3, 0
        assert_eq!(
            g((4, 7)).block().collect::<Vec<_>>(),
            vec![(4, 1), (5, 3), (6, 0)]
        );
        assert_eq!(g((5, 5)).block().count(), 0);
        assert_eq!(g((0, 1)).key_rows(1).collect::<Vec<_>>(), vec![3]);
        assert_eq!(g((0, 0)).weights_len(), q.total() * 5);
    }
}

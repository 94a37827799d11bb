//! Random numbers: dropout's keep/drop mask. The draw is a function of
//! `(seed, training pass, absolute element index)`, so a block of rows run inside a
//! recurrent loop gets exactly the mask the same rows get when the whole minibatch
//! runs at once; a backend may use any generator with that property (the CPU's is
//! `cpu::random::keep`, one small function).

use super::memory::Memory;
use crate::tensor::Element;

/// Which mask to draw: the node's seed, the training pass (the executor counts
/// them), the absolute index of the block's first element, the drop rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DropoutDraw {
    pub seed: u64,
    pub pass: u64,
    pub first: usize,
    pub rate: f64,
}

/// Random-number kernels.
pub trait Random: Memory {
    /// `mask[e]` = 0 (dropped) or `1/(1 − rate)` (kept), `out = x ⊙ mask`.
    fn dropout<T: Element>(
        &self,
        d: &DropoutDraw,
        x: Self::Ref<'_, T>,
        mask: Self::Mut<'_, T>,
        out: Self::Mut<'_, T>,
    );
}

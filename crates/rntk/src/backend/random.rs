//! Random numbers: dropout's keep/drop masks, drawn as CNTK 2.7 draws them. Each
//! dropout node owns a stream (`random::DropoutRng`: its seed and the elements drawn
//! so far, host state like a layout); a training forward draws its mask elements from
//! it in CNTK's column order ([`MaskOrder`]) — which is why the kernel takes the
//! stream and the order, not just a seed: a device either runs the same generator or
//! documents its own (CNTK's GPU build draws different numbers too).

use super::memory::Memory;
use crate::random::DropoutRng;
use crate::tensor::{Element, PackedLayout};

/// Which mask elements one call draws, in which order.
#[derive(Clone, Copy, Debug)]
pub enum MaskOrder<'a> {
    /// The mask's rows in order (a batch-only or static value: one column per sample).
    Rows,
    /// Every row of a packed minibatch in CNTK's column order: slot by slot (last
    /// slot first when `backward`), each slot's parallel streams in order, the gap
    /// columns of shorter sequences drawn and discarded (`random::StreamPacking`).
    Packed {
        layout: &'a PackedLayout,
        backward: bool,
    },
}

/// Random-number kernels.
pub trait Random: Memory {
    /// Draw `mask`'s elements (`draw = (row, threshold, scale)`: rows of `row`
    /// elements) from `rng` in `order`: 0 where the uniform draw is `<= threshold` (the
    /// rate as the element type holds it), `scale` elsewhere. The stream advances by every element drawn (gaps included).
    fn dropout_mask<T: Element>(
        &self,
        rng: &mut DropoutRng,
        order: MaskOrder,
        draw: (usize, f64, T),
        mask: Self::Mut<'_, T>,
    );
}

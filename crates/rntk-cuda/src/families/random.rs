//! `Random` on the GPU: dropout's mask is drawn on the host from the node's CNTK 2.7
//! stream (`rntk::random::DropoutRng`: mt19937_64, sequential host state, in CNTK's
//! column order) and uploaded — CNTK's numbers exactly, at the cost of one counted
//! upload (an op write) per dropout node per training forward. A counter-based
//! generator on the device would avoid it and draw other numbers (as CNTK's own GPU
//! build does); not done.

use crate::device::Cuda;
use crate::memory::CMut;
use rntk::backend::random::{MaskOrder, Random};
use rntk::backend::Cpu;
use rntk::random::DropoutRng;
use rntk::tensor::Element;

impl Random for Cuda {
    fn dropout_mask<T: Element>(
        &self,
        rng: &mut DropoutRng,
        order: MaskOrder,
        draw: (usize, f64, T),
        mask: CMut<'_, T>,
    ) {
        self.on_host("dropout_mask (CNTK's host stream)");
        let mut h = vec![T::zero(); mask.len];
        Cpu.dropout_mask(rng, order, draw, &mut h);
        self.put(&h, mask);
    }
}

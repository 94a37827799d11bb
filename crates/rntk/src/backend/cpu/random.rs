//! Dropout masks on the CPU: CNTK 2.7's stream (`random::DropoutRng`, mt19937_64 with
//! Boost's uniform distribution) in CNTK's column order.

use super::Cpu;
use crate::backend::random::{MaskOrder, Random};
use crate::random::{DropoutRng, StreamPacking};
use crate::tensor::Element;

impl Random for Cpu {
    fn dropout_mask<T: Element>(
        &self,
        rng: &mut DropoutRng,
        order: MaskOrder,
        (no, threshold, scale): (usize, f64, T),
        mask: &mut [T],
    ) {
        match order {
            MaskOrder::Rows => rng.fill(threshold, scale, T::zero(), mask),
            MaskOrder::Packed {
                layout: p,
                backward,
            } => {
                let pk = StreamPacking::new(p.lengths());
                let slots = pk.slots();
                for i in 0..slots {
                    let tau = if backward { slots - 1 - i } else { i };
                    for k in 0..pk.streams() {
                        match pk.occupant(tau, k) {
                            Some((s, t)) => {
                                let r = p.row(s, t);
                                let m = &mut mask[r * no..(r + 1) * no];
                                rng.fill(threshold, scale, T::zero(), m);
                            }
                            None => rng.skip(no),
                        }
                    }
                }
            }
        }
    }
}

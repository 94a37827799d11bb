//! The attention family on the arena: additive attention and its backward, run by the
//! CPU kernel on the arena's memory.

use super::resolve::Resolve;
use super::{AMut, ARef, Arena};
use crate::backend::attention::{Attention, AttentionGeom};
use crate::backend::Cpu;
use crate::tensor::Element;

impl Attention for Arena {
    fn additive_attention<T: Element>(
        &self,
        g: &AttentionGeom,
        args: [ARef<'_, T>; 4],
        weights: AMut<'_, T>,
        out: AMut<'_, T>,
    ) {
        self.call(|cx| unsafe {
            Cpu.additive_attention(g, args.get(cx), weights.get(cx), out.get(cx))
        })
    }
    fn additive_attention_backward<T: Element>(
        &self,
        g: &AttentionGeom,
        args: [ARef<'_, T>; 4],
        weights: ARef<'_, T>,
        dout: ARef<'_, T>,
        grads: AMut<'_, T>,
    ) {
        self.call(|cx| unsafe {
            Cpu.additive_attention_backward(
                g,
                args.get(cx),
                weights.get(cx),
                dout.get(cx),
                grads.get(cx),
            )
        })
    }
}

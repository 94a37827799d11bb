//! `Random` on the GPU: dropout's mask from the same counter-based hash of (seed,
//! pass, absolute element index) as the CPU's `cpu::random::keep`, so the masks are
//! identical on both devices.

use super::{p, pm, u};
use crate::device::{Cuda, KArg};
use crate::memory::{CMut, CRef};
use rntk::backend::random::{DropoutDraw, Random};
use rntk::tensor::Element;

impl Random for Cuda {
    fn dropout<T: Element>(
        &self,
        d: &DropoutDraw,
        x: CRef<'_, T>,
        mask: CMut<'_, T>,
        out: CMut<'_, T>,
    ) {
        let n = out.len.min(x.len).min(mask.len);
        let a = [
            p(x),
            pm(&mask),
            pm(&out),
            u(n),
            KArg::U(d.seed),
            KArg::U(d.pass),
            u(d.first),
            KArg::F(d.rate),
        ];
        self.launch::<T>("dropout", n, &a);
    }
}

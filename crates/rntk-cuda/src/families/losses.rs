//! `Losses` on the GPU: softmax, the fused cross-entropy with dense or sparse targets
//! and classification error as kernels, one thread per distribution (or per element
//! for gradients). Sequence softmax, weighted logistic and top-N error run on the
//! host path (`host.rs`) for now.

use super::{flag, p, pm, u, NULL};
use crate::device::{Cuda, KArg};
use crate::memory::{CMut, CRef};
use rntk::backend::losses::{AxisGeom, LastAxis, Losses};
use rntk::backend::{Arg, Cpu, Operand, Par};
use rntk::tensor::{Element, PackedLayout};

/// Row stride of a per-row or static operand of `numel` elements (as the CPU's `row`).
fn st(len: usize, numel: usize) -> KArg {
    u(if len == numel { 0 } else { numel })
}

impl Cuda {
    /// `[t, st, indptr, indices, values]` of a target.
    fn target<T: Element>(&self, t: &Arg<'_, Cuda, T>, numel: usize) -> [KArg; 5] {
        match t {
            Arg::Rows(x) | Arg::Static(x) => [p(*x), st(x.len, numel), NULL, NULL, NULL],
            Arg::Sparse(s) => {
                let [ip, ix, v] = self.sparse_args(s);
                [NULL, u(0), ip, ix, v]
            }
        }
    }
}

impl Losses for Cuda {
    fn softmax<T: Element>(
        &self,
        log: bool,
        g: AxisGeom,
        x: Operand<'_, Cuda, T>,
        out: CMut<'_, T>,
        n: usize,
    ) {
        let sx = u(if x.per_row { g.numel() } else { 0 });
        let args = [
            flag(log),
            p(x.data),
            sx,
            pm(&out),
            u(n),
            u(g.outer),
            u(g.dim),
            u(g.inner),
        ];
        self.launch::<T>("softmax_fwd", n * g.outer * g.inner, &args);
    }

    fn softmax_backward<T: Element>(
        &self,
        log: bool,
        g: AxisGeom,
        out: CRef<'_, T>,
        dout: CRef<'_, T>,
        din: CMut<'_, T>,
        n: usize,
        per_row: bool,
    ) {
        let args = [
            flag(log),
            p(out),
            p(dout),
            pm(&din),
            u(n),
            u(g.outer),
            u(g.dim),
            u(g.inner),
            flag(per_row),
        ];
        self.launch::<T>("softmax_bwd", n * g.outer * g.inner, &args);
    }

    fn sequence_softmax<T: Element>(
        &self,
        layout: &PackedLayout,
        d: usize,
        x: CRef<'_, T>,
        out: CMut<'_, T>,
    ) {
        self.on_host("sequence_softmax");
        let hx = self.fetch(x);
        let mut ho = self.fetch_mut(&out);
        Cpu.sequence_softmax(layout, d, &hx, &mut ho);
        self.put(&ho, out);
    }

    fn sequence_softmax_backward<T: Element>(
        &self,
        layout: &PackedLayout,
        d: usize,
        out: CRef<'_, T>,
        dout: CRef<'_, T>,
        din: CMut<'_, T>,
    ) {
        self.on_host("sequence_softmax_backward");
        let (ho, hg) = (self.fetch(out), self.fetch(dout));
        let mut hd = self.fetch_mut(&din);
        Cpu.sequence_softmax_backward(layout, d, &ho, &hg, &mut hd);
        self.put(&hd, din);
    }

    fn hardmax<T: Element>(&self, x: Operand<'_, Cuda, T>, d: usize, out: CMut<'_, T>, n: usize) {
        let sx = u(if x.per_row { d } else { 0 });
        self.launch::<T>("hardmax", n, &[p(x.data), sx, pm(&out), u(n), u(d)]);
    }

    fn cross_entropy<T: Element>(
        &self,
        g: LastAxis,
        o: Operand<'_, Cuda, T>,
        t: Arg<'_, Cuda, T>,
        lse: CMut<'_, T>,
        out: CMut<'_, T>,
        n: usize,
        _par: Par,
    ) {
        let mut args = vec![p(o.data), st(o.data.len, g.numel)];
        args.extend(self.target(&t, g.numel));
        args.extend([pm(&lse), pm(&out), u(n), u(g.numel), u(g.dim)]);
        self.launch::<T>("ce_fwd", n * g.outer(), &args);
    }

    fn cross_entropy_backward<T: Element>(
        &self,
        g: LastAxis,
        i: usize,
        o: Operand<'_, Cuda, T>,
        t: Arg<'_, Cuda, T>,
        lse: CRef<'_, T>,
        dout: CRef<'_, T>,
        din: CMut<'_, T>,
        n: usize,
        _par: Par,
    ) {
        let static_grad = if i == 0 { !o.per_row } else { t.is_static() } && n > 1;
        let mut args = vec![KArg::I(i as i32), p(o.data), st(o.data.len, g.numel)];
        args.extend(self.target(&t, g.numel));
        let sd = if static_grad { 0 } else { g.numel };
        args.extend([p(lse), p(dout), pm(&din), u(sd), u(n), u(g.numel), u(g.dim)]);
        self.launch::<T>("ce_bwd", n * g.numel, &args);
    }

    fn classification_error<T: Element>(
        &self,
        g: LastAxis,
        o: Operand<'_, Cuda, T>,
        t: Arg<'_, Cuda, T>,
        out: CMut<'_, T>,
        n: usize,
        _par: Par,
    ) {
        let mut args = vec![p(o.data), st(o.data.len, g.numel)];
        args.extend(self.target(&t, g.numel));
        args.extend([pm(&out), u(n), u(g.numel), u(g.dim)]);
        self.launch::<T>("class_err_fwd", n * g.outer(), &args);
    }

    fn classification_error_backward<T: Element>(
        &self,
        g: LastAxis,
        o: Operand<'_, Cuda, T>,
        dout: CRef<'_, T>,
        din: CMut<'_, T>,
        n: usize,
        per_row: bool,
    ) {
        let so = u(if o.per_row { g.numel } else { 0 });
        let args = [
            p(o.data),
            so,
            p(dout),
            pm(&din),
            u(n),
            u(g.numel),
            u(g.dim),
            flag(per_row),
        ];
        self.launch::<T>("class_err_bwd", n * g.outer(), &args);
    }

    fn weighted_logistic<T: Element>(
        &self,
        o: CRef<'_, T>,
        t: CRef<'_, T>,
        w: Operand<'_, Cuda, T>,
        n: usize,
        out: CMut<'_, T>,
    ) {
        self.on_host("weighted_logistic");
        let (ho, ht, hw) = (self.fetch(o), self.fetch(t), self.host_operand(w));
        let mut hout = self.fetch_mut(&out);
        Cpu.weighted_logistic(&ho, &ht, hw.get(), n, &mut hout);
        self.put(&hout, out);
    }

    fn weighted_logistic_backward<T: Element>(
        &self,
        o: CRef<'_, T>,
        t: CRef<'_, T>,
        w: Operand<'_, Cuda, T>,
        n: usize,
        dout: CRef<'_, T>,
        din: CMut<'_, T>,
    ) {
        self.on_host("weighted_logistic_backward");
        let (ho, ht, hw, hg) = (
            self.fetch(o),
            self.fetch(t),
            self.host_operand(w),
            self.fetch(dout),
        );
        let mut hd = self.fetch_mut(&din);
        Cpu.weighted_logistic_backward(&ho, &ht, hw.get(), n, &hg, &mut hd);
        self.put(&hd, din);
    }

    fn top_n_error<T: Element>(
        &self,
        o: CRef<'_, T>,
        t: CRef<'_, T>,
        dims: (usize, usize),
        top_n: usize,
        out: CMut<'_, T>,
    ) {
        self.on_host("top_n_error");
        let (ho, ht) = (self.fetch(o), self.fetch(t));
        let mut hout = self.fetch_mut(&out);
        Cpu.top_n_error(&ho, &ht, dims, top_n, &mut hout);
        self.put(&hout, out);
    }
}

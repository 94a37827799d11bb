//! `Reductions` on the GPU: per-sample reductions over static axes through host-made
//! offset tables (from rntk's `ReduceGeom` walk: per output element its first input,
//! and the offsets it reduces), whole-tensor reductions in one block. Batch
//! normalization runs on the host path for now.

use super::{p, pm, u};
use crate::device::{Cuda, KArg};
use crate::memory::{CMut, CRef};
use cudarc::driver::{CudaSlice, LaunchConfig};
use rntk::backend::reduce::{NormArgs, NormGeom, ReduceGeom, ReduceOp, Reductions};
use rntk::backend::{Cpu, Operand, Par};
use rntk::tensor::Element;

fn code(op: ReduceOp) -> i32 {
    match op {
        ReduceOp::Sum => 0,
        ReduceOp::Mean => 1,
        ReduceOp::Max => 2,
        ReduceOp::Min => 3,
        ReduceOp::LogSumExp => 4,
    }
}

/// The tables of `g` on the device: (bases, offsets).
type Tables = ((CudaSlice<u64>, u64), (CudaSlice<u64>, u64));

impl Cuda {
    fn reduce_tables(&self, g: &ReduceGeom) -> Tables {
        let (bases, offs) = crate::tables::reduce(g);
        (self.meta(&bases), self.meta(&offs))
    }
}

impl Reductions for Cuda {
    fn reduce<T: Element>(
        &self,
        op: ReduceOp,
        g: &ReduceGeom,
        x: Operand<'_, Cuda, T>,
        out: CMut<'_, T>,
        n: usize,
    ) {
        let on = g.out_numel();
        let ((_b, bp), (_o, op_)) = self.reduce_tables(g);
        let sx = u(if x.per_row { g.numel } else { 0 });
        let a = [
            KArg::I(code(op)),
            p(x.data),
            sx,
            pm(&out),
            u(n),
            u(on),
            KArg::U(bp),
            KArg::U(op_),
            u(g.count),
        ];
        self.launch::<T>("reduce_fwd", n * on, &a);
    }

    fn reduce_backward<T: Element>(
        &self,
        op: ReduceOp,
        g: &ReduceGeom,
        x: Operand<'_, Cuda, T>,
        out: CRef<'_, T>,
        dout: CRef<'_, T>,
        din: CMut<'_, T>,
        n: usize,
    ) {
        let on = g.out_numel();
        let ((_b, bp), (_o, op_)) = self.reduce_tables(g);
        let sx = u(if x.per_row { g.numel } else { 0 });
        let a = [
            KArg::I(code(op)),
            p(x.data),
            sx,
            p(out),
            p(dout),
            pm(&din),
            u(n),
            u(on),
            KArg::U(bp),
            KArg::U(op_),
            u(g.count),
        ];
        self.launch::<T>("reduce_bwd", n * on * g.count, &a);
    }

    fn reduce_all<T: Element>(&self, op: ReduceOp, x: CRef<'_, T>, out: CMut<'_, T>) {
        let cfg = LaunchConfig {
            grid_dim: (1, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        let a = [KArg::I(code(op)), p(x), u(x.len), pm(&out)];
        self.launch_cfg::<T>("reduce_all", cfg, &a);
    }

    fn reduce_all_backward<T: Element>(
        &self,
        op: ReduceOp,
        x: CRef<'_, T>,
        out: CRef<'_, T>,
        dout: CRef<'_, T>,
        din: CMut<'_, T>,
    ) {
        let a = [KArg::I(code(op)), p(x), u(x.len), p(out), p(dout), pm(&din)];
        self.launch::<T>("reduce_all_bwd", x.len, &a);
    }

    fn batch_norm<T: Element>(
        &self,
        g: &NormGeom,
        args: NormArgs<'_, Cuda, T>,
        training: bool,
        out: CMut<'_, T>,
        stats: CMut<'_, T>,
        par: Par,
    ) {
        self.on_host("batch_norm");
        let h = args.map(|a| self.fetch(a));
        let (mut ho, mut hs) = (self.fetch_mut(&out), self.fetch_mut(&stats));
        let refs: [&[T]; 6] = std::array::from_fn(|k| &h[k][..]);
        Cpu.batch_norm(g, refs, training, &mut ho, &mut hs, par);
        self.put(&ho, out);
        self.put(&hs, stats);
    }

    fn batch_norm_backward<T: Element>(
        &self,
        g: &NormGeom,
        i: usize,
        trained: bool,
        x: CRef<'_, T>,
        scale: CRef<'_, T>,
        stats: CRef<'_, T>,
        (out, dout): (CRef<'_, T>, CRef<'_, T>),
        (din, assign): (CMut<'_, T>, bool),
        par: Par,
    ) {
        self.on_host("batch_norm_backward");
        let (hx, hsc, hst, hg) = (
            self.fetch(x),
            self.fetch(scale),
            self.fetch(stats),
            self.fetch(dout),
        );
        // the output masks the gradient only with a ReLU folded in
        let ho = if g.relu { self.fetch(out) } else { Vec::new() };
        let od = (if g.relu { &ho[..] } else { &hg[..] }, &hg[..]);
        // (an unzeroed buffer is read back all the same: the host kernel overwrites it)
        let mut hd = self.fetch_mut(&din);
        Cpu.batch_norm_backward(g, i, trained, &hx, &hsc, &hst, od, (&mut hd, assign), par);
        self.put(&hd, din);
    }
}

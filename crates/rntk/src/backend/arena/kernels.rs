//! The kernel families on the arena (convolutions in `conv.rs`, attention in
//! `attention.rs`): each call locks the arena, resolves its views to the slots' memory
//! (`resolve.rs`) and runs the CPU kernel there. What a device backend implements,
//! family by family.

use super::resolve::Resolve;
use super::{AMut, ARef, Arena, ArenaBuf};
use crate::backend::copies::{
    Copies, DelayStep, GatherGeom, PermuteGeom, RowPairs, SliceGeom, SpliceGeom,
};
use crate::backend::elementwise::{BinaryOp, Elementwise, Geom, TernaryOp, UnaryOp};
use crate::backend::losses::{AxisGeom, LastAxis, Losses};
use crate::backend::products::{Batch, Products};
use crate::backend::random::{MaskOrder, Random};
use crate::backend::recurrent::{LstmStrides, Recurrent, ScanGeom};
use crate::backend::reduce::{NormArgs, NormGeom, ReduceGeom, ReduceOp, Reductions};
use crate::backend::updates::{LearnerStep, Updates};
use crate::backend::{Arg, Cpu, MatMut, MatRef, Operand, Par, SparseRows};
use crate::error::Result;
use crate::random::DropoutRng;
use crate::tensor::{Element, PackedLayout};

type A = Arena;

impl Products for Arena {
    fn gemm<T: Element>(
        &self,
        a: MatRef<'_, A, T>,
        b: MatRef<'_, A, T>,
        c: MatMut<'_, A, T>,
        acc: bool,
        par: Par,
    ) {
        // SAFETY (every call below): inside `call`, results used only there.
        self.call(|cx| unsafe { Cpu.gemm(a.get(cx), b.get(cx), c.get(cx), acc, par) })
    }
    fn gemm_batched<T: Element>(
        &self,
        batch: Batch,
        a: MatRef<'_, A, T>,
        b: MatRef<'_, A, T>,
        c: MatMut<'_, A, T>,
        acc: bool,
        par: Par,
    ) {
        self.call(|cx| unsafe {
            Cpu.gemm_batched(batch, a.get(cx), b.get(cx), c.get(cx), acc, par)
        })
    }
    fn sparse_times<T: Element>(
        &self,
        a: SparseRows<'_, A, T>,
        b: ARef<'_, T>,
        dims: (usize, usize),
        transposed: bool,
        out: AMut<'_, T>,
    ) {
        self.call(|cx| unsafe {
            Cpu.sparse_times(a.get(cx), b.get(cx), dims, transposed, out.get(cx))
        })
    }
    fn sparse_times_backward<T: Element>(
        &self,
        a: SparseRows<'_, A, T>,
        dout: ARef<'_, T>,
        dims: (usize, usize),
        transposed: bool,
        db: AMut<'_, T>,
    ) {
        self.call(|cx| unsafe {
            Cpu.sparse_times_backward(a.get(cx), dout.get(cx), dims, transposed, db.get(cx))
        })
    }
}

impl Elementwise for Arena {
    fn unary<T: Element>(
        &self,
        op: UnaryOp,
        x: ARef<'_, T>,
        y: AMut<'_, T>,
        rows: (usize, usize),
        par: Par,
    ) {
        self.call(|cx| unsafe { Cpu.unary(op, x.get(cx), y.get(cx), rows, par) })
    }
    fn unary_backward<T: Element>(
        &self,
        op: UnaryOp,
        x: ARef<'_, T>,
        y: ARef<'_, T>,
        dy: ARef<'_, T>,
        dx: AMut<'_, T>,
        rows: (usize, usize),
        par: Par,
    ) {
        self.call(|cx| unsafe {
            Cpu.unary_backward(op, x.get(cx), y.get(cx), dy.get(cx), dx.get(cx), rows, par)
        })
    }
    fn binary<T: Element>(
        &self,
        op: BinaryOp,
        a: Operand<'_, A, T>,
        b: Operand<'_, A, T>,
        g: &Geom<2>,
        out: AMut<'_, T>,
        n: usize,
        par: Par,
    ) {
        self.call(|cx| unsafe { Cpu.binary(op, a.get(cx), b.get(cx), g, out.get(cx), n, par) })
    }
    fn binary_backward<T: Element>(
        &self,
        op: BinaryOp,
        wrt_b: bool,
        a: Operand<'_, A, T>,
        b: Operand<'_, A, T>,
        g: &Geom<2>,
        out: ARef<'_, T>,
        dout: ARef<'_, T>,
        din: AMut<'_, T>,
        n: usize,
        par: Par,
    ) {
        self.call(|cx| unsafe {
            let (a, b) = (a.get(cx), b.get(cx));
            Cpu.binary_backward(
                op,
                wrt_b,
                a,
                b,
                g,
                out.get(cx),
                dout.get(cx),
                din.get(cx),
                n,
                par,
            )
        })
    }
    fn ternary<T: Element>(
        &self,
        op: TernaryOp,
        x: [Operand<'_, A, T>; 3],
        g: &Geom<3>,
        out: AMut<'_, T>,
        n: usize,
    ) {
        self.call(|cx| unsafe { Cpu.ternary(op, x.get(cx), g, out.get(cx), n) })
    }
    fn ternary_backward<T: Element>(
        &self,
        op: TernaryOp,
        i: usize,
        x: [Operand<'_, A, T>; 3],
        g: &Geom<3>,
        dout: ARef<'_, T>,
        din: AMut<'_, T>,
        n: usize,
    ) {
        self.call(|cx| unsafe {
            Cpu.ternary_backward(op, i, x.get(cx), g, dout.get(cx), din.get(cx), n)
        })
    }
    fn fill<T: Element>(&self, dst: AMut<'_, T>, v: T) {
        self.call(|cx| unsafe { Cpu.fill(dst.get(cx), v) })
    }
    fn zero<T: Element>(&self, dst: AMut<'_, T>, par: Par) {
        self.call(|cx| unsafe { Cpu.zero(dst.get(cx), par) })
    }
    fn add_scalar<T: Element>(&self, dst: AMut<'_, T>, v: T) {
        self.call(|cx| unsafe { Cpu.add_scalar(dst.get(cx), v) })
    }
    fn copy<T: Element>(&self, src: ARef<'_, T>, dst: AMut<'_, T>) {
        self.call(|cx| unsafe { Cpu.copy(src.get(cx), dst.get(cx)) })
    }
    fn add<T: Element>(&self, src: ARef<'_, T>, dst: AMut<'_, T>, par: Par) {
        self.call(|cx| unsafe { Cpu.add(src.get(cx), dst.get(cx), par) })
    }
    fn mul<T: Element>(&self, a: ARef<'_, T>, b: ARef<'_, T>, dst: AMut<'_, T>) {
        self.call(|cx| unsafe { Cpu.mul(a.get(cx), b.get(cx), dst.get(cx)) })
    }
    fn add_product<T: Element>(&self, a: ARef<'_, T>, b: ARef<'_, T>, dst: AMut<'_, T>) {
        self.call(|cx| unsafe { Cpu.add_product(a.get(cx), b.get(cx), dst.get(cx)) })
    }
    fn sum_rows<T: Element>(&self, src: ARef<'_, T>, dst: AMut<'_, T>) {
        self.call(|cx| unsafe { Cpu.sum_rows(src.get(cx), dst.get(cx)) })
    }
}

impl Reductions for Arena {
    fn reduce<T: Element>(
        &self,
        op: ReduceOp,
        g: &ReduceGeom,
        x: Operand<'_, A, T>,
        out: AMut<'_, T>,
        n: usize,
    ) {
        self.call(|cx| unsafe { Cpu.reduce(op, g, x.get(cx), out.get(cx), n) })
    }
    fn reduce_backward<T: Element>(
        &self,
        op: ReduceOp,
        g: &ReduceGeom,
        x: Operand<'_, A, T>,
        out: ARef<'_, T>,
        dout: ARef<'_, T>,
        din: AMut<'_, T>,
        n: usize,
    ) {
        self.call(|cx| unsafe {
            Cpu.reduce_backward(op, g, x.get(cx), out.get(cx), dout.get(cx), din.get(cx), n)
        })
    }
    fn reduce_all<T: Element>(&self, op: ReduceOp, x: ARef<'_, T>, out: AMut<'_, T>) {
        self.call(|cx| unsafe { Cpu.reduce_all(op, x.get(cx), out.get(cx)) })
    }
    fn reduce_all_backward<T: Element>(
        &self,
        op: ReduceOp,
        x: ARef<'_, T>,
        out: ARef<'_, T>,
        dout: ARef<'_, T>,
        din: AMut<'_, T>,
    ) {
        self.call(|cx| unsafe {
            Cpu.reduce_all_backward(op, x.get(cx), out.get(cx), dout.get(cx), din.get(cx))
        })
    }
    fn batch_norm<T: Element>(
        &self,
        g: &NormGeom,
        args: NormArgs<'_, A, T>,
        training: bool,
        out: AMut<'_, T>,
        stats: AMut<'_, T>,
        par: Par,
    ) {
        self.call(|cx| unsafe {
            Cpu.batch_norm(g, args.get(cx), training, out.get(cx), stats.get(cx), par)
        })
    }
    fn batch_norm_backward<T: Element>(
        &self,
        g: &NormGeom,
        i: usize,
        trained: bool,
        x: ARef<'_, T>,
        scale: ARef<'_, T>,
        stats: ARef<'_, T>,
        (out, dout): (ARef<'_, T>, ARef<'_, T>),
        (din, assign): (AMut<'_, T>, bool),
        par: Par,
    ) {
        self.call(|cx| unsafe {
            let (x, scale, stats) = (x.get(cx), scale.get(cx), stats.get(cx));
            let (od, din) = ((out.get(cx), dout.get(cx)), (din.get(cx), assign));
            Cpu.batch_norm_backward(g, i, trained, x, scale, stats, od, din, par)
        })
    }
}

impl Losses for Arena {
    fn softmax<T: Element>(
        &self,
        log: bool,
        g: AxisGeom,
        x: Operand<'_, A, T>,
        out: AMut<'_, T>,
        n: usize,
    ) {
        self.call(|cx| unsafe { Cpu.softmax(log, g, x.get(cx), out.get(cx), n) })
    }
    fn softmax_backward<T: Element>(
        &self,
        log: bool,
        g: AxisGeom,
        out: ARef<'_, T>,
        dout: ARef<'_, T>,
        din: AMut<'_, T>,
        n: usize,
        per_row: bool,
    ) {
        self.call(|cx| unsafe {
            Cpu.softmax_backward(log, g, out.get(cx), dout.get(cx), din.get(cx), n, per_row)
        })
    }
    fn sequence_softmax<T: Element>(
        &self,
        l: &PackedLayout,
        d: usize,
        x: ARef<'_, T>,
        out: AMut<'_, T>,
    ) {
        self.call(|cx| unsafe { Cpu.sequence_softmax(l, d, x.get(cx), out.get(cx)) })
    }
    fn sequence_softmax_backward<T: Element>(
        &self,
        l: &PackedLayout,
        d: usize,
        out: ARef<'_, T>,
        dout: ARef<'_, T>,
        din: AMut<'_, T>,
    ) {
        self.call(|cx| unsafe {
            Cpu.sequence_softmax_backward(l, d, out.get(cx), dout.get(cx), din.get(cx))
        })
    }
    fn hardmax<T: Element>(&self, x: Operand<'_, A, T>, d: usize, out: AMut<'_, T>, n: usize) {
        self.call(|cx| unsafe { Cpu.hardmax(x.get(cx), d, out.get(cx), n) })
    }
    fn cross_entropy<T: Element>(
        &self,
        g: LastAxis,
        o: Operand<'_, A, T>,
        t: Arg<'_, A, T>,
        lse: AMut<'_, T>,
        out: AMut<'_, T>,
        n: usize,
        par: Par,
    ) {
        self.call(|cx| unsafe {
            Cpu.cross_entropy(g, o.get(cx), t.get(cx), lse.get(cx), out.get(cx), n, par)
        })
    }
    fn cross_entropy_backward<T: Element>(
        &self,
        g: LastAxis,
        i: usize,
        o: Operand<'_, A, T>,
        t: Arg<'_, A, T>,
        lse: ARef<'_, T>,
        dout: ARef<'_, T>,
        din: AMut<'_, T>,
        n: usize,
        par: Par,
    ) {
        self.call(|cx| unsafe {
            let (o, t, lse) = (o.get(cx), t.get(cx), lse.get(cx));
            Cpu.cross_entropy_backward(g, i, o, t, lse, dout.get(cx), din.get(cx), n, par)
        })
    }
    fn classification_error<T: Element>(
        &self,
        g: LastAxis,
        o: Operand<'_, A, T>,
        t: Arg<'_, A, T>,
        out: AMut<'_, T>,
        n: usize,
        par: Par,
    ) {
        self.call(|cx| unsafe {
            Cpu.classification_error(g, o.get(cx), t.get(cx), out.get(cx), n, par)
        })
    }
    fn classification_error_backward<T: Element>(
        &self,
        g: LastAxis,
        o: Operand<'_, A, T>,
        dout: ARef<'_, T>,
        din: AMut<'_, T>,
        n: usize,
        per_row: bool,
    ) {
        self.call(|cx| unsafe {
            Cpu.classification_error_backward(g, o.get(cx), dout.get(cx), din.get(cx), n, per_row)
        })
    }
    fn weighted_logistic<T: Element>(
        &self,
        o: ARef<'_, T>,
        t: ARef<'_, T>,
        w: Operand<'_, A, T>,
        n: usize,
        out: AMut<'_, T>,
    ) {
        self.call(|cx| unsafe {
            Cpu.weighted_logistic(o.get(cx), t.get(cx), w.get(cx), n, out.get(cx))
        })
    }
    fn weighted_logistic_backward<T: Element>(
        &self,
        o: ARef<'_, T>,
        t: ARef<'_, T>,
        w: Operand<'_, A, T>,
        n: usize,
        dout: ARef<'_, T>,
        din: AMut<'_, T>,
    ) {
        self.call(|cx| unsafe {
            Cpu.weighted_logistic_backward(
                o.get(cx),
                t.get(cx),
                w.get(cx),
                n,
                dout.get(cx),
                din.get(cx),
            )
        })
    }
    fn top_n_error<T: Element>(
        &self,
        o: ARef<'_, T>,
        t: ARef<'_, T>,
        dims: (usize, usize),
        top_n: usize,
        out: AMut<'_, T>,
    ) {
        self.call(|cx| unsafe { Cpu.top_n_error(o.get(cx), t.get(cx), dims, top_n, out.get(cx)) })
    }
}

impl Copies for Arena {
    fn slice<T: Element>(&self, g: &SliceGeom, x: ARef<'_, T>, out: AMut<'_, T>, n: usize) {
        self.call(|cx| unsafe { Cpu.slice(g, x.get(cx), out.get(cx), n) })
    }
    fn slice_backward<T: Element>(
        &self,
        g: &SliceGeom,
        dout: ARef<'_, T>,
        din: AMut<'_, T>,
        n: usize,
        per_row: bool,
    ) {
        self.call(|cx| unsafe { Cpu.slice_backward(g, dout.get(cx), din.get(cx), n, per_row) })
    }
    fn splice<T: Element>(&self, g: &SpliceGeom, x: Operand<'_, A, T>, out: AMut<'_, T>, n: usize) {
        self.call(|cx| unsafe { Cpu.splice(g, x.get(cx), out.get(cx), n) })
    }
    fn splice_backward<T: Element>(
        &self,
        g: &SpliceGeom,
        dout: ARef<'_, T>,
        din: AMut<'_, T>,
        n: usize,
        per_row: bool,
    ) {
        self.call(|cx| unsafe { Cpu.splice_backward(g, dout.get(cx), din.get(cx), n, per_row) })
    }
    fn permute<T: Element>(&self, g: &PermuteGeom, x: ARef<'_, T>, out: AMut<'_, T>, n: usize) {
        self.call(|cx| unsafe { Cpu.permute(g, x.get(cx), out.get(cx), n) })
    }
    fn permute_backward<T: Element>(
        &self,
        g: &PermuteGeom,
        dout: ARef<'_, T>,
        din: AMut<'_, T>,
        n: usize,
        per_row: bool,
    ) {
        self.call(|cx| unsafe { Cpu.permute_backward(g, dout.get(cx), din.get(cx), n, per_row) })
    }
    fn delay<T: Element>(
        &self,
        d: &DelayStep,
        x: ARef<'_, T>,
        init: ARef<'_, T>,
        y: AMut<'_, T>,
        t: usize,
    ) {
        self.call(|cx| unsafe { Cpu.delay(d, x.get(cx), init.get(cx), y.get(cx), t) })
    }
    fn delay_backward<T: Element>(
        &self,
        d: &DelayStep,
        dy: ARef<'_, T>,
        dx: Option<AMut<'_, T>>,
        dinit: Option<AMut<'_, T>>,
        t: usize,
    ) {
        self.call(|cx| unsafe { Cpu.delay_backward(d, dy.get(cx), dx.get(cx), dinit.get(cx), t) })
    }
    fn copy_rows<T: Element>(&self, d: usize, pairs: RowPairs, src: ARef<'_, T>, dst: AMut<'_, T>) {
        self.call(|cx| unsafe { Cpu.copy_rows(d, pairs, src.get(cx), dst.get(cx)) })
    }
    fn add_rows<T: Element>(&self, d: usize, pairs: RowPairs, src: ARef<'_, T>, dst: AMut<'_, T>) {
        self.call(|cx| unsafe { Cpu.add_rows(d, pairs, src.get(cx), dst.get(cx)) })
    }
    fn max_rows<T: Element>(&self, d: usize, pairs: RowPairs, src: ARef<'_, T>, dst: AMut<'_, T>) {
        self.call(|cx| unsafe { Cpu.max_rows(d, pairs, src.get(cx), dst.get(cx)) })
    }
    fn max_rows_backward<T: Element>(
        &self,
        d: usize,
        pairs: RowPairs,
        x: ARef<'_, T>,
        y: ARef<'_, T>,
        dy: ARef<'_, T>,
        dx: AMut<'_, T>,
    ) {
        self.call(|cx| unsafe {
            Cpu.max_rows_backward(d, pairs, x.get(cx), y.get(cx), dy.get(cx), dx.get(cx))
        })
    }
    fn fill_rows<T: Element>(&self, d: usize, rows: &[usize], v: T, dst: AMut<'_, T>) {
        self.call(|cx| unsafe { Cpu.fill_rows(d, rows, v, dst.get(cx)) })
    }
    fn one_hot<T: Element>(
        &self,
        classes: usize,
        ni: usize,
        x: Operand<'_, A, T>,
        out: AMut<'_, T>,
        rows: (usize, usize),
    ) -> Result<()> {
        self.call(|cx| unsafe { Cpu.one_hot(classes, ni, x.get(cx), out.get(cx), rows) })
    }
    fn gather<T: Element>(
        &self,
        g: &GatherGeom,
        reference: Operand<'_, A, T>,
        idx: Operand<'_, A, T>,
        out: AMut<'_, T>,
        rows: (usize, usize),
    ) -> Result<()> {
        self.call(|cx| unsafe { Cpu.gather(g, reference.get(cx), idx.get(cx), out.get(cx), rows) })
    }
    fn gather_backward<T: Element>(
        &self,
        g: &GatherGeom,
        idx: Operand<'_, A, T>,
        dout: ARef<'_, T>,
        dref: AMut<'_, T>,
        per_row: bool,
        rows: (usize, usize),
    ) -> Result<()> {
        self.call(|cx| unsafe {
            Cpu.gather_backward(g, idx.get(cx), dout.get(cx), dref.get(cx), per_row, rows)
        })
    }
    fn densify<T: Element>(&self, s: SparseRows<'_, A, T>, d: usize, out: AMut<'_, T>) {
        self.call(|cx| unsafe { Cpu.densify(s.get(cx), d, out.get(cx)) })
    }
}

impl Recurrent for Arena {
    fn lstm_cell<T: Element>(
        &self,
        pre: ARef<'_, T>,
        (cprev, stride): (ARef<'_, T>, usize),
        kept: AMut<'_, T>,
        out: AMut<'_, T>,
        dims: (usize, usize),
    ) {
        self.call(|cx| unsafe {
            Cpu.lstm_cell(
                pre.get(cx),
                (cprev.get(cx), stride),
                kept.get(cx),
                out.get(cx),
                dims,
            )
        })
    }
    fn lstm_cell_backward<T: Element>(
        &self,
        kept: ARef<'_, T>,
        cprev: ARef<'_, T>,
        dh: ARef<'_, T>,
        dc: ARef<'_, T>,
        dpre: Option<AMut<'_, T>>,
        dcprev: Option<AMut<'_, T>>,
        strides: &LstmStrides,
        dims: (usize, usize),
    ) {
        self.call(|cx| unsafe {
            let (kept, cprev, dh, dc) = (kept.get(cx), cprev.get(cx), dh.get(cx), dc.get(cx));
            Cpu.lstm_cell_backward(
                kept,
                cprev,
                dh,
                dc,
                dpre.get(cx),
                dcprev.get(cx),
                strides,
                dims,
            )
        })
    }
    fn lstm_scan<T: Element>(
        &self,
        g: &ScanGeom,
        args: [ARef<'_, T>; 4],
        out: AMut<'_, T>,
        saved: &mut ArenaBuf<T>,
        work: &mut ArenaBuf<T>,
        par: Par,
    ) {
        // (the scan sizes its own state buffers: make sure they have slots first)
        self.own(saved);
        self.own(work);
        self.call(|cx| unsafe {
            let (s, w) = (cx.vec(saved), cx.vec(work));
            Cpu.lstm_scan(g, args.get(cx), out.get(cx), s, w, par);
        });
        self.sync_len(saved);
        self.sync_len(work);
    }
    fn lstm_scan_backward<T: Element>(
        &self,
        g: &ScanGeom,
        h: ARef<'_, T>,
        init_lens: (usize, usize),
        dout: ARef<'_, T>,
        saved: ARef<'_, T>,
        grads: &mut ArenaBuf<T>,
        work: &mut ArenaBuf<T>,
        par: Par,
    ) {
        self.own(grads);
        self.own(work);
        self.call(|cx| unsafe {
            let (gr, w) = (cx.vec(grads), cx.vec(work));
            Cpu.lstm_scan_backward(
                g,
                h.get(cx),
                init_lens,
                dout.get(cx),
                saved.get(cx),
                gr,
                w,
                par,
            );
        });
        self.sync_len(grads);
        self.sync_len(work);
    }
}

impl Updates for Arena {
    fn learner_step<T: Element>(
        &self,
        s: &LearnerStep,
        p: AMut<'_, T>,
        g: ARef<'_, T>,
        state: &mut [ArenaBuf<T>],
        scratch: &mut ArenaBuf<T>,
        par: Par,
    ) {
        self.own(scratch);
        state.iter_mut().for_each(|b| self.own(b));
        self.call(|cx| unsafe {
            // the rule's buffers as the CPU's (moved out of their slots for the call)
            let mut bufs: Vec<Vec<T>> = state
                .iter_mut()
                .map(|b| std::mem::take(cx.vec(b)))
                .collect();
            Cpu.learner_step(s, p.get(cx), g.get(cx), &mut bufs, cx.vec(scratch), par);
            for (b, v) in state.iter_mut().zip(bufs) {
                *cx.vec(b) = v;
            }
        });
        self.sync_len(scratch);
    }
}

impl Random for Arena {
    fn dropout_mask<T: Element>(
        &self,
        rng: &mut DropoutRng,
        order: MaskOrder,
        draw: (usize, f64, T),
        mask: AMut<'_, T>,
    ) {
        self.call(|cx| unsafe { Cpu.dropout_mask(rng, order, draw, mask.get(cx)) })
    }
}

impl Arena {
    /// Give a buffer a slot (kernels that size their own buffers need one).
    fn own<T: Element>(&self, b: &mut ArenaBuf<T>) {
        if !self.owns(b) {
            let len = b.len;
            crate::backend::Memory::resize(self, b, len);
        }
    }
    /// A buffer's length after a kernel resized its slot.
    fn sync_len<T: Element>(&self, b: &mut ArenaBuf<T>) {
        let slot = b.slot;
        b.len = self.with(|s| s.vec_mut::<T>(slot).len());
    }
}

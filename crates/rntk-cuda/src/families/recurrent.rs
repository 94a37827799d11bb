//! `Recurrent` on the GPU: the fused LSTM cell as one kernel (a thread per row and
//! unit), and the scan over packed sequences as the CPU runs it, step by step — the
//! previous state gathered by a kernel, `pre = pre_x + h_prev·H` as one cuBLAS call
//! (accumulating into a copy of `pre_x`), the cell; BPTT with ∂h_prev = ∂pre·Hᵀ per
//! step. (A persistent kernel keeping H on chip across steps is the planned next
//! step for small hidden sizes; see the crate README.)

use super::{p, pm, u, NULL};
use crate::device::{Cuda, KArg};
use crate::memory::{CMut, CRef, CudaBuf};
use rntk::backend::products::Products;
use rntk::backend::recurrent::{LstmStrides, Recurrent, ScanGeom, KEPT};
use rntk::backend::{Elementwise, MatMut, MatRef, Memory, Par};
use rntk::tensor::{Element, PackedLayout};

/// The step a step's state comes from and how many of its leading rows continue a
/// sequence (as the CPU's `lstm_scan::source`).
fn source(p: &PackedLayout, t: usize, reverse: bool) -> (usize, usize) {
    let b = p.batch_sizes();
    if reverse {
        if t + 1 < b.len() {
            (t + 1, b[t + 1].min(b[t]))
        } else {
            (t, 0)
        }
    } else if t > 0 {
        (t - 1, b[t])
    } else {
        (t, 0)
    }
}

type C = Cuda;

fn at<T: Element>(r: CRef<'_, T>, e: usize, len: usize) -> CRef<'_, T> {
    C::sub(r, e..e + len)
}

fn at_mut<'a, T: Element>(m: &'a mut CMut<'_, T>, e: usize, len: usize) -> CMut<'a, T> {
    C::sub_mut(C::reborrow(m), e..e + len)
}

impl Cuda {
    #[allow(clippy::too_many_arguments)]
    fn scan_gather<T: Element>(
        &self,
        out: CRef<'_, T>,
        from: (usize, usize),
        init: CRef<'_, T>,
        dst: &mut CMut<'_, T>,
        (rows, part, n): (usize, usize, usize),
    ) {
        let a = [
            p(out),
            u(from.0),
            u(from.1),
            p(init),
            u(init.len),
            super::pm(dst),
            u(rows),
            u(part),
            u(n),
        ];
        self.launch::<T>("scan_gather", rows * n, &a);
    }
}

impl Recurrent for Cuda {
    fn lstm_cell<T: Element>(
        &self,
        pre: CRef<'_, T>,
        (cprev, stride): (CRef<'_, T>, usize),
        kept: CMut<'_, T>,
        out: CMut<'_, T>,
        (n, rows): (usize, usize),
    ) {
        let a = [
            p(pre),
            p(cprev),
            u(stride),
            pm(&kept),
            pm(&out),
            u(n),
            u(rows),
        ];
        self.launch::<T>("lstm_cell_fwd", rows * n, &a);
    }

    fn lstm_cell_backward<T: Element>(
        &self,
        kept: CRef<'_, T>,
        cprev: CRef<'_, T>,
        dh: CRef<'_, T>,
        dc: CRef<'_, T>,
        dpre: Option<CMut<'_, T>>,
        dcprev: Option<CMut<'_, T>>,
        s: &LstmStrides,
        (n, rows): (usize, usize),
    ) {
        let dp = dpre.as_ref().map_or(NULL, pm);
        let dcp = dcprev.as_ref().map_or(NULL, pm);
        let a = [
            p(kept),
            p(cprev),
            p(dh),
            p(dc),
            dp,
            dcp,
            u(s.cprev),
            u(s.dh),
            u(s.dc),
            u(s.dcprev),
            u(n),
            u(rows),
        ];
        self.launch::<T>("lstm_cell_bwd", rows * n, &a);
    }

    fn lstm_scan<T: Element>(
        &self,
        g: &ScanGeom,
        [pre_x, h, h0, c0]: [CRef<'_, T>; 4],
        mut out: CMut<'_, T>,
        saved: &mut CudaBuf<T>,
        work: &mut CudaBuf<T>,
        par: Par,
    ) {
        let (l, n) = (g.layout, g.n);
        let total = l.total();
        let widest = l.batch_sizes().first().copied().unwrap_or(0);
        self.resize(saved, g.saved_len());
        self.resize(work, widest * 4 * n);
        let mut sv = C::view_mut(saved);
        let mut pre_buf = C::view_mut(work);
        let steps = l.max_len();
        for k in 0..steps {
            let t = if g.reverse { steps - 1 - k } else { k };
            let (rows, row0) = (l.batch_sizes()[t], l.offsets()[t]);
            let (src, from_src) = source(l, t, g.reverse);
            let from = (l.offsets()[src], from_src);
            let o = C::freeze(&out);
            let mut hprev = at_mut(&mut sv, total * KEPT * n + row0 * n, rows * n);
            self.scan_gather(o, from, h0, &mut hprev, (rows, 0, n));
            let hprev = C::freeze(&hprev);
            let hprev_ptr = hprev.ptr;
            let mut cprev = at_mut(&mut sv, total * (KEPT + 1) * n + row0 * n, rows * n);
            self.scan_gather(o, from, c0, &mut cprev, (rows, 1, n));
            let cprev_ptr = cprev.ptr;
            // pre = pre_x + h_prev·H
            let mut pre = at_mut(&mut pre_buf, 0, rows * 4 * n);
            self.copy(at(pre_x, row0 * 4 * n, rows * 4 * n), C::reborrow(&mut pre));
            let hp = CRef::new(hprev_ptr, rows * n);
            self.gemm(
                MatRef::row_major(hp, rows, n),
                MatRef::row_major(h, n, 4 * n),
                MatMut::row_major(C::reborrow(&mut pre), rows, 4 * n),
                true,
                par,
            );
            let kept = at_mut(&mut sv, row0 * KEPT * n, rows * KEPT * n);
            let out_rows = at_mut(&mut out, row0 * 2 * n, rows * 2 * n);
            let cp = CRef::new(cprev_ptr, rows * n);
            self.lstm_cell(C::freeze(&pre), (cp, n), kept, out_rows, (n, rows));
        }
    }

    fn lstm_scan_backward<T: Element>(
        &self,
        g: &ScanGeom,
        h: CRef<'_, T>,
        (nh0, nc0): (usize, usize),
        dout: CRef<'_, T>,
        saved: CRef<'_, T>,
        grads: &mut CudaBuf<T>,
        work: &mut CudaBuf<T>,
        par: Par,
    ) {
        let (l, n) = (g.layout, g.n);
        let total = l.total();
        assert!(
            saved.len >= g.saved_len(),
            "LSTM scan backward without its forward"
        );
        let widest = l.batch_sizes().first().copied().unwrap_or(0);
        self.resize(grads, total * 4 * n + nh0 + nc0);
        self.zero(C::view_mut(grads), par);
        self.resize(work, widest * 4 * n);
        let mut gv = C::view_mut(grads);
        let mut wv = C::view_mut(work);
        let (carry_h, carry_c) = (
            at_mut(&mut wv, 0, widest * n).ptr,
            at_mut(&mut wv, widest * n, widest * n).ptr,
        );
        let (dh, dc) = (
            at_mut(&mut wv, 2 * widest * n, widest * n).ptr,
            at_mut(&mut wv, 3 * widest * n, widest * n).ptr,
        );
        let dh0 = at_mut(&mut gv, total * 4 * n, nh0).ptr;
        let dc0 = at_mut(&mut gv, total * 4 * n + nh0, nc0).ptr;
        let strides = LstmStrides {
            cprev: n,
            dh: n,
            dc: n,
            dcprev: n,
        };
        let steps = l.max_len();
        let mut carried = 0;
        let sz = std::mem::size_of::<T>() as u64;
        for k in 0..steps {
            let t = if g.reverse { k } else { steps - 1 - k };
            let (rows, row0) = (l.batch_sizes()[t], l.offsets()[t]);
            let from_src = source(l, t, g.reverse).1;
            let cprev = at(saved, total * (KEPT + 1) * n + row0 * n, rows * n);
            let kept = at(saved, row0 * KEPT * n, rows * KEPT * n);
            let gout = at(dout, row0 * 2 * n, rows * 2 * n);
            let a = [
                p(gout),
                KArg::U(carry_h),
                KArg::U(carry_c),
                KArg::U(dh),
                KArg::U(dc),
                u(rows),
                u(carried),
                u(n),
            ];
            self.launch::<T>("scan_dstate", rows * n, &a);
            self.zero_range(carry_c, rows * n * sz as usize);
            let mut dpre = at_mut(&mut gv, row0 * 4 * n, rows * 4 * n);
            self.lstm_cell_backward(
                kept,
                cprev,
                CRef::new(dh, rows * n),
                CRef::new(dc, rows * n),
                Some(C::reborrow(&mut dpre)),
                Some(CMut::from_raw(carry_c, rows * n)),
                &strides,
                (n, rows),
            );
            // ∂/∂h_prev = ∂/∂pre · Hᵀ
            self.gemm(
                MatRef::row_major(C::freeze(&dpre), rows, 4 * n),
                MatRef::row_major(h, n, 4 * n).t(),
                MatMut::row_major(CMut::from_raw(carry_h, rows * n), rows, n),
                false,
                par,
            );
            for (carry, d, len) in [(carry_h, dh0, nh0), (carry_c, dc0, nc0)] {
                if from_src < rows && len > 0 {
                    let a = [
                        KArg::U(carry),
                        u(from_src),
                        u(rows),
                        u(n),
                        KArg::U(d),
                        u(len),
                    ];
                    self.launch::<T>("scan_init_grad", (rows - from_src) * n, &a);
                }
            }
            carried = from_src;
        }
    }
}

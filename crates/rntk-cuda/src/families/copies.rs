//! `Copies` on the GPU: slices, splices, permutations (a host-made index table),
//! row maps and the delays' steps (the pairs uploaded per call), sparse to dense.
//! `one_hot` and `gather` (whose index values must be checked, with an error naming
//! the row) run on the host path for now.

use super::{flag, p, pm, u};
use crate::device::{Cuda, KArg};
use crate::memory::{CMut, CRef};
use rntk::backend::copies::{
    Copies, DelayStep, GatherGeom, PermuteGeom, RowPairs, SliceGeom, SpliceGeom,
};
use rntk::backend::{Cpu, Operand, SparseRows};
use rntk::error::Result;
use rntk::tensor::Element;

const INIT_BIT: u64 = 1 << 63;

fn slice_args(g: &SliceGeom) -> [KArg; 6] {
    [
        u(g.outer),
        u(g.dim),
        u(g.inner),
        u(g.begin),
        u(g.stride),
        u(g.count),
    ]
}

fn splice_args(g: &SpliceGeom) -> [KArg; 5] {
    [u(g.outer), u(g.inner), u(g.total), u(g.start), u(g.extent)]
}

fn flat_pairs(pairs: RowPairs) -> Vec<u64> {
    pairs
        .iter()
        .flat_map(|&(a, b)| [a as u64, b as u64])
        .collect()
}

impl Cuda {
    /// Per row of step `t`: its source row in `x`, or `INIT_BIT | sequence` for the
    /// initial state; and the initial state's mode (0 scalar, 1 per sequence, 2 one
    /// sample).
    fn delay_map(&self, d: &DelayStep, t: usize) -> (Vec<u64>, i32) {
        let l = d.layout;
        let map = (0..l.batch_sizes()[t])
            .map(|j| match d.source(t, j) {
                Some(s) => s as u64,
                None => INIT_BIT | l.sorted()[j] as u64,
            })
            .collect();
        let mode = if d.init_scalar {
            0
        } else if d.init_per_seq {
            1
        } else {
            2
        };
        (map, mode)
    }

    fn row_map<T: Element>(
        &self,
        kernel: &'static str,
        d: usize,
        pairs: RowPairs,
        args: [KArg; 2],
    ) {
        if pairs.is_empty() || d == 0 {
            return;
        }
        let (_t, tp) = self.meta(&flat_pairs(pairs));
        let work = if kernel == "max_rows" {
            d
        } else {
            pairs.len() * d
        };
        let a = [args[0], args[1], u(d), KArg::U(tp), u(pairs.len())];
        self.launch::<T>(kernel, work, &a);
    }

    fn permute_table(&self, g: &PermuteGeom) -> (cudarc::driver::CudaSlice<u64>, u64) {
        self.meta(&crate::tables::permute(g))
    }
}

impl Copies for Cuda {
    fn slice<T: Element>(&self, g: &SliceGeom, x: CRef<'_, T>, out: CMut<'_, T>, n: usize) {
        let mut a = vec![p(x), pm(&out), u(n)];
        a.extend(slice_args(g));
        self.launch::<T>("slice_fwd", n * g.outer * g.count * g.inner, &a);
    }

    fn slice_backward<T: Element>(
        &self,
        g: &SliceGeom,
        dout: CRef<'_, T>,
        din: CMut<'_, T>,
        n: usize,
        per_row: bool,
    ) {
        let mut a = vec![p(dout), pm(&din), u(n)];
        a.extend(slice_args(g));
        a.push(flag(per_row));
        self.launch::<T>("slice_bwd", n * g.outer * g.count * g.inner, &a);
    }

    fn splice<T: Element>(
        &self,
        g: &SpliceGeom,
        x: Operand<'_, Cuda, T>,
        out: CMut<'_, T>,
        n: usize,
    ) {
        let nx = g.outer * g.extent * g.inner;
        let mut a = vec![p(x.data), u(if x.per_row { nx } else { 0 }), pm(&out), u(n)];
        a.extend(splice_args(g));
        self.launch::<T>("splice_fwd", n * nx, &a);
    }

    fn splice_backward<T: Element>(
        &self,
        g: &SpliceGeom,
        dout: CRef<'_, T>,
        din: CMut<'_, T>,
        n: usize,
        per_row: bool,
    ) {
        let mut a = vec![p(dout), pm(&din), u(n)];
        a.extend(splice_args(g));
        a.push(flag(per_row));
        self.launch::<T>("splice_bwd", n * g.outer * g.extent * g.inner, &a);
    }

    fn permute<T: Element>(&self, g: &PermuteGeom, x: CRef<'_, T>, out: CMut<'_, T>, n: usize) {
        let d = g.numel();
        let (_t, tp) = self.permute_table(g);
        self.launch::<T>(
            "gather_map",
            n * d,
            &[p(x), pm(&out), u(n), u(d), KArg::U(tp)],
        );
    }

    fn permute_backward<T: Element>(
        &self,
        g: &PermuteGeom,
        dout: CRef<'_, T>,
        din: CMut<'_, T>,
        n: usize,
        per_row: bool,
    ) {
        let d = g.numel();
        let (_t, tp) = self.permute_table(g);
        let a = [p(dout), pm(&din), u(n), u(d), KArg::U(tp), flag(per_row)];
        self.launch::<T>("scatter_map", n * d, &a);
    }

    fn delay<T: Element>(
        &self,
        d: &DelayStep,
        x: CRef<'_, T>,
        init: CRef<'_, T>,
        y: CMut<'_, T>,
        t: usize,
    ) {
        let (map, mode) = self.delay_map(d, t);
        let (_m, mp) = self.meta(&map);
        let row0 = d.layout.offsets()[t] * d.numel;
        let yp = KArg::U(y.ptr + (row0 * std::mem::size_of::<T>()) as u64);
        let a = [
            p(x),
            p(init),
            yp,
            u(d.numel),
            KArg::U(mp),
            u(map.len()),
            KArg::I(mode),
        ];
        self.launch::<T>("delay_fwd", map.len() * d.numel, &a);
    }

    fn delay_backward<T: Element>(
        &self,
        d: &DelayStep,
        dy: CRef<'_, T>,
        dx: Option<CMut<'_, T>>,
        dinit: Option<CMut<'_, T>>,
        t: usize,
    ) {
        let (map, mode) = self.delay_map(d, t);
        let (_m, mp) = self.meta(&map);
        let row0 = d.layout.offsets()[t] * d.numel;
        let dyp = KArg::U(dy.ptr + (row0 * std::mem::size_of::<T>()) as u64);
        let dxp = KArg::U(dx.as_ref().map_or(0, |m| m.ptr));
        let dip = KArg::U(dinit.as_ref().map_or(0, |m| m.ptr));
        let a = [
            dyp,
            dxp,
            dip,
            u(d.numel),
            KArg::U(mp),
            u(map.len()),
            KArg::I(mode),
        ];
        self.launch::<T>("delay_bwd", map.len() * d.numel, &a);
    }

    fn copy_rows<T: Element>(&self, d: usize, pairs: RowPairs, src: CRef<'_, T>, dst: CMut<'_, T>) {
        self.row_map::<T>("copy_rows", d, pairs, [p(src), pm(&dst)]);
    }

    fn add_rows<T: Element>(&self, d: usize, pairs: RowPairs, src: CRef<'_, T>, dst: CMut<'_, T>) {
        self.row_map::<T>("add_rows", d, pairs, [p(src), pm(&dst)]);
    }

    fn max_rows<T: Element>(&self, d: usize, pairs: RowPairs, src: CRef<'_, T>, dst: CMut<'_, T>) {
        self.row_map::<T>("max_rows", d, pairs, [p(src), pm(&dst)]);
    }

    fn max_rows_backward<T: Element>(
        &self,
        d: usize,
        pairs: RowPairs,
        x: CRef<'_, T>,
        y: CRef<'_, T>,
        dy: CRef<'_, T>,
        dx: CMut<'_, T>,
    ) {
        if pairs.is_empty() || d == 0 {
            return;
        }
        let (_t, tp) = self.meta(&flat_pairs(pairs));
        let a = [
            p(x),
            p(y),
            p(dy),
            pm(&dx),
            u(d),
            KArg::U(tp),
            u(pairs.len()),
        ];
        self.launch::<T>("max_rows_bwd", pairs.len() * d, &a);
    }

    fn fill_rows<T: Element>(&self, d: usize, rows: &[usize], v: T, dst: CMut<'_, T>) {
        if rows.is_empty() || d == 0 {
            return;
        }
        let r: Vec<u64> = rows.iter().map(|&r| r as u64).collect();
        let (_t, tp) = self.meta(&r);
        let a = [pm(&dst), u(d), KArg::U(tp), u(r.len()), KArg::F(v.as_f64())];
        self.launch::<T>("fill_rows", r.len() * d, &a);
    }

    fn one_hot<T: Element>(
        &self,
        classes: usize,
        ni: usize,
        x: Operand<'_, Cuda, T>,
        out: CMut<'_, T>,
        rows: (usize, usize),
    ) -> Result<()> {
        self.on_host("one_hot");
        let hx = self.host_operand(x);
        let mut ho = self.fetch_mut(&out);
        let r = Cpu.one_hot(classes, ni, hx.get(), &mut ho, rows);
        self.put(&ho, out);
        r
    }

    fn gather<T: Element>(
        &self,
        g: &GatherGeom,
        reference: Operand<'_, Cuda, T>,
        idx: Operand<'_, Cuda, T>,
        out: CMut<'_, T>,
        rows: (usize, usize),
    ) -> Result<()> {
        self.on_host("gather");
        let (hr, hi) = (self.host_operand(reference), self.host_operand(idx));
        let mut ho = self.fetch_mut(&out);
        let r = Cpu.gather(g, hr.get(), hi.get(), &mut ho, rows);
        self.put(&ho, out);
        r
    }

    fn gather_backward<T: Element>(
        &self,
        g: &GatherGeom,
        idx: Operand<'_, Cuda, T>,
        dout: CRef<'_, T>,
        dref: CMut<'_, T>,
        per_row: bool,
        rows: (usize, usize),
    ) -> Result<()> {
        self.on_host("gather_backward");
        let (hi, hg) = (self.host_operand(idx), self.fetch(dout));
        let mut hd = self.fetch_mut(&dref);
        let r = Cpu.gather_backward(g, hi.get(), &hg, &mut hd, per_row, rows);
        self.put(&hd, dref);
        r
    }

    fn densify<T: Element>(&self, s: SparseRows<'_, Cuda, T>, d: usize, out: CMut<'_, T>) {
        self.zero_range(out.ptr, out.len * std::mem::size_of::<T>());
        let [ip, ix, v] = self.sparse_args(&s);
        let rows = s.rows();
        self.launch::<T>(
            "scatter_sparse",
            rows,
            &[ip, ix, v, u(rows), u(d), pm(&out)],
        );
    }
}

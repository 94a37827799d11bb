//! `Copies` on the CPU: contiguous runs moved with `copy_from_slice`, strided ones
//! element by element; index values checked as they are read.

use super::Cpu;
use crate::backend::copies::{
    Copies, DelayStep, GatherGeom, PermuteGeom, RowPairs, SliceGeom, SpliceGeom,
};
use crate::backend::{Operand, SparseRows};
use crate::error::{Error, Result};
use crate::tensor::Element;

fn add_to<T: Element>(dst: &mut [T], src: &[T]) {
    for (a, &b) in dst.iter_mut().zip(src) {
        *a += b;
    }
}

/// Sample `r` of a gradient buffer of `nx`-element samples (the one sample when the
/// operand is static).
fn din_row<T>(din: &mut [T], per_row: bool, r: usize, nx: usize) -> &mut [T] {
    if per_row {
        &mut din[r * nx..(r + 1) * nx]
    } else {
        &mut din[..nx]
    }
}

/// Whether `v` is an integer in `[0, n)`, and which.
#[inline]
fn index_of<T: Element>(v: T, n: usize) -> Option<usize> {
    let f = v.as_f64();
    (f >= 0.0 && f < n as f64 && f.fract() == 0.0).then_some(f as usize)
}

fn bad_index<T: Element>(op: &str, v: T, row: usize, n: usize, what: &str) -> Error {
    Error::invalid(
        format!("{op} at run time"),
        format!("index {v} in sample row {row} is not an integer in [0, {n}) ({what})"),
    )
}

impl Copies for Cpu {
    fn slice<T: Element>(&self, g: &SliceGeom, x: &[T], out: &mut [T], n: usize) {
        let SliceGeom {
            outer,
            dim,
            inner,
            begin: b,
            stride: s,
            count: c,
        } = *g;
        let (nx, no) = (outer * dim * inner, outer * c * inner);
        for r in 0..n {
            let xr = &x[r * nx..(r + 1) * nx];
            let orow = &mut out[r * no..(r + 1) * no];
            for o in 0..outer {
                if s == 1 {
                    // a contiguous run (e.g. one gate of a packed LSTM pre-activation)
                    let (src, dst) = ((o * dim + b) * inner, o * c * inner);
                    orow[dst..dst + c * inner].copy_from_slice(&xr[src..src + c * inner]);
                    continue;
                }
                for j in 0..c {
                    let src = (o * dim + b + j * s) * inner;
                    let dst = (o * c + j) * inner;
                    orow[dst..dst + inner].copy_from_slice(&xr[src..src + inner]);
                }
            }
        }
    }

    fn slice_backward<T: Element>(
        &self,
        g: &SliceGeom,
        dout: &[T],
        din: &mut [T],
        n: usize,
        per_row: bool,
    ) {
        let SliceGeom {
            outer,
            dim,
            inner,
            begin: b,
            stride: s,
            count: c,
        } = *g;
        let (nx, no) = (outer * dim * inner, outer * c * inner);
        for r in 0..n {
            let dr = din_row(din, per_row, r, nx);
            let gr = &dout[r * no..(r + 1) * no];
            for o in 0..outer {
                if s == 1 {
                    let (src, dst) = ((o * dim + b) * inner, o * c * inner);
                    add_to(&mut dr[src..src + c * inner], &gr[dst..dst + c * inner]);
                    continue;
                }
                for j in 0..c {
                    let src = (o * dim + b + j * s) * inner;
                    let dst = (o * c + j) * inner;
                    add_to(&mut dr[src..src + inner], &gr[dst..dst + inner]);
                }
            }
        }
    }

    fn splice<T: Element>(&self, g: &SpliceGeom, x: Operand<'_, Cpu, T>, out: &mut [T], n: usize) {
        let SpliceGeom {
            outer,
            inner,
            total,
            start,
            extent: e,
        } = *g;
        let no = outer * total * inner;
        let nx = outer * e * inner;
        for r in 0..n {
            let xr = if x.per_row {
                &x.data[r * nx..(r + 1) * nx]
            } else {
                x.data
            };
            let orow = &mut out[r * no..(r + 1) * no];
            for o in 0..outer {
                let dst = (o * total + start) * inner;
                let src = o * e * inner;
                orow[dst..dst + e * inner].copy_from_slice(&xr[src..src + e * inner]);
            }
        }
    }

    fn splice_backward<T: Element>(
        &self,
        g: &SpliceGeom,
        dout: &[T],
        din: &mut [T],
        n: usize,
        per_row: bool,
    ) {
        let SpliceGeom {
            outer,
            inner,
            total,
            start,
            extent: e,
        } = *g;
        let no = outer * total * inner;
        let nx = outer * e * inner;
        for r in 0..n {
            let dr = din_row(din, per_row, r, nx);
            let gr = &dout[r * no..(r + 1) * no];
            for o in 0..outer {
                let src = (o * total + start) * inner;
                let dst = o * e * inner;
                add_to(&mut dr[dst..dst + e * inner], &gr[src..src + e * inner]);
            }
        }
    }

    fn permute<T: Element>(&self, g: &PermuteGeom, x: &[T], out: &mut [T], n: usize) {
        let d = g.numel();
        for r in 0..n {
            let xr = &x[r * d..(r + 1) * d];
            let orow = &mut out[r * d..(r + 1) * d];
            g.for_each(|e, s| orow[e] = xr[s]);
        }
    }

    fn permute_backward<T: Element>(
        &self,
        g: &PermuteGeom,
        dout: &[T],
        din: &mut [T],
        n: usize,
        per_row: bool,
    ) {
        let d = g.numel();
        for r in 0..n {
            let gr = &dout[r * d..(r + 1) * d];
            let dr = din_row(din, per_row, r, d);
            g.for_each(|e, s| dr[s] += gr[e]);
        }
    }

    fn delay<T: Element>(&self, dl: &DelayStep, x: &[T], init: &[T], y: &mut [T], t: usize) {
        let l = dl.layout;
        let d = dl.numel;
        for j in 0..l.batch_sizes()[t] {
            let row = l.offsets()[t] + j;
            let dst = &mut y[row * d..(row + 1) * d];
            match dl.source(t, j) {
                Some(s) => dst.copy_from_slice(&x[s * d..(s + 1) * d]),
                None if dl.init_scalar => dst.iter_mut().for_each(|v| *v = init[0]),
                None if dl.init_per_seq => {
                    let i = l.sorted()[j];
                    dst.copy_from_slice(&init[i * d..(i + 1) * d]);
                }
                None => dst.copy_from_slice(&init[..d]),
            }
        }
    }

    fn delay_backward<T: Element>(
        &self,
        dl: &DelayStep,
        dy: &[T],
        mut dx: Option<&mut [T]>,
        mut dinit: Option<&mut [T]>,
        t: usize,
    ) {
        let l = dl.layout;
        let d = dl.numel;
        for j in 0..l.batch_sizes()[t] {
            let row = l.offsets()[t] + j;
            let g = &dy[row * d..(row + 1) * d];
            match dl.source(t, j) {
                Some(s) => {
                    if let Some(dx) = dx.as_deref_mut() {
                        add_to(&mut dx[s * d..(s + 1) * d], g);
                    }
                }
                None => {
                    if let Some(di) = dinit.as_deref_mut() {
                        if dl.init_scalar {
                            di[0] += g.iter().copied().sum::<T>();
                        } else if dl.init_per_seq {
                            let i = l.sorted()[j];
                            add_to(&mut di[i * d..(i + 1) * d], g);
                        } else {
                            add_to(&mut di[..d], g);
                        }
                    }
                }
            }
        }
    }

    fn copy_rows<T: Element>(&self, d: usize, pairs: RowPairs, src: &[T], dst: &mut [T]) {
        for &(a, b) in pairs {
            dst[b * d..(b + 1) * d].copy_from_slice(&src[a * d..(a + 1) * d]);
        }
    }

    fn add_rows<T: Element>(&self, d: usize, pairs: RowPairs, src: &[T], dst: &mut [T]) {
        for &(a, b) in pairs {
            add_to(&mut dst[b * d..(b + 1) * d], &src[a * d..(a + 1) * d]);
        }
    }

    fn max_rows<T: Element>(&self, d: usize, pairs: RowPairs, src: &[T], dst: &mut [T]) {
        for &(a, b) in pairs {
            for (m, &v) in dst[b * d..(b + 1) * d]
                .iter_mut()
                .zip(&src[a * d..(a + 1) * d])
            {
                if v > *m {
                    *m = v;
                }
            }
        }
    }

    fn max_rows_backward<T: Element>(
        &self,
        d: usize,
        pairs: RowPairs,
        x: &[T],
        y: &[T],
        dy: &[T],
        dx: &mut [T],
    ) {
        for &(a, b) in pairs {
            for f in 0..d {
                if x[a * d + f] == y[b * d + f] {
                    dx[a * d + f] += dy[b * d + f];
                }
            }
        }
    }

    fn fill_rows<T: Element>(&self, d: usize, rows: &[usize], v: T, dst: &mut [T]) {
        for &r in rows {
            dst[r * d..(r + 1) * d].fill(v);
        }
    }

    fn one_hot<T: Element>(
        &self,
        c: usize,
        ni: usize,
        x: Operand<'_, Cpu, T>,
        out: &mut [T],
        (n, row0): (usize, usize),
    ) -> Result<()> {
        let no = ni * c;
        let rows = if x.per_row { n } else { 1 };
        out[..rows * no].iter_mut().for_each(|v| *v = T::zero());
        for r in 0..rows {
            for (k, &v) in x.data[r * ni..(r + 1) * ni].iter().enumerate() {
                let j = index_of(v, c)
                    .ok_or_else(|| bad_index("OneHot", v, row0 + r, c, "class index"))?;
                out[r * no + k * c + j] = T::one();
            }
        }
        Ok(())
    }

    fn gather<T: Element>(
        &self,
        g: &GatherGeom,
        reference: Operand<'_, Cpu, T>,
        idx: Operand<'_, Cpu, T>,
        out: &mut [T],
        (n, row0): (usize, usize),
    ) -> Result<()> {
        let GatherGeom { len, rest, ni } = *g;
        let (nr, no) = (len * rest, ni * rest);
        let sr = if reference.per_row { nr } else { 0 };
        let si = if idx.per_row { ni } else { 0 };
        for r in 0..n {
            let refr = &reference.data[r * sr..r * sr + nr];
            for (k, &v) in idx.data[r * si..r * si + ni].iter().enumerate() {
                let j = index_of(v, len)
                    .ok_or_else(|| bad_index("Gather", v, row0 + r, len, "row of the reference"))?;
                out[r * no + k * rest..r * no + (k + 1) * rest]
                    .copy_from_slice(&refr[j * rest..(j + 1) * rest]);
            }
        }
        Ok(())
    }

    fn gather_backward<T: Element>(
        &self,
        g: &GatherGeom,
        idx: Operand<'_, Cpu, T>,
        dout: &[T],
        dref: &mut [T],
        per_row: bool,
        (n, row0): (usize, usize),
    ) -> Result<()> {
        let GatherGeom { len, rest, ni } = *g;
        let (nr, no) = (len * rest, ni * rest);
        let sr = if per_row { nr } else { 0 };
        let si = if idx.per_row { ni } else { 0 };
        for r in 0..n {
            let gr = &dout[r * no..(r + 1) * no];
            for (k, &v) in idx.data[r * si..r * si + ni].iter().enumerate() {
                let j = index_of(v, len)
                    .ok_or_else(|| bad_index("Gather", v, row0 + r, len, "row of the reference"))?;
                let d = &mut dref[r * sr + j * rest..r * sr + (j + 1) * rest];
                add_to(d, &gr[k * rest..(k + 1) * rest]);
            }
        }
        Ok(())
    }

    fn densify<T: Element>(&self, s: SparseRows<'_, Cpu, T>, d: usize, out: &mut [T]) {
        out.fill(T::zero());
        for r in 0..s.rows() {
            for k in s.m.indptr[s.r0 + r]..s.m.indptr[s.r0 + r + 1] {
                out[r * d + s.m.indices[k] as usize] = s.m.values[k];
            }
        }
    }
}

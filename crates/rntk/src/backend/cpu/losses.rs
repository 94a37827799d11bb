//! `Losses` on the CPU: softmax max-subtracted for stability; the fused
//! cross-entropy reads a sparse target in place, keeps each distribution's `lse` for
//! the backward (one `exp` per element there, no softmax buffer), vectorizes its max
//! and sum reductions in lanes and spreads large row blocks over the pool.

use super::par::LOSS_ELEMS;
use super::{simd, Cpu};
use crate::backend::losses::{AxisGeom, LastAxis, Losses};
use crate::backend::{Arg, Operand, Par};
use crate::tensor::{Element, PackedLayout};
use rayon::prelude::*;

/// Scratch length for the vectorized `exp` (on the stack: no allocation per row).
const CHUNK: usize = 256;

/// Lanes of the max and sum reductions: independent accumulators, so the loops
/// vectorize (one serial chain of 10000 adds per row would dominate otherwise).
const LANES: usize = 16;

/// Row `r` of a per-row or static operand of `d` elements.
fn row<T>(x: &[T], r: usize, d: usize) -> &[T] {
    if x.len() == d {
        x
    } else {
        &x[r * d..(r + 1) * d]
    }
}

/// The target of row `r` as (index within the row, value) pairs, or a dense row.
enum Target<'a, T> {
    Dense(&'a [T]),
    Sparse(&'a [u32], &'a [T]),
}

fn target<'a, T: Element>(t: &Arg<'a, Cpu, T>, r: usize, d: usize) -> Target<'a, T> {
    match *t {
        Arg::Rows(x) | Arg::Static(x) => Target::Dense(row(x, r, d)),
        Arg::Sparse(sp) => {
            let (a, b) = (sp.m.indptr[sp.r0 + r], sp.m.indptr[sp.r0 + r + 1]);
            Target::Sparse(&sp.m.indices[a..b], &sp.m.values[a..b])
        }
    }
}

/// Σ_j t_j·o_j over the part `j ∈ [lo, lo + o.len())` of a row.
fn dot_target<T: Element>(t: &Target<T>, o: &[T], lo: usize) -> T {
    match t {
        Target::Dense(t) => {
            let mut s = T::zero();
            for (a, b) in t[lo..lo + o.len()].iter().zip(o) {
                s += *a * *b;
            }
            s
        }
        Target::Sparse(idx, val) => {
            let mut s = T::zero();
            for (&c, &v) in idx.iter().zip(*val) {
                let c = c as usize;
                if (lo..lo + o.len()).contains(&c) {
                    s += v * o[c - lo];
                }
            }
            s
        }
    }
}

/// `t_c` (a sparse row sums its entries at `c`).
fn target_at<T: Element>(t: &Target<T>, c: usize) -> T {
    match t {
        Target::Dense(t) => t[c],
        Target::Sparse(idx, val) => idx
            .iter()
            .zip(*val)
            .filter(|(&i, _)| i as usize == c)
            .fold(T::zero(), |s, (_, &v)| s + v),
    }
}

/// Largest non-NaN element (−∞ for none), as the serial `if v > m { m = v }` gives.
fn max_of<T: Element>(x: &[T]) -> T {
    let mut acc = [T::neg_infinity(); LANES];
    let chunks = x.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            if c[l] > acc[l] {
                acc[l] = c[l];
            }
        }
    }
    let mut m = T::neg_infinity();
    for &v in acc.iter().chain(rest) {
        if v > m {
            m = v;
        }
    }
    m
}

/// Σ x in `LANES` partial sums.
fn sum_of<T: Element>(x: &[T]) -> T {
    let mut acc = [T::zero(); LANES];
    let chunks = x.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            acc[l] += c[l];
        }
    }
    let mut s = T::zero();
    for &v in acc.iter().chain(rest) {
        s += v;
    }
    s
}

/// `m + ln Σ exp(x − m)` with `m = max x`; all −∞ gives −∞, a NaN gives NaN (as
/// reduce_log_sum_exp).
fn log_sum_exp<T: Element>(x: &[T]) -> T {
    let m = max_of(x);
    if !m.is_finite() {
        return m;
    }
    let mut buf = [T::zero(); CHUNK];
    let mut e = [T::zero(); CHUNK];
    let mut s = T::zero();
    for ch in x.chunks(CHUNK) {
        let b = &mut buf[..ch.len()];
        for (y, &v) in b.iter_mut().zip(ch) {
            *y = v - m;
        }
        simd::exp(b, &mut e[..ch.len()]);
        s += sum_of(&e[..ch.len()]);
    }
    m + s.ln()
}

/// First maximal index (strict `>`: ties keep the first, as `hardmax`).
fn argmax<T: Element>(x: &[T]) -> usize {
    let mut best = 0;
    for (j, &v) in x.iter().enumerate() {
        if v > x[best] {
            best = j;
        }
    }
    best
}

/// Run `f(first_row, out_rows)` over blocks of rows of `out`, in parallel when `par`
/// allows and the work is large.
fn for_rows<T: Element>(
    (n, per_row_elems): (usize, usize),
    out: &mut [T],
    out_per_row: usize,
    par: Par,
    f: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    let out = &mut out[..n * out_per_row];
    if n * per_row_elems >= LOSS_ELEMS && n > 1 && par.is_parallel() {
        let rows_per = (LOSS_ELEMS / per_row_elems.max(1)).clamp(1, n.div_ceil(2));
        out.par_chunks_mut(rows_per * out_per_row)
            .enumerate()
            .for_each(|(k, o)| f(k * rows_per, o));
    } else {
        f(0, out);
    }
}

/// The cross-entropy gradient for `o` of row `r` into `d`: `dout·(softmax(o) − t)`.
fn ce_grad_row<T: Element>(
    g: LastAxis,
    (o, t, lse, dout): (&[T], &Arg<Cpu, T>, &[T], &[T]),
    r: usize,
    d: &mut [T],
) {
    let (numel, dim, outer) = (g.numel, g.dim, g.outer());
    let orow = row(o, r, numel);
    let tr = target(t, r, numel);
    let mut buf = [T::zero(); CHUNK];
    let mut e = [T::zero(); CHUNK];
    for (q, dq) in d.chunks_mut(dim).enumerate() {
        let gv = dout[r * outer + q];
        let l = lse[r * outer + q];
        let od = &orow[q * dim..(q + 1) * dim];
        for (oc, dc) in od.chunks(CHUNK).zip(dq.chunks_mut(CHUNK)) {
            let b = &mut buf[..oc.len()];
            for (y, &v) in b.iter_mut().zip(oc) {
                *y = v - l;
            }
            simd::exp(b, &mut e[..oc.len()]);
            for (y, &p) in dc.iter_mut().zip(&e[..oc.len()]) {
                *y += gv * p;
            }
        }
        match &tr {
            Target::Dense(tt) => {
                for (y, &v) in dq.iter_mut().zip(&tt[q * dim..(q + 1) * dim]) {
                    *y -= gv * v;
                }
            }
            Target::Sparse(idx, val) => {
                for (&c, &v) in idx.iter().zip(*val) {
                    let c = c as usize;
                    if (q * dim..(q + 1) * dim).contains(&c) {
                        dq[c - q * dim] -= gv * v;
                    }
                }
            }
        }
    }
}

/// Binary cross entropy of one element as CNTK's WeightedLogistic computes it:
/// plain logarithms, **without** the ε of `binary_cross_entropy`.
#[inline]
fn logistic<T: Element>(o: T, t: T) -> T {
    -(t * o.ln() + (T::one() - t) * (T::one() - o).ln())
}

#[inline]
fn logistic_do<T: Element>(o: T, t: T) -> T {
    -t / o + (T::one() - t) / (T::one() - o)
}

impl Losses for Cpu {
    fn softmax<T: Element>(
        &self,
        log: bool,
        g: AxisGeom,
        x: Operand<'_, Cpu, T>,
        out: &mut [T],
        n: usize,
    ) {
        let AxisGeom { outer, dim, inner } = g;
        let nx = g.numel();
        for r in 0..n {
            let xr = if x.per_row {
                &x.data[r * nx..(r + 1) * nx]
            } else {
                &x.data[..nx]
            };
            let orow = &mut out[r * nx..(r + 1) * nx];
            for o in 0..outer {
                for i in 0..inner {
                    let at = |j: usize| (o * dim + j) * inner + i;
                    let mut m = T::neg_infinity();
                    for j in 0..dim {
                        m = m.max(xr[at(j)]);
                    }
                    let mut s = T::zero();
                    for j in 0..dim {
                        let e = (xr[at(j)] - m).exp();
                        orow[at(j)] = e;
                        s += e;
                    }
                    if log {
                        let ls = m + s.ln();
                        for j in 0..dim {
                            orow[at(j)] = xr[at(j)] - ls;
                        }
                    } else {
                        let inv = T::one() / s;
                        for j in 0..dim {
                            orow[at(j)] *= inv;
                        }
                    }
                }
            }
        }
    }

    /// softmax: `dx = y ⊙ (g − Σ g·y)`; log_softmax: `dx = g − softmax ⊙ Σ g`.
    fn softmax_backward<T: Element>(
        &self,
        log: bool,
        g: AxisGeom,
        out: &[T],
        dout: &[T],
        din: &mut [T],
        n: usize,
        per_row: bool,
    ) {
        let AxisGeom { outer, dim, inner } = g;
        let nx = g.numel();
        for r in 0..n {
            let y = &out[r * nx..(r + 1) * nx];
            let gr = &dout[r * nx..(r + 1) * nx];
            let dr = if per_row {
                &mut din[r * nx..(r + 1) * nx]
            } else {
                &mut din[..nx]
            };
            for o in 0..outer {
                for i in 0..inner {
                    let at = |j: usize| (o * dim + j) * inner + i;
                    let mut s = T::zero();
                    if log {
                        for j in 0..dim {
                            s += gr[at(j)];
                        }
                        for j in 0..dim {
                            dr[at(j)] += gr[at(j)] - y[at(j)].exp() * s;
                        }
                    } else {
                        for j in 0..dim {
                            s += gr[at(j)] * y[at(j)];
                        }
                        for j in 0..dim {
                            dr[at(j)] += y[at(j)] * (gr[at(j)] - s);
                        }
                    }
                }
            }
        }
    }

    fn sequence_softmax<T: Element>(&self, p: &PackedLayout, d: usize, x: &[T], out: &mut [T]) {
        for i in 0..p.num_sequences() {
            let len = p.lengths()[i];
            for f in 0..d {
                let at = |t: usize| p.row(i, t) * d + f;
                let m = (0..len)
                    .map(|t| x[at(t)])
                    .fold(T::neg_infinity(), |a, b| a.max(b));
                let mut s = T::zero();
                for t in 0..len {
                    let e = (x[at(t)] - m).exp();
                    out[at(t)] = e;
                    s += e;
                }
                for t in 0..len {
                    out[at(t)] = out[at(t)] / s;
                }
            }
        }
    }

    fn sequence_softmax_backward<T: Element>(
        &self,
        p: &PackedLayout,
        d: usize,
        out: &[T],
        dout: &[T],
        din: &mut [T],
    ) {
        for s in 0..p.num_sequences() {
            let len = p.lengths()[s];
            for f in 0..d {
                let at = |t: usize| p.row(s, t) * d + f;
                let dot: T = (0..len).map(|t| out[at(t)] * dout[at(t)]).sum();
                for t in 0..len {
                    din[at(t)] += out[at(t)] * (dout[at(t)] - dot);
                }
            }
        }
    }

    fn hardmax<T: Element>(&self, x: Operand<'_, Cpu, T>, d: usize, out: &mut [T], n: usize) {
        for (r, orow) in out.chunks_mut(d.max(1)).take(n).enumerate() {
            // A static operand (one sample) is repeated on every row.
            let xr = if x.per_row {
                &x.data[r * d..(r + 1) * d]
            } else {
                &x.data[..d]
            };
            orow.iter_mut().for_each(|v| *v = T::zero());
            if d > 0 {
                orow[argmax(xr)] = T::one();
            }
        }
    }

    fn cross_entropy<T: Element>(
        &self,
        g: LastAxis,
        o: Operand<'_, Cpu, T>,
        t: Arg<'_, Cpu, T>,
        lse: &mut [T],
        out: &mut [T],
        n: usize,
        par: Par,
    ) {
        let (numel, dim, outer) = (g.numel, g.dim, g.outer());
        let o = o.data;
        // The per-distribution lse for the backward, then the loss.
        for_rows((n, numel), lse, outer, par, |r0, blk| {
            for (k, y) in blk.iter_mut().enumerate() {
                let (r, q) = (r0 + k / outer, k % outer);
                *y = log_sum_exp(&row(o, r, numel)[q * dim..(q + 1) * dim]);
            }
        });
        let lse = &*lse;
        for_rows((n, numel), out, outer, par, |r0, blk| {
            for (k, y) in blk.iter_mut().enumerate() {
                let (r, q) = (r0 + k / outer, k % outer);
                let orow = &row(o, r, numel)[q * dim..(q + 1) * dim];
                *y = lse[r * outer + q] - dot_target(&target(&t, r, numel), orow, q * dim);
            }
        });
    }

    fn cross_entropy_backward<T: Element>(
        &self,
        g: LastAxis,
        i: usize,
        o: Operand<'_, Cpu, T>,
        t: Arg<'_, Cpu, T>,
        lse: &[T],
        dout: &[T],
        din: &mut [T],
        n: usize,
        par: Par,
    ) {
        let (numel, dim, outer) = (g.numel, g.dim, g.outer());
        let static_grad = if i == 0 { !o.per_row } else { t.is_static() } && n > 1;
        if i == 1 {
            // d/dt = −dout·o
            for r in 0..n {
                let orow = row(o.data, r, numel);
                let d = if static_grad {
                    &mut din[..numel]
                } else {
                    &mut din[r * numel..(r + 1) * numel]
                };
                for (q, dq) in d.chunks_mut(dim).enumerate() {
                    let gv = dout[r * outer + q];
                    for (y, &v) in dq.iter_mut().zip(&orow[q * dim..(q + 1) * dim]) {
                        *y -= gv * v;
                    }
                }
            }
            return;
        }
        let parts = (o.data, &t, lse, dout);
        if static_grad {
            // One static o shared by every row (unusual): sum the rows' gradients.
            for r in 0..n {
                ce_grad_row(g, parts, r, &mut din[..numel]);
            }
            return;
        }
        let din = &mut din[..n * numel];
        if n * numel >= LOSS_ELEMS && n > 1 && par.is_parallel() {
            let rows_per = (LOSS_ELEMS / numel.max(1)).clamp(1, n.div_ceil(2));
            din.par_chunks_mut(rows_per * numel)
                .enumerate()
                .for_each(|(k, blk)| {
                    for (j, d) in blk.chunks_mut(numel).enumerate() {
                        ce_grad_row(g, parts, k * rows_per + j, d);
                    }
                });
        } else {
            for (r, d) in din.chunks_mut(numel).enumerate() {
                ce_grad_row(g, parts, r, d);
            }
        }
    }

    fn classification_error<T: Element>(
        &self,
        g: LastAxis,
        o: Operand<'_, Cpu, T>,
        t: Arg<'_, Cpu, T>,
        out: &mut [T],
        n: usize,
        par: Par,
    ) {
        let (numel, dim, outer) = (g.numel, g.dim, g.outer());
        let o = o.data;
        for_rows((n, numel), out, outer, par, |r0, blk| {
            for (k, y) in blk.iter_mut().enumerate() {
                let (r, q) = (r0 + k / outer, k % outer);
                let orow = &row(o, r, numel)[q * dim..(q + 1) * dim];
                let best = argmax(orow);
                let hit = target_at(&target(&t, r, numel), q * dim + best);
                *y = T::one() - hit;
            }
        });
    }

    fn classification_error_backward<T: Element>(
        &self,
        g: LastAxis,
        o: Operand<'_, Cpu, T>,
        dout: &[T],
        din: &mut [T],
        n: usize,
        per_row: bool,
    ) {
        let (numel, dim, outer) = (g.numel, g.dim, g.outer());
        for r in 0..n {
            let orow = row(o.data, r, numel);
            let d = if per_row {
                &mut din[r * numel..(r + 1) * numel]
            } else {
                &mut din[..numel]
            };
            for q in 0..outer {
                let best = argmax(&orow[q * dim..(q + 1) * dim]);
                d[q * dim + best] -= dout[r * outer + q];
            }
        }
    }

    fn weighted_logistic<T: Element>(
        &self,
        o: &[T],
        t: &[T],
        w: Operand<'_, Cpu, T>,
        n: usize,
        out: &mut [T],
    ) {
        let (mut swl, mut sw) = (T::zero(), T::zero());
        for i in 0..n {
            let wi = if w.per_row { w.data[i] } else { w.data[0] };
            swl += wi * logistic(o[i], t[i]);
            sw += wi;
        }
        out[0] = T::from_f64(n as f64) * swl / sw;
    }

    fn weighted_logistic_backward<T: Element>(
        &self,
        o: &[T],
        t: &[T],
        w: Operand<'_, Cpu, T>,
        n: usize,
        dout: &[T],
        din: &mut [T],
    ) {
        for i in 0..n {
            let wi = if w.per_row { w.data[i] } else { w.data[0] };
            din[i] += dout[0] * wi * logistic_do(o[i], t[i]);
        }
    }

    fn top_n_error<T: Element>(
        &self,
        o: &[T],
        t: &[T],
        (n, d): (usize, usize),
        top_n: usize,
        out: &mut [T],
    ) {
        let mut misses = 0usize;
        for r in 0..n {
            let (or, tr) = (&o[r * d..(r + 1) * d], &t[r * d..(r + 1) * d]);
            let label = argmax(tr);
            let v = or[label];
            // Position of the label in a stable descending sort of the outputs: larger
            // values and equal values at smaller indices come first (observed: with ties
            // at the boundary the earlier indices are the ones in the top N).
            let ahead = or
                .iter()
                .enumerate()
                .filter(|&(i, &x)| x > v || (x == v && i < label))
                .count();
            if ahead >= top_n {
                misses += 1;
            }
        }
        out[0] = T::from_f64(misses as f64);
    }
}

//! Fused `cross_entropy_with_softmax(o, t)` and top-1 `classification_error(o, t)` along
//! the last static axis: one pass per row instead of the composed reductions, the
//! target read in place when it is sparse (a one-hot label row is never densified),
//! rows spread over the thread pool when the block is large.
//!
//! Per row `r` (viewed as `outer` distributions of length `dim`, contiguous):
//! * CE: `lse(o) − Σ t·o` per distribution; gradient `dout·(softmax(o) − t)` for `o`,
//!   `−dout·o` for a dense `t`. The forward keeps each distribution's `lse` in the
//!   node state, so the backward needs one `exp` per element and no softmax buffer.
//! * error: `1 − t[argmax o]` (first maximal index, as `hardmax`); gradient
//!   `−dout·hardmax(o)` for a dense `t`, none for `o`.

use super::{expect_arity, join_axes, Arg, Inferred, NodeState, RowCtx};
use crate::backend::cpu;
use crate::error::{Error, Result};
use crate::graph::VarInfo;
use crate::tensor::{Element, Shape};
use rayon::prelude::*;

/// Elements of a row block below which the pool's threads are not worth waking.
const PAR_ELEMS: usize = 1 << 16;

/// Scratch length for the vectorized `exp` (on the stack: no allocation per row).
const CHUNK: usize = 256;

pub(crate) fn infer(op: &str, name: &str, infos: &[VarInfo]) -> Result<Inferred> {
    expect_arity(op, name, infos, 2)?;
    let (o, t) = (&infos[0], &infos[1]);
    if o.is_sparse {
        return Err(Error::shape(
            op,
            name,
            "the output operand cannot be sparse",
        ));
    }
    if o.shape != t.shape || o.shape.rank() == 0 {
        return Err(Error::shape(
            op,
            name,
            format!(
                "output shape {} and target shape {} must be equal and of rank ≥ 1",
                o.shape, t.shape
            ),
        ));
    }
    let axes = join_axes(op, name, &[o, t])?;
    let mut dims = o.shape.dims().to_vec();
    *dims.last_mut().expect("rank ≥ 1") = 1;
    Ok(Inferred::one(super::dense_info(Shape::new(dims), o, axes)))
}

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

fn target<'a, T: Element>(t: &Arg<'a, T>, r: usize, d: usize) -> Target<'a, T> {
    match *t {
        Arg::Rows(x) | Arg::Static(x) => Target::Dense(row(x, r, d)),
        Arg::Sparse(sp) => {
            let (a, b) = (sp.indptr[r], sp.indptr[r + 1]);
            Target::Sparse(&sp.indices[a..b], &sp.values[a..b])
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

/// Lanes of the max and sum reductions: independent accumulators, so the loops
/// vectorize (one serial chain of 10000 adds per row would dominate otherwise).
const LANES: usize = 16;

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
        cpu::exp(b, &mut e[..ch.len()]);
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

/// Run `f(first_row, out_rows)` over blocks of rows of `out`, in parallel when the
/// caller is already inside a pool and the work is large.
fn for_rows<T: Element>(
    n: usize,
    per_row_elems: usize,
    out: &mut [T],
    out_per_row: usize,
    f: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    let out = &mut out[..n * out_per_row];
    if n * per_row_elems >= PAR_ELEMS && n > 1 && rayon::current_thread_index().is_some() {
        let rows_per = (PAR_ELEMS / per_row_elems.max(1)).clamp(1, n.div_ceil(2));
        out.par_chunks_mut(rows_per * out_per_row)
            .enumerate()
            .for_each(|(k, o)| f(k * rows_per, o));
    } else {
        f(0, out);
    }
}

/// A sample's size, the softmax axis' length, the distributions per sample, and the
/// dense output operand.
fn operands<'a, T>(args: &[Arg<'a, T>], shape: &Shape) -> Result<(usize, usize, usize, &'a [T])> {
    let numel = shape.numel();
    let dim = *shape.dims().last().unwrap_or(&1);
    let o = args[0]
        .dense()
        .ok_or_else(|| Error::Unsupported("a sparse output operand".into()))?;
    Ok((numel, dim, numel / dim.max(1), o))
}

/// Forward of both ops over `ctx.n` rows. `shape` is one sample's shape.
pub(crate) fn forward<T: Element>(
    error: bool,
    args: &[Arg<T>],
    shape: &Shape,
    out: &mut [T],
    ctx: RowCtx,
    st: &mut NodeState<T>,
) -> Result<()> {
    let (numel, dim, outer, o) = operands(args, shape)?;
    let t = args[1];
    if error {
        for_rows(ctx.n, numel, out, outer, |r0, blk| {
            for (k, y) in blk.iter_mut().enumerate() {
                let (r, q) = (r0 + k / outer, k % outer);
                let orow = &row(o, r, numel)[q * dim..(q + 1) * dim];
                let best = argmax(orow);
                let hit = target_at(&target(&t, r, numel), q * dim + best);
                *y = T::one() - hit;
            }
        });
        return Ok(());
    }
    let rows_end = (ctx.row0 + ctx.n) * outer;
    if st.aux.len() < rows_end {
        st.aux.resize(rows_end, T::zero());
    }
    let lse_all = &mut st.aux[ctx.row0 * outer..rows_end];
    // The per-distribution lse goes to the node state (for the backward), the loss to `out`.
    for_rows(ctx.n, numel, lse_all, outer, |r0, blk| {
        for (k, y) in blk.iter_mut().enumerate() {
            let (r, q) = (r0 + k / outer, k % outer);
            *y = log_sum_exp(&row(o, r, numel)[q * dim..(q + 1) * dim]);
        }
    });
    let lse_all = &*lse_all;
    for_rows(ctx.n, numel, out, outer, |r0, blk| {
        for (k, y) in blk.iter_mut().enumerate() {
            let (r, q) = (r0 + k / outer, k % outer);
            let orow = &row(o, r, numel)[q * dim..(q + 1) * dim];
            *y = lse_all[r * outer + q] - dot_target(&target(&t, r, numel), orow, q * dim);
        }
    });
    Ok(())
}

/// Accumulate the gradient for operand `i` (0: o, 1: a dense t) into `din`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward<T: Element>(
    i: usize,
    args: &[Arg<T>],
    shape: &Shape,
    dout: &[T],
    din: &mut [T],
    ctx: RowCtx,
    st: &NodeState<T>,
) -> Result<()> {
    let (numel, dim, outer, o) = operands(args, shape)?;
    let t = args[1];
    let static_grad = args[i].is_static() && ctx.n > 1;
    if i == 1 {
        if matches!(t, Arg::Sparse(_)) {
            return Err(Error::Unsupported(
                "gradient with respect to a sparse target".into(),
            ));
        }
        // d/dt = −dout·o
        for r in 0..ctx.n {
            let orow = row(o, r, numel);
            let d = if static_grad {
                &mut din[..numel]
            } else {
                &mut din[r * numel..(r + 1) * numel]
            };
            for (q, dq) in d.chunks_mut(dim).enumerate() {
                let g = dout[r * outer + q];
                for (y, &v) in dq.iter_mut().zip(&orow[q * dim..(q + 1) * dim]) {
                    *y -= g * v;
                }
            }
        }
        return Ok(());
    }
    let lse = st
        .aux
        .get(ctx.row0 * outer..(ctx.row0 + ctx.n) * outer)
        .ok_or_else(|| Error::Unsupported("cross-entropy backward before its forward".into()))?;
    let grad_row = |r: usize, d: &mut [T]| {
        let orow = row(o, r, numel);
        let tr = target(&t, r, numel);
        let mut buf = [T::zero(); CHUNK];
        let mut e = [T::zero(); CHUNK];
        for (q, dq) in d.chunks_mut(dim).enumerate() {
            let (g, l) = (dout[r * outer + q], lse[r * outer + q]);
            let oq = &orow[q * dim..(q + 1) * dim];
            for (dc, oc) in dq.chunks_mut(CHUNK).zip(oq.chunks(CHUNK)) {
                let b = &mut buf[..oc.len()];
                for (y, &v) in b.iter_mut().zip(oc) {
                    *y = v - l;
                }
                cpu::exp(b, &mut e[..oc.len()]);
                for (y, &p) in dc.iter_mut().zip(&e[..oc.len()]) {
                    *y += g * p;
                }
            }
            match &tr {
                Target::Dense(tt) => {
                    for (y, &v) in dq.iter_mut().zip(&tt[q * dim..(q + 1) * dim]) {
                        *y -= g * v;
                    }
                }
                Target::Sparse(idx, val) => {
                    for (&c, &v) in idx.iter().zip(*val) {
                        let c = c as usize;
                        if (q * dim..(q + 1) * dim).contains(&c) {
                            dq[c - q * dim] -= g * v;
                        }
                    }
                }
            }
        }
    };
    if static_grad {
        // One static o shared by every row (unusual): sum the rows' gradients.
        for r in 0..ctx.n {
            grad_row(r, &mut din[..numel]);
        }
        return Ok(());
    }
    let din = &mut din[..ctx.n * numel];
    if ctx.n * numel >= PAR_ELEMS && ctx.n > 1 && rayon::current_thread_index().is_some() {
        let rows_per = (PAR_ELEMS / numel.max(1)).clamp(1, ctx.n.div_ceil(2));
        din.par_chunks_mut(rows_per * numel)
            .enumerate()
            .for_each(|(k, blk)| {
                for (j, d) in blk.chunks_mut(numel).enumerate() {
                    grad_row(k * rows_per + j, d);
                }
            });
    } else {
        for (r, d) in din.chunks_mut(numel).enumerate() {
            grad_row(r, d);
        }
    }
    Ok(())
}

/// Gradient of the top-1 error for a dense target: `−dout` at each distribution's argmax.
pub(crate) fn backward_error<T: Element>(
    i: usize,
    args: &[Arg<T>],
    shape: &Shape,
    dout: &[T],
    din: &mut [T],
    ctx: RowCtx,
) -> Result<()> {
    if i != 1 || matches!(args[1], Arg::Sparse(_)) {
        return Err(Error::Unsupported(
            "classification_error: a gradient other than for a dense target".into(),
        ));
    }
    let (numel, dim, outer, o) = operands(args, shape)?;
    let static_t = args[1].is_static();
    for r in 0..ctx.n {
        let orow = row(o, r, numel);
        let d = if static_t {
            &mut din[..numel]
        } else {
            &mut din[r * numel..(r + 1) * numel]
        };
        for q in 0..outer {
            let best = argmax(&orow[q * dim..(q + 1) * dim]);
            d[q * dim + best] -= dout[r * outer + q];
        }
    }
    Ok(())
}

//! The fused LSTM cell: all four gates of one step in one pass (CNTK's gate order
//! [i, g, f, o], activation tanh). `lstm_cell(pre, c_prev) = [h | c]` with
//! `pre = b + x·W + h_prev·H`:
//!
//! ```text
//! i = σ(pre[0:N])  g = tanh(pre[N:2N])  f = σ(pre[2N:3N])  o = σ(pre[3N:4N])
//! c = f ⊙ c_prev + i ⊙ g        h = tanh(c) ⊙ o
//! ```
//!
//! It replaces 12 primitive nodes per step (4 slices, 3 sigmoids, 2 tanh, 3 products,
//! a sum) with one, and computes exactly what they compute, in the same order, so the
//! forward values are bit-identical to the unfused graph. Every forward keeps the
//! activated gates and tanh(c) (per absolute row) for the backward.

use super::{dense_info, expect_arity, join_axes, Arg, Inferred, NodeState, RowCtx};
use crate::backend::cpu;
use crate::error::{Error, Result};
use crate::graph::VarInfo;
use crate::tensor::{Element, Shape};

pub(crate) fn infer(op: &str, name: &str, infos: &[VarInfo]) -> Result<Inferred> {
    expect_arity(op, name, infos, 2)?;
    let (pre, c) = (&infos[0], &infos[1]);
    let n = c.shape.numel();
    if c.shape.rank() != 1 || pre.shape.dims() != [4 * n] {
        return Err(Error::shape(
            op,
            name,
            format!(
                "pre-activations {} must be 4 × the cell state {} (both vectors)",
                pre.shape, c.shape
            ),
        ));
    }
    let axes = join_axes(op, name, &[pre, c])?;
    Ok(Inferred::one(dense_info(Shape::from([2 * n]), pre, axes)))
}

fn dense<'a, T>(a: &Arg<'a, T>) -> Result<&'a [T]> {
    a.dense()
        .ok_or_else(|| Error::Unsupported("LSTM cell of a sparse operand".into()))
}

/// Per row the state keeps `[i, g, f, o, tanh(c)]`, 5N values.
pub(crate) const KEPT: usize = 5;

/// Activated gates of `rows` rows into `kept` (the first 4N of each 5N block).
pub(crate) fn activate<T: Element>(pre: &[T], kept: &mut [T], n: usize, rows: usize) {
    for r in 0..rows {
        let p = &pre[r * 4 * n..(r + 1) * 4 * n];
        let g = &mut kept[r * KEPT * n..(r * KEPT + 4) * n];
        cpu::sigmoid(&p[..n], &mut g[..n]);
        cpu::tanh(&p[n..2 * n], &mut g[n..2 * n]);
        cpu::sigmoid(&p[2 * n..], &mut g[2 * n..]);
    }
}

pub(crate) fn forward<T: Element>(
    args: &[Arg<T>],
    shapes: &[Shape],
    out: &mut [T],
    ctx: RowCtx,
    st: &mut NodeState<T>,
) -> Result<()> {
    let (pre, cp) = (dense(&args[0])?, dense(&args[1])?);
    let n = shapes[1].numel();
    let rows = ctx.n;
    // Gates and tanh(c) live in the node's state (sized for every row of the
    // minibatch, indexed by absolute row) so the backward need not recompute them.
    let need = (ctx.row0 + rows) * KEPT * n;
    if st.aux.len() < need {
        st.aux.resize(need, T::zero());
    }
    let kept = &mut st.aux[ctx.row0 * KEPT * n..need];
    activate(pre, kept, n, rows);
    let c_static = args[1].is_static();
    for r in 0..rows {
        let cprev = if c_static {
            cp
        } else {
            &cp[r * n..(r + 1) * n]
        };
        row_forward(
            &mut kept[r * KEPT * n..(r + 1) * KEPT * n],
            cprev,
            &mut out[r * 2 * n..(r + 1) * 2 * n],
            n,
        );
    }
    Ok(())
}

/// One row after `activate`: `c = f ⊙ c_prev + i ⊙ g`, `h = tanh(c) ⊙ o` into
/// `out = [h | c]`, keeping tanh(c) in the row's last N of `kept`.
#[inline]
pub(crate) fn row_forward<T: Element>(k: &mut [T], cprev: &[T], out: &mut [T], n: usize) {
    let (h, c) = out.split_at_mut(n);
    for j in 0..n {
        // f ⊙ c_prev + i ⊙ g, the unfused graph's order
        c[j] = k[2 * n + j] * cprev[j] + k[j] * k[n + j];
    }
    let (gates, tc) = k.split_at_mut(4 * n);
    cpu::tanh(c, &mut tc[..n]);
    for j in 0..n {
        h[j] = tc[j] * gates[3 * n + j];
    }
}

/// One row's vector-Jacobian product: adds `∂/∂pre` into `dpre` (4N) and
/// `∂/∂c_prev` into `dcprev` (N), from the gradients `dh`, `dc_out` of `[h | c]`.
#[inline]
pub(crate) fn row_backward<T: Element>(
    g: &[T],
    cprev: &[T],
    dh: &[T],
    dc_out: &[T],
    mut dpre: Option<&mut [T]>,
    mut dcprev: Option<&mut [T]>,
    n: usize,
) {
    let one = T::one();
    for j in 0..n {
        let (gi, gg, gf, go, tc) = (g[j], g[n + j], g[2 * n + j], g[3 * n + j], g[4 * n + j]);
        let dc = dc_out[j] + dh[j] * go * (one - tc * tc);
        if let Some(d) = dpre.as_deref_mut() {
            d[j] += dc * gg * gi * (one - gi);
            d[n + j] += dc * gi * (one - gg * gg);
            d[2 * n + j] += dc * cprev[j] * gf * (one - gf);
            d[3 * n + j] += dh[j] * tc * go * (one - go);
        }
        if let Some(d) = dcprev.as_deref_mut() {
            d[j] += dc * gf;
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn backward<T: Element>(
    i: usize,
    args: &[Arg<T>],
    shapes: &[Shape],
    dout: &[T],
    din: &mut [T],
    ctx: RowCtx,
    st: &mut NodeState<T>,
) -> Result<()> {
    let cp = dense(&args[1])?;
    let n = shapes[1].numel();
    let rows = ctx.n;
    // Every forward (training or not) keeps the gates of every row it computed.
    let need = (ctx.row0 + rows) * KEPT * n;
    if st.aux.len() < need {
        return Err(Error::Unsupported(
            "LSTM cell backward without its forward".into(),
        ));
    }
    let kept = &st.aux[ctx.row0 * KEPT * n..need];
    let c_static = args[1].is_static();
    for r in 0..rows {
        let g = &kept[r * KEPT * n..(r + 1) * KEPT * n];
        let dh = &dout[r * 2 * n..r * 2 * n + n];
        let dc_out = &dout[r * 2 * n + n..(r + 1) * 2 * n];
        let cprev = if c_static {
            cp
        } else {
            &cp[r * n..(r + 1) * n]
        };
        if i == 0 {
            let d = &mut din[r * 4 * n..(r + 1) * 4 * n];
            row_backward(g, cprev, dh, dc_out, Some(d), None, n);
        } else if c_static {
            row_backward(g, cprev, dh, dc_out, None, Some(&mut din[..n]), n);
        } else {
            let d = &mut din[r * n..(r + 1) * n];
            row_backward(g, cprev, dh, dc_out, None, Some(d), n);
        }
    }
    Ok(())
}

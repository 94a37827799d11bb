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
    let stride = if args[1].is_static() { 0 } else { n };
    rows_forward(pre, cp, stride, kept, out, n, rows);
    Ok(())
}

/// The cell over `rows` rows: `pre` (rows × 4N) and `c_prev` (row stride
/// `cprev_stride`, 0 for one shared row) to `out = [h | c]` per row, keeping
/// `[i, g, f, o, tanh(c)]` per row in `kept`. One vectorized pass where the CPU has
/// one (the same bits), else per row.
pub(crate) fn rows_forward<T: Element>(
    pre: &[T],
    cprev: &[T],
    cprev_stride: usize,
    kept: &mut [T],
    out: &mut [T],
    n: usize,
    rows: usize,
) {
    if cpu::lstm_forward_rows(pre, cprev, cprev_stride, kept, out, (n, rows)) {
        return;
    }
    activate(pre, kept, n, rows);
    for r in 0..rows {
        row_forward(
            &mut kept[r * KEPT * n..(r + 1) * KEPT * n],
            &cprev[r * cprev_stride..r * cprev_stride + n],
            &mut out[r * 2 * n..(r + 1) * 2 * n],
            n,
        );
    }
}

/// The cell's vector-Jacobian product over `rows` rows (strides as in
/// `cpu::LstmStrides`, 0 for one shared row): adds into `dpre` (rows × 4N) and
/// `dcprev`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn rows_backward<T: Element>(
    kept: &[T],
    cprev: &[T],
    dh: &[T],
    dc: &[T],
    mut dpre: Option<&mut [T]>,
    mut dcprev: Option<&mut [T]>,
    s: &cpu::LstmStrides,
    n: usize,
    rows: usize,
) {
    if cpu::lstm_backward_rows(
        kept,
        cprev,
        dh,
        dc,
        dpre.as_deref_mut(),
        dcprev.as_deref_mut(),
        s,
        (n, rows),
    ) {
        return;
    }
    for r in 0..rows {
        row_backward(
            &kept[r * KEPT * n..(r + 1) * KEPT * n],
            &cprev[r * s.cprev..r * s.cprev + n],
            &dh[r * s.dh..r * s.dh + n],
            &dc[r * s.dc..r * s.dc + n],
            dpre.as_deref_mut()
                .map(|d| &mut d[r * 4 * n..(r + 1) * 4 * n]),
            dcprev
                .as_deref_mut()
                .map(|d| &mut d[r * s.dcprev..r * s.dcprev + n]),
            n,
        );
    }
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
    let strides = cpu::LstmStrides {
        cprev: if c_static { 0 } else { n },
        dh: 2 * n,
        dc: 2 * n,
        dcprev: if c_static { 0 } else { n },
    };
    let (dh, dc) = (dout, &dout[n.min(dout.len())..]);
    if i == 0 {
        rows_backward(kept, cp, dh, dc, Some(din), None, &strides, n, rows);
    } else {
        rows_backward(kept, cp, dh, dc, None, Some(din), &strides, n, rows);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals(len: usize, key: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (((i * 37 + key * 11) % 29) as f32 - 14.0) * 0.23)
            .collect()
    }

    /// The vectorized pass (where this CPU has one) gives the portable loop's bits,
    /// for widths around the vector length and shared or per-row c_prev.
    #[test]
    fn vectorized_rows_equal_the_portable_loop() {
        for n in [1, 3, 15, 16, 17, 33] {
            for shared in [false, true] {
                let rows = 5;
                let stride = if shared { 0 } else { n };
                let pre = vals(rows * 4 * n, 1);
                let cp = vals(rows * n, 2);
                let (mut k1, mut o1) = (vec![0.0; rows * 5 * n], vec![0.0; rows * 2 * n]);
                let (mut k2, mut o2) = (k1.clone(), o1.clone());
                rows_forward(&pre, &cp, stride, &mut k1, &mut o1, n, rows);
                activate(&pre, &mut k2, n, rows);
                for r in 0..rows {
                    row_forward(
                        &mut k2[r * 5 * n..(r + 1) * 5 * n],
                        &cp[r * stride..r * stride + n],
                        &mut o2[r * 2 * n..(r + 1) * 2 * n],
                        n,
                    );
                }
                assert_eq!((&k1, &o1), (&k2, &o2), "forward n={n} shared={shared}");
                let (dh, dc) = (vals(rows * n, 3), vals(rows * n, 4));
                let s = cpu::LstmStrides {
                    cprev: stride,
                    dh: n,
                    dc: n,
                    dcprev: stride,
                };
                let (mut dp1, mut dc1) = (vals(rows * 4 * n, 5), vals(rows * n, 6));
                let (mut dp2, mut dc2) = (dp1.clone(), dc1.clone());
                rows_backward(
                    &k1,
                    &cp,
                    &dh,
                    &dc,
                    Some(&mut dp1),
                    Some(&mut dc1),
                    &s,
                    n,
                    rows,
                );
                for r in 0..rows {
                    row_backward(
                        &k1[r * 5 * n..(r + 1) * 5 * n],
                        &cp[r * stride..r * stride + n],
                        &dh[r * n..(r + 1) * n],
                        &dc[r * n..(r + 1) * n],
                        Some(&mut dp2[r * 4 * n..(r + 1) * 4 * n]),
                        Some(&mut dc2[r * stride..r * stride + n]),
                        n,
                    );
                }
                assert_eq!((&dp1, &dc1), (&dp2, &dc2), "backward n={n} shared={shared}");
            }
        }
    }
}

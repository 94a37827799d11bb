//! The fused LSTM scan: a whole `Recurrence(LSTM)` over packed sequences as one op,
//! `lstm_scan(pre_x, H, h0, c0) = [h | c]` per step, with `pre_x = b + x·W` computed
//! for all steps beforehand (one GEMM) and, per step,
//!
//! ```text
//! pre = pre_x[t] + h_prev·H      [h | c] = lstm_cell(pre, c_prev)
//! ```
//!
//! where `h_prev, c_prev` are the previous step's outputs (the next step's when going
//! backwards) or `h0, c0` where a sequence starts. It runs the same kernels in the same
//! order as the step-by-step loop the compiler would build from past_value, so its
//! values and gradients are bit-identical to it, without the per-node, per-step
//! bookkeeping of that loop. The backward runs BPTT once per backward pass, keeps
//! `∂/∂pre` of every row, and hands each operand its part; `∂/∂H` is one product over
//! all rows, as the loop's deferred weight gradient is. The kernels are
//! `backend::Recurrent::lstm_scan{,_backward}`; this file keeps the shape rule and
//! hands each operand its part of the gradient.

use super::{expect_arity, Inferred, NodeState, VarInfo, WholeArg};
use crate::backend::recurrent::ScanGeom;
use crate::backend::{Backend, MatMut, MatRef, Par};
use crate::error::{Error, Result};
use crate::tensor::{DynamicAxes, Element, Shape};

pub(crate) fn infer(op: &str, name: &str, infos: &[VarInfo]) -> Result<Inferred> {
    expect_arity(op, name, infos, 4)?;
    let (pre, h, h0, c0) = (&infos[0], &infos[1], &infos[2], &infos[3]);
    if !pre.axes.has_sequence() {
        return Err(Error::axes(
            op,
            name,
            format!(
                "the pre-activations must have a sequence axis, got {}",
                pre.axes.notation()
            ),
        ));
    }
    let d = h.shape.dims();
    if h.shape.rank() != 2 || pre.shape.dims() != [d[1]] || d[1] != 4 * d[0] {
        return Err(Error::shape(
            op,
            name,
            format!(
                "pre-activations {} and recurrent weights {} must be (4N,) and (N, 4N)",
                pre.shape, h.shape
            ),
        ));
    }
    let n = d[0];
    for (what, v) in [("H", h), ("h0", h0), ("c0", c0)] {
        if !matches!(v.axes, DynamicAxes::None) || v.is_sparse {
            return Err(Error::axes(
                op,
                name,
                format!(
                    "{what} must be a dense static value, got dynamic axes {}",
                    v.axes.notation()
                ),
            ));
        }
    }
    for (what, v) in [("h0", h0), ("c0", c0)] {
        if v.shape.numel() != 1 && v.shape.dims() != [n] {
            return Err(Error::shape(
                op,
                name,
                format!("{what} of shape {} must be a scalar or [{n}]", v.shape),
            ));
        }
    }
    if pre.is_sparse {
        return Err(Error::Unsupported(format!(
            "{op} '{name}' of a sparse operand"
        )));
    }
    let mut out = pre.clone();
    out.shape = Shape::from([2 * n]);
    out.needs_gradient = false;
    Ok(Inferred::one(out))
}

fn dense<'a, B: Backend, T: Element>(a: &WholeArg<'a, B, T>) -> Result<B::Ref<'a, T>> {
    a.data
        .dense()
        .map(|o| o.data)
        .ok_or_else(|| Error::Unsupported("LSTM scan of a sparse operand".into()))
}

fn geom<'a, B: Backend, T: Element>(
    reverse: bool,
    args: &[WholeArg<'a, B, T>],
) -> Result<ScanGeom<'a>> {
    let layout = args[0].layout.packed().map(|p| p.as_ref()).ok_or_else(|| {
        Error::Unsupported(format!(
            "LSTM scan needs sequences, got {}",
            args[0].layout.describe()
        ))
    })?;
    Ok(ScanGeom {
        layout,
        n: args[1].shape.dims()[0],
        reverse,
    })
}

pub(crate) fn forward<B: Backend, T: Element>(
    b: &B,
    reverse: bool,
    args: &[WholeArg<B, T>],
    out: B::Mut<'_, T>,
    par: Par,
    st: &mut NodeState<B, T>,
) -> Result<()> {
    let g = geom(reverse, args)?;
    let ins = [
        dense(&args[0])?,
        dense(&args[1])?,
        dense(&args[2])?,
        dense(&args[3])?,
    ];
    st.grad_ready = false;
    b.lstm_scan(&g, ins, out, &mut st.aux, &mut st.work, par);
    Ok(())
}

/// The gradient of operand `i`: BPTT runs once per backward pass (the first operand
/// asked for), then each operand takes its part.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward<B: Backend, T: Element>(
    b: &B,
    reverse: bool,
    i: usize,
    args: &[WholeArg<B, T>],
    dout: B::Ref<'_, T>,
    din: B::Mut<'_, T>,
    par: Par,
    st: &mut NodeState<B, T>,
) -> Result<()> {
    let g = geom(reverse, args)?;
    let h = dense(&args[1])?;
    let nh0 = B::ref_len(dense(&args[2])?);
    if !st.grad_ready {
        if B::len(&st.aux) < g.saved_len() {
            return Err(Error::Unsupported(
                "LSTM scan backward without its forward".into(),
            ));
        }
        let nc0 = B::ref_len(dense(&args[3])?);
        let saved = B::view(&st.aux);
        b.lstm_scan_backward(
            &g,
            h,
            (nh0, nc0),
            dout,
            saved,
            &mut st.grad,
            &mut st.work,
            par,
        );
        st.grad_ready = true;
    }
    let (total, n) = (g.layout.total(), g.n);
    let grads = B::view(&st.grad);
    let dpre = B::sub(grads, 0..g.dpre_len());
    match i {
        0 => b.add(dpre, B::sub_mut(din, 0..g.dpre_len()), par),
        1 => {
            // ∂/∂H = h_prevᵀ · ∂/∂pre over all rows: one product, as the loop defers it.
            let hprev = B::sub(B::view(&st.aux), g.hprev_at()..g.hprev_at() + total * n);
            let at = MatRef::row_major(hprev, total, n).t();
            let dst = MatMut::row_major(din, n, 4 * n);
            b.gemm(at, MatRef::row_major(dpre, total, 4 * n), dst, true, par);
        }
        2 | 3 => {
            let end = B::ref_len(grads);
            let at = if i == 2 {
                g.dpre_len()..g.dpre_len() + nh0
            } else {
                g.dpre_len() + nh0..end
            };
            let part = B::sub(grads, at);
            b.add(part, B::sub_mut(din, 0..B::ref_len(part)), Par::Seq);
        }
        _ => {}
    }
    Ok(())
}

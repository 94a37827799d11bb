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
//! forward values are bit-identical to the unfused graph (the kernels:
//! `backend::Recurrent::lstm_cell`). Every forward keeps the activated gates and
//! tanh(c) (per absolute row) for the backward.

use super::{dense_info, expect_arity, join_axes, Inferred, NodeState, RowCtx, VarInfo};
use crate::backend::recurrent::{LstmStrides, KEPT};
use crate::backend::{Arg, Backend, Operand};
use crate::error::{Error, Result};
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

fn dense<'a, B: Backend, T: Element>(a: &Arg<'a, B, T>) -> Result<Operand<'a, B, T>> {
    a.dense()
        .ok_or_else(|| Error::Unsupported("LSTM cell of a sparse operand".into()))
}

pub(crate) fn forward<B: Backend, T: Element>(
    b: &B,
    args: &[Arg<B, T>],
    shapes: &[Shape],
    out: B::Mut<'_, T>,
    ctx: RowCtx,
    st: &mut NodeState<B, T>,
) -> Result<()> {
    let (pre, cp) = (dense(&args[0])?, dense(&args[1])?);
    let n = shapes[1].numel();
    let rows = ctx.n;
    // Gates and tanh(c) live in the node's state (sized for every row of the
    // minibatch, indexed by absolute row) so the backward need not recompute them.
    let need = (ctx.row0 + rows) * KEPT * n;
    if B::len(&st.aux) < need {
        b.resize(&mut st.aux, need);
    }
    let kept = B::sub_mut(B::view_mut(&mut st.aux), ctx.row0 * KEPT * n..need);
    let stride = if cp.per_row { n } else { 0 };
    b.lstm_cell(pre.data, (cp.data, stride), kept, out, (n, rows));
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn backward<B: Backend, T: Element>(
    b: &B,
    i: usize,
    args: &[Arg<B, T>],
    shapes: &[Shape],
    dout: B::Ref<'_, T>,
    din: B::Mut<'_, T>,
    ctx: RowCtx,
    st: &mut NodeState<B, T>,
) -> Result<()> {
    let cp = dense(&args[1])?;
    let n = shapes[1].numel();
    let rows = ctx.n;
    // Every forward (training or not) keeps the gates of every row it computed.
    let need = (ctx.row0 + rows) * KEPT * n;
    if B::len(&st.aux) < need {
        return Err(Error::Unsupported(
            "LSTM cell backward without its forward".into(),
        ));
    }
    let kept = B::sub(B::view(&st.aux), ctx.row0 * KEPT * n..need);
    let c_static = !cp.per_row;
    let strides = LstmStrides {
        cprev: if c_static { 0 } else { n },
        dh: 2 * n,
        dc: 2 * n,
        dcprev: if c_static { 0 } else { n },
    };
    let len = B::ref_len(dout);
    let (dh, dc) = (dout, B::sub(dout, n.min(len)..len));
    let (dpre, dcprev) = if i == 0 {
        (Some(din), None)
    } else {
        (None, Some(din))
    };
    b.lstm_cell_backward(kept, cp.data, dh, dc, dpre, dcprev, &strides, (n, rows));
    Ok(())
}

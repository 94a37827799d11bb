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

use super::{expect_arity, join_axes, Inferred, NodeState, RowCtx, VarInfo};
use crate::backend::losses::LastAxis;
use crate::backend::{Arg, Backend, Operand};
use crate::error::{Error, Result};
use crate::tensor::{Element, Shape};

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

/// A sample's geometry and the dense output operand.
fn operands<'a, B: Backend, T: Element>(
    args: &[Arg<'a, B, T>],
    shape: &Shape,
) -> Result<(LastAxis, Operand<'a, B, T>)> {
    let numel = shape.numel();
    let dim = *shape.dims().last().unwrap_or(&1);
    let o = args[0]
        .dense()
        .ok_or_else(|| Error::Unsupported("a sparse output operand".into()))?;
    Ok((LastAxis { numel, dim }, o))
}

/// Forward of both ops over `ctx.n` rows. `shape` is one sample's shape.
pub(crate) fn forward<B: Backend, T: Element>(
    b: &B,
    error: bool,
    args: &[Arg<B, T>],
    shape: &Shape,
    out: B::Mut<'_, T>,
    ctx: RowCtx,
    st: &mut NodeState<B, T>,
) -> Result<()> {
    let (g, o) = operands(args, shape)?;
    if error {
        b.classification_error(g, o, args[1], out, ctx.n, ctx.par);
        return Ok(());
    }
    // The per-distribution lse goes to the node state (for the backward), the loss to
    // `out`; the state is indexed by absolute row (a loop runs block after block).
    let outer = g.outer();
    let rows_end = (ctx.row0 + ctx.n) * outer;
    if B::len(&st.aux) < rows_end {
        b.resize(&mut st.aux, rows_end);
    }
    let lse = B::sub_mut(B::view_mut(&mut st.aux), ctx.row0 * outer..rows_end);
    b.cross_entropy(g, o, args[1], lse, out, ctx.n, ctx.par);
    Ok(())
}

/// Accumulate the gradient for operand `i` (0: o, 1: a dense t) into `din`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward<B: Backend, T: Element>(
    b: &B,
    i: usize,
    args: &[Arg<B, T>],
    shape: &Shape,
    dout: B::Ref<'_, T>,
    din: B::Mut<'_, T>,
    ctx: RowCtx,
    st: &NodeState<B, T>,
) -> Result<()> {
    let (g, o) = operands(args, shape)?;
    let t = args[1];
    if i == 1 && t.is_sparse() {
        return Err(Error::Unsupported(
            "gradient with respect to a sparse target".into(),
        ));
    }
    let outer = g.outer();
    let at = ctx.row0 * outer..(ctx.row0 + ctx.n) * outer;
    let lse = if i == 1 {
        B::view(&st.aux)
    } else if B::len(&st.aux) >= at.end {
        B::sub(B::view(&st.aux), at)
    } else {
        return Err(Error::Unsupported(
            "cross-entropy backward before its forward".into(),
        ));
    };
    b.cross_entropy_backward(g, i, o, t, lse, dout, din, ctx.n, ctx.par);
    Ok(())
}

/// Gradient of the top-1 error for a dense target: `−dout` at each distribution's argmax.
pub(crate) fn backward_error<B: Backend, T: Element>(
    b: &B,
    i: usize,
    args: &[Arg<B, T>],
    shape: &Shape,
    dout: B::Ref<'_, T>,
    din: B::Mut<'_, T>,
    ctx: RowCtx,
) -> Result<()> {
    if i != 1 || args[1].is_sparse() {
        return Err(Error::Unsupported(
            "classification_error: a gradient other than for a dense target".into(),
        ));
    }
    let (g, o) = operands(args, shape)?;
    b.classification_error_backward(g, o, dout, din, ctx.n, !args[1].is_static());
    Ok(())
}

//! softmax and log_softmax along one static axis, max-subtracted for stability.
//! Each sample is viewed as `(outer, axis, inner)`; every (outer, inner) pair is one
//! independent distribution over the axis.
//!
//! CNTK's default `axis=None` (normalise over all static elements of a sample) is
//! built by reshaping to one axis first.

use super::{dense_info, expect_arity, Inferred, RowCtx, VarInfo};
use crate::backend::losses::AxisGeom;
use crate::backend::{Arg, Backend};
use crate::error::{Error, Result};
use crate::tensor::{Element, Shape};

pub(crate) fn infer(op: &str, name: &str, infos: &[VarInfo], axis: isize) -> Result<Inferred> {
    expect_arity(op, name, infos, 1)?;
    let x = &infos[0];
    if x.is_sparse {
        return Err(Error::shape(op, name, "cannot normalise a sparse operand"));
    }
    if x.shape.axis(axis).is_none() {
        return Err(Error::shape(
            op,
            name,
            format!("axis {axis} is out of range for operand shape {}", x.shape),
        ));
    }
    Ok(Inferred::one(dense_info(
        x.shape.clone(),
        x,
        x.axes.clone(),
    )))
}

/// (outer, dim, inner) around `axis`.
fn geom(shape: &Shape, axis: isize) -> Result<AxisGeom> {
    let a = shape
        .axis(axis)
        .ok_or_else(|| Error::Unsupported(format!("softmax axis {axis} of shape {shape}")))?;
    Ok(AxisGeom {
        outer: shape.prod(0..a),
        dim: shape.dims()[a],
        inner: shape.prod(a + 1..shape.rank()),
    })
}

pub(crate) fn forward<B: Backend, T: Element>(
    b: &B,
    log: bool,
    axis: isize,
    x: Arg<B, T>,
    shape: &Shape,
    out: B::Mut<'_, T>,
    ctx: RowCtx,
) -> Result<()> {
    let x = x
        .dense()
        .ok_or_else(|| Error::Unsupported("softmax of a sparse operand".into()))?;
    b.softmax(log, geom(shape, axis)?, x, out, ctx.n);
    Ok(())
}

/// softmax: `dx = y ⊙ (g − Σ g·y)`; log_softmax: `dx = g − softmax ⊙ Σ g`.
pub(crate) fn backward<B: Backend, T: Element>(
    b: &B,
    log: bool,
    axis: isize,
    shape: &Shape,
    (out, dout): (B::Ref<'_, T>, B::Ref<'_, T>),
    din: B::Mut<'_, T>,
    ctx: RowCtx,
) -> Result<()> {
    let g = geom(shape, axis)?;
    let per_row = B::mut_len(&din) == ctx.n * g.numel();
    b.softmax_backward(log, g, out, dout, din, ctx.n, per_row);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Cpu, Par};

    #[test]
    fn softmax_is_stable_and_normalised() {
        let x = [1000.0f64, 1001., 1002.];
        let mut y = [0.0; 3];
        let ctx = RowCtx {
            n: 1,
            row0: 0,
            training: false,
            par: Par::Seq,
            assign: false,
        };
        let xa = Arg::<Cpu, f64>::Rows(&x);
        forward(&Cpu, false, 0, xa, &Shape::from([3]), &mut y, ctx).unwrap();
        assert!((y.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        assert!(y[2] > y[1] && y[1] > y[0]);
        let mut l = [0.0; 3];
        forward(&Cpu, true, -1, xa, &Shape::from([3]), &mut l, ctx).unwrap();
        for k in 0..3 {
            assert!((l[k] - y[k].ln()).abs() < 1e-12);
        }
    }
}

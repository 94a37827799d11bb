//! Reductions over static axes (per sample) and over all axes.
//!
//! Per sample, the input axes split into kept and reduced ones. Every output element
//! owns the input elements that share its kept indices: the kernels walk the kept
//! axes with one odometer and, for each output element, the reduced axes with a
//! second one, so each output value is finished before the next starts and no
//! scratch buffer is needed (ranks up to 8).
//!
//! Conventions (observed with CNTK 2.7): reduced axes are kept with size 1 by
//! default; `axes = None` reduces every static axis and gives shape `()` whatever
//! `keepdims` says; on ties of max/min every tied element receives the full upstream
//! gradient.

use super::{dense_info, expect_arity, Inferred, RowCtx, VarInfo, WholeArg};
use crate::backend::reduce::{reduced_mask, ReduceGeom};
use crate::backend::{Arg, Backend, Operand};
use crate::error::{Error, Result};
use crate::tensor::{DynamicAxes, Element, Shape};

pub use crate::backend::reduce::ReduceOp;

pub(crate) fn infer(
    op: &str,
    name: &str,
    infos: &[VarInfo],
    axes: Option<&[isize]>,
    keepdims: bool,
) -> Result<Inferred> {
    expect_arity(op, name, infos, 1)?;
    let x = &infos[0];
    if x.is_sparse {
        return Err(Error::shape(op, name, "cannot reduce a sparse operand"));
    }
    let rank = x.shape.rank();
    let mask = reduced_mask(rank, axes)
        .map_err(|d| Error::shape(op, name, format!("{d} (operand shape {})", x.shape)))?;
    let dims: Vec<usize> = match axes {
        // CNTK: axis=None reduces every static axis to a scalar.
        None => Vec::new(),
        Some(_) => x
            .shape
            .dims()
            .iter()
            .enumerate()
            .filter_map(|(k, &d)| match (mask[k], keepdims) {
                (false, _) => Some(d),
                (true, true) => Some(1),
                (true, false) => None,
            })
            .collect(),
    };
    Ok(Inferred::one(dense_info(
        Shape::new(dims),
        x,
        x.axes.clone(),
    )))
}

pub(crate) fn infer_all(op: &str, name: &str, infos: &[VarInfo]) -> Result<Inferred> {
    expect_arity(op, name, infos, 1)?;
    let x = &infos[0];
    if x.is_sparse {
        return Err(Error::shape(op, name, "cannot reduce a sparse operand"));
    }
    Ok(Inferred::one(dense_info(
        Shape::scalar(),
        x,
        DynamicAxes::None,
    )))
}

fn dense<'a, B: Backend, T: Element>(x: &Arg<'a, B, T>) -> Result<Operand<'a, B, T>> {
    x.dense()
        .ok_or_else(|| Error::Unsupported("ReduceElements of a sparse operand".into()))
}

pub(crate) fn forward<B: Backend, T: Element>(
    b: &B,
    op: ReduceOp,
    axes: Option<&[isize]>,
    x: Arg<B, T>,
    shape: &Shape,
    out: B::Mut<'_, T>,
    ctx: RowCtx,
) -> Result<()> {
    let g = ReduceGeom::new(shape, axes)?;
    b.reduce(op, &g, dense(&x)?, out, ctx.n);
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn backward<B: Backend, T: Element>(
    b: &B,
    op: ReduceOp,
    axes: Option<&[isize]>,
    x: Arg<B, T>,
    shape: &Shape,
    (out, dout): (B::Ref<'_, T>, B::Ref<'_, T>),
    din: B::Mut<'_, T>,
    ctx: RowCtx,
) -> Result<()> {
    let g = ReduceGeom::new(shape, axes)?;
    b.reduce_backward(op, &g, dense(&x)?, out, dout, din, ctx.n);
    Ok(())
}

/// The valid values of a whole operand (its layout's rows).
fn values<'a, B: Backend, T: Element>(x: &WholeArg<'a, B, T>) -> Result<B::Ref<'a, T>> {
    let data = dense(&x.data)?.data;
    let total = x.layout.rows() * x.shape.numel();
    Ok(B::sub(data, 0..total.min(B::ref_len(data))))
}

pub(crate) fn forward_all<B: Backend, T: Element>(
    b: &B,
    op: ReduceOp,
    x: &WholeArg<B, T>,
    out: B::Mut<'_, T>,
) -> Result<()> {
    b.reduce_all(op, values(x)?, out);
    Ok(())
}

pub(crate) fn backward_all<B: Backend, T: Element>(
    b: &B,
    op: ReduceOp,
    x: &WholeArg<B, T>,
    (out, dout): (B::Ref<'_, T>, B::Ref<'_, T>),
    din: B::Mut<'_, T>,
) -> Result<()> {
    let vals = values(x)?;
    let din = B::sub_mut(din, 0..B::ref_len(vals));
    b.reduce_all_backward(op, vals, out, dout, din);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Cpu, Par};

    fn ctx(n: usize) -> RowCtx {
        RowCtx {
            n,
            row0: 0,
            training: false,
            par: Par::Seq,
            assign: false,
        }
    }

    fn rows(x: &[f64]) -> Arg<'_, Cpu, f64> {
        Arg::Rows(x)
    }

    #[test]
    fn sum_over_axis_0_and_1() {
        let x = [1.0f64, 2., 3., 4., 5., 6.];
        let s = Shape::from([2, 3]);
        let mut y = [0.0; 3];
        forward(
            &Cpu,
            ReduceOp::Sum,
            Some(&[0]),
            rows(&x),
            &s,
            &mut y,
            ctx(1),
        )
        .unwrap();
        assert_eq!(y, [5., 7., 9.]);
        let mut y = [0.0; 2];
        forward(
            &Cpu,
            ReduceOp::Max,
            Some(&[-1]),
            rows(&x),
            &s,
            &mut y,
            ctx(1),
        )
        .unwrap();
        assert_eq!(y, [3., 6.]);
        let mut y = [0.0; 1];
        forward(&Cpu, ReduceOp::Mean, None, rows(&x), &s, &mut y, ctx(1)).unwrap();
        assert_eq!(y, [3.5]);
    }

    #[test]
    fn max_ties_give_full_gradient_to_each() {
        let x = [2.0f64, 2., 1.];
        let s = Shape::from([3]);
        let mut y = [0.0];
        forward(&Cpu, ReduceOp::Max, None, rows(&x), &s, &mut y, ctx(1)).unwrap();
        let mut d = [0.0; 3];
        let (o, g) = (&y[..], &[0.5][..]);
        backward(
            &Cpu,
            ReduceOp::Max,
            None,
            rows(&x),
            &s,
            (o, g),
            &mut d,
            ctx(1),
        )
        .unwrap();
        assert_eq!(d, [0.5, 0.5, 0.]);
    }

    #[test]
    fn log_sum_exp_is_stable() {
        let x = [1000.0f64, 1000.];
        let mut y = [0.0];
        let s = Shape::from([2]);
        forward(
            &Cpu,
            ReduceOp::LogSumExp,
            None,
            rows(&x),
            &s,
            &mut y,
            ctx(1),
        )
        .unwrap();
        assert!((y[0] - (1000.0 + 2f64.ln())).abs() < 1e-12);
    }
}

//! softmax and log_softmax along one static axis, max-subtracted for stability.
//! Each sample is viewed as `(outer, axis, inner)`; every (outer, inner) pair is one
//! independent distribution over the axis.
//!
//! CNTK's default `axis=None` (normalise over all static elements of a sample) is
//! built by reshaping to one axis first.

use super::{dense_info, expect_arity, Arg, Inferred, RowCtx};
use crate::error::{Error, Result};
use crate::graph::VarInfo;
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
fn geom(shape: &Shape, axis: isize) -> Result<(usize, usize, usize)> {
    let a = shape
        .axis(axis)
        .ok_or_else(|| Error::Unsupported(format!("softmax axis {axis} of shape {shape}")))?;
    Ok((
        shape.prod(0..a),
        shape.dims()[a],
        shape.prod(a + 1..shape.rank()),
    ))
}

pub(crate) fn forward<T: Element>(
    log: bool,
    axis: isize,
    x: Arg<T>,
    shape: &Shape,
    out: &mut [T],
    ctx: RowCtx,
) -> Result<()> {
    let per_row = !x.is_static();
    let x = x
        .dense()
        .ok_or_else(|| Error::Unsupported("softmax of a sparse operand".into()))?;
    let (outer, dim, inner) = geom(shape, axis)?;
    let nx = outer * dim * inner;
    for r in 0..ctx.n {
        let xr = if per_row {
            &x[r * nx..(r + 1) * nx]
        } else {
            &x[..nx]
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
    Ok(())
}

/// softmax: `dx = y ⊙ (g − Σ g·y)`; log_softmax: `dx = g − softmax ⊙ Σ g`.
pub(crate) fn backward<T: Element>(
    log: bool,
    axis: isize,
    shape: &Shape,
    out: &[T],
    dout: &[T],
    din: &mut [T],
    ctx: RowCtx,
) -> Result<()> {
    let (outer, dim, inner) = geom(shape, axis)?;
    let nx = outer * dim * inner;
    let per_row = din.len() == ctx.n * nx;
    for r in 0..ctx.n {
        let y = &out[r * nx..(r + 1) * nx];
        let g = &dout[r * nx..(r + 1) * nx];
        let dr = if per_row {
            &mut din[r * nx..(r + 1) * nx]
        } else {
            &mut din[..nx]
        };
        for o in 0..outer {
            for i in 0..inner {
                let at = |j: usize| (o * dim + j) * inner + i;
                if log {
                    let mut s = T::zero();
                    for j in 0..dim {
                        s += g[at(j)];
                    }
                    for j in 0..dim {
                        dr[at(j)] += g[at(j)] - y[at(j)].exp() * s;
                    }
                } else {
                    let mut s = T::zero();
                    for j in 0..dim {
                        s += g[at(j)] * y[at(j)];
                    }
                    for j in 0..dim {
                        dr[at(j)] += y[at(j)] * (g[at(j)] - s);
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_is_stable_and_normalised() {
        let x = [1000.0f64, 1001., 1002.];
        let mut y = [0.0; 3];
        let ctx = RowCtx {
            n: 1,
            row0: 0,
            training: false,
        };
        forward(false, 0, Arg::Rows(&x), &Shape::from([3]), &mut y, ctx).unwrap();
        assert!((y.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        assert!(y[2] > y[1] && y[1] > y[0]);
        let mut l = [0.0; 3];
        forward(true, -1, Arg::Rows(&x), &Shape::from([3]), &mut l, ctx).unwrap();
        for k in 0..3 {
            assert!((l[k] - y[k].ln()).abs() < 1e-12);
        }
    }
}

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

use super::{dense_info, expect_arity, Arg, Inferred, RowCtx, WholeArg};
use crate::error::{Error, Result};
use crate::graph::{DynamicAxes, VarInfo};
use crate::tensor::{Element, Shape};

/// The reduction applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceOp {
    Sum,
    Mean,
    Max,
    Min,
    LogSumExp,
}

const MAX_RANK: usize = 8;

/// Which axes of a shape of rank `rank` are reduced (`None` = all). Errors name the
/// offending axis.
fn reduced_mask(
    rank: usize,
    axes: Option<&[isize]>,
) -> std::result::Result<[bool; MAX_RANK], String> {
    if rank > MAX_RANK {
        return Err(format!("reductions support static ranks up to {MAX_RANK}"));
    }
    let mut mask = [false; MAX_RANK];
    match axes {
        None => mask[..rank].iter_mut().for_each(|m| *m = true),
        Some(list) => {
            for &a in list {
                let r = rank as isize;
                let k = if a < 0 { a + r } else { a };
                if !(0..r).contains(&k) {
                    return Err(format!("axis {a} is out of range for rank {rank}"));
                }
                if std::mem::replace(&mut mask[k as usize], true) {
                    return Err(format!("axis {a} is listed twice"));
                }
            }
        }
    }
    Ok(mask)
}

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

/// The two odometers of one sample: kept axes (outer) and reduced axes (inner),
/// each with its dims and input strides.
struct Geom {
    kept: usize,
    kdims: [usize; MAX_RANK],
    kstr: [usize; MAX_RANK],
    red: usize,
    rdims: [usize; MAX_RANK],
    rstr: [usize; MAX_RANK],
    /// Number of input elements reduced into one output element.
    count: usize,
}

impl Geom {
    fn new(shape: &Shape, axes: Option<&[isize]>) -> Result<Self> {
        let rank = shape.rank();
        let mask = reduced_mask(rank, axes)
            .map_err(|d| Error::shape("ReduceElements", "", format!("{d} (shape {shape})")))?;
        let mut g = Geom {
            kept: 0,
            kdims: [1; MAX_RANK],
            kstr: [0; MAX_RANK],
            red: 0,
            rdims: [1; MAX_RANK],
            rstr: [0; MAX_RANK],
            count: 1,
        };
        let mut stride = 1;
        let mut strides = [0usize; MAX_RANK];
        for k in (0..rank).rev() {
            strides[k] = stride;
            stride *= shape.dims()[k];
        }
        for k in 0..rank {
            let d = shape.dims()[k];
            if mask[k] {
                g.rdims[g.red] = d;
                g.rstr[g.red] = strides[k];
                g.red += 1;
                g.count *= d;
            } else {
                g.kdims[g.kept] = d;
                g.kstr[g.kept] = strides[k];
                g.kept += 1;
            }
        }
        Ok(g)
    }

    fn out_numel(&self) -> usize {
        self.kdims[..self.kept].iter().product()
    }

    /// Call `f(out_index, input_base)` for every output element, in row-major order.
    #[inline]
    fn for_each_out(&self, f: impl FnMut(usize, usize)) {
        odometer(&self.kdims[..self.kept], &self.kstr[..self.kept], f);
    }

    /// Call `f(input_offset)` for every input element reduced into one output.
    #[inline]
    fn for_each_in(&self, base: usize, mut f: impl FnMut(usize)) {
        odometer(&self.rdims[..self.red], &self.rstr[..self.red], |_, off| {
            f(base + off)
        });
    }
}

/// Row-major walk over `dims`, calling `f(linear_index, Σ idx·stride)`.
#[inline]
fn odometer(dims: &[usize], strides: &[usize], mut f: impl FnMut(usize, usize)) {
    let total: usize = dims.iter().product();
    let r = dims.len();
    let mut idx = [0usize; MAX_RANK];
    let mut off = 0usize;
    for e in 0..total {
        f(e, off);
        let mut k = r;
        while k > 0 {
            k -= 1;
            idx[k] += 1;
            off += strides[k];
            if idx[k] < dims[k] {
                break;
            }
            off -= strides[k] * dims[k];
            idx[k] = 0;
        }
    }
}

fn dense<'a, T>(x: &Arg<'a, T>) -> Result<&'a [T]> {
    x.dense()
        .ok_or_else(|| Error::Unsupported("ReduceElements of a sparse operand".into()))
}

/// Reduce the values that `visit` feeds (it may be called twice: max, then sum).
#[inline]
fn reduce_one<T: Element>(
    op: ReduceOp,
    count: usize,
    mut visit: impl FnMut(&mut dyn FnMut(T)),
) -> T {
    match op {
        ReduceOp::Sum | ReduceOp::Mean => {
            let mut s = T::zero();
            visit(&mut |v| s += v);
            if op == ReduceOp::Mean {
                s / T::from_f64(count as f64)
            } else {
                s
            }
        }
        ReduceOp::Max => {
            let mut m = T::neg_infinity();
            visit(&mut |v| {
                if v > m {
                    m = v
                }
            });
            m
        }
        ReduceOp::Min => {
            let mut m = T::infinity();
            visit(&mut |v| {
                if v < m {
                    m = v
                }
            });
            m
        }
        ReduceOp::LogSumExp => {
            let mut m = T::neg_infinity();
            visit(&mut |v| {
                if v > m {
                    m = v
                }
            });
            if !m.is_finite() {
                return m;
            }
            let mut s = T::zero();
            visit(&mut |v| s += (v - m).exp());
            m + s.ln()
        }
    }
}

/// ∂out/∂x for one input element `x` of an output `o`.
#[inline(always)]
fn partial<T: Element>(op: ReduceOp, count: usize, x: T, o: T) -> T {
    match op {
        ReduceOp::Sum => T::one(),
        ReduceOp::Mean => T::one() / T::from_f64(count as f64),
        // every tied element gets the full gradient (as CNTK)
        ReduceOp::Max | ReduceOp::Min => {
            if x == o {
                T::one()
            } else {
                T::zero()
            }
        }
        ReduceOp::LogSumExp => (x - o).exp(),
    }
}

pub(crate) fn forward<T: Element>(
    op: ReduceOp,
    axes: Option<&[isize]>,
    x: Arg<T>,
    shape: &Shape,
    out: &mut [T],
    ctx: RowCtx,
) -> Result<()> {
    let per_row = !x.is_static();
    let x = dense(&x)?;
    let g = Geom::new(shape, axes)?;
    let (nx, no) = (shape.numel(), g.out_numel());
    let rows = if per_row { ctx.n } else { 1 };
    for r in 0..rows {
        let xr = &x[r * nx..(r + 1) * nx];
        let orow = &mut out[r * no..(r + 1) * no];
        g.for_each_out(|e, base| {
            orow[e] = reduce_one(op, g.count, |f| g.for_each_in(base, |i| f(xr[i])));
        });
    }
    // A static operand reduced for several rows (cannot happen for a one-operand op,
    // whose output is then static too) would repeat the sample.
    if !per_row {
        for r in 1..ctx.n {
            out.copy_within(0..no, r * no);
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn backward<T: Element>(
    op: ReduceOp,
    axes: Option<&[isize]>,
    x: Arg<T>,
    shape: &Shape,
    out: &[T],
    dout: &[T],
    din: &mut [T],
    ctx: RowCtx,
) -> Result<()> {
    let per_row_x = !x.is_static();
    let x = dense(&x)?;
    let g = Geom::new(shape, axes)?;
    let (nx, no) = (shape.numel(), g.out_numel());
    for r in 0..ctx.n {
        let xr = if per_row_x {
            &x[r * nx..(r + 1) * nx]
        } else {
            &x[..nx]
        };
        let orow = &out[r * no..(r + 1) * no];
        let grow = &dout[r * no..(r + 1) * no];
        let dr = if per_row_x {
            &mut din[r * nx..(r + 1) * nx]
        } else {
            &mut din[..nx]
        };
        g.for_each_out(|e, base| {
            let (o, gv) = (orow[e], grow[e]);
            g.for_each_in(base, |i| dr[i] += gv * partial(op, g.count, xr[i], o));
        });
    }
    Ok(())
}

pub(crate) fn forward_all<T: Element>(op: ReduceOp, x: &WholeArg<T>, out: &mut [T]) -> Result<()> {
    let data = dense(&x.data)?;
    let total = x.layout.rows() * x.shape.numel();
    let vals = &data[..total.min(data.len())];
    out[0] = reduce_one(op, vals.len(), |f| vals.iter().for_each(|&v| f(v)));
    Ok(())
}

pub(crate) fn backward_all<T: Element>(
    op: ReduceOp,
    x: &WholeArg<T>,
    out: &[T],
    dout: &[T],
    din: &mut [T],
) -> Result<()> {
    let data = dense(&x.data)?;
    let total = x.layout.rows() * x.shape.numel();
    let vals = &data[..total.min(data.len())];
    let (o, g) = (out[0], dout[0]);
    for (d, &v) in din.iter_mut().zip(vals) {
        *d += g * partial(op, vals.len(), v, o);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(n: usize) -> RowCtx {
        RowCtx {
            n,
            row0: 0,
            training: false,
        }
    }

    #[test]
    fn sum_over_axis_0_and_1() {
        let x = [1.0f64, 2., 3., 4., 5., 6.];
        let s = Shape::from([2, 3]);
        let mut y = [0.0; 3];
        forward(ReduceOp::Sum, Some(&[0]), Arg::Rows(&x), &s, &mut y, ctx(1)).unwrap();
        assert_eq!(y, [5., 7., 9.]);
        let mut y = [0.0; 2];
        forward(
            ReduceOp::Max,
            Some(&[-1]),
            Arg::Rows(&x),
            &s,
            &mut y,
            ctx(1),
        )
        .unwrap();
        assert_eq!(y, [3., 6.]);
        let mut y = [0.0; 1];
        forward(ReduceOp::Mean, None, Arg::Rows(&x), &s, &mut y, ctx(1)).unwrap();
        assert_eq!(y, [3.5]);
    }

    #[test]
    fn max_ties_give_full_gradient_to_each() {
        let x = [2.0f64, 2., 1.];
        let s = Shape::from([3]);
        let mut y = [0.0];
        forward(ReduceOp::Max, None, Arg::Rows(&x), &s, &mut y, ctx(1)).unwrap();
        let mut d = [0.0; 3];
        backward(
            ReduceOp::Max,
            None,
            Arg::Rows(&x),
            &s,
            &y,
            &[0.5],
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
        forward(
            ReduceOp::LogSumExp,
            None,
            Arg::Rows(&x),
            &Shape::from([2]),
            &mut y,
            ctx(1),
        )
        .unwrap();
        assert!((y[0] - (1000.0 + 2f64.ln())).abs() < 1e-12);
    }
}

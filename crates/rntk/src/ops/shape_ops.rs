//! Ops that move elements within a sample: slice, splice, reshape, transpose.
//! Each sample is viewed as `(outer, axis, inner)` around the axis concerned.

use super::{dense_info, expect_arity, join_axes, Arg, Inferred, RowCtx};
use crate::error::{Error, Result};
use crate::graph::VarInfo;
use crate::tensor::{Element, Shape};

fn axis_of(op: &str, name: &str, shape: &Shape, axis: isize) -> Result<usize> {
    shape.axis(axis).ok_or_else(|| {
        Error::shape(
            op,
            name,
            format!("axis {axis} is out of range for shape {shape}"),
        )
    })
}

/// (begin, stride, count) of a slice along an axis of size `dim`. Negative indices
/// count from the end; `end = 0` means through the end (CNTK's convention).
pub(crate) fn slice_range(
    dim: usize,
    begin: isize,
    end: isize,
    stride: isize,
) -> Option<(usize, usize, usize)> {
    if stride <= 0 {
        return None;
    }
    let d = dim as isize;
    let b = if begin < 0 { begin + d } else { begin };
    let e = if end <= 0 { end + d } else { end };
    if b < 0 || e > d || b >= e {
        return None;
    }
    let count = ((e - b) + stride - 1) / stride;
    Some((b as usize, stride as usize, count as usize))
}

pub(crate) fn infer_slice(
    op: &str,
    name: &str,
    infos: &[VarInfo],
    axis: isize,
    begin: isize,
    end: isize,
    stride: isize,
) -> Result<Inferred> {
    expect_arity(op, name, infos, 1)?;
    let x = &infos[0];
    let a = axis_of(op, name, &x.shape, axis)?;
    let (_, _, count) = slice_range(x.shape.dims()[a], begin, end, stride).ok_or_else(|| {
        Error::shape(
            op,
            name,
            format!(
                "slice [{begin}:{end}:{stride}] of axis {axis} (size {}) of {} is empty or invalid",
                x.shape.dims()[a],
                x.shape
            ),
        )
    })?;
    let mut d = x.shape.dims().to_vec();
    d[a] = count;
    Ok(Inferred::one(dense_info(Shape::new(d), x, x.axes.clone())))
}

fn split(shape: &Shape, a: usize) -> (usize, usize, usize) {
    (
        shape.prod(0..a),
        shape.dims()[a],
        shape.prod(a + 1..shape.rank()),
    )
}

fn dense<'a, T>(op: &str, a: &Arg<'a, T>) -> Result<&'a [T]> {
    a.dense()
        .ok_or_else(|| Error::Unsupported(format!("{op} of a sparse operand")))
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn forward_slice<T: Element>(
    axis: isize,
    begin: isize,
    end: isize,
    stride: isize,
    x: Arg<T>,
    shape: &Shape,
    out: &mut [T],
    ctx: RowCtx,
) -> Result<()> {
    let x = dense("Slice", &x)?;
    let a = shape
        .axis(axis)
        .ok_or_else(|| Error::Unsupported("slice axis".into()))?;
    let (outer, dim, inner) = split(shape, a);
    let (b, s, c) = slice_range(dim, begin, end, stride)
        .ok_or_else(|| Error::Unsupported("slice range".into()))?;
    let (nx, no) = (outer * dim * inner, outer * c * inner);
    for r in 0..ctx.n {
        let xr = &x[r * nx..(r + 1) * nx];
        let orow = &mut out[r * no..(r + 1) * no];
        for o in 0..outer {
            if s == 1 {
                // a contiguous run (e.g. one gate of a packed LSTM pre-activation)
                let (src, dst) = ((o * dim + b) * inner, o * c * inner);
                orow[dst..dst + c * inner].copy_from_slice(&xr[src..src + c * inner]);
                continue;
            }
            for j in 0..c {
                let src = (o * dim + b + j * s) * inner;
                let dst = (o * c + j) * inner;
                orow[dst..dst + inner].copy_from_slice(&xr[src..src + inner]);
            }
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn backward_slice<T: Element>(
    axis: isize,
    begin: isize,
    end: isize,
    stride: isize,
    shape: &Shape,
    dout: &[T],
    din: &mut [T],
    ctx: RowCtx,
) -> Result<()> {
    let a = shape
        .axis(axis)
        .ok_or_else(|| Error::Unsupported("slice axis".into()))?;
    let (outer, dim, inner) = split(shape, a);
    let (b, s, c) = slice_range(dim, begin, end, stride)
        .ok_or_else(|| Error::Unsupported("slice range".into()))?;
    let (nx, no) = (outer * dim * inner, outer * c * inner);
    let per_row = din.len() == ctx.n * nx;
    for r in 0..ctx.n {
        let dr = if per_row {
            &mut din[r * nx..(r + 1) * nx]
        } else {
            &mut din[..nx]
        };
        let g = &dout[r * no..(r + 1) * no];
        for o in 0..outer {
            if s == 1 {
                let (src, dst) = ((o * dim + b) * inner, o * c * inner);
                for (d, &v) in dr[src..src + c * inner]
                    .iter_mut()
                    .zip(&g[dst..dst + c * inner])
                {
                    *d += v;
                }
                continue;
            }
            for j in 0..c {
                let src = (o * dim + b + j * s) * inner;
                let dst = (o * c + j) * inner;
                for (d, &v) in dr[src..src + inner].iter_mut().zip(&g[dst..dst + inner]) {
                    *d += v;
                }
            }
        }
    }
    Ok(())
}

pub(crate) fn infer_splice(
    op: &str,
    name: &str,
    infos: &[VarInfo],
    axis: isize,
) -> Result<Inferred> {
    if infos.is_empty() {
        return Err(Error::shape(op, name, "needs at least one operand"));
    }
    let first = &infos[0].shape;
    // A new trailing axis may be created (axis == rank), as CNTK does.
    let rank = first.rank();
    let a = if axis < 0 { axis + rank as isize } else { axis };
    if a < 0 || a > rank as isize {
        return Err(Error::shape(
            op,
            name,
            format!("axis {axis} is out of range for shape {first}"),
        ));
    }
    let a = a as usize;
    let mut total = 0;
    for i in infos {
        let s = &i.shape;
        let ok = s.rank() == rank
            && s.dims()
                .iter()
                .enumerate()
                .all(|(k, &d)| k == a || d == first.dims()[k]);
        if !ok {
            return Err(Error::shape(
                op,
                name,
                format!("operand shapes {first} and {s} differ outside the splice axis {axis}"),
            ));
        }
        total += if a < rank { s.dims()[a] } else { 1 };
    }
    let mut d = first.dims().to_vec();
    if a < rank {
        d[a] = total;
    } else {
        d.push(total);
    }
    let refs: Vec<&VarInfo> = infos.iter().collect();
    let axes = join_axes(op, name, &refs)?;
    Ok(Inferred::one(dense_info(Shape::new(d), &infos[0], axes)))
}

/// (outer, inner) of the splice view and each operand's extent along the axis.
fn splice_geom(shapes: &[Shape], out: &Shape, axis: isize) -> (usize, usize, usize) {
    let rank = shapes[0].rank();
    let a = if axis < 0 {
        (axis + rank as isize) as usize
    } else {
        axis as usize
    };
    let outer = shapes[0].prod(0..a.min(rank));
    let inner = if a < rank {
        shapes[0].prod(a + 1..rank)
    } else {
        1
    };
    let total = out.numel() / (outer * inner).max(1);
    (outer, inner, total)
}

fn extent(s: &Shape, axis: isize) -> usize {
    let rank = s.rank();
    let a = if axis < 0 {
        (axis + rank as isize) as usize
    } else {
        axis as usize
    };
    if a < rank {
        s.dims()[a]
    } else {
        1
    }
}

pub(crate) fn forward_splice<T: Element>(
    axis: isize,
    args: &[Arg<T>],
    shapes: &[Shape],
    out_shape: &Shape,
    out: &mut [T],
    ctx: RowCtx,
) -> Result<()> {
    let (outer, inner, total) = splice_geom(shapes, out_shape, axis);
    let no = out_shape.numel();
    let mut start = 0;
    for (arg, s) in args.iter().zip(shapes) {
        let x = dense("Splice", arg)?;
        let e = extent(s, axis);
        let nx = s.numel();
        for r in 0..ctx.n {
            let xr = if arg.is_static() {
                x
            } else {
                &x[r * nx..(r + 1) * nx]
            };
            let orow = &mut out[r * no..(r + 1) * no];
            for o in 0..outer {
                let dst = (o * total + start) * inner;
                let src = o * e * inner;
                orow[dst..dst + e * inner].copy_from_slice(&xr[src..src + e * inner]);
            }
        }
        start += e;
    }
    Ok(())
}

pub(crate) fn backward_splice<T: Element>(
    axis: isize,
    i: usize,
    shapes: &[Shape],
    out_shape: &Shape,
    dout: &[T],
    din: &mut [T],
    ctx: RowCtx,
) -> Result<()> {
    let (outer, inner, total) = splice_geom(shapes, out_shape, axis);
    let no = out_shape.numel();
    let start: usize = shapes[..i].iter().map(|s| extent(s, axis)).sum();
    let e = extent(&shapes[i], axis);
    let nx = shapes[i].numel();
    let per_row = din.len() == ctx.n * nx;
    for r in 0..ctx.n {
        let dr = if per_row {
            &mut din[r * nx..(r + 1) * nx]
        } else {
            &mut din[..nx]
        };
        let g = &dout[r * no..(r + 1) * no];
        for o in 0..outer {
            let src = (o * total + start) * inner;
            let dst = o * e * inner;
            for (d, &v) in dr[dst..dst + e * inner]
                .iter_mut()
                .zip(&g[src..src + e * inner])
            {
                *d += v;
            }
        }
    }
    Ok(())
}

pub(crate) fn infer_reshape(
    op: &str,
    name: &str,
    infos: &[VarInfo],
    shape: &Shape,
) -> Result<Inferred> {
    expect_arity(op, name, infos, 1)?;
    let x = &infos[0];
    // One INFERRED dimension may be computed from the element count.
    let known: usize = shape
        .dims()
        .iter()
        .filter(|&&d| d != crate::tensor::INFERRED)
        .product();
    let n_inf = shape
        .dims()
        .iter()
        .filter(|&&d| d == crate::tensor::INFERRED)
        .count();
    let total = x.shape.numel();
    let resolved = match n_inf {
        0 if known == total => shape.clone(),
        1 if known > 0 && total.is_multiple_of(known) => Shape::new(
            shape
                .dims()
                .iter()
                .map(|&d| {
                    if d == crate::tensor::INFERRED {
                        total / known
                    } else {
                        d
                    }
                })
                .collect::<Vec<_>>(),
        ),
        _ => {
            return Err(Error::shape(
                op,
                name,
                format!("cannot reshape {} ({total} elements) into {shape}", x.shape),
            ))
        }
    };
    Ok(Inferred::one(dense_info(resolved, x, x.axes.clone())))
}

pub(crate) fn forward_reshape<T: Element>(x: Arg<T>, out: &mut [T], _ctx: RowCtx) -> Result<()> {
    let x = dense("Reshape", &x)?;
    out.copy_from_slice(&x[..out.len()]);
    Ok(())
}

pub(crate) fn backward_reshape<T: Element>(dout: &[T], din: &mut [T]) -> Result<()> {
    if din.len() == dout.len() {
        for (d, &g) in din.iter_mut().zip(dout) {
            *d += g;
        }
    } else {
        // static operand reshaped and broadcast over rows: sum the rows
        let n = din.len();
        for chunk in dout.chunks(n) {
            for (d, &g) in din.iter_mut().zip(chunk) {
                *d += g;
            }
        }
    }
    Ok(())
}

pub(crate) fn infer_transpose(
    op: &str,
    name: &str,
    infos: &[VarInfo],
    perm: &[usize],
) -> Result<Inferred> {
    expect_arity(op, name, infos, 1)?;
    let x = &infos[0];
    let r = x.shape.rank();
    if r > MAX_TRANSPOSE_RANK {
        return Err(Error::Unsupported(format!(
            "{op} '{name}': transposing a sample of rank {r} (at most {MAX_TRANSPOSE_RANK} axes)"
        )));
    }
    let mut seen = vec![false; r];
    let valid = perm.len() == r
        && perm
            .iter()
            .all(|&p| p < r && !std::mem::replace(&mut seen[p], true));
    if !valid {
        return Err(Error::shape(
            op,
            name,
            format!(
                "{perm:?} is not a permutation of the {r} axes of {}",
                x.shape
            ),
        ));
    }
    let d: Vec<usize> = perm.iter().map(|&p| x.shape.dims()[p]).collect();
    Ok(Inferred::one(dense_info(Shape::new(d), x, x.axes.clone())))
}

/// For each output element (row-major), the input element it comes from.
/// Most axes a transposed sample may have (index state lives on the stack: transpose
/// runs per row, and per time step inside loops).
const MAX_TRANSPOSE_RANK: usize = 8;

/// For each output element (row-major), the input element it comes from.
fn transpose_map(perm: &[usize], shape: &Shape, mut f: impl FnMut(usize, usize)) {
    let r = shape.rank().min(MAX_TRANSPOSE_RANK);
    let in_strides = {
        let mut st = [1usize; MAX_TRANSPOSE_RANK];
        for k in (0..r.saturating_sub(1)).rev() {
            st[k] = st[k + 1] * shape.dims()[k + 1];
        }
        st
    };
    let mut out_dims = [1usize; MAX_TRANSPOSE_RANK];
    let mut step = [0usize; MAX_TRANSPOSE_RANK];
    for k in 0..r {
        out_dims[k] = shape.dims()[perm[k]];
        step[k] = in_strides[perm[k]];
    }
    let mut idx = [0usize; MAX_TRANSPOSE_RANK];
    let mut src = 0usize;
    for e in 0..shape.numel() {
        f(e, src);
        let mut k = r;
        while k > 0 {
            k -= 1;
            idx[k] += 1;
            src += step[k];
            if idx[k] < out_dims[k] {
                break;
            }
            src -= step[k] * out_dims[k];
            idx[k] = 0;
        }
    }
}

pub(crate) fn forward_transpose<T: Element>(
    perm: &[usize],
    x: Arg<T>,
    shape: &Shape,
    out: &mut [T],
    ctx: RowCtx,
) -> Result<()> {
    let x = dense("TransposeAxes", &x)?;
    let n = shape.numel();
    for r in 0..ctx.n {
        let xr = &x[r * n..(r + 1) * n];
        let orow = &mut out[r * n..(r + 1) * n];
        transpose_map(perm, shape, |e, s| orow[e] = xr[s]);
    }
    Ok(())
}

pub(crate) fn backward_transpose<T: Element>(
    perm: &[usize],
    shape: &Shape,
    dout: &[T],
    din: &mut [T],
    ctx: RowCtx,
) -> Result<()> {
    let n = shape.numel();
    let per_row = din.len() == ctx.n * n;
    for r in 0..ctx.n {
        let g = &dout[r * n..(r + 1) * n];
        let dr = if per_row {
            &mut din[r * n..(r + 1) * n]
        } else {
            &mut din[..n]
        };
        transpose_map(perm, shape, |e, s| dr[s] += g[e]);
    }
    Ok(())
}

//! Ops that move elements within a sample: slice, splice, reshape, transpose.
//! Each sample is viewed as `(outer, axis, inner)` around the axis concerned.

use super::{dense_info, expect_arity, join_axes, Inferred, RowCtx, VarInfo};
use crate::backend::copies::{PermuteGeom, SliceGeom, SpliceGeom};
use crate::backend::{Arg, Backend, Operand};
use crate::error::{Error, Result};
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

fn dense<'a, B: Backend, T: Element>(op: &str, a: &Arg<'a, B, T>) -> Result<Operand<'a, B, T>> {
    a.dense()
        .ok_or_else(|| Error::Unsupported(format!("{op} of a sparse operand")))
}

/// Slice `(axis, begin, end, stride)` of a sample of `shape`.
fn slice_geom(
    shape: &Shape,
    (axis, begin, end, stride): (isize, isize, isize, isize),
) -> Result<SliceGeom> {
    let a = shape
        .axis(axis)
        .ok_or_else(|| Error::Unsupported("slice axis".into()))?;
    let (outer, dim, inner) = split(shape, a);
    let (begin, stride, count) = slice_range(dim, begin, end, stride)
        .ok_or_else(|| Error::Unsupported("slice range".into()))?;
    Ok(SliceGeom {
        outer,
        dim,
        inner,
        begin,
        stride,
        count,
    })
}

pub(crate) fn forward_slice<B: Backend, T: Element>(
    b: &B,
    range: (isize, isize, isize, isize),
    x: Arg<B, T>,
    shape: &Shape,
    out: B::Mut<'_, T>,
    ctx: RowCtx,
) -> Result<()> {
    let x = dense("Slice", &x)?;
    b.slice(&slice_geom(shape, range)?, x.data, out, ctx.n);
    Ok(())
}

pub(crate) fn backward_slice<B: Backend, T: Element>(
    b: &B,
    range: (isize, isize, isize, isize),
    shape: &Shape,
    dout: B::Ref<'_, T>,
    din: B::Mut<'_, T>,
    ctx: RowCtx,
) -> Result<()> {
    let per_row = B::mut_len(&din) == ctx.n * shape.numel();
    b.slice_backward(&slice_geom(shape, range)?, dout, din, ctx.n, per_row);
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

/// Operand `i`'s part of the splice of `shapes` along `axis` into `out`.
fn splice_geom(shapes: &[Shape], out: &Shape, axis: isize, i: usize) -> SpliceGeom {
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
    SpliceGeom {
        outer,
        inner,
        total,
        start: shapes[..i].iter().map(|s| extent(s, axis)).sum(),
        extent: extent(&shapes[i], axis),
    }
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

pub(crate) fn forward_splice<B: Backend, T: Element>(
    b: &B,
    axis: isize,
    args: &[Arg<B, T>],
    (shapes, out_shape): (&[Shape], &Shape),
    mut out: B::Mut<'_, T>,
    ctx: RowCtx,
) -> Result<()> {
    for (i, arg) in args.iter().enumerate() {
        let x = dense("Splice", arg)?;
        let g = splice_geom(shapes, out_shape, axis, i);
        b.splice(&g, x, B::reborrow(&mut out), ctx.n);
    }
    Ok(())
}

pub(crate) fn backward_splice<B: Backend, T: Element>(
    b: &B,
    axis: isize,
    i: usize,
    (shapes, out_shape): (&[Shape], &Shape),
    dout: B::Ref<'_, T>,
    din: B::Mut<'_, T>,
    ctx: RowCtx,
) -> Result<()> {
    let per_row = B::mut_len(&din) == ctx.n * shapes[i].numel();
    b.splice_backward(
        &splice_geom(shapes, out_shape, axis, i),
        dout,
        din,
        ctx.n,
        per_row,
    );
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

pub(crate) fn forward_reshape<B: Backend, T: Element>(
    b: &B,
    x: Arg<B, T>,
    out: B::Mut<'_, T>,
) -> Result<()> {
    let x = dense("Reshape", &x)?;
    let len = B::mut_len(&out);
    b.copy(B::sub(x.data, 0..len), out);
    Ok(())
}

pub(crate) fn backward_reshape<B: Backend, T: Element>(
    b: &B,
    dout: B::Ref<'_, T>,
    din: B::Mut<'_, T>,
) -> Result<()> {
    if B::mut_len(&din) == B::ref_len(dout) {
        b.add(dout, din, crate::backend::Par::Seq);
    } else {
        // static operand reshaped and broadcast over rows: sum the rows
        b.sum_rows(dout, din);
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

/// Most axes a transposed sample may have (index state lives on the stack: transpose
/// runs per row, and per time step inside loops).
const MAX_TRANSPOSE_RANK: usize = crate::backend::elementwise::MAX_RANK;

pub(crate) fn forward_transpose<B: Backend, T: Element>(
    b: &B,
    perm: &[usize],
    x: Arg<B, T>,
    shape: &Shape,
    out: B::Mut<'_, T>,
    ctx: RowCtx,
) -> Result<()> {
    let x = dense("TransposeAxes", &x)?;
    b.permute(&PermuteGeom::new(perm, shape), x.data, out, ctx.n);
    Ok(())
}

pub(crate) fn backward_transpose<B: Backend, T: Element>(
    b: &B,
    perm: &[usize],
    shape: &Shape,
    dout: B::Ref<'_, T>,
    din: B::Mut<'_, T>,
    ctx: RowCtx,
) -> Result<()> {
    let per_row = B::mut_len(&din) == ctx.n * shape.numel();
    b.permute_backward(&PermuteGeom::new(perm, shape), dout, din, ctx.n, per_row);
    Ok(())
}

//! Convolution, transposed convolution, pooling and max unpooling: shape rules and the
//! forward/backward recipes. The arithmetic is the device's (`backend::conv::Convolutions`);
//! the geometry comes from `conv_attrs`.
//!
//! All four are row-local: each sample (an image `(C, spatial…)`) is computed from the
//! same sample of the operand and the shared filter, so a minibatch — or a sequence of
//! images, step by step — is one kernel call over all its rows.
//!
//! ```text
//!   convolution            y  = conv(x, W)           dx += convᵀ(dy, W)   dW += patches(x)·dyᵀ
//!   convolution_transpose  y  = convᵀ(x, W)          dx += conv(dy, W)    dW += patches(dy)·xᵀ
//!   pooling                y  = pool(x)              dx += ∂pool/∂x·dy (max: to the first maximum)
//!   unpooling(u, x)        y  = u at the first max   du += dy at the cell u went to; x: none
//! ```
//!
//! CNTK 2.7's own gradient of max unpooling with respect to `u` is `max_pool(dy)`, not
//! the derivative (tests/fixtures/cntk_conv/README.md); rntk computes the derivative.

use super::conv_attrs::{conv_geometry, pool_geometry, ConvAttrs, PoolAttrs};
use super::{dense_info, expect_arity, join_axes, Inferred, RowCtx, VarInfo};
use crate::backend::conv::{ConvGeometry, PoolGeometry};
use crate::backend::{Arg, Backend, Par};
use crate::error::{Error, Result};
use crate::tensor::{DynamicAxes, Element, Shape};

fn dense_operand(op: &str, name: &str, i: &VarInfo, what: &str) -> Result<()> {
    if i.is_sparse {
        return Err(Error::shape(
            op,
            name,
            format!("the {what} cannot be sparse"),
        ));
    }
    if i.shape.has_inferred() {
        return Err(Error::shape(
            op,
            name,
            format!("the {what} has an undetermined shape {}", i.shape),
        ));
    }
    Ok(())
}

/// Shape rule of `convolution(W, x)` / `convolution_transpose(W, x)`.
pub(crate) fn infer_conv(
    op: &str,
    name: &str,
    infos: &[VarInfo],
    a: &ConvAttrs,
    transpose: bool,
) -> Result<Inferred> {
    expect_arity(op, name, infos, 2)?;
    let (w, x) = (&infos[0], &infos[1]);
    dense_operand(op, name, w, "filter")?;
    dense_operand(op, name, x, "operand")?;
    if w.axes != DynamicAxes::None {
        return Err(Error::axes(
            op,
            name,
            "the filter must be a static tensor (a parameter or constant)",
        ));
    }
    if a.sequential {
        return Err(Error::Unsupported(format!(
            "{op} '{name}': a sequential transposed convolution"
        )));
    }
    let (_, out) = conv_geometry(a, w.shape.dims(), x.shape.dims(), transpose).map_err(|d| {
        Error::shape(
            op,
            name,
            format!("filter {} with operand {}: {d}", w.shape, x.shape),
        )
    })?;
    Ok(Inferred::one(dense_info(
        Shape::new(out),
        x,
        x.axes.clone(),
    )))
}

/// Shape rule of `pooling(x)`.
pub(crate) fn infer_pool(
    op: &str,
    name: &str,
    infos: &[VarInfo],
    a: &PoolAttrs,
) -> Result<Inferred> {
    expect_arity(op, name, infos, 1)?;
    let x = &infos[0];
    dense_operand(op, name, x, "operand")?;
    let (_, out) = pool_geometry(a, x.shape.dims())
        .map_err(|d| Error::shape(op, name, format!("operand {}: {d}", x.shape)))?;
    Ok(Inferred::one(dense_info(
        Shape::new(out),
        x,
        x.axes.clone(),
    )))
}

/// Shape rule of `unpooling(u, x)`: `u` must have the shape pooling `x` gives.
pub(crate) fn infer_unpool(
    op: &str,
    name: &str,
    infos: &[VarInfo],
    a: &PoolAttrs,
) -> Result<Inferred> {
    expect_arity(op, name, infos, 2)?;
    let (u, x) = (&infos[0], &infos[1]);
    dense_operand(op, name, u, "unpooled operand")?;
    dense_operand(op, name, x, "pooling input")?;
    if a.kind != super::conv_attrs::PoolingType::Max {
        return Err(Error::Unsupported(format!(
            "{op} '{name}': only max unpooling exists"
        )));
    }
    let (_, pooled) = pool_geometry(a, x.shape.dims())
        .map_err(|d| Error::shape(op, name, format!("pooling input {}: {d}", x.shape)))?;
    if u.shape.dims() != pooled.as_slice() {
        return Err(Error::shape(
            op,
            name,
            format!(
                "the unpooled operand has shape {} but pooling {} gives {}",
                u.shape,
                x.shape,
                Shape::new(pooled)
            ),
        ));
    }
    let axes = join_axes(op, name, &[u, x])?;
    Ok(Inferred::one(dense_info(x.shape.clone(), x, axes)))
}

fn runtime(op: &str, detail: String) -> Error {
    Error::Runtime {
        op: op.into(),
        name: String::new(),
        detail,
    }
}

fn conv_geom(a: &ConvAttrs, shapes: &[Shape], transpose: bool) -> Result<ConvGeometry> {
    conv_geometry(a, shapes[0].dims(), shapes[1].dims(), transpose)
        .map(|g| g.0)
        .map_err(|d| runtime("Convolution", d))
}

fn pool_geom(a: &PoolAttrs, x: &Shape) -> Result<PoolGeometry> {
    pool_geometry(a, x.dims())
        .map(|g| g.0)
        .map_err(|d| runtime("Pooling", d))
}

/// Rows of a data operand in this call (a static one is one sample).
pub(super) fn rows<B: Backend, T: Element>(a: &Arg<B, T>, ctx: RowCtx) -> usize {
    if a.is_static() {
        1
    } else {
        ctx.n
    }
}

/// The first `len` values of a dense operand.
pub(super) fn dense<'a, B: Backend, T: Element>(
    a: &Arg<'a, B, T>,
    len: usize,
    what: &str,
) -> Result<B::Ref<'a, T>> {
    let d = a
        .dense()
        .ok_or_else(|| Error::Unsupported(format!("convolution: a sparse {what}")))?;
    Ok(B::sub(d.data, 0..len))
}

/// The first `len` values of a view.
pub(super) fn head<'a, B: Backend, T: Element>(r: B::Ref<'a, T>, len: usize) -> B::Ref<'a, T> {
    B::sub(r, 0..len)
}

/// The first `len` values of a writable view.
pub(super) fn head_mut<'a, B: Backend, T: Element>(m: B::Mut<'a, T>, len: usize) -> B::Mut<'a, T> {
    B::sub_mut(m, 0..len)
}

/// Forward of `convolution` (`transpose`: of `convolution_transpose`) over the rows.
pub(crate) fn forward_conv<B: Backend, T: Element>(
    b: &B,
    (a, transpose): (&ConvAttrs, bool),
    args: &[Arg<B, T>],
    shapes: &[Shape],
    out: B::Mut<'_, T>,
    ctx: RowCtx,
) -> Result<()> {
    let g = conv_geom(a, shapes, transpose)?;
    let n = rows(&args[1], ctx);
    let w = dense(&args[0], g.filter_size(), "filter")?;
    // the convolution's own input and output sizes (the transpose swaps them)
    let (cin, cout) = (n * g.in_size(), n * g.out_size());
    if transpose {
        let x = dense(&args[1], cout, "operand")?;
        b.conv_backward_data(&g, n, x, w, head_mut::<B, T>(out, cin), false, ctx.par);
    } else {
        let x = dense(&args[1], cin, "operand")?;
        b.conv_forward(&g, n, x, w, head_mut::<B, T>(out, cout), false, ctx.par);
    }
    Ok(())
}

/// Backward of `convolution` / `convolution_transpose` for operand `i` (0 = W, 1 = x).
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward_conv<B: Backend, T: Element>(
    b: &B,
    (a, transpose): (&ConvAttrs, bool),
    i: usize,
    args: &[Arg<B, T>],
    shapes: &[Shape],
    dout: B::Ref<'_, T>,
    din: B::Mut<'_, T>,
    ctx: RowCtx,
) -> Result<()> {
    let g = conv_geom(a, shapes, transpose)?;
    let n = rows(&args[1], ctx);
    let (cin, cout) = (n * g.in_size(), n * g.out_size());
    let (xl, yl) = if transpose { (cout, cin) } else { (cin, cout) };
    let dy = head::<B, T>(dout, yl);
    let p = ctx.par;
    // the data gradient is written when the executor left `din` unzeroed (it always
    // covers the whole view; should it not, zeros first, then the usual add)
    let mut din = din;
    let add = !ctx.assign || B::mut_len(&din) != xl;
    if ctx.assign && add {
        b.zero(B::reborrow(&mut din), Par::Seq);
    }
    match (i, transpose) {
        (0, false) => {
            let x = dense(&args[1], xl, "operand")?;
            b.conv_backward_filter(&g, n, x, dy, din, true, p)
        }
        (0, true) => {
            let x = dense(&args[1], xl, "operand")?;
            b.conv_backward_filter(&g, n, dy, x, din, true, p)
        }
        (_, false) => {
            let w = dense(&args[0], g.filter_size(), "filter")?;
            b.conv_backward_data(&g, n, dy, w, head_mut::<B, T>(din, cin), add, p)
        }
        (_, true) => {
            let w = dense(&args[0], g.filter_size(), "filter")?;
            b.conv_forward(&g, n, dy, w, head_mut::<B, T>(din, cout), add, p)
        }
    }
    Ok(())
}

pub(crate) fn forward_pool<B: Backend, T: Element>(
    b: &B,
    a: &PoolAttrs,
    args: &[Arg<B, T>],
    shapes: &[Shape],
    out: B::Mut<'_, T>,
    ctx: RowCtx,
) -> Result<()> {
    let g = pool_geom(a, &shapes[0])?;
    let n = rows(&args[0], ctx);
    let x = dense(&args[0], n * g.in_size(), "operand")?;
    let y = head_mut::<B, T>(out, n * g.out_size());
    b.pool_forward(&g, (a.pool_kind(), n), x, y, ctx.par);
    Ok(())
}

pub(crate) fn backward_pool<B: Backend, T: Element>(
    b: &B,
    a: &PoolAttrs,
    args: &[Arg<B, T>],
    shapes: &[Shape],
    dout: B::Ref<'_, T>,
    din: B::Mut<'_, T>,
    ctx: RowCtx,
) -> Result<()> {
    let g = pool_geom(a, &shapes[0])?;
    let n = rows(&args[0], ctx);
    let (ni, no) = (n * g.in_size(), n * g.out_size());
    let x = dense(&args[0], ni, "operand")?;
    let (dy, dx) = (head::<B, T>(dout, no), head_mut::<B, T>(din, ni));
    b.pool_backward(&g, (a.pool_kind(), n), x, dy, dx, true, ctx.par);
    Ok(())
}

/// Rows of unpooling: the operands may differ in dynamic axes only by a static one.
fn unpool_rows<B: Backend, T: Element>(args: &[Arg<B, T>], ctx: RowCtx) -> Result<usize> {
    if args[0].is_static() != args[1].is_static() {
        return Err(Error::Unsupported(
            "unpooling: the unpooled operand and the pooling input must both be data or both static"
                .into(),
        ));
    }
    Ok(rows(&args[1], ctx))
}

pub(crate) fn forward_unpool<B: Backend, T: Element>(
    b: &B,
    a: &PoolAttrs,
    args: &[Arg<B, T>],
    shapes: &[Shape],
    out: B::Mut<'_, T>,
    ctx: RowCtx,
) -> Result<()> {
    let g = pool_geom(a, &shapes[1])?;
    let n = unpool_rows(args, ctx)?;
    let (ni, no) = (n * g.in_size(), n * g.out_size());
    let (u, x) = (
        dense(&args[0], no, "operand")?,
        dense(&args[1], ni, "operand")?,
    );
    b.unpool_forward(&g, n, (u, x), head_mut::<B, T>(out, ni), ctx.par);
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn backward_unpool<B: Backend, T: Element>(
    b: &B,
    a: &PoolAttrs,
    i: usize,
    args: &[Arg<B, T>],
    shapes: &[Shape],
    dout: B::Ref<'_, T>,
    din: B::Mut<'_, T>,
    ctx: RowCtx,
) -> Result<()> {
    if i != 0 {
        // the positions are piecewise constant in x: no gradient
        return Ok(());
    }
    let g = pool_geom(a, &shapes[1])?;
    let n = unpool_rows(args, ctx)?;
    let (ni, no) = (n * g.in_size(), n * g.out_size());
    let x = dense(&args[1], ni, "operand")?;
    let (dy, du) = (head::<B, T>(dout, ni), head_mut::<B, T>(din, no));
    b.unpool_backward(&g, n, x, dy, du, true, ctx.par);
    Ok(())
}

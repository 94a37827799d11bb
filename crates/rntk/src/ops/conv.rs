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
use super::{dense_info, expect_arity, join_axes, Arg, Inferred, RowCtx};
use crate::backend::conv::{ConvGeometry, Convolutions, PoolGeometry};
use crate::backend::cpu::conv::CpuConv;
use crate::error::{Error, Result};
use crate::graph::{DynamicAxes, VarInfo};
use crate::tensor::{Element, Shape};

/// The device the recipes run on (the CPU until the backend seam passes one in).
const DEV: CpuConv = CpuConv;

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
fn rows<T>(a: &Arg<T>, ctx: RowCtx) -> usize {
    if a.is_static() {
        1
    } else {
        ctx.n
    }
}

fn dense<'a, T>(a: &Arg<'a, T>, what: &str) -> Result<&'a [T]> {
    a.dense()
        .ok_or_else(|| Error::Unsupported(format!("convolution: a sparse {what}")))
}

/// Forward of `convolution` (`transpose`: of `convolution_transpose`) over the rows.
pub(crate) fn forward_conv<T: Element>(
    a: &ConvAttrs,
    transpose: bool,
    args: &[Arg<T>],
    shapes: &[Shape],
    out: &mut [T],
    ctx: RowCtx,
) -> Result<()> {
    let g = conv_geom(a, shapes, transpose)?;
    let (w, x) = (dense(&args[0], "filter")?, dense(&args[1], "operand")?);
    let n = rows(&args[1], ctx);
    if transpose {
        let y = &mut out[..n * g.in_size()];
        DEV.conv_backward_data(&g, n, &x[..n * g.out_size()], w, y, false);
    } else {
        let y = &mut out[..n * g.out_size()];
        DEV.conv_forward(&g, n, &x[..n * g.in_size()], w, y, false);
    }
    Ok(())
}

/// Backward of `convolution` / `convolution_transpose` for operand `i` (0 = W, 1 = x).
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward_conv<T: Element>(
    a: &ConvAttrs,
    transpose: bool,
    i: usize,
    args: &[Arg<T>],
    shapes: &[Shape],
    dout: &[T],
    din: &mut [T],
    ctx: RowCtx,
) -> Result<()> {
    let g = conv_geom(a, shapes, transpose)?;
    let (w, x) = (dense(&args[0], "filter")?, dense(&args[1], "operand")?);
    let n = rows(&args[1], ctx);
    // the convolution's own input and output sizes (the transpose swaps them)
    let (cin, cout) = (n * g.in_size(), n * g.out_size());
    match (i, transpose) {
        (0, false) => DEV.conv_backward_filter(&g, n, &x[..cin], &dout[..cout], din, true),
        (0, true) => DEV.conv_backward_filter(&g, n, &dout[..cin], &x[..cout], din, true),
        (_, false) => DEV.conv_backward_data(&g, n, &dout[..cout], w, &mut din[..cin], true),
        (_, true) => DEV.conv_forward(&g, n, &dout[..cin], w, &mut din[..cout], true),
    }
    Ok(())
}

pub(crate) fn forward_pool<T: Element>(
    a: &PoolAttrs,
    args: &[Arg<T>],
    shapes: &[Shape],
    out: &mut [T],
    ctx: RowCtx,
) -> Result<()> {
    let g = pool_geom(a, &shapes[0])?;
    let n = rows(&args[0], ctx);
    let x = dense(&args[0], "operand")?;
    DEV.pool_forward(
        &g,
        a.pool_kind(),
        n,
        &x[..n * g.in_size()],
        &mut out[..n * g.out_size()],
    );
    Ok(())
}

pub(crate) fn backward_pool<T: Element>(
    a: &PoolAttrs,
    args: &[Arg<T>],
    shapes: &[Shape],
    dout: &[T],
    din: &mut [T],
    ctx: RowCtx,
) -> Result<()> {
    let g = pool_geom(a, &shapes[0])?;
    let n = rows(&args[0], ctx);
    let x = dense(&args[0], "operand")?;
    let (ni, no) = (n * g.in_size(), n * g.out_size());
    DEV.pool_backward(
        &g,
        a.pool_kind(),
        n,
        &x[..ni],
        &dout[..no],
        &mut din[..ni],
        true,
    );
    Ok(())
}

/// Rows of unpooling: the operands may differ in dynamic axes only by a static one.
fn unpool_rows<T>(args: &[Arg<T>], ctx: RowCtx) -> Result<usize> {
    if args[0].is_static() != args[1].is_static() {
        return Err(Error::Unsupported(
            "unpooling: the unpooled operand and the pooling input must both be data or both static"
                .into(),
        ));
    }
    Ok(rows(&args[1], ctx))
}

pub(crate) fn forward_unpool<T: Element>(
    a: &PoolAttrs,
    args: &[Arg<T>],
    shapes: &[Shape],
    out: &mut [T],
    ctx: RowCtx,
) -> Result<()> {
    let g = pool_geom(a, &shapes[1])?;
    let n = unpool_rows(args, ctx)?;
    let (u, x) = (dense(&args[0], "operand")?, dense(&args[1], "operand")?);
    let (ni, no) = (n * g.in_size(), n * g.out_size());
    DEV.unpool_forward(&g, n, &u[..no], &x[..ni], &mut out[..ni]);
    Ok(())
}

pub(crate) fn backward_unpool<T: Element>(
    a: &PoolAttrs,
    i: usize,
    args: &[Arg<T>],
    shapes: &[Shape],
    dout: &[T],
    din: &mut [T],
    ctx: RowCtx,
) -> Result<()> {
    if i != 0 {
        // the positions are piecewise constant in x: no gradient
        return Ok(());
    }
    let g = pool_geom(a, &shapes[1])?;
    let n = unpool_rows(args, ctx)?;
    let x = dense(&args[1], "operand")?;
    let (ni, no) = (n * g.in_size(), n * g.out_size());
    DEV.unpool_backward(&g, n, &x[..ni], &dout[..ni], &mut din[..no], true);
    Ok(())
}

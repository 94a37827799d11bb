//! Sequential convolution (`convolution(W, x, sequential=True)`): the filter's first
//! spatial axis runs along the sequence axis — text CNNs over sequences of word vectors.
//!
//! Each sequence of `T` steps of shape `(C, s…)` is one image `(C, T, s…)`; it is
//! convolved like any image (the per-axis lists cover `(C, T, s…)`, so padding and
//! strides along the sequence follow CNTK's rules per sequence: `T` steps out with
//! padding, `⌈T/stride⌉` with a stride, `T − k + 1` without padding), and the output
//! image `(O, T', s'…)` becomes a sequence of `T'` steps of shape `(O, s'…)`. A whole op:
//! it needs every step of a sequence.
//!
//! ```text
//!   packed rows (time-major)  ──gather──▶  image (C, T, s…) per sequence
//!   conv / convᵀ / filter gradient on the image (the device's kernels, one image at a time)
//!   image (O, T', s'…)        ──scatter─▶  packed rows of the output layout
//! ```

use super::conv_attrs::{conv_geometry_seq, ConvAttrs};
use super::{dense_info, expect_arity, Arg, Inferred, WholeArg};
use crate::backend::conv::{ConvGeometry, Convolutions};
use crate::backend::cpu::conv::CpuConv;
use crate::error::{Error, Result};
use crate::graph::{DynamicAxes, VarInfo};
use crate::tensor::{Element, Layout, PackedLayout, Shape};
use std::sync::Arc;

const DEV: CpuConv = CpuConv;
const OP: &str = "Convolution";

/// The image of a sequence of `t` steps of shape `x`: the sequence axis after the
/// channel axis (reduction_rank 1) or first (reduction_rank 0).
fn image_dims(a: &ConvAttrs, x: &[usize], t: usize) -> Vec<usize> {
    let at = a.reduction_rank.min(x.len());
    let mut d = x.to_vec();
    d.insert(at, t);
    d
}

fn geometry(
    a: &ConvAttrs,
    w: &[usize],
    x: &[usize],
    t: usize,
) -> std::result::Result<(ConvGeometry, Vec<usize>), String> {
    conv_geometry_seq(a, w, &image_dims(a, x, t), false, true)
}

/// Per-step output shape: the output image without its sequence axis.
fn step_shape(out: &[usize]) -> Vec<usize> {
    let mut s = out.to_vec();
    s.remove(1);
    s
}

pub(crate) fn infer(name: &str, infos: &[VarInfo], a: &ConvAttrs) -> Result<Inferred> {
    expect_arity(OP, name, infos, 2)?;
    let (w, x) = (&infos[0], &infos[1]);
    if w.is_sparse || x.is_sparse || w.axes != DynamicAxes::None {
        return Err(Error::shape(
            OP,
            name,
            "the filter must be a dense static tensor and the operand dense",
        ));
    }
    if !matches!(x.axes, DynamicAxes::Sequence { .. }) {
        return Err(Error::axes(
            OP,
            name,
            "sequential convolution needs an operand with a sequence axis",
        ));
    }
    let wd = w.shape.dims();
    // the sequence axis's kernel: long enough a sequence to check the other axes
    let kt = wd.get(1 + a.reduction_rank).copied().unwrap_or(1);
    let t = kt.max(1) * a.dilation.iter().copied().max().unwrap_or(1).max(1);
    let (_, out) = geometry(a, wd, x.shape.dims(), t).map_err(|d| {
        Error::shape(
            OP,
            name,
            format!("filter {} with sequence steps {}: {d}", w.shape, x.shape),
        )
    })?;
    Ok(Inferred::one(dense_info(
        Shape::new(step_shape(&out)),
        x,
        x.axes.clone(),
    )))
}

fn rt(detail: String) -> Error {
    Error::Runtime {
        op: OP.into(),
        name: String::new(),
        detail,
    }
}

fn packed<'a, T>(a: &'a WholeArg<T>) -> Result<&'a Arc<PackedLayout>> {
    a.layout.packed().ok_or_else(|| {
        rt(format!(
            "the operand must be sequences, got {}",
            a.layout.describe()
        ))
    })
}

fn dense<'a, T>(a: &WholeArg<'a, T>) -> Result<&'a [T]> {
    match a.data {
        Arg::Rows(x) | Arg::Static(x) => Ok(x),
        Arg::Sparse(_) => Err(rt("a sparse operand".into())),
    }
}

/// The geometry of sequence `i`'s image.
fn seq_geom<T>(a: &ConvAttrs, args: &[WholeArg<T>], len: usize) -> Result<ConvGeometry> {
    geometry(a, args[0].shape.dims(), args[1].shape.dims(), len)
        .map(|g| g.0)
        .map_err(|d| rt(format!("a sequence of {len} steps: {d}")))
}

/// The output's layout: each sequence's length after the convolution.
pub(crate) fn layout<T>(a: &ConvAttrs, args: &[WholeArg<T>]) -> Result<Layout> {
    let p = packed(&args[1])?;
    let lengths = p
        .lengths()
        .iter()
        .map(|&l| seq_geom(a, args, l).map(|g| g.axes[0].output))
        .collect::<Result<Vec<_>>>()?;
    let p = PackedLayout::new(&lengths).map_err(|e| rt(e.to_string()))?;
    Ok(Layout::Sequence(Arc::new(p)))
}

/// Where step `t`'s values sit in sequence `i`'s image, whose sequence axis lies between
/// `lead` leading and `inner` trailing values per step: `f(row offset, image offset)` for
/// each run of `inner` values.
fn runs(
    p: &PackedLayout,
    i: usize,
    (lead, inner): (usize, usize),
    mut f: impl FnMut(usize, usize),
) {
    let len = p.lengths()[i];
    for t in 0..len {
        let r = p.row(i, t) * lead * inner;
        for c in 0..lead {
            f(r + c * inner, (c * len + t) * inner);
        }
    }
}

/// Sequence `i`'s rows copied into its image.
fn gather<T: Element>(rows: &[T], img: &mut [T], p: &PackedLayout, i: usize, li: (usize, usize)) {
    let n = li.1;
    runs(p, i, li, |r, m| {
        img[m..m + n].copy_from_slice(&rows[r..r + n])
    });
}

/// Sequence `i`'s image added into its rows.
fn scatter_add<T: Element>(
    rows: &mut [T],
    img: &[T],
    p: &PackedLayout,
    i: usize,
    li: (usize, usize),
) {
    let n = li.1;
    runs(p, i, li, |r, m| {
        rows[r..r + n]
            .iter_mut()
            .zip(&img[m..m + n])
            .for_each(|(d, v)| *d += *v)
    });
}

/// `(lead, inner)` of a per-step shape: the values before and after the sequence axis.
fn split(a: &ConvAttrs, step: &[usize]) -> (usize, usize) {
    let at = a.reduction_rank.min(step.len());
    (step[..at].iter().product(), step[at..].iter().product())
}

pub(crate) fn forward<T: Element>(
    a: &ConvAttrs,
    args: &[WholeArg<T>],
    out_shape: &Shape,
    out_layout: &Layout,
    out: &mut [T],
) -> Result<()> {
    let (w, x) = (dense(&args[0])?, dense(&args[1])?);
    let (pin, pout) = (packed(&args[1])?, packed_out(out_layout)?);
    let (xs, ys) = (split(a, args[1].shape.dims()), split(a, out_shape.dims()));
    out.fill(T::zero());
    for i in 0..pin.num_sequences() {
        let g = seq_geom(a, args, pin.lengths()[i])?;
        let mut img = vec![T::zero(); g.in_size()];
        gather(x, &mut img, pin, i, xs);
        let mut yimg = vec![T::zero(); g.out_size()];
        DEV.conv_forward(&g, 1, &img, w, &mut yimg, false);
        scatter_add(out, &yimg, pout, i, ys);
    }
    Ok(())
}

fn packed_out(l: &Layout) -> Result<&Arc<PackedLayout>> {
    l.packed().ok_or_else(|| {
        rt(format!(
            "the output must be sequences, got {}",
            l.describe()
        ))
    })
}

/// Gradient for operand `i` (0 = W, 1 = x), accumulated into `din`.
pub(crate) fn backward<T: Element>(
    a: &ConvAttrs,
    i: usize,
    args: &[WholeArg<T>],
    (out_shape, out_layout): (&Shape, &Layout),
    dout: &[T],
    din: &mut [T],
) -> Result<()> {
    let (w, x) = (dense(&args[0])?, dense(&args[1])?);
    let (pin, pout) = (packed(&args[1])?, packed_out(out_layout)?);
    let (xs, ys) = (split(a, args[1].shape.dims()), split(a, out_shape.dims()));
    for s in 0..pin.num_sequences() {
        let g = seq_geom(a, args, pin.lengths()[s])?;
        let mut dy = vec![T::zero(); g.out_size()];
        gather(dout, &mut dy, pout, s, ys);
        let mut img = vec![T::zero(); g.in_size()];
        if i == 0 {
            gather(x, &mut img, pin, s, xs);
            DEV.conv_backward_filter(&g, 1, &img, &dy, din, true);
        } else {
            DEV.conv_backward_data(&g, 1, &dy, w, &mut img, false);
            scatter_add(din, &img, pin, s, xs);
        }
    }
    Ok(())
}

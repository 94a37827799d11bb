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
//!
//! The gather and the scatter are row maps of the `Copies` family (`copy_rows`,
//! `add_rows`) over runs of the values after the sequence axis. Nothing is allocated per
//! sequence, and a warm minibatch allocates nothing here: the images live in the node's
//! scratch buffers on the device (`work`, `aux`: grown to the longest sequence's image),
//! the row maps in its host scratch (`pairs`), and the output layout is kept for as long
//! as minibatches repeat the input's sequence lengths (`out_layout`).

use super::conv_attrs::{conv_geometry_seq, ConvAttrs};
use super::{dense_info, expect_arity, zeroed, Inferred, NodeState, Op, RowCtx, VarInfo, WholeArg};
use crate::backend::conv::ConvGeometry;
use crate::backend::{Arg, Backend};
use crate::error::{Error, Result};
use crate::tensor::{DynamicAxes, Element, Layout, PackedLayout, Shape};
use std::sync::Arc;

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

fn packed<'a, B: Backend, T: Element>(a: &'a WholeArg<B, T>) -> Result<&'a Arc<PackedLayout>> {
    a.layout.packed().ok_or_else(|| {
        rt(format!(
            "the operand must be sequences, got {}",
            a.layout.describe()
        ))
    })
}

fn dense<'a, B: Backend, T: Element>(a: &WholeArg<'a, B, T>) -> Result<B::Ref<'a, T>> {
    match a.data {
        Arg::Rows(x) | Arg::Static(x) => Ok(x),
        Arg::Sparse(_) => Err(rt("a sparse operand".into())),
    }
}

/// The geometry of sequence `i`'s image.
fn seq_geom<B: Backend, T: Element>(
    a: &ConvAttrs,
    args: &[WholeArg<B, T>],
    len: usize,
) -> Result<ConvGeometry> {
    geometry(a, args[0].shape.dims(), args[1].shape.dims(), len)
        .map(|g| g.0)
        .map_err(|d| rt(format!("a sequence of {len} steps: {d}")))
}

/// The output's layout: each sequence's length after the convolution (the input's
/// layout itself where no length changes; the last call's while the lengths repeat).
fn layout<B: Backend, T: Element>(
    a: &ConvAttrs,
    args: &[WholeArg<B, T>],
    cache: &mut Option<(Layout, Layout)>,
) -> Result<Layout> {
    let p = packed(&args[1])?;
    if let Some((inp, out)) = cache.as_ref() {
        if inp.packed().is_some_and(|q| q.lengths() == p.lengths()) {
            return Ok(out.clone());
        }
    }
    let lengths = p
        .lengths()
        .iter()
        .map(|&l| seq_geom(a, args, l).map(|g| g.axes[0].output))
        .collect::<Result<Vec<_>>>()?;
    let out = if lengths == p.lengths() {
        args[1].layout.clone()
    } else {
        let q = PackedLayout::new(&lengths).map_err(|e| rt(e.to_string()))?;
        Layout::Sequence(Arc::new(q))
    };
    *cache = Some((args[1].layout.clone(), out.clone()));
    Ok(out)
}

/// The row map between sequence `i`'s packed rows and its image, whose sequence axis
/// lies between `lead` leading and `inner` trailing values per step, in units of runs
/// of `inner` values: `(run in the rows, run in the image)` for every step and lead.
fn runs(p: &PackedLayout, i: usize, lead: usize, pairs: &mut Vec<(usize, usize)>) {
    let len = p.lengths()[i];
    pairs.clear();
    for t in 0..len {
        let r = p.row(i, t) * lead;
        pairs.extend((0..lead).map(|c| (r + c, c * len + t)));
    }
}

/// Swap each pair: image → rows.
fn flipped(pairs: &mut [(usize, usize)]) {
    pairs.iter_mut().for_each(|p| *p = (p.1, p.0));
}

/// `(lead, inner)` of a per-step shape: the values before and after the sequence axis.
fn split(a: &ConvAttrs, step: &[usize]) -> (usize, usize) {
    let at = a.reduction_rank.min(step.len());
    (step[..at].iter().product(), step[at..].iter().product())
}

/// A scratch buffer of the node holding at least `len` values.
fn scratch<B: Backend, T: Element>(b: &B, buf: &mut B::Buf<T>, len: usize) {
    if B::len(buf) < len {
        b.resize(buf, len);
    }
}

/// Forward: sizes `out` for the output's layout (each sequence's length after the
/// convolution) and fills it; returns the layout.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward<B: Backend, T: Element>(
    b: &B,
    (op, a): (&Op, &ConvAttrs),
    args: &[WholeArg<B, T>],
    out_shape: &Shape,
    out: &mut B::Buf<T>,
    ctx: RowCtx,
    st: &mut NodeState<B, T>,
) -> Result<Layout> {
    let out_layout = layout(a, args, &mut st.out_layout)?;
    zeroed(b, op, out, (out_layout.rows(), out_shape.numel()))?;
    let (w, x) = (dense(&args[0])?, dense(&args[1])?);
    let (pin, pout) = (packed(&args[1])?, packed_out(&out_layout)?);
    let (xs, ys) = (split(a, args[1].shape.dims()), split(a, out_shape.dims()));
    let mut pairs = std::mem::take(&mut st.pairs);
    for i in 0..pin.num_sequences() {
        let g = seq_geom(a, args, pin.lengths()[i])?;
        scratch(b, &mut st.work, g.in_size());
        scratch(b, &mut st.aux, g.out_size());
        let img = B::sub_mut(B::view_mut(&mut st.work), 0..g.in_size());
        runs(pin, i, xs.0, &mut pairs);
        b.copy_rows(xs.1, &pairs, x, img);
        let (img, yimg) = (
            B::sub(B::view(&st.work), 0..g.in_size()),
            B::sub_mut(B::view_mut(&mut st.aux), 0..g.out_size()),
        );
        b.conv_forward(&g, 1, img, w, yimg, false, ctx.par);
        runs(pout, i, ys.0, &mut pairs);
        flipped(&mut pairs);
        let yimg = B::sub(B::view(&st.aux), 0..g.out_size());
        b.add_rows(ys.1, &pairs, yimg, B::view_mut(out));
    }
    st.pairs = pairs;
    Ok(out_layout)
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
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward<B: Backend, T: Element>(
    b: &B,
    a: &ConvAttrs,
    i: usize,
    args: &[WholeArg<B, T>],
    (out_shape, out_layout): (&Shape, &Layout),
    dout: B::Ref<'_, T>,
    mut din: B::Mut<'_, T>,
    ctx: RowCtx,
    st: &mut NodeState<B, T>,
) -> Result<()> {
    let (w, x) = (dense(&args[0])?, dense(&args[1])?);
    let (pin, pout) = (packed(&args[1])?, packed_out(out_layout)?);
    let (xs, ys) = (split(a, args[1].shape.dims()), split(a, out_shape.dims()));
    let mut pairs = std::mem::take(&mut st.pairs);
    for s in 0..pin.num_sequences() {
        let g = seq_geom(a, args, pin.lengths()[s])?;
        let (ni, no) = (g.in_size(), g.out_size());
        scratch(b, &mut st.work, ni);
        scratch(b, &mut st.aux, no);
        runs(pout, s, ys.0, &mut pairs);
        b.copy_rows(
            ys.1,
            &pairs,
            dout,
            B::sub_mut(B::view_mut(&mut st.aux), 0..no),
        );
        let dy = B::sub(B::view(&st.aux), 0..no);
        if i == 0 {
            runs(pin, s, xs.0, &mut pairs);
            b.copy_rows(
                xs.1,
                &pairs,
                x,
                B::sub_mut(B::view_mut(&mut st.work), 0..ni),
            );
            let img = B::sub(B::view(&st.work), 0..ni);
            b.conv_backward_filter(&g, 1, img, dy, B::reborrow(&mut din), true, ctx.par);
        } else {
            let img = B::sub_mut(B::view_mut(&mut st.work), 0..ni);
            b.conv_backward_data(&g, 1, dy, w, img, false, ctx.par);
            runs(pin, s, xs.0, &mut pairs);
            flipped(&mut pairs);
            let img = B::sub(B::view(&st.work), 0..ni);
            b.add_rows(xs.1, &pairs, img, B::reborrow(&mut din));
        }
    }
    st.pairs = pairs;
    Ok(())
}

//! Batch normalization (CNTK's `BatchNormalization` node): statistics over every sample
//! of the minibatch (batch and sequence axes) in training, the running estimates in
//! inference, and the running estimates' update rule with `normalization_time_constant`.
//!
//! Operands: `[x, scale, bias, running_mean, running_variance, running_count]`. The
//! statistics are per element of the sample shape, or per leading-axis channel when
//! `spatial` (CNTK's `map_rank=1`); scale, bias and the estimates are vectors of one
//! entry per statistic. A whole op: it needs every row of the minibatch.
//!
//! Verified against CNTK 2.7 (tests/fixtures/cntk_layers): the output uses the *biased*
//! minibatch variance, `y = (x − μ)/√(σ² + ε)·scale + bias`; the running variance
//! accumulates the *unbiased* one (k/(k−1), k values per statistic); the first training
//! minibatch (running count 0) replaces the estimates outright; afterwards they move by
//! `1 − exp(−m/τ)` (m samples in the minibatch), `τ = 0` keeps only the last minibatch,
//! `τ = ∞` freezes them, `τ < 0` averages over everything seen (`m/(m + count)`). The
//! count grows by m on each training forward. Inference with a never-trained layer
//! simply uses the initial estimates (mean 0, variance 0), as CNTK does.

use super::{dense_info, expect_arity, Inferred, NodeState, RowCtx, VarInfo, WholeArg};
use crate::backend::reduce::NormGeom;
use crate::backend::{Backend, Par};
use crate::error::{Error, Result};
use crate::tensor::{DynamicAxes, Element, Shape};

pub(crate) fn infer(op: &str, name: &str, infos: &[VarInfo], spatial: bool) -> Result<Inferred> {
    expect_arity(op, name, infos, 6)?;
    let x = &infos[0];
    if x.is_sparse {
        return Err(Error::shape(op, name, "cannot normalize a sparse operand"));
    }
    if x.axes == DynamicAxes::None {
        return Err(Error::axes(
            op,
            name,
            "batch normalization needs an operand with a batch axis (its statistics are over the minibatch)",
        ));
    }
    let stat_shape = stat_shape(&x.shape, spatial).ok_or_else(|| {
        Error::shape(
            op,
            name,
            format!(
                "spatial normalization needs an operand of rank ≥ 1, got {}",
                x.shape
            ),
        )
    })?;
    for (k, what) in [
        (1, "scale"),
        (2, "bias"),
        (3, "running mean"),
        (4, "running variance"),
    ] {
        let i = &infos[k];
        if i.axes != DynamicAxes::None {
            return Err(Error::axes(
                op,
                name,
                format!("{what} must be a static tensor"),
            ));
        }
        if i.shape != stat_shape {
            return Err(Error::shape(
                op,
                name,
                format!(
                    "{what} has shape {} but an operand of shape {} needs {stat_shape}",
                    i.shape, x.shape
                ),
            ));
        }
    }
    if infos[5].shape.numel() != 1 || infos[5].axes != DynamicAxes::None {
        return Err(Error::shape(
            op,
            name,
            format!(
                "the running count must be a static scalar, got shape {}",
                infos[5].shape
            ),
        ));
    }
    Ok(Inferred::one(dense_info(
        x.shape.clone(),
        x,
        x.axes.clone(),
    )))
}

/// Shape of the statistics: one per sample element, as a flat vector (CNTK infers
/// `(prod(shape),)` for its parameters), or one per leading-axis channel when spatial.
pub(crate) fn stat_shape(x: &Shape, spatial: bool) -> Option<Shape> {
    if spatial {
        x.dims().first().map(|&c| Shape::from([c]))
    } else {
        Some(Shape::from([x.numel()]))
    }
}

/// Geometry of one forward over the rows of `x`: the statistic of element `e` is
/// `e / inner` (inner = 1 unless spatial).
fn geom<B: Backend, T: Element>(
    (spatial, epsilon, time_constant): (bool, f64, f64),
    x: &WholeArg<B, T>,
    relu: bool,
) -> NormGeom {
    let d = x.shape.numel();
    let groups = if spatial {
        x.shape.dims().first().copied().unwrap_or(1).max(1)
    } else {
        d
    };
    NormGeom {
        rows: x.layout.rows(),
        d,
        groups,
        inner: d / groups,
        epsilon,
        time_constant,
        relu,
    }
}

fn dense<'a, B: Backend, T: Element>(a: &WholeArg<'a, B, T>, what: &str) -> Result<B::Ref<'a, T>> {
    a.data
        .dense()
        .map(|o| o.data)
        .ok_or_else(|| Error::Unsupported(format!("BatchNormalization: sparse {what}")))
}

/// The statistics go to `NodeState::aux`: `[count_after, mean.., invstd.., new_mean..,
/// new_var..]` (one entry per statistic); `NodeState::trained` says whether the running
/// estimates are to be committed.
pub(crate) fn forward<B: Backend, T: Element>(
    b: &B,
    attrs: (bool, f64, f64),
    args: &[WholeArg<B, T>],
    out: B::Mut<'_, T>,
    (training, par): (bool, Par),
    st: &mut NodeState<B, T>,
) -> Result<()> {
    let what = [
        "operand",
        "scale",
        "bias",
        "running mean",
        "running variance",
        "running count",
    ];
    let mut ins = [dense(&args[0], what[0])?; 6];
    for k in 1..6 {
        ins[k] = dense(&args[k], what[k])?;
    }
    let g = geom(attrs, &args[0], st.relu_folded);
    b.resize(&mut st.aux, g.stats_len());
    st.trained = training;
    st.grad_ready = false;
    b.batch_norm(&g, ins, training, out, B::view_mut(&mut st.aux), par);
    Ok(())
}

/// Gradient for operand `i` (0 = x, 1 = scale, 2 = bias), accumulated into `din`. The
/// first call of a backward pass also leaves the scale and bias gradients in
/// `NodeState::grad` (one pass over the data for all three); the later calls add them.
/// With a ReLU folded in (`NodeState::relu_folded`), `(out, dout)` are the ReLU's;
/// `ctx.assign`: `din` (operand 0's) is not zeroed, the gradient is written into it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward<B: Backend, T: Element>(
    b: &B,
    spatial: bool,
    i: usize,
    args: &[WholeArg<B, T>],
    od: (B::Ref<'_, T>, B::Ref<'_, T>),
    din: B::Mut<'_, T>,
    ctx: RowCtx,
    st: &mut NodeState<B, T>,
) -> Result<()> {
    let par = ctx.par;
    let x = dense(&args[0], "operand")?;
    let scale = dense(&args[1], "scale")?;
    let g = geom((spatial, 0.0, 0.0), &args[0], st.relu_folded);
    if B::len(&st.aux) != g.stats_len() {
        return Err(Error::Runtime {
            op: "BatchNormalization".into(),
            name: String::new(),
            detail: "backward without a matching forward".into(),
        });
    }
    let c = g.groups;
    if st.grad_ready && i > 0 && B::len(&st.grad) == 2 * c {
        let part = B::sub(B::view(&st.grad), (i - 1) * c..i * c);
        b.add(part, din, Par::Seq);
        return Ok(());
    }
    b.resize(&mut st.grad, 2 * c);
    b.zero(B::view_mut(&mut st.grad), Par::Seq);
    let stats = B::view(&st.aux);
    b.batch_norm_backward_keep(
        &g,
        i,
        st.trained,
        (x, scale, stats),
        od,
        (din, ctx.assign && i == 0),
        B::view_mut(&mut st.grad),
        par,
    );
    st.grad_ready = true;
    Ok(())
}

/// The running estimates a training forward computed: the mean, variance and count
/// written into the node's operands 3, 4 and 5 once the forward has finished.
pub(crate) fn commit<B: Backend, T: Element>(
    st: &NodeState<B, T>,
    mut write: impl FnMut(usize, B::Ref<'_, T>) -> Result<()>,
) -> Result<()> {
    let stats = B::view(&st.aux);
    let c = (B::ref_len(stats) - 1) / 4;
    write(3, B::sub(stats, 1 + 2 * c..1 + 3 * c))?;
    write(4, B::sub(stats, 1 + 3 * c..1 + 4 * c))?;
    write(5, B::sub(stats, 0..1))
}

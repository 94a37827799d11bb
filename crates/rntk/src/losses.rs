//! CNTK's loss functions (`cntk.losses`), each returning its output variable.
//!
//! Per-sample losses keep the operands' dynamic axes; the Trainer minimises the sum
//! of every element of the loss over the minibatch and reports that sum divided by
//! the sample count of [`sample_count`]. Minibatch-wide losses
//! ([`weighted_binary_cross_entropy`]) have no dynamic axes and already carry the
//! factor N, so that dividing by N gives a per-sample mean.
//!
//! Shape errors name the loss, the output variable and both shapes.

use crate::error::{Error, Result};
use crate::functions::{
    element_times, log, minus, named, negate, plus, reduce_log_sum_exp, reduce_sum, square,
};
use crate::graph::{scalar, Variable};
use crate::ops::Op;
use crate::tensor::{Layout, Value};

pub use crate::ops::metrics_ops::{BCE_EPS, BCE_ONE_PLUS_EPS};

/// An error naming the loss and the operands' shapes.
pub(crate) fn shape_err(f: &str, o: &Variable, detail: String) -> Error {
    Error::shape(f, &o.label(), detail)
}

/// Require equal static shapes of output and target.
pub(crate) fn same_shape(f: &str, o: &Variable, t: &Variable, what: &str) -> Result<()> {
    if o.shape() != t.shape() {
        return Err(shape_err(
            f,
            o,
            format!(
                "output shape {} and {what} shape {} must be equal",
                o.shape(),
                t.shape()
            ),
        ));
    }
    Ok(())
}

/// Resolve a possibly negative static `axis` of a rank-`rank` operand.
pub(crate) fn resolve_axis(f: &str, o: &Variable, axis: isize) -> Result<isize> {
    let rank = o.shape().rank() as isize;
    let k = if axis < 0 { axis + rank } else { axis };
    if !(0..rank).contains(&k) {
        return Err(shape_err(
            f,
            o,
            format!(
                "axis {axis} is out of range for the output shape {}",
                o.shape()
            ),
        ));
    }
    Ok(k)
}

/// The trainer's sample count N of a loss value (dynamic-axes.md §6): the number of
/// valid positions of its dynamic axes — samples of a batch, steps of a sequence
/// batch (a vector-valued loss still counts 1 per position). `None` for a value
/// without dynamic axes (a minibatch-wide loss): CNTK then falls back to the step
/// count of an input, which the caller must supply.
pub fn sample_count(loss: &Value) -> Option<usize> {
    match loss.layout() {
        Layout::Static => None,
        l => Some(l.rows()),
    }
}

/// `Σ (o − t)²` over all static elements: a **sum**, not a mean, and no ½; shape
/// `()`. The operands broadcast as `minus` does (CNTK accepts a target of shape
/// `(1,)` against an output of shape `(3,)`).
pub fn squared_error(o: &Variable, t: &Variable) -> Result<Variable> {
    let d = minus(o, t).map_err(|e| match e {
        // the shapes may agree: say what does not
        Error::DynamicAxes { detail, .. } => Error::axes(
            "squared_error",
            &o.label(),
            format!("output and target: {detail}"),
        ),
        _ => shape_err(
            "squared_error",
            o,
            format!(
                "output shape {} and target shape {} cannot be broadcast together",
                o.shape(),
                t.shape()
            ),
        ),
    })?;
    reduce_sum(&square(&d)?, None, false)
}

/// `logsumexp(o) − Σ t·o` along the static `axis`, which is kept with size 1:
/// shape `(1,)` for a rank-1 operand, `(2,1)` for `(2,3)` with axis 1 (or −1).
///
/// This equals `−Σ t·log softmax(o)` only when the targets sum to 1 along the axis
/// (CNTK 2.7 computes the same: t = [0,0,2], o = [1,2,3] gives −2.592394).
///
/// CNTK bug, not reproduced: for an operand of rank ≥ 2, CNTK's default axis −1
/// (its internal axis 0) takes another code path (`transpose_times`) that mixes the
/// rows and returns a `(2,2)` value for `(2,3)` operands. rntk reduces along the
/// given axis for every rank; CNTK's explicit `axis=1` on `(2,3)` gives the same
/// values as rntk's `axis=-1`.
pub fn cross_entropy_with_softmax(o: &Variable, t: &Variable, axis: isize) -> Result<Variable> {
    const F: &str = "cross_entropy_with_softmax";
    same_shape(F, o, t, "target")?;
    let k = [resolve_axis(F, o, axis)?];
    if k[0] + 1 == o.shape().rank() as isize {
        // Along the last axis (the usual case): one fused op, which also reads a sparse
        // target without densifying it.
        return named(Op::CrossEntropyWithSoftmax, &[o, t], "").map_err(|e| rename(e, F));
    }
    let lse = reduce_log_sum_exp(o, Some(&k), true)?;
    let to = reduce_sum(&element_times(t, o)?, Some(&k), true)?;
    minus(&lse, &to)
}

/// `−[t·ln(o + ε) + (1 − t)·ln(c − o)]` element-wise (no reduction: the output has
/// the operands' shape), with CNTK's float32 constants ε = [`BCE_EPS`] and
/// c = [`BCE_ONE_PLUS_EPS`] = float32(1 + 1e-6). Hence o = 1, t = 0 gives
/// ln(2²⁰) = 13.862944 rather than −ln(1e-6) = 13.815511, in float64 too.
pub fn binary_cross_entropy(o: &Variable, t: &Variable) -> Result<Variable> {
    same_shape("binary_cross_entropy", o, t, "target")?;
    let dt = o.dtype();
    let pos = element_times(t, &log(&plus(o, &scalar(BCE_EPS, dt))?)?)?;
    let neg = element_times(
        &minus(&scalar(1.0, dt), t)?,
        &log(&minus(&scalar(BCE_ONE_PLUS_EPS, dt), o)?)?,
    )?;
    negate(&plus(&pos, &neg)?)
}

/// `N·Σᵢ wᵢ·ℓᵢ / Σᵢ wᵢ` over the whole minibatch (N = the number of samples or
/// steps), with `ℓ = −[t·ln o + (1 − t)·ln(1 − o)]`: unlike
/// [`binary_cross_entropy`], CNTK's weighted version has **no ε** (o = 0 or 1
/// against the opposite target gives infinity): shape `()` with no dynamic axes. As in CNTK, o,
/// t and w hold one element per sample (shape `(1,)`); rntk also accepts a weight
/// without dynamic axes (one weight for all samples, giving `Σ ℓ`).
///
/// CNTK's gradient (reproduced) is `w·∂ℓ/∂o`: the gradient of `Σ w·ℓ`, not of the
/// reported value. t and w receive no gradient.
pub fn weighted_binary_cross_entropy(o: &Variable, t: &Variable, w: &Variable) -> Result<Variable> {
    named(Op::WeightedLogistic, &[o, t, w], "")
        .map_err(|e| rename(e, "weighted_binary_cross_entropy"))
}

/// Prefix a primitive's build error with the loss or metric that created it.
pub(crate) fn rename(e: Error, f: &str) -> Error {
    match e {
        Error::Shape { op, name, detail } => Error::Shape {
            op: format!("{f} ({op})"),
            name,
            detail,
        },
        Error::DynamicAxes { op, name, detail } => Error::DynamicAxes {
            op: format!("{f} ({op})"),
            name,
            detail,
        },
        other => other,
    }
}

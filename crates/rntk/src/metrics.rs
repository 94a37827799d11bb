//! CNTK's metrics (`cntk.metrics`) and the similarity / ranking criteria that CNTK
//! files under losses but that behave like metrics (cosine_distance, fmeasure,
//! lambda_rank, ndcg_at_1). Each returns its output variable.
//!
//! Metrics without a useful gradient get none (their ops are not differentiable),
//! as in CNTK, where evaluating their gradient is an error or gives zeros.

use crate::error::Result;
use crate::functions::{
    element_divide, element_times, equal, greater_equal, minus, named, not_equal, plus, reciprocal,
    reduce_max, reduce_mean, reduce_sum, sqrt,
};
use crate::graph::{scalar, Variable};
use crate::losses::{rename, resolve_axis, same_shape, shape_err};
use crate::ops::Op;

/// One-hot of the first maximal element over all static elements of each sample
/// (CNTK's `hardmax`); its gradient is zero.
pub fn hardmax(x: &Variable) -> Result<Variable> {
    named(Op::Hardmax, &[x], "")
}

/// Classification error along the static `axis`.
///
/// * `top_n = 1`, rank-1 operands: `1 − Σ t·hardmax(o)`, shape `(1,)` per sample.
///   Ties pick the first maximal index; targets are not required to be one-hot, so
///   the value can be fractional or negative (t = [0,0,5] at the argmax gives −4).
///   Gradient: none for `o`, `−hardmax(o)` for `t` (CNTK's composite gives the same).
/// * `top_n = 1`, rank ≥ 2 operands: CNTK's composite along `axis`, a scalar `()`
///   per sample: the mean, over the other positions, of "some element along `axis`
///   differs from `o == max(o)`", so ties in `o` count as errors here. CNTK's
///   default `axis = -1` on rank ≥ 2 hits the axis trap (a `(2,2)` value mixing the
///   rows of `(2,3)` operands); rntk applies the composite along the last axis.
/// * `top_n > 1` (rank-1 operands): the **number** of samples in the minibatch
///   whose target index (first maximum of t) is not among the `top_n` largest
///   outputs (ties: earlier indices rank first); shape `()`, no dynamic axes.
pub fn classification_error(
    o: &Variable,
    t: &Variable,
    axis: isize,
    top_n: usize,
) -> Result<Variable> {
    const F: &str = "classification_error";
    same_shape(F, o, t, "target")?;
    let k = resolve_axis(F, o, axis)?;
    let rank = o.shape().rank();
    if top_n == 0 {
        return Err(shape_err(F, o, "top_n must be at least 1".into()));
    }
    if top_n > 1 {
        if rank != 1 {
            return Err(shape_err(
                F,
                o,
                format!("top_n > 1 needs rank-1 operands, got shape {}", o.shape()),
            ));
        }
        return named(Op::ClassificationErrorTopN { top_n }, &[o, t], "").map_err(|e| rename(e, F));
    }
    let dt = o.dtype();
    if rank == 1 {
        // 1 − Σ t·hardmax(o), fused (a sparse target is read in place).
        return named(Op::ClassificationError, &[o, t], "").map_err(|e| rename(e, F));
    }
    let ax = [k];
    let pred = equal(o, &reduce_max(o, Some(&ax), true)?)?;
    let wrong = reduce_sum(&not_equal(t, &pred)?, Some(&ax), true)?;
    let err = greater_equal(&wrong, &scalar(1.0, dt))?;
    reduce_mean(&err, None, false)
}

/// `x·y / (‖x‖·‖y‖)` over all static elements, shape `()`: despite its name this is
/// the cosine **similarity** (1 for the same direction, −1 for opposite ones).
pub fn cosine_distance(x: &Variable, y: &Variable) -> Result<Variable> {
    same_shape("cosine_distance", x, y, "second operand")?;
    let dot = reduce_sum(&element_times(x, y)?, None, false)?;
    let nx = reciprocal(&sqrt(&reduce_sum(&element_times(x, x)?, None, false)?)?)?;
    let ny = reciprocal(&sqrt(&reduce_sum(&element_times(y, y)?, None, false)?)?)?;
    element_times(&element_times(&dot, &nx)?, &ny)
}

/// `1 − (1+β²)·P·R / (β²·P + R)` with `P = Σot/Σo`, `R = Σot/Σt`: a loss (1 − F).
/// The sums run over all static axes (shape `()`), except for rank-3 operands
/// (channels first), where they run over axes 1 and 2 only (shape `(C,1,1)`).
pub fn fmeasure(o: &Variable, t: &Variable, beta: f64) -> Result<Variable> {
    same_shape("fmeasure", o, t, "target")?;
    let dt = o.dtype();
    let red = |v: &Variable| -> Result<Variable> {
        if o.shape().rank() == 3 {
            reduce_sum(v, Some(&[1, 2]), true)
        } else {
            reduce_sum(v, None, false)
        }
    };
    let correct = red(&element_times(o, t)?)?;
    let p = element_divide(&correct, &red(o)?)?;
    let r = element_divide(&correct, &red(t)?)?;
    let b2 = beta * beta;
    let num = element_times(&element_times(&scalar(1.0 + b2, dt), &p)?, &r)?;
    let den = plus(&element_times(&scalar(b2, dt), &p)?, &r)?;
    minus(&scalar(1.0, dt), &element_divide(&num, &den)?)
}

/// `(1 − mean over groups of NDCG) · 100 · N` for the whole minibatch (shape `()`,
/// no dynamic axes), with CNTK's LambdaRank gradient for `output` (see
/// `ops::metrics_ops`). `output`, `gain` and `group` hold one value per sample on
/// the batch axis; the samples of a group must be contiguous and in decreasing
/// order of gain (the input order is taken as the ideal ranking).
pub fn lambda_rank(output: &Variable, gain: &Variable, group: &Variable) -> Result<Variable> {
    named(Op::LambdaRank, &[output, gain, group], "").map_err(|e| rename(e, "lambda_rank"))
}

/// `mean over groups (gain of the top-scored sample / gain of the group's first
/// sample) · 100 · N` for the whole minibatch; no gradient. Same input rules as
/// [`lambda_rank`].
pub fn ndcg_at_1(output: &Variable, gain: &Variable, group: &Variable) -> Result<Variable> {
    named(Op::Ndcg1, &[output, gain, group], "").map_err(|e| rename(e, "ndcg_at_1"))
}

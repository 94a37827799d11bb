//! CNTK's `sequence` namespace: sequence inputs, delays and sequence-level ops.

use crate::error::Result;
use crate::graph::{self, DynamicAxes, Function, InputOptions, Variable};
use crate::ops::Op;
use crate::tensor::Shape;

fn prim(op: Op, inputs: &[&Variable], name: &str) -> Result<Variable> {
    let ins: Vec<Variable> = inputs.iter().map(|v| (*v).clone()).collect();
    Function::primitive(op, &ins, name)?.output()
}

/// `C.sequence.input_variable(shape)`: float32, batch and default sequence axes.
pub fn input_variable(shape: impl Into<Shape>) -> Variable {
    graph::input_variable_with(
        shape,
        InputOptions {
            dynamic_axes: DynamicAxes::default_sequence(),
            ..Default::default()
        },
    )
}

/// A sequence input with explicit options (dtype, sparsity, another sequence axis…).
/// `o.dynamic_axes` of `Batch` is replaced by the default sequence axis.
pub fn input_variable_with(shape: impl Into<Shape>, mut o: InputOptions) -> Variable {
    if !o.dynamic_axes.has_sequence() {
        o.dynamic_axes = DynamicAxes::default_sequence();
    }
    graph::input_variable_with(shape, o)
}

/// `x[t - time_step]` within each sequence, `initial_state` before the start.
/// `initial_state`: a scalar, a tensor of x's shape (constant or parameter), or a
/// batch-only variable with one state per sequence.
pub fn past_value(x: &Variable, initial_state: &Variable, time_step: usize) -> Result<Variable> {
    prim(Op::PastValue { offset: time_step }, &[x, initial_state], "")
}

/// `x[t + time_step]` within each sequence, `initial_state` past the end.
pub fn future_value(x: &Variable, initial_state: &Variable, time_step: usize) -> Result<Variable> {
    prim(
        Op::FutureValue { offset: time_step },
        &[x, initial_state],
        "",
    )
}

/// `past_value` with a scalar initial state of x's dtype.
pub fn past_value_scalar(x: &Variable, initial: f64, time_step: usize) -> Result<Variable> {
    past_value(x, &graph::scalar(initial, x.dtype()), time_step)
}

/// `future_value` with a scalar initial state of x's dtype.
pub fn future_value_scalar(x: &Variable, initial: f64, time_step: usize) -> Result<Variable> {
    future_value(x, &graph::scalar(initial, x.dtype()), time_step)
}

/// `sequence.delay`: k > 0 is past_value(k), k < 0 future_value(−k), 0 is x itself.
pub fn delay(x: &Variable, initial_state: &Variable, time_step: isize) -> Result<Variable> {
    match time_step {
        0 => Ok(x.clone()),
        k if k > 0 => past_value(x, initial_state, k.unsigned_abs()),
        k => future_value(x, initial_state, k.unsigned_abs()),
    }
}

macro_rules! seq_unary {
    ($($(#[$m:meta])* $f:ident => $op:expr;)*) => {$(
        $(#[$m])*
        pub fn $f(x: &Variable) -> Result<Variable> {
            prim($op, &[x], "")
        }
    )*};
}

seq_unary! {
    /// The first step of each sequence (result has only the batch axis).
    first => Op::SeqFirst;
    /// The last step of each sequence.
    last => Op::SeqLast;
    /// Sum over the steps of each sequence.
    reduce_sum => Op::SeqReduceSum;
    /// Element-wise max over the steps of each sequence.
    reduce_max => Op::SeqReduceMax;
    /// 1 at the first step of each sequence, else 0 (shape `()`... per step).
    is_first => Op::SeqIsFirst;
    /// 1 at the last step of each sequence, else 0.
    is_last => Op::SeqIsLast;
    /// Softmax along time, per feature.
    softmax => Op::SeqSoftmax;
    /// A new sequence of the step indices where `cond` ≠ 0 (values > 1 repeat).
    where_ => Op::SeqWhere;
}

/// Repeat a batch-only value over the steps of each sequence of `like`.
pub fn broadcast_as(operand: &Variable, like: &Variable) -> Result<Variable> {
    prim(Op::SeqBroadcastAs, &[operand, like], "")
}

/// Steps `begin..end` of each sequence (negative = from the end, end 0 = to the end).
pub fn slice(x: &Variable, begin: isize, end: isize) -> Result<Variable> {
    prim(Op::SeqSlice { begin, end }, &[x], "")
}

/// Keep the steps where `cond` ≠ 0, on a new sequence axis.
pub fn gather(x: &Variable, cond: &Variable) -> Result<Variable> {
    prim(Op::SeqGather, &[x, cond], "")
}

/// Inverse of `gather`: put x's steps back where `cond` ≠ 0, zeros elsewhere.
pub fn scatter(x: &Variable, cond: &Variable) -> Result<Variable> {
    prim(Op::SeqScatter, &[x, cond], "")
}

/// Pad each sequence to the longest: a batch-only value of shape `(max_len,)+shape`,
/// and its mask `(max_len,)` (1 for real steps).
pub fn unpack(x: &Variable, padding: f64) -> Result<(Variable, Variable)> {
    let v = prim(Op::SeqUnpack { padding }, &[x], "")?;
    let m = prim(Op::SeqUnpackMask, &[x], "")?;
    Ok((v, m))
}

//! Constructors of primitive functions, named as in CNTK's Python API. Each returns
//! the function's output variable (its owner is reachable with `Variable::owner`).

use crate::error::Result;
use crate::graph::{Function, Variable};
use crate::ops::{BinaryOp, ConvAttrs, Op, PoolAttrs, PoolingType, ReduceOp, RoiAttrs, UnaryOp};
use crate::tensor::Shape;

fn prim(op: Op, inputs: &[&Variable], name: &str) -> Result<Variable> {
    let ins: Vec<Variable> = inputs.iter().map(|v| (*v).clone()).collect();
    Function::primitive(op, &ins, name)?.output()
}

/// A primitive with an explicit name (names appear in error messages and saved models).
pub fn named(op: Op, inputs: &[&Variable], name: &str) -> Result<Variable> {
    prim(op, inputs, name)
}

macro_rules! unary {
    ($($(#[$m:meta])* $f:ident => $op:expr;)*) => {$(
        $(#[$m])*
        pub fn $f(x: &Variable) -> Result<Variable> {
            prim(Op::Unary($op), &[x], "")
        }
    )*};
}

unary! {
    negate => UnaryOp::Negate;
    /// Logistic sigmoid (CNTK's StableSigmoid).
    sigmoid => UnaryOp::Sigmoid;
    tanh => UnaryOp::Tanh;
    relu => UnaryOp::Relu;
    /// exp(x) − 1 for x < 0, x otherwise.
    elu => UnaryOp::Elu;
    /// log(1 + exp(x)).
    softplus => UnaryOp::Softplus;
    exp => UnaryOp::Exp;
    log => UnaryOp::Log;
    sqrt => UnaryOp::Sqrt;
    square => UnaryOp::Square;
    abs => UnaryOp::Abs;
    reciprocal => UnaryOp::Reciprocal;
    /// Identity whose gradient is zero.
    stop_gradient => UnaryOp::StopGradient;
    /// Round down (zero gradient).
    floor => UnaryOp::Floor;
    sin => UnaryOp::Sin;
    cos => UnaryOp::Cos;
}

/// x for x > 0, `alpha`·x otherwise (CNTK's default alpha is 0.01).
pub fn leaky_relu(x: &Variable, alpha: f64) -> Result<Variable> {
    prim(Op::Unary(UnaryOp::LeakyRelu(alpha)), &[x], "")
}

/// A named identity.
pub fn alias(x: &Variable, name: &str) -> Result<Variable> {
    prim(Op::Unary(UnaryOp::Alias), &[x], name)
}

macro_rules! binary {
    ($($(#[$m:meta])* $f:ident => $op:expr;)*) => {$(
        $(#[$m])*
        pub fn $f(a: &Variable, b: &Variable) -> Result<Variable> {
            prim(Op::Binary($op), &[a, b], "")
        }
    )*};
}

binary! {
    plus => BinaryOp::Plus;
    minus => BinaryOp::Minus;
    element_times => BinaryOp::ElementTimes;
    element_divide => BinaryOp::ElementDivide;
    /// a raised to b, element-wise.
    pow => BinaryOp::Pow;
    element_max => BinaryOp::ElementMax;
    element_min => BinaryOp::ElementMin;
    equal => BinaryOp::Equal;
    not_equal => BinaryOp::NotEqual;
    less => BinaryOp::Less;
    less_equal => BinaryOp::LessEqual;
    greater => BinaryOp::Greater;
    greater_equal => BinaryOp::GreaterEqual;
    /// log(exp(a) + exp(b)) (CNTK's `log_add_exp`).
    log_add_exp => BinaryOp::LogPlus;
}

/// `times(x, W)` with output_rank 1 and inferred input rank.
pub fn times(x: &Variable, w: &Variable) -> Result<Variable> {
    times_with(x, w, 1, -1)
}

/// `times` with CNTK's `output_rank` and `infer_input_rank_to_map`.
pub fn times_with(
    x: &Variable,
    w: &Variable,
    output_rank: usize,
    infer_input_rank_to_map: i32,
) -> Result<Variable> {
    prim(
        Op::Times {
            output_rank,
            infer_input_rank_to_map,
        },
        &[x, w],
        "",
    )
}

/// `times_transpose(a, b)` = a·bᵀ (b of rank 1 or 2).
pub fn times_transpose(a: &Variable, b: &Variable) -> Result<Variable> {
    prim(Op::TransposeTimes { output_rank: 1 }, &[a, b], "")
}

/// Softmax along `axis` (CNTK's default `None` normalizes over all static axes:
/// reshape to one axis first for that).
pub fn softmax(x: &Variable, axis: isize) -> Result<Variable> {
    prim(Op::Softmax { axis }, &[x], "")
}

/// log(softmax(x)) along `axis`. Unlike `softmax`, CNTK's `log_softmax(x)` with the
/// default `axis=None` works along the last axis (`axis = -1`), not over all elements.
pub fn log_softmax(x: &Variable, axis: isize) -> Result<Variable> {
    prim(Op::LogSoftmax { axis }, &[x], "")
}

fn reduce(op: ReduceOp, x: &Variable, axes: Option<&[isize]>, keepdims: bool) -> Result<Variable> {
    prim(
        Op::Reduce {
            op,
            axes: axes.map(|a| a.to_vec()),
            keepdims,
        },
        &[x],
        "",
    )
}

/// Sum over the given static axes (`None` = all static axes), per sample.
pub fn reduce_sum(x: &Variable, axes: Option<&[isize]>, keepdims: bool) -> Result<Variable> {
    reduce(ReduceOp::Sum, x, axes, keepdims)
}
pub fn reduce_mean(x: &Variable, axes: Option<&[isize]>, keepdims: bool) -> Result<Variable> {
    reduce(ReduceOp::Mean, x, axes, keepdims)
}
pub fn reduce_max(x: &Variable, axes: Option<&[isize]>, keepdims: bool) -> Result<Variable> {
    reduce(ReduceOp::Max, x, axes, keepdims)
}
pub fn reduce_min(x: &Variable, axes: Option<&[isize]>, keepdims: bool) -> Result<Variable> {
    reduce(ReduceOp::Min, x, axes, keepdims)
}
pub fn reduce_log_sum_exp(
    x: &Variable,
    axes: Option<&[isize]>,
    keepdims: bool,
) -> Result<Variable> {
    reduce(ReduceOp::LogSumExp, x, axes, keepdims)
}

/// Reduce over everything, batch and sequence axes included (`Axis.all_axes()`).
pub fn reduce_all(op: ReduceOp, x: &Variable) -> Result<Variable> {
    prim(Op::ReduceAll { op }, &[x], "")
}

/// Concatenate along a static axis.
pub fn splice(xs: &[&Variable], axis: isize) -> Result<Variable> {
    prim(Op::Splice { axis }, xs, "")
}

/// `x[begin:end]` along a static axis (negative = from the end, end 0 = to the end).
pub fn slice(x: &Variable, axis: isize, begin: isize, end: isize) -> Result<Variable> {
    slice_strided(x, axis, begin, end, 1)
}

pub fn slice_strided(
    x: &Variable,
    axis: isize,
    begin: isize,
    end: isize,
    stride: isize,
) -> Result<Variable> {
    prim(
        Op::Slice {
            axis,
            begin,
            end,
            stride,
        },
        &[x],
        "",
    )
}

/// New static shape with the same number of elements (one dim may be `INFERRED`).
pub fn reshape(x: &Variable, shape: impl Into<Shape>) -> Result<Variable> {
    prim(
        Op::Reshape {
            shape: shape.into(),
        },
        &[x],
        "",
    )
}

/// Permute static axes: output axis i is input axis `perm[i]`.
pub fn transpose(x: &Variable, perm: &[usize]) -> Result<Variable> {
    prim(
        Op::Transpose {
            perm: perm.to_vec(),
        },
        &[x],
        "",
    )
}

/// Swap two static axes.
pub fn swapaxes(x: &Variable, a: usize, b: usize) -> Result<Variable> {
    let mut perm: Vec<usize> = (0..x.shape().rank()).collect();
    if a < perm.len() && b < perm.len() {
        perm.swap(a, b);
    }
    transpose(x, &perm)
}

/// Clamp x to [min, max] (bounds may be tensors that broadcast).
pub fn clip(x: &Variable, min: &Variable, max: &Variable) -> Result<Variable> {
    prim(Op::Clip, &[x, min, max], "")
}

/// `cond ? a : b`, element-wise.
pub fn element_select(cond: &Variable, a: &Variable, b: &Variable) -> Result<Variable> {
    prim(Op::Select, &[cond, a, b], "")
}

/// Zero each element with probability `rate` in training, scaling survivors by
/// 1/(1−rate); identity in inference. `rate` must be in [0, 1).
pub fn dropout(x: &Variable, rate: f64, seed: u64) -> Result<Variable> {
    prim(Op::Dropout { rate, seed }, &[x], "")
}

/// One-hot encoding of integer-valued x into `num_classes` classes (new last axis).
pub fn one_hot(x: &Variable, num_classes: usize) -> Result<Variable> {
    prim(Op::OneHot { num_classes }, &[x], "")
}

/// Rows of `reference` (along its first axis) picked by integer-valued `indices`.
pub fn gather(reference: &Variable, indices: &Variable) -> Result<Variable> {
    prim(Op::Gather, &[reference, indices], "")
}

/// The fused LSTM cell of one step: `[h | c]` from the packed pre-activations
/// `pre = b + x·W + h_prev·H` (gates [i, g, f, o]) and the previous cell `c_prev`.
pub fn lstm_cell(pre: &Variable, c_prev: &Variable) -> Result<Variable> {
    prim(Op::LstmCell, &[pre, c_prev], "")
}

/// A whole LSTM recurrence as one op: `[h | c]` at every step of `pre_x`'s sequences,
/// with `pre_x = b + x·W` (gates [i, g, f, o]), recurrent weights `h` of shape
/// [N, 4N], and initial states `h0`, `c0` (scalars or [N], static). `go_backwards`
/// scans from each sequence's end. Equal, bit for bit, to the loop of `lstm_cell`
/// steps through past_value (future_value) that `Recurrence(LSTM)` describes.
pub fn lstm_scan(
    pre_x: &Variable,
    h: &Variable,
    h0: &Variable,
    c0: &Variable,
    go_backwards: bool,
) -> Result<Variable> {
    prim(
        Op::LstmScan {
            reverse: go_backwards,
        },
        &[pre_x, h, h0, c0],
        "",
    )
}

/// Fused additive attention: each step `i` of the query sequence `q` (shape `(A,)`)
/// attends over the key sequence `k` (`(A,)`) of its batch item, `y_i = Σ_j α_ij v_j`
/// with `α_i = softmax_j(w · tanh(q_i + k_j))` over that item's steps only; `v` are the
/// values (any shape, on the keys' axis), `w` the scoring weights `(A,)` or `(A, 1)`.
/// The query and the keys may live on different sequence axes (decoder and encoder);
/// they are paired by batch item. The core of CNTK's `AttentionModel` (see
/// `layers::AttentionModel`).
pub fn additive_attention(
    q: &Variable,
    k: &Variable,
    v: &Variable,
    w: &Variable,
) -> Result<Variable> {
    prim(Op::AdditiveAttention, &[q, k, v, w], "")
}

/// The weights of [`additive_attention`] over the same operands: per query step, its
/// softmax over the key steps of its batch item, zero-padded to the minibatch's
/// longest key sequence — shape `(*, 1)` on the query's axes (CNTK's
/// `attention_weights`). A value to look at: not differentiable, and its free
/// dimension cannot be computed with. Named `attention_weights`.
pub fn attention_weights(
    q: &Variable,
    k: &Variable,
    v: &Variable,
    w: &Variable,
) -> Result<Variable> {
    prim(Op::AttentionWeights, &[q, k, v, w], "attention_weights")
}

/// CNTK's `convolution(W, x, strides, sharing, auto_padding, dilation, reduction_rank,
/// groups, …)`: `W` is `(O, C/groups, k…)` (reduction_rank 1) or `(O, k…)` (0), `x` is
/// `(C, spatial…)`; the result `(O, out…)`. Per-axis attributes follow CNTK's lists
/// (see `ops::conv_attrs`).
pub fn convolution(w: &Variable, x: &Variable, attrs: ConvAttrs) -> Result<Variable> {
    prim(Op::Convolution(attrs), &[w, x], "")
}

/// CNTK's `convolution_transpose(W, x, strides, auto_padding, output_shape, …)`: `W` is
/// `(C, O/groups, k…)`, the filter of the convolution it transposes.
pub fn convolution_transpose(w: &Variable, x: &Variable, attrs: ConvAttrs) -> Result<Variable> {
    prim(Op::ConvolutionTranspose(attrs), &[w, x], "")
}

/// CNTK's `pooling(x, pooling_type, window, strides, auto_padding, ceil_out_dim,
/// include_pad)`.
pub fn pooling(x: &Variable, attrs: PoolAttrs) -> Result<Variable> {
    prim(Op::Pooling(attrs), &[x], "")
}

/// Global max or average pooling: every axis but the first reduced to 1, `(C, H, W)` →
/// `(C, 1, 1)` (CNTK's `GlobalMaxPooling` / `GlobalAveragePooling`).
pub fn global_pooling(x: &Variable, kind: PoolingType) -> Result<Variable> {
    prim(Op::Pooling(PoolAttrs::new(kind, None)), &[x], "")
}

/// CNTK's `unpooling(u, x, MAX_UNPOOLING, window, strides, auto_padding)`: `u` (the
/// max pooling of `x` or a value of its shape) put at the first maximum of each window of `x`.
pub fn unpooling(u: &Variable, x: &Variable, attrs: PoolAttrs) -> Result<Variable> {
    prim(Op::Unpooling(attrs), &[u, x], "")
}

/// CNTK's `roipooling(x, rois, MAX_POOLING, roi_output_shape, spatial_scale)`: each box
/// `(x1, y1, x2, y2)` of `rois` `(R, 4)` (pixels of the original image; `spatial_scale`
/// maps them onto the map `x` `(C, H, W)`) max-pooled into `(out_h, out_w)` bins:
/// `(R, C, out_h, out_w)` per sample.
pub fn roipooling(
    x: &Variable,
    rois: &Variable,
    (out_h, out_w): (usize, usize),
    spatial_scale: f64,
) -> Result<Variable> {
    let attrs = RoiAttrs {
        kind: PoolingType::Max,
        output_shape: vec![out_h, out_w],
        spatial_scale,
    };
    prim(Op::RoiPooling(attrs), &[x, rois], "")
}

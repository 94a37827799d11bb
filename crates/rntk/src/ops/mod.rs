//! The closed set of primitive ops. Each family file holds, for its ops, the shape
//! rule (`infer`), the forward and the backward (vector-Jacobian product) together.
//!
//! Execution classes:
//! * **row-local** ops compute each output sample from the same sample of their
//!   per-row operands (plus static operands broadcast to every row). They run over
//!   any contiguous block of rows, so the runtime calls them once over a whole
//!   minibatch outside loops and once per time step inside a recurrent loop.
//! * **delay** ops (past_value / future_value) read another time step; the runtime
//!   drives them step by step (see `delay.rs`).
//! * **whole** ops change the dynamic layout (sequence.*, reductions over all axes)
//!   and see entire values with their layouts; they cannot sit inside a loop.
//! * **context** ops are row-local in their first operand and read their other
//!   dynamic operands whole on those operands' own layouts (attention: each query row
//!   over the keys and values of its batch item); inside a loop they run per step,
//!   their context operands computed outside it.

pub(crate) mod attention;
pub(crate) mod batchnorm;
pub(crate) mod binary;
pub(crate) mod conv;
pub mod conv_attrs;
pub(crate) mod conv_seq;
pub(crate) mod delay;
mod infer;
mod info;
pub(crate) mod lstm_cell;
pub(crate) mod lstm_scan;
pub(crate) mod metrics_ops;
pub(crate) mod misc;
pub(crate) mod reduce;
pub mod roi;
mod run;
pub(crate) mod sequence;
pub(crate) mod shape_ops;
pub(crate) mod softmax;
pub(crate) mod softmax_ce;
pub(crate) mod times;
pub(crate) mod unary;

pub use crate::backend::elementwise::{BinaryOp, UnaryOp};
pub use crate::backend::reduce::ReduceOp;
pub use conv_attrs::{ConvAttrs, PoolAttrs, PoolingType};
pub(crate) use infer::{dense_info, expect_arity, join_axes, Inferred};
pub use info::VarInfo;
pub use roi::RoiAttrs;
pub(crate) use run::{sized, zeroed, NodeState, RowCtx, WholeArg};

use crate::tensor::Shape;

/// A primitive op with its attributes. Its serde form (external tagging by variant
/// name) is part of the model file format (docs/model-format.md): renaming a variant
/// or an attribute needs a new format version.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Op {
    /// Element-wise unary math (sigmoid, tanh, exp, …, stop_gradient, alias).
    Unary(UnaryOp),
    /// Element-wise binary math with NumPy-style broadcasting of static axes.
    Binary(BinaryOp),
    /// `times(x, W)`: contracts the trailing axes of `x` with the leading axes of `W`;
    /// the last `output_rank` axes of `W` are the output axes.
    Times {
        output_rank: usize,
        infer_input_rank_to_map: i32,
    },
    /// `transpose_times(a, b)` = `times(transpose(a), b)` for `a` of rank ≤ 2.
    TransposeTimes {
        output_rank: usize,
    },
    Softmax {
        axis: isize,
    },
    LogSoftmax {
        axis: isize,
    },
    /// Reduction over static axes (`None` = all static axes).
    Reduce {
        op: ReduceOp,
        axes: Option<Vec<isize>>,
        keepdims: bool,
    },
    /// Reduction over everything, dynamic axes included (`Axis.all_axes()`).
    ReduceAll {
        op: ReduceOp,
    },
    Splice {
        axis: isize,
    },
    Slice {
        axis: isize,
        begin: isize,
        end: isize,
        stride: isize,
    },
    Reshape {
        shape: Shape,
    },
    /// Permutation of the static axes: output axis `i` is input axis `perm[i]`.
    Transpose {
        perm: Vec<usize>,
    },
    /// `clip(x, min, max)`.
    Clip,
    /// `element_select(cond, a, b)`.
    Select,
    Dropout {
        rate: f64,
        seed: u64,
    },
    OneHot {
        num_classes: usize,
    },
    /// `gather(reference, indices)` along the first axis of `reference`.
    Gather,
    PastValue {
        offset: usize,
    },
    FutureValue {
        offset: usize,
    },
    SeqFirst,
    SeqLast,
    SeqReduceSum,
    SeqReduceMax,
    /// `sequence.broadcast_as(operand, like)`.
    SeqBroadcastAs,
    SeqSlice {
        begin: isize,
        end: isize,
    },
    SeqIsFirst,
    SeqIsLast,
    SeqSoftmax,
    SeqWhere,
    /// `sequence.gather(x, cond)`.
    SeqGather,
    /// `sequence.scatter(x, cond)`: back onto `cond`'s sequence axis.
    SeqScatter,
    /// `sequence.unpack(x, padding)`: padded `(max_len,)+shape` per batch item.
    SeqUnpack {
        padding: f64,
    },
    /// The mask output of `sequence.unpack`: 1 for real steps, 0 for padding.
    SeqUnpackMask,
    /// `batch_normalization(x, scale, bias, running_mean, running_variance,
    /// running_count)`: minibatch statistics in training (updating the running
    /// estimates), the running estimates in inference (see `batchnorm.rs`).
    BatchNorm {
        spatial: bool,
        epsilon: f64,
        normalization_time_constant: f64,
    },
    /// One-hot of the first maximal element over all static elements of a sample;
    /// no gradient.
    Hardmax,
    /// `weighted_binary_cross_entropy(o, t, w)` over the whole minibatch.
    WeightedLogistic,
    /// `classification_error(o, t, topN)` for topN > 1: the number of samples whose
    /// target index is not among the topN largest outputs.
    ClassificationErrorTopN {
        top_n: usize,
    },
    /// `lambda_rank(score, gain, group)`.
    LambdaRank,
    /// `ndcg_at_1(score, gain, group)`.
    Ndcg1,
    /// The fused LSTM cell: `lstm_cell(pre, c_prev) = [h | c]` (see `lstm_cell.rs`).
    LstmCell,
    /// A whole LSTM recurrence: `lstm_scan(pre_x, H, h0, c0) = [h | c]` per step (see
    /// `lstm_scan.rs`); `reverse` scans from the end (future_value's direction).
    LstmScan {
        reverse: bool,
    },
    /// Fused additive attention `additive_attention(q, k, v, w)`: every query step over
    /// the key/value sequence of its batch item (see `attention.rs`).
    AdditiveAttention,
    /// The weights of additive attention over the same operands `(q, k, v, w)`:
    /// per query step, its `α` over the keys of its batch item, padded with zeros to
    /// the longest key sequence — shape `(*, 1)`, a free dimension as
    /// `sequence.unpack`'s (CNTK's `attention_weights` label; see `attention.rs`).
    AttentionWeights,
    /// Fused `cross_entropy_with_softmax(o, t)` along the last static axis; `t` may be
    /// sparse (see `softmax_ce.rs`).
    CrossEntropyWithSoftmax,
    /// Fused top-1 `classification_error(o, t)` along the last static axis: per
    /// distribution `1 − t[argmax o]`; no gradient.
    ClassificationError,
    /// `convolution(W, x)` over 1 to 3 spatial axes (see `conv.rs`, `conv_attrs.rs`).
    Convolution(ConvAttrs),
    /// `convolution_transpose(W, x)`: the gradient of a convolution as a function.
    ConvolutionTranspose(ConvAttrs),
    /// `pooling(x)`: max or average over windows (global when the window is `None`).
    Pooling(PoolAttrs),
    /// `unpooling(u, x)`: max unpooling of `u` to the window maxima of the pooling input `x`.
    Unpooling(PoolAttrs),
    /// `roipooling(x, rois)`: max pooling of each box of `rois` into a fixed grid of bins.
    RoiPooling(RoiAttrs),
}

/// How the runtime drives an op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ExecKind {
    RowLocal,
    Delay,
    Whole,
    Context,
}

impl Op {
    /// CNTK's op name (as in saved models and CNTK's messages).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Unary(u) => u.name(),
            Op::Binary(b) => b.name(),
            Op::Times { .. } => "Times",
            Op::TransposeTimes { .. } => "TransposeTimes",
            Op::Softmax { .. } => "Softmax",
            Op::LogSoftmax { .. } => "LogSoftmax",
            Op::Reduce { .. } => "ReduceElements",
            Op::ReduceAll { .. } => "ReduceElements",
            Op::Splice { .. } => "Splice",
            Op::Slice { .. } => "Slice",
            Op::Reshape { .. } => "Reshape",
            Op::Transpose { .. } => "TransposeAxes",
            Op::Clip => "Clip",
            Op::Select => "Select",
            Op::Dropout { .. } => "Dropout",
            Op::OneHot { .. } => "OneHot",
            Op::Gather => "Gather",
            Op::PastValue { .. } => "PastValue",
            Op::FutureValue { .. } => "FutureValue",
            Op::SeqFirst => "Sequence::First",
            Op::SeqLast => "Sequence::Last",
            Op::SeqReduceSum => "Sequence::ReduceSum",
            Op::SeqReduceMax => "Sequence::ReduceMax",
            Op::SeqBroadcastAs => "Sequence::BroadcastAs",
            Op::SeqSlice { .. } => "Sequence::Slice",
            Op::SeqIsFirst => "Sequence::IsFirst",
            Op::SeqIsLast => "Sequence::IsLast",
            Op::SeqSoftmax => "Sequence::Softmax",
            Op::SeqWhere => "Where",
            Op::SeqGather => "Sequence::Gather",
            Op::SeqScatter => "Sequence::Scatter",
            Op::SeqUnpack { .. } => "UnpackSequence",
            Op::SeqUnpackMask => "UnpackSequenceMask",
            Op::BatchNorm { .. } => "BatchNormalization",
            Op::Hardmax => "Hardmax",
            Op::WeightedLogistic => "WeightedLogistic",
            Op::ClassificationErrorTopN { .. } => "ClassificationError",
            Op::LambdaRank => "LambdaRank",
            Op::Ndcg1 => "NDCG1Eval",
            Op::LstmCell => "LSTMCell",
            Op::LstmScan { .. } => "LSTMScan",
            Op::AdditiveAttention => "AdditiveAttention",
            Op::AttentionWeights => "AttentionWeights",
            Op::CrossEntropyWithSoftmax => "CrossEntropyWithSoftmax",
            Op::ClassificationError => "ClassificationError",
            Op::Convolution(_) => "Convolution",
            Op::ConvolutionTranspose(_) => "ConvolutionTranspose",
            Op::Pooling(_) => "Pooling",
            Op::Unpooling(_) => "Unpooling",
            Op::RoiPooling(_) => "ROIPooling",
        }
    }

    pub(crate) fn exec_kind(&self) -> ExecKind {
        match self {
            Op::PastValue { .. } | Op::FutureValue { .. } => ExecKind::Delay,
            Op::ReduceAll { .. }
            | Op::SeqFirst
            | Op::SeqLast
            | Op::SeqReduceSum
            | Op::SeqReduceMax
            | Op::SeqBroadcastAs
            | Op::SeqSlice { .. }
            | Op::SeqIsFirst
            | Op::SeqIsLast
            | Op::SeqSoftmax
            | Op::SeqWhere
            | Op::SeqGather
            | Op::SeqScatter
            | Op::SeqUnpack { .. }
            | Op::SeqUnpackMask
            | Op::BatchNorm { .. }
            | Op::WeightedLogistic
            | Op::ClassificationErrorTopN { .. }
            | Op::LambdaRank
            | Op::Ndcg1
            | Op::LstmScan { .. }
            | Op::AttentionWeights => ExecKind::Whole,
            Op::AdditiveAttention => ExecKind::Context,
            Op::Convolution(a) if a.sequential => ExecKind::Whole,
            _ => ExecKind::RowLocal,
        }
    }

    /// Whether operand `i` of a context op is read whole, on its own layout (the
    /// keys and values of attention); the first operand gives the rows.
    pub(crate) fn is_context_operand(&self, i: usize) -> bool {
        matches!(self, Op::AdditiveAttention) && (i == 1 || i == 2)
    }

    /// Whether the backward for operand `i` writes its whole gradient when asked to
    /// (`RowCtx::assign`) instead of adding into it: the executor then skips zeroing a
    /// buffer this op alone fills. The input of a row-local convolution and of batch
    /// normalization (both read whole activations, so the zeroing is a full pass).
    pub(crate) fn writes_gradient(&self, i: usize) -> bool {
        match self {
            Op::Convolution(_) | Op::ConvolutionTranspose(_) => {
                i == 1 && self.exec_kind() == ExecKind::RowLocal
            }
            Op::BatchNorm { .. } => i == 0,
            _ => false,
        }
    }

    /// Whether operand `i` can receive a gradient at all (indices, conditions and
    /// stop_gradient cannot).
    pub(crate) fn differentiable(&self, i: usize) -> bool {
        match self {
            Op::Unary(UnaryOp::StopGradient) => false,
            Op::Select => i != 0,
            Op::Gather => i == 0,
            Op::OneHot { .. } => false,
            Op::SeqBroadcastAs => i == 0,
            Op::SeqGather | Op::SeqScatter => i == 0,
            Op::SeqWhere | Op::SeqIsFirst | Op::SeqIsLast => false,
            Op::SeqUnpackMask => false,
            // a value to look at (its free dimension cannot be computed with)
            Op::AttentionWeights => false,
            // The running statistics are state, not inputs of the function.
            Op::BatchNorm { .. } => i < 3,
            Op::Hardmax | Op::ClassificationErrorTopN { .. } | Op::Ndcg1 => false,
            // −hardmax(o) for a dense target, as the composition 1 − Σ t·hardmax(o) gives
            Op::ClassificationError => i == 1,
            Op::WeightedLogistic | Op::LambdaRank => i == 0,
            Op::Unpooling(_) | Op::RoiPooling(_) => i == 0,
            _ => true,
        }
    }

    /// Whether operand `i` is read as sparse rows in place (a sparse input feeding
    /// anything else is densified once when fed).
    pub(crate) fn reads_sparse(&self, i: usize) -> bool {
        match self {
            Op::Times { .. } | Op::TransposeTimes { .. } => i == 0,
            Op::CrossEntropyWithSoftmax | Op::ClassificationError => i == 1,
            _ => false,
        }
    }

    /// Operands whose gradient is the output's gradient unchanged (`x` in `x + b`,
    /// `x − b`): the runtime may hand the output's gradient buffer over to such an
    /// operand instead of zeroing one and adding into it.
    pub(crate) fn pass_through(&self) -> &'static [usize] {
        match self {
            Op::Binary(BinaryOp::Plus) => &[0, 1],
            Op::Binary(BinaryOp::Minus) => &[0],
            _ => &[],
        }
    }

    /// Work per row of this op, for the backend's choice of parallelism
    /// (`exec::Executor::pass_work`): the output's elements, except for a convolution,
    /// whose every output value is a dot product over a filter slice (multiply-adds:
    /// one image's convolution is worth threads where its output size alone is not).
    pub(crate) fn row_work(&self, in_shapes: &[Shape], out_shape: &Shape) -> usize {
        let out = out_shape.numel();
        match self {
            Op::Convolution(_) | Op::ConvolutionTranspose(_) => {
                // a filter (O, C/groups, kernel…): C/groups × kernel taps per output value
                let taps = in_shapes.first().map_or(1, |w| {
                    let o = w.dims().first().copied().unwrap_or(1).max(1);
                    (w.numel() / o).max(1)
                });
                out.saturating_mul(taps)
            }
            _ => out,
        }
    }

    /// Ops whose random draws follow CNTK's column order: they need the rows' layout
    /// (`NodeState::layout`) and must see whole steps, never split.
    pub(crate) fn draws_in_column_order(&self) -> bool {
        matches!(self, Op::Dropout { .. })
    }

    /// Operands a training forward of this op updates in place once it has finished
    /// (batch normalization's running statistics): see [`Op::commit`].
    pub(crate) fn commits(&self) -> bool {
        matches!(self, Op::BatchNorm { .. })
    }
}

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

pub(crate) mod batchnorm;
pub(crate) mod binary;
pub(crate) mod conv;
pub mod conv_attrs;
pub(crate) mod conv_seq;
pub(crate) mod delay;
pub(crate) mod lstm_cell;
pub(crate) mod lstm_scan;
pub(crate) mod metrics_ops;
pub(crate) mod misc;
pub(crate) mod reduce;
pub(crate) mod sequence;
pub(crate) mod shape_ops;
pub(crate) mod softmax;
pub(crate) mod softmax_ce;
pub(crate) mod times;
pub(crate) mod unary;

pub use binary::BinaryOp;
pub use conv_attrs::{ConvAttrs, PoolAttrs, PoolingType};
pub use reduce::ReduceOp;
pub use unary::UnaryOp;

use crate::error::{Error, Result};
use crate::graph::{DynamicAxes, VarInfo};
use crate::tensor::{Element, Layout, Shape};
use rayon::prelude::*;

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
}

/// What shape inference found: the outputs, and the final shapes of parameter
/// operands whose inferred dimensions became known.
pub(crate) struct Inferred {
    pub outputs: Vec<VarInfo>,
    pub resolved_inputs: Vec<(usize, Shape)>,
}

impl Inferred {
    pub fn one(info: VarInfo) -> Self {
        Inferred {
            outputs: vec![info],
            resolved_inputs: Vec::new(),
        }
    }
}

/// How the runtime drives an op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ExecKind {
    RowLocal,
    Delay,
    Whole,
}

/// Sparse rows `r0..r0+n` of a CSR matrix, indexed with absolute `indptr` values.
#[derive(Clone, Copy)]
pub(crate) struct SparseRows<'a, T> {
    pub indptr: &'a [usize],
    pub indices: &'a [u32],
    pub values: &'a [T],
}

/// One operand of a row-local op over a block of `n` rows.
#[derive(Clone, Copy)]
pub(crate) enum Arg<'a, T> {
    /// `n` samples, one per row.
    Rows(&'a [T]),
    /// One sample shared by every row (parameters, constants).
    Static(&'a [T]),
    /// `n` sparse samples.
    Sparse(SparseRows<'a, T>),
}

impl<'a, T> Arg<'a, T> {
    pub fn dense(&self) -> Option<&'a [T]> {
        match *self {
            Arg::Rows(x) | Arg::Static(x) => Some(x),
            Arg::Sparse(_) => None,
        }
    }
    pub fn is_static(&self) -> bool {
        matches!(self, Arg::Static(_))
    }
}

/// Where a row block sits and what mode the forward runs in.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RowCtx {
    /// Number of rows in this block.
    pub n: usize,
    /// Absolute index of the block's first row (per-node state is indexed by it).
    pub row0: usize,
    pub training: bool,
}

/// One operand of a whole-value op.
pub(crate) struct WholeArg<'a, T> {
    pub data: Arg<'a, T>,
    pub layout: &'a Layout,
    pub shape: &'a Shape,
}

/// Per-node scratch kept across calls (masks, counters); sized on first use.
#[derive(Default, Debug)]
pub(crate) struct NodeState<T> {
    pub aux: Vec<T>,
    /// How many training forwards have run.
    pub calls: u64,
    /// Dropout's mask stream (CNTK's seed and offset), made on the first training forward.
    pub rng: Option<crate::random::DropoutRng>,
    /// The rows' layout, for ops whose draws follow CNTK's column order (dropout); the
    /// executor sets it before each call.
    pub layout: Option<crate::tensor::Layout>,
    /// The training pass (`calls`) whose masks dropout has drawn for the whole minibatch
    /// (inside a loop the first step of a pass draws them all).
    pub drawn_pass: Option<u64>,
    /// Gradients an op computes once per backward pass for all its operands.
    pub grad: Vec<T>,
    /// Whether `grad` holds this backward pass's values (the executor clears it).
    pub grad_ready: bool,
    /// Scratch reused across calls.
    pub work: Vec<T>,
}

/// Elements of a row block below which splitting it over threads is not worth it.
const SPLIT_ELEMS: usize = 1 << 17;

/// Rows per block when an op over `n` rows of `per_row` elements should be split over
/// the pool's threads: only when `splittable`, inside a pool and for large blocks.
fn row_blocks(splittable: bool, n: usize, per_row: usize) -> Option<usize> {
    if !splittable || n < 2 || n * per_row < SPLIT_ELEMS || rayon::current_thread_index().is_none()
    {
        return None;
    }
    Some(n.div_ceil(2 * rayon::current_num_threads().max(1)))
}

/// Rows `r0..r1` of every operand (static operands unchanged).
fn sub_args<'a, T: Element>(
    args: &[Arg<'a, T>],
    shapes: &[Shape],
    r0: usize,
    r1: usize,
) -> smallvec::SmallVec<[Arg<'a, T>; 4]> {
    args.iter()
        .zip(shapes)
        .map(|(a, s)| match *a {
            Arg::Rows(x) => {
                let d = s.numel();
                Arg::Rows(&x[r0 * d..r1 * d])
            }
            Arg::Static(x) => Arg::Static(x),
            Arg::Sparse(sp) => Arg::Sparse(SparseRows {
                indptr: &sp.indptr[r0..=r1],
                indices: sp.indices,
                values: sp.values,
            }),
        })
        .collect()
}

/// The join of the operands' dynamic axes for an element-wise op.
pub(crate) fn join_axes(op: &str, name: &str, infos: &[&VarInfo]) -> Result<DynamicAxes> {
    let mut axes = DynamicAxes::None;
    for i in infos {
        axes = axes.join(&i.axes).map_err(|d| Error::axes(op, name, d))?;
    }
    Ok(axes)
}

pub(crate) fn expect_arity(op: &str, name: &str, infos: &[VarInfo], n: usize) -> Result<()> {
    if infos.len() != n {
        return Err(Error::shape(
            op,
            name,
            format!("expects {n} operands, got {}", infos.len()),
        ));
    }
    Ok(())
}

/// Output info for a dense op result.
pub(crate) fn dense_info(shape: Shape, like: &VarInfo, axes: DynamicAxes) -> VarInfo {
    VarInfo {
        shape,
        dtype: like.dtype,
        axes,
        is_sparse: false,
        needs_gradient: false,
    }
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
            Op::CrossEntropyWithSoftmax => "CrossEntropyWithSoftmax",
            Op::ClassificationError => "ClassificationError",
            Op::Convolution(_) => "Convolution",
            Op::ConvolutionTranspose(_) => "ConvolutionTranspose",
            Op::Pooling(_) => "Pooling",
            Op::Unpooling(_) => "Unpooling",
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
            | Op::LstmScan { .. } => ExecKind::Whole,
            Op::Convolution(a) if a.sequential => ExecKind::Whole,
            _ => ExecKind::RowLocal,
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
            // The running statistics are state, not inputs of the function.
            Op::BatchNorm { .. } => i < 3,
            Op::Hardmax | Op::ClassificationErrorTopN { .. } | Op::Ndcg1 => false,
            // −hardmax(o) for a dense target, as the composition 1 − Σ t·hardmax(o) gives
            Op::ClassificationError => i == 1,
            Op::WeightedLogistic | Op::LambdaRank => i == 0,
            Op::Unpooling(_) => i == 0,
            _ => true,
        }
    }

    /// Shape and dynamic-axis rule.
    pub(crate) fn infer(&self, infos: &[VarInfo], name: &str) -> Result<Inferred> {
        let op = self.name();
        // A free dimension on a data operand comes from sequence.unpack, whose size is
        // only known per minibatch; the static shapes of other ops cannot follow it.
        if let Some(v) = infos
            .iter()
            .find(|i| !i.axes.is_none() && i.shape.has_inferred())
        {
            return Err(Error::Unsupported(format!(
                "{op} '{name}': operand of shape {} has a free dimension (the output of \
                 sequence.unpack); such a value can only be returned, not computed with",
                v.shape
            )));
        }
        match self {
            Op::Unary(_) => {
                expect_arity(op, name, infos, 1)?;
                Ok(Inferred::one(dense_info(
                    infos[0].shape.clone(),
                    &infos[0],
                    infos[0].axes.clone(),
                )))
            }
            Op::Binary(_) => binary::infer(op, name, infos),
            Op::Times {
                output_rank,
                infer_input_rank_to_map,
            } => times::infer(
                op,
                name,
                infos,
                *output_rank,
                *infer_input_rank_to_map,
                false,
            ),
            Op::TransposeTimes { output_rank } => {
                times::infer(op, name, infos, *output_rank, -1, true)
            }
            Op::Softmax { axis } | Op::LogSoftmax { axis } => {
                softmax::infer(op, name, infos, *axis)
            }
            Op::Reduce { axes, keepdims, .. } => {
                reduce::infer(op, name, infos, axes.as_deref(), *keepdims)
            }
            Op::ReduceAll { .. } => reduce::infer_all(op, name, infos),
            Op::Splice { axis } => shape_ops::infer_splice(op, name, infos, *axis),
            Op::Slice {
                axis,
                begin,
                end,
                stride,
            } => shape_ops::infer_slice(op, name, infos, *axis, *begin, *end, *stride),
            Op::Reshape { shape } => shape_ops::infer_reshape(op, name, infos, shape),
            Op::Transpose { perm } => shape_ops::infer_transpose(op, name, infos, perm),
            Op::Clip | Op::Select | Op::Dropout { .. } | Op::OneHot { .. } | Op::Gather => {
                misc::infer(self, op, name, infos)
            }
            Op::PastValue { offset } | Op::FutureValue { offset } => {
                delay::check_offset(op, name, *offset)?;
                delay::infer(op, name, infos)
            }
            Op::LstmCell => lstm_cell::infer(op, name, infos),
            Op::LstmScan { .. } => lstm_scan::infer(op, name, infos),
            Op::CrossEntropyWithSoftmax | Op::ClassificationError => {
                softmax_ce::infer(op, name, infos)
            }
            Op::BatchNorm { spatial, .. } => batchnorm::infer(op, name, infos, *spatial),
            Op::Hardmax => {
                expect_arity(op, name, infos, 1)?;
                if infos[0].is_sparse {
                    return Err(Error::shape(op, name, "the operand cannot be sparse"));
                }
                Ok(Inferred::one(dense_info(
                    infos[0].shape.clone(),
                    &infos[0],
                    infos[0].axes.clone(),
                )))
            }
            Op::WeightedLogistic => metrics_ops::infer_weighted_logistic(op, name, infos),
            Op::ClassificationErrorTopN { top_n } => {
                metrics_ops::infer_topn(op, name, infos, *top_n)
            }
            Op::LambdaRank | Op::Ndcg1 => metrics_ops::infer_ranking(op, name, infos),
            Op::Convolution(a) if a.sequential => conv_seq::infer(name, infos, a),
            Op::Convolution(a) => conv::infer_conv(op, name, infos, a, false),
            Op::ConvolutionTranspose(a) => conv::infer_conv(op, name, infos, a, true),
            Op::Pooling(a) => conv::infer_pool(op, name, infos, a),
            Op::Unpooling(a) => conv::infer_unpool(op, name, infos, a),
            _ => sequence::infer(self, op, name, infos),
        }
    }

    /// Ops whose random draws follow CNTK's column order: they need the rows' layout
    /// ([`NodeState::layout`]) and must see whole steps, never split.
    pub(crate) fn draws_in_column_order(&self) -> bool {
        matches!(self, Op::Dropout { .. })
    }

    /// Element-wise ops without node state: any block of rows can run on its own.
    fn splits_rows(&self) -> bool {
        matches!(self, Op::Unary(_) | Op::Binary(_))
    }

    /// Forward of a row-local op over `ctx.n` rows (element-wise ops over a large
    /// block run as row blocks on the pool's threads).
    pub(crate) fn forward_rows<T: Element>(
        &self,
        args: &[Arg<T>],
        shapes: &[Shape],
        out_shape: &Shape,
        out: &mut [T],
        ctx: RowCtx,
        st: &mut NodeState<T>,
    ) -> Result<()> {
        let d = out_shape.numel();
        match row_blocks(self.splits_rows(), ctx.n, d) {
            Some(rows) => out[..ctx.n * d]
                .par_chunks_mut(rows * d)
                .enumerate()
                .try_for_each(|(k, o)| {
                    let (r0, r1) = (k * rows, (k * rows + rows).min(ctx.n));
                    let sub = sub_args(args, shapes, r0, r1);
                    let c = RowCtx {
                        n: r1 - r0,
                        row0: ctx.row0 + r0,
                        training: ctx.training,
                    };
                    self.forward_rows_serial(
                        &sub,
                        shapes,
                        out_shape,
                        o,
                        c,
                        &mut NodeState::default(),
                    )
                }),
            None => self.forward_rows_serial(args, shapes, out_shape, out, ctx, st),
        }
    }

    /// Backward of a row-local op (see `backward_rows_serial`); the gradient of a
    /// per-row operand of an element-wise op over a large block is computed as row
    /// blocks on the pool's threads (a static operand's sums over rows stay serial).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn backward_rows<T: Element>(
        &self,
        i: usize,
        args: &[Arg<T>],
        shapes: &[Shape],
        out_shape: &Shape,
        out: &[T],
        dout: &[T],
        din: &mut [T],
        ctx: RowCtx,
        st: &mut NodeState<T>,
    ) -> Result<()> {
        let (d, di) = (out_shape.numel(), shapes[i].numel());
        let per_row = matches!(args[i], Arg::Rows(_));
        match row_blocks(self.splits_rows() && per_row, ctx.n, d) {
            Some(rows) => din[..ctx.n * di]
                .par_chunks_mut(rows * di)
                .enumerate()
                .try_for_each(|(k, g)| {
                    let (r0, r1) = (k * rows, (k * rows + rows).min(ctx.n));
                    let sub = sub_args(args, shapes, r0, r1);
                    let c = RowCtx {
                        n: r1 - r0,
                        row0: ctx.row0 + r0,
                        training: ctx.training,
                    };
                    self.backward_rows_serial(
                        i,
                        &sub,
                        shapes,
                        out_shape,
                        &out[r0 * d..r1 * d],
                        &dout[r0 * d..r1 * d],
                        g,
                        c,
                        &mut NodeState::default(),
                    )
                }),
            None => self.backward_rows_serial(i, args, shapes, out_shape, out, dout, din, ctx, st),
        }
    }

    /// Forward of a row-local op over `ctx.n` rows, on this thread.
    fn forward_rows_serial<T: Element>(
        &self,
        args: &[Arg<T>],
        shapes: &[Shape],
        out_shape: &Shape,
        out: &mut [T],
        ctx: RowCtx,
        st: &mut NodeState<T>,
    ) -> Result<()> {
        match self {
            Op::Unary(u) => unary::forward(*u, args[0], out),
            Op::Binary(b) => binary::forward(*b, args, shapes, out_shape, out, ctx),
            Op::Times { output_rank, .. } => {
                times::forward(args, shapes, out_shape, out, ctx, *output_rank, false)
            }
            Op::TransposeTimes { output_rank } => {
                times::forward(args, shapes, out_shape, out, ctx, *output_rank, true)
            }
            Op::Softmax { axis } => softmax::forward(false, *axis, args[0], &shapes[0], out, ctx),
            Op::LogSoftmax { axis } => softmax::forward(true, *axis, args[0], &shapes[0], out, ctx),
            Op::Reduce { op, axes, .. } => {
                reduce::forward(*op, axes.as_deref(), args[0], &shapes[0], out, ctx)
            }
            Op::Splice { axis } => {
                shape_ops::forward_splice(*axis, args, shapes, out_shape, out, ctx)
            }
            Op::Slice {
                axis,
                begin,
                end,
                stride,
            } => shape_ops::forward_slice(
                *axis, *begin, *end, *stride, args[0], &shapes[0], out, ctx,
            ),
            Op::Reshape { .. } => shape_ops::forward_reshape(args[0], out, ctx),
            Op::Transpose { perm } => {
                shape_ops::forward_transpose(perm, args[0], &shapes[0], out, ctx)
            }
            Op::Clip | Op::Select | Op::Dropout { .. } | Op::OneHot { .. } | Op::Gather => {
                misc::forward(self, args, shapes, out_shape, out, ctx, st)
            }
            Op::Hardmax => {
                metrics_ops::hardmax_forward(args[0], &shapes[0], out, ctx.n);
                Ok(())
            }
            Op::LstmCell => lstm_cell::forward(args, shapes, out, ctx, st),
            Op::CrossEntropyWithSoftmax => {
                softmax_ce::forward(false, args, &shapes[0], out, ctx, st)
            }
            Op::ClassificationError => softmax_ce::forward(true, args, &shapes[0], out, ctx, st),
            Op::Convolution(a) => conv::forward_conv(a, false, args, shapes, out, ctx),
            Op::ConvolutionTranspose(a) => conv::forward_conv(a, true, args, shapes, out, ctx),
            Op::Pooling(a) => conv::forward_pool(a, args, shapes, out, ctx),
            Op::Unpooling(a) => conv::forward_unpool(a, args, shapes, out, ctx),
            _ => Err(Error::Unsupported(format!(
                "{} is not a row-local op",
                self.name()
            ))),
        }
    }

    /// Backward of a row-local op, on this thread: accumulate into `din` the gradient for operand `i`
    /// (`din` covers `ctx.n` rows for a per-row operand, one sample for a static one).
    #[allow(clippy::too_many_arguments)]
    fn backward_rows_serial<T: Element>(
        &self,
        i: usize,
        args: &[Arg<T>],
        shapes: &[Shape],
        out_shape: &Shape,
        out: &[T],
        dout: &[T],
        din: &mut [T],
        ctx: RowCtx,
        st: &mut NodeState<T>,
    ) -> Result<()> {
        match self {
            Op::Unary(u) => unary::backward(*u, args[0], out, dout, din),
            Op::Binary(b) => binary::backward(*b, i, args, shapes, out_shape, out, dout, din, ctx),
            Op::Times { output_rank, .. } => times::backward(
                i,
                args,
                shapes,
                out_shape,
                dout,
                din,
                ctx,
                *output_rank,
                false,
            ),
            Op::TransposeTimes { output_rank } => times::backward(
                i,
                args,
                shapes,
                out_shape,
                dout,
                din,
                ctx,
                *output_rank,
                true,
            ),
            Op::Softmax { axis } => {
                softmax::backward(false, *axis, &shapes[0], out, dout, din, ctx)
            }
            Op::LogSoftmax { axis } => {
                softmax::backward(true, *axis, &shapes[0], out, dout, din, ctx)
            }
            Op::Reduce { op, axes, .. } => reduce::backward(
                *op,
                axes.as_deref(),
                args[0],
                &shapes[0],
                out,
                dout,
                din,
                ctx,
            ),
            Op::Splice { axis } => {
                shape_ops::backward_splice(*axis, i, shapes, out_shape, dout, din, ctx)
            }
            Op::Slice {
                axis,
                begin,
                end,
                stride,
            } => {
                shape_ops::backward_slice(*axis, *begin, *end, *stride, &shapes[0], dout, din, ctx)
            }
            Op::Reshape { .. } => shape_ops::backward_reshape(dout, din),
            Op::Transpose { perm } => {
                shape_ops::backward_transpose(perm, &shapes[0], dout, din, ctx)
            }
            Op::Clip | Op::Select | Op::Dropout { .. } | Op::OneHot { .. } | Op::Gather => {
                misc::backward(self, i, args, shapes, out_shape, out, dout, din, ctx, st)
            }
            // not differentiable: the runtime never asks
            Op::Hardmax => Ok(()),
            Op::LstmCell => lstm_cell::backward(i, args, shapes, dout, din, ctx, st),
            Op::CrossEntropyWithSoftmax => {
                softmax_ce::backward(i, args, &shapes[0], dout, din, ctx, st)
            }
            Op::ClassificationError => {
                softmax_ce::backward_error(i, args, &shapes[0], dout, din, ctx)
            }
            Op::Convolution(a) => conv::backward_conv(a, false, i, args, shapes, dout, din, ctx),
            Op::ConvolutionTranspose(a) => {
                conv::backward_conv(a, true, i, args, shapes, dout, din, ctx)
            }
            Op::Pooling(a) => conv::backward_pool(a, args, shapes, dout, din, ctx),
            Op::Unpooling(a) => conv::backward_unpool(a, i, args, shapes, dout, din, ctx),
            _ => Err(Error::Unsupported(format!(
                "{} is not a row-local op",
                self.name()
            ))),
        }
    }

    /// Layout of a whole op's output (may depend on data, as for sequence.where).
    pub(crate) fn whole_layout<T: Element>(&self, args: &[WholeArg<T>]) -> Result<Layout> {
        match self {
            Op::ReduceAll { .. } => Ok(Layout::Static),
            Op::BatchNorm { .. } | Op::LstmScan { .. } => Ok(args[0].layout.clone()),
            Op::Convolution(a) => conv_seq::layout(a, args),
            Op::WeightedLogistic
            | Op::ClassificationErrorTopN { .. }
            | Op::LambdaRank
            | Op::Ndcg1 => Ok(Layout::Static),
            _ => sequence::layout(self, args),
        }
    }

    /// Sample shape of a whole op's output for this minibatch: `static_shape`,
    /// except for sequence.unpack's free leading dimension (the longest length).
    pub(crate) fn whole_shape<T: Element>(
        &self,
        args: &[WholeArg<T>],
        static_shape: &Shape,
    ) -> Result<Shape> {
        match self {
            Op::ReduceAll { .. }
            | Op::BatchNorm { .. }
            | Op::LstmScan { .. }
            | Op::Convolution(_) => Ok(static_shape.clone()),
            Op::WeightedLogistic
            | Op::ClassificationErrorTopN { .. }
            | Op::LambdaRank
            | Op::Ndcg1 => Ok(static_shape.clone()),
            _ => sequence::shape(self, args, static_shape),
        }
    }

    pub(crate) fn forward_whole<T: Element>(
        &self,
        args: &[WholeArg<T>],
        out_shape: &Shape,
        out_layout: &Layout,
        out: &mut [T],
        training: bool,
        st: &mut NodeState<T>,
    ) -> Result<()> {
        match self {
            Op::ReduceAll { op } => reduce::forward_all(*op, &args[0], out),
            Op::BatchNorm {
                spatial,
                epsilon,
                normalization_time_constant,
            } => batchnorm::forward(
                *spatial,
                *epsilon,
                *normalization_time_constant,
                args,
                out,
                training,
                st,
            ),
            Op::WeightedLogistic => metrics_ops::weighted_logistic_forward(self.name(), args, out),
            Op::ClassificationErrorTopN { top_n } => {
                metrics_ops::topn_forward(self.name(), *top_n, args, out)
            }
            Op::LambdaRank => metrics_ops::lambda_rank_forward(self.name(), args, out),
            Op::Ndcg1 => metrics_ops::ndcg1_forward(self.name(), args, out),
            Op::LstmScan { reverse } => lstm_scan::forward(*reverse, args, out, st),
            Op::Convolution(a) => conv_seq::forward(a, args, out_shape, out_layout, out),
            _ => sequence::forward(self, args, out_shape, out_layout, out),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn backward_whole<T: Element>(
        &self,
        i: usize,
        args: &[WholeArg<T>],
        out_shape: &Shape,
        out_layout: &Layout,
        out: &[T],
        dout: &[T],
        din: &mut [T],
        st: &mut NodeState<T>,
    ) -> Result<()> {
        match self {
            Op::LstmScan { reverse } => lstm_scan::backward(*reverse, i, args, dout, din, st),
            Op::Convolution(a) => {
                conv_seq::backward(a, i, args, (out_shape, out_layout), dout, din)
            }
            Op::ReduceAll { op } => reduce::backward_all(*op, &args[0], out, dout, din),
            Op::BatchNorm { spatial, .. } => batchnorm::backward(*spatial, i, args, dout, din, st),
            Op::WeightedLogistic if i == 0 => {
                metrics_ops::weighted_logistic_backward(self.name(), args, dout, din)
            }
            Op::LambdaRank if i == 0 => {
                metrics_ops::lambda_rank_backward(self.name(), args, dout, din)
            }
            Op::WeightedLogistic
            | Op::LambdaRank
            | Op::ClassificationErrorTopN { .. }
            | Op::Ndcg1 => Ok(()),
            _ => sequence::backward(self, i, args, out_shape, out_layout, out, dout, din),
        }
    }
}

//! How the runtime runs an op: the context of a call, the per-node state the runtime
//! keeps between calls, and the dispatch from an op to its family's recipe.
//!
//! Execution classes (see `ExecKind`):
//! * **row-local** ops compute each output sample from the same sample of their
//!   per-row operands (plus static operands broadcast to every row). They run over any
//!   contiguous block of rows, so the runtime calls them once over a whole minibatch
//!   outside loops and once per time step inside a recurrent loop.
//! * **delay** ops (past_value / future_value) read another time step; the runtime
//!   drives them step by step (see `delay.rs`).
//! * **whole** ops change the dynamic layout (sequence.*, reductions over all axes) and
//!   see entire values with their layouts; they cannot sit inside a loop.
//! * **context** ops are row-local in their first operand and read their other
//!   dynamic operands whole, on their own layouts (attention: the query's rows over
//!   the keys and values of each row's batch item); inside a loop they run per step.

use super::*;
use crate::backend::{Arg, Backend, Memory, Par};
use crate::error::{Error, Result};
use crate::tensor::{Element, Layout, Shape};

/// Where a row block sits, what mode the forward runs in, and how many threads its
/// kernels may use.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RowCtx {
    /// Number of rows in this block.
    pub n: usize,
    /// Absolute index of the block's first row (per-node state is indexed by it).
    pub row0: usize,
    pub training: bool,
    pub par: Par,
    /// Backward only: the operand's gradient buffer `din` was not zeroed; the op writes
    /// it (`0 + v`: the bits adding into zeros gives) instead of adding into it. Set
    /// only for operands whose op says `Op::writes_gradient`.
    pub assign: bool,
}

/// One operand of a whole-value op.
pub(crate) struct WholeArg<'a, B: Memory, T: Element> {
    pub data: Arg<'a, B, T>,
    pub layout: &'a Layout,
    pub shape: &'a Shape,
}

/// Per-node state kept across calls (masks, saved activations, counters), in the
/// backend's buffers; sized on first use.
pub(crate) struct NodeState<B: Memory, T: Element> {
    pub aux: B::Buf<T>,
    /// Training forwards run so far.
    pub calls: u64,
    /// Dropout's mask stream (CNTK's seed and offset), made on the first training forward.
    pub rng: Option<crate::random::DropoutRng>,
    /// The rows' layout, for ops whose draws follow CNTK's column order (dropout); the
    /// executor sets it before each call.
    pub layout: Option<Layout>,
    /// The training pass (`calls`) whose masks dropout has drawn for the whole minibatch
    /// (inside a loop the first step of a pass draws them all).
    pub drawn_pass: Option<u64>,
    /// Gradients an op computes once per backward pass for all its operands.
    pub grad: B::Buf<T>,
    /// Whether `grad` holds this backward pass's values (the executor clears it).
    pub grad_ready: bool,
    /// Rows whose contributions `grad` holds (an op that gathers them block by block).
    pub grad_rows: usize,
    /// Scratch reused across calls.
    pub work: B::Buf<T>,
    /// Whether the last forward was a training one whose results `Op::commit` writes.
    pub trained: bool,
    /// Set by the executor before a forward: the ReLU that alone reads this node's
    /// output runs inside it (batch normalization; `exec::compile::fold_relus`), so the
    /// output is the ReLU's and the backward receives the ReLU's output and gradient.
    pub relu_folded: bool,
    /// Row maps a sequence op computed in its forward, for its backward (host data).
    pub pairs: Vec<(usize, usize)>,
    /// A whole op's output layout and the input layout it follows from, reused while
    /// minibatches repeat the input's sequence lengths (sequential convolution).
    pub out_layout: Option<(Layout, Layout)>,
}

impl<B: Memory, T: Element> Default for NodeState<B, T> {
    fn default() -> Self {
        NodeState {
            aux: Default::default(),
            calls: 0,
            rng: None,
            layout: None,
            drawn_pass: None,
            grad: Default::default(),
            grad_ready: false,
            grad_rows: 0,
            work: Default::default(),
            trained: false,
            relu_folded: false,
            pairs: Vec::new(),
            out_layout: None,
        }
    }
}

fn not_row_local(op: &Op) -> Error {
    Error::Unsupported(format!("{} is not a row-local op", op.name()))
}

impl Op {
    /// Forward of a row-local op over `ctx.n` rows into `out`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn forward_rows<B: Backend, T: Element>(
        &self,
        b: &B,
        args: &[Arg<B, T>],
        shapes: &[Shape],
        out_shape: &Shape,
        out: B::Mut<'_, T>,
        ctx: RowCtx,
        st: &mut NodeState<B, T>,
    ) -> Result<()> {
        match self {
            Op::Unary(u) => unary::forward(b, *u, args[0], out, (ctx, out_shape.numel())),
            Op::Binary(op) => binary::forward(b, *op, args, (shapes, out_shape), out, ctx),
            Op::Times { output_rank, .. } => times::forward(
                b,
                args,
                (shapes, out_shape),
                out,
                ctx,
                (*output_rank, false),
            ),
            Op::TransposeTimes { output_rank } => {
                times::forward(b, args, (shapes, out_shape), out, ctx, (*output_rank, true))
            }
            Op::Softmax { axis } => {
                softmax::forward(b, false, *axis, args[0], &shapes[0], out, ctx)
            }
            Op::LogSoftmax { axis } => {
                softmax::forward(b, true, *axis, args[0], &shapes[0], out, ctx)
            }
            Op::Reduce { op, axes, .. } => {
                reduce::forward(b, *op, axes.as_deref(), args[0], &shapes[0], out, ctx)
            }
            Op::Splice { axis } => {
                shape_ops::forward_splice(b, *axis, args, (shapes, out_shape), out, ctx)
            }
            Op::Slice {
                axis,
                begin,
                end,
                stride,
            } => shape_ops::forward_slice(
                b,
                (*axis, *begin, *end, *stride),
                args[0],
                &shapes[0],
                out,
                ctx,
            ),
            Op::Reshape { .. } => shape_ops::forward_reshape(b, args[0], out),
            Op::Transpose { perm } => {
                shape_ops::forward_transpose(b, perm, args[0], &shapes[0], out, ctx)
            }
            Op::Clip | Op::Select | Op::Dropout { .. } | Op::OneHot { .. } | Op::Gather => {
                misc::forward(b, self, args, (shapes, out_shape), out, ctx, st)
            }
            Op::Hardmax => metrics_ops::hardmax_forward(b, args[0], &shapes[0], out, ctx.n),
            Op::LstmCell => lstm_cell::forward(b, args, shapes, out, ctx, st),
            Op::CrossEntropyWithSoftmax => {
                softmax_ce::forward(b, false, args, &shapes[0], out, ctx, st)
            }
            Op::ClassificationError => softmax_ce::forward(b, true, args, &shapes[0], out, ctx, st),
            Op::Convolution(a) => conv::forward_conv(b, (a, false), args, shapes, out, ctx),
            Op::ConvolutionTranspose(a) => conv::forward_conv(b, (a, true), args, shapes, out, ctx),
            Op::Pooling(a) => conv::forward_pool(b, a, args, shapes, out, ctx),
            Op::Unpooling(a) => conv::forward_unpool(b, a, args, shapes, out, ctx),
            Op::RoiPooling(a) => super::roi::forward(b, a, args, shapes, out, ctx),
            _ => Err(not_row_local(self)),
        }
    }

    /// Backward of a row-local op: accumulate into `din` the gradient for operand `i`
    /// (`din` covers `ctx.n` rows for a per-row operand, one sample for a static one).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn backward_rows<B: Backend, T: Element>(
        &self,
        b: &B,
        i: usize,
        args: &[Arg<B, T>],
        (shapes, out_shape): (&[Shape], &Shape),
        (out, dout): (B::Ref<'_, T>, B::Ref<'_, T>),
        din: B::Mut<'_, T>,
        ctx: RowCtx,
        st: &mut NodeState<B, T>,
    ) -> Result<()> {
        let sh = (shapes, out_shape);
        match self {
            Op::Unary(u) => {
                unary::backward(b, *u, args[0], (out, dout), din, (ctx, out_shape.numel()))
            }
            Op::Binary(op) => binary::backward(b, *op, i, args, sh, (out, dout), din, ctx),
            Op::Times { output_rank, .. } => {
                times::backward(b, i, args, sh, dout, din, ctx, (*output_rank, false))
            }
            Op::TransposeTimes { output_rank } => {
                times::backward(b, i, args, sh, dout, din, ctx, (*output_rank, true))
            }
            Op::Softmax { axis } => {
                softmax::backward(b, false, *axis, &shapes[0], (out, dout), din, ctx)
            }
            Op::LogSoftmax { axis } => {
                softmax::backward(b, true, *axis, &shapes[0], (out, dout), din, ctx)
            }
            Op::Reduce { op, axes, .. } => reduce::backward(
                b,
                *op,
                axes.as_deref(),
                args[0],
                &shapes[0],
                (out, dout),
                din,
                ctx,
            ),
            Op::Splice { axis } => shape_ops::backward_splice(b, *axis, i, sh, dout, din, ctx),
            Op::Slice {
                axis,
                begin,
                end,
                stride,
            } => shape_ops::backward_slice(
                b,
                (*axis, *begin, *end, *stride),
                &shapes[0],
                dout,
                din,
                ctx,
            ),
            Op::Reshape { .. } => shape_ops::backward_reshape(b, dout, din),
            Op::Transpose { perm } => {
                shape_ops::backward_transpose(b, perm, &shapes[0], dout, din, ctx)
            }
            Op::Clip | Op::Select | Op::Dropout { .. } | Op::OneHot { .. } | Op::Gather => {
                misc::backward(b, self, i, args, sh, dout, din, ctx, st)
            }
            // not differentiable: the runtime never asks
            Op::Hardmax => Ok(()),
            Op::LstmCell => lstm_cell::backward(b, i, args, shapes, dout, din, ctx, st),
            Op::CrossEntropyWithSoftmax => {
                softmax_ce::backward(b, i, args, &shapes[0], dout, din, ctx, st)
            }
            Op::ClassificationError => {
                softmax_ce::backward_error(b, i, args, &shapes[0], dout, din, ctx)
            }
            Op::Convolution(a) => {
                conv::backward_conv(b, (a, false), i, args, shapes, dout, din, ctx)
            }
            Op::ConvolutionTranspose(a) => {
                conv::backward_conv(b, (a, true), i, args, shapes, dout, din, ctx)
            }
            Op::Pooling(a) => conv::backward_pool(b, a, args, shapes, dout, din, ctx),
            Op::Unpooling(a) => conv::backward_unpool(b, a, i, args, shapes, dout, din, ctx),
            Op::RoiPooling(a) => super::roi::backward(b, a, i, args, shapes, dout, din, ctx),
            _ => Err(not_row_local(self)),
        }
    }

    /// Forward of a whole op: computes the output's layout and sample shape for this
    /// minibatch (they may depend on the data, as sequence.where's does), sizes `out`
    /// (zeros) and fills it.
    pub(crate) fn forward_whole<B: Backend, T: Element>(
        &self,
        b: &B,
        args: &[WholeArg<B, T>],
        static_shape: &Shape,
        out: &mut B::Buf<T>,
        ctx: RowCtx,
        st: &mut NodeState<B, T>,
    ) -> Result<(Layout, Shape)> {
        let fixed = |layout: Layout| (layout, static_shape.clone());
        match self {
            Op::ReduceAll { op } => {
                zeroed(b, self, out, (1, static_shape.numel()))?;
                reduce::forward_all(b, *op, &args[0], B::view_mut(out))?;
                Ok(fixed(Layout::Static))
            }
            Op::BatchNorm {
                spatial,
                epsilon,
                normalization_time_constant,
            } => {
                let rows = args[0].layout.rows();
                // sized, not zeroed: the normalization writes every element
                sized(b, self, out, (rows, static_shape.numel()))?;
                let g = (*spatial, *epsilon, *normalization_time_constant);
                batchnorm::forward(b, g, args, B::view_mut(out), (ctx.training, ctx.par), st)?;
                Ok(fixed(args[0].layout.clone()))
            }
            Op::LstmScan { reverse } => {
                let rows = args[0].layout.rows();
                zeroed(b, self, out, (rows, static_shape.numel()))?;
                lstm_scan::forward(b, *reverse, args, B::view_mut(out), ctx.par, st)?;
                Ok(fixed(args[0].layout.clone()))
            }
            // sequential convolution (the only whole convolution)
            Op::Convolution(a) => {
                let l = conv_seq::forward(b, (self, a), args, static_shape, out, ctx, st)?;
                Ok(fixed(l))
            }
            Op::AttentionWeights => attention::forward_weights(b, args, static_shape, out, st),
            Op::WeightedLogistic
            | Op::ClassificationErrorTopN { .. }
            | Op::LambdaRank
            | Op::Ndcg1 => {
                zeroed(b, self, out, (1, static_shape.numel()))?;
                metrics_ops::forward(b, self, args, B::view_mut(out), st)?;
                Ok(fixed(Layout::Static))
            }
            _ => sequence::forward(b, self, args, static_shape, out, st),
        }
    }

    /// Backward of a whole op for operand `i`, accumulated into `din`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn backward_whole<B: Backend, T: Element>(
        &self,
        b: &B,
        i: usize,
        args: &[WholeArg<B, T>],
        (out_shape, out_layout): (&Shape, &Layout),
        (out, dout): (B::Ref<'_, T>, B::Ref<'_, T>),
        din: B::Mut<'_, T>,
        ctx: RowCtx,
        st: &mut NodeState<B, T>,
    ) -> Result<()> {
        match self {
            Op::LstmScan { reverse } => {
                lstm_scan::backward(b, *reverse, i, args, dout, din, ctx.par, st)
            }
            Op::Convolution(a) => {
                let sh = (out_shape, out_layout);
                conv_seq::backward(b, a, i, args, sh, dout, din, ctx, st)
            }
            Op::ReduceAll { op } => reduce::backward_all(b, *op, &args[0], (out, dout), din),
            Op::BatchNorm { spatial, .. } => {
                batchnorm::backward(b, *spatial, i, args, (out, dout), din, ctx, st)
            }
            Op::WeightedLogistic
            | Op::LambdaRank
            | Op::ClassificationErrorTopN { .. }
            | Op::Ndcg1 => metrics_ops::backward(b, self, i, args, dout, din, st),
            _ => sequence::backward(
                b,
                self,
                i,
                args,
                (out_shape, out_layout),
                (out, dout),
                din,
                st,
            ),
        }
    }

    /// Forward of a context op over the rows `rows` of its first operand: every
    /// operand whole (with its layout), `out` the whole output buffer (the first
    /// operand's rows, sized by the runtime).
    pub(crate) fn forward_context<B: Backend, T: Element>(
        &self,
        b: &B,
        args: &[WholeArg<B, T>],
        rows: std::ops::Range<usize>,
        out: B::Mut<'_, T>,
        st: &mut NodeState<B, T>,
    ) -> Result<()> {
        match self {
            Op::AdditiveAttention => attention::forward(b, args, rows, out, st),
            _ => Err(Error::Unsupported(format!(
                "{} is not a context op",
                self.name()
            ))),
        }
    }

    /// Backward of a context op for operand `i` from the rows `rows` of the first
    /// operand: `dout` the whole output gradient, `din` operand `i`'s whole gradient.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn backward_context<B: Backend, T: Element>(
        &self,
        b: &B,
        i: usize,
        args: &[WholeArg<B, T>],
        rows: std::ops::Range<usize>,
        dout: B::Ref<'_, T>,
        din: B::Mut<'_, T>,
        st: &mut NodeState<B, T>,
    ) -> Result<()> {
        match self {
            Op::AdditiveAttention => attention::backward(b, i, args, rows, dout, din, st),
            _ => Err(Error::Unsupported(format!(
                "{} is not a context op",
                self.name()
            ))),
        }
    }

    /// After a training forward, the values this op writes back into its operands
    /// (batch normalization's running statistics): `write(operand, values)` for each.
    pub(crate) fn commit<B: Backend, T: Element>(
        &self,
        st: &NodeState<B, T>,
        write: impl FnMut(usize, B::Ref<'_, T>) -> Result<()>,
    ) -> Result<()> {
        match self {
            Op::BatchNorm { .. } if st.trained => batchnorm::commit(st, write),
            _ => Ok(()),
        }
    }
}

/// An output buffer sized to `rows × numel` values. The product is checked and the
/// memory asked of the device before anything is written, so a minibatch too large
/// for memory (a huge one-hot, a long unpack) is an error naming the op, the rows and
/// the sample shape rather than an abort.
pub(crate) fn sized<B: Backend, T: Element>(
    b: &B,
    op: &Op,
    buf: &mut B::Buf<T>,
    (rows, numel): (usize, usize),
) -> Result<()> {
    let fail = |what: &str| Error::Runtime {
        op: op.name().to_string(),
        name: String::new(),
        detail: format!("{rows} rows of {numel} elements each: {what}"),
    };
    let n = rows
        .checked_mul(numel)
        .ok_or_else(|| fail("the element count overflows"))?;
    b.try_resize(buf, n)
        .map_err(|_| fail("not enough memory for the output (use smaller minibatches)"))
}

/// An output buffer of `rows × numel` values, all zero (see [`sized`]).
pub(crate) fn zeroed<B: Backend, T: Element>(
    b: &B,
    op: &Op,
    buf: &mut B::Buf<T>,
    shape: (usize, usize),
) -> Result<()> {
    sized(b, op, buf, shape)?;
    b.fill(B::view_mut(buf), T::zero());
    Ok(())
}

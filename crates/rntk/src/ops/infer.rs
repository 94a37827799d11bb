//! Shape inference: each op's rule (in its family file) dispatched from the op, and
//! the helpers the rules share.

use super::*;
use crate::error::{Error, Result};
use crate::tensor::{DynamicAxes, Shape};

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
            Op::AdditiveAttention => attention::infer(op, name, infos),
            Op::AttentionWeights => attention::infer_weights(op, name, infos),
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
            Op::RoiPooling(a) => super::roi::infer(name, infos, a),
            _ => sequence::infer(self, op, name, infos),
        }
    }
}

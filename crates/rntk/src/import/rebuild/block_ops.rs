//! CNTK blocks that load as one rntk op: CNTK writes `sequence.first/last/slice`,
//! `sequence.reduce_sum/max`, `softplus` and a few more as blocks over its internal
//! packing ops; their bodies are recognised here and not descended into.

use super::{split_output, Builder};
use crate::error::Result;
use crate::graph::{Function, Variable};
use crate::import::dict::Dict;
use crate::import::model::FnDesc;
use crate::ops::{Op, UnaryOp};

/// How a block that stands for one rntk op is loaded (its body is not descended into).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum BlockOp {
    Unary(UnaryOp),
    SeqFirst,
    SeqLast,
    SeqReduceSum,
    SeqReduceMax,
    SeqBroadcastAs,
    SeqIsFirst,
    SeqIsLast,
    SeqSlice(isize, isize),
    SeqGather,
    SeqScatter,
    SeqSoftmax,
}

impl<'a> Builder<'a> {
    /// Blocks that stand for one rntk op (their bodies use CNTK's internal packing
    /// ops, which rntk expresses as single sequence ops).
    pub(super) fn block_op(&self, fd: &FnDesc) -> Option<BlockOp> {
        let b = fd.block.as_ref()?;
        let root = self.fns.get(b.root.as_str())?;
        match b.op_name.as_str() {
            "Softplus" if b.arguments.len() == 1 => Some(BlockOp::Unary(UnaryOp::Softplus)),
            "Sequence::ReduceElements" if b.arguments.len() == 1 && root.op == 39 => {
                let a = Dict::new(self.file, "", &root.attributes);
                match a.string("reductionOpName").ok()? {
                    "Sum" => Some(BlockOp::SeqReduceSum),
                    "Max" => Some(BlockOp::SeqReduceMax),
                    _ => None,
                }
            }
            "Sequence::BroadcastAs" if b.arguments.len() == 2 && root.op == 50 => {
                Some(BlockOp::SeqBroadcastAs)
            }
            // is_first / is_last: a delay of ones reconciled to the operand's layout.
            "Sequence::IsFirst" if b.arguments.len() == 1 && root.op == 37 => {
                Some(BlockOp::SeqIsFirst)
            }
            "Sequence::IsLast" if b.arguments.len() == 1 && root.op == 38 => {
                Some(BlockOp::SeqIsLast)
            }
            "Sequence::Gather" if b.arguments.len() == 2 && root.op == 29 => {
                Some(BlockOp::SeqGather)
            }
            "Sequence::Scatter" if b.arguments.len() == 2 && root.op == 30 => {
                Some(BlockOp::SeqScatter)
            }
            "Sequence::Softmax" if b.arguments.len() == 1 => Some(BlockOp::SeqSoftmax),
            // sequence.first / last / slice: GatherPacked(x, PackedIndex(x, Where(m)))
            // where the mask m is built from delays of ones.
            "Sequence::Slice" if b.arguments.len() == 1 && root.op == 29 => {
                let packed_index = self.producer(root.inputs.get(1)?)?;
                let where_ = self.producer(packed_index.inputs.get(1)?)?;
                if packed_index.op != 28 || where_.op != 13 {
                    return None;
                }
                self.slice_bounds(where_)
            }
            _ => None,
        }
    }

    /// The bounds of a `Sequence::Slice` from the mask its `Where` selects with: the
    /// delays of its mask say where it starts (past_value by `begin`) and ends
    /// (future_value by `-end`), the `Where` attributes how long the result is.
    fn slice_bounds(&self, where_: &FnDesc) -> Option<BlockOp> {
        let a = Dict::new(self.file, "", &where_.attributes);
        if a.axes("newDynamicAxes").ok()?.len() == 1 {
            // Only the batch axis is left: one step per sequence.
            return match self.producer(where_.inputs.first()?)?.op {
                37 => Some(BlockOp::SeqFirst),
                38 => Some(BlockOp::SeqLast),
                _ => None,
            };
        }
        let scaling = a.int("newSequenceAxisLengthScalingFactor").ok()?;
        let additive = a.int("newSequenceAxisLengthAdditiveFactor").ok()?;
        // The delays feeding the mask (a small expression of delays, constants and
        // element-wise ops).
        let mut past = Vec::new();
        let mut future = Vec::new();
        let mut stack = vec![where_.inputs.first()?.as_str()];
        let mut steps = 0;
        while let Some(uid) = stack.pop() {
            steps += 1;
            if steps > 64 {
                return None;
            }
            let Some(f) = self.producer(uid) else {
                continue;
            };
            let offset = || {
                Dict::new(self.file, "", &f.attributes)
                    .size_t("offset")
                    .ok()
                    .and_then(|o| isize::try_from(o).ok())
            };
            match f.op {
                37 => past.push(offset()?),
                38 => future.push(offset()?),
                19..=21 | 50 => stack.extend(f.inputs.iter().map(String::as_str)),
                _ => return None,
            }
        }
        let (begin, end) = match (scaling, past.as_slice(), future.as_slice()) {
            // fixed length: slice(0, k) or slice(-k, 0)
            (0, [k], []) if *k as i64 == additive => (0, *k),
            (0, [], [k]) if *k as i64 == additive => (-*k, 0),
            // length + additive: slice(b, -e)
            (1, p, f) if p.len() <= 1 && f.len() <= 1 => {
                let b = p.first().copied().unwrap_or(0);
                let e = f.first().copied().unwrap_or(0);
                if (b + e) as i64 != -additive {
                    return None;
                }
                (b, -e)
            }
            _ => return None,
        };
        Some(BlockOp::SeqSlice(begin, end))
    }

    fn producer(&self, uid: &str) -> Option<&'a FnDesc> {
        let (f, _) = split_output(uid)?;
        self.fns.get(f).copied()
    }

    pub(super) fn block_as_op(
        &self,
        fd: &FnDesc,
        op: BlockOp,
        outer: &[Variable],
    ) -> Result<Variable> {
        let op = match op {
            BlockOp::Unary(u) => Op::Unary(u),
            BlockOp::SeqFirst => Op::SeqFirst,
            BlockOp::SeqLast => Op::SeqLast,
            BlockOp::SeqReduceSum => Op::SeqReduceSum,
            BlockOp::SeqReduceMax => Op::SeqReduceMax,
            BlockOp::SeqBroadcastAs => Op::SeqBroadcastAs,
            BlockOp::SeqIsFirst => Op::SeqIsFirst,
            BlockOp::SeqIsLast => Op::SeqIsLast,
            BlockOp::SeqSlice(begin, end) => Op::SeqSlice { begin, end },
            BlockOp::SeqGather => Op::SeqGather,
            BlockOp::SeqScatter => Op::SeqScatter,
            BlockOp::SeqSoftmax => Op::SeqSoftmax,
        };
        Function::primitive(op, outer, &fd.name)
            .and_then(|f| f.output())
            .map_err(self.wrap(fd))
    }
}

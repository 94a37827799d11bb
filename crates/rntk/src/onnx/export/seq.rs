//! Sequence-axis ops and delays outside loops → calls of rntk's sequence functions
//! (`functions.rs`), with the lengths of the operand's axis.

use super::super::builder::attr_i;
use super::{Ex, Lay, XV};
use crate::error::Result;
use crate::graph::DynamicAxes;
use crate::ops::Op;

impl Ex<'_> {
    fn seq_axis(&self, x: &XV, n: usize) -> Result<usize> {
        match x.lay {
            Lay::Seq(k) => Ok(k),
            _ => Err(self.err(n, "the operand has no sequence axis")),
        }
    }

    /// Register the new sequence axis of node `n`'s output.
    fn derived_axis(&mut self, n: usize, lens: String, t_src: String) -> Result<usize> {
        let out = self.flat.nodes[n].out;
        match &self.flat.vals[out].info.axes {
            DynamicAxes::Sequence(a) => {
                let dim = format!("{}_{}", a.name().replace("::", "_"), self.axes.len());
                Ok(self.new_axis(&a.clone(), dim, lens, t_src))
            }
            _ => Err(self.err(n, "expected a new sequence axis")),
        }
    }

    /// past_value / future_value outside a loop: a shift along the sequence axis.
    pub fn shift(&mut self, n: usize, ins: &[XV]) -> Result<XV> {
        let (x, init) = (&ins[0], &ins[1]);
        let k = self.seq_axis(x, n)?;
        let init = self.align(init, x.shape.rank());
        let lens = self.axes[k].lens.clone();
        let name = match self.flat.nodes[n].op {
            Op::PastValue { offset } => self
                .call(
                    "PastValue",
                    &[&x.name, &init],
                    1,
                    vec![attr_i("offset", offset as i64)],
                )
                .remove(0),
            Op::FutureValue { offset } => self
                .call(
                    "FutureValue",
                    &[&x.name, &init, &lens],
                    1,
                    vec![attr_i("offset", offset as i64)],
                )
                .remove(0),
            _ => return Err(self.err(n, "not a delay")),
        };
        Ok(self.out_of(n, name, x.lay))
    }

    pub fn sequence_op(&mut self, n: usize, ins: &[XV]) -> Result<XV> {
        let op = self.flat.nodes[n].op.clone();
        let x = &ins[0];
        let k = match op {
            // broadcast_as takes the axis of its second operand
            Op::SeqBroadcastAs => self.seq_axis(&ins[1], n)?,
            _ => self.seq_axis(x, n)?,
        };
        let lens = self.axes[k].lens.clone();
        let d = x.dtype;
        let (zero, one) = (self.g.scalar(0.0, d), self.g.scalar(1.0, d));
        let ninf = self.g.scalar(f64::NEG_INFINITY, d);
        let xn = x.name.as_str();
        let one_out = |ex: &mut Self, f: &str, a: &[&str]| ex.call(f, a, 1, vec![]).remove(0);
        let (name, lay) = match op {
            Op::SeqFirst => (one_out(self, "SequenceFirst", &[xn]), Lay::Batch),
            Op::SeqLast => (one_out(self, "SequenceLast", &[xn, &lens]), Lay::Batch),
            Op::SeqReduceSum => (
                one_out(self, "SequenceReduceSum", &[xn, &lens, &zero]),
                Lay::Batch,
            ),
            Op::SeqReduceMax => (
                one_out(self, "SequenceReduceMax", &[xn, &lens, &ninf]),
                Lay::Batch,
            ),
            Op::SeqSoftmax => (
                one_out(self, "SequenceSoftmax", &[xn, &lens, &ninf, &zero]),
                Lay::Seq(k),
            ),
            Op::SeqIsFirst => (
                one_out(self, "SequenceIsFirst", &[xn, &lens, &one, &zero]),
                Lay::Seq(k),
            ),
            Op::SeqIsLast => (
                one_out(self, "SequenceIsLast", &[xn, &lens, &one, &zero]),
                Lay::Seq(k),
            ),
            Op::SeqBroadcastAs => {
                let like = ins[1].name.clone();
                (
                    one_out(self, "SequenceBroadcastAs", &[xn, &like]),
                    Lay::Seq(k),
                )
            }
            Op::SeqSlice { begin, end } => {
                let o = self.call(
                    "SequenceSlice",
                    &[xn, &lens],
                    2,
                    vec![attr_i("begin", begin as i64), attr_i("end", end as i64)],
                );
                let a = self.derived_axis(n, o[1].clone(), o[0].clone())?;
                (o[0].clone(), Lay::Seq(a))
            }
            Op::SeqWhere => {
                let o = self.call("SequenceWhere", &[xn, &lens, &one, &zero], 2, vec![]);
                let a = self.derived_axis(n, o[1].clone(), o[0].clone())?;
                (o[0].clone(), Lay::Seq(a))
            }
            Op::SeqGather => {
                let c = ins[1].name.clone();
                let o = self.call("SequenceGather", &[xn, &c, &lens], 2, vec![]);
                let a = self.derived_axis(n, o[1].clone(), o[0].clone())?;
                (o[0].clone(), Lay::Seq(a))
            }
            Op::SeqScatter => {
                let kc = self.seq_axis(&ins[1], n)?;
                let c_lens = self.axes[kc].lens.clone();
                let c = ins[1].name.clone();
                (
                    one_out(
                        self,
                        "SequenceScatter",
                        &[xn, &lens, &c, &c_lens, &one, &zero],
                    ),
                    Lay::Seq(kc),
                )
            }
            Op::SeqUnpack { padding } => {
                let pad = self.g.scalar(padding, d);
                (
                    one_out(self, "SequenceUnpack", &[xn, &lens, &pad]),
                    Lay::Batch,
                )
            }
            Op::SeqUnpackMask => (
                one_out(self, "SequenceUnpackMask", &[xn, &lens, &one, &zero]),
                Lay::Batch,
            ),
            _ => return Err(self.err(n, "not a sequence op")),
        };
        Ok(self.out_of(n, name, lay))
    }
}

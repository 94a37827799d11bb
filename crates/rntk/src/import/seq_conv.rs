//! CNTK's sequential convolution as saved by CNTK 2.7, recognised and loaded as rntk's
//! one op `Op::Convolution { sequential: true }`.
//!
//! CNTK's `convolution(W, x, sequential=True)` (and so the `SequentialConvolution`
//! layer) has no kernel of its own: it pads every sequence to the longest, convolves
//! over that free dimension as over a static axis, and cuts each sequence back to its
//! own output length. The file holds that expansion:
//!
//! ```text
//!   x (C, s…) seq ──UnpackSequence(pad 0)──▶ (T*, C, s…) ──TransposeAxes(0↔1)──▶ (C, T*, s…)
//!   W ─────────────────────────────────────────────────────────Convolution──▶ (O, T*', s'…)
//!                                  ──TransposeAxes(0↔1)──▶ (T*', O, s'…) ──ToSequence──▶ (O, s'…) seq
//!   lengths: StopGradient(ConvolutionSequenceShape(W, x)) ────────────────────┘
//! ```
//!
//! (`T*` is the free dimension, Python axes above.) `find` matches it from its
//! `ToSequence` end; the inner convolution's attributes (full per-axis lists over
//! `(C, T, s…)`) become the op's, with `sequential` set. The op computes the same
//! values: each sequence padded with zeros as the unpacking pads it, windows along the
//! sequence placed as CNTK places them (`conv_fixtures.rs` checks it against CNTK's
//! `convolution(…, sequential=True)` itself).

use super::dict::Dict;
use super::model::FnDesc;
use crate::error::{Error, Result};
use crate::ops::Op;
use std::collections::HashMap;

/// CNTK 2.7's op codes of the pattern.
const TRANSPOSE_AXES: u64 = 12;
const CONVOLUTION: u64 = 33;
const STOP_GRADIENT: u64 = 64;
pub(crate) const TO_SEQUENCE: u64 = 70;
const UNPACK_SEQUENCE: u64 = 72;
/// `ConvolutionSequenceShape` (the output lengths), not in CNTK's public op list.
const CONVOLUTION_SEQUENCE_SHAPE: u64 = 97;

/// A matched sequential convolution: the uids of its filter and operand, and the
/// functions whose attributes it is loaded from.
pub(crate) struct SeqConv<'a> {
    pub w: &'a str,
    pub x: &'a str,
    pub name: &'a str,
    conv: &'a FnDesc,
    transposes: [&'a FnDesc; 2],
    unpack: &'a FnDesc,
}

/// `<function uid>_Output_0` → the function.
fn producer<'a>(fns: &HashMap<&str, &'a FnDesc>, uid: &str) -> Option<&'a FnDesc> {
    let f = uid.strip_suffix("_Output_0")?;
    fns.get(f).copied()
}

fn only_input<'a>(fns: &HashMap<&str, &'a FnDesc>, fd: &FnDesc, op: u64) -> Option<&'a FnDesc> {
    match fd.inputs.as_slice() {
        [i] => producer(fns, i).filter(|f| f.op == op && f.block.is_none()),
        _ => None,
    }
}

/// The pattern ending in `to_seq` (a `ToSequence`), if it is one.
pub(crate) fn find<'a>(fns: &HashMap<&str, &'a FnDesc>, to_seq: &'a FnDesc) -> Option<SeqConv<'a>> {
    if to_seq.op != TO_SEQUENCE || to_seq.block.is_some() {
        return None;
    }
    let [data, lengths] = to_seq.inputs.as_slice() else {
        return None;
    };
    let t_out = producer(fns, data).filter(|f| f.op == TRANSPOSE_AXES)?;
    let conv = only_input(fns, t_out, CONVOLUTION)?;
    let [w, xt] = conv.inputs.as_slice() else {
        return None;
    };
    let t_in = producer(fns, xt).filter(|f| f.op == TRANSPOSE_AXES)?;
    let unpack = only_input(fns, t_in, UNPACK_SEQUENCE)?;
    let [x] = unpack.inputs.as_slice() else {
        return None;
    };
    let shape_of = producer(fns, lengths).filter(|f| f.op == STOP_GRADIENT)?;
    let [s] = shape_of.inputs.as_slice() else {
        return None;
    };
    let seq_shape = producer(fns, s).filter(|f| f.op == CONVOLUTION_SEQUENCE_SHAPE)?;
    if seq_shape.inputs.as_slice() != [w.clone(), x.clone()] {
        return None;
    }
    Some(SeqConv {
        w,
        x,
        name: &conv.name,
        conv,
        transposes: [t_in, t_out],
        unpack,
    })
}

impl SeqConv<'_> {
    /// The rntk op, for an operand of per-step rank `x_rank`: checks what the op's
    /// values rest on (zero padding, the transposes swapping the free axis and the
    /// next) and takes the inner convolution's attributes.
    pub(crate) fn op(&self, file: &str, x_rank: usize) -> Result<Op> {
        let label = |f: &FnDesc| format!("function {} (sequential convolution)", f.uid);
        let unsupported =
            |f: &FnDesc, d: String| Error::Unsupported(format!("{file}: {}: {d}", label(f)));
        let l = label(self.unpack);
        let u = Dict::new(file, &l, &self.unpack.attributes);
        if u.has("sequenceUnpackPaddingValue") && u.real("sequenceUnpackPaddingValue")? != 0.0 {
            return Err(unsupported(
                self.unpack,
                "the sequences are unpacked with a padding value other than 0".into(),
            ));
        }
        // (T*, C, s…) and (O, T*', s'…) have the operand's rank + 1
        let rank = x_rank + 1;
        for t in self.transposes {
            let l = label(t);
            let a = Dict::new(file, &l, &t.attributes);
            let pair = (
                a.axis("axis1")?.static_axis_idx,
                a.axis("axis2")?.static_axis_idx,
            );
            let top = rank as i32 - 1;
            if pair != (top, top - 1) && pair != (top - 1, top) {
                return Err(unsupported(
                    t,
                    format!(
                        "transposes static axes {pair:?} of a rank-{rank} operand (a \
                         sequential convolution swaps the free axis and the next)"
                    ),
                ));
            }
        }
        let l = label(self.conv);
        let a = Dict::new(file, &l, &self.conv.attributes);
        match super::conv::convolution(&a)? {
            Op::Convolution(mut attrs) => {
                attrs.sequential = true;
                Ok(Op::Convolution(attrs))
            }
            _ => Err(unsupported(
                self.conv,
                "a transposed convolution along the sequence axis".into(),
            )),
        }
    }
}

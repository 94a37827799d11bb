//! Sequence ops: first / last / reduce over the sequence axis, broadcast_as, slice,
//! is_first / is_last, softmax along time, where / gather / scatter, unpack.
//!
//! All of them are *whole* ops: they see entire values with their packed layouts.
//! Conventions:
//! * Ops that remove the sequence axis (first, last, reduce_sum, reduce_max, unpack)
//!   give a batch-only value with one row per sequence in the **caller's order**.
//! * `slice`, `where` and `gather` change the sequence lengths, so their output lives
//!   on a **new** sequence axis (a fresh [`Axis`] per function at build time, a new
//!   [`PackedLayout`] per minibatch): it cannot be mixed element-wise with the
//!   operand's axis by accident. `scatter` goes back onto its condition's axis.
//! * A sequence left without steps (a slice that is out of range for a short
//!   sequence, a condition that keeps no step) is an error, as in CNTK ("AddSequence:
//!   Sequences must be a least one frame long."): packed layouts have no empty
//!   sequences, and silently dropping a sequence would misalign the batch.
//! * Condition values of where / gather / scatter are repeat counts: 0 drops a step,
//!   1 keeps it, 2 keeps it twice; fractional values accumulate along the sequence and
//!   round up, carrying the overshoot (`1.2` ten times → 12 indices). Conditions get
//!   no gradient (CNTK returns zeros).
//! * `scatter` adds rows that land on the same step (a repeated index), the adjoint
//!   of `gather`'s repetition.
//! * `unpack` / `unpack_mask` have the static shape `(?,)+shape` / `(?,)`; the free
//!   leading dimension becomes the longest sequence's length at run time (see
//!   [`shape`]).
//!
//! Run-time errors are `Error::Runtime` with an empty function name; the executor
//! fills in the name of the function that failed.

use super::{dense_info, expect_arity, Arg, Inferred, Op, WholeArg};
use crate::error::{Error, Result};
use crate::graph::{Axis, DynamicAxes, VarInfo};
use crate::tensor::{Element, Layout, PackedLayout, Shape, INFERRED};
use std::borrow::Cow;
use std::sync::Arc;

/// CNTK's message for an empty sequence, quoted in ours.
const CNTK_EMPTY: &str = "AddSequence: Sequences must be a least one frame long.";

// ---------------------------------------------------------------------------
// Build time: shapes and dynamic axes
// ---------------------------------------------------------------------------

pub(crate) fn infer(op: &Op, op_name: &str, name: &str, infos: &[VarInfo]) -> Result<Inferred> {
    let need_seq = |v: &VarInfo, what: &str| -> Result<()> {
        if v.axes.has_sequence() {
            Ok(())
        } else {
            Err(Error::axes(
                op_name,
                name,
                format!(
                    "{what} must have a sequence axis, got {}",
                    v.axes.notation()
                ),
            ))
        }
    };
    let scalar_cond = |c: &VarInfo| -> Result<()> {
        if c.shape.numel() == 1 {
            Ok(())
        } else {
            Err(Error::shape(
                op_name,
                name,
                format!(
                    "the condition must have one element per step, got shape {}",
                    c.shape
                ),
            ))
        }
    };
    let new_axis = || DynamicAxes::Sequence(Axis::new(&format!("{op_name}Axis")));
    let out = match op {
        Op::SeqFirst | Op::SeqLast | Op::SeqReduceSum | Op::SeqReduceMax => {
            expect_arity(op_name, name, infos, 1)?;
            let x = &infos[0];
            need_seq(x, "the operand")?;
            dense_info(x.shape.clone(), x, DynamicAxes::Batch)
        }
        Op::SeqSoftmax => {
            expect_arity(op_name, name, infos, 1)?;
            let x = &infos[0];
            need_seq(x, "the operand")?;
            dense_info(x.shape.clone(), x, x.axes.clone())
        }
        Op::SeqIsFirst | Op::SeqIsLast => {
            expect_arity(op_name, name, infos, 1)?;
            let x = &infos[0];
            need_seq(x, "the operand")?;
            dense_info(Shape::scalar(), x, x.axes.clone())
        }
        Op::SeqSlice { begin, end } => {
            expect_arity(op_name, name, infos, 1)?;
            let x = &infos[0];
            need_seq(x, "the operand")?;
            // Bounds of the same sign that leave nothing for any length.
            let same_side = (*begin >= 0 && *end > 0) || (*begin < 0 && *end < 0);
            let empty_always = same_side && end <= begin;
            if empty_always {
                return Err(Error::invalid(
                    format!("{op_name} '{name}'"),
                    format!(
                        "slice({begin}, {end}) is empty for every sequence (sequences must be at least one step long)"
                    ),
                ));
            }
            dense_info(x.shape.clone(), x, new_axis())
        }
        Op::SeqBroadcastAs => {
            expect_arity(op_name, name, infos, 2)?;
            let (v, like) = (&infos[0], &infos[1]);
            if v.axes != DynamicAxes::Batch {
                return Err(Error::axes(
                    op_name,
                    name,
                    format!(
                        "the operand must be batch-only [#] (one value per sequence), got {}",
                        v.axes.notation()
                    ),
                ));
            }
            need_seq(like, "the broadcast_as target")?;
            dense_info(v.shape.clone(), v, like.axes.clone())
        }
        Op::SeqWhere => {
            expect_arity(op_name, name, infos, 1)?;
            let c = &infos[0];
            need_seq(c, "the condition")?;
            scalar_cond(c)?;
            dense_info(c.shape.clone(), c, new_axis())
        }
        Op::SeqGather => {
            expect_arity(op_name, name, infos, 2)?;
            let (x, c) = (&infos[0], &infos[1]);
            need_seq(x, "the operand")?;
            need_seq(c, "the condition")?;
            if x.axes != c.axes {
                return Err(Error::axes(
                    op_name,
                    name,
                    format!(
                        "operand {} and condition {} must share a sequence axis",
                        x.axes.notation(),
                        c.axes.notation()
                    ),
                ));
            }
            scalar_cond(c)?;
            dense_info(x.shape.clone(), x, new_axis())
        }
        Op::SeqScatter => {
            expect_arity(op_name, name, infos, 2)?;
            let (x, c) = (&infos[0], &infos[1]);
            need_seq(x, "the operand")?;
            need_seq(c, "the condition")?;
            scalar_cond(c)?;
            dense_info(x.shape.clone(), x, c.axes.clone())
        }
        Op::SeqUnpack { .. } => {
            expect_arity(op_name, name, infos, 1)?;
            let x = &infos[0];
            need_seq(x, "the operand")?;
            let mut dims = vec![INFERRED];
            dims.extend_from_slice(x.shape.dims());
            dense_info(Shape::from(dims), x, DynamicAxes::Batch)
        }
        Op::SeqUnpackMask => {
            expect_arity(op_name, name, infos, 1)?;
            let x = &infos[0];
            need_seq(x, "the operand")?;
            dense_info(Shape::from([INFERRED]), x, DynamicAxes::Batch)
        }
        _ => {
            return Err(Error::Unsupported(format!(
                "{op_name} '{name}' is not a sequence op"
            )))
        }
    };
    Ok(Inferred::one(out))
}

// ---------------------------------------------------------------------------
// Run time helpers
// ---------------------------------------------------------------------------

fn rt(op: &Op, detail: String) -> Error {
    Error::Runtime {
        op: op.name().to_string(),
        name: String::new(),
        detail,
    }
}

fn packed<'a, T>(op: &Op, a: &'a WholeArg<T>, what: &str) -> Result<&'a Arc<PackedLayout>> {
    a.layout.packed().ok_or_else(|| {
        rt(
            op,
            format!("{what} must be sequences, got {}", a.layout.describe()),
        )
    })
}

/// The operand's rows as a dense slice (sparse rows are densified).
fn dense<'a, T: Element>(a: &WholeArg<'a, T>) -> Cow<'a, [T]> {
    match a.data {
        Arg::Rows(x) | Arg::Static(x) => Cow::Borrowed(x),
        Arg::Sparse(s) => {
            let rows = a.layout.rows();
            let d = a.shape.numel();
            let mut out = vec![T::zero(); rows * d];
            for r in 0..rows {
                for k in s.indptr[r]..s.indptr[r + 1] {
                    out[r * d + s.indices[k] as usize] = s.values[k];
                }
            }
            Cow::Owned(out)
        }
    }
}

fn add_to<T: Element>(dst: &mut [T], src: &[T]) {
    for (a, &b) in dst.iter_mut().zip(src) {
        *a += b;
    }
}

/// Largest number of repeats one condition may ask for in total per sequence (a
/// guard against a stray huge value exhausting memory).
const MAX_REPEATS: f64 = (1u64 << 32) as f64;

/// The step indices a condition selects, per sequence in the caller's order: step `t`
/// is emitted while the number emitted so far is below the running sum of the
/// condition (0 drops, 1 keeps, k repeats k times, fractions round up and carry).
fn where_indices<T: Element>(op: &Op, cond: &[T], p: &PackedLayout) -> Result<Vec<Vec<usize>>> {
    let mut all = Vec::with_capacity(p.num_sequences());
    for i in 0..p.num_sequences() {
        let mut acc = 0.0f64;
        let mut idx = Vec::new();
        for t in 0..p.lengths()[i] {
            let c = cond[p.row(i, t)].as_f64();
            if !c.is_finite() {
                return Err(rt(
                    op,
                    format!("condition value {c} at step {t} of sequence {i} is not finite"),
                ));
            }
            acc += c;
            if acc > MAX_REPEATS {
                return Err(rt(
                    op,
                    format!(
                        "condition of sequence {i} asks for more than {MAX_REPEATS} steps (value {c} at step {t})"
                    ),
                ));
            }
            while (idx.len() as f64) < acc {
                idx.push(t);
            }
        }
        all.push(idx);
    }
    Ok(all)
}

/// A new packed layout for the per-sequence lengths, refusing empty sequences with a
/// message that says which sequence and why.
fn new_layout(op: &Op, lengths: &[usize], why: impl Fn(usize) -> String) -> Result<Layout> {
    if let Some(i) = lengths.iter().position(|&l| l == 0) {
        return Err(rt(
            op,
            format!(
                "{}: sequences must be at least one step long (CNTK: {CNTK_EMPTY})",
                why(i)
            ),
        ));
    }
    let p = PackedLayout::new(lengths).map_err(|e| rt(op, e.to_string()))?;
    Ok(Layout::Sequence(Arc::new(p)))
}

/// Steps `b..e` of a sequence of length `len` (negative = from the end, `end == 0`
/// = through the end); `e <= b` means empty.
fn slice_range(begin: isize, end: isize, len: usize) -> (usize, usize) {
    let l = len as isize;
    let b = if begin < 0 {
        (l + begin).max(0)
    } else {
        begin.min(l)
    };
    let e = if end == 0 {
        l
    } else if end < 0 {
        (l + end).max(0)
    } else {
        end.min(l)
    };
    (b as usize, e.max(b) as usize)
}

fn gather_layout<T: Element>(op: &Op, args: &[WholeArg<T>]) -> Result<(Vec<Vec<usize>>, Layout)> {
    let px = packed(op, &args[0], "the operand")?;
    let pc = packed(op, &args[1], "the condition")?;
    if !args[0].layout.same_as(args[1].layout) {
        return Err(rt(
            op,
            format!(
                "operand ({}) and condition ({}) must have the same sequences",
                args[0].layout.describe(),
                args[1].layout.describe()
            ),
        ));
    }
    let idx = where_indices(op, &dense(&args[1]), pc)?;
    let lengths: Vec<usize> = idx.iter().map(|v| v.len()).collect();
    let l = new_layout(op, &lengths, |i| {
        format!(
            "the condition keeps no step of sequence {i} (length {})",
            px.lengths()[i]
        )
    })?;
    Ok((idx, l))
}

/// For scatter: the condition's indices, checked against the operand's lengths.
fn scatter_indices<T: Element>(op: &Op, args: &[WholeArg<T>]) -> Result<Vec<Vec<usize>>> {
    let px = packed(op, &args[0], "the operand")?;
    let pc = packed(op, &args[1], "the condition")?;
    if px.num_sequences() != pc.num_sequences() {
        return Err(rt(
            op,
            format!(
                "operand has {} sequences but the condition has {}",
                px.num_sequences(),
                pc.num_sequences()
            ),
        ));
    }
    let idx = where_indices(op, &dense(&args[1]), pc)?;
    for (i, v) in idx.iter().enumerate() {
        if v.len() != px.lengths()[i] {
            return Err(rt(
                op,
                format!(
                    "sequence {i} of the operand has {} steps but the condition selects {} steps",
                    px.lengths()[i],
                    v.len()
                ),
            ));
        }
    }
    Ok(idx)
}

// ---------------------------------------------------------------------------
// Run time: layout, shape, forward, backward
// ---------------------------------------------------------------------------

pub(crate) fn layout<T: Element>(op: &Op, args: &[WholeArg<T>]) -> Result<Layout> {
    match op {
        Op::SeqFirst
        | Op::SeqLast
        | Op::SeqReduceSum
        | Op::SeqReduceMax
        | Op::SeqUnpack { .. }
        | Op::SeqUnpackMask => {
            let p = packed(op, &args[0], "the operand")?;
            Ok(Layout::Batch(p.num_sequences()))
        }
        Op::SeqSoftmax | Op::SeqIsFirst | Op::SeqIsLast => {
            packed(op, &args[0], "the operand")?;
            Ok(args[0].layout.clone())
        }
        Op::SeqBroadcastAs => {
            let p = packed(op, &args[1], "the broadcast_as target")?;
            match args[0].layout {
                Layout::Batch(n) if *n == p.num_sequences() => Ok(args[1].layout.clone()),
                l => Err(rt(
                    op,
                    format!(
                        "the operand ({}) must have one sample per sequence of the target ({})",
                        l.describe(),
                        args[1].layout.describe()
                    ),
                )),
            }
        }
        Op::SeqSlice { begin, end } => {
            let p = packed(op, &args[0], "the operand")?;
            let lengths: Vec<usize> = p
                .lengths()
                .iter()
                .map(|&l| {
                    let (b, e) = slice_range(*begin, *end, l);
                    e - b
                })
                .collect();
            new_layout(op, &lengths, |i| {
                format!(
                    "sequence.slice({begin},{end}) leaves sequence {i} (length {}) empty",
                    p.lengths()[i]
                )
            })
        }
        Op::SeqWhere => {
            let p = packed(op, &args[0], "the condition")?;
            let idx = where_indices(op, &dense(&args[0]), p)?;
            let lengths: Vec<usize> = idx.iter().map(|v| v.len()).collect();
            new_layout(op, &lengths, |i| {
                format!(
                    "the condition selects no step of sequence {i} (length {})",
                    p.lengths()[i]
                )
            })
        }
        Op::SeqGather => gather_layout(op, args).map(|(_, l)| l),
        Op::SeqScatter => {
            scatter_indices(op, args)?;
            Ok(args[1].layout.clone())
        }
        _ => Err(Error::Unsupported(format!(
            "{} is not a sequence op",
            op.name()
        ))),
    }
}

/// The output's sample shape for this minibatch: the static shape, except that the
/// free leading dimension of unpack / unpack_mask becomes the longest length.
pub(crate) fn shape<T: Element>(
    op: &Op,
    args: &[WholeArg<T>],
    static_shape: &Shape,
) -> Result<Shape> {
    match op {
        Op::SeqUnpack { .. } | Op::SeqUnpackMask => {
            let p = packed(op, &args[0], "the operand")?;
            let mut dims = static_shape.dims().to_vec();
            if let Some(d) = dims.first_mut() {
                *d = p.max_len();
            }
            Ok(Shape::from(dims))
        }
        _ => Ok(static_shape.clone()),
    }
}

pub(crate) fn forward<T: Element>(
    op: &Op,
    args: &[WholeArg<T>],
    out_shape: &Shape,
    out_layout: &Layout,
    out: &mut [T],
) -> Result<()> {
    let d = args[0].shape.numel();
    let x = dense(&args[0]);
    let row = |r: usize| &x[r * d..(r + 1) * d];
    match op {
        Op::SeqFirst | Op::SeqLast | Op::SeqReduceSum | Op::SeqReduceMax => {
            let p = packed(op, &args[0], "the operand")?;
            for i in 0..p.num_sequences() {
                let len = p.lengths()[i];
                let dst = &mut out[i * d..(i + 1) * d];
                match op {
                    Op::SeqFirst => dst.copy_from_slice(row(p.row(i, 0))),
                    Op::SeqLast => dst.copy_from_slice(row(p.row(i, len - 1))),
                    Op::SeqReduceSum => {
                        dst.iter_mut().for_each(|v| *v = T::zero());
                        for t in 0..len {
                            add_to(dst, row(p.row(i, t)));
                        }
                    }
                    _ => {
                        dst.copy_from_slice(row(p.row(i, 0)));
                        for t in 1..len {
                            for (a, &b) in dst.iter_mut().zip(row(p.row(i, t))) {
                                if b > *a {
                                    *a = b;
                                }
                            }
                        }
                    }
                }
            }
        }
        Op::SeqSoftmax => {
            let p = packed(op, &args[0], "the operand")?;
            for i in 0..p.num_sequences() {
                let len = p.lengths()[i];
                for f in 0..d {
                    let at = |t: usize| p.row(i, t) * d + f;
                    let m = (0..len)
                        .map(|t| x[at(t)])
                        .fold(T::neg_infinity(), |a, b| a.max(b));
                    let mut s = T::zero();
                    for t in 0..len {
                        let e = (x[at(t)] - m).exp();
                        out[at(t)] = e;
                        s += e;
                    }
                    for t in 0..len {
                        out[at(t)] = out[at(t)] / s;
                    }
                }
            }
        }
        Op::SeqIsFirst | Op::SeqIsLast => {
            let p = packed(op, &args[0], "the operand")?;
            for i in 0..p.num_sequences() {
                let t = if matches!(op, Op::SeqIsFirst) {
                    0
                } else {
                    p.lengths()[i] - 1
                };
                out[p.row(i, t)] = T::one();
            }
        }
        Op::SeqBroadcastAs => {
            let p = packed(op, &args[1], "the broadcast_as target")?;
            for i in 0..p.num_sequences() {
                for t in 0..p.lengths()[i] {
                    let r = p.row(i, t);
                    out[r * d..(r + 1) * d].copy_from_slice(row(i));
                }
            }
        }
        Op::SeqSlice { begin, end } => {
            let p = packed(op, &args[0], "the operand")?;
            let q = out_packed(op, out_layout)?;
            for i in 0..p.num_sequences() {
                let (b, e) = slice_range(*begin, *end, p.lengths()[i]);
                for t in b..e {
                    let r = q.row(i, t - b);
                    out[r * d..(r + 1) * d].copy_from_slice(row(p.row(i, t)));
                }
            }
        }
        Op::SeqWhere => {
            let p = packed(op, &args[0], "the condition")?;
            let q = out_packed(op, out_layout)?;
            let idx = where_indices(op, &x, p)?;
            for (i, v) in idx.iter().enumerate() {
                for (k, &t) in v.iter().enumerate() {
                    out[q.row(i, k) * d] = T::from_f64(t as f64);
                }
            }
        }
        Op::SeqGather => {
            let p = packed(op, &args[0], "the operand")?;
            let q = out_packed(op, out_layout)?;
            let (idx, _) = gather_layout(op, args)?;
            for (i, v) in idx.iter().enumerate() {
                for (k, &t) in v.iter().enumerate() {
                    let r = q.row(i, k);
                    out[r * d..(r + 1) * d].copy_from_slice(row(p.row(i, t)));
                }
            }
        }
        Op::SeqScatter => {
            let p = packed(op, &args[0], "the operand")?;
            let q = packed(op, &args[1], "the condition")?;
            let idx = scatter_indices(op, args)?;
            for (i, v) in idx.iter().enumerate() {
                for (k, &t) in v.iter().enumerate() {
                    let r = q.row(i, t);
                    add_to(&mut out[r * d..(r + 1) * d], row(p.row(i, k)));
                }
            }
        }
        Op::SeqUnpack { padding } => {
            let p = packed(op, &args[0], "the operand")?;
            let m = unpack_len(op, p, out_shape)?;
            let pad = T::from_f64(*padding);
            for i in 0..p.num_sequences() {
                for t in 0..m {
                    let dst = &mut out[(i * m + t) * d..(i * m + t + 1) * d];
                    if t < p.lengths()[i] {
                        dst.copy_from_slice(row(p.row(i, t)));
                    } else {
                        dst.iter_mut().for_each(|v| *v = pad);
                    }
                }
            }
        }
        Op::SeqUnpackMask => {
            let p = packed(op, &args[0], "the operand")?;
            let m = unpack_len(op, p, out_shape)?;
            for i in 0..p.num_sequences() {
                for t in 0..p.lengths()[i] {
                    out[i * m + t] = T::one();
                }
            }
        }
        _ => {
            return Err(Error::Unsupported(format!(
                "{} is not a sequence op",
                op.name()
            )))
        }
    }
    Ok(())
}

fn out_packed<'a>(op: &Op, l: &'a Layout) -> Result<&'a Arc<PackedLayout>> {
    l.packed()
        .ok_or_else(|| rt(op, format!("output layout is {}", l.describe())))
}

fn unpack_len(op: &Op, p: &PackedLayout, out_shape: &Shape) -> Result<usize> {
    match out_shape.dims().first() {
        Some(&m) if m == p.max_len() => Ok(m),
        _ => Err(rt(
            op,
            format!(
                "output shape {out_shape} does not match the longest sequence ({} steps)",
                p.max_len()
            ),
        )),
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn backward<T: Element>(
    op: &Op,
    i: usize,
    args: &[WholeArg<T>],
    out_shape: &Shape,
    out_layout: &Layout,
    out: &[T],
    dout: &[T],
    din: &mut [T],
) -> Result<()> {
    if !op.differentiable(i) {
        return Ok(());
    }
    let d = args[0].shape.numel();
    match op {
        Op::SeqFirst | Op::SeqLast | Op::SeqReduceSum | Op::SeqReduceMax => {
            let p = packed(op, &args[0], "the operand")?;
            let x = dense(&args[0]);
            for s in 0..p.num_sequences() {
                let len = p.lengths()[s];
                let g = &dout[s * d..(s + 1) * d];
                match op {
                    Op::SeqFirst | Op::SeqLast => {
                        let t = if matches!(op, Op::SeqFirst) {
                            0
                        } else {
                            len - 1
                        };
                        let r = p.row(s, t);
                        add_to(&mut din[r * d..(r + 1) * d], g);
                    }
                    Op::SeqReduceSum => {
                        for t in 0..len {
                            let r = p.row(s, t);
                            add_to(&mut din[r * d..(r + 1) * d], g);
                        }
                    }
                    _ => {
                        // Every step equal to the max gets the full gradient (CNTK).
                        let y = &out[s * d..(s + 1) * d];
                        for t in 0..len {
                            let r = p.row(s, t);
                            for f in 0..d {
                                if x[r * d + f] == y[f] {
                                    din[r * d + f] += g[f];
                                }
                            }
                        }
                    }
                }
            }
        }
        Op::SeqSoftmax => {
            let p = packed(op, &args[0], "the operand")?;
            for s in 0..p.num_sequences() {
                let len = p.lengths()[s];
                for f in 0..d {
                    let at = |t: usize| p.row(s, t) * d + f;
                    let dot: T = (0..len).map(|t| out[at(t)] * dout[at(t)]).sum();
                    for t in 0..len {
                        din[at(t)] += out[at(t)] * (dout[at(t)] - dot);
                    }
                }
            }
        }
        Op::SeqIsFirst | Op::SeqIsLast | Op::SeqWhere | Op::SeqUnpackMask => {}
        Op::SeqBroadcastAs => {
            let p = packed(op, &args[1], "the broadcast_as target")?;
            for s in 0..p.num_sequences() {
                for t in 0..p.lengths()[s] {
                    let r = p.row(s, t);
                    add_to(&mut din[s * d..(s + 1) * d], &dout[r * d..(r + 1) * d]);
                }
            }
        }
        Op::SeqSlice { begin, end } => {
            let p = packed(op, &args[0], "the operand")?;
            let q = out_packed(op, out_layout)?;
            for s in 0..p.num_sequences() {
                let (b, e) = slice_range(*begin, *end, p.lengths()[s]);
                for t in b..e {
                    let (r, o) = (p.row(s, t), q.row(s, t - b));
                    add_to(&mut din[r * d..(r + 1) * d], &dout[o * d..(o + 1) * d]);
                }
            }
        }
        Op::SeqGather => {
            let p = packed(op, &args[0], "the operand")?;
            let q = out_packed(op, out_layout)?;
            let (idx, _) = gather_layout(op, args)?;
            for (s, v) in idx.iter().enumerate() {
                for (k, &t) in v.iter().enumerate() {
                    let (r, o) = (p.row(s, t), q.row(s, k));
                    add_to(&mut din[r * d..(r + 1) * d], &dout[o * d..(o + 1) * d]);
                }
            }
        }
        Op::SeqScatter => {
            let p = packed(op, &args[0], "the operand")?;
            let q = packed(op, &args[1], "the condition")?;
            let idx = scatter_indices(op, args)?;
            for (s, v) in idx.iter().enumerate() {
                for (k, &t) in v.iter().enumerate() {
                    let (r, o) = (p.row(s, k), q.row(s, t));
                    add_to(&mut din[r * d..(r + 1) * d], &dout[o * d..(o + 1) * d]);
                }
            }
        }
        Op::SeqUnpack { .. } => {
            let p = packed(op, &args[0], "the operand")?;
            let m = unpack_len(op, p, out_shape)?;
            for s in 0..p.num_sequences() {
                for t in 0..p.lengths()[s] {
                    let (r, o) = (p.row(s, t), s * m + t);
                    add_to(&mut din[r * d..(r + 1) * d], &dout[o * d..(o + 1) * d]);
                }
            }
        }
        _ => {
            return Err(Error::Unsupported(format!(
                "{} is not a sequence op",
                op.name()
            )))
        }
    }
    Ok(())
}

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
//! Every op moves whole rows: the recipes below compute row maps from the packed
//! layouts (host data) and call the backend's row kernels. where / gather / scatter
//! read their condition on the host (a counted op read: the output layout depends on
//! it); sequence.where also writes its index values from the host.
//!
//! Run-time errors are `Error::Runtime` with an empty function name; the executor
//! fills in the name of the function that failed.

use super::{dense_info, expect_arity, Inferred, NodeState, Op, VarInfo, WholeArg};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::tensor::{Axis, DynamicAxes, Element, Layout, PackedLayout, Shape, INFERRED};
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

fn packed<'a, B: Backend, T: Element>(
    op: &Op,
    a: &WholeArg<'a, B, T>,
    what: &str,
) -> Result<&'a Arc<PackedLayout>> {
    a.layout.packed().ok_or_else(|| {
        rt(
            op,
            format!("{what} must be sequences, got {}", a.layout.describe()),
        )
    })
}

/// The operand's rows (the runtime densifies sparse inputs of sequence ops when fed).
fn dense<'a, B: Backend, T: Element>(op: &Op, a: &WholeArg<'a, B, T>) -> Result<B::Ref<'a, T>> {
    a.data
        .dense()
        .map(|o| o.data)
        .ok_or_else(|| rt(op, "a sparse operand".into()))
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

/// The condition operand's indices, read on the host.
fn cond_indices<B: Backend, T: Element>(
    b: &B,
    op: &Op,
    c: &WholeArg<B, T>,
    what: &str,
) -> Result<Vec<Vec<usize>>> {
    let p = packed(op, c, what)?;
    let cond = b.read_host(B::sub(dense(op, c)?, 0..p.total()));
    where_indices(op, &cond, p)
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

/// sequence.gather: the kept steps and the new layout.
fn gather_layout<B: Backend, T: Element>(
    b: &B,
    op: &Op,
    args: &[WholeArg<B, T>],
) -> Result<(Vec<Vec<usize>>, Layout)> {
    let px = packed(op, &args[0], "the operand")?;
    packed(op, &args[1], "the condition")?;
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
    let idx = cond_indices(b, op, &args[1], "the condition")?;
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
fn scatter_indices<B: Backend, T: Element>(
    b: &B,
    op: &Op,
    args: &[WholeArg<B, T>],
) -> Result<Vec<Vec<usize>>> {
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
    let idx = cond_indices(b, op, &args[1], "the condition")?;
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

/// Every step of every sequence as `(row, sequence, step)`, sequence after sequence.
fn steps(p: &PackedLayout) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
    (0..p.num_sequences()).flat_map(move |i| (0..p.lengths()[i]).map(move |t| (p.row(i, t), i, t)))
}

// ---------------------------------------------------------------------------
// Run time: forward
// ---------------------------------------------------------------------------

/// The output layout and sample shape of a sequence op for this minibatch.
fn out_layout<B: Backend, T: Element>(
    b: &B,
    op: &Op,
    args: &[WholeArg<B, T>],
    static_shape: &Shape,
    st: &mut NodeState<B, T>,
) -> Result<(Layout, Shape)> {
    let fixed = |l: Layout| Ok((l, static_shape.clone()));
    match op {
        Op::SeqFirst | Op::SeqLast | Op::SeqReduceSum | Op::SeqReduceMax => fixed(Layout::Batch(
            packed(op, &args[0], "the operand")?.num_sequences(),
        )),
        Op::SeqUnpack { .. } | Op::SeqUnpackMask => {
            let p = packed(op, &args[0], "the operand")?;
            // the free leading dimension becomes the longest length
            let mut dims = static_shape.dims().to_vec();
            if let Some(d) = dims.first_mut() {
                *d = p.max_len();
            }
            Ok((Layout::Batch(p.num_sequences()), Shape::from(dims)))
        }
        Op::SeqSoftmax | Op::SeqIsFirst | Op::SeqIsLast => {
            packed(op, &args[0], "the operand")?;
            fixed(args[0].layout.clone())
        }
        Op::SeqBroadcastAs => {
            let p = packed(op, &args[1], "the broadcast_as target")?;
            match args[0].layout {
                Layout::Batch(n) if *n == p.num_sequences() => fixed(args[1].layout.clone()),
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
            fixed(new_layout(op, &lengths, |i| {
                format!(
                    "sequence.slice({begin},{end}) leaves sequence {i} (length {}) empty",
                    p.lengths()[i]
                )
            })?)
        }
        Op::SeqWhere => {
            let p = packed(op, &args[0], "the condition")?;
            let idx = cond_indices(b, op, &args[0], "the condition")?;
            let lengths: Vec<usize> = idx.iter().map(|v| v.len()).collect();
            let l = new_layout(op, &lengths, |i| {
                format!(
                    "the condition selects no step of sequence {i} (length {})",
                    p.lengths()[i]
                )
            })?;
            // (sequence, k, step) kept for the forward's values
            st.pairs = idx
                .iter()
                .enumerate()
                .flat_map(|(i, v)| v.iter().map(move |&t| (i, t)))
                .collect();
            fixed(l)
        }
        Op::SeqGather => {
            let (idx, l) = gather_layout(b, op, args)?;
            let (p, q) = (packed(op, &args[0], "the operand")?, out_packed(op, &l)?);
            st.pairs = pairs_of(&idx, |i, k, t| (p.row(i, t), q.row(i, k)));
            fixed(l)
        }
        Op::SeqScatter => {
            let idx = scatter_indices(b, op, args)?;
            let p = packed(op, &args[0], "the operand")?;
            let q = packed(op, &args[1], "the condition")?;
            st.pairs = pairs_of(&idx, |i, k, t| (p.row(i, k), q.row(i, t)));
            fixed(args[1].layout.clone())
        }
        _ => Err(Error::Unsupported(format!(
            "{} is not a sequence op",
            op.name()
        ))),
    }
}

/// `(source row, destination row)` for every selected step `t` (k-th of sequence i).
fn pairs_of(
    idx: &[Vec<usize>],
    f: impl Fn(usize, usize, usize) -> (usize, usize),
) -> Vec<(usize, usize)> {
    idx.iter()
        .enumerate()
        .flat_map(|(i, v)| v.iter().enumerate().map(move |(k, &t)| (i, k, t)))
        .map(|(i, k, t)| f(i, k, t))
        .collect()
}

/// Forward of a sequence op: its layout and shape for this minibatch, `out` sized and
/// filled.
pub(crate) fn forward<B: Backend, T: Element>(
    b: &B,
    op: &Op,
    args: &[WholeArg<B, T>],
    static_shape: &Shape,
    out: &mut B::Buf<T>,
    st: &mut NodeState<B, T>,
) -> Result<(Layout, Shape)> {
    let (layout, shape) = out_layout(b, op, args, static_shape, st)?;
    super::run::zeroed(b, op, out, (layout.rows(), shape.numel()))?;
    let d = args[0].shape.numel();
    let x = dense(op, &args[0])?;
    let y = B::view_mut(out);
    match op {
        Op::SeqFirst | Op::SeqLast | Op::SeqReduceSum | Op::SeqReduceMax => {
            let p = packed(op, &args[0], "the operand")?;
            let first = |i: usize| (p.row(i, 0), i);
            let last = |i: usize| (p.row(i, p.lengths()[i] - 1), i);
            let n = p.num_sequences();
            match op {
                Op::SeqFirst => b.copy_rows(d, &(0..n).map(first).collect::<Vec<_>>(), x, y),
                Op::SeqLast => b.copy_rows(d, &(0..n).map(last).collect::<Vec<_>>(), x, y),
                Op::SeqReduceSum => {
                    let pairs: Vec<_> = steps(p).map(|(r, i, _)| (r, i)).collect();
                    b.add_rows(d, &pairs, x, y)
                }
                _ => {
                    let mut y = y;
                    b.copy_rows(
                        d,
                        &(0..n).map(first).collect::<Vec<_>>(),
                        x,
                        B::reborrow(&mut y),
                    );
                    let rest: Vec<_> = steps(p)
                        .filter(|s| s.2 > 0)
                        .map(|(r, i, _)| (r, i))
                        .collect();
                    b.max_rows(d, &rest, x, y)
                }
            }
        }
        Op::SeqSoftmax => {
            let p = packed(op, &args[0], "the operand")?;
            b.sequence_softmax(p, d, x, y);
        }
        Op::SeqIsFirst | Op::SeqIsLast => {
            let p = packed(op, &args[0], "the operand")?;
            let rows: Vec<usize> = (0..p.num_sequences())
                .map(|i| {
                    let t = if matches!(op, Op::SeqIsFirst) {
                        0
                    } else {
                        p.lengths()[i] - 1
                    };
                    p.row(i, t)
                })
                .collect();
            b.fill_rows(1, &rows, T::one(), y);
        }
        Op::SeqBroadcastAs => {
            let p = packed(op, &args[1], "the broadcast_as target")?;
            let pairs: Vec<_> = steps(p).map(|(r, i, _)| (i, r)).collect();
            b.copy_rows(d, &pairs, x, y);
        }
        Op::SeqSlice { begin, end } => {
            let (p, q) = (
                packed(op, &args[0], "the operand")?,
                out_packed(op, &layout)?,
            );
            let pairs: Vec<_> = steps(p)
                .filter_map(|(r, i, t)| {
                    let (s, e) = slice_range(*begin, *end, p.lengths()[i]);
                    (s..e).contains(&t).then(|| (r, q.row(i, t - s)))
                })
                .collect();
            b.copy_rows(d, &pairs, x, y);
        }
        Op::SeqWhere => {
            // the kept step indices as values, written from the host
            let q = out_packed(op, &layout)?;
            let mut vals = vec![T::zero(); layout.rows()];
            let mut k = vec![0usize; q.num_sequences()];
            for &(i, t) in &st.pairs {
                vals[q.row(i, k[i])] = T::from_f64(t as f64);
                k[i] += 1;
            }
            b.write_host(&vals, y);
        }
        Op::SeqGather => b.copy_rows(d, &st.pairs, x, y),
        Op::SeqScatter => b.add_rows(d, &st.pairs, x, y),
        Op::SeqUnpack { padding } => {
            let p = packed(op, &args[0], "the operand")?;
            let m = unpack_len(op, p, &shape)?;
            let mut y = y;
            b.fill(B::reborrow(&mut y), T::from_f64(*padding));
            let pairs: Vec<_> = steps(p).map(|(r, i, t)| (r, i * m + t)).collect();
            b.copy_rows(d, &pairs, x, y);
        }
        Op::SeqUnpackMask => {
            let p = packed(op, &args[0], "the operand")?;
            let m = unpack_len(op, p, &shape)?;
            let rows: Vec<_> = steps(p).map(|(_, i, t)| i * m + t).collect();
            b.fill_rows(1, &rows, T::one(), y);
        }
        _ => {
            return Err(Error::Unsupported(format!(
                "{} is not a sequence op",
                op.name()
            )))
        }
    }
    Ok((layout, shape))
}

// ---------------------------------------------------------------------------
// Run time: backward
// ---------------------------------------------------------------------------

/// `din +=` the gradient of operand `i` from `dout`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward<B: Backend, T: Element>(
    b: &B,
    op: &Op,
    i: usize,
    args: &[WholeArg<B, T>],
    (out_shape, out_layout): (&Shape, &Layout),
    (out, dout): (B::Ref<'_, T>, B::Ref<'_, T>),
    din: B::Mut<'_, T>,
    st: &NodeState<B, T>,
) -> Result<()> {
    if !op.differentiable(i) {
        return Ok(());
    }
    let d = args[0].shape.numel();
    let flip =
        |v: &[(usize, usize)]| -> Vec<(usize, usize)> { v.iter().map(|&(a, b)| (b, a)).collect() };
    match op {
        Op::SeqFirst | Op::SeqLast | Op::SeqReduceSum => {
            let p = packed(op, &args[0], "the operand")?;
            let pairs: Vec<_> = steps(p)
                .filter(|&(_, i, t)| match op {
                    Op::SeqFirst => t == 0,
                    Op::SeqLast => t + 1 == p.lengths()[i],
                    _ => true,
                })
                .map(|(r, i, _)| (i, r))
                .collect();
            b.add_rows(d, &pairs, dout, din);
        }
        Op::SeqReduceMax => {
            // Every step equal to the max gets the full gradient (CNTK).
            let p = packed(op, &args[0], "the operand")?;
            let pairs: Vec<_> = steps(p).map(|(r, i, _)| (r, i)).collect();
            b.max_rows_backward(d, &pairs, dense(op, &args[0])?, out, dout, din);
        }
        Op::SeqSoftmax => {
            let p = packed(op, &args[0], "the operand")?;
            b.sequence_softmax_backward(p, d, out, dout, din);
        }
        Op::SeqBroadcastAs => {
            let p = packed(op, &args[1], "the broadcast_as target")?;
            let pairs: Vec<_> = steps(p).map(|(r, i, _)| (r, i)).collect();
            b.add_rows(d, &pairs, dout, din);
        }
        Op::SeqSlice { begin, end } => {
            let (p, q) = (
                packed(op, &args[0], "the operand")?,
                out_packed(op, out_layout)?,
            );
            let pairs: Vec<_> = steps(p)
                .filter_map(|(r, i, t)| {
                    let (s, e) = slice_range(*begin, *end, p.lengths()[i]);
                    (s..e).contains(&t).then(|| (q.row(i, t - s), r))
                })
                .collect();
            b.add_rows(d, &pairs, dout, din);
        }
        Op::SeqGather | Op::SeqScatter => b.add_rows(d, &flip(&st.pairs), dout, din),
        Op::SeqUnpack { .. } => {
            let p = packed(op, &args[0], "the operand")?;
            let m = unpack_len(op, p, out_shape)?;
            let pairs: Vec<_> = steps(p).map(|(r, i, t)| (i * m + t, r)).collect();
            b.add_rows(d, &pairs, dout, din);
        }
        Op::SeqIsFirst | Op::SeqIsLast | Op::SeqWhere | Op::SeqUnpackMask => {}
        _ => {
            return Err(Error::Unsupported(format!(
                "{} is not a sequence op",
                op.name()
            )))
        }
    }
    Ok(())
}

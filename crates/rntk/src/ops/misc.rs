//! clip, element_select, dropout, one_hot, gather.
//!
//! * `clip(x, min, max)` and `element_select(cond, a, b)` broadcast their three
//!   operands NumPy-style. Clip's gradient is 1 where `min ≤ x ≤ max` (bounds
//!   inclusive) and goes to `x` only (CNTK gives the bounds none); select's goes to
//!   `a` where `cond ≠ 0` and to `b` elsewhere, never to `cond`.
//! * `dropout` draws CNTK 2.7's masks through the backend's random-number kernel: the
//!   node's stream (`DropoutRng`, kept in `NodeState::rng`) continues across training
//!   forwards, and each call draws its rows in CNTK's column order (step by step,
//!   sequences in the caller's order, gap columns of shorter sequences drawn and
//!   discarded), so the whole minibatch at once and a forward loop's steps draw the
//!   same masks, and a backward loop's steps draw in its order, as CNTK does (see
//!   `random::dropout`). The mask (0 or 1/(1−rate) per element) is kept in
//!   `NodeState::aux`, indexed by absolute row, for the backward.
//! * `one_hot` and `gather` take integer-valued indices; anything else (fractions,
//!   negatives, out of range) is refused at run time.

use super::binary::broadcast_shape;
use super::{dense_info, expect_arity, join_axes, Inferred, NodeState, Op, RowCtx, VarInfo};
use crate::backend::copies::GatherGeom;
use crate::backend::elementwise::{Geom, TernaryOp};
use crate::backend::random::MaskOrder;
use crate::backend::{Arg, Backend, Operand};
use crate::error::{Error, Result};
use crate::random::DropoutRng;
use crate::tensor::{Element, PackedLayout, Shape};

pub(crate) fn infer(op: &Op, op_name: &str, name: &str, infos: &[VarInfo]) -> Result<Inferred> {
    match op {
        Op::Clip | Op::Select => {
            expect_arity(op_name, name, infos, 3)?;
            let roles = if matches!(op, Op::Clip) {
                ["operand", "min", "max"]
            } else {
                ["condition", "then-operand", "else-operand"]
            };
            for (i, role) in infos.iter().zip(roles) {
                if i.is_sparse {
                    return Err(Error::shape(
                        op_name,
                        name,
                        format!("the {role} cannot be sparse"),
                    ));
                }
            }
            let shape = broadcast_shape(&infos[0].shape, &infos[1].shape)
                .and_then(|s| broadcast_shape(&s, &infos[2].shape))
                .ok_or_else(|| {
                    Error::shape(
                        op_name,
                        name,
                        format!(
                            "operand shapes {}, {} and {} cannot be broadcast together",
                            infos[0].shape, infos[1].shape, infos[2].shape
                        ),
                    )
                })?;
            let refs: Vec<&VarInfo> = infos.iter().collect();
            let axes = join_axes(op_name, name, &refs)?;
            let like = if matches!(op, Op::Clip) {
                &infos[0]
            } else {
                &infos[1]
            };
            Ok(Inferred::one(dense_info(shape, like, axes)))
        }
        Op::Dropout { rate, .. } => {
            expect_arity(op_name, name, infos, 1)?;
            if !(0.0..1.0).contains(rate) {
                return Err(Error::invalid(
                    format!("{op_name} '{name}'"),
                    format!("dropout rate {rate} must be in [0, 1)"),
                ));
            }
            let x = &infos[0];
            if x.is_sparse {
                return Err(Error::shape(
                    op_name,
                    name,
                    "cannot drop out a sparse operand",
                ));
            }
            Ok(Inferred::one(dense_info(
                x.shape.clone(),
                x,
                x.axes.clone(),
            )))
        }
        Op::OneHot { num_classes } => {
            expect_arity(op_name, name, infos, 1)?;
            let x = &infos[0];
            if *num_classes == 0 {
                return Err(Error::invalid(
                    format!("{op_name} '{name}'"),
                    "num_classes must be at least 1",
                ));
            }
            let max = crate::limits::current().max_one_hot_classes;
            if *num_classes > max {
                return Err(Error::invalid(
                    format!("{op_name} '{name}'"),
                    format!(
                        "{num_classes} classes is more than the limit of {max} ({})",
                        crate::limits::how_to_raise("max_one_hot_classes")
                    ),
                ));
            }
            if x.is_sparse {
                return Err(Error::shape(
                    op_name,
                    name,
                    "the index operand cannot be sparse",
                ));
            }
            let mut d = x.shape.dims().to_vec();
            d.push(*num_classes);
            Ok(Inferred::one(dense_info(Shape::new(d), x, x.axes.clone())))
        }
        Op::Gather => {
            expect_arity(op_name, name, infos, 2)?;
            let (r, i) = (&infos[0], &infos[1]);
            if r.shape.rank() == 0 {
                return Err(Error::shape(
                    op_name,
                    name,
                    format!(
                        "the reference must have rank ≥ 1 to gather along its first axis, got shape {} (indices {})",
                        r.shape, i.shape
                    ),
                ));
            }
            if r.is_sparse || i.is_sparse {
                return Err(Error::shape(
                    op_name,
                    name,
                    "sparse reference or indices are not supported",
                ));
            }
            let mut d = i.shape.dims().to_vec();
            d.extend_from_slice(&r.shape.dims()[1..]);
            let axes = join_axes(op_name, name, &[r, i])?;
            Ok(Inferred::one(dense_info(Shape::new(d), r, axes)))
        }
        _ => Err(Error::Unsupported(format!("{op_name} is not a misc op"))),
    }
}

fn dense<'a, B: Backend, T: Element>(op: &Op, a: &Arg<'a, B, T>) -> Result<Operand<'a, B, T>> {
    a.dense()
        .ok_or_else(|| Error::Unsupported(format!("{} of a sparse operand", op.name())))
}

/// The three dense operands of clip/select and their broadcast geometry.
type Three<'a, B, T> = ([Operand<'a, B, T>; 3], Geom<3>);

fn three<'a, B: Backend, T: Element>(
    op: &Op,
    args: &[Arg<'a, B, T>],
    (shapes, out_shape): (&[Shape], &Shape),
) -> Result<Three<'a, B, T>> {
    let x = [
        dense(op, &args[0])?,
        dense(op, &args[1])?,
        dense(op, &args[2])?,
    ];
    Ok((
        x,
        Geom::new([&shapes[0], &shapes[1], &shapes[2]], out_shape)?,
    ))
}

/// Gather's geometry: the reference's entries along its first axis.
fn gather_geom(shapes: &[Shape]) -> GatherGeom {
    let len = shapes[0].dims()[0];
    GatherGeom {
        len,
        rest: shapes[0].numel() / len.max(1),
        ni: shapes[1].numel(),
    }
}

/// Which block of a packed minibatch a dropout call runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PassOrder {
    /// All rows at once (outside a loop).
    Whole,
    /// Step 0: a forward loop starts (or continues) here.
    FirstStep,
    /// The last step: a backward loop starts here.
    LastStep,
    /// Any other whole step of a loop.
    Middle,
}

fn pass_order(p: &PackedLayout, row0: usize, rows: usize) -> Result<PassOrder> {
    let offs = p.offsets();
    let t0 = offs.partition_point(|&o| o <= row0).saturating_sub(1);
    let t1 = offs.partition_point(|&o| o < row0 + rows);
    if offs.get(t0) != Some(&row0) || offs.get(t1) != Some(&(row0 + rows)) || t1 <= t0 {
        return Err(Error::Unsupported(format!(
            "Dropout over rows {row0}..{} that are not whole sequence steps",
            row0 + rows
        )));
    }
    let steps = offs.len() - 1;
    Ok(match (t0, t1) {
        (0, t) if t == steps => PassOrder::Whole,
        (0, _) => PassOrder::FirstStep,
        (_, t) if t == steps => PassOrder::LastStep,
        _ => PassOrder::Middle,
    })
}

/// Dropout's forward: in training, the mask drawn from the node's stream in CNTK's
/// column order (a loop's first step draws the whole minibatch's, as the whole
/// minibatch at once does; a backward loop starts from its last step) and applied.
fn dropout<B: Backend, T: Element>(
    b: &B,
    (rate, seed): (f64, u64),
    args: &[Arg<B, T>],
    no: usize,
    out: B::Mut<'_, T>,
    ctx: RowCtx,
    st: &mut NodeState<B, T>,
) -> Result<()> {
    let x = args[0]
        .dense()
        .ok_or_else(|| Error::Unsupported("Dropout of a sparse operand".into()))?;
    let rows = if x.per_row { ctx.n } else { 1 };
    let xs = B::sub(x.data, 0..rows * no);
    let out = B::sub_mut(out, 0..rows * no);
    if !ctx.training || rate == 0.0 {
        b.copy(xs, out);
        return Ok(());
    }
    let (first, end) = (ctx.row0 * no, (ctx.row0 + rows) * no);
    if B::len(&st.aux) < end {
        b.resize(&mut st.aux, end);
    }
    // CNTK compares the draw with the rate as the element type holds it.
    let draw = (
        no,
        T::from_f64(rate).as_f64(),
        T::from_f64(1.0 / (1.0 - rate)),
    );
    let rng = st.rng.get_or_insert_with(|| DropoutRng::new(seed, 0));
    let packed = match x.per_row {
        true => st.layout.as_ref().and_then(|l| l.packed()).cloned(),
        false => None,
    };
    match packed {
        None => {
            let mask = B::sub_mut(B::view_mut(&mut st.aux), first..end);
            b.dropout_mask(rng, MaskOrder::Rows, draw, mask);
        }
        Some(p) => {
            let order = pass_order(&p, ctx.row0, rows)?;
            if order == PassOrder::Whole || st.drawn_pass != Some(st.calls) {
                let all = p.total() * no;
                if B::len(&st.aux) < all {
                    b.resize(&mut st.aux, all);
                }
                let backward = order == PassOrder::LastStep;
                let order = MaskOrder::Packed {
                    layout: &p,
                    backward,
                };
                let mask = B::sub_mut(B::view_mut(&mut st.aux), 0..all);
                b.dropout_mask(rng, order, draw, mask);
                st.drawn_pass = Some(st.calls);
            }
        }
    }
    b.mul(xs, B::sub(B::view(&st.aux), first..end), out);
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn forward<B: Backend, T: Element>(
    b: &B,
    op: &Op,
    args: &[Arg<B, T>],
    sh: (&[Shape], &Shape),
    out: B::Mut<'_, T>,
    ctx: RowCtx,
    st: &mut NodeState<B, T>,
) -> Result<()> {
    let (shapes, out_shape) = sh;
    let no = out_shape.numel();
    match op {
        Op::Clip | Op::Select => {
            let (x, g) = three(op, args, sh)?;
            let t = if matches!(op, Op::Clip) {
                TernaryOp::Clip
            } else {
                TernaryOp::Select
            };
            b.ternary(t, x, &g, out, ctx.n);
            Ok(())
        }
        Op::Dropout { rate, seed } => dropout(b, (*rate, *seed), args, no, out, ctx, st),
        Op::OneHot { num_classes } => {
            let x = dense(op, &args[0])?;
            let ni = shapes[0].numel();
            b.one_hot(*num_classes, ni, x, out, (ctx.n, ctx.row0))
        }
        Op::Gather => {
            let (r, i) = (dense(op, &args[0])?, dense(op, &args[1])?);
            b.gather(&gather_geom(shapes), r, i, out, (ctx.n, ctx.row0))
        }
        _ => Err(Error::Unsupported(format!(
            "{} is not a misc op",
            op.name()
        ))),
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn backward<B: Backend, T: Element>(
    b: &B,
    op: &Op,
    i: usize,
    args: &[Arg<B, T>],
    sh: (&[Shape], &Shape),
    dout: B::Ref<'_, T>,
    din: B::Mut<'_, T>,
    ctx: RowCtx,
    st: &mut NodeState<B, T>,
) -> Result<()> {
    let (shapes, out_shape) = sh;
    let no = out_shape.numel();
    match op {
        Op::Clip | Op::Select => {
            let (x, g) = three(op, args, sh)?;
            let t = if matches!(op, Op::Clip) {
                TernaryOp::Clip
            } else {
                TernaryOp::Select
            };
            b.ternary_backward(t, i, x, &g, dout, din, ctx.n);
            Ok(())
        }
        Op::Dropout { rate, .. } => {
            let rows = if args[0].is_static() { 1 } else { ctx.n };
            let g = B::sub(dout, 0..ctx.n * no);
            if !ctx.training || *rate == 0.0 {
                if rows == ctx.n {
                    b.add(g, B::sub_mut(din, 0..rows * no), ctx.par);
                } else {
                    b.sum_rows(g, B::sub_mut(din, 0..no));
                }
                return Ok(());
            }
            let first = ctx.row0 * no;
            if B::len(&st.aux) < first + rows * no {
                return Err(Error::Unsupported(
                    "Dropout backward without its training forward".into(),
                ));
            }
            let mask = B::sub(B::view(&st.aux), first..first + rows * no);
            b.add_product(B::sub(g, 0..rows * no), mask, B::sub_mut(din, 0..rows * no));
            Ok(())
        }
        Op::OneHot { .. } => Ok(()),
        Op::Gather => {
            if i != 0 {
                return Ok(());
            }
            let idx = dense(op, &args[1])?;
            let per_row = !args[0].is_static();
            b.gather_backward(
                &gather_geom(shapes),
                idx,
                dout,
                din,
                per_row,
                (ctx.n, ctx.row0),
            )
        }
        _ => Err(Error::Unsupported(format!(
            "{} is not a misc op",
            op.name()
        ))),
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Cpu, Par};
    use crate::tensor::Layout;

    fn ctx(n: usize, row0: usize, training: bool) -> RowCtx {
        RowCtx {
            n,
            row0,
            training,
            par: Par::Seq,
            assign: false,
        }
    }

    fn run(
        op: &Op,
        x: &[f64],
        layout: &Layout,
        blocks: &[(usize, usize)],
        st: &mut NodeState<Cpu, f64>,
    ) -> Vec<f64> {
        let sh = [Shape::from([4])];
        let mut out = vec![0.0; x.len()];
        st.layout = Some(layout.clone());
        for &(a, b) in blocks {
            let args = [Arg::Rows(&x[a * 4..b * 4])];
            let c = ctx(b - a, a, true);
            forward(
                &Cpu,
                op,
                &args,
                (&sh, &sh[0]),
                &mut out[a * 4..b * 4],
                c,
                st,
            )
            .unwrap();
        }
        out
    }

    /// A forward loop's steps draw what the whole minibatch draws at once (CNTK's column
    /// order is slot-major); a backward loop draws its last slot first, as CNTK does;
    /// the next pass continues the stream.
    #[test]
    fn dropout_steps_follow_cntks_column_order() {
        let op = Op::Dropout { rate: 0.5, seed: 7 };
        let p = std::sync::Arc::new(PackedLayout::new(&[3, 1, 2]).unwrap());
        let layout = Layout::Sequence(p.clone());
        let x: Vec<f64> = (0..24).map(|v| v as f64 + 1.0).collect();
        let steps: Vec<(usize, usize)> = (0..3)
            .map(|t| (p.step_rows(t).start, p.step_rows(t).end))
            .collect();
        let mut st = NodeState::default();
        let whole = run(&op, &x, &layout, &[(0, 6)], &mut st);
        let mut st2 = NodeState::default();
        let forward_steps = run(&op, &x, &layout, &steps, &mut st2);
        assert_eq!(whole, forward_steps);
        // packed as CNTK does: 3 slots x 2 streams ({0}, {1, 2}) x 4 elements, no gap
        assert_eq!(st.rng.as_ref().unwrap().offset(), 24);
        let rev: Vec<_> = steps.iter().rev().copied().collect();
        let mut st3 = NodeState::default();
        let backward_steps = run(&op, &x, &layout, &rev, &mut st3);
        assert_ne!(whole, backward_steps);
        for (o, v) in whole.iter().zip(&x) {
            assert!(*o == 0.0 || *o == 2.0 * v);
        }
        let again = run(&op, &x, &layout, &[(0, 6)], &mut st);
        assert_ne!(whole, again);
        assert_eq!(st.rng.as_ref().unwrap().offset(), 48);
        // a block that is not whole steps is refused, not drawn wrongly
        let mut st4 = NodeState {
            layout: Some(layout),
            ..Default::default()
        };
        let sh = [Shape::from([4])];
        let mut out = vec![0.0; 8];
        let args = [Arg::<Cpu, f64>::Rows(&x[..8])];
        assert!(forward(
            &Cpu,
            &op,
            &args,
            (&sh, &sh[0]),
            &mut out,
            ctx(2, 0, true),
            &mut st4
        )
        .is_err());
    }
}

//! clip, element_select, dropout, one_hot, gather.
//!
//! * `clip(x, min, max)` and `element_select(cond, a, b)` broadcast their three
//!   operands NumPy-style. Clip's gradient is 1 where `min ≤ x ≤ max` (bounds
//!   inclusive) and goes to `x` only (CNTK gives the bounds none); select's goes to
//!   `a` where `cond ≠ 0` and to `b` elsewhere, never to `cond`.
//! * `dropout` draws its mask through the backend's random-number kernel from
//!   `(seed, NodeState::calls, absolute element index)`, so a block of rows run
//!   inside a recurrent loop gets exactly the mask the same rows get when the whole
//!   minibatch runs at once. The runtime counts training forwards in `calls`. The
//!   mask (0 or 1/(1−rate) per element) is kept in `NodeState::aux`, indexed by
//!   absolute row, for the backward.
//! * `one_hot` and `gather` take integer-valued indices; anything else (fractions,
//!   negatives, out of range) is refused at run time.

use super::binary::broadcast_shape;
use super::{dense_info, expect_arity, join_axes, Inferred, NodeState, Op, RowCtx, VarInfo};
use crate::backend::copies::GatherGeom;
use crate::backend::elementwise::{Geom, TernaryOp};
use crate::backend::random::DropoutDraw;
use crate::backend::{Arg, Backend, Operand};
use crate::error::{Error, Result};
use crate::tensor::{Element, Shape};

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
        Op::Dropout { rate, seed } => {
            let x = dense(op, &args[0])?;
            let rows = if x.per_row { ctx.n } else { 1 };
            let xs = B::sub(x.data, 0..rows * no);
            let out = B::sub_mut(out, 0..rows * no);
            if !ctx.training || *rate == 0.0 {
                b.copy(xs, out);
                return Ok(());
            }
            let first = ctx.row0 * no;
            let end = first + rows * no;
            if B::len(&st.aux) < end {
                b.resize(&mut st.aux, end);
            }
            let draw = DropoutDraw {
                seed: *seed,
                pass: st.calls,
                first,
                rate: *rate,
            };
            let mask = B::sub_mut(B::view_mut(&mut st.aux), first..end);
            b.dropout(&draw, xs, mask, out);
            Ok(())
        }
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

    fn ctx(n: usize, row0: usize, training: bool) -> RowCtx {
        RowCtx {
            n,
            row0,
            training,
            par: Par::Seq,
        }
    }

    fn drop(op: &Op, x: &[f64], out: &mut [f64], c: RowCtx, st: &mut NodeState<Cpu, f64>) {
        let sh = [Shape::from([4])];
        forward(&Cpu, op, &[Arg::Rows(x)], (&sh, &sh[0]), out, c, st).unwrap();
    }

    #[test]
    fn dropout_blocks_match_whole_run() {
        let op = Op::Dropout { rate: 0.5, seed: 7 };
        let x: Vec<f64> = (0..40).map(|v| v as f64 + 1.0).collect();
        let mut whole = vec![0.0; 40];
        let mut st = NodeState {
            calls: 3,
            ..Default::default()
        };
        drop(&op, &x, &mut whole, ctx(10, 0, true), &mut st);
        let mut st2 = NodeState {
            calls: 3,
            ..Default::default()
        };
        let mut parts = vec![0.0; 40];
        // blocks in reverse order, as a future_value loop runs them
        for (a, b) in [(7, 10), (3, 7), (0, 3)] {
            let c = ctx(b - a, a, true);
            drop(&op, &x[a * 4..b * 4], &mut parts[a * 4..b * 4], c, &mut st2);
        }
        assert_eq!(whole, parts);
        let dropped = whole.iter().filter(|&&v| v == 0.0).count();
        assert!((8..=32).contains(&dropped), "dropped {dropped} of 40");
        for (o, v) in whole.iter().zip(&x) {
            assert!(*o == 0.0 || *o == 2.0 * v);
        }
        // another pass draws another mask
        st.calls += 1;
        let mut again = vec![0.0; 40];
        drop(&op, &x, &mut again, ctx(10, 0, true), &mut st);
        assert_ne!(whole, again);
    }
}

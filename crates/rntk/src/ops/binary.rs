//! Element-wise binary ops with NumPy-style broadcasting of static axes (shapes are
//! aligned at their trailing axes; size-1 axes stretch) and broadcasting of static
//! operands over the rows of dynamic ones.

use super::{dense_info, expect_arity, join_axes, Inferred, RowCtx, VarInfo};
use crate::backend::elementwise::Geom;
use crate::backend::{Arg, Backend, Operand};
use crate::error::{Error, Result};
use crate::tensor::{Element, Shape};

pub use crate::backend::elementwise::BinaryOp;

impl BinaryOp {
    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Plus => "Plus",
            BinaryOp::Minus => "Minus",
            BinaryOp::ElementTimes => "ElementTimes",
            BinaryOp::ElementDivide => "ElementDivide",
            BinaryOp::Pow => "Pow",
            BinaryOp::ElementMax => "ElementMax",
            BinaryOp::ElementMin => "ElementMin",
            BinaryOp::Equal => "Equal",
            BinaryOp::NotEqual => "NotEqual",
            BinaryOp::Less => "Less",
            BinaryOp::LessEqual => "LessEqual",
            BinaryOp::Greater => "Greater",
            BinaryOp::GreaterEqual => "GreaterEqual",
            BinaryOp::LogPlus => "LogPlus",
        }
    }
}

/// NumPy broadcast of two static shapes.
pub(crate) fn broadcast_shape(a: &Shape, b: &Shape) -> Option<Shape> {
    let r = a.rank().max(b.rank());
    let mut out = vec![0; r];
    for (i, o) in out.iter_mut().enumerate() {
        let da = if i + a.rank() >= r {
            a.dims()[i + a.rank() - r]
        } else {
            1
        };
        let db = if i + b.rank() >= r {
            b.dims()[i + b.rank() - r]
        } else {
            1
        };
        *o = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return None;
        };
    }
    Some(Shape::new(out))
}

pub(crate) fn infer(op: &str, name: &str, infos: &[VarInfo]) -> Result<Inferred> {
    expect_arity(op, name, infos, 2)?;
    let (a, b) = (&infos[0], &infos[1]);
    let shape = broadcast_shape(&a.shape, &b.shape).ok_or_else(|| {
        Error::shape(
            op,
            name,
            format!(
                "operand shapes {} and {} cannot be broadcast together",
                a.shape, b.shape
            ),
        )
    })?;
    let axes = join_axes(op, name, &[a, b])?;
    Ok(Inferred::one(dense_info(shape, a, axes)))
}

fn operands<'a, B: Backend, T: Element>(
    op: BinaryOp,
    args: &[Arg<'a, B, T>],
) -> Result<(Operand<'a, B, T>, Operand<'a, B, T>)> {
    let d = |a: &Arg<'a, B, T>| {
        a.dense()
            .ok_or_else(|| Error::Unsupported(format!("{} on a sparse operand", op.name())))
    };
    Ok((d(&args[0])?, d(&args[1])?))
}

/// `out = a ∘ b` with broadcasting.
pub(crate) fn forward<B: Backend, T: Element>(
    be: &B,
    op: BinaryOp,
    args: &[Arg<B, T>],
    (shapes, out_shape): (&[Shape], &Shape),
    out: B::Mut<'_, T>,
    ctx: RowCtx,
) -> Result<()> {
    let (a, b) = operands(op, args)?;
    let g = Geom::new([&shapes[0], &shapes[1]], out_shape)?;
    be.binary(op, a, b, &g, out, ctx.n, ctx.par);
    Ok(())
}

/// `din += dout · ∂(a ∘ b)/∂(operand i)`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward<B: Backend, T: Element>(
    be: &B,
    op: BinaryOp,
    i: usize,
    args: &[Arg<B, T>],
    (shapes, out_shape): (&[Shape], &Shape),
    (out, dout): (B::Ref<'_, T>, B::Ref<'_, T>),
    din: B::Mut<'_, T>,
    ctx: RowCtx,
) -> Result<()> {
    let (a, b) = operands(op, args)?;
    let g = Geom::new([&shapes[0], &shapes[1]], out_shape)?;
    be.binary_backward(op, i == 1, a, b, &g, out, dout, din, ctx.n, ctx.par);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Cpu, Par};

    #[test]
    fn broadcast_shapes_follow_numpy() {
        let s = |d: &[usize]| Shape::from(d);
        assert_eq!(broadcast_shape(&s(&[2, 3]), &s(&[3])), Some(s(&[2, 3])));
        assert_eq!(broadcast_shape(&s(&[2, 3]), &s(&[2, 1])), Some(s(&[2, 3])));
        assert_eq!(broadcast_shape(&s(&[2, 3]), &s(&[])), Some(s(&[2, 3])));
        assert_eq!(broadcast_shape(&s(&[2, 3]), &s(&[2])), None);
    }
    #[test]
    fn bias_add_over_rows() {
        let x = [1.0f64, 2., 3., 4., 5., 6.];
        let b = [10.0f64, 20., 30.];
        let mut y = [0.0; 6];
        let sh = [Shape::from([3]), Shape::from([3])];
        let ctx = RowCtx {
            n: 2,
            row0: 0,
            training: false,
            par: Par::Seq,
            assign: false,
        };
        let args = [Arg::<Cpu, f64>::Rows(&x[..]), Arg::Static(&b[..])];
        forward(
            &Cpu,
            BinaryOp::Plus,
            &args,
            (&sh, &Shape::from([3])),
            &mut y,
            ctx,
        )
        .unwrap();
        assert_eq!(y, [11., 22., 33., 14., 25., 36.]);
        let mut db = [0.0; 3];
        let g = [1.0; 6];
        let sh2 = (&sh[..], &Shape::from([3]));
        backward(&Cpu, BinaryOp::Plus, 1, &args, sh2, (&y, &g), &mut db, ctx).unwrap();
        assert_eq!(db, [2., 2., 2.]);
    }
}

//! Element-wise unary ops: CNTK's names and the recipes (one kernel call each way).

use super::RowCtx;
use crate::backend::{Arg, Backend, Operand};
use crate::error::{Error, Result};
use crate::tensor::Element;

pub use crate::backend::elementwise::UnaryOp;

impl UnaryOp {
    /// CNTK's op name.
    pub fn name(self) -> &'static str {
        match self {
            UnaryOp::Negate => "Negate",
            UnaryOp::Sigmoid => "StableSigmoid",
            UnaryOp::Tanh => "Tanh",
            UnaryOp::Relu => "ReLU",
            UnaryOp::LeakyRelu(_) => "LeakyReLU",
            UnaryOp::Elu => "ELU",
            UnaryOp::Softplus => "Softplus",
            UnaryOp::Exp => "Exp",
            UnaryOp::Log => "Log",
            UnaryOp::Sqrt => "Sqrt",
            UnaryOp::Square => "Square",
            UnaryOp::Abs => "Abs",
            UnaryOp::Reciprocal => "Reciprocal",
            UnaryOp::StopGradient => "StopGradient",
            UnaryOp::Alias => "Alias",
            UnaryOp::Floor => "Floor",
            UnaryOp::Sin => "Sin",
            UnaryOp::Cos => "Cos",
        }
    }
}

fn dense<'a, B: Backend, T: Element>(op: UnaryOp, a: Arg<'a, B, T>) -> Result<Operand<'a, B, T>> {
    a.dense().ok_or_else(|| {
        Error::Unsupported(format!(
            "{} on a sparse operand (densify it with a times/embedding first)",
            op.name()
        ))
    })
}

/// `y = f(x)` over the block's rows.
pub(crate) fn forward<B: Backend, T: Element>(
    b: &B,
    op: UnaryOp,
    a: Arg<B, T>,
    y: B::Mut<'_, T>,
    (ctx, d): (RowCtx, usize),
) -> Result<()> {
    let x = dense(op, a)?;
    b.unary(op, x.data, y, (ctx.n, d), ctx.par);
    Ok(())
}

/// `dx += dy · f'(x)`.
pub(crate) fn backward<B: Backend, T: Element>(
    b: &B,
    op: UnaryOp,
    a: Arg<B, T>,
    (y, dy): (B::Ref<'_, T>, B::Ref<'_, T>),
    dx: B::Mut<'_, T>,
    (ctx, d): (RowCtx, usize),
) -> Result<()> {
    let x = dense(op, a)?;
    b.unary_backward(op, x.data, y, dy, dx, (ctx.n, d), ctx.par);
    Ok(())
}

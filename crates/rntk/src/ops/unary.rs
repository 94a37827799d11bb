//! Element-wise unary ops: forward and the local derivative, side by side.

use super::Arg;
use crate::backend::cpu;
use crate::error::{Error, Result};
use crate::tensor::Element;

/// An element-wise function of one operand.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum UnaryOp {
    Negate,
    Sigmoid,
    Tanh,
    Relu,
    LeakyRelu(f64),
    Elu,
    Softplus,
    Exp,
    Log,
    Sqrt,
    Square,
    Abs,
    Reciprocal,
    /// Identity forward, zero gradient.
    StopGradient,
    /// Identity (a named copy).
    Alias,
    /// Round down; zero gradient (as CNTK).
    Floor,
    Sin,
    Cos,
}

impl UnaryOp {
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

fn dense<'a, T>(op: UnaryOp, a: Arg<'a, T>) -> Result<&'a [T]> {
    a.dense().ok_or_else(|| {
        Error::Unsupported(format!(
            "{} on a sparse operand (densify it with a times/embedding first)",
            op.name()
        ))
    })
}

pub(crate) fn forward<T: Element>(op: UnaryOp, a: Arg<T>, y: &mut [T]) -> Result<()> {
    let x = dense(op, a)?;
    debug_assert_eq!(x.len(), y.len());
    let zero = T::zero();
    let one = T::one();
    match op {
        UnaryOp::Sigmoid => cpu::sigmoid(x, y),
        UnaryOp::Tanh => cpu::tanh(x, y),
        UnaryOp::Exp => cpu::exp(x, y),
        UnaryOp::Negate => map(x, y, |v| -v),
        UnaryOp::Relu => map(x, y, |v| if v > zero { v } else { zero }),
        UnaryOp::LeakyRelu(a) => {
            let a = T::from_f64(a);
            map(x, y, |v| if v > zero { v } else { a * v })
        }
        UnaryOp::Elu => map(x, y, |v| if v > zero { v } else { v.exp() - one }),
        // log(1 + e^x) computed without overflow.
        UnaryOp::Softplus => map(x, y, |v| v.max(zero) + (-v.abs()).exp().ln_1p()),
        UnaryOp::Log => map(x, y, |v| v.ln()),
        UnaryOp::Sqrt => map(x, y, |v| v.sqrt()),
        UnaryOp::Square => map(x, y, |v| v * v),
        UnaryOp::Abs => map(x, y, |v| v.abs()),
        UnaryOp::Reciprocal => map(x, y, |v| one / v),
        UnaryOp::StopGradient | UnaryOp::Alias => y.copy_from_slice(x),
        UnaryOp::Floor => map(x, y, |v| v.floor()),
        UnaryOp::Sin => map(x, y, |v| v.sin()),
        UnaryOp::Cos => map(x, y, |v| v.cos()),
    }
    Ok(())
}

fn map<T: Element>(x: &[T], y: &mut [T], f: impl Fn(T) -> T) {
    for (o, &v) in y.iter_mut().zip(x) {
        *o = f(v);
    }
}

/// `din += dout * f'(x)`, using the saved output `y` where that is cheaper.
pub(crate) fn backward<T: Element>(
    op: UnaryOp,
    a: Arg<T>,
    y: &[T],
    dy: &[T],
    dx: &mut [T],
) -> Result<()> {
    let x = dense(op, a)?;
    let zero = T::zero();
    let one = T::one();
    let half = T::from_f64(0.5);
    let it = dx.iter_mut().zip(dy).zip(x.iter().zip(y));
    match op {
        UnaryOp::Negate => it.for_each(|((d, &g), _)| *d -= g),
        UnaryOp::Sigmoid => it.for_each(|((d, &g), (_, &s))| *d += g * s * (one - s)),
        UnaryOp::Tanh => it.for_each(|((d, &g), (_, &t))| *d += g * (one - t * t)),
        UnaryOp::Relu => it.for_each(|((d, &g), (&v, _))| {
            if v > zero {
                *d += g
            }
        }),
        UnaryOp::LeakyRelu(a) => {
            let a = T::from_f64(a);
            // CNTK: leaky_relu'(0) = 1 (also at -0.0, which compares equal to 0)
            it.for_each(|((d, &g), (&v, _))| *d += if v >= zero { g } else { a * g })
        }
        UnaryOp::Elu => {
            it.for_each(|((d, &g), (&v, &o))| *d += if v > zero { g } else { g * (o + one) })
        }
        UnaryOp::Softplus => it.for_each(|((d, &g), (&v, _))| *d += g / (one + (-v).exp())),
        UnaryOp::Exp => it.for_each(|((d, &g), (_, &o))| *d += g * o),
        UnaryOp::Log => it.for_each(|((d, &g), (&v, _))| *d += g / v),
        UnaryOp::Sqrt => it.for_each(|((d, &g), (_, &o))| *d += g * half / o),
        UnaryOp::Square => it.for_each(|((d, &g), (&v, _))| *d += g * (v + v)),
        UnaryOp::Abs => it.for_each(|((d, &g), (&v, _))| {
            if v > zero {
                *d += g
            } else if v < zero {
                *d -= g
            }
        }),
        UnaryOp::Reciprocal => it.for_each(|((d, &g), (_, &o))| *d -= g * o * o),
        UnaryOp::StopGradient | UnaryOp::Floor => {}
        UnaryOp::Alias => it.for_each(|((d, &g), _)| *d += g),
        UnaryOp::Sin => it.for_each(|((d, &g), (&v, _))| *d += g * v.cos()),
        UnaryOp::Cos => it.for_each(|((d, &g), (&v, _))| *d -= g * v.sin()),
    }
    Ok(())
}

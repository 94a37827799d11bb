//! What an ONNX value is while importing: an rntk variable seen through the ONNX
//! tensor's dimensions (where its sequence and batch axes sit), a constant known now,
//! a shape vector with dynamic entries, the lengths or the mask of a sequence axis.

use super::model::{ConstT, Data};
use crate::graph::Variable;
use crate::tensor::{DType, Shape, Tensor};
use std::rc::Rc;

/// One dimension of an ONNX value: a size, or the sequence / batch axis.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum SDim {
    N(usize),
    T,
    B,
}

/// An rntk variable and the ONNX dimensions it stands for. The sizes (`N`) are the
/// sample's dimensions, possibly with unit dimensions the variable does not have;
/// `T` and `B` mark where the dynamic axes sit. A static variable may carry `B`/`T`
/// marks: it is broadcast along them (an `Expand` of a constant to the batch).
#[derive(Clone)]
pub(crate) struct Tv {
    pub var: Variable,
    pub dims: Vec<SDim>,
}

impl Tv {
    pub fn sample(&self) -> Vec<usize> {
        self.dims
            .iter()
            .filter_map(|d| match d {
                SDim::N(n) => Some(*n),
                _ => None,
            })
            .collect()
    }
    pub fn t_pos(&self) -> Option<usize> {
        self.dims.iter().position(|d| *d == SDim::T)
    }
    /// The ONNX axis `a` (negative from the end) as an index.
    pub fn axis(&self, a: i64) -> Option<usize> {
        let r = self.dims.len() as i64;
        let a = if a < 0 { a + r } else { a };
        (0..r).contains(&a).then_some(a as usize)
    }
    /// The index among the sample dims of ONNX axis `a`, if it is a sample dim.
    pub fn sample_axis(&self, a: usize) -> Option<usize> {
        match self.dims.get(a)? {
            SDim::N(_) => Some(
                self.dims[..a]
                    .iter()
                    .filter(|d| matches!(d, SDim::N(_)))
                    .count(),
            ),
            _ => None,
        }
    }
}

/// An ONNX value during import.
#[derive(Clone)]
pub(crate) enum Av {
    T(Tv),
    /// A constant; float constants from initializers become parameters when an op
    /// uses them as operands (`learnable`).
    C(Rc<ConstT>, bool),
    /// An int64 shape vector (or scalar) with dynamic entries.
    S(Vec<SDim>),
    /// The int lengths `[batch]` of a sequence axis (rntk keeps lengths with values).
    Lens,
    /// The mask of a sequence axis (true on every real step), any unit dims after.
    Mask(usize),
    /// `ConstantOfShape(shape)`: a value repeated over dims that include dynamic ones.
    Fill(f64, Vec<SDim>),
    /// `MaxPool`'s indices output: the pooled operand and the pooling, for `MaxUnpool`.
    PoolIndices(Rc<(Tv, crate::ops::PoolAttrs)>),
}

pub(crate) fn const_f64(dims: Vec<usize>, v: Vec<f64>) -> Av {
    Av::C(
        Rc::new(ConstT {
            dims,
            data: Data::F64(v),
        }),
        false,
    )
}

pub(crate) fn const_i64(dims: Vec<usize>, v: Vec<i64>) -> Av {
    Av::C(
        Rc::new(ConstT {
            dims,
            data: Data::I64(v),
        }),
        false,
    )
}

/// The rntk tensor of a float constant in `dtype`.
pub(crate) fn tensor_of(c: &ConstT, dtype: DType) -> crate::error::Result<Tensor> {
    Tensor::from_f64(Shape::new(c.dims.clone()), dtype, &c.data.to_f64())
}

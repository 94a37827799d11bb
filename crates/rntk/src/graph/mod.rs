//! The symbolic graph: variables with dynamic axes, functions, and their constructors.
//!
//! # Ownership
//! `Variable` and `Function` are cheap handles (reference counted). A handle keeps its
//! node and everything the node is computed from alive: a function owns its operands,
//! an output its function, a block its body, a replaced placeholder its replacement.
//! Dropping the last handle frees the graph — also a graph with recurrent loops: **a
//! loop lives exactly as long as something outside it refers to any of its nodes** (a
//! handle to its output or to an inner variable such as a past_value's output, or a
//! node outside the loop that consumes one), and is freed when the last such
//! reference goes. Holding any inner variable of a loop therefore keeps the whole loop,
//! closing edge included, working. An `Executor` holds no graph nodes (only inputs,
//! parameters and constants), so it runs on after its graph is dropped. How loops are
//! detected and cut: `ownership.rs`.

pub(crate) mod flat;
mod function;
mod ownership;
mod variable;

pub use crate::ops::VarInfo;
pub use crate::tensor::{Axis, DynamicAxes};
pub(crate) use function::FnKind;
pub use function::{CloneMethod, Function};
pub use variable::{VarKey, VarKind, Variable};

use crate::error::{Error, Result};
use crate::initializer::Initializer;
use crate::tensor::{DType, Shape, Tensor};

/// Options of an input variable (CNTK's keyword arguments).
#[derive(Clone, Debug)]
pub struct InputOptions {
    pub dtype: DType,
    pub is_sparse: bool,
    pub needs_gradient: bool,
    pub dynamic_axes: DynamicAxes,
    pub name: String,
}

impl Default for InputOptions {
    fn default() -> Self {
        InputOptions {
            dtype: DType::F32,
            is_sparse: false,
            needs_gradient: false,
            dynamic_axes: DynamicAxes::Batch,
            name: String::new(),
        }
    }
}

/// `C.input_variable(shape)`: a float32 input with a batch axis.
pub fn input_variable(shape: impl Into<Shape>) -> Variable {
    input_variable_with(shape, InputOptions::default())
}

/// An input variable with explicit options.
pub fn input_variable_with(shape: impl Into<Shape>, o: InputOptions) -> Variable {
    Variable::leaf(
        VarKind::Input,
        VarInfo {
            shape: shape.into(),
            dtype: o.dtype,
            axes: o.dynamic_axes,
            is_sparse: o.is_sparse,
            needs_gradient: o.needs_gradient,
        },
        &o.name,
        None,
        None,
    )
}

/// A learnable parameter. Dimensions given as `INFERRED` are fixed (and the value
/// drawn from `init`) when the parameter is first connected to an op. A random `init`
/// without a seed takes the next automatic seed now, at creation, as CNTK does
/// ([`crate::random`]): parameters draw in the order they are created.
pub fn parameter(
    shape: impl Into<Shape>,
    dtype: DType,
    init: Initializer,
    name: &str,
) -> Result<Variable> {
    let shape = shape.into();
    crate::limits::check_sample_shape(&shape)
        .map_err(|d| Error::invalid(format!("parameter '{name}'"), d))?;
    let init = init.resolve_seed();
    let value = if shape.has_inferred() {
        Tensor::zeros(Shape::scalar(), dtype)
    } else {
        init.generate(&shape, dtype)?
    };
    Ok(Variable::leaf(
        VarKind::Parameter,
        VarInfo {
            shape,
            dtype,
            axes: DynamicAxes::None,
            is_sparse: false,
            needs_gradient: true,
        },
        name,
        Some(value),
        Some(init),
    ))
}

/// A parameter holding the given tensor.
pub fn parameter_from(t: Tensor, name: &str) -> Variable {
    Variable::leaf(
        VarKind::Parameter,
        VarInfo {
            shape: t.shape().clone(),
            dtype: t.dtype(),
            axes: DynamicAxes::None,
            is_sparse: false,
            needs_gradient: true,
        },
        name,
        Some(t),
        None,
    )
}

/// A constant tensor.
pub fn constant(t: Tensor, name: &str) -> Variable {
    Variable::leaf(
        VarKind::Constant,
        VarInfo {
            shape: t.shape().clone(),
            dtype: t.dtype(),
            axes: DynamicAxes::None,
            is_sparse: false,
            needs_gradient: false,
        },
        name,
        Some(t),
        None,
    )
}

/// A scalar constant (shape `()`).
pub fn scalar(v: f64, dtype: DType) -> Variable {
    constant(
        Tensor::from_f64(Shape::scalar(), dtype, &[v]).expect("one element"),
        "",
    )
}

/// A placeholder to be replaced later (e.g. the state of a recurrence).
pub fn placeholder(
    shape: impl Into<Shape>,
    dtype: DType,
    axes: DynamicAxes,
    name: &str,
) -> Result<Variable> {
    let shape = shape.into();
    if shape.has_inferred() {
        return Err(Error::invalid(
            format!("placeholder '{name}'"),
            format!("shape {shape} must be fully known"),
        ));
    }
    crate::limits::check_sample_shape(&shape)
        .map_err(|d| Error::invalid(format!("placeholder '{name}'"), d))?;
    Ok(Variable::leaf(
        VarKind::Placeholder,
        VarInfo {
            shape,
            dtype,
            axes,
            is_sparse: false,
            needs_gradient: false,
        },
        name,
        None,
        None,
    ))
}

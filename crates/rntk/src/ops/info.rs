//! `VarInfo`: what a shape rule knows about an operand or result — static shape,
//! element type, dynamic axes, sparsity — below the graph, so ops need no graph types.

use crate::tensor::{DType, DynamicAxes, Shape};

/// Everything shape inference knows about a variable.
#[derive(Clone, Debug, PartialEq)]
pub struct VarInfo {
    pub shape: Shape,
    pub dtype: DType,
    pub axes: DynamicAxes,
    pub is_sparse: bool,
    pub needs_gradient: bool,
}

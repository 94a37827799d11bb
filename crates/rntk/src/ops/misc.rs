//! clip, element_select, dropout, one_hot, gather.

use super::{Arg, Inferred, NodeState, Op, RowCtx};
use crate::error::{Error, Result};
use crate::graph::VarInfo;
use crate::tensor::{Element, Shape};

pub(crate) fn infer(_op: &Op, op_name: &str, name: &str, _infos: &[VarInfo]) -> Result<Inferred> {
    Err(Error::Unsupported(format!(
        "{op_name} '{name}': being written"
    )))
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn forward<T: Element>(
    op: &Op,
    _args: &[Arg<T>],
    _shapes: &[Shape],
    _out_shape: &Shape,
    _out: &mut [T],
    _ctx: RowCtx,
    _st: &mut NodeState<T>,
) -> Result<()> {
    Err(Error::Unsupported(op.name().into()))
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn backward<T: Element>(
    op: &Op,
    _i: usize,
    _args: &[Arg<T>],
    _shapes: &[Shape],
    _out_shape: &Shape,
    _out: &[T],
    _dout: &[T],
    _din: &mut [T],
    _ctx: RowCtx,
    _st: &mut NodeState<T>,
) -> Result<()> {
    Err(Error::Unsupported(op.name().into()))
}

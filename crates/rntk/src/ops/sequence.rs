//! Sequence ops: first / last / reduce over the sequence axis, broadcast_as, slice,
//! is_first / is_last, softmax along time, where / gather / scatter, unpack.

use super::{Inferred, Op, WholeArg};
use crate::error::{Error, Result};
use crate::graph::VarInfo;
use crate::tensor::{Element, Layout, Shape};

pub(crate) fn infer(op: &Op, op_name: &str, name: &str, _infos: &[VarInfo]) -> Result<Inferred> {
    Err(Error::Unsupported(format!(
        "{op_name} '{name}' ({op:?}): being written"
    )))
}

pub(crate) fn layout<T: Element>(op: &Op, _args: &[WholeArg<T>]) -> Result<Layout> {
    Err(Error::Unsupported(op.name().into()))
}

pub(crate) fn forward<T: Element>(
    op: &Op,
    _args: &[WholeArg<T>],
    _out_shape: &Shape,
    _out_layout: &Layout,
    _out: &mut [T],
) -> Result<()> {
    Err(Error::Unsupported(op.name().into()))
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn backward<T: Element>(
    op: &Op,
    _i: usize,
    _args: &[WholeArg<T>],
    _out_shape: &Shape,
    _out_layout: &Layout,
    _out: &[T],
    _dout: &[T],
    _din: &mut [T],
) -> Result<()> {
    Err(Error::Unsupported(op.name().into()))
}

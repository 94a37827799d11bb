//! Reductions over static axes (per sample) and over all axes.

use super::{Arg, Inferred, RowCtx, WholeArg};
use crate::error::{Error, Result};
use crate::graph::VarInfo;
use crate::tensor::{Element, Shape};

/// The reduction applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceOp {
    Sum,
    Mean,
    Max,
    Min,
    LogSumExp,
}

pub(crate) fn infer(
    op: &str,
    name: &str,
    _infos: &[VarInfo],
    _axes: Option<&[isize]>,
    _keepdims: bool,
) -> Result<Inferred> {
    Err(Error::Unsupported(format!(
        "{op} '{name}': static reductions are being written"
    )))
}

pub(crate) fn infer_all(op: &str, name: &str, _infos: &[VarInfo]) -> Result<Inferred> {
    Err(Error::Unsupported(format!(
        "{op} '{name}': all-axes reductions are being written"
    )))
}

pub(crate) fn forward<T: Element>(
    _op: ReduceOp,
    _axes: Option<&[isize]>,
    _x: Arg<T>,
    _shape: &Shape,
    _out: &mut [T],
    _ctx: RowCtx,
) -> Result<()> {
    Err(Error::Unsupported("reduce".into()))
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn backward<T: Element>(
    _op: ReduceOp,
    _axes: Option<&[isize]>,
    _x: Arg<T>,
    _shape: &Shape,
    _out: &[T],
    _dout: &[T],
    _din: &mut [T],
    _ctx: RowCtx,
) -> Result<()> {
    Err(Error::Unsupported("reduce".into()))
}

pub(crate) fn forward_all<T: Element>(
    _op: ReduceOp,
    _x: &WholeArg<T>,
    _out: &mut [T],
) -> Result<()> {
    Err(Error::Unsupported("reduce all".into()))
}

pub(crate) fn backward_all<T: Element>(
    _op: ReduceOp,
    _x: &WholeArg<T>,
    _out: &[T],
    _dout: &[T],
    _din: &mut [T],
) -> Result<()> {
    Err(Error::Unsupported("reduce all".into()))
}

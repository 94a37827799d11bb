//! softmax and log_softmax along one static axis.

use super::{Arg, Inferred, RowCtx};
use crate::error::{Error, Result};
use crate::graph::VarInfo;
use crate::tensor::{Element, Shape};

pub(crate) fn infer(op: &str, name: &str, _infos: &[VarInfo], _axis: isize) -> Result<Inferred> {
    Err(Error::Unsupported(format!("{op} '{name}': being written")))
}

pub(crate) fn forward<T: Element>(
    _log: bool,
    _axis: isize,
    _x: Arg<T>,
    _shape: &Shape,
    _out: &mut [T],
    _ctx: RowCtx,
) -> Result<()> {
    Err(Error::Unsupported("softmax".into()))
}

pub(crate) fn backward<T: Element>(
    _log: bool,
    _axis: isize,
    _shape: &Shape,
    _out: &[T],
    _dout: &[T],
    _din: &mut [T],
    _ctx: RowCtx,
) -> Result<()> {
    Err(Error::Unsupported("softmax".into()))
}

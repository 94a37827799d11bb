//! past_value / future_value: `y[t] = x[t-k]` (or `x[t+k]`) within each sequence, the
//! initial state where that step does not exist. Inside a recurrent loop the runtime
//! calls the per-step kernels (`Copies::delay`); outside a loop it runs every step
//! at once.
//!
//! The initial state is a scalar (broadcast), a tensor of `x`'s sample shape
//! (constant or learnable), or a batch-only value with one state per sequence.

use super::{expect_arity, Inferred, Op, VarInfo};
use crate::backend::copies::DelayStep;
use crate::error::{Error, Result};
use crate::tensor::{DynamicAxes, Layout, Shape};

/// A delay looks at least one step away (offset 0 would read, inside a recurrent
/// loop, a step not computed yet: CNTK refuses it too) and at most
/// `limits.max_delay_offset` steps, so `t + offset` never wraps.
pub(crate) fn check_offset(op: &str, name: &str, offset: usize) -> Result<()> {
    let max = crate::limits::current().max_delay_offset;
    if offset == 0 {
        return Err(Error::invalid(
            format!("{op} '{name}'"),
            "time step (offset) 0: a delay looks at least 1 step away",
        ));
    }
    if offset > max {
        return Err(Error::invalid(
            format!("{op} '{name}'"),
            format!(
                "time step (offset) {offset} is more than the limit of {max} steps ({})",
                crate::limits::how_to_raise("max_delay_offset")
            ),
        ));
    }
    Ok(())
}

pub(crate) fn infer(op: &str, name: &str, infos: &[VarInfo]) -> Result<Inferred> {
    expect_arity(op, name, infos, 2)?;
    let (x, init) = (&infos[0], &infos[1]);
    if !x.axes.has_sequence() {
        return Err(Error::axes(
            op,
            name,
            format!(
                "the operand must have a sequence axis, got {}",
                x.axes.notation()
            ),
        ));
    }
    if x.is_sparse {
        return Err(Error::Unsupported(format!(
            "{op} '{name}' of a sparse operand"
        )));
    }
    let ok_shape = init.shape.numel() == 1 || init.shape == x.shape;
    if !ok_shape {
        return Err(Error::shape(
            op,
            name,
            format!(
                "initial state of shape {} must be a scalar or have the operand's shape {}",
                init.shape, x.shape
            ),
        ));
    }
    match init.axes {
        DynamicAxes::None | DynamicAxes::Batch => {}
        _ => {
            return Err(Error::axes(
                op,
                name,
                format!(
                    "initial state must be static or batch-only (one per sequence), got {}",
                    init.axes.notation()
                ),
            ))
        }
    }
    let mut out = x.clone();
    out.needs_gradient = false;
    Ok(Inferred::one(out))
}

/// The geometry of one delay node over `layout` (the operand's sequences): `init` is
/// the initial state's layout and shape. Errors name what does not fit.
pub(crate) fn step<'a>(
    op: &Op,
    layout: &'a Layout,
    (init_layout, init_shape): (&Layout, &Shape),
    numel: usize,
) -> std::result::Result<DelayStep<'a>, String> {
    let packed = layout
        .packed()
        .ok_or_else(|| format!("needs sequences, got {}", layout.describe()))?;
    let (offset, future) = match op {
        Op::PastValue { offset } => (*offset, false),
        Op::FutureValue { offset } => (*offset, true),
        _ => return Err(format!("{} is not a delay", op.name())),
    };
    let init_per_seq = matches!(init_layout, Layout::Batch(_));
    if let Layout::Batch(b) = init_layout {
        if *b != packed.num_sequences() {
            return Err(format!(
                "initial state has {b} samples but the operand has {} sequences",
                packed.num_sequences()
            ));
        }
    }
    Ok(DelayStep {
        layout: packed,
        offset,
        future,
        numel,
        init_scalar: init_shape.numel() == 1,
        init_per_seq,
    })
}

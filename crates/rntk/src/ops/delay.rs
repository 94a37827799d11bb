//! past_value / future_value: `y[t] = x[t-k]` (or `x[t+k]`) within each sequence, the
//! initial state where that step does not exist. Inside a recurrent loop the runtime
//! calls the per-step functions; outside a loop it runs every step at once.
//!
//! The initial state is a scalar (broadcast), a tensor of `x`'s sample shape
//! (constant or learnable), or a batch-only value with one state per sequence.

use super::{expect_arity, Inferred};
use crate::error::{Error, Result};
use crate::graph::{DynamicAxes, VarInfo};
use crate::tensor::{Element, PackedLayout};

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

/// Everything one delay node needs at run time.
pub(crate) struct Delay<'a> {
    pub layout: &'a PackedLayout,
    pub offset: usize,
    pub future: bool,
    /// Elements per sample.
    pub numel: usize,
    /// The initial state holds one element, broadcast to the sample.
    pub init_scalar: bool,
    /// The initial state has one sample per sequence (caller order).
    pub init_per_seq: bool,
}

impl Delay<'_> {
    /// Source row of sorted rank `j` at step `t`, if that step exists.
    #[inline]
    fn source(&self, t: usize, j: usize) -> Option<usize> {
        let l = self.layout;
        if self.future {
            let s = t + self.offset;
            (s < l.max_len() && j < l.batch_sizes()[s]).then(|| l.offsets()[s] + j)
        } else {
            (t >= self.offset).then(|| l.offsets()[t - self.offset] + j)
        }
    }

    /// Compute the rows of step `t` of `y`.
    pub fn forward_step<T: Element>(&self, x: &[T], init: &[T], y: &mut [T], t: usize) {
        let l = self.layout;
        let d = self.numel;
        for j in 0..l.batch_sizes()[t] {
            let row = l.offsets()[t] + j;
            let dst = &mut y[row * d..(row + 1) * d];
            match self.source(t, j) {
                Some(s) => dst.copy_from_slice(&x[s * d..(s + 1) * d]),
                None if self.init_scalar => dst.iter_mut().for_each(|v| *v = init[0]),
                None if self.init_per_seq => {
                    let i = l.sorted()[j];
                    dst.copy_from_slice(&init[i * d..(i + 1) * d]);
                }
                None => dst.copy_from_slice(&init[..d]),
            }
        }
    }

    /// Route the gradient of step `t`'s rows to `x` (`dx`) or to the initial state (`dinit`).
    pub fn backward_step<T: Element>(
        &self,
        dy: &[T],
        dx: Option<&mut [T]>,
        dinit: Option<&mut [T]>,
        t: usize,
    ) {
        let l = self.layout;
        let d = self.numel;
        let (mut dx, mut dinit) = (dx, dinit);
        for j in 0..l.batch_sizes()[t] {
            let row = l.offsets()[t] + j;
            let g = &dy[row * d..(row + 1) * d];
            match self.source(t, j) {
                Some(s) => {
                    if let Some(dx) = dx.as_deref_mut() {
                        for (a, &b) in dx[s * d..(s + 1) * d].iter_mut().zip(g) {
                            *a += b;
                        }
                    }
                }
                None => {
                    if let Some(di) = dinit.as_deref_mut() {
                        let dst = if self.init_scalar {
                            di[0] += g.iter().copied().sum::<T>();
                            continue;
                        } else if self.init_per_seq {
                            let i = l.sorted()[j];
                            &mut di[i * d..(i + 1) * d]
                        } else {
                            &mut di[..d]
                        };
                        for (a, &b) in dst.iter_mut().zip(g) {
                            *a += b;
                        }
                    }
                }
            }
        }
    }
}

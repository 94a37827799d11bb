//! The mutable half of an executor: one buffer per slot (values and gradients) in the
//! backend's memory, the layouts and sample shapes this minibatch gave them, and each
//! node's state. Buffers only grow, so a warm executor allocates nothing per step.

use crate::backend::{Arg, Backend, SparseRows};
use crate::ops::{NodeState, WholeArg};
use crate::tensor::{Element, Layout, Shape};
use std::ops::Range;

use super::compile::Plan;

/// Every buffer and per-minibatch fact of one executor.
pub(crate) struct Arena<T: Element, B: Backend> {
    pub data: Vec<B::Buf<T>>,
    pub sparse: Vec<Option<B::Sparse<T>>>,
    pub layouts: Vec<Layout>,
    /// Sample shape of each slot for this minibatch: the plan's, except where a whole
    /// op decides it per minibatch (sequence.unpack's free dimension).
    pub shapes: Vec<Shape>,
    /// `shapes[s].numel()`, cached: the runtime needs it per node and per time step.
    pub numels: Vec<usize>,
    pub grads: Vec<B::Buf<T>>,
    pub states: Vec<NodeState<B, T>>,
    /// A gradient seed on its way to the device.
    pub seed: B::Buf<T>,
}

/// The parameter buffers of one call (resident on the backend; `None` for other slots).
pub(crate) type Params<'a, T, B> = [Option<&'a <B as crate::backend::Memory>::Buf<T>>];

impl<T: Element, B: Backend> Arena<T, B> {
    pub fn new(plan: &Plan) -> Self {
        let n = plan.slots.len();
        Arena {
            data: (0..n).map(|_| Default::default()).collect(),
            sparse: (0..n).map(|_| None).collect(),
            layouts: vec![Layout::Static; n],
            shapes: plan.slots.iter().map(|s| s.shape.clone()).collect(),
            numels: plan.slots.iter().map(|s| s.numel).collect(),
            grads: (0..n).map(|_| Default::default()).collect(),
            states: (0..plan.nodes.len())
                .map(|_| NodeState::default())
                .collect(),
            seed: Default::default(),
        }
    }

    /// Slot `s` as an operand over `rows`.
    pub fn arg<'a>(
        &'a self,
        s: usize,
        params: &Params<'a, T, B>,
        rows: Range<usize>,
    ) -> Arg<'a, B, T> {
        if let Some(p) = params[s] {
            return Arg::Static(B::view(p));
        }
        if let Some(m) = &self.sparse[s] {
            return Arg::Sparse(SparseRows {
                m,
                r0: rows.start,
                r1: rows.end,
            });
        }
        if matches!(self.layouts[s], Layout::Static) {
            return Arg::Static(B::view(&self.data[s]));
        }
        let d = self.numels[s];
        Arg::Rows(B::sub(B::view(&self.data[s]), rows.start * d..rows.end * d))
    }

    /// Slot `s` as a whole-value operand.
    pub fn whole_arg<'a>(&'a self, s: usize, params: &Params<'a, T, B>) -> WholeArg<'a, B, T> {
        WholeArg {
            data: self.arg(s, params, 0..self.layouts[s].rows()),
            layout: &self.layouts[s],
            shape: &self.shapes[s],
        }
    }

    /// Rows `rows` of slot `s`'s values (`out`) or gradients, as a view.
    pub fn rows_of<'a>(buf: &'a B::Buf<T>, numel: usize, rows: Range<usize>) -> B::Ref<'a, T> {
        B::sub(B::view(buf), rows.start * numel..rows.end * numel)
    }
}

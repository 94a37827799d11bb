//! The runtime: an `Executor` runs a compiled plan forward and backward over
//! minibatches on a backend.
//!
//! * `compile.rs` turns roots into an immutable [`Plan`](compile::Plan), shared (`Arc`);
//!   `plan.rs` answers what the runtime asks of it (steps, backward reachability,
//!   cached per set of `wrt` variables).
//! * `arena.rs` holds the buffers (values, gradients, node state) in the backend's
//!   memory; they only grow, so a warm executor allocates nothing inside its loops.
//! * `feeds.rs`: values coming in (feeds, parameters made resident on the device);
//!   `forward.rs`, `backward.rs`: the two passes; `inference.rs`: buffer reuse of a
//!   forward-only executor; `eval.rs`: `Function::eval`.

mod arena;
mod backward;
mod compile;
mod eval;
mod feeds;
mod forward;
mod inference;
mod plan;

use crate::backend::{Backend, Cpu};
use crate::error::{Error, Result};
use crate::graph::Variable;
use crate::ops::Op;
use crate::tensor::{Element, Layout, Tensor, Value, ValueData};
use arena::Arena;
use compile::{compile, Plan, Source};
use inference::Inference;
use std::sync::Arc;

/// Runs one compiled set of roots, in element type `T`, on backend `B` (the CPU by
/// default).
pub struct Executor<T: Element, B: Backend = Cpu> {
    plan: Arc<Plan>,
    backend: B,
    arena: Arena<T, B>,
    forwarded: bool,
    training: bool,
    /// Forward-only mode: intermediate buffers go back to a pool after their last reader.
    inference: Option<Inference<T, B>>,
    /// Per node, for the current backward pass: the operand whose gradient is the
    /// node's output gradient itself, handed over by moving the buffer.
    pass: Vec<Option<usize>>,
}

pub(crate) fn runtime_err(op: &Op, name: &str, detail: String) -> Error {
    Error::Runtime {
        op: op.name().to_string(),
        name: name.to_string(),
        detail,
    }
}

/// Whole ops report run-time errors without the function's name; add it.
pub(crate) fn with_name(e: Error, name: &str) -> Error {
    match e {
        Error::Runtime {
            op,
            name: n,
            detail,
        } if n.is_empty() => Error::Runtime {
            op,
            name: name.to_string(),
            detail,
        },
        e => e,
    }
}

impl<T: Element> Executor<T, Cpu> {
    /// Compile `roots` (and everything they depend on) for element type `T`, on the CPU.
    pub fn new(roots: &[Variable]) -> Result<Self> {
        Self::with_backend(Cpu, roots)
    }

    /// A forward-only executor on the CPU (see [`Executor::inference_with_backend`]).
    pub fn new_inference(roots: &[Variable]) -> Result<Self> {
        Self::inference_with_backend(Cpu, roots)
    }
}

impl<T: Element, B: Backend> Executor<T, B> {
    /// Compile `roots` for element type `T` on `backend`.
    pub fn with_backend(backend: B, roots: &[Variable]) -> Result<Self> {
        let plan = compile(roots)?;
        for s in &plan.slots {
            let dt = match &s.source {
                Source::Input(v) | Source::Param(v) | Source::Const(v) => v.dtype(),
                Source::Node(_) => T::DTYPE,
            };
            if dt != T::DTYPE {
                return Err(Error::DType {
                    context: format!("compiling {}", s.label),
                    expected: T::DTYPE.to_string(),
                    got: dt.to_string(),
                });
            }
        }
        Ok(Executor {
            arena: Arena::new(&plan),
            plan: Arc::new(plan),
            backend,
            forwarded: false,
            training: false,
            inference: None,
            pass: Vec::new(),
        })
    }

    /// A forward-only executor that keeps no activations: each intermediate buffer is
    /// recycled once its last reader has run. Only roots, inputs and parameters can be
    /// read back, and `backward` is refused.
    pub fn inference_with_backend(backend: B, roots: &[Variable]) -> Result<Self> {
        let mut ex = Self::with_backend(backend, roots)?;
        ex.inference = Some(Inference::new(&ex.plan));
        Ok(ex)
    }

    /// The backend this executor runs on.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Training forwards run so far.
    pub fn training_passes(&self) -> u64 {
        self.arena.states.first().map_or(0, |s| s.calls)
    }

    /// Restore the count of training forwards (from a checkpoint).
    pub fn set_training_passes(&mut self, passes: u64) {
        for st in &mut self.arena.states {
            st.calls = passes;
        }
    }

    /// The dropout nodes, in plan order.
    fn dropout_nodes(&self) -> impl Iterator<Item = usize> + '_ {
        let nodes = &self.plan.nodes;
        (0..nodes.len()).filter(|&n| matches!(nodes[n].op, Op::Dropout { .. }))
    }

    /// Where each dropout node's mask stream stands (CNTK's `rngOffset`: mask elements
    /// drawn so far), in plan order; checkpoints keep them.
    pub fn dropout_offsets(&self) -> Vec<u64> {
        self.dropout_nodes()
            .map(|n| self.arena.states[n].rng.as_ref().map_or(0, |r| r.offset()))
            .collect()
    }

    /// Continue from a checkpoint: the next training forward draws the dropout masks
    /// an uninterrupted run would have drawn (one offset per dropout node, plan order).
    pub fn set_dropout_offsets(&mut self, offsets: &[u64]) -> Result<()> {
        let nodes: Vec<usize> = self.dropout_nodes().collect();
        if nodes.len() != offsets.len() {
            return Err(Error::InvalidValue(format!(
                "{} dropout offsets given for a model with {} dropout nodes",
                offsets.len(),
                nodes.len()
            )));
        }
        for (&n, &off) in nodes.iter().zip(offsets) {
            if let Op::Dropout { seed, .. } = self.plan.nodes[n].op {
                self.arena.states[n].rng = Some(crate::random::DropoutRng::new(seed, off));
            }
        }
        Ok(())
    }

    /// The input variables this plan needs fed.
    pub fn arguments(&self) -> Vec<Variable> {
        self.plan
            .slots
            .iter()
            .filter_map(|s| match &s.source {
                Source::Input(v) => Some(v.clone()),
                _ => None,
            })
            .collect()
    }

    /// The parameters this plan reads.
    pub fn parameters(&self) -> Vec<Variable> {
        self.plan
            .slots
            .iter()
            .filter_map(|s| match &s.source {
                Source::Param(v) => Some(v.clone()),
                _ => None,
            })
            .collect()
    }

    /// Work of one pass, for the backend to choose its parallelism: the largest input's
    /// rows times the per-row work of every node (its output size; a convolution's
    /// multiply-adds).
    fn pass_work(&self) -> usize {
        let rows = self
            .plan
            .slots
            .iter()
            .zip(&self.arena.layouts)
            .filter(|(s, _)| matches!(s.source, Source::Input(_)))
            .map(|(_, l)| l.rows())
            .max()
            .unwrap_or(1);
        let per_row: usize = self
            .plan
            .nodes
            .iter()
            .map(|n| n.op.row_work(&n.in_shapes, &n.out_shape))
            .fold(0, usize::saturating_add);
        rows.saturating_mul(per_row)
    }

    /// The value of a root, input or parameter after `forward` (fetched to the host).
    pub fn value(&self, v: &Variable) -> Result<Value> {
        let s = *self.plan.var_slots.get(&v.key()).ok_or_else(|| {
            Error::Argument(format!("{} is not computed by this executor", v.label()))
        })?;
        if !self.forwarded {
            return Err(Error::Argument(
                "value() before a successful forward()".into(),
            ));
        }
        if let Some(inf) = &self.inference {
            if inf.releases(s) {
                return Err(Error::Argument(format!(
                    "{} is an intermediate value, not kept by a forward-only executor",
                    v.label()
                )));
            }
        }
        let shape = self.arena.shapes[s].clone();
        if let Some(st) = &self.plan.stores[s] {
            let t = st.read().expect("parameter lock");
            return Value::new(
                shape,
                Layout::Static,
                ValueData::Dense(t.storage().to_host()),
            );
        }
        let layout = self.arena.layouts[s].clone();
        let len = layout.rows() * self.arena.numels[s];
        let buf = &self.arena.data[s];
        let rows = B::sub(B::view(buf), 0..len.min(B::len(buf)));
        Value::from_rows(shape, layout, self.backend.download(rows))
    }

    /// Give back the gradients of `wrt` that the last `backward` returned (as tensors,
    /// e.g. after a learner used them): the next `backward` reuses their storage instead
    /// of allocating, so large gradients (an embedding table's, an output layer's) do
    /// not cost fresh pages every minibatch. Anything that does not fit is dropped.
    pub fn recycle_gradients(&mut self, wrt: &[&Variable], grads: Vec<Tensor>) {
        for (v, t) in wrt.iter().zip(grads) {
            let Some(&s) = self.plan.var_slots.get(&v.key()) else {
                continue;
            };
            if B::len(&self.arena.grads[s]) == 0 {
                if let Ok(buf) = self.backend.take_storage::<T>(t.into_storage()) {
                    self.arena.grads[s] = buf;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;

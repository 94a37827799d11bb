//! Buffer recycling of a forward-only executor: memory grows with the widest point of
//! the graph, not with its depth. Buffers are assigned to slots once, at compile time
//! (like registers by liveness), so a warm executor allocates nothing.

use super::compile::Plan;
use crate::backend::{Backend, Memory};
use crate::tensor::Element;

pub(super) struct Inference<T: Element, B: Backend> {
    /// The pool buffer each intermediate slot uses.
    buffer_of: Vec<Option<usize>>,
    /// Slots whose buffer returns to the pool after each schedule step.
    release_after: Vec<Vec<usize>>,
    pool: Vec<<B as Memory>::Buf<T>>,
}

impl<T: Element, B: Backend> Inference<T, B> {
    pub fn new(plan: &Plan) -> Self {
        let nsteps = plan.steps.len();
        let mut last_use: Vec<Option<usize>> = vec![None; plan.slots.len()];
        for i in 0..nsteps {
            for &n in plan.step_nodes(i) {
                for &s in &plan.nodes[n].ins {
                    last_use[s] = Some(last_use[s].map_or(i, |u| u.max(i)));
                }
            }
        }
        let mut release_after = vec![Vec::new(); nsteps];
        let mut buffer_of = vec![None; plan.slots.len()];
        let mut free: Vec<usize> = Vec::new();
        let mut nbuf = 0;
        for (i, release) in release_after.iter_mut().enumerate() {
            for &n in plan.step_nodes(i) {
                let out = plan.nodes[n].out;
                if !plan.roots.contains(&out) {
                    buffer_of[out] = Some(free.pop().unwrap_or_else(|| {
                        nbuf += 1;
                        nbuf - 1
                    }));
                }
            }
            for (s, lu) in last_use.iter().enumerate() {
                if *lu == Some(i) {
                    if let Some(b) = buffer_of[s] {
                        release.push(s);
                        free.push(b);
                    }
                }
            }
        }
        Inference {
            buffer_of,
            release_after,
            pool: (0..nbuf).map(|_| Default::default()).collect(),
        }
    }

    /// Whether slot `s` is an intermediate whose buffer goes back to the pool.
    pub fn releases(&self, s: usize) -> bool {
        self.release_after.iter().any(|r| r.contains(&s))
    }

    /// Hand each output slot of step `i` its pool buffer.
    pub fn acquire(&mut self, plan: &Plan, i: usize, data: &mut [<B as Memory>::Buf<T>]) {
        for &n in plan.step_nodes(i) {
            let out = plan.nodes[n].out;
            if let Some(b) = self.buffer_of[out] {
                data[out] = std::mem::take(&mut self.pool[b]);
            }
        }
    }

    /// Return the buffers of slots read for the last time in step `i` to the pool.
    pub fn release(&mut self, b: &B, i: usize, data: &mut [<B as Memory>::Buf<T>]) {
        for &s in &self.release_after[i] {
            if let Some(k) = self.buffer_of[s] {
                let mut buf = std::mem::take(&mut data[s]);
                b.resize(&mut buf, 0);
                self.pool[k] = buf;
            }
        }
    }
}

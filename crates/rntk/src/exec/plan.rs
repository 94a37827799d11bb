//! Queries on a compiled plan that the runtime asks repeatedly: which nodes a
//! schedule step runs, and which slots carry gradient for a set of `wrt` variables
//! (computed once per set and cached in the plan).

use super::compile::{Plan, Step};
use std::sync::Arc;

impl Plan {
    /// The nodes schedule step `i` runs: one, or a recurrent loop's.
    pub(crate) fn step_nodes(&self, i: usize) -> &[usize] {
        match &self.steps[i] {
            Step::Node(n) => std::slice::from_ref(n),
            Step::Loop(lp) => &lp.nodes,
        }
    }

    /// Which slots carry gradient when differentiating with respect to `wrt`: those
    /// that depend on a `wrt` slot through differentiable operands. Cached per set.
    pub(crate) fn reach(&self, wrt: &[usize]) -> Arc<Vec<bool>> {
        let mut key = wrt.to_vec();
        key.sort_unstable();
        key.dedup();
        let mut cache = self.reach_cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = cache.get(&key) {
            return r.clone();
        }
        let mut reach = vec![false; self.slots.len()];
        for &s in &key {
            reach[s] = true;
        }
        // A fixed point: loops feed their own operands.
        loop {
            let mut changed = false;
            for node in &self.nodes {
                if !reach[node.out]
                    && node
                        .ins
                        .iter()
                        .enumerate()
                        .any(|(i, &s)| reach[s] && node.op.differentiable(i))
                {
                    reach[node.out] = true;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let r = Arc::new(reach);
        cache.insert(key, r.clone());
        r
    }
}

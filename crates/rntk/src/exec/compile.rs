//! Compile a set of root variables into a plan: one slot per value, one node per
//! primitive (blocks inlined), recurrent loops found as strongly connected components
//! through past_value / future_value, and a schedule in dependency order.

use crate::error::{Error, Result};
use crate::graph::flat::Flat;
use crate::graph::{DynamicAxes, VarKey, Variable};
use crate::ops::{ExecKind, Op, UnaryOp};
use crate::tensor::{Shape, Tensor};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

/// Where a slot's value comes from: an input, parameter, constant or node.
pub(crate) use crate::graph::flat::Src as Source;

pub(crate) struct SlotInfo {
    pub source: Source,
    pub shape: Shape,
    /// `shape.numel()`, cached: the runtime needs it per node and per time step.
    pub numel: usize,
    pub axes: DynamicAxes,
    pub is_sparse: bool,
    pub label: String,
}

pub(crate) struct PNode {
    pub op: Op,
    /// For messages: the function's name or uid, prefixed by enclosing block names.
    pub name: String,
    pub ins: Vec<usize>,
    pub out: usize,
    pub in_shapes: Vec<Shape>,
    pub out_shape: Shape,
}

pub(crate) struct LoopPlan {
    /// Nodes in the order one time step runs them.
    pub nodes: Vec<usize>,
    /// future_value loops run from the last step to the first.
    pub backward_in_time: bool,
}

pub(crate) enum Step {
    Node(usize),
    Loop(LoopPlan),
}

/// The compiled form of a set of roots: immutable once built, shared by every
/// executor over it (`Arc`); only the backward reachability cache fills in later.
pub(crate) struct Plan {
    pub slots: Vec<SlotInfo>,
    pub nodes: Vec<PNode>,
    pub steps: Vec<Step>,
    /// Slots of the variables visible from outside (roots, inputs, parameters).
    pub var_slots: HashMap<VarKey, usize>,
    pub roots: Vec<usize>,
    /// Input slots whose sparse values must be densified when fed: some consumer is
    /// not an op that reads sparse rows (`times`' left operand, the fused losses' target).
    pub densify: Vec<bool>,
    /// How many node operands read each slot.
    pub readers: Vec<usize>,
    /// Shared storage of parameter and constant slots.
    pub stores: Vec<Option<Arc<RwLock<Tensor>>>>,
    /// Per node: the ReLU node folded into this batch normalization (see `fold_relus`).
    pub relu_after: Vec<Option<usize>>,
    /// Per node: the batch normalization this ReLU node is folded into.
    pub folded_into: Vec<Option<usize>>,
    /// Per set of `wrt` slots: which slots carry gradient (see `Plan::reach`).
    pub reach_cache: Mutex<HashMap<Vec<usize>, Arc<Vec<bool>>>>,
}

/// The flattened graph in the executor's terms: slots with cached sizes, nodes with
/// their declared shapes.
struct Slots {
    slots: Vec<SlotInfo>,
    nodes: Vec<PNode>,
}

impl From<Flat> for Slots {
    fn from(flat: Flat) -> Slots {
        let slots = flat
            .vals
            .into_iter()
            .map(|v| SlotInfo {
                source: v.src,
                numel: v.info.shape.numel(),
                shape: v.info.shape,
                axes: v.info.axes,
                is_sparse: v.info.is_sparse,
                label: v.label,
            })
            .collect();
        let nodes = flat
            .nodes
            .into_iter()
            .map(|n| PNode {
                op: n.op,
                name: n.name,
                ins: n.ins,
                out: n.out,
                in_shapes: n.in_shapes,
                out_shape: n.out_shape,
            })
            .collect();
        Slots { slots, nodes }
    }
}

/// Order one loop's nodes for a time step: dependencies first, ignoring the edge
/// into each delay's delayed operand (that value comes from another step).
fn order_loop(comp: &[usize], nodes: &[PNode], slots: &[SlotInfo]) -> Result<LoopPlan> {
    let in_comp = |m: usize| comp.contains(&m);
    let mut dir: Option<bool> = None;
    for &n in comp {
        match nodes[n].op {
            Op::PastValue { .. } => {
                if dir == Some(true) {
                    return Err(Error::Unsupported(format!(
                        "recurrent loop through '{}' mixes past_value and future_value",
                        nodes[n].name
                    )));
                }
                dir = Some(false)
            }
            Op::FutureValue { .. } => {
                if dir == Some(false) {
                    return Err(Error::Unsupported(format!(
                        "recurrent loop through '{}' mixes past_value and future_value",
                        nodes[n].name
                    )));
                }
                dir = Some(true)
            }
            _ => {
                let reads_loop = |i: usize| matches!(slots[nodes[n].ins[i]].source, Source::Node(m) if in_comp(m));
                if let Some(i) = (0..nodes[n].ins.len())
                    .find(|&i| nodes[n].op.is_context_operand(i) && reads_loop(i))
                {
                    return Err(Error::Unsupported(format!(
                        "{} '{}' inside a recurrent loop: its operand {i} (keys, values) depends \
                         on the loop's state; they must be computed outside the loop (only the \
                         query may be the recurrent state)",
                        nodes[n].op.name(),
                        nodes[n].name
                    )));
                }
                if nodes[n].op.exec_kind() == ExecKind::Whole {
                    return Err(Error::Unsupported(format!(
                        "{} '{}' inside a recurrent loop (sequence-level ops must be outside the loop)",
                        nodes[n].op.name(),
                        nodes[n].name
                    )));
                }
            }
        }
    }
    let Some(backward_in_time) = dir else {
        let path: Vec<String> = comp
            .iter()
            .map(|&n| format!("{} '{}'", nodes[n].op.name(), nodes[n].name))
            .collect();
        return Err(Error::CycleWithoutDelay {
            path: path.join(" → "),
        });
    };
    // Kahn's algorithm on the intra-step edges.
    let step_deps = |n: usize| -> Vec<usize> {
        let is_delay = nodes[n].op.exec_kind() == ExecKind::Delay;
        nodes[n]
            .ins
            .iter()
            .enumerate()
            .filter(|&(i, _)| !(is_delay && i == 0))
            .filter_map(|(_, &s)| match slots[s].source {
                Source::Node(m) if in_comp(m) => Some(m),
                _ => None,
            })
            .collect()
    };
    let mut remaining: Vec<usize> = comp.to_vec();
    let mut order = Vec::with_capacity(comp.len());
    while !remaining.is_empty() {
        let ready: Vec<usize> = remaining
            .iter()
            .copied()
            .filter(|&n| step_deps(n).iter().all(|d| order.contains(d)))
            .collect();
        if ready.is_empty() {
            let path: Vec<String> = remaining
                .iter()
                .map(|&n| format!("{} '{}'", nodes[n].op.name(), nodes[n].name))
                .collect();
            return Err(Error::CycleWithoutDelay {
                path: path.join(" → "),
            });
        }
        remaining.retain(|n| !ready.contains(n));
        order.extend(ready);
    }
    Ok(LoopPlan {
        nodes: order,
        backward_in_time,
    })
}

pub(crate) fn compile(roots: &[Variable]) -> Result<Plan> {
    if roots.is_empty() {
        return Err(Error::Argument(
            "nothing to compute: no root variables".into(),
        ));
    }
    let flat = Flat::new(roots)?;
    let comps = flat.components();
    let is_loop: Vec<bool> = comps.iter().map(|c| flat.is_loop(c)).collect();
    let mut var_slots: HashMap<VarKey, usize> = flat.leaf_vals.clone();
    for (r, &s) in roots.iter().zip(&flat.roots) {
        var_slots.insert(r.key(), s);
    }
    let root_slots = flat.roots.clone();
    let b = Slots::from(flat);
    let mut steps = Vec::new();
    for (comp, is_loop) in comps.into_iter().zip(is_loop) {
        if is_loop {
            steps.push(Step::Loop(order_loop(&comp, &b.nodes, &b.slots)?));
        } else {
            steps.push(Step::Node(comp[0]));
        }
    }
    let mut densify = vec![false; b.slots.len()];
    let mut readers = vec![0usize; b.slots.len()];
    for node in &b.nodes {
        for (i, &s) in node.ins.iter().enumerate() {
            readers[s] += 1;
            if !node.op.reads_sparse(i) {
                densify[s] = true;
            }
        }
    }
    let (relu_after, folded_into) = fold_relus(&b.nodes, &steps, &readers, &var_slots);
    let stores = b
        .slots
        .iter()
        .map(|s| match &s.source {
            Source::Param(v) | Source::Const(v) => v.storage(),
            _ => None,
        })
        .collect();
    Ok(Plan {
        densify,
        readers,
        stores,
        relu_after,
        folded_into,
        slots: b.slots,
        nodes: b.nodes,
        steps,
        var_slots,
        roots: root_slots,
        reach_cache: Mutex::new(HashMap::new()),
    })
}

/// Batch normalizations followed by a ReLU that alone reads their output, which is not
/// visible from outside (no root, no variable): a training executor computes the ReLU
/// inside the normalization (its output, and its gradient masked by it) and skips the
/// ReLU node, saving full passes over the activation. Returns, per node, the ReLU folded
/// into it, and per ReLU node, its normalization.
fn fold_relus(
    nodes: &[PNode],
    steps: &[Step],
    readers: &[usize],
    var_slots: &HashMap<VarKey, usize>,
) -> (Vec<Option<usize>>, Vec<Option<usize>>) {
    let mut after = vec![None; nodes.len()];
    let mut into = vec![None; nodes.len()];
    let by_out: HashMap<usize, usize> = nodes.iter().enumerate().map(|(n, p)| (p.out, n)).collect();
    let mut own_step = vec![false; nodes.len()];
    for step in steps {
        if let Step::Node(n) = *step {
            own_step[n] = true;
        }
    }
    for step in steps {
        let Step::Node(m) = *step else { continue };
        let relu = &nodes[m];
        if relu.op != Op::Unary(UnaryOp::Relu) || relu.ins.len() != 1 {
            continue;
        }
        let s = relu.ins[0];
        let Some(&n) = by_out.get(&s) else { continue };
        let single = readers[s] == 1 && !var_slots.values().any(|&v| v == s);
        if single && own_step[n] && matches!(nodes[n].op, Op::BatchNorm { .. }) {
            after[n] = Some(m);
            into[m] = Some(n);
        }
    }
    (after, into)
}

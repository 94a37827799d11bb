//! Compile a set of root variables into a plan: one slot per value, one node per
//! primitive (blocks inlined), recurrent loops found as strongly connected components
//! through past_value / future_value, and a schedule in dependency order.

use crate::error::{Error, Result};
use crate::graph::{DynamicAxes, FnKind, VarKey, VarKind, Variable};
use crate::ops::{ExecKind, Op};
use crate::tensor::{Shape, Tensor};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

/// Where a slot's value comes from.
#[derive(Clone)]
pub(crate) enum Source {
    Input(Variable),
    Param(Variable),
    Const(Variable),
    Node(usize),
}

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
    /// Per set of `wrt` slots: which slots carry gradient (see `Plan::reach`).
    pub reach_cache: Mutex<HashMap<Vec<usize>, Arc<Vec<bool>>>>,
}

/// A block instance: its argument placeholders stand for outer variables.
struct Ctx {
    parent: usize,
    args: HashMap<VarKey, Variable>,
    prefix: String,
}

struct Builder {
    slots: Vec<SlotInfo>,
    nodes: Vec<PNode>,
    leaf_slots: HashMap<VarKey, usize>,
    fn_nodes: HashMap<(usize, u64), usize>,
    composite_ctx: HashMap<(usize, u64), usize>,
    ctxs: Vec<Ctx>,
}

impl Builder {
    fn new_slot(&mut self, source: Source, v: &Variable, label: String) -> usize {
        let info = v.info();
        self.slots.push(SlotInfo {
            source,
            numel: info.shape.numel(),
            shape: info.shape,
            axes: info.axes,
            is_sparse: info.is_sparse,
            label,
        });
        self.slots.len() - 1
    }

    fn slot_of(&mut self, v: &Variable, ctx: usize) -> Result<usize> {
        // A block argument stands for its outer operand.
        if let Some(outer) = self.ctxs[ctx].args.get(&v.key()).cloned() {
            let parent = self.ctxs[ctx].parent;
            return self.slot_of(&outer, parent);
        }
        let r = v.resolve();
        if r.key() != v.key() {
            return self.slot_of(&r, ctx);
        }
        match v.kind() {
            VarKind::Placeholder => Err(Error::Argument(format!(
                "placeholder {} was never replaced (replace_placeholders closes a recurrence)",
                v.label()
            ))),
            VarKind::Input | VarKind::Parameter | VarKind::Constant => {
                if let Some(&s) = self.leaf_slots.get(&v.key()) {
                    return Ok(s);
                }
                let src = match v.kind() {
                    VarKind::Input => Source::Input(v.clone()),
                    VarKind::Parameter => Source::Param(v.clone()),
                    _ => Source::Const(v.clone()),
                };
                let s = self.new_slot(src, v, v.label());
                self.leaf_slots.insert(v.key(), s);
                Ok(s)
            }
            VarKind::Output => {
                let f = v.owner().expect("an output has an owner");
                let index = v.output_index();
                match f.kind() {
                    FnKind::Composite { outputs } => {
                        let o = outputs[index].clone();
                        self.slot_of(&o, ctx)
                    }
                    FnKind::Block { body, args, .. } => {
                        let key = (ctx, f.id());
                        let bctx = match self.composite_ctx.get(&key) {
                            Some(&c) => c,
                            None => {
                                let prefix = format!("{}{}/", self.ctxs[ctx].prefix, f.label());
                                self.ctxs.push(Ctx {
                                    parent: ctx,
                                    args: args
                                        .iter()
                                        .map(|a| a.key())
                                        .zip(f.inputs().iter().cloned())
                                        .collect(),
                                    prefix,
                                });
                                let c = self.ctxs.len() - 1;
                                self.composite_ctx.insert(key, c);
                                c
                            }
                        };
                        let o = body.outputs()[index].clone();
                        self.slot_of(&o, bctx)
                    }
                    FnKind::Primitive(op) => {
                        let key = (ctx, f.id());
                        if let Some(&n) = self.fn_nodes.get(&key) {
                            return Ok(self.nodes[n].out);
                        }
                        let n = self.nodes.len();
                        let name = format!("{}{}", self.ctxs[ctx].prefix, f.label());
                        let out = self.new_slot(Source::Node(n), v, name.clone());
                        self.nodes.push(PNode {
                            op: op.clone(),
                            name,
                            ins: Vec::new(),
                            out,
                            in_shapes: f.inputs().iter().map(|i| i.shape()).collect(),
                            out_shape: v.shape(),
                        });
                        // Registered before the operands are visited, so a loop back to
                        // this function finds it.
                        self.fn_nodes.insert(key, n);
                        let mut ins = Vec::with_capacity(f.inputs().len());
                        for i in f.inputs() {
                            ins.push(self.slot_of(i, ctx)?);
                        }
                        self.nodes[n].ins = ins;
                        Ok(out)
                    }
                }
            }
        }
    }
}

/// Strongly connected components over node → operand-producer edges, emitted so
/// that every component comes after the components it depends on (iterative Tarjan).
fn components(nodes: &[PNode], slots: &[SlotInfo]) -> Vec<Vec<usize>> {
    let deps = |n: usize| -> Vec<usize> {
        nodes[n]
            .ins
            .iter()
            .filter_map(|&s| match slots[s].source {
                Source::Node(m) => Some(m),
                _ => None,
            })
            .collect()
    };
    let count = nodes.len();
    let mut index = vec![usize::MAX; count];
    let mut low = vec![0; count];
    let mut on_stack = vec![false; count];
    let mut stack = Vec::new();
    let mut out = Vec::new();
    let mut next = 0;
    for root in 0..count {
        if index[root] != usize::MAX {
            continue;
        }
        let mut work: Vec<(usize, Vec<usize>, usize)> = vec![(root, deps(root), 0)];
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some((v, ds, i)) = work.last_mut() {
            let v = *v;
            if *i < ds.len() {
                let w = ds[*i];
                *i += 1;
                if index[w] == usize::MAX {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    let dw = deps(w);
                    work.push((w, dw, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
            } else {
                work.pop();
                if let Some((u, _, _)) = work.last() {
                    low[*u] = low[*u].min(low[v]);
                }
                if low[v] == index[v] {
                    let mut comp = Vec::new();
                    loop {
                        let w = stack.pop().expect("tarjan stack");
                        on_stack[w] = false;
                        comp.push(w);
                        if w == v {
                            break;
                        }
                    }
                    comp.sort_unstable();
                    out.push(comp);
                }
            }
        }
    }
    out
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
    let mut b = Builder {
        slots: Vec::new(),
        nodes: Vec::new(),
        leaf_slots: HashMap::new(),
        fn_nodes: HashMap::new(),
        composite_ctx: HashMap::new(),
        ctxs: vec![Ctx {
            parent: 0,
            args: HashMap::new(),
            prefix: String::new(),
        }],
    };
    let mut root_slots = Vec::new();
    let mut var_slots = HashMap::new();
    for r in roots {
        let s = b.slot_of(r, 0)?;
        root_slots.push(s);
        var_slots.insert(r.key(), s);
    }
    for (k, &s) in &b.leaf_slots {
        var_slots.insert(*k, s);
    }
    let mut steps = Vec::new();
    for comp in components(&b.nodes, &b.slots) {
        let self_loop = comp.len() == 1 && {
            let n = comp[0];
            b.nodes[n]
                .ins
                .iter()
                .any(|&s| matches!(b.slots[s].source, Source::Node(m) if m == n))
        };
        if comp.len() > 1 || self_loop {
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
        slots: b.slots,
        nodes: b.nodes,
        steps,
        var_slots,
        roots: root_slots,
        reach_cache: Mutex::new(HashMap::new()),
    })
}

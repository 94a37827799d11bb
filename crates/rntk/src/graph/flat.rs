//! The graph flattened: one value per variable, one node per primitive function, blocks
//! and composites inlined, and the nodes' strongly connected components (recurrent
//! loops through past_value / future_value) in dependency order. The executor's
//! compiler and the ONNX exporter both start from this form.
//!
//! ```text
//!  roots ──► value_of(v, block) ──┬─ block argument  ──► the outer operand, in the parent block
//!                                 ├─ placeholder     ──► its replacement, else (outside its
//!                                 │                      block) the block's operand, else an error
//!                                 ├─ input/param/const ► one leaf value per variable
//!                                 ├─ composite output ──► the inner output, same block
//!                                 ├─ block output    ──► a block instance per (block, use site),
//!                                 │                      its body's output inside it
//!                                 └─ primitive output ─► one node per (function, block instance),
//!                                                        registered before its operands so a
//!                                                        loop back to it finds it
//! ```

use crate::error::{Error, Result};
use crate::graph::{FnKind, Function, VarInfo, VarKey, VarKind, Variable};
use crate::ops::Op;
use crate::tensor::Shape;
use std::collections::HashMap;

/// Where a value comes from.
#[derive(Clone)]
pub(crate) enum Src {
    Input(Variable),
    Param(Variable),
    Const(Variable),
    Node(usize),
}

/// One value of the flattened graph.
pub(crate) struct Val {
    pub src: Src,
    pub info: VarInfo,
    /// The variable's label, or the producing node's name.
    pub label: String,
}

/// One primitive function instance.
pub(crate) struct Node {
    pub op: Op,
    /// The function's name or uid with the enclosing blocks' labels before it.
    pub name: String,
    pub ins: Vec<usize>,
    pub out: usize,
    /// The shapes of the function's operands and output as the graph declares them.
    pub in_shapes: Vec<Shape>,
    pub out_shape: Shape,
    /// The innermost block instance the node sits in (0: the top level).
    pub ctx: usize,
}

/// A block instance: its argument placeholders stand for outer variables.
pub(crate) struct Ctx {
    pub parent: usize,
    /// The block's op name ("LSTM", "Dense", ...); empty at the top level.
    pub op_name: String,
    pub label: String,
    args: HashMap<VarKey, Variable>,
    prefix: String,
    /// The id of the block function this instance expands (`None` at the top level).
    block: Option<u64>,
}

/// The flattened graph of a set of root variables.
pub(crate) struct Flat {
    pub vals: Vec<Val>,
    pub nodes: Vec<Node>,
    pub ctxs: Vec<Ctx>,
    /// The values of the roots, in the order given.
    pub roots: Vec<usize>,
    /// The root variables, parallel to `roots`.
    pub root_vars: Vec<Variable>,
    /// The value of each input, parameter and constant reached.
    pub leaf_vals: HashMap<VarKey, usize>,
    fn_nodes: HashMap<(usize, u64), usize>,
    block_ctx: HashMap<(usize, u64), usize>,
}

impl Flat {
    /// Flatten everything `roots` are computed from.
    pub fn new(roots: &[Variable]) -> Result<Flat> {
        let mut f = Flat {
            vals: Vec::new(),
            nodes: Vec::new(),
            ctxs: vec![Ctx {
                parent: 0,
                op_name: String::new(),
                label: String::new(),
                args: HashMap::new(),
                prefix: String::new(),
                block: None,
            }],
            roots: Vec::new(),
            root_vars: roots.to_vec(),
            leaf_vals: HashMap::new(),
            fn_nodes: HashMap::new(),
            block_ctx: HashMap::new(),
        };
        for v in roots {
            let i = f.val_of(v, 0)?;
            f.roots.push(i);
        }
        Ok(f)
    }

    fn new_val(&mut self, src: Src, v: &Variable, label: String) -> usize {
        self.vals.push(Val {
            src,
            info: v.info(),
            label,
        });
        self.vals.len() - 1
    }

    fn val_of(&mut self, v: &Variable, ctx: usize) -> Result<usize> {
        // A block argument stands for its outer operand.
        if let Some(outer) = self.ctxs[ctx].args.get(&v.key()).cloned() {
            let parent = self.ctxs[ctx].parent;
            return self.val_of(&outer, parent);
        }
        let r = v.resolve();
        if r.key() != v.key() {
            return self.val_of(&r, ctx);
        }
        if let Some(outer) = v.block_operand() {
            // A block's argument reached outside that block (a node found by name
            // inside it): the block's operand, as within the whole graph.
            return self.val_of(&outer, ctx);
        }
        match v.kind() {
            VarKind::Placeholder => Err(Error::Argument(format!(
                "placeholder {} was never replaced (replace_placeholders closes a recurrence)",
                v.label()
            ))),
            VarKind::Input | VarKind::Parameter | VarKind::Constant => {
                if let Some(&s) = self.leaf_vals.get(&v.key()) {
                    return Ok(s);
                }
                let src = match v.kind() {
                    VarKind::Input => Src::Input(v.clone()),
                    VarKind::Parameter => Src::Param(v.clone()),
                    _ => Src::Const(v.clone()),
                };
                let s = self.new_val(src, v, v.label());
                self.leaf_vals.insert(v.key(), s);
                Ok(s)
            }
            VarKind::Output => {
                let f = v.owner().ok_or_else(|| {
                    Error::Argument(format!("output {} has no function", v.label()))
                })?;
                self.output_val(&f, v, ctx)
            }
        }
    }

    fn output_val(&mut self, f: &Function, v: &Variable, ctx: usize) -> Result<usize> {
        let index = v.output_index();
        match f.kind() {
            FnKind::Composite { outputs } => {
                let o = outputs[index].clone();
                self.val_of(&o, ctx)
            }
            FnKind::Block {
                body,
                args,
                op_name,
            } => {
                let bctx = self.block_instance(f, args, op_name.clone(), ctx)?;
                let o = body.outputs()[index].clone();
                self.val_of(&o, bctx)
            }
            FnKind::Primitive(op) => self.node_val(f, op.clone(), v, ctx),
        }
    }

    /// The instance of block `f` used in block instance `ctx` (made on first use). A
    /// block reached again inside its own expansion (a hostile or corrupted graph) would
    /// expand without end: it is refused as a cycle.
    fn block_instance(
        &mut self,
        f: &Function,
        args: &[Variable],
        op_name: String,
        ctx: usize,
    ) -> Result<usize> {
        let key = (ctx, f.id());
        if let Some(&c) = self.block_ctx.get(&key) {
            return Ok(c);
        }
        let mut up = ctx;
        while up != 0 {
            if self.ctxs[up].block == Some(f.id()) {
                return Err(Error::CycleWithoutDelay {
                    path: format!(
                        "block {} ({op_name}) is used inside its own body",
                        f.label()
                    ),
                });
            }
            up = self.ctxs[up].parent;
        }
        let prefix = format!("{}{}/", self.ctxs[ctx].prefix, f.label());
        self.ctxs.push(Ctx {
            parent: ctx,
            op_name,
            label: f.label(),
            args: args
                .iter()
                .map(|a| a.key())
                .zip(f.inputs().iter().cloned())
                .collect(),
            prefix,
            block: Some(f.id()),
        });
        let c = self.ctxs.len() - 1;
        self.block_ctx.insert(key, c);
        Ok(c)
    }

    /// The output value of primitive `f` in block instance `ctx` (its node made on
    /// first use).
    fn node_val(&mut self, f: &Function, op: Op, v: &Variable, ctx: usize) -> Result<usize> {
        let key = (ctx, f.id());
        if let Some(&n) = self.fn_nodes.get(&key) {
            return Ok(self.nodes[n].out);
        }
        let n = self.nodes.len();
        let name = format!("{}{}", self.ctxs[ctx].prefix, f.label());
        let out = self.new_val(Src::Node(n), v, name.clone());
        self.nodes.push(Node {
            op,
            name,
            ins: Vec::new(),
            out,
            in_shapes: f.inputs().iter().map(|i| i.shape()).collect(),
            out_shape: v.shape(),
            ctx,
        });
        // Registered before the operands are visited, so a loop back to this function
        // finds it.
        self.fn_nodes.insert(key, n);
        let mut ins = Vec::with_capacity(f.inputs().len());
        for i in f.inputs() {
            ins.push(self.val_of(i, ctx)?);
        }
        self.nodes[n].ins = ins;
        Ok(out)
    }

    /// The node producing value `v`, if any.
    pub fn producer(&self, v: usize) -> Option<usize> {
        match self.vals[v].src {
            Src::Node(n) => Some(n),
            _ => None,
        }
    }

    /// "inside block LSTM 'lstm' inside block Recurrence ''": where a node sits, for
    /// messages.
    pub fn place(&self, n: usize) -> String {
        let mut parts = Vec::new();
        let mut c = self.nodes[n].ctx;
        while c != 0 {
            let x = &self.ctxs[c];
            parts.push(format!("block {} '{}'", x.op_name, x.label));
            c = x.parent;
        }
        if parts.is_empty() {
            "at the top level".into()
        } else {
            format!("inside {}", parts.join(" inside "))
        }
    }

    /// Strongly connected components of the node graph (node → operand producers),
    /// each after the components it depends on (iterative Tarjan).
    pub fn components(&self) -> Vec<Vec<usize>> {
        let deps: Vec<Vec<usize>> = self
            .nodes
            .iter()
            .map(|n| n.ins.iter().filter_map(|&s| self.producer(s)).collect())
            .collect();
        Tarjan::new(deps.len()).run(&deps)
    }

    /// Whether a component is a recurrent loop (several nodes, or one reading itself).
    pub fn is_loop(&self, comp: &[usize]) -> bool {
        comp.len() > 1
            || self.nodes[comp[0]]
                .ins
                .iter()
                .any(|&s| self.producer(s) == Some(comp[0]))
    }
}

/// Tarjan's strongly-connected-components state, run without recursion.
struct Tarjan {
    index: Vec<usize>,
    low: Vec<usize>,
    on_stack: Vec<bool>,
    stack: Vec<usize>,
    next: usize,
    out: Vec<Vec<usize>>,
}

impl Tarjan {
    fn new(count: usize) -> Tarjan {
        Tarjan {
            index: vec![usize::MAX; count],
            low: vec![0; count],
            on_stack: vec![false; count],
            stack: Vec::new(),
            next: 0,
            out: Vec::new(),
        }
    }

    fn visit(&mut self, v: usize) {
        self.index[v] = self.next;
        self.low[v] = self.next;
        self.next += 1;
        self.stack.push(v);
        self.on_stack[v] = true;
    }

    /// Components in dependency order, each sorted; starts from nodes 0, 1, ….
    fn run(mut self, deps: &[Vec<usize>]) -> Vec<Vec<usize>> {
        for start in 0..deps.len() {
            if self.index[start] != usize::MAX {
                continue;
            }
            self.visit(start);
            let mut work: Vec<(usize, usize)> = vec![(start, 0)];
            while let Some(&mut (v, ref mut k)) = work.last_mut() {
                if let Some(&w) = deps[v].get(*k) {
                    *k += 1;
                    if self.index[w] == usize::MAX {
                        self.visit(w);
                        work.push((w, 0));
                    } else if self.on_stack[w] {
                        self.low[v] = self.low[v].min(self.index[w]);
                    }
                } else {
                    work.pop();
                    if let Some(&(p, _)) = work.last() {
                        self.low[p] = self.low[p].min(self.low[v]);
                    }
                    if self.low[v] == self.index[v] {
                        self.pop_component(v);
                    }
                }
            }
        }
        self.out
    }

    fn pop_component(&mut self, root: usize) {
        let mut comp = Vec::new();
        while let Some(w) = self.stack.pop() {
            self.on_stack[w] = false;
            comp.push(w);
            if w == root {
                break;
            }
        }
        comp.sort_unstable();
        self.out.push(comp);
    }
}

#[cfg(test)]
mod tests {
    use super::Tarjan;

    #[test]
    fn components_come_after_what_they_depend_on() {
        // 0 → 1 → 2 → 1 (a loop {1, 2}), 3 → 0, 4 alone.
        let deps = vec![vec![1], vec![2], vec![1], vec![0], vec![]];
        let comps = Tarjan::new(deps.len()).run(&deps);
        assert_eq!(comps, vec![vec![1, 2], vec![0], vec![3], vec![4]]);
    }

    #[test]
    fn a_long_chain_needs_no_deep_recursion() {
        let n = 200_000;
        let deps: Vec<Vec<usize>> = (0..n)
            .map(|i| if i + 1 < n { vec![i + 1] } else { vec![] })
            .collect();
        let comps = Tarjan::new(n).run(&deps);
        assert_eq!(comps.len(), n);
        assert_eq!(comps[0], vec![n - 1]);
    }
}

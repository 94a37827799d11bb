//! The graph as the exporter sees it: one value per variable, one node per primitive
//! (blocks inlined, each node remembering the blocks it sits in), and the nodes
//! grouped into strongly connected components (recurrent loops through delays) in
//! dependency order.

use crate::error::{Error, Result};
use crate::graph::{FnKind, Function, VarInfo, VarKey, VarKind, Variable};
use crate::ops::Op;
use std::collections::HashMap;

/// Where a value comes from.
#[derive(Clone)]
pub(crate) enum Src {
    Input(Variable),
    Param(Variable),
    Const(Variable),
    Node(usize),
}

pub(crate) struct Val {
    pub src: Src,
    pub info: VarInfo,
    pub label: String,
}

pub(crate) struct Node {
    pub op: Op,
    /// The function's name or uid with the enclosing blocks' labels before it.
    pub name: String,
    pub ins: Vec<usize>,
    pub out: usize,
    /// The innermost block instance the node sits in (0: the top level).
    pub ctx: usize,
}

/// A block instance.
pub(crate) struct Ctx {
    pub parent: usize,
    /// The block's op name ("LSTM", "Dense", ...); empty at the top level.
    pub op_name: String,
    pub label: String,
    args: HashMap<VarKey, Variable>,
    prefix: String,
}

pub(crate) struct Flat {
    pub vals: Vec<Val>,
    pub nodes: Vec<Node>,
    pub ctxs: Vec<Ctx>,
    /// The model's outputs.
    pub roots: Vec<usize>,
    /// The model's output variables, parallel to `roots`.
    pub root_vars: Vec<Variable>,
    leaf_vals: HashMap<VarKey, usize>,
    fn_nodes: HashMap<(usize, u64), usize>,
    block_ctx: HashMap<(usize, u64), usize>,
}

impl Flat {
    pub fn new(model: &Function) -> Result<Flat> {
        let mut f = Flat {
            vals: Vec::new(),
            nodes: Vec::new(),
            ctxs: vec![Ctx {
                parent: 0,
                op_name: String::new(),
                label: String::new(),
                args: HashMap::new(),
                prefix: String::new(),
            }],
            roots: Vec::new(),
            root_vars: model.outputs(),
            leaf_vals: HashMap::new(),
            fn_nodes: HashMap::new(),
            block_ctx: HashMap::new(),
        };
        for v in model.outputs() {
            let i = f.val_of(&v, 0)?;
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
        if let Some(outer) = self.ctxs[ctx].args.get(&v.key()).cloned() {
            let parent = self.ctxs[ctx].parent;
            return self.val_of(&outer, parent);
        }
        let r = v.resolve();
        if r.key() != v.key() {
            return self.val_of(&r, ctx);
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
                let key = (ctx, f.id());
                let bctx = match self.block_ctx.get(&key) {
                    Some(&c) => c,
                    None => {
                        let prefix = format!("{}{}/", self.ctxs[ctx].prefix, f.label());
                        self.ctxs.push(Ctx {
                            parent: ctx,
                            op_name: op_name.clone(),
                            label: f.label(),
                            args: args
                                .iter()
                                .map(|a| a.key())
                                .zip(f.inputs().iter().cloned())
                                .collect(),
                            prefix,
                        });
                        let c = self.ctxs.len() - 1;
                        self.block_ctx.insert(key, c);
                        c
                    }
                };
                let o = body.outputs()[index].clone();
                self.val_of(&o, bctx)
            }
            FnKind::Primitive(op) => {
                let key = (ctx, f.id());
                if let Some(&n) = self.fn_nodes.get(&key) {
                    return Ok(self.nodes[n].out);
                }
                let n = self.nodes.len();
                let name = format!("{}{}", self.ctxs[ctx].prefix, f.label());
                let out = self.new_val(Src::Node(n), v, name.clone());
                self.nodes.push(Node {
                    op: op.clone(),
                    name,
                    ins: Vec::new(),
                    out,
                    ctx,
                });
                // Registered before the operands, so a loop back to this function finds it.
                self.fn_nodes.insert(key, n);
                let mut ins = Vec::with_capacity(f.inputs().len());
                for i in f.inputs() {
                    ins.push(self.val_of(i, ctx)?);
                }
                self.nodes[n].ins = ins;
                Ok(out)
            }
        }
    }

    /// The node producing value `v`, if any.
    pub fn producer(&self, v: usize) -> Option<usize> {
        match self.vals[v].src {
            Src::Node(n) => Some(n),
            _ => None,
        }
    }

    /// "in block LSTM 'lstm' in block Recurrence ''": where a node sits, for messages.
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

    /// Strongly connected components of the node graph, each after the components it
    /// depends on (iterative Tarjan).
    pub fn components(&self) -> Vec<Vec<usize>> {
        let count = self.nodes.len();
        let deps: Vec<Vec<usize>> = (0..count)
            .map(|n| {
                self.nodes[n]
                    .ins
                    .iter()
                    .filter_map(|&s| self.producer(s))
                    .collect()
            })
            .collect();
        let mut index = vec![usize::MAX; count];
        let mut low = vec![0; count];
        let mut on_stack = vec![false; count];
        let mut stack = Vec::new();
        let mut next = 0;
        let mut out = Vec::new();
        for start in 0..count {
            if index[start] != usize::MAX {
                continue;
            }
            let mut work: Vec<(usize, usize)> = vec![(start, 0)];
            index[start] = next;
            low[start] = next;
            next += 1;
            stack.push(start);
            on_stack[start] = true;
            while let Some(&mut (v, ref mut k)) = work.last_mut() {
                if *k < deps[v].len() {
                    let w = deps[v][*k];
                    *k += 1;
                    if index[w] == usize::MAX {
                        index[w] = next;
                        low[w] = next;
                        next += 1;
                        stack.push(w);
                        on_stack[w] = true;
                        work.push((w, 0));
                    } else if on_stack[w] {
                        low[v] = low[v].min(index[w]);
                    }
                } else {
                    work.pop();
                    if let Some(&(p, _)) = work.last() {
                        low[p] = low[p].min(low[v]);
                    }
                    if low[v] == index[v] {
                        let mut comp = Vec::new();
                        while let Some(w) = stack.pop() {
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

    /// Whether a component is a recurrent loop (several nodes, or one reading itself).
    pub fn is_loop(&self, comp: &[usize]) -> bool {
        comp.len() > 1
            || self.nodes[comp[0]]
                .ins
                .iter()
                .any(|&s| self.producer(s) == Some(comp[0]))
    }
}

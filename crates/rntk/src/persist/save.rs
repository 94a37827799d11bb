//! Graph → description: every function and leaf reachable from a root (through
//! inputs, block bodies and arguments, composite outputs and placeholder
//! replacements), functions listed after everything they use, and the values of
//! parameters and constants as named tensors.

use super::graph_format::*;
use crate::error::{Error, Result};
use crate::graph::{Axis, DynamicAxes, FnKind, Function, VarInfo, VarKey, VarKind, Variable};
use crate::tensor::{DType, Tensor};
use std::collections::{HashMap, HashSet};

/// A description of a graph together with the tensors it names.
pub(crate) struct Described {
    pub desc: GraphDesc,
    pub tensors: Vec<(String, Tensor)>,
}

enum Item {
    Var(Variable),
    Fn(Function),
    Done(Function),
}

#[derive(Default)]
struct Collector {
    leaves: Vec<Variable>,
    leaf_index: HashMap<VarKey, usize>,
    fns: Vec<Function>,
    fn_index: HashMap<u64, usize>,
    entered: HashSet<u64>,
    /// Replacements of placeholders, walked once the current walk is finished (they
    /// close loops, so they are not dependencies in the listing order).
    deferred: Vec<Variable>,
}

/// The placeholder's direct replacement (one step, not resolved further).
fn binding_of(v: &Variable) -> Option<Variable> {
    let leaf = v.as_leaf()?;
    if leaf.kind != VarKind::Placeholder {
        return None;
    }
    let g = leaf.binding.read().unwrap_or_else(|e| e.into_inner());
    g.clone()
}

impl Collector {
    /// Iterative post-order walk: a function is listed after everything it uses.
    fn walk(&mut self, start: Item) {
        let mut stack = vec![start];
        while let Some(item) = stack.pop() {
            match item {
                Item::Var(v) => match v.owner() {
                    Some(f) => stack.push(Item::Fn(f)),
                    None => {
                        if self.leaf_index.contains_key(&v.key()) {
                            continue;
                        }
                        self.leaf_index.insert(v.key(), self.leaves.len());
                        if let Some(b) = binding_of(&v) {
                            self.deferred.push(b);
                        }
                        self.leaves.push(v);
                    }
                },
                Item::Fn(f) => {
                    if !self.entered.insert(f.id()) {
                        continue;
                    }
                    stack.push(Item::Done(f.clone()));
                    let mut deps: Vec<Item> = f.inputs().iter().cloned().map(Item::Var).collect();
                    if let FnKind::Block { body, args, .. } = f.kind() {
                        deps.push(Item::Fn(body.clone()));
                        deps.extend(args.iter().cloned().map(Item::Var));
                    }
                    stack.extend(deps.into_iter().rev());
                }
                Item::Done(f) => {
                    self.fn_index.insert(f.id(), self.fns.len());
                    self.fns.push(f);
                }
            }
        }
    }

    fn var_ref(&self, v: &Variable) -> Result<VarRef> {
        let missing = || {
            Error::Argument(format!(
                "saving: {} is used by the graph but was not reached while listing it",
                v.label()
            ))
        };
        match v.owner() {
            None => self
                .leaf_index
                .get(&v.key())
                .map(|&i| VarRef::Leaf(i))
                .ok_or_else(missing),
            Some(f) => self
                .fn_index
                .get(&f.id())
                .map(|&i| VarRef::Output(i, v.output_index()))
                .ok_or_else(missing),
        }
    }
}

#[derive(Default)]
struct AxisTable {
    axes: Vec<AxisDesc>,
    index: HashMap<Axis, usize>,
}

impl AxisTable {
    fn info(&mut self, i: &VarInfo) -> InfoDesc {
        let dynamic_axes = match &i.axes {
            DynamicAxes::None => AxesDesc::None,
            DynamicAxes::Batch => AxesDesc::Batch,
            DynamicAxes::Sequence(a) => {
                let next = self.axes.len();
                let k = *self.index.entry(a.clone()).or_insert(next);
                if k == next {
                    self.axes.push(AxisDesc {
                        name: a.name().to_string(),
                        default: *a == Axis::default_dynamic_axis(),
                    });
                }
                AxesDesc::Sequence(k)
            }
        };
        InfoDesc {
            shape: i.shape.clone(),
            dtype: match i.dtype {
                DType::F32 => DTypeDesc::Float32,
                DType::F64 => DTypeDesc::Float64,
            },
            dynamic_axes,
            is_sparse: i.is_sparse,
            needs_gradient: i.needs_gradient,
        }
    }
}

/// Describe `root` and everything it depends on.
pub(crate) fn describe(root: &Function) -> Result<Described> {
    let mut c = Collector::default();
    c.walk(Item::Fn(root.clone()));
    while let Some(v) = c.deferred.pop() {
        c.walk(Item::Var(v));
    }
    let mut axes = AxisTable::default();
    let mut variables = Vec::with_capacity(c.leaves.len());
    let mut tensors = Vec::new();
    for v in &c.leaves {
        let info = v.info();
        let kind = match v.kind() {
            VarKind::Input => LeafKind::Input,
            VarKind::Parameter => LeafKind::Parameter,
            VarKind::Constant => LeafKind::Constant,
            VarKind::Placeholder => LeafKind::Placeholder,
            VarKind::Output => {
                return Err(Error::Argument(format!(
                    "saving: {} is an output listed as a leaf",
                    v.label()
                )))
            }
        };
        let tensor = match kind {
            LeafKind::Parameter | LeafKind::Constant => {
                if info.shape.has_inferred() {
                    return Err(Error::invalid(
                        "saving a model",
                        format!(
                            "{:?} {} still has an inferred shape {}: connect it to an op \
                             (which fixes its size) before saving",
                            v.kind(),
                            v.label(),
                            info.shape
                        ),
                    ));
                }
                let key = v.uid();
                tensors.push((key.clone(), v.value()?));
                Some(key)
            }
            _ => None,
        };
        let replaced_by = match binding_of(v) {
            Some(b) => Some(c.var_ref(&b)?),
            None => None,
        };
        variables.push(LeafDesc {
            kind,
            uid: v.uid(),
            name: v.name(),
            info: axes.info(&info),
            tensor,
            replaced_by,
        });
    }
    let mut functions = Vec::with_capacity(c.fns.len());
    for f in &c.fns {
        let kind = match f.kind() {
            FnKind::Primitive(op) => FnKindDesc::Primitive(op.clone()),
            FnKind::Composite { .. } => FnKindDesc::Composite,
            FnKind::Block {
                op_name,
                body,
                args,
            } => FnKindDesc::Block {
                op_name: op_name.clone(),
                body: *c.fn_index.get(&body.id()).ok_or_else(|| {
                    Error::Argument(format!(
                        "saving: the body of block {} was not listed",
                        f.label()
                    ))
                })?,
                args: args
                    .iter()
                    .map(|a| match c.var_ref(a)? {
                        VarRef::Leaf(i) => Ok(i),
                        VarRef::Output(..) => Err(Error::Argument(format!(
                            "saving: argument {} of block {} is not a placeholder",
                            a.label(),
                            f.label()
                        ))),
                    })
                    .collect::<Result<_>>()?,
            },
        };
        functions.push(FunctionDesc {
            uid: f.uid().to_string(),
            name: f.name().to_string(),
            kind,
            inputs: f
                .inputs()
                .iter()
                .map(|v| c.var_ref(v))
                .collect::<Result<_>>()?,
            outputs: f.outputs().iter().map(|o| axes.info(&o.info())).collect(),
        });
    }
    let desc = GraphDesc {
        format: FORMAT.to_string(),
        version: VERSION,
        axes: axes.axes,
        variables,
        root: *c
            .fn_index
            .get(&root.id())
            .ok_or_else(|| Error::Argument("saving: the root was not listed".into()))?,
        outputs: root
            .outputs()
            .iter()
            .map(|v| c.var_ref(v))
            .collect::<Result<_>>()?,
        functions,
    };
    Ok(Described { desc, tensors })
}

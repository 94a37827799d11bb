//! Functions: primitive ops, composites (`combine`) and named blocks, with shape and
//! dynamic-axis inference at build time, placeholder replacement and cloning.

use super::ownership::{self, Item, LoopMark};
use super::variable::{next_id, VarKey, VarKind, Variable};
use crate::error::{Error, Result};
use crate::ops::Op;
use crate::ops::VarInfo;
use crate::tensor::Tensor;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::mem::ManuallyDrop;
use std::sync::Arc;

pub(crate) enum FnKind {
    Primitive(Op),
    /// A group of existing variables presented as one function's outputs.
    Composite {
        outputs: Vec<Variable>,
    },
    /// A named sub-graph (a layer): `body`'s placeholders `args[i]` stand for `inputs[i]`.
    Block {
        op_name: String,
        body: Function,
        args: Vec<Variable>,
    },
}

pub(crate) struct FnNode {
    pub id: u64,
    pub uid: String,
    pub name: String,
    pub kind: FnKind,
    pub inputs: Vec<Variable>,
    pub out_infos: Vec<VarInfo>,
    /// The recurrent loop this function is part of (see `graph::ownership`).
    pub mark: LoopMark,
}

impl FnNode {
    /// Move out every reference this node holds (operands, a composite's outputs, a
    /// block's body and argument placeholders) so that they are released from a work
    /// list, not recursively.
    pub(crate) fn take_children(&mut self, work: &mut Vec<Item>) {
        work.extend(
            std::mem::take(&mut self.inputs)
                .into_iter()
                .map(|v| Item::Var(v.into_arc())),
        );
        let empty = FnKind::Composite {
            outputs: Vec::new(),
        };
        match std::mem::replace(&mut self.kind, empty) {
            FnKind::Primitive(_) => {}
            FnKind::Composite { outputs } => {
                work.extend(outputs.into_iter().map(|v| Item::Var(v.into_arc())))
            }
            FnKind::Block { body, args, .. } => {
                work.push(Item::Fn(body.into_arc()));
                work.extend(args.into_iter().map(|v| Item::Var(v.into_arc())));
            }
        }
    }
}

/// A symbolic function. Cheap to clone; equality is identity.
///
/// A handle: it keeps the function, and everything it is computed from, alive. A
/// recurrent loop is freed when no handle (and no node outside the loop) refers to
/// any of its nodes; see `graph::ownership`.
pub struct Function(ManuallyDrop<Arc<FnNode>>);

impl Clone for Function {
    fn clone(&self) -> Self {
        let a = Arc::clone(&self.0);
        self.0.mark.new_reference();
        Function(ManuallyDrop::new(a))
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        // SAFETY: the field is taken exactly once, here, and never used again.
        let a = unsafe { ManuallyDrop::take(&mut self.0) };
        ownership::release(Item::Fn(a));
    }
}

/// How `Function::clone_with` treats parameters (CNTK's `CloneMethod`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloneMethod {
    /// The clone uses the very same parameters (training one trains both).
    Share,
    /// The clone gets new parameters holding a copy of the current values.
    Clone,
    /// Parameters become constants holding a copy of the current values.
    Freeze,
}

impl Function {
    /// Build a primitive function; shapes and dynamic axes are inferred now, and
    /// parameters with inferred dimensions get their size (and value) here.
    pub fn primitive(op: Op, inputs: &[Variable], name: &str) -> Result<Function> {
        let infos: Vec<VarInfo> = inputs.iter().map(|v| v.info()).collect();
        if let Some(first) = infos.first() {
            for (v, i) in inputs.iter().zip(&infos) {
                if i.dtype != first.dtype {
                    return Err(Error::DType {
                        context: format!("{} '{}' operand {}", op.name(), name, v.label()),
                        expected: first.dtype.to_string(),
                        got: i.dtype.to_string(),
                    });
                }
            }
        }
        // Shape rules multiply and add dimensions: every operand and every result
        // must be a sample size the limits allow (`crate::limits`), never a wrapped one.
        for (v, i) in inputs.iter().zip(&infos) {
            crate::limits::check_sample_shape(&i.shape).map_err(|d| {
                Error::shape(op.name(), name, format!("operand {}: {d}", v.label()))
            })?;
        }
        let inferred = op.infer(&infos, name)?;
        for (k, o) in inferred.outputs.iter().enumerate() {
            crate::limits::check_sample_shape(&o.shape)
                .map_err(|d| Error::shape(op.name(), name, format!("output {k}: {d}")))?;
        }
        for (idx, shape) in &inferred.resolved_inputs {
            inputs[*idx].resolve().resolve_inferred_shape(shape)?;
        }
        let id = next_id();
        Ok(Function::from_arc(Arc::new(FnNode {
            id,
            uid: format!("{}{id}", op.name()),
            name: name.to_string(),
            kind: FnKind::Primitive(op),
            inputs: inputs.to_vec(),
            out_infos: inferred.outputs,
            mark: LoopMark::default(),
        })))
    }

    /// A named block over `body`: each `(placeholder, outer)` pair feeds `outer` where
    /// the body uses `placeholder`.
    pub fn block(
        body: &Function,
        args: &[(Variable, Variable)],
        op_name: &str,
        name: &str,
    ) -> Result<Function> {
        for (ph, outer) in args {
            if !ph.is_placeholder() {
                return Err(Error::Argument(format!(
                    "block {op_name} '{name}': {} is not a placeholder",
                    ph.label()
                )));
            }
            let (a, b) = (ph.info(), outer.info());
            if a.shape != b.shape || a.axes != b.axes || a.dtype != b.dtype {
                return Err(Error::shape(
                    op_name,
                    name,
                    format!(
                        "argument {} is declared {}{} {} but {} is {}{} {}",
                        ph.label(),
                        a.axes.notation(),
                        a.shape,
                        a.dtype,
                        outer.label(),
                        b.axes.notation(),
                        b.shape,
                        b.dtype
                    ),
                ));
            }
        }
        let id = next_id();
        let node = Arc::new(FnNode {
            id,
            uid: format!("Block{id}"),
            name: name.to_string(),
            kind: FnKind::Block {
                op_name: op_name.to_string(),
                body: body.clone(),
                args: args.iter().map(|(p, _)| p.clone()).collect(),
            },
            inputs: args.iter().map(|(_, o)| o.clone()).collect(),
            out_infos: body.outputs().iter().map(|v| v.info()).collect(),
            mark: LoopMark::default(),
        });
        for (i, (ph, _)) in args.iter().enumerate() {
            ph.set_block_arg(&node, i);
        }
        Ok(Function::from_arc(node))
    }

    /// CNTK's `combine`: one function whose outputs are the given variables.
    pub fn combine(outputs: &[Variable], name: &str) -> Result<Function> {
        if outputs.is_empty() {
            return Err(Error::Argument(
                "combine needs at least one variable".into(),
            ));
        }
        let id = next_id();
        Ok(Function::from_arc(Arc::new(FnNode {
            id,
            uid: format!("Combine{id}"),
            name: name.to_string(),
            out_infos: outputs.iter().map(|v| v.info()).collect(),
            inputs: outputs.to_vec(),
            kind: FnKind::Composite {
                outputs: outputs.to_vec(),
            },
            mark: LoopMark::default(),
        })))
    }

    /// `combine` that also holds `hidden` values: not outputs (nothing computes them
    /// unless they are asked for), but part of the graph for name lookup
    /// (`find_by_name`), saving and cloning — what a fused op keeps beside its output
    /// (`AttentionModel`'s `attention_weights`).
    pub fn combine_with_hidden(
        outputs: &[Variable],
        hidden: &[Variable],
        name: &str,
    ) -> Result<Function> {
        let f = Function::combine(outputs, name)?;
        if hidden.is_empty() {
            return Ok(f);
        }
        let id = next_id();
        Ok(Function::from_arc(Arc::new(FnNode {
            id,
            uid: format!("Combine{id}"),
            name: name.to_string(),
            out_infos: outputs.iter().map(|v| v.info()).collect(),
            inputs: outputs.iter().chain(hidden).cloned().collect(),
            kind: FnKind::Composite {
                outputs: outputs.to_vec(),
            },
            mark: LoopMark::default(),
        })))
    }

    /// A composite's hidden values (see [`Function::combine_with_hidden`]).
    pub fn hidden(&self) -> &[Variable] {
        match &self.0.kind {
            FnKind::Composite { outputs } => &self.0.inputs[outputs.len()..],
            _ => &[],
        }
    }

    /// Wrap a reference the caller already counted (a new node, an upgraded `Weak`).
    pub(crate) fn from_arc(a: Arc<FnNode>) -> Function {
        Function(ManuallyDrop::new(a))
    }

    /// Give up the handle without releasing it: the caller releases the reference.
    pub(crate) fn into_arc(self) -> Arc<FnNode> {
        let mut me = ManuallyDrop::new(self);
        // SAFETY: `me` is never dropped, so the field is moved out exactly once.
        unsafe { ManuallyDrop::take(&mut me.0) }
    }

    pub(crate) fn node(&self) -> &Arc<FnNode> {
        &self.0
    }

    pub(crate) fn id(&self) -> u64 {
        self.0.id
    }
    pub fn uid(&self) -> &str {
        &self.0.uid
    }
    pub fn name(&self) -> &str {
        &self.0.name
    }
    /// A name for messages: the name if there is one, else the uid.
    pub fn label(&self) -> String {
        if self.0.name.is_empty() {
            self.0.uid.clone()
        } else {
            self.0.name.clone()
        }
    }
    /// The op name: a primitive's CNTK op name, a block's op name, or "Combine".
    pub fn op_name(&self) -> String {
        match &self.0.kind {
            FnKind::Primitive(op) => op.name().to_string(),
            FnKind::Block { op_name, .. } => op_name.clone(),
            FnKind::Composite { .. } => "Combine".into(),
        }
    }
    pub(crate) fn kind(&self) -> &FnKind {
        &self.0.kind
    }
    pub fn primitive_op(&self) -> Option<&Op> {
        match &self.0.kind {
            FnKind::Primitive(op) => Some(op),
            _ => None,
        }
    }
    pub fn is_block(&self) -> bool {
        matches!(self.0.kind, FnKind::Block { .. })
    }
    /// The block's inner composite.
    pub fn block_root(&self) -> Option<Function> {
        match &self.0.kind {
            FnKind::Block { body, .. } => Some(body.clone()),
            _ => None,
        }
    }
    /// The operands, in order (placeholders as they were given).
    pub fn inputs(&self) -> &[Variable] {
        &self.0.inputs
    }
    pub(crate) fn output_info(&self, index: usize) -> VarInfo {
        match &self.0.kind {
            FnKind::Composite { outputs } => outputs[index].info(),
            _ => self.0.out_infos[index].clone(),
        }
    }
    /// The output variables.
    pub fn outputs(&self) -> Vec<Variable> {
        match &self.0.kind {
            FnKind::Composite { outputs } => outputs.clone(),
            _ => (0..self.0.out_infos.len())
                .map(|i| Variable::output_of(self.clone(), i))
                .collect(),
        }
    }
    /// The single output; an error if there are several.
    pub fn output(&self) -> Result<Variable> {
        let outs = self.outputs();
        if outs.len() != 1 {
            return Err(Error::Argument(format!(
                "{} '{}' has {} outputs; pick one with outputs()",
                self.op_name(),
                self.label(),
                outs.len()
            )));
        }
        Ok(outs.into_iter().next().expect("one output"))
    }

    /// Visit every variable reachable from the outputs once, depth first, following
    /// placeholder replacements and descending into block bodies. Block-argument
    /// placeholders are not reported (their outer operand is).
    ///
    /// `follow_blocks`: a block's argument placeholder reached outside its block (the
    /// body of a block, or a node found inside one, walked on its own) stands for the
    /// block's operand, which is walked instead — what evaluating it needs (its
    /// arguments). Without it (parameters, constants) the walk stays inside.
    fn walk(&self, follow_blocks: bool, mut visit: impl FnMut(&Variable)) {
        let mut seen_vars: HashSet<VarKey> = HashSet::new();
        let mut seen_fns: HashSet<u64> = HashSet::new();
        let mut block_args: HashSet<VarKey> = HashSet::new();
        let mut stack: Vec<Variable> = self.outputs();
        stack.reverse();
        while let Some(v) = stack.pop() {
            if !seen_vars.insert(v.key()) {
                continue;
            }
            let r = v.resolve();
            // a block's argument reached outside it (a node found inside a block)
            // stands for the block's operand
            let outer = (follow_blocks && r.key() == v.key())
                .then(|| v.block_operand())
                .flatten();
            if !block_args.contains(&v.key()) && outer.is_none() {
                visit(&v);
            }
            if r.key() != v.key() {
                stack.push(r);
                continue;
            }
            if let Some(outer) = outer {
                stack.push(outer);
                continue;
            }
            if let Some(f) = v.owner() {
                if !seen_fns.insert(f.id()) {
                    continue;
                }
                if let FnKind::Block { body, args, .. } = &f.0.kind {
                    for a in args {
                        block_args.insert(a.key());
                    }
                    stack.extend(body.outputs().into_iter().rev());
                }
                stack.extend(f.0.inputs.iter().rev().cloned());
            }
        }
    }

    /// Learnable parameters, in first-visit order.
    pub fn parameters(&self) -> Vec<Variable> {
        let mut out = Vec::new();
        self.walk(false, |v| {
            if v.kind() == VarKind::Parameter {
                out.push(v.clone())
            }
        });
        out
    }
    /// Constants, in first-visit order.
    pub fn constants(&self) -> Vec<Variable> {
        let mut out = Vec::new();
        self.walk(false, |v| {
            if v.kind() == VarKind::Constant {
                out.push(v.clone())
            }
        });
        out
    }
    /// Inputs that must be fed (input variables and unreplaced placeholders; a block's
    /// argument placeholder reached outside its block stands for the block's operand).
    pub fn arguments(&self) -> Vec<Variable> {
        let mut out = Vec::new();
        self.walk(true, |v| {
            let unbound_ph = v.is_placeholder() && v.resolve().key() == v.key();
            if v.kind() == VarKind::Input || unbound_ph {
                out.push(v.clone())
            }
        });
        out
    }
    /// Placeholders not replaced yet.
    pub fn placeholders(&self) -> Vec<Variable> {
        let mut out = Vec::new();
        self.walk(false, |v| {
            if v.is_placeholder() && v.resolve().key() == v.key() {
                out.push(v.clone())
            }
        });
        out
    }

    /// CNTK's `find_all_with_name`: every function named `name` that this one depends
    /// on (itself included), in first-visit order. `depth` is how many levels of
    /// blocks to look inside: `Some(0)` (CNTK's default) sees the blocks but not their
    /// bodies, `None` looks all the way down.
    pub fn find_all_with_name(&self, name: &str, depth: Option<usize>) -> Vec<Function> {
        let mut found = Vec::new();
        let mut seen: HashSet<u64> = HashSet::new();
        let mut stack: Vec<(Function, usize)> = vec![(self.clone(), 0)];
        while let Some((f, level)) = stack.pop() {
            if !seen.insert(f.id()) {
                continue;
            }
            if f.name() == name {
                found.push(f.clone());
            }
            let mut next: Vec<(Function, usize)> = Vec::new();
            if let FnKind::Block { body, .. } = &f.0.kind {
                if depth.is_none_or(|d| level < d) {
                    next.push((body.clone(), level + 1));
                }
            }
            for v in f.inputs() {
                if let Some(g) = v.resolve().owner() {
                    next.push((g, level));
                }
            }
            stack.extend(next.into_iter().rev());
        }
        found
    }

    /// CNTK's `find_by_name`: the one function named `name` (see
    /// [`Function::find_all_with_name`] for `depth`); `None` if there is none, an
    /// error naming the candidates if there are several.
    /// A function found inside a block evaluates as it does within the whole graph:
    /// the block's argument placeholders stand for the block's operands
    /// (`Variable::block_operand`).
    pub fn find_by_name(&self, name: &str, depth: Option<usize>) -> Result<Option<Function>> {
        let mut all = self.find_all_with_name(name, depth);
        match all.len() {
            0 | 1 => Ok(all.pop()),
            n => Err(Error::Argument(format!(
                "find_by_name: {n} functions are named '{name}' ({}); use find_all_with_name",
                all.iter()
                    .map(|f| format!("{} {}", f.op_name(), f.uid()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// Replace placeholders by variables (closing recurrent loops). Each replacement
    /// must have the placeholder's shape, dtype and dynamic axes. Nothing is replaced
    /// unless every pair is valid. The loops this closes are recorded so that they are
    /// freed once nothing outside them refers to them (see `graph::ownership`).
    pub fn replace_placeholders(&self, map: &[(Variable, Variable)]) -> Result<Function> {
        let _closing = ownership::closing_lock();
        let mut pending: HashMap<VarKey, Variable> = HashMap::new();
        for (ph, by) in map {
            check_replacement(ph, by)?;
            if pending.insert(ph.key(), by.clone()).is_some() {
                return Err(Error::Argument(format!(
                    "replace_placeholders: placeholder {} is listed twice",
                    ph.label()
                )));
            }
        }
        for (ph, by) in map {
            if replaces_itself(ph, by, &pending) {
                return Err(Error::Argument(format!(
                    "replace_placeholders: placeholder {} would stand for itself \
                     (its replacement {} resolves back to it through placeholders)",
                    ph.label(),
                    by.label()
                )));
            }
        }
        for (ph, by) in map {
            if let Some(leaf) = ph.as_leaf() {
                *leaf.binding.write().unwrap_or_else(|e| e.into_inner()) = Some(by.clone());
            }
        }
        let bound: Vec<Variable> = map.iter().map(|(ph, _)| ph.clone()).collect();
        ownership::close_loops(&bound);
        Ok(self.clone())
    }

    /// A copy of this graph. `substitutions` replace variables (typically inputs or
    /// placeholders) by others; parameters follow `method`.
    pub fn clone_with(
        &self,
        method: CloneMethod,
        substitutions: &[(Variable, Variable)],
    ) -> Result<Function> {
        let mut c = Cloner {
            method,
            vars: substitutions
                .iter()
                .map(|(a, b)| (a.key(), b.clone()))
                .collect(),
            fns: HashMap::new(),
            closed: Vec::new(),
        };
        let outs = self
            .outputs()
            .iter()
            .map(|v| c.var(v))
            .collect::<Result<Vec<_>>>();
        // The loops the copy closed (also when it failed half way, so they are freed).
        {
            let _closing = ownership::closing_lock();
            ownership::close_loops(&c.closed);
        }
        let outs = outs?;
        match &self.0.kind {
            FnKind::Composite { .. } => Function::combine(&outs, self.name()),
            _ => outs[0]
                .owner()
                .ok_or_else(|| Error::Argument("clone produced no function".into())),
        }
    }
}

/// A replacement must be for an unreplaced placeholder, of its shape, dtype and axes.
fn check_replacement(ph: &Variable, by: &Variable) -> Result<()> {
    let leaf = match ph.as_leaf() {
        Some(l) if l.kind == VarKind::Placeholder => l,
        _ => {
            return Err(Error::Argument(format!(
                "replace_placeholders: {} is not a placeholder",
                ph.label()
            )))
        }
    };
    let (a, b) = (ph.info(), by.info());
    if a.shape != b.shape || a.axes != b.axes || a.dtype != b.dtype {
        return Err(Error::Shape {
            op: "replace_placeholders".into(),
            name: ph.label(),
            detail: format!(
                "placeholder is {}{} {} but its replacement {} is {}{} {}",
                a.axes.notation(),
                a.shape,
                a.dtype,
                by.label(),
                b.axes.notation(),
                b.shape,
                b.dtype
            ),
        });
    }
    if leaf
        .binding
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .is_some()
    {
        return Err(Error::Argument(format!(
            "placeholder {} was already replaced",
            ph.label()
        )));
    }
    Ok(())
}

/// Whether `by`, followed through placeholder replacements (existing and `pending`),
/// comes back to `ph`: the placeholder would stand for itself.
fn replaces_itself(ph: &Variable, by: &Variable, pending: &HashMap<VarKey, Variable>) -> bool {
    let mut seen = HashSet::new();
    let mut v = by.clone();
    while seen.insert(v.key()) {
        if v.key() == ph.key() {
            return true;
        }
        let next = match v.as_leaf() {
            Some(l) if l.kind == VarKind::Placeholder => l
                .binding
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
                .or_else(|| pending.get(&v.key()).cloned()),
            _ => None,
        };
        match next {
            Some(n) => v = n,
            None => return false,
        }
    }
    // A cycle of placeholders not through `ph`: refused when one of them is bound.
    true
}

struct Cloner {
    method: CloneMethod,
    vars: HashMap<VarKey, Variable>,
    fns: HashMap<u64, Function>,
    /// Placeholders of the copy bound to their replacements (loops to record).
    closed: Vec<Variable>,
}

impl Cloner {
    fn var(&mut self, v: &Variable) -> Result<Variable> {
        if let Some(n) = self.vars.get(&v.key()) {
            return Ok(n.clone());
        }
        let out = match v.kind() {
            VarKind::Input | VarKind::Constant => v.clone(),
            VarKind::Parameter => match self.method {
                CloneMethod::Share => v.clone(),
                CloneMethod::Clone => {
                    let t: Tensor = v.value()?;
                    Variable::leaf(VarKind::Parameter, v.info(), &v.name(), Some(t), None)
                }
                CloneMethod::Freeze => {
                    let t: Tensor = v.value()?;
                    let mut info = v.info();
                    info.needs_gradient = false;
                    Variable::leaf(VarKind::Constant, info, &v.name(), Some(t), None)
                }
            },
            VarKind::Placeholder => {
                let target = v.resolve();
                if target.key() == v.key() {
                    v.clone()
                } else {
                    // A closed loop: clone the placeholder first so the cycle can refer to it.
                    let ph = Variable::leaf(VarKind::Placeholder, v.info(), &v.name(), None, None);
                    self.vars.insert(v.key(), ph.clone());
                    let t = self.var(&target)?;
                    if let Some(l) = ph.as_leaf() {
                        *l.binding.write().unwrap_or_else(|e| e.into_inner()) = Some(t);
                    }
                    self.closed.push(ph.clone());
                    return Ok(ph);
                }
            }
            VarKind::Output => {
                let f = v.owner().expect("output has an owner");
                let nf = self.function(&f)?;
                nf.outputs()[v.output_index()].clone()
            }
        };
        self.vars.insert(v.key(), out.clone());
        Ok(out)
    }

    fn function(&mut self, f: &Function) -> Result<Function> {
        if let Some(n) = self.fns.get(&f.id()) {
            return Ok(n.clone());
        }
        let inputs = f
            .inputs()
            .iter()
            .map(|v| self.var(v))
            .collect::<Result<Vec<_>>>()?;
        let nf = match f.kind() {
            FnKind::Primitive(op) => Function::primitive(op.clone(), &inputs, f.name())?,
            FnKind::Composite { outputs } => {
                let (outs, hidden) = inputs.split_at(outputs.len().min(inputs.len()));
                Function::combine_with_hidden(outs, hidden, f.name())?
            }
            FnKind::Block {
                op_name,
                body,
                args,
            } => {
                // Block arguments become new placeholders of the cloned body (each
                // block's arguments stand for its own operands: `block_operand`).
                let fresh: Vec<Variable> = args
                    .iter()
                    .map(|a| Variable::leaf(VarKind::Placeholder, a.info(), &a.name(), None, None))
                    .collect();
                let mut sub = Cloner {
                    method: self.method,
                    vars: args
                        .iter()
                        .map(|a| a.key())
                        .zip(fresh.iter().cloned())
                        .collect(),
                    fns: HashMap::new(),
                    closed: Vec::new(),
                };
                let outs = body
                    .outputs()
                    .iter()
                    .chain(body.hidden())
                    .map(|v| sub.var(v))
                    .collect::<Result<Vec<_>>>();
                self.closed.append(&mut sub.closed);
                let outs = outs?;
                let (outs, hidden) = outs.split_at(body.outputs().len());
                let nbody = Function::combine_with_hidden(outs, hidden, body.name())?;
                let pairs: Vec<(Variable, Variable)> =
                    fresh.into_iter().zip(inputs.iter().cloned()).collect();
                Function::block(&nbody, &pairs, op_name, f.name())?
            }
        };
        self.fns.insert(f.id(), nf.clone());
        Ok(nf)
    }
}

/// Dropping a graph frees its nodes one by one from a work list, not recursively, so
/// graphs of any depth (long unrolled chains, loaded models) can be dropped on a
/// small thread stack.
impl Drop for FnNode {
    fn drop(&mut self) {
        let mut work = Vec::new();
        self.take_children(&mut work);
        ownership::release_all(work);
    }
}

impl PartialEq for Function {
    fn eq(&self, other: &Self) -> bool {
        self.id() == other.id()
    }
}
impl Eq for Function {}

impl fmt::Debug for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}('{}') -> [", self.op_name(), self.label())?;
        for (i, o) in self.outputs().iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            let inf = o.info();
            write!(f, "{}{}", inf.axes.notation(), inf.shape)?;
        }
        f.write_str("]")
    }
}

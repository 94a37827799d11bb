//! Variables: the typed, named edges of a graph — inputs, parameters, constants,
//! placeholders and function outputs.

use super::function::{FnNode, Function};
use super::ownership::{self, Item, LoopMark};
use crate::error::{Error, Result};
use crate::initializer::Initializer;
use crate::ops::VarInfo;
use crate::tensor::{DType, DynamicAxes, Shape, Tensor};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

pub(crate) fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// What a variable is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VarKind {
    Input,
    Output,
    Parameter,
    Constant,
    Placeholder,
}

/// Stable identity of a variable: a leaf's id, or (owner function id, output index).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VarKey {
    Leaf(u64),
    Output(u64, usize),
}

pub(crate) struct Leaf {
    pub id: u64,
    pub uid: String,
    pub name: String,
    pub kind: VarKind,
    pub info: RwLock<VarInfo>,
    /// Parameter / constant data, shared by every clone that shares parameters.
    pub value: Option<Arc<RwLock<Tensor>>>,
    /// How a parameter with inferred dimensions is filled once they are known.
    pub init: Option<Initializer>,
    /// What a placeholder has been replaced by.
    pub binding: RwLock<Option<Variable>>,
    /// The block (and operand index) this placeholder is an argument of: outside that
    /// block's body it stands for the block's operand, as CNTK's block arguments do
    /// (`BlockFunctionVariableMapping`), so a node found by name inside a block
    /// evaluates as it does within the whole graph. Weak: the block owns its body.
    pub block_arg: RwLock<Option<(Weak<FnNode>, usize)>>,
    /// The recurrent loop this placeholder closes (see `graph::ownership`).
    pub mark: LoopMark,
}

#[allow(clippy::large_enum_variant)]
pub(crate) enum VarNode {
    Leaf(Box<Leaf>),
    Output {
        owner: Function,
        index: usize,
        mark: LoopMark,
    },
}

impl VarNode {
    pub(crate) fn mark(&self) -> &LoopMark {
        match self {
            VarNode::Leaf(l) => &l.mark,
            VarNode::Output { mark, .. } => mark,
        }
    }

    /// Move out the references this node holds (its owner, a placeholder's
    /// replacement) so that they are released from a work list, not recursively.
    pub(crate) fn take_children(self, work: &mut Vec<Item>) {
        match self {
            VarNode::Output { owner, .. } => work.push(Item::Fn(owner.into_arc())),
            VarNode::Leaf(leaf) => {
                let b = leaf.binding.into_inner().unwrap_or_else(|e| e.into_inner());
                work.extend(b.map(|v| Item::Var(v.into_arc())));
            }
        }
    }
}

/// A symbolic variable. Cheap to clone; equality is identity.
///
/// A handle: it keeps its node, and everything the node is computed from, alive. A
/// recurrent loop is freed when no handle (and no node outside the loop) refers to
/// any of its nodes; see `graph::ownership`.
pub struct Variable(ManuallyDrop<Arc<VarNode>>);

impl Clone for Variable {
    fn clone(&self) -> Self {
        let a = Arc::clone(&self.0);
        self.0.mark().new_reference();
        Variable(ManuallyDrop::new(a))
    }
}

impl Drop for Variable {
    fn drop(&mut self) {
        // SAFETY: the field is taken exactly once, here, and never used again.
        let a = unsafe { ManuallyDrop::take(&mut self.0) };
        ownership::release(Item::Var(a));
    }
}

impl Variable {
    pub(crate) fn leaf(
        kind: VarKind,
        info: VarInfo,
        name: &str,
        value: Option<Tensor>,
        init: Option<Initializer>,
    ) -> Variable {
        let id = next_id();
        let prefix = match kind {
            VarKind::Input => "Input",
            VarKind::Parameter => "Parameter",
            VarKind::Constant => "Constant",
            VarKind::Placeholder => "Placeholder",
            VarKind::Output => "Output",
        };
        Variable::from_arc(Arc::new(VarNode::Leaf(Box::new(Leaf {
            id,
            uid: format!("{prefix}{id}"),
            name: name.to_string(),
            kind,
            info: RwLock::new(info),
            value: value.map(|t| Arc::new(RwLock::new(t))),
            init,
            binding: RwLock::new(None),
            block_arg: RwLock::new(None),
            mark: LoopMark::default(),
        }))))
    }

    pub(crate) fn output_of(owner: Function, index: usize) -> Variable {
        Variable::from_arc(Arc::new(VarNode::Output {
            owner,
            index,
            mark: LoopMark::default(),
        }))
    }

    /// Wrap a reference the caller already counted (a new node, an upgraded `Weak`).
    pub(crate) fn from_arc(a: Arc<VarNode>) -> Variable {
        Variable(ManuallyDrop::new(a))
    }

    /// Give up the handle without releasing it: the caller releases the reference.
    pub(crate) fn into_arc(self) -> Arc<VarNode> {
        let mut me = ManuallyDrop::new(self);
        // SAFETY: `me` is never dropped, so the field is moved out exactly once.
        unsafe { ManuallyDrop::take(&mut me.0) }
    }

    pub(crate) fn node(&self) -> &Arc<VarNode> {
        &self.0
    }

    pub fn key(&self) -> VarKey {
        match &**self.0 {
            VarNode::Leaf(l) => VarKey::Leaf(l.id),
            VarNode::Output { owner, index, .. } => VarKey::Output(owner.id(), *index),
        }
    }

    pub fn kind(&self) -> VarKind {
        match &**self.0 {
            VarNode::Leaf(l) => l.kind,
            VarNode::Output { .. } => VarKind::Output,
        }
    }

    pub fn is_parameter(&self) -> bool {
        self.kind() == VarKind::Parameter
    }
    pub fn is_input(&self) -> bool {
        self.kind() == VarKind::Input
    }
    pub fn is_placeholder(&self) -> bool {
        self.kind() == VarKind::Placeholder
    }

    /// CNTK-style unique id: `Input3`, `Parameter7`, `Times12_Output_0`.
    pub fn uid(&self) -> String {
        match &**self.0 {
            VarNode::Leaf(l) => l.uid.clone(),
            VarNode::Output { owner, index, .. } => format!("{}_Output_{index}", owner.uid()),
        }
    }

    /// The user's name; an output takes its function's name.
    pub fn name(&self) -> String {
        match &**self.0 {
            VarNode::Leaf(l) => l.name.clone(),
            VarNode::Output { owner, .. } => owner.name().to_string(),
        }
    }

    /// A name for messages: the name if there is one, else the uid.
    pub fn label(&self) -> String {
        let n = self.name();
        if n.is_empty() {
            self.uid()
        } else {
            n
        }
    }

    pub fn info(&self) -> VarInfo {
        match &**self.0 {
            VarNode::Leaf(l) => l.info.read().expect("variable info lock").clone(),
            VarNode::Output { owner, index, .. } => owner.output_info(*index),
        }
    }
    pub fn shape(&self) -> Shape {
        self.info().shape
    }
    pub fn dtype(&self) -> DType {
        self.info().dtype
    }
    pub fn dynamic_axes(&self) -> DynamicAxes {
        self.info().axes
    }
    pub fn is_sparse(&self) -> bool {
        self.info().is_sparse
    }
    pub fn needs_gradient(&self) -> bool {
        self.info().needs_gradient
    }

    /// The function this variable is an output of.
    pub fn owner(&self) -> Option<Function> {
        match &**self.0 {
            VarNode::Output { owner, .. } => Some(owner.clone()),
            _ => None,
        }
    }
    pub(crate) fn output_index(&self) -> usize {
        match &**self.0 {
            VarNode::Output { index, .. } => *index,
            _ => 0,
        }
    }

    pub(crate) fn as_leaf(&self) -> Option<&Leaf> {
        match &**self.0 {
            VarNode::Leaf(l) => Some(l),
            _ => None,
        }
    }

    /// Follow placeholder replacements to the variable that really feeds this edge.
    pub fn resolve(&self) -> Variable {
        let mut v = self.clone();
        // Bounded: a chain of replacements cannot be longer than the number of placeholders.
        for _ in 0..1_000_000 {
            let next = match v.as_leaf() {
                Some(l) if l.kind == VarKind::Placeholder => {
                    l.binding.read().expect("binding lock").clone()
                }
                _ => None,
            };
            match next {
                Some(n) => v = n,
                None => return v,
            }
        }
        v
    }

    /// For a placeholder that is an argument of a block (the first one made with it
    /// that is still alive) and was never replaced: the block's operand it stands for.
    pub fn block_operand(&self) -> Option<Variable> {
        let leaf = self.as_leaf().filter(|l| l.kind == VarKind::Placeholder)?;
        let (w, i) = leaf
            .block_arg
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()?;
        let block = w.upgrade()?;
        block.mark.new_reference();
        let block = Function::from_arc(block);
        block.inputs().get(i).cloned()
    }

    /// Record that this placeholder is argument `index` of `block` (unless a live
    /// block already has it: a body shared by several blocks maps to the first).
    pub(crate) fn set_block_arg(&self, block: &Arc<FnNode>, index: usize) {
        if let Some(leaf) = self.as_leaf() {
            let mut g = leaf.block_arg.write().unwrap_or_else(|e| e.into_inner());
            if g.as_ref().is_none_or(|(w, _)| w.strong_count() == 0) {
                *g = Some((Arc::downgrade(block), index));
            }
        }
    }

    /// The current value of a parameter or constant, on the host.
    pub fn value(&self) -> Result<Tensor> {
        match self.as_leaf().and_then(|l| l.value.as_ref()) {
            Some(v) => Ok(v.read().expect("parameter lock").to_host()),
            None => Err(Error::Argument(format!(
                "{} is a {:?}, which has no stored value",
                self.label(),
                self.kind()
            ))),
        }
    }

    /// The shared storage of a parameter or constant (learners update it in place).
    pub fn storage(&self) -> Option<Arc<RwLock<Tensor>>> {
        self.as_leaf().and_then(|l| l.value.clone())
    }

    /// Overwrite a parameter's value; shape and dtype must match.
    pub fn set_value(&self, t: Tensor) -> Result<()> {
        let slot = self.storage().ok_or_else(|| {
            Error::Argument(format!("{} has no stored value to set", self.label()))
        })?;
        let mut g = slot.write().expect("parameter lock");
        if g.shape() != t.shape() || g.dtype() != t.dtype() {
            return Err(Error::invalid(
                format!("set_value of {}", self.label()),
                format!(
                    "expected {} {}, got {} {}",
                    g.dtype(),
                    g.shape(),
                    t.dtype(),
                    t.shape()
                ),
            ));
        }
        *g = t;
        Ok(())
    }

    /// Fix the inferred dimensions of a parameter and create its value.
    pub(crate) fn resolve_inferred_shape(&self, shape: &Shape) -> Result<()> {
        let leaf = self
            .as_leaf()
            .ok_or_else(|| Error::Argument(format!("{} is not a parameter", self.label())))?;
        let mut info = leaf.info.write().expect("variable info lock");
        if !info.shape.has_inferred() {
            return Ok(());
        }
        // Same rank with known dims kept; or (CNTK's infer_input_rank_to_map) one
        // leading inferred axis standing for several input axes, known suffix kept.
        let (d, n) = (info.shape.dims(), shape.dims());
        let same_rank = d.len() == n.len()
            && d.iter()
                .zip(n)
                .all(|(&a, &b)| a == crate::tensor::INFERRED || a == b);
        let expanded = d.len() < n.len()
            && d.first() == Some(&crate::tensor::INFERRED)
            && d[1..] == n[n.len() - (d.len() - 1)..];
        let compatible = same_rank || expanded;
        if !compatible || shape.has_inferred() {
            return Err(Error::invalid(
                format!("parameter {}", self.label()),
                format!("declared shape {} cannot become {shape}", info.shape),
            ));
        }
        crate::limits::check_sample_shape(shape)
            .map_err(|d| Error::invalid(format!("parameter {}", self.label()), d))?;
        let init = leaf.init.clone().unwrap_or(Initializer::Constant(0.0));
        let t = init.generate(shape, info.dtype)?;
        if let Some(v) = &leaf.value {
            *v.write().expect("parameter lock") = t;
        }
        info.shape = shape.clone();
        Ok(())
    }
}

impl PartialEq for Variable {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for Variable {}
impl Hash for Variable {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state)
    }
}

impl fmt::Debug for Variable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = self.info();
        write!(
            f,
            "{:?}('{}', {}{}, {})",
            self.kind(),
            self.label(),
            i.axes.notation(),
            i.shape,
            i.dtype
        )
    }
}

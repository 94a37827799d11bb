//! rntk graph → ONNX model.
//!
//! Values keep rntk's meaning in a padded form: a batch-only value is a tensor
//! `[batch, sample…]`, a sequence value `[sequence, batch, sample…]` padded to the
//! longest sequence, static values keep their shape. Each sequence axis of the inputs
//! comes with an int32 input `[batch]` holding the lengths (`sequence_lens` for the
//! default axis), from which the exact mask is computed; padding appears only in the
//! file's interface (outputs are zero past each sequence's end) and never enters a
//! value that depends on it: reductions, softmax, shifts and loops along the sequence
//! axis select by the mask. Sequence-axis ops are rntk's model-local ONNX functions
//! (domain `ai.rntk`, bodies of standard ops, `functions.rs`); recurrent loops become
//! ONNX `LSTM` / `GRU` / `RNN` where the step is one of those cells (recognised in
//! `rnn.rs`, written in `rnn_emit.rs`), else a `Scan` whose body is the step (`loops.rs`).

mod conv;
mod functions;
mod loops;
mod ops;
mod rnn;
mod rnn_emit;
mod seq;

use super::builder::{value_info, Dim, Gb, INT32, RNTK_DOMAIN};
use super::proto::{
    FunctionProto, GraphProto, ModelProto, OperatorSetIdProto, StringStringEntryProto,
};
use super::OnnxOptions;
use crate::error::{Error, Result};
use crate::graph::flat::{Flat, Src};
use crate::graph::{Axis, DynamicAxes, Function};
use crate::ops::Op;
use crate::tensor::{DType, Shape};
use std::collections::{BTreeMap, HashMap};

/// How a value's leading dimensions are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lay {
    /// No dynamic axis.
    Static,
    /// `[batch, …]`.
    Batch,
    /// `[sequence, batch, …]` on sequence axis k (index into `Ex::axes`).
    Seq(usize),
    /// One step of a sequence on axis k inside a loop body: `[batch, …]`.
    Step(usize),
}

impl Lay {
    pub fn ndyn(self) -> usize {
        match self {
            Lay::Static => 0,
            Lay::Batch | Lay::Step(_) => 1,
            Lay::Seq(_) => 2,
        }
    }
    /// The layout of an element-wise combination.
    pub fn join(self, o: Lay) -> Lay {
        match (self, o) {
            (Lay::Static, x) | (x, Lay::Static) => x,
            (Lay::Batch, x) | (x, Lay::Batch) => x,
            (x, _) => x,
        }
    }
}

/// An emitted value: its ONNX name, layout, sample shape and element type.
#[derive(Clone, Debug)]
pub(crate) struct XV {
    pub name: String,
    pub lay: Lay,
    pub shape: Shape,
    pub dtype: DType,
}

impl XV {
    pub fn ndyn(&self) -> usize {
        self.lay.ndyn()
    }
    pub fn rank(&self) -> usize {
        self.ndyn() + self.shape.rank()
    }
    pub fn dims_i64(&self) -> Vec<i64> {
        self.shape.dims().iter().map(|&d| d as i64).collect()
    }
}

/// A sequence axis of the exported model.
pub(crate) struct AxisRec {
    /// The name of its dynamic dimension.
    pub dim: String,
    /// An int32 `[batch]` tensor of lengths.
    pub lens: String,
    /// A tensor whose first dimension is the padded length.
    pub t_src: String,
    /// The `[sequence, batch]` bool mask, once computed.
    pub mask: Option<String>,
}

/// The dimension name of the batch axis.
pub const BATCH_DIM: &str = "batch";
/// The dimension name of the default sequence axis.
pub const SEQUENCE_DIM: &str = "sequence";
/// The lengths input of the default sequence axis.
pub const SEQUENCE_LENS: &str = "sequence_lens";

pub(crate) struct Ex<'a> {
    pub flat: &'a Flat,
    pub g: Gb,
    pub vals: Vec<Option<XV>>,
    /// Values seen differently inside the loop body being built (innermost last).
    pub local: Vec<HashMap<usize, XV>>,
    pub axes: Vec<AxisRec>,
    axis_ids: HashMap<Axis, usize>,
    pub funcs: BTreeMap<String, FunctionProto>,
    inputs: Vec<super::proto::ValueInfoProto>,
    pub opset: i64,
    /// The nodes reading each value.
    pub users: Vec<Vec<usize>>,
}

/// One op that cannot be written, for the combined error.
pub(crate) struct Refusal {
    pub node: usize,
    pub why: String,
}

impl<'a> Ex<'a> {
    pub fn err(&self, n: usize, why: impl Into<String>) -> Error {
        let node = &self.flat.nodes[n];
        Error::Unsupported(format!(
            "ONNX export: {} '{}' ({}): {}",
            node.op.name(),
            node.name,
            self.flat.place(n),
            why.into()
        ))
    }

    /// The emitted form of value `v`.
    pub fn get(&self, v: usize) -> Result<XV> {
        for m in self.local.iter().rev() {
            if let Some(x) = m.get(&v) {
                return Ok(x.clone());
            }
        }
        self.vals[v].clone().ok_or_else(|| {
            Error::Argument(format!(
                "ONNX export: value {} used before it was written",
                self.flat.vals[v].label
            ))
        })
    }

    /// Parameters and constants become initializers on first use.
    pub fn leaf_value(&mut self, v: usize) -> Result<XV> {
        if let Some(x) = &self.vals[v] {
            return Ok(x.clone());
        }
        let val = &self.flat.vals[v];
        let var = match &val.src {
            Src::Param(p) | Src::Const(p) => p.clone(),
            _ => return self.get(v),
        };
        let t = var.value()?;
        let name = self.g.initializer(&val.label, &t);
        let x = XV {
            name,
            lay: Lay::Static,
            shape: t.shape().clone(),
            dtype: t.dtype(),
        };
        self.vals[v] = Some(x.clone());
        Ok(x)
    }

    /// The operands of node `n`, emitted.
    pub fn operands(&mut self, n: usize) -> Result<Vec<XV>> {
        let ins = self.flat.nodes[n].ins.clone();
        ins.iter()
            .map(|&i| {
                if self.local.iter().any(|m| m.contains_key(&i)) {
                    self.get(i)
                } else {
                    self.leaf_value(i)
                }
            })
            .collect()
    }

    /// The rntk layout of a value of node output info.
    pub fn lay_of(&mut self, axes: &DynamicAxes) -> Result<Lay> {
        Ok(match axes {
            DynamicAxes::None => Lay::Static,
            DynamicAxes::Batch => Lay::Batch,
            DynamicAxes::Sequence(a) => match self.axis_ids.get(a) {
                Some(&k) => Lay::Seq(k),
                None => {
                    return Err(Error::Argument(format!(
                        "ONNX export: sequence axis {} has no lengths",
                        a.name()
                    )))
                }
            },
        })
    }

    /// Register a new sequence axis (of an op that changes lengths).
    pub fn new_axis(&mut self, a: &Axis, dim: String, lens: String, t_src: String) -> usize {
        let k = self.axes.len();
        self.axes.push(AxisRec {
            dim,
            lens,
            t_src,
            mask: None,
        });
        self.axis_ids.insert(a.clone(), k);
        k
    }

    /// The `[sequence, batch]` bool mask of axis k (computed once, in the main graph).
    pub fn mask(&mut self, k: usize) -> String {
        if let Some(m) = &self.axes[k].mask {
            return m.clone();
        }
        let (t, lens) = (self.axes[k].t_src.clone(), self.axes[k].lens.clone());
        let m = self.call("SequenceMask", &[&t, &lens], 1, vec![]).remove(0);
        self.axes[k].mask = Some(m.clone());
        m
    }

    /// The mask of axis k shaped to broadcast against a value of rank `rank`.
    pub fn mask_for(&mut self, k: usize, rank: usize) -> String {
        let m = self.mask(k);
        let extra: Vec<i64> = (2..rank as i64).collect();
        self.g.unsqueeze(&m, &extra)
    }

    /// A call of one of rntk's sequence functions (defined once per model).
    pub fn call(
        &mut self,
        func: &str,
        inputs: &[&str],
        n: usize,
        attrs: Vec<super::proto::AttributeProto>,
    ) -> Vec<String> {
        if !self.funcs.contains_key(func) {
            let f = functions::define(func, self.opset);
            self.funcs.insert(func.to_string(), f);
        }
        self.g.call(func, inputs, n, attrs)
    }

    fn add_input(&mut self, v: usize) -> Result<()> {
        let val = &self.flat.vals[v];
        let info = val.info.clone();
        let name = val.label.clone();
        if !self.g.reserve(&name) {
            return Err(Error::invalid(
                "ONNX export",
                format!("two inputs are named '{name}': give the inputs distinct names"),
            ));
        }
        let mut dims = Vec::new();
        let lay = match &info.axes {
            DynamicAxes::None => Lay::Static,
            DynamicAxes::Batch => {
                dims.push(Dim::Named(BATCH_DIM.into()));
                Lay::Batch
            }
            DynamicAxes::Sequence(a) => {
                let k = match self.axis_ids.get(a) {
                    Some(&k) => k,
                    None => {
                        let default = *a == Axis::default_dynamic_axis();
                        let (dim, lens) = if default {
                            (SEQUENCE_DIM.to_string(), SEQUENCE_LENS.to_string())
                        } else {
                            (a.name().to_string(), format!("{}_lens", a.name()))
                        };
                        if !self.g.reserve(&lens) {
                            return Err(Error::invalid(
                                "ONNX export",
                                format!("an input is named '{lens}', the name of the lengths input of its sequence axis: rename it"),
                            ));
                        }
                        self.inputs
                            .push(value_info(&lens, INT32, &[Dim::Named(BATCH_DIM.into())]));
                        self.new_axis(a, dim, lens, name.clone())
                    }
                };
                dims.push(Dim::Named(self.axes[k].dim.clone()));
                dims.push(Dim::Named(BATCH_DIM.into()));
                Lay::Seq(k)
            }
        };
        dims.extend(info.shape.dims().iter().map(|&d| Dim::Fixed(d)));
        self.inputs.push(value_info(
            &name,
            super::builder::elem_type(info.dtype),
            &dims,
        ));
        self.vals[v] = Some(XV {
            name,
            lay,
            shape: info.shape,
            dtype: info.dtype,
        });
        Ok(())
    }
}

/// Ops that have no ONNX form at all (everything else is written, or refused with a
/// reason found while writing it).
fn refused(op: &Op) -> Option<&'static str> {
    match op {
        Op::LambdaRank | Op::Ndcg1 => Some(
            "a ranking criterion over the minibatch's query groups (rows grouped by their \
             group id, sorted by score): it has no ONNX form; export the model without it",
        ),
        Op::AdditiveAttention | Op::AttentionWeights => Some(
            "additive attention of one sequence over another sequence axis (AttentionModel): \
             ONNX has no form for two sequence axes paired by batch item",
        ),
        _ => None,
    }
}

/// Write `model` as an ONNX model.
pub(crate) fn export(model: &Function, o: &OnnxOptions) -> Result<ModelProto> {
    let flat = Flat::new(&model.outputs())?;
    let comps = flat.components();
    // Everything that cannot be written, listed together before anything is built.
    let mut bad: Vec<Refusal> = Vec::new();
    for (n, node) in flat.nodes.iter().enumerate() {
        if let Some(why) = refused(&node.op) {
            bad.push(Refusal {
                node: n,
                why: why.into(),
            });
        }
    }
    for c in &comps {
        if flat.is_loop(c) {
            bad.extend(loops::check(&flat, c));
        }
    }
    let mut ex = Ex {
        flat: &flat,
        g: Gb::main(o.opset),
        vals: vec![None; flat.vals.len()],
        local: Vec::new(),
        axes: Vec::new(),
        axis_ids: HashMap::new(),
        funcs: BTreeMap::new(),
        inputs: Vec::new(),
        opset: o.opset,
        users: users_of(&flat),
    };
    if !bad.is_empty() {
        return Err(combined(&ex, &bad));
    }
    // Inputs in the order the model lists its arguments.
    let mut order: Vec<usize> = Vec::new();
    for a in model.arguments() {
        if let Some(v) = flat
            .vals
            .iter()
            .position(|x| matches!(&x.src, Src::Input(i) if i.key() == a.key()))
        {
            order.push(v);
        }
    }
    for v in order {
        ex.add_input(v)?;
    }
    let units = plan(&flat, &ex.users, &comps);
    let mut refusals = Vec::new();
    for u in &units {
        let r = match u {
            Unit::Node(n) => ex.emit_node(*n),
            Unit::Loop(c) => loops::emit(&mut ex, c),
            Unit::Cell(c) => ex.emit_cell(c),
            Unit::Bi(f, b, splice) => ex.emit_bidirectional(f, b, *splice),
        };
        if let Err(e) = r {
            match e {
                Error::Unsupported(_) => refusals.push(e.to_string()),
                e => return Err(e),
            }
        }
    }
    if !refusals.is_empty() {
        return Err(Error::Unsupported(format!(
            "{} op(s) cannot be written as ONNX; nothing was written:\n  {}",
            refusals.len(),
            refusals.join("\n  ")
        )));
    }
    let outputs = ex.outputs()?;
    let graph = GraphProto {
        node: std::mem::take(&mut ex.g.nodes),
        name: Some(if model.name().is_empty() {
            "rntk".into()
        } else {
            model.name().to_string()
        }),
        initializer: ex.g.initializers(),
        input: std::mem::take(&mut ex.inputs),
        output: outputs,
        ..Default::default()
    };
    let mut opset_import = vec![OperatorSetIdProto {
        domain: Some(String::new()),
        version: Some(o.opset),
    }];
    if !ex.funcs.is_empty() {
        opset_import.push(OperatorSetIdProto {
            domain: Some(RNTK_DOMAIN.into()),
            version: Some(1),
        });
    }
    Ok(ModelProto {
        ir_version: Some(super::ir_version(o.opset)),
        opset_import,
        producer_name: Some("rntk".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        graph: Some(graph),
        functions: std::mem::take(&mut ex.funcs).into_values().collect(),
        metadata_props: vec![StringStringEntryProto {
            key: Some("rntk.sequence_layout".into()),
            value: Some(
                "sequence values are [sequence, batch, ...] padded; *_lens inputs hold lengths"
                    .into(),
            ),
        }],
        ..Default::default()
    })
}

/// How a part of the graph is written.
pub(crate) enum Unit {
    Node(usize),
    /// A recurrent loop written as Scan.
    Loop(Vec<usize>),
    /// A recurrence written as one ONNX cell.
    Cell(rnn::Cell),
    /// A forward and a backward cell whose outputs a splice node joins.
    Bi(rnn::Cell, rnn::Cell, usize),
}

impl Unit {
    fn deps(&self, flat: &Flat) -> Vec<usize> {
        match self {
            Unit::Node(n) => flat.nodes[*n].ins.clone(),
            Unit::Loop(c) => {
                let p = loops::parts(flat, c);
                let mut d = p.outer;
                d.extend(p.delays.iter().map(|&n| flat.nodes[n].ins[1]));
                d
            }
            Unit::Cell(c) => c.deps(),
            Unit::Bi(f, b, _) => {
                let mut d = f.deps();
                d.extend(b.deps());
                d
            }
        }
    }
    fn provides(&self, flat: &Flat, users: &[Vec<usize>]) -> Vec<usize> {
        match self {
            Unit::Node(n) => vec![flat.nodes[*n].out],
            Unit::Loop(c) => loops::used_outside(flat, users, c),
            Unit::Cell(c) => vec![c.provides],
            Unit::Bi(_, _, s) => vec![flat.nodes[*s].out],
        }
    }
}

/// Decide how every component is written (cells where the structure allows, joined
/// into bidirectional nodes where a splice joins two), and drop what nothing needs.
fn users_of(flat: &Flat) -> Vec<Vec<usize>> {
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); flat.vals.len()];
    for (n, node) in flat.nodes.iter().enumerate() {
        for &i in &node.ins {
            if !users[i].contains(&n) {
                users[i].push(n);
            }
        }
    }
    users
}

fn plan(flat: &Flat, users: &[Vec<usize>], comps: &[Vec<usize>]) -> Vec<Unit> {
    let mut units: Vec<Option<Unit>> = Vec::new();
    let mut absorbed = std::collections::HashSet::new();
    for c in comps {
        if flat.is_loop(c) {
            let outside = loops::used_outside(flat, users, c);
            units.push(Some(match rnn::match_loop(flat, c, &outside) {
                Some(cell) => Unit::Cell(cell),
                None => Unit::Loop(c.clone()),
            }));
        } else {
            match rnn::match_lstm_scan(flat, c[0], users, &flat.roots) {
                Some(cell) => {
                    absorbed.extend(cell.absorbed.iter().copied());
                    units.push(Some(Unit::Cell(cell)));
                }
                None => units.push(Some(Unit::Node(c[0]))),
            }
        }
    }
    for u in units.iter_mut() {
        if matches!(u, Some(Unit::Node(n)) if absorbed.contains(n)) {
            *u = None;
        }
    }
    // bidirectional pairs: splice(forward h, backward h) along the last axis
    for si in 0..units.len() {
        let Some(Unit::Node(s)) = units[si] else {
            continue;
        };
        let node = &flat.nodes[s];
        let Op::Splice { axis } = node.op else {
            continue;
        };
        let rank = flat.vals[node.out].info.shape.rank() as isize;
        if node.ins.len() != 2 || !(axis == -1 || axis == rank - 1) {
            continue;
        }
        let find = |v: usize, units: &[Option<Unit>]| {
            units
                .iter()
                .position(|u| matches!(u, Some(Unit::Cell(c)) if c.provides == v))
        };
        let (Some(fi), Some(bi)) = (find(node.ins[0], &units), find(node.ins[1], &units)) else {
            continue;
        };
        let (Some(Unit::Cell(f)), Some(Unit::Cell(b))) = (&units[fi], &units[bi]) else {
            continue;
        };
        let alone = |c: &rnn::Cell| {
            users[c.provides]
                .iter()
                .all(|u| *u == s || c.absorbed.contains(u))
                && !flat.roots.contains(&c.provides)
        };
        let pair = !f.reverse
            && b.reverse
            && f.kind == b.kind
            && f.n == b.n
            && f.act == b.act
            && f.x == b.x
            && f.peep.is_some() == b.peep.is_some()
            && alone(f)
            && alone(b);
        if !pair {
            continue;
        }
        let (f, b) = (f.clone(), b.clone());
        units[fi] = None;
        units[bi] = None;
        units[si] = Some(Unit::Bi(f, b, s));
    }
    // liveness, from the outputs back
    let mut needed: std::collections::HashSet<usize> = flat.roots.iter().copied().collect();
    let mut live = vec![false; units.len()];
    for (i, u) in units.iter().enumerate().rev() {
        let Some(u) = u else { continue };
        if u.provides(flat, users).iter().any(|v| needed.contains(v)) {
            live[i] = true;
            needed.extend(u.deps(flat));
        }
    }
    units
        .into_iter()
        .zip(live)
        .filter_map(|(u, l)| if l { u } else { None })
        .collect()
}

fn combined(ex: &Ex, bad: &[Refusal]) -> Error {
    let lines: Vec<String> = bad
        .iter()
        .map(|r| {
            let node = &ex.flat.nodes[r.node];
            format!(
                "{} '{}' ({}): {}",
                node.op.name(),
                node.name,
                ex.flat.place(r.node),
                r.why
            )
        })
        .collect();
    Error::Unsupported(format!(
        "{} op(s) cannot be written as ONNX; nothing was written:\n  {}",
        lines.len(),
        lines.join("\n  ")
    ))
}

impl Ex<'_> {
    pub fn used_outside(&self, comp: &[usize]) -> Vec<usize> {
        loops::used_outside(self.flat, &self.users, comp)
    }

    /// A forward and a backward cell joined by `splice`: one bidirectional node.
    fn emit_bidirectional(&mut self, f: &rnn::Cell, b: &rnn::Cell, splice: usize) -> Result<()> {
        let y = self.emit_cells(&[f, b])?;
        let x = self.leaf_value(f.x)?;
        let info = self.flat.vals[self.flat.nodes[splice].out].info.clone();
        self.set(
            self.flat.nodes[splice].out,
            XV {
                name: y,
                lay: x.lay,
                shape: info.shape,
                dtype: info.dtype,
            },
        );
        Ok(())
    }

    /// The graph outputs: sequence values zero past each sequence's end.
    fn outputs(&mut self) -> Result<Vec<super::proto::ValueInfoProto>> {
        let roots = self.flat.roots.clone();
        let mut out = Vec::new();
        let single = roots.len() == 1;
        for (i, (&v, var)) in roots.iter().zip(&self.flat.root_vars).enumerate() {
            let x = match self.vals[v].clone() {
                Some(x) => x,
                None => self.leaf_value(v)?,
            };
            let want = if !var.name().is_empty() {
                var.name()
            } else if single {
                "output".to_string()
            } else {
                format!("output_{i}")
            };
            let name = if self.g.reserve(&want) {
                want
            } else {
                self.g.fresh(&want)
            };
            let mut dims = Vec::new();
            let src = match x.lay {
                Lay::Seq(k) => {
                    let m = self.mask_for(k, x.rank());
                    let z = self.g.scalar(0.0, x.dtype);
                    dims.push(Dim::Named(self.axes[k].dim.clone()));
                    dims.push(Dim::Named(BATCH_DIM.into()));
                    self.g.op("Where", &[&m, &x.name, &z], vec![])
                }
                Lay::Batch => {
                    dims.push(Dim::Named(BATCH_DIM.into()));
                    x.name.clone()
                }
                _ => x.name.clone(),
            };
            for &d in x.shape.dims() {
                dims.push(if d == crate::tensor::INFERRED {
                    Dim::Named(format!("{name}_len"))
                } else {
                    Dim::Fixed(d)
                });
            }
            self.g
                .push("", "Identity", &[&src], std::slice::from_ref(&name), vec![]);
            out.push(value_info(&name, super::builder::elem_type(x.dtype), &dims));
            // A sequence output on an axis the inputs do not carry comes with its lengths.
            if let Lay::Seq(k) = x.lay {
                if !self
                    .inputs
                    .iter()
                    .any(|i| i.name.as_deref() == Some(&self.axes[k].lens))
                {
                    let ln = self.g.fresh(&format!("{name}_lens"));
                    let lens = self.axes[k].lens.clone();
                    self.g
                        .push("", "Identity", &[&lens], std::slice::from_ref(&ln), vec![]);
                    out.push(value_info(&ln, INT32, &[Dim::Named(BATCH_DIM.into())]));
                }
            }
        }
        Ok(out)
    }
}

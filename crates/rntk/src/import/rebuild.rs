//! CNTK graph → rntk graph. Variables and function outputs are resolved by uid, depth
//! first from the root, so the file's order does not matter. A reference to an output
//! of a function that is still being built (a recurrent loop through past_value /
//! future_value) becomes a placeholder of the output's declared shape, replaced by the
//! real output once everything is built; the executor then checks that every cycle
//! passes through a delay. Blocks become rntk blocks with their CNTK op name and name.

use super::dict::Dict;
use super::model::{CntkModel, DynAxisDesc, FnDesc, VarDesc, VarKindCode, ALL_STATIC_AXES};
use super::op_codes::{op_name, BLOCK, COMBINE};
use super::proto::Axis as PbAxis;
use super::seq_conv;
use crate::error::{Error, Result};
use crate::exec::Executor;
use crate::graph::{
    constant, input_variable_with, parameter_from, placeholder, Axis, DynamicAxes, Function,
    InputOptions, Variable,
};
use crate::ops::{BinaryOp, Op, ReduceOp, UnaryOp};
use crate::tensor::{DType, Shape, INFERRED};
use std::collections::{HashMap, HashSet};

/// CNTK's `NDShape::InferredDimension` as stored in reshape targets.
const CNTK_INFERRED: u64 = u64::MAX;

/// How a block that stands for one rntk op is loaded (its body is not descended into).
#[derive(Clone, Copy, Debug, PartialEq)]
enum BlockOp {
    Unary(UnaryOp),
    SeqFirst,
    SeqLast,
    SeqReduceSum,
    SeqReduceMax,
    SeqBroadcastAs,
    SeqIsFirst,
    SeqIsLast,
    SeqSlice(isize, isize),
    SeqGather,
    SeqScatter,
    SeqSoftmax,
}

/// Primitive op codes that map onto rntk ops (some only with certain attributes; those
/// report the attribute they cannot take).
fn supported(code: u64) -> bool {
    matches!(
        code,
        0..=17 | 19..=27 | 31..=33 | 37..=44 | 47 | 48 | 51 | 52 | 54..=57 | 62 | 64 | 65 | 58
            | 68 | 69 | 75
    )
}

/// `<function uid>_Output_<i>` → (function uid, i).
fn split_output(uid: &str) -> Option<(&str, usize)> {
    let at = uid.rfind("_Output_")?;
    let idx = uid[at + "_Output_".len()..].parse().ok()?;
    Some((&uid[..at], idx))
}

/// One unsupported function for the combined error.
struct Unsupported {
    code: u64,
    uid: String,
    name: String,
    within: String,
    /// What about the op is unsupported, when the op code itself is.
    detail: Option<&'static str>,
}

/// Attribute-level limits known from the function alone (without shapes), reported
/// with the unsupported op codes.
fn unsupported_form(fd: &FnDesc) -> Option<&'static str> {
    let has = |k: &str| fd.attributes.data.contains_key(k);
    match fd.op {
        // a bare Where is sequence.where; fixed or scaled lengths only occur inside
        // Sequence::Slice, which loads as a whole
        13 if has("newSequenceAxisLengthScalingFactor") => {
            Some("a fixed or scaled output length (only sequence.where)")
        }
        _ => None,
    }
}

/// What building a function gave: its outputs, and the rntk function itself where
/// there is one (blocks and combines; primitives are found through their output).
#[derive(Clone)]
struct Built {
    outputs: Vec<Variable>,
    func: Option<Function>,
}

pub(crate) struct Builder<'a> {
    file: &'a str,
    vars: HashMap<&'a str, &'a VarDesc>,
    fns: HashMap<&'a str, &'a FnDesc>,
    axes: HashMap<String, Axis>,
    built_vars: HashMap<String, Variable>,
    built_fns: HashMap<String, Built>,
    building: HashSet<String>,
    forward: HashMap<String, Variable>,
    pending: Vec<(Variable, String)>,
}

impl<'a> Builder<'a> {
    pub fn new(file: &'a str, model: &'a CntkModel) -> Self {
        Builder {
            file,
            vars: model
                .variables
                .iter()
                .map(|v| (v.uid.as_str(), v))
                .collect(),
            fns: model
                .functions
                .iter()
                .map(|f| (f.uid.as_str(), f))
                .collect(),
            axes: HashMap::new(),
            built_vars: HashMap::new(),
            built_fns: HashMap::new(),
            building: HashSet::new(),
            forward: HashMap::new(),
            pending: Vec::new(),
        }
    }

    fn err(&self, detail: impl Into<String>) -> Error {
        Error::Format {
            file: self.file.to_string(),
            detail: detail.into(),
        }
    }

    fn fn_label(fd: &FnDesc) -> String {
        let op = match &fd.block {
            Some(b) => format!("block {}", b.op_name),
            None => format!("{} (op {})", op_name(fd.op), fd.op),
        };
        if fd.name.is_empty() {
            format!("function {} {op}", fd.uid)
        } else {
            format!("function {} '{}' {op}", fd.uid, fd.name)
        }
    }

    /// Errors of the graph constructors, with the CNTK function they came from.
    fn wrap(&self, fd: &FnDesc) -> impl Fn(Error) -> Error + '_ {
        let label = Self::fn_label(fd);
        move |e| match e {
            Error::Unsupported(d) => Error::Unsupported(format!("{}: {label}: {d}", self.file)),
            e => self.err(format!("{label}: {e}")),
        }
    }

    fn dynamic_axes(&mut self, what: &str, axes: &[DynAxisDesc]) -> Result<DynamicAxes> {
        match axes {
            [] => Ok(DynamicAxes::None),
            [b] if !b.ordered => Ok(DynamicAxes::Batch),
            [s, b] if s.ordered && !b.ordered => {
                let axis = if s.name == "defaultDynamicAxis" {
                    Axis::default_dynamic_axis()
                } else {
                    self.axes
                        .entry(s.name.clone())
                        .or_insert_with(|| Axis::new(&s.name))
                        .clone()
                };
                Ok(DynamicAxes::Sequence(axis))
            }
            _ => Err(Error::Unsupported(format!(
                "{}: {what}: dynamic axes {:?} (rntk has [], [batch] and [sequence, batch])",
                self.file,
                axes.iter().map(|a| a.name.as_str()).collect::<Vec<_>>()
            ))),
        }
    }

    fn leaf(&mut self, d: &VarDesc) -> Result<Variable> {
        let what = format!("variable {}", d.uid);
        match d.kind {
            VarKindCode::Input => {
                let axes = self.dynamic_axes(&what, &d.dynamic_axes)?;
                Ok(input_variable_with(
                    d.shape.clone(),
                    InputOptions {
                        dtype: d.dtype,
                        is_sparse: d.is_sparse,
                        needs_gradient: d.needs_gradient,
                        dynamic_axes: axes,
                        name: d.name.clone(),
                    },
                ))
            }
            VarKindCode::Parameter | VarKindCode::Constant => {
                let t = d
                    .value
                    .clone()
                    .ok_or_else(|| self.err(format!("{what}: no value")))?;
                if !d.dynamic_axes.is_empty() {
                    return Err(self.err(format!(
                        "{what}: a {} cannot have dynamic axes",
                        d.kind.name()
                    )));
                }
                Ok(if d.kind == VarKindCode::Parameter {
                    parameter_from(t, &d.name)
                } else {
                    constant(t, &d.name)
                })
            }
            VarKindCode::Placeholder | VarKindCode::Output => Err(self.err(format!(
                "{what}: a {} that is neither a block argument in scope nor the output of \
                 a listed function",
                d.kind.name()
            ))),
        }
    }

    /// The rntk variable for `uid`.
    fn var(&mut self, uid: &str) -> Result<Variable> {
        if let Some(v) = self.built_vars.get(uid) {
            return Ok(v.clone());
        }
        if let Some((f, i)) = split_output(uid) {
            if self.fns.contains_key(f) {
                if self.building.contains(f) {
                    return self.forward_ref(uid);
                }
                let built = self.build_fn(f)?;
                let out = built.outputs.get(i).cloned().ok_or_else(|| {
                    self.err(format!(
                        "'{uid}' refers to output {i} of function {f}, which has {} outputs",
                        built.outputs.len()
                    ))
                })?;
                self.built_vars.insert(uid.to_string(), out.clone());
                return Ok(out);
            }
        }
        let d = *self.vars.get(uid).ok_or_else(|| {
            self.err(format!(
                "'{uid}' is referenced but is neither a listed variable nor an output of a \
                 listed function"
            ))
        })?;
        let v = self.leaf(d)?;
        self.built_vars.insert(uid.to_string(), v.clone());
        Ok(v)
    }

    /// A placeholder for an output of a function under construction (a loop).
    fn forward_ref(&mut self, uid: &str) -> Result<Variable> {
        if let Some(p) = self.forward.get(uid) {
            return Ok(p.clone());
        }
        let d = *self.vars.get(uid).ok_or_else(|| {
            self.err(format!(
                "'{uid}' is used inside its own function's inputs (a cycle) but the file \
                 declares no variable for it, so its shape is unknown"
            ))
        })?;
        let what = format!("variable {uid}");
        let axes = self.dynamic_axes(&what, &d.dynamic_axes)?;
        let p = placeholder(d.shape.clone(), d.dtype, axes, &d.name)
            .map_err(|e| self.err(format!("{what}: {e}")))?;
        self.forward.insert(uid.to_string(), p.clone());
        self.pending.push((p.clone(), uid.to_string()));
        Ok(p)
    }

    fn build_fn(&mut self, uid: &str) -> Result<Built> {
        if let Some(b) = self.built_fns.get(uid) {
            return Ok(b.clone());
        }
        let fd = *self
            .fns
            .get(uid)
            .ok_or_else(|| self.err(format!("function '{uid}' is referenced but not listed")))?;
        if !self.building.insert(uid.to_string()) {
            return Err(self.err(format!(
                "{} contains itself (a block whose body leads back to the block)",
                Self::fn_label(fd)
            )));
        }
        let built = self.build_fn_inner(fd);
        self.building.remove(uid);
        let built = built?;
        self.built_fns.insert(uid.to_string(), built.clone());
        Ok(built)
    }

    fn build_fn_inner(&mut self, fd: &'a FnDesc) -> Result<Built> {
        if let Some(b) = &fd.block {
            let outer = b
                .arguments
                .iter()
                .map(|(_, v)| self.var(v))
                .collect::<Result<Vec<_>>>()?;
            // Parameters and constants the body uses are among the block's inputs;
            // build them too, so a dangling one is reported here.
            for i in &fd.inputs {
                self.var(i)?;
            }
            if let Some(op) = self.block_op(fd) {
                let v = self.block_as_op(fd, op, &outer)?;
                return Ok(Built {
                    outputs: vec![v],
                    func: None,
                });
            }
            let mut pairs = Vec::with_capacity(outer.len());
            for ((key, _), o) in b.arguments.iter().zip(&outer) {
                let info = o.info();
                let name = self.vars.get(key.as_str()).map(|d| d.name.as_str());
                let ph = placeholder(info.shape, info.dtype, info.axes, name.unwrap_or(""))
                    .map_err(self.wrap(fd))?;
                if self.built_vars.insert(key.clone(), ph.clone()).is_some() {
                    return Err(self.err(format!(
                        "{}: argument placeholder {key} is bound twice",
                        Self::fn_label(fd)
                    )));
                }
                pairs.push((ph, o.clone()));
            }
            let body = self.build_fn(&b.root)?;
            let body = self.function_of(&body).map_err(self.wrap(fd))?;
            let f = Function::block(&body, &pairs, &b.op_name, &fd.name).map_err(self.wrap(fd))?;
            return Ok(Built {
                outputs: f.outputs(),
                func: Some(f),
            });
        }
        if let Some(m) = seq_conv::find(&self.fns, fd) {
            let (w, x) = (self.var(m.w)?, self.var(m.x)?);
            let op = m.op(self.file, x.shape().rank())?;
            let v = Function::primitive(op, &[w, x], m.name)
                .and_then(|f| f.output())
                .map_err(self.wrap(fd))?;
            return Ok(Built {
                outputs: vec![v],
                func: None,
            });
        }
        let inputs = fd
            .inputs
            .iter()
            .map(|i| self.var(i))
            .collect::<Result<Vec<_>>>()?;
        if fd.op == COMBINE {
            let f = Function::combine(&inputs, &fd.name).map_err(self.wrap(fd))?;
            return Ok(Built {
                outputs: f.outputs(),
                func: Some(f),
            });
        }
        let v = self.primitive(fd, &inputs)?;
        Ok(Built {
            outputs: vec![v],
            func: None,
        })
    }

    /// The rntk function whose outputs are `b`'s outputs (a block body).
    fn function_of(&self, b: &Built) -> Result<Function> {
        if let Some(f) = &b.func {
            return Ok(f.clone());
        }
        match b.outputs.as_slice() {
            [v] => match v.owner() {
                Some(f) if f.outputs().len() == 1 => Ok(f),
                _ => Function::combine(std::slice::from_ref(v), ""),
            },
            outs => Function::combine(outs, ""),
        }
    }

    /// Blocks that stand for one rntk op (their bodies use CNTK's internal packing
    /// ops, which rntk expresses as single sequence ops).
    fn block_op(&self, fd: &FnDesc) -> Option<BlockOp> {
        let b = fd.block.as_ref()?;
        let root = self.fns.get(b.root.as_str())?;
        match b.op_name.as_str() {
            "Softplus" if b.arguments.len() == 1 => Some(BlockOp::Unary(UnaryOp::Softplus)),
            "Sequence::ReduceElements" if b.arguments.len() == 1 && root.op == 39 => {
                let a = Dict::new(self.file, "", &root.attributes);
                match a.string("reductionOpName").ok()? {
                    "Sum" => Some(BlockOp::SeqReduceSum),
                    "Max" => Some(BlockOp::SeqReduceMax),
                    _ => None,
                }
            }
            "Sequence::BroadcastAs" if b.arguments.len() == 2 && root.op == 50 => {
                Some(BlockOp::SeqBroadcastAs)
            }
            // is_first / is_last: a delay of ones reconciled to the operand's layout.
            "Sequence::IsFirst" if b.arguments.len() == 1 && root.op == 37 => {
                Some(BlockOp::SeqIsFirst)
            }
            "Sequence::IsLast" if b.arguments.len() == 1 && root.op == 38 => {
                Some(BlockOp::SeqIsLast)
            }
            "Sequence::Gather" if b.arguments.len() == 2 && root.op == 29 => {
                Some(BlockOp::SeqGather)
            }
            "Sequence::Scatter" if b.arguments.len() == 2 && root.op == 30 => {
                Some(BlockOp::SeqScatter)
            }
            "Sequence::Softmax" if b.arguments.len() == 1 => Some(BlockOp::SeqSoftmax),
            // sequence.first / last / slice: GatherPacked(x, PackedIndex(x, Where(m)))
            // where the mask m is built from delays of ones.
            "Sequence::Slice" if b.arguments.len() == 1 && root.op == 29 => {
                let packed_index = self.producer(root.inputs.get(1)?)?;
                let where_ = self.producer(packed_index.inputs.get(1)?)?;
                if packed_index.op != 28 || where_.op != 13 {
                    return None;
                }
                self.slice_bounds(where_)
            }
            _ => None,
        }
    }

    /// The bounds of a `Sequence::Slice` from the mask its `Where` selects with: the
    /// delays of its mask say where it starts (past_value by `begin`) and ends
    /// (future_value by `-end`), the `Where` attributes how long the result is.
    fn slice_bounds(&self, where_: &FnDesc) -> Option<BlockOp> {
        let a = Dict::new(self.file, "", &where_.attributes);
        if a.axes("newDynamicAxes").ok()?.len() == 1 {
            // Only the batch axis is left: one step per sequence.
            return match self.producer(where_.inputs.first()?)?.op {
                37 => Some(BlockOp::SeqFirst),
                38 => Some(BlockOp::SeqLast),
                _ => None,
            };
        }
        let scaling = a.int("newSequenceAxisLengthScalingFactor").ok()?;
        let additive = a.int("newSequenceAxisLengthAdditiveFactor").ok()?;
        // The delays feeding the mask (a small expression of delays, constants and
        // element-wise ops).
        let mut past = Vec::new();
        let mut future = Vec::new();
        let mut stack = vec![where_.inputs.first()?.as_str()];
        let mut steps = 0;
        while let Some(uid) = stack.pop() {
            steps += 1;
            if steps > 64 {
                return None;
            }
            let Some(f) = self.producer(uid) else {
                continue;
            };
            let offset = || {
                Dict::new(self.file, "", &f.attributes)
                    .size_t("offset")
                    .ok()
                    .and_then(|o| isize::try_from(o).ok())
            };
            match f.op {
                37 => past.push(offset()?),
                38 => future.push(offset()?),
                19..=21 | 50 => stack.extend(f.inputs.iter().map(String::as_str)),
                _ => return None,
            }
        }
        let (begin, end) = match (scaling, past.as_slice(), future.as_slice()) {
            // fixed length: slice(0, k) or slice(-k, 0)
            (0, [k], []) if *k as i64 == additive => (0, *k),
            (0, [], [k]) if *k as i64 == additive => (-*k, 0),
            // length + additive: slice(b, -e)
            (1, p, f) if p.len() <= 1 && f.len() <= 1 => {
                let b = p.first().copied().unwrap_or(0);
                let e = f.first().copied().unwrap_or(0);
                if (b + e) as i64 != -additive {
                    return None;
                }
                (b, -e)
            }
            _ => return None,
        };
        Some(BlockOp::SeqSlice(begin, end))
    }

    fn producer(&self, uid: &str) -> Option<&'a FnDesc> {
        let (f, _) = split_output(uid)?;
        self.fns.get(f).copied()
    }

    fn block_as_op(&self, fd: &FnDesc, op: BlockOp, outer: &[Variable]) -> Result<Variable> {
        let op = match op {
            BlockOp::Unary(u) => Op::Unary(u),
            BlockOp::SeqFirst => Op::SeqFirst,
            BlockOp::SeqLast => Op::SeqLast,
            BlockOp::SeqReduceSum => Op::SeqReduceSum,
            BlockOp::SeqReduceMax => Op::SeqReduceMax,
            BlockOp::SeqBroadcastAs => Op::SeqBroadcastAs,
            BlockOp::SeqIsFirst => Op::SeqIsFirst,
            BlockOp::SeqIsLast => Op::SeqIsLast,
            BlockOp::SeqSlice(begin, end) => Op::SeqSlice { begin, end },
            BlockOp::SeqGather => Op::SeqGather,
            BlockOp::SeqScatter => Op::SeqScatter,
            BlockOp::SeqSoftmax => Op::SeqSoftmax,
        };
        Function::primitive(op, outer, &fd.name)
            .and_then(|f| f.output())
            .map_err(self.wrap(fd))
    }

    /// Python axis of a stored static axis (CNTK counts from the last Python axis).
    fn static_axis(&self, fd: &FnDesc, a: &PbAxis, rank: usize) -> Result<isize> {
        let i = a.static_axis_idx;
        if i < 0 || i as usize >= rank {
            return Err(Error::Unsupported(format!(
                "{}: {}: axis '{}' (static index {i}) on an operand of rank {rank} (only \
                 static axes of the operand are supported)",
                self.file,
                Self::fn_label(fd),
                a.name
            )));
        }
        Ok((rank - 1 - i as usize) as isize)
    }

    fn need(&self, fd: &FnDesc, inputs: &[Variable], n: usize) -> Result<()> {
        if inputs.len() != n {
            return Err(self.err(format!(
                "{}: expects {n} operands, the file lists {}",
                Self::fn_label(fd),
                inputs.len()
            )));
        }
        Ok(())
    }

    fn primitive(&self, fd: &FnDesc, x: &[Variable]) -> Result<Variable> {
        let label = Self::fn_label(fd);
        let a = Dict::new(self.file, &label, &fd.attributes);
        let unsupported = |detail: String| -> Error {
            Error::Unsupported(format!("{}: {label}: {detail}", self.file))
        };
        let rank0 = x.first().map(|v| v.shape().rank()).unwrap_or(0);
        let unary = |u: UnaryOp| -> Result<(Op, Vec<Variable>)> {
            self.need(fd, x, 1)?;
            Ok((Op::Unary(u), x.to_vec()))
        };
        let binary = |b: BinaryOp| -> Result<(Op, Vec<Variable>)> {
            self.need(fd, x, 2)?;
            Ok((Op::Binary(b), x.to_vec()))
        };
        let (op, operands) = match fd.op {
            0 => unary(UnaryOp::Negate)?,
            1 | 75 => unary(UnaryOp::Sigmoid)?,
            2 => unary(UnaryOp::Tanh)?,
            3 => unary(UnaryOp::Relu)?,
            4 => unary(UnaryOp::Exp)?,
            5 => unary(UnaryOp::Log)?,
            6 => unary(UnaryOp::Sqrt)?,
            8 => unary(UnaryOp::Abs)?,
            9 => unary(UnaryOp::Reciprocal)?,
            65 => unary(UnaryOp::Elu)?,
            7 => unary(UnaryOp::Floor)?,
            54 => unary(UnaryOp::Sin)?,
            55 => unary(UnaryOp::Cos)?,
            64 => unary(UnaryOp::StopGradient)?,
            56 | 62 => unary(UnaryOp::Alias)?,
            19 => binary(BinaryOp::Plus)?,
            20 => binary(BinaryOp::Minus)?,
            21 => binary(BinaryOp::ElementTimes)?,
            22 => binary(BinaryOp::Equal)?,
            23 => binary(BinaryOp::NotEqual)?,
            24 => binary(BinaryOp::Less)?,
            25 => binary(BinaryOp::LessEqual)?,
            26 => binary(BinaryOp::Greater)?,
            27 => binary(BinaryOp::GreaterEqual)?,
            69 => binary(BinaryOp::Pow)?,
            52 => binary(BinaryOp::LogPlus)?,
            // Stored as Times(W, x) in CNTK's column-major view; rntk's times(x, W)
            // is the same product in Python order.
            31 => {
                self.need(fd, x, 2)?;
                let output_rank = if a.has("outputRank") {
                    a.size_t("outputRank")? as usize
                } else {
                    1
                };
                let infer = if a.has("inferInputRankToMap") {
                    a.int("inferInputRankToMap")?
                } else {
                    -1
                };
                let infer = i32::try_from(infer).map_err(|_| {
                    self.err(format!(
                        "{label}: inferInputRankToMap {infer} is out of range"
                    ))
                })?;
                (
                    Op::Times {
                        output_rank,
                        infer_input_rank_to_map: infer,
                    },
                    vec![x[1].clone(), x[0].clone()],
                )
            }
            32 => {
                self.need(fd, x, 2)?;
                let output_rank = if a.has("outputRank") {
                    a.size_t("outputRank")? as usize
                } else {
                    1
                };
                (
                    Op::TransposeTimes { output_rank },
                    vec![x[1].clone(), x[0].clone()],
                )
            }
            10 | 51 => {
                self.need(fd, x, 1)?;
                let axis = if a.has("axis") {
                    self.static_axis(fd, a.axis("axis")?, rank0)?
                } else if rank0 <= 1 {
                    -1
                } else {
                    return Err(unsupported(format!(
                        "normalizing over all {rank0} static axes at once"
                    )));
                };
                let op = if fd.op == 10 {
                    Op::Softmax { axis }
                } else {
                    Op::LogSoftmax { axis }
                };
                (op, x.to_vec())
            }
            11 => {
                self.need(fd, x, 1)?;
                (Op::Hardmax, x.to_vec())
            }
            // sequence.where(cond): a new sequence axis of the selected step indices.
            13 => {
                self.need(fd, x, 1)?;
                if a.axes("newDynamicAxes")?.len() != 2
                    || a.has("newSequenceAxisLengthScalingFactor")
                {
                    return Err(unsupported(
                        "Where with a fixed or scaled output length (only sequence.where)".into(),
                    ));
                }
                // CNTK's step indices are scalars; rntk's keep the condition's shape
                // (one element).
                return Function::primitive(Op::SeqWhere, x, &fd.name)
                    .and_then(|f| f.output())
                    .and_then(|w| {
                        Function::primitive(
                            Op::Reshape {
                                shape: Shape::scalar(),
                            },
                            &[w],
                            "",
                        )
                    })
                    .and_then(|f| f.output())
                    .map_err(self.wrap(fd));
            }
            12 => {
                self.need(fd, x, 1)?;
                let mut perm: Vec<usize> = (0..rank0).collect();
                if a.has("axis1") && a.has("axis2") {
                    let i = self.static_axis(fd, a.axis("axis1")?, rank0)? as usize;
                    let j = self.static_axis(fd, a.axis("axis2")?, rank0)? as usize;
                    perm.swap(i, j);
                } else if a.has("axisVec") {
                    // Output static axis k (CNTK order) is input axis axisVec[k].
                    let v = a.axes("axisVec")?;
                    if v.len() != rank0 {
                        return Err(self.err(format!(
                            "{label}: a permutation of {} axes for an operand of rank {rank0}",
                            v.len()
                        )));
                    }
                    for (k, ax) in v.iter().enumerate() {
                        let from = self.static_axis(fd, ax, rank0)? as usize;
                        perm[rank0 - 1 - k] = from;
                    }
                    let mut seen = vec![false; rank0];
                    if perm.iter().any(|&p| std::mem::replace(&mut seen[p], true)) {
                        return Err(self.err(format!("{label}: axisVec is not a permutation")));
                    }
                } else {
                    return Err(self.err(format!(
                        "{label}: expected the attributes axis1 and axis2, or axisVec"
                    )));
                }
                (Op::Transpose { perm }, x.to_vec())
            }
            14 => {
                self.need(fd, x, 1)?;
                return self.slice(fd, &a, &x[0]);
            }
            15 => {
                self.need(fd, x, 1)?;
                let rate = a.real("dropoutRate")?;
                let seed = if a.has("rngSeed") {
                    a.size_t("rngSeed")?
                } else {
                    0
                };
                (Op::Dropout { rate, seed }, x.to_vec())
            }
            16 => {
                self.need(fd, x, 1)?;
                let shape = self.reshape_target(fd, &a, &x[0].shape())?;
                (Op::Reshape { shape }, x.to_vec())
            }
            37 | 38 => {
                self.need(fd, x, 2)?;
                let offset = if a.has("offset") {
                    a.size_t("offset")? as usize
                } else {
                    1
                };
                let op = if fd.op == 37 {
                    Op::PastValue { offset }
                } else {
                    Op::FutureValue { offset }
                };
                (op, x.to_vec())
            }
            39 => {
                self.need(fd, x, 1)?;
                let rop = match a.string("reductionOpName")? {
                    "Sum" => ReduceOp::Sum,
                    "Mean" => ReduceOp::Mean,
                    "Max" => ReduceOp::Max,
                    "Min" => ReduceOp::Min,
                    "LogSum" => ReduceOp::LogSumExp,
                    other => return Err(unsupported(format!("reduction '{other}'"))),
                };
                let list: Vec<&PbAxis> = if a.has("axisVec") {
                    a.axes("axisVec")?
                } else {
                    vec![a.axis("axis")?]
                };
                let keepdims =
                    !a.has("reductionKeepDimensions") || a.bool("reductionKeepDimensions")?;
                let axes = if list.iter().any(|ax| ax.static_axis_idx == ALL_STATIC_AXES) {
                    None
                } else {
                    Some(
                        list.iter()
                            .map(|ax| self.static_axis(fd, ax, rank0))
                            .collect::<Result<Vec<_>>>()?,
                    )
                };
                (
                    Op::Reduce {
                        op: rop,
                        axes,
                        keepdims,
                    },
                    x.to_vec(),
                )
            }
            40 => {
                self.need(fd, x, 6)?;
                (
                    Op::BatchNorm {
                        spatial: a.bool("spatial")?,
                        epsilon: a.real("epsilon")?,
                        normalization_time_constant: a.real("normalizationTimeConstant")?,
                    },
                    x.to_vec(),
                )
            }
            41 => {
                self.need(fd, x, 3)?;
                (Op::Clip, x.to_vec())
            }
            42 => {
                self.need(fd, x, 3)?;
                (Op::Select, x.to_vec())
            }
            43 => {
                if x.is_empty() {
                    return Err(self.err(format!("{label}: no operands")));
                }
                let axis = self.static_axis(fd, a.axis("axis")?, rank0)?;
                (Op::Splice { axis }, x.to_vec())
            }
            48 => match x.len() {
                2 => {
                    return crate::losses::binary_cross_entropy(&x[0], &x[1]).map_err(self.wrap(fd))
                }
                3 => (Op::WeightedLogistic, x.to_vec()),
                n => return Err(self.err(format!("{label}: expects 2 or 3 operands, got {n}"))),
            },
            17 => {
                self.need(fd, x, 1)?;
                (super::conv::pooling(&a)?, x.to_vec())
            }
            33 => {
                self.need(fd, x, 2)?;
                (super::conv::convolution(&a)?, x.to_vec())
            }
            58 => {
                self.need(fd, x, 2)?;
                (super::conv::unpooling(&a)?, x.to_vec())
            }
            47 => {
                self.need(fd, x, 2)?;
                (super::conv::roi_pooling(&a)?, x.to_vec())
            }
            68 => {
                self.need(fd, x, 1)?;
                if a.has("onehotAxis") {
                    let ax = a.axis("onehotAxis")?;
                    if ax.static_axis_idx != ALL_STATIC_AXES && ax.static_axis_idx != 0 {
                        return Err(unsupported(format!(
                            "one-hot along axis '{}' (rntk appends the class axis last)",
                            ax.name
                        )));
                    }
                }
                let n = a.size_t("numClass")?;
                // the op's shape rule checks the count against limits.max_one_hot_classes
                let num_classes = usize::try_from(n)
                    .map_err(|_| self.err(format!("{label}: numClass {n} is absurd")))?;
                (Op::OneHot { num_classes }, x.to_vec())
            }
            code => {
                return Err(unsupported(format!(
                    "op code {code} ({}) has no rntk equivalent",
                    op_name(code)
                )))
            }
        };
        Function::primitive(op, &operands, &fd.name)
            .and_then(|f| f.output())
            .map_err(self.wrap(fd))
    }

    fn slice(&self, fd: &FnDesc, a: &Dict, x: &Variable) -> Result<Variable> {
        let rank = x.shape().rank();
        let (axes, begins, ends, strides) = if a.has("axisVec") {
            let axes = a.axes("axisVec")?;
            let b = int_vec(a, "beginIndexVec")?;
            let e = int_vec(a, "endIndexVec")?;
            let s = if a.has("sliceStridesVec") {
                int_vec(a, "sliceStridesVec")?
            } else {
                vec![1; axes.len()]
            };
            if b.len() != axes.len() || e.len() != axes.len() || s.len() != axes.len() {
                return Err(self.err(format!(
                    "{}: slice lists of different lengths",
                    Self::fn_label(fd)
                )));
            }
            (axes, b, e, s)
        } else {
            let s = if a.has("sliceStrides") {
                a.int("sliceStrides")?
            } else {
                1
            };
            (
                vec![a.axis("axis")?],
                vec![a.int("beginIndex")?],
                vec![a.int("endIndex")?],
                vec![s],
            )
        };
        let mut y = x.clone();
        for k in 0..axes.len() {
            let axis = self.static_axis(fd, axes[k], rank)?;
            let to_isize = |v: i64| {
                isize::try_from(v).map_err(|_| {
                    self.err(format!("{}: index {v} out of range", Self::fn_label(fd)))
                })
            };
            let op = Op::Slice {
                axis,
                begin: to_isize(begins[k])?,
                end: to_isize(ends[k])?,
                stride: to_isize(strides[k])?,
            };
            y = Function::primitive(op, &[y], &fd.name)
                .and_then(|f| f.output())
                .map_err(self.wrap(fd))?;
        }
        Ok(y)
    }

    /// The full Python-order target shape of a reshape (CNTK may reshape a range of
    /// axes `[beginAxis, endAxis)` only).
    fn reshape_target(&self, fd: &FnDesc, a: &Dict, in_shape: &Shape) -> Result<Shape> {
        let label = Self::fn_label(fd);
        let new: Vec<usize> = a
            .shape("newShape")?
            .shape_dim
            .iter()
            .rev()
            .map(|&d| {
                if d == CNTK_INFERRED {
                    Ok(INFERRED)
                } else if d > crate::limits::current().max_sample_elements as u64 {
                    Err(self.err(format!(
                        "{label}: reshape dimension {d} is more than the limit of {} elements \
                         per sample ({})",
                        crate::limits::current().max_sample_elements,
                        crate::limits::how_to_raise("max_sample_elements")
                    )))
                } else {
                    Ok(d as usize)
                }
            })
            .collect::<Result<_>>()?;
        let rank = in_shape.rank();
        let idx = |key: &str, default: usize| -> Result<usize> {
            if !a.has(key) {
                return Ok(default);
            }
            let i = a.axis(key)?.static_axis_idx;
            if i < 0 || i as usize > rank {
                return Ok(default);
            }
            Ok(i as usize)
        };
        let begin = idx("beginAxis", 0)?;
        let end = idx("endAxis", rank)?;
        if begin > end {
            return Err(self.err(format!(
                "{label}: reshape of axes {begin}..{end} (as stored) is empty"
            )));
        }
        // CNTK axes [begin, end) are Python axes [rank-end, rank-begin).
        let d = in_shape.dims();
        let mut dims = d[..rank - end].to_vec();
        dims.extend(new);
        dims.extend_from_slice(&d[rank - begin..]);
        Ok(Shape::new(dims))
    }

    /// Every unsupported primitive reachable from the root (block bodies included,
    /// except bodies of blocks loaded as one op), as one error.
    pub fn check_supported(&self, root: &'a str) -> Result<()> {
        let mut found: Vec<Unsupported> = Vec::new();
        let mut seen: HashSet<&str> = HashSet::new();
        let mut stack: Vec<(&str, String)> = vec![(root, String::new())];
        while let Some((uid, within)) = stack.pop() {
            let Some(fd) = self.fns.get(uid).copied() else {
                continue;
            };
            if !seen.insert(fd.uid.as_str()) {
                continue;
            }
            let push_inputs = |stack: &mut Vec<(&'a str, String)>, list: &'a [String]| {
                for i in list {
                    if let Some((f, _)) = split_output(i) {
                        stack.push((f, within.clone()));
                    }
                }
            };
            match &fd.block {
                Some(b) => {
                    push_inputs(&mut stack, &fd.inputs);
                    let args: Vec<String> = b.arguments.iter().map(|(_, v)| v.clone()).collect();
                    for v in &args {
                        if let Some((f, _)) = split_output(v) {
                            if let Some(fd2) = self.fns.get(f) {
                                stack.push((fd2.uid.as_str(), within.clone()));
                            }
                        }
                    }
                    if self.block_op(fd).is_none() {
                        let here = if fd.name.is_empty() {
                            format!("block {} {}", b.op_name, fd.uid)
                        } else {
                            format!("block {} '{}' {}", b.op_name, fd.name, fd.uid)
                        };
                        let inner = if within.is_empty() {
                            here
                        } else {
                            format!("{within} / {here}")
                        };
                        stack.push((b.root.as_str(), inner));
                    }
                }
                None if fd.op == seq_conv::TO_SEQUENCE => match seq_conv::find(&self.fns, fd) {
                    // a sequential convolution loads as one op on (W, x)
                    Some(m) => {
                        for i in [m.w, m.x] {
                            if let Some((f, _)) = split_output(i) {
                                stack.push((f, within.clone()));
                            }
                        }
                    }
                    None => {
                        found.push(Unsupported {
                            code: fd.op,
                            uid: fd.uid.clone(),
                            name: fd.name.clone(),
                            within: within.clone(),
                            detail: None,
                        });
                        push_inputs(&mut stack, &fd.inputs);
                    }
                },
                None => {
                    let detail = unsupported_form(fd);
                    if fd.op != COMBINE && fd.op != BLOCK && (!supported(fd.op) || detail.is_some())
                    {
                        found.push(Unsupported {
                            code: fd.op,
                            uid: fd.uid.clone(),
                            name: fd.name.clone(),
                            within: within.clone(),
                            detail,
                        });
                    }
                    push_inputs(&mut stack, &fd.inputs);
                }
            }
        }
        if found.is_empty() {
            return Ok(());
        }
        found.sort_by(|a, b| a.uid.cmp(&b.uid));
        let list: Vec<String> = found
            .iter()
            .map(|u| {
                let mut s = format!("op {} {} in function {}", u.code, op_name(u.code), u.uid);
                if !u.name.is_empty() {
                    s.push_str(&format!(" '{}'", u.name));
                }
                if let Some(d) = u.detail {
                    s.push_str(&format!(" with {d}"));
                }
                if !u.within.is_empty() {
                    s.push_str(&format!(" (inside {})", u.within));
                }
                s
            })
            .collect();
        Err(Error::Unsupported(format!(
            "{}: the model uses {} CNTK op(s) rntk cannot load: {}",
            self.file,
            found.len(),
            list.join("; ")
        )))
    }

    /// Build the model's root function and close its recurrent loops.
    pub fn build(mut self, root: &str) -> Result<Function> {
        let built = self.build_fn(root)?;
        let f = self.function_of(&built)?;
        let pending = std::mem::take(&mut self.pending);
        let mut pairs = Vec::with_capacity(pending.len());
        for (ph, uid) in pending {
            let real = self.var(&uid)?;
            pairs.push((ph, real));
        }
        f.replace_placeholders(&pairs)
            .map_err(|e| self.err(format!("closing recurrent loops: {e}")))?;
        let outs = f.outputs();
        let compiled = match outs.first().map(|o| o.dtype()) {
            Some(DType::F64) => Executor::<f64>::new(&outs).map(|_| ()),
            _ => Executor::<f32>::new(&outs).map(|_| ()),
        };
        match compiled {
            Err(e @ Error::CycleWithoutDelay { .. }) => Err(self.err(e.to_string())),
            _ => Ok(f),
        }
    }
}

fn int_vec(a: &Dict, key: &str) -> Result<Vec<i64>> {
    use super::proto::dictionary_value::Value as V;
    let d = a.d.data.get(key).and_then(|v| v.value.as_ref());
    match d {
        Some(V::VectorValue(v)) => v
            .value
            .iter()
            .map(|x| match x.value {
                Some(V::IntValue(n)) => Ok(i64::from(n)),
                Some(V::SizeTValue(n)) => i64::try_from(n).map_err(|_| a.err("index too large")),
                _ => Err(a.err(format!("key '{key}' must hold a Vector of Int"))),
            })
            .collect(),
        _ => Err(a.err(format!("key '{key}' must hold a Vector of Int"))),
    }
}

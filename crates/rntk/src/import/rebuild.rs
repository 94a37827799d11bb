//! CNTK graph → rntk graph. Variables and function outputs are resolved by uid, depth
//! first from the root, so the file's order does not matter. A reference to an output
//! of a function that is still being built (a recurrent loop through past_value /
//! future_value) becomes a placeholder of the output's declared shape, replaced by the
//! real output once everything is built; the executor then checks that every cycle
//! passes through a delay. Blocks become rntk blocks with their CNTK op name and name.

mod block_ops;
mod primitive;
mod supported;

use super::model::{CntkModel, DynAxisDesc, FnDesc, VarDesc, VarKindCode};
use super::op_codes::{op_name, COMBINE};
use super::seq_conv;
use crate::error::{Error, Result};
use crate::exec::Executor;
use crate::graph::{
    constant, input_variable_with, parameter_from, placeholder, Axis, DynamicAxes, Function,
    InputOptions, Variable,
};
use crate::tensor::DType;
use std::collections::{HashMap, HashSet};

/// `<function uid>_Output_<i>` → (function uid, i).
fn split_output(uid: &str) -> Option<(&str, usize)> {
    let at = uid.rfind("_Output_")?;
    let idx = uid[at + "_Output_".len()..].parse().ok()?;
    Some((&uid[..at], idx))
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

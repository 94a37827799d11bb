//! Description → graph: validate every index and shape of a (possibly hostile)
//! description, then rebuild the graph through the ordinary constructors
//! (`Function::primitive` re-runs shape inference, `Function::block`,
//! `Function::combine`, `replace_placeholders`), and require the re-inferred outputs to
//! equal the stored ones.

use super::graph_format::*;
use crate::error::{Error, Result};
use crate::exec::Executor;
use crate::graph::{
    constant, input_variable_with, parameter_from, placeholder, Axis, DynamicAxes, Function,
    InputOptions, VarInfo, Variable,
};
use crate::ops::Op;
use crate::tensor::{DType, Shape, Tensor};
use std::collections::HashMap;

struct Loader<'a> {
    file: &'a str,
    axes: Vec<Axis>,
    leaves: Vec<Variable>,
    fns: Vec<Function>,
}

fn leaf_kind_name(k: LeafKind) -> &'static str {
    match k {
        LeafKind::Input => "input",
        LeafKind::Parameter => "parameter",
        LeafKind::Constant => "constant",
        LeafKind::Placeholder => "placeholder",
    }
}

fn describe_info(i: &VarInfo) -> String {
    format!(
        "{}{} {}{}{}",
        i.axes.notation(),
        i.shape,
        i.dtype,
        if i.is_sparse { " sparse" } else { "" },
        if i.needs_gradient {
            " needs_gradient"
        } else {
            ""
        }
    )
}

impl Loader<'_> {
    fn err(&self, detail: impl Into<String>) -> Error {
        Error::Format {
            file: self.file.to_string(),
            detail: detail.into(),
        }
    }

    /// Every dimension known (`INFERRED` only where `allow_inferred`) and one sample
    /// within `limits.max_sample_elements` (a zero dimension does not exempt the others).
    fn check_shape(&self, what: &str, s: &Shape, allow_inferred: bool) -> Result<()> {
        if !allow_inferred && s.has_inferred() {
            return Err(self.err(format!(
                "{what}: expected a fully known shape, found {s} (-1 is only allowed \
                 in outputs of sequence.unpack and in reshape targets)"
            )));
        }
        crate::limits::check_sample_shape(s).map_err(|d| self.err(format!("{what}: {d}")))
    }

    fn info(&self, what: &str, d: &InfoDesc, allow_inferred: bool) -> Result<VarInfo> {
        self.check_shape(what, &d.shape, allow_inferred)?;
        let axes = match d.dynamic_axes {
            AxesDesc::None => DynamicAxes::None,
            AxesDesc::Batch => DynamicAxes::Batch,
            AxesDesc::Sequence(k) => DynamicAxes::Sequence(
                self.axes
                    .get(k)
                    .ok_or_else(|| {
                        self.err(format!(
                            "{what}: sequence axis #{k} does not exist (the file lists {} axes)",
                            self.axes.len()
                        ))
                    })?
                    .clone(),
            ),
        };
        Ok(VarInfo {
            shape: d.shape.clone(),
            dtype: match d.dtype {
                DTypeDesc::Float32 => DType::F32,
                DTypeDesc::Float64 => DType::F64,
            },
            axes,
            is_sparse: d.is_sparse,
            needs_gradient: d.needs_gradient,
        })
    }

    /// The variable `r` names; functions must already be built (`fns` holds those
    /// listed before the one being built).
    fn var(&self, what: &str, r: VarRef) -> Result<Variable> {
        match r {
            VarRef::Leaf(i) => self.leaves.get(i).cloned().ok_or_else(|| {
                self.err(format!(
                    "{what}: refers to variable #{i}, but the file lists {} variables",
                    self.leaves.len()
                ))
            }),
            VarRef::Output(f, k) => {
                let func = self.fns.get(f).ok_or_else(|| {
                    self.err(format!(
                        "{what}: refers to function #{f}, which is not listed before it \
                         (functions must come after every function they use)"
                    ))
                })?;
                func.outputs().get(k).cloned().ok_or_else(|| {
                    self.err(format!(
                        "{what}: refers to output {k} of function #{f}, which has {} outputs",
                        func.outputs().len()
                    ))
                })
            }
        }
    }

    fn leaf(
        &self,
        i: usize,
        l: &LeafDesc,
        tensors: &mut HashMap<String, Tensor>,
    ) -> Result<Variable> {
        let what = format!(
            "variable #{i} ({} {} '{}')",
            leaf_kind_name(l.kind),
            l.uid,
            l.name
        );
        let info = self.info(&what, &l.info, false)?;
        let wrap = |e: Error| self.err(format!("{what}: {e}"));
        if l.replaced_by.is_some() && l.kind != LeafKind::Placeholder {
            return Err(self.err(format!(
                "{what}: only a placeholder can have a replacement ('replaced_by')"
            )));
        }
        let v = match l.kind {
            LeafKind::Parameter | LeafKind::Constant => {
                let key = l.tensor.as_ref().ok_or_else(|| {
                    self.err(format!("{what}: expected a 'tensor' key naming its value"))
                })?;
                let t = tensors.remove(key).ok_or_else(|| {
                    self.err(format!(
                        "{what}: its value, tensor '{key}', is not in the file (or another \
                         variable already uses it)"
                    ))
                })?;
                if t.shape() != &info.shape || t.dtype() != info.dtype {
                    return Err(self.err(format!(
                        "{what}: declared {} {}, but tensor '{key}' is {} {}",
                        info.dtype,
                        info.shape,
                        t.dtype(),
                        t.shape()
                    )));
                }
                if l.kind == LeafKind::Parameter {
                    parameter_from(t, &l.name)
                } else {
                    constant(t, &l.name)
                }
            }
            LeafKind::Input | LeafKind::Placeholder => {
                if let Some(key) = &l.tensor {
                    return Err(self.err(format!(
                        "{what}: an {} has no value, but tensor '{key}' is given",
                        leaf_kind_name(l.kind)
                    )));
                }
                if l.kind == LeafKind::Input {
                    input_variable_with(
                        info.shape.clone(),
                        InputOptions {
                            dtype: info.dtype,
                            is_sparse: info.is_sparse,
                            needs_gradient: info.needs_gradient,
                            dynamic_axes: info.axes.clone(),
                            name: l.name.clone(),
                        },
                    )
                } else {
                    placeholder(info.shape.clone(), info.dtype, info.axes.clone(), &l.name)
                        .map_err(wrap)?
                }
            }
        };
        let got = v.info();
        if got != info {
            return Err(self.err(format!(
                "{what}: stored as {}, but a {} is {}",
                describe_info(&info),
                leaf_kind_name(l.kind),
                describe_info(&got)
            )));
        }
        Ok(v)
    }

    /// Attributes whose sizes shape inference multiplies must be representable.
    fn check_op(&self, what: &str, op: &Op) -> Result<()> {
        if let Op::Reshape { shape } = op {
            self.check_shape(&format!("{what}: reshape target"), shape, true)?;
        }
        Ok(())
    }

    fn function(&self, i: usize, fd: &FunctionDesc) -> Result<Function> {
        let what = format!("function #{i} ({} '{}')", fd.uid, fd.name);
        let inputs = fd
            .inputs
            .iter()
            .enumerate()
            .map(|(k, r)| self.var(&format!("{what}, input {k}"), *r))
            .collect::<Result<Vec<_>>>()?;
        let wrap = |e: Error| self.err(format!("{what}: {e}"));
        let f = match &fd.kind {
            FnKindDesc::Primitive(op) => {
                self.check_op(&what, op)?;
                Function::primitive(op.clone(), &inputs, &fd.name).map_err(wrap)?
            }
            FnKindDesc::Composite => {
                // inputs past the stored outputs are hidden values (`combine_with_hidden`)
                let (outs, hidden) = inputs.split_at(fd.outputs.len().min(inputs.len()));
                Function::combine_with_hidden(outs, hidden, &fd.name).map_err(wrap)?
            }
            FnKindDesc::Block {
                op_name,
                body,
                args,
            } => {
                let body_fn = self.fns.get(*body).ok_or_else(|| {
                    self.err(format!(
                        "{what}: its body, function #{body}, is not listed before it"
                    ))
                })?;
                if args.len() != inputs.len() {
                    return Err(self.err(format!(
                        "{what}: a block needs one argument placeholder per input: {} \
                         arguments for {} inputs",
                        args.len(),
                        inputs.len()
                    )));
                }
                let pairs = args
                    .iter()
                    .zip(&inputs)
                    .map(|(&a, x)| {
                        Ok((
                            self.var(&format!("{what}, argument"), VarRef::Leaf(a))?,
                            x.clone(),
                        ))
                    })
                    .collect::<Result<Vec<_>>>()?;
                Function::block(body_fn, &pairs, op_name, &fd.name).map_err(wrap)?
            }
        };
        let outs = f.outputs();
        if outs.len() != fd.outputs.len() {
            return Err(self.err(format!(
                "{what}: stored with {} outputs, but rebuilt it has {}",
                fd.outputs.len(),
                outs.len()
            )));
        }
        for (k, (o, d)) in outs.iter().zip(&fd.outputs).enumerate() {
            let want = self.info(&format!("{what}, output {k}"), d, true)?;
            let got = o.info();
            if got != want {
                return Err(self.err(format!(
                    "{what}: output {k} is stored as {}, but shape inference gives {}",
                    describe_info(&want),
                    describe_info(&got)
                )));
            }
        }
        Ok(f)
    }

    /// Placeholders may be replaced by placeholders, but never in a circle (linear:
    /// each variable is followed once).
    fn check_replacement_chains(&self, desc: &GraphDesc) -> Result<()> {
        let n = desc.variables.len();
        // 0: not seen, 1: on the chain being followed, 2: known to end.
        let mut state = vec![0u8; n];
        for start in 0..n {
            let mut chain = Vec::new();
            let mut at = start;
            let circle = loop {
                if state[at] != 0 {
                    break state[at] == 1;
                }
                state[at] = 1;
                chain.push(at);
                match desc.variables[at].replaced_by {
                    Some(VarRef::Leaf(next)) if next < n => at = next,
                    _ => break false,
                }
            };
            if circle {
                return Err(self.err(format!(
                    "variable #{at} ('{}'): placeholders replace each other in a circle, so \
                     no value ever feeds them",
                    desc.variables[at].name
                )));
            }
            for c in chain {
                state[c] = 2;
            }
        }
        Ok(())
    }
}

/// Check `desc` (read from `file`) and rebuild its root function with `tensors` as
/// the values of its parameters and constants; every tensor must be used.
pub(crate) fn rebuild(
    file: &str,
    desc: &GraphDesc,
    mut tensors: HashMap<String, Tensor>,
) -> Result<Function> {
    let mut ld = Loader {
        file,
        axes: Vec::with_capacity(desc.axes.len()),
        leaves: Vec::with_capacity(desc.variables.len()),
        fns: Vec::with_capacity(desc.functions.len()),
    };
    if desc.format != FORMAT || desc.version != VERSION {
        return Err(ld.err(format!(
            "the graph description says format '{}' version {}, expected '{FORMAT}' version \
             {VERSION} as in the file's metadata",
            desc.format, desc.version
        )));
    }
    for a in &desc.axes {
        ld.axes.push(if a.default {
            Axis::default_dynamic_axis()
        } else {
            Axis::new(&a.name)
        });
    }
    for (i, l) in desc.variables.iter().enumerate() {
        let v = ld.leaf(i, l, &mut tensors)?;
        ld.leaves.push(v);
    }
    let mut unused: Vec<&String> = tensors.keys().collect();
    unused.sort();
    if let Some(k) = unused.first() {
        return Err(ld.err(format!(
            "tensor '{k}' is not the value of any variable of the graph ({} unused tensors)",
            unused.len()
        )));
    }
    ld.check_replacement_chains(desc)?;
    for (i, fd) in desc.functions.iter().enumerate() {
        let f = ld.function(i, fd)?;
        ld.fns.push(f);
    }
    let root = ld.fns.get(desc.root).cloned().ok_or_else(|| {
        ld.err(format!(
            "the root is function #{}, but the file lists {} functions",
            desc.root,
            desc.functions.len()
        ))
    })?;
    let mut pairs = Vec::new();
    for (i, l) in desc.variables.iter().enumerate() {
        if let Some(r) = l.replaced_by {
            let what = format!("replacement of variable #{i} ('{}')", l.name);
            pairs.push((ld.leaves[i].clone(), ld.var(&what, r)?));
        }
    }
    root.replace_placeholders(&pairs)
        .map_err(|e| ld.err(format!("closing recurrent loops: {e}")))?;
    let outs = root.outputs();
    let listed = desc
        .outputs
        .iter()
        .map(|r| ld.var("model output", *r))
        .collect::<Result<Vec<_>>>()?;
    if outs != listed {
        return Err(ld.err(format!(
            "the model outputs listed ({} variables) are not the outputs of the root \
             function #{} ({} variables)",
            listed.len(),
            desc.root,
            outs.len()
        )));
    }
    check_loops(&ld, &outs)?;
    Ok(root)
}

/// Every cycle must pass through past_value / future_value: compile the outputs as
/// the executor would and keep only that verdict (other compile errors, e.g. free
/// placeholders of a partial model, are reported when the model is run).
fn check_loops(ld: &Loader, outs: &[Variable]) -> Result<()> {
    let compiled = match outs.first().map(|o| o.dtype()) {
        Some(DType::F64) => Executor::<f64>::new(outs).map(|_| ()),
        _ => Executor::<f32>::new(outs).map(|_| ()),
    };
    match compiled {
        Err(e @ Error::CycleWithoutDelay { .. }) => Err(ld.err(e.to_string())),
        _ => Ok(()),
    }
}

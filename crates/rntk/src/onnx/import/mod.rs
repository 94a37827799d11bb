//! ONNX model → rntk graph. Each ONNX value becomes an abstract value (`value.rs`):
//! mostly an rntk variable with the positions of its sequence and batch axes among
//! the ONNX dimensions, also constants, shape vectors with dynamic entries, and the
//! lengths / mask of a sequence axis (from rntk's own files). Nodes map onto rntk's
//! ops (`ops.rs` dispatches; `math.rs`, `shape.rs`, `consts.rs`, `conv.rs`); `LSTM` /
//! `GRU` / `RNN` become rntk's recurrent layers (fused where they match), `Scan` a
//! recurrence over its body, rntk's `ai.rntk` sequence functions its sequence ops
//! (`rnn.rs`).
//!
//! Inputs: dimensions named `batch` (or containing "batch") are the batch axis, another
//! leading named dimension the sequence axis (`sequence`: the default one); CNTK 2.7's
//! files lay inputs out `[Sequence, 1, …]` (batch fixed to 1). A model evaluates each
//! sequence as ONNX evaluates that sequence alone (ragged batches need no padding).
//! Float initializers become parameters (an imported model trains like any other).
//! Ops rntk has no form for are listed together in one error.

mod consts;
mod conv;
mod math;
pub(crate) mod model;
mod ops;
mod rnn;
mod shape;
mod value;

use super::proto::{GraphProto, ModelProto, NodeProto, ValueInfoProto};
use crate::error::{Error, Result};
use crate::graph::{input_variable_with, Axis, DynamicAxes, Function, InputOptions, Variable};
use crate::tensor::DType;
use model::{format_err, label, op};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::rc::Rc;
use value::{Av, SDim, Tv};

pub use model::is_onnx_model;

/// The importer's state for one model.
pub(crate) struct Imp<'a> {
    pub file: &'a str,
    pub opset: i64,
    pub producer: String,
    /// Values by name, innermost scope last (Scan bodies).
    pub scopes: Vec<HashMap<String, Av>>,
    /// Parameters made from initializers, by name.
    pub params: HashMap<String, Variable>,
    /// Named sequence axes of the inputs.
    pub axes: HashMap<String, Axis>,
    /// Ops that cannot be imported, for the one error.
    pub refused: Vec<String>,
    pub dtype: DType,
    /// Outer values a Scan body reads per step: name → per-step value.
    pub dir: Option<&'a Path>,
}

impl<'a> Imp<'a> {
    pub fn err(&self, n: &NodeProto, detail: impl Into<String>) -> Error {
        format_err(
            self.file,
            format!("node '{}' ({}): {}", label(n), op(n), detail.into()),
        )
    }

    pub fn get(&self, name: &str) -> Option<Av> {
        self.scopes.iter().rev().find_map(|s| s.get(name).cloned())
    }

    pub fn put(&mut self, name: &str, v: Av) {
        if let Some(s) = self.scopes.last_mut() {
            s.insert(name.to_string(), v);
        }
    }

    /// Input `i` of node `n` (absent optional inputs are `None`).
    pub fn input(&self, n: &NodeProto, i: usize) -> Result<Option<Av>> {
        match n.input.get(i).map(|s| s.as_str()) {
            None | Some("") => Ok(None),
            Some(name) => self
                .get(name)
                .map(Some)
                .ok_or_else(|| self.err(n, format!("reads '{name}', which nothing defines"))),
        }
    }

    pub fn need(&self, n: &NodeProto, i: usize) -> Result<Av> {
        self.input(n, i)?
            .ok_or_else(|| self.err(n, format!("input {i} is missing")))
    }

    /// The sequence axis named `dim` in the inputs' shapes.
    fn axis_named(&mut self, dim: &str) -> Axis {
        if dim == "sequence" || dim == "Sequence" {
            return Axis::default_dynamic_axis();
        }
        self.axes
            .entry(dim.to_string())
            .or_insert_with(|| Axis::new(dim))
            .clone()
    }

    /// A graph input as an rntk input variable (or the lengths of a sequence axis).
    fn graph_input(&mut self, vi: &ValueInfoProto) -> Result<Av> {
        use super::proto::{tensor_shape_proto::dimension::Value as D, type_proto::Value as T};
        let name = vi.name.clone().unwrap_or_default();
        let tensor = match vi.r#type.as_ref().and_then(|t| t.value.as_ref()) {
            Some(T::TensorType(t)) => t,
            _ => {
                return Err(format_err(
                    self.file,
                    format!("input '{name}' is not a tensor"),
                ))
            }
        };
        let elem = tensor.elem_type.unwrap_or(0);
        let dims: Vec<Option<D>> = tensor
            .shape
            .as_ref()
            .map(|s| s.dim.iter().map(|d| d.value.clone()).collect())
            .unwrap_or_default();
        let named =
            |d: &Option<D>| matches!(d, Some(D::DimParam(p)) if !p.is_empty()) || d.is_none();
        let param = |d: &Option<D>| match d {
            Some(D::DimParam(p)) => p.clone(),
            _ => String::new(),
        };
        use super::builder::{INT32, INT64};
        // lengths of a sequence axis: an int vector over the batch
        if (elem == INT32 || elem == INT64) && dims.len() == 1 && name.ends_with("lens") {
            return Ok(Av::Lens);
        }
        // where the dynamic axes sit
        let cntk = self.producer == "CNTK";
        let lead: Vec<usize> = (0..dims.len()).take_while(|&i| named(&dims[i])).collect();
        let (mut t, mut b): (Option<usize>, Option<usize>) = (None, None);
        let mut seq_axis = None;
        if cntk {
            if lead.first() == Some(&0) && dims.len() >= 2 {
                t = Some(0);
                b = Some(1);
                seq_axis = Some(self.axis_named(&param(&dims[0])));
            } else if !dims.is_empty() {
                b = Some(0);
            }
        } else {
            for &i in lead.iter().take(2) {
                let p = param(&dims[i]).to_lowercase();
                if p.contains("batch")
                    || (lead.len() == 1 && !p.contains("seq") && !p.contains("time"))
                {
                    b = Some(i);
                } else if t.is_none() {
                    t = Some(i);
                    seq_axis = Some(self.axis_named(&param(&dims[i])));
                } else {
                    b = Some(i);
                }
            }
            if t.is_none() && b.is_none() && !dims.is_empty() {
                // no dynamic dimension named: the first is the batch
                b = Some(0);
            }
        }
        let mut sample = Vec::new();
        let mut sd = Vec::new();
        for (i, d) in dims.iter().enumerate() {
            if Some(i) == t {
                sd.push(SDim::T);
            } else if Some(i) == b {
                sd.push(SDim::B);
            } else {
                let n = match d {
                    Some(D::DimValue(v)) if *v >= 0 => *v as usize,
                    _ => {
                        return Err(format_err(
                            self.file,
                            format!(
                                "input '{name}': dimension {i} has no size (only the sequence and batch dimensions may be dynamic)"
                            ),
                        ))
                    }
                };
                sample.push(n);
                sd.push(SDim::N(n));
            }
        }
        let shape = crate::tensor::Shape::new(sample);
        crate::limits::check_sample_shape(&shape)
            .map_err(|e| format_err(self.file, format!("input '{name}': {e}")))?;
        let dynamic_axes = match (&seq_axis, b) {
            (Some(a), _) => DynamicAxes::Sequence(a.clone()),
            (None, Some(_)) => DynamicAxes::Batch,
            (None, None) => DynamicAxes::None,
        };
        let dtype = if elem == super::builder::DOUBLE {
            DType::F64
        } else {
            self.dtype
        };
        let var = input_variable_with(
            shape,
            InputOptions {
                dtype,
                dynamic_axes,
                name: name.clone(),
                ..Default::default()
            },
        );
        Ok(Av::T(Tv { var, dims: sd }))
    }

    /// Import every node of `g` in order (values of outer scopes are visible).
    pub fn nodes(&mut self, g: &'a GraphProto, known: &HashSet<String>) -> Result<()> {
        let order = model::ordered(self.file, g, known)?;
        // outputs of refused nodes and of the nodes reading them (listed once, at
        // the node that is refused)
        let mut skipped: HashSet<&str> = HashSet::new();
        for n in order {
            if n.input.iter().any(|i| skipped.contains(i.as_str())) {
                skipped.extend(n.output.iter().map(|o| o.as_str()));
                continue;
            }
            match self.node(n) {
                Ok(outs) => {
                    for (name, v) in n.output.iter().zip(outs) {
                        if !name.is_empty() {
                            self.put(name, v);
                        }
                    }
                }
                Err(Error::Unsupported(why)) => {
                    self.refused
                        .push(format!("node '{}' ({}): {why}", label(n), op(n)));
                    // its outputs stay undefined; nodes reading them are skipped too
                    skipped.extend(n.output.iter().map(|o| o.as_str()));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// The names a graph defines before its nodes run.
fn defined(g: &GraphProto) -> HashSet<String> {
    let mut s: HashSet<String> = g.input.iter().filter_map(|i| i.name.clone()).collect();
    s.extend(g.initializer.iter().filter_map(|t| t.name.clone()));
    s
}

/// Build the rntk graph of a decoded model.
fn import(file: &str, m: &ModelProto, dir: Option<&Path>) -> Result<Function> {
    let g = m
        .graph
        .as_ref()
        .ok_or_else(|| format_err(file, "no graph"))?;
    let mut opset = None;
    for o in &m.opset_import {
        match o.domain.as_deref() {
            None | Some("") | Some("ai.onnx") => opset = o.version,
            _ => {}
        }
    }
    let opset = opset.unwrap_or(1);
    if !(7..=21).contains(&opset) {
        return Err(Error::Unsupported(format!(
            "{file}: ONNX opset {opset}: rntk reads opsets 7 to 21"
        )));
    }
    if !g.sparse_initializer.is_empty() {
        return Err(Error::Unsupported(format!("{file}: sparse initializers")));
    }
    // the model's float type: the first float input's
    let dtype = g
        .input
        .iter()
        .filter_map(|i| match i.r#type.as_ref()?.value.as_ref()? {
            super::proto::type_proto::Value::TensorType(t) => t.elem_type,
            _ => None,
        })
        .find(|&e| e == super::builder::FLOAT || e == super::builder::DOUBLE)
        .map(|e| {
            if e == super::builder::DOUBLE {
                DType::F64
            } else {
                DType::F32
            }
        })
        .unwrap_or(DType::F32);
    let mut imp = Imp {
        file,
        opset,
        producer: m.producer_name.clone().unwrap_or_default(),
        scopes: vec![HashMap::new()],
        params: HashMap::new(),
        axes: HashMap::new(),
        refused: Vec::new(),
        dtype,
        dir,
    };
    let inits: HashSet<String> = g
        .initializer
        .iter()
        .filter_map(|t| t.name.clone())
        .collect();
    for t in &g.initializer {
        let c = model::tensor(file, t, dir)?;
        let name = t.name.clone().unwrap_or_default();
        let learnable = c.data.is_float();
        imp.put(&name, Av::C(Rc::new(c), learnable));
    }
    for i in &g.input {
        let name = i.name.clone().unwrap_or_default();
        if inits.contains(&name) {
            continue; // IR < 4: initializers are listed as inputs too
        }
        let v = imp.graph_input(i)?;
        imp.put(&name, v);
    }
    imp.nodes(g, &defined(g))?;
    if !imp.refused.is_empty() {
        return Err(Error::Unsupported(format!(
            "{file}: {} ONNX node(s) rntk cannot import; nothing was loaded:\n  {}",
            imp.refused.len(),
            imp.refused.join("\n  ")
        )));
    }
    let mut outs = Vec::new();
    for o in &g.output {
        let name = o.name.clone().unwrap_or_default();
        match imp.get(&name) {
            Some(Av::Lens) => continue,
            Some(v) => {
                let t = imp.tv(&v, None)?;
                let var = imp.exact(&t)?;
                outs.push(crate::functions::alias(&var, &name)?);
            }
            None => {
                return Err(format_err(
                    file,
                    format!("output '{name}' is not computed by any node"),
                ))
            }
        }
    }
    if outs.is_empty() {
        return Err(format_err(file, "the model has no outputs"));
    }
    let name = g.name.clone().unwrap_or_default();
    Function::combine(&outs, &name)
}

/// Load the ONNX model in `bytes`; `dir` is its folder (for external data).
pub fn load_onnx_bytes(file: &str, bytes: &[u8], dir: Option<&Path>) -> Result<Function> {
    let m = model::decode(file, bytes)?;
    // Deep graphs are built on a thread whose stack grows with them.
    let nodes = m.graph.as_ref().map_or(0, |g| g.node.len());
    if nodes <= 2000 {
        return import(file, &m, dir);
    }
    let stack = nodes.saturating_mul(16 << 10).saturating_add(8 << 20);
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("rntk-onnx-import".into())
            .stack_size(stack)
            .spawn_scoped(s, || import(file, &m, dir))
            .map_err(|e| {
                format_err(
                    file,
                    format!("a graph of {nodes} nodes cannot be imported: {e}"),
                )
            })?
            .join()
            .map_err(|_| format_err(file, "importing failed unexpectedly"))?
    })
}

/// Load an ONNX model file.
pub fn load_onnx(path: impl AsRef<Path>) -> Result<Function> {
    let path = path.as_ref();
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| Error::Io {
        file: file.clone(),
        detail: format!("cannot read the model: {e}"),
    })?;
    let dir = path.parent().map(|p| {
        if p.as_os_str().is_empty() {
            Path::new(".")
        } else {
            p
        }
    });
    load_onnx_bytes(&file, &bytes, dir)
}

impl Function {
    /// Load an ONNX model (see [`crate::onnx`]).
    pub fn load_onnx(path: impl AsRef<Path>) -> Result<Function> {
        load_onnx(path)
    }
}

//! Building ONNX graphs: unique names, nodes with attributes, constants and tensors,
//! and the few ops whose form depends on the opset (axes as attribute or input).

use super::proto::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto,
    AttributeProto, GraphProto, NodeProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};
use crate::tensor::{DType, Tensor};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

/// The domain of rntk's sequence functions (model-local ONNX functions).
pub const RNTK_DOMAIN: &str = "ai.rntk";

pub(crate) const FLOAT: i32 = DataType::Float as i32;
pub(crate) const DOUBLE: i32 = DataType::Double as i32;
pub(crate) const INT64: i32 = DataType::Int64 as i32;
pub(crate) const INT32: i32 = DataType::Int32 as i32;
pub(crate) const BOOL: i32 = DataType::Bool as i32;

/// The ONNX element type of an rntk dtype.
pub(crate) fn elem_type(d: DType) -> i32 {
    match d {
        DType::F32 => FLOAT,
        DType::F64 => DOUBLE,
    }
}

fn attr(name: &str, ty: AttributeType) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_string()),
        r#type: Some(ty as i32),
        ..Default::default()
    }
}

pub(crate) fn attr_i(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        i: Some(v),
        ..attr(name, AttributeType::Int)
    }
}
pub(crate) fn attr_f(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        f: Some(v),
        ..attr(name, AttributeType::Float)
    }
}
pub(crate) fn attr_s(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        s: Some(v.as_bytes().to_vec()),
        ..attr(name, AttributeType::String)
    }
}
pub(crate) fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        ints: v.to_vec(),
        ..attr(name, AttributeType::Ints)
    }
}
pub(crate) fn attr_strings(name: &str, v: &[&str]) -> AttributeProto {
    AttributeProto {
        strings: v.iter().map(|s| s.as_bytes().to_vec()).collect(),
        ..attr(name, AttributeType::Strings)
    }
}
pub(crate) fn attr_g(name: &str, g: GraphProto) -> AttributeProto {
    AttributeProto {
        g: Some(g),
        ..attr(name, AttributeType::Graph)
    }
}
pub(crate) fn attr_t(name: &str, t: TensorProto) -> AttributeProto {
    AttributeProto {
        t: Some(t),
        ..attr(name, AttributeType::Tensor)
    }
}
/// An attribute of a function-body node that takes the value of the function's
/// attribute `of`.
pub(crate) fn attr_ref(name: &str, of: &str, ty: AttributeType) -> AttributeProto {
    AttributeProto {
        ref_attr_name: Some(of.to_string()),
        ..attr(name, ty)
    }
}

/// A tensor of `dims` holding `raw` (little-endian bytes of `elem`).
pub(crate) fn tensor_proto(name: &str, elem: i32, dims: &[i64], raw: Vec<u8>) -> TensorProto {
    TensorProto {
        name: Some(name.to_string()),
        data_type: Some(elem),
        dims: dims.to_vec(),
        raw_data: Some(raw),
        ..Default::default()
    }
}

pub(crate) fn i64_bytes(v: &[i64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// An rntk tensor as an ONNX tensor of the same shape and element type.
pub(crate) fn tensor_of(name: &str, t: &Tensor) -> TensorProto {
    let dims: Vec<i64> = t.shape().dims().iter().map(|&d| d as i64).collect();
    let raw: Vec<u8> = match t.dtype() {
        DType::F32 => t
            .as_slice::<f32>()
            .unwrap_or(&[])
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect(),
        DType::F64 => t
            .as_slice::<f64>()
            .unwrap_or(&[])
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect(),
    };
    tensor_proto(name, elem_type(t.dtype()), &dims, raw)
}

/// One dimension of an interface shape: a size or a named dynamic dimension.
#[derive(Clone, Debug)]
pub(crate) enum Dim {
    Fixed(usize),
    Named(String),
}

pub(crate) fn value_info(name: &str, elem: i32, dims: &[Dim]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| tensor_shape_proto::Dimension {
            value: Some(match d {
                Dim::Fixed(n) => tensor_shape_proto::dimension::Value::DimValue(*n as i64),
                Dim::Named(s) => tensor_shape_proto::dimension::Value::DimParam(s.clone()),
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: Some(name.to_string()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(elem),
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A value info with only the element type (subgraph inputs and outputs).
pub(crate) fn value_info_untyped_shape(name: &str, elem: i32) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.to_string()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(elem),
                shape: None,
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Names in use in a model (ONNX values are SSA across a graph and its subgraphs).
#[derive(Default)]
pub(crate) struct Names {
    used: HashSet<String>,
    next: u64,
}

impl Names {
    /// `hint` itself if free, else `hint_<n>`.
    pub fn claim(&mut self, hint: &str) -> String {
        let base: String = hint
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "_.:/-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let base = if base.is_empty() { "v".into() } else { base };
        if self.used.insert(base.clone()) {
            return base;
        }
        loop {
            self.next += 1;
            let n = format!("{base}_{}", self.next);
            if self.used.insert(n.clone()) {
                return n;
            }
        }
    }
}

/// The initializers of the main graph, shared by its subgraphs (which may refer to
/// outer values), small constants deduplicated by content.
#[derive(Default)]
pub(crate) struct Consts {
    pub inits: Vec<TensorProto>,
    by_content: HashMap<(i32, Vec<i64>, Vec<u8>), String>,
}

/// Builds the nodes of one graph (the main graph, a loop body or a function body).
pub(crate) struct Gb {
    pub nodes: Vec<NodeProto>,
    pub names: Rc<RefCell<Names>>,
    /// `None` in function bodies: constants become `Constant` nodes there.
    consts: Option<Rc<RefCell<Consts>>>,
    pub opset: i64,
}

impl Gb {
    pub fn main(opset: i64) -> Self {
        Gb {
            nodes: Vec::new(),
            names: Rc::new(RefCell::new(Names::default())),
            consts: Some(Rc::new(RefCell::new(Consts::default()))),
            opset,
        }
    }
    /// A subgraph of `self` (a loop body): same names, same initializers.
    pub fn sub(&self) -> Self {
        Gb {
            nodes: Vec::new(),
            names: self.names.clone(),
            consts: self.consts.clone(),
            opset: self.opset,
        }
    }
    /// A function body: its own names, constants as nodes.
    pub fn function(opset: i64) -> Self {
        Gb {
            nodes: Vec::new(),
            names: Rc::new(RefCell::new(Names::default())),
            consts: None,
            opset,
        }
    }

    pub fn initializers(&self) -> Vec<TensorProto> {
        self.consts
            .as_ref()
            .map(|c| c.borrow().inits.clone())
            .unwrap_or_default()
    }

    pub fn fresh(&self, hint: &str) -> String {
        self.names.borrow_mut().claim(hint)
    }

    /// Reserve `name` exactly (interface names); `false` if it is taken.
    pub fn reserve(&self, name: &str) -> bool {
        self.names.borrow_mut().used.insert(name.to_string())
    }

    /// A node of the default domain with one output.
    pub fn op(&mut self, op: &str, inputs: &[&str], attrs: Vec<AttributeProto>) -> String {
        self.op_n(op, inputs, 1, attrs).remove(0)
    }

    pub fn op_n(
        &mut self,
        op: &str,
        inputs: &[&str],
        n: usize,
        attrs: Vec<AttributeProto>,
    ) -> Vec<String> {
        let outs: Vec<String> = (0..n).map(|_| self.fresh(&op.to_lowercase())).collect();
        self.push("", op, inputs, &outs, attrs);
        outs
    }

    /// A node with the given output names.
    pub fn push(
        &mut self,
        domain: &str,
        op: &str,
        inputs: &[&str],
        outputs: &[String],
        attrs: Vec<AttributeProto>,
    ) {
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.to_vec(),
            name: Some(format!(
                "{op}_{}",
                outputs.first().map_or("", |s| s.as_str())
            )),
            op_type: Some(op.to_string()),
            domain: if domain.is_empty() {
                None
            } else {
                Some(domain.to_string())
            },
            attribute: attrs,
            ..Default::default()
        });
    }

    /// A call of one of rntk's sequence functions.
    pub fn call(
        &mut self,
        func: &str,
        inputs: &[&str],
        n: usize,
        attrs: Vec<AttributeProto>,
    ) -> Vec<String> {
        let outs: Vec<String> = (0..n).map(|_| self.fresh(&func.to_lowercase())).collect();
        self.push(RNTK_DOMAIN, func, inputs, &outs, attrs);
        outs
    }

    /// A constant tensor: an initializer of the main graph (deduplicated), or a
    /// `Constant` node in a function body.
    pub fn constant(&mut self, hint: &str, elem: i32, dims: &[i64], raw: Vec<u8>) -> String {
        match self.consts.clone() {
            Some(c) => {
                let key = (elem, dims.to_vec(), raw);
                if let Some(n) = c.borrow().by_content.get(&key) {
                    return n.clone();
                }
                let name = self.fresh(hint);
                let t = tensor_proto(&name, elem, dims, key.2.clone());
                let mut c = c.borrow_mut();
                c.inits.push(t);
                c.by_content.insert(key, name.clone());
                name
            }
            None => {
                let name = self.fresh(hint);
                let t = tensor_proto("", elem, dims, raw);
                self.push(
                    "",
                    "Constant",
                    &[],
                    std::slice::from_ref(&name),
                    vec![attr_t("value", t)],
                );
                name
            }
        }
    }

    /// A named initializer holding `t` (parameters and constants of the model).
    pub fn initializer(&mut self, hint: &str, t: &Tensor) -> String {
        let name = self.fresh(hint);
        let tp = tensor_of(&name, t);
        match self.consts.clone() {
            Some(c) => c.borrow_mut().inits.push(tp),
            None => {
                let mut tp = tp;
                tp.name = None;
                self.push(
                    "",
                    "Constant",
                    &[],
                    std::slice::from_ref(&name),
                    vec![attr_t("value", tp)],
                );
            }
        }
        name
    }

    pub fn i64s(&mut self, v: &[i64]) -> String {
        self.constant("c", INT64, &[v.len() as i64], i64_bytes(v))
    }
    pub fn i64_scalar(&mut self, v: i64) -> String {
        self.constant("c", INT64, &[], i64_bytes(&[v]))
    }
    /// A scalar of the model's float type.
    pub fn scalar(&mut self, v: f64, d: DType) -> String {
        let raw = match d {
            DType::F32 => (v as f32).to_le_bytes().to_vec(),
            DType::F64 => v.to_le_bytes().to_vec(),
        };
        self.constant("c", elem_type(d), &[], raw)
    }

    pub fn cast(&mut self, x: &str, to: i32) -> String {
        self.op("Cast", &[x], vec![attr_i("to", to as i64)])
    }

    pub fn unsqueeze(&mut self, x: &str, axes: &[i64]) -> String {
        if axes.is_empty() {
            return x.to_string();
        }
        let a = self.i64s(axes);
        self.op("Unsqueeze", &[x, &a], vec![])
    }

    pub fn squeeze(&mut self, x: &str, axes: &[i64]) -> String {
        if axes.is_empty() {
            return x.to_string();
        }
        let a = self.i64s(axes);
        self.op("Squeeze", &[x, &a], vec![])
    }

    /// A reduction over `axes` (the whole tensor when empty). ReduceSum takes its axes
    /// as an input from opset 13, the other reductions from opset 18.
    pub fn reduce(&mut self, op: &str, x: &str, axes: &[i64], keepdims: bool) -> String {
        let k = attr_i("keepdims", keepdims as i64);
        let as_input = op == "ReduceSum" || self.opset >= 18;
        if axes.is_empty() {
            return self.op(op, &[x], vec![k]);
        }
        if as_input {
            let a = self.i64s(axes);
            self.op(op, &[x, &a], vec![k])
        } else {
            self.op(op, &[x], vec![k, attr_ints("axes", axes)])
        }
    }

    pub fn slice(&mut self, x: &str, starts: &[i64], ends: &[i64], axes: &[i64]) -> String {
        let (s, e, a) = (self.i64s(starts), self.i64s(ends), self.i64s(axes));
        self.op("Slice", &[x, &s, &e, &a], vec![])
    }

    pub fn slice_steps(
        &mut self,
        x: &str,
        starts: &[i64],
        ends: &[i64],
        axes: &[i64],
        steps: &[i64],
    ) -> String {
        let (s, e, a, st) = (
            self.i64s(starts),
            self.i64s(ends),
            self.i64s(axes),
            self.i64s(steps),
        );
        self.op("Slice", &[x, &s, &e, &a, &st], vec![])
    }

    /// `Reshape(x, dims)`: 0 keeps the input's size, -1 is inferred.
    pub fn reshape(&mut self, x: &str, dims: &[i64]) -> String {
        let s = self.i64s(dims);
        self.op("Reshape", &[x, &s], vec![])
    }

    /// `Shape(x)[start..end]` as an int64 vector.
    pub fn shape_part(&mut self, x: &str, start: i64, end: i64) -> String {
        let s = self.op("Shape", &[x], vec![]);
        self.slice(&s, &[start], &[end], &[0])
    }

    /// Dimension `axis` of `x` as an int64 scalar.
    pub fn dim_scalar(&mut self, x: &str, axis: i64) -> String {
        let s = self.op("Shape", &[x], vec![]);
        let i = self.i64_scalar(axis);
        self.op("Gather", &[&s, &i], vec![attr_i("axis", 0)])
    }
}

impl std::fmt::Debug for Gb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gb({} nodes)", self.nodes.len())
    }
}

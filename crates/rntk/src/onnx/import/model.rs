//! An ONNX file decoded and checked before anything is built: the protobuf message
//! (prost, recursion-limited), opsets, tensors (types, declared sizes against the
//! bytes present and rntk's limits, external data only inside the model's folder,
//! read with bounds), and the node order (a cycle is an error naming a node on it).

use super::super::proto::{
    tensor_proto::DataLocation, GraphProto, ModelProto, NodeProto, TensorProto,
};
use crate::error::{Error, Result};
use prost::Message;
use std::collections::{HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path};

/// Elements one tensor of a model may hold (2^31: well above real models' tensors,
/// far below what would exhaust memory through a declared size alone).
pub const MAX_TENSOR_ELEMENTS: usize = 1 << 31;

pub(crate) fn format_err(file: &str, detail: impl Into<String>) -> Error {
    Error::Format {
        file: file.to_string(),
        detail: detail.into(),
    }
}

/// Decode the bytes of an ONNX file.
pub(crate) fn decode(file: &str, bytes: &[u8]) -> Result<ModelProto> {
    let m = ModelProto::decode(bytes).map_err(|e| {
        format_err(
            file,
            format!("not a readable ONNX model (protobuf ModelProto): {e}"),
        )
    })?;
    if m.graph.is_none() {
        return Err(format_err(file, "the ONNX model has no graph"));
    }
    Ok(m)
}

/// Whether `bytes` are an ONNX model (a ModelProto with a graph and an IR version),
/// as opposed to a CNTK Dictionary (which may start with the same bytes).
pub fn is_onnx_model(bytes: &[u8]) -> bool {
    match ModelProto::decode(bytes) {
        Ok(m) => m.graph.is_some() && m.ir_version.is_some_and(|v| (1..=64).contains(&v)),
        Err(_) => false,
    }
}

/// A tensor's values, read and checked.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Data {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    Bool(Vec<bool>),
}

impl Data {
    pub fn len(&self) -> usize {
        match self {
            Data::F32(v) => v.len(),
            Data::F64(v) => v.len(),
            Data::I64(v) => v.len(),
            Data::Bool(v) => v.len(),
        }
    }
    pub fn to_f64(&self) -> Vec<f64> {
        match self {
            Data::F32(v) => v.iter().map(|&x| x as f64).collect(),
            Data::F64(v) => v.clone(),
            Data::I64(v) => v.iter().map(|&x| x as f64).collect(),
            Data::Bool(v) => v.iter().map(|&x| x as u8 as f64).collect(),
        }
    }
    pub fn to_i64(&self) -> Vec<i64> {
        match self {
            Data::I64(v) => v.clone(),
            Data::Bool(v) => v.iter().map(|&x| x as i64).collect(),
            Data::F32(v) => v.iter().map(|&x| x as i64).collect(),
            Data::F64(v) => v.iter().map(|&x| x as i64).collect(),
        }
    }
    pub fn is_float(&self) -> bool {
        matches!(self, Data::F32(_) | Data::F64(_))
    }
}

/// A constant tensor.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ConstT {
    pub dims: Vec<usize>,
    pub data: Data,
}

impl ConstT {
    pub fn numel(&self) -> usize {
        self.dims.iter().product()
    }
}

/// Checked element count of declared dims.
fn numel(file: &str, what: &str, dims: &[i64]) -> Result<Vec<usize>> {
    let mut n: usize = 1;
    let mut out = Vec::with_capacity(dims.len());
    for &d in dims {
        if d < 0 {
            return Err(format_err(file, format!("{what}: negative dimension {d}")));
        }
        let d =
            usize::try_from(d).map_err(|_| format_err(file, format!("{what}: dimension {d}")))?;
        n = n
            .checked_mul(d.max(1))
            .filter(|&n| n <= MAX_TENSOR_ELEMENTS)
            .ok_or_else(|| {
                format_err(
                    file,
                    format!(
                    "{what}: declared shape {dims:?} holds more than {MAX_TENSOR_ELEMENTS} elements"
                ),
                )
            })?;
        out.push(d);
    }
    Ok(out)
}

fn elem_size(t: i32) -> Option<usize> {
    use super::super::builder::{BOOL, DOUBLE, FLOAT, INT32, INT64};
    match t {
        FLOAT | INT32 => Some(4),
        DOUBLE | INT64 => Some(8),
        BOOL => Some(1),
        _ => None,
    }
}

fn type_name(t: i32) -> String {
    super::super::proto::tensor_proto::DataType::try_from(t)
        .map(|d| d.as_str_name().to_string())
        .unwrap_or_else(|_| format!("type {t}"))
}

/// Read a tensor (raw bytes, typed fields, or external data inside `dir`).
pub(crate) fn tensor(file: &str, t: &TensorProto, dir: Option<&Path>) -> Result<ConstT> {
    use super::super::builder::{BOOL, DOUBLE, FLOAT, INT32, INT64};
    let name = t.name.clone().unwrap_or_default();
    let what = format!("tensor '{name}'");
    let dims = numel(file, &what, &t.dims)?;
    let n: usize = dims.iter().product();
    let ty = t.data_type.unwrap_or(0);
    let size = elem_size(ty).ok_or_else(|| {
        format_err(
            file,
            format!(
                "{what} has element type {}: rntk reads FLOAT, DOUBLE, INT64, INT32 and BOOL tensors",
                type_name(ty)
            ),
        )
    })?;
    let external = t.data_location == Some(DataLocation::External as i32);
    let raw: Option<Vec<u8>> = if external {
        Some(external_data(file, &what, t, dir, n * size)?)
    } else {
        t.raw_data.clone()
    };
    let data = match raw {
        Some(raw) => {
            if raw.len() != n * size {
                return Err(format_err(
                    file,
                    format!(
                        "{what}: shape {:?} of {} needs {} bytes, the file holds {}",
                        dims,
                        type_name(ty),
                        n * size,
                        raw.len()
                    ),
                ));
            }
            match ty {
                FLOAT => Data::F32(
                    raw.chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect(),
                ),
                DOUBLE => Data::F64(
                    raw.chunks_exact(8)
                        .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                        .collect(),
                ),
                INT64 => Data::I64(
                    raw.chunks_exact(8)
                        .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                        .collect(),
                ),
                INT32 => Data::I64(
                    raw.chunks_exact(4)
                        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
                        .collect(),
                ),
                _ => Data::Bool(raw.iter().map(|&b| b != 0).collect()),
            }
        }
        None => match ty {
            FLOAT => Data::F32(t.float_data.clone()),
            DOUBLE => Data::F64(t.double_data.clone()),
            INT64 => Data::I64(t.int64_data.clone()),
            INT32 => Data::I64(t.int32_data.iter().map(|&x| x as i64).collect()),
            BOOL => Data::Bool(t.int32_data.iter().map(|&x| x != 0).collect()),
            _ => unreachable_type(file, &what)?,
        },
    };
    if data.len() != n {
        return Err(format_err(
            file,
            format!(
                "{what}: shape {dims:?} needs {n} values, the file holds {}",
                data.len()
            ),
        ));
    }
    Ok(ConstT { dims, data })
}

fn unreachable_type(file: &str, what: &str) -> Result<Data> {
    Err(format_err(
        file,
        format!("{what}: unsupported element type"),
    ))
}

/// The bytes of an external-data tensor: a relative path inside the model's folder
/// (no `..`, no absolute path, no symbolic link out of it), `offset` and `length`
/// within the file, exactly `need` bytes.
fn external_data(
    file: &str,
    what: &str,
    t: &TensorProto,
    dir: Option<&Path>,
    need: usize,
) -> Result<Vec<u8>> {
    let mut location = None;
    let mut offset: u64 = 0;
    let mut length: Option<u64> = None;
    for e in &t.external_data {
        let (k, v) = (
            e.key.as_deref().unwrap_or(""),
            e.value.as_deref().unwrap_or(""),
        );
        let num = |v: &str| {
            v.parse::<u64>().map_err(|_| {
                format_err(
                    file,
                    format!("{what}: external data {k} '{v}' is not a number"),
                )
            })
        };
        match k {
            "location" => location = Some(v.to_string()),
            "offset" => offset = num(v)?,
            "length" => length = Some(num(v)?),
            _ => {}
        }
    }
    let loc = location
        .ok_or_else(|| format_err(file, format!("{what}: external data without a location")))?;
    let dir = dir.ok_or_else(|| {
        format_err(
            file,
            format!("{what}: external data '{loc}' cannot be read for a model given as bytes"),
        )
    })?;
    let rel = Path::new(&loc);
    if rel.is_absolute()
        || rel
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(format_err(
            file,
            format!("{what}: external data '{loc}' is outside the model's folder (only relative paths inside it are read)"),
        ));
    }
    let base = dir
        .canonicalize()
        .map_err(|e| format_err(file, format!("{what}: the model's folder: {e}")))?;
    let path = base.join(rel);
    let real = path
        .canonicalize()
        .map_err(|e| format_err(file, format!("{what}: external data '{loc}': {e}")))?;
    if !real.starts_with(&base) {
        return Err(format_err(
            file,
            format!("{what}: external data '{loc}' leads outside the model's folder"),
        ));
    }
    let mut f = std::fs::File::open(&real)
        .map_err(|e| format_err(file, format!("{what}: external data '{loc}': {e}")))?;
    let size = f
        .metadata()
        .map_err(|e| format_err(file, format!("{what}: external data '{loc}': {e}")))?
        .len();
    let len = length.unwrap_or(need as u64);
    if len != need as u64 || offset.checked_add(len).is_none_or(|end| end > size) {
        return Err(format_err(
            file,
            format!(
                "{what}: external data '{loc}' at offset {offset} length {len}: the tensor needs {need} bytes and the file has {size}"
            ),
        ));
    }
    f.seek(SeekFrom::Start(offset))
        .map_err(|e| format_err(file, format!("{what}: external data '{loc}': {e}")))?;
    let mut buf = vec![0u8; need];
    f.read_exact(&mut buf)
        .map_err(|e| format_err(file, format!("{what}: external data '{loc}': {e}")))?;
    Ok(buf)
}

/// The nodes of `g` in an order where every value is produced before it is read;
/// `known` names values defined outside the nodes (inputs, initializers, outer scope).
pub(crate) fn ordered<'a>(
    file: &str,
    g: &'a GraphProto,
    known: &HashSet<String>,
) -> Result<Vec<&'a NodeProto>> {
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, n) in g.node.iter().enumerate() {
        for o in &n.output {
            if o.is_empty() {
                continue;
            }
            if producer.insert(o.as_str(), i).is_some() || known.contains(o) {
                return Err(format_err(
                    file,
                    format!("value '{o}' is defined twice (node '{}')", label(n)),
                ));
            }
        }
    }
    let count = g.node.len();
    let mut deps: Vec<Vec<usize>> = vec![Vec::new(); count];
    let mut waiting = vec![0usize; count];
    for (i, n) in g.node.iter().enumerate() {
        for inp in n.input.iter().filter(|s| !s.is_empty()) {
            match producer.get(inp.as_str()) {
                Some(&p) => {
                    deps[p].push(i);
                    waiting[i] += 1;
                }
                None if known.contains(inp) || subgraph_free(n) => {}
                None => {
                    return Err(format_err(
                        file,
                        format!(
                            "node '{}' ({}) reads '{inp}', which nothing defines",
                            label(n),
                            op(n)
                        ),
                    ))
                }
            }
        }
    }
    let mut ready: Vec<usize> = (0..count).filter(|&i| waiting[i] == 0).rev().collect();
    let mut out = Vec::with_capacity(count);
    while let Some(i) = ready.pop() {
        out.push(&g.node[i]);
        for &d in &deps[i] {
            waiting[d] -= 1;
            if waiting[d] == 0 {
                ready.push(d);
            }
        }
    }
    if out.len() != count {
        let stuck = (0..count).find(|&i| waiting[i] > 0).map(|i| &g.node[i]);
        return Err(format_err(
            file,
            format!(
                "the graph has a cycle: node '{}' ({}) depends on its own output",
                stuck.map(label).unwrap_or_default(),
                stuck.map(op).unwrap_or_default()
            ),
        ));
    }
    Ok(out)
}

/// Nodes whose inputs may name outer-scope values checked elsewhere: none.
fn subgraph_free(_n: &NodeProto) -> bool {
    false
}

pub(crate) fn label(n: &NodeProto) -> String {
    match n.name.as_deref() {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => n.output.first().cloned().unwrap_or_default(),
    }
}

pub(crate) fn op(n: &NodeProto) -> String {
    match n.domain.as_deref() {
        Some(d) if !d.is_empty() && d != "ai.onnx" => {
            format!("{d}.{}", n.op_type.as_deref().unwrap_or(""))
        }
        _ => n.op_type.clone().unwrap_or_default(),
    }
}

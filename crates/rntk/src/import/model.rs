//! The decoded contents of a CNTK model file: its variables and primitive functions,
//! checked for the keys and value types the graph needs, with tensors converted to
//! rntk's layout (shapes reversed into Python order, values unchanged: CNTK's
//! column-major order of the reversed shape is NumPy's C order of the Python shape).

use super::dict::Dict;
use super::proto::{nd_array_view, Axis as PbAxis, Dictionary, NdArrayView, NdShape};
use crate::error::{Error, Result};
use crate::tensor::{DType, Shape, Tensor, INFERRED};
use prost::Message;
use std::collections::BTreeMap;

/// CNTK's `Axis` static index of "all static axes" (`Axis::AllStaticAxes()`).
pub(crate) const ALL_STATIC_AXES: i32 = 2_147_483_646;

/// `Variable.kind` in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VarKindCode {
    Input,
    Output,
    Parameter,
    Constant,
    Placeholder,
}

impl VarKindCode {
    pub fn name(self) -> &'static str {
        match self {
            VarKindCode::Input => "Input",
            VarKindCode::Output => "Output",
            VarKindCode::Parameter => "Parameter",
            VarKindCode::Constant => "Constant",
            VarKindCode::Placeholder => "Placeholder",
        }
    }
}

/// A dynamic axis as stored: its name and whether it is ordered (a sequence axis).
#[derive(Clone, Debug, PartialEq)]
pub struct DynAxisDesc {
    pub name: String,
    pub ordered: bool,
}

/// One entry of the top-level `inputs` list.
#[derive(Clone, Debug)]
pub struct VarDesc {
    pub uid: String,
    pub name: String,
    pub kind: VarKindCode,
    pub dtype: DType,
    pub is_sparse: bool,
    pub needs_gradient: bool,
    /// Python order (the file's shape reversed).
    pub shape: Shape,
    /// In the file's order: `[sequence axis, batch axis]`, `[batch axis]` or `[]`.
    pub dynamic_axes: Vec<DynAxisDesc>,
    /// Parameters and constants.
    pub value: Option<Tensor>,
}

/// A block's extra keys.
#[derive(Clone, Debug)]
pub struct BlockDesc {
    pub op_name: String,
    /// uid of the inner composite's root function.
    pub root: String,
    /// Inner placeholder uids and the outer operands they stand for.
    pub arguments: Vec<(String, String)>,
}

/// One entry of `primitive_functions`.
#[derive(Clone, Debug)]
pub struct FnDesc {
    pub uid: String,
    pub name: String,
    pub op: u64,
    pub inputs: Vec<String>,
    pub attributes: Dictionary,
    pub block: Option<BlockDesc>,
}

/// A whole model file.
#[derive(Clone, Debug)]
pub struct CntkModel {
    pub uid: String,
    pub name: String,
    pub root: String,
    pub variables: Vec<VarDesc>,
    pub functions: Vec<FnDesc>,
}

fn format_err(file: &str, detail: impl Into<String>) -> Error {
    Error::Format {
        file: file.to_string(),
        detail: detail.into(),
    }
}

/// Python-order shape of a stored (column-major) shape; one sample must be within
/// `limits.max_sample_elements` (zero dimensions do not exempt the others).
pub(crate) fn shape_from(d: &Dict, what: &str, s: &NdShape) -> Result<Shape> {
    let stored = || format!("{what}: shape {:?} (as stored)", s.shape_dim);
    let dims: Vec<usize> = s
        .shape_dim
        .iter()
        .rev()
        .map(|&x| usize::try_from(x).unwrap_or(INFERRED))
        .collect();
    let shape = Shape::new(dims);
    if shape.has_inferred() {
        return Err(d.err(format!(
            "{} has a dimension more than any size: an unresolved (inferred or free) dimension",
            stored()
        )));
    }
    crate::limits::check_sample_shape(&shape)
        .map_err(|detail| d.err(format!("{}: {detail}", stored())))?;
    Ok(shape)
}

/// The tensor an `NDArrayView` holds, after checking that its declared shape and
/// element type agree with its values (nothing is allocated beyond what was decoded).
pub(crate) fn tensor_from(d: &Dict, what: &str, a: &NdArrayView) -> Result<(Tensor, DType)> {
    let shape_pb = a
        .shape
        .as_ref()
        .ok_or_else(|| d.err(format!("{what}: the NDArrayView has no shape")))?;
    let shape = shape_from(d, what, shape_pb)?;
    if a.storage_format != nd_array_view::StorageFormat::Dense as i32 {
        return Err(Error::Unsupported(format!(
            "{}: {}: {what}: sparse stored tensors (storage format {})",
            d.file, d.what, a.storage_format
        )));
    }
    let n = shape.numel();
    let count_err = |got: usize| {
        d.err(format!(
            "{what}: shape {:?} (as stored) needs {n} values, the file holds {got}",
            shape_pb.shape_dim
        ))
    };
    use nd_array_view::{DataType, Values};
    let t = match (DataType::try_from(a.data_type), &a.values) {
        (Ok(DataType::Float), Some(Values::FloatValues(v))) => {
            if v.value.len() != n {
                return Err(count_err(v.value.len()));
            }
            (Tensor::from_vec(shape, v.value.clone())?, DType::F32)
        }
        (Ok(DataType::Double), Some(Values::DoubleValues(v))) => {
            if v.value.len() != n {
                return Err(count_err(v.value.len()));
            }
            (Tensor::from_vec(shape, v.value.clone())?, DType::F64)
        }
        (Ok(dt @ (DataType::Float16 | DataType::Int8 | DataType::Int16)), _) => {
            return Err(Error::Unsupported(format!(
                "{}: {}: {what}: {dt:?} tensors (rntk computes in float32 and float64)",
                d.file, d.what
            )))
        }
        (dt, vals) => {
            let held = match vals {
                None => "no values",
                Some(Values::FloatValues(_)) => "float values",
                Some(Values::DoubleValues(_)) => "double values",
                Some(Values::BytesValue(_)) => "bytes",
                Some(Values::Sint32Values(_)) => "int values",
            };
            return Err(d.err(format!(
                "{what}: data type {} with {held}: expected Float with float values or \
                 Double with double values",
                match dt {
                    Ok(t) => format!("{t:?}"),
                    Err(_) => format!("#{}", a.data_type),
                }
            )));
        }
    };
    Ok(t)
}

fn dtype_from(d: &Dict, code: u64) -> Result<DType> {
    match code {
        1 => Ok(DType::F32),
        2 => Ok(DType::F64),
        4..=6 => Err(Error::Unsupported(format!(
            "{}: {}: data type {} (float16 / int8 / int16; rntk computes in float32 and \
             float64)",
            d.file, d.what, code
        ))),
        _ => Err(d.err(format!(
            "data_type {code}: expected 1 (float32) or 2 (float64)"
        ))),
    }
}

pub(crate) fn axis_desc(a: &PbAxis) -> DynAxisDesc {
    DynAxisDesc {
        name: a.name.clone(),
        ordered: a.is_ordered_dynamic_axis,
    }
}

fn variable(file: &str, i: usize, vd: &Dictionary) -> Result<VarDesc> {
    let pre = format!("variable #{i}");
    let d0 = Dict::new(file, &pre, vd);
    let uid = d0.string("uid")?.to_string();
    let what = format!("variable {uid}");
    let d = Dict::new(file, &what, vd);
    let kind = match d.size_t("kind")? {
        0 => VarKindCode::Input,
        1 => VarKindCode::Output,
        2 => VarKindCode::Parameter,
        3 => VarKindCode::Constant,
        4 => VarKindCode::Placeholder,
        k => return Err(d.err(format!("kind {k}: expected 0 to 4"))),
    };
    let dtype = dtype_from(&d, d.size_t("data_type")?)?;
    let shape = shape_from(&d, "shape", d.shape("shape")?)?;
    let dynamic_axes = if d.has("dynamic_axis") {
        d.axes("dynamic_axis")?.into_iter().map(axis_desc).collect()
    } else {
        Vec::new()
    };
    let value = match kind {
        VarKindCode::Parameter | VarKindCode::Constant => {
            let (t, vdt) = tensor_from(&d, "value", d.array("value")?)?;
            if vdt != dtype {
                return Err(d.err(format!(
                    "declared {dtype} but its value holds {vdt} numbers"
                )));
            }
            if *t.shape() != shape {
                return Err(d.err(format!(
                    "declared shape {shape} but its value has shape {}",
                    t.shape()
                )));
            }
            Some(t)
        }
        _ => None,
    };
    Ok(VarDesc {
        name: d.opt_string("name")?.to_string(),
        is_sparse: d.has("is_sparse") && d.bool("is_sparse")?,
        needs_gradient: d.has("needs_gradient") && d.bool("needs_gradient")?,
        uid,
        kind,
        dtype,
        shape,
        dynamic_axes,
        value,
    })
}

fn function(file: &str, i: usize, fd: &Dictionary) -> Result<FnDesc> {
    let pre = format!("function #{i}");
    let d0 = Dict::new(file, &pre, fd);
    let uid = d0.string("uid")?.to_string();
    let what = format!("function {uid}");
    let d = Dict::new(file, &what, fd);
    let ty = d.string("type")?;
    if ty != "PrimitiveFunction" {
        return Err(d.err(format!("type '{ty}': expected 'PrimitiveFunction'")));
    }
    let op = d.size_t("op")?;
    let attributes = if d.has("attributes") {
        d.dict("attributes")?.clone()
    } else {
        Dictionary::default()
    };
    let block = if op == super::op_codes::BLOCK {
        let comp = Dict::new(file, &what, d.dict("block_function_composite")?);
        let keys = d.strings("block_function_composite_arguments_map_keys")?;
        let values = d.strings("block_function_composite_arguments_map_values")?;
        if keys.len() != values.len() {
            return Err(d.err(format!(
                "a block's argument map has {} keys but {} values",
                keys.len(),
                values.len()
            )));
        }
        Some(BlockDesc {
            op_name: d.string("block_function_op_name")?.to_string(),
            root: comp.string("root")?.to_string(),
            arguments: keys
                .into_iter()
                .zip(values)
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        })
    } else {
        None
    };
    Ok(FnDesc {
        name: d.opt_string("name")?.to_string(),
        inputs: d
            .strings("inputs")?
            .into_iter()
            .map(str::to_string)
            .collect(),
        uid,
        op,
        attributes,
        block,
    })
}

impl CntkModel {
    /// Decode and check the bytes of a model file (`file` names it in errors).
    pub fn decode(file: &str, bytes: &[u8]) -> Result<CntkModel> {
        let top = Dictionary::decode(bytes).map_err(|e| {
            format_err(
                file,
                format!("not a CNTK v2 model (a protobuf CNTK.proto.Dictionary): {e}"),
            )
        })?;
        let d = Dict::new(file, "the model dictionary", &top);
        let ty = d.string("type").map_err(|_| {
            format_err(
                file,
                "not a CNTK v2 model: the dictionary has no \"type\": \"CompositeFunction\"",
            )
        })?;
        if ty != "CompositeFunction" {
            return Err(d.err(format!("type '{ty}': expected 'CompositeFunction'")));
        }
        let mut variables = Vec::new();
        for (i, v) in d.dicts("inputs")?.into_iter().enumerate() {
            variables.push(variable(file, i, v)?);
        }
        let mut functions = Vec::new();
        for (i, f) in d.dicts("primitive_functions")?.into_iter().enumerate() {
            functions.push(function(file, i, f)?);
        }
        let mut seen = BTreeMap::new();
        for uid in variables
            .iter()
            .map(|v| &v.uid)
            .chain(functions.iter().map(|f| &f.uid))
        {
            if seen.insert(uid.as_str(), ()).is_some() {
                return Err(format_err(file, format!("uid '{uid}' is listed twice")));
            }
        }
        Ok(CntkModel {
            uid: d.string("uid")?.to_string(),
            name: d.opt_string("name")?.to_string(),
            root: d.string("root")?.to_string(),
            variables,
            functions,
        })
    }
}

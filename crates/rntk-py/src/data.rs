//! numpy ⇄ rntk values, as CNTK takes and returns data (spec python-api.md §5).
//!
//! In: a dense array `(B, *S)` for a batch input; `(B, T, *S)` (B sequences of length T),
//! `(T, *S)` (one sequence) or `S` (one step) for a sequence input; a list of arrays
//! `(T_i, *S)` for ragged sequences (`(T_i,)` when S is `(1,)`); CSR matrices (objects
//! with `indptr`, `indices`, `data`, `shape`, e.g. scipy's) one per sequence; a `Value`
//! (`Value.one_hot`) or a reader's `MinibatchData`. float64 and integer data are
//! converted with CNTK's warning. The array's memory is read in place and copied once,
//! straight into the value's rows (packed time-major for sequences).
//!
//! Out: a batch output is one array `(B, *S)` that takes over the result's buffer (no
//! copy); a sequence output is a list of per-sequence arrays `(T_i, *S)`.

use crate::errors::{value_err, IntoPy};
use numpy::{
    Element as NpElement, PyArray1, PyArrayDyn, PyArrayMethods, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};
use rntk::tensor::{Csr, Element, Layout, PackedLayout, ValueData};
use rntk::{DType, DynamicAxes, Value, Variable};
use std::sync::Arc;

/// A minibatch's data for one variable (CNTK's `Value`).
#[pyclass(module = "rntk._rntk", name = "Value", frozen)]
#[derive(Clone)]
pub struct PyValue(pub Value);

#[pymethods]
impl PyValue {
    /// Samples `(num_sequences, max_len, *S)` padded with zeros for a sequence value,
    /// `(B, *S)` for a batch value (CNTK's `asarray`).
    fn asarray<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        padded(py, &self.0)
    }
    /// Per-sequence arrays (or one array for a batch value): what `eval` returns.
    fn as_sequences<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        value_to_py(py, self.0.clone())
    }
    #[getter]
    fn shape(&self) -> Vec<usize> {
        let mut s = vec![self.0.num_sequences()];
        if let Layout::Sequence(p) = self.0.layout() {
            s.push(p.max_len());
        }
        s.extend(self.0.shape().dims());
        s
    }
    #[getter]
    fn is_sparse(&self) -> bool {
        self.0.is_sparse()
    }
    #[getter]
    fn num_sequences(&self) -> usize {
        self.0.num_sequences()
    }
    #[getter]
    fn num_samples(&self) -> usize {
        self.0.num_samples()
    }
    /// Lengths of the sequences (caller order); 1 each for a batch value.
    #[getter]
    fn sequence_lengths(&self) -> Vec<usize> {
        match self.0.layout() {
            Layout::Sequence(p) => p.lengths().to_vec(),
            l => vec![1; l.rows()],
        }
    }
    /// `Value.one_hot(batch, num_classes)`: `batch` is a list of sequences of class
    /// indices (sparse one-hot rows), or a flat list of indices (one-step samples).
    #[staticmethod]
    #[pyo3(signature = (batch, num_classes, dtype="float32", sequences=true))]
    fn one_hot(
        batch: &Bound<'_, PyAny>,
        num_classes: usize,
        dtype: &str,
        sequences: bool,
    ) -> PyResult<PyValue> {
        let f64_ = dtype == "float64";
        let mut seqs: Vec<Vec<usize>> = Vec::new();
        for item in batch.try_iter()? {
            let item = item?;
            if let Ok(i) = item.extract::<usize>() {
                seqs.push(vec![i]);
            } else {
                let s: Vec<usize> = item.extract().map_err(|_| {
                    value_err("Value.one_hot: batch must be a list of lists of class indices")
                })?;
                seqs.push(s);
            }
        }
        if seqs.is_empty() {
            return Err(value_err("Value.one_hot: the batch is empty"));
        }
        let v = if sequences {
            if f64_ {
                Value::one_hot_sequences::<f64>(num_classes, &seqs)
            } else {
                Value::one_hot_sequences::<f32>(num_classes, &seqs)
            }
        } else {
            let idx: Vec<usize> = seqs.into_iter().flatten().collect();
            if f64_ {
                Value::one_hot_batch::<f64>(num_classes, &idx)
            } else {
                Value::one_hot_batch::<f32>(num_classes, &idx)
            }
        };
        Ok(PyValue(v.py()?))
    }
    fn __repr__(&self) -> String {
        format!(
            "Value({}, shape {}, {})",
            self.0.layout().describe(),
            self.0.shape(),
            if self.0.is_sparse() {
                "sparse"
            } else {
                "dense"
            }
        )
    }
}

/// Shape as a Python-style string for messages: `(2, 3)`.
fn dims_str(d: &[usize]) -> String {
    match d.len() {
        1 => format!("({},)", d[0]),
        _ => format!(
            "({})",
            d.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn describe(var: &Variable) -> String {
    let i = var.info();
    format!(
        "input '{}' of shape {} {}",
        var.label(),
        dims_str(i.shape.dims()),
        i.axes.notation()
    )
}

/// The array with the variable's element type: numpy arrays of that type as they are,
/// other dtypes (float64, integers, bool) converted with CNTK's warning.
fn typed_array<'py, T: Element + NpElement>(
    py: Python<'py>,
    obj: &Bound<'py, PyAny>,
    var: &Variable,
) -> PyResult<Bound<'py, PyArrayDyn<T>>> {
    if let Ok(a) = obj.cast::<PyArrayDyn<T>>() {
        return Ok(a.clone());
    }
    let np = py.import(intern!(py, "numpy"))?;
    let arr = if obj.cast::<PyUntypedArray>().is_ok() {
        obj.clone()
    } else {
        np.call_method1(intern!(py, "asarray"), (obj,))?
    };
    let dt = arr.getattr(intern!(py, "dtype"))?;
    let kind: String = dt.getattr(intern!(py, "kind"))?.extract()?;
    if !matches!(kind.as_str(), "f" | "i" | "u" | "b") {
        return Err(value_err(format!(
            "only integer, bool, float32, float64 and float16 are supported, you gave {} for {}",
            dt.str()?,
            describe(var)
        )));
    }
    let want = T::DTYPE.name();
    let warnings = py.import(intern!(py, "warnings"))?;
    warnings.call_method1(
        intern!(py, "warn"),
        (format!(
            "your data is of type \"{}\", but your input variable (uid \"{}\") expects \"<class 'numpy.{want}'>\". Please convert your data beforehand to speed up training.",
            dt.str()?,
            var.uid()
        ),),
    )?;
    let conv = arr.call_method1(intern!(py, "astype"), (want,))?;
    Ok(conv.cast_into::<PyArrayDyn<T>>()?)
}

/// The elements of `a` in C order (read in place when contiguous).
fn elements<T: Element + NpElement>(a: &Bound<'_, PyArrayDyn<T>>) -> PyResult<Vec<T>> {
    let ro = a.readonly();
    match ro.as_slice() {
        Ok(s) => Ok(s.to_vec()),
        Err(_) => Ok(ro.as_array().iter().copied().collect()),
    }
}

/// Pack sequences given as contiguous slices into time-major rows.
fn pack<T: Element>(
    lengths: &[usize],
    numel: usize,
    seq: impl Fn(usize) -> Vec<T>,
) -> rntk::Result<(PackedLayout, Vec<T>)> {
    let p = PackedLayout::new(lengths)?;
    let mut rows = vec![T::zero(); p.total() * numel];
    for (i, &len) in lengths.iter().enumerate() {
        let s = seq(i);
        for t in 0..len {
            let r = p.row(i, t);
            rows[r * numel..(r + 1) * numel].copy_from_slice(&s[t * numel..(t + 1) * numel]);
        }
    }
    Ok((p, rows))
}

/// One dense numpy array (or anything numpy can turn into one) for `var`.
fn dense_value<T: Element + NpElement>(
    py: Python<'_>,
    obj: &Bound<'_, PyAny>,
    var: &Variable,
) -> PyResult<Value> {
    let a = typed_array::<T>(py, obj, var)?;
    let dims = a.shape().to_vec();
    let info = var.info();
    let s = info.shape.dims();
    let r = s.len();
    let numel = info.shape.numel().max(1);
    let wrong = |what: &str| {
        value_err(format!(
            "data of shape {} does not fit {}: {what}",
            dims_str(&dims),
            describe(var)
        ))
    };
    let tail_ok = |lead: usize| dims.len() == lead + r && dims[lead..] == *s;
    match &info.axes {
        DynamicAxes::Sequence(_) => {
            // (B, T, *S): B sequences of length T; (T, *S): one; S: one step.
            let (b, t) = if tail_ok(2) {
                (dims[0], dims[1])
            } else if tail_ok(1) {
                (1, dims[0])
            } else if tail_ok(0) {
                (1, 1)
            } else if r == 1 && s[0] == 1 && dims.len() == 1 {
                (1, dims[0])
            } else {
                return Err(wrong(&format!(
                    "expected (batch, steps, *{0}), (steps, *{0}) or a list of (steps_i, *{0}) arrays",
                    dims_str(s)
                )));
            };
            if b == 0 || t == 0 {
                return Err(wrong(
                    "a minibatch needs at least one sequence of at least one step",
                ));
            }
            let flat = elements(&a)?;
            let step = t * numel;
            let (p, rows) = pack(&vec![t; b], numel, |i| {
                flat[i * step..(i + 1) * step].to_vec()
            })
            .py()?;
            Value::from_rows(info.shape.clone(), Layout::Sequence(Arc::new(p)), rows).py()
        }
        _ => {
            let b = if tail_ok(1) {
                dims[0]
            } else if tail_ok(0) {
                1
            } else {
                return Err(wrong(&format!(
                    "expected (batch, *{0}) or {0}",
                    dims_str(s)
                )));
            };
            if b == 0 {
                return Err(wrong("a minibatch needs at least one sample"));
            }
            Value::from_rows(info.shape.clone(), Layout::Batch(b), elements(&a)?).py()
        }
    }
}

/// A CSR matrix's parts: (rows, cols, indptr, indices, values).
type CsrParts = (usize, usize, Vec<usize>, Vec<u32>, Vec<f64>);

/// A CSR-like object (scipy.sparse.csr_matrix): (rows, cols, indptr, indices, values).
fn csr_parts(obj: &Bound<'_, PyAny>) -> PyResult<Option<CsrParts>> {
    let py = obj.py();
    if !obj.hasattr(intern!(py, "indptr"))? || !obj.hasattr(intern!(py, "indices"))? {
        return Ok(None);
    }
    let (rows, cols): (usize, usize) = obj.getattr(intern!(py, "shape"))?.extract()?;
    let np = py.import(intern!(py, "numpy"))?;
    let get = |name: &str, dt: &str| -> PyResult<Bound<'_, PyAny>> {
        np.call_method1("asarray", (obj.getattr(name)?, dt))
    };
    let indptr: Vec<i64> = get("indptr", "int64")?.call_method0("tolist")?.extract()?;
    let indices: Vec<i64> = get("indices", "int64")?.call_method0("tolist")?.extract()?;
    let values: Vec<f64> = get("data", "float64")?.call_method0("tolist")?.extract()?;
    let bad = |m: &str| value_err(format!("sparse input: {m}"));
    let indptr = indptr
        .into_iter()
        .map(|x| usize::try_from(x).map_err(|_| bad("negative indptr")))
        .collect::<PyResult<Vec<_>>>()?;
    let indices = indices
        .into_iter()
        .map(|x| u32::try_from(x).map_err(|_| bad("column index out of range")))
        .collect::<PyResult<Vec<_>>>()?;
    Ok(Some((rows, cols, indptr, indices, values)))
}

/// Sequences given as CSR matrices (one per sequence, rows = steps).
fn sparse_sequences<T: Element>(var: &Variable, mats: Vec<CsrParts>) -> PyResult<Value> {
    let info = var.info();
    let dim = info.shape.numel();
    let lengths: Vec<usize> = mats.iter().map(|m| m.0).collect();
    for (i, m) in mats.iter().enumerate() {
        if m.1 != dim {
            return Err(value_err(format!(
                "sparse sequence {i} has {} columns but {} has dimension {dim}",
                m.1,
                describe(var)
            )));
        }
    }
    let seq = info.axes.has_sequence();
    let layout = if seq {
        Layout::Sequence(Arc::new(PackedLayout::new(&lengths).py()?))
    } else {
        Layout::Batch(lengths.iter().sum())
    };
    // Row r of the value: (sequence, step) in packed order for sequences.
    let total: usize = lengths.iter().sum();
    let mut order: Vec<(usize, usize)> = Vec::with_capacity(total);
    match &layout {
        Layout::Sequence(p) => {
            let mut slots = vec![(0, 0); total];
            for (i, &len) in lengths.iter().enumerate() {
                for t in 0..len {
                    slots[p.row(i, t)] = (i, t);
                }
            }
            order = slots;
        }
        _ => {
            for (i, &len) in lengths.iter().enumerate() {
                order.extend((0..len).map(|t| (i, t)));
            }
        }
    }
    let mut indptr = Vec::with_capacity(total + 1);
    let mut indices = Vec::new();
    let mut values = Vec::new();
    indptr.push(0);
    for (i, t) in order {
        let m = &mats[i];
        let (a, b) = (m.2.get(t).copied(), m.2.get(t + 1).copied());
        let (a, b) = match (a, b) {
            (Some(a), Some(b)) if a <= b && b <= m.3.len() && b <= m.4.len() => (a, b),
            _ => return Err(value_err(format!("sparse sequence {i}: malformed indptr"))),
        };
        indices.extend_from_slice(&m.3[a..b]);
        values.extend(m.4[a..b].iter().map(|&v| T::from_f64(v)));
        indptr.push(indices.len());
    }
    let csr = Csr {
        rows: total,
        cols: dim,
        indptr,
        indices,
        values,
    };
    Value::from_csr(info.shape.clone(), layout, csr).py()
}

/// A list of per-sequence arrays (ragged), or per-sample arrays for a batch input.
fn list_value<T: Element + NpElement>(
    py: Python<'_>,
    items: Vec<Bound<'_, PyAny>>,
    var: &Variable,
) -> PyResult<Value> {
    if items.is_empty() {
        return Err(value_err(format!(
            "empty list of sequences for {}",
            describe(var)
        )));
    }
    if csr_parts(&items[0])?.is_some() {
        let mats = items
            .iter()
            .map(|x| {
                csr_parts(x)?.ok_or_else(|| value_err("a list mixing sparse and dense sequences"))
            })
            .collect::<PyResult<Vec<_>>>()?;
        return sparse_sequences::<T>(var, mats);
    }
    let info = var.info();
    let s = info.shape.dims().to_vec();
    let numel = info.shape.numel().max(1);
    if !info.axes.has_sequence() {
        if items.len() > 1 {
            py.import(intern!(py, "warnings"))?.call_method1(
                intern!(py, "warn"),
                (format!(
                    "you provided the minibatch data as a list, but your corresponding input variable (uid \"{}\") has only one dynamic axis (batch axis). To speed up graph execution, please convert the data beforehand into one NumPy array to speed up training.",
                    var.uid()
                ),),
            )?;
        }
        let np = py.import(intern!(py, "numpy"))?;
        let stacked = np.call_method1(intern!(py, "stack"), (PyList::new(py, &items)?,))?;
        return dense_value::<T>(py, &stacked, var);
    }
    let mut seqs: Vec<Vec<T>> = Vec::with_capacity(items.len());
    let mut lengths = Vec::with_capacity(items.len());
    for (i, it) in items.iter().enumerate() {
        let a = typed_array::<T>(py, it, var)?;
        let d = a.shape().to_vec();
        let len = if d.len() == s.len() + 1 && d[1..] == s[..] {
            d[0]
        } else if d[..] == s[..] {
            1
        } else if s == [1] && d.len() == 1 {
            d[0]
        } else {
            return Err(value_err(format!(
                "sequence {i} has shape {} but {} takes (steps, *{})",
                dims_str(&d),
                describe(var),
                dims_str(&s)
            )));
        };
        if len == 0 {
            return Err(value_err(format!(
                "sequence {i} is empty: sequences need at least one step"
            )));
        }
        lengths.push(len);
        seqs.push(elements(&a)?);
    }
    let (p, rows) = pack(&lengths, numel, |i| seqs[i].clone()).py()?;
    Value::from_rows(info.shape.clone(), Layout::Sequence(Arc::new(p)), rows).py()
}

fn typed_value<T: Element + NpElement>(
    py: Python<'_>,
    obj: &Bound<'_, PyAny>,
    var: &Variable,
) -> PyResult<Value> {
    if let Ok(l) = obj.cast::<PyList>() {
        return list_value::<T>(py, l.iter().collect(), var);
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        return list_value::<T>(py, t.iter().collect(), var);
    }
    if let Some(m) = csr_parts(obj)? {
        // One CSR matrix: one sequence (rows = steps), or a batch (rows = samples).
        return sparse_sequences::<T>(var, vec![m]);
    }
    dense_value::<T>(py, obj, var)
}

/// Data for `var` from any form CNTK accepts.
pub fn to_value(py: Python<'_>, obj: &Bound<'_, PyAny>, var: &Variable) -> PyResult<Value> {
    if let Ok(v) = obj.cast::<PyValue>() {
        return fit_layout(v.get().0.clone(), var);
    }
    if let Ok(md) = obj.cast::<crate::io::PyMinibatchData>() {
        return fit_layout(md.get().0.data.clone(), var);
    }
    match var.dtype() {
        DType::F32 => typed_value::<f32>(py, obj, var),
        DType::F64 => typed_value::<f64>(py, obj, var),
    }
}

/// A value given whole (a reader's minibatch, `Value.one_hot`) for `var`: one-step
/// sequences feed a batch input as a batch (with one step each, the packed rows are
/// already in the caller's order), and samples with as many elements as the input's
/// shape take that shape, as CNTK reads them (tutorial 103's CTF rows hold 784 values
/// for a (1, 28, 28) input, flattened in (C, H, W) order).
fn fit_layout(v: Value, var: &Variable) -> PyResult<Value> {
    let v = fit_layout_axes(v, var)?;
    let want = var.shape();
    if v.shape() != &want && v.shape().numel() == want.numel() {
        let layout = v.layout().clone();
        return Value::new(want, layout, v.into_data()).py();
    }
    Ok(v)
}

fn fit_layout_axes(v: Value, var: &Variable) -> PyResult<Value> {
    match (var.dynamic_axes(), v.layout()) {
        (DynamicAxes::Batch, Layout::Sequence(p)) => {
            if let Some(i) = p.lengths().iter().position(|&l| l != 1) {
                return Err(value_err(format!(
                    "{} has no sequence axis but sequence {i} of the data has {} steps",
                    describe(var),
                    p.lengths()[i]
                )));
            }
            let n = p.num_sequences();
            let shape = v.shape().clone();
            Value::new(shape, Layout::Batch(n), v.into_data()).py()
        }
        _ => Ok(v),
    }
}

fn array_from<'py, T: Element + NpElement>(
    py: Python<'py>,
    data: Vec<T>,
    dims: &[usize],
) -> PyResult<Bound<'py, PyAny>> {
    let a = PyArray1::from_vec(py, data);
    Ok(a.reshape(dims.to_vec())?.into_any())
}

/// An output value as CNTK returns it: `(B, *S)` array for a batch (or static) value,
/// a list of `(T_i, *S)` arrays for sequences.
pub fn value_to_py(py: Python<'_>, v: Value) -> PyResult<Bound<'_, PyAny>> {
    match v.dtype() {
        DType::F32 => typed_to_py::<f32>(py, v),
        DType::F64 => typed_to_py::<f64>(py, v),
    }
}

fn typed_to_py<T: Element + NpElement>(py: Python<'_>, v: Value) -> PyResult<Bound<'_, PyAny>> {
    let sdims = v.shape().dims().to_vec();
    match v.layout().clone() {
        Layout::Static => array_from(py, into_rows::<T>(v), &sdims),
        Layout::Batch(n) => {
            let mut d = vec![n];
            d.extend(&sdims);
            array_from(py, into_rows::<T>(v), &d)
        }
        Layout::Sequence(p) => {
            let numel = v.shape().numel();
            let rows = into_rows::<T>(v);
            let out = PyList::empty(py);
            for i in 0..p.num_sequences() {
                let len = p.lengths()[i];
                let mut s = Vec::with_capacity(len * numel);
                for t in 0..len {
                    let r = p.row(i, t);
                    s.extend_from_slice(&rows[r * numel..(r + 1) * numel]);
                }
                let mut d = vec![len];
                d.extend(&sdims);
                out.append(array_from(py, s, &d)?)?;
            }
            Ok(out.into_any())
        }
    }
}

/// The value's dense rows, moved out without a copy when they are already `T`.
fn into_rows<T: Element>(v: Value) -> Vec<T> {
    match v.into_data() {
        ValueData::Dense(st) => match T::unwrap_vec(st) {
            Ok(v) => v,
            Err(other) => other.to_f64_vec().into_iter().map(T::from_f64).collect(),
        },
        ValueData::SparseF32(c) => c
            .to_dense()
            .into_iter()
            .map(|x| T::from_f64(x as f64))
            .collect(),
        ValueData::SparseF64(c) => c.to_dense().into_iter().map(T::from_f64).collect(),
    }
}

/// `(num_sequences, max_len, *S)` zero-padded (sequences) or `(B, *S)`.
pub fn padded<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    let sdims = v.shape().dims().to_vec();
    let numel = v.shape().numel();
    match v.layout() {
        Layout::Sequence(p) => {
            let rows = v.dense_rows::<f32>();
            let (n, m) = (p.num_sequences(), p.max_len());
            let mut out = vec![0f32; n * m * numel];
            for i in 0..n {
                for t in 0..p.lengths()[i] {
                    let r = p.row(i, t);
                    let o = (i * m + t) * numel;
                    out[o..o + numel].copy_from_slice(&rows[r * numel..(r + 1) * numel]);
                }
            }
            let mut d = vec![n, m];
            d.extend(&sdims);
            array_from(py, out, &d)
        }
        Layout::Batch(n) => {
            let mut d = vec![*n];
            d.extend(&sdims);
            array_from(py, v.dense_rows::<f32>(), &d)
        }
        Layout::Static => array_from(py, v.dense_rows::<f32>(), &sdims),
    }
}

/// A tensor (parameter value, gradient) as a numpy array of its shape (no copy).
pub fn tensor_to_py(py: Python<'_>, t: rntk::Tensor) -> PyResult<Bound<'_, PyAny>> {
    let dims = t.shape().dims().to_vec();
    match f32::unwrap_vec(t.into_storage()) {
        Ok(v) => array_from(py, v, &dims),
        Err(st) => match f64::unwrap_vec(st) {
            Ok(v) => array_from(py, v, &dims),
            Err(_) => Err(value_err("unsupported tensor storage")),
        },
    }
}

/// A numpy array (or anything numpy converts) as a tensor of `dtype`.
pub fn py_to_tensor(
    py: Python<'_>,
    obj: &Bound<'_, PyAny>,
    dtype: DType,
) -> PyResult<rntk::Tensor> {
    let np = py.import(intern!(py, "numpy"))?;
    let a = np.call_method1(intern!(py, "ascontiguousarray"), (obj, dtype.name()))?;
    match dtype {
        DType::F32 => {
            let a = a.cast_into::<PyArrayDyn<f32>>()?;
            let dims = a.shape().to_vec();
            rntk::Tensor::from_vec(dims, elements(&a)?).py()
        }
        DType::F64 => {
            let a = a.cast_into::<PyArrayDyn<f64>>()?;
            let dims = a.shape().to_vec();
            rntk::Tensor::from_vec(dims, elements(&a)?).py()
        }
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyValue>()?;
    Ok(())
}

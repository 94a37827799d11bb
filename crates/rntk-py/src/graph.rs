//! Graph handles: `Var` (rntk `Variable`), `Func` (rntk `Function`), `Axes` (dynamic
//! axes), and `Func.eval` — the evaluation hot path, which keeps one compiled
//! forward-only executor per function and output set.

use crate::data::{py_to_tensor, tensor_to_py, to_value, value_to_py};
use crate::errors::{guard, nogil, type_err, value_err, IntoPy};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};
use rntk::{Axis, CloneMethod, DType, DynamicAxes, Executor, Function, Value, VarKind, Variable};
use std::collections::HashSet;
use std::sync::Mutex;

/// Dynamic axes of a variable (`[]`, `[#]`, `[#, *]`).
#[pyclass(module = "rntk._rntk", name = "Axes", frozen, eq, hash)]
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PyAxes(pub DynamicAxes);

#[pymethods]
impl PyAxes {
    /// `"none"`, `"batch"` or `"sequence"`.
    #[getter]
    fn kind(&self) -> &'static str {
        match self.0 {
            DynamicAxes::None => "none",
            DynamicAxes::Batch => "batch",
            DynamicAxes::Sequence(_) => "sequence",
        }
    }
    /// The sequence axis name, if any.
    #[getter]
    fn sequence_axis(&self) -> Option<String> {
        match &self.0 {
            DynamicAxes::Sequence(a) => Some(a.name().to_string()),
            _ => None,
        }
    }
    #[staticmethod]
    fn none() -> Self {
        PyAxes(DynamicAxes::None)
    }
    #[staticmethod]
    fn batch() -> Self {
        PyAxes(DynamicAxes::Batch)
    }
    /// Batch + a sequence axis: the default one, or a new one named `name`.
    #[staticmethod]
    #[pyo3(signature = (name=None))]
    fn sequence(name: Option<&str>) -> Self {
        PyAxes(match name {
            None => DynamicAxes::default_sequence(),
            Some(n) => DynamicAxes::Sequence(Axis::new(n)),
        })
    }
    fn __len__(&self) -> usize {
        match self.0 {
            DynamicAxes::None => 0,
            DynamicAxes::Batch => 1,
            DynamicAxes::Sequence(_) => 2,
        }
    }
    fn __repr__(&self) -> String {
        self.0.notation()
    }
}

/// A variable: input, parameter, constant, placeholder or function output.
#[pyclass(module = "rntk._rntk", name = "Var", frozen)]
#[derive(Clone)]
pub struct Var(pub Variable);

pub fn shape_tuple<'py>(py: Python<'py>, s: &rntk::Shape) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(
        py,
        s.dims().iter().map(|&d| {
            if d == rntk::tensor::INFERRED {
                -1i64
            } else {
                d as i64
            }
        }),
    )
}

#[pymethods]
impl Var {
    #[getter]
    fn shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        shape_tuple(py, &self.0.shape())
    }
    #[getter]
    fn dtype(&self) -> &'static str {
        self.0.dtype().name()
    }
    #[getter]
    fn name(&self) -> String {
        self.0.name()
    }
    #[getter]
    fn uid(&self) -> String {
        self.0.uid()
    }
    /// "input", "output", "parameter", "constant" or "placeholder".
    #[getter]
    fn kind(&self) -> &'static str {
        match self.0.kind() {
            VarKind::Input => "input",
            VarKind::Output => "output",
            VarKind::Parameter => "parameter",
            VarKind::Constant => "constant",
            VarKind::Placeholder => "placeholder",
        }
    }
    #[getter]
    fn is_sparse(&self) -> bool {
        self.0.is_sparse()
    }
    #[getter]
    fn needs_gradient(&self) -> bool {
        self.0.needs_gradient()
    }
    #[getter]
    fn axes(&self) -> PyAxes {
        PyAxes(self.0.dynamic_axes())
    }
    /// The function this variable is an output of.
    #[getter]
    fn owner(&self) -> Option<Func> {
        self.0.owner().map(Func::new)
    }
    /// Index of this output among its owner's outputs.
    #[getter]
    fn output_index(&self) -> usize {
        match self.0.owner() {
            Some(f) => f.outputs().iter().position(|o| *o == self.0).unwrap_or(0),
            None => 0,
        }
    }
    /// A parameter's or constant's value as a numpy array.
    fn value<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        tensor_to_py(py, self.0.value().py()?)
    }
    /// Assign a parameter's value (same shape; converted to its dtype).
    fn set_value(&self, py: Python<'_>, v: &Bound<'_, PyAny>) -> PyResult<()> {
        let t = py_to_tensor(py, v, self.0.dtype())?;
        let want = self.0.shape();
        if *t.shape() != want {
            // CNTK accepts a scalar or any array with the parameter's number of elements.
            if t.shape().numel() == want.numel() {
                let data = t.to_f64_vec();
                return self
                    .0
                    .set_value(rntk::Tensor::from_f64(want, self.0.dtype(), &data).py()?)
                    .py();
            }
            if t.shape().numel() == 1 {
                let data = vec![t.to_f64_vec()[0]; want.numel()];
                return self
                    .0
                    .set_value(rntk::Tensor::from_f64(want, self.0.dtype(), &data).py()?)
                    .py();
            }
        }
        self.0.set_value(t).py()
    }
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<Var>()
            .map(|o| o.get().0 == self.0)
            .unwrap_or(false)
    }
    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.0.key().hash(&mut h);
        h.finish()
    }
    fn __repr__(&self) -> String {
        format!("{:?}", self.0)
    }
}

enum Exec {
    F32(Executor<f32>),
    F64(Executor<f64>),
}

struct EvalCache {
    outs: Vec<Variable>,
    args: Vec<Variable>,
    ex: Exec,
}

/// A function: a primitive op, a block (layer) or a combination of outputs.
#[pyclass(module = "rntk._rntk", name = "Func", frozen)]
pub struct Func {
    pub f: Function,
    cache: Mutex<Option<EvalCache>>,
}

impl Func {
    pub fn new(f: Function) -> Self {
        Func {
            f,
            cache: Mutex::new(None),
        }
    }
}

/// The rntk variable behind a Python key or operand: a `Var`, or any object with a
/// `_v` attribute (the Python `Variable` and one-output `Function` wrappers).
pub fn var_of(obj: &Bound<'_, PyAny>) -> PyResult<Variable> {
    if let Ok(v) = obj.cast::<Var>() {
        return Ok(v.get().0.clone());
    }
    match obj.getattr(intern!(obj.py(), "_v")) {
        Ok(h) => match h.cast::<Var>() {
            Ok(v) => Ok(v.get().0.clone()),
            Err(_) => Err(type_err(format!("{} is not a Variable", obj.repr()?))),
        },
        Err(_) => Err(type_err(format!(
            "expected a Variable or Function, got {}",
            obj.get_type().name()?
        ))),
    }
}

/// The variable a feed key means: a Variable/Function, or an argument's name.
fn key_var(key: &Bound<'_, PyAny>, args: &[Variable]) -> PyResult<Variable> {
    if let Ok(s) = key.cast::<PyString>() {
        let name = s.to_str()?;
        let hits: Vec<&Variable> = args.iter().filter(|a| a.name() == name).collect();
        return match hits.len() {
            1 => Ok(hits[0].clone()),
            0 => Err(value_err(format!(
                "no input named '{name}' (inputs: {})",
                args.iter()
                    .map(|a| format!("'{}'", a.label()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
            _ => Err(value_err(format!(
                "the name '{name}' is not unique among the inputs"
            ))),
        };
    }
    var_of(key)
}

/// Feeds from CNTK's argument forms: a dict keyed by Variable (or name), or — for a
/// function of one argument — the data alone. Every argument must be fed. A Variable
/// key that is not an argument is ignored with CNTK 2.7's warning on stderr (its data
/// is not looked at, as CNTK does); a name that is not an argument's is an error.
pub fn parse_feeds(
    py: Python<'_>,
    arguments: &Bound<'_, PyAny>,
    args: &[Variable],
) -> PyResult<Vec<(Variable, Value)>> {
    let mut feeds = Vec::with_capacity(args.len());
    if let Ok(d) = arguments.cast::<PyDict>() {
        let mut extra = 0;
        for (k, v) in d.iter() {
            let var = key_var(&k, args)?;
            let Some(var) = args.iter().find(|a| **a == var).cloned() else {
                extra += 1;
                continue;
            };
            let val = to_value(py, &v, &var)?;
            feeds.push((var, val));
        }
        if extra > 0 {
            eprintln!(
                "WARNING: Function::Forward provided values for ({extra}) extra arguments \
                 which are not required for evaluating the specified Function outputs!"
            );
        }
    } else if arguments.is_none() {
    } else {
        if args.len() != 1 {
            return Err(value_err(format!(
                "the function has {} inputs ({}); pass a dict {{input: data}}",
                args.len(),
                args.iter()
                    .map(|a| format!("'{}'", a.label()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let val = to_value(py, arguments, &args[0])?;
        feeds.push((args[0].clone(), val));
    }
    for a in args {
        if !feeds.iter().any(|(v, _)| v == a) {
            return Err(value_err(format!(
                "input '{}' of shape {} {} is not fed (fed: {})",
                a.label(),
                a.shape(),
                a.dynamic_axes().notation(),
                feeds
                    .iter()
                    .map(|(v, _)| format!("'{}'", v.label()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    Ok(feeds)
}

fn clone_method(m: &str) -> PyResult<CloneMethod> {
    match m {
        "share" => Ok(CloneMethod::Share),
        "clone" => Ok(CloneMethod::Clone),
        "freeze" => Ok(CloneMethod::Freeze),
        _ => Err(value_err(format!(
            "clone method must be 'share', 'clone' or 'freeze', got '{m}'"
        ))),
    }
}

fn vars_list<'py>(py: Python<'py>, vs: Vec<Variable>) -> PyResult<Bound<'py, PyList>> {
    PyList::new(py, vs.into_iter().map(Var))
}

impl Func {
    fn run_eval<'py>(
        &self,
        py: Python<'py>,
        arguments: &Bound<'py, PyAny>,
        outputs: Option<Vec<Variable>>,
    ) -> PyResult<Vec<Value>> {
        let outs = outputs.unwrap_or_else(|| self.f.outputs());
        let mut guard_ = self
            .cache
            .lock()
            .map_err(|_| value_err("eval cache lock poisoned"))?;
        let fresh = match guard_.as_ref() {
            Some(c) => c.outs != outs,
            None => true,
        };
        if fresh {
            let dtype = outs.first().map(|v| v.dtype()).unwrap_or(DType::F32);
            let ex = match dtype {
                DType::F32 => Exec::F32(Executor::<f32>::new_inference(&outs).py()?),
                DType::F64 => Exec::F64(Executor::<f64>::new_inference(&outs).py()?),
            };
            let args = Function::combine(&outs, "").py()?.arguments();
            *guard_ = Some(EvalCache {
                outs: outs.clone(),
                args,
                ex,
            });
        }
        let cache = guard_.as_mut().expect("set above");
        let feeds = parse_feeds(py, arguments, &cache.args)?;
        let outs = &cache.outs;
        let ex = &mut cache.ex;
        nogil(py, move || {
            let refs: Vec<(&Variable, &Value)> = feeds.iter().map(|(v, x)| (v, x)).collect();
            match ex {
                Exec::F32(e) => {
                    e.forward(&refs, false)?;
                    outs.iter().map(|o| e.value(o)).collect()
                }
                Exec::F64(e) => {
                    e.forward(&refs, false)?;
                    outs.iter().map(|o| e.value(o)).collect()
                }
            }
        })
    }

    fn invalidate(&self) {
        if let Ok(mut g) = self.cache.lock() {
            *g = None;
        }
    }
}

#[pymethods]
impl Func {
    #[getter]
    fn name(&self) -> String {
        self.f.name().to_string()
    }
    #[getter]
    fn uid(&self) -> String {
        self.f.uid().to_string()
    }
    #[getter]
    fn op_name(&self) -> String {
        self.f.op_name()
    }
    #[getter]
    fn is_block(&self) -> bool {
        self.f.is_block()
    }
    #[getter]
    fn is_composite(&self) -> bool {
        self.f.op_name() == "Combine"
    }
    fn block_root(&self) -> Option<Func> {
        self.f.block_root().map(Func::new)
    }
    fn outputs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        vars_list(py, self.f.outputs())
    }
    fn inputs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        vars_list(py, self.f.inputs().to_vec())
    }
    fn arguments<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        vars_list(py, self.f.arguments())
    }
    fn parameters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        vars_list(py, self.f.parameters())
    }
    fn constants<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        vars_list(py, self.f.constants())
    }
    fn placeholders<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        vars_list(py, self.f.placeholders())
    }
    /// Every function reachable from the outputs (blocks and their bodies included),
    /// depth first, each once.
    fn functions<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        let mut stack: Vec<Function> = vec![self.f.clone()];
        while let Some(f) = stack.pop() {
            if !seen.insert(f.uid().to_string()) {
                continue;
            }
            out.push(f.clone());
            let mut next: Vec<Function> = Vec::new();
            if let Some(b) = f.block_root() {
                next.push(b);
            }
            for v in f.inputs().iter().chain(f.outputs().iter()) {
                if let Some(o) = v.resolve().owner() {
                    next.push(o);
                }
            }
            stack.extend(next.into_iter().rev());
        }
        PyList::new(py, out.into_iter().map(Func::new))
    }
    /// Replace placeholders: a list of (placeholder, replacement) pairs.
    fn replace_placeholders(&self, pairs: Vec<(Var, Var)>) -> PyResult<()> {
        let p: Vec<(Variable, Variable)> = pairs.into_iter().map(|(a, b)| (a.0, b.0)).collect();
        self.f.replace_placeholders(&p).py()?;
        self.invalidate();
        Ok(())
    }
    /// A copy: method "share" | "clone" | "freeze"; substitutions (old, new) pairs.
    fn clone_with(&self, method: &str, substitutions: Vec<(Var, Var)>) -> PyResult<Func> {
        let s: Vec<(Variable, Variable)> =
            substitutions.into_iter().map(|(a, b)| (a.0, b.0)).collect();
        guard(|| {
            Ok(Func::new(
                self.f.clone_with(clone_method(method)?, &s).py()?,
            ))
        })
    }
    fn save(&self, py: Python<'_>, path: &str) -> PyResult<()> {
        let f = self.f.clone();
        let p = path.to_string();
        nogil(py, move || f.save(&p))
    }
    /// Load a model saved by rntk, or a CNTK 2.x model file.
    #[staticmethod]
    fn load(py: Python<'_>, path: &str) -> PyResult<Func> {
        let p = path.to_string();
        let bytes = std::fs::read(&p)
            .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(format!("{p}: {e}")))?;
        let f = nogil(py, move || {
            // CNTK 2.x files are protobuf; rntk's own start with its magic.
            match Function::load(&p) {
                Ok(f) => Ok(f),
                Err(native) => rntk::import::load_cntk_bytes(&p, &bytes).map_err(|_| native),
            }
        })?;
        Ok(Func::new(f))
    }
    /// Evaluate; returns one object per requested output (array or list of arrays).
    #[pyo3(signature = (arguments, outputs=None))]
    fn eval<'py>(
        &self,
        py: Python<'py>,
        arguments: &Bound<'py, PyAny>,
        outputs: Option<Vec<Var>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let outs = outputs.map(|o| o.into_iter().map(|v| v.0).collect());
        let vals = guard(|| self.run_eval(py, arguments, outs))?;
        let l = PyList::empty(py);
        for v in vals {
            l.append(value_to_py(py, v)?)?;
        }
        Ok(l)
    }
    /// Benchmark helper: `n` evaluations of the same (converted once) feeds in Rust,
    /// through the same cached executor as `eval`; seconds per evaluation.
    fn time_eval(&self, py: Python<'_>, arguments: &Bound<'_, PyAny>, n: usize) -> PyResult<f64> {
        self.run_eval(py, arguments, None)?;
        let mut g = self
            .cache
            .lock()
            .map_err(|_| value_err("eval cache lock poisoned"))?;
        let cache = g.as_mut().expect("filled by run_eval");
        let feeds = parse_feeds(py, arguments, &cache.args)?;
        let outs = &cache.outs;
        let ex = &mut cache.ex;
        nogil(py, move || {
            let refs: Vec<(&Variable, &Value)> = feeds.iter().map(|(v, x)| (v, x)).collect();
            let start = std::time::Instant::now();
            for _ in 0..n {
                match ex {
                    Exec::F32(e) => {
                        e.forward(&refs, false)?;
                        outs.iter()
                            .map(|o| e.value(o))
                            .collect::<rntk::Result<Vec<_>>>()?;
                    }
                    Exec::F64(e) => {
                        e.forward(&refs, false)?;
                        outs.iter()
                            .map(|o| e.value(o))
                            .collect::<rntk::Result<Vec<_>>>()?;
                    }
                }
            }
            Ok(start.elapsed().as_secs_f64() / n.max(1) as f64)
        })
    }

    /// Evaluate a one-output function: the output's array (or list of arrays).
    fn eval1<'py>(
        &self,
        py: Python<'py>,
        arguments: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut vals = guard(|| self.run_eval(py, arguments, None))?;
        if vals.len() != 1 {
            return Err(value_err("eval1 on a function with several outputs"));
        }
        value_to_py(py, vals.pop().expect("one"))
    }
    /// Forward then backward of the sum of `root` (seeded with `root_gradient`, default
    /// ones); returns (outputs, gradients of `wrt` as arrays) — CNTK's forward/backward.
    #[pyo3(signature = (arguments, wrt, root=None, root_gradient=None, outputs=None))]
    fn grad<'py>(
        &self,
        py: Python<'py>,
        arguments: &Bound<'py, PyAny>,
        wrt: Vec<Var>,
        root: Option<Var>,
        root_gradient: Option<&Bound<'py, PyAny>>,
        outputs: Option<Vec<Var>>,
    ) -> PyResult<(Bound<'py, PyList>, Bound<'py, PyList>)> {
        guard(|| {
            let root = match root {
                Some(r) => r.0,
                None => self.f.outputs()[0].clone(),
            };
            let mut outs = vec![root.clone()];
            for o in outputs.unwrap_or_default() {
                if !outs.contains(&o.0) {
                    outs.push(o.0);
                }
            }
            let args = Function::combine(&outs, "").py()?.arguments();
            let feeds = parse_feeds(py, arguments, &args)?;
            let seed = match root_gradient {
                Some(g) => Some(to_value(py, g, &root)?),
                None => None,
            };
            let wrt: Vec<Variable> = wrt.into_iter().map(|v| v.0).collect();
            let dtype = root.dtype();
            let outs2 = outs.clone();
            let (vals, grads) = nogil(py, move || {
                let refs: Vec<(&Variable, &Value)> = feeds.iter().map(|(v, x)| (v, x)).collect();
                let w: Vec<&Variable> = wrt.iter().collect();
                macro_rules! run {
                    ($t:ty) => {{
                        let mut ex = Executor::<$t>::new(&outs2)?;
                        ex.forward(&refs, true)?;
                        let vals = outs2
                            .iter()
                            .map(|o| ex.value(o))
                            .collect::<rntk::Result<Vec<_>>>()?;
                        let g = ex.backward(&[(&outs2[0], seed.as_ref())], &w)?;
                        Ok((vals, g))
                    }};
                }
                match dtype {
                    DType::F32 => run!(f32),
                    DType::F64 => run!(f64),
                }
            })?;
            let lv = PyList::empty(py);
            for v in vals {
                lv.append(value_to_py(py, v)?)?;
            }
            let lg = PyList::empty(py);
            for g in grads {
                lg.append(value_to_py(py, g)?)?;
            }
            Ok((lv, lg))
        })
    }
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<Func>()
            .map(|o| o.get().f == self.f)
            .unwrap_or(false)
    }
    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.f.uid().hash(&mut h);
        h.finish()
    }
    fn __repr__(&self) -> String {
        format!("{:?}", self.f)
    }
}

/// `combine(vars, name)`.
#[pyfunction]
#[pyo3(signature = (vars, name=""))]
fn combine(vars: Vec<Var>, name: &str) -> PyResult<Func> {
    let v: Vec<Variable> = vars.into_iter().map(|v| v.0).collect();
    Ok(Func::new(Function::combine(&v, name).py()?))
}

/// `input_variable(shape, dtype, is_sparse, needs_gradient, axes, name)`.
#[pyfunction]
#[pyo3(signature = (shape, dtype, is_sparse, needs_gradient, axes, name))]
fn input_variable(
    shape: Vec<usize>,
    dtype: &str,
    is_sparse: bool,
    needs_gradient: bool,
    axes: PyAxes,
    name: &str,
) -> PyResult<Var> {
    Ok(Var(rntk::input_variable_with(
        shape,
        rntk::InputOptions {
            dtype: parse_dtype(dtype)?,
            is_sparse,
            needs_gradient,
            dynamic_axes: axes.0,
            name: name.to_string(),
        },
    )))
}

pub fn parse_dtype(s: &str) -> PyResult<DType> {
    match s {
        "float32" | "float" | "f" => Ok(DType::F32),
        "float64" | "double" | "d" => Ok(DType::F64),
        _ => Err(type_err(format!(
            "rntk computes in float32 or float64, not {s}"
        ))),
    }
}

/// `placeholder(shape, dtype, axes, name)` (shape fully known).
#[pyfunction]
fn placeholder(shape: Vec<usize>, dtype: &str, axes: PyAxes, name: &str) -> PyResult<Var> {
    Ok(Var(rntk::placeholder(
        shape,
        parse_dtype(dtype)?,
        axes.0,
        name,
    )
    .py()?))
}

/// `constant(array, dtype, name)`.
#[pyfunction]
fn constant(py: Python<'_>, value: &Bound<'_, PyAny>, dtype: &str, name: &str) -> PyResult<Var> {
    let t = py_to_tensor(py, value, parse_dtype(dtype)?)?;
    Ok(Var(rntk::constant(t, name)))
}

/// `parameter(shape, dtype, init, name)`: shape may hold -1 (inferred at first use).
#[pyfunction]
fn parameter(
    shape: Vec<i64>,
    dtype: &str,
    init: &crate::layers::PyInit,
    name: &str,
) -> PyResult<Var> {
    let dims: Vec<usize> = shape
        .iter()
        .map(|&d| {
            if d < 0 {
                rntk::tensor::INFERRED
            } else {
                d as usize
            }
        })
        .collect();
    Ok(Var(rntk::parameter(
        dims,
        parse_dtype(dtype)?,
        init.0.clone(),
        name,
    )
    .py()?))
}

/// A parameter holding `value`.
#[pyfunction]
fn parameter_from(
    py: Python<'_>,
    value: &Bound<'_, PyAny>,
    dtype: &str,
    name: &str,
) -> PyResult<Var> {
    let t = py_to_tensor(py, value, parse_dtype(dtype)?)?;
    Ok(Var(rntk::parameter_from(t, name)))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Var>()?;
    m.add_class::<Func>()?;
    m.add_class::<PyAxes>()?;
    m.add_function(wrap_pyfunction!(combine, m)?)?;
    m.add_function(wrap_pyfunction!(input_variable, m)?)?;
    m.add_function(wrap_pyfunction!(placeholder, m)?)?;
    m.add_function(wrap_pyfunction!(constant, m)?)?;
    m.add_function(wrap_pyfunction!(parameter, m)?)?;
    m.add_function(wrap_pyfunction!(parameter_from, m)?)?;
    Ok(())
}

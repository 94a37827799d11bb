//! CNTK's Layers as Rust layer objects: the Python side resolves `default_options` and
//! passes every option explicitly; a layer creates its parameters on first application
//! and shares them afterwards. `LSTM`/`GRU`/`RNNStep` are steps for `Recurrence`/`Fold`
//! (the plain LSTM runs as one fused scan).

use crate::data::py_to_tensor;
use crate::errors::{value_err, IntoPy};
use crate::graph::{parse_dtype, Var};
use pyo3::prelude::*;
use pyo3::types::PyList;
use rntk::graph::{placeholder, VarInfo};
use rntk::initializer::Initializer;
use rntk::layers::probe::probe;
use rntk::layers::{
    Activation, BatchNormalization, Delay, Dense, Dropout, Embedding, Fold, Generator, Gru,
    InitialState, Label, Layer, LayerNormalization, Lstm, Predicate, Recurrence, RecurrenceFrom,
    RecurrentStep, RnnStep, Stabilizer, UnfoldFrom,
};
use rntk::tensor::Shape;
use rntk::Variable;
use std::sync::{Arc, Mutex};

/// An initializer (CNTK's `cntk.initializer` objects).
#[pyclass(module = "rntk._rntk", name = "Init", frozen)]
#[derive(Clone)]
pub struct PyInit(pub Initializer);

#[pymethods]
impl PyInit {
    /// kind: uniform, normal, truncated_normal, glorot_uniform, glorot_normal,
    /// he_uniform, he_normal, xavier, constant.
    #[new]
    #[pyo3(signature = (kind, scale=1.0, output_rank=None, seed=None))]
    fn new(
        kind: &str,
        scale: f64,
        output_rank: Option<usize>,
        seed: Option<u64>,
    ) -> PyResult<Self> {
        let r = output_rank.unwrap_or(1);
        let i = match kind {
            "constant" => Initializer::Constant(scale),
            "uniform" => Initializer::Uniform { scale, seed },
            "normal" => Initializer::Normal { scale, seed },
            "truncated_normal" => Initializer::TruncatedNormal { stdev: scale, seed },
            "glorot_uniform" => Initializer::GlorotUniform {
                scale,
                output_rank: r,
                seed,
            },
            "glorot_normal" => Initializer::GlorotNormal {
                scale,
                output_rank: r,
                seed,
            },
            "he_uniform" => Initializer::HeUniform {
                scale,
                output_rank: r,
                seed,
            },
            "he_normal" => Initializer::HeNormal {
                scale,
                output_rank: r,
                seed,
            },
            "xavier" => Initializer::Xavier {
                scale,
                output_rank: r,
                seed,
            },
            _ => return Err(value_err(format!("unknown initializer {kind}"))),
        };
        Ok(PyInit(i))
    }
    /// An explicit array.
    #[staticmethod]
    fn array(py: Python<'_>, value: &Bound<'_, PyAny>, dtype: &str) -> PyResult<Self> {
        Ok(PyInit(Initializer::Array(py_to_tensor(
            py,
            value,
            parse_dtype(dtype)?,
        )?)))
    }
    /// Draw a tensor of `shape` (CNTK's initializer objects can be sampled this way in tests).
    fn generate<'py>(
        &self,
        py: Python<'py>,
        shape: Vec<usize>,
        dtype: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let t = self
            .0
            .generate(&Shape::from(shape), parse_dtype(dtype)?)
            .py()?;
        crate::data::tensor_to_py(py, t)
    }
    fn __repr__(&self) -> String {
        format!("{:?}", self.0)
    }
}

/// An activation: a name, or a Python callable `Var -> Var`.
pub(crate) fn activation(a: &Bound<'_, PyAny>) -> PyResult<Activation> {
    if a.is_none() {
        return Ok(Activation::Identity);
    }
    if let Ok(s) = a.extract::<String>() {
        return Ok(match s.as_str() {
            "identity" => Activation::Identity,
            "sigmoid" => Activation::Sigmoid,
            "tanh" => Activation::Tanh,
            "relu" => Activation::Relu,
            "softplus" => Activation::Softplus,
            "elu" => Activation::Elu,
            "leaky_relu" => Activation::LeakyRelu(0.01),
            "softmax" => Activation::Softmax,
            _ => return Err(value_err(format!("unknown activation {s}"))),
        });
    }
    let f: Py<PyAny> = a.clone().unbind();
    Ok(Activation::Custom(Arc::new(move |x: &Variable| {
        Python::attach(|py| {
            let r = f
                .call1(py, (Var(x.clone()),))
                .and_then(|r| r.extract::<Var>(py).map_err(PyErr::from));
            r.map(|v| v.0)
                .map_err(|e| rntk::Error::Argument(format!("activation function failed: {e}")))
        })
    })))
}

/// A recurrent step (LSTM, GRU, RNNStep), shared by the recurrences that scan it.
#[pyclass(module = "rntk._rntk", name = "Step", frozen)]
#[derive(Clone)]
pub struct PyStep(pub Arc<dyn RecurrentStep>);

struct SharedStep(Arc<dyn RecurrentStep>);

impl RecurrentStep for SharedStep {
    fn state_shapes(&self, x: &VarInfo) -> rntk::Result<Vec<Shape>> {
        self.0.state_shapes(x)
    }
    fn step(&self, states: &[Variable], x: &Variable) -> rntk::Result<Vec<Variable>> {
        self.0.step(states, x)
    }
    fn parameters(&self) -> Vec<Variable> {
        self.0.parameters()
    }
    fn op_name(&self) -> &str {
        self.0.op_name()
    }
    fn fused_scan(
        &self,
        x: &Variable,
        init: &[Variable],
        back: bool,
    ) -> rntk::Result<Option<Vec<Variable>>> {
        self.0.fused_scan(x, init, back)
    }
}

#[pymethods]
impl PyStep {
    fn parameters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.0.parameters().into_iter().map(Var))
    }
    #[getter]
    fn op_name(&self) -> String {
        self.0.op_name().to_string()
    }
    /// One step on explicit states: `(states…, x) → states`.
    fn step<'py>(
        &self,
        py: Python<'py>,
        states: Vec<Var>,
        x: &Var,
    ) -> PyResult<Bound<'py, PyList>> {
        let s: Vec<Variable> = states.into_iter().map(|v| v.0).collect();
        PyList::new(py, self.0.step(&s, &x.0).py()?.into_iter().map(Var))
    }
}

/// A recurrent step written in Python: `call(states, x) -> new states` (lists of `Var`)
/// and `params() -> [Var]` its parameters once built. rntk's placeholders need the
/// state shapes: given up front, or (`None`) inferred as CNTK does from what the
/// function returns, by running it once on stand-in states under
/// `rntk::layers::probe` (no parameters made, no seeds taken) when the recurrence is
/// first applied.
struct PythonStep {
    call: Py<PyAny>,
    params: Py<PyAny>,
    nstates: usize,
    shapes: Mutex<Option<Vec<Shape>>>,
}

impl PythonStep {
    fn vars(py: Python<'_>, r: PyResult<Py<PyAny>>, what: &str) -> rntk::Result<Vec<Variable>> {
        r.and_then(|r| r.bind(py).extract::<Vec<Var>>())
            .map(|v| v.into_iter().map(|v| v.0).collect())
            .map_err(|e| rntk::Error::Argument(format!("the Python step function's {what}: {e}")))
    }

    fn call_step(&self, states: &[Variable], x: &Variable) -> rntk::Result<Vec<Variable>> {
        Python::attach(|py| {
            let s: Vec<Var> = states.iter().cloned().map(Var).collect();
            let out = Self::vars(py, self.call.call1(py, (s, Var(x.clone()))), "result")?;
            if out.len() != self.nstates {
                return Err(rntk::Error::Argument(format!(
                    "the Python step function takes {} states but returned {} values",
                    self.nstates,
                    out.len()
                )));
            }
            Ok(out)
        })
    }

    /// The state shapes CNTK would infer: the shapes the function returns when run on
    /// stand-in states of shape (1,) (layers give outputs of their own shapes).
    fn probe_shapes(&self, x: &VarInfo) -> rntk::Result<Vec<Shape>> {
        let ph = |shape: Shape, name: &str| placeholder(shape, x.dtype, x.axes.clone(), name);
        let states = (0..self.nstates)
            .map(|k| ph(Shape::from([1]), &format!("state{k}")))
            .collect::<rntk::Result<Vec<_>>>()?;
        let xs = ph(x.shape.clone(), "x")?;
        let outs = probe(|| self.call_step(&states, &xs)).map_err(|e| {
            rntk::Error::Argument(format!(
                "Recurrence over a Python step function: rntk infers the shapes of its {} \
                 state(s) by running it once on stand-in states of shape (1,), which failed \
                 ({e}); give them: type the function (@C.Function with \
                 @C.layers.Signature(Tensor[n], ..., Tensor[d])) or pass \
                 initial_state=C.Constant(np.zeros(shape)) (a tuple for several states)",
                self.nstates
            ))
        })?;
        Ok(outs.iter().map(|v| v.shape()).collect())
    }
}

impl RecurrentStep for PythonStep {
    fn state_shapes(&self, x: &VarInfo) -> rntk::Result<Vec<Shape>> {
        if let Some(s) = self.shapes.lock().map_err(|_| poisoned())?.as_ref() {
            return Ok(s.clone());
        }
        let s = self.probe_shapes(x)?;
        *self.shapes.lock().map_err(|_| poisoned())? = Some(s.clone());
        Ok(s)
    }
    fn step(&self, states: &[Variable], x: &Variable) -> rntk::Result<Vec<Variable>> {
        let out = self.call_step(states, x)?;
        for (k, (o, s)) in out.iter().zip(states).enumerate() {
            if o.shape() != s.shape() {
                return Err(rntk::Error::Argument(format!(
                    "the Python step function returned state {k} of shape {}, but that \
                     state has shape {} (a step must return states of the shapes it takes)",
                    o.shape(),
                    s.shape()
                )));
            }
        }
        Ok(out)
    }
    fn parameters(&self) -> Vec<Variable> {
        Python::attach(|py| Self::vars(py, self.params.call0(py), "parameters")).unwrap_or_default()
    }
    fn op_name(&self) -> &str {
        "Recurrence"
    }
}

fn poisoned() -> rntk::Error {
    rntk::Error::Argument("the Python step's state shapes: lock poisoned".into())
}

/// A step over a Python function of `nstates` states (see `PythonStep`); `shapes`
/// `None` infers them when the recurrence is first applied.
#[pyfunction]
#[pyo3(signature = (call, params, shapes, nstates))]
fn python_step(
    call: Py<PyAny>,
    params: Py<PyAny>,
    shapes: Option<Vec<Vec<usize>>>,
    nstates: usize,
) -> PyStep {
    let shapes: Option<Vec<Shape>> = shapes.map(|s| s.into_iter().map(Shape::from).collect());
    PyStep(Arc::new(PythonStep {
        call,
        params,
        nstates: shapes.as_ref().map_or(nstates, |s| s.len()),
        shapes: Mutex::new(shapes),
    }))
}

/// `kind` lstm | gru | rnn_step.
#[pyfunction]
#[pyo3(signature = (kind, shape, cell_shape, activation_, use_peepholes, init, init_bias, enable_self_stabilization, name))]
#[allow(clippy::too_many_arguments)]
fn recurrent_step(
    kind: &str,
    shape: usize,
    cell_shape: Option<usize>,
    activation_: Option<&Bound<'_, PyAny>>,
    use_peepholes: bool,
    init: &PyInit,
    init_bias: f64,
    enable_self_stabilization: bool,
    name: &str,
) -> PyResult<PyStep> {
    macro_rules! build {
        ($t:ty) => {{
            let mut s = <$t>::new(shape)
                .init(init.0.clone())
                .init_bias(init_bias)
                .enable_self_stabilization(enable_self_stabilization)
                .name(name);
            if let Some(c) = cell_shape {
                s = s.cell_shape(c);
            }
            if let Some(a) = activation_ {
                s = s.activation(activation(a)?);
            }
            s
        }};
    }
    let step: Arc<dyn RecurrentStep> = match kind {
        "lstm" => Arc::new(build!(Lstm).use_peepholes(use_peepholes)),
        "gru" => Arc::new(build!(Gru)),
        "rnn_step" => Arc::new(build!(RnnStep)),
        _ => return Err(value_err(format!("unknown recurrent step {kind}"))),
    };
    Ok(PyStep(step))
}

/// Every state of a recurrence (`return_full_state`).
type FullState = Box<dyn Fn(&Variable) -> rntk::Result<Vec<Variable>> + Send + Sync>;

/// A layer object (Dense, Recurrence, Fold, Embedding, Dropout, …).
#[pyclass(module = "rntk._rntk", name = "Layer", frozen)]
pub struct PyLayer {
    layer: Arc<dyn Layer>,
    full: Option<FullState>,
}

impl PyLayer {
    pub(crate) fn of(l: impl Layer + 'static) -> Self {
        PyLayer {
            layer: Arc::new(l),
            full: None,
        }
    }
}

#[pymethods]
impl PyLayer {
    fn apply(&self, x: &Var) -> PyResult<Var> {
        Ok(Var(self.layer.apply(&x.0).py()?))
    }
    /// Every state (Recurrence/Fold `return_full_state=True`); other layers: `[apply(x)]`.
    fn apply_full<'py>(&self, py: Python<'py>, x: &Var) -> PyResult<Bound<'py, PyList>> {
        let outs = match &self.full {
            Some(f) => f(&x.0).py()?,
            None => vec![self.layer.apply(&x.0).py()?],
        };
        PyList::new(py, outs.into_iter().map(Var))
    }
    fn parameters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.layer.parameters().into_iter().map(Var))
    }
    #[getter]
    fn name(&self) -> String {
        self.layer.name().to_string()
    }
}

#[pyfunction]
#[pyo3(signature = (shape, activation_, init, bias, init_bias, input_rank, map_rank, name))]
#[allow(clippy::too_many_arguments)]
fn dense(
    shape: Vec<usize>,
    activation_: &Bound<'_, PyAny>,
    init: &PyInit,
    bias: bool,
    init_bias: f64,
    input_rank: Option<usize>,
    map_rank: Option<usize>,
    name: &str,
) -> PyResult<PyLayer> {
    let mut d = Dense::new(shape)
        .activation(activation(activation_)?)
        .init(init.0.clone())
        .bias(bias)
        .init_bias(init_bias)
        .name(name);
    if let Some(k) = input_rank {
        d = d.input_rank(k);
    }
    if let Some(m) = map_rank {
        d = d.map_rank(m);
    }
    Ok(PyLayer::of(d))
}

#[pyfunction]
#[pyo3(signature = (shape, init, weights, name))]
fn embedding(
    py: Python<'_>,
    shape: Option<Vec<usize>>,
    init: &PyInit,
    weights: Option<&Bound<'_, PyAny>>,
    name: &str,
) -> PyResult<PyLayer> {
    let e = match (weights, shape) {
        (Some(w), _) => Embedding::from_weights(py_to_tensor(py, w, rntk::DType::F32)?).name(name),
        (None, Some(s)) => Embedding::new(s).init(init.0.clone()).name(name),
        (None, None) => return Err(value_err("Embedding needs shape or weights")),
    };
    Ok(PyLayer::of(e))
}

fn initial_state(v: &Bound<'_, PyAny>) -> PyResult<InitialState> {
    if let Ok(x) = v.extract::<f64>() {
        return Ok(InitialState::Scalar(x));
    }
    if let Ok(h) = v.extract::<Var>() {
        return Ok(InitialState::Variable(h.0));
    }
    if let Ok(list) = v.extract::<Vec<Bound<'_, PyAny>>>() {
        return Ok(InitialState::PerState(
            list.iter().map(initial_state).collect::<PyResult<_>>()?,
        ));
    }
    Err(value_err("initial_state must be a number, a Constant/Parameter or a tuple of them (wrap arrays in C.Constant)"))
}

/// `Recurrence(step)` (fold=False) or `Fold(step)` (fold=True).
#[pyfunction]
fn recurrence(
    step: &PyStep,
    go_backwards: bool,
    initial_state_: &Bound<'_, PyAny>,
    fold: bool,
    name: &str,
) -> PyResult<PyLayer> {
    let init = initial_state(initial_state_)?;
    let s = SharedStep(step.0.clone());
    if fold {
        let f = Arc::new(
            Fold::new(s)
                .go_backwards(go_backwards)
                .initial_state(init)
                .name(name),
        );
        let f2 = f.clone();
        Ok(PyLayer {
            layer: f,
            full: Some(Box::new(move |x| f2.apply_full(x))),
        })
    } else {
        let r = Arc::new(
            Recurrence::new(s)
                .go_backwards(go_backwards)
                .initial_state(init)
                .name(name),
        );
        let r2 = r.clone();
        Ok(PyLayer {
            layer: r,
            full: Some(Box::new(move |x| r2.apply_full(x))),
        })
    }
}

/// CNTK's `RecurrenceFrom(step)`: a recurrence whose initial states are inputs.
#[pyclass(module = "rntk._rntk", name = "RecurrenceFrom", frozen)]
pub struct PyRecurrenceFrom(RecurrenceFrom);

#[pymethods]
impl PyRecurrenceFrom {
    #[new]
    fn new(step: &PyStep, go_backwards: bool, name: &str) -> Self {
        PyRecurrenceFrom(
            RecurrenceFrom::new(SharedStep(step.0.clone()))
                .go_backwards(go_backwards)
                .name(name),
        )
    }
    /// Scan `x` from `initial` (one per state); every state sequence.
    fn apply_from<'py>(
        &self,
        py: Python<'py>,
        initial: Vec<Var>,
        x: &Var,
    ) -> PyResult<Bound<'py, PyList>> {
        let init: Vec<Variable> = initial.into_iter().map(|v| v.0).collect();
        PyList::new(
            py,
            self.0.apply_from(&init, &x.0).py()?.into_iter().map(Var),
        )
    }
}

/// A Python callable `Var -> Var | [Var]` as a graph-building closure (its errors become
/// rntk argument errors naming `what`).
fn py_builder(f: Py<PyAny>, what: &'static str) -> Generator {
    Arc::new(move |x: &Variable| {
        Python::attach(|py| {
            let r = f.call1(py, (Var(x.clone()),)).and_then(|r| {
                let r = r.bind(py);
                if let Ok(v) = r.extract::<Var>() {
                    return Ok(vec![v.0]);
                }
                Ok(r.extract::<Vec<Var>>()?.into_iter().map(|v| v.0).collect())
            });
            r.map_err(|e| rntk::Error::Argument(format!("{what} failed: {e}")))
        })
    })
}

/// CNTK's `UnfoldFrom(generator, until_predicate, length_increase)`.
#[pyclass(module = "rntk._rntk", name = "UnfoldFrom", frozen)]
pub struct PyUnfoldFrom(UnfoldFrom);

#[pymethods]
impl PyUnfoldFrom {
    /// `generator`: `state -> output | [output, new_state]` (a Python callable on `Var`);
    /// `until`: `output -> stop flag`.
    #[new]
    #[pyo3(signature = (generator, until, length_increase, name))]
    fn new(
        generator: Py<PyAny>,
        until: Option<Py<PyAny>>,
        length_increase: f64,
        name: &str,
    ) -> Self {
        let mut u = UnfoldFrom::new(py_builder(generator, "the UnfoldFrom generator"))
            .length_increase(length_increase)
            .name(name);
        if let Some(p) = until {
            let b = py_builder(p, "the UnfoldFrom until_predicate");
            let pred: Predicate = Arc::new(move |x: &Variable| {
                let mut v = b(x)?;
                match v.len() {
                    1 => Ok(v.remove(0)),
                    n => Err(rntk::Error::Argument(format!(
                        "the UnfoldFrom until_predicate must return one value, got {n}"
                    ))),
                }
            });
            u = u.until_predicate(pred);
        }
        PyUnfoldFrom(u)
    }
    fn apply_from(&self, initial_state: &Var, axis_like: &Var) -> PyResult<Var> {
        Ok(Var(self
            .0
            .apply_from(&initial_state.0, &axis_like.0)
            .py()?))
    }
}

#[pyfunction]
#[pyo3(signature = (dropout_rate, keep_prob, seed, name))]
fn dropout_layer(
    dropout_rate: Option<f64>,
    keep_prob: Option<f64>,
    seed: Option<u64>,
    name: &str,
) -> PyResult<PyLayer> {
    let mut d = match (dropout_rate, keep_prob) {
        (Some(r), None) => Dropout::new(r).py()?,
        (None, Some(k)) => Dropout::keep_prob(k).py()?,
        _ => {
            return Err(value_err(
                "Dropout: give exactly one of dropout_rate and keep_prob",
            ))
        }
    };
    if let Some(s) = seed {
        d = d.seed(s);
    }
    Ok(PyLayer::of(d.name(name)))
}

#[pyfunction]
fn stabilizer(steepness: f64, enable: bool, name: &str) -> PyResult<PyLayer> {
    Ok(PyLayer::of(
        Stabilizer::new()
            .steepness(steepness)
            .enabled(enable)
            .name(name),
    ))
}

#[pyfunction]
fn layer_normalization(
    initial_scale: f64,
    initial_bias: f64,
    epsilon: f64,
    name: &str,
) -> PyResult<PyLayer> {
    Ok(PyLayer::of(
        LayerNormalization::new()
            .initial_scale(initial_scale)
            .initial_bias(initial_bias)
            .epsilon(epsilon)
            .name(name),
    ))
}

#[pyfunction]
#[pyo3(signature = (map_rank, init_scale, normalization_time_constant, blend_time_constant, epsilon, name))]
fn batch_normalization(
    map_rank: Option<usize>,
    init_scale: f64,
    normalization_time_constant: f64,
    blend_time_constant: f64,
    epsilon: f64,
    name: &str,
) -> PyResult<PyLayer> {
    Ok(PyLayer::of(
        BatchNormalization::new()
            .map_rank(map_rank)
            .init_scale(init_scale)
            .normalization_time_constant(normalization_time_constant)
            .blend_time_constant(blend_time_constant)
            .epsilon(epsilon)
            .name(name),
    ))
}

#[pyfunction]
fn delay_layer(t: isize, initial_state_: f64, name: &str) -> PyResult<PyLayer> {
    Ok(PyLayer::of(
        Delay::new(t).initial_state(initial_state_).name(name),
    ))
}

#[pyfunction]
fn label(name: &str) -> PyResult<PyLayer> {
    Ok(PyLayer::of(Label(name.to_string())))
}

/// Reseed the process-wide sequence of automatic initializer / dropout seeds
/// (CNTK's `set_fixed_random_seed`).
#[pyfunction]
fn set_fixed_random_seed(seed: u64) {
    rntk::initializer::set_fixed_random_seed(seed);
}

/// The next automatic seed of the process-wide sequence.
#[pyfunction]
fn next_seed() -> u64 {
    rntk::initializer::next_seed()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(next_seed, m)?)?;
    m.add_class::<PyInit>()?;
    m.add_class::<PyStep>()?;
    m.add_class::<PyLayer>()?;
    m.add_class::<PyRecurrenceFrom>()?;
    m.add_class::<PyUnfoldFrom>()?;
    for f in [
        wrap_pyfunction!(recurrent_step, m)?,
        wrap_pyfunction!(python_step, m)?,
        wrap_pyfunction!(dense, m)?,
        wrap_pyfunction!(embedding, m)?,
        wrap_pyfunction!(recurrence, m)?,
        wrap_pyfunction!(dropout_layer, m)?,
        wrap_pyfunction!(stabilizer, m)?,
        wrap_pyfunction!(layer_normalization, m)?,
        wrap_pyfunction!(batch_normalization, m)?,
        wrap_pyfunction!(delay_layer, m)?,
        wrap_pyfunction!(label, m)?,
        wrap_pyfunction!(set_fixed_random_seed, m)?,
    ] {
        m.add_function(f)?;
    }
    Ok(())
}

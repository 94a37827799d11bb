//! Schedules and learners. A Python learner object stays usable after a `Trainer` took
//! it (`learner.learning_rate()`, `reset_learning_rate`): both hold the same
//! `Arc<Mutex<…>>`.

use crate::errors::{value_err, IntoPy};
use crate::graph::Var;
use pyo3::prelude::*;
use pyo3::types::PyList;
use rntk::learners::{
    adadelta, adagrad, adam, fsadagrad, momentum_sgd, nesterov, rmsprop, sgd, AdamOptions,
    Distribution, FsAdaGradOptions, GradientExchange, Learner, LearnerOptions, LearnerState,
    MinibatchInfo, RmsPropOptions, Schedule,
};
use rntk::{Tensor, Variable};
use std::sync::{Arc, Mutex};

/// A learning-rate or momentum schedule.
#[pyclass(module = "rntk._rntk", name = "Schedule", frozen)]
#[derive(Clone)]
pub struct PySchedule(pub Schedule);

/// Values: a float, a list of floats (one per epoch) or a list of (count, value).
fn build(
    values: &Bound<'_, PyAny>,
    epoch_size: Option<u64>,
    f: impl Fn(f64) -> f64,
) -> PyResult<Schedule> {
    if let Ok(v) = values.extract::<f64>() {
        return Ok(Schedule::constant(f(v)));
    }
    if let Ok(list) = values.extract::<Vec<f64>>() {
        let l: Vec<f64> = list.into_iter().map(&f).collect();
        return Schedule::piecewise(&l, epoch_size).py();
    }
    if let Ok(pairs) = values.extract::<Vec<(u64, f64)>>() {
        let p: Vec<(u64, f64)> = pairs.into_iter().map(|(n, v)| (n, f(v))).collect();
        return Schedule::piecewise_counts(&p, epoch_size).py();
    }
    Err(value_err(
        "a schedule is a number, a list of numbers or a list of (count, number) pairs",
    ))
}

#[pymethods]
impl PySchedule {
    /// `minibatch_size`: None = not given (per minibatch unless the learner says
    /// otherwise), 0 = per minibatch (IGNORE), k = per k samples.
    #[new]
    #[pyo3(signature = (values, minibatch_size=None, epoch_size=None))]
    fn new(
        values: &Bound<'_, PyAny>,
        minibatch_size: Option<usize>,
        epoch_size: Option<u64>,
    ) -> PyResult<Self> {
        let mut s = build(values, epoch_size, |v| v)?;
        if let Some(m) = minibatch_size {
            s = s.with_minibatch_size(m);
        }
        Ok(PySchedule(s))
    }
    /// CNTK's deprecated `momentum_as_time_constant_schedule`.
    #[staticmethod]
    #[pyo3(signature = (values, epoch_size=None))]
    fn time_constant(values: &Bound<'_, PyAny>, epoch_size: Option<u64>) -> PyResult<Self> {
        if let Ok(v) = values.extract::<f64>() {
            return Ok(PySchedule(Schedule::momentum_as_time_constant(v).py()?));
        }
        let pairs: Vec<(u64, f64)> = if let Ok(list) = values.extract::<Vec<f64>>() {
            list.into_iter().map(|v| (1, v)).collect()
        } else {
            values.extract()?
        };
        Ok(PySchedule(
            Schedule::momentum_as_time_constant_counts(&pairs, epoch_size).py()?,
        ))
    }
    /// The value used by an update after `samples` samples (CNTK's `schedule[i]`).
    fn __getitem__(&self, samples: u64) -> f64 {
        self.0.value_at(samples, 0)
    }
    #[getter]
    fn minibatch_size(&self) -> usize {
        self.0.minibatch_size()
    }
    #[getter]
    fn is_minibatch_size_explicitly_specified(&self) -> bool {
        self.0.is_minibatch_size_explicit()
    }
    fn __repr__(&self) -> String {
        format!("{:?}", self.0)
    }
}

type Shared = Arc<Mutex<Box<dyn Learner>>>;

/// A learner shared between its Python object and the trainers that use it.
#[pyclass(module = "rntk._rntk", name = "Learner", frozen)]
#[derive(Clone)]
pub struct PyLearner {
    pub inner: Shared,
    pub params: Vec<Variable>,
}

/// The adapter a `Trainer` (or a distributed learner wrapping this one) owns: forwards
/// every `Learner` method to the shared learner, the distributed ones included.
pub struct SharedLearner {
    inner: Shared,
    params: Vec<Variable>,
    /// The exchange handed to the trainer while a distributed learner's gradients are
    /// exchanged during the backward pass (`begin_minibatch`).
    exchange: Option<SharedExchange>,
}

/// A distributed learner's gradient exchange behind the shared learner's lock: each
/// call takes the lock and goes to `Learner::gradient_exchange`.
struct SharedExchange(Shared);

impl PyLearner {
    pub fn for_trainer(&self) -> Box<dyn Learner> {
        Box::new(SharedLearner {
            inner: self.inner.clone(),
            params: self.params.clone(),
            exchange: None,
        })
    }
}

macro_rules! with {
    ($s:expr, $l:ident => $e:expr) => {{
        #[allow(unused_mut)]
        let mut $l = match $s.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        $e
    }};
}

impl Learner for SharedLearner {
    fn name(&self) -> &str {
        "shared"
    }
    fn parameters(&self) -> &[Variable] {
        &self.params
    }
    fn update(&mut self, g: &[(Variable, Tensor)], n: usize, end: bool) -> rntk::Result<bool> {
        with!(self, l => l.update(g, n, end))
    }
    fn learning_rate(&self) -> f64 {
        with!(self, l => l.learning_rate())
    }
    fn reset_learning_rate(&mut self, s: Schedule) -> rntk::Result<()> {
        with!(self, l => l.reset_learning_rate(s))
    }
    fn total_samples_seen(&self) -> u64 {
        with!(self, l => l.total_samples_seen())
    }
    fn state(&self) -> LearnerState {
        with!(self, l => l.state())
    }
    fn restore_state(&mut self, s: &LearnerState) -> rntk::Result<()> {
        with!(self, l => l.restore_state(s))
    }
    fn progress_lines(&self) -> Vec<(String, f64)> {
        with!(self, l => l.progress_lines())
    }
    fn update_minibatch(
        &mut self,
        g: &mut [(Variable, Tensor)],
        info: &mut MinibatchInfo,
    ) -> rntk::Result<bool> {
        with!(self, l => l.update_minibatch(g, info))
    }
    fn distribution(&self) -> Option<Distribution> {
        with!(self, l => l.distribution())
    }
    fn reset_smoothed_gradients(&mut self) {
        with!(self, l => l.reset_smoothed_gradients())
    }
    fn synchronize(&mut self) -> rntk::Result<()> {
        with!(self, l => l.synchronize())
    }
    fn begin_minibatch(&mut self) -> rntk::Result<Option<&mut dyn GradientExchange>> {
        let exchanging = with!(self, l => l.begin_minibatch()?.is_some());
        self.exchange = exchanging.then(|| SharedExchange(self.inner.clone()));
        Ok(self
            .exchange
            .as_mut()
            .map(|x| x as &mut dyn GradientExchange))
    }
    fn gradient_exchange(&mut self) -> Option<&mut dyn GradientExchange> {
        self.exchange
            .as_mut()
            .map(|x| x as &mut dyn GradientExchange)
    }
}

impl SharedExchange {
    fn with<R>(
        &self,
        f: impl FnOnce(&mut dyn GradientExchange) -> rntk::Result<R>,
    ) -> rntk::Result<R> {
        let mut l = match self.0.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        match l.gradient_exchange() {
            Some(x) => f(x),
            None => Err(rntk::Error::Distributed {
                rank: None,
                detail: "the learner has no gradient exchange in progress".into(),
            }),
        }
    }
}

impl GradientExchange for SharedExchange {
    fn ready(&mut self, index: usize, gradient: Tensor) -> rntk::Result<()> {
        self.with(|x| x.ready(index, gradient))
    }
    fn finish(&mut self) -> rntk::Result<Vec<Tensor>> {
        self.with(|x| x.finish())
    }
}

#[pymethods]
impl PyLearner {
    fn parameters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.params.iter().cloned().map(Var))
    }
    pub fn learning_rate(&self) -> f64 {
        with!(self, l => l.learning_rate())
    }
    fn reset_learning_rate(&self, s: &PySchedule) -> PyResult<()> {
        with!(self, l => l.reset_learning_rate(s.0.clone())).py()
    }
    #[getter]
    pub fn total_number_of_samples_seen(&self) -> u64 {
        with!(self, l => l.total_samples_seen())
    }
    #[getter]
    pub fn kind(&self) -> String {
        with!(self, l => l.name().to_string())
    }
    /// Apply one update from explicit gradients (CNTK's `Learner.update`).
    fn update(
        &self,
        py: Python<'_>,
        gradients: Vec<(Var, Bound<'_, PyAny>)>,
        sample_count: usize,
        is_sweep_end: bool,
    ) -> PyResult<bool> {
        let mut g = Vec::with_capacity(gradients.len());
        for (v, a) in gradients {
            let t = crate::data::py_to_tensor(py, &a, v.0.dtype())?;
            g.push((v.0, t));
        }
        with!(self, l => l.update(&g, sample_count, is_sweep_end)).py()
    }
}

/// Options every learner shares.
#[allow(clippy::too_many_arguments)]
fn options(
    l1: f64,
    l2: f64,
    noise: f64,
    clip: f64,
    trunc: bool,
    minibatch_size: Option<usize>,
) -> LearnerOptions {
    LearnerOptions {
        l1_regularization_weight: l1,
        l2_regularization_weight: l2,
        gradient_clipping_threshold_per_sample: clip,
        gradient_clipping_with_truncation: trunc,
        minibatch_size,
        gaussian_noise_injection_std_dev: noise,
    }
}

fn wrap(params: Vec<Var>, l: rntk::Result<rntk::learners::StandardLearner>) -> PyResult<PyLearner> {
    let l = l.py()?;
    Ok(PyLearner {
        inner: Arc::new(Mutex::new(Box::new(l))),
        params: params.into_iter().map(|v| v.0).collect(),
    })
}

/// `make_learner(kind, parameters, lr, momentum, variance_momentum, common…, extra…)`.
#[pyfunction]
#[pyo3(signature = (kind, parameters, lr, momentum=None, variance_momentum=None, unit_gain=true,
    l1=0.0, l2=0.0, noise=0.0, clip=f64::INFINITY, truncation=true, minibatch_size=None,
    epsilon=1e-8, adamax=false, rho=0.95, need_ave_multiplier=true, gamma=0.9, inc=1.2, dec=0.75, max=10.0, min=0.1))]
#[allow(clippy::too_many_arguments)]
fn make_learner(
    kind: &str,
    parameters: Vec<Var>,
    lr: &PySchedule,
    momentum: Option<&PySchedule>,
    variance_momentum: Option<&PySchedule>,
    unit_gain: bool,
    l1: f64,
    l2: f64,
    noise: f64,
    clip: f64,
    truncation: bool,
    minibatch_size: Option<usize>,
    epsilon: f64,
    adamax: bool,
    rho: f64,
    need_ave_multiplier: bool,
    gamma: f64,
    inc: f64,
    dec: f64,
    max: f64,
    min: f64,
) -> PyResult<PyLearner> {
    let p: Vec<Variable> = parameters.iter().map(|v| v.0.clone()).collect();
    let common = options(l1, l2, noise, clip, truncation, minibatch_size);
    let lr = lr.0.clone();
    let mom = || {
        momentum
            .map(|m| m.0.clone())
            .ok_or_else(|| value_err(format!("{kind} needs a momentum schedule")))
    };
    let l = match kind {
        "sgd" => sgd(&p, lr, common),
        "momentum_sgd" => momentum_sgd(&p, lr, mom()?, unit_gain, common),
        "nesterov" => nesterov(&p, lr, mom()?, unit_gain, common),
        "adam" => {
            let mut o = AdamOptions {
                unit_gain,
                epsilon,
                adamax,
                common,
                ..AdamOptions::default()
            };
            if let Some(v) = variance_momentum {
                o.variance_momentum = v.0.clone();
            }
            adam(&p, lr, mom()?, o)
        }
        "fsadagrad" => {
            let mut o = FsAdaGradOptions {
                unit_gain,
                common,
                ..FsAdaGradOptions::default()
            };
            if let Some(v) = variance_momentum {
                o.variance_momentum = v.0.clone();
            }
            fsadagrad(&p, lr, mom()?, o)
        }
        "adagrad" => adagrad(&p, lr, need_ave_multiplier, common),
        "adadelta" => adadelta(&p, lr, rho, epsilon, common),
        "rmsprop" => rmsprop(
            &p,
            lr,
            RmsPropOptions {
                gamma,
                inc,
                dec,
                max,
                min,
                need_ave_multiplier,
            },
            common,
        ),
        _ => return Err(value_err(format!("unknown learner {kind}"))),
    };
    wrap(parameters, l)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySchedule>()?;
    m.add_class::<PyLearner>()?;
    m.add_function(wrap_pyfunction!(make_learner, m)?)?;
    Ok(())
}

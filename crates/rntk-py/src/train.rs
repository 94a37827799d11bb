//! Training: `Trainer` (the `train_minibatch` hot path), progress writers whose text goes
//! through Python's `sys.stdout` (so it interleaves with the script's own prints), and
//! `train`/`test` over readers with Test/CrossValidation/Checkpoint configs. Long loops
//! run without the GIL and stop cleanly on Ctrl-C between minibatches.

use crate::data::{to_value, value_to_py};
use crate::errors::{guard, nogil, value_err, IntoPy, INTERRUPTED};
use crate::graph::{parse_feeds, var_of, Var};
use crate::io::{PySource, SharedSource};
use crate::learners::PyLearner;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use rntk::io::Minibatch;
use rntk::learners::Learner;
use rntk::train::{
    self as rt, Callbacks, CheckpointConfig, Criterion, CrossValidationConfig, MinibatchProvider,
    MinibatchSize, ProgressPrinter, ProgressWriter, TensorBoardProgressWriter, TestConfig, Totals,
    TrainOptions, Trainer,
};
use rntk::{Executor, Function, Value, Variable};
use std::fs::File;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Where a printer's text goes.
enum Dest {
    /// Python's `sys.stdout`, looked up at each write (pytest's capture, notebooks).
    PyStdout,
    File(File),
}

/// CNTK's `ProgressPrinter`, writing through Python.
struct BufferedPrinter {
    printer: ProgressPrinter,
    buf: Arc<Mutex<Vec<u8>>>,
    dest: Dest,
}

impl BufferedPrinter {
    fn flush(&mut self) {
        let text = match self.buf.lock() {
            Ok(mut b) if !b.is_empty() => {
                String::from_utf8_lossy(&std::mem::take(&mut *b)).into_owned()
            }
            _ => return,
        };
        match &mut self.dest {
            Dest::File(f) => {
                let _ = f.write_all(text.as_bytes());
                let _ = f.flush();
            }
            Dest::PyStdout => Python::attach(|py| {
                if let Ok(out) = py.import("sys").and_then(|s| s.getattr("stdout")) {
                    let _ = out.call_method1("write", (text,));
                }
            }),
        }
    }
}

impl ProgressWriter for BufferedPrinter {
    fn on_training_update(&mut self, t: &Totals) {
        self.printer.on_training_update(t);
        self.flush();
    }
    fn on_training_summary(&mut self, e: &Totals, s: f64) {
        self.printer.on_training_summary(e, s);
        self.flush();
    }
    fn on_test_update(&mut self, t: &Totals) {
        self.printer.on_test_update(t);
        self.flush();
    }
    fn on_test_summary(&mut self, p: &Totals) {
        self.printer.on_test_summary(p);
        self.flush();
    }
    fn write(&mut self, k: &str, v: f64) {
        self.printer.write(k, v);
        self.flush();
    }
    fn log(&mut self, m: &str) {
        self.printer.log(m);
        self.flush();
    }
}

type SharedWriter = Arc<Mutex<Box<dyn ProgressWriter>>>;

/// A progress writer shared between its Python object and the trainers using it.
#[pyclass(module = "rntk._rntk", name = "Writer", frozen)]
#[derive(Clone)]
pub struct PyWriter {
    inner: SharedWriter,
    /// Totals of the manual API (`update`, `update_with_trainer`, `epoch_summary`).
    manual: Arc<Mutex<(Totals, Instant)>>,
    printer: Option<Arc<Mutex<()>>>,
}

struct WriterAdapter(SharedWriter);

macro_rules! lock {
    ($m:expr) => {
        match $m.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    };
}

impl ProgressWriter for WriterAdapter {
    fn on_training_update(&mut self, t: &Totals) {
        lock!(self.0).on_training_update(t)
    }
    fn on_training_summary(&mut self, e: &Totals, s: f64) {
        lock!(self.0).on_training_summary(e, s)
    }
    fn on_test_update(&mut self, t: &Totals) {
        lock!(self.0).on_test_update(t)
    }
    fn on_test_summary(&mut self, p: &Totals) {
        lock!(self.0).on_test_summary(p)
    }
    fn write(&mut self, k: &str, v: f64) {
        lock!(self.0).write(k, v)
    }
    fn log(&mut self, m: &str) {
        lock!(self.0).log(m)
    }
}

impl PyWriter {
    fn new(w: Box<dyn ProgressWriter>, printer: bool) -> Self {
        PyWriter {
            inner: Arc::new(Mutex::new(w)),
            manual: Arc::new(Mutex::new((Totals::default(), Instant::now()))),
            printer: printer.then(|| Arc::new(Mutex::new(()))),
        }
    }
    fn adapter(&self) -> Box<dyn ProgressWriter> {
        Box::new(WriterAdapter(self.inner.clone()))
    }
}

#[pymethods]
impl PyWriter {
    /// CNTK's `ProgressPrinter(freq, first, tag, log_to_file, num_epochs, test_freq, metric_is_pct)`.
    #[staticmethod]
    #[pyo3(signature = (freq, first, tag, log_to_file, num_epochs, test_freq, metric_is_pct))]
    #[allow(clippy::too_many_arguments)]
    fn printer(
        py: Python<'_>,
        freq: Option<u64>,
        first: u64,
        tag: &str,
        log_to_file: Option<String>,
        num_epochs: Option<u64>,
        test_freq: Option<u64>,
        metric_is_pct: bool,
    ) -> PyResult<Self> {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let dest = match &log_to_file {
            Some(path) => {
                let mut f = File::create(path)
                    .map_err(|e| pyo3::exceptions::PyOSError::new_err(format!("{path}: {e}")))?;
                let n = num_epochs.unwrap_or(300);
                let pre = format!("{path}\nCNTKCommandTrainInfo: train : {n}\nCNTKCommandTrainInfo: CNTKNoMoreCommands_Total : {n}\nCNTKCommandTrainBegin: train\n");
                f.write_all(pre.as_bytes())
                    .map_err(|e| pyo3::exceptions::PyOSError::new_err(e.to_string()))?;
                py.import("builtins")?
                    .call_method1("print", (format!("Redirecting log to file {path}"),))?;
                Dest::File(f)
            }
            None => Dest::PyStdout,
        };
        let mut p = ProgressPrinter::to_buffer(freq, buf.clone())
            .first(first)
            .tag(tag)
            .metric_is_pct(metric_is_pct);
        if let Some(k) = num_epochs {
            p = p.num_epochs(k);
        }
        if let Some(t) = test_freq {
            p = p.test_freq(t);
        }
        let mut bp = BufferedPrinter {
            printer: p,
            buf,
            dest,
        };
        bp.flush();
        Ok(PyWriter::new(Box::new(bp), true))
    }
    /// CNTK's `TensorBoardProgressWriter(freq, log_dir)`.
    #[staticmethod]
    fn tensorboard(freq: Option<u64>, log_dir: &str) -> PyResult<Self> {
        Ok(PyWriter::new(
            Box::new(TensorBoardProgressWriter::new(freq, log_dir).py()?),
            false,
        ))
    }
    /// Legacy manual API: one minibatch's average loss (and metric) over `samples`.
    #[pyo3(signature = (loss, samples, metric=None))]
    fn update(&self, loss: f64, samples: u64, metric: Option<f64>) {
        let mut m = lock!(self.manual);
        m.0.updates += 1;
        m.0.samples += samples;
        m.0.loss += loss * samples as f64;
        m.0.metric += metric.unwrap_or(0.0) * samples as f64;
        let t = m.0;
        drop(m);
        lock!(self.inner).on_training_update(&t);
    }
    /// Legacy manual API: summary of everything since the last one.
    fn epoch_summary(&self) {
        let mut m = lock!(self.manual);
        let (t, secs) = (m.0, m.1.elapsed().as_secs_f64());
        *m = (Totals::default(), Instant::now());
        drop(m);
        lock!(self.inner).on_training_summary(&t, secs);
    }
    fn write(&self, key: &str, value: f64) {
        lock!(self.inner).write(key, value)
    }
    fn log(&self, message: &str) {
        lock!(self.inner).log(message)
    }
    /// A test minibatch of a manual pass (an `Evaluator`'s): the writer's counts since its
    /// last test summary and the evaluator's metric sum, as CNTK's `UpdateTest` passes
    /// them (a printer with `test_freq` prints its window line from these).
    fn test_update(&self, metric_sum: f64, samples: u64, minibatches: u64) {
        let t = Totals {
            updates: minibatches,
            samples,
            loss: 0.0,
            metric: metric_sum,
        };
        lock!(self.inner).on_test_update(&t);
    }
    /// Test summary of a manual pass (loss-free): metric average over samples.
    fn test_summary(&self, metric: f64, samples: u64, minibatches: u64) {
        let t = Totals {
            updates: minibatches,
            samples,
            loss: 0.0,
            metric: metric * samples as f64,
        };
        lock!(self.inner).on_test_summary(&t);
    }
    #[getter]
    fn is_printer(&self) -> bool {
        self.printer.is_some()
    }
}

enum Tr {
    F32(Trainer<f32>),
    F64(Trainer<f64>),
}

macro_rules! tr {
    ($t:expr, $x:ident => $e:expr) => {
        match $t {
            Tr::F32($x) => $e,
            Tr::F64($x) => $e,
        }
    };
}

/// CNTK's `Trainer`.
#[pyclass(module = "rntk._rntk", name = "Trainer")]
pub struct PyTrainer {
    t: Mutex<Tr>,
    args: Vec<Variable>,
    loss: Variable,
    metric: Option<Variable>,
    model: Option<Variable>,
    learners: Vec<PyLearner>,
    outputs_exec: Mutex<Option<(Vec<Variable>, Executor<f32>)>>,
}

/// Whether any fed value came from a reader minibatch that ends a sweep.
fn sweep_end(arguments: &Bound<'_, PyAny>) -> bool {
    if let Ok(d) = arguments.cast::<PyDict>() {
        for (_, v) in d.iter() {
            if let Ok(md) = v.cast::<crate::io::PyMinibatchData>() {
                if md.get().0.end_of_sweep {
                    return true;
                }
            }
        }
    }
    false
}

fn feeds_ref(f: &[(Variable, Value)]) -> Vec<(&Variable, &Value)> {
    f.iter().map(|(v, x)| (v, x)).collect()
}

#[pymethods]
impl PyTrainer {
    #[new]
    #[pyo3(signature = (model, loss, metric, learners, writers))]
    fn new(
        model: Option<Var>,
        loss: Var,
        metric: Option<Var>,
        learners: Vec<PyLearner>,
        writers: Vec<PyWriter>,
    ) -> PyResult<Self> {
        guard(|| {
            let ls: Vec<Box<dyn Learner>> = learners.iter().map(|l| l.for_trainer()).collect();
            let ws: Vec<Box<dyn ProgressWriter>> = writers.iter().map(|w| w.adapter()).collect();
            let mut roots = vec![loss.0.clone()];
            roots.extend(metric.iter().map(|m| m.0.clone()));
            let args = Function::combine(&roots, "criterion").py()?.arguments();
            let t = match loss.0.dtype() {
                rntk::DType::F32 => Tr::F32(
                    Trainer::<f32>::new(
                        model.clone().map(|m| m.0),
                        loss.0.clone(),
                        metric.clone().map(|m| m.0),
                        ls,
                        ws,
                    )
                    .py()?,
                ),
                rntk::DType::F64 => Tr::F64(
                    Trainer::<f64>::new(
                        model.clone().map(|m| m.0),
                        loss.0.clone(),
                        metric.clone().map(|m| m.0),
                        ls,
                        ws,
                    )
                    .py()?,
                ),
            };
            Ok(PyTrainer {
                t: Mutex::new(t),
                args,
                loss: loss.0,
                metric: metric.map(|m| m.0),
                model: model.map(|m| m.0),
                learners,
                outputs_exec: Mutex::new(None),
            })
        })
    }

    /// One update; `outputs` (CNTK's `train_minibatch(..., outputs=[...])`) are
    /// evaluated on the same minibatch before the update and returned as arrays.
    #[pyo3(signature = (arguments, outputs=None, is_sweep_end=None))]
    fn train_minibatch<'py>(
        &mut self,
        py: Python<'py>,
        arguments: &Bound<'py, PyAny>,
        outputs: Option<Vec<Bound<'py, PyAny>>>,
        is_sweep_end: Option<bool>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let feeds = parse_feeds(py, arguments, &self.args)?;
        let end = is_sweep_end.unwrap_or_else(|| sweep_end(arguments));
        let extra = match outputs {
            Some(o) => Some(self.eval_outputs(py, &o, &feeds)?),
            None => None,
        };
        let mut g = lock!(self.t);
        let t = &mut *g;
        let updated = nogil(
            py,
            move || tr!(t, x => x.train_minibatch(&feeds_ref(&feeds), end)),
        )?;
        match extra {
            None => Ok(pyo3::types::PyBool::new(py, updated).to_owned().into_any()),
            Some(d) => Ok((updated, d).into_pyobject(py)?.into_any()),
        }
    }

    /// Benchmark helper: `n` updates on the same minibatch entirely in Rust (the feeds
    /// converted once); returns the seconds per update. BENCHMARKS.md subtracts it from
    /// the time of `train_minibatch` called from Python to get the Python overhead.
    fn time_train_minibatch(
        &self,
        py: Python<'_>,
        arguments: &Bound<'_, PyAny>,
        n: usize,
    ) -> PyResult<f64> {
        let feeds = parse_feeds(py, arguments, &self.args)?;
        let mut g = lock!(self.t);
        let t = &mut *g;
        nogil(py, move || {
            let refs = feeds_ref(&feeds);
            let start = Instant::now();
            for _ in 0..n {
                tr!(&mut *t, x => x.train_minibatch(&refs, false))?;
            }
            Ok(start.elapsed().as_secs_f64() / n.max(1) as f64)
        })
    }

    /// Average metric (loss without one) over the minibatch, no update.
    #[pyo3(signature = (arguments, device=None))]
    fn test_minibatch(
        &mut self,
        py: Python<'_>,
        arguments: &Bound<'_, PyAny>,
        device: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<f64> {
        let _ = device;
        let target = self.metric.clone().unwrap_or_else(|| self.loss.clone());
        let args = Function::combine(&[target], "").py()?.arguments();
        let feeds = parse_feeds(py, arguments, &args)?;
        let mut g = lock!(self.t);
        let t = &mut *g;
        nogil(
            py,
            move || tr!(t, x => x.test_minibatch(&feeds_ref(&feeds))),
        )
    }

    #[getter]
    fn previous_minibatch_loss_average(&self) -> f64 {
        tr!(&*lock!(self.t), x => x.previous_minibatch_loss_average())
    }
    #[getter]
    fn previous_minibatch_evaluation_average(&self) -> f64 {
        tr!(&*lock!(self.t), x => x.previous_minibatch_evaluation_average())
    }
    #[getter]
    fn previous_minibatch_sample_count(&self) -> u64 {
        tr!(&*lock!(self.t), x => x.previous_minibatch_sample_count())
    }
    #[getter]
    fn total_number_of_samples_seen(&self) -> u64 {
        tr!(&*lock!(self.t), x => x.total_number_of_samples_seen())
    }
    fn summarize_training_progress(&mut self) -> (f64, f64, u64) {
        let t = tr!(&mut *lock!(self.t), x => x.summarize_training_progress());
        let n = t.samples.max(1) as f64;
        (t.loss / n, t.metric / n, t.samples)
    }
    /// `(updates, samples, Σ metric)` of the test minibatches since the last test summary.
    #[getter]
    fn test_totals(&self) -> (u64, u64, f64) {
        let t = tr!(&*lock!(self.t), x => x.test_totals());
        (t.updates, t.samples, t.metric)
    }
    fn summarize_test_progress(&mut self) -> (f64, u64) {
        let t = tr!(&mut *lock!(self.t), x => x.summarize_test_progress());
        (t.metric / t.samples.max(1) as f64, t.samples)
    }
    #[getter]
    fn loss_var(&self) -> Var {
        Var(self.loss.clone())
    }
    #[getter]
    fn metric_var(&self) -> Option<Var> {
        self.metric.clone().map(Var)
    }
    #[getter]
    fn model_var(&self) -> Option<Var> {
        self.model.clone().map(Var)
    }
    #[getter]
    fn learners(&self) -> Vec<PyLearner> {
        self.learners.clone()
    }
    /// Save the model (`filename`) and parameters + learner positions (`filename.ckp`).
    fn save_checkpoint(
        &self,
        py: Python<'_>,
        filename: &str,
        model: &crate::graph::Func,
    ) -> PyResult<()> {
        let f = model.f.clone();
        let path = filename.to_string();
        let state = self.learner_states();
        let seen = self.total_number_of_samples_seen();
        nogil(py, move || {
            f.save(&path)?;
            let ck = CheckpointFile {
                total_samples: seen,
                learners: state,
            };
            let text = serde_json_string(&ck);
            std::fs::write(format!("{path}.ckp"), text).map_err(|e| rntk::Error::Io {
                file: format!("{path}.ckp"),
                detail: e.to_string(),
            })
        })
    }
    /// Parameter values come from the model file; the learners' counters from `.ckp`.
    fn restore_from_checkpoint(
        &mut self,
        filename: &str,
        model: &crate::graph::Func,
    ) -> PyResult<()> {
        let loaded = Function::load(filename).py()?;
        let (mine, theirs) = (model.f.parameters(), loaded.parameters());
        if mine.len() != theirs.len() {
            return Err(value_err(format!(
                "checkpoint {filename} has {} parameters, the model {}",
                theirs.len(),
                mine.len()
            )));
        }
        for (a, b) in mine.iter().zip(&theirs) {
            a.set_value(b.value().py()?).py()?;
        }
        Ok(())
    }
}

/// What `save_checkpoint` keeps beside the model file.
struct CheckpointFile {
    total_samples: u64,
    learners: Vec<(String, u64)>,
}

fn serde_json_string(c: &CheckpointFile) -> String {
    let l: Vec<String> = c
        .learners
        .iter()
        .map(|(n, s)| format!("{{\"learner\": \"{n}\", \"samples\": {s}}}"))
        .collect();
    format!(
        "{{\"version\": 1, \"total_samples\": {}, \"learners\": [{}]}}\n",
        c.total_samples,
        l.join(", ")
    )
}

impl PyTrainer {
    fn learner_states(&self) -> Vec<(String, u64)> {
        self.learners
            .iter()
            .map(|l| (l.kind(), l.total_number_of_samples_seen()))
            .collect()
    }
    fn eval_outputs<'py>(
        &mut self,
        py: Python<'py>,
        outs: &[Bound<'py, PyAny>],
        feeds: &[(Variable, Value)],
    ) -> PyResult<Bound<'py, PyDict>> {
        let vars: Vec<Variable> = outs.iter().map(var_of).collect::<PyResult<_>>()?;
        let mut g = lock!(self.outputs_exec);
        let fresh = !matches!(&*g, Some((v, _)) if *v == vars);
        if fresh {
            *g = Some((vars.clone(), Executor::<f32>::new_inference(&vars).py()?));
        }
        let (_, ex) = g.as_mut().expect("set");
        let wanted = Function::combine(&vars, "").py()?.arguments();
        let fed: Vec<(&Variable, &Value)> = feeds
            .iter()
            .filter(|(v, _)| wanted.contains(v))
            .map(|(v, x)| (v, x))
            .collect();
        ex.forward(&fed, false).py()?;
        let d = PyDict::new(py);
        for (k, v) in outs.iter().zip(&vars) {
            d.set_item(k, value_to_py(py, ex.value(v).py()?)?)?;
        }
        Ok(d)
    }
}

/// A provider over a shared source that checks for Ctrl-C before each minibatch.
struct Interruptible(SharedSource);

impl MinibatchProvider for Interruptible {
    fn next_minibatch(&mut self, size: usize) -> rntk::Result<Option<Minibatch>> {
        let stop = Python::attach(|py| py.check_signals().is_err());
        if stop {
            return Err(rntk::Error::Argument(INTERRUPTED.into()));
        }
        lock!(self.0).next_minibatch(size)
    }
    fn next_minibatch_partition(
        &mut self,
        size: usize,
        num_data_partitions: usize,
        partition_index: usize,
    ) -> rntk::Result<Option<rntk::io::MinibatchPartition>> {
        let stop = Python::attach(|py| py.check_signals().is_err());
        if stop {
            return Err(rntk::Error::Argument(INTERRUPTED.into()));
        }
        lock!(self.0).next_minibatch_partition(size, num_data_partitions, partition_index)
    }
    fn position(&self) -> rntk::Result<serde_json::Value> {
        lock!(self.0).position()
    }
    fn restore_position(&mut self, p: &serde_json::Value) -> rntk::Result<()> {
        lock!(self.0).restore_position(p)
    }
}

fn stream_map(map: Vec<(Var, String)>) -> Vec<(Variable, String)> {
    map.into_iter().map(|(v, s)| (v.0, s)).collect()
}

fn record<'py>(py: Python<'py>, r: &rt::Record) -> PyResult<Bound<'py, PyAny>> {
    Ok((r.loss, r.metric, r.samples).into_pyobject(py)?.into_any())
}

/// `criterion.train(...)` over a source. `test`: (source, mb size, map or None);
/// `cv`: (source, frequency, mb size, max_samples, callback, map or None);
/// `checkpoint`: (filename, frequency, restore, preserve_all).
#[pyfunction]
#[pyo3(signature = (loss, metric, source, streams, learners, minibatch_size, epoch_size, max_epochs, max_samples, progress_frequency, writers, test, cv, checkpoint))]
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
fn train<'py>(
    py: Python<'py>,
    loss: Var,
    metric: Option<Var>,
    source: &PySource,
    streams: Vec<(Var, String)>,
    learners: Vec<PyLearner>,
    minibatch_size: &Bound<'py, PyAny>,
    epoch_size: Option<u64>,
    max_epochs: Option<u64>,
    max_samples: Option<u64>,
    progress_frequency: Option<u64>,
    writers: Vec<PyWriter>,
    test: Option<(PySource, usize, Option<Vec<(Var, String)>>)>,
    cv: Option<(
        PySource,
        Option<u64>,
        usize,
        Option<u64>,
        Option<Py<PyAny>>,
        Option<Vec<(Var, String)>>,
    )>,
    checkpoint: Option<(String, Option<u64>, bool, bool)>,
) -> PyResult<Bound<'py, PyDict>> {
    let mb = if let Ok(n) = minibatch_size.extract::<usize>() {
        MinibatchSize::Constant(n)
    } else {
        let (pairs, epoch): (Vec<(u64, usize)>, u64) = minibatch_size.extract()?;
        MinibatchSize::Schedule {
            pairs,
            epoch_size: epoch,
        }
    };
    let opts = TrainOptions {
        minibatch_size: mb,
        epoch_size,
        max_epochs,
        max_samples,
        progress_frequency,
    };
    let mut cb = Callbacks {
        progress_writers: writers.iter().map(|w| w.adapter()).collect(),
        ..Default::default()
    };
    if let Some((src, n, map)) = test {
        let mut tc = TestConfig::new(Box::new(Interruptible(src.shared())));
        tc.minibatch_size = n;
        tc.model_inputs_to_streams = map.map(stream_map);
        cb.test = Some(tc);
    }
    if let Some((src, freq, n, maxs, callback, map)) = cv {
        let mut c = CrossValidationConfig::new(Box::new(Interruptible(src.shared())));
        c.frequency = freq;
        c.minibatch_size = n;
        c.max_samples = maxs;
        c.model_inputs_to_streams = map.map(stream_map);
        if let Some(f) = callback {
            c.callback = Some(Box::new(
                move |r: &rt::CvResult, _l: &mut [Box<dyn Learner>]| {
                    Python::attach(|py| {
                        match f.call1(
                            py,
                            (r.index, r.average_error, r.num_samples, r.num_minibatches),
                        ) {
                            Ok(v) => v.bind(py).is_none() || v.bind(py).is_truthy().unwrap_or(true),
                            Err(e) => {
                                e.print(py);
                                false
                            }
                        }
                    })
                },
            ));
        }
        cb.cross_validation = Some(c);
    }
    if let Some((file, freq, restore, preserve_all)) = checkpoint {
        let mut c = CheckpointConfig::new(file);
        c.frequency = freq;
        c.restore = restore;
        c.preserve_all = preserve_all;
        cb.checkpoint = Some(c);
    }
    let crit = Criterion::new(loss.0.clone(), metric.map(|m| m.0));
    let map = stream_map(streams);
    let ls: Vec<Box<dyn Learner>> = learners.iter().map(|l| l.for_trainer()).collect();
    let mut src = Interruptible(source.shared());
    let dtype = loss.0.dtype();
    let h = nogil(py, move || match dtype {
        rntk::DType::F32 => rt::train::<f32>(&crit, &mut src, &map, ls, opts, cb),
        rntk::DType::F64 => rt::train::<f64>(&crit, &mut src, &map, ls, opts, cb),
    })?;
    let d = PyDict::new(py);
    let ups = PyList::empty(py);
    for r in &h.updates {
        ups.append(record(py, r)?)?;
    }
    let eps = PyList::empty(py);
    for r in &h.epoch_summaries {
        eps.append(record(py, r)?)?;
    }
    d.set_item("updates", ups)?;
    d.set_item("epoch_summaries", eps)?;
    d.set_item("test_summary", h.test_summary)?;
    Ok(d)
}

/// `criterion.test(...)`: (average metric, samples).
#[pyfunction]
fn test(
    py: Python<'_>,
    loss: Var,
    metric: Option<Var>,
    source: &PySource,
    streams: Vec<(Var, String)>,
    minibatch_size: usize,
    writers: Vec<PyWriter>,
) -> PyResult<(f64, u64)> {
    let crit = Criterion::new(loss.0.clone(), metric.map(|m| m.0));
    let map = stream_map(streams);
    let ws: Vec<Box<dyn ProgressWriter>> = writers.iter().map(|w| w.adapter()).collect();
    let mut src = Interruptible(source.shared());
    let dtype = loss.0.dtype();
    nogil(py, move || match dtype {
        rntk::DType::F32 => rt::test::<f32>(&crit, &mut src, &map, minibatch_size, ws),
        rntk::DType::F64 => rt::test::<f64>(&crit, &mut src, &map, minibatch_size, ws),
    })
}

/// Feeds as the trainer would see them (for tests of the data conversion).
#[pyfunction]
fn convert<'py>(
    py: Python<'py>,
    var: &Var,
    data: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let v = to_value(py, data, &var.0)?;
    Ok(crate::data::PyValue(v).into_pyobject(py)?.into_any())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyWriter>()?;
    m.add_class::<PyTrainer>()?;
    m.add_function(wrap_pyfunction!(train, m)?)?;
    m.add_function(wrap_pyfunction!(test, m)?)?;
    m.add_function(wrap_pyfunction!(convert, m)?)?;
    Ok(())
}

//! Readers: CNTK's `MinibatchSource` over CTF files and image map files, `MinibatchSourceFromData` over
//! in-memory arrays, and the `MinibatchData` they deliver. `next_minibatch` maps streams
//! to the caller's keys (CNTK's `input_map`) in Rust.

use crate::data::{padded, value_to_py, PyValue};
use crate::errors::{nogil, value_err, IntoPy};
use numpy::{PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rntk::io::{
    CtfDeserializer, Deserializer, InMemoryStream, MinibatchData, MinibatchSource,
    MinibatchSourceConfig, MinibatchSourceFromData, StreamDef,
};
use rntk::train::MinibatchProvider;
use std::sync::{Arc, Mutex};

pub type SharedSource = Arc<Mutex<Box<dyn MinibatchProvider>>>;

/// One stream's data in a minibatch (CNTK's `MinibatchData`).
#[pyclass(module = "rntk._rntk", name = "MinibatchData", frozen)]
pub struct PyMinibatchData(pub MinibatchData);

#[pymethods]
impl PyMinibatchData {
    #[getter]
    fn num_samples(&self) -> usize {
        self.0.num_samples
    }
    #[getter]
    fn num_sequences(&self) -> usize {
        self.0.num_sequences
    }
    #[getter]
    fn end_of_sweep(&self) -> bool {
        self.0.end_of_sweep
    }
    #[getter]
    fn is_sparse(&self) -> bool {
        self.0.data.is_sparse()
    }
    /// `(num_sequences, max_len, *S)` (CNTK's shape rule for reader data).
    #[getter]
    fn shape(&self) -> Vec<usize> {
        let mut s = vec![self.0.num_sequences];
        s.push(self.0.data.layout().packed().map_or(1, |p| p.max_len()));
        s.extend(self.0.data.shape().dims());
        s
    }
    /// The `Value` (feedable to `train_minibatch` / `eval`).
    #[getter]
    fn data(&self) -> PyValue {
        PyValue(self.0.data.clone())
    }
    /// Dense numpy array `(num_sequences, max_len, *S)`, zero-padded.
    fn asarray<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        padded(py, &self.0.data)
    }
    /// Per-sequence arrays.
    fn as_sequences<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        value_to_py(py, self.0.data.clone())
    }
    fn __repr__(&self) -> String {
        format!(
            "MinibatchData({} sequences, {} samples{})",
            self.0.num_sequences,
            self.0.num_samples,
            if self.0.end_of_sweep {
                ", end of sweep"
            } else {
                ""
            }
        )
    }
}

/// A minibatch source (CTF files or in-memory data).
#[pyclass(module = "rntk._rntk", name = "Source", frozen)]
#[derive(Clone)]
pub struct PySource {
    inner: SharedSource,
    /// (name, dim, is_sparse) per stream.
    streams: Vec<(String, Vec<usize>, bool)>,
}

impl PySource {
    pub fn shared(&self) -> SharedSource {
        self.inner.clone()
    }
}

#[pymethods]
impl PySource {
    /// Deserializers: CTF files, `files` = [(path, [(name, field, dim, is_sparse,
    /// defines_mb_size)])], and image map files, `images` = [(map_file, features name,
    /// labels name, num_classes, [transform dict])].
    #[staticmethod]
    #[pyo3(signature = (files, images, randomize, max_samples, max_sweeps, window_chunks, window_samples, seed, frame_mode, truncation_length))]
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    fn open<'py>(
        py: Python<'py>,
        files: Vec<(String, Vec<(String, String, usize, bool, bool)>)>,
        images: Vec<(String, String, String, usize, Vec<Bound<'py, PyDict>>)>,
        randomize: bool,
        max_samples: u64,
        max_sweeps: u64,
        window_chunks: usize,
        window_samples: u64,
        seed: u64,
        frame_mode: bool,
        truncation_length: usize,
    ) -> PyResult<Self> {
        let config = MinibatchSourceConfig {
            max_samples,
            max_sweeps,
            randomize,
            randomization_window_in_chunks: window_chunks,
            randomization_window_in_samples: window_samples,
            randomization_seed: seed,
            frame_mode,
            truncation_length,
            prefetch: true,
        };
        let mut streams = Vec::new();
        let mut des: Vec<Arc<dyn Deserializer>> = Vec::new();
        for (map, feat, lab, n, transforms) in &images {
            des.push(crate::image::open(map, feat, lab, *n, transforms, seed)?);
        }
        let src = nogil(py, move || {
            for (path, defs) in &files {
                let sd: Vec<StreamDef> = defs
                    .iter()
                    .map(|(n, f, d, sp, mb)| {
                        let s = if *sp {
                            StreamDef::sparse(n, *d)
                        } else {
                            StreamDef::dense(n, *d)
                        };
                        s.field(f).defines_mb_size(*mb)
                    })
                    .collect();
                des.push(Arc::new(CtfDeserializer::open(path, &sd)?));
            }
            MinibatchSource::new(des, config)
        })?;
        for s in src.streams() {
            streams.push((
                s.name.clone(),
                s.sample_shape.dims().to_vec(),
                s.is_sparse(),
            ));
        }
        Ok(PySource {
            inner: Arc::new(Mutex::new(Box::new(src))),
            streams,
        })
    }
    /// In-memory data: `streams` = [(name, data, is_sequences)] where data is an array
    /// `(N, *S)` (samples) or a list of `(T_i, *S)` arrays (sequences).
    #[staticmethod]
    fn from_data(
        streams: Vec<(String, Bound<'_, PyAny>, bool)>,
        max_samples: u64,
    ) -> PyResult<Self> {
        let mut ins = Vec::new();
        let mut info = Vec::new();
        for (name, data, seq) in &streams {
            if *seq {
                let list: Vec<Bound<'_, PyArrayDyn<f32>>> = data
                    .extract()
                    .map_err(|_| value_err(format!("stream '{name}': a list of float32 arrays")))?;
                let mut shape: Option<Vec<usize>> = None;
                let mut seqs = Vec::new();
                for a in &list {
                    let d = a.shape().to_vec();
                    let s = d[1.min(d.len())..].to_vec();
                    let s = if s.is_empty() { vec![1] } else { s };
                    shape.get_or_insert(s);
                    seqs.push(
                        a.readonly()
                            .as_array()
                            .iter()
                            .copied()
                            .collect::<Vec<f32>>(),
                    );
                }
                let shape =
                    shape.ok_or_else(|| value_err(format!("stream '{name}' has no sequences")))?;
                ins.push(InMemoryStream::sequences::<f32>(name, shape.clone(), &seqs).py()?);
                info.push((name.clone(), shape, false));
            } else {
                let a: Bound<'_, PyArrayDyn<f32>> = data
                    .extract()
                    .map_err(|_| value_err(format!("stream '{name}': a float32 array")))?;
                let d = a.shape().to_vec();
                let s = if d.len() > 1 {
                    d[1..].to_vec()
                } else {
                    vec![1]
                };
                let v: Vec<f32> = a.readonly().as_array().iter().copied().collect();
                ins.push(InMemoryStream::samples::<f32>(name, s.clone(), &v).py()?);
                info.push((name.clone(), s, false));
            }
        }
        let src = MinibatchSourceFromData::new(ins, max_samples).py()?;
        Ok(PySource {
            inner: Arc::new(Mutex::new(Box::new(src))),
            streams: info,
        })
    }
    /// `[(name, shape, is_sparse)]`.
    fn streams(&self) -> Vec<(String, Vec<usize>, bool)> {
        self.streams.clone()
    }
    /// The next minibatch: `{key: MinibatchData}` for `map` = [(key, stream name)], or
    /// `{stream name: MinibatchData}` without it; an empty dict at the end. With
    /// `num_data_partitions` > 1 (distributed training) `size` counts the samples of all
    /// workers and the minibatch holds partition `partition_index`'s sequences (empty
    /// when none of them is in it, as CNTK's).
    #[pyo3(signature = (size, map=None, num_data_partitions=1, partition_index=0))]
    fn next_minibatch<'py>(
        &self,
        py: Python<'py>,
        size: usize,
        map: Option<Vec<(Bound<'py, PyAny>, String)>>,
        num_data_partitions: usize,
        partition_index: usize,
    ) -> PyResult<Bound<'py, PyDict>> {
        if size == 0 {
            return Err(value_err("minibatch_size_in_samples must be at least 1"));
        }
        if num_data_partitions == 0 || partition_index >= num_data_partitions {
            return Err(value_err(format!(
                "partition_index {partition_index} is not one of num_data_partitions = {num_data_partitions}"
            )));
        }
        let inner = self.inner.clone();
        let mb = nogil(py, move || {
            let mut g = match inner.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            if num_data_partitions == 1 {
                return g.next_minibatch(size);
            }
            Ok(
                g.next_minibatch_partition(size, num_data_partitions, partition_index)?
                    .and_then(|p| p.minibatch),
            )
        })?;
        let d = PyDict::new(py);
        let Some(mb) = mb else { return Ok(d) };
        match map {
            Some(m) => {
                for (k, name) in m {
                    let md = mb
                        .get(&name)
                        .ok_or_else(|| value_err(format!("the source has no stream '{name}'")))?;
                    d.set_item(k, PyMinibatchData(md.clone()))?;
                }
            }
            None => {
                for (s, md) in mb.streams.iter().zip(mb.data) {
                    d.set_item(&s.name, PyMinibatchData(md))?;
                }
            }
        }
        Ok(d)
    }
    /// The position as JSON text (CNTK's `get_checkpoint_state`).
    fn get_checkpoint_state(&self) -> PyResult<String> {
        let g = self
            .inner
            .lock()
            .map_err(|_| value_err("source lock poisoned"))?;
        Ok(g.position().py()?.to_string())
    }
    fn restore_from_checkpoint(&self, state: &str) -> PyResult<()> {
        let v: serde_json::Value =
            serde_json::from_str(state).map_err(|e| value_err(format!("checkpoint state: {e}")))?;
        let mut g = self
            .inner
            .lock()
            .map_err(|_| value_err("source lock poisoned"))?;
        g.restore_position(&v).py()
    }
}

#[pyfunction]
fn infinitely_repeat() -> u64 {
    rntk::io::INFINITELY_REPEAT
}

#[pyfunction]
fn full_data_sweep() -> u64 {
    rntk::io::FULL_DATA_SWEEP
}

#[pyfunction]
fn default_window_chunks() -> usize {
    rntk::io::DEFAULT_RANDOMIZATION_WINDOW_IN_CHUNKS
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyMinibatchData>()?;
    m.add_class::<PySource>()?;
    m.add_function(wrap_pyfunction!(infinitely_repeat, m)?)?;
    m.add_function(wrap_pyfunction!(full_data_sweep, m)?)?;
    m.add_function(wrap_pyfunction!(default_window_chunks, m)?)?;
    Ok(())
}

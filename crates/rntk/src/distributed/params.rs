//! Parameter and gradient buffers as the distributed learners reach them: typed
//! slices of a parameter's storage, one-time broadcast of rank 0's values, the
//! (count, loss, metric) triple that travels beside the gradients, and what both
//! distributed learners share: the `Learner` methods they forward to their local
//! learner and the global sample count in their checkpoints.

use super::communicator::{all_reduce, from_bytes, to_bytes, Communicator};
use crate::error::{Error, Result};
use crate::graph::Variable;
use crate::learners::{LearnerState, MinibatchInfo};
use crate::tensor::{DType, Element, Tensor};

/// Run `f` on the parameter's elements as `T` (the caller matched the dtype).
pub(crate) fn with_param_mut<T: Element, R>(
    p: &Variable,
    f: impl FnOnce(&mut [T]) -> R,
) -> Result<R> {
    let storage = p.storage().ok_or_else(|| {
        Error::invalid("distributed learner", format!("{} has no value", p.label()))
    })?;
    let mut t = storage.write().expect("parameter lock");
    let got = t.dtype();
    let s = t.as_mut_slice::<T>().ok_or_else(|| Error::DType {
        context: format!("distributed learner, parameter {}", p.label()),
        expected: T::DTYPE.to_string(),
        got: got.to_string(),
    })?;
    Ok(f(s))
}

/// Every worker takes rank 0's parameter values (the workers may have initialized
/// differently, e.g. with different seeds).
pub(crate) fn broadcast_parameters(comm: &dyn Communicator, params: &[Variable]) -> Result<()> {
    if comm.size() == 1 {
        return Ok(());
    }
    for p in params {
        let mut bytes = if comm.rank() == 0 {
            let t = p.value()?;
            match t.dtype() {
                DType::F32 => to_bytes(t.as_slice::<f32>().unwrap_or(&[])),
                DType::F64 => to_bytes(t.as_slice::<f64>().unwrap_or(&[])),
            }
        } else {
            Vec::new()
        };
        comm.broadcast(&mut bytes, 0)?;
        if comm.rank() != 0 {
            let shape = p.shape();
            let t = match p.dtype() {
                DType::F32 => Tensor::from_vec(shape, from_bytes::<f32>(&bytes).collect())?,
                DType::F64 => Tensor::from_vec(shape, from_bytes::<f64>(&bytes).collect())?,
            };
            p.set_value(t)?;
        }
    }
    Ok(())
}

/// Sum N, Σ loss and Σ metric over the workers, in place.
pub(crate) fn aggregate_info(comm: &dyn Communicator, info: &mut MinibatchInfo) -> Result<()> {
    let mut v = [info.sample_count as f64, info.loss_sum, info.metric_sum];
    all_reduce::<f64>(comm, &mut v)?;
    info.sample_count = v[0].round() as usize;
    info.loss_sum = v[1];
    info.metric_sum = v[2];
    Ok(())
}

/// A per-parameter host buffer in the parameter's element type.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Buf {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl Buf {
    pub fn zeros(dtype: DType, n: usize) -> Buf {
        match dtype {
            DType::F32 => Buf::F32(vec![0.0; n]),
            DType::F64 => Buf::F64(vec![0.0; n]),
        }
    }
    pub fn to_tensor(&self, p: &Variable) -> Result<Tensor> {
        match self {
            Buf::F32(v) => Tensor::from_vec(p.shape(), v.clone()),
            Buf::F64(v) => Tensor::from_vec(p.shape(), v.clone()),
        }
    }
    pub fn from_tensor(t: &Tensor) -> Buf {
        let t = t.clone();
        match t.dtype() {
            DType::F32 => Buf::F32(t.as_slice::<f32>().unwrap_or(&[]).to_vec()),
            DType::F64 => Buf::F64(t.as_slice::<f64>().unwrap_or(&[]).to_vec()),
        }
    }
}

/// The elements of one column in CNTK's sense: the last axis of rntk's shape.
pub(crate) fn column_rows(p: &Variable) -> usize {
    p.shape().dims().last().copied().unwrap_or(1).max(1)
}

/// The [`crate::learners::Learner`] methods a distributed learner forwards unchanged to
/// its local learner `self.inner`, and `update` as a minibatch of this worker alone
/// (`update_minibatch`, which the implementing learner writes). Expands inside
/// `impl Learner for …`; the caller imports `Variable`, `Tensor`, `Result`,
/// `Schedule` and `MinibatchInfo`.
macro_rules! forward_to_local_learner {
    () => {
        fn name(&self) -> &str {
            self.inner.name()
        }
        fn parameters(&self) -> &[Variable] {
            self.inner.parameters()
        }
        /// One minibatch of `n` samples of this worker, through `update_minibatch`
        /// (a collective: every worker must call it).
        fn update(
            &mut self,
            gradients: &[(Variable, Tensor)],
            n: usize,
            sweep_end: bool,
        ) -> Result<bool> {
            let mut g = gradients.to_vec();
            let mut info = MinibatchInfo {
                sample_count: n,
                is_sweep_end: sweep_end,
                ..Default::default()
            };
            self.update_minibatch(&mut g, &mut info)
        }
        fn learning_rate(&self) -> f64 {
            self.inner.learning_rate()
        }
        fn reset_learning_rate(&mut self, schedule: Schedule) -> Result<()> {
            self.inner.reset_learning_rate(schedule)
        }
        fn total_samples_seen(&self) -> u64 {
            self.inner.total_samples_seen()
        }
        fn progress_lines(&self) -> Vec<(String, f64)> {
            self.inner.progress_lines()
        }
        fn reset_smoothed_gradients(&mut self) {
            self.inner.reset_smoothed_gradients()
        }
    };
}
pub(crate) use forward_to_local_learner;

/// The name of the global sample count in a distributed learner's checkpoint state.
const SAMPLE_COUNT: &str = "sample_count";

/// Add the samples of all workers so far to a checkpoint's distributed state.
pub(crate) fn save_sample_count(state: &mut LearnerState, samples: u64) {
    state.distributed.push((
        SAMPLE_COUNT.into(),
        Tensor::from_vec([1usize], vec![samples as f64]).expect("one element"),
    ));
}

/// The samples of all workers a checkpoint's distributed state holds (0 if none).
pub(crate) fn restored_sample_count(state: &LearnerState) -> u64 {
    state
        .distributed
        .iter()
        .find(|(k, _)| k == SAMPLE_COUNT)
        .and_then(|(_, t)| t.as_slice::<f64>()?.first().copied())
        .unwrap_or(0.0) as u64
}

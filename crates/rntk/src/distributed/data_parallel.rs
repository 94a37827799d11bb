//! CNTK's `data_parallel_distributed_learner`: every minibatch, the workers' gradients
//! are summed (with N, Σ loss and Σ metric) and each worker runs the same local
//! learner on the sum, so all workers keep the same parameters, those of one worker
//! training on the union of their minibatches. `num_quantization_bits = 1` is 1-bit
//! SGD: each worker sends its gradient as one bit per element with error feedback
//! (`quantize.rs`), the residual kept per worker. Before `distributed_after` samples
//! nothing is exchanged: every worker trains on the same, whole minibatches.

use super::communicator::Communicator;
use super::params::{aggregate_info, broadcast_parameters, column_rows, Buf};
use super::quantize::{quantize, quantized_bytes, unquantize_add};
use crate::error::{Error, Result};
use crate::graph::Variable;
use crate::learners::{Distribution, Learner, LearnerState, MinibatchInfo, Schedule};
use crate::tensor::{DType, Element, Tensor};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Options of [`data_parallel_distributed_learner`], named and defaulted as CNTK's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataParallelOptions {
    /// Samples (of all workers) trained before the data is split and gradients
    /// exchanged; until then every worker trains on the same whole minibatches.
    pub distributed_after: u64,
    /// 32 (full precision) or 1 (1-bit SGD with error feedback).
    pub num_quantization_bits: u32,
}

impl Default for DataParallelOptions {
    fn default() -> Self {
        DataParallelOptions {
            distributed_after: 0,
            num_quantization_bits: 32,
        }
    }
}

/// A learner whose updates use the gradients summed over all workers.
pub struct DataParallelDistributedLearner {
    inner: Box<dyn Learner>,
    comm: Arc<dyn Communicator>,
    options: DataParallelOptions,
    /// Samples of all workers so far (CNTK's `m_sampleCount`).
    sample_count: u64,
    /// 1-bit SGD: this worker's residual per parameter (created at first use).
    residuals: Vec<Buf>,
    synced: bool,
    comm_time: Duration,
    message: Vec<u8>,
}

/// CNTK's `data_parallel_distributed_learner(learner, distributed_after,
/// num_quantization_bits)` over `communicator`.
pub fn data_parallel_distributed_learner(
    learner: Box<dyn Learner>,
    communicator: Arc<dyn Communicator>,
    options: DataParallelOptions,
) -> Result<DataParallelDistributedLearner> {
    if options.num_quantization_bits != 32 && options.num_quantization_bits != 1 {
        return Err(Error::invalid(
            "data_parallel_distributed_learner",
            format!(
                "num_quantization_bits = {}: rntk quantizes to 1 bit (1-bit SGD) or not at all (32)",
                options.num_quantization_bits
            ),
        ));
    }
    if learner.distribution().is_some() {
        return Err(Error::invalid(
            "data_parallel_distributed_learner",
            "the learner is already distributed",
        ));
    }
    Ok(DataParallelDistributedLearner {
        inner: learner,
        comm: communicator,
        options,
        sample_count: 0,
        residuals: Vec::new(),
        synced: false,
        comm_time: Duration::ZERO,
        message: Vec::new(),
    })
}

impl DataParallelDistributedLearner {
    /// The local learner that applies the aggregated gradients.
    pub fn inner(&self) -> &dyn Learner {
        &*self.inner
    }
    /// The communicator the gradients travel over.
    pub fn communicator(&self) -> &Arc<dyn Communicator> {
        &self.comm
    }
    /// Wall time spent exchanging gradients so far (waiting for slower workers
    /// included).
    pub fn communication_time(&self) -> Duration {
        self.comm_time
    }

    fn aggregate(
        &mut self,
        grads: &mut [(Variable, Tensor)],
        info: &mut MinibatchInfo,
    ) -> Result<()> {
        let t0 = Instant::now();
        if self.options.num_quantization_bits == 32 {
            for (p, g) in grads.iter_mut() {
                let shape = g.shape().clone();
                match g.dtype() {
                    DType::F32 => self.comm.all_reduce_f32(slice_mut::<f32>(g, p)?)?,
                    DType::F64 => self.comm.all_reduce_f64(slice_mut::<f64>(g, p)?)?,
                }
                debug_assert_eq!(&shape, g.shape());
            }
        } else {
            self.one_bit(grads)?;
        }
        aggregate_info(&*self.comm, info)?;
        self.comm_time += t0.elapsed();
        Ok(())
    }

    /// 1-bit SGD: quantize every gradient (plus residual) into one message, gather
    /// every worker's message, and sum their reconstructions in rank order (the
    /// same bits on every worker).
    fn one_bit(&mut self, grads: &mut [(Variable, Tensor)]) -> Result<()> {
        if self.residuals.len() != grads.len() {
            self.residuals = grads
                .iter()
                .map(|(p, g)| Buf::zeros(p.dtype(), g.shape().numel()))
                .collect();
        }
        let mut msg = std::mem::take(&mut self.message);
        msg.clear();
        for ((p, g), r) in grads.iter().zip(self.residuals.iter_mut()) {
            let rows = column_rows(p);
            match r {
                Buf::F32(r) => quantize(slice::<f32>(g, p)?, r, rows, &mut msg),
                Buf::F64(r) => quantize(slice::<f64>(g, p)?, r, rows, &mut msg),
            }
        }
        let all = self.comm.all_gather(&msg)?;
        self.message = msg;
        for (p, g) in grads.iter_mut() {
            match g.dtype() {
                DType::F32 => slice_mut::<f32>(g, p)?.fill(0.0),
                DType::F64 => slice_mut::<f64>(g, p)?.fill(0.0),
            }
        }
        for (rank, m) in all.iter().enumerate() {
            let mut at = 0;
            for (p, g) in grads.iter_mut() {
                let rows = column_rows(p);
                let n = g.shape().numel();
                let need = match g.dtype() {
                    DType::F32 => quantized_bytes::<f32>(n, rows),
                    DType::F64 => quantized_bytes::<f64>(n, rows),
                };
                if m.len() < at + need {
                    return Err(Error::distributed(
                        Some(rank),
                        format!("a 1-bit gradient message of {} bytes is too short", m.len()),
                    ));
                }
                at += match g.dtype() {
                    DType::F32 => unquantize_add(&m[at..], rows, slice_mut::<f32>(g, p)?),
                    DType::F64 => unquantize_add(&m[at..], rows, slice_mut::<f64>(g, p)?),
                };
            }
        }
        Ok(())
    }
}

fn slice<'a, T: Element>(g: &'a Tensor, p: &Variable) -> Result<&'a [T]> {
    g.as_slice::<T>().ok_or_else(|| Error::DType {
        context: format!("gradient of {}", p.label()),
        expected: T::DTYPE.to_string(),
        got: g.dtype().to_string(),
    })
}

fn slice_mut<'a, T: Element>(g: &'a mut Tensor, p: &Variable) -> Result<&'a mut [T]> {
    let got = g.dtype();
    g.as_mut_slice::<T>().ok_or_else(|| Error::DType {
        context: format!("gradient of {}", p.label()),
        expected: T::DTYPE.to_string(),
        got: got.to_string(),
    })
}

impl Learner for DataParallelDistributedLearner {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn parameters(&self) -> &[Variable] {
        self.inner.parameters()
    }
    /// Local update only (no exchange): what a caller outside a trainer asks for.
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
    fn update_minibatch(
        &mut self,
        gradients: &mut [(Variable, Tensor)],
        info: &mut MinibatchInfo,
    ) -> Result<bool> {
        if !self.synced {
            broadcast_parameters(&*self.comm, self.inner.parameters())?;
            self.synced = true;
        }
        if self.sample_count >= self.options.distributed_after {
            self.aggregate(gradients, info)?;
        }
        self.sample_count += info.sample_count as u64;
        if info.sample_count == 0 {
            return Ok(false);
        }
        self.inner
            .update(gradients, info.sample_count, info.is_sweep_end)
    }
    fn distribution(&self) -> Option<Distribution> {
        Some(Distribution {
            rank: self.comm.rank(),
            workers: self.comm.size(),
            parallelization_after: self.options.distributed_after,
            minibatch_size_scale: 1,
        })
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
    /// The local learner's state, the global sample count and (1-bit SGD) every
    /// worker's residuals: a collective, every worker must call it.
    fn state(&self) -> LearnerState {
        let mut s = self.inner.state();
        s.distributed.push((
            "sample_count".into(),
            Tensor::from_vec([1usize], vec![self.sample_count as f64]).expect("one element"),
        ));
        if self.options.num_quantization_bits == 1 {
            s.distributed.extend(super::residual_state(
                &*self.comm,
                self.inner.parameters(),
                &self.residuals,
            ));
        }
        s
    }
    fn restore_state(&mut self, state: &LearnerState) -> Result<()> {
        self.inner.restore_state(state)?;
        for (k, t) in &state.distributed {
            if k == "sample_count" {
                self.sample_count = t
                    .as_slice::<f64>()
                    .and_then(|s| s.first())
                    .copied()
                    .unwrap_or(0.0) as u64;
            }
        }
        if self.options.num_quantization_bits == 1 {
            self.residuals =
                super::restore_residuals(&*self.comm, self.inner.parameters(), &state.distributed)?;
        }
        // the restored parameters are the same file on every worker
        self.synced = true;
        Ok(())
    }
}

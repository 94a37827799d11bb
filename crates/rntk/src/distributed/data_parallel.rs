//! CNTK's `data_parallel_distributed_learner`: every minibatch, the workers' gradients
//! are summed (with N, Σ loss and Σ metric) and each worker runs the same local
//! learner on the sum, so all workers keep the same parameters, those of one worker
//! training on the union of their minibatches. `num_quantization_bits = 1` is 1-bit
//! SGD: each worker sends its gradient as one bit per element with error feedback
//! (`quantize.rs`), the residual kept per worker. Before `distributed_after` samples
//! nothing is exchanged: every worker trains on the same, whole minibatches.

use super::communicator::Communicator;
use super::overlap::Overlap;
use super::params::{
    aggregate_info, broadcast_parameters, column_rows, forward_to_local_learner,
    restored_sample_count, save_sample_count, Buf,
};
use super::quantize::{quantize, quantized_bytes, unquantize_add};
use crate::error::{Error, Result};
use crate::graph::Variable;
use crate::learners::{
    Distribution, GradientExchange, Learner, LearnerState, MinibatchInfo, Schedule,
};
use crate::tensor::{DType, Element, Tensor};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// [`DataParallelOptions::bucket_bytes`] by default.
pub const DEFAULT_BUCKET_BYTES: usize = 4 << 20;

/// Options of [`data_parallel_distributed_learner`], named and defaulted as CNTK's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataParallelOptions {
    /// Samples (of all workers) trained before the data is split and gradients
    /// exchanged; until then every worker trains on the same whole minibatches.
    pub distributed_after: u64,
    /// 32 (full precision) or 1 (1-bit SGD with error feedback).
    pub num_quantization_bits: u32,
    /// 32-bit: exchange the gradients in buckets of about this many bytes, each as
    /// soon as the backward pass has finished it, overlapping the rest of the pass
    /// (`overlap.rs`); 0 = one exchange after the backward pass. Not in CNTK.
    pub bucket_bytes: usize,
}

impl Default for DataParallelOptions {
    fn default() -> Self {
        DataParallelOptions {
            distributed_after: 0,
            num_quantization_bits: 32,
            bucket_bytes: DEFAULT_BUCKET_BYTES,
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
    /// The exchange overlapping the backward pass (created at first use).
    overlap: Option<Overlap>,
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
        overlap: None,
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
    /// included), not counting exchanges hidden behind the backward pass.
    pub fn communication_time(&self) -> Duration {
        self.comm_time + self.overlap.as_ref().map_or(Duration::ZERO, |o| o.waited())
    }

    /// Take rank 0's parameters (once, before the first forward pass).
    fn sync(&mut self) -> Result<()> {
        if !self.synced {
            broadcast_parameters(&*self.comm, self.inner.parameters())?;
            self.synced = true;
        }
        Ok(())
    }

    fn aggregate(
        &mut self,
        grads: &mut [(Variable, Tensor)],
        info: &mut MinibatchInfo,
    ) -> Result<()> {
        if self.comm.size() == 1 {
            // nothing to aggregate: one worker trains as its local learner (CNTK's
            // quantized aggregation returns its input unquantized for one worker too)
            return Ok(());
        }
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
    forward_to_local_learner!();
    fn update_minibatch(
        &mut self,
        gradients: &mut [(Variable, Tensor)],
        info: &mut MinibatchInfo,
    ) -> Result<bool> {
        self.sync()?;
        let summed = self.overlap.as_mut().is_some_and(|o| o.take_summed());
        if summed {
            // the gradients came summed from the exchange overlapping the backward pass
            let t0 = Instant::now();
            aggregate_info(&*self.comm, info)?;
            self.comm_time += t0.elapsed();
        } else if self.sample_count >= self.options.distributed_after {
            self.aggregate(gradients, info)?;
        }
        self.sample_count += info.sample_count as u64;
        if info.sample_count == 0 {
            return Ok(false);
        }
        self.inner
            .update(gradients, info.sample_count, info.is_sweep_end)
    }
    fn begin_minibatch(&mut self) -> Result<Option<&mut dyn GradientExchange>> {
        self.sync()?;
        let o = self.options;
        if o.bucket_bytes == 0
            || o.num_quantization_bits != 32
            || self.sample_count < o.distributed_after
            || self.comm.size() == 1
        {
            return Ok(None);
        }
        if self.overlap.is_none() {
            let n = self.inner.parameters().len();
            self.overlap = Some(Overlap::new(self.comm.clone(), n, o.bucket_bytes)?);
        }
        let x = self.overlap.as_mut().expect("just made");
        x.begin()?;
        Ok(Some(x as &mut dyn GradientExchange))
    }
    fn gradient_exchange(&mut self) -> Option<&mut dyn GradientExchange> {
        self.overlap
            .as_mut()
            .map(|x| x as &mut dyn GradientExchange)
    }
    fn distribution(&self) -> Option<Distribution> {
        Some(Distribution {
            rank: self.comm.rank(),
            workers: self.comm.size(),
            parallelization_after: self.options.distributed_after,
            minibatch_size_scale: 1,
        })
    }
    /// The local learner's state, the global sample count and (1-bit SGD) every
    /// worker's residuals: a collective, every worker must call it.
    fn state(&self) -> LearnerState {
        let mut s = self.inner.state();
        save_sample_count(&mut s, self.sample_count);
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
        self.sample_count = restored_sample_count(state);
        if self.options.num_quantization_bits == 1 {
            self.residuals =
                super::restore_residuals(&*self.comm, self.inner.parameters(), &state.distributed)?;
        }
        // the restored parameters are the same file on every worker
        self.synced = true;
        Ok(())
    }
}

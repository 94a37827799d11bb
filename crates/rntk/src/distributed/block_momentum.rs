//! CNTK's `block_momentum_distributed_learner` (BMUF, Chen & Huo 2016): each worker
//! trains its own copy of the model with the local learner on its share of the data;
//! every `block_size` samples (of all workers) the workers' model changes since the
//! last block are summed and applied through a block-level momentum:
//!
//! ```text
//! G   = Σ_workers (w_prev − w_local)                 (the block's summed gradient)
//! μ_b = exp(−block_size / T_b)                       (T_b: block momentum as time constant;
//!                                                     CNTK's default −block_size / ln(1 − 1/N))
//! Δ   = μ_b·Δ + (1 − μ_b)·η_b·G                      (η_b: block learning rate, default 1)
//! w   = w_prev − Δ                                   (Nesterov: w −= μ_b·Δ as well)
//! w_prev = w;   the local learner's momentum is reset (default)
//! ```
//!
//! rntk keeps the workers in step: N, Σ loss and Σ metric are summed every minibatch
//! (three numbers), so all workers count the same samples, decide on the same
//! minibatch when a block ends (CNTK lets each worker count its own samples and
//! negotiates aggregations, checkpoints and shutdown with extra collectives), and
//! print the totals of all workers. The minibatch size asked for is per worker
//! (CNTK's `MinibatchSizeScaleFactor`).

use super::communicator::Communicator;
use super::params::{
    aggregate_info, broadcast_parameters, forward_to_local_learner, restored_sample_count,
    save_sample_count, with_param_mut, Buf,
};
use crate::error::{Error, Result};
use crate::graph::Variable;
use crate::learners::{
    Distribution, GradientExchange, Learner, LearnerState, MinibatchInfo, Schedule,
};
use crate::tensor::{Element, Tensor};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Options of [`block_momentum_distributed_learner`], defaulted as CNTK's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BlockMomentumOptions {
    /// Samples of all workers per block (CNTK's `block_size`).
    pub block_size: u64,
    /// `None` = CNTK's default, `−block_size / ln(1 − 1/workers)` (0 for one worker).
    pub block_momentum_as_time_constant: Option<f64>,
    pub use_nesterov_momentum: bool,
    pub reset_sgd_momentum_after_aggregation: bool,
    pub block_learning_rate: f64,
    pub distributed_after: u64,
}

impl BlockMomentumOptions {
    pub fn new(block_size: u64) -> Self {
        BlockMomentumOptions {
            block_size,
            block_momentum_as_time_constant: None,
            use_nesterov_momentum: true,
            reset_sgd_momentum_after_aggregation: true,
            block_learning_rate: 1.0,
            distributed_after: 0,
        }
    }
}

/// The block-momentum (BMUF) distributed learner.
pub struct BlockMomentumDistributedLearner {
    inner: Box<dyn Learner>,
    comm: Arc<dyn Communicator>,
    options: BlockMomentumOptions,
    /// The block momentum's time constant in samples of all workers.
    time_constant: f64,
    /// Parameters at the start of the block, and the smoothed block gradient Δ.
    prev: Vec<Buf>,
    smoothed: Vec<Buf>,
    initialized: bool,
    /// Samples of all workers: in total, and in the block in progress.
    sample_count: u64,
    block_samples: u64,
    comm_time: Duration,
}

/// CNTK's `block_momentum_distributed_learner(learner, block_size, ...)`.
pub fn block_momentum_distributed_learner(
    learner: Box<dyn Learner>,
    communicator: Arc<dyn Communicator>,
    options: BlockMomentumOptions,
) -> Result<BlockMomentumDistributedLearner> {
    let ctx = "block_momentum_distributed_learner";
    let n = communicator.size();
    if options.block_size < n as u64 {
        return Err(Error::invalid(
            ctx,
            format!(
                "block_size {} is smaller than the number of workers ({n}): the sync period per worker would be 0",
                options.block_size
            ),
        ));
    }
    if !(options.block_learning_rate.is_finite() && options.block_learning_rate > 0.0) {
        return Err(Error::invalid(
            ctx,
            "block_learning_rate must be positive and finite",
        ));
    }
    let time_constant = match options.block_momentum_as_time_constant {
        Some(t) if t >= 0.0 && t.is_finite() => t,
        Some(t) => {
            return Err(Error::invalid(
                ctx,
                format!("block_momentum_as_time_constant = {t}: give a finite value >= 0"),
            ))
        }
        None => default_time_constant(n, options.block_size),
    };
    if learner.distribution().is_some() {
        return Err(Error::invalid(ctx, "the learner is already distributed"));
    }
    Ok(BlockMomentumDistributedLearner {
        inner: learner,
        comm: communicator,
        options,
        time_constant,
        prev: Vec::new(),
        smoothed: Vec::new(),
        initialized: false,
        sample_count: 0,
        block_samples: 0,
        comm_time: Duration::ZERO,
    })
}

/// CNTK's default block momentum `1 − 1/N` per block, as a time constant in samples.
pub fn default_time_constant(workers: usize, block_size: u64) -> f64 {
    if workers <= 1 {
        return 0.0;
    }
    -(block_size as f64) / (1.0 - 1.0 / workers as f64).ln()
}

/// `exp(−samples / T)`, 0 for T = 0 (CNTK's `TimeConstant2Momentum`).
fn time_constant_to_momentum(t: f64, samples: u64) -> f64 {
    if t == 0.0 {
        0.0
    } else {
        (-(samples as f64) / t).exp()
    }
}

impl BlockMomentumDistributedLearner {
    /// Wall time spent exchanging so far.
    pub fn communication_time(&self) -> Duration {
        self.comm_time
    }
    /// The block momentum's time constant (samples of all workers).
    pub fn time_constant(&self) -> f64 {
        self.time_constant
    }

    /// Take rank 0's parameters and start the first block (once, and again after a
    /// restore).
    fn init(&mut self) -> Result<()> {
        if !self.initialized {
            broadcast_parameters(&*self.comm, self.inner.parameters())?;
            self.reset_block()?;
            self.initialized = true;
        }
        Ok(())
    }

    fn reset_block(&mut self) -> Result<()> {
        let params = self.inner.parameters().to_vec();
        self.prev = params
            .iter()
            .map(|p| p.value().map(|t| Buf::from_tensor(&t)))
            .collect::<Result<_>>()?;
        if self.smoothed.len() != params.len() {
            self.smoothed = params
                .iter()
                .map(|p| Buf::zeros(p.dtype(), p.shape().numel()))
                .collect();
        }
        Ok(())
    }

    /// The block's model averaging: one all-reduce per parameter.
    fn aggregate_block(&mut self) -> Result<()> {
        let t0 = Instant::now();
        // CNTK: exp(−sync period / time constant), from the nominal block size (the
        // block may end up to a minibatch later)
        let mu = time_constant_to_momentum(self.time_constant, self.options.block_size);
        let params = self.inner.parameters().to_vec();
        let o = self.options;
        for ((p, prev), sg) in params
            .iter()
            .zip(self.prev.iter_mut())
            .zip(self.smoothed.iter_mut())
        {
            match (prev, sg) {
                (Buf::F32(prev), Buf::F32(sg)) => block_step(&*self.comm, p, prev, sg, mu, &o)?,
                (Buf::F64(prev), Buf::F64(sg)) => block_step(&*self.comm, p, prev, sg, mu, &o)?,
                _ => {
                    return Err(Error::invalid(
                        "block momentum",
                        format!("{} changed its element type", p.label()),
                    ))
                }
            }
        }
        self.block_samples = 0;
        if o.reset_sgd_momentum_after_aggregation {
            self.inner.reset_smoothed_gradients();
        }
        self.comm_time += t0.elapsed();
        Ok(())
    }
}

fn block_step<T: Element>(
    comm: &dyn Communicator,
    p: &Variable,
    prev: &mut [T],
    sg: &mut [T],
    mu: f64,
    o: &BlockMomentumOptions,
) -> Result<()> {
    // G = prev − current, summed over the workers
    let mut g: Vec<T> = with_param_mut::<T, _>(p, |w| {
        prev.iter().zip(w.iter()).map(|(&a, &b)| a - b).collect()
    })?;
    super::communicator::all_reduce(comm, &mut g)?;
    let m = T::from_f64(mu);
    let gain = T::from_f64((1.0 - mu) * o.block_learning_rate);
    with_param_mut::<T, _>(p, |w| {
        for i in 0..w.len() {
            sg[i] = m * sg[i] + gain * g[i];
            let mut v = prev[i] - sg[i];
            if o.use_nesterov_momentum {
                v -= m * sg[i];
            }
            w[i] = v;
            prev[i] = v;
        }
    })
}

impl Learner for BlockMomentumDistributedLearner {
    forward_to_local_learner!();
    fn update_minibatch(
        &mut self,
        gradients: &mut [(Variable, Tensor)],
        info: &mut MinibatchInfo,
    ) -> Result<bool> {
        self.init()?;
        // the local step, on this worker's own gradient and N
        if info.sample_count > 0 {
            self.inner
                .update(gradients, info.sample_count, info.is_sweep_end)?;
        }
        if self.sample_count < self.options.distributed_after {
            // warm start: every worker trains on the same whole minibatches
            self.sample_count += info.sample_count as u64;
            self.reset_block()?;
            return Ok(info.sample_count > 0);
        }
        let t0 = Instant::now();
        aggregate_info(&*self.comm, info)?;
        self.comm_time += t0.elapsed();
        self.sample_count += info.sample_count as u64;
        self.block_samples += info.sample_count as u64;
        if self.block_samples >= self.options.block_size {
            self.aggregate_block()?;
        }
        Ok(info.sample_count > 0)
    }
    /// Rank 0's parameters before the first forward pass.
    fn begin_minibatch(&mut self) -> Result<Option<&mut dyn GradientExchange>> {
        self.init()?;
        Ok(None)
    }
    fn distribution(&self) -> Option<Distribution> {
        Some(Distribution {
            rank: self.comm.rank(),
            workers: self.comm.size(),
            parallelization_after: self.options.distributed_after,
            minibatch_size_scale: self.comm.size(),
        })
    }
    /// Aggregate the block in progress (before a checkpoint and at the end of
    /// training, as CNTK does), so every worker holds the same model.
    fn synchronize(&mut self) -> Result<()> {
        if self.initialized && self.block_samples > 0 {
            self.aggregate_block()?;
        }
        Ok(())
    }
    fn state(&self) -> LearnerState {
        let mut s = self.inner.state();
        save_sample_count(&mut s, self.sample_count);
        for (i, (p, sg)) in self
            .inner
            .parameters()
            .iter()
            .zip(&self.smoothed)
            .enumerate()
        {
            if let Ok(t) = sg.to_tensor(p) {
                s.distributed
                    .push((format!("block_smoothed_gradient.{i}"), t));
            }
        }
        s
    }
    fn restore_state(&mut self, state: &LearnerState) -> Result<()> {
        self.inner.restore_state(state)?;
        let params = self.inner.parameters().to_vec();
        self.smoothed = params
            .iter()
            .map(|p| Buf::zeros(p.dtype(), p.shape().numel()))
            .collect();
        self.sample_count = restored_sample_count(state);
        for (k, t) in &state.distributed {
            if let Some(i) = k.strip_prefix("block_smoothed_gradient.") {
                let i: usize = i.parse().map_err(|_| {
                    Error::invalid("block momentum restore", format!("bad state name {k}"))
                })?;
                let p = params.get(i).ok_or_else(|| {
                    Error::invalid(
                        "block momentum restore",
                        format!("state for parameter {i} of {}", params.len()),
                    )
                })?;
                if t.shape() != &p.shape() || t.dtype() != p.dtype() {
                    return Err(Error::invalid(
                        "block momentum restore",
                        format!("{k} does not fit {}", p.label()),
                    ));
                }
                self.smoothed[i] = Buf::from_tensor(t);
            }
        }
        // parameters come from the checkpoint (the same on every worker): a new block
        self.initialized = false;
        self.block_samples = 0;
        Ok(())
    }
}

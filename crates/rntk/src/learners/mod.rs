//! Learners: the update rules that move parameters along their gradients, with CNTK 2.7's
//! schedules, per-update scaling and regularization pipeline.
//!
//! Two extension points: implement [`Learner`] for complete control over an update, or
//! implement [`UpdateRule`] and wrap it in a [`StandardLearner`] to get CNTK's schedule
//! handling, clipping, L1/L2, counters and checkpoints for free.
//!
//! Parameters, their gradients and the rules' state live on the device that computes
//! with them: a built-in rule describes its step as an [`UpdateKernel`] and the
//! backend's learner-update kernel runs it there (`backend::Updates`).

mod adadelta;
mod adagrad;
mod adam;
mod fsadagrad;
mod momentum;
pub mod regularization;
mod rmsprop;
pub mod schedule;
mod sgd;
mod standard;

pub use adadelta::{adadelta, AdaDelta};
pub use adagrad::{adagrad, AdaGrad};
pub use adam::{adam, Adam, AdamOptions};
pub use fsadagrad::{fsadagrad, FsAdaGrad, FsAdaGradOptions};
pub use momentum::{momentum_sgd, nesterov, MomentumSgd};
pub use regularization::LearnerOptions;
pub use rmsprop::{rmsprop, RmsProp, RmsPropOptions};
pub use schedule::{EpochSize, Schedule, IGNORE};
pub use sgd::{sgd, Sgd};
pub use standard::StandardLearner;

pub use crate::backend::updates::UpdateKernel;

use crate::error::Result;
use crate::graph::Variable;
use crate::tensor::Tensor;

/// Something that updates a set of parameters from their gradients (CNTK's `Learner`).
///
/// Object safe: a trainer holds `Box<dyn Learner>`s, each owning a disjoint set of
/// parameters.
pub trait Learner: Send {
    /// A short name for messages ("sgd", "adam", ...).
    fn name(&self) -> &str;

    /// The parameters this learner owns, in the order given at construction.
    fn parameters(&self) -> &[Variable];

    /// Apply one update. `gradients` holds the gradient of the *summed* loss for every
    /// owned parameter; `sample_count` is the minibatch's N; `is_sweep_end` marks the
    /// last minibatch of a data sweep. Returns `false` (and changes nothing) when the
    /// current learning rate is 0, as CNTK does.
    fn update(
        &mut self,
        gradients: &[(Variable, Tensor)],
        sample_count: usize,
        is_sweep_end: bool,
    ) -> Result<bool>;

    /// The current value of the learning-rate schedule (unscaled, as CNTK reports it).
    fn learning_rate(&self) -> f64;

    /// Replace the learning-rate schedule; its position 0 is "now". As in CNTK, the
    /// values and epoch size come from `schedule` but the reference minibatch size of
    /// the schedule in use is kept.
    fn reset_learning_rate(&mut self, schedule: Schedule) -> Result<()>;

    /// Samples of all updates applied so far.
    fn total_samples_seen(&self) -> u64;

    /// Everything needed to resume training (counters, schedule, per-parameter state).
    fn state(&self) -> LearnerState;

    /// Resume from a [`LearnerState`] taken from a learner of the same kind over
    /// parameters of the same shapes and types.
    fn restore_state(&mut self, state: &LearnerState) -> Result<()>;

    /// The hyper-parameters CNTK's learners report to progress writers, as
    /// `(key, value)`: `("Learning rate per minibatch", 0.005)`,
    /// `("Momentum per 1 samples", 0.99)`. A trainer prints a line when a value changes.
    fn progress_lines(&self) -> Vec<(String, f64)> {
        Vec::new()
    }

    /// One minibatch's update as a trainer runs it. A local learner updates with the
    /// minibatch's own N (N = 0 is refused, as by `update`); a distributed learner
    /// (`crate::distributed`) first aggregates the gradients, N, loss and metric across
    /// the workers, in place, so the trainer reports the totals of all workers.
    fn update_minibatch(
        &mut self,
        gradients: &mut [(Variable, Tensor)],
        info: &mut MinibatchInfo,
    ) -> Result<bool> {
        self.update(gradients, info.sample_count, info.is_sweep_end)
    }

    /// How this learner takes part in distributed training; `None` for a local one.
    fn distribution(&self) -> Option<Distribution> {
        None
    }

    /// Zero the rule's smoothed gradients (momentum and similar buffers), as CNTK's
    /// `ResetSmoothedGradients`: block momentum does it after each aggregation.
    fn reset_smoothed_gradients(&mut self) {}

    /// Bring every worker to the same parameters now (block momentum aggregates the
    /// block in progress); a no-op for other learners. A collective: a training loop
    /// calls it on every worker at once, before a checkpoint and at the end.
    fn synchronize(&mut self) -> Result<()> {
        Ok(())
    }

    /// Called by a trainer before the forward pass of each minibatch. A distributed
    /// learner takes rank 0's parameters at the first (so every worker computes its
    /// first gradient at the same point), and may return where the trainer hands each
    /// gradient as soon as the backward pass has finished it, to exchange it with the
    /// other workers while the pass goes on; it gives them back summed over the
    /// workers from [`GradientExchange::finish`]. `None`: the gradients come to
    /// `update_minibatch` as usual.
    fn begin_minibatch(&mut self) -> Result<Option<&mut dyn GradientExchange>> {
        Ok(None)
    }

    /// The exchange the last [`Learner::begin_minibatch`] returned, again (without
    /// starting another): a learner shared behind a lock hands the trainer an exchange
    /// of its own that takes the lock and forwards each call here. `None` when
    /// `begin_minibatch` returned none.
    fn gradient_exchange(&mut self) -> Option<&mut dyn GradientExchange> {
        None
    }
}

/// A learner's exchange of gradients overlapping the backward pass (see
/// [`Learner::begin_minibatch`]). Every worker hands over the same gradients in the
/// same order (the order of `Executor::gradient_order`, the same on every worker).
pub trait GradientExchange: Send {
    /// Parameter `index`'s gradient (in the learner's parameter order) is final.
    fn ready(&mut self, index: usize, gradient: Tensor) -> Result<()>;
    /// Wait for every exchange of this minibatch; the gradients summed over the
    /// workers, in parameter order. The `update_minibatch` that follows uses them as
    /// they are (it exchanges N, loss and metric only).
    fn finish(&mut self) -> Result<Vec<Tensor>>;
}

/// One minibatch as the trainer hands it to its learners (CNTK's `MinibatchInfo`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MinibatchInfo {
    /// N of this worker's minibatch (0 when it had no data); all workers' after a
    /// distributed learner aggregated it.
    pub sample_count: usize,
    /// Σ loss and Σ metric of the minibatch (aggregated like `sample_count`).
    pub loss_sum: f64,
    pub metric_sum: f64,
    pub is_sweep_end: bool,
}

/// How a distributed learner takes part in training: a training loop reads it to split
/// the data (`rank` of `workers` partitions, each a share of every minibatch) and to
/// know when distribution starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Distribution {
    pub rank: usize,
    pub workers: usize,
    /// Global samples trained on one (the same) data stream by every worker before
    /// the data is split (CNTK's `distributed_after`).
    pub parallelization_after: u64,
    /// Factor applied to the requested minibatch size (CNTK's
    /// `MinibatchSizeScaleFactor`: block momentum takes the size per worker).
    pub minibatch_size_scale: usize,
}

/// CNTK's wording of a schedule's unit: "per minibatch" or "per M samples".
pub fn schedule_unit(s: &Schedule) -> String {
    match s.minibatch_size() {
        0 => "per minibatch".to_string(),
        m => format!("per {m} samples"),
    }
}

/// A learner's checkpoint, as a plain struct (no serialization format is fixed yet).
#[derive(Clone, Debug, PartialEq)]
pub struct LearnerState {
    /// The learner kind that produced it; restoring into another kind is refused.
    pub learner: String,
    pub sample_count: u64,
    pub minibatch_count: u64,
    pub sweep_count: u64,
    pub learning_rate: Schedule,
    /// Samples and sweeps at the last `reset_learning_rate` (the schedule's origin).
    pub learning_rate_origin: (u64, u64),
    /// Per parameter, in `parameters()` order: the rule's buffers (CNTK's smoothed
    /// gradients), each shaped and typed like the parameter.
    pub buffers: Vec<Vec<Tensor>>,
    /// Per parameter: the rule's scalar state (e.g. FSAdaGrad's smoothed count).
    pub scalars: Vec<Vec<f64>>,
    /// A distributed learner's own state, by name (block momentum's smoothed block
    /// gradient, 1-bit SGD's residuals of every worker); empty for a local learner.
    pub distributed: Vec<(String, Tensor)>,
}

/// What an update rule knows about the update in progress.
#[derive(Clone, Debug, PartialEq)]
pub struct StepContext {
    /// N, the number of samples of this minibatch.
    pub sample_count: usize,
    /// Samples seen by the learner before this update (drives sample-based schedules).
    pub samples_seen: u64,
    /// Sweeps completed before this update (drives sweep-based schedules).
    pub sweeps_seen: u64,
    /// 1 for the first update, counting this one.
    pub update_count: u64,
    /// The learning-rate schedule's current value.
    pub learning_rate: f64,
    /// The rate to apply to the summed gradient: `lr/M`, or `lr/N` when `M` is IGNORE.
    pub eta: f64,
}

impl StepContext {
    /// A schedule's current value.
    pub fn value(&self, s: &Schedule) -> f64 {
        s.value_at(self.samples_seen, self.sweeps_seen)
    }

    /// A momentum-like schedule's value for this minibatch: `m^(N/M)`, or `m` if `M` is
    /// IGNORE.
    pub fn momentum(&self, s: &Schedule) -> f64 {
        schedule::momentum_for_minibatch(self.value(s), s.minibatch_size(), self.sample_count)
    }
}

/// Per-parameter state of a host rule ([`HostRule`]), in the parameter's element type.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct RuleState<T> {
    /// Parameter-shaped buffers, as many as [`UpdateRule::buffers`] asks for, zeroed.
    pub buffers: Vec<Vec<T>>,
    /// Scalars, as many as [`UpdateRule::scalars`] asks for, zeroed.
    pub scalars: Vec<f64>,
}

/// The learner-specific part of an update, run by [`StandardLearner`] between the
/// clipping/L2 and the L1 steps.
pub trait UpdateRule: Send {
    /// The learner's name, used in messages and checkpoints.
    fn name(&self) -> &str;
    /// How many parameter-shaped buffers the rule keeps per parameter.
    fn buffers(&self) -> usize;
    /// How many scalars the rule keeps per parameter.
    fn scalars(&self) -> usize {
        0
    }
    /// A learner-level `minibatch_size`: apply it to the rule's own schedules that did
    /// not set a reference minibatch size.
    fn adopt_minibatch_size(&mut self, _minibatch_size: Option<usize>) {}
    /// A momentum schedule the learner reports to progress writers (momentum_sgd and
    /// nesterov do; adam does not, as in CNTK).
    fn reported_momentum(&self) -> Option<&Schedule> {
        None
    }
    /// This update's step for one parameter, given the rule's host `scalars` for it
    /// (updated in place). Built-in rules return an element-wise [`UpdateKernel`] that
    /// runs on the parameter's device; a custom rule may instead update host copies
    /// ([`RuleStep::Host`]).
    fn step(&mut self, ctx: &StepContext, scalars: &mut [f64]) -> RuleStep<'_>;
}

/// What one update of one parameter runs.
pub enum RuleStep<'a> {
    /// A backend kernel, with this update's constants.
    Kernel(UpdateKernel),
    /// Host code on copies of the parameter, gradient and state (on the CPU backend
    /// the tensors themselves; on a device, a download and an upload per update).
    Host(&'a mut dyn HostRule),
}

/// An update rule written against host slices (see [`RuleStep::Host`]). Implement both
/// element types (a generic helper called from both is the usual way).
pub trait HostRule {
    /// Update one f32 parameter `p` from its preprocessed gradient `g`.
    fn apply_f32(&mut self, ctx: &StepContext, p: &mut [f32], g: &[f32], s: &mut RuleState<f32>);
    /// Update one f64 parameter `p` from its preprocessed gradient `g`.
    fn apply_f64(&mut self, ctx: &StepContext, p: &mut [f64], g: &[f64], s: &mut RuleState<f64>);
}

/// Refuse momentum-like values outside [0, 1).
pub(crate) fn check_momentum(learner: &str, what: &str, s: &Schedule) -> Result<()> {
    s.check_values(
        &format!("{learner} learner, {what}"),
        |m| (0.0..1.0).contains(&m),
        "in [0, 1)",
    )
}

//! Momentum SGD and Nesterov: the learning rate is folded *into* the momentum buffer
//! (`v = μ·v + u·η·g`), which matters when the rate changes during training.

use super::{
    check_momentum, LearnerOptions, RuleStep, Schedule, StandardLearner, StepContext, UpdateKernel,
    UpdateRule,
};
use crate::error::Result;
use crate::graph::Variable;

/// The momentum-SGD rule, classic or Nesterov.
#[derive(Clone, Debug)]
pub struct MomentumSgd {
    momentum: Schedule,
    unit_gain: bool,
    nesterov: bool,
}

impl MomentumSgd {
    fn kernel(&mut self, ctx: &StepContext, _scalars: &mut [f64]) -> UpdateKernel {
        UpdateKernel::Momentum {
            mu: ctx.momentum(&self.momentum),
            eta: ctx.eta,
            unit_gain: self.unit_gain,
            nesterov: self.nesterov,
        }
    }
}

impl UpdateRule for MomentumSgd {
    fn name(&self) -> &str {
        if self.nesterov {
            "nesterov"
        } else {
            "momentum_sgd"
        }
    }
    fn buffers(&self) -> usize {
        1
    }
    fn adopt_minibatch_size(&mut self, m: Option<usize>) {
        self.momentum.adopt_minibatch_size(m);
    }
    fn reported_momentum(&self) -> Option<&Schedule> {
        Some(&self.momentum)
    }
    fn step(&mut self, ctx: &StepContext, scalars: &mut [f64]) -> RuleStep<'_> {
        RuleStep::Kernel(self.kernel(ctx, scalars))
    }
}

fn build(
    parameters: &[Variable],
    lr: Schedule,
    momentum: Schedule,
    unit_gain: bool,
    nesterov: bool,
    options: LearnerOptions,
) -> Result<StandardLearner> {
    let rule = MomentumSgd {
        momentum,
        unit_gain,
        nesterov,
    };
    check_momentum(rule.name(), "momentum", &rule.momentum)?;
    StandardLearner::new(parameters, lr, options, Box::new(rule))
}

/// CNTK's `momentum_sgd(parameters, lr, momentum, unit_gain, ...)`.
pub fn momentum_sgd(
    parameters: &[Variable],
    lr: Schedule,
    momentum: Schedule,
    unit_gain: bool,
    options: LearnerOptions,
) -> Result<StandardLearner> {
    build(parameters, lr, momentum, unit_gain, false, options)
}

/// CNTK's `nesterov(parameters, lr, momentum, unit_gain, ...)`.
pub fn nesterov(
    parameters: &[Variable],
    lr: Schedule,
    momentum: Schedule,
    unit_gain: bool,
    options: LearnerOptions,
) -> Result<StandardLearner> {
    build(parameters, lr, momentum, unit_gain, true, options)
}

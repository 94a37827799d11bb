//! Plain stochastic gradient descent: `p -= η·g`.

use super::{
    LearnerOptions, RuleStep, Schedule, StandardLearner, StepContext, UpdateKernel, UpdateRule,
};
use crate::error::Result;
use crate::graph::Variable;

/// The SGD update rule (no state).
#[derive(Clone, Debug, Default)]
pub struct Sgd;

impl Sgd {
    fn kernel(&mut self, ctx: &StepContext, _scalars: &mut [f64]) -> UpdateKernel {
        UpdateKernel::Sgd { eta: ctx.eta }
    }
}

impl UpdateRule for Sgd {
    fn name(&self) -> &str {
        "sgd"
    }
    fn buffers(&self) -> usize {
        0
    }
    fn step(&mut self, ctx: &StepContext, scalars: &mut [f64]) -> RuleStep<'_> {
        RuleStep::Kernel(self.kernel(ctx, scalars))
    }
}

/// CNTK's `sgd(parameters, lr, ...)`.
pub fn sgd(
    parameters: &[Variable],
    lr: Schedule,
    options: LearnerOptions,
) -> Result<StandardLearner> {
    StandardLearner::new(parameters, lr, options, Box::new(Sgd))
}

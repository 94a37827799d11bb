//! AdaGrad, with CNTK's optional "average multiplier" that rescales the step by the
//! mean inverse denominator (a 1-element parameter then moves exactly like SGD).

use super::{
    LearnerOptions, RuleStep, Schedule, StandardLearner, StepContext, UpdateKernel, UpdateRule,
};
use crate::error::Result;
use crate::graph::Variable;

/// The AdaGrad rule. Buffer: the running sum of squared gradients.
#[derive(Clone, Debug)]
pub struct AdaGrad {
    need_ave_multiplier: bool,
}

impl AdaGrad {
    fn kernel(&mut self, ctx: &StepContext, _scalars: &mut [f64]) -> UpdateKernel {
        UpdateKernel::AdaGrad {
            eta: ctx.eta,
            need_ave_multiplier: self.need_ave_multiplier,
        }
    }
}

impl UpdateRule for AdaGrad {
    fn name(&self) -> &str {
        "adagrad"
    }
    fn buffers(&self) -> usize {
        1
    }
    fn step(&mut self, ctx: &StepContext, scalars: &mut [f64]) -> RuleStep<'_> {
        RuleStep::Kernel(self.kernel(ctx, scalars))
    }
}

/// CNTK's `adagrad(parameters, lr, need_ave_multiplier, ...)`.
pub fn adagrad(
    parameters: &[Variable],
    lr: Schedule,
    need_ave_multiplier: bool,
    options: LearnerOptions,
) -> Result<StandardLearner> {
    StandardLearner::new(
        parameters,
        lr,
        options,
        Box::new(AdaGrad {
            need_ave_multiplier,
        }),
    )
}

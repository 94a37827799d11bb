//! AdaDelta: steps sized by the ratio of running RMS of past updates to running RMS of
//! gradients; ρ and ε are plain numbers (not scaled by N).

use super::{
    LearnerOptions, RuleStep, Schedule, StandardLearner, StepContext, UpdateKernel, UpdateRule,
};
use crate::error::{Error, Result};
use crate::graph::Variable;

/// The AdaDelta rule. Buffers: mean squared gradient `a`, mean squared update `x`.
#[derive(Clone, Debug)]
pub struct AdaDelta {
    rho: f64,
    epsilon: f64,
}

impl AdaDelta {
    fn kernel(&mut self, ctx: &StepContext, _scalars: &mut [f64]) -> UpdateKernel {
        UpdateKernel::AdaDelta {
            eta: ctx.eta,
            rho: self.rho,
            epsilon: self.epsilon,
        }
    }
}

impl UpdateRule for AdaDelta {
    fn name(&self) -> &str {
        "adadelta"
    }
    fn buffers(&self) -> usize {
        2
    }
    fn step(&mut self, ctx: &StepContext, scalars: &mut [f64]) -> RuleStep<'_> {
        RuleStep::Kernel(self.kernel(ctx, scalars))
    }
}

/// CNTK's `adadelta(parameters, lr, rho, epsilon, ...)`; CNTK's default lr is
/// `Schedule::constant(1.0).per_sample()`, rho 0.95, epsilon 1e-8.
pub fn adadelta(
    parameters: &[Variable],
    lr: Schedule,
    rho: f64,
    epsilon: f64,
    options: LearnerOptions,
) -> Result<StandardLearner> {
    if !(0.0..1.0).contains(&rho) {
        return Err(Error::invalid(
            "adadelta learner",
            format!("rho = {rho} is out of range: it must be in [0, 1)"),
        ));
    }
    if !(epsilon > 0.0 && epsilon.is_finite()) {
        return Err(Error::invalid(
            "adadelta learner",
            format!("epsilon = {epsilon} is out of range: it must be > 0 and finite"),
        ));
    }
    StandardLearner::new(parameters, lr, options, Box::new(AdaDelta { rho, epsilon }))
}

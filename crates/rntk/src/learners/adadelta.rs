//! AdaDelta: steps sized by the ratio of running RMS of past updates to running RMS of
//! gradients; ρ and ε are plain numbers (not scaled by N).

use super::{
    impl_apply_with_step, LearnerOptions, RuleState, Schedule, StandardLearner, StepContext,
    UpdateRule,
};
use crate::error::{Error, Result};
use crate::graph::Variable;
use crate::tensor::Element;

/// The AdaDelta rule. Buffers: mean squared gradient `a`, mean squared update `x`.
#[derive(Clone, Debug)]
pub struct AdaDelta {
    rho: f64,
    epsilon: f64,
}

impl AdaDelta {
    fn step<T: Element>(&mut self, ctx: &StepContext, p: &mut [T], g: &[T], s: &mut RuleState<T>) {
        let (rho, eps, eta) = (
            T::from_f64(self.rho),
            T::from_f64(self.epsilon),
            T::from_f64(ctx.eta),
        );
        let one_minus_rho = T::one() - rho;
        let (a, x) = s.buffers.split_at_mut(1);
        for (((pi, &gi), ai), xi) in p
            .iter_mut()
            .zip(g)
            .zip(a[0].iter_mut())
            .zip(x[0].iter_mut())
        {
            *ai = rho * *ai + one_minus_rho * gi * gi;
            let delta = -(*xi + eps).sqrt() / (*ai + eps).sqrt() * gi;
            *xi = rho * *xi + one_minus_rho * delta * delta;
            *pi += eta * delta;
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
    impl_apply_with_step!();
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

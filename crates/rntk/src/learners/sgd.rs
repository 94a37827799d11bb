//! Plain stochastic gradient descent: `p -= η·g`.

use super::{
    impl_apply_with_step, LearnerOptions, RuleState, Schedule, StandardLearner, StepContext,
    UpdateRule,
};
use crate::error::Result;
use crate::graph::Variable;
use crate::tensor::Element;

/// The SGD update rule (no state).
#[derive(Clone, Debug, Default)]
pub struct Sgd;

impl Sgd {
    fn step<T: Element>(&mut self, ctx: &StepContext, p: &mut [T], g: &[T], _s: &mut RuleState<T>) {
        let eta = T::from_f64(ctx.eta);
        for (pi, &gi) in p.iter_mut().zip(g) {
            *pi -= eta * gi;
        }
    }
}

impl UpdateRule for Sgd {
    fn name(&self) -> &str {
        "sgd"
    }
    fn buffers(&self) -> usize {
        0
    }
    impl_apply_with_step!();
}

/// CNTK's `sgd(parameters, lr, ...)`.
pub fn sgd(
    parameters: &[Variable],
    lr: Schedule,
    options: LearnerOptions,
) -> Result<StandardLearner> {
    StandardLearner::new(parameters, lr, options, Box::new(Sgd))
}

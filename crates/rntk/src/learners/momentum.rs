//! Momentum SGD and Nesterov: the learning rate is folded *into* the momentum buffer
//! (`v = μ·v + u·η·g`), which matters when the rate changes during training.

use super::{
    check_momentum, impl_apply_with_step, LearnerOptions, RuleState, Schedule, StandardLearner,
    StepContext, UpdateRule,
};
use crate::error::Result;
use crate::graph::Variable;
use crate::tensor::Element;

/// The momentum-SGD rule, classic or Nesterov.
#[derive(Clone, Debug)]
pub struct MomentumSgd {
    momentum: Schedule,
    unit_gain: bool,
    nesterov: bool,
}

impl MomentumSgd {
    fn step<T: Element>(&mut self, ctx: &StepContext, p: &mut [T], g: &[T], s: &mut RuleState<T>) {
        // Rounded like CNTK's float kernels: μ and η go to T first, the gain factor
        // and the combined rate are then formed in T.
        let mu = T::from_f64(ctx.momentum(&self.momentum));
        let unit = if self.unit_gain {
            T::one() - mu
        } else {
            T::one()
        };
        let alpha = unit * T::from_f64(ctx.eta);
        let v = &mut s.buffers[0];
        for ((pi, &gi), vi) in p.iter_mut().zip(g).zip(v.iter_mut()) {
            *vi = alpha * gi + mu * *vi;
            if self.nesterov {
                // two separate axpy passes in CNTK: p -= μ·v, then p -= α·g
                *pi += -mu * *vi;
                *pi += -alpha * gi;
            } else {
                *pi -= *vi;
            }
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
    impl_apply_with_step!();
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

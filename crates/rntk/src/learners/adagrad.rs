//! AdaGrad, with CNTK's optional "average multiplier" that rescales the step by the
//! mean inverse denominator (a 1-element parameter then moves exactly like SGD).

use super::{
    impl_apply_with_step, LearnerOptions, RuleState, Schedule, StandardLearner, StepContext,
    UpdateRule,
};
use crate::error::Result;
use crate::graph::Variable;
use crate::tensor::Element;

/// The AdaGrad rule. Buffer: the running sum of squared gradients.
#[derive(Clone, Debug)]
pub struct AdaGrad {
    need_ave_multiplier: bool,
}

impl AdaGrad {
    fn step<T: Element>(&mut self, ctx: &StepContext, p: &mut [T], g: &[T], s: &mut RuleState<T>) {
        let floor = T::from_f64(1e-16);
        let a = &mut s.buffers[0];
        let mut scaled = Vec::with_capacity(g.len());
        let mut inv_sum = T::zero();
        for (&gi, ai) in g.iter().zip(a.iter_mut()) {
            *ai += gi * gi;
            let d = (*ai + floor).sqrt();
            scaled.push(gi / d);
            inv_sum += T::one() / d;
        }
        let ave = if self.need_ave_multiplier && !g.is_empty() {
            inv_sum.as_f64() / g.len() as f64
        } else {
            1.0
        };
        let rate = T::from_f64(ctx.eta / ave);
        for (pi, gi) in p.iter_mut().zip(scaled) {
            *pi -= rate * gi;
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
    impl_apply_with_step!();
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

//! RMSProp as CNTK implements it: per-element adaptive step sizes (starting at 0.02)
//! that grow while the gradient keeps its sign and shrink when it flips.

use super::{
    impl_apply_with_step, LearnerOptions, RuleState, Schedule, StandardLearner, StepContext,
    UpdateRule,
};
use crate::error::{Error, Result};
use crate::graph::Variable;
use crate::tensor::Element;

/// RMSProp's constants (plain numbers: no schedule, no scaling with N).
#[derive(Clone, Debug, PartialEq)]
pub struct RmsPropOptions {
    pub gamma: f64,
    pub inc: f64,
    pub dec: f64,
    pub max: f64,
    pub min: f64,
    pub need_ave_multiplier: bool,
}

/// The RMSProp rule. Buffers: mean square, last gradient sign, step size.
/// Scalar: 1 once the buffers have been initialised from the first gradient.
#[derive(Clone, Debug)]
pub struct RmsProp {
    o: RmsPropOptions,
}

impl RmsProp {
    fn step<T: Element>(&mut self, ctx: &StepContext, p: &mut [T], g: &[T], s: &mut RuleState<T>) {
        let floor = T::from_f64(1e-6);
        let (gamma, inc, dec, max, min) = (
            T::from_f64(self.o.gamma),
            T::from_f64(self.o.inc),
            T::from_f64(self.o.dec),
            T::from_f64(self.o.max),
            T::from_f64(self.o.min),
        );
        let first = s.scalars[0] == 0.0;
        s.scalars[0] = 1.0;
        let [avars, signs, steps] = &mut s.buffers[..] else {
            return;
        };
        if first {
            // CNTK seeds the mean square with the first gradient, then still applies
            // the γ update below in this same step.
            for (((a, sg), st), &gi) in avars
                .iter_mut()
                .zip(signs.iter_mut())
                .zip(steps.iter_mut())
                .zip(g)
            {
                *a = gi * gi;
                *sg = T::zero();
                *st = T::from_f64(0.02);
            }
        }
        let one_minus_gamma = T::one() - gamma;
        let mut scaled = Vec::with_capacity(g.len());
        let mut ave_sum = T::zero();
        for (((&gi, a), sg), st) in g
            .iter()
            .zip(avars.iter_mut())
            .zip(signs.iter_mut())
            .zip(steps.iter_mut())
        {
            *a = gamma * *a + one_minus_gamma * (gi * gi);
            let sign = if gi > T::zero() {
                T::one()
            } else if gi < T::zero() {
                -T::one()
            } else {
                T::zero()
            };
            *st = if *sg * sign > T::zero() {
                (*st * inc).min(max)
            } else {
                (*st * dec).max(min)
            };
            let factor = *st / (*a + floor).sqrt();
            scaled.push(gi * factor);
            *sg = sign;
            ave_sum += factor;
        }
        let ave = if self.o.need_ave_multiplier && !g.is_empty() {
            ave_sum.as_f64() / g.len() as f64
        } else {
            1.0
        };
        let rate = T::from_f64(ctx.eta / ave);
        for (pi, gi) in p.iter_mut().zip(scaled) {
            *pi -= rate * gi;
        }
    }
}

impl UpdateRule for RmsProp {
    fn name(&self) -> &str {
        "rmsprop"
    }
    fn buffers(&self) -> usize {
        3
    }
    fn scalars(&self) -> usize {
        1
    }
    impl_apply_with_step!();
}

/// CNTK's `rmsprop(parameters, lr, gamma, inc, dec, max, min, need_ave_multiplier, ...)`.
pub fn rmsprop(
    parameters: &[Variable],
    lr: Schedule,
    o: RmsPropOptions,
    options: LearnerOptions,
) -> Result<StandardLearner> {
    let bad = |what: &str, v: f64, need: &str| {
        Err(Error::invalid(
            "rmsprop learner",
            format!("{what} = {v} is out of range: it must be {need}"),
        ))
    };
    if !(0.0..1.0).contains(&o.gamma) {
        return bad("gamma", o.gamma, "in [0, 1)");
    }
    if !(o.inc > 0.0 && o.inc.is_finite()) {
        return bad("inc", o.inc, "> 0 and finite");
    }
    if !(o.dec > 0.0 && o.dec.is_finite()) {
        return bad("dec", o.dec, "> 0 and finite");
    }
    if !(o.min > 0.0 && o.min.is_finite()) {
        return bad("min", o.min, "> 0 and finite");
    }
    if !(o.max >= o.min && o.max.is_finite()) {
        return bad("max", o.max, &format!(">= min ({}) and finite", o.min));
    }
    StandardLearner::new(parameters, lr, options, Box::new(RmsProp { o }))
}

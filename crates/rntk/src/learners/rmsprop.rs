//! RMSProp as CNTK implements it: per-element adaptive step sizes (starting at 0.02)
//! that grow while the gradient keeps its sign and shrink when it flips.

use super::{
    LearnerOptions, RuleStep, Schedule, StandardLearner, StepContext, UpdateKernel, UpdateRule,
};
use crate::error::{Error, Result};
use crate::graph::Variable;

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
    fn kernel(&mut self, ctx: &StepContext, scalars: &mut [f64]) -> UpdateKernel {
        // CNTK seeds the state on the first update.
        let first = scalars[0] == 0.0;
        scalars[0] = 1.0;
        UpdateKernel::RmsProp {
            eta: ctx.eta,
            gamma: self.o.gamma,
            inc: self.o.inc,
            dec: self.o.dec,
            max: self.o.max,
            min: self.o.min,
            need_ave_multiplier: self.o.need_ave_multiplier,
            first,
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
    fn step(&mut self, ctx: &StepContext, scalars: &mut [f64]) -> RuleStep<'_> {
        RuleStep::Kernel(self.kernel(ctx, scalars))
    }
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

//! Adam and AdaMax with CNTK's bias correction (current per-minibatch β's raised to t)
//! and ε added to the uncorrected `sqrt(v)`.

use super::{
    check_momentum, LearnerOptions, RuleStep, Schedule, StandardLearner, StepContext, UpdateKernel,
    UpdateRule,
};
use crate::error::{Error, Result};
use crate::graph::Variable;

/// CNTK's default variance momentum: per sample, `exp(-1/720000)`.
pub const DEFAULT_VARIANCE_MOMENTUM: f64 = 0.9999986111120757;

/// Adam's options beyond lr and momentum (β1).
#[derive(Clone, Debug)]
pub struct AdamOptions {
    pub unit_gain: bool,
    /// β2; default `DEFAULT_VARIANCE_MOMENTUM` per sample.
    pub variance_momentum: Schedule,
    pub epsilon: f64,
    pub adamax: bool,
    pub common: LearnerOptions,
}

impl Default for AdamOptions {
    fn default() -> Self {
        AdamOptions {
            unit_gain: true,
            variance_momentum: Schedule::constant(DEFAULT_VARIANCE_MOMENTUM).per_sample(),
            epsilon: 1e-8,
            adamax: false,
            common: LearnerOptions::default(),
        }
    }
}

/// The Adam / AdaMax rule. Buffers: first moment `m`, second moment `v`.
#[derive(Clone, Debug)]
pub struct Adam {
    momentum: Schedule,
    variance_momentum: Schedule,
    unit_gain: bool,
    epsilon: f64,
    adamax: bool,
}

impl Adam {
    fn kernel(&mut self, ctx: &StepContext) -> UpdateKernel {
        let mu = ctx.momentum(&self.momentum);
        let beta2 = ctx.momentum(&self.variance_momentum);
        let t = ctx.update_count as f64;
        // The correction is formed in double from the current β's; the element loop
        // runs in T with β2 rounded to T first (CNTK's float kernel does the same).
        let k = if self.adamax {
            1.0 / (1.0 - mu.powf(t))
        } else {
            (1.0 - beta2.powf(t)).sqrt() / (1.0 - mu.powf(t))
        };
        UpdateKernel::Adam {
            mu,
            beta2,
            step: ctx.eta * k,
            epsilon: self.epsilon,
            unit_gain: self.unit_gain,
            adamax: self.adamax,
        }
    }
}

impl UpdateRule for Adam {
    fn name(&self) -> &str {
        if self.adamax {
            "adamax"
        } else {
            "adam"
        }
    }
    fn buffers(&self) -> usize {
        2
    }
    fn adopt_minibatch_size(&mut self, m: Option<usize>) {
        self.momentum.adopt_minibatch_size(m);
        self.variance_momentum.adopt_minibatch_size(m);
    }
    fn step(&mut self, ctx: &StepContext, _scalars: &mut [f64]) -> RuleStep<'_> {
        RuleStep::Kernel(self.kernel(ctx))
    }
}

/// CNTK's `adam(parameters, lr, momentum, ...)` (set `options.adamax` for AdaMax).
pub fn adam(
    parameters: &[Variable],
    lr: Schedule,
    momentum: Schedule,
    options: AdamOptions,
) -> Result<StandardLearner> {
    let rule = Adam {
        momentum,
        variance_momentum: options.variance_momentum,
        unit_gain: options.unit_gain,
        epsilon: options.epsilon,
        adamax: options.adamax,
    };
    let name = rule.name().to_string();
    check_momentum(&name, "momentum", &rule.momentum)?;
    check_momentum(&name, "variance_momentum", &rule.variance_momentum)?;
    if !(rule.epsilon >= 0.0 && rule.epsilon.is_finite()) {
        return Err(Error::invalid(
            format!("{name} learner"),
            format!(
                "epsilon = {} is out of range: it must be >= 0 and finite",
                rule.epsilon
            ),
        ));
    }
    StandardLearner::new(parameters, lr, options.common, Box::new(rule))
}

//! FSAdaGrad: AdaGrad with a decaying variance and a smoothed sample count, followed by
//! momentum (CNTK's "frame-synchronous" AdaGrad).

use super::adam::DEFAULT_VARIANCE_MOMENTUM;
use super::{
    check_momentum, LearnerOptions, RuleStep, Schedule, StandardLearner, StepContext, UpdateKernel,
    UpdateRule,
};
use crate::error::Result;
use crate::graph::Variable;

/// FSAdaGrad's options beyond lr and momentum.
#[derive(Clone, Debug)]
pub struct FsAdaGradOptions {
    pub unit_gain: bool,
    /// β2; default `0.9999986111120757` per sample.
    pub variance_momentum: Schedule,
    pub common: LearnerOptions,
}

impl Default for FsAdaGradOptions {
    fn default() -> Self {
        FsAdaGradOptions {
            unit_gain: true,
            variance_momentum: Schedule::constant(DEFAULT_VARIANCE_MOMENTUM).per_sample(),
            common: LearnerOptions::default(),
        }
    }
}

/// The FSAdaGrad rule. Buffers: variance `v`, momentum `r`. Scalar: the smoothed
/// sample count n̄ (kept in double, as CNTK does).
#[derive(Clone, Debug)]
pub struct FsAdaGrad {
    momentum: Schedule,
    variance_momentum: Schedule,
    unit_gain: bool,
}

impl FsAdaGrad {
    fn kernel(&mut self, ctx: &StepContext, scalars: &mut [f64]) -> UpdateKernel {
        let mu = ctx.momentum(&self.momentum);
        let beta2 = ctx.momentum(&self.variance_momentum);
        let n = ctx.sample_count as f64;
        // the smoothed sample count, kept in double as CNTK does
        scalars[0] = beta2 * scalars[0] + (1.0 - beta2) * n;
        UpdateKernel::FsAdaGrad {
            eta: ctx.eta,
            mu,
            beta2,
            target: scalars[0].sqrt(),
            unit_gain: self.unit_gain,
        }
    }
}

impl UpdateRule for FsAdaGrad {
    fn name(&self) -> &str {
        "fsadagrad"
    }
    fn buffers(&self) -> usize {
        2
    }
    fn scalars(&self) -> usize {
        1
    }
    fn adopt_minibatch_size(&mut self, m: Option<usize>) {
        self.momentum.adopt_minibatch_size(m);
        self.variance_momentum.adopt_minibatch_size(m);
    }
    fn step(&mut self, ctx: &StepContext, scalars: &mut [f64]) -> RuleStep<'_> {
        RuleStep::Kernel(self.kernel(ctx, scalars))
    }
}

/// CNTK's `fsadagrad(parameters, lr, momentum, ...)`.
pub fn fsadagrad(
    parameters: &[Variable],
    lr: Schedule,
    momentum: Schedule,
    options: FsAdaGradOptions,
) -> Result<StandardLearner> {
    let rule = FsAdaGrad {
        momentum,
        variance_momentum: options.variance_momentum,
        unit_gain: options.unit_gain,
    };
    check_momentum("fsadagrad", "momentum", &rule.momentum)?;
    check_momentum("fsadagrad", "variance_momentum", &rule.variance_momentum)?;
    StandardLearner::new(parameters, lr, options.common, Box::new(rule))
}

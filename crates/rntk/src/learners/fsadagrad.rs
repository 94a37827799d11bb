//! FSAdaGrad: AdaGrad with a decaying variance and a smoothed sample count, followed by
//! momentum (CNTK's "frame-synchronous" AdaGrad).

use super::adam::DEFAULT_VARIANCE_MOMENTUM;
use super::{
    check_momentum, impl_apply_with_step, LearnerOptions, RuleState, Schedule, StandardLearner,
    StepContext, UpdateRule,
};
use crate::error::Result;
use crate::graph::Variable;
use crate::tensor::Element;

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
    fn step<T: Element>(&mut self, ctx: &StepContext, p: &mut [T], g: &[T], s: &mut RuleState<T>) {
        let mu = ctx.momentum(&self.momentum);
        let beta2 = ctx.momentum(&self.variance_momentum);
        let n = ctx.sample_count as f64;
        s.scalars[0] = beta2 * s.scalars[0] + (1.0 - beta2) * n;
        let target = T::from_f64(s.scalars[0].sqrt());
        let unit = if self.unit_gain {
            T::one() - T::from_f64(mu)
        } else {
            T::one()
        };
        let use_momentum = mu > 0.0;
        let (mu, b2, eta) = (T::from_f64(mu), T::from_f64(beta2), T::from_f64(ctx.eta));
        let one_minus_b2 = T::one() - b2;
        let cap = T::from_f64(10.0);
        let (v, r) = s.buffers.split_at_mut(1);
        for (((pi, &gi), vi), ri) in p
            .iter_mut()
            .zip(g)
            .zip(v[0].iter_mut())
            .zip(r[0].iter_mut())
        {
            *vi = b2 * *vi + one_minus_b2 * gi * gi;
            let mut h = gi;
            if *vi != T::zero() {
                let w = (target * (T::one() / vi.sqrt())).min(cap);
                h *= w;
            }
            if use_momentum {
                *ri = mu * *ri + unit * h;
                h = *ri;
            }
            *pi -= eta * h;
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
    impl_apply_with_step!();
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

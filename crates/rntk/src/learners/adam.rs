//! Adam and AdaMax with CNTK's bias correction (current per-minibatch β's raised to t)
//! and ε added to the uncorrected `sqrt(v)`.

use super::{
    check_momentum, impl_apply_with_step, LearnerOptions, RuleState, Schedule, StandardLearner,
    StepContext, UpdateRule,
};
use crate::error::{Error, Result};
use crate::graph::Variable;
use crate::tensor::Element;

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
    fn step<T: Element>(&mut self, ctx: &StepContext, p: &mut [T], g: &[T], s: &mut RuleState<T>) {
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
        let unit = if self.unit_gain {
            T::one() - T::from_f64(mu)
        } else {
            T::one()
        };
        let (mu, b2) = (T::from_f64(mu), T::from_f64(beta2));
        let e = Elem {
            adamax: self.adamax,
            mu,
            b2,
            one_minus_b2: T::one() - b2,
            unit,
            step: T::from_f64(ctx.eta * k),
            eps: T::from_f64(self.epsilon),
        };
        let (m, v) = s.buffers.split_at_mut(1);
        let (m, v) = (&mut m[0][..], &mut v[0][..]);
        // Each element is independent: large parameters (an embedding table) are split
        // between the threads, the same arithmetic for every element either way.
        const CHUNK: usize = 1 << 14;
        if p.len() >= 4 * CHUNK && crate::backend::cpu::two_threads() {
            use rayon::prelude::*;
            p.par_chunks_mut(CHUNK)
                .zip(g.par_chunks(CHUNK))
                .zip(m.par_chunks_mut(CHUNK))
                .zip(v.par_chunks_mut(CHUNK))
                .for_each(|(((p, g), m), v)| e.run(p, g, m, v));
        } else {
            e.run(p, g, m, v);
        }
    }
}

/// The per-element constants of one Adam update.
#[derive(Clone, Copy)]
struct Elem<T> {
    adamax: bool,
    mu: T,
    b2: T,
    one_minus_b2: T,
    unit: T,
    step: T,
    eps: T,
}

impl<T: Element> Elem<T> {
    /// Compiled for the widest vector unit the CPU has (sqrt, division, multiply and add
    /// round the same at every width, so every level gives the same bits).
    fn run(&self, p: &mut [T], g: &[T], m: &mut [T], v: &mut [T]) {
        #[cfg(target_arch = "x86_64")]
        {
            use crate::backend::cpu::{simd_level, SimdLevel};
            if simd_level() == SimdLevel::Avx512 {
                // SAFETY: AVX-512F was detected (simd_level never reports more).
                return unsafe { self.run_avx512(p, g, m, v) };
            }
        }
        self.body(p, g, m, v)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn run_avx512(&self, p: &mut [T], g: &[T], m: &mut [T], v: &mut [T]) {
        self.body(p, g, m, v)
    }

    #[inline(always)]
    fn body(&self, p: &mut [T], g: &[T], m: &mut [T], v: &mut [T]) {
        let Elem {
            adamax,
            mu,
            b2,
            one_minus_b2,
            unit,
            step,
            eps,
        } = *self;
        for (((pi, &gi), mi), vi) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            let denom = if adamax {
                *vi = (b2 * *vi).max(gi.abs());
                *vi + eps
            } else {
                *vi = b2 * *vi + one_minus_b2 * gi * gi;
                vi.sqrt() + eps
            };
            *mi = mu * *mi + unit * gi;
            // CNTK forms the per-element rate first: w = step·(1/denom), then p -= w·m.
            let w = step * (T::one() / denom);
            *pi -= w * *mi;
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
    impl_apply_with_step!();
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

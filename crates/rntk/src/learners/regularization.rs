//! The steps every learner runs around its own rule: gradient clipping and L2 before
//! the update, proximal L1 after it (CNTK's LearnerBase pre/post-processing).

use crate::error::{Error, Result};
use crate::tensor::Element;

/// Options shared by all built-in learners (CNTK's `AdditionalLearningOptions` plus the
/// learner-level `minibatch_size`).
#[derive(Clone, Debug, PartialEq)]
pub struct LearnerOptions {
    /// L1 weight per sample: after the update `p = sign(p)·max(|p| − η·l1·N, 0)`.
    pub l1_regularization_weight: f64,
    /// L2 weight per sample: before the update `g += l2·N·p`.
    pub l2_regularization_weight: f64,
    /// Clipping threshold per sample (`τ = c·N`); infinity disables clipping.
    pub gradient_clipping_threshold_per_sample: f64,
    /// `true`: clamp each element to `[−τ, τ]`; `false`: rescale `g` to Frobenius norm `τ`.
    pub gradient_clipping_with_truncation: bool,
    /// Reference minibatch size for every schedule of the learner that did not set one.
    pub minibatch_size: Option<usize>,
    /// Must stay 0: noise injection is not implemented (CNTK draws it from its own RNG).
    pub gaussian_noise_injection_std_dev: f64,
}

impl Default for LearnerOptions {
    fn default() -> Self {
        LearnerOptions {
            l1_regularization_weight: 0.0,
            l2_regularization_weight: 0.0,
            gradient_clipping_threshold_per_sample: f64::INFINITY,
            gradient_clipping_with_truncation: true,
            minibatch_size: None,
            gaussian_noise_injection_std_dev: 0.0,
        }
    }
}

impl LearnerOptions {
    /// Refuse values no training run can mean; `learner` names the learner in errors.
    pub(crate) fn validate(&self, learner: &str) -> Result<()> {
        let bad = |what: &str, v: f64, need: &str| {
            Err(Error::invalid(
                format!("{learner} learner"),
                format!("{what} = {v} is out of range: it must be {need}"),
            ))
        };
        if !(self.l1_regularization_weight >= 0.0 && self.l1_regularization_weight.is_finite()) {
            return bad(
                "l1_regularization_weight",
                self.l1_regularization_weight,
                ">= 0 and finite",
            );
        }
        if !(self.l2_regularization_weight >= 0.0 && self.l2_regularization_weight.is_finite()) {
            return bad(
                "l2_regularization_weight",
                self.l2_regularization_weight,
                ">= 0 and finite",
            );
        }
        let c = self.gradient_clipping_threshold_per_sample;
        if c.is_nan() || c <= 0.0 {
            return bad(
                "gradient_clipping_threshold_per_sample",
                self.gradient_clipping_threshold_per_sample,
                "> 0 (use f64::INFINITY for no clipping)",
            );
        }
        if self.gaussian_noise_injection_std_dev != 0.0 {
            return Err(Error::Unsupported(format!(
                "{learner} learner: gaussian_noise_injection_std_dev = {} (only 0 is implemented)",
                self.gaussian_noise_injection_std_dev
            )));
        }
        Ok(())
    }
}

/// Clip a summed gradient of a minibatch of `n` samples to `threshold_per_sample·n`.
pub fn clip_gradient<T: Element>(
    g: &mut [T],
    threshold_per_sample: f64,
    truncation: bool,
    n: usize,
) {
    if threshold_per_sample == f64::INFINITY {
        return;
    }
    let tau = threshold_per_sample * n as f64;
    if truncation {
        let t = T::from_f64(tau);
        for x in g.iter_mut() {
            // clamp, keeping NaN as NaN like CNTK's truncate
            if *x > t {
                *x = t;
            } else if *x < -t {
                *x = -t;
            }
        }
    } else {
        let norm = g.iter().fold(T::zero(), |a, &x| a + x * x).sqrt().as_f64();
        if norm > tau {
            let f = T::from_f64(tau / norm);
            g.iter_mut().for_each(|x| *x *= f);
        }
    }
}

/// `g += weight_per_sample·n·p`.
pub fn add_l2<T: Element>(g: &mut [T], p: &[T], weight_per_sample: f64, n: usize) {
    if weight_per_sample > 0.0 {
        let w = T::from_f64(weight_per_sample * n as f64);
        for (gi, &pi) in g.iter_mut().zip(p) {
            *gi += w * pi;
        }
    }
}

/// Proximal L1 step: shrink every element towards 0 by `eta·weight_per_sample·n`.
pub fn l1_soft_threshold<T: Element>(p: &mut [T], eta: f64, weight_per_sample: f64, n: usize) {
    if weight_per_sample > 0.0 {
        let w = T::from_f64(eta * weight_per_sample * n as f64);
        for x in p.iter_mut() {
            *x = if *x > w {
                *x - w
            } else if *x < -w {
                *x + w
            } else {
                T::zero()
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_scales_with_the_sample_count() {
        let mut g = vec![5.0f64, -5.0, 0.5];
        clip_gradient(&mut g, 1.0, true, 2);
        assert_eq!(g, vec![2.0, -2.0, 0.5]);
    }

    #[test]
    fn norm_clipping_keeps_the_direction() {
        let mut g = vec![3.0f64, 4.0];
        clip_gradient(&mut g, 1.0, false, 1);
        assert!((g[0] - 0.6).abs() < 1e-15 && (g[1] - 0.8).abs() < 1e-15);
    }

    #[test]
    fn soft_threshold_snaps_small_values_to_zero() {
        let mut p = vec![0.5f32, -0.5, 0.05];
        l1_soft_threshold(&mut p, 0.1, 0.5, 2);
        assert_eq!(p, vec![0.4, -0.4, 0.0]);
    }
}

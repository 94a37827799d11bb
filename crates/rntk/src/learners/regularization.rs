//! The steps every learner runs around its own rule: gradient clipping and L2 before
//! the update, proximal L1 after it (CNTK's LearnerBase pre/post-processing). The
//! options live here; the arithmetic is the backend's learner-update kernel (the
//! CPU's host-slice functions are re-exported below).

use crate::error::{Error, Result};

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

pub use crate::backend::cpu::update::{add_l2, clip_gradient, l1_soft_threshold};

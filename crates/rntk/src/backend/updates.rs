//! Learner updates as kernels: one call per parameter runs CNTK's whole pipeline —
//! clipping and L2 on the gradient, the rule's element-wise step on the parameter and
//! its state buffers, then proximal L1 — on the device where the parameter lives.
//! The rule's per-step constants are computed on the host (they depend on schedules
//! and counters, not on data) and travel in [`UpdateKernel`].

use super::memory::{Memory, Par};
use crate::tensor::Element;

/// The element-wise step of a built-in rule with this update's constants (f64; each
/// kernel rounds them to the element type as CNTK's float kernels do).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UpdateKernel {
    /// `p -= η·g`.
    Sgd { eta: f64 },
    /// `v = α·g + μ·v; p -= v` (nesterov: `p -= μ·v; p -= α·g`), `α = (1 − μ)·η` with
    /// unit gain, else `η`. State: `[v]`.
    Momentum {
        mu: f64,
        eta: f64,
        unit_gain: bool,
        nesterov: bool,
    },
    /// State: `[Σ g²]`.
    AdaGrad { eta: f64, need_ave_multiplier: bool },
    /// State: `[mean square, last sign, step]`; `first` seeds them.
    RmsProp {
        eta: f64,
        gamma: f64,
        inc: f64,
        dec: f64,
        max: f64,
        min: f64,
        need_ave_multiplier: bool,
        first: bool,
    },
    /// State: `[variance, momentum]`; `target` is √(smoothed sample count).
    FsAdaGrad {
        eta: f64,
        mu: f64,
        beta2: f64,
        target: f64,
        unit_gain: bool,
    },
    /// State: `[mean square gradient, mean square step]`.
    AdaDelta { eta: f64, rho: f64, epsilon: f64 },
    /// State: `[m, v]`; `step` is η times the bias correction.
    Adam {
        mu: f64,
        beta2: f64,
        step: f64,
        epsilon: f64,
        unit_gain: bool,
        adamax: bool,
    },
}

impl UpdateKernel {
    /// Parameter-shaped state buffers the step reads and writes.
    pub fn buffers(&self) -> usize {
        match self {
            UpdateKernel::Sgd { .. } => 0,
            UpdateKernel::Momentum { .. } | UpdateKernel::AdaGrad { .. } => 1,
            UpdateKernel::RmsProp { .. } => 3,
            UpdateKernel::FsAdaGrad { .. }
            | UpdateKernel::AdaDelta { .. }
            | UpdateKernel::Adam { .. } => 2,
        }
    }
}

/// One parameter's update: CNTK's LearnerBase pipeline around the rule's step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LearnerStep {
    /// Samples of the minibatch (N).
    pub samples: usize,
    /// Clip threshold per sample (∞: none); truncation clamps each element to `±c·N`,
    /// otherwise the gradient is rescaled to Frobenius norm `c·N`.
    pub clip_per_sample: f64,
    pub clip_truncation: bool,
    /// L2 weight per sample: `g += l2·N·p` before the step.
    pub l2_per_sample: f64,
    /// L1 weight per sample: after the step `p = sign(p)·max(|p| − η·l1·N, 0)`.
    pub l1_per_sample: f64,
    /// The rate of the L1 step.
    pub eta: f64,
    pub rule: UpdateKernel,
}

/// Learner-update kernels.
pub trait Updates: Memory {
    /// Run `s` on parameter `p` with gradient `g` (left unchanged; clipping and L2
    /// work on a copy in `scratch`) and the rule's `state` buffers.
    fn learner_step<T: Element>(
        &self,
        s: &LearnerStep,
        p: Self::Mut<'_, T>,
        g: Self::Ref<'_, T>,
        state: &mut [Self::Buf<T>],
        scratch: &mut Self::Buf<T>,
        par: Par,
    );
}

//! `Updates` on the CPU: CNTK's learner pipeline (clip → L2 → rule → L1) over host
//! slices, each rule's element loop rounded as CNTK's float kernels round (constants
//! to the element type first), Adam compiled for AVX-512 where present and large
//! parameters split between the pool's threads (the same bits).

use super::par::UPDATE_CHUNK;
use super::Cpu;
use crate::backend::updates::{LearnerStep, UpdateKernel, Updates};
use crate::backend::Par;
use crate::tensor::Element;

/// Clip a summed gradient of a minibatch of `n` samples to `threshold_per_sample·n`:
/// element-wise with `truncation`, else by rescaling to that Frobenius norm.
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

/// Clip and L2 on a copy of the gradient in `buf`; the gradient itself when neither
/// applies. Truncation clips while copying (one pass).
fn preprocess<'a, T: Element>(
    s: &LearnerStep,
    p: &[T],
    g: &'a [T],
    buf: &'a mut Vec<T>,
) -> &'a [T] {
    let (threshold, n) = (s.clip_per_sample, s.samples);
    let clip = threshold != f64::INFINITY;
    if !clip && s.l2_per_sample <= 0.0 {
        return g;
    }
    buf.clear();
    if clip && s.clip_truncation {
        // clip_gradient's clamp (NaN stays NaN), fused with the copy
        let t = T::from_f64(threshold * n as f64);
        buf.extend(g.iter().map(|&x| {
            if x > t {
                t
            } else if x < -t {
                -t
            } else {
                x
            }
        }));
    } else {
        buf.extend_from_slice(g);
        clip_gradient(buf, threshold, s.clip_truncation, n);
    }
    add_l2(buf, p, s.l2_per_sample, n);
    buf
}

fn sgd<T: Element>(eta: f64, p: &mut [T], g: &[T]) {
    let eta = T::from_f64(eta);
    for (pi, &gi) in p.iter_mut().zip(g) {
        *pi -= eta * gi;
    }
}

fn momentum<T: Element>(k: &UpdateKernel, p: &mut [T], g: &[T], v: &mut [T]) {
    let UpdateKernel::Momentum {
        mu,
        eta,
        unit_gain,
        nesterov,
    } = *k
    else {
        return;
    };
    // Rounded like CNTK's float kernels: μ and η go to T first, the gain factor and
    // the combined rate are then formed in T.
    let mu = T::from_f64(mu);
    let unit = if unit_gain { T::one() - mu } else { T::one() };
    let alpha = unit * T::from_f64(eta);
    for ((pi, &gi), vi) in p.iter_mut().zip(g).zip(v.iter_mut()) {
        *vi = alpha * gi + mu * *vi;
        if nesterov {
            // two separate axpy passes in CNTK: p -= μ·v, then p -= α·g
            *pi += -mu * *vi;
            *pi += -alpha * gi;
        } else {
            *pi -= *vi;
        }
    }
}

fn adagrad<T: Element>(eta: f64, need_ave: bool, p: &mut [T], g: &[T], a: &mut [T]) {
    let floor = T::from_f64(1e-16);
    let mut scaled = Vec::with_capacity(g.len());
    let mut inv_sum = T::zero();
    for (&gi, ai) in g.iter().zip(a.iter_mut()) {
        *ai += gi * gi;
        let d = (*ai + floor).sqrt();
        scaled.push(gi / d);
        inv_sum += T::one() / d;
    }
    let ave = if need_ave && !g.is_empty() {
        inv_sum.as_f64() / g.len() as f64
    } else {
        1.0
    };
    let rate = T::from_f64(eta / ave);
    for (pi, gi) in p.iter_mut().zip(scaled) {
        *pi -= rate * gi;
    }
}

fn rmsprop<T: Element>(k: &UpdateKernel, p: &mut [T], g: &[T], state: &mut [Vec<T>]) {
    let UpdateKernel::RmsProp {
        eta,
        gamma,
        inc,
        dec,
        max,
        min,
        need_ave_multiplier,
        first,
    } = *k
    else {
        return;
    };
    let floor = T::from_f64(1e-6);
    let (gamma, inc, dec, max, min) = (
        T::from_f64(gamma),
        T::from_f64(inc),
        T::from_f64(dec),
        T::from_f64(max),
        T::from_f64(min),
    );
    let [avars, signs, steps] = state else {
        return;
    };
    if first {
        // CNTK seeds the mean square with the first gradient, then still applies the
        // γ update below in this same step.
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
    let ave = if need_ave_multiplier && !g.is_empty() {
        ave_sum.as_f64() / g.len() as f64
    } else {
        1.0
    };
    let rate = T::from_f64(eta / ave);
    for (pi, gi) in p.iter_mut().zip(scaled) {
        *pi -= rate * gi;
    }
}

fn fsadagrad<T: Element>(k: &UpdateKernel, p: &mut [T], g: &[T], v: &mut [T], r: &mut [T]) {
    let UpdateKernel::FsAdaGrad {
        eta,
        mu,
        beta2,
        target,
        unit_gain,
    } = *k
    else {
        return;
    };
    let target = T::from_f64(target);
    let unit = if unit_gain {
        T::one() - T::from_f64(mu)
    } else {
        T::one()
    };
    let use_momentum = mu > 0.0;
    let (mu, b2, eta) = (T::from_f64(mu), T::from_f64(beta2), T::from_f64(eta));
    let one_minus_b2 = T::one() - b2;
    let cap = T::from_f64(10.0);
    for (((pi, &gi), vi), ri) in p.iter_mut().zip(g).zip(v.iter_mut()).zip(r.iter_mut()) {
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

fn adadelta<T: Element>(k: &UpdateKernel, p: &mut [T], g: &[T], a: &mut [T], x: &mut [T]) {
    let UpdateKernel::AdaDelta { eta, rho, epsilon } = *k else {
        return;
    };
    let (rho, eps, eta) = (T::from_f64(rho), T::from_f64(epsilon), T::from_f64(eta));
    let one_minus_rho = T::one() - rho;
    for (((pi, &gi), ai), xi) in p.iter_mut().zip(g).zip(a.iter_mut()).zip(x.iter_mut()) {
        *ai = rho * *ai + one_minus_rho * gi * gi;
        let delta = -(*xi + eps).sqrt() / (*ai + eps).sqrt() * gi;
        *xi = rho * *xi + one_minus_rho * delta * delta;
        *pi += eta * delta;
    }
}

/// The per-element constants of one Adam update.
#[derive(Clone, Copy)]
struct Adam<T> {
    adamax: bool,
    mu: T,
    b2: T,
    one_minus_b2: T,
    unit: T,
    step: T,
    eps: T,
}

impl<T: Element> Adam<T> {
    fn new(k: &UpdateKernel) -> Option<Self> {
        let UpdateKernel::Adam {
            mu,
            beta2,
            step,
            epsilon,
            unit_gain,
            adamax,
        } = *k
        else {
            return None;
        };
        // The correction was formed in double from the current β's; the element loop
        // runs in T with β2 rounded to T first (CNTK's float kernel does the same).
        let unit = if unit_gain {
            T::one() - T::from_f64(mu)
        } else {
            T::one()
        };
        let (mu, b2) = (T::from_f64(mu), T::from_f64(beta2));
        Some(Adam {
            adamax,
            mu,
            b2,
            one_minus_b2: T::one() - b2,
            unit,
            step: T::from_f64(step),
            eps: T::from_f64(epsilon),
        })
    }

    /// Each element is independent: large parameters (an embedding table) are split
    /// between the threads, the same arithmetic for every element either way.
    fn update(&self, p: &mut [T], g: &[T], (m, v): (&mut [T], &mut [T]), par: Par) {
        if p.len() >= 4 * UPDATE_CHUNK && par.is_parallel() {
            use rayon::prelude::*;
            p.par_chunks_mut(UPDATE_CHUNK)
                .zip(g.par_chunks(UPDATE_CHUNK))
                .zip(m.par_chunks_mut(UPDATE_CHUNK))
                .zip(v.par_chunks_mut(UPDATE_CHUNK))
                .for_each(|(((p, g), m), v)| self.run(p, g, m, v));
        } else {
            self.run(p, g, m, v);
        }
    }

    /// Compiled for the widest vector unit the CPU has (sqrt, division, multiply and
    /// add round the same at every width, so every level gives the same bits).
    fn run(&self, p: &mut [T], g: &[T], m: &mut [T], v: &mut [T]) {
        #[cfg(target_arch = "x86_64")]
        {
            use super::{simd_level, SimdLevel};
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
        let Adam {
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

/// The rule's element-wise step on host slices.
pub fn rule_step<T: Element>(
    k: &UpdateKernel,
    p: &mut [T],
    g: &[T],
    state: &mut [Vec<T>],
    par: Par,
) {
    match (k, state) {
        (UpdateKernel::Sgd { eta }, _) => sgd(*eta, p, g),
        (UpdateKernel::Momentum { .. }, [v]) => momentum(k, p, g, v),
        (
            UpdateKernel::AdaGrad {
                eta,
                need_ave_multiplier,
            },
            [a],
        ) => adagrad(*eta, *need_ave_multiplier, p, g, a),
        (UpdateKernel::RmsProp { .. }, state) => rmsprop(k, p, g, state),
        (UpdateKernel::FsAdaGrad { .. }, [v, r]) => fsadagrad(k, p, g, v, r),
        (UpdateKernel::AdaDelta { .. }, [a, x]) => adadelta(k, p, g, a, x),
        (UpdateKernel::Adam { .. }, [m, v]) => {
            if let Some(a) = Adam::new(k) {
                a.update(p, g, (m, v), par);
            }
        }
        (k, s) => panic!(
            "update kernel {k:?} needs {} state buffers, got {}",
            k.buffers(),
            s.len()
        ),
    }
}

impl Updates for Cpu {
    fn learner_step<T: Element>(
        &self,
        s: &LearnerStep,
        p: &mut [T],
        g: &[T],
        state: &mut [Vec<T>],
        scratch: &mut Vec<T>,
        par: Par,
    ) {
        let g = preprocess(s, p, g, scratch);
        rule_step(&s.rule, p, g, state, par);
        l1_soft_threshold(p, s.eta, s.l1_per_sample, s.samples);
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

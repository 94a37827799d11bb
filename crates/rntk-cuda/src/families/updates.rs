//! `Updates` on the GPU: CNTK's pipeline on the device — clipping (truncation, or the
//! Frobenius norm summed in f64 on the device) and L2 into the scratch buffer, the
//! rule's element-wise step (SGD, momentum/Nesterov, Adam/Adamax as kernels; AdaGrad,
//! RMSProp, FSAdaGrad and AdaDelta on the host path for now), then proximal L1.

use super::{flag, p, pm, u};
use crate::device::{Cuda, KArg};
use crate::memory::{dev_ptr, CMut, CRef, CudaBuf};
use rntk::backend::updates::{LearnerStep, UpdateKernel, Updates};
use rntk::backend::{Cpu, Elementwise, Memory, Par};
use rntk::tensor::Element;

impl Cuda {
    /// Clip and L2 into `scratch` (the gradient itself when neither applies).
    fn preprocess<'a, T: Element>(
        &self,
        s: &LearnerStep,
        pv: CRef<'_, T>,
        g: CRef<'a, T>,
        scratch: &'a mut CudaBuf<T>,
    ) -> CRef<'a, T> {
        let clip = s.clip_per_sample != f64::INFINITY;
        if !clip && s.l2_per_sample <= 0.0 {
            return g;
        }
        let len = g.len;
        self.resize(scratch, len);
        let buf = Cuda::view_mut(scratch);
        let tau = s.clip_per_sample * s.samples as f64;
        if clip && s.clip_truncation {
            self.launch::<T>(
                "clip_truncate",
                len,
                &[p(g), pm(&buf), u(len), KArg::F(tau)],
            );
        } else {
            self.copy(g, CMut::from_raw(buf.ptr, len));
            if clip {
                let acc = self.alloc_zeros::<f64>(1).unwrap_or_else(|_| {
                    crate::device::fault("allocating", "a norm accumulator (out of GPU memory)")
                });
                let ap = dev_ptr(&acc, self);
                self.launch::<T>("sum_squares", len, &[pm(&buf), u(len), KArg::U(ap)]);
                self.launch::<T>(
                    "clip_norm",
                    len,
                    &[pm(&buf), u(len), KArg::U(ap), KArg::F(tau)],
                );
            }
        }
        if s.l2_per_sample > 0.0 {
            let w = s.l2_per_sample * s.samples as f64;
            self.launch::<T>("axpy", len, &[pm(&buf), p(pv), u(len), KArg::F(w)]);
        }
        Cuda::view(scratch)
    }

    /// The rule's step on the host (rules without a kernel yet).
    fn rule_on_host<T: Element>(
        &self,
        s: &LearnerStep,
        pm_: CMut<'_, T>,
        g: CRef<'_, T>,
        state: &mut [CudaBuf<T>],
    ) {
        self.on_host("learner rule (AdaGrad/RMSProp/FSAdaGrad/AdaDelta)");
        let only_rule = LearnerStep {
            clip_per_sample: f64::INFINITY,
            l2_per_sample: 0.0,
            l1_per_sample: 0.0,
            ..*s
        };
        let mut hp = self.fetch_mut(&pm_);
        let hg = self.fetch(g);
        let mut hs: Vec<Vec<T>> = state.iter().map(|b| self.fetch_buf(b)).collect();
        Cpu.learner_step(&only_rule, &mut hp, &hg, &mut hs, &mut Vec::new(), Par::Seq);
        self.put(&hp, pm_);
        for (b, v) in state.iter_mut().zip(&hs) {
            self.put_buf(v, b);
        }
    }
}

impl Updates for Cuda {
    fn learner_step<T: Element>(
        &self,
        s: &LearnerStep,
        pv: CMut<'_, T>,
        g: CRef<'_, T>,
        state: &mut [CudaBuf<T>],
        scratch: &mut CudaBuf<T>,
        _par: Par,
    ) {
        let n = pv.len;
        for b in state.iter_mut() {
            if Cuda::len(b) != n {
                self.resize(b, n);
            }
        }
        let g = self.preprocess(s, Cuda::freeze(&pv), g, scratch);
        let sp = |k: usize| KArg::U(state[k].ptr);
        match s.rule {
            UpdateKernel::Sgd { eta } => {
                self.launch::<T>("sgd", n, &[pm(&pv), p(g), u(n), KArg::F(eta)])
            }
            UpdateKernel::Momentum {
                mu,
                eta,
                unit_gain,
                nesterov,
            } => {
                let a = [
                    pm(&pv),
                    p(g),
                    sp(0),
                    u(n),
                    KArg::F(mu),
                    KArg::F(eta),
                    flag(unit_gain),
                    flag(nesterov),
                ];
                self.launch::<T>("momentum", n, &a)
            }
            UpdateKernel::Adam {
                mu,
                beta2,
                step,
                epsilon,
                unit_gain,
                adamax,
            } => {
                let a = [
                    pm(&pv),
                    p(g),
                    sp(0),
                    sp(1),
                    u(n),
                    KArg::F(mu),
                    KArg::F(beta2),
                    KArg::F(step),
                    KArg::F(epsilon),
                    flag(unit_gain),
                    flag(adamax),
                ];
                self.launch::<T>("adam", n, &a)
            }
            _ => self.rule_on_host(s, CMut::from_raw(pv.ptr, n), g, state),
        }
        if s.l1_per_sample > 0.0 {
            let w = s.eta * s.l1_per_sample * s.samples as f64;
            self.launch::<T>("l1_shrink", n, &[pm(&pv), u(n), KArg::F(w)]);
        }
    }
}

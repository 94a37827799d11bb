//! `Attention` on the GPU: the host path (`host.rs`) for now — the operands copied
//! down, the CPU kernel, the results copied back (counted, recorded in
//! `Cuda::host_calls`).

use crate::device::Cuda;
use crate::memory::{CMut, CRef};
use rntk::backend::attention::{Attention, AttentionGeom};
use rntk::backend::Cpu;
use rntk::tensor::Element;

impl Attention for Cuda {
    fn additive_attention<T: Element>(
        &self,
        g: &AttentionGeom,
        args: [CRef<'_, T>; 4],
        weights: CMut<'_, T>,
        out: CMut<'_, T>,
    ) {
        self.on_host("additive_attention");
        let [q, k, v, w] = args.map(|a| self.fetch(a));
        let (mut hw, mut ho) = (self.fetch_mut(&weights), self.fetch_mut(&out));
        Cpu.additive_attention(g, [&q, &k, &v, &w], &mut hw, &mut ho);
        self.put(&hw, weights);
        self.put(&ho, out);
    }
    fn additive_attention_backward<T: Element>(
        &self,
        g: &AttentionGeom,
        args: [CRef<'_, T>; 4],
        weights: CRef<'_, T>,
        dout: CRef<'_, T>,
        grads: CMut<'_, T>,
    ) {
        self.on_host("additive_attention_backward");
        let [q, k, v, w] = args.map(|a| self.fetch(a));
        let (hw, hd) = (self.fetch(weights), self.fetch(dout));
        let mut hg = self.fetch_mut(&grads);
        Cpu.additive_attention_backward(g, [&q, &k, &v, &w], &hw, &hd, &mut hg);
        self.put(&hg, grads);
    }
}

//! `Convolutions` on the GPU — for now on the counted host path (`host.rs`): the
//! operands are copied down, rntk's CPU convolution/pooling kernel runs on them, and the
//! result is copied back, each copy an op read/write and each call named in
//! [`Cuda::host_calls`]. Correct (the CPU kernels are checked against CNTK 2.7) and slow.
//! The next step is cuDNN (`cudnnConvolutionForward`, `…BackwardData`, `…BackwardFilter`,
//! `cudnnPoolingForward/Backward`; `ConvGeometry` maps to its descriptors: NCHW, one pad
//! per axis where CNTK's padding is symmetric, an explicit pre-pad where it is not), with
//! the recipe in `shared/cuda.md` and cuDNN's own numbers in `shared/bench/gpu/`.

use crate::device::Cuda;
use crate::memory::{CMut, CRef};
use rntk::backend::conv::{ConvGeometry, Convolutions, PoolGeometry, PoolKind};
use rntk::backend::roi::RoiGeometry;
use rntk::backend::{Cpu, Par};
use rntk::tensor::Element;

impl Cuda {
    /// The output's current elements where the kernel adds into it, else zeros of its
    /// length (no download: the kernel overwrites every element).
    fn host_out<T: Element>(&self, m: &CMut<'_, T>, accumulate: bool) -> Vec<T> {
        if accumulate {
            self.fetch_mut(m)
        } else {
            vec![T::zero(); m.len]
        }
    }
}

impl Convolutions for Cuda {
    fn conv_forward<T: Element>(
        &self,
        g: &ConvGeometry,
        n: usize,
        x: CRef<'_, T>,
        w: CRef<'_, T>,
        y: CMut<'_, T>,
        accumulate: bool,
        par: Par,
    ) {
        self.on_host("conv_forward");
        let (hx, hw) = (self.fetch(x), self.fetch(w));
        let mut hy = self.host_out(&y, accumulate);
        Cpu.conv_forward(g, n, &hx, &hw, &mut hy, accumulate, par);
        self.put(&hy, y);
    }
    fn conv_backward_data<T: Element>(
        &self,
        g: &ConvGeometry,
        n: usize,
        dy: CRef<'_, T>,
        w: CRef<'_, T>,
        dx: CMut<'_, T>,
        accumulate: bool,
        par: Par,
    ) {
        self.on_host("conv_backward_data");
        let (hdy, hw) = (self.fetch(dy), self.fetch(w));
        let mut hdx = self.host_out(&dx, accumulate);
        Cpu.conv_backward_data(g, n, &hdy, &hw, &mut hdx, accumulate, par);
        self.put(&hdx, dx);
    }
    fn conv_backward_filter<T: Element>(
        &self,
        g: &ConvGeometry,
        n: usize,
        x: CRef<'_, T>,
        dy: CRef<'_, T>,
        dw: CMut<'_, T>,
        accumulate: bool,
        par: Par,
    ) {
        self.on_host("conv_backward_filter");
        let (hx, hdy) = (self.fetch(x), self.fetch(dy));
        let mut hdw = self.host_out(&dw, accumulate);
        Cpu.conv_backward_filter(g, n, &hx, &hdy, &mut hdw, accumulate, par);
        self.put(&hdw, dw);
    }
    fn pool_forward<T: Element>(
        &self,
        g: &PoolGeometry,
        kind_n: (PoolKind, usize),
        x: CRef<'_, T>,
        y: CMut<'_, T>,
        par: Par,
    ) {
        self.on_host("pool_forward");
        let hx = self.fetch(x);
        let mut hy = self.host_out(&y, false);
        Cpu.pool_forward(g, kind_n, &hx, &mut hy, par);
        self.put(&hy, y);
    }
    fn pool_backward<T: Element>(
        &self,
        g: &PoolGeometry,
        kind_n: (PoolKind, usize),
        x: CRef<'_, T>,
        dy: CRef<'_, T>,
        dx: CMut<'_, T>,
        accumulate: bool,
        par: Par,
    ) {
        self.on_host("pool_backward");
        let (hx, hdy) = (self.fetch(x), self.fetch(dy));
        let mut hdx = self.host_out(&dx, accumulate);
        Cpu.pool_backward(g, kind_n, &hx, &hdy, &mut hdx, accumulate, par);
        self.put(&hdx, dx);
    }
    fn unpool_forward<T: Element>(
        &self,
        g: &PoolGeometry,
        n: usize,
        (u, x): (CRef<'_, T>, CRef<'_, T>),
        y: CMut<'_, T>,
        par: Par,
    ) {
        self.on_host("unpool_forward");
        let (hu, hx) = (self.fetch(u), self.fetch(x));
        let mut hy = self.host_out(&y, false);
        Cpu.unpool_forward(g, n, (&hu, &hx), &mut hy, par);
        self.put(&hy, y);
    }
    fn unpool_backward<T: Element>(
        &self,
        g: &PoolGeometry,
        n: usize,
        x: CRef<'_, T>,
        dy: CRef<'_, T>,
        du: CMut<'_, T>,
        accumulate: bool,
        par: Par,
    ) {
        self.on_host("unpool_backward");
        let (hx, hdy) = (self.fetch(x), self.fetch(dy));
        let mut hdu = self.host_out(&du, accumulate);
        Cpu.unpool_backward(g, n, &hx, &hdy, &mut hdu, accumulate, par);
        self.put(&hdu, du);
    }
    fn roi_pool_forward<T: Element>(
        &self,
        g: &RoiGeometry,
        n: usize,
        (x, r): (CRef<'_, T>, CRef<'_, T>),
        y: CMut<'_, T>,
        par: Par,
    ) {
        self.on_host("roi_pool_forward");
        let (hx, hr) = (self.fetch(x), self.fetch(r));
        let mut hy = self.host_out(&y, false);
        Cpu.roi_pool_forward(g, n, (&hx, &hr), &mut hy, par);
        self.put(&hy, y);
    }
    fn roi_pool_backward<T: Element>(
        &self,
        g: &RoiGeometry,
        n: usize,
        (x, r): (CRef<'_, T>, CRef<'_, T>),
        dy: CRef<'_, T>,
        dx: CMut<'_, T>,
        accumulate: bool,
        par: Par,
    ) {
        self.on_host("roi_pool_backward");
        let (hx, hr, hdy) = (self.fetch(x), self.fetch(r), self.fetch(dy));
        let mut hdx = self.host_out(&dx, accumulate);
        Cpu.roi_pool_backward(g, n, (&hx, &hr), &hdy, &mut hdx, accumulate, par);
        self.put(&hdx, dx);
    }
}

//! CPU kernels of the convolution family: convolution forward / backward-data /
//! backward-filter (`convolution`), max and average pooling, their gradients and max
//! unpooling (`pool`), ROI max pooling (`roi`). Patches are packed block by block
//! (`pack`), or read in place from a zero-padded image for stride-1 convolutions
//! (`implicit`), and multiplied by a register-blocked AVX-512 or AVX2 kernel or `gemm`
//! (`micro`). `reference` holds the plain loops every kernel is tested against.

mod convolution;
mod dots;
mod implicit;
mod micro;
mod pack;
mod pool;
#[cfg(target_arch = "x86_64")]
mod pool_avx2;
mod pool_simd;
#[cfg(test)]
mod reference;
mod roi;
#[cfg(test)]
mod tests;

pub use convolution::{conv_backward_data, conv_backward_filter, conv_forward};
pub use pool::{
    pool_backward, pool_forward, unpool_backward_cntk, unpool_backward_exact, unpool_forward,
};
pub use roi::{roi_pool_backward, roi_pool_forward};

use super::par::CONV_MACS;
use super::Cpu;
use crate::backend::conv::{ConvGeometry, Convolutions, PoolGeometry, PoolKind};
use crate::backend::roi::RoiGeometry;
use crate::backend::Par;
use crate::tensor::Element;

/// Threads for a call of `work` multiply-adds (or elements, for pooling): one below the
/// threshold, else as many as `par` grants with at least half a threshold's work each.
fn threads(par: Par, work: usize) -> usize {
    if work < CONV_MACS {
        1
    } else {
        par.threads().clamp(1, work / (CONV_MACS / 2))
    }
}

/// The CPU's convolution family: the kernels above, split over the threads `par` grants.
impl Convolutions for Cpu {
    fn conv_forward<T: Element>(
        &self,
        g: &ConvGeometry,
        n: usize,
        x: &[T],
        w: &[T],
        y: &mut [T],
        accumulate: bool,
        par: Par,
    ) {
        let t = threads(par, n * g.macs_per_image());
        conv_forward(g, n, x, w, y, accumulate, t);
    }
    fn conv_backward_data<T: Element>(
        &self,
        g: &ConvGeometry,
        n: usize,
        dy: &[T],
        w: &[T],
        dx: &mut [T],
        accumulate: bool,
        par: Par,
    ) {
        let t = threads(par, n * g.macs_per_image());
        conv_backward_data(g, n, dy, w, dx, accumulate, t);
    }
    fn conv_backward_filter<T: Element>(
        &self,
        g: &ConvGeometry,
        n: usize,
        x: &[T],
        dy: &[T],
        dw: &mut [T],
        accumulate: bool,
        par: Par,
    ) {
        let t = threads(par, n * g.macs_per_image());
        conv_backward_filter(g, n, x, dy, dw, accumulate, t);
    }
    fn pool_forward<T: Element>(
        &self,
        g: &PoolGeometry,
        (kind, n): (PoolKind, usize),
        x: &[T],
        y: &mut [T],
        par: Par,
    ) {
        pool_forward(g, kind, n, x, y, threads(par, n * g.in_size()));
    }
    fn pool_backward<T: Element>(
        &self,
        g: &PoolGeometry,
        (kind, n): (PoolKind, usize),
        x: &[T],
        dy: &[T],
        dx: &mut [T],
        accumulate: bool,
        par: Par,
    ) {
        let t = threads(par, n * g.in_size());
        pool_backward(g, kind, n, x, dy, dx, accumulate, t);
    }
    fn unpool_forward<T: Element>(
        &self,
        g: &PoolGeometry,
        n: usize,
        (u, x): (&[T], &[T]),
        y: &mut [T],
        par: Par,
    ) {
        unpool_forward(g, n, u, x, y, threads(par, n * g.in_size()));
    }
    fn unpool_backward<T: Element>(
        &self,
        g: &PoolGeometry,
        n: usize,
        x: &[T],
        dy: &[T],
        du: &mut [T],
        accumulate: bool,
        par: Par,
    ) {
        let t = threads(par, n * g.in_size());
        unpool_backward_exact(g, n, x, dy, du, accumulate, t);
    }
    fn roi_pool_forward<T: Element>(
        &self,
        g: &RoiGeometry,
        n: usize,
        x_rois: (&[T], &[T]),
        y: &mut [T],
        par: Par,
    ) {
        roi_pool_forward(g, n, x_rois, y, threads(par, n * g.out_size() * 4));
    }
    fn roi_pool_backward<T: Element>(
        &self,
        g: &RoiGeometry,
        n: usize,
        x_rois: (&[T], &[T]),
        dy: &[T],
        dx: &mut [T],
        accumulate: bool,
        par: Par,
    ) {
        let t = threads(par, n * g.out_size() * 4);
        roi_pool_backward(g, n, x_rois, dy, dx, accumulate, t);
    }
}

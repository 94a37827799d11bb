//! CPU kernels of the convolution family: convolution forward / backward-data /
//! backward-filter (`convolution`), max and average pooling, their gradients and max
//! unpooling (`pool`). Patches are packed block by block (`pack`) and multiplied by a
//! register-blocked AVX-512 kernel or `gemm` (`micro`). `reference` holds the plain loops
//! every kernel is tested against.

mod convolution;
mod micro;
mod pack;
mod pool;
#[cfg(test)]
mod reference;
#[cfg(test)]
mod tests;

pub use convolution::{conv_backward_data, conv_backward_filter, conv_forward};
pub use pool::{
    pool_backward, pool_forward, unpool_backward_cntk, unpool_backward_exact, unpool_forward,
};

use crate::backend::conv::{ConvGeometry, Convolutions, PoolGeometry, PoolKind};
use crate::tensor::Element;

/// The CPU's convolution family (the kernels above, threads by the size of the work).
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuConv;

/// Multiply-adds below which a call stays on one thread.
const THREAD_MACS: usize = 1 << 18;

fn threads(work: usize) -> usize {
    if work < THREAD_MACS {
        1
    } else {
        rayon::current_num_threads().clamp(1, work / (THREAD_MACS / 2))
    }
}

impl Convolutions for CpuConv {
    fn conv_forward<T: Element>(
        &self,
        g: &ConvGeometry,
        n: usize,
        x: &[T],
        w: &[T],
        y: &mut [T],
        accumulate: bool,
    ) {
        conv_forward(g, n, x, w, y, accumulate, threads(n * g.macs_per_image()));
    }
    fn conv_backward_data<T: Element>(
        &self,
        g: &ConvGeometry,
        n: usize,
        dy: &[T],
        w: &[T],
        dx: &mut [T],
        accumulate: bool,
    ) {
        conv_backward_data(g, n, dy, w, dx, accumulate, threads(n * g.macs_per_image()));
    }
    fn conv_backward_filter<T: Element>(
        &self,
        g: &ConvGeometry,
        n: usize,
        x: &[T],
        dy: &[T],
        dw: &mut [T],
        accumulate: bool,
    ) {
        conv_backward_filter(g, n, x, dy, dw, accumulate, threads(n * g.macs_per_image()));
    }
    fn pool_forward<T: Element>(
        &self,
        g: &PoolGeometry,
        kind: PoolKind,
        n: usize,
        x: &[T],
        y: &mut [T],
    ) {
        pool_forward(g, kind, n, x, y, threads(n * g.in_size()));
    }
    fn pool_backward<T: Element>(
        &self,
        g: &PoolGeometry,
        kind: PoolKind,
        n: usize,
        x: &[T],
        dy: &[T],
        dx: &mut [T],
        accumulate: bool,
    ) {
        pool_backward(g, kind, n, x, dy, dx, accumulate, threads(n * g.in_size()));
    }
    fn unpool_forward<T: Element>(
        &self,
        g: &PoolGeometry,
        n: usize,
        u: &[T],
        x: &[T],
        y: &mut [T],
    ) {
        unpool_forward(g, n, u, x, y, threads(n * g.in_size()));
    }
    fn unpool_backward<T: Element>(
        &self,
        g: &PoolGeometry,
        n: usize,
        x: &[T],
        dy: &[T],
        du: &mut [T],
        accumulate: bool,
    ) {
        unpool_backward_exact(g, n, x, dy, du, accumulate, threads(n * g.in_size()));
    }
}

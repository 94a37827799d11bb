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

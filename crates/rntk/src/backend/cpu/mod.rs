//! CPU kernels: GEMM through the `gemm` crate, vectorized element-wise math.

mod gemm;
mod simd;

pub use gemm::{gemm, gemm_with_transposed, Mat, MatMut, SMALL_FLOPS};
pub use simd::{exp, run_f32, sigmoid, simd_level, tanh, Kernel, SimdLevel};
pub(crate) use simd::{lstm_backward_rows, lstm_forward_rows, LstmStrides};

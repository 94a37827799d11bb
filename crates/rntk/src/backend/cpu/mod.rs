//! CPU kernels: GEMM through the `gemm` crate, a packed-operand kernel for recurrent
//! steps, vectorized element-wise math.

pub mod conv;
mod gemm;
mod packed;
mod simd;

pub use gemm::{gemm, gemm_with_transposed, Mat, MatMut, SMALL_FLOPS};
pub use packed::{
    gates_packed_len, pack_gates, pack_rhs, pack_rhs_par, packed_available, packed_gemm, packed_len,
};
pub(crate) use packed::{lstm_step_backward, lstm_step_forward, two_threads};
pub use simd::{exp, run_f32, sigmoid, simd_level, tanh, Kernel, SimdLevel};
pub(crate) use simd::{lstm_backward_rows, lstm_forward_rows, LstmStrides};

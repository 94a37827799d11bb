//! Kernels, by family: GEMM, element-wise math, copies. Ops call these and nothing
//! below them; a new device (CUDA) provides the same families.

pub mod conv;
pub mod cpu;

//! rntk on NVIDIA GPUs: [`Cuda`], one more implementation of rntk's kernel interface
//! (`rntk::backend::Backend`). Buffers are device allocations, products run through
//! cuBLAS, the other kernels are CUDA C compiled at run time by NVRTC for the GPU
//! found (`kernels/`). Every CUDA library is loaded at run time (cudarc's
//! `dynamic-loading`), so this crate builds and its tests run on machines without
//! CUDA: opening a GPU there is an ordinary error ("no GPU: ..."), never a panic.
//!
//! ```no_run
//! use rntk_cuda::Cuda;
//! let gpu = Cuda::new(0)?; // or rntk_cuda::backend_for(rntk::tensor::Device::gpu(0))
//! # Ok::<(), rntk::Error>(())
//! ```
//! A few kernels still run on the host through counted transfers
//! ([`Cuda::host_calls`] names them); see this crate's README.

mod device;
mod families;
pub mod kernels;
mod memory;
pub mod tables;

pub use device::{device_count, driver_present, unavailable, Cuda};
pub use memory::{CMut, CRef, CudaBuf, CudaSparse};

use rntk::tensor::Device;

/// Make `d` the process's default device (CNTK's `try_set_default_device`) after
/// checking it can be used: a GPU must open (else the "no GPU: ..." error, and the
/// default is unchanged).
pub fn try_set_default_device(d: Device) -> rntk::Result<()> {
    if let Device::Cuda(n) = d {
        Cuda::new(n)?;
    }
    rntk::tensor::set_default_device(d);
    Ok(())
}

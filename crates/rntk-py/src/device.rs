//! Devices for `rntk.device` (CNTK's `cntk.device`): how many GPUs there are, opening
//! one (the "no GPU: ..." error as a `ValueError`, as CNTK's CPU build raises), and
//! the process's default device.

use crate::errors::{guard, value_err};
use pyo3::prelude::*;
use rntk::tensor::Device;

/// GPUs the CUDA driver sees (0 without a driver).
#[pyfunction]
fn gpu_count() -> usize {
    rntk_cuda::device_count()
}

/// Open GPU `id` (checks the driver, NVRTC, cuBLAS and compiles the kernels once);
/// returns its name.
#[pyfunction]
fn gpu_open(id: u32) -> PyResult<String> {
    guard(|| {
        rntk_cuda::Cuda::new(id)
            .map(|g| g.name().to_string())
            .map_err(|e| value_err(e.to_string()))
    })
}

/// Make GPU `id` (or the CPU for `None`) the default device, after checking it opens.
#[pyfunction]
#[pyo3(signature = (id=None))]
fn set_default_device(id: Option<u32>) -> PyResult<()> {
    guard(|| {
        let d = id.map_or(Device::Cpu, Device::gpu);
        rntk_cuda::try_set_default_device(d).map_err(|e| value_err(e.to_string()))
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(gpu_count, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_open, m)?)?;
    m.add_function(wrap_pyfunction!(set_default_device, m)?)?;
    Ok(())
}

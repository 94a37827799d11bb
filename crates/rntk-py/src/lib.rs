//! `rntk._rntk`: the compiled half of the `rntk` Python package. It holds rntk's graph
//! objects (variables, functions, layers, learners, trainers, readers) and the hot paths
//! (`train_minibatch`, `eval`, `next_minibatch`), which go from Python straight into
//! Rust; the CNTK-shaped API around them is Python (`python/rntk`).
//!
//! Every entry point turns rntk errors into Python exceptions (`ValueError`,
//! `TypeError`, `RuntimeError`) and catches panics, so none crosses into Python; long
//! computations release the GIL.

mod attention;
mod conv;
mod data;
mod device;
mod distributed;
mod errors;
mod graph;
mod image;
mod io;
mod layers;
mod learners;
mod ops;
mod train;

use pyo3::prelude::*;

/// The compiled module.
#[pymodule]
fn _rntk(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    graph::register(m)?;
    data::register(m)?;
    conv::register(m)?;
    ops::register(m)?;
    layers::register(m)?;
    attention::register(m)?;
    learners::register(m)?;
    train::register(m)?;
    io::register(m)?;
    device::register(m)?;
    distributed::register(m)?;
    Ok(())
}

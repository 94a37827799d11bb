//! `cntk.train.distributed`: the process-wide communicator (MPI's world when the package
//! is built with the cargo feature `mpi` and started by `mpirun`, else one process, as
//! CNTK with one process) and the distributed learners wrapping a local learner.

use crate::errors::{nogil, value_err, IntoPy};
use crate::learners::PyLearner;
use pyo3::prelude::*;
use rntk::distributed::{
    block_momentum_distributed_learner, communicator, data_parallel_distributed_learner,
    BlockMomentumOptions, DataParallelOptions, DEFAULT_BUCKET_BYTES,
};
use rntk::learners::Learner;
use std::sync::{Arc, Mutex};

/// `(rank, workers)` of this process (creates the communicator on first use).
#[pyfunction]
fn communicator_info() -> PyResult<(usize, usize)> {
    let c = communicator().py()?;
    Ok((c.rank(), c.size()))
}

/// Wait until every worker reaches this point.
#[pyfunction]
fn communicator_barrier(py: Python<'_>) -> PyResult<()> {
    let c = communicator().py()?;
    nogil(py, move || c.barrier())
}

/// `Communicator.finalize()`: no collective may follow.
#[pyfunction]
fn communicator_finalize() -> PyResult<()> {
    rntk::distributed::finalize().py()
}

/// Whether this build can run over MPI (the cargo feature `mpi`).
#[pyfunction]
fn mpi_enabled() -> bool {
    cfg!(feature = "mpi")
}

fn wrap(local: &PyLearner, l: Box<dyn Learner>) -> PyLearner {
    PyLearner {
        inner: Arc::new(Mutex::new(l)),
        params: local.params.clone(),
    }
}

/// `data_parallel_distributed_learner(learner, distributed_after, num_quantization_bits)`.
#[pyfunction]
#[pyo3(signature = (learner, distributed_after=0, num_quantization_bits=32))]
fn make_data_parallel_learner(
    learner: &PyLearner,
    distributed_after: u64,
    num_quantization_bits: u32,
) -> PyResult<PyLearner> {
    let o = DataParallelOptions {
        num_quantization_bits,
        distributed_after,
        bucket_bytes: DEFAULT_BUCKET_BYTES,
    };
    let comm = communicator().py()?;
    let l = data_parallel_distributed_learner(learner.for_trainer(), comm, o).py()?;
    Ok(wrap(learner, Box::new(l)))
}

/// `block_momentum_distributed_learner(learner, block_size, ...)` with CNTK's defaults.
#[pyfunction]
#[pyo3(signature = (learner, block_size, block_momentum_as_time_constant=None,
    use_nesterov_momentum=true, reset_sgd_momentum_after_aggregation=true,
    block_learning_rate=1.0, distributed_after=0))]
fn make_block_momentum_learner(
    learner: &PyLearner,
    block_size: u64,
    block_momentum_as_time_constant: Option<f64>,
    use_nesterov_momentum: bool,
    reset_sgd_momentum_after_aggregation: bool,
    block_learning_rate: f64,
    distributed_after: u64,
) -> PyResult<PyLearner> {
    if block_size == 0 {
        return Err(value_err("block_size must be at least 1 sample"));
    }
    let o = BlockMomentumOptions {
        block_momentum_as_time_constant,
        use_nesterov_momentum,
        reset_sgd_momentum_after_aggregation,
        block_learning_rate,
        distributed_after,
        ..BlockMomentumOptions::new(block_size)
    };
    let comm = communicator().py()?;
    let l = block_momentum_distributed_learner(learner.for_trainer(), comm, o).py()?;
    Ok(wrap(learner, Box::new(l)))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(communicator_info, m)?)?;
    m.add_function(wrap_pyfunction!(communicator_barrier, m)?)?;
    m.add_function(wrap_pyfunction!(communicator_finalize, m)?)?;
    m.add_function(wrap_pyfunction!(mpi_enabled, m)?)?;
    m.add_function(wrap_pyfunction!(make_data_parallel_learner, m)?)?;
    m.add_function(wrap_pyfunction!(make_block_momentum_learner, m)?)?;
    Ok(())
}

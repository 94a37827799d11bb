//! Data-parallel training across processes and machines (CNTK's
//! `cntk.train.distributed`): a [`Communicator`] (MPI with the cargo feature `mpi`,
//! or a single process), and the distributed learners that wrap a local learner:
//! [`data_parallel_distributed_learner`] (gradients summed every minibatch, optionally
//! 1-bit SGD) and [`block_momentum_distributed_learner`] (BMUF model averaging).
//!
//! How a run is split (docs/distributed.md): every worker runs the same program;
//! `MinibatchSource` walks the same global order on every worker and serves each its
//! partition of every minibatch (`next_minibatch_partition`); minibatch and epoch
//! sizes count the samples of all workers; the trainer of every worker reports the
//! totals of all; rank 0 alone prints progress and writes checkpoints.

mod block_momentum;
mod communicator;
mod data_parallel;
#[cfg(feature = "mpi")]
mod mpi;
mod overlap;
mod params;
pub mod quantize;
#[cfg(feature = "mpi")]
mod watchdog;

pub use block_momentum::{
    block_momentum_distributed_learner, default_time_constant, BlockMomentumDistributedLearner,
    BlockMomentumOptions,
};
pub use communicator::{all_reduce, check_same, Communicator, SingleProcess, ThreadGroup};
pub use data_parallel::{
    data_parallel_distributed_learner, DataParallelDistributedLearner, DataParallelOptions,
    DEFAULT_BUCKET_BYTES,
};
#[cfg(feature = "mpi")]
pub use mpi::{MpiCommunicator, MpiOptions};

use crate::error::{Error, Result};
use crate::graph::Variable;
use crate::tensor::{DType, Tensor};
use params::Buf;
use std::sync::{Arc, OnceLock};

static WORLD: OnceLock<Arc<dyn Communicator>> = OnceLock::new();

/// Whether this process was started by an MPI launcher (`mpirun`, `mpiexec`, srun).
pub fn launched_by_mpi() -> bool {
    [
        "OMPI_COMM_WORLD_SIZE",
        "PMI_SIZE",
        "PMIX_RANK",
        "MPI_LOCALNRANKS",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some())
}

/// The process-wide communicator (CNTK's `Communicator`): MPI's world when this build
/// has the `mpi` feature and the process was started by an MPI launcher, else a
/// single process. Created on first use; every worker must call it.
pub fn communicator() -> Result<Arc<dyn Communicator>> {
    if let Some(c) = WORLD.get() {
        return Ok(c.clone());
    }
    let c: Arc<dyn Communicator> = world()?;
    Ok(WORLD.get_or_init(|| c).clone())
}

#[cfg(feature = "mpi")]
fn world() -> Result<Arc<dyn Communicator>> {
    if launched_by_mpi() {
        Ok(Arc::new(MpiCommunicator::init(MpiOptions::default())?))
    } else {
        Ok(Arc::new(SingleProcess))
    }
}

#[cfg(not(feature = "mpi"))]
fn world() -> Result<Arc<dyn Communicator>> {
    if launched_by_mpi() && std::env::var("OMPI_COMM_WORLD_SIZE").is_ok_and(|n| n != "1") {
        return Err(Error::Unsupported(
            "this rntk was built without MPI support, but it runs under an MPI launcher with several workers: rebuild with `--features mpi`".into(),
        ));
    }
    Ok(Arc::new(SingleProcess))
}

/// `Communicator.finalize()`: end the process-wide communicator, if one was created.
pub fn finalize() -> Result<()> {
    match WORLD.get() {
        Some(c) => c.finalize(),
        None => Ok(()),
    }
}

/// Every worker's residuals as named tensors (`residual.<rank>.<parameter>`), for a
/// checkpoint written by rank 0. A collective.
pub(crate) fn residual_state(
    comm: &dyn Communicator,
    params: &[Variable],
    residuals: &[Buf],
) -> Vec<(String, Tensor)> {
    let mine: Vec<u8> = residuals
        .iter()
        .flat_map(|r| match r {
            Buf::F32(v) => communicator::to_bytes(v),
            Buf::F64(v) => communicator::to_bytes(v),
        })
        .collect();
    let Ok(all) = comm.all_gather(&mine) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (rank, bytes) in all.iter().enumerate() {
        let mut at = 0;
        for (i, p) in params.iter().enumerate() {
            let n = p.shape().numel();
            let w = match p.dtype() {
                DType::F32 => 4,
                DType::F64 => 8,
            };
            let Some(b) = bytes.get(at..at + n * w) else {
                break; // no residual yet (no 1-bit step taken): restored as zeros
            };
            at += n * w;
            let t = match p.dtype() {
                DType::F32 => {
                    Tensor::from_vec(p.shape(), communicator::from_bytes::<f32>(b).collect())
                }
                DType::F64 => {
                    Tensor::from_vec(p.shape(), communicator::from_bytes::<f64>(b).collect())
                }
            };
            if let Ok(t) = t {
                out.push((format!("residual.{rank}.{i}"), t));
            }
        }
    }
    out
}

/// This worker's residuals from a checkpoint's distributed state (zeros when the
/// checkpoint has none).
pub(crate) fn restore_residuals(
    comm: &dyn Communicator,
    params: &[Variable],
    state: &[(String, Tensor)],
) -> Result<Vec<Buf>> {
    let workers = state
        .iter()
        .filter_map(|(k, _)| {
            k.strip_prefix("residual.")?
                .split('.')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .max()
        .map(|m| m + 1);
    if let Some(w) = workers {
        if w != comm.size() {
            return Err(Error::distributed(
                None,
                format!(
                    "the checkpoint was written by {w} workers and holds their 1-bit SGD residuals; resume it on {w} workers (this run has {})",
                    comm.size()
                ),
            ));
        }
    }
    params
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let key = format!("residual.{}.{i}", comm.rank());
            match state.iter().find(|(k, _)| *k == key) {
                Some((_, t)) if t.shape() == &p.shape() && t.dtype() == p.dtype() => {
                    Ok(Buf::from_tensor(t))
                }
                Some(_) => Err(Error::invalid(
                    "1-bit SGD restore",
                    format!("{key} does not fit {}", p.label()),
                )),
                None => Ok(Buf::zeros(p.dtype(), p.shape().numel())),
            }
        })
        .collect()
}

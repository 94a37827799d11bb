//! `mpirun -np N rntk train CONFIG.toml`: the workers (MPI when rntk is built with
//! the `mpi` feature, else one process), the check that every worker read the same
//! config and data files, and the `[distributed]` learner around the configured one.

use crate::config::{Config, DistributedSpec};
use crate::fail::{Context, Fail, Result};
use rntk::distributed::{
    self, block_momentum_distributed_learner, check_same, data_parallel_distributed_learner,
    BlockMomentumOptions, Communicator, DataParallelOptions, DEFAULT_BUCKET_BYTES,
};
use rntk::learners::Learner;
use std::path::Path;
use std::sync::Arc;

/// The workers of this run. With several, every worker must have the same config
/// text and the same reader files (compared by a hash of the config and each file's
/// size and first and last MiB), and the config must have a `[distributed]` section.
pub fn start(path: &Path, text: &[u8], cfg: &Config) -> Result<Arc<dyn Communicator>> {
    let comm = distributed::communicator()?;
    if comm.size() == 1 {
        return Ok(comm);
    }
    let mut fingerprint = text.to_vec();
    for (name, r) in &cfg.readers {
        fingerprint.extend_from_slice(name.as_bytes());
        fingerprint.extend_from_slice(&file_fingerprint(&r.file));
    }
    check_same(
        comm.as_ref(),
        &format!("the config {} (or a file it reads)", path.display()),
        &fingerprint,
    )?;
    if cfg.distributed.is_none() {
        return Err(Fail::new(format!(
            "{} workers were started ({}), but the config has no [distributed] section: add one (e.g. `[distributed]` with `learner = \"data_parallel\"`) or start one worker",
            comm.size(),
            comm.describe()
        )));
    }
    Ok(comm)
}

fn file_fingerprint(p: &Path) -> Vec<u8> {
    use std::io::{Read, Seek, SeekFrom};
    const PART: u64 = 1 << 20;
    let mut out = p.display().to_string().into_bytes();
    let Ok(mut f) = std::fs::File::open(p) else {
        return out;
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    out.extend_from_slice(&len.to_le_bytes());
    let mut buf = Vec::new();
    let _ = f.by_ref().take(PART).read_to_end(&mut buf);
    if len > PART && f.seek(SeekFrom::Start(len - PART)).is_ok() {
        let _ = f.take(PART).read_to_end(&mut buf);
    }
    out.extend_from_slice(&buf);
    out
}

/// The configured learner, made distributed when the config says so.
pub fn wrap(
    spec: Option<&DistributedSpec>,
    comm: &Arc<dyn Communicator>,
    learner: Box<dyn Learner>,
) -> Result<Box<dyn Learner>> {
    let Some(d) = spec else {
        return Ok(learner);
    };
    let ctx = "distributed";
    match d.learner.as_str() {
        "data_parallel" => {
            if d.block_size.is_some() || d.block_momentum_as_time_constant.is_some() {
                return Err(Fail::new(
                    "distributed: block_size and block_momentum_as_time_constant belong to learner = \"block_momentum\"",
                ));
            }
            let o = DataParallelOptions {
                distributed_after: d.distributed_after,
                num_quantization_bits: d.num_quantization_bits.unwrap_or(32),
                bucket_bytes: d.bucket_bytes.unwrap_or(DEFAULT_BUCKET_BYTES),
            };
            Ok(Box::new(
                data_parallel_distributed_learner(learner, comm.clone(), o).context(ctx)?,
            ))
        }
        "block_momentum" => {
            let block_size = d.block_size.ok_or_else(|| {
                Fail::new("distributed.block_size: block momentum needs a block size in samples of all workers (e.g. block_size = 4000)")
            })?;
            if d.num_quantization_bits.is_some() || d.bucket_bytes.is_some() {
                return Err(Fail::new(
                    "distributed: num_quantization_bits and bucket_bytes belong to learner = \"data_parallel\"",
                ));
            }
            let mut o = BlockMomentumOptions::new(block_size);
            o.distributed_after = d.distributed_after;
            o.block_momentum_as_time_constant = d.block_momentum_as_time_constant;
            if let Some(v) = d.use_nesterov_momentum {
                o.use_nesterov_momentum = v;
            }
            if let Some(v) = d.reset_sgd_momentum_after_aggregation {
                o.reset_sgd_momentum_after_aggregation = v;
            }
            if let Some(v) = d.block_learning_rate {
                o.block_learning_rate = v;
            }
            Ok(Box::new(
                block_momentum_distributed_learner(learner, comm.clone(), o).context(ctx)?,
            ))
        }
        other => Err(Fail::new(format!(
            "distributed.learner: unknown distributed learner \"{other}\" (expected \"data_parallel\" or \"block_momentum\")"
        ))),
    }
}

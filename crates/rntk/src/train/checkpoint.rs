//! Training checkpoints. `filename` receives the model (the native format) and
//! `filename.ckp` everything needed to resume bit-identically: parameter values, every
//! learner's state, the reader position, the trainer's counters (dropout included) and
//! the history so far. Each file is written to a temporary file and renamed, and resuming
//! reads only `.ckp`, so a crash mid-write leaves the previous checkpoint loadable.

use super::config::{CheckpointConfig, Criterion, TrainHistory};
use super::source::MinibatchProvider;
use super::trainer::Trainer;
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::files::PathLock;
use crate::graph::Function;
use crate::learners::{LearnerState, Schedule};
use crate::persist::{self, weights};
use crate::tensor::{Element, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const KEY: &str = "rntk-checkpoint";
const VERSION: u64 = 1;

/// Loop state the session keeps beside the trainer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct CheckpointState {
    pub history: TrainHistory,
    pub next_epoch: u64,
    pub cv_index: u64,
    pub checkpoint_index: u64,
}

#[derive(Serialize, Deserialize)]
struct LearnerMeta {
    learner: String,
    sample_count: u64,
    minibatch_count: u64,
    sweep_count: u64,
    learning_rate: Schedule,
    learning_rate_origin: (u64, u64),
    buffers_per_parameter: Vec<usize>,
    scalars: Vec<Vec<f64>>,
}

#[derive(Serialize, Deserialize)]
struct Meta {
    format: String,
    version: u64,
    total_samples: u64,
    training_passes: u64,
    /// Each dropout node's mask stream offset (absent in checkpoints before issue #14).
    #[serde(default)]
    dropout_offsets: Vec<u64>,
    parameters: usize,
    learners: Vec<LearnerMeta>,
    source: serde_json::Value,
    state: CheckpointState,
}

/// A checkpoint read back.
pub(crate) struct Loaded {
    meta: Meta,
    tensors: HashMap<String, Tensor>,
    file: String,
    pub state: CheckpointState,
}

impl std::ops::Deref for Loaded {
    type Target = CheckpointState;
    fn deref(&self) -> &CheckpointState {
        &self.state
    }
}

fn ckp_path(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".ckp");
    PathBuf::from(s)
}

fn numbered(p: &Path, i: u64) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(i.to_string());
    PathBuf::from(s)
}

fn fmt_err(file: &str, detail: impl Into<String>) -> Error {
    Error::Format {
        file: file.to_string(),
        detail: detail.into(),
    }
}

/// Claim the checkpoint files of `cfg` for one trainer, before it trains: both paths
/// writable, an exclusive lock (`filename.lock`, released when the trainer ends or
/// its process dies: a second trainer on the same files gets a clear error), and
/// the temporary files a killed run left beside them removed.
pub(crate) fn claim(cfg: &CheckpointConfig) -> Result<PathLock> {
    let f = &cfg.filename;
    crate::files::check_output_file(f)?;
    crate::files::check_output_file(&ckp_path(f))?;
    let lock = PathLock::acquire(f, "checkpoint")?;
    let dir = f.parent().unwrap_or(Path::new(""));
    let base = f
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ckp = format!("{base}.ckp");
    // ours alone while we hold the lock
    persist::remove_stale_temps(dir, |t| t == base || t == ckp, true);
    // numbered copies (preserve_all): only those whose writer is gone, as another
    // run may checkpoint to a file named like one of them
    let numbered = |t: &str| {
        let rest = t.strip_prefix(base.as_str()).unwrap_or("");
        let rest = rest.strip_suffix(".ckp").unwrap_or(rest);
        !rest.is_empty() && rest.bytes().all(|c| c.is_ascii_digit())
    };
    persist::remove_stale_temps(dir, numbered, false);
    Ok(lock)
}

/// Write the model and the `.ckp` (and numbered copies with `preserve_all`).
pub(crate) fn save<T: Element, B: Backend>(
    cfg: &CheckpointConfig,
    index: u64,
    criterion: &Criterion,
    trainer: &Trainer<T, B>,
    source: &dyn MinibatchProvider,
    state: &CheckpointState,
) -> Result<()> {
    let ckp = ckp_path(&cfg.filename);
    let file = ckp.display().to_string();
    let mut tensors = Vec::new();
    for (i, p) in trainer.parameters().iter().enumerate() {
        tensors.push((format!("param.{i}"), p.value()?));
    }
    let mut learners = Vec::new();
    for (k, l) in trainer.parameter_learners().iter().enumerate() {
        let s = l.state();
        for (pi, bufs) in s.buffers.iter().enumerate() {
            for (b, t) in bufs.iter().enumerate() {
                tensors.push((format!("learner.{k}.{pi}.{b}"), t.clone()));
            }
        }
        learners.push(LearnerMeta {
            learner: s.learner.clone(),
            sample_count: s.sample_count,
            minibatch_count: s.minibatch_count,
            sweep_count: s.sweep_count,
            learning_rate: s.learning_rate.clone(),
            learning_rate_origin: s.learning_rate_origin,
            buffers_per_parameter: s.buffers.iter().map(|b| b.len()).collect(),
            scalars: s.scalars.clone(),
        });
    }
    let meta = Meta {
        format: KEY.into(),
        version: VERSION,
        total_samples: trainer.total_number_of_samples_seen(),
        training_passes: trainer.training_passes(),
        dropout_offsets: trainer.dropout_offsets(),
        parameters: trainer.parameters().len(),
        learners,
        source: source.position()?,
        state: state.clone(),
    };
    let json = serde_json::to_string(&meta).map_err(|e| fmt_err(&file, e.to_string()))?;
    let bytes = weights::encode(&file, &tensors, HashMap::from([(KEY.to_string(), json)]))?;
    let mut roots = vec![criterion.loss.clone()];
    roots.extend(criterion.metric.iter().cloned());
    let model = Function::combine(&roots, "criterion")?;
    persist::save_model(&model, &cfg.filename)?;
    persist::write_atomic(&ckp, &bytes)?;
    if cfg.preserve_all {
        persist::save_model(&model, numbered(&cfg.filename, index))?;
        persist::write_atomic(&ckp_path(&numbered(&cfg.filename, index)), &bytes)?;
    }
    Ok(())
}

/// Check the checkpoint at `filename` (`filename.ckp`): `Ok(Some(samples trained))` when
/// it loads, `Ok(None)` when there is none, an error when it is damaged.
pub fn checkpoint_samples(filename: &Path) -> Result<Option<u64>> {
    Ok(load(filename)?.map(|c| c.meta.total_samples))
}

/// Read `filename.ckp` if it exists.
pub(crate) fn load(filename: &Path) -> Result<Option<Loaded>> {
    let ckp = ckp_path(filename);
    if !ckp.exists() {
        return Ok(None);
    }
    let file = ckp.display().to_string();
    let bytes = crate::files::read_whole(&ckp, "a checkpoint file")?;
    let c = weights::decode(&file, &bytes)?;
    let json = c.metadata.get(KEY).ok_or_else(|| {
        fmt_err(
            &file,
            format!("not an rntk checkpoint (no '{KEY}' metadata)"),
        )
    })?;
    let meta: Meta = serde_json::from_str(json)
        .map_err(|e| fmt_err(&file, format!("checkpoint description: {e}")))?;
    if meta.format != KEY || meta.version != VERSION {
        return Err(fmt_err(
            &file,
            format!(
                "format '{}' version {} (this build reads '{KEY}' version {VERSION})",
                meta.format, meta.version
            ),
        ));
    }
    let state = meta.state.clone();
    Ok(Some(Loaded {
        meta,
        tensors: c.tensors,
        file,
        state,
    }))
}

/// Put a trainer and its source back where the checkpoint was taken.
pub(crate) fn restore<T: Element, B: Backend>(
    c: &Loaded,
    trainer: &mut Trainer<T, B>,
    source: &mut dyn MinibatchProvider,
) -> Result<()> {
    let file = &c.file;
    let params = trainer.parameters().to_vec();
    if params.len() != c.meta.parameters {
        return Err(fmt_err(
            file,
            format!(
                "checkpoint holds {} parameters, the model being trained has {}",
                c.meta.parameters,
                params.len()
            ),
        ));
    }
    for (i, p) in params.iter().enumerate() {
        let t = c
            .tensors
            .get(&format!("param.{i}"))
            .ok_or_else(|| fmt_err(file, format!("parameter {i} is missing")))?;
        p.set_value(t.clone())
            .map_err(|e| fmt_err(file, format!("parameter {} ({}): {e}", i, p.label())))?;
    }
    if trainer.parameter_learners().len() != c.meta.learners.len() {
        return Err(fmt_err(
            file,
            format!(
                "checkpoint holds {} learners, the trainer has {}",
                c.meta.learners.len(),
                trainer.parameter_learners().len()
            ),
        ));
    }
    for (k, (l, m)) in trainer
        .parameter_learners_mut()
        .iter_mut()
        .zip(&c.meta.learners)
        .enumerate()
    {
        let mut buffers = Vec::with_capacity(m.buffers_per_parameter.len());
        for (pi, &n) in m.buffers_per_parameter.iter().enumerate() {
            let mut bufs = Vec::with_capacity(n.min(64));
            for b in 0..n {
                let t = c
                    .tensors
                    .get(&format!("learner.{k}.{pi}.{b}"))
                    .ok_or_else(|| {
                        fmt_err(
                            file,
                            format!("state buffer {b} of parameter {pi} of learner {k} is missing"),
                        )
                    })?;
                bufs.push(t.clone());
            }
            buffers.push(bufs);
        }
        let state = LearnerState {
            learner: m.learner.clone(),
            sample_count: m.sample_count,
            minibatch_count: m.minibatch_count,
            sweep_count: m.sweep_count,
            learning_rate: m.learning_rate.clone(),
            learning_rate_origin: m.learning_rate_origin,
            buffers,
            scalars: m.scalars.clone(),
        };
        l.restore_state(&state)?;
    }
    source.restore_position(&c.meta.source)?;
    trainer.restore_progress(c.meta.total_samples, c.meta.training_passes);
    if c.meta.dropout_offsets.len() == trainer.dropout_offsets().len() {
        trainer
            .restore_dropout_offsets(&c.meta.dropout_offsets)
            .map_err(|e| fmt_err(&c.file, e.to_string()))?;
    } else if !c.meta.dropout_offsets.is_empty() {
        return Err(fmt_err(
            &c.file,
            format!(
                "the checkpoint has {} dropout streams, the model {}",
                c.meta.dropout_offsets.len(),
                trainer.dropout_offsets().len()
            ),
        ));
    }
    Ok(())
}

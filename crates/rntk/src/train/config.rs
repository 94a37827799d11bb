//! The configuration and the results of a training session: the criterion, how long
//! to train, the test, cross-validation and checkpoint configs, and the history `train`
//! returns (shared by `session.rs` and `checkpoint.rs`).

use super::progress::{ProgressWriter, Totals};
use super::source::MinibatchProvider;
use crate::error::{Error, Result};
use crate::graph::Variable;
use crate::learners::Learner;
use std::path::PathBuf;

/// The function trained: a loss, and optionally a metric reported beside it.
#[derive(Clone, Debug)]
pub struct Criterion {
    pub loss: Variable,
    pub metric: Option<Variable>,
}

impl Criterion {
    pub fn new(loss: Variable, metric: Option<Variable>) -> Self {
        Criterion { loss, metric }
    }
}

/// Minibatch size in samples, constant or piecewise (CNTK's `minibatch_size_schedule`):
/// `(count, size)` pairs, each lasting `count · epoch_size` samples, the last forever.
#[derive(Clone, Debug, PartialEq)]
pub enum MinibatchSize {
    Constant(usize),
    Schedule {
        pairs: Vec<(u64, usize)>,
        epoch_size: u64,
    },
}

impl MinibatchSize {
    pub(super) fn at(&self, samples: u64) -> usize {
        match self {
            MinibatchSize::Constant(n) => *n,
            MinibatchSize::Schedule { pairs, epoch_size } => {
                let mut end = 0u64;
                for &(count, size) in pairs {
                    end = end.saturating_add(count.saturating_mul((*epoch_size).max(1)));
                    if samples < end {
                        return size;
                    }
                }
                pairs.last().map_or(1, |p| p.1)
            }
        }
    }
    pub(super) fn validate(&self) -> Result<()> {
        let bad = match self {
            MinibatchSize::Constant(n) => *n == 0,
            MinibatchSize::Schedule { pairs, .. } => {
                pairs.is_empty() || pairs.iter().any(|p| p.1 == 0)
            }
        };
        if bad {
            return Err(Error::invalid(
                "train",
                "minibatch_size must be at least 1 sample",
            ));
        }
        Ok(())
    }
}

/// How long to train and how often to report.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    pub minibatch_size: MinibatchSize,
    /// Samples (as the trainer counts them) per epoch.
    pub epoch_size: Option<u64>,
    pub max_epochs: Option<u64>,
    pub max_samples: Option<u64>,
    /// Samples between epoch summaries; defaults to `epoch_size`.
    pub progress_frequency: Option<u64>,
}

impl TrainOptions {
    pub fn new(minibatch_size: usize) -> Self {
        TrainOptions {
            minibatch_size: MinibatchSize::Constant(minibatch_size),
            epoch_size: None,
            max_epochs: None,
            max_samples: None,
            progress_frequency: None,
        }
    }
    pub fn epoch_size(mut self, n: u64) -> Self {
        self.epoch_size = Some(n);
        self
    }
    pub fn max_epochs(mut self, n: u64) -> Self {
        self.max_epochs = Some(n);
        self
    }
    pub fn max_samples(mut self, n: u64) -> Self {
        self.max_samples = Some(n);
        self
    }
    pub fn progress_frequency(mut self, n: u64) -> Self {
        self.progress_frequency = Some(n);
        self
    }
}

/// One pass of the metric over a test source after training (CNTK's `TestConfig`).
pub struct TestConfig {
    pub source: Box<dyn MinibatchProvider>,
    /// Samples per test minibatch (CNTK's default 32).
    pub minibatch_size: usize,
    /// Input → stream; defaults to the training map.
    pub model_inputs_to_streams: Option<Vec<(Variable, String)>>,
}

impl TestConfig {
    pub fn new(source: Box<dyn MinibatchProvider>) -> Self {
        TestConfig {
            source,
            minibatch_size: 32,
            model_inputs_to_streams: None,
        }
    }
}

/// What a cross-validation callback learns.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CvResult {
    /// 0 for the first cross-validation.
    pub index: u64,
    pub average_error: f64,
    pub num_samples: u64,
    pub num_minibatches: u64,
}

/// The cross-validation callback: may change the learners (e.g. lower the learning
/// rate); returning `false` stops training.
pub type CvCallback = Box<dyn FnMut(&CvResult, &mut [Box<dyn Learner>]) -> bool + Send>;

/// Periodic metric passes over a validation source (CNTK's `CrossValidationConfig`).
pub struct CrossValidationConfig {
    pub source: Box<dyn MinibatchProvider>,
    /// Samples between validations; `None` = once, at the end.
    pub frequency: Option<u64>,
    pub minibatch_size: usize,
    /// At most this many samples per validation.
    pub max_samples: Option<u64>,
    pub callback: Option<CvCallback>,
    pub model_inputs_to_streams: Option<Vec<(Variable, String)>>,
}

impl CrossValidationConfig {
    pub fn new(source: Box<dyn MinibatchProvider>) -> Self {
        CrossValidationConfig {
            source,
            frequency: None,
            minibatch_size: 32,
            max_samples: None,
            callback: None,
            model_inputs_to_streams: None,
        }
    }
}

/// Periodic checkpoints (CNTK's `CheckpointConfig`): the model at `filename` and the
/// full training state (parameters, learners, reader position, counters) at
/// `filename.ckp`, each written to a temporary file and renamed.
#[derive(Clone, Debug)]
pub struct CheckpointConfig {
    pub filename: PathBuf,
    /// Samples between checkpoints; `None` = once, at the end.
    pub frequency: Option<u64>,
    /// Resume from an existing checkpoint.
    pub restore: bool,
    /// Also keep `filename<i>` / `filename<i>.ckp` for every checkpoint.
    pub preserve_all: bool,
}

impl CheckpointConfig {
    pub fn new(filename: impl Into<PathBuf>) -> Self {
        CheckpointConfig {
            filename: filename.into(),
            frequency: None,
            restore: true,
            preserve_all: false,
        }
    }
}

/// Callbacks of a training run.
#[derive(Default)]
pub struct Callbacks {
    pub progress_writers: Vec<Box<dyn ProgressWriter>>,
    pub test: Option<TestConfig>,
    pub cross_validation: Option<CrossValidationConfig>,
    pub checkpoint: Option<CheckpointConfig>,
}

/// Averages over a window: loss and metric per sample (metric as a fraction).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Record {
    pub loss: f64,
    pub metric: f64,
    pub samples: u64,
}

impl Record {
    pub(super) fn of(t: &Totals) -> Record {
        let n = t.samples.max(1) as f64;
        Record {
            loss: if t.samples == 0 { 0.0 } else { t.loss / n },
            metric: if t.samples == 0 { 0.0 } else { t.metric / n },
            samples: t.samples,
        }
    }
}

/// What `train` returns (CNTK's history record).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainHistory {
    /// One per reporting window (every `progress_frequency / minibatch_size` minibatches).
    pub updates: Vec<Record>,
    /// One per epoch (`progress_frequency` samples) plus a final partial one.
    pub epoch_summaries: Vec<Record>,
    /// The TestConfig pass: (metric, samples).
    pub test_summary: Option<(f64, u64)>,
}

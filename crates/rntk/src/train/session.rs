//! `train` / `test` on a criterion (CNTK's `Function.train` / `Function.test`): epochs and
//! lengths counted in the trainer's samples, minibatch-size schedules, progress writers,
//! and the test, cross-validation and checkpoint passes (spec training.md §2–3); the
//! configs are in `config.rs`.

use super::checkpoint::{self, CheckpointState};
use super::config::{
    Callbacks, Criterion, CrossValidationConfig, CvResult, Record, TrainHistory, TrainOptions,
};
use super::progress::{ProgressWriter, Totals};
use super::source::{feeds_for, MinibatchProvider};
use super::trainer::Trainer;
use crate::backend::{Backend, Cpu};
use crate::error::{Error, Result};
use crate::graph::Variable;
use crate::learners::Learner;
use crate::tensor::{Element, Value};

/// Train `criterion` with `learners` on `source` (CNTK's `criterion.train(...)`), on
/// the CPU. `model_inputs_to_streams` maps every argument of the criterion to a stream.
pub fn train<T: Element>(
    criterion: &Criterion,
    source: &mut dyn MinibatchProvider,
    model_inputs_to_streams: &[(Variable, String)],
    learners: Vec<Box<dyn Learner>>,
    options: TrainOptions,
    callbacks: Callbacks,
) -> Result<TrainHistory> {
    let map = model_inputs_to_streams;
    train_on::<T, Cpu>(Cpu, criterion, source, map, learners, options, callbacks)
}

/// [`train`] on `backend`.
pub fn train_on<T: Element, B: Backend>(
    backend: B,
    criterion: &Criterion,
    source: &mut dyn MinibatchProvider,
    model_inputs_to_streams: &[(Variable, String)],
    learners: Vec<Box<dyn Learner>>,
    options: TrainOptions,
    mut callbacks: Callbacks,
) -> Result<TrainHistory> {
    let max_samples = sample_limit(&options)?;
    let frequency = options
        .progress_frequency
        .or(options.epoch_size)
        .unwrap_or(max_samples)
        .max(1);
    check_map(criterion, model_inputs_to_streams)?;
    // Distributed training: progress is printed (and logged) by rank 0 alone, and
    // rank 0 alone writes (and so locks) the checkpoint.
    let distribution = learners.iter().find_map(|l| l.distribution());
    let lead = distribution.is_none_or(|d| d.rank == 0);
    // The checkpoint is this trainer's until it returns (see `checkpoint::claim`).
    let _checkpoint_lock = match callbacks.checkpoint.as_ref().filter(|_| lead) {
        Some(ck) => Some(checkpoint::claim(ck)?),
        None => None,
    };
    let mut writers = std::mem::take(&mut callbacks.progress_writers);
    if !lead {
        writers.clear();
    }
    let mut trainer = Trainer::<T, B>::with_backend(
        backend,
        None,
        criterion.loss.clone(),
        criterion.metric.clone(),
        learners,
        writers,
    )?;
    let mut run = Run::new(frequency, &options, &callbacks);
    if let Some(ck) = callbacks.checkpoint.as_ref().filter(|c| c.restore) {
        if let Some(state) = checkpoint::load(&ck.filename)? {
            checkpoint::restore(&state, &mut trainer, source)?;
            run.resume(&state, trainer.total_number_of_samples_seen());
        }
    }
    let mut io = RunIo {
        criterion,
        source,
        map: model_inputs_to_streams,
        callbacks: &mut callbacks,
    };
    while trainer.total_number_of_samples_seen() < max_samples && !run.stopped {
        let seen = trainer.total_number_of_samples_seen();
        // CNTK asks the reader for min(mb size, samples left) (units mixed, as CNTK).
        // Distributed: every worker reads its partition of a minibatch of all
        // workers' samples, once `distributed_after` samples are trained.
        let (parts, index, scale) = match distribution {
            Some(d) if seen >= d.parallelization_after => {
                (d.workers, d.rank, d.minibatch_size_scale as u64)
            }
            _ => (1, 0, 1),
        };
        let request = (options.minibatch_size.at(seen) as u64 * scale)
            .min(max_samples - seen)
            .max(1) as usize;
        let Some(part) = io.source.next_minibatch_partition(request, parts, index)? else {
            break;
        };
        let feeds = match &part.minibatch {
            Some(mb) => feeds_for(mb, io.map)?,
            None => Vec::new(),
        };
        let refs: Vec<(&Variable, &Value)> = feeds.iter().map(|(v, x)| (v, x)).collect();
        let before = trainer.training_totals();
        trainer.train_minibatch(&refs, part.end_of_sweep)?;
        run.count(&before, &trainer.training_totals());
        run.after_minibatch(&mut trainer, &mut io)?;
    }
    run.finish(&mut trainer, &mut io)
}

/// The number of trainer samples to train on: `max_samples`, or the epochs'
/// samples; `options` checked.
fn sample_limit(options: &TrainOptions) -> Result<u64> {
    options.minibatch_size.validate()?;
    if options.max_epochs.is_some() && options.max_samples.is_some() {
        return Err(Error::invalid(
            "train",
            "give max_epochs or max_samples, not both",
        ));
    }
    match (options.max_samples, options.epoch_size) {
        (Some(m), _) => Ok(m),
        (None, Some(e)) => Ok(e.saturating_mul(options.max_epochs.unwrap_or(1))),
        (None, None) => Err(Error::invalid(
            "train",
            "epoch_size is required with a minibatch source (or give max_samples)",
        )),
    }
}

/// What a run reads and calls besides its trainer.
struct RunIo<'r, 's> {
    criterion: &'r Criterion,
    source: &'s mut dyn MinibatchProvider,
    map: &'r [(Variable, String)],
    callbacks: &'r mut Callbacks,
}

/// A run's bookkeeping: its history so far, and where the next epoch summary,
/// cross-validation and checkpoint fall, in trainer samples.
struct Run {
    history: TrainHistory,
    cv_index: u64,
    ckpt_index: u64,
    frequency: u64,
    next_epoch: u64,
    cv_freq: Option<u64>,
    ck_freq: Option<u64>,
    next_cv: u64,
    next_ck: u64,
    /// Minibatches per `updates` record, as CNTK without writers.
    window: u64,
    window_acc: Totals,
    /// A cross-validation callback asked to stop.
    stopped: bool,
}

impl Run {
    fn new(frequency: u64, options: &TrainOptions, callbacks: &Callbacks) -> Run {
        let cv_freq = callbacks
            .cross_validation
            .as_ref()
            .and_then(|c| c.frequency)
            .filter(|&f| f > 0);
        let ck_freq = callbacks
            .checkpoint
            .as_ref()
            .and_then(|c| c.frequency)
            .filter(|&f| f > 0);
        let mb0 = options.minibatch_size.at(0).max(1) as u64;
        Run {
            history: TrainHistory::default(),
            cv_index: 0,
            ckpt_index: 0,
            frequency,
            next_epoch: frequency,
            cv_freq,
            ck_freq,
            next_cv: cv_freq.unwrap_or(u64::MAX),
            next_ck: ck_freq.unwrap_or(u64::MAX),
            window: (frequency / mb0).max(1),
            window_acc: Totals::default(),
            stopped: false,
        }
    }

    /// Continue from a checkpoint taken after `seen` trainer samples.
    fn resume(&mut self, state: &CheckpointState, seen: u64) {
        self.history = state.history.clone();
        self.next_epoch = state.next_epoch;
        self.cv_index = state.cv_index;
        self.ckpt_index = state.checkpoint_index;
        if let Some(f) = self.cv_freq {
            self.next_cv = (seen / f + 1) * f;
        }
        if let Some(f) = self.ck_freq {
            self.next_ck = (seen / f + 1) * f;
        }
    }

    /// One minibatch's totals (trainer totals before and after it) into the
    /// `updates` window.
    fn count(&mut self, before: &Totals, after: &Totals) {
        self.window_acc.updates += 1;
        self.window_acc.samples += after.samples.saturating_sub(before.samples);
        self.window_acc.loss += after.loss - before.loss;
        self.window_acc.metric += after.metric - before.metric;
        if self.window_acc.updates >= self.window {
            self.history.updates.push(Record::of(&self.window_acc));
            self.window_acc = Totals::default();
        }
    }

    fn state(&self) -> CheckpointState {
        CheckpointState {
            history: self.history.clone(),
            next_epoch: self.next_epoch,
            cv_index: self.cv_index,
            checkpoint_index: self.ckpt_index + 1,
        }
    }

    /// The epoch summary, cross-validation and checkpoint that fall due.
    fn after_minibatch<T: Element, B: Backend>(
        &mut self,
        trainer: &mut Trainer<T, B>,
        io: &mut RunIo,
    ) -> Result<()> {
        let seen = trainer.total_number_of_samples_seen();
        if seen >= self.next_epoch {
            let t = trainer.summarize_training_progress();
            self.history.epoch_summaries.push(Record::of(&t));
            while self.next_epoch <= seen {
                self.next_epoch += self.frequency;
            }
        }
        if seen >= self.next_cv {
            while self.next_cv <= seen {
                self.next_cv = self
                    .next_cv
                    .saturating_add(self.cv_freq.unwrap_or(u64::MAX));
            }
            if let Some(cv) = io.callbacks.cross_validation.as_mut() {
                self.stopped = !run_cv(trainer, cv, io.map, self.cv_index)?;
                self.cv_index += 1;
            }
        }
        if seen >= self.next_ck {
            while self.next_ck <= seen {
                self.next_ck = self
                    .next_ck
                    .saturating_add(self.ck_freq.unwrap_or(u64::MAX));
            }
            if let Some(ck) = io.callbacks.checkpoint.as_ref() {
                trainer.synchronize()?;
                let state = self.state();
                checkpoint::save(
                    ck,
                    self.ckpt_index,
                    io.criterion,
                    trainer,
                    io.source,
                    &state,
                )?;
                self.ckpt_index += 1;
            }
        }
        Ok(())
    }

    /// After the last minibatch: the last summaries, the cross-validation and
    /// checkpoint of a run without their frequencies, the test pass.
    fn finish<T: Element, B: Backend>(
        mut self,
        trainer: &mut Trainer<T, B>,
        io: &mut RunIo,
    ) -> Result<TrainHistory> {
        // Block momentum: the block in progress is aggregated, so every worker ends
        // with the same model.
        trainer.synchronize()?;
        if trainer.training_totals().updates > 0 {
            let t = trainer.summarize_training_progress();
            self.history.epoch_summaries.push(Record::of(&t));
        }
        if self.window_acc.updates > 0
            && self.history.updates.len() < self.history.epoch_summaries.len()
        {
            self.history.updates.push(Record::of(&self.window_acc));
        }
        if self.cv_freq.is_none() && !self.stopped {
            if let Some(cv) = io.callbacks.cross_validation.as_mut() {
                run_cv(trainer, cv, io.map, self.cv_index)?;
            }
        }
        if self.ck_freq.is_none() {
            if let Some(ck) = io.callbacks.checkpoint.as_ref() {
                let state = self.state();
                checkpoint::save(
                    ck,
                    self.ckpt_index,
                    io.criterion,
                    trainer,
                    io.source,
                    &state,
                )?;
            }
        }
        let mut history = self.history;
        if let Some(tc) = io.callbacks.test.as_mut() {
            let map = tc
                .model_inputs_to_streams
                .clone()
                .unwrap_or_else(|| io.map.to_vec());
            let t = evaluate_pass(trainer, tc.source.as_mut(), &map, tc.minibatch_size, None)?;
            history.test_summary = Some((Record::of(&t).metric, t.samples));
        }
        let empty = Record {
            loss: 0.0,
            metric: 0.0,
            samples: 0,
        };
        if history.updates.is_empty() {
            history.updates.push(empty);
        }
        if history.epoch_summaries.is_empty() {
            history.epoch_summaries.push(empty);
        }
        Ok(history)
    }
}

fn check_map(c: &Criterion, map: &[(Variable, String)]) -> Result<()> {
    let mut roots = vec![c.loss.clone()];
    roots.extend(c.metric.iter().cloned());
    let f = crate::graph::Function::combine(&roots, "criterion")?;
    for a in f.arguments() {
        if !map.iter().any(|(v, _)| *v == a) {
            return Err(Error::Argument(format!(
                "criterion input {} is not mapped to a stream (model_inputs_to_streams)",
                a.label()
            )));
        }
    }
    Ok(())
}

/// One pass of the metric; returns its totals after reporting a test summary.
fn evaluate_pass<T: Element, B: Backend>(
    trainer: &mut Trainer<T, B>,
    source: &mut dyn MinibatchProvider,
    map: &[(Variable, String)],
    minibatch_size: usize,
    max_samples: Option<u64>,
) -> Result<Totals> {
    let mut samples = 0u64;
    while max_samples.is_none_or(|m| samples < m) {
        let Some(mb) = source.next_minibatch(minibatch_size.max(1))? else {
            break;
        };
        let feeds = feeds_for(&mb, map)?;
        let refs: Vec<(&Variable, &Value)> = feeds.iter().map(|(v, x)| (v, x)).collect();
        trainer.test_minibatch(&refs)?;
        samples = trainer.test_totals().samples;
        if mb.end_of_sweep() {
            break;
        }
    }
    Ok(trainer.summarize_test_progress())
}

fn run_cv<T: Element, B: Backend>(
    trainer: &mut Trainer<T, B>,
    cv: &mut CrossValidationConfig,
    train_map: &[(Variable, String)],
    index: u64,
) -> Result<bool> {
    let map = cv
        .model_inputs_to_streams
        .clone()
        .unwrap_or_else(|| train_map.to_vec());
    let t = evaluate_pass(
        trainer,
        cv.source.as_mut(),
        &map,
        cv.minibatch_size,
        cv.max_samples,
    )?;
    let r = CvResult {
        index,
        average_error: Record::of(&t).metric,
        num_samples: t.samples,
        num_minibatches: t.updates,
    };
    Ok(match cv.callback.as_mut() {
        Some(cb) => cb(&r, trainer.parameter_learners_mut()),
        None => true,
    })
}

/// Evaluate the criterion's metric (its loss if there is none) over one pass of
/// `source` (CNTK's `criterion.test(...)`) on the CPU; returns (average metric,
/// samples).
pub fn test<T: Element>(
    criterion: &Criterion,
    source: &mut dyn MinibatchProvider,
    model_inputs_to_streams: &[(Variable, String)],
    minibatch_size: usize,
    progress_writers: Vec<Box<dyn ProgressWriter>>,
) -> Result<(f64, u64)> {
    let map = model_inputs_to_streams;
    test_on::<T, Cpu>(
        Cpu,
        criterion,
        source,
        map,
        minibatch_size,
        progress_writers,
    )
}

/// [`test`] on `backend`.
pub fn test_on<T: Element, B: Backend>(
    backend: B,
    criterion: &Criterion,
    source: &mut dyn MinibatchProvider,
    model_inputs_to_streams: &[(Variable, String)],
    minibatch_size: usize,
    progress_writers: Vec<Box<dyn ProgressWriter>>,
) -> Result<(f64, u64)> {
    check_map(criterion, model_inputs_to_streams)?;
    let mut trainer = Trainer::<T, B>::with_backend(
        backend,
        None,
        criterion.loss.clone(),
        criterion.metric.clone(),
        Vec::new(),
        progress_writers,
    )?;
    let t = evaluate_pass(
        &mut trainer,
        source,
        model_inputs_to_streams,
        minibatch_size,
        None,
    )?;
    Ok((Record::of(&t).metric, t.samples))
}

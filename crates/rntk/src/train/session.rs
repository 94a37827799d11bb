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
    options.minibatch_size.validate()?;
    if options.max_epochs.is_some() && options.max_samples.is_some() {
        return Err(Error::invalid(
            "train",
            "give max_epochs or max_samples, not both",
        ));
    }
    let max_samples = match (options.max_samples, options.epoch_size) {
        (Some(m), _) => m,
        (None, Some(e)) => e.saturating_mul(options.max_epochs.unwrap_or(1)),
        (None, None) => {
            return Err(Error::invalid(
                "train",
                "epoch_size is required with a minibatch source (or give max_samples)",
            ))
        }
    };
    let frequency = options
        .progress_frequency
        .or(options.epoch_size)
        .unwrap_or(max_samples)
        .max(1);
    check_map(criterion, model_inputs_to_streams)?;
    // The checkpoint is this trainer's until it returns (see `checkpoint::claim`).
    let _checkpoint_lock = match callbacks.checkpoint.as_ref() {
        Some(ck) => Some(checkpoint::claim(ck)?),
        None => None,
    };
    let writers = std::mem::take(&mut callbacks.progress_writers);
    let mut trainer = Trainer::<T, B>::with_backend(
        backend,
        None,
        criterion.loss.clone(),
        criterion.metric.clone(),
        learners,
        writers,
    )?;
    let mut history = TrainHistory::default();
    let mut cv_index = 0u64;
    let mut ckpt_index = 0u64;
    // Where the next epoch, validation and checkpoint fall, in trainer samples.
    let mut next_epoch = frequency;
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
    let mut next_cv = cv_freq.unwrap_or(u64::MAX);
    let mut next_ck = ck_freq.unwrap_or(u64::MAX);
    // Minibatches per `updates` record, as CNTK without writers.
    let mb0 = options.minibatch_size.at(0).max(1) as u64;
    let window = (frequency / mb0).max(1);
    let mut window_acc = Totals::default();

    if let Some(ck) = callbacks.checkpoint.as_ref().filter(|c| c.restore) {
        if let Some(state) = checkpoint::load(&ck.filename)? {
            checkpoint::restore(&state, &mut trainer, source)?;
            history = state.history.clone();
            next_epoch = state.next_epoch;
            cv_index = state.cv_index;
            ckpt_index = state.checkpoint_index;
            if let Some(f) = cv_freq {
                next_cv = (trainer.total_number_of_samples_seen() / f + 1) * f;
            }
            if let Some(f) = ck_freq {
                next_ck = (trainer.total_number_of_samples_seen() / f + 1) * f;
            }
        }
    }

    let mut stopped = false;
    while trainer.total_number_of_samples_seen() < max_samples && !stopped {
        let seen = trainer.total_number_of_samples_seen();
        // CNTK asks the reader for min(mb size, samples left) (units mixed, as CNTK).
        let request = (options.minibatch_size.at(seen) as u64)
            .min(max_samples - seen)
            .max(1) as usize;
        let Some(mb) = source.next_minibatch(request)? else {
            break;
        };
        let feeds = feeds_for(&mb, model_inputs_to_streams)?;
        let refs: Vec<(&Variable, &Value)> = feeds.iter().map(|(v, x)| (v, x)).collect();
        let before = trainer.training_totals();
        trainer.train_minibatch(&refs, mb.end_of_sweep())?;
        let after = trainer.training_totals();
        window_acc.updates += 1;
        window_acc.samples += after.samples.saturating_sub(before.samples);
        window_acc.loss += after.loss - before.loss;
        window_acc.metric += after.metric - before.metric;
        if window_acc.updates >= window {
            history.updates.push(Record::of(&window_acc));
            window_acc = Totals::default();
        }
        let seen = trainer.total_number_of_samples_seen();
        if seen >= next_epoch {
            let t = trainer.summarize_training_progress();
            history.epoch_summaries.push(Record::of(&t));
            while next_epoch <= seen {
                next_epoch += frequency;
            }
        }
        if seen >= next_cv {
            while next_cv <= seen {
                next_cv = next_cv.saturating_add(cv_freq.unwrap_or(u64::MAX));
            }
            if let Some(cv) = callbacks.cross_validation.as_mut() {
                stopped = !run_cv(&mut trainer, cv, model_inputs_to_streams, cv_index)?;
                cv_index += 1;
            }
        }
        if seen >= next_ck {
            while next_ck <= seen {
                next_ck = next_ck.saturating_add(ck_freq.unwrap_or(u64::MAX));
            }
            if let Some(ck) = callbacks.checkpoint.as_ref() {
                let state = CheckpointState {
                    history: history.clone(),
                    next_epoch,
                    cv_index,
                    checkpoint_index: ckpt_index + 1,
                };
                checkpoint::save(ck, ckpt_index, criterion, &trainer, source, &state)?;
                ckpt_index += 1;
            }
        }
    }
    if trainer.training_totals().updates > 0 {
        let t = trainer.summarize_training_progress();
        history.epoch_summaries.push(Record::of(&t));
    }
    if window_acc.updates > 0 && history.updates.len() < history.epoch_summaries.len() {
        history.updates.push(Record::of(&window_acc));
    }
    if cv_freq.is_none() && !stopped {
        if let Some(cv) = callbacks.cross_validation.as_mut() {
            run_cv(&mut trainer, cv, model_inputs_to_streams, cv_index)?;
        }
    }
    if ck_freq.is_none() {
        if let Some(ck) = callbacks.checkpoint.as_ref() {
            let state = CheckpointState {
                history: history.clone(),
                next_epoch,
                cv_index,
                checkpoint_index: ckpt_index + 1,
            };
            checkpoint::save(ck, ckpt_index, criterion, &trainer, source, &state)?;
        }
    }
    if let Some(tc) = callbacks.test.as_mut() {
        let map = tc
            .model_inputs_to_streams
            .clone()
            .unwrap_or_else(|| model_inputs_to_streams.to_vec());
        let t = evaluate_pass(
            &mut trainer,
            tc.source.as_mut(),
            &map,
            tc.minibatch_size,
            None,
        )?;
        history.test_summary = Some((Record::of(&t).metric, t.samples));
    }
    if history.updates.is_empty() {
        history.updates.push(Record {
            loss: 0.0,
            metric: 0.0,
            samples: 0,
        });
    }
    if history.epoch_summaries.is_empty() {
        history.epoch_summaries.push(Record {
            loss: 0.0,
            metric: 0.0,
            samples: 0,
        });
    }
    Ok(history)
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

//! `Trainer`: one forward/backward of the summed loss per minibatch, learner updates,
//! CNTK's sample counting (N = valid positions of the loss output) and the averages and
//! summaries that progress writers print.

use super::progress::{EpochClock, ProgressWriter, Totals};
use crate::backend::{Backend, Cpu};
use crate::error::{Error, Result};
use crate::exec::Executor;
use crate::graph::Variable;
use crate::learners::Learner;
use crate::tensor::{Element, Layout, Value};
use std::collections::HashSet;

/// CNTK's `Trainer(model, (loss, metric), learners, progress_writers)`, on backend `B`
/// (the CPU by default).
pub struct Trainer<T: Element = f32, B: Backend = Cpu> {
    backend: B,
    model: Option<Variable>,
    loss: Variable,
    metric: Option<Variable>,
    learners: Vec<Box<dyn Learner>>,
    writers: Vec<Box<dyn ProgressWriter>>,
    exec: Executor<T, B>,
    eval: Option<Executor<T, B>>,
    params: Vec<Variable>,
    reported: Vec<Vec<(String, f64)>>,
    prev: Totals,
    total_samples: u64,
    train_acc: Totals,
    test_acc: Totals,
    clock: EpochClock,
}

/// Sum of every element of a value, rounded to `T`: CNTK's minibatch aggregate of the
/// loss (and metric) is a scalar of the model's element type.
fn sum<T: Element>(v: &Value) -> f64 {
    to_t::<T>(v.dense_rows::<T>().iter().map(|x| x.as_f64()).sum())
}

/// `x` rounded to `T`.
fn to_t<T: Element>(x: f64) -> f64 {
    T::from_f64(x).as_f64()
}

/// `acc + x` in `T` arithmetic. CNTK's trainer accumulates the minibatch aggregates since
/// the last summary in an `Accumulator` of the model's element type (float32 for a
/// float32 model), and progress writers print differences of those running totals
/// (e.g. `Minibatch[81-90]` = (total after 90 − total after 80) / samples), so their
/// last printed digit depends on this rounding (seed_oracle.rs shows both cases).
fn accumulate<T: Element>(acc: f64, x: f64) -> f64 {
    to_t::<T>(acc + x)
}

/// CNTK's N: valid positions of the loss output over its dynamic axes; a loss without
/// dynamic axes falls back to the samples of the first fed sequence (or batch) input.
pub fn sample_count(loss: &Value, feeds: &[(&Variable, &Value)]) -> usize {
    match loss.layout() {
        Layout::Static => feeds
            .iter()
            .map(|(_, v)| v.num_samples())
            .find(|&n| n > 0)
            .unwrap_or(1),
        l => l.rows(),
    }
}

impl<T: Element> Trainer<T, Cpu> {
    /// A trainer minimizing Σ `loss` (reporting `metric` if given) with `learners`,
    /// which must own disjoint sets of the loss's parameters, on the CPU.
    pub fn new(
        model: Option<Variable>,
        loss: Variable,
        metric: Option<Variable>,
        learners: Vec<Box<dyn Learner>>,
        writers: Vec<Box<dyn ProgressWriter>>,
    ) -> Result<Self> {
        Self::with_backend(Cpu, model, loss, metric, learners, writers)
    }
}

impl<T: Element, B: Backend> Trainer<T, B> {
    /// [`Trainer::new`] on `backend`: parameters, gradients and learner state live
    /// there; only feeds and the fetched loss and metric cross to and from the host.
    pub fn with_backend(
        backend: B,
        model: Option<Variable>,
        loss: Variable,
        metric: Option<Variable>,
        learners: Vec<Box<dyn Learner>>,
        writers: Vec<Box<dyn ProgressWriter>>,
    ) -> Result<Self> {
        let mut roots = vec![loss.clone()];
        roots.extend(metric.iter().cloned());
        let exec = Executor::<T, B>::with_backend(backend.clone(), &roots)?;
        let mut seen = HashSet::new();
        let mut params = Vec::new();
        for l in &learners {
            for p in l.parameters() {
                if !seen.insert(p.key()) {
                    return Err(Error::invalid(
                        "Trainer",
                        format!("parameter {} is owned by more than one learner", p.label()),
                    ));
                }
                params.push(p.clone());
            }
        }
        let reachable: HashSet<_> = exec.parameters().iter().map(|p| p.key()).collect();
        if let Some(p) = params.iter().find(|p| !reachable.contains(&p.key())) {
            return Err(Error::invalid(
                "Trainer",
                format!(
                    "learner parameter {} does not influence the loss {}",
                    p.label(),
                    loss.label()
                ),
            ));
        }
        let n = learners.len();
        Ok(Trainer {
            backend,
            model,
            loss,
            metric,
            learners,
            writers,
            exec,
            eval: None,
            params,
            reported: vec![Vec::new(); n],
            prev: Totals::default(),
            total_samples: 0,
            train_acc: Totals::default(),
            test_acc: Totals::default(),
            clock: EpochClock::start(),
        })
    }

    /// The backend the trainer computes on.
    pub fn backend(&self) -> &B {
        &self.backend
    }
    pub fn model(&self) -> Option<&Variable> {
        self.model.as_ref()
    }
    pub fn loss_function(&self) -> &Variable {
        &self.loss
    }
    pub fn evaluation_function(&self) -> Option<&Variable> {
        self.metric.as_ref()
    }
    pub fn parameter_learners(&self) -> &[Box<dyn Learner>] {
        &self.learners
    }
    pub fn parameter_learners_mut(&mut self) -> &mut [Box<dyn Learner>] {
        &mut self.learners
    }
    /// Attach another progress writer.
    pub fn add_progress_writer(&mut self, w: Box<dyn ProgressWriter>) {
        self.writers.push(w);
    }
    pub fn progress_writers_mut(&mut self) -> &mut Vec<Box<dyn ProgressWriter>> {
        &mut self.writers
    }

    /// One training step on the fed minibatch. Returns false if no learner updated
    /// (e.g. every learning rate is 0).
    pub fn train_minibatch(
        &mut self,
        feeds: &[(&Variable, &Value)],
        is_sweep_end: bool,
    ) -> Result<bool> {
        self.exec.forward(feeds, true)?;
        let loss = self.exec.value(&self.loss)?;
        let n = sample_count(&loss, feeds);
        let loss_sum = sum::<T>(&loss);
        let metric_sum = match &self.metric {
            Some(m) => sum::<T>(&self.exec.value(m)?),
            None => 0.0,
        };
        let wrt: Vec<&Variable> = self.params.iter().collect();
        let mut grads = self.exec.backward(&[(&self.loss, None)], &wrt)?.into_iter();
        // Learner hyper-parameters are reported before the update that uses them.
        for (k, l) in self.learners.iter().enumerate() {
            let lines = l.progress_lines();
            if lines != self.reported[k] {
                for (key, value) in &lines {
                    let old = self.reported[k]
                        .iter()
                        .find(|(k2, _)| k2 == key)
                        .map(|(_, v)| *v);
                    if old != Some(*value) {
                        for w in &mut self.writers {
                            w.write(key, *value);
                        }
                    }
                }
                self.reported[k] = lines;
            }
        }
        let mut updated = false;
        let mut used = Vec::with_capacity(self.params.len());
        let mut offset = 0;
        for l in &mut self.learners {
            let count = l.parameters().len();
            // The gradients are moved into tensors, not copied (they can be large:
            // an embedding table's or an output layer's).
            let pairs = self.params[offset..offset + count]
                .iter()
                .zip(grads.by_ref().take(count))
                .map(|(p, g)| Ok((p.clone(), g.into_tensor()?)))
                .collect::<Result<Vec<_>>>()?;
            offset += count;
            updated |= l.update(&pairs, n, is_sweep_end)?;
            used.extend(pairs.into_iter().map(|(_, g)| g));
        }
        // The gradient storage goes back to the executor for the next minibatch.
        self.exec.recycle_gradients(&wrt, used);
        self.prev = Totals {
            updates: 1,
            samples: n as u64,
            loss: loss_sum,
            metric: metric_sum,
        };
        self.total_samples += n as u64;
        self.train_acc.updates += 1;
        self.train_acc.samples += n as u64;
        self.train_acc.loss = accumulate::<T>(self.train_acc.loss, loss_sum);
        self.train_acc.metric = accumulate::<T>(self.train_acc.metric, metric_sum);
        let acc = self.train_acc;
        for w in &mut self.writers {
            w.on_training_update(&acc);
        }
        Ok(updated)
    }

    /// Evaluate the metric (the loss if there is none) on one minibatch without
    /// updating; returns Σ metric / N.
    pub fn test_minibatch(&mut self, feeds: &[(&Variable, &Value)]) -> Result<f64> {
        let target = self.metric.clone().unwrap_or_else(|| self.loss.clone());
        if self.eval.is_none() {
            let target = std::slice::from_ref(&target);
            self.eval = Some(Executor::<T, B>::inference_with_backend(
                self.backend.clone(),
                target,
            )?);
        }
        let ex = self.eval.as_mut().expect("just created");
        ex.forward(feeds, false)?;
        let v = ex.value(&target)?;
        let n = sample_count(&v, feeds);
        let s = sum::<T>(&v);
        self.test_acc.updates += 1;
        self.test_acc.samples += n as u64;
        self.test_acc.metric = accumulate::<T>(self.test_acc.metric, s);
        let acc = self.test_acc;
        for w in &mut self.writers {
            w.on_test_update(&acc);
        }
        Ok(s / n.max(1) as f64)
    }

    /// Σ loss / N of the last training minibatch.
    pub fn previous_minibatch_loss_average(&self) -> f64 {
        self.prev.loss / self.prev.samples.max(1) as f64
    }
    /// Σ metric / N of the last training minibatch.
    pub fn previous_minibatch_evaluation_average(&self) -> f64 {
        self.prev.metric / self.prev.samples.max(1) as f64
    }
    pub fn previous_minibatch_sample_count(&self) -> u64 {
        self.prev.samples
    }
    pub fn total_number_of_samples_seen(&self) -> u64 {
        self.total_samples
    }
    /// Training forwards run so far.
    pub fn training_passes(&self) -> u64 {
        self.exec.training_passes()
    }

    /// Each dropout node's mask stream position (CNTK's `rngOffset`), in plan order:
    /// checkpoints keep them so dropout resumes exactly.
    pub fn dropout_offsets(&self) -> Vec<u64> {
        self.exec.dropout_offsets()
    }

    /// Resume the dropout streams from a checkpoint's offsets.
    pub fn restore_dropout_offsets(&mut self, offsets: &[u64]) -> Result<()> {
        self.exec.set_dropout_offsets(offsets)
    }

    /// Resume counters from a checkpoint.
    pub fn restore_progress(&mut self, total_samples: u64, training_passes: u64) {
        self.total_samples = total_samples;
        self.exec.set_training_passes(training_passes);
    }

    /// The parameters the learners update, in learner order.
    pub fn parameters(&self) -> &[Variable] {
        &self.params
    }

    /// Totals of the current (unsummarized) test pass.
    pub fn test_totals(&self) -> Totals {
        self.test_acc
    }

    /// Totals of the current (unsummarized) training epoch.
    pub fn training_totals(&self) -> Totals {
        self.train_acc
    }

    /// Report everything since the previous training summary and restart the counts.
    pub fn summarize_training_progress(&mut self) -> Totals {
        let acc = std::mem::take(&mut self.train_acc);
        let secs = self.clock.seconds();
        for w in &mut self.writers {
            w.on_training_summary(&acc, secs);
        }
        self.clock = EpochClock::start();
        acc
    }

    /// Report everything since the previous test summary and restart the counts.
    pub fn summarize_test_progress(&mut self) -> Totals {
        let acc = std::mem::take(&mut self.test_acc);
        for w in &mut self.writers {
            w.on_test_summary(&acc);
        }
        acc
    }
}

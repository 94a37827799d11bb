//! `StandardLearner`: CNTK's LearnerBase — validation, schedules, counters, the
//! clip → L2 → rule → L1 pipeline and checkpoints around any [`UpdateRule`].

use super::regularization::{add_l2, clip_gradient, l1_soft_threshold, LearnerOptions};
use super::schedule::IGNORE;
use super::{Learner, LearnerState, RuleState, Schedule, StepContext, UpdateRule};
use crate::error::{Error, Result};
use crate::graph::Variable;
use crate::tensor::{DType, Element, Tensor};
use std::collections::HashSet;

/// Per-parameter rule state in the parameter's element type.
#[derive(Clone, Debug, PartialEq)]
enum ParamState {
    F32(RuleState<f32>),
    F64(RuleState<f64>),
}

/// A learner made of an [`UpdateRule`] and CNTK's common machinery.
pub struct StandardLearner {
    params: Vec<Variable>,
    lr: Schedule,
    /// Samples and sweeps at the last learning-rate reset: the schedule's origin.
    lr_origin: (u64, u64),
    options: LearnerOptions,
    rule: Box<dyn UpdateRule>,
    states: Vec<ParamState>,
    sample_count: u64,
    minibatch_count: u64,
    sweep_count: u64,
    /// The clipped (or L2-added) gradient of the parameter being updated, reused.
    scratch: (Vec<f32>, Vec<f64>),
}

impl StandardLearner {
    /// Build a learner over `parameters` with learning-rate schedule `lr`.
    ///
    /// Errors: no parameters, a variable that is not a parameter or has no value yet,
    /// a parameter listed twice, a negative or non-finite learning rate, or options out
    /// of range.
    pub fn new(
        parameters: &[Variable],
        lr: Schedule,
        options: LearnerOptions,
        mut rule: Box<dyn UpdateRule>,
    ) -> Result<StandardLearner> {
        let name = rule.name().to_string();
        let ctx = format!("{name} learner");
        if parameters.is_empty() {
            return Err(Error::invalid(
                ctx,
                "no parameters to learn; pass at least one",
            ));
        }
        let mut seen = HashSet::new();
        let mut states = Vec::with_capacity(parameters.len());
        for p in parameters {
            if !p.is_parameter() {
                return Err(Error::invalid(
                    ctx,
                    format!("{} is a {:?}, not a parameter", p.label(), p.kind()),
                ));
            }
            if !seen.insert(p.key()) {
                return Err(Error::invalid(
                    ctx,
                    format!("parameter {} is listed twice", p.label()),
                ));
            }
            let storage = p.storage().ok_or_else(|| {
                Error::invalid(ctx.clone(), format!("parameter {} has no value", p.label()))
            })?;
            let t = storage.read().expect("parameter lock");
            if p.shape().has_inferred() {
                return Err(Error::invalid(
                    ctx,
                    format!(
                        "parameter {} still has inferred dimensions {}; apply the model to its inputs first",
                        p.label(),
                        p.shape()
                    ),
                ));
            }
            states.push(fresh_state(&*rule, t.dtype(), t.shape().numel()));
        }
        options.validate(&name)?;
        let mut lr = lr;
        lr.adopt_minibatch_size(options.minibatch_size);
        check_learning_rate(&name, &lr)?;
        rule.adopt_minibatch_size(options.minibatch_size);
        Ok(StandardLearner {
            params: parameters.to_vec(),
            lr,
            lr_origin: (0, 0),
            options,
            rule,
            states,
            sample_count: 0,
            minibatch_count: 0,
            sweep_count: 0,
            scratch: (Vec::new(), Vec::new()),
        })
    }

    /// The options the learner was built with.
    pub fn options(&self) -> &LearnerOptions {
        &self.options
    }

    /// The learning-rate schedule in use (after a learner-level `minibatch_size`).
    pub fn learning_rate_schedule(&self) -> &Schedule {
        &self.lr
    }

    fn schedule_position(&self) -> (u64, u64) {
        (
            self.sample_count - self.lr_origin.0,
            self.sweep_count - self.lr_origin.1,
        )
    }

    /// Put the gradients in parameter order, refusing strays, gaps and mismatches.
    fn order_gradients<'a>(&self, gradients: &'a [(Variable, Tensor)]) -> Result<Vec<&'a Tensor>> {
        let ctx = format!("{} learner update", self.rule.name());
        let mut slot: Vec<Option<&Tensor>> = vec![None; self.params.len()];
        for (v, g) in gradients {
            let i = self.params.iter().position(|p| p == v).ok_or_else(|| {
                Error::invalid(
                    ctx.clone(),
                    format!(
                        "got a gradient for {}, which this learner does not own",
                        v.label()
                    ),
                )
            })?;
            if slot[i].is_some() {
                return Err(Error::invalid(
                    ctx,
                    format!("two gradients for parameter {}", v.label()),
                ));
            }
            let p = &self.params[i];
            let shape = p.shape();
            if g.shape() != &shape {
                return Err(Error::invalid(
                    ctx,
                    format!(
                        "gradient of {} has shape {}, the parameter has shape {shape}",
                        p.label(),
                        g.shape()
                    ),
                ));
            }
            if g.dtype() != p.dtype() {
                return Err(Error::DType {
                    context: format!("{ctx}, gradient of {}", p.label()),
                    expected: p.dtype().to_string(),
                    got: g.dtype().to_string(),
                });
            }
            slot[i] = Some(g);
        }
        slot.iter()
            .zip(&self.params)
            .map(|(g, p)| {
                g.ok_or_else(|| {
                    Error::invalid(
                        ctx.clone(),
                        format!("no gradient for parameter {}", p.label()),
                    )
                })
            })
            .collect()
    }
}

fn fresh_state(rule: &dyn UpdateRule, dtype: DType, n: usize) -> ParamState {
    match dtype {
        DType::F32 => ParamState::F32(RuleState {
            buffers: vec![vec![0.0; n]; rule.buffers()],
            scalars: vec![0.0; rule.scalars()],
        }),
        DType::F64 => ParamState::F64(RuleState {
            buffers: vec![vec![0.0; n]; rule.buffers()],
            scalars: vec![0.0; rule.scalars()],
        }),
    }
}

fn check_learning_rate(learner: &str, lr: &Schedule) -> Result<()> {
    lr.check_values(
        &format!("{learner} learner, learning rate"),
        |v| v >= 0.0 && v.is_finite(),
        ">= 0 and finite",
    )
}

/// One parameter's pipeline in its element type: clip and L2 on a copy of the gradient
/// (the caller's tensor is left alone), the rule, then L1. `false` if the parameter's
/// storage is not of type T (its value was replaced by one of another type).
fn step_typed<T: Element>(
    rule: &mut dyn UpdateRule,
    o: &LearnerOptions,
    ctx: &StepContext,
    value: &mut Tensor,
    g: &Tensor,
    (s, scratch): (&mut RuleState<T>, &mut Vec<T>),
    apply: impl Fn(&mut dyn UpdateRule, &StepContext, &mut [T], &[T], &mut RuleState<T>),
) -> bool {
    let (Some(p), Some(g)) = (value.as_mut_slice::<T>(), g.as_slice::<T>()) else {
        return false;
    };
    let n = ctx.sample_count;
    let g = preprocess(o, p, g, n, scratch);
    apply(rule, ctx, p, g, s);
    l1_soft_threshold(p, ctx.eta, o.l1_regularization_weight, n);
    true
}

/// One rule step for every parameter, in order.
fn update_all(
    rule: &mut dyn UpdateRule,
    o: &LearnerOptions,
    ctx: &StepContext,
    params: &[Variable],
    grads: Vec<&Tensor>,
    states: &mut [ParamState],
    scratch: &mut (Vec<f32>, Vec<f64>),
) -> Result<()> {
    for ((p, g), state) in params.iter().zip(grads).zip(states.iter_mut()) {
        let storage = p.storage().ok_or_else(|| {
            Error::invalid(
                format!("{} learner", rule.name()),
                format!("{} lost its value", p.label()),
            )
        })?;
        let mut value = storage.write().expect("parameter lock");
        let done = match state {
            ParamState::F32(s) => {
                let b = &mut scratch.0;
                step_typed(rule, o, ctx, &mut value, g, (s, b), |r, c, p, g, s| {
                    r.apply_f32(c, p, g, s)
                })
            }
            ParamState::F64(s) => {
                let b = &mut scratch.1;
                step_typed(rule, o, ctx, &mut value, g, (s, b), |r, c, p, g, s| {
                    r.apply_f64(c, p, g, s)
                })
            }
        };
        if !done {
            return Err(Error::DType {
                context: format!("{} learner update of {}", rule.name(), p.label()),
                expected: g.dtype().to_string(),
                got: value.dtype().to_string(),
            });
        }
    }
    Ok(())
}

/// Clip and L2 on a copy of the gradient in `buf` (the caller's tensor is left alone);
/// the gradient itself when neither applies. Truncation clips while copying (one pass).
fn preprocess<'a, T: Element>(
    o: &LearnerOptions,
    p: &[T],
    g: &'a [T],
    n: usize,
    buf: &'a mut Vec<T>,
) -> &'a [T] {
    let threshold = o.gradient_clipping_threshold_per_sample;
    let clip = threshold != f64::INFINITY;
    if !clip && o.l2_regularization_weight <= 0.0 {
        return g;
    }
    buf.clear();
    if clip && o.gradient_clipping_with_truncation {
        // clip_gradient's clamp (NaN stays NaN), fused with the copy
        let t = T::from_f64(threshold * n as f64);
        buf.extend(g.iter().map(|&x| {
            if x > t {
                t
            } else if x < -t {
                -t
            } else {
                x
            }
        }));
    } else {
        buf.extend_from_slice(g);
        clip_gradient(buf, threshold, o.gradient_clipping_with_truncation, n);
    }
    add_l2(buf, p, o.l2_regularization_weight, n);
    buf
}

impl Learner for StandardLearner {
    fn name(&self) -> &str {
        self.rule.name()
    }

    fn parameters(&self) -> &[Variable] {
        &self.params
    }

    fn update(
        &mut self,
        gradients: &[(Variable, Tensor)],
        sample_count: usize,
        is_sweep_end: bool,
    ) -> Result<bool> {
        if sample_count == 0 {
            return Err(Error::invalid(
                format!("{} learner update", self.rule.name()),
                "cannot perform an update with an empty minibatch (sample_count = 0)",
            ));
        }
        let grads = self.order_gradients(gradients)?;
        let (samples, sweeps) = self.schedule_position();
        let lr = self.lr.value_at(samples, sweeps);
        // CNTK: a zero rate stops learning without counting the minibatch.
        if lr == 0.0 {
            return Ok(false);
        }
        let m = self.lr.minibatch_size();
        let eta = if m == IGNORE {
            lr / sample_count as f64
        } else {
            lr / m as f64
        };
        let ctx = StepContext {
            sample_count,
            samples_seen: self.sample_count,
            sweeps_seen: self.sweep_count,
            update_count: self.minibatch_count + 1,
            learning_rate: lr,
            eta,
        };
        let o = &self.options;
        // Large parameters update on both threads of the pool (see the rules' loops).
        let elements: usize = grads.iter().map(|g| g.shape().numel()).sum();
        let (rule, params, states) = (&mut self.rule, &self.params, &mut self.states);
        let scratch = &mut self.scratch;
        crate::exec::in_pool(elements >= 1 << 16, || {
            update_all(&mut **rule, o, &ctx, params, grads, states, scratch)
        })?;
        self.sample_count += sample_count as u64;
        self.minibatch_count += 1;
        if is_sweep_end {
            self.sweep_count += 1;
        }
        Ok(true)
    }

    fn learning_rate(&self) -> f64 {
        let (samples, sweeps) = self.schedule_position();
        self.lr.value_at(samples, sweeps)
    }

    fn progress_lines(&self) -> Vec<(String, f64)> {
        let mut lines = vec![(
            format!("Learning rate {}", super::schedule_unit(&self.lr)),
            self.learning_rate(),
        )];
        if let Some(m) = self.rule.reported_momentum() {
            lines.push((
                format!("Momentum {}", super::schedule_unit(m)),
                m.value_at(self.sample_count, self.sweep_count),
            ));
        }
        lines
    }

    fn reset_learning_rate(&mut self, mut schedule: Schedule) -> Result<()> {
        // CNTK keeps the reference minibatch size of the schedule in use: only the
        // values and the epoch size come from the new schedule (verified: a learner
        // built with a plain float rate and reset to a per-sample schedule still
        // divides by N).
        check_learning_rate(self.rule.name(), &schedule)?;
        schedule.keep_minibatch_size_of(&self.lr);
        self.lr = schedule;
        self.lr_origin = (self.sample_count, self.sweep_count);
        Ok(())
    }

    fn total_samples_seen(&self) -> u64 {
        self.sample_count
    }

    fn state(&self) -> LearnerState {
        let mut buffers = Vec::with_capacity(self.params.len());
        let mut scalars = Vec::with_capacity(self.params.len());
        for (p, s) in self.params.iter().zip(&self.states) {
            let shape = p.shape();
            let (b, sc) = match s {
                ParamState::F32(s) => (
                    s.buffers
                        .iter()
                        .map(|b| tensor(&shape, b.clone()))
                        .collect(),
                    s.scalars.clone(),
                ),
                ParamState::F64(s) => (
                    s.buffers
                        .iter()
                        .map(|b| tensor(&shape, b.clone()))
                        .collect(),
                    s.scalars.clone(),
                ),
            };
            buffers.push(b);
            scalars.push(sc);
        }
        LearnerState {
            learner: self.rule.name().to_string(),
            sample_count: self.sample_count,
            minibatch_count: self.minibatch_count,
            sweep_count: self.sweep_count,
            learning_rate: self.lr.clone(),
            learning_rate_origin: self.lr_origin,
            buffers,
            scalars,
            distributed: Vec::new(),
        }
    }

    fn reset_smoothed_gradients(&mut self) {
        for s in &mut self.states {
            match s {
                ParamState::F32(s) => s.buffers.iter_mut().for_each(|b| b.fill(0.0)),
                ParamState::F64(s) => s.buffers.iter_mut().for_each(|b| b.fill(0.0)),
            }
        }
    }

    fn restore_state(&mut self, st: &LearnerState) -> Result<()> {
        let ctx = format!("{} learner, restore_state", self.rule.name());
        if st.learner != self.rule.name() {
            return Err(Error::invalid(
                ctx,
                format!("the state was taken from a {} learner", st.learner),
            ));
        }
        if st.buffers.len() != self.params.len() || st.scalars.len() != self.params.len() {
            return Err(Error::invalid(
                ctx,
                format!(
                    "the state holds {} parameters, this learner owns {}",
                    st.buffers.len(),
                    self.params.len()
                ),
            ));
        }
        if st.learning_rate_origin.0 > st.sample_count || st.learning_rate_origin.1 > st.sweep_count
        {
            return Err(Error::invalid(
                ctx,
                "the learning-rate origin lies after the sample/sweep counts",
            ));
        }
        let mut states = Vec::with_capacity(self.params.len());
        for (i, p) in self.params.iter().enumerate() {
            let (bufs, sc) = (&st.buffers[i], &st.scalars[i]);
            if bufs.len() != self.rule.buffers() || sc.len() != self.rule.scalars() {
                return Err(Error::invalid(
                    ctx,
                    format!(
                        "parameter {}: wrong number of state buffers or scalars",
                        p.label()
                    ),
                ));
            }
            let shape = p.shape();
            for b in bufs {
                if b.shape() != &shape || b.dtype() != p.dtype() {
                    return Err(Error::invalid(
                        ctx,
                        format!(
                            "parameter {} is {} {shape}, its saved state is {} {}",
                            p.label(),
                            p.dtype(),
                            b.dtype(),
                            b.shape()
                        ),
                    ));
                }
            }
            states.push(match p.dtype() {
                DType::F32 => ParamState::F32(RuleState {
                    buffers: bufs
                        .iter()
                        .map(|b| b.as_slice::<f32>().unwrap_or(&[]).to_vec())
                        .collect(),
                    scalars: sc.clone(),
                }),
                DType::F64 => ParamState::F64(RuleState {
                    buffers: bufs
                        .iter()
                        .map(|b| b.as_slice::<f64>().unwrap_or(&[]).to_vec())
                        .collect(),
                    scalars: sc.clone(),
                }),
            });
        }
        self.states = states;
        self.sample_count = st.sample_count;
        self.minibatch_count = st.minibatch_count;
        self.sweep_count = st.sweep_count;
        self.lr = st.learning_rate.clone();
        self.lr_origin = st.learning_rate_origin;
        Ok(())
    }
}

fn tensor<T: Element>(shape: &crate::tensor::Shape, data: Vec<T>) -> Tensor {
    // Shape and length agree by construction (buffers are sized from the parameter).
    Tensor::from_vec(shape.clone(), data).unwrap_or_else(|_| Tensor::zeros(shape.clone(), T::DTYPE))
}

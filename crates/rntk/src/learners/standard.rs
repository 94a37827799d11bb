//! `StandardLearner`: CNTK's LearnerBase — validation, schedules, counters, the
//! clip → L2 → rule → L1 pipeline and checkpoints around any [`UpdateRule`].

use super::regularization::LearnerOptions;
use super::schedule::IGNORE;
use super::{
    HostRule, Learner, LearnerState, RuleState, RuleStep, Schedule, StepContext, UpdateRule,
};
use crate::backend::updates::LearnerStep;
use crate::backend::{backend_of, DynBackend, Par};
use crate::error::{Error, Result};
use crate::graph::Variable;
use crate::tensor::{DType, Element, Storage, Tensor};
use std::collections::HashSet;

/// Per-parameter rule state: the rule's buffers on the parameter's device (created
/// there at the first update, or restored from a checkpoint), its scalars on the host.
#[derive(Clone, Debug, Default)]
struct ParamState {
    buffers: Vec<Storage>,
    scalars: Vec<f64>,
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
    /// The clipped (or L2-added) gradient of the parameter being updated, reused (on
    /// the parameters' device).
    scratch: Option<Storage>,
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
            states.push(ParamState {
                buffers: Vec::new(),
                scalars: vec![0.0; rule.scalars()],
            });
            let _ = t.dtype();
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
            scratch: None,
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

fn check_learning_rate(learner: &str, lr: &Schedule) -> Result<()> {
    lr.check_values(
        &format!("{learner} learner, learning rate"),
        |v| v >= 0.0 && v.is_finite(),
        ">= 0 and finite",
    )
}

/// One update of every parameter, in order, with the parallelism `par`.
fn update_all(
    rule: &mut dyn UpdateRule,
    o: &LearnerOptions,
    ctx: &StepContext,
    (params, grads): (&[Variable], Vec<&Tensor>),
    states: &mut [ParamState],
    scratch: &mut Option<Storage>,
    par: Par,
) -> Result<()> {
    let n = ctx.sample_count;
    for ((p, g), state) in params.iter().zip(grads).zip(states.iter_mut()) {
        let storage = p.storage().ok_or_else(|| {
            Error::invalid(
                format!("{} learner", rule.name()),
                format!("{} lost its value", p.label()),
            )
        })?;
        let mut value = storage.write().expect("parameter lock");
        let device = backend_of(value.storage());
        let (dtype, len) = (value.dtype(), value.shape().numel());
        if state.buffers.len() != rule.buffers() {
            state.buffers = (0..rule.buffers())
                .map(|_| device.zeros(dtype, len))
                .collect();
        }
        let (buffers, scalars) = (&mut state.buffers, &mut state.scalars);
        let name = rule.name().to_string();
        match rule.step(ctx, scalars) {
            RuleStep::Kernel(k) => {
                if k.buffers() != buffers.len() {
                    return Err(Error::invalid(
                        format!("{name} learner"),
                        format!(
                            "the rule keeps {} buffers but its step needs {}",
                            buffers.len(),
                            k.buffers()
                        ),
                    ));
                }
                let step = LearnerStep {
                    samples: n,
                    clip_per_sample: o.gradient_clipping_threshold_per_sample,
                    clip_truncation: o.gradient_clipping_with_truncation,
                    l2_per_sample: o.l2_regularization_weight,
                    l1_per_sample: o.l1_regularization_weight,
                    eta: ctx.eta,
                    rule: k,
                };
                device.learner_step(
                    &step,
                    value.storage_mut(),
                    g.storage(),
                    buffers,
                    scratch,
                    par,
                )?;
            }
            RuleStep::Host(h) => {
                let mut st = (buffers, scalars.clone());
                host_step(
                    h,
                    o,
                    ctx,
                    &*device,
                    (value.storage_mut(), g.storage()),
                    &mut st,
                )?;
                *scalars = st.1;
            }
        }
    }
    Ok(())
}

/// A host rule's update: on the CPU the tensors themselves, on a device host copies of
/// parameter, gradient and state (downloaded, updated, uploaded).
fn host_step(
    h: &mut dyn HostRule,
    o: &LearnerOptions,
    ctx: &StepContext,
    device: &dyn DynBackend,
    (p, g): (&mut Storage, &Storage),
    (buffers, scalars): &mut (&mut Vec<Storage>, Vec<f64>),
) -> Result<()> {
    let on_host = !matches!(p, Storage::Device(_));
    let mut hp = if on_host {
        std::mem::replace(p, Storage::F32(Vec::new()))
    } else {
        p.to_host()
    };
    let hg = g.to_host();
    let mut hb: Vec<Storage> = buffers.iter().map(|b| b.to_host()).collect();
    let r = match hp.dtype() {
        DType::F32 => host_typed::<f32>(
            h,
            o,
            ctx,
            (&mut hp, &hg),
            (&mut hb, scalars),
            |h, c, p, g, s| h.apply_f32(c, p, g, s),
        ),
        DType::F64 => host_typed::<f64>(
            h,
            o,
            ctx,
            (&mut hp, &hg),
            (&mut hb, scalars),
            |h, c, p, g, s| h.apply_f64(c, p, g, s),
        ),
    };
    *p = if on_host {
        hp
    } else {
        device.make_resident(&hp)
    };
    for (b, host) in buffers.iter_mut().zip(hb) {
        *b = device.make_resident(&host);
    }
    r
}

#[allow(clippy::type_complexity)]
fn host_typed<T: Element>(
    h: &mut dyn HostRule,
    o: &LearnerOptions,
    ctx: &StepContext,
    (p, g): (&mut Storage, &Storage),
    (bufs, scalars): (&mut [Storage], &mut Vec<f64>),
    apply: impl Fn(&mut dyn HostRule, &StepContext, &mut [T], &[T], &mut RuleState<T>),
) -> Result<()> {
    let (Some(p), Some(g)) = (T::vec_mut(p), T::slice(g)) else {
        return Err(Error::Unsupported(
            "a host rule on mixed element types".into(),
        ));
    };
    let n = ctx.sample_count;
    let mut s = RuleState {
        buffers: bufs
            .iter()
            .map(|b| T::slice(b).unwrap_or(&[]).to_vec())
            .collect(),
        scalars: std::mem::take(scalars),
    };
    let mut g = g.to_vec();
    crate::backend::cpu::update::clip_gradient(
        &mut g,
        o.gradient_clipping_threshold_per_sample,
        o.gradient_clipping_with_truncation,
        n,
    );
    crate::backend::cpu::update::add_l2(&mut g, p, o.l2_regularization_weight, n);
    apply(h, ctx, p, &g, &mut s);
    crate::backend::cpu::update::l1_soft_threshold(p, ctx.eta, o.l1_regularization_weight, n);
    for (b, v) in bufs.iter_mut().zip(s.buffers) {
        *b = T::wrap(v);
    }
    *scalars = s.scalars;
    Ok(())
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
        // Large parameters update on the device's threads (the CPU's pool).
        let elements: usize = grads.iter().map(|g| g.shape().numel()).sum();
        let device = match self.params[0].storage() {
            Some(s) => backend_of(s.read().expect("parameter lock").storage()),
            None => backend_of(&Storage::F32(Vec::new())),
        };
        let (rule, params, states) = (&mut self.rule, &self.params[..], &mut self.states);
        let scratch = &mut self.scratch;
        let mut result = Ok(());
        device.update_scope(elements, &mut |par| {
            result = update_all(
                &mut **rule,
                o,
                &ctx,
                (params, grads.clone()),
                states,
                scratch,
                par,
            );
        });
        result?;
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
            let (shape, dtype) = (p.shape(), p.dtype());
            // (before the first update the buffers are zeros)
            let b = (0..self.rule.buffers())
                .map(|k| match s.buffers.get(k) {
                    Some(b) => tensor(&shape, b.to_host()),
                    None => Tensor::zeros(shape.clone(), dtype),
                })
                .collect();
            buffers.push(b);
            scalars.push(s.scalars.clone());
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
            // (made resident on the parameter's device at the next update)
            states.push(ParamState {
                buffers: bufs.iter().map(|b| b.storage().clone()).collect(),
                scalars: sc.clone(),
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

fn tensor(shape: &crate::tensor::Shape, data: Storage) -> Tensor {
    // Shape and length agree by construction (buffers are sized from the parameter).
    let dtype = data.dtype();
    Tensor::from_storage_checked(shape.clone(), data)
        .unwrap_or_else(|| Tensor::zeros(shape.clone(), dtype))
}

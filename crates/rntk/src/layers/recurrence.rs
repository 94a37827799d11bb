//! Scans over the sequence axis: `Recurrence(step)` (one output per step), `Fold(step)`
//! (only the final state), `RecurrenceFrom(step)` (initial states as data inputs).
//! Each closes a loop through past_value (future_value when `go_backwards`), which the
//! compiler turns into a step-by-step loop; everything in the step that does not
//! depend on the state (e.g. the input projection x·W) runs once, outside the loop.

use super::defaults::lookup;
use super::{as_block, as_block_n, first, layer_err, Layer, RecurrentStep};
use crate::error::Result;
use crate::graph::{placeholder, scalar, DynamicAxes, Variable};
use crate::sequence;
use crate::tensor::Shape;
use std::sync::Arc;

/// The `initial_state` of CNTK's `Recurrence`/`Fold`: the state before the first step
/// (after the last, going backwards).
#[derive(Clone, Debug)]
pub enum InitialState {
    /// A constant broadcast to the state's shape (CNTK's default 0).
    Scalar(f64),
    /// A constant or learnable parameter of the state's shape (or a scalar), or a
    /// batch-only variable with one state per sequence.
    Variable(Variable),
    /// One entry per state (LSTM: h then c).
    PerState(Vec<InitialState>),
}

impl InitialState {
    fn for_state(&self, k: usize, x: &Variable, name: &str) -> Result<Variable> {
        Ok(match self {
            InitialState::Scalar(v) => scalar(*v, x.dtype()),
            InitialState::Variable(v) => v.clone(),
            InitialState::PerState(list) => match list.get(k) {
                Some(s) => return s.for_state(0, x, name),
                None => {
                    return Err(layer_err(
                        "Recurrence",
                        name,
                        format!("initial_state lists {} states but the step has more (no entry for state {k})", list.len()),
                    ))
                }
            },
        })
    }
}

/// Close the loop: states are placeholders, delayed by one step, fed to `step`, and
/// replaced by its outputs. Returns the state sequences.
fn scan(
    (layer, name): (&str, &str),
    step: &dyn RecurrentStep,
    x: &Variable,
    go_backwards: bool,
    initial: &dyn Fn(usize) -> Result<Variable>,
) -> Result<Vec<Variable>> {
    let info = x.info();
    if !info.axes.has_sequence() {
        return Err(layer_err(
            layer,
            name,
            format!(
                "needs a sequence input (it scans the sequence axis), got an input of shape {} with dynamic axes {}",
                info.shape,
                info.axes.notation()
            ),
        ));
    }
    let shapes = step.state_shapes(&info)?;
    if super::probe::probing() {
        // a shape probe (an enclosing Python step's states being inferred): the state
        // sequences' stand-ins; no loop, no parameters
        return super::probe::stand_ins(&shapes, x);
    }
    let mut inits = Vec::with_capacity(shapes.len());
    for (k, s) in shapes.iter().enumerate() {
        let init = initial(k)?;
        check_initial(layer, name, step, k, s, &init)?;
        inits.push(init);
    }
    // A step with a fused whole-sequence form (LSTM) skips the step-by-step loop.
    if inits
        .iter()
        .all(|v| matches!(v.info().axes, DynamicAxes::None))
    {
        if let Some(outs) = step.fused_scan(x, &inits, go_backwards)? {
            return Ok(outs);
        }
    }
    let mut phs = Vec::with_capacity(shapes.len());
    let mut delayed = Vec::with_capacity(shapes.len());
    for (k, (s, init)) in shapes.iter().zip(&inits).enumerate() {
        let ph = placeholder(
            s.clone(),
            info.dtype,
            info.axes.clone(),
            &format!("state{k}"),
        )?;
        let d = if go_backwards {
            sequence::future_value(&ph, init, 1)?
        } else {
            sequence::past_value(&ph, init, 1)?
        };
        phs.push(ph);
        delayed.push(d);
    }
    let outs = step.step(&delayed, x)?;
    if outs.len() != phs.len() {
        return Err(layer_err(
            layer,
            name,
            format!(
                "the step function {} returned {} states, expected {}",
                step.op_name(),
                outs.len(),
                phs.len()
            ),
        ));
    }
    let pairs: Vec<(Variable, Variable)> = phs.into_iter().zip(outs.iter().cloned()).collect();
    if let Some(f) = outs[0].owner() {
        f.replace_placeholders(&pairs)?;
    }
    Ok(outs)
}

/// An initial state must be a scalar (broadcast) or have exactly the state's shape;
/// anything else is refused here, naming the layer and both shapes, rather than deep
/// inside past_value's shape rule.
fn check_initial(
    layer: &str,
    name: &str,
    step: &dyn RecurrentStep,
    k: usize,
    state: &Shape,
    init: &Variable,
) -> Result<()> {
    let s = init.shape();
    if s.numel() == 1 && s.rank() <= 1 || s == *state {
        return Ok(());
    }
    let which = match (step.op_name(), k) {
        ("LSTM", 0) => " (h)".to_string(),
        ("LSTM", 1) => " (c)".to_string(),
        _ => String::new(),
    };
    Err(layer_err(
        layer,
        name,
        format!(
            "initial state of shape {s} does not match state {k}{which} of the {} step, of shape {state} (give a scalar or a tensor of shape {state})",
            step.op_name()
        ),
    ))
}

/// CNTK's `Recurrence(step, go_backwards, initial_state, return_full_state)`.
pub struct Recurrence {
    step: Arc<dyn RecurrentStep>,
    go_backwards: bool,
    initial_state: InitialState,
    name: String,
}

impl Recurrence {
    /// `initial_state` and `go_backwards` come from `default_options` (else 0, false).
    pub fn new(step: impl RecurrentStep + 'static) -> Self {
        Recurrence {
            step: Arc::new(step),
            go_backwards: lookup("Recurrence", |o| o.go_backwards).unwrap_or(false),
            initial_state: InitialState::Scalar(
                lookup("Recurrence", |o| o.initial_state).unwrap_or(0.0),
            ),
            name: String::new(),
        }
    }
    pub fn go_backwards(mut self, on: bool) -> Self {
        self.go_backwards = on;
        self
    }
    pub fn initial_state(mut self, s: InitialState) -> Self {
        self.initial_state = s;
        self
    }
    pub fn name(mut self, n: &str) -> Self {
        self.name = n.to_string();
        self
    }
    pub fn step(&self) -> &Arc<dyn RecurrentStep> {
        &self.step
    }
    /// Every state sequence (CNTK's `return_full_state=True`): LSTM gives (h, c).
    pub fn apply_full(&self, x: &Variable) -> Result<Vec<Variable>> {
        let init = self.initial_state.clone();
        as_block(x, "Recurrence", &self.name, |x| {
            scan(
                ("Recurrence", &self.name),
                self.step.as_ref(),
                x,
                self.go_backwards,
                &|k| init.for_state(k, x, &self.name),
            )
        })
    }
}

impl Layer for Recurrence {
    fn apply(&self, x: &Variable) -> Result<Variable> {
        first(self.apply_full(x)?)
    }
    fn parameters(&self) -> Vec<Variable> {
        let mut p = self.step.parameters();
        // Learnable initial states, also inside a per-state list (each listed once).
        fn learnable(s: &InitialState, out: &mut Vec<Variable>) {
            match s {
                InitialState::Variable(v) if v.is_parameter() && !out.contains(v) => {
                    out.push(v.clone())
                }
                InitialState::PerState(list) => list.iter().for_each(|s| learnable(s, out)),
                _ => {}
            }
        }
        learnable(&self.initial_state, &mut p);
        p
    }
    fn name(&self) -> &str {
        &self.name
    }
}

/// CNTK's `Fold(step)`: the recurrence's final state (its first when going backwards);
/// the result has no sequence axis.
pub struct Fold(Recurrence);

impl Fold {
    pub fn new(step: impl RecurrentStep + 'static) -> Self {
        Fold(Recurrence::new(step))
    }
    pub fn go_backwards(self, on: bool) -> Self {
        Fold(self.0.go_backwards(on))
    }
    pub fn initial_state(self, s: InitialState) -> Self {
        Fold(self.0.initial_state(s))
    }
    pub fn name(self, n: &str) -> Self {
        Fold(self.0.name(n))
    }
    /// Every final state (return_full_state).
    pub fn apply_full(&self, x: &Variable) -> Result<Vec<Variable>> {
        let back = self.0.go_backwards;
        self.0
            .apply_full(x)?
            .iter()
            .map(|s| {
                if back {
                    sequence::first(s)
                } else {
                    sequence::last(s)
                }
            })
            .collect()
    }
}

impl Layer for Fold {
    fn apply(&self, x: &Variable) -> Result<Variable> {
        first(self.apply_full(x)?)
    }
    fn parameters(&self) -> Vec<Variable> {
        self.0.parameters()
    }
    fn name(&self) -> &str {
        &self.0.name
    }
}

/// CNTK's `RecurrenceFrom(step)`: the initial states are data inputs — batch-only values
/// (one per sequence), or sequences on another axis whose last item (first when going
/// backwards) is used.
pub struct RecurrenceFrom {
    step: Arc<dyn RecurrentStep>,
    go_backwards: bool,
    name: String,
}

impl RecurrenceFrom {
    pub fn new(step: impl RecurrentStep + 'static) -> Self {
        RecurrenceFrom {
            step: Arc::new(step),
            go_backwards: lookup("RecurrenceFrom", |o| o.go_backwards).unwrap_or(false),
            name: String::new(),
        }
    }
    pub fn go_backwards(mut self, on: bool) -> Self {
        self.go_backwards = on;
        self
    }
    pub fn name(mut self, n: &str) -> Self {
        self.name = n.to_string();
        self
    }
    /// Scan `x` starting from `initial` (one variable per state); every state sequence.
    pub fn apply_from(&self, initial: &[Variable], x: &Variable) -> Result<Vec<Variable>> {
        let n_states = self.step.state_shapes(&x.info())?.len();
        if initial.len() != n_states {
            return Err(layer_err(
                "RecurrenceFrom",
                &self.name,
                format!(
                    "the {} step has {n_states} states but {} initial states were given",
                    self.step.op_name(),
                    initial.len()
                ),
            ));
        }
        let mut starts = Vec::with_capacity(initial.len());
        for s in initial {
            starts.push(match s.dynamic_axes() {
                DynamicAxes::Sequence(_) if self.go_backwards => sequence::first(s)?,
                DynamicAxes::Sequence(_) => sequence::last(s)?,
                _ => s.clone(),
            });
        }
        let mut operands = starts.clone();
        operands.push(x.clone());
        let n = starts.len();
        as_block_n(&operands, "RecurrenceFrom", &self.name, |a| {
            let (inits, x) = (&a[..n], &a[n]);
            scan(
                ("RecurrenceFrom", &self.name),
                self.step.as_ref(),
                x,
                self.go_backwards,
                &|k| {
                    inits.get(k).cloned().ok_or_else(|| {
                        layer_err(
                            "RecurrenceFrom",
                            "",
                            format!("no initial state given for state {k}"),
                        )
                    })
                },
            )
        })
    }
}

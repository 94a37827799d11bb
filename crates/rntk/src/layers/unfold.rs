//! `UnfoldFrom(generator)`: a generator recurrence. From an initial state it applies
//! `generator` repeatedly and emits each result, along the sequence axis of a second
//! input (times `length_increase`), optionally stopping after the first item for which
//! `until_predicate` is 1 (that item is kept) — CNTK's construction with
//! `sequence.where`, a delay closed through the generator, and `sequence.gather`.

use super::{layer_err, LayerRef};
use crate::error::Result;
use crate::functions::{element_times, minus, plus};
use crate::graph::{placeholder, scalar, Variable};
use crate::sequence;
use std::sync::Arc;

/// A generator: previous state → `[output]` (the output is also the new state) or
/// `[output, new_state]`.
pub type Generator = Arc<dyn Fn(&Variable) -> Result<Vec<Variable>> + Send + Sync>;
/// A stop predicate: output → scalar, 1 for the last item.
pub type Predicate = Arc<dyn Fn(&Variable) -> Result<Variable> + Send + Sync>;

/// CNTK's `UnfoldFrom(generator_function, until_predicate=None, length_increase=1)`.
pub struct UnfoldFrom {
    generator: Generator,
    until: Option<Predicate>,
    length_increase: f64,
    name: String,
}

impl UnfoldFrom {
    /// A generator function (see `Generator`).
    pub fn new(generator: Generator) -> Self {
        UnfoldFrom {
            generator,
            until: None,
            length_increase: 1.0,
            name: String::new(),
        }
    }
    /// A layer as the generator: its output is the new state.
    pub fn from_layer(layer: LayerRef) -> Self {
        Self::new(Arc::new(move |s: &Variable| Ok(vec![layer.apply(s)?])))
    }
    pub fn until_predicate(mut self, p: Predicate) -> Self {
        self.until = Some(p);
        self
    }
    /// At most `len(axis_like) × f` items per sequence (fractions accumulate as in
    /// `sequence.where`: 3 × 1.5 → 5).
    pub fn length_increase(mut self, f: f64) -> Self {
        self.length_increase = f;
        self
    }
    pub fn name(mut self, n: &str) -> Self {
        self.name = n.to_string();
        self
    }

    /// Unfold from `initial_state` (batch-only: one state per sequence of `axis_like`)
    /// along the sequence axis of `axis_like`, whose values are not used.
    pub fn apply_from(&self, initial_state: &Variable, axis_like: &Variable) -> Result<Variable> {
        let err = |d: String| layer_err("UnfoldFrom", &self.name, d);
        if !axis_like.dynamic_axes().has_sequence() {
            return Err(err(format!(
                "the axis_like input must be a sequence, got {}",
                axis_like.dynamic_axes().notation()
            )));
        }
        if !(self.length_increase.is_finite() && self.length_increase > 0.0) {
            return Err(err(format!(
                "length_increase must be a positive number, got {}",
                self.length_increase
            )));
        }
        let dt = initial_state.dtype();
        // A shape-() sequence on the output axis whose values are all 0: it puts that
        // axis into the generator's loop (CNTK's reconcile_dynamic_axes) without
        // changing any value.
        let marker = {
            let first = sequence::is_first(axis_like)?;
            if self.length_increase == 1.0 {
                element_times(&first, &scalar(0.0, dt))?
            } else {
                let factors = plus(
                    &element_times(&first, &scalar(0.0, dt))?,
                    &scalar(self.length_increase, dt),
                )?;
                let out_axis = sequence::where_(&factors)?;
                element_times(&out_axis, &scalar(0.0, dt))?
            }
        };
        let state = placeholder(
            initial_state.shape(),
            dt,
            marker.dynamic_axes(),
            "unfold_state",
        )?;
        let prev = plus(&sequence::past_value(&state, initial_state, 1)?, &marker)?;
        let z = (self.generator)(&prev)?;
        let (output, new_state) = match z.as_slice() {
            [o] => (o.clone(), o.clone()),
            [o, s] => (o.clone(), s.clone()),
            _ => {
                return Err(err(format!(
                    "the generator must return (output) or (output, new state), got {} values",
                    z.len()
                )))
            }
        };
        if new_state.shape() != initial_state.shape() {
            return Err(err(format!(
                "the generator's new state has shape {} but the initial state has shape {}",
                new_state.shape(),
                initial_state.shape()
            )));
        }
        let owner = new_state.owner().ok_or_else(|| {
            err("the generator's new state must be computed from the state".into())
        })?;
        owner.replace_placeholders(&[(state, new_state.clone())])?;
        let Some(until) = &self.until else {
            return Ok(output);
        };
        // valid_t = valid_{t−1} · (1 − stop_{t−1}), valid_{−1} = 1: every item up to and
        // including the first one with stop = 1.
        let stop = until(&output)?;
        let valid_ph = placeholder(stop.shape(), dt, stop.dynamic_axes(), "valid_frames")?;
        let prev_valid = sequence::past_value(&valid_ph, &scalar(1.0, dt), 1)?;
        let prev_stop = sequence::past_value(&stop, &scalar(0.0, dt), 1)?;
        let valid = element_times(&minus(&scalar(1.0, dt), &prev_stop)?, &prev_valid)?;
        if let Some(f) = valid.owner() {
            f.replace_placeholders(&[(valid_ph, valid.clone())])?;
        }
        sequence::gather(&output, &valid)
    }
}

//! `Delay(T, initial_state)`: the input sequence shifted by T steps (negative T looks
//! into the future, 0 is the identity) — CNTK's `sequence.delay` as a layer.

use super::defaults::lookup;
use super::{as_block, first, layer_err, Layer};
use crate::error::Result;
use crate::graph::{scalar, Variable};
use crate::sequence;

/// CNTK's `Delay(T=1, initial_state=0)`.
pub struct Delay {
    t: isize,
    initial_state: f64,
    name: String,
}

impl Delay {
    /// `initial_state` from `default_options` (else 0).
    pub fn new(t: isize) -> Self {
        Delay {
            t,
            initial_state: lookup("Delay", |o| o.initial_state).unwrap_or(0.0),
            name: String::new(),
        }
    }
    pub fn initial_state(mut self, v: f64) -> Self {
        self.initial_state = v;
        self
    }
    pub fn name(mut self, n: &str) -> Self {
        self.name = n.to_string();
        self
    }
}

impl Layer for Delay {
    fn apply(&self, x: &Variable) -> Result<Variable> {
        if !x.dynamic_axes().has_sequence() {
            return Err(layer_err(
                "Delay",
                &self.name,
                format!(
                    "needs a sequence input, got {}",
                    x.dynamic_axes().notation()
                ),
            ));
        }
        let init = self.initial_state;
        let t = self.t;
        first(as_block(x, "Delay", &self.name, |x| {
            Ok(vec![sequence::delay(x, &scalar(init, x.dtype()), t)?])
        })?)
    }
    fn parameters(&self) -> Vec<Variable> {
        Vec::new()
    }
    fn name(&self) -> &str {
        &self.name
    }
}

//! `AttentionModel(attention_dim)`: CNTK 2.7's additive attention layer (Bahdanau et
//! al.), applied to `(encoder_hidden_state, decoder_hidden_state)` — two sequences,
//! usually on different sequence axes, paired by batch item. Every decoder step gets
//! the attention-weighted sum of its encoder sequence:
//!
//! ```text
//! k_j = Stabilizer(e_j)·W_enc        q_i = Stabilizer(d_i)·W_dec       (no bias)
//! y_i = Stabilizer( Σ_j α_ij e_j ),  α_i = softmax_j( Stabilizer(tanh(q_i + k_j))·W_tanh )
//! ```
//!
//! with CNTK's parameters, in CNTK's creation order (and so its automatic seeds):
//! `alpha` (encoder stabilizer), `W` (h, A), `alpha` (decoder stabilizer), `W` (H, A),
//! `alpha` (tanh stabilizer), `W` (A, 1), `alpha` (output stabilizer). The scores and
//! the weighted sum are one fused op, [`crate::functions::additive_attention`]; the
//! tanh stabilizer's scale `β` is moved onto `W_tanh` (`(β t)·W = t·(β W)`), the same
//! function.
//!
//! The decoder state may be a whole sequence or the state of a recurrence: inside a
//! `Recurrence` step (CNTK tutorial 204, `attention_model(encoded, h_prev)`) the query
//! is computed step by step while the encoder's projection stays outside the loop, one
//! product over the whole encoder sequence.
//!
//! The weights `α` are CNTK's `Label('attention_weights')` node: a node named
//! `attention_weights` in the block's body, shape `[#, dec][*=T_enc, 1]` (zeros past
//! each item's encoder length), found by name (`find_by_name`, Python's
//! `model.attention_model.attention_weights`, tutorial 204's plot). It sits beside the
//! output rather than on it (`Function::combine_with_hidden`): the fused op is not
//! slowed, and the weights are recomputed by the same kernel only when evaluated.
//!
//! Not supported: CNTK's deprecated windowed mode (`attention_span`, `attention_axis`,
//! the only mode in which `go_backwards` does anything).

use super::defaults::lookup;
use super::{as_block_hidden, first, layer_err, Dense, Layer, Stabilizer};
use crate::error::Result;
use crate::functions::{additive_attention, attention_weights};
use crate::graph::{parameter, Variable};
use crate::initializer::Initializer;
use std::sync::Mutex;

/// CNTK's `AttentionModel(attention_dim, init, enable_self_stabilization, name)`.
pub struct AttentionModel {
    attention_dim: usize,
    init: Initializer,
    stab: bool,
    name: String,
    enc_stab: Stabilizer,
    enc_proj: Dense,
    dec_stab: Stabilizer,
    dec_proj: Dense,
    tanh_stab: Stabilizer,
    tanh_w: Mutex<Option<Variable>>,
    tanh_seed: Mutex<Option<u64>>,
    out_stab: Stabilizer,
}

impl AttentionModel {
    /// Attention dimension `attention_dim`; init and self-stabilization from the
    /// current `default_options` (else glorot_uniform and true), as CNTK's.
    pub fn new(attention_dim: usize) -> Self {
        const L: &str = "AttentionModel";
        let init = lookup(L, |o| o.init.clone()).unwrap_or_else(Initializer::glorot_uniform);
        let stab = lookup(L, |o| o.enable_self_stabilization).unwrap_or(true);
        Self::build(attention_dim, init, stab, String::new())
    }

    fn build(attention_dim: usize, init: Initializer, stab: bool, name: String) -> Self {
        let proj = || {
            Dense::new([attention_dim])
                .bias(false)
                .init(init.clone())
                .input_rank(1)
        };
        AttentionModel {
            attention_dim,
            stab,
            name,
            enc_stab: Stabilizer::new().enabled(stab),
            enc_proj: proj(),
            dec_stab: Stabilizer::new().enabled(stab),
            dec_proj: proj(),
            tanh_stab: Stabilizer::new().enabled(stab),
            tanh_w: Mutex::new(None),
            tanh_seed: Mutex::new(None),
            out_stab: Stabilizer::new().enabled(stab),
            init,
        }
    }

    pub fn init(self, init: Initializer) -> Self {
        Self::build(self.attention_dim, init, self.stab, self.name)
    }
    /// `false`: no stabilizers (and no `alpha` parameters).
    pub fn enable_self_stabilization(self, on: bool) -> Self {
        Self::build(self.attention_dim, self.init, on, self.name)
    }
    pub fn name(mut self, n: &str) -> Self {
        self.name = n.to_string();
        self
    }

    /// Take the three projections' automatic seeds now (encoder, decoder, tanh), as
    /// CNTK's `AttentionModel(...)` call does; otherwise they are taken on first use.
    pub fn reserve_seeds(&self) {
        self.enc_proj.reserve_seeds();
        self.dec_proj.reserve_seeds();
        let created = self.tanh_w.lock().map(|w| w.is_some()).unwrap_or(true);
        let mut s = self.tanh_seed.lock().unwrap_or_else(|e| e.into_inner());
        if !created && s.is_none() && self.init.is_random() && self.init.seed().is_none() {
            *s = Some(crate::random::generate_random_seed());
        }
    }

    /// The scoring weights `W` (A, 1), created on first use in `dtype`.
    fn tanh_weights(&self, dtype: crate::tensor::DType) -> Result<Variable> {
        let mut g = self
            .tanh_w
            .lock()
            .map_err(|_| layer_err("AttentionModel", &self.name, "lock poisoned"))?;
        if let Some(w) = g.as_ref() {
            return Ok(w.clone());
        }
        let mut init = self.init.clone().with_output_rank(1);
        if let Some(s) = *self.tanh_seed.lock().unwrap_or_else(|e| e.into_inner()) {
            init = init.with_seed(s);
        }
        let w = parameter([self.attention_dim, 1], dtype, init, "W")?;
        *g = Some(w.clone());
        Ok(w)
    }

    /// The attention of every step of `decoder` over the `encoder` sequence of its
    /// batch item: a sequence on the decoder's axis with the encoder's sample shape.
    pub fn apply2(&self, encoder: &Variable, decoder: &Variable) -> Result<Variable> {
        for (what, v) in [("encoder", encoder), ("decoder", decoder)] {
            if v.shape().rank() != 1 {
                return Err(layer_err(
                    "AttentionModel",
                    &self.name,
                    format!(
                        "the {what} hidden state must be a vector per step, got shape {}",
                        v.shape()
                    ),
                ));
            }
        }
        if super::probe::probing() {
            return super::probe::stand_in(encoder.shape(), encoder, decoder.info().axes);
        }
        // CNTK's creation order: the three projections' seeds before any parameter.
        self.reserve_seeds();
        let operands = [encoder.clone(), decoder.clone()];
        first(as_block_hidden(
            &operands,
            "AttentionModel",
            &self.name,
            |a| {
                let keys = self.enc_proj.apply(&self.enc_stab.apply(&a[0])?)?;
                let query = self.dec_proj.apply(&self.dec_stab.apply(&a[1])?)?;
                let w = self.tanh_weights(a[0].dtype())?;
                let w = self.tanh_stab.scale(&w)?;
                let y = additive_attention(&query, &keys, &a[0], &w)?;
                // CNTK's Label('attention_weights'): beside the output, not on it
                let weights = attention_weights(&query, &keys, &a[0], &w)?;
                Ok((vec![self.out_stab.apply(&y)?], vec![weights]))
            },
        )?)
    }

    /// The parameters created so far, in CNTK's order.
    pub fn parameters(&self) -> Vec<Variable> {
        let mut out = self.enc_stab.parameters();
        out.extend(self.enc_proj.parameters());
        out.extend(self.dec_stab.parameters());
        out.extend(self.dec_proj.parameters());
        out.extend(self.tanh_stab.parameters());
        out.extend(self.tanh_w.lock().ok().and_then(|w| w.clone()));
        out.extend(self.out_stab.parameters());
        out
    }

    pub fn layer_name(&self) -> &str {
        &self.name
    }
}

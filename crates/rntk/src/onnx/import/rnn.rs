//! Recurrences and sequence ops on import: ONNX `LSTM` / `GRU` / `RNN` → rntk's
//! `Recurrence` over `Lstm` / `Gru` / `RnnStep` with the file's weights (the fused
//! LSTM scan where it applies; PyTorch's GRU, `linear_before_reset = 1`, as a loop of
//! its own), `Scan` → a recurrence over its body, and rntk's `ai.rntk` sequence
//! functions → rntk's sequence ops.

use super::super::proto::NodeProto;
use super::model::ConstT;
use super::ops::{attr, attr_f, attr_i, attr_s, attr_strings, one_tv};
use super::value::{Av, SDim, Tv};
use super::Imp;
use crate::error::{Error, Result};
use crate::functions as f;
use crate::graph::{placeholder, Variable};
use crate::layers::{Activation, Gru, InitialState, Lstm, Recurrence, RnnStep};
use crate::sequence;
use crate::tensor::{Shape, Tensor};
use std::collections::HashSet;

fn unsupported(what: impl Into<String>) -> Error {
    Error::Unsupported(what.into())
}

fn activation(name: &str) -> Option<Activation> {
    match name.to_ascii_lowercase().as_str() {
        "tanh" => Some(Activation::Tanh),
        "sigmoid" => Some(Activation::Sigmoid),
        "relu" => Some(Activation::Relu),
        _ => None,
    }
}

/// ONNX gate blocks → CNTK's order (LSTM: ONNX [i, o, f, c] → CNTK [i, c, f, o]).
fn gate_order(op: &str) -> &'static [usize] {
    match op {
        "LSTM" => &[0, 3, 2, 1],
        "GRU" => &[0, 1, 2],
        _ => &[0],
    }
}

/// Direction `d` of an ONNX weight `[dirs, gates·n, cols]` as rntk's `(cols, gates·n)`
/// in CNTK's gate order.
fn rntk_weights(c: &ConstT, d: usize, n: usize, order: &[usize]) -> Vec<f64> {
    let (rows, cols) = (c.dims[1], c.dims[2]);
    let v = c.data.to_f64();
    let base = d * rows * cols;
    let g = order.len();
    let mut out = vec![0.0; cols * g * n];
    for (k, &src) in order.iter().enumerate() {
        for j in 0..n {
            let r = src * n + j;
            for col in 0..cols {
                out[col * g * n + k * n + j] = v[base + r * cols + col];
            }
        }
    }
    out
}

impl<'a> Imp<'a> {
    fn weight(&self, n: &NodeProto, i: usize) -> Result<std::rc::Rc<ConstT>> {
        self.konst(n, i)?
            .ok_or_else(|| unsupported(format!("input {i} (weights) must be an initializer")))
    }

    fn param(&mut self, name: &str, dims: &[usize], v: &[f64]) -> Result<Variable> {
        let t = Tensor::from_f64(Shape::new(dims.to_vec()), self.dtype, v)?;
        Ok(crate::graph::parameter_from(t, name))
    }

    /// The initial state of direction `d`: a constant per direction, or a fill.
    fn initial(&mut self, n: &NodeProto, i: usize, d: usize, units: usize) -> Result<InitialState> {
        Ok(match self.input(n, i)? {
            None => InitialState::Scalar(0.0),
            Some(Av::Fill(v, _)) => InitialState::Scalar(v),
            Some(Av::C(c, _))
                if c.numel()
                    == c.dims.first().copied().unwrap_or(1)
                        * units
                        * c.dims.get(1).copied().unwrap_or(1) =>
            {
                let v = c.data.to_f64();
                let per = v.len() / c.dims.first().copied().unwrap_or(1).max(1);
                let part = &v[d * per..d * per + units];
                if part.iter().all(|&x| x == part[0]) {
                    InitialState::Scalar(part[0])
                } else {
                    let t = Tensor::from_f64(Shape::from([units]), self.dtype, part)?;
                    InitialState::Variable(crate::graph::constant(t, ""))
                }
            }
            Some(Av::T(t)) if t.var.dynamic_axes().is_none() && t.var.shape().numel() == 1 => {
                match t.var.kind() {
                    crate::graph::VarKind::Constant => {
                        InitialState::Scalar(t.var.value()?.to_f64_vec()[0])
                    }
                    _ => InitialState::Variable(f::reshape(&t.var, Shape::scalar())?),
                }
            }
            Some(Av::T(t))
                if t.var.dynamic_axes().is_none() && t.var.shape().numel() % units == 0 =>
            {
                // one state per direction, stacked
                let all = t.var.shape().numel();
                let flat = f::reshape(&t.var, Shape::from([all]))?;
                let part = if all == units {
                    flat
                } else {
                    f::slice(&flat, 0, (d * units) as isize, ((d + 1) * units) as isize)?
                };
                InitialState::Variable(part)
            }
            _ => return Err(unsupported("an initial state that differs per sequence")),
        })
    }

    /// ONNX LSTM / GRU / RNN → rntk recurrences (one per direction).
    pub fn rnn(&mut self, n: &NodeProto, op: &str) -> Result<Vec<Av>> {
        let x = {
            let v = self.need(n, 0)?;
            self.tv(&v, None)?
        };
        if x.t_pos() != Some(0) || attr_i(n, "layout", 0) != 0 {
            return Err(unsupported(format!(
                "{op} over an input whose first dimension is not the sequence axis"
            )));
        }
        let xv = self.exact(&x)?;
        let units = attr_i(n, "hidden_size", 0) as usize;
        let w = self.weight(n, 1)?;
        let r = self.weight(n, 2)?;
        let dirs = w.dims.first().copied().unwrap_or(1);
        let order = gate_order(op);
        let g = order.len();
        if w.dims.len() != 3 || w.dims[1] != g * units || r.dims != [dirs, g * units, units] {
            return Err(self.err(
                n,
                format!(
                    "weights {:?} / {:?} do not fit hidden_size {units}",
                    w.dims, r.dims
                ),
            ));
        }
        let in_dim = w.dims[2];
        if xv.shape().dims() != [in_dim] {
            return Err(self.err(
                n,
                format!(
                    "input of shape {} for weights of input size {in_dim}",
                    xv.shape()
                ),
            ));
        }
        if attr_f(n, "clip", 0.0) != 0.0 || attr(n, "activation_alpha").is_some() {
            return Err(unsupported(format!(
                "{op} with clip or activation parameters"
            )));
        }
        if op == "LSTM" && attr_i(n, "input_forget", 0) != 0 {
            return Err(unsupported("LSTM with input_forget = 1"));
        }
        let direction = attr_s(n, "direction").unwrap_or_else(|| "forward".into());
        let acts = attr_strings(n, "activations");
        let per = match op {
            "LSTM" => 3,
            "GRU" => 2,
            _ => 1,
        };
        let bias = self.konst(n, 3)?;
        let mut hs = Vec::new();
        let mut finals: Vec<Vec<Variable>> = Vec::new();
        for d in 0..dirs {
            let a: Vec<&str> = if acts.is_empty() {
                match op {
                    "LSTM" => vec!["Sigmoid", "Tanh", "Tanh"],
                    "GRU" => vec!["Sigmoid", "Tanh"],
                    _ => vec!["Tanh"],
                }
            } else {
                acts.iter()
                    .skip(d * per)
                    .take(per)
                    .map(|s| s.as_str())
                    .collect()
            };
            let back = direction == "reverse" || (direction == "bidirectional" && d == 1);
            let wv = rntk_weights(&w, d, units, order);
            let rv = rntk_weights(&r, d, units, order);
            let mut b = vec![0.0; g * units];
            let mut rb = vec![0.0; g * units];
            if let Some(bc) = &bias {
                let v = bc.data.to_f64();
                let base = d * 2 * g * units;
                for (k, &src) in order.iter().enumerate() {
                    for j in 0..units {
                        b[k * units + j] =
                            v[base + src * units + j] + v[base + (g + src) * units + j];
                        rb[k * units + j] = v[base + (g + src) * units + j];
                    }
                }
            }
            let states =
                self.rnn_direction(n, op, d, units, &a, back, (&wv, &rv, &b, &rb), &xv, in_dim)?;
            hs.push(states[0].clone());
            finals.push(states);
        }
        // Y [T, dirs, B, n]
        let y_var = if dirs == 1 {
            hs[0].clone()
        } else {
            let mut parts = Vec::new();
            for h in &hs {
                parts.push(f::reshape(h, Shape::from([1, units]))?);
            }
            f::splice(&parts.iter().collect::<Vec<_>>(), 0)?
        };
        let y = Tv {
            var: y_var,
            dims: vec![SDim::T, SDim::N(dirs), SDim::B, SDim::N(units)],
        };
        let mut outs = vec![Av::T(y)];
        // Y_h / Y_c [dirs, B, n]: the state at each sequence's end
        for k in 0..per.min(2) {
            if n.output.get(1 + k).is_none_or(|s| s.is_empty()) {
                outs.push(Av::Lens);
                continue;
            }
            let mut parts = Vec::new();
            for (d, st) in finals.iter().enumerate() {
                let s = st
                    .get(k)
                    .ok_or_else(|| unsupported("the final cell state of this cell"))?;
                let back = direction == "reverse" || (direction == "bidirectional" && d == 1);
                let e = if back {
                    sequence::first(s)?
                } else {
                    sequence::last(s)?
                };
                parts.push(f::reshape(&e, Shape::from([1, units]))?);
            }
            let var = if parts.len() == 1 {
                parts.remove(0)
            } else {
                f::splice(&parts.iter().collect::<Vec<_>>(), 0)?
            };
            outs.push(Av::T(Tv {
                var,
                dims: vec![SDim::N(dirs), SDim::B, SDim::N(units)],
            }));
        }
        Ok(outs)
    }

    /// One direction: the h sequence (and c for an LSTM).
    #[allow(clippy::too_many_arguments)]
    fn rnn_direction(
        &mut self,
        n: &NodeProto,
        op: &str,
        d: usize,
        units: usize,
        acts: &[&str],
        back: bool,
        (wv, rv, b, rb): (&[f64], &[f64], &[f64], &[f64]),
        x: &Variable,
        in_dim: usize,
    ) -> Result<Vec<Variable>> {
        let name = n.name.clone().unwrap_or_default();
        let act = |s: &str| activation(s).ok_or_else(|| unsupported(format!("activation {s}")));
        let g = gate_order(op).len();
        let wp = self.param("W", &[in_dim, g * units], wv)?;
        let bp = self.param("b", &[g * units], b)?;
        match op {
            "LSTM" => {
                if !acts[0].eq_ignore_ascii_case("sigmoid") || acts[1] != acts[2] {
                    return Err(unsupported(format!("LSTM activations {acts:?} (rntk: sigmoid gates, one activation for the cell and output)")));
                }
                let hp = self.param("H", &[units, 4 * units], rv)?;
                let mut cell = Lstm::new(units)
                    .activation(act(acts[1])?)
                    .name(&name)
                    .with_parameter("W", wp)?
                    .with_parameter("H", hp)?
                    .with_parameter("b", bp)?;
                if let Some(p) = self.konst(n, 7)? {
                    let v = p.data.to_f64();
                    let base = d * 3 * units;
                    // ONNX P: i, o, f
                    for (k, key) in [(0, "Ci"), (2, "Cf"), (1, "Co")] {
                        let s = &v[base + k * units..base + (k + 1) * units];
                        let pv = self.param(key, &[units], s)?;
                        cell = cell.with_parameter(key, pv)?;
                    }
                    cell = cell.use_peepholes(true);
                }
                let init = InitialState::PerState(vec![
                    self.initial(n, 5, d, units)?,
                    self.initial(n, 6, d, units)?,
                ]);
                Recurrence::new(cell)
                    .go_backwards(back)
                    .initial_state(init)
                    .apply_full(x)
            }
            "GRU" if attr_i(n, "linear_before_reset", 0) == 0 => {
                if !acts[0].eq_ignore_ascii_case("sigmoid") {
                    return Err(unsupported(format!("GRU activations {acts:?}")));
                }
                // R [z, r, h] (n, 3n): H holds z and r, H1 the candidate's
                let mut h = vec![0.0; units * 2 * units];
                let mut h1 = vec![0.0; units * units];
                for row in 0..units {
                    h[row * 2 * units..(row + 1) * 2 * units]
                        .copy_from_slice(&rv[row * 3 * units..row * 3 * units + 2 * units]);
                    h1[row * units..(row + 1) * units]
                        .copy_from_slice(&rv[row * 3 * units + 2 * units..(row + 1) * 3 * units]);
                }
                let hp = self.param("H", &[units, 2 * units], &h)?;
                let h1p = self.param("H1", &[units, units], &h1)?;
                let cell = Gru::new(units)
                    .activation(act(acts[1])?)
                    .name(&name)
                    .with_parameter("W", wp)?
                    .with_parameter("H", hp)?
                    .with_parameter("H1", h1p)?
                    .with_parameter("b", bp)?;
                let init = self.initial(n, 5, d, units)?;
                Recurrence::new(cell)
                    .go_backwards(back)
                    .initial_state(init)
                    .apply_full(x)
            }
            "GRU" => {
                self.gru_linear_before_reset(n, d, units, acts, back, (wv, rv, b, rb), x, in_dim)
            }
            _ => {
                let hp = self.param("H", &[units, units], rv)?;
                let cell = RnnStep::new(units)
                    .activation(act(acts[0])?)
                    .name(&name)
                    .with_parameter("W", wp)?
                    .with_parameter("H", hp)?
                    .with_parameter("b", bp)?;
                let init = self.initial(n, 5, d, units)?;
                Recurrence::new(cell)
                    .go_backwards(back)
                    .initial_state(init)
                    .apply_full(x)
            }
        }
    }

    /// PyTorch's GRU: `ĥ = act(x·Wh + Wbh + r ⊙ (h·Rh + Rbh))`, as a loop of its own.
    #[allow(clippy::too_many_arguments)]
    fn gru_linear_before_reset(
        &mut self,
        n: &NodeProto,
        d: usize,
        units: usize,
        acts: &[&str],
        back: bool,
        (wv, rv, b, rb): (&[f64], &[f64], &[f64], &[f64]),
        x: &Variable,
        in_dim: usize,
    ) -> Result<Vec<Variable>> {
        if !acts[0].eq_ignore_ascii_case("sigmoid") {
            return Err(unsupported(format!("GRU activations {acts:?}")));
        }
        let act =
            activation(acts[1]).ok_or_else(|| unsupported(format!("activation {}", acts[1])))?;
        // x-side bias: z, r get both biases, the candidate only Wbh
        let mut bx = b.to_vec();
        for j in 0..units {
            bx[2 * units + j] -= rb[2 * units + j];
        }
        let w = self.param("W", &[in_dim, 3 * units], wv)?;
        let bxp = self.param("b", &[3 * units], &bx)?;
        let h = self.param("H", &[units, 3 * units], rv)?;
        let rbh = self.param("Rbh", &[units], &rb[2 * units..])?;
        let ax = f::plus(&bxp, &f::times(x, &w)?)?;
        let init = match self.initial(n, 5, d, units)? {
            InitialState::Scalar(v) => crate::graph::scalar(v, self.dtype),
            InitialState::Variable(v) => v,
            InitialState::PerState(_) => return Err(unsupported("initial state")),
        };
        let ph = placeholder([units], x.dtype(), x.dynamic_axes(), "h")?;
        let prev = if back {
            sequence::future_value(&ph, &init, 1)?
        } else {
            sequence::past_value(&ph, &init, 1)?
        };
        let ah = f::times(&prev, &h)?;
        let gate = |v: &Variable, k: usize| {
            f::slice(v, 0, (k * units) as isize, ((k + 1) * units) as isize)
        };
        let z = f::sigmoid(&f::plus(&gate(&ax, 0)?, &gate(&ah, 0)?)?)?;
        let r = f::sigmoid(&f::plus(&gate(&ax, 1)?, &gate(&ah, 1)?)?)?;
        let cand = act.apply(&f::plus(
            &gate(&ax, 2)?,
            &f::element_times(&r, &f::plus(&gate(&ah, 2)?, &rbh)?)?,
        )?)?;
        let one = crate::graph::scalar(1.0, x.dtype());
        let hn = f::plus(
            &f::element_times(&f::minus(&one, &z)?, &cand)?,
            &f::element_times(&z, &prev)?,
        )?;
        hn.owner()
            .ok_or_else(|| unsupported("GRU step"))?
            .replace_placeholders(&[(ph, hn.clone())])?;
        Ok(vec![hn])
    }

    /// `Scan` → a recurrence: each state a placeholder delayed by one step (forward or
    /// backward), the body applied to the sequences, the placeholders closed by the
    /// body's new states.
    pub fn scan(&mut self, n: &'a NodeProto) -> Result<Vec<Av>> {
        let body = attr(n, "body")
            .and_then(|a| a.g.as_ref())
            .ok_or_else(|| self.err(n, "no body"))?;
        let m = attr_i(n, "num_scan_inputs", 0) as usize;
        let total = n.input.len();
        if m == 0 || m > total || body.input.len() != total || self.opset < 9 {
            return Err(self.err(n, "inputs and body do not fit"));
        }
        let states = total - m;
        let reverse = scan_reverse(n)?;
        let mut scope = std::collections::HashMap::new();
        // per-step views of the scanned sequences
        let mut like: Option<Variable> = None;
        for k in 0..m {
            let v = self.need(n, states + k)?;
            let name = body.input[states + k].name.clone().unwrap_or_default();
            let step = match v {
                Av::Mask(a) => Av::Mask(a),
                other => {
                    let t = self.tv(&other, None)?;
                    if t.t_pos() != Some(0) {
                        return Err(unsupported(
                            "Scan over a value whose first dimension is not the sequence",
                        ));
                    }
                    like.get_or_insert(t.var.clone());
                    Av::T(Tv {
                        var: t.var.clone(),
                        dims: t.dims[1..].to_vec(),
                    })
                }
            };
            scope.insert(name, step);
        }
        let like = like.ok_or_else(|| unsupported("Scan with no sequence input"))?;
        let mut phs = Vec::new();
        for k in 0..states {
            let init = self.need(n, k)?;
            let it = self.tv(&init, None)?;
            let init_var = self
                .exact(&Tv {
                    var: it.var.clone(),
                    dims: it
                        .dims
                        .iter()
                        .filter(|d| !matches!(d, SDim::B | SDim::T))
                        .cloned()
                        .collect(),
                })
                .unwrap_or(it.var.clone());
            let shape: Vec<usize> = it.sample();
            let ph = placeholder(
                shape.clone(),
                like.dtype(),
                like.dynamic_axes(),
                &format!("state{k}"),
            )?;
            let init_var = if init_var.dynamic_axes().is_none() && init_var.shape().numel() == 1 {
                f::reshape(&init_var, Shape::scalar())?
            } else {
                init_var
            };
            let delayed = if reverse {
                sequence::future_value(&ph, &init_var, 1)?
            } else {
                sequence::past_value(&ph, &init_var, 1)?
            };
            let mut dims = vec![SDim::B];
            dims.extend(shape.iter().map(|&s| SDim::N(s)));
            let name = body.input[k].name.clone().unwrap_or_default();
            scope.insert(name, Av::T(Tv { var: delayed, dims }));
            phs.push(ph);
        }
        self.scopes.push(scope);
        let mut known: HashSet<String> = HashSet::new();
        for s in &self.scopes {
            known.extend(s.keys().cloned());
        }
        known.extend(body.initializer.iter().filter_map(|t| t.name.clone()));
        for t in &body.initializer {
            let c = super::model::tensor(self.file, t, self.dir)?;
            let learnable = c.data.is_float();
            self.put(
                &t.name.clone().unwrap_or_default(),
                Av::C(std::rc::Rc::new(c), learnable),
            );
        }
        let r = self.nodes(body, &known);
        let outs: Result<Vec<Av>> = body
            .output
            .iter()
            .map(|o| {
                let name = o.name.clone().unwrap_or_default();
                self.get(&name).ok_or_else(|| {
                    unsupported(format!("Scan body output '{name}' is not computed"))
                })
            })
            .collect();
        self.scopes.pop();
        r?;
        let outs = outs?;
        let mut result = Vec::new();
        let mut finals = Vec::new();
        for (k, ph) in phs.iter().enumerate() {
            let t = self.tv(&outs[k], None)?;
            let v = self.exact(&Tv {
                var: t.var.clone(),
                dims: t.dims.iter().filter(|d| **d != SDim::B).cloned().collect(),
            })?;
            let v = if v.dynamic_axes() != ph.dynamic_axes() {
                return Err(unsupported("a Scan state that does not depend on the step"));
            } else {
                v
            };
            if let Some(owner) = v.owner() {
                owner.replace_placeholders(&[(ph.clone(), v.clone())])?;
            }
            let e = if reverse {
                sequence::first(&v)?
            } else {
                sequence::last(&v)?
            };
            let mut dims = vec![SDim::B];
            dims.extend(t.sample().iter().map(|&s| SDim::N(s)));
            finals.push(Av::T(Tv { var: e, dims }));
        }
        result.extend(finals);
        for o in &outs[states..] {
            let t = self.tv(o, None)?;
            let mut dims = vec![SDim::T];
            dims.extend(t.dims.iter().cloned());
            result.push(Av::T(Tv { var: t.var, dims }));
        }
        Ok(result)
    }

    /// rntk's sequence functions (domain `ai.rntk`) → rntk's sequence ops.
    pub fn rntk_function(&mut self, n: &NodeProto, name: &str) -> Result<Vec<Av>> {
        let seq = |s: &mut Self, i: usize| -> Result<Tv> {
            let v = s.need(n, i)?;
            s.tv(&v, None)
        };
        let with = |t: &Tv, var: Variable, keep_t: bool| -> Tv {
            let dims = if keep_t {
                t.dims.clone()
            } else {
                t.dims.iter().filter(|d| **d != SDim::T).cloned().collect()
            };
            Tv { var, dims }
        };
        match name {
            "SequenceMask" => Ok(vec![Av::Mask(0)]),
            "SequenceFirst" | "SequenceLast" | "SequenceReduceSum" | "SequenceReduceMax" => {
                let t = seq(self, 0)?;
                let x = self.exact(&t)?;
                let var = match name {
                    "SequenceFirst" => sequence::first(&x)?,
                    "SequenceLast" => sequence::last(&x)?,
                    "SequenceReduceSum" => sequence::reduce_sum(&x)?,
                    _ => sequence::reduce_max(&x)?,
                };
                one_tv(with(&t, var, false))
            }
            "SequenceSoftmax" => {
                let t = seq(self, 0)?;
                let x = self.exact(&t)?;
                one_tv(with(&t, sequence::softmax(&x)?, true))
            }
            "SequenceIsFirst" | "SequenceIsLast" => {
                let t = seq(self, 0)?;
                let x = self.exact(&t)?;
                let var = if name == "SequenceIsFirst" {
                    sequence::is_first(&x)?
                } else {
                    sequence::is_last(&x)?
                };
                one_tv(Tv {
                    var,
                    dims: vec![SDim::T, SDim::B],
                })
            }
            "SequenceBroadcastAs" => {
                let v = seq(self, 0)?;
                let like = seq(self, 1)?;
                let x = self.exact(&v)?;
                let l = self.exact(&like)?;
                let var = sequence::broadcast_as(&x, &l)?;
                let mut dims = vec![SDim::T];
                dims.extend(v.dims.iter().cloned());
                one_tv(Tv { var, dims })
            }
            "PastValue" | "FutureValue" => {
                let t = seq(self, 0)?;
                let x = self.exact(&t)?;
                let init = seq(self, 1)?;
                let iv = if init.var.dynamic_axes().is_none() && init.var.shape().numel() == 1 {
                    f::reshape(&init.var, Shape::scalar())?
                } else {
                    self.exact(&Tv {
                        var: init.var.clone(),
                        dims: init
                            .dims
                            .iter()
                            .filter(|d| **d != SDim::B)
                            .cloned()
                            .collect(),
                    })?
                };
                let k = attr_i(n, "offset", 1).max(1) as usize;
                let var = if name == "PastValue" {
                    sequence::past_value(&x, &iv, k)?
                } else {
                    sequence::future_value(&x, &iv, k)?
                };
                one_tv(with(&t, var, true))
            }
            "SequenceWhere" => {
                let c = seq(self, 0)?;
                let x = self.exact(&c)?;
                let var = sequence::where_(&x)?;
                Ok(vec![Av::T(with(&c, var, true)), Av::Lens])
            }
            "SequenceGather" => {
                let t = seq(self, 0)?;
                let c = seq(self, 1)?;
                let (x, cv) = (self.exact(&t)?, self.exact(&c)?);
                let var = sequence::gather(&x, &cv)?;
                Ok(vec![Av::T(with(&t, var, true)), Av::Lens])
            }
            "SequenceScatter" => {
                let t = seq(self, 0)?;
                let c = seq(self, 2)?;
                let (x, cv) = (self.exact(&t)?, self.exact(&c)?);
                one_tv(with(&t, sequence::scatter(&x, &cv)?, true))
            }
            "SequenceSlice" => {
                let t = seq(self, 0)?;
                let x = self.exact(&t)?;
                let (b, e) = (attr_i(n, "begin", 0) as isize, attr_i(n, "end", 0) as isize);
                Ok(vec![
                    Av::T(with(&t, sequence::slice(&x, b, e)?, true)),
                    Av::Lens,
                ])
            }
            "SequenceUnpack" | "SequenceUnpackMask" => {
                let t = seq(self, 0)?;
                let x = self.exact(&t)?;
                let pad = match self.konst(n, 2)? {
                    Some(c) => c.data.to_f64().first().copied().unwrap_or(0.0),
                    None => 0.0,
                };
                let (v, m) = sequence::unpack(&x, pad)?;
                let var = if name == "SequenceUnpack" { v } else { m };
                let mut dims = vec![SDim::B];
                dims.extend(var.shape().dims().iter().map(|&d| SDim::N(d)));
                one_tv(Tv { var, dims })
            }
            _ => {
                let op = match name {
                    "SequenceReduceAllSum" => crate::ops::ReduceOp::Sum,
                    "SequenceReduceAllMean" => crate::ops::ReduceOp::Mean,
                    "SequenceReduceAllMax" => crate::ops::ReduceOp::Max,
                    "SequenceReduceAllMin" => crate::ops::ReduceOp::Min,
                    "SequenceReduceAllLogSumExp" => crate::ops::ReduceOp::LogSumExp,
                    other => {
                        return Err(unsupported(format!(
                            "rntk has no sequence function {other}"
                        )))
                    }
                };
                let t = seq(self, 0)?;
                let x = self.exact(&t)?;
                one_tv(Tv {
                    var: f::reduce_all(op, &x)?,
                    dims: vec![],
                })
            }
        }
    }
}

/// Whether a `Scan` runs backward: its inputs and outputs must all run one way,
/// along their first axis.
fn scan_reverse(n: &NodeProto) -> Result<bool> {
    let dirs_in = super::ops::attr_ints(n, "scan_input_directions").unwrap_or_default();
    let dirs_out = super::ops::attr_ints(n, "scan_output_directions").unwrap_or_default();
    let reverse = dirs_in.first().copied().unwrap_or(0) == 1;
    if dirs_in.iter().any(|&d| d != dirs_in[0])
        || dirs_out
            .iter()
            .any(|&d| d != dirs_in.first().copied().unwrap_or(0))
    {
        return Err(unsupported(
            "Scan whose inputs or outputs run in different directions",
        ));
    }
    if super::ops::attr_ints(n, "scan_input_axes").is_some_and(|a| a.iter().any(|&x| x != 0))
        || super::ops::attr_ints(n, "scan_output_axes").is_some_and(|a| a.iter().any(|&x| x != 0))
    {
        return Err(unsupported("Scan along an axis other than the first"));
    }
    Ok(reverse)
}

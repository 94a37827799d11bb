//! Recurrent step blocks — stateless one-step functions that `Recurrence` scans:
//! `LSTM: (h, c, x) → (h, c)`, `GRU: (h, x) → h`, `RNNStep: (h, x) → h`, with CNTK's
//! packed gate orders ([i, g, f, o]; GRU [z, r, c̃]), single bias, peepholes, projection
//! (`cell_shape`) and self-stabilization (recurrence.md §6).

use super::defaults::lookup;
use super::{as_block_n, layer_err, Activation, Stabilizer};
use crate::error::Result;
use crate::functions::{element_times, lstm_cell, lstm_scan, minus, plus, sigmoid, slice, times};
use crate::graph::{parameter, scalar, VarInfo, Variable};
use crate::initializer::Initializer;
use crate::tensor::Shape;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// A step function for `Recurrence`: `(states…, x) → new states`, h first.
pub trait RecurrentStep: Send + Sync {
    /// The shapes of the states for an input described by `x`.
    fn state_shapes(&self, x: &VarInfo) -> Result<Vec<Shape>>;
    /// One step.
    fn step(&self, states: &[Variable], x: &Variable) -> Result<Vec<Variable>>;
    /// Parameters created so far.
    fn parameters(&self) -> Vec<Variable>;
    /// CNTK's block name ("LSTM", "GRU", "RNNStep").
    fn op_name(&self) -> &str;
    /// The whole scan over `x`'s sequences as one fused op, for steps that have one
    /// (`None`: `Recurrence` builds the step-by-step loop). `init` holds the static
    /// initial states; the outputs are the state sequences, as the loop's would be.
    fn fused_scan(
        &self,
        _x: &Variable,
        _init: &[Variable],
        _go_backwards: bool,
    ) -> Result<Option<Vec<Variable>>> {
        Ok(None)
    }
}

/// Options shared by the three cells.
struct Cell {
    kind: &'static str,
    shape: usize,
    cell: Option<usize>,
    activation: Activation,
    init: Initializer,
    init_bias: f64,
    stabilize: bool,
    name: String,
    /// Parameters by CNTK name (W, H, H1, b, Ci, Cf, Co, P), created on the first step.
    params: Mutex<BTreeMap<&'static str, Variable>>,
    /// Automatic seeds taken ahead of creation by `reserve_seeds` (CNTK's order).
    seeds: Mutex<Option<BTreeMap<&'static str, u64>>>,
    input: Mutex<Option<Shape>>,
    /// S_dh, S_dc, S_ct, S_ht: only those actually used get an α.
    stabilizers: [Stabilizer; 4],
}

impl Cell {
    fn new(kind: &'static str, shape: usize, default_act: Activation) -> Self {
        let stabilize = lookup(kind, |o| o.enable_self_stabilization).unwrap_or(false);
        let st = || Stabilizer::new().enabled(stabilize);
        Cell {
            kind,
            shape,
            cell: None,
            activation: lookup(kind, |o| o.activation.clone()).unwrap_or(default_act),
            init: lookup(kind, |o| o.init.clone()).unwrap_or_else(Initializer::glorot_uniform),
            init_bias: lookup(kind, |o| o.init_bias).unwrap_or(0.0),
            stabilize,
            name: String::new(),
            params: Mutex::new(BTreeMap::new()),
            seeds: Mutex::new(None),
            input: Mutex::new(None),
            stabilizers: [st(), st(), st(), st()],
        }
    }

    fn n(&self) -> usize {
        self.cell.unwrap_or(self.shape)
    }

    /// Take the automatic seeds of the random parameters `keys` now, in that order (what
    /// CNTK's factory does when it is called). No effect once parameters exist, for an
    /// initializer with an explicit seed, or for a constant one.
    fn reserve(&self, keys: &[&'static str]) {
        let mut g = self.seeds.lock().unwrap_or_else(|e| e.into_inner());
        let created = self.params.lock().map(|p| !p.is_empty()).unwrap_or(true);
        if g.is_some() || created {
            return;
        }
        let mut m = BTreeMap::new();
        if self.init.is_random() && self.init.seed().is_none() {
            for &k in keys {
                m.insert(k, crate::random::generate_random_seed());
            }
        }
        *g = Some(m);
    }

    /// The random parameters in CNTK's creation order: W, H, (H1), peepholes, P.
    fn seed_keys(&self, middle: &[&'static str]) -> Vec<&'static str> {
        let mut keys = vec!["W", "H"];
        keys.extend_from_slice(middle);
        if self.cell.is_some() {
            keys.push("P");
        }
        keys
    }

    fn set_stabilize(&mut self, on: bool) {
        self.stabilize = on;
        self.stabilizers = [
            Stabilizer::new().enabled(on),
            Stabilizer::new().enabled(on),
            Stabilizer::new().enabled(on),
            Stabilizer::new().enabled(on),
        ];
    }

    fn input_dim(&self, x: &VarInfo) -> Result<usize> {
        if x.shape.rank() != 1 {
            return Err(layer_err(
                self.kind,
                &self.name,
                format!("input must be a vector, got shape {}", x.shape),
            ));
        }
        let mut g = self
            .input
            .lock()
            .map_err(|_| layer_err(self.kind, &self.name, "lock poisoned"))?;
        match g.as_ref() {
            Some(s) if *s != x.shape => Err(layer_err(
                self.kind,
                &self.name,
                format!(
                    "was first applied to inputs of shape {s} and now to {}",
                    x.shape
                ),
            )),
            _ => {
                *g = Some(x.shape.clone());
                Ok(x.shape.dims()[0])
            }
        }
    }

    /// The named parameter, created with `shape` on first use.
    fn param(
        &self,
        key: &'static str,
        shape: &[usize],
        x: &Variable,
        bias: bool,
    ) -> Result<Variable> {
        let mut g = self
            .params
            .lock()
            .map_err(|_| layer_err(self.kind, &self.name, "lock poisoned"))?;
        if let Some(p) = g.get(key) {
            if p.shape().dims() != shape && !p.shape().has_inferred() {
                return Err(layer_err(
                    self.kind,
                    &self.name,
                    format!(
                        "parameter {key} has shape {} but the step needs {:?}",
                        p.shape(),
                        shape
                    ),
                ));
            }
            return Ok(p.clone());
        }
        let init = if bias {
            Initializer::Constant(self.init_bias)
        } else {
            let reserved = self
                .seeds
                .lock()
                .ok()
                .and_then(|m| m.as_ref().and_then(|m| m.get(key).copied()));
            let init = self.init.clone().with_output_rank(1);
            match reserved {
                Some(s) => init.with_seed(s),
                None => init,
            }
        };
        let p = parameter(shape.to_vec(), x.dtype(), init, key)?;
        g.insert(key, p.clone());
        Ok(p)
    }

    fn all_params(&self) -> Vec<Variable> {
        let mut v: Vec<Variable> = self
            .params
            .lock()
            .map(|g| g.values().cloned().collect())
            .unwrap_or_default();
        v.extend(self.stabilizers.iter().filter_map(|s| s.alpha()));
        v
    }

    /// Gate slice k of width n.
    fn gate(a: &Variable, k: usize, n: usize) -> Result<Variable> {
        slice(a, 0, (k * n) as isize, ((k + 1) * n) as isize)
    }

    /// Output projection h·P (stabilized) when `cell_shape` was given.
    fn project(&self, h: Variable, x: &Variable) -> Result<Variable> {
        match self.cell {
            Some(n) => {
                let p = self.param("P", &[n, self.shape], x, false)?;
                times(&self.stabilizers[3].scale(&h)?, &p)
            }
            None => Ok(h),
        }
    }
}

macro_rules! cell_builders {
    ($t:ty) => {
        impl $t {
            /// Projection: the cell works at width `n` and h is projected to `shape`.
            pub fn cell_shape(mut self, n: usize) -> Self {
                self.0.cell = Some(n);
                self
            }
            pub fn activation(mut self, a: Activation) -> Self {
                self.0.activation = a;
                self
            }
            pub fn init(mut self, i: Initializer) -> Self {
                self.0.init = i;
                self
            }
            pub fn init_bias(mut self, b: f64) -> Self {
                self.0.init_bias = b;
                self
            }
            pub fn enable_self_stabilization(mut self, on: bool) -> Self {
                self.0.set_stabilize(on);
                self
            }
            pub fn name(mut self, n: &str) -> Self {
                self.0.name = n.to_string();
                self
            }
            /// Use `p` as the parameter CNTK names `key` ("W", "H", "H1", "b", "Ci",
            /// "Cf", "Co", "P") instead of creating one when first applied (weights
            /// read from a file); shapes are checked when the step is applied.
            pub fn with_parameter(self, key: &str, p: Variable) -> Result<Self> {
                let k: &'static str = match key {
                    "W" => "W",
                    "H" => "H",
                    "H1" => "H1",
                    "b" => "b",
                    "Ci" => "Ci",
                    "Cf" => "Cf",
                    "Co" => "Co",
                    "P" => "P",
                    other => {
                        return Err(layer_err(
                            self.0.kind,
                            &self.0.name,
                            format!("no parameter named {other}"),
                        ))
                    }
                };
                self.0
                    .params
                    .lock()
                    .map_err(|_| layer_err(self.0.kind, &self.0.name, "lock poisoned"))?
                    .insert(k, p);
                Ok(self)
            }
            /// A parameter by its CNTK name ("W", "H", "b", …), once created.
            pub fn parameter(&self, key: &str) -> Option<Variable> {
                self.0.params.lock().ok()?.get(key).cloned()
            }
            /// The α of stabilizer k (0 = h_prev, 1 = c_prev, 2 = new c, 3 = before P).
            pub fn stabilizer_alpha(&self, k: usize) -> Option<Variable> {
                self.0.stabilizers.get(k)?.alpha()
            }
        }
    };
}

/// CNTK's `LSTM(shape)` step.
pub struct Lstm(Cell, bool, bool);
cell_builders!(Lstm);

impl Lstm {
    /// Take this step's automatic seeds now (W, H, Ci, Cf, Co, P), as CNTK's `LSTM(...)`
    /// call does; otherwise they are taken when the step is first applied. See
    /// [`crate::random`].
    pub fn reserve_seeds(&self) {
        let peep: &[&'static str] = if self.1 { &["Ci", "Cf", "Co"] } else { &[] };
        self.0.reserve(&self.0.seed_keys(peep));
    }
    pub fn new(shape: usize) -> Self {
        let peep = lookup("LSTM", |o| o.use_peepholes).unwrap_or(false);
        Lstm(Cell::new("LSTM", shape, Activation::Tanh), peep, true)
    }
    pub fn use_peepholes(mut self, on: bool) -> Self {
        self.1 = on;
        self
    }
    /// Whether `Recurrence`/`Fold` may run this step as one fused scan over the
    /// sequence (default on; it applies to the plain cell: tanh, no peepholes,
    /// projection or self-stabilization, static initial states). Off builds the
    /// step-by-step loop, which computes the same values.
    pub fn fused(mut self, on: bool) -> Self {
        self.2 = on;
        self
    }

    /// The LSTM parameters W, H, b in the order the step creates them.
    fn wbh(&self, x: &Variable) -> Result<(Variable, Variable, Variable)> {
        let c = &self.0;
        let (n, d) = (c.n(), c.shape);
        let i_dim = c.input_dim(&x.info())?;
        let w = c.param("W", &[i_dim, 4 * n], x, false)?;
        let h = c.param("H", &[d, 4 * n], x, false)?;
        let b = c.param("b", &[4 * n], x, true)?;
        Ok((w, h, b))
    }
}

impl RecurrentStep for Lstm {
    fn state_shapes(&self, x: &VarInfo) -> Result<Vec<Shape>> {
        self.0.input_dim(x)?;
        Ok(vec![Shape::from([self.0.shape]), Shape::from([self.0.n()])])
    }

    fn step(&self, states: &[Variable], x: &Variable) -> Result<Vec<Variable>> {
        let c = &self.0;
        if super::probe::probing() {
            return super::probe::stand_ins(&[Shape::from([c.shape]), Shape::from([c.n()])], x);
        }
        if states.len() != 2 {
            return Err(layer_err(
                "LSTM",
                &c.name,
                format!("takes 2 states (h, c), got {}", states.len()),
            ));
        }
        let n = c.n();
        let (w, h, b) = self.wbh(x)?;
        let peep = if self.1 {
            Some((
                c.param("Ci", &[n], x, false)?,
                c.param("Cf", &[n], x, false)?,
                c.param("Co", &[n], x, false)?,
            ))
        } else {
            None
        };
        let operands = [states[0].clone(), states[1].clone(), x.clone()];
        as_block_n(&operands, "LSTM", &c.name, |a| {
            let (h_prev, c_prev, x) = (&a[0], &a[1], &a[2]);
            let dh = c.stabilizers[0].scale(h_prev)?;
            let act = |v: &Variable| c.activation.apply(v);
            let pre = plus(&plus(&b, &times(x, &w)?)?, &times(&dh, &h)?)?;
            if peep.is_none() && matches!(c.activation, Activation::Tanh) {
                // The common cell in one fused op (same values, far fewer nodes per step).
                let hc = lstm_cell(&pre, c_prev)?;
                let ht = slice(&hc, 0, 0, n as isize)?;
                let ct = slice(&hc, 0, n as isize, 2 * n as isize)?;
                return Ok(vec![c.project(ht, x)?, ct]);
            }
            let (gi, gg, gf, go) = (
                Cell::gate(&pre, 0, n)?,
                Cell::gate(&pre, 1, n)?,
                Cell::gate(&pre, 2, n)?,
                Cell::gate(&pre, 3, n)?,
            );
            let (gi, gf) = match &peep {
                Some((ci, cf, _)) => {
                    let dc = c.stabilizers[1].scale(c_prev)?;
                    (
                        plus(&gi, &element_times(ci, &dc)?)?,
                        plus(&gf, &element_times(cf, &dc)?)?,
                    )
                }
                None => (gi, gf),
            };
            let i = sigmoid(&gi)?;
            let f = sigmoid(&gf)?;
            let ct = plus(&element_times(&f, c_prev)?, &element_times(&i, &act(&gg)?)?)?;
            let go = match &peep {
                Some((_, _, co)) => plus(&go, &element_times(co, &c.stabilizers[2].scale(&ct)?)?)?,
                None => go,
            };
            let o = sigmoid(&go)?;
            let ht = element_times(&act(&ct)?, &o)?;
            Ok(vec![c.project(ht, x)?, ct])
        })
    }

    fn parameters(&self) -> Vec<Variable> {
        self.0.all_params()
    }
    fn op_name(&self) -> &str {
        "LSTM"
    }

    fn fused_scan(
        &self,
        x: &Variable,
        init: &[Variable],
        go_backwards: bool,
    ) -> Result<Option<Vec<Variable>>> {
        let c = &self.0;
        let plain =
            !self.1 && matches!(c.activation, Activation::Tanh) && !c.stabilize && c.cell.is_none();
        if !self.2 || !plain || init.len() != 2 {
            return Ok(None);
        }
        let n = c.n();
        let operands = [x.clone(), init[0].clone(), init[1].clone()];
        as_block_n(&operands, "LSTM", &c.name, |a| {
            let (w, h, b) = self.wbh(&a[0])?;
            let pre = plus(&b, &times(&a[0], &w)?)?;
            let hc = lstm_scan(&pre, &h, &a[1], &a[2], go_backwards)?;
            Ok(vec![
                slice(&hc, 0, 0, n as isize)?,
                slice(&hc, 0, n as isize, 2 * n as isize)?,
            ])
        })
        .map(Some)
    }
}

/// CNTK's `GRU(shape)` step.
pub struct Gru(Cell);
cell_builders!(Gru);

impl Gru {
    /// Take this step's automatic seeds now (W, H, H1, P), as CNTK's `GRU(...)` call does.
    pub fn reserve_seeds(&self) {
        self.0.reserve(&self.0.seed_keys(&["H1"]));
    }
    pub fn new(shape: usize) -> Self {
        Gru(Cell::new("GRU", shape, Activation::Tanh))
    }
}

impl RecurrentStep for Gru {
    fn state_shapes(&self, x: &VarInfo) -> Result<Vec<Shape>> {
        self.0.input_dim(x)?;
        if self.0.cell.is_some_and(|n| n != self.0.shape) {
            return Err(layer_err(
                "GRU",
                &self.0.name,
                "a projected GRU (cell_shape) needs cell_shape equal to shape: the reset gate multiplies h (width shape) by r (width cell_shape)",
            ));
        }
        Ok(vec![Shape::from([self.0.shape])])
    }

    fn step(&self, states: &[Variable], x: &Variable) -> Result<Vec<Variable>> {
        let c = &self.0;
        if super::probe::probing() {
            return super::probe::stand_ins(&[Shape::from([c.shape])], x);
        }
        if states.len() != 1 {
            return Err(layer_err(
                "GRU",
                &c.name,
                format!("takes 1 state, got {}", states.len()),
            ));
        }
        let (n, d) = (c.n(), c.shape);
        let i_dim = c.input_dim(&x.info())?;
        let w = c.param("W", &[i_dim, 3 * n], x, false)?;
        let h = c.param("H", &[d, 2 * n], x, false)?;
        let h1 = c.param("H1", &[d, n], x, false)?;
        let b = c.param("b", &[3 * n], x, true)?;
        let operands = [states[0].clone(), x.clone()];
        as_block_n(&operands, "GRU", &c.name, |a| {
            let (h_prev, x) = (&a[0], &a[1]);
            let dh = c.stabilizers[0].scale(h_prev)?;
            let ax = plus(&b, &times(x, &w)?)?;
            let ah = times(&dh, &h)?;
            let z = sigmoid(&plus(&Cell::gate(&ax, 0, n)?, &Cell::gate(&ah, 0, n)?)?)?;
            let r = sigmoid(&plus(&Cell::gate(&ax, 1, n)?, &Cell::gate(&ah, 1, n)?)?)?;
            let cand = c.activation.apply(&plus(
                &Cell::gate(&ax, 2, n)?,
                &times(&element_times(&dh, &r)?, &h1)?,
            )?)?;
            let one = scalar(1.0, x.dtype());
            let ht = plus(
                &element_times(&minus(&one, &z)?, &cand)?,
                &element_times(&z, &dh)?,
            )?;
            Ok(vec![c.project(ht, x)?])
        })
    }

    fn parameters(&self) -> Vec<Variable> {
        self.0.all_params()
    }
    fn op_name(&self) -> &str {
        "GRU"
    }
}

/// CNTK's `RNNStep(shape)`: h = act(x·W + h_prev·H + b); act defaults to **sigmoid**.
pub struct RnnStep(Cell);
cell_builders!(RnnStep);

impl RnnStep {
    /// Take this step's automatic seeds now (W, H, P), as CNTK's `RNNStep(...)` call does.
    pub fn reserve_seeds(&self) {
        self.0.reserve(&self.0.seed_keys(&[]));
    }
    pub fn new(shape: usize) -> Self {
        RnnStep(Cell::new("RNNStep", shape, Activation::Sigmoid))
    }
}

impl RecurrentStep for RnnStep {
    fn state_shapes(&self, x: &VarInfo) -> Result<Vec<Shape>> {
        self.0.input_dim(x)?;
        Ok(vec![Shape::from([self.0.shape])])
    }

    fn step(&self, states: &[Variable], x: &Variable) -> Result<Vec<Variable>> {
        let c = &self.0;
        if super::probe::probing() {
            return super::probe::stand_ins(&[Shape::from([c.shape])], x);
        }
        if states.len() != 1 {
            return Err(layer_err(
                "RNNStep",
                &c.name,
                format!("takes 1 state, got {}", states.len()),
            ));
        }
        let (n, d) = (c.n(), c.shape);
        let i_dim = c.input_dim(&x.info())?;
        let w = c.param("W", &[i_dim, n], x, false)?;
        let h = c.param("H", &[d, n], x, false)?;
        let b = c.param("b", &[n], x, true)?;
        let operands = [states[0].clone(), x.clone()];
        as_block_n(&operands, "RNNStep", &c.name, |a| {
            let (h_prev, x) = (&a[0], &a[1]);
            let dh = c.stabilizers[0].scale(h_prev)?;
            let pre = plus(&plus(&times(x, &w)?, &times(&dh, &h)?)?, &b)?;
            Ok(vec![c.project(c.activation.apply(&pre)?, x)?])
        })
    }

    fn parameters(&self) -> Vec<Variable> {
        self.0.all_params()
    }
    fn op_name(&self) -> &str {
        "RNNStep"
    }
}

//! The model as a list of layer tables (`{ type = "Dense", dim = 1 }`), built into a
//! `Sequential` of rntk layers inside the config's `default_options`.

use crate::config::DefaultOptionsSpec;
use crate::fail::{Fail, Result};
use rntk::graph::VarInfo;
use rntk::initializer::Initializer;
use rntk::layers::{
    default_options, Activation, BatchNormalization, Concat, DefaultOptions, Delay, Dense, Dropout,
    Embedding, Fold, Gru, Identity, InitialState, Label, Layer, LayerNormalization, LayerRef, Lstm,
    Recurrence, RecurrentStep, ResNetBlock, RnnStep, Sequential, Stabilizer,
};
use rntk::{sequence, Variable};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::sync::Arc;

/// The `type`s of this file's layer tables (`conv_layers.rs` has the convolutional ones).
pub const LAYER_TYPES: &[&str] = &[
    "Dense",
    "Embedding",
    "Recurrence",
    "Fold",
    "Dropout",
    "LayerNormalization",
    "BatchNormalization",
    "Activation",
    "Stabilizer",
    "Delay",
    "Label",
    "Identity",
    "Sequential",
    "Concat",
    "ResNetBlock",
    "sequence.last",
    "sequence.first",
    "sequence.reduce_sum",
    "sequence.reduce_max",
    "element_times",
];

/// Every `type` a layer table may have, those of `conv_layers.rs` included.
fn all_types() -> String {
    let all: Vec<&str> = LAYER_TYPES
        .iter()
        .chain(crate::conv_layers::CONV_TYPES)
        .copied()
        .collect();
    all.join(", ")
}

const ACTIVATIONS: &str = "identity, sigmoid, tanh, relu, softplus, elu, leaky_relu, softmax";

pub fn activation(name: &str, key: &str) -> Result<Activation> {
    Ok(match name {
        "identity" | "None" | "none" => Activation::Identity,
        "sigmoid" => Activation::Sigmoid,
        "tanh" => Activation::Tanh,
        "relu" => Activation::Relu,
        "softplus" => Activation::Softplus,
        "elu" => Activation::Elu,
        "leaky_relu" => Activation::LeakyRelu(0.01),
        "softmax" => Activation::Softmax,
        _ => {
            return Err(Fail::new(format!(
                "{key}: unknown activation \"{name}\" (expected one of {ACTIVATIONS})"
            )))
        }
    })
}

/// `init = 0.1` (constant), `"glorot_uniform"`, or
/// `{ type = "uniform", scale = 0.05, seed = 1 }`.
pub fn initializer(v: &toml::Value, key: &str) -> Result<Initializer> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct T {
        #[serde(rename = "type")]
        kind: String,
        scale: Option<f64>,
        seed: Option<u64>,
    }
    let (kind, scale, seed) = match v {
        toml::Value::Float(c) => return Ok(Initializer::Constant(*c)),
        toml::Value::Integer(c) => return Ok(Initializer::Constant(*c as f64)),
        toml::Value::String(s) => (s.clone(), None, None),
        toml::Value::Table(_) => {
            let t: T = decode(v.clone(), key)?;
            (t.kind, t.scale, t.seed)
        }
        _ => {
            return Err(Fail::new(format!(
                "{key}: expected a number, an initializer name or a table {{ type = ..., scale = ..., seed = ... }}"
            )))
        }
    };
    let s = scale.unwrap_or(1.0);
    let init = match kind.as_str() {
        "glorot_uniform" => Initializer::GlorotUniform { scale: s, output_rank: 1, seed },
        "glorot_normal" => Initializer::GlorotNormal { scale: s, output_rank: 1, seed },
        "he_uniform" => Initializer::HeUniform { scale: s, output_rank: 1, seed },
        "he_normal" => Initializer::HeNormal { scale: s, output_rank: 1, seed },
        "xavier" => Initializer::Xavier { scale: s, output_rank: 1, seed },
        "uniform" => Initializer::Uniform { scale: s, seed },
        "normal" => Initializer::Normal { scale: s, seed },
        "truncated_normal" => Initializer::TruncatedNormal { stdev: s, seed },
        "zero" | "zeros" => Initializer::Constant(0.0),
        other => {
            return Err(Fail::new(format!(
                "{key}: unknown initializer \"{other}\" (expected a number or one of glorot_uniform, glorot_normal, he_uniform, he_normal, xavier, uniform, normal, truncated_normal, zero)"
            )))
        }
    };
    Ok(init)
}

/// Deserialize a table into `T`, naming `key` in the error.
pub fn decode<T: DeserializeOwned>(v: toml::Value, key: &str) -> Result<T> {
    v.try_into::<T>()
        .map_err(|e| Fail::new(format!("{key}: {}", e.message().replace('\n', " "))))
}

pub fn default_opts(d: &DefaultOptionsSpec) -> Result<DefaultOptions> {
    Ok(DefaultOptions {
        init: d
            .init
            .as_ref()
            .map(|v| initializer(v, "model.default_options.init"))
            .transpose()?,
        activation: d
            .activation
            .as_deref()
            .map(|a| activation(a, "model.default_options.activation"))
            .transpose()?,
        initial_state: d.initial_state,
        bias: d.bias,
        init_bias: d.init_bias,
        enable_self_stabilization: d.enable_self_stabilization,
        use_peepholes: d.use_peepholes,
        go_backwards: d.go_backwards,
        pad: d.pad,
        map_rank: d.map_rank,
        normalization_time_constant: d.normalization_time_constant,
        epsilon: d.epsilon,
    })
}

/// Build the layer stack (inside the default options, as CNTK's `with default_options`).
pub fn build(layers: &[toml::Value], defaults: &DefaultOptionsSpec) -> Result<Sequential> {
    let opts = default_opts(defaults)?;
    default_options(opts, || sequential(layers, "model.layers"))
}

fn sequential(layers: &[toml::Value], key: &str) -> Result<Sequential> {
    if layers.is_empty() {
        return Err(Fail::new(format!("{key}: expected at least one layer")));
    }
    let mut out = Vec::with_capacity(layers.len());
    for (i, l) in layers.iter().enumerate() {
        out.push(layer(l, &format!("{key}[{i}]"))?);
    }
    Ok(Sequential::new(out))
}

/// A layer of the config that names its table in errors raised when it is applied
/// (a dimension over the limits, shapes that do not fit): `model.layers[1] (Dense): …`.
struct Keyed {
    key: String,
    inner: LayerRef,
}

impl Layer for Keyed {
    fn apply(&self, x: &Variable) -> rntk::Result<Variable> {
        self.inner
            .apply(x)
            .map_err(|e| rntk::Error::InvalidArgument {
                context: self.key.clone(),
                detail: e.to_string(),
            })
    }
    fn parameters(&self) -> Vec<Variable> {
        self.inner.parameters()
    }
    fn name(&self) -> &str {
        self.inner.name()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DenseSpec {
    dim: Shape,
    activation: Option<String>,
    init: Option<toml::Value>,
    bias: Option<bool>,
    init_bias: Option<f64>,
    input_rank: Option<usize>,
    map_rank: Option<usize>,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Shape {
    One(usize),
    Many(Vec<usize>),
}

impl Shape {
    fn dims(&self) -> Vec<usize> {
        match self {
            Shape::One(n) => vec![*n],
            Shape::Many(v) => v.clone(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmbeddingSpec {
    dim: usize,
    init: Option<toml::Value>,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecurrenceSpec {
    step: toml::Value,
    go_backwards: Option<bool>,
    initial_state: Option<f64>,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepSpec {
    #[serde(rename = "type")]
    kind: String,
    dim: usize,
    cell_shape: Option<usize>,
    activation: Option<String>,
    use_peepholes: Option<bool>,
    enable_self_stabilization: Option<bool>,
    init: Option<toml::Value>,
    init_bias: Option<f64>,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DropoutSpec {
    rate: Option<f64>,
    keep_prob: Option<f64>,
    seed: Option<u64>,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LayerNormSpec {
    initial_scale: Option<f64>,
    initial_bias: Option<f64>,
    epsilon: Option<f64>,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchNormSpec {
    map_rank: Option<usize>,
    init_scale: Option<f64>,
    normalization_time_constant: Option<f64>,
    blend_time_constant: Option<f64>,
    epsilon: Option<f64>,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActivationSpec {
    activation: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StabilizerSpec {
    steepness: Option<f64>,
    enabled: Option<bool>,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DelaySpec {
    #[serde(default = "one")]
    t: isize,
    initial_state: Option<f64>,
    #[serde(default)]
    name: String,
}

fn one() -> isize {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LabelSpec {
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListSpec {
    layers: Vec<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TimesSpec {
    value: f64,
}

/// `C.element_times(value, x)` as a layer (tutorial 103's `x/255`).
struct Times(f64);

impl Layer for Times {
    fn apply(&self, x: &Variable) -> rntk::Result<Variable> {
        rntk::functions::element_times(x, &rntk::graph::scalar(self.0, x.dtype()))
    }
    fn parameters(&self) -> Vec<Variable> {
        Vec::new()
    }
}

/// A sequence reduction (`sequence.last`, …) as a layer.
struct SeqOp(fn(&Variable) -> rntk::Result<Variable>);

impl Layer for SeqOp {
    fn apply(&self, x: &Variable) -> rntk::Result<Variable> {
        (self.0)(x)
    }
    fn parameters(&self) -> Vec<Variable> {
        Vec::new()
    }
}

fn layer(v: &toml::Value, key: &str) -> Result<LayerRef> {
    let (inner, key) = layer_of(v, key)?;
    Ok(Arc::new(Keyed { key, inner }))
}

/// The layer a table describes, and the key naming it (`model.layers[1] (Dense)`).
fn layer_of(v: &toml::Value, key: &str) -> Result<(LayerRef, String)> {
    let Some(table) = v.as_table() else {
        return Err(Fail::new(format!(
            "{key}: expected a table such as {{ type = \"Dense\", dim = 10 }}"
        )));
    };
    let Some(kind) = table.get("type").and_then(|t| t.as_str()) else {
        return Err(Fail::new(format!(
            "{key}: missing `type` (expected one of {})",
            all_types()
        )));
    };
    let mut rest = table.clone();
    rest.remove("type");
    let rest = toml::Value::Table(rest);
    let keyed = format!("{key} ({kind})");
    let key = keyed.as_str();
    let l: LayerRef = match kind {
        "Dense" => dense(rest, key)?,
        "Embedding" => {
            let s: EmbeddingSpec = decode(rest, key)?;
            let mut e = Embedding::new(s.dim).name(&s.name);
            if let Some(i) = &s.init {
                e = e.init(initializer(i, &format!("{key}.init"))?);
            }
            Arc::new(e)
        }
        "Recurrence" | "Fold" => recurrence(kind, rest, key)?,
        "Dropout" => dropout(rest, key)?,
        "LayerNormalization" => layer_normalization(rest, key)?,
        "BatchNormalization" => batch_normalization(rest, key)?,
        "Activation" => {
            let s: ActivationSpec = decode(rest, key)?;
            Arc::new(activation(&s.activation, &format!("{key}.activation"))?)
        }
        "Stabilizer" => stabilizer(rest, key)?,
        "Delay" => {
            let s: DelaySpec = decode(rest, key)?;
            let mut d = Delay::new(s.t).name(&s.name);
            if let Some(v) = s.initial_state {
                d = d.initial_state(v);
            }
            Arc::new(d)
        }
        "Label" => {
            let s: LabelSpec = decode(rest, key)?;
            Arc::new(Label(s.name))
        }
        "Identity" => {
            let _: Empty = decode(rest, key)?;
            Arc::new(Identity)
        }
        "Sequential" => {
            let s: ListSpec = decode(rest, key)?;
            Arc::new(sequential(&s.layers, &format!("{key}.layers"))?)
        }
        "Concat" => {
            let s: ListSpec = decode(rest, key)?;
            let k = format!("{key}.layers");
            let mut parts = Vec::new();
            for (i, l) in s.layers.iter().enumerate() {
                parts.push(layer(l, &format!("{k}[{i}]"))?);
            }
            Arc::new(Concat::new(parts))
        }
        "ResNetBlock" => {
            let s: ListSpec = decode(rest, key)?;
            let inner: LayerRef = Arc::new(sequential(&s.layers, &format!("{key}.layers"))?);
            Arc::new(ResNetBlock(inner))
        }
        "sequence.last" | "sequence.first" | "sequence.reduce_sum" | "sequence.reduce_max" => {
            let _: Empty = decode(rest, key)?;
            Arc::new(SeqOp(match kind {
                "sequence.last" => sequence::last,
                "sequence.first" => sequence::first,
                "sequence.reduce_sum" => sequence::reduce_sum,
                _ => sequence::reduce_max,
            }))
        }
        "element_times" => {
            let s: TimesSpec = decode(rest, key)?;
            if !s.value.is_finite() {
                return Err(Fail::new(format!(
                    "{key}.value: {} (expected a finite number)",
                    s.value
                )));
            }
            Arc::new(Times(s.value))
        }
        k if crate::conv_layers::CONV_TYPES.contains(&k) => {
            crate::conv_layers::build(k, rest, key)?
        }
        other => {
            return Err(Fail::new(format!(
                "{}: unknown layer type \"{other}\" (expected one of {})",
                key.split(" (").next().unwrap_or(key),
                all_types()
            )))
        }
    };
    Ok((l, keyed))
}

/// A `Dense` layer.
fn dense(rest: toml::Value, key: &str) -> Result<LayerRef> {
    let s: DenseSpec = decode(rest, key)?;
    let mut d = Dense::new(s.dim.dims()).name(&s.name);
    if let Some(a) = &s.activation {
        d = d.activation(activation(a, &format!("{key}.activation"))?);
    }
    if let Some(i) = &s.init {
        d = d.init(initializer(i, &format!("{key}.init"))?);
    }
    if let Some(b) = s.bias {
        d = d.bias(b);
    }
    if let Some(b) = s.init_bias {
        d = d.init_bias(b);
    }
    if let Some(r) = s.input_rank {
        d = d.input_rank(r);
    }
    if let Some(r) = s.map_rank {
        d = d.map_rank(r);
    }
    Ok(Arc::new(d))
}

/// A `Recurrence` or `Fold` over the step its `step` table describes.
fn recurrence(kind: &str, rest: toml::Value, key: &str) -> Result<LayerRef> {
    let s: RecurrenceSpec = decode(rest, key)?;
    let skey = format!("{key}.step");
    let st: StepSpec = decode(s.step.clone(), &skey)?;
    let step = recurrent_step(&st, &skey)?;
    let bw = s.go_backwards;
    let init = s.initial_state.map(InitialState::Scalar);
    if kind == "Fold" {
        let mut f = Fold::new(step).name(&s.name);
        if let Some(b) = bw {
            f = f.go_backwards(b);
        }
        if let Some(i) = init {
            f = f.initial_state(i);
        }
        Ok(Arc::new(f))
    } else {
        let mut r = Recurrence::new(step).name(&s.name);
        if let Some(b) = bw {
            r = r.go_backwards(b);
        }
        if let Some(i) = init {
            r = r.initial_state(i);
        }
        Ok(Arc::new(r))
    }
}

/// A `Dropout` layer: exactly one of `rate` and `keep_prob`.
fn dropout(rest: toml::Value, key: &str) -> Result<LayerRef> {
    let s: DropoutSpec = decode(rest, key)?;
    let d = match (s.rate, s.keep_prob) {
        (Some(r), None) => Dropout::new(r)?,
        (None, Some(k)) => Dropout::keep_prob(k)?,
        _ => {
            return Err(Fail::new(format!(
                "{key}: give exactly one of `rate` and `keep_prob`"
            )))
        }
    };
    let d = match s.seed {
        Some(seed) => d.seed(seed),
        None => d,
    };
    Ok(Arc::new(d.name(&s.name)))
}

/// A `LayerNormalization` layer.
fn layer_normalization(rest: toml::Value, key: &str) -> Result<LayerRef> {
    let s: LayerNormSpec = decode(rest, key)?;
    let mut l = LayerNormalization::new().name(&s.name);
    if let Some(v) = s.initial_scale {
        l = l.initial_scale(v);
    }
    if let Some(v) = s.initial_bias {
        l = l.initial_bias(v);
    }
    if let Some(v) = s.epsilon {
        l = l.epsilon(v);
    }
    Ok(Arc::new(l))
}

/// A `BatchNormalization` layer.
fn batch_normalization(rest: toml::Value, key: &str) -> Result<LayerRef> {
    let s: BatchNormSpec = decode(rest, key)?;
    let mut b = BatchNormalization::new().name(&s.name);
    if s.map_rank.is_some() {
        b = b.map_rank(s.map_rank);
    }
    if let Some(v) = s.init_scale {
        b = b.init_scale(v);
    }
    if let Some(v) = s.normalization_time_constant {
        b = b.normalization_time_constant(v);
    }
    if let Some(v) = s.blend_time_constant {
        b = b.blend_time_constant(v);
    }
    if let Some(v) = s.epsilon {
        b = b.epsilon(v);
    }
    Ok(Arc::new(b))
}

/// A `Stabilizer` layer.
fn stabilizer(rest: toml::Value, key: &str) -> Result<LayerRef> {
    let s: StabilizerSpec = decode(rest, key)?;
    let mut st = Stabilizer::new().name(&s.name);
    if let Some(v) = s.steepness {
        st = st.steepness(v);
    }
    if let Some(v) = s.enabled {
        st = st.enabled(v);
    }
    Ok(Arc::new(st))
}

/// A step chosen at run time.
struct DynStep(Box<dyn RecurrentStep>);

impl RecurrentStep for DynStep {
    fn state_shapes(&self, x: &VarInfo) -> rntk::Result<Vec<rntk::Shape>> {
        self.0.state_shapes(x)
    }
    fn step(&self, states: &[Variable], x: &Variable) -> rntk::Result<Vec<Variable>> {
        self.0.step(states, x)
    }
    fn parameters(&self) -> Vec<Variable> {
        self.0.parameters()
    }
    fn op_name(&self) -> &str {
        self.0.op_name()
    }
}

fn recurrent_step(s: &StepSpec, key: &str) -> Result<DynStep> {
    let act = s
        .activation
        .as_deref()
        .map(|a| activation(a, &format!("{key}.activation")))
        .transpose()?;
    let init = s
        .init
        .as_ref()
        .map(|i| initializer(i, &format!("{key}.init")))
        .transpose()?;
    macro_rules! common {
        ($c:expr) => {{
            let mut c = $c.name(&s.name);
            if let Some(n) = s.cell_shape {
                c = c.cell_shape(n);
            }
            if let Some(a) = act.clone() {
                c = c.activation(a);
            }
            if let Some(i) = init.clone() {
                c = c.init(i);
            }
            if let Some(b) = s.init_bias {
                c = c.init_bias(b);
            }
            if let Some(b) = s.enable_self_stabilization {
                c = c.enable_self_stabilization(b);
            }
            c
        }};
    }
    let only_lstm = |what: &str| {
        Fail::new(format!(
            "{key}.{what}: only an LSTM step has this option (this step is {})",
            s.kind
        ))
    };
    Ok(match s.kind.as_str() {
        "LSTM" => {
            let mut c = common!(Lstm::new(s.dim));
            if let Some(p) = s.use_peepholes {
                c = c.use_peepholes(p);
            }
            DynStep(Box::new(c))
        }
        "GRU" => {
            if s.use_peepholes.is_some() {
                return Err(only_lstm("use_peepholes"));
            }
            DynStep(Box::new(common!(Gru::new(s.dim))))
        }
        "RNNStep" => {
            if s.use_peepholes.is_some() {
                return Err(only_lstm("use_peepholes"));
            }
            DynStep(Box::new(common!(RnnStep::new(s.dim))))
        }
        other => {
            return Err(Fail::new(format!(
                "{key}.type: unknown recurrent step \"{other}\" (expected LSTM, GRU or RNNStep)"
            )))
        }
    })
}

//! Shared test helpers: CNTK-oracle fixture loading, finite-difference gradient checks,
//! and the backend conformance check: every forward and backward these helpers run on
//! the CPU is run again on the arena backend (opaque buffers, counted transfers), with
//! bit-identical results and no host transfer beyond the feeds and the fetches.
#![allow(dead_code)]

use rntk::backend::{Arena, Memory};
use rntk::exec::Executor;
use rntk::tensor::{Layout, Value};
use rntk::{Tensor, Variable};
use serde_json::Value as Json;
use std::path::PathBuf;

/// Path of a fixture file under the repository's tests/fixtures.
pub fn fixture_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(rel)
}

/// All cases of a fixture file.
pub fn load_cases(rel: &str) -> Vec<Json> {
    let text = std::fs::read_to_string(fixture_path(rel)).expect("fixture file");
    let j: Json = serde_json::from_str(&text).expect("fixture json");
    j["cases"].as_array().expect("cases").clone()
}

pub fn case<'a>(cases: &'a [Json], name: &str) -> &'a Json {
    cases
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("fixture case {name} missing"))
}

/// Flatten a nested JSON array of numbers.
pub fn flat(j: &Json) -> Vec<f64> {
    let mut out = Vec::new();
    fn go(j: &Json, out: &mut Vec<f64>) {
        match j {
            Json::Array(a) => a.iter().for_each(|x| go(x, out)),
            Json::Number(n) => out.push(n.as_f64().expect("number")),
            other => panic!("not a number: {other}"),
        }
    }
    go(j, &mut out);
    out
}

pub fn shape_of(j: &Json) -> Vec<usize> {
    j.as_array()
        .expect("shape")
        .iter()
        .map(|d| d.as_u64().expect("dim") as usize)
        .collect()
}

/// A fixture VALUE as an rntk value (f64).
pub fn value_of(v: &Json) -> Value {
    let shape = shape_of(&v["shape"]);
    match v["kind"].as_str().expect("kind") {
        "sequence" => {
            let seqs: Vec<Vec<f64>> = v["data"]
                .as_array()
                .expect("seqs")
                .iter()
                .map(flat)
                .collect();
            Value::from_sequences(shape, &seqs).expect("sequence value")
        }
        "batch" => Value::batch(shape, flat(&v["data"])).expect("batch value"),
        "static" => Value::from_static(shape, flat(&v["data"])).expect("static value"),
        k => panic!("unknown kind {k}"),
    }
}

/// A fixture VALUE as a tensor (for parameters and constants).
pub fn tensor_of(v: &Json) -> Tensor {
    Tensor::from_vec(shape_of(&v["shape"]), flat(&v["data"])).expect("tensor")
}

/// Compare in the caller's order; panics with the first mismatch.
pub fn assert_close(what: &str, got: &[f64], want: &[f64], rtol: f64, atol: f64) {
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: length {} vs expected {}",
        got.len(),
        want.len()
    );
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= atol + rtol * w.abs(),
            "{what}: element {i}: got {g}, expected {w} (rtol {rtol}, atol {atol})"
        );
    }
}

/// Deterministic, non-constant gradient seed for `v`'s layout.
pub fn seed_like(v: &Value) -> Value {
    let n = v.num_samples() * v.shape().numel();
    let rows: Vec<f64> = (0..n)
        .map(|i| 0.1 * (((7 * i + 3) % 11) as f64 - 5.0) + 0.05)
        .collect();
    Value::from_rows(v.shape().clone(), v.layout().clone(), rows).expect("seed")
}

fn loss(ex: &mut Executor<f64>, out: &Variable, feeds: &[(Variable, Value)], r: &Value) -> f64 {
    let fr: Vec<(&Variable, &Value)> = feeds.iter().map(|(a, b)| (a, b)).collect();
    ex.forward(&fr, false).expect("forward");
    let y = ex.value(out).expect("value").dense_rows::<f64>();
    y.iter()
        .zip(r.dense_rows::<f64>())
        .map(|(a, b)| a * b)
        .sum()
}

/// Ops whose output layout or value depends on the data the host reads (a counted op
/// read on a device): sequence.where / gather / scatter, the ranking metrics.
const HOST_READING_OPS: [&str; 5] = [
    "Where",
    "Sequence::Gather",
    "Sequence::Scatter",
    "LambdaRank",
    "NDCG1Eval",
];

/// Whether the graph behind `out` holds one of [`HOST_READING_OPS`] (blocks included).
fn reads_on_host(out: &Variable) -> bool {
    let mut seen = std::collections::HashSet::new();
    let mut todo: Vec<rntk::Function> = out.owner().into_iter().collect();
    while let Some(f) = todo.pop() {
        if !seen.insert(f.uid().to_string()) {
            continue;
        }
        if HOST_READING_OPS.contains(&f.op_name().as_str()) {
            return true;
        }
        if let Some(body) = f.block_root() {
            todo.push(body);
        }
        for v in f.inputs().iter().chain(f.outputs().iter()) {
            todo.extend(v.resolve().owner());
        }
    }
    false
}

fn bits(v: &Value) -> Vec<u64> {
    v.dense_rows::<f64>().iter().map(|x| x.to_bits()).collect()
}

/// The conformance check of one case: the forward (and, with `seed`, the backward) of
/// `out` run on a fresh arena backend gives bit for bit the CPU's `want` value and
/// gradients; in a second, warm pass the only host transfers are one upload per fed
/// input (plus the seed) and one download per fetched result.
pub fn arena_mirror(
    out: &Variable,
    feeds: &[(&Variable, &Value)],
    seed: Option<&Value>,
    wrt: &[&Variable],
    want: (&Value, &[Value]),
) {
    match want.0.dtype() {
        rntk::DType::F32 => arena_mirror_in::<f32>(out, feeds, seed, wrt, want),
        _ => arena_mirror_in::<f64>(out, feeds, seed, wrt, want),
    }
}

fn arena_mirror_in<T: rntk::tensor::Element>(
    out: &Variable,
    feeds: &[(&Variable, &Value)],
    seed: Option<&Value>,
    wrt: &[&Variable],
    (want, want_grads): (&Value, &[Value]),
) {
    let arena = Arena::new();
    let mut ex = Executor::<T, Arena>::with_backend(arena.clone(), std::slice::from_ref(out))
        .expect("compile on the arena");
    let pass = |ex: &mut Executor<T, Arena>| -> (Value, Vec<Value>) {
        ex.forward(feeds, false).expect("arena forward");
        let y = ex.value(out).expect("arena value");
        let grads = match seed {
            Some(r) => ex.backward(&[(out, Some(r))], wrt).expect("arena backward"),
            None => Vec::new(),
        };
        (y, grads)
    };
    pass(&mut ex); // the first pass loads the parameters
    let before = arena.transfers();
    let (y, grads) = pass(&mut ex);
    // fetching the gradients is a download each (they stay on the device otherwise)
    let host_grads: Vec<Vec<u64>> = grads.iter().map(bits).collect();
    let t = arena.transfers().since(&before);
    assert_eq!(bits(&y), bits(want), "arena forward differs from the CPU's");
    assert_eq!(y.layout(), want.layout(), "arena layout");
    for (k, (g, w)) in host_grads.iter().zip(want_grads).enumerate() {
        assert_eq!(g, &bits(w), "arena gradient {k} differs from the CPU's");
    }
    // (a seed is uploaded when the root depends on a `wrt` variable at all: not for
    // stop_gradient, whose gradients are all zero)
    let all_zero = want_grads
        .iter()
        .all(|g| g.dense_rows::<f64>().iter().all(|&x| x == 0.0));
    let seeds = usize::from(seed.is_some());
    let ups = t.uploads as usize;
    assert!(
        ups == feeds.len() + seeds || (all_zero && ups == feeds.len()),
        "arena uploads in a warm pass: {t:?} for {} feeds and {seeds} seed",
        feeds.len()
    );
    assert_eq!(
        t.downloads as usize,
        1 + grads.len(),
        "arena downloads in a warm pass: {t:?}"
    );
    if !reads_on_host(out) {
        assert_eq!(
            (t.op_reads, t.op_writes),
            (0, 0),
            "arena op transfers: {t:?}"
        );
    }
}

/// Central finite differences of Σ out·r against the executor's backward, for every
/// element of every `wrt` variable (inputs and parameters), in f64. The analytic
/// gradients are checked on the arena backend too ([`arena_mirror`]).
pub fn gradcheck(out: &Variable, feeds: &[(Variable, Value)], wrt: &[Variable], tol: f64) {
    let mut ex = Executor::<f64>::new(std::slice::from_ref(out)).expect("compile");
    let fr: Vec<(&Variable, &Value)> = feeds.iter().map(|(a, b)| (a, b)).collect();
    ex.forward(&fr, false).expect("forward");
    let y = ex.value(out).expect("value");
    let r = seed_like(&y);
    let wr: Vec<&Variable> = wrt.iter().collect();
    let analytic = ex.backward(&[(out, Some(&r))], &wr).expect("backward");
    arena_mirror(out, &fr, Some(&r), &wr, (&y, &analytic));
    let h = 1e-6;
    for (w, g) in wrt.iter().zip(&analytic) {
        let g = g.dense_rows::<f64>();
        if w.is_parameter() || w.kind() == rntk::VarKind::Constant {
            let orig = w.value().expect("param value");
            let base = orig.as_slice::<f64>().expect("f64 param").to_vec();
            for e in 0..base.len() {
                let mut p = base.clone();
                p[e] += h;
                w.set_value(Tensor::from_vec(orig.shape().clone(), p.clone()).unwrap())
                    .unwrap();
                let lp = loss(&mut ex, out, feeds, &r);
                p[e] -= 2.0 * h;
                w.set_value(Tensor::from_vec(orig.shape().clone(), p).unwrap())
                    .unwrap();
                let lm = loss(&mut ex, out, feeds, &r);
                w.set_value(orig.clone()).unwrap();
                let num = (lp - lm) / (2.0 * h);
                assert!(
                    (num - g[e]).abs() <= tol * (1.0 + num.abs()),
                    "d/d{}[{e}]: analytic {} vs numeric {num}",
                    w.label(),
                    g[e]
                );
            }
        } else {
            let idx = feeds
                .iter()
                .position(|(v, _)| v == w)
                .expect("wrt input must be fed");
            let val = &feeds[idx].1;
            let base = val.dense_rows::<f64>();
            for e in 0..base.len() {
                let mut fp = feeds.to_vec();
                let mut p = base.clone();
                p[e] += h;
                fp[idx].1 =
                    Value::from_rows(val.shape().clone(), val.layout().clone(), p.clone()).unwrap();
                let lp = loss(&mut ex, out, &fp, &r);
                p[e] -= 2.0 * h;
                fp[idx].1 = Value::from_rows(val.shape().clone(), val.layout().clone(), p).unwrap();
                let lm = loss(&mut ex, out, &fp, &r);
                let num = (lp - lm) / (2.0 * h);
                assert!(
                    (num - g[e]).abs() <= tol * (1.0 + num.abs()),
                    "d/d{}[row-major packed {e}]: analytic {} vs numeric {num}",
                    w.label(),
                    g[e]
                );
            }
        }
    }
}

/// A ragged batch of sequences with lengths (1..=n and a repeat) and sample shape `shape`.
pub fn ragged(lengths: &[usize], numel: usize, key: usize) -> Vec<Vec<f64>> {
    let mut n = 0;
    lengths
        .iter()
        .map(|&l| {
            (0..l * numel)
                .map(|_| {
                    n += 1;
                    ((((7 * n + key) % 11) as f64) - 5.0) / 10.0 + 0.013 * n as f64
                })
                .collect()
        })
        .collect()
}

/// Layout helper re-export for tests.
pub fn layout_rows(v: &Value) -> usize {
    match v.layout() {
        Layout::Static => 1,
        l => l.rows(),
    }
}

/// Create the variables a fixture case declares (f64): sequence / batch inputs,
/// parameters and constants holding the case's values.
pub fn case_vars(case: &Json) -> Vec<(String, Variable, Option<Value>)> {
    use rntk::graph::{input_variable_with, InputOptions};
    use rntk::{DType, DynamicAxes};
    case["inputs"]
        .as_array()
        .expect("inputs")
        .iter()
        .map(|i| {
            let name = i["name"].as_str().expect("name").to_string();
            let shape = shape_of(&i["shape"]);
            let data = &i["data"];
            let opts = |axes| InputOptions {
                dtype: DType::F64,
                dynamic_axes: axes,
                needs_gradient: true,
                name: name.clone(),
                ..Default::default()
            };
            match i["kind"].as_str().expect("kind") {
                "sequence" => (
                    name.clone(),
                    input_variable_with(shape, opts(DynamicAxes::default_sequence())),
                    Some(value_of(data)),
                ),
                "batch" => (
                    name.clone(),
                    input_variable_with(shape, opts(DynamicAxes::Batch)),
                    Some(value_of(data)),
                ),
                "parameter" => (
                    name.clone(),
                    rntk::parameter_from(tensor_of(data), &name),
                    None,
                ),
                "constant" => (name.clone(), rntk::constant(tensor_of(data), &name), None),
                k => panic!("unknown input kind {k}"),
            }
        })
        .collect()
}

/// Flat data of a value in the caller's order.
pub fn caller_order(v: &Value) -> Vec<f64> {
    v.to_vec::<f64>()
}

/// Build the case's expression with `build(vars by name)`, then compare the forward
/// output and every gradient the fixture lists with CNTK's, to `rtol`.
pub fn run_case(
    case: &Json,
    rtol: f64,
    build: impl FnOnce(&std::collections::HashMap<String, Variable>) -> Variable,
) {
    let name = case["name"].as_str().expect("name");
    let vars = case_vars(case);
    let by_name: std::collections::HashMap<String, Variable> = vars
        .iter()
        .map(|(n, v, _)| (n.clone(), v.clone()))
        .collect();
    let out = build(&by_name);
    let feeds: Vec<(&Variable, &Value)> = vars
        .iter()
        .filter_map(|(_, v, val)| val.as_ref().map(|x| (v, x)))
        .collect();
    let mut ex = Executor::<f64>::new(std::slice::from_ref(&out))
        .unwrap_or_else(|e| panic!("{name}: compile: {e}"));
    ex.forward(&feeds, false)
        .unwrap_or_else(|e| panic!("{name}: forward: {e}"));
    let y = ex.value(&out).unwrap();
    let want = value_of(&case["output"]);
    assert_eq!(y.shape(), want.shape(), "{name}: output shape");
    assert_eq!(
        y.num_sequences(),
        want.num_sequences(),
        "{name}: output sequences"
    );
    assert_close(
        &format!("{name}: output"),
        &caller_order(&y),
        &caller_order(&want),
        rtol,
        1e-12,
    );
    let Some(grads) = case["grads"].as_object() else {
        arena_mirror(&out, &feeds, None, &[], (&y, &[]));
        return;
    };
    let r = value_of(&case["r"]);
    let r = Value::from_rows(r.shape().clone(), y.layout().clone(), {
        // re-pack r (given in caller order) into y's layout
        let seqs = r.to_sequences::<f64>();
        let tmp = match y.layout() {
            Layout::Sequence(_) => Value::from_sequences(r.shape().clone(), &seqs).unwrap(),
            _ => r.clone(),
        };
        tmp.dense_rows::<f64>()
    })
    .unwrap();
    let wrt: Vec<&Variable> = grads.keys().map(|k| &by_name[k]).collect();
    let got = ex
        .backward(&[(&out, Some(&r))], &wrt)
        .unwrap_or_else(|e| panic!("{name}: backward: {e}"));
    arena_mirror(&out, &feeds, Some(&r), &wrt, (&y, &got));
    for ((k, g), w) in grads.iter().zip(&got) {
        let want = value_of(g);
        assert_close(
            &format!("{name}: d/d{k}"),
            &caller_order(w),
            &caller_order(&want),
            rtol,
            1e-12,
        );
    }
}

/// A hand-built LSTM step loop from primitives (gates [i, g, f, o], initial state 0.1):
/// `a = b + x·W + delay(h)·H`, `c = σ(f)⊙delay(c) + σ(i)⊙tanh(g)`, `h = σ(o)⊙tanh(c)`,
/// with past_value (or future_value) of time step `k`. N comes from `h`'s shape (D, 4N).
pub fn hand_lstm(
    x: &Variable,
    w: &Variable,
    h: &Variable,
    b: &Variable,
    k: usize,
    future: bool,
) -> Variable {
    use rntk::functions::*;
    use rntk::{placeholder, sequence};
    let n = h.shape().dims()[0];
    let dt = x.dtype();
    let h_ph = placeholder([n], dt, x.dynamic_axes(), "h_ph").unwrap();
    let c_ph = placeholder([n], dt, x.dynamic_axes(), "c_ph").unwrap();
    let init = rntk::scalar(0.1, dt);
    let delay = |p: &Variable| {
        if future {
            sequence::future_value(p, &init, k).unwrap()
        } else {
            sequence::past_value(p, &init, k).unwrap()
        }
    };
    let (dh, dc) = (delay(&h_ph), delay(&c_ph));
    let a = plus(
        &plus(b, &times(x, w).unwrap()).unwrap(),
        &times(&dh, h).unwrap(),
    )
    .unwrap();
    let gate = |j: usize| slice(&a, 0, (j * n) as isize, ((j + 1) * n) as isize).unwrap();
    let (i, g, f, o) = (gate(0), gate(1), gate(2), gate(3));
    let c = plus(
        &element_times(&sigmoid(&f).unwrap(), &dc).unwrap(),
        &element_times(&sigmoid(&i).unwrap(), &tanh(&g).unwrap()).unwrap(),
    )
    .unwrap();
    let hh = element_times(&sigmoid(&o).unwrap(), &tanh(&c).unwrap()).unwrap();
    hh.owner()
        .unwrap()
        .replace_placeholders(&[(h_ph, hh.clone()), (c_ph, c)])
        .unwrap();
    hh
}

/// A float64 input with the given dynamic axes that takes gradients (for checks).
pub fn f64_input(shape: &[usize], name: &str, axes: rntk::DynamicAxes) -> Variable {
    rntk::input_variable_with(
        shape.to_vec(),
        rntk::InputOptions {
            dtype: rntk::DType::F64,
            dynamic_axes: axes,
            needs_gradient: true,
            name: name.into(),
            ..Default::default()
        },
    )
}

/// A ragged batch of sequences of sample shape `shape`, lengths `lens`, values from
/// [`ragged`] (`key` varies them).
pub fn ragged_seqs(shape: &[usize], lens: &[usize], key: usize) -> Value {
    let numel = shape.iter().product();
    Value::from_sequences(shape.to_vec(), &ragged(lens, numel, key)).expect("ragged sequences")
}

/// A parameter of deterministic f64 values (`key` varies them).
pub fn det_param(shape: &[usize], key: usize, name: &str) -> Variable {
    let n: usize = shape.iter().product();
    let v = (0..n)
        .map(|i| ((((7 * i + key) % 11) as f64) - 5.0) / 10.0 + 0.017 * i as f64)
        .collect();
    rntk::parameter_from(Tensor::from_vec(shape.to_vec(), v).expect("shape"), name)
}

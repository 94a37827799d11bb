//! ONNX test support: the PyPI `onnx` checker and `onnxruntime` as oracles
//! (tests/onnx/ort_eval.py in the venv .ci/onnx-deps.sh makes), rntk values in the
//! padded ONNX interface and back.
#![allow(dead_code)]

use rntk::tensor::Value;
use rntk::{DType, DynamicAxes, Function, Variable};
use serde_json::{json, Value as Json};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Python with `onnx` and `onnxruntime`: `RNTK_ONNX_PYTHON`, else the venv that
/// .ci/onnx-deps.sh makes. `None` (the test is skipped with a note) when there is
/// none, except under CI, where that is a failure.
pub fn python() -> Option<PathBuf> {
    let p = match std::env::var_os("RNTK_ONNX_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default();
            home.join(".cache/rntk-onnx-venv/bin/python")
        }
    };
    if p.exists() {
        return Some(p);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "CI is set but {} does not exist (.ci/onnx-deps.sh makes the venv with onnx and onnxruntime)",
            p.display()
        );
    }
    eprintln!(
        "note: skipping the onnxruntime oracle: {} not found (run .ci/onnx-deps.sh)",
        p.display()
    );
    None
}

/// A fresh scratch directory for one test, removed when the test is done with it
/// (kept when the test fails, so its files can be looked at).
pub struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A fresh scratch directory for one test (see [`Scratch`]).
pub fn scratch(name: &str) -> Scratch {
    let d = std::env::temp_dir().join(format!("rntk-onnx-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch dir");
    Scratch(d)
}

fn num(v: f64) -> Json {
    if v.is_finite() {
        json!(v)
    } else {
        json!(v.to_string())
    }
}

fn to_f64(j: &Json) -> f64 {
    match j {
        Json::String(s) => match s.as_str() {
            "inf" => f64::INFINITY,
            "-inf" => f64::NEG_INFINITY,
            _ => f64::NAN,
        },
        v => v.as_f64().expect("number"),
    }
}

/// One model file to check and run.
pub struct Case {
    pub model: PathBuf,
    pub inputs: serde_json::Map<String, Json>,
    pub run: bool,
}

/// The padded ONNX form of rntk feeds: sequences `[T, B, …]` padded with NaN (so any
/// padding that leaks into a real value shows), lengths per sequence axis as int32.
pub fn onnx_inputs(feeds: &[(Variable, Value)]) -> serde_json::Map<String, Json> {
    let mut m = serde_json::Map::new();
    for (var, val) in feeds {
        let name = var.label();
        let dt = match var.dtype() {
            DType::F32 => "float32",
            DType::F64 => "float64",
        };
        let sample: Vec<usize> = var.shape().dims().to_vec();
        let d: usize = sample.iter().product();
        match var.dynamic_axes() {
            DynamicAxes::Sequence(a) => {
                let seqs = val.to_sequences::<f64>();
                let lens: Vec<usize> = seqs.iter().map(|s| s.len() / d.max(1)).collect();
                let t = lens.iter().copied().max().unwrap_or(0);
                let b = seqs.len();
                let mut data = vec![f64::NAN; t * b * d];
                for (i, s) in seqs.iter().enumerate() {
                    for step in 0..lens[i] {
                        let dst = (step * b + i) * d;
                        data[dst..dst + d].copy_from_slice(&s[step * d..(step + 1) * d]);
                    }
                }
                let mut shape = vec![t, b];
                shape.extend(&sample);
                m.insert(
                    name,
                    json!({"dtype": dt, "shape": shape, "data": data.into_iter().map(num).collect::<Vec<_>>()}),
                );
                let lname = if a == rntk::Axis::default_dynamic_axis() {
                    "sequence_lens".to_string()
                } else {
                    format!("{}_lens", a.name())
                };
                m.insert(lname, json!({"dtype": "int32", "shape": [b], "data": lens}));
            }
            DynamicAxes::Batch => {
                let data = val.to_vec::<f64>();
                let b = data.len() / d.max(1);
                let mut shape = vec![b];
                shape.extend(&sample);
                m.insert(
                    name,
                    json!({"dtype": dt, "shape": shape, "data": data.into_iter().map(num).collect::<Vec<_>>()}),
                );
            }
            DynamicAxes::None => {
                let data = val.to_vec::<f64>();
                m.insert(
                    name,
                    json!({"dtype": dt, "shape": sample, "data": data.into_iter().map(num).collect::<Vec<_>>()}),
                );
            }
        }
    }
    m
}

/// Run the oracle on every case; `None` when it is unavailable (see [`python`]).
pub fn oracle(cases: &[Case], dir: &Path) -> Option<Vec<Json>> {
    let py = python()?;
    let req = json!({"cases": cases.iter().map(|c| json!({
        "model": c.model.display().to_string(),
        "inputs": c.inputs,
        "run": c.run,
    })).collect::<Vec<_>>()});
    let rq = dir.join("request.json");
    let rs = dir.join("result.json");
    std::fs::write(&rq, req.to_string()).expect("write request");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/onnx/ort_eval.py");
    let out = Command::new(&py)
        .arg(&script)
        .arg(&rq)
        .arg(&rs)
        .output()
        .expect("run the oracle");
    assert!(
        out.status.success(),
        "oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: Json =
        serde_json::from_str(&std::fs::read_to_string(&rs).expect("result")).expect("result json");
    Some(j["cases"].as_array().expect("cases").clone())
}

/// max |got − want| / max(|want|, 1e-2) (outputs below 1e-2 held to 1e-7 absolute).
pub fn max_rel(got: &[f64], want: &[f64]) -> f64 {
    max_rel_floor(got, want, 1e-2)
}

/// max |got − want| / max(|want|, floor).
pub fn max_rel_floor(got: &[f64], want: &[f64], floor: f64) -> f64 {
    assert_eq!(got.len(), want.len(), "output sizes differ");
    got.iter()
        .zip(want)
        .map(|(g, w)| {
            if g.is_nan() || w.is_nan() {
                if g.is_nan() && w.is_nan() {
                    0.0
                } else {
                    f64::INFINITY
                }
            } else if g == w {
                0.0
            } else {
                (g - w).abs() / w.abs().max(floor)
            }
        })
        .fold(0.0, f64::max)
}

/// Compare onnxruntime's outputs with rntk's values of the model's outputs, in
/// order. Sequence outputs are compared step by step within each sequence's length
/// (the inputs' lengths, or the `*_lens` output that follows a sequence output on a
/// new axis) and must be exactly 0 past it. Returns the largest relative error.
pub fn compare(
    what: &str,
    model: &Function,
    rntk_out: &[Value],
    result: &Json,
    lens_in: &[usize],
) -> f64 {
    compare_floor(what, model, rntk_out, result, lens_in, FLOOR)
}

/// Outputs below this are judged on absolute error (1e-5 · 0.1 = 1e-6, a few float32
/// ulps of the O(1) terms they come from): layer normalization, cross entropies and
/// convolutions cancel to values near 0, where rntk and onnxruntime (threads, another
/// summation order) differ by an ulp of the terms — seen: 2.4e-7 at |y| < 0.01
/// (layernorm_dropout_stabilizer in one run of two; cnn_rect_nobias, where CNTK 2.7's
/// own output differs from onnxruntime's by as much).
pub const FLOOR: f64 = 0.1;

/// [`compare`] with outputs below `floor` judged on absolute error (`max_rel_floor`).
pub fn compare_floor(
    what: &str,
    model: &Function,
    rntk_out: &[Value],
    result: &Json,
    lens_in: &[usize],
    floor: f64,
) -> f64 {
    assert!(
        result["ok"].as_bool().unwrap_or(false),
        "{what}: onnx/onnxruntime refused the file: {}",
        result["error"]
    );
    let list: Vec<(String, &Json)> = result["outputs"]
        .as_array()
        .expect("outputs")
        .iter()
        .map(|o| (o["name"].as_str().expect("name").to_string(), o))
        .collect();
    let mut worst = 0.0f64;
    let mut k = 0;
    let mut i = 0;
    while i < list.len() {
        let (name, o) = (&list[i].0, list[i].1);
        let v = &rntk_out[k];
        let var = &model.outputs()[k];
        k += 1;
        let data: Vec<f64> = o["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(to_f64)
            .collect();
        let shape: Vec<usize> = o["shape"]
            .as_array()
            .expect("shape")
            .iter()
            .map(|x| x.as_u64().expect("dim") as usize)
            .collect();
        let err = match var.dynamic_axes() {
            DynamicAxes::Sequence(_) => {
                let lens: Vec<usize> = match list.get(i + 1) {
                    Some((ln, lj)) if ln.as_str() == format!("{name}_lens") => {
                        i += 1;
                        lj["data"]
                            .as_array()
                            .expect("lens")
                            .iter()
                            .map(|x| x.as_f64().expect("len") as usize)
                            .collect()
                    }
                    _ => lens_in.to_vec(),
                };
                let seqs = v.to_sequences::<f64>();
                let (t, b) = (shape[0], shape[1]);
                let d: usize = shape[2..].iter().product();
                assert_eq!(b, seqs.len(), "{what}: batch size");
                let mut e = 0.0f64;
                for (s, seq) in seqs.iter().enumerate() {
                    assert_eq!(seq.len(), lens[s] * d, "{what}: length of sequence {s}");
                    let mut got = Vec::new();
                    for step in 0..t {
                        let row = &data[(step * b + s) * d..(step * b + s + 1) * d];
                        if step < lens[s] {
                            got.extend_from_slice(row);
                        } else {
                            assert!(
                                row.iter().all(|&x| x == 0.0),
                                "{what}: padding of sequence {s} at step {step} is {row:?}"
                            );
                        }
                    }
                    e = e.max(max_rel_floor(&got, seq, floor));
                }
                e
            }
            _ => max_rel_floor(&data, &v.to_vec::<f64>(), floor),
        };
        eprintln!("{what}: output {name}: max relative error {err:.2e}");
        worst = worst.max(err);
        i += 1;
    }
    assert_eq!(k, rntk_out.len(), "{what}: number of outputs");
    worst
}

/// The lengths of the sequences of the first sequence feed.
pub fn seq_lens(feeds: &[(Variable, Value)]) -> Vec<usize> {
    for (var, val) in feeds {
        if var.dynamic_axes().has_sequence() {
            let d = var.shape().numel().max(1);
            return val
                .to_sequences::<f64>()
                .iter()
                .map(|s| s.len() / d)
                .collect();
        }
    }
    Vec::new()
}

/// The CNTK model fixtures (tests/fixtures/cntk_models): directory and cases.
pub fn cntk_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/cntk_models")
}

pub fn cntk_cases() -> serde_json::Map<String, Json> {
    cases_in("cases.json")
}

/// The convolutional CNTK models (make_cnn_models.py) that ONNX takes: all but the
/// sequential convolutions (rntk imports them, tests/models/cntk_import.rs, but ONNX export
/// refuses a kernel along the sequence axis, onnx/export/conv.rs).
pub fn cntk_cnn_cases() -> serde_json::Map<String, Json> {
    let mut m = cases_in("cnn_cases.json");
    m.retain(|k, _| !k.starts_with("cnn_sequential"));
    m
}

fn cases_in(file: &str) -> serde_json::Map<String, Json> {
    let text = std::fs::read_to_string(cntk_dir().join(file)).expect(file);
    let j: Json = serde_json::from_str(&text).expect("json");
    j.as_object().expect("object").clone()
}

pub fn nums(j: &Json) -> Vec<f64> {
    match j {
        Json::Array(a) => a.iter().flat_map(nums).collect(),
        v => vec![v.as_f64().expect("number")],
    }
}

fn dims(j: &Json) -> Vec<usize> {
    j.as_array()
        .expect("shape")
        .iter()
        .map(|x| x.as_u64().expect("dim") as usize)
        .collect()
}

/// A fixture input (`seq`, `batch` or `sparse` one-hot words) as an rntk value.
pub fn input_value(j: &Json) -> Value {
    match j["kind"].as_str().expect("kind") {
        "seq" => {
            let seqs: Vec<Vec<f32>> = j["data"]
                .as_array()
                .expect("seqs")
                .iter()
                .map(|s| nums(s).into_iter().map(|x| x as f32).collect())
                .collect();
            Value::from_sequences(dims(&j["shape"]), &seqs).expect("seq value")
        }
        "batch" if j["dtype"] == "float64" => {
            Value::batch(dims(&j["shape"]), nums(&j["data"])).expect("batch value")
        }
        "batch" => {
            let data: Vec<f32> = nums(&j["data"]).into_iter().map(|x| x as f32).collect();
            Value::batch(dims(&j["shape"]), data).expect("batch value")
        }
        "sparse" => {
            let seqs: Vec<Vec<usize>> = j["indices"]
                .as_array()
                .expect("indices")
                .iter()
                .map(|s| nums(s).into_iter().map(|x| x as usize).collect())
                .collect();
            let dim = j["dim"].as_u64().expect("dim") as usize;
            Value::one_hot_sequences::<f32>(dim, &seqs).expect("sparse value")
        }
        k => panic!("unknown input kind {k}"),
    }
}

/// The feeds of a fixture case for `model`'s arguments (matched by name).
pub fn case_feeds(model: &Function, case: &Json) -> Vec<(Variable, Value)> {
    let args = model.arguments();
    case["inputs"]
        .as_object()
        .expect("inputs")
        .iter()
        .map(|(name, j)| {
            let v = args
                .iter()
                .find(|a| a.name() == *name)
                .unwrap_or_else(|| panic!("model has no argument named {name}"))
                .clone();
            (v, input_value(j))
        })
        .collect()
}

/// Evaluate `model` in rntk.
pub fn eval(model: &Function, feeds: &[(Variable, Value)]) -> Vec<Value> {
    let refs: Vec<(&Variable, &Value)> = feeds.iter().map(|(v, x)| (v, x)).collect();
    model.eval(&refs).expect("rntk eval")
}

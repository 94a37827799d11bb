//! ONNX import: files written by CNTK 2.7's exporter (tests/fixtures/onnx_cntk) and by
//! PyTorch's (tests/fixtures/onnx_torch, onnx_torch_conv) evaluate to their exporter's outputs on
//! ragged batches; rntk → ONNX → rntk gives the same outputs for every CNTK fixture
//! model; an imported model trains; CNTK's non-standard exports are refused by name.

use crate::onnx_support;

use onnx_support::*;
use rntk::learners::{sgd, LearnerOptions, Schedule};
use rntk::onnx::OnnxOptions;
use rntk::tensor::Value;
use rntk::train::Trainer;
use rntk::{Function, Variable};
use serde_json::Value as Json;
use std::path::PathBuf;

const RTOL: f64 = 1e-5;

fn fixtures(set: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(set)
}

fn cases(set: &str) -> serde_json::Map<String, Json> {
    let text = std::fs::read_to_string(fixtures(set).join("cases.json")).expect("cases.json");
    serde_json::from_str::<Json>(&text)
        .expect("json")
        .as_object()
        .expect("object")
        .clone()
}

/// The model's first output, flattened (per sequence for sequence outputs).
fn first_output(model: &Function, case: &Json) -> Vec<f64> {
    let f = case_feeds(model, case);
    let out = eval(model, &f);
    if model.outputs()[0].dynamic_axes().has_sequence() {
        out[0].to_sequences::<f64>().concat()
    } else {
        out[0].to_vec::<f64>()
    }
}

fn check_set(set: &str) {
    let mut failures = Vec::new();
    for (name, case) in cases(set) {
        let path = fixtures(set).join(format!("{name}.onnx"));
        let model = match Function::load_onnx(&path) {
            Ok(m) => m,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        let got = first_output(&model, &case);
        let want = nums(&case["output"]);
        if got.len() != want.len() {
            failures.push(format!(
                "{name}: {} values, the exporter gave {}",
                got.len(),
                want.len()
            ));
            continue;
        }
        let err = max_rel(&got, &want);
        eprintln!("{set}/{name}: max relative error {err:.2e}");
        if err > RTOL {
            failures.push(format!("{name}: max relative error {err:e}"));
        }
    }
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
}

#[test]
fn files_exported_by_cntk_evaluate_like_cntk() {
    check_set("onnx_cntk");
}

#[test]
fn files_exported_by_pytorch_evaluate_like_pytorch() {
    check_set("onnx_torch");
}

#[test]
fn convolutional_networks_exported_by_pytorch_evaluate_like_pytorch() {
    check_set("onnx_torch_conv");
}

#[test]
fn cntks_shift_along_the_padded_sequence_is_refused_by_name() {
    let e = Function::load_onnx(fixtures("onnx_cntk").join("past_value_refused.onnx"))
        .expect_err("refused");
    let msg = e.to_string();
    assert!(msg.contains("past_value_refused.onnx"), "{msg}");
    assert!(msg.contains("Concat") || msg.contains("Slice"), "{msg}");
    assert!(msg.contains("nothing was loaded"), "{msg}");
}

/// rntk → ONNX → rntk: the reloaded model gives the original's outputs.
#[test]
fn every_cntk_fixture_model_round_trips_through_onnx() {
    let dir = scratch("roundtrip");
    let mut worst = 0.0f64;
    let mut exact = 0;
    let mut total = 0;
    for (name, case) in cntk_cases().into_iter().chain(cntk_cnn_cases()) {
        let model = Function::load_cntk(cntk_dir().join(format!("{name}.model"))).expect("load");
        let path = dir.join(format!("{name}.onnx"));
        model
            .save_onnx(&path, &OnnxOptions::default())
            .unwrap_or_else(|e| panic!("{name}: export: {e}"));
        let back = Function::load_onnx(&path).unwrap_or_else(|e| panic!("{name}: import: {e}"));
        let f1 = case_feeds(&model, &case);
        let f2: Vec<(Variable, Value)> = {
            let args = back.arguments();
            f1.iter()
                .map(|(v, x)| {
                    let a = args
                        .iter()
                        .find(|a| a.name() == v.label())
                        .unwrap_or_else(|| panic!("{name}: no input {}", v.label()))
                        .clone();
                    (a, x.clone())
                })
                .collect()
        };
        let o1 = eval(&model, &f1);
        let o2 = eval(&back, &f2);
        assert_eq!(o1.len(), o2.len(), "{name}: outputs");
        for (a, b) in o1.iter().zip(&o2) {
            let (x, y) = (a.to_vec::<f64>(), b.to_vec::<f64>());
            assert_eq!(a.shape(), b.shape(), "{name}: output shape");
            let err = max_rel(&y, &x);
            total += 1;
            if x == y {
                exact += 1;
            }
            eprintln!("{name}: round trip max relative difference {err:.2e}");
            worst = worst.max(err);
            assert!(err <= 1e-6, "{name}: {err:e}");
        }
    }
    eprintln!("round trip: {exact} of {total} outputs bit-identical, worst {worst:.2e}");
}

#[test]
fn an_imported_model_trains_like_any_other() {
    let model = Function::load_onnx(fixtures("onnx_torch").join("lstm.onnx")).expect("load");
    let z = model.output().expect("one output");
    let case = cases("onnx_torch")["lstm"].clone();
    let mut f = case_feeds(&model, &case);
    let t = rntk::sequence::input_variable(2);
    let lengths: Vec<usize> = f[0]
        .1
        .to_sequences::<f32>()
        .iter()
        .map(|s| s.len() / 3)
        .collect();
    let targets: Vec<Vec<f32>> = lengths
        .iter()
        .map(|&n| {
            (0..2 * n)
                .map(|i| if i % 2 == 0 { 0.5 } else { -0.5 })
                .collect()
        })
        .collect();
    let z_axes = z.dynamic_axes();
    let t = if t.dynamic_axes() == z_axes {
        t
    } else {
        rntk::input_variable_with(
            [2],
            rntk::InputOptions {
                dynamic_axes: z_axes,
                ..Default::default()
            },
        )
    };
    let loss = rntk::losses::squared_error(&z, &t).expect("loss");
    f.push((
        t.clone(),
        Value::from_sequences(2, &targets).expect("targets"),
    ));
    let refs: Vec<(&Variable, &Value)> = f.iter().map(|(v, x)| (v, x)).collect();
    let params = model.parameters();
    assert!(!params.is_empty(), "initializers become parameters");
    let before: Vec<rntk::Tensor> = params.iter().map(|p| p.value().expect("value")).collect();
    let learner = sgd(&params, Schedule::constant(0.1), LearnerOptions::default()).expect("sgd");
    let mut tr =
        Trainer::<f32>::new(Some(z), loss, None, vec![Box::new(learner)], vec![]).expect("trainer");
    let mut losses = Vec::new();
    for _ in 0..30 {
        tr.train_minibatch(&refs, false).expect("train");
        losses.push(tr.previous_minibatch_loss_average());
    }
    eprintln!("imported LSTM: loss {:.4} -> {:.4}", losses[0], losses[29]);
    assert!(losses[29] < losses[0] * 0.8, "{losses:?}");
    let changed = params
        .iter()
        .zip(&before)
        .filter(|(p, b)| p.value().expect("value") != **b)
        .count();
    assert_eq!(changed, params.len(), "every parameter trains");
}

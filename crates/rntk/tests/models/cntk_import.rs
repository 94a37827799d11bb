//! CNTK 2.7 model files (tests/fixtures/cntk_models, made by make_cntk_models.py with
//! the real CNTK): rntk loads each one and computes CNTK's outputs on ragged inputs;
//! a CNTK-trained classifier fine-tuned in rntk lowers its loss.

use crate::common;

use rntk::learners::{sgd, LearnerOptions, Schedule};
use rntk::tensor::Value;
use rntk::train::Trainer;
use rntk::{Function, Variable};
use serde_json::Value as Json;
use std::path::PathBuf;

const RTOL: f64 = 1e-5;

fn dir() -> PathBuf {
    common::fixture_path("cntk_models")
}

fn cases() -> serde_json::Map<String, Json> {
    cases_in("cases.json")
}

/// The convolutional models (make_cnn_models.py).
fn cnn_cases() -> serde_json::Map<String, Json> {
    cases_in("cnn_cases.json")
}

fn cases_in(file: &str) -> serde_json::Map<String, Json> {
    let text = std::fs::read_to_string(dir().join(file)).expect(file);
    let j: Json = serde_json::from_str(&text).expect("json");
    j.as_object().expect("object").clone()
}

fn nums(j: &Json) -> Vec<f64> {
    common::flat(j)
}

fn input_value(j: &Json) -> Value {
    match j["kind"].as_str().expect("kind") {
        "seq" => {
            let seqs: Vec<Vec<f32>> = j["data"]
                .as_array()
                .expect("seqs")
                .iter()
                .map(|s| nums(s).into_iter().map(|x| x as f32).collect())
                .collect();
            Value::from_sequences(common::shape_of(&j["shape"]), &seqs).expect("seq value")
        }
        "batch" if j["dtype"] == "float64" => {
            Value::batch(common::shape_of(&j["shape"]), nums(&j["data"])).expect("batch value")
        }
        "batch" => {
            let data: Vec<f32> = nums(&j["data"]).into_iter().map(|x| x as f32).collect();
            Value::batch(common::shape_of(&j["shape"]), data).expect("batch value")
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

fn feeds_of(model: &Function, case: &Json) -> Vec<(Variable, Value)> {
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

/// max |got − want| / max(|want|, 1e-2): relative error; outputs smaller than 1e-2
/// (differences of O(1) float32 terms) are held to an absolute 1e-7.
fn max_rel(got: &[f64], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len(), "output sizes differ");
    got.iter()
        .zip(want)
        .map(|(g, w)| (g - w).abs() / w.abs().max(1e-2))
        .fold(0.0, f64::max)
}

fn check_case(name: &str, case: &Json) -> f64 {
    let path = dir().join(format!("{name}.model"));
    let model = Function::load_cntk(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    let feeds = feeds_of(&model, case);
    let refs: Vec<(&Variable, &Value)> = feeds.iter().map(|(v, x)| (v, x)).collect();
    let outs = model.eval(&refs).unwrap_or_else(|e| panic!("{name}: {e}"));
    let out = &outs[0];
    let want_shape = common::shape_of(&case["output_shape"]);
    assert_eq!(out.shape().dims(), &want_shape[..], "{name}: output shape");
    let got: Vec<f64> = if case["output_is_sequence"].as_bool().expect("flag") {
        out.to_sequences::<f64>().concat()
    } else {
        out.to_vec::<f64>()
    };
    let want = nums(&case["output"]);
    let err = max_rel(&got, &want);
    eprintln!("{name}: max relative error {err:.2e}");
    assert!(err <= RTOL, "{name}: max relative error {err:e} > {RTOL:e}");
    err
}

macro_rules! oracle {
    ($($t:ident),* $(,)?) => {$(
        #[test]
        fn $t() {
            let cases = cases();
            let c = cases.get(stringify!($t)).expect("case");
            check_case(stringify!($t), c);
        }
    )*};
}

oracle!(
    logreg,
    dense_classifier,
    lstm,
    lstm_peepholes,
    lstm_projection,
    lstm_stabilized,
    lstm_all,
    gru,
    rnnstep,
    rnnstep_tanh_backward,
    stacked,
    bidirectional,
    fold,
    stabilizer_layernorm,
    sequence_ops,
    embedding_sparse,
    batchnorm_dropout,
    ops_elementwise,
    ops_reduce,
    ops_shape,
    sequence_more,
    dense_float64,
    seq_where,
    seq_gather,
    seq_scatter,
    seq_softmax,
    seq_slice_inner,
    seq_slice_head,
    seq_slice_tail,
    ops_trig_logplus,
    ops_more_forms,
);

#[test]
fn every_fixture_is_tested() {
    let listed = [
        "logreg",
        "dense_classifier",
        "lstm",
        "lstm_peepholes",
        "lstm_projection",
        "lstm_stabilized",
        "lstm_all",
        "gru",
        "rnnstep",
        "rnnstep_tanh_backward",
        "stacked",
        "bidirectional",
        "fold",
        "stabilizer_layernorm",
        "sequence_ops",
        "embedding_sparse",
        "batchnorm_dropout",
        "trained_classifier",
        "ops_elementwise",
        "ops_reduce",
        "ops_shape",
        "sequence_more",
        "dense_float64",
        "seq_where",
        "seq_gather",
        "seq_scatter",
        "seq_softmax",
        "seq_slice_inner",
        "seq_slice_head",
        "seq_slice_tail",
        "ops_trig_logplus",
        "ops_more_forms",
    ];
    for k in cases().keys() {
        assert!(listed.contains(&k.as_str()), "fixture {k} has no test");
    }
}

#[test]
fn blocks_keep_their_cntk_names() {
    let m = Function::load_cntk(dir().join("lstm.model")).expect("load");
    // Sequential([Recurrence(LSTM), Dense]): the root is the Dense block, whose
    // operand comes from the LSTM block.
    assert!(m.is_block(), "root is {}", m.op_name());
    assert_eq!(m.op_name(), "Dense");
    let lstm = m.inputs().iter().find_map(|v| v.owner()).expect("operand");
    assert_eq!(lstm.op_name(), "LSTM");
    assert_eq!(lstm.outputs().len(), 2, "LSTM block gives h and c");
    let names: Vec<String> = m.parameters().iter().map(|p| p.name()).collect();
    for n in ["W", "b", "H"] {
        assert!(names.iter().any(|x| x == n), "parameter {n} in {names:?}");
    }
}

#[test]
fn trained_classifier_fine_tunes_in_rntk() {
    let cases = cases();
    let case = cases.get("trained_classifier").expect("case");
    let model = Function::load_cntk(dir().join("trained_classifier.model")).expect("load");
    let outs = model.outputs();
    assert_eq!(outs.len(), 2, "combine(z, ce)");
    let (z, ce) = (outs[0].clone(), outs[1].clone());
    let feeds = feeds_of(&model, case);
    let refs: Vec<(&Variable, &Value)> = feeds.iter().map(|(v, x)| (v, x)).collect();
    // The loaded loss is CNTK's loss, sample by sample.
    let vals = model.eval(&refs).expect("eval");
    let err = max_rel(&vals[1].to_vec::<f64>(), &nums(&case["loss"]));
    assert!(err <= RTOL, "loss differs from CNTK's: {err:e}");
    let before: f64 = vals[1].to_vec::<f64>().iter().sum();
    let params = model.parameters();
    assert_eq!(params.len(), 4, "two Dense layers");
    let learner = sgd(&params, Schedule::constant(0.05), LearnerOptions::default()).expect("sgd");
    let mut tr =
        Trainer::<f32>::new(Some(z), ce, None, vec![Box::new(learner)], vec![]).expect("trainer");
    for _ in 0..20 {
        tr.train_minibatch(&refs, false).expect("train");
    }
    let after: f64 = model.eval(&refs).expect("eval")[1]
        .to_vec::<f64>()
        .iter()
        .sum();
    eprintln!("fine-tuning: summed loss {before:.4} -> {after:.4}");
    assert!(after < before * 0.95, "loss {before} -> {after}");
}

macro_rules! cnn_oracle {
    ($($t:ident),* $(,)?) => {$(
        #[test]
        fn $t() {
            let cases = cnn_cases();
            let c = cases.get(stringify!($t)).expect("case");
            check_case(stringify!($t), c);
        }
    )*};
}

cnn_oracle!(
    cnn_lenet,
    cnn_strided_bn_gap,
    cnn_conv_transpose,
    cnn_padded_pooling,
    cnn_rect_nobias,
    cnn_rr0_groups_1d,
    cnn_conv3d,
    cnn_sequential_conv,
    cnn_sequential_conv2d,
);

#[test]
fn every_cnn_fixture_is_tested() {
    let tested = [
        "cnn_lenet",
        "cnn_strided_bn_gap",
        "cnn_conv_transpose",
        "cnn_padded_pooling",
        "cnn_rect_nobias",
        "cnn_rr0_groups_1d",
        "cnn_conv3d",
        "cnn_sequential_conv",
        "cnn_sequential_conv2d",
    ];
    for k in cnn_cases().keys() {
        assert!(tested.contains(&k.as_str()), "fixture {k} has no test");
    }
}

#[test]
fn cnn_models_save_in_rntk_format_and_reload_identically() {
    for (name, case) in cnn_cases() {
        let model = Function::load_cntk(dir().join(format!("{name}.model"))).expect("load");
        let bytes = rntk::persist::model_to_bytes(&model)
            .unwrap_or_else(|e| panic!("{name}: saving in rntk's format: {e}"));
        let back = rntk::persist::model_from_bytes(&bytes)
            .unwrap_or_else(|e| panic!("{name}: reloading: {e}"));
        let run = |m: &Function| {
            let feeds = feeds_of(m, &case);
            let refs: Vec<(&Variable, &Value)> = feeds.iter().map(|(v, x)| (v, x)).collect();
            m.eval(&refs)
                .unwrap_or_else(|e| panic!("{name}: {e}"))
                .iter()
                .map(|v| v.to_vec::<f64>())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(&model), run(&back), "{name}: reloaded model differs");
    }
}

#[test]
fn the_convolution_and_pooling_model_once_refused_now_loads() {
    // (conv_pool_unsupported.model was the fixture of the refusal before convolution)
    let m = Function::load_cntk(dir().join("conv_pool_unsupported.model")).expect("load");
    let names: Vec<String> = m.arguments().iter().map(|a| a.name()).collect();
    assert!(!names.is_empty(), "{names:?}");
}

#[test]
fn float64_models_load_as_float64() {
    let m = Function::load_cntk(dir().join("dense_float64.model")).expect("load");
    assert_eq!(m.outputs()[0].dtype(), rntk::DType::F64);
    assert!(m.parameters().iter().all(|p| p.dtype() == rntk::DType::F64));
}

#[test]
fn a_loaded_recurrent_model_trains_through_time() {
    // Recurrence(LSTM) >> Dense fitted to a target: gradients flow back through the
    // loaded loop (the LSTM block and its past_value states) into every parameter.
    let cases = cases();
    let case = cases.get("lstm").expect("case");
    let model = Function::load_cntk(dir().join("lstm.model")).expect("load");
    let z = model.output().expect("one output");
    let t = rntk::sequence::input_variable(2);
    let loss = rntk::losses::squared_error(&z, &t).expect("loss");
    let mut feeds = feeds_of(&model, case);
    let lengths: Vec<usize> = case["inputs"]["x"]["data"]
        .as_array()
        .expect("seqs")
        .iter()
        .map(|s| s.as_array().expect("seq").len() / 3)
        .collect();
    let targets: Vec<Vec<f32>> = lengths
        .iter()
        .map(|&n| {
            (0..2 * n)
                .map(|i| if i % 2 == 0 { 0.5 } else { -0.5 })
                .collect()
        })
        .collect();
    feeds.push((
        t.clone(),
        Value::from_sequences(2, &targets).expect("targets"),
    ));
    let refs: Vec<(&Variable, &Value)> = feeds.iter().map(|(v, x)| (v, x)).collect();
    let params = model.parameters();
    let before: Vec<rntk::Tensor> = params.iter().map(|p| p.value().expect("value")).collect();
    let learner = sgd(&params, Schedule::constant(0.1), LearnerOptions::default()).expect("sgd");
    let mut tr =
        Trainer::<f32>::new(Some(z), loss, None, vec![Box::new(learner)], vec![]).expect("trainer");
    let mut losses = Vec::new();
    for _ in 0..30 {
        tr.train_minibatch(&refs, false).expect("train");
        losses.push(tr.previous_minibatch_loss_average());
    }
    eprintln!(
        "LSTM fine-tuning loss: {:.4} -> {:.4}",
        losses[0], losses[29]
    );
    assert!(losses[29] < losses[0] * 0.8, "{losses:?}");
    for (p, b) in params.iter().zip(&before) {
        assert_ne!(
            p.value().expect("value"),
            *b,
            "{} was not trained",
            p.label()
        );
    }
}

/// Models whose graphs create a new sequence axis (sequence.where / gather / scatter /
/// slice): rntk's own model format cannot reload those yet (persist compares the
/// re-inferred new axis with the stored one by identity; natively built models fail
/// the same way), so `rntk import-cntk` refuses them.
const NOT_RELOADABLE: [&str; 6] = [
    "seq_where",
    "seq_gather",
    "seq_scatter",
    "seq_slice_inner",
    "seq_slice_head",
    "seq_slice_tail",
];

#[test]
fn every_loaded_model_saves_in_rntk_format_and_reloads_identically() {
    for (name, case) in cases() {
        let model = Function::load_cntk(dir().join(format!("{name}.model"))).expect("load");
        let bytes = rntk::persist::model_to_bytes(&model)
            .unwrap_or_else(|e| panic!("{name}: saving in rntk's format: {e}"));
        let back = rntk::persist::model_from_bytes(&bytes);
        if NOT_RELOADABLE.contains(&name.as_str()) {
            // When persist learns new axes, this fails: drop the model from the list.
            assert!(
                back.is_err(),
                "{name} reloads now: remove it from NOT_RELOADABLE"
            );
            continue;
        }
        let back = back.unwrap_or_else(|e| panic!("{name}: reloading: {e}"));
        let run = |m: &Function| {
            let feeds = feeds_of(m, &case);
            let refs: Vec<(&Variable, &Value)> = feeds.iter().map(|(v, x)| (v, x)).collect();
            m.eval(&refs)
                .unwrap_or_else(|e| panic!("{name}: {e}"))
                .iter()
                .map(|v| v.to_vec::<f64>())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(&model), run(&back), "{name}: reloaded model differs");
        let names =
            |m: &Function| -> Vec<String> { m.parameters().iter().map(|p| p.name()).collect() };
        assert_eq!(names(&model), names(&back), "{name}: parameter names");
    }
}

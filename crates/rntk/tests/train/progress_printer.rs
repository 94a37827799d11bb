//! ProgressPrinter text is byte-identical to CNTK 2.7's for the same totals
//! (tests/fixtures/cntk_progress, made by the real CNTK; epoch timings masked).

use crate::common;

use rntk::functions::*;
use rntk::graph::{input_variable_with, InputOptions};
use rntk::learners::{momentum_sgd, sgd, Learner, LearnerOptions, Schedule};
use rntk::train::{ProgressPrinter, ProgressWriter, Trainer};
use rntk::{DType, Tensor, Value, Variable};
use serde_json::Value as Json;
use std::sync::{Arc, Mutex};

/// "0.005s (5000.0 samples/s)" → "<time>": wall-clock parts differ run to run.
fn mask(text: &str) -> String {
    text.lines()
        .map(|l| {
            match (
                l.starts_with("Finished Epoch"),
                l.rfind(" ("),
                l.rfind("s ("),
            ) {
                (true, Some(_), Some(_)) => {
                    let cut = l[..l.rfind("s (").unwrap()].rfind(' ').unwrap();
                    format!("{} <time>", &l[..cut])
                }
                _ => l.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn input(name: &str) -> Variable {
    input_variable_with(
        [1],
        InputOptions {
            dtype: DType::F32,
            name: name.into(),
            ..Default::default()
        },
    )
}

fn learner(spec: &Json, w: &Variable) -> Box<dyn Learner> {
    let ws = std::slice::from_ref(w);
    match spec["kind"].as_str().unwrap() {
        "sgd" => {
            let mut lr = Schedule::constant(spec["lr"].as_f64().unwrap());
            if spec["per_sample"].as_bool() == Some(true) {
                lr = lr.per_sample();
            }
            Box::new(sgd(ws, lr, LearnerOptions::default()).unwrap())
        }
        "momentum_sgd" => {
            let vals: Vec<f64> = spec["lr"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            let lr =
                Schedule::piecewise(&vals, Some(spec["epoch_size"].as_u64().unwrap())).unwrap();
            let m = Schedule::constant(spec["momentum"].as_f64().unwrap()).per_sample();
            Box::new(momentum_sgd(ws, lr, m, true, LearnerOptions::default()).unwrap())
        }
        k => panic!("unknown learner {k}"),
    }
}

fn values(j: &Json) -> Value {
    let v: Vec<f32> = j
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect();
    Value::batch([1], v).unwrap()
}

#[test]
fn progress_text_is_identical_to_cntk() {
    let text =
        std::fs::read_to_string(common::fixture_path("cntk_progress/progress.json")).unwrap();
    let j: Json = serde_json::from_str(&text).unwrap();
    for sc in j["scenarios"].as_array().unwrap() {
        let name = sc["name"].as_str().unwrap();
        let (x, t) = (input("x"), input("t"));
        let w = rntk::parameter_from(Tensor::from_vec([1], vec![0.5f32]).unwrap(), "w");
        let zero = rntk::scalar(0.0, DType::F32);
        let loss = plus(
            &square(&minus(&x, &t).unwrap()).unwrap(),
            &reduce_sum(&element_times(&w, &zero).unwrap(), None, true).unwrap(),
        )
        .unwrap();
        let metric = abs(&minus(&x, &t).unwrap()).unwrap();
        let p = &sc["printer"];
        let buf = Arc::new(Mutex::new(Vec::new()));
        let mut printer = ProgressPrinter::to_buffer(p["freq"].as_u64(), buf.clone());
        if let Some(f) = p["first"].as_u64() {
            printer = printer.first(f);
        }
        if let Some(tag) = p["tag"].as_str() {
            printer = printer.tag(tag);
        }
        if let Some(k) = p["num_epochs"].as_u64() {
            printer = printer.num_epochs(k);
        }
        if let Some(k) = p["test_freq"].as_u64() {
            printer = printer.test_freq(k);
        }
        if let Some(pct) = p["metric_is_pct"].as_bool() {
            printer = printer.metric_is_pct(pct);
        }
        let with_metric = sc["with_metric"].as_bool().unwrap();
        let writers: Vec<Box<dyn ProgressWriter>> = vec![Box::new(printer)];
        let mut trainer = Trainer::<f32>::new(
            None,
            loss,
            with_metric.then_some(metric),
            vec![learner(&sc["learner"], &w)],
            writers,
        )
        .unwrap();
        for act in sc["actions"].as_array().unwrap() {
            let a = act.as_array().unwrap();
            match a[0].as_str().unwrap() {
                "train" => {
                    let (xv, tv) = (values(&a[1]), values(&a[2]));
                    trainer
                        .train_minibatch(&[(&x, &xv), (&t, &tv)], false)
                        .unwrap();
                }
                "test" => {
                    let (xv, tv) = (values(&a[1]), values(&a[2]));
                    trainer.test_minibatch(&[(&x, &xv), (&t, &tv)]).unwrap();
                }
                "summarize_train" => {
                    trainer.summarize_training_progress();
                }
                "summarize_test" => {
                    trainer.summarize_test_progress();
                }
                other => panic!("unknown action {other}"),
            }
        }
        let got = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        let want = sc["stdout"].as_str().unwrap();
        assert_eq!(
            mask(&got),
            mask(want),
            "scenario {name}:\n--- rntk\n{got}\n--- CNTK\n{want}"
        );
    }
}

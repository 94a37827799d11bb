//! Learners driven by rntk's own gradients: a linear model `y = x·W + b` with per-sample
//! loss `(y − t)²`, trained 20 steps by sgd and adam, against CNTK's `C.Trainer` on the
//! same minibatches (tests/fixtures/cntk_learners/e2e_linear.json).

use crate::common;

use rntk::functions::{minus, plus, square, times};
use rntk::learners::{self, AdamOptions, Learner, LearnerOptions, Schedule};
use rntk::{input_variable, Executor, Tensor, Value};

fn train(case: &serde_json::Value) -> f64 {
    let x = input_variable([3]);
    let t = input_variable([1]);
    let w = rntk::parameter_from(
        Tensor::from_f64([3, 1], rntk::DType::F32, &common::flat(&case["W0"])).unwrap(),
        "W",
    );
    let b = rntk::parameter_from(
        Tensor::from_f64([1], rntk::DType::F32, &common::flat(&case["b0"])).unwrap(),
        "b",
    );
    let y = plus(&times(&x, &w).unwrap(), &b).unwrap();
    let loss = square(&minus(&y, &t).unwrap()).unwrap();
    let params = [w.clone(), b.clone()];
    let mut learner: Box<dyn Learner> = match case["learner"].as_str().unwrap() {
        "adam" => Box::new(
            learners::adam(
                &params,
                Schedule::constant(0.05),
                Schedule::constant(0.9),
                AdamOptions::default(),
            )
            .unwrap(),
        ),
        _ => Box::new(
            learners::sgd(&params, Schedule::constant(0.1), LearnerOptions::default()).unwrap(),
        ),
    };
    let mut exec = Executor::<f32>::new(std::slice::from_ref(&loss)).unwrap();
    let mut worst = 0.0f64;
    for step in case["steps"].as_array().unwrap() {
        let n = step["n"].as_u64().unwrap() as usize;
        let xs: Vec<f32> = common::flat(&step["x"]).iter().map(|&v| v as f32).collect();
        let ts: Vec<f32> = common::flat(&step["t"]).iter().map(|&v| v as f32).collect();
        let (xv, tv) = (
            Value::batch([3], xs).unwrap(),
            Value::batch([1], ts).unwrap(),
        );
        exec.forward(&[(&x, &xv), (&t, &tv)], true).unwrap();
        // seed = ones: the gradient of the loss summed over the minibatch, as CNTK's Trainer
        let g = exec.backward(&[(&loss, None)], &[&w, &b]).unwrap();
        let grads = vec![
            (
                w.clone(),
                Tensor::from_vec([3, 1], g[0].dense_rows::<f32>()).unwrap(),
            ),
            (
                b.clone(),
                Tensor::from_vec([1], g[1].dense_rows::<f32>()).unwrap(),
            ),
        ];
        // N comes from the loss: one value per sample here
        assert_eq!(exec.value(&loss).unwrap().num_samples(), n);
        assert!(learner.update(&grads, n, false).unwrap());
        for (p, key) in [(&w, "W"), (&b, "b")] {
            let want = common::flat(&step[key]);
            let got = p.value().unwrap().to_f64_vec();
            let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            for (g, v) in got.iter().zip(&want) {
                worst = worst.max((g - v).abs() / scale);
            }
        }
    }
    worst
}

#[test]
fn linear_model_trains_like_cntk_trainer() {
    for case in common::load_cases("cntk_learners/e2e_linear.json") {
        let worst = train(&case);
        println!("{}: max tensor-relative error {worst:.1e}", case["name"]);
        assert!(worst <= 1e-5, "{}: {worst}", case["name"]);
    }
}

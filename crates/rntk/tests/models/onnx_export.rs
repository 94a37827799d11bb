//! ONNX export checked by the real `onnx` checker (full check) and `onnxruntime`:
//! every CNTK model fixture (convolutional ones included) and every layer kind, on ragged batches, equals rntk's
//! outputs to 1e-5 relative (tests/onnx/ort_eval.py; .ci/onnx-deps.sh makes its venv).

use crate::onnx_support;

use onnx_support::*;
use rntk::onnx::OnnxOptions;
use rntk::Function;

const RTOL: f64 = 1e-5;

#[test]
fn every_cntk_fixture_model_exports_and_runs_in_onnxruntime() {
    let dir = scratch("cntk-fixtures");
    let mut cases = Vec::new();
    let mut runs = Vec::new();
    for (name, case) in cntk_cases().into_iter().chain(cntk_cnn_cases()) {
        let model = Function::load_cntk(cntk_dir().join(format!("{name}.model"))).expect("load");
        let feeds = case_feeds(&model, &case);
        let path = dir.join(format!("{name}.onnx"));
        if let Err(e) = model.save_onnx(&path, &OnnxOptions::default()) {
            panic!("{name}: export failed: {e}");
        }
        let outs = eval(&model, &feeds);
        cases.push(Case {
            model: path,
            inputs: onnx_inputs(&feeds),
            run: true,
        });
        runs.push((name, model, feeds, outs));
    }
    let Some(results) = oracle(&cases, &dir) else {
        return;
    };
    let mut failures = Vec::new();
    for ((name, model, feeds, outs), r) in runs.iter().zip(&results) {
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            compare(name, model, outs, r, &seq_lens(feeds))
        }));
        match res {
            Ok(err) if err <= RTOL => {}
            Ok(err) => failures.push(format!("{name}: max relative error {err:e}")),
            Err(e) => failures.push(format!(
                "{name}: {}",
                e.downcast_ref::<String>().cloned().unwrap_or_default()
            )),
        }
    }
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
}

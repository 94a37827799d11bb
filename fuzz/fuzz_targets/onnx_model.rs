//! Fuzz target: any bytes given to the ONNX importer must give a model or an error,
//! never a panic or an allocation the input does not justify (declared tensor sizes,
//! external data, cycles, shapes). A model that loads is also evaluated on a tiny
//! batch and written back as ONNX. Run with `cargo +nightly fuzz run onnx_model` in
//! fuzz/ (seed corpus: the ONNX fixtures, e.g. `cargo +nightly fuzz run onnx_model
//! corpus/onnx_model ../tests/fixtures/onnx_cntk ../tests/fixtures/onnx_torch`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use rntk::tensor::Value;
use rntk::{DynamicAxes, Variable};

fuzz_target!(|data: &[u8]| {
    let Ok(model) = rntk::onnx::load_onnx_bytes("<fuzz>", data, None) else {
        return;
    };
    let _ = rntk::onnx::to_onnx_bytes(&model, &rntk::onnx::OnnxOptions::default());
    let mut values: Vec<(Variable, Value)> = Vec::new();
    for a in &model.arguments() {
        let shape = a.shape();
        let numel = shape.numel();
        if numel > 4096 || a.is_placeholder() || a.dtype() != rntk::DType::F32 {
            return;
        }
        let v = match a.dynamic_axes() {
            DynamicAxes::Sequence(_) => {
                Value::from_sequences::<f32>(shape, &[vec![0.5; 2 * numel], vec![0.25; numel]])
            }
            DynamicAxes::Batch => Value::batch::<f32>(shape, vec![0.5; 2 * numel]),
            DynamicAxes::None => Value::from_static::<f32>(shape, vec![0.5; numel]),
        };
        let Ok(v) = v else { return };
        values.push((a.clone(), v));
    }
    if model.outputs().iter().any(|o| o.dtype() != rntk::DType::F32) {
        return;
    }
    let feeds: Vec<(&Variable, &Value)> = values.iter().map(|(a, v)| (a, v)).collect();
    let _ = model.eval(&feeds);
});

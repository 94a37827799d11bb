//! Fuzz target: any bytes given to the native model loader (`model_from_bytes`: the
//! safetensors container, the JSON graph description, shapes, op attributes, delay
//! offsets, placeholder loops) must give a model or an error, never a panic, an abort
//! or an allocation the input does not justify. A model that loads is also evaluated
//! on a tiny batch. Run with `cargo +nightly fuzz run native_model corpus/native_model
//! seeds/native_model` in fuzz/ (seeds: small models saved by rntk).

#![no_main]

use libfuzzer_sys::fuzz_target;
use rntk::tensor::Value;
use rntk::{DynamicAxes, Variable};

/// Limits far below the defaults: a model that asks for gigabytes within the
/// default limits is legitimate, not a bug, but would exhaust the fuzzer's memory.
fn small_limits() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let l = rntk::limits::Limits {
            max_sample_elements: 1 << 16,
            max_one_hot_classes: 1 << 10,
            max_delay_offset: 1 << 10,
            ..rntk::limits::Limits::DEFAULT
        };
        rntk::limits::set(l).expect("valid limits");
    });
}

fuzz_target!(|data: &[u8]| {
    small_limits();
    let Ok(model) = rntk::persist::model_from_bytes(data) else {
        return;
    };
    // Saving what loaded must work, and load back.
    if let Ok(bytes) = rntk::persist::model_to_bytes(&model) {
        let _ = rntk::persist::model_from_bytes(&bytes);
    }
    // Feed small values of each argument's declared shape: running must not panic.
    let args = model.arguments();
    let mut values: Vec<(Variable, Value)> = Vec::new();
    for a in &args {
        let shape = a.shape();
        let numel = shape.numel();
        if numel > 4096 || a.is_sparse() || a.is_placeholder() {
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
    if model
        .outputs()
        .iter()
        .any(|o| o.dtype() != rntk::DType::F32 || o.shape().numel() > 1 << 16)
    {
        return;
    }
    let feeds: Vec<(&Variable, &Value)> = values.iter().map(|(a, v)| (a, v)).collect();
    let _ = model.eval(&feeds);
});

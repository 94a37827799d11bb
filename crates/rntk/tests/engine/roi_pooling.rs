//! ROI pooling (`roipooling`) against the CNTK 2.7 oracle (tests/fixtures/cntk_conv/
//! roi_pooling.json, made by make_roi_fixtures.py): outputs and gradients of every case
//! (f32 and f64, clipped, degenerate and empty boxes, scale 1/16, ties); f64 finite
//! differences of the backward; the CNTK-saved model with ROIPooling evaluated equal to
//! CNTK and reloaded identically from rntk's format; shapes that do not fit refused with
//! the op and the shapes named.

use crate::common;

use common::{f64_input, fixture_path, gradcheck};
use rntk::functions::roipooling;
use rntk::{DType, DynamicAxes, Executor, Function, InputOptions, Tensor, Value, Variable};
use serde_json::Value as Json;

fn fixtures() -> Json {
    let text = std::fs::read_to_string(fixture_path("cntk_conv/roi_pooling.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn nums(j: &Json) -> Vec<f64> {
    j.as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

fn dims(j: &Json) -> Vec<usize> {
    nums(j).iter().map(|&v| v as usize).collect()
}

fn input(shape: &[usize], dtype: DType, name: &str, grad: bool) -> Variable {
    rntk::input_variable_with(
        shape.to_vec(),
        InputOptions {
            dtype,
            needs_gradient: grad,
            dynamic_axes: DynamicAxes::Batch,
            name: name.into(),
            ..Default::default()
        },
    )
}

/// A batch of samples of `shape` holding `data` as `T`.
fn batch_of<T: rntk::tensor::Element>(shape: &[usize], data: Vec<f64>) -> Value {
    Value::batch(shape.to_vec(), data.into_iter().map(T::from_f64).collect()).unwrap()
}

fn batch(shape: &[usize], data: Vec<f64>) -> Value {
    batch_of::<f32>(shape, data)
}

/// Runs one case in `T`: (output, d sum(out·r)/dx).
fn run<T: rntk::tensor::Element>(c: &Json) -> (Vec<f64>, Vec<f64>) {
    let (xs, r) = (
        dims(&c["x_shape"]),
        c["num_rois"].as_u64().unwrap() as usize,
    );
    let out = dims(&c["roi_output_shape"]);
    let x = input(&xs, T::DTYPE, "x", true);
    let rois = input(&[r, 4], T::DTYPE, "rois", false);
    let y = roipooling(
        &x,
        &rois,
        (out[0], out[1]),
        c["spatial_scale"].as_f64().unwrap(),
    )
    .unwrap();
    assert_eq!(y.shape().dims(), &dims(&c["output_shape"])[..]);
    let xv = batch_of::<T>(&xs, nums(&c["x"]));
    let rv = batch_of::<T>(&[r, 4], nums(&c["rois"]));
    let seed = batch_of::<T>(y.shape().dims(), nums(&c["r"]));
    let mut ex = Executor::<T>::new(std::slice::from_ref(&y)).unwrap();
    let feeds = [(&x, &xv), (&rois, &rv)];
    ex.forward(&feeds, false).unwrap();
    let yv = ex.value(&y).unwrap();
    let g = ex.backward(&[(&y, Some(&seed))], &[&x]).unwrap();
    common::arena_mirror(&y, &feeds, Some(&seed), &[&x], (&yv, &g));
    (yv.to_vec::<f64>(), g[0].to_vec::<f64>())
}

#[test]
fn every_roi_pooling_case_matches_cntk() {
    let f = fixtures();
    let cases = f["cases"].as_array().unwrap();
    assert!(cases.len() >= 6);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let (y, g) = match c["dtype"].as_str().unwrap() {
            "float64" => run::<f64>(c),
            _ => run::<f32>(c),
        };
        // a maximum is one of the inputs, its gradient a sum of seeds: equal to CNTK's
        // up to the order of the additions
        common::assert_close(
            &format!("{name}: output"),
            &y,
            &nums(&c["output"]),
            1e-6,
            1e-7,
        );
        common::assert_close(
            &format!("{name}: d/dx"),
            &g,
            &nums(&c["grad_x"]),
            1e-5,
            1e-6,
        );
    }
}

#[test]
fn roi_pooling_gradient_by_finite_differences() {
    // distinct values, boxes with fractional bins, one running past the map, for a batch
    // of 2 (a box reaching before the map is CNTK's exception: its bins have values but
    // pass no gradient back, backend/roi.rs — not a derivative to check)
    let x = f64_input(&[2, 6, 7], "x", DynamicAxes::Batch);
    let xv = batch_of::<f64>(
        &[2, 6, 7],
        (0..168)
            .map(|i| ((i * 37 % 101) as f64) / 50.0 - 1.0 + 1e-3 * i as f64)
            .collect(),
    );
    let boxes = [0.0, 0.0, 5.0, 4.0, 2.0, 1.0, 6.0, 5.0, 1.0, 3.0, 9.0, 9.0];
    let rois = input(&[3, 4], DType::F64, "rois", false);
    let rv = batch_of::<f64>(&[3, 4], [boxes, boxes].concat());
    let y = roipooling(&x, &rois, (2, 3), 1.0).unwrap();
    gradcheck(
        &y,
        &[(x.clone(), xv.clone()), (rois.clone(), rv)],
        std::slice::from_ref(&x),
        1e-6,
    );
    // the same boxes as a constant: one set for every sample
    let c = rntk::constant(
        Tensor::from_vec(vec![3, 4], boxes.to_vec()).unwrap(),
        "boxes",
    );
    let y2 = roipooling(&x, &c, (2, 3), 1.0).unwrap();
    gradcheck(&y2, &[(x.clone(), xv)], &[x], 1e-6);
}

#[test]
fn constant_boxes_pool_every_sample_like_per_sample_boxes() {
    let x = input(&[1, 4, 5], DType::F32, "x", false);
    let xv = batch(
        &[1, 4, 5],
        (0..60).map(|i| (i as f64 * 0.3).sin()).collect(),
    );
    let boxes = [0.0, 0.0, 4.0, 3.0, 1.0, 1.0, 3.0, 2.0];
    let per = input(&[2, 4], DType::F32, "rois", false);
    let pv = batch(&[2, 4], [boxes, boxes, boxes].concat());
    let shared = rntk::constant(
        Tensor::from_vec(vec![2, 4], boxes.iter().map(|&v| v as f32).collect()).unwrap(),
        "boxes",
    );
    let a = roipooling(&x, &per, (2, 2), 1.0).unwrap();
    let b = roipooling(&x, &shared, (2, 2), 1.0).unwrap();
    let eval = |y: &Variable, feeds: &[(&Variable, &Value)]| {
        let mut ex = Executor::<f32>::new(std::slice::from_ref(y)).unwrap();
        ex.forward(feeds, false).unwrap();
        ex.value(y).unwrap().to_vec::<f64>()
    };
    assert_eq!(eval(&a, &[(&x, &xv), (&per, &pv)]), eval(&b, &[(&x, &xv)]));
}

#[test]
fn shapes_that_do_not_fit_are_refused_with_the_shapes() {
    let rois = input(&[3, 4], DType::F32, "rois", false);
    let e = roipooling(&input(&[8, 8], DType::F32, "x", false), &rois, (2, 2), 1.0)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("ROIPooling") && e.contains("(8, 8)") && e.contains("(C, H, W)"),
        "{e}"
    );
    let x = input(&[2, 8, 8], DType::F32, "x", false);
    let e = roipooling(&x, &input(&[3, 5], DType::F32, "r", false), (2, 2), 1.0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("(3, 5)") && e.contains("(R, 4)"), "{e}");
    let e = roipooling(&x, &rois, (9, 2), 1.0).unwrap_err().to_string();
    assert!(e.contains("smaller than the output 9×2"), "{e}");
    let e = roipooling(&x, &rois, (2, 2), f64::INFINITY)
        .unwrap_err()
        .to_string();
    assert!(e.contains("spatial_scale"), "{e}");
}

#[test]
fn the_cntk_model_with_roi_pooling_equals_cntk_and_reloads() {
    let f = fixtures();
    let m = &f["model"];
    let model = Function::load_cntk(fixture_path("cntk_conv/roi_pooling.model")).unwrap();
    let arg = |n: &str| {
        model
            .arguments()
            .into_iter()
            .find(|a| a.name() == n)
            .unwrap_or_else(|| panic!("no argument {n}"))
    };
    assert_eq!(arg("rois").shape().dims(), &[3, 4]);
    let xv = batch(&dims(&m["features_shape"]), nums(&m["features"]));
    let rv = batch(&dims(&m["rois_shape"]), nums(&m["rois"]));
    let run = |f: &Function| {
        let args = f.arguments();
        let feed = |v: &Variable| if v.name() == "features" { &xv } else { &rv };
        let feeds: Vec<(&Variable, &Value)> = args.iter().map(|a| (a, feed(a))).collect();
        f.eval(&feeds).unwrap()[0].to_vec::<f64>()
    };
    let got = run(&model);
    common::assert_close("roi_pooling.model", &got, &nums(&m["output"]), 1e-5, 1e-6);
    let bytes = rntk::persist::model_to_bytes(&model).unwrap();
    let back = rntk::persist::model_from_bytes(&bytes).unwrap();
    assert_eq!(run(&back), got, "reloaded model differs");
}

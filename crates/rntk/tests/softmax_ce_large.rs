//! The fused cross_entropy_with_softmax / classification_error on a minibatch large
//! enough to run inside the thread pool, with rows split across threads, against the
//! formulas computed here row by row (lse − o[label]; softmax − one-hot; argmax miss).

use rntk::graph::{input_variable_with, InputOptions};
use rntk::losses::cross_entropy_with_softmax;
use rntk::metrics::classification_error;
use rntk::{DType, DynamicAxes, Executor, Value};

#[test]
fn fused_loss_and_error_match_row_formulas_on_a_pooled_minibatch() {
    let (rows, dim) = (300usize, 4000usize); // 1.2 M elements: pooled and split
    let opts = |sparse: bool, grad: bool| InputOptions {
        dtype: DType::F64,
        is_sparse: sparse,
        needs_gradient: grad,
        dynamic_axes: DynamicAxes::default_sequence(),
        ..Default::default()
    };
    let o = input_variable_with([dim], opts(false, true));
    let t = input_variable_with([dim], opts(true, false));
    let ce = cross_entropy_with_softmax(&o, &t, -1).unwrap();
    let err = classification_error(&o, &t, -1, 1).unwrap();
    // values spread over [-4, 4], deterministic
    let x: Vec<f64> = (0..rows * dim)
        .map(|i| ((i * 7919 % 10007) as f64 / 10007.0 - 0.5) * 8.0)
        .collect();
    let labels: Vec<usize> = (0..rows).map(|r| (r * 131 + 7) % dim).collect();
    let ov = Value::from_sequences([dim], &[x.clone()]).unwrap();
    let tv = Value::one_hot_sequences::<f64>(dim, &[labels.clone()]).unwrap();
    let mut ex = Executor::<f64>::new(&[ce.clone(), err.clone()]).unwrap();
    ex.forward(&[(&o, &ov), (&t, &tv)], true).unwrap();
    let loss = ex.value(&ce).unwrap().to_vec::<f64>();
    let miss = ex.value(&err).unwrap().to_vec::<f64>();
    let g = ex.backward(&[(&ce, None)], &[&o]).unwrap()[0].to_vec::<f64>();
    assert_eq!((loss.len(), miss.len(), g.len()), (rows, rows, rows * dim));
    for r in 0..rows {
        let xr = &x[r * dim..(r + 1) * dim];
        let m = xr.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = m + xr.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        let want = lse - xr[labels[r]];
        assert!(
            (loss[r] - want).abs() < 1e-9,
            "row {r}: {} vs {want}",
            loss[r]
        );
        let best = (0..dim).fold(0, |b, j| if xr[j] > xr[b] { j } else { b });
        assert_eq!(miss[r], if best == labels[r] { 0.0 } else { 1.0 });
        for j in (0..dim).step_by(97).chain([labels[r]]) {
            let p = (xr[j] - lse).exp() - if j == labels[r] { 1.0 } else { 0.0 };
            assert!((g[r * dim + j] - p).abs() < 1e-12, "grad row {r} col {j}");
        }
    }
}

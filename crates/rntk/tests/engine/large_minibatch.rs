//! Minibatches large enough to run inside the thread pool, where ops split their rows
//! across threads: the fused cross_entropy_with_softmax / classification_error against
//! the formulas computed here row by row (lse − o[label]; softmax − one-hot; argmax
//! miss), and element-wise ops against the same graph run one small sequence at a time.

use rntk::functions::{element_times, plus, tanh};
use rntk::graph::{input_variable_with, InputOptions};
use rntk::losses::cross_entropy_with_softmax;
use rntk::metrics::classification_error;
use rntk::{parameter_from, DType, DynamicAxes, Executor, Tensor, Value};

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
    let ov = Value::from_sequences([dim], std::slice::from_ref(&x)).unwrap();
    let tv = Value::one_hot_sequences::<f64>(dim, std::slice::from_ref(&labels)).unwrap();
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

#[test]
fn split_element_wise_rows_equal_unsplit_ones() {
    let (rows, dim) = (400usize, 1000usize); // 400 k elements per op: pooled and split
    let x = input_variable_with(
        [dim],
        InputOptions {
            dtype: DType::F64,
            needs_gradient: true,
            dynamic_axes: DynamicAxes::default_sequence(),
            ..Default::default()
        },
    );
    let bias: Vec<f64> = (0..dim).map(|j| (j % 7) as f64 * 0.1 - 0.3).collect();
    let b = parameter_from(Tensor::from_vec([dim], bias).unwrap(), "b");
    // y = tanh(x + b) ⊙ x: a broadcast binary, a unary and a per-row binary
    let y = element_times(&tanh(&plus(&x, &b).unwrap()).unwrap(), &x).unwrap();
    let data: Vec<Vec<f64>> = (0..rows)
        .map(|r| {
            (0..dim)
                .map(|j| (((r * dim + j) * 2654435761usize % 1000) as f64 / 500.0) - 1.0)
                .collect()
        })
        .collect();
    // all rows at once (one sequence of length 1 per row)
    let all = Value::from_sequences([dim], &data).unwrap();
    let mut ex = Executor::<f64>::new(std::slice::from_ref(&y)).unwrap();
    ex.forward(&[(&x, &all)], true).unwrap();
    let y_all = ex.value(&y).unwrap().to_sequences::<f64>();
    let g_all = ex.backward(&[(&y, None)], &[&x]).unwrap()[0].to_sequences::<f64>();
    // one small sequence (one row) at a time: the serial path
    let mut one = Executor::<f64>::new(std::slice::from_ref(&y)).unwrap();
    for r in 0..rows {
        let v = Value::from_sequences([dim], std::slice::from_ref(&data[r])).unwrap();
        one.forward(&[(&x, &v)], true).unwrap();
        assert_eq!(
            one.value(&y).unwrap().to_vec::<f64>(),
            y_all[r],
            "value, row {r}"
        );
        let g = one.backward(&[(&y, None)], &[&x]).unwrap()[0].to_vec::<f64>();
        assert_eq!(g, g_all[r], "gradient, row {r}");
    }
}

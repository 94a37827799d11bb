//! Unit tests of the executor's internals (the integration tests are `tests/executor.rs`).

use super::*;
use crate::functions::{element_times, plus, tanh, times};
use crate::graph::DynamicAxes;
use crate::graph::{input_variable_with, InputOptions};
use crate::DType;

/// The hand-over is taken for `x·W + b` read once, and not when the product has a
/// second reader (the integration test `executor.rs` checks the gradients agree).
#[test]
fn pass_through_is_chosen_only_for_a_single_reader() {
    let x = input_variable_with(
        [2],
        InputOptions {
            dtype: DType::F64,
            dynamic_axes: DynamicAxes::default_sequence(),
            name: "x".into(),
            ..Default::default()
        },
    );
    let w = crate::graph::parameter_from(Tensor::from_vec([2, 3], vec![0.5; 6]).unwrap(), "W");
    let b = crate::graph::parameter_from(Tensor::from_vec([3], vec![0.1; 3]).unwrap(), "b");
    let y = times(&x, &w).unwrap();
    let z = tanh(&plus(&y, &b).unwrap()).unwrap();
    let shared = plus(&z, &element_times(&y, &z).unwrap()).unwrap();
    let v = Value::from_sequences([2], &[vec![1.0, 2.0, 3.0, 4.0], vec![0.5, 0.25]]).unwrap();
    for (root, expect) in [(&z, true), (&shared, false)] {
        let mut ex = Executor::<f64>::new(std::slice::from_ref(root)).unwrap();
        ex.forward(&[(&x, &v)], true).unwrap();
        ex.backward(&[(root, None)], &[&w, &b]).unwrap();
        // the product's slot
        let ys = (ex.plan.nodes.iter())
            .find(|nd| matches!(nd.op, Op::Times { .. }))
            .map(|nd| nd.out)
            .unwrap();
        let handed = (ex.pass.iter().enumerate())
            .any(|(n, p)| p.is_some_and(|i| ex.plan.nodes[n].ins[i] == ys));
        assert_eq!(handed, expect);
    }
}

//! Runtime behaviour: inference mode, refusals with actionable errors, determinism.

use crate::common;

use rntk::functions::*;
use rntk::graph::{input_variable_with, InputOptions};
use rntk::ops::{BinaryOp, Op};
use rntk::{placeholder, sequence, DType, DynamicAxes, Error, Executor, Tensor, Value, Variable};

fn seq_input(dim: usize, name: &str) -> Variable {
    input_variable_with(
        [dim],
        InputOptions {
            dtype: DType::F64,
            dynamic_axes: DynamicAxes::default_sequence(),
            name: name.into(),
            ..Default::default()
        },
    )
}

/// y = tanh(x·W + past_value(y)·H), a small recurrent net.
fn rnn(x: &Variable) -> (Variable, Vec<Variable>) {
    let w = rntk::parameter_from(
        Tensor::from_vec([2, 3], vec![0.1, -0.2, 0.3, 0.4, 0.5, -0.6]).unwrap(),
        "W",
    );
    let h = rntk::parameter_from(
        Tensor::from_vec([3, 3], vec![0.2, 0.1, 0.0, -0.1, 0.3, 0.2, 0.05, -0.2, 0.1]).unwrap(),
        "H",
    );
    let ph = placeholder([3], DType::F64, x.dynamic_axes(), "state").unwrap();
    let prev = sequence::past_value_scalar(&ph, 0.0, 1).unwrap();
    let y = tanh(&plus(&times(x, &w).unwrap(), &times(&prev, &h).unwrap()).unwrap()).unwrap();
    y.owner()
        .unwrap()
        .replace_placeholders(&[(ph, y.clone())])
        .unwrap();
    (y, vec![w, h])
}

#[test]
fn inference_executor_matches_training_forward_and_keeps_nothing_else() {
    let x = seq_input(2, "x");
    let (y, params) = rnn(&x);
    let z = reduce_sum_like(&y);
    let v = Value::from_sequences([2], &common::ragged(&[3, 1, 5, 2], 2, 1)).unwrap();
    let mut train = Executor::<f64>::new(std::slice::from_ref(&z)).unwrap();
    train.forward(&[(&x, &v)], true).unwrap();
    let mut inf = Executor::<f64>::new_inference(std::slice::from_ref(&z)).unwrap();
    for _ in 0..3 {
        inf.forward(&[(&x, &v)], false).unwrap();
        assert_eq!(inf.value(&z).unwrap(), train.value(&z).unwrap());
    }
    assert!(matches!(inf.value(&y), Err(Error::Argument(_))));
    assert!(inf.backward(&[(&z, None)], &[&params[0]]).is_err());
    // Function::eval is the same forward-only path.
    let out = z.owner().unwrap().eval(&[(&x, &v)]).unwrap();
    assert_eq!(out[0], train.value(&z).unwrap());
}

fn reduce_sum_like(y: &Variable) -> Variable {
    // A node after the loop, so the loop's output is an intermediate.
    element_times(y, &rntk::scalar(2.0, DType::F64)).unwrap()
}

#[test]
fn cycle_without_delay_is_refused() {
    let x = seq_input(3, "x");
    let ph = placeholder([3], DType::F64, x.dynamic_axes(), "ph").unwrap();
    let y = plus(&x, &ph).unwrap();
    y.owner()
        .unwrap()
        .replace_placeholders(&[(ph, y.clone())])
        .unwrap();
    match Executor::<f64>::new(&[y]) {
        Err(Error::CycleWithoutDelay { path }) => assert!(path.contains("Plus"), "{path}"),
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("a cycle without delay compiled"),
    }
}

#[test]
fn mismatched_shapes_name_op_function_and_shapes() {
    let a = seq_input(2, "a");
    let b = seq_input(3, "b");
    let e = named(Op::Binary(BinaryOp::Plus), &[&a, &b], "my_sum").unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Shape { .. }), "{e:?}");
    for part in ["Plus", "my_sum", "(2,)", "(3,)"] {
        assert!(msg.contains(part), "'{msg}' lacks '{part}'");
    }
    let w = rntk::parameter_from(Tensor::from_vec([4, 5], vec![0.0f64; 20]).unwrap(), "W");
    let msg = times(&a, &w).unwrap_err().to_string();
    assert!(
        msg.contains("Times") && msg.contains("(2,)") && msg.contains("(4, 5)"),
        "{msg}"
    );
}

#[test]
fn unknown_missing_and_mistyped_arguments_are_refused() {
    let x = seq_input(2, "x");
    let other = seq_input(2, "other");
    let y = sigmoid(&x).unwrap();
    let v = Value::from_sequences([2], &[vec![1.0f64, 2.0]]).unwrap();
    let mut ex = Executor::<f64>::new(std::slice::from_ref(&y)).unwrap();
    let e = ex.forward(&[(&x, &v), (&other, &v)], false).unwrap_err();
    assert!(e.to_string().contains("other"), "{e}");
    let e = ex.forward(&[], false).unwrap_err();
    assert!(
        e.to_string().contains("x") && e.to_string().contains("not fed"),
        "{e}"
    );
    let wrong_shape = Value::from_sequences([1], &[vec![1.0f64, 2.0]]).unwrap();
    assert!(ex.forward(&[(&x, &wrong_shape)], false).is_err());
    let batch = Value::batch([2], vec![1.0f64, 2.0]).unwrap();
    let e = ex.forward(&[(&x, &batch)], false).unwrap_err();
    assert!(e.to_string().contains("[#, *]"), "{e}");
    let f32v = Value::from_sequences([2], &[vec![1.0f32, 2.0]]).unwrap();
    assert!(matches!(
        ex.forward(&[(&x, &f32v)], false),
        Err(Error::DType { .. })
    ));
    // an f32 graph cannot run in an f64 executor
    let xf = sequence::input_variable([2]);
    assert!(matches!(
        Executor::<f64>::new(&[sigmoid(&xf).unwrap()]),
        Err(Error::DType { .. })
    ));
}

#[test]
fn unreplaced_placeholder_is_refused() {
    let x = seq_input(2, "x");
    let ph = placeholder([2], DType::F64, x.dynamic_axes(), "forgotten").unwrap();
    let y = plus(&x, &sequence::past_value_scalar(&ph, 0.0, 1).unwrap()).unwrap();
    let e = Executor::<f64>::new(&[y]).err().expect("must fail");
    assert!(e.to_string().contains("forgotten"), "{e}");
}

#[test]
fn sequences_of_different_lengths_on_one_axis_are_refused_at_run_time() {
    let a = seq_input(2, "a");
    let b = seq_input(2, "b");
    let y = plus(&a, &b).unwrap();
    let va = Value::from_sequences([2], &[vec![1.0f64, 2.0, 3.0, 4.0]]).unwrap();
    let vb = Value::from_sequences([2], &[vec![1.0f64, 2.0]]).unwrap();
    let mut ex = Executor::<f64>::new(std::slice::from_ref(&y)).unwrap();
    let e = ex.forward(&[(&a, &va), (&b, &vb)], false).unwrap_err();
    assert!(
        matches!(e, Error::Runtime { .. }) && e.to_string().contains("Plus"),
        "{e}"
    );
}

#[test]
fn same_inputs_give_bit_identical_results() {
    let x = seq_input(2, "x");
    let (y, params) = rnn(&x);
    let v = Value::from_sequences([2], &common::ragged(&[4, 2, 7], 2, 3)).unwrap();
    let run = || {
        let mut ex = Executor::<f64>::new(std::slice::from_ref(&y)).unwrap();
        ex.forward(&[(&x, &v)], true).unwrap();
        let p: Vec<&Variable> = params.iter().collect();
        (
            ex.value(&y).unwrap(),
            ex.backward(&[(&y, None)], &p).unwrap(),
        )
    };
    assert_eq!(run(), run());
}

#[test]
fn gradient_of_rnn_on_ragged_batch_with_length_one() {
    let x = seq_input(2, "x");
    let (y, params) = rnn(&x);
    let v = Value::from_sequences([2], &common::ragged(&[3, 1, 5, 2], 2, 7)).unwrap();
    let mut wrt = params.clone();
    wrt.push(x.clone());
    common::gradcheck(&y, &[(x, v)], &wrt, 1e-6);
}

#[test]
fn large_minibatches_run_in_the_pool_and_stay_deterministic() {
    // Big enough to run inside rntk's thread pool with parallel GEMMs.
    let x = seq_input(64, "x");
    let w = rntk::parameter(
        [64, 256],
        DType::F64,
        rntk::initializer::Initializer::glorot_uniform().with_seed(1),
        "W",
    )
    .unwrap();
    let h = rntk::parameter(
        [256, 256],
        DType::F64,
        rntk::initializer::Initializer::glorot_uniform().with_seed(2),
        "H",
    )
    .unwrap();
    let ph = placeholder([256], DType::F64, x.dynamic_axes(), "s").unwrap();
    let prev = sequence::past_value_scalar(&ph, 0.0, 1).unwrap();
    let y = tanh(&plus(&times(&x, &w).unwrap(), &times(&prev, &h).unwrap()).unwrap()).unwrap();
    y.owner()
        .unwrap()
        .replace_placeholders(&[(ph, y.clone())])
        .unwrap();
    let lengths: Vec<usize> = (0..80).map(|i| 1 + i % 24).collect();
    let v = Value::from_sequences([64], &common::ragged(&lengths, 64, 5)).unwrap();
    let run = || {
        let mut ex = Executor::<f64>::new(std::slice::from_ref(&y)).unwrap();
        ex.forward(&[(&x, &v)], true).unwrap();
        let g = ex.backward(&[(&y, None)], &[&w, &h]).unwrap();
        (ex.value(&y).unwrap(), g)
    };
    let a = run();
    assert_eq!(a, run());
    // and equal to running it one sequence at a time (small, outside the pool)
    let mut ex = Executor::<f64>::new(std::slice::from_ref(&y)).unwrap();
    let seqs = v.to_sequences::<f64>();
    let single = Value::from_sequences([64], &seqs[..1]).unwrap();
    ex.forward(&[(&x, &single)], false).unwrap();
    let first = ex.value(&y).unwrap().to_sequences::<f64>().remove(0);
    let full = a.0.to_sequences::<f64>().remove(0);
    for (p, q) in first.iter().zip(&full) {
        assert!((p - q).abs() < 1e-12, "{p} vs {q}");
    }
}

#[test]
fn recycled_gradient_storage_is_reused_and_gives_the_same_gradients() {
    let x = seq_input(2, "x");
    let (y, params) = rnn(&x);
    let v = Value::from_sequences([2], &common::ragged(&[3, 1, 5, 2], 2, 5)).unwrap();
    let p: Vec<&Variable> = params.iter().collect();
    let mut ex = Executor::<f64>::new(std::slice::from_ref(&y)).unwrap();
    ex.forward(&[(&x, &v)], true).unwrap();
    let first = ex.backward(&[(&y, None)], &p).unwrap();
    let want: Vec<Vec<f64>> = first.iter().map(|g| g.to_vec::<f64>()).collect();
    let tensors: Vec<Tensor> = first
        .into_iter()
        .map(|g| g.into_tensor().unwrap())
        .collect();
    let ptrs: Vec<*const f64> = tensors
        .iter()
        .map(|t| t.as_slice::<f64>().unwrap().as_ptr())
        .collect();
    ex.recycle_gradients(&p, tensors);
    ex.forward(&[(&x, &v)], true).unwrap();
    let second = ex.backward(&[(&y, None)], &p).unwrap();
    for (k, g) in second.into_iter().enumerate() {
        // the same bits, computed in the storage handed back (into_tensor moves it)
        assert_eq!(g.to_vec::<f64>(), want[k]);
        let t = g.into_tensor().unwrap();
        assert_eq!(
            t.as_slice::<f64>().unwrap().as_ptr(),
            ptrs[k],
            "gradient {k}"
        );
    }
}

/// `x·W + b` hands the product's gradient over by moving the buffer when nothing else
/// reads the product. The gradients equal those of the same net where the product
/// has a second reader (no hand-over), over two backward passes, with the sum seeded
/// directly or not, and for `x - b`.
#[test]
fn handed_over_gradients_equal_accumulated_ones() {
    let x = seq_input(2, "x");
    let w = rntk::parameter_from(
        Tensor::from_vec([2, 3], vec![0.1, -0.2, 0.3, 0.4, 0.5, -0.6]).unwrap(),
        "W",
    );
    let b = rntk::parameter_from(Tensor::from_vec([3], vec![0.3, -0.1, 0.2]).unwrap(), "b");
    let v = Value::from_sequences([2], &common::ragged(&[3, 1, 5, 2], 2, 7)).unwrap();
    let zero = rntk::scalar(0.0, DType::F64);
    for minus in [false, true] {
        let y = times(&x, &w).unwrap();
        let z = if minus {
            minus_(&y, &b)
        } else {
            plus(&y, &b).unwrap()
        };
        let single = element_times(&tanh(&z).unwrap(), &z).unwrap();
        // the same value, the product read a second time (times 0)
        let shared = plus(&single, &element_times(&y, &zero).unwrap()).unwrap();
        for seed_on in [false, true] {
            let grads = |root: &Variable| {
                let mut ex = Executor::<f64>::new(std::slice::from_ref(root)).unwrap();
                let wrt = [&w, &b, &x];
                let mut out = Vec::new();
                for _ in 0..2 {
                    ex.forward(&[(&x, &v)], true).unwrap();
                    let g = ex.backward(&[(root, None)], &wrt).unwrap();
                    out.push(g.iter().map(|g| g.to_vec::<f64>()).collect::<Vec<_>>());
                }
                assert_eq!(out[0], out[1], "second pass");
                out.pop().unwrap()
            };
            let (a, b_) = if seed_on {
                (
                    grads(&z),
                    grads(&plus(&z, &element_times(&y, &zero).unwrap()).unwrap()),
                )
            } else {
                (grads(&single), grads(&shared))
            };
            assert_eq!(a, b_, "minus={minus} seed_on_sum={seed_on}");
        }
    }
}

fn minus_(a: &Variable, b: &Variable) -> Variable {
    minus(a, b).unwrap()
}

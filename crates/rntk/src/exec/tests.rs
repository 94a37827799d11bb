//! Unit tests of the executor's internals (the integration tests are `tests/engine/executor.rs`).

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

/// `backward_streaming` hands over each gradient once, in `gradient_order`'s order
/// (the layer nearest the loss first), equal bit for bit to `backward`'s.
#[test]
fn streaming_hands_over_each_gradient_when_final() {
    let x = input_variable_with(
        [2],
        InputOptions {
            dtype: DType::F64,
            dynamic_axes: DynamicAxes::default_sequence(),
            name: "x".into(),
            ..Default::default()
        },
    );
    let p = |shape: &[usize], name: &str| {
        let n: usize = shape.iter().product();
        let v = (0..n).map(|i| 0.1 + 0.05 * i as f64).collect();
        crate::graph::parameter_from(Tensor::from_vec(shape.to_vec(), v).unwrap(), name)
    };
    let (w1, b1, w2, b2) = (
        p(&[2, 3], "W1"),
        p(&[3], "b1"),
        p(&[3, 2], "W2"),
        p(&[2], "b2"),
    );
    let h = tanh(&plus(&times(&x, &w1).unwrap(), &b1).unwrap()).unwrap();
    let z = tanh(&plus(&times(&h, &w2).unwrap(), &b2).unwrap()).unwrap();
    let v = Value::from_sequences([2], &[vec![1.0, 2.0, 3.0, 4.0], vec![0.5, 0.25]]).unwrap();
    let wrt = [&w1, &b1, &w2, &b2];
    let mut ex = Executor::<f64>::new(std::slice::from_ref(&z)).unwrap();
    ex.forward(&[(&x, &v)], true).unwrap();
    let whole: Vec<Vec<f64>> = (ex.backward(&[(&z, None)], &wrt).unwrap().iter())
        .map(|g| g.to_vec::<f64>())
        .collect();
    let order = ex.gradient_order(&wrt).unwrap();
    // the second layer's gradients are final before the first layer's
    let at = |k: usize| order.iter().position(|&o| o == k).unwrap();
    assert!(at(2).max(at(3)) < at(0).min(at(1)), "{order:?}");
    ex.forward(&[(&x, &v)], true).unwrap();
    let mut got: Vec<(usize, Vec<f64>)> = Vec::new();
    ex.backward_streaming(&[(&z, None)], &wrt, &mut |k, t| {
        got.push((k, t.as_slice::<f64>().unwrap().to_vec()));
        Ok(())
    })
    .unwrap();
    assert_eq!(got.iter().map(|(k, _)| *k).collect::<Vec<_>>(), order);
    for (k, g) in &got {
        assert_eq!(g, &whole[*k], "gradient {k}");
    }
}

/// `AttentionModel` keeps its `attention_weights` node beside its output: a model's plan
/// has the fused attention and no weights node (nothing computed for it), a plan that
/// asks for the weights has exactly one.
#[test]
fn attention_weights_are_planned_only_when_asked_for() {
    let opts = |n: &str, axes: DynamicAxes| InputOptions {
        dtype: DType::F64,
        dynamic_axes: axes,
        name: n.into(),
        ..Default::default()
    };
    let enc = input_variable_with([4], opts("enc", DynamicAxes::default_sequence()));
    let dec_axes = DynamicAxes::Sequence(crate::graph::Axis::new("dec"));
    let dec = input_variable_with([5], opts("dec", dec_axes));
    let y = crate::layers::AttentionModel::new(3)
        .apply2(&enc, &dec)
        .unwrap();
    let weights = (y.owner().unwrap().find_by_name("attention_weights", None))
        .unwrap()
        .unwrap()
        .output()
        .unwrap();
    let count = |roots: &[Variable], want: fn(&Op) -> bool| {
        let ex = Executor::<f64>::new_inference(roots).unwrap();
        ex.plan.nodes.iter().filter(|n| want(&n.op)).count()
    };
    let is_weights: fn(&Op) -> bool = |op| matches!(op, Op::AttentionWeights);
    let is_fused: fn(&Op) -> bool = |op| matches!(op, Op::AdditiveAttention);
    assert_eq!(count(std::slice::from_ref(&y), is_weights), 0);
    assert_eq!(count(std::slice::from_ref(&y), is_fused), 1);
    assert_eq!(count(&[y.clone(), weights.clone()], is_weights), 1);
    assert_eq!(count(&[y, weights], is_fused), 1);
}

/// A training executor folds each ReLU into the batch normalization before it and
/// writes the convolutions' and normalizations' input gradients instead of zeroing and
/// adding; with those values made visible (roots, `wrt`) neither applies. Outputs and
/// every parameter gradient agree bit for bit.
#[test]
fn folded_relus_and_written_gradients_equal_the_plain_path() {
    use crate::functions::relu;
    use crate::initializer::{Initializer, RandomKind};
    use crate::layers::{Activation, BatchNormalization, Convolution, Layer};
    let x = crate::input_variable([2, 6, 6]);
    let conv = |n: usize| {
        Convolution::d2([3, 3])
            .num_filters(n)
            .pad(true)
            .bias(false)
            .init(Initializer::random(RandomKind::HeNormal, 1.0))
            .activation(Activation::Identity)
    };
    let bn = || BatchNormalization::new().map_rank(Some(1));
    let c0 = conv(4).apply(&x).unwrap();
    let b0 = bn().apply(&c0).unwrap();
    let r0 = relu(&b0).unwrap();
    let c1 = conv(3).apply(&r0).unwrap();
    let b1 = bn().apply(&c1).unwrap();
    let z = relu(&b1).unwrap();
    let params = z.owner().unwrap().parameters();
    let inner = [&c0, &b0, &r0, &c1, &b1];
    let rows = 3;
    let data: Vec<f32> = (0..rows * 72)
        .map(|i| ((i * 37 % 53) as f32 - 26.0) / 9.0)
        .collect();
    let xv = Value::batch([2, 6, 6], data).unwrap();
    let seed: Vec<f32> = (0..rows * 108)
        .map(|i| ((i * 29 % 41) as f32 - 20.0) / 7.0)
        .collect();
    let seed = Value::batch([3, 6, 6], seed).unwrap();
    let run = |visible: bool| {
        let mut roots = vec![z.clone()];
        let mut wrt: Vec<&Variable> = params.iter().collect();
        if visible {
            roots.extend(inner.iter().map(|&v| v.clone()));
            wrt.extend(inner);
        }
        let mut ex = Executor::<f32>::new(&roots).unwrap();
        let folds = ex.plan.relu_after.iter().filter(|m| m.is_some()).count();
        assert_eq!(folds, if visible { 0 } else { 2 });
        ex.forward(&[(&x, &xv)], true).unwrap();
        let out = ex.value(&z).unwrap().dense_rows::<f32>();
        let g = ex.backward(&[(&z, Some(&seed))], &wrt).unwrap();
        let bits = |v: &Value| v.dense_rows::<f32>().iter().map(|f| f.to_bits()).collect();
        let grads: Vec<Vec<u32>> = g[..params.len()].iter().map(bits).collect();
        (out.iter().map(|f| f.to_bits()).collect::<Vec<u32>>(), grads)
    };
    let (folded, plain) = (run(false), run(true));
    assert!(folded.0.contains(&0) && folded.0.iter().any(|&b| b != 0));
    assert_eq!(folded.0, plain.0, "outputs");
    assert_eq!(folded.1.len(), 6, "two filters, two scales, two biases");
    assert_eq!(folded.1, plain.1, "parameter gradients");
}

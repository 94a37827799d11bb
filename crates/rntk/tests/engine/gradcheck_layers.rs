//! f64 finite-difference gradient checks through each composite layer, on ragged
//! batches with length-1 sequences: d Σ(out·r) with respect to the inputs and every
//! parameter the layer created (its default random initialization), compared with
//! central differences (common::gradcheck).

use crate::common;

use common::*;
use rntk::functions::{less, reduce_sum, splice};
use rntk::graph::InputOptions;
use rntk::layers::*;
use rntk::{sequence, DType, DynamicAxes, Executor, Tensor, Value, Variable};
use std::sync::Arc;

const LENS: &[usize] = &[3, 1, 4, 2, 1];
const TOL: f64 = 1e-6;

fn seq_in(shape: &[usize]) -> Variable {
    sequence::input_variable_with(
        shape.to_vec(),
        InputOptions {
            dtype: DType::F64,
            needs_gradient: true,
            name: "x".into(),
            ..Default::default()
        },
    )
}

fn batch_in(shape: &[usize], name: &str) -> Variable {
    rntk::input_variable_with(
        shape.to_vec(),
        InputOptions {
            dtype: DType::F64,
            needs_gradient: true,
            dynamic_axes: DynamicAxes::Batch,
            name: name.into(),
            ..Default::default()
        },
    )
}

fn seqs(shape: &[usize]) -> Value {
    let numel: usize = shape.iter().product();
    Value::from_sequences(shape.to_vec(), &ragged(LENS, numel, 1)).unwrap()
}

/// Gradcheck `layer` applied to a ragged sequence of `shape`, w.r.t. x and its parameters.
fn check_seq(layer: &dyn Layer, shape: &[usize]) {
    let x = seq_in(shape);
    let y = layer.apply(&x).unwrap();
    let mut wrt = vec![x.clone()];
    let params = layer.parameters();
    assert!(
        !params.is_empty() || layer.name() == "noparams",
        "layer has no parameters"
    );
    wrt.extend(params);
    gradcheck(&y, &[(x, seqs(shape))], &wrt, TOL);
}

#[test]
fn lstm_every_variant() {
    for back in [false, true] {
        check_seq(&Recurrence::new(Lstm::new(3)).go_backwards(back), &[2]);
        check_seq(
            &Recurrence::new(
                Lstm::new(2)
                    .cell_shape(3)
                    .use_peepholes(true)
                    .enable_self_stabilization(true),
            )
            .go_backwards(back),
            &[2],
        );
    }
    check_seq(
        &Recurrence::new(Lstm::new(3).activation(Activation::Relu)),
        &[2],
    );
}

#[test]
fn gru_and_rnn_step() {
    for back in [false, true] {
        check_seq(
            &Recurrence::new(Gru::new(3).enable_self_stabilization(true)).go_backwards(back),
            &[2],
        );
        check_seq(&Recurrence::new(RnnStep::new(3)).go_backwards(back), &[2]);
    }
    check_seq(&Recurrence::new(Gru::new(3).cell_shape(3)), &[2]);
    check_seq(
        &Recurrence::new(RnnStep::new(2).cell_shape(3).activation(Activation::Tanh)),
        &[2],
    );
}

#[test]
fn learnable_initial_state_and_full_state() {
    let s0 = rntk::parameter_from(
        Tensor::from_vec(vec![3], vec![0.1f64, -0.2, 0.3]).unwrap(),
        "s0",
    );
    let r = Recurrence::new(Lstm::new(3))
        .go_backwards(true)
        .initial_state(InitialState::Variable(s0));
    assert_eq!(
        r.parameters().iter().filter(|p| p.name() == "s0").count(),
        1
    );
    check_seq(&r, &[2]);
    let x = seq_in(&[2]);
    let r = Recurrence::new(Lstm::new(3));
    let hc = r.apply_full(&x).unwrap();
    let y = splice(&[&hc[0], &hc[1]], -1).unwrap();
    let mut wrt = vec![x.clone()];
    wrt.extend(r.parameters());
    gradcheck(&y, &[(x, seqs(&[2]))], &wrt, TOL);
}

#[test]
fn fold_recurrence_from_stacked_and_bidirectional() {
    check_seq(&Fold::new(Gru::new(3)), &[2]);
    check_seq(&Fold::new(Lstm::new(3)).go_backwards(true), &[2]);
    let stacked = Sequential::new(vec![
        Arc::new(Recurrence::new(Lstm::new(3))),
        Arc::new(Recurrence::new(Gru::new(2)).go_backwards(true)),
        Arc::new(Dense::new(2)),
    ]);
    check_seq(&stacked, &[2]);
    let bi = Concat::new(vec![
        Arc::new(Recurrence::new(Lstm::new(2))),
        Arc::new(Recurrence::new(Lstm::new(2)).go_backwards(true)),
    ]);
    check_seq(&bi, &[2]);
    // RecurrenceFrom: the initial state is a batch input (one per sequence).
    let x = seq_in(&[2]);
    let h0 = batch_in(&[3], "h0");
    let rf = RecurrenceFrom::new(RnnStep::new(3).activation(Activation::Tanh));
    let y = rf.apply_from(std::slice::from_ref(&h0), &x).unwrap()[0].clone();
    let h0v = Value::batch(
        vec![3],
        (0..LENS.len() * 3).map(|i| 0.1 * i as f64 - 0.5).collect(),
    )
    .unwrap();
    gradcheck(
        &y,
        &[(x.clone(), seqs(&[2])), (h0.clone(), h0v)],
        &[x, h0],
        TOL,
    );
}

#[test]
fn dense_embedding_stabilizer_and_compositions() {
    for act in [
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Softplus,
        Activation::Softmax,
        Activation::Elu,
    ] {
        check_seq(&Dense::new(3).activation(act), &[2]);
    }
    check_seq(&Dense::new(3).map_rank(1), &[2, 3, 2]);
    check_seq(&Dense::new([2, 2]).input_rank(2), &[2, 3, 2]);
    check_seq(&Embedding::new(3), &[4]);
    check_seq(&Stabilizer::new(), &[3]);
    check_seq(
        &ResNetBlock(Arc::new(Dense::new(3).activation(Activation::Tanh))),
        &[3],
    );
    check_seq(
        &For::new(0..2, |_| {
            Arc::new(Dense::new(3).activation(Activation::Tanh)) as LayerRef
        }),
        &[3],
    );
    check_seq(&LayerNormalization::new(), &[4]);
    check_seq(&LayerNormalization::new().epsilon(0.0), &[2, 3]);
    // No parameters: gradient w.r.t. the input only.
    for l in [
        Box::new(Delay::new(1).initial_state(0.5)) as Box<dyn Layer>,
        Box::new(Delay::new(-2)),
        Box::new(Activation::Tanh),
    ] {
        let x = seq_in(&[2]);
        let y = l.apply(&x).unwrap();
        gradcheck(&y, &[(x.clone(), seqs(&[2]))], &[x], TOL);
    }
}

#[test]
fn unfold_from_with_length_increase_and_predicate() {
    for (li, until) in [(1.0, false), (1.5, true), (2.0, false)] {
        let x = seq_in(&[2]);
        let s = batch_in(&[3], "s");
        let d = Arc::new(Dense::new(3).activation(Activation::Tanh));
        let mut u = UnfoldFrom::from_layer(d.clone()).length_increase(li);
        if until {
            u = u.until_predicate(Arc::new(|y: &Variable| {
                less(
                    &reduce_sum(y, None, true)?,
                    &rntk::graph::scalar(0.0, DType::F64),
                )
            }));
        }
        let y = u.apply_from(&s, &x).unwrap();
        let sv = Value::batch(
            vec![3],
            (0..LENS.len() * 3).map(|i| 0.3 - 0.07 * i as f64).collect(),
        )
        .unwrap();
        let mut wrt = vec![s.clone()];
        wrt.extend(d.parameters());
        gradcheck(&y, &[(x, seqs(&[2])), (s, sv)], &wrt, TOL);
    }
}

/// Batch normalization in inference mode (running estimates fixed) through the usual
/// gradcheck, and in training mode (minibatch statistics depend on every sample) with
/// central differences of training forwards.
#[test]
fn batch_normalization_both_modes() {
    for spatial in [false, true] {
        let shape: &[usize] = if spatial { &[2, 3] } else { &[3] };
        let x = seq_in(shape);
        let bn = BatchNormalization::new().map_rank(if spatial { Some(1) } else { None });
        let y = bn.apply(&x).unwrap();
        let xv = seqs(shape);
        // Give the estimates and the affine parameters non-trivial values.
        let c = if spatial { 2 } else { 3 };
        let set = |v: &Variable, f: &dyn Fn(usize) -> f64| {
            v.set_value(Tensor::from_vec(vec![c], (0..c).map(f).collect()).unwrap())
                .unwrap()
        };
        set(&bn.aggregate_mean().unwrap(), &|i| 0.1 * i as f64 - 0.05);
        set(&bn.aggregate_variance().unwrap(), &|i| 0.5 + 0.3 * i as f64);
        set(&bn.scale().unwrap(), &|i| 1.0 + 0.25 * i as f64);
        set(&bn.bias().unwrap(), &|i| 0.2 - 0.1 * i as f64);
        let mut wrt = vec![x.clone()];
        wrt.extend(bn.parameters());
        gradcheck(&y, &[(x.clone(), xv.clone())], &wrt, TOL);

        // Training mode.
        let mut ex = Executor::<f64>::new(std::slice::from_ref(&y)).unwrap();
        let loss = |ex: &mut Executor<f64>, xv: &Value, r: &Value| -> f64 {
            ex.forward(&[(&x, xv)], true).unwrap();
            let out = ex.value(&y).unwrap().dense_rows::<f64>();
            out.iter()
                .zip(r.dense_rows::<f64>())
                .map(|(a, b)| a * b)
                .sum()
        };
        ex.forward(&[(&x, &xv)], true).unwrap();
        let r = seed_like(&ex.value(&y).unwrap());
        let g = ex.backward(&[(&y, Some(&r))], &[&x]).unwrap()[0].dense_rows::<f64>();
        let base = xv.dense_rows::<f64>();
        let h = 1e-6;
        for e in 0..base.len() {
            let mut p = base.clone();
            p[e] += h;
            let lp = loss(
                &mut ex,
                &Value::from_rows(xv.shape().clone(), xv.layout().clone(), p.clone()).unwrap(),
                &r,
            );
            p[e] -= 2.0 * h;
            let lm = loss(
                &mut ex,
                &Value::from_rows(xv.shape().clone(), xv.layout().clone(), p).unwrap(),
                &r,
            );
            let num = (lp - lm) / (2.0 * h);
            assert!(
                (num - g[e]).abs() <= TOL * (1.0 + num.abs()),
                "training d/dx[{e}]: {} vs {num}",
                g[e]
            );
        }

        // All three gradients come from one pass of sums per backward pass: the bias
        // gradient is Σ dy per statistic, and a second pass with a doubled seed (no
        // forward between) doubles them (nothing of the first pass is reused).
        ex.forward(&[(&x, &xv)], true).unwrap();
        let (sv, bv) = (bn.scale().unwrap(), bn.bias().unwrap());
        let wrt = [&x, &sv, &bv];
        let g1 = ex.backward(&[(&y, Some(&r))], &wrt).unwrap();
        let rr = r.dense_rows::<f64>();
        let inner = shape.iter().product::<usize>() / c;
        let mut sum_dy = vec![0.0; c];
        for (e, v) in rr.iter().enumerate() {
            sum_dy[e % (c * inner) / inner] += v;
        }
        for (j, (got, want)) in g1[2].dense_rows::<f64>().iter().zip(&sum_dy).enumerate() {
            assert!(
                (got - want).abs() <= 1e-12,
                "bias gradient [{j}]: {got} vs {want}"
            );
        }
        let doubled: Vec<f64> = rr.iter().map(|v| 2.0 * v).collect();
        let r2 = Value::from_rows(r.shape().clone(), r.layout().clone(), doubled).unwrap();
        // (only scale and bias: their first call of the pass must not take the old sums)
        let g2 = ex.backward(&[(&y, Some(&r2))], &[&sv, &bv]).unwrap();
        for (k, (a, b)) in g1[1..].iter().zip(&g2).enumerate() {
            for (u, v) in a.dense_rows::<f64>().iter().zip(b.dense_rows::<f64>()) {
                assert!(
                    (2.0 * u - v).abs() <= 1e-12 * (1.0 + v.abs()),
                    "second pass, gradient {k}: {u} vs {v}"
                );
            }
        }
    }
}

//! The fused additive attention op (`functions::additive_attention`, the core of
//! `layers::AttentionModel`): f64 finite-difference checks of all four operands with
//! the query on its own sequence axis (a decoder over an encoder), ragged lengths that
//! differ between the two axes; the same values and gradients as the plain
//! composition `broadcast_as → tanh → times → sequence.softmax → reduce_sum` where that
//! composition can be written (one query step per batch item); f32 against f64; the
//! layer's parameters (CNTK's names, shapes and order) and refusals.
//! CNTK 2.7's own numbers for the layer are checked from Python
//! (crates/rntk-py/tests/test_attention.py).

use crate::common;

use common::*;
use rntk::functions::{additive_attention, element_times, plus, reduce_all, tanh, times};
use rntk::layers::AttentionModel;
use rntk::ops::ReduceOp;
use rntk::sequence;
use rntk::{Axis, DType, DynamicAxes, Executor, Tensor, Value, Variable};

const ENC: &[usize] = &[3, 1, 5, 2];
const DEC: &[usize] = &[2, 4, 1, 3];
const TOL: f64 = 1e-6;

fn dec_axes() -> DynamicAxes {
    DynamicAxes::Sequence(Axis::new("decoderAxis"))
}

use common::{det_param as param, ragged_seqs as seqs};

/// q (decoder axis, A=3), k (encoder axis, A=3), v (encoder axis, H=2), w param.
fn operands(w_shape: &[usize]) -> (Variable, Variable, Variable, Variable) {
    let q = f64_input(&[3], "q", dec_axes());
    let k = f64_input(&[3], "k", DynamicAxes::default_sequence());
    let v = f64_input(&[2], "v", DynamicAxes::default_sequence());
    (q, k, v, param(w_shape, 4, "w"))
}

#[test]
fn gradients_of_every_operand_by_finite_differences() {
    for w_shape in [&[3usize][..], &[3, 1]] {
        let (q, k, v, w) = operands(w_shape);
        let y = additive_attention(&q, &k, &v, &w).unwrap();
        assert_eq!(y.shape().dims(), &[2]);
        assert_eq!(y.dynamic_axes(), q.dynamic_axes());
        let feeds = vec![
            (q.clone(), seqs(&[3], DEC, 1)),
            (k.clone(), seqs(&[3], ENC, 2)),
            (v.clone(), seqs(&[2], ENC, 3)),
        ];
        gradcheck(&y, &feeds, &[q, k, v, w], TOL);
    }
}

#[test]
fn same_axis_self_attention_gradients() {
    let x = f64_input(&[3], "x", DynamicAxes::default_sequence());
    let w = param(&[3], 5, "w");
    let y = additive_attention(&x, &x, &x, &w).unwrap();
    gradcheck(&y, &[(x.clone(), seqs(&[3], ENC, 6))], &[x, w], TOL);
}

/// The plain composition for one query step per batch item: the query broadcast over
/// the keys' steps, scores, a softmax along the keys' sequence, the weighted sum.
fn composed(qb: &Variable, k: &Variable, v: &Variable, w: &Variable) -> Variable {
    let t = tanh(&plus(&sequence::broadcast_as(qb, k).unwrap(), k).unwrap()).unwrap();
    let u = times(&t, w).unwrap(); // (1,) per step
    let alpha = sequence::softmax(&u).unwrap();
    sequence::reduce_sum(&element_times(&alpha, v).unwrap()).unwrap()
}

#[test]
fn equals_the_plain_composition_values_and_gradients() {
    let (q, k, v, w) = operands(&[3, 1]);
    let ones = vec![1; ENC.len()];
    let feeds_v = [
        (q.clone(), seqs(&[3], &ones, 1)),
        (k.clone(), seqs(&[3], ENC, 2)),
        (v.clone(), seqs(&[2], ENC, 3)),
    ];
    let feeds: Vec<(&Variable, &Value)> = feeds_v.iter().map(|(a, b)| (a, b)).collect();
    let fused = additive_attention(&q, &k, &v, &w).unwrap();
    let plain = composed(&sequence::first(&q).unwrap(), &k, &v, &w);
    let run = |y: &Variable| {
        let root = reduce_all(ReduceOp::Sum, y).unwrap();
        let mut ex = Executor::<f64>::new(&[y.clone(), root.clone()]).unwrap();
        ex.forward(&feeds, false).unwrap();
        let val = ex.value(y).unwrap().to_vec::<f64>();
        let g = ex.backward(&[(&root, None)], &[&q, &k, &v, &w]).unwrap();
        (val, g.iter().map(|g| g.to_vec::<f64>()).collect::<Vec<_>>())
    };
    let (yf, gf) = run(&fused);
    let (yp, gp) = run(&plain);
    assert_close("values", &yf, &yp, 1e-12, 1e-14);
    for (i, (a, b)) in gf.iter().zip(&gp).enumerate() {
        assert_close(&format!("gradient {i}"), a, b, 1e-12, 1e-14);
    }
}

#[test]
fn f32_follows_f64() {
    let mk = |dt: DType| {
        let o = |n: &str, d: usize, axes: DynamicAxes| {
            rntk::input_variable_with(
                vec![d],
                rntk::InputOptions {
                    dtype: dt,
                    dynamic_axes: axes,
                    name: n.into(),
                    ..Default::default()
                },
            )
        };
        let q = o("q", 3, dec_axes());
        let k = o("k", 3, DynamicAxes::default_sequence());
        let v = o("v", 2, DynamicAxes::default_sequence());
        let wv: Vec<f64> = vec![0.3, -0.7, 0.5];
        let w = match dt {
            DType::F32 => rntk::constant(
                Tensor::from_vec(vec![3], wv.iter().map(|&x| x as f32).collect()).unwrap(),
                "w",
            ),
            _ => rntk::constant(Tensor::from_vec(vec![3], wv).unwrap(), "w"),
        };
        (additive_attention(&q, &k, &v, &w).unwrap(), q, k, v)
    };
    let (y64, q, k, v) = mk(DType::F64);
    let mut ex = Executor::<f64>::new(std::slice::from_ref(&y64)).unwrap();
    let (qv, kv, vv) = (seqs(&[3], DEC, 1), seqs(&[3], ENC, 2), seqs(&[2], ENC, 3));
    ex.forward(&[(&q, &qv), (&k, &kv), (&v, &vv)], false)
        .unwrap();
    let want = ex.value(&y64).unwrap().to_vec::<f64>();
    let (y32, q, k, v) = mk(DType::F32);
    let to32 = |x: &Value| {
        let s: Vec<Vec<f32>> = x
            .to_sequences::<f64>()
            .iter()
            .map(|s| s.iter().map(|&v| v as f32).collect())
            .collect();
        Value::from_sequences(x.shape().clone(), &s).unwrap()
    };
    let mut ex = Executor::<f32>::new(std::slice::from_ref(&y32)).unwrap();
    let (qv, kv, vv) = (to32(&qv), to32(&kv), to32(&vv));
    ex.forward(&[(&q, &qv), (&k, &kv), (&v, &vv)], false)
        .unwrap();
    let got = ex.value(&y32).unwrap().to_vec::<f64>();
    assert_close("f32", &got, &want, 1e-5, 1e-6);
}

#[test]
fn batch_items_must_pair_up() {
    let (q, k, v, w) = operands(&[3]);
    let y = additive_attention(&q, &k, &v, &w).unwrap();
    let mut ex = Executor::<f64>::new(std::slice::from_ref(&y)).unwrap();
    let (qv, kv, vv) = (
        seqs(&[3], &[2, 1], 1),
        seqs(&[3], ENC, 2),
        seqs(&[2], ENC, 3),
    );
    let e = ex
        .forward(&[(&q, &qv), (&k, &kv), (&v, &vv)], false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("2 sequences") && e.contains("4"), "{e}");
}

#[test]
fn shape_and_axis_errors_at_build_time() {
    let (q, k, v, w) = operands(&[3]);
    let e = additive_attention(&q, &k, &v, &param(&[4], 1, "w4")).unwrap_err();
    assert!(e.to_string().contains("(A,)"), "{e}");
    let kb = f64_input(&[3], "kb", DynamicAxes::Batch);
    let e = additive_attention(&q, &kb, &v, &w).unwrap_err();
    assert!(e.to_string().contains("the keys must be a sequence"), "{e}");
    let vd = f64_input(&[2], "vd", dec_axes());
    let e = additive_attention(&q, &k, &vd, &w).unwrap_err();
    assert!(e.to_string().contains("share a sequence axis"), "{e}");
}

#[test]
fn layer_has_cntks_parameters_in_cntks_order() {
    let enc = f64_input(&[3], "enc", DynamicAxes::default_sequence());
    let dec = f64_input(&[4], "dec", dec_axes());
    let att = AttentionModel::new(5).name("attention_model");
    let y = att.apply2(&enc, &dec).unwrap();
    assert_eq!(y.shape().dims(), &[3]);
    assert_eq!(y.dynamic_axes(), dec.dynamic_axes());
    let ps: Vec<(String, Vec<usize>)> = att
        .parameters()
        .iter()
        .map(|p| (p.name(), p.shape().dims().to_vec()))
        .collect();
    let want: Vec<(String, Vec<usize>)> = [
        ("alpha", vec![]),
        ("W", vec![3, 5]),
        ("alpha", vec![]),
        ("W", vec![4, 5]),
        ("alpha", vec![]),
        ("W", vec![5, 1]),
        ("alpha", vec![]),
    ]
    .into_iter()
    .map(|(n, s)| (n.to_string(), s))
    .collect();
    assert_eq!(ps, want);
    // applied again: the same parameters, shared
    let y2 = att.apply2(&enc, &dec).unwrap();
    assert_eq!(att.parameters().len(), 7);
    assert_eq!(y2.shape().dims(), &[3]);
    let plain = AttentionModel::new(5).enable_self_stabilization(false);
    plain.apply2(&enc, &dec).unwrap();
    assert_eq!(plain.parameters().len(), 3);
    // a gradient check through the whole layer (stabilizers and projections)
    let feeds = vec![
        (enc.clone(), seqs(&[3], ENC, 1)),
        (dec.clone(), seqs(&[4], DEC, 2)),
    ];
    let mut wrt = vec![enc, dec];
    wrt.extend(att.parameters());
    gradcheck(&y, &feeds, &wrt, TOL);
}

#[test]
fn layer_refuses_non_vector_states() {
    let enc = f64_input(&[3, 2], "enc", DynamicAxes::default_sequence());
    let dec = f64_input(&[4], "dec", dec_axes());
    let e = AttentionModel::new(5).apply2(&enc, &dec).unwrap_err();
    assert!(e.to_string().contains("vector per step"), "{e}");
}

// ---------------------------------------------------------------- inside a recurrent loop
// CNTK tutorial 204's decoder: the query is the recurrence's previous state, the keys
// and values the whole encoder sequence of the same batch item (computed outside the
// loop). Here: enc (encoder axis, 2) → keys enc·Wk (3), values enc; a decoder input x
// (decoder axis, 3); the step
//     q_t = h_{t−1} + x_t,  a_t = attention(q_t; keys, values),  h_t = tanh([a_t, x_t]·Wh)

struct Loop {
    h: Variable,
    q: Variable,
    a: Variable,
    x: Variable,
    enc: Variable,
    wk: Variable,
    wh: Variable,
    w: Variable,
}

fn decoder_loop(backwards: bool) -> Loop {
    let axes = dec_axes();
    let x = f64_input(&[3], "x", axes.clone());
    let enc = f64_input(&[2], "enc", DynamicAxes::default_sequence());
    let wk = param(&[2, 3], 6, "Wk");
    let wh = param(&[5, 3], 7, "Wh");
    let w = param(&[3, 1], 8, "w");
    let keys = times(&enc, &wk).unwrap();
    let ph = rntk::placeholder([3], DType::F64, axes, "h").unwrap();
    let init = rntk::scalar(0.1, DType::F64);
    let prev = if backwards {
        sequence::future_value(&ph, &init, 1).unwrap()
    } else {
        sequence::past_value(&ph, &init, 1).unwrap()
    };
    let q = plus(&prev, &x).unwrap();
    let a = additive_attention(&q, &keys, &enc, &w).unwrap();
    let h = tanh(&times(&rntk::functions::splice(&[&a, &x], -1).unwrap(), &wh).unwrap()).unwrap();
    h.owner()
        .unwrap()
        .replace_placeholders(&[(ph, h.clone())])
        .unwrap();
    Loop {
        h,
        q,
        a,
        x,
        enc,
        wk,
        wh,
        w,
    }
}

#[test]
fn inside_a_recurrent_loop_gradients_by_finite_differences() {
    for backwards in [false, true] {
        let l = decoder_loop(backwards);
        let feeds = vec![
            (l.x.clone(), seqs(&[3], DEC, 1)),
            (l.enc.clone(), seqs(&[2], ENC, 2)),
        ];
        gradcheck(&l.h, &feeds, &[l.x, l.enc, l.wk, l.wh, l.w], TOL);
    }
}

/// The loop's attention, step by step, equals the whole-sequence op applied
/// afterwards to the queries the loop computed.
#[test]
fn inside_a_loop_equals_the_whole_sequence_op_on_the_same_queries() {
    let l = decoder_loop(false);
    let (xv, ev) = (seqs(&[3], DEC, 1), seqs(&[2], ENC, 2));
    let mut ex = Executor::<f64>::new(&[l.h.clone(), l.q.clone(), l.a.clone()]).unwrap();
    ex.forward(&[(&l.x, &xv), (&l.enc, &ev)], false).unwrap();
    let qv = ex.value(&l.q).unwrap();
    let in_loop = ex.value(&l.a).unwrap().to_vec::<f64>();
    let q = f64_input(&[3], "q", dec_axes());
    let keys = times(&l.enc, &l.wk).unwrap();
    let y = additive_attention(&q, &keys, &l.enc, &l.w).unwrap();
    let mut whole = Executor::<f64>::new(std::slice::from_ref(&y)).unwrap();
    whole.forward(&[(&q, &qv), (&l.enc, &ev)], false).unwrap();
    let want = whole.value(&y).unwrap().to_vec::<f64>();
    assert_eq!(in_loop.len(), DEC.iter().sum::<usize>() * 2);
    assert_close("attention in the loop", &in_loop, &want, 0.0, 0.0);
}

#[test]
fn keys_that_depend_on_the_loop_state_are_refused() {
    let axes = dec_axes();
    let x = f64_input(&[3], "x", axes.clone());
    let w = param(&[3], 8, "w");
    let ph = rntk::placeholder([3], DType::F64, axes, "h").unwrap();
    let prev = sequence::past_value(&ph, &rntk::scalar(0.0, DType::F64), 1).unwrap();
    let q = plus(&prev, &x).unwrap();
    // keys and values are the loop's own state: self-attention over a state sequence
    let a = additive_attention(&q, &prev, &prev, &w).unwrap();
    let h = tanh(&plus(&a, &x).unwrap()).unwrap();
    h.owner()
        .unwrap()
        .replace_placeholders(&[(ph, h.clone())])
        .unwrap();
    let e = Executor::<f64>::new(std::slice::from_ref(&h))
        .err()
        .expect("refused")
        .to_string();
    assert!(
        e.contains("AdditiveAttention") && e.contains("computed outside the loop"),
        "{e}"
    );
}

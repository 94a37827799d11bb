//! The attention weights as a value (`functions::attention_weights`, CNTK's
//! `Label('attention_weights')` inside `AttentionModel`, which tutorial 204 plots): the
//! plain composition's softmax where that can be written; zero-padded to the longest
//! key sequence; the same weights as the fused op's (they weigh its output); found by
//! name in the layer's block, outside and inside a recurrent loop, and inside a block
//! whose operand is another block's argument (a node found by name evaluates as it does
//! within the whole graph); kept by save/load and clone. CNTK 2.7's own numbers are
//! checked from Python (crates/rntk-py/tests/test_tutorials_lstm.py, tutorial 204).

mod common;

use common::*;
use rntk::functions::{
    additive_attention, attention_weights, element_times, plus, splice, tanh, times,
};
use rntk::layers::AttentionModel;
use rntk::sequence;
use rntk::{Axis, CloneMethod, DType, DynamicAxes, Function, Value, Variable};

const ENC: &[usize] = &[3, 1, 5, 2];
const DEC: &[usize] = &[2, 4, 1, 3];

fn dec_axes() -> DynamicAxes {
    DynamicAxes::Sequence(Axis::new("decoderAxis"))
}

use common::{det_param as param, ragged_seqs as seqs};

fn eval(outs: &[Variable], feeds: &[(&Variable, &Value)]) -> Vec<Value> {
    Function::combine(outs, "").unwrap().eval(feeds).unwrap()
}

/// Each sequence's rows of `v` (sample shape `(m, 1)`): `per_seq[s][t]` = row of step t.
fn rows_of(v: &Value) -> Vec<Vec<Vec<f64>>> {
    let m = v.shape().numel();
    v.to_sequences::<f64>()
        .into_iter()
        .map(|s| s.chunks(m).map(|r| r.to_vec()).collect())
        .collect()
}

#[test]
fn weights_are_the_plain_softmax_zero_padded_to_the_longest_key_sequence() {
    let q = f64_input(&[3], "q", dec_axes());
    let k = f64_input(&[3], "k", DynamicAxes::default_sequence());
    let v = f64_input(&[2], "v", DynamicAxes::default_sequence());
    let w = param(&[3, 1], 4, "w");
    let a = attention_weights(&q, &k, &v, &w).unwrap();
    assert_eq!(a.shape().dims(), &[rntk::tensor::INFERRED, 1]);
    assert_eq!(a.dynamic_axes(), q.dynamic_axes());
    assert_eq!(a.name(), "attention_weights");
    // one query step per item: the plain composition's sequence softmax over the keys
    let ones = vec![1; ENC.len()];
    let (qv, kv, vv) = (seqs(&[3], &ones, 1), seqs(&[3], ENC, 2), seqs(&[2], ENC, 3));
    let feeds = [(&q, &qv), (&k, &kv), (&v, &vv)];
    let got = eval(std::slice::from_ref(&a), &feeds).remove(0);
    let kmax = *ENC.iter().max().unwrap();
    assert_eq!(got.shape().dims(), &[kmax, 1]);
    let t = tanh(
        &plus(
            &sequence::broadcast_as(&sequence::first(&q).unwrap(), &k).unwrap(),
            &k,
        )
        .unwrap(),
    )
    .unwrap();
    let alpha = sequence::softmax(&times(&t, &w).unwrap()).unwrap();
    let plain = eval(&[alpha], &feeds[..2]).remove(0).to_sequences::<f64>();
    for (s, rows) in rows_of(&got).iter().enumerate() {
        assert_eq!(rows.len(), 1);
        let (real, pad) = rows[0].split_at(ENC[s]);
        assert_close(&format!("item {s}"), real, &plain[s], 1e-12, 1e-14);
        assert!(pad.iter().all(|&x| x == 0.0), "item {s}: padding {pad:?}");
    }
}

#[test]
fn weights_weigh_the_fused_ops_output() {
    let q = f64_input(&[3], "q", dec_axes());
    let k = f64_input(&[3], "k", DynamicAxes::default_sequence());
    let v = f64_input(&[2], "v", DynamicAxes::default_sequence());
    let w = param(&[3], 5, "w");
    let y = additive_attention(&q, &k, &v, &w).unwrap();
    let a = attention_weights(&q, &k, &v, &w).unwrap();
    let (qv, kv, vv) = (seqs(&[3], DEC, 1), seqs(&[3], ENC, 2), seqs(&[2], ENC, 3));
    let outs = eval(&[y, a], &[(&q, &qv), (&k, &kv), (&v, &vv)]);
    let (ys, weights, values) = (
        outs[0].to_sequences::<f64>(),
        rows_of(&outs[1]),
        vv.to_sequences::<f64>(),
    );
    for s in 0..DEC.len() {
        assert_eq!(weights[s].len(), DEC[s]);
        for (i, alpha) in weights[s].iter().enumerate() {
            let sum: f64 = alpha.iter().sum();
            assert!((sum - 1.0).abs() < 1e-12, "item {s} step {i}: Σα = {sum}");
            let want: Vec<f64> = (0..2)
                .map(|h| (0..ENC[s]).map(|j| alpha[j] * values[s][j * 2 + h]).sum())
                .collect();
            assert_close("Σ α v", &ys[s][i * 2..i * 2 + 2], &want, 1e-12, 1e-14);
        }
    }
}

/// `AttentionModel(3)` on whole sequences: its weights found by name.
#[test]
fn the_layers_weights_are_found_by_name_and_evaluate_alone_or_with_the_model() {
    let enc = f64_input(&[4], "enc", DynamicAxes::default_sequence());
    let dec = f64_input(&[5], "dec", dec_axes());
    let att = AttentionModel::new(3).name("attention_model");
    let y = att.apply2(&enc, &dec).unwrap();
    let model = y.owner().unwrap();
    let found = model
        .find_by_name("attention_weights", None)
        .unwrap()
        .expect("found");
    assert_eq!(found.op_name(), "AttentionWeights");
    let a = found.output().unwrap();
    // its arguments are the block's operands, not the body's placeholders
    let mut args = Function::combine(std::slice::from_ref(&a), "")
        .unwrap()
        .arguments();
    args.sort_by_key(|v| v.name());
    assert_eq!(args, vec![dec.clone(), enc.clone()]);
    let (ev, dv) = (seqs(&[4], ENC, 1), seqs(&[5], DEC, 2));
    let feeds = [(&enc, &ev), (&dec, &dv)];
    let both = eval(&[y.clone(), a.clone()], &feeds);
    let alone = eval(std::slice::from_ref(&a), &feeds);
    assert_eq!(both[1].to_vec::<f64>(), alone[0].to_vec::<f64>());
    assert_eq!(both[1].shape().dims(), &[5, 1]);
    assert_eq!(both[1].num_samples(), DEC.iter().sum::<usize>());
    // the model alone is unchanged by the weights node beside it
    assert_eq!(
        eval(std::slice::from_ref(&y), &feeds)[0].to_vec::<f64>(),
        both[0].to_vec::<f64>()
    );
    // kept by clone (its own operands) and by save / load
    let x2 = f64_input(&[5], "dec2", dec.dynamic_axes());
    let c = model
        .clone_with(CloneMethod::Share, &[(dec.clone(), x2.clone())])
        .unwrap();
    let ca = c
        .find_by_name("attention_weights", None)
        .unwrap()
        .expect("in the clone");
    let got = eval(&[ca.output().unwrap()], &[(&enc, &ev), (&x2, &dv)]);
    assert_eq!(got[0].to_vec::<f64>(), alone[0].to_vec::<f64>());
    let path = std::env::temp_dir().join(format!("rntk-attw-{}.rntk", std::process::id()));
    model.save(&path).unwrap();
    let loaded = Function::load(&path).unwrap();
    std::fs::remove_file(&path).ok();
    let la = loaded
        .find_by_name("attention_weights", None)
        .unwrap()
        .expect("after load");
    let args = loaded.arguments();
    let (le, ld) = (
        args.iter().find(|v| v.name() == "enc").unwrap(),
        args.iter().find(|v| v.name() == "dec").unwrap(),
    );
    let got = eval(&[la.output().unwrap()], &[(le, &ev), (ld, &dv)]);
    assert_eq!(got[0].to_vec::<f64>(), alone[0].to_vec::<f64>());
    assert_eq!(loaded.outputs().len(), 1);
}

// ---------------------------------------------------------------- inside a recurrent loop
// The decoder of tutorial 204 in small, built inside a block "Decoder" over its input
// (so the attention's query is computed from another block's argument, as a Python step
// function's state is):  q_t = h_{t−1} + x_t,  a_t = AttentionModel(enc, q_t),
// h_t = tanh([a_t, x_t]·Wh).

struct Decoder {
    out: Variable,
    x: Variable,
    enc: Variable,
    att: AttentionModel,
}

fn decoder() -> Decoder {
    let axes = dec_axes();
    let x = f64_input(&[4], "x", axes.clone());
    let enc = f64_input(&[4], "enc", DynamicAxes::default_sequence());
    let wh = param(&[8, 4], 7, "Wh");
    let att = AttentionModel::new(3).name("attention_model");
    let xa = rntk::placeholder([4], DType::F64, axes.clone(), "xa").unwrap();
    let ea = rntk::placeholder([4], DType::F64, DynamicAxes::default_sequence(), "ea").unwrap();
    let ph = rntk::placeholder([4], DType::F64, axes, "h").unwrap();
    let prev = sequence::past_value(&ph, &rntk::scalar(0.1, DType::F64), 1).unwrap();
    let q = plus(&prev, &xa).unwrap();
    let a = att.apply2(&ea, &q).unwrap();
    let h = tanh(&times(&splice(&[&a, &xa], -1).unwrap(), &wh).unwrap()).unwrap();
    h.owner()
        .unwrap()
        .replace_placeholders(&[(ph, h.clone())])
        .unwrap();
    let body = Function::combine(
        &[element_times(&h, &rntk::scalar(1.0, DType::F64)).unwrap()],
        "",
    )
    .unwrap();
    let block = Function::block(
        &body,
        &[(xa, x.clone()), (ea, enc.clone())],
        "Decoder",
        "decoder",
    )
    .unwrap();
    Decoder {
        out: block.output().unwrap(),
        x,
        enc,
        att,
    }
}

#[test]
fn inside_a_loop_the_weights_and_the_layer_found_by_name_evaluate_as_in_the_graph() {
    let d = decoder();
    let (xv, ev) = (seqs(&[4], DEC, 1), seqs(&[4], ENC, 2));
    let feeds = [(&d.x, &xv), (&d.enc, &ev)];
    let model = d.out.owner().unwrap();
    // the attention block, found inside the decoder's block: its decoder operand is
    // computed from the Decoder block's argument (was: "placeholder xa was never replaced")
    let block = model
        .find_by_name("attention_model", None)
        .unwrap()
        .expect("block");
    assert!(block.is_block());
    let weights = model
        .find_by_name("attention_weights", None)
        .unwrap()
        .expect("weights");
    let (bo, wo) = (block.output().unwrap(), weights.output().unwrap());
    let mut args = Function::combine(&[bo.clone(), wo.clone()], "")
        .unwrap()
        .arguments();
    args.sort_by_key(|v| v.name());
    assert_eq!(args, vec![d.enc.clone(), d.x.clone()]);
    let outs = eval(&[d.out.clone(), bo.clone(), wo.clone()], &feeds);
    assert_eq!(
        eval(std::slice::from_ref(&d.out), &feeds)[0].to_vec::<f64>(),
        outs[0].to_vec::<f64>()
    );
    assert_eq!(
        eval(std::slice::from_ref(&bo), &feeds)[0].to_vec::<f64>(),
        outs[1].to_vec::<f64>()
    );
    assert_eq!(
        eval(std::slice::from_ref(&wo), &feeds)[0].to_vec::<f64>(),
        outs[2].to_vec::<f64>()
    );
    // the same layer (shared parameters) applied outside any loop to the queries the loop
    // computed gives the same attention and weights, bit for bit
    let q_in_loop = block.inputs()[1].clone();
    let qv = eval(std::slice::from_ref(&q_in_loop), &feeds).remove(0);
    let qx = f64_input(&[4], "q", dec_axes());
    let y2 = d.att.apply2(&d.enc, &qx).unwrap();
    let w2 = y2
        .owner()
        .unwrap()
        .find_by_name("attention_weights", None)
        .unwrap()
        .unwrap();
    let whole = eval(&[y2, w2.output().unwrap()], &[(&qx, &qv), (&d.enc, &ev)]);
    assert_eq!(whole[0].to_vec::<f64>(), outs[1].to_vec::<f64>());
    assert_eq!(whole[1].to_vec::<f64>(), outs[2].to_vec::<f64>());
    let rows = rows_of(&outs[2]);
    for (s, r) in rows.iter().enumerate() {
        assert_eq!(r.len(), DEC[s]);
        for alpha in r {
            assert_eq!(alpha.len(), *ENC.iter().max().unwrap());
            assert!(alpha[ENC[s]..].iter().all(|&x| x == 0.0));
            assert!((alpha.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
    }
}

#[test]
fn a_free_dimension_cannot_be_computed_with() {
    let q = f64_input(&[3], "q", dec_axes());
    let k = f64_input(&[3], "k", DynamicAxes::default_sequence());
    let w = param(&[3], 5, "w");
    let a = attention_weights(&q, &k, &k, &w).unwrap();
    let e = tanh(&a).unwrap_err().to_string();
    assert!(e.contains("free dimension"), "{e}");
}

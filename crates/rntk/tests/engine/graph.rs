//! The symbolic graph: introspection, placeholders, cloning, blocks, inferred
//! dimensions and sparse inputs.

use crate::common;

use rntk::functions::*;
use rntk::graph::{input_variable_with, InputOptions};
use rntk::initializer::Initializer;
use rntk::tensor::INFERRED;
use rntk::{
    constant, parameter, placeholder, sequence, CloneMethod, DType, DynamicAxes, Error, Executor,
    Function, Tensor, Value, VarKind, Variable,
};

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

fn param(shape: [usize; 2], name: &str, k: usize) -> Variable {
    let n = shape[0] * shape[1];
    let d: Vec<f64> = (0..n)
        .map(|i| (((7 * i + k) % 11) as f64 - 5.0) / 10.0)
        .collect();
    rntk::parameter_from(Tensor::from_vec(shape, d).unwrap(), name)
}

/// h = tanh(x·W + past_value(h)·H)
fn rnn(x: &Variable, w: &Variable, h: &Variable) -> Variable {
    let ph = placeholder([3], DType::F64, x.dynamic_axes(), "h_prev").unwrap();
    let prev = sequence::past_value_scalar(&ph, 0.0, 1).unwrap();
    let y = tanh(&plus(&times(x, w).unwrap(), &times(&prev, h).unwrap()).unwrap()).unwrap();
    y.owner()
        .unwrap()
        .replace_placeholders(&[(ph, y.clone())])
        .unwrap();
    y
}

fn eval(f: &Variable, feeds: &[(&Variable, &Value)]) -> Vec<f64> {
    let mut ex = Executor::<f64>::new(std::slice::from_ref(f)).unwrap();
    ex.forward(feeds, false).unwrap();
    ex.value(f).unwrap().to_vec::<f64>()
}

#[test]
fn introspection_finds_parameters_arguments_and_outputs() {
    let x = seq_input(2, "x");
    let (w, h) = (param([2, 3], "W", 1), param([3, 3], "H", 2));
    let y = rnn(&x, &w, &h);
    let f = y.owner().unwrap();
    let ps: Vec<String> = f.parameters().iter().map(|p| p.name()).collect();
    assert_eq!(ps.len(), 2);
    assert!(ps.contains(&"W".to_string()) && ps.contains(&"H".to_string()));
    assert_eq!(f.arguments(), vec![x.clone()]);
    assert!(f.placeholders().is_empty());
    assert_eq!(f.outputs(), vec![y.clone()]);
    assert_eq!(f.op_name(), "Tanh");
    assert_eq!(y.kind(), VarKind::Output);
    assert!(
        y.uid().starts_with("Tanh") && y.uid().ends_with("_Output_0"),
        "{}",
        y.uid()
    );
    assert_eq!(y.shape().dims(), &[3]);
    assert_eq!(y.dynamic_axes(), DynamicAxes::default_sequence());
}

#[test]
fn replace_placeholders_checks_shape_and_refuses_rebinding() {
    let x = seq_input(2, "x");
    let ph = placeholder([3], DType::F64, x.dynamic_axes(), "p").unwrap();
    let y = plus(&ph, &ph).unwrap();
    let e = y
        .owner()
        .unwrap()
        .replace_placeholders(&[(ph.clone(), x.clone())])
        .unwrap_err();
    assert!(
        e.to_string().contains("(3,)") && e.to_string().contains("(2,)"),
        "{e}"
    );
    let z = seq_input(3, "z");
    y.owner()
        .unwrap()
        .replace_placeholders(&[(ph.clone(), z.clone())])
        .unwrap();
    assert_eq!(y.owner().unwrap().arguments(), vec![z.clone()]);
    assert!(y.owner().unwrap().replace_placeholders(&[(ph, z)]).is_err());
    assert!(y
        .owner()
        .unwrap()
        .replace_placeholders(&[(x.clone(), x)])
        .is_err());
}

#[test]
fn clone_share_clone_and_freeze_parameters() {
    let x = seq_input(2, "x");
    let (w, h) = (param([2, 3], "W", 1), param([3, 3], "H", 2));
    let y = rnn(&x, &w, &h);
    let f = y.owner().unwrap();
    let v = Value::from_sequences([2], &common::ragged(&[3, 1, 4], 2, 5)).unwrap();
    let base = eval(&y, &[(&x, &v)]);

    let x2 = seq_input(2, "x2");
    let shared = f
        .clone_with(CloneMethod::Share, &[(x.clone(), x2.clone())])
        .unwrap();
    let cloned = f.clone_with(CloneMethod::Clone, &[]).unwrap();
    let frozen = f.clone_with(CloneMethod::Freeze, &[]).unwrap();
    assert_eq!(shared.arguments(), vec![x2.clone()]);
    assert_eq!(shared.parameters().len(), 2);
    assert!(shared.parameters().contains(&w));
    assert!(!cloned.parameters().contains(&w) && cloned.parameters().len() == 2);
    assert!(frozen.parameters().is_empty() && frozen.constants().len() >= 2);
    for (g, feed) in [(&shared, &x2), (&cloned, &x), (&frozen, &x)] {
        assert_eq!(eval(&g.output().unwrap(), &[(feed, &v)]), base);
    }
    // Changing W changes the shared clone only.
    let mut t = w.value().unwrap();
    t.as_mut_slice::<f64>().unwrap()[0] += 1.0;
    w.set_value(t).unwrap();
    assert_ne!(eval(&shared.output().unwrap(), &[(&x2, &v)]), base);
    assert_eq!(eval(&cloned.output().unwrap(), &[(&x, &v)]), base);
    assert_eq!(eval(&frozen.output().unwrap(), &[(&x, &v)]), base);
}

#[test]
fn combine_and_blocks_compute_like_their_bodies() {
    let x = seq_input(2, "x");
    let (w, h) = (param([2, 3], "W", 1), param([3, 3], "H", 2));
    // A block "RNNLayer" whose body is built on a placeholder argument.
    let arg = placeholder([2], DType::F64, x.dynamic_axes(), "arg").unwrap();
    let body = rnn(&arg, &w, &h).owner().unwrap();
    let block = Function::block(&body, &[(arg.clone(), x.clone())], "RNNLayer", "rnn1").unwrap();
    assert!(block.is_block() && block.op_name() == "RNNLayer" && block.name() == "rnn1");
    assert_eq!(block.arguments(), vec![x.clone()]);
    assert_eq!(block.parameters().len(), 2);
    let v = Value::from_sequences([2], &common::ragged(&[2, 5, 1], 2, 9)).unwrap();
    let direct = eval(&rnn(&x, &w, &h), &[(&x, &v)]);
    let y = block.output().unwrap();
    assert_eq!(eval(&y, &[(&x, &v)]), direct);
    // Applying the same block body twice shares parameters and stays correct.
    let block2 = Function::block(&body, &[(arg, y.clone())], "RNNLayer", "rnn2");
    assert!(block2.is_err(), "a (3,) value cannot feed a (2,) argument");
    // combine: several outputs computed in one executor.
    let s = sigmoid(&x).unwrap();
    let both = Function::combine(&[y.clone(), s.clone()], "both").unwrap();
    let outs = both.eval(&[(&x, &v)]).unwrap();
    assert_eq!(outs.len(), 2);
    assert_eq!(outs[0].to_vec::<f64>(), direct);
    // Errors inside a block name the block.
    let bad_arg = placeholder([2], DType::F64, x.dynamic_axes(), "a2").unwrap();
    let inner = plus(
        &bad_arg,
        &sequence::past_value_scalar(&bad_arg, 0.0, 1).unwrap(),
    )
    .unwrap();
    let b2 = Function::block(
        &inner.owner().unwrap(),
        &[(bad_arg, x.clone())],
        "Twice",
        "tw",
    )
    .unwrap();
    let other = seq_input(2, "other");
    let sum = plus(&b2.output().unwrap(), &other).unwrap();
    let mut ex = Executor::<f64>::new(std::slice::from_ref(&sum)).unwrap();
    let short = Value::from_sequences([2], &[vec![1.0, 2.0]]).unwrap();
    let e = ex
        .forward(&[(&x, &v), (&other, &short)], false)
        .unwrap_err();
    assert!(matches!(e, Error::Runtime { .. }), "{e}");
}

#[test]
fn inferred_dimensions_are_resolved_on_first_connection() {
    let x = seq_input(5, "x");
    let w = parameter(
        [INFERRED, 4],
        DType::F64,
        Initializer::GlorotUniform {
            scale: 1.0,
            output_rank: 1,
            seed: Some(3),
        },
        "W",
    )
    .unwrap();
    assert!(w.shape().has_inferred());
    let y = times(&x, &w).unwrap();
    assert_eq!(w.shape().dims(), &[5, 4]);
    assert_eq!(y.shape().dims(), &[4]);
    let vals = w.value().unwrap().to_f64_vec();
    let bound = (6.0f64 / 9.0).sqrt();
    assert_eq!(vals.len(), 20);
    assert!(vals.iter().all(|v| v.abs() <= bound) && vals.iter().any(|v| *v != 0.0));
    // A map-rank-0 Dense-style weight takes all input axes.
    let x2 = input_variable_with(
        [2, 3],
        InputOptions {
            dtype: DType::F64,
            ..Default::default()
        },
    );
    let w2 = parameter([INFERRED, 7], DType::F64, Initializer::Constant(0.5), "W2").unwrap();
    let y2 = times_with(&x2, &w2, 1, 0).unwrap();
    assert_eq!(w2.shape().dims(), &[2, 3, 7]);
    assert_eq!(y2.shape().dims(), &[7]);
}

#[test]
fn sparse_one_hot_input_times_dense_equals_dense_input() {
    let dim = 6;
    let xs = input_variable_with(
        [dim],
        InputOptions {
            dtype: DType::F64,
            is_sparse: true,
            dynamic_axes: DynamicAxes::default_sequence(),
            ..Default::default()
        },
    );
    let xd = seq_input(dim, "xd");
    let e = param([6, 3], "E", 4);
    let ys = times(&xs, &e).unwrap();
    let yd = times(&xd, &e).unwrap();
    let idx = vec![vec![1, 5, 0], vec![2], vec![4, 4]];
    let sparse = Value::one_hot_sequences::<f64>(dim, &idx).unwrap();
    let dense = Value::from_sequences([dim], &sparse.to_sequences::<f64>()).unwrap();
    let mut exs = Executor::<f64>::new(std::slice::from_ref(&ys)).unwrap();
    exs.forward(&[(&xs, &sparse)], false).unwrap();
    let mut exd = Executor::<f64>::new(std::slice::from_ref(&yd)).unwrap();
    exd.forward(&[(&xd, &dense)], false).unwrap();
    assert_eq!(
        exs.value(&ys).unwrap().to_vec::<f64>(),
        exd.value(&yd).unwrap().to_vec::<f64>()
    );
    let gs = exs.backward(&[(&ys, None)], &[&e]).unwrap();
    let gd = exd.backward(&[(&yd, None)], &[&e]).unwrap();
    assert_eq!(gs[0].to_vec::<f64>(), gd[0].to_vec::<f64>());
    // every row of E that was hit gets 1 per hit in each column
    let g = gs[0].to_vec::<f64>();
    assert_eq!(&g[4 * 3..5 * 3], &[2.0, 2.0, 2.0]);
    assert_eq!(&g[3 * 3..4 * 3], &[0.0, 0.0, 0.0]);
}

#[test]
fn constants_and_parameters_of_wrong_dtype_are_refused() {
    let x = seq_input(2, "x");
    let c = constant(Tensor::from_vec([2], vec![1.0f32, 2.0]).unwrap(), "c32");
    let e = plus(&x, &c).unwrap_err();
    assert!(matches!(e, Error::DType { .. }), "{e}");
    assert!(parameter([2, 2], DType::F32, Initializer::Constant(0.0), "ok").is_ok());
}

#[test]
fn sparse_labels_feed_losses_like_dense_ones() {
    // CNTK's language-model and tagging examples declare their labels sparse.
    let opts = |sparse| InputOptions {
        dtype: DType::F64,
        is_sparse: sparse,
        dynamic_axes: DynamicAxes::default_sequence(),
        ..Default::default()
    };
    let z = input_variable_with([4], opts(false));
    let ts = input_variable_with([4], opts(true));
    let td = input_variable_with([4], opts(false));
    let ls = rntk::losses::cross_entropy_with_softmax(&z, &ts, -1).unwrap();
    let ld = rntk::losses::cross_entropy_with_softmax(&z, &td, -1).unwrap();
    let zv = Value::from_sequences([4], &common::ragged(&[2, 3], 4, 3)).unwrap();
    let sparse = Value::one_hot_sequences::<f64>(4, &[vec![1, 3], vec![0, 2, 2]]).unwrap();
    let dense = Value::from_sequences([4], &sparse.to_sequences::<f64>()).unwrap();
    let mut es = Executor::<f64>::new(std::slice::from_ref(&ls)).unwrap();
    es.forward(&[(&z, &zv), (&ts, &sparse)], false).unwrap();
    let mut ed = Executor::<f64>::new(std::slice::from_ref(&ld)).unwrap();
    ed.forward(&[(&z, &zv), (&td, &dense)], false).unwrap();
    assert_eq!(
        es.value(&ls).unwrap().to_vec::<f64>(),
        ed.value(&ld).unwrap().to_vec::<f64>()
    );
    let gs = es.backward(&[(&ls, None)], &[&z]).unwrap();
    let gd = ed.backward(&[(&ld, None)], &[&z]).unwrap();
    assert_eq!(gs[0].to_vec::<f64>(), gd[0].to_vec::<f64>());
}

#[test]
fn a_placeholder_cannot_stand_for_itself_and_failed_replacements_bind_nothing() {
    let x = seq_input(3, "x");
    let (p, q) = (
        placeholder([3], DType::F64, x.dynamic_axes(), "p").unwrap(),
        placeholder([3], DType::F64, x.dynamic_axes(), "q").unwrap(),
    );
    let y = plus(&p, &q).unwrap();
    let f = y.owner().unwrap();
    let e = f
        .replace_placeholders(&[(p.clone(), p.clone())])
        .unwrap_err();
    assert!(e.to_string().contains("itself"), "{e}");
    let e = f
        .replace_placeholders(&[(p.clone(), q.clone()), (q.clone(), p.clone())])
        .unwrap_err();
    assert!(e.to_string().contains("itself"), "{e}");
    // A valid pair listed before an invalid one is not bound either.
    let z = seq_input(2, "z");
    assert!(f
        .replace_placeholders(&[(p.clone(), x.clone()), (q.clone(), z)])
        .is_err());
    assert_eq!(f.placeholders().len(), 2);
    f.replace_placeholders(&[(p, x.clone()), (q, x.clone())])
        .unwrap();
    assert_eq!(f.arguments(), vec![x]);
}

/// Values of `outs` on `v`, computed by one inference executor.
fn eval_all(outs: &[Variable], x: &Variable, v: &Value) -> Vec<Vec<f64>> {
    let mut ex = Executor::<f64>::new_inference(outs).unwrap();
    ex.forward(&[(x, v)], false).unwrap();
    outs.iter()
        .map(|o| ex.value(o).unwrap().to_vec::<f64>())
        .collect()
}

/// Handles to a loop's inner variables keep the loop, with its closing edge, working
/// after every handle to its output is gone: compiling, running, cloning, saving and
/// re-loading from them gives what the whole model gave.
#[test]
fn inner_variables_of_a_loop_work_after_the_model_is_dropped() {
    let x = seq_input(2, "x");
    let (w, h) = (param([2, 3], "W", 1), param([3, 3], "H", 2));
    let v = Value::from_sequences([2], &common::ragged(&[3, 1, 4], 2, 5)).unwrap();
    let ph = placeholder([3], DType::F64, x.dynamic_axes(), "h_prev").unwrap();
    let pv = sequence::past_value_scalar(&ph, 0.0, 1).unwrap();
    let hh = times(&pv, &h).unwrap();
    let y = tanh(&plus(&times(&x, &w).unwrap(), &hh).unwrap()).unwrap();
    y.owner()
        .unwrap()
        .replace_placeholders(&[(ph.clone(), y.clone())])
        .unwrap();
    let want = eval_all(&[y.clone(), pv.clone(), hh.clone()], &x, &v);
    // An executor compiled now keeps working without any graph handle.
    let mut early = Executor::<f64>::new(std::slice::from_ref(&hh)).unwrap();
    // Keep only inner variables: the past_value's output, H's product, the placeholder.
    drop(y);
    assert_eq!(ph.resolve().kind(), VarKind::Output);
    let ph_key = ph.resolve().key();
    drop(ph);
    assert_eq!(eval_all(std::slice::from_ref(&pv), &x, &v)[0], want[1]);
    assert_eq!(eval_all(std::slice::from_ref(&hh), &x, &v)[0], want[2]);
    let grads = {
        let mut ex = Executor::<f64>::new(std::slice::from_ref(&hh)).unwrap();
        ex.forward(&[(&x, &v)], true).unwrap();
        ex.backward(&[(&hh, None)], &[&w, &h]).unwrap()
    };
    assert_eq!(grads.len(), 2);
    // The placeholder is still replaced by the loop's output.
    let f = Function::combine(std::slice::from_ref(&pv), "inner").unwrap();
    assert_eq!(f.arguments(), vec![x.clone()]);
    assert_eq!(f.parameters().len(), 2);
    let c = f.clone_with(CloneMethod::Clone, &[]).unwrap();
    assert_eq!(eval_all(&c.outputs(), &x, &v)[0], want[1]);
    let dir = std::env::temp_dir().join(format!("rntk-graph-inner-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("inner.rntk");
    f.save(&path).unwrap();
    drop((f, c, pv));
    // Only `hh` is held now.
    let loaded = Function::load(&path).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    let lx = loaded.arguments()[0].clone();
    assert_eq!(eval_all(&loaded.outputs(), &lx, &v)[0], want[1]);
    assert_eq!(eval_all(std::slice::from_ref(&hh), &x, &v)[0], want[2]);
    // The executor compiled while the model was whole runs on.
    early.forward(&[(&x, &v)], true).unwrap();
    assert_eq!(early.value(&hh).unwrap().to_vec::<f64>(), want[2]);
    assert_eq!(early.backward(&[(&hh, None)], &[&w, &h]).unwrap().len(), 2);
    assert_eq!(
        hh.owner().unwrap().inputs()[0].owner().unwrap().inputs()[0]
            .resolve()
            .key(),
        ph_key
    );
}

/// `find_by_name` sees blocks to the depth asked; a layer's block found by name keeps
/// working (loop included) after the model and the layer objects are dropped.
#[test]
fn find_by_name_and_a_found_block_outlives_its_model() {
    use rntk::layers::{Dense, Gru, Layer, Recurrence, Sequential};
    use std::sync::Arc;
    let x = seq_input(2, "x");
    let v = Value::from_sequences([2], &common::ragged(&[3, 1, 4], 2, 5)).unwrap();
    let (rec_out, want) = {
        let model = Sequential::new(vec![
            Arc::new(Recurrence::new(Gru::new(3).name("gru")).name("rec")),
            Arc::new(Dense::new(2).name("out")),
        ]);
        let z = model.apply(&x).unwrap();
        let f = Function::combine(std::slice::from_ref(&z), "model").unwrap();
        let rec = f
            .find_by_name("rec", Some(0))
            .unwrap()
            .expect("the recurrence");
        assert!(rec.is_block() && rec.op_name() == "Recurrence");
        assert!(f.find_by_name("gru", Some(0)).unwrap().is_none());
        let gru = f.find_by_name("gru", Some(1)).unwrap().expect("inside it");
        assert_eq!(gru.op_name(), "GRU");
        assert_eq!(f.find_by_name("gru", None).unwrap(), Some(gru));
        assert_eq!(f.find_by_name("model", Some(0)).unwrap(), Some(f.clone()));
        assert!(f.find_by_name("nothing", None).unwrap().is_none());
        let out2 = Dense::new(2).name("out").apply(&z).unwrap();
        let two = Function::combine(&[z, out2], "").unwrap();
        assert_eq!(two.find_all_with_name("out", None).len(), 2);
        let e = two.find_by_name("out", None).unwrap_err();
        assert!(e.to_string().contains("2 functions"), "{e}");
        let rec_out = rec.output().unwrap();
        let want = eval(&rec_out, &[(&x, &v)]);
        (rec_out, want)
    };
    assert_eq!(eval(&rec_out, &[(&x, &v)]), want);
    let c = rec_out
        .owner()
        .unwrap()
        .clone_with(CloneMethod::Clone, &[])
        .unwrap();
    assert_eq!(eval(&c.output().unwrap(), &[(&x, &v)]), want);
}

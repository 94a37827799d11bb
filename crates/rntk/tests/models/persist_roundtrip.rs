//! Save → load round trips of recurrent, sparse, bidirectional and block models: the
//! loaded model evaluates and trains (adam, through the Trainer) bit-identically to
//! the original, with new parameters of its own.

use crate::persist_support;

use persist_support::*;

use crate::common;
use rntk::functions::*;
use rntk::initializer::Initializer;
use rntk::layers::*;
use rntk::{
    input_variable, parameter, placeholder, sequence, Axis, DType, DynamicAxes, Function,
    InputOptions, Value, Variable,
};

fn glorot(shape: [usize; 2], dt: DType, seed: u64, name: &str) -> Variable {
    let init = Initializer::GlorotUniform {
        scale: 1.0,
        output_rank: 1,
        seed: Some(seed),
    };
    parameter(shape, dt, init, name).unwrap()
}

/// Deterministic values in [-1, 1).
fn vals(n: usize, salt: usize) -> Vec<f64> {
    (0..n)
        .map(|i| ((((i * 37 + salt * 11) % 23) as f64) - 11.5) / 11.5)
        .collect()
}

fn seqs_f32(dim: usize, lens: &[usize], salt: usize) -> Value {
    let s: Vec<Vec<f32>> = lens
        .iter()
        .enumerate()
        .map(|(k, &l)| vals(l * dim, salt + k).iter().map(|&v| v as f32).collect())
        .collect();
    Value::from_sequences([dim], &s).unwrap()
}

fn seqs_f64(dim: usize, lens: &[usize], salt: usize) -> Value {
    let s: Vec<Vec<f64>> = lens
        .iter()
        .enumerate()
        .map(|(k, &l)| vals(l * dim, salt + k))
        .collect();
    Value::from_sequences([dim], &s).unwrap()
}

/// The hand-built LSTM step loop of tests/engine/lstm_loop.rs, past or future.
fn lstm_loop(x: &Variable, future: bool) -> (Variable, Vec<Variable>) {
    let dt = x.dtype();
    let w = glorot([2, 12], dt, 1, "W");
    let h_w = glorot([3, 12], dt, 2, "H");
    let b = parameter([12], dt, Initializer::Constant(0.05), "b").unwrap();
    (
        common::hand_lstm(x, &w, &h_w, &b, 1, future),
        vec![w, h_w, b],
    )
}

fn squared_error(z: &Variable, t: &Variable) -> Variable {
    reduce_sum(&square(&minus(z, t).unwrap()).unwrap(), None, false).unwrap()
}

#[test]
fn hand_built_lstm_loop_f64() {
    for future in [false, true] {
        let x = sequence::input_variable_with(
            [2],
            InputOptions {
                dtype: DType::F64,
                name: "x".into(),
                ..Default::default()
            },
        );
        let t = sequence::input_variable_with(
            [3],
            InputOptions {
                dtype: DType::F64,
                name: "t".into(),
                ..Default::default()
            },
        );
        let (h, _) = lstm_loop(&x, future);
        let loss = squared_error(&h, &t);
        let root = Function::combine(&[h, loss], "lstm").unwrap();
        let lens = [4, 2, 3];
        let feed = vec![seqs_f64(2, &lens, 1), seqs_f64(3, &lens, 2)];
        let batches: Vec<Vec<Value>> = (0..3)
            .map(|k| vec![seqs_f64(2, &[3, 5], 10 + k), seqs_f64(3, &[3, 5], 20 + k)])
            .collect();
        let loaded = check_roundtrip::<f64>("lstm", &root, &feed, &batches);
        // the loop is still a loop: the loaded model has the two closed placeholders
        // and no free one
        assert!(loaded.placeholders().is_empty());
        assert_eq!(loaded.parameters()[0].value().unwrap().dtype(), DType::F64);
    }
}

#[test]
fn seed_model_fold_lstm_dense() {
    let (x, z) = default_options(
        DefaultOptions {
            initial_state: Some(0.1),
            ..Default::default()
        },
        || {
            let x = sequence::input_variable([1]);
            let model = Sequential::default()
                .then(Fold::new(Lstm::new(15)))
                .then(Dense::new(1));
            let z = model.apply(&x).unwrap();
            (x, z)
        },
    );
    assert_eq!(x.dynamic_axes(), DynamicAxes::default_sequence());
    let t = input_variable([1]);
    let loss = square(&minus(&z, &t).unwrap()).unwrap();
    let root = Function::combine(&[z, loss], "").unwrap();
    let lens = [5, 3, 14, 7];
    let target = |salt| {
        Value::batch(
            [1],
            vals(4, salt)
                .iter()
                .map(|&v| v as f32)
                .collect::<Vec<f32>>(),
        )
        .unwrap()
    };
    let feed = vec![seqs_f32(1, &lens, 3), target(4)];
    let batches: Vec<Vec<Value>> = (0..4)
        .map(|k| vec![seqs_f32(1, &lens, 30 + k), target(40 + k)])
        .collect();
    check_roundtrip::<f32>("seed", &root, &feed, &batches);
}

#[test]
fn gru_tagger_with_embedding_on_sparse_input() {
    const V: usize = 11;
    const L: usize = 4;
    let x = sequence::input_variable_with(
        [V],
        InputOptions {
            is_sparse: true,
            name: "words".into(),
            ..Default::default()
        },
    );
    let y = sequence::input_variable_with(
        [L],
        InputOptions {
            name: "labels".into(),
            ..Default::default()
        },
    );
    let model = Sequential::default()
        .then(Embedding::new(8))
        .then(Recurrence::new(Gru::new(6)))
        .then(Dense::new(L));
    let z = model.apply(&x).unwrap();
    let ce = minus(
        &reduce_log_sum_exp(&z, None, false).unwrap(),
        &reduce_sum(&element_times(&z, &y).unwrap(), None, false).unwrap(),
    )
    .unwrap();
    let root = Function::combine(&[z, ce], "tagger").unwrap();
    let words = |salt: usize| -> Vec<Vec<usize>> {
        [3usize, 6, 1]
            .iter()
            .enumerate()
            .map(|(k, &l)| (0..l).map(|t| (t * 7 + k * 3 + salt) % V).collect())
            .collect()
    };
    let labels = |salt: usize| {
        let s: Vec<Vec<f32>> = words(salt)
            .iter()
            .map(|w| {
                w.iter()
                    .flat_map(|&i| (0..L).map(move |j| if (i + salt) % L == j { 1.0 } else { 0.0 }))
                    .collect()
            })
            .collect();
        Value::from_sequences([L], &s).unwrap()
    };
    let batch = |salt| {
        vec![
            Value::one_hot_sequences::<f32>(V, &words(salt)).unwrap(),
            labels(salt),
        ]
    };
    assert!(batch(0)[0].is_sparse());
    let feed = batch(0);
    let batches: Vec<Vec<Value>> = (1..4).map(batch).collect();
    let loaded = check_roundtrip::<f32>("gru", &root, &feed, &batches);
    assert!(loaded.arguments()[0].is_sparse());
}

#[test]
fn bidirectional_recurrence() {
    let x = sequence::input_variable([3]);
    let t = sequence::input_variable([2]);
    let model = Sequential::new(vec![
        std::sync::Arc::new(Concat::new(vec![
            std::sync::Arc::new(Recurrence::new(Lstm::new(4))),
            std::sync::Arc::new(Recurrence::new(Lstm::new(4)).go_backwards(true)),
        ])),
        std::sync::Arc::new(Dense::new(2)),
    ]);
    let z = model.apply(&x).unwrap();
    assert_eq!(z.shape(), rntk::Shape::from([2]));
    let loss = squared_error(&z, &t);
    let root = Function::combine(&[z, loss], "bidi").unwrap();
    let lens = [4, 1, 6];
    let feed = vec![seqs_f32(3, &lens, 5), seqs_f32(2, &lens, 6)];
    let batches: Vec<Vec<Value>> = (0..3)
        .map(|k| vec![seqs_f32(3, &[2, 5], 50 + k), seqs_f32(2, &[2, 5], 60 + k)])
        .collect();
    check_roundtrip::<f32>("bidi", &root, &feed, &batches);
}

/// A user block `(a, b) -> tanh(a·W + b·W + bias)` applied twice with one shared W.
fn my_block(a: &Variable, b: &Variable, w: &Variable, bias: &Variable) -> Variable {
    let pa = placeholder(a.shape(), a.dtype(), a.dynamic_axes(), "a").unwrap();
    let pb = placeholder(b.shape(), b.dtype(), b.dynamic_axes(), "b").unwrap();
    let y = tanh(
        &plus(
            &plus(&times(&pa, w).unwrap(), &times(&pb, w).unwrap()).unwrap(),
            bias,
        )
        .unwrap(),
    )
    .unwrap();
    let body = Function::combine(&[y], "MyBlock").unwrap();
    Function::block(
        &body,
        &[(pa, a.clone()), (pb, b.clone())],
        "MyBlock",
        "mine",
    )
    .unwrap()
    .output()
    .unwrap()
}

#[test]
fn blocks_shared_parameters_named_axes_and_several_outputs() {
    let words = Axis::new("words");
    let other = Axis::new("words"); // same name, different axis
    let opts = |name: &str, axis: &Axis| InputOptions {
        name: name.into(),
        dynamic_axes: DynamicAxes::Sequence(axis.clone()),
        ..Default::default()
    };
    let x1 = sequence::input_variable_with([3], opts("x1", &words));
    let x2 = sequence::input_variable_with([3], opts("x2", &words));
    let q = sequence::input_variable_with([3], opts("q", &other));
    let w = glorot([3, 4], DType::F32, 7, "W");
    let bias = parameter([4], DType::F32, Initializer::Constant(0.25), "bias").unwrap();
    let h1 = my_block(&x1, &x2, &w, &bias);
    let h2 = my_block(&h1, &h1, &glorot([4, 4], DType::F32, 8, "W2"), &bias);
    let d = dropout(&leaky_relu(&h2, 0.1).unwrap(), 0.3, 1234).unwrap();
    let pooled = sequence::reduce_sum(&d).unwrap();
    let qlast = sequence::last(&q).unwrap();
    let score = reduce_sum(
        &element_times(&times(&qlast, &w).unwrap(), &pooled).unwrap(),
        None,
        false,
    )
    .unwrap();
    let probs = softmax(&pooled, -1).unwrap();
    let root =
        Function::combine(&[pooled.clone(), square(&score).unwrap(), probs], "multi").unwrap();
    assert_eq!(root.outputs().len(), 3);
    let lens = [2, 4];
    let feed = vec![
        seqs_f32(3, &lens, 1),
        seqs_f32(3, &lens, 2),
        seqs_f32(3, &[3, 1], 3),
    ];
    let args = root.arguments();
    assert_eq!(
        args.iter().map(|a| a.name()).collect::<Vec<_>>(),
        ["x1", "x2", "q"]
    );
    let batches: Vec<Vec<Value>> = (0..3)
        .map(|k| {
            vec![
                seqs_f32(3, &[3, 2], 10 + k),
                seqs_f32(3, &[3, 2], 20 + k),
                seqs_f32(3, &[1, 2], 30 + k),
            ]
        })
        .collect();
    let loaded = check_roundtrip::<f32>("blocks", &root, &feed, &batches);

    // axis identity: x1 and x2 share an axis, q's axis of the same name is another one
    let la = loaded.arguments();
    assert_eq!(la[0].dynamic_axes(), la[1].dynamic_axes());
    assert_ne!(la[0].dynamic_axes(), la[2].dynamic_axes());
    match la[2].dynamic_axes() {
        DynamicAxes::Sequence(a) => assert_eq!(a.name(), "words"),
        other => panic!("expected a sequence axis, got {other:?}"),
    }
    // a loaded axis is not the original's: the models do not mix by accident
    assert_ne!(la[0].dynamic_axes(), args[0].dynamic_axes());
    // W is shared by both uses in the loaded model too
    let names: Vec<String> = loaded.parameters().iter().map(|p| p.name()).collect();
    assert_eq!(names.iter().filter(|n| *n == "W").count(), 1, "{names:?}");
    // blocks are still blocks: pooled ← dropout ← leaky_relu ← MyBlock
    let mut v = loaded.outputs()[0].clone();
    for op in ["Sequence::ReduceSum", "Dropout", "LeakyReLU"] {
        let f = v.owner().unwrap();
        assert_eq!(f.op_name(), op);
        v = f.inputs()[0].clone();
    }
    let block = v.owner().unwrap();
    assert!(block.is_block());
    assert_eq!(
        (block.op_name().as_str(), block.name()),
        ("MyBlock", "mine")
    );
    assert_eq!(block.inputs().len(), 2);
}

#[test]
fn partial_model_keeps_its_free_placeholder() {
    let ph = placeholder([5], DType::F32, DynamicAxes::Batch, "features").unwrap();
    let dense = Dense::new(3).activation(Activation::Relu);
    let z = dense.apply(&ph).unwrap();
    let f = z.owner().unwrap();
    assert_eq!(f.placeholders().len(), 1);
    let bytes = rntk::persist::model_to_bytes(&f).unwrap();
    let loaded = rntk::persist::model_from_bytes(&bytes).unwrap();
    assert!(loaded.is_block());
    assert_eq!(loaded.op_name(), "Dense");
    let free = loaded.placeholders();
    assert_eq!(free.len(), 1);
    assert_eq!(free[0].name(), "features");
    // bind both to the same input and compare
    let x = input_variable([5]);
    let a = f
        .clone_with(rntk::CloneMethod::Share, &[(ph, x.clone())])
        .unwrap();
    let b = loaded
        .clone_with(rntk::CloneMethod::Share, &[(free[0].clone(), x.clone())])
        .unwrap();
    let v = Value::batch(
        [5],
        vals(10, 9).iter().map(|&v| v as f32).collect::<Vec<f32>>(),
    )
    .unwrap();
    assert_eq!(
        bits(&a.eval(&[(&x, &v)]).unwrap()[0]),
        bits(&b.eval(&[(&x, &v)]).unwrap()[0])
    );
}

#[test]
fn saving_is_deterministic_and_file_equals_bytes() {
    let x = sequence::input_variable([2]);
    let (h, _) = lstm_loop(&x, false);
    let f = h.owner().unwrap();
    let dir = TempDir::new("bytes");
    let p = dir.file("m.rntk");
    f.save(&p).unwrap();
    let bytes = rntk::persist::model_to_bytes(&f).unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), bytes);
    assert_eq!(rntk::persist::model_to_bytes(&f).unwrap(), bytes);
    // overwrite in place: still one file, no temporary left behind
    f.save(&p).unwrap();
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["m.rntk"]);
}

#[test]
fn tensor_values_come_back_bit_for_bit() {
    let specials32 = vec![
        0.0f32,
        -0.0,
        f32::NAN,
        f32::from_bits(0x7fc0_1234),
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MIN_POSITIVE / 3.0,
        f32::MAX,
        1.0 / 3.0,
    ];
    let specials64: Vec<f64> = vec![
        -0.0,
        f64::NAN,
        f64::from_bits(0xfff8_0000_dead_beef),
        f64::MIN_POSITIVE / 7.0,
        f64::MAX,
        std::f64::consts::PI,
    ];
    let p32 = rntk::parameter_from(
        rntk::Tensor::from_vec([3, 3], specials32.clone()).unwrap(),
        "p32",
    );
    let c64 = rntk::constant(
        rntk::Tensor::from_vec([2, 3], specials64.clone()).unwrap(),
        "c64",
    );
    let x32 = input_variable([3]);
    let x64 = rntk::input_variable_with(
        [3],
        InputOptions {
            dtype: DType::F64,
            ..Default::default()
        },
    );
    let root = Function::combine(
        &[
            times(&x32, &p32).unwrap(),
            times(&x64, &transpose(&c64, &[1, 0]).unwrap()).unwrap(),
        ],
        "",
    )
    .unwrap();
    let loaded =
        rntk::persist::model_from_bytes(&rntk::persist::model_to_bytes(&root).unwrap()).unwrap();
    let p = loaded.parameters()[0].value().unwrap();
    let c = loaded.constants()[0].value().unwrap();
    let b32: Vec<u32> = p
        .as_slice::<f32>()
        .unwrap()
        .iter()
        .map(|v| v.to_bits())
        .collect();
    let b64: Vec<u64> = c
        .as_slice::<f64>()
        .unwrap()
        .iter()
        .map(|v| v.to_bits())
        .collect();
    assert_eq!(
        b32,
        specials32.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    assert_eq!(
        b64,
        specials64.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    assert_eq!(loaded.outputs()[1].dtype(), DType::F64);
}

//! Every layer kind and op family built in rntk, exported to ONNX and run by
//! onnxruntime on ragged batches (sequences padded with NaN in the file's interface,
//! so any padding that reached a real value would show): outputs equal rntk's to 1e-5
//! relative; the files pass `onnx.checker` (full check) at every opset 13–21.

use crate::onnx_support;

use onnx_support::*;
use rntk::functions as f;
use rntk::layers::*;
use rntk::onnx::OnnxOptions;
use rntk::tensor::Value;
use rntk::{sequence, DType, Function, InputOptions, Tensor, Variable};
use std::sync::Arc;

const RTOL: f64 = 1e-5;
const LENS: [usize; 4] = [4, 1, 5, 2];

/// Deterministic values in [-1, 1).
fn vals(n: usize, key: u64) -> Vec<f32> {
    let mut s = key.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5851_F42D_4C95_7F2D;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn seqs(dim: usize, key: u64) -> Value {
    let s: Vec<Vec<f32>> = LENS
        .iter()
        .enumerate()
        .map(|(i, &l)| vals(l * dim, key + i as u64))
        .collect();
    Value::from_sequences([dim], &s).expect("sequences")
}

fn batch(shape: &[usize], key: u64) -> Value {
    let n: usize = shape.iter().product();
    Value::batch(shape.to_vec(), vals(n * 3, key)).expect("batch")
}

fn seq_input(dim: usize, name: &str) -> Variable {
    sequence::input_variable_with(
        [dim],
        InputOptions {
            name: name.into(),
            ..Default::default()
        },
    )
}

fn batch_input(shape: &[usize], name: &str) -> Variable {
    rntk::input_variable_with(
        shape.to_vec(),
        InputOptions {
            name: name.into(),
            ..Default::default()
        },
    )
}

/// Parameters drawn away from their initial values (so zero biases, unit scales and
/// stabilizers at β = 1 do not hide a wrong mapping).
fn perturb(model: &Function, key: u64) {
    for (i, p) in model.parameters().iter().enumerate() {
        let t = p.value().expect("value");
        let n = t.shape().numel();
        let noise = vals(n, key * 100 + i as u64);
        let v: Vec<f64> = t
            .to_f64_vec()
            .iter()
            .zip(&noise)
            .map(|(a, b)| a + 0.3 * *b as f64)
            .collect();
        p.set_value(Tensor::from_f64(t.shape().clone(), t.dtype(), &v).expect("tensor"))
            .expect("set");
    }
}

type Built = (Function, Vec<(Variable, Value)>);

fn seq_layer(layer: impl Layer, dim: usize, key: u64) -> Built {
    let x = seq_input(dim, "x");
    let y = layer.apply(&x).expect("apply");
    let m = y.owner().expect("owner");
    let m = Function::combine(&[y], "").unwrap_or(m);
    perturb(&m, key);
    (m, vec![(x, seqs(dim, key))])
}

fn cases() -> Vec<(&'static str, Built)> {
    let mut c: Vec<(&'static str, Built)> = Vec::new();
    feed_forward_cases(&mut c);
    recurrence_cases(&mut c);
    normalization_cases(&mut c);
    sequence_cases(&mut c);
    conv_cases(&mut c);
    pool_cases(&mut c);
    c
}

/// Dense stacks and embeddings.
fn feed_forward_cases(c: &mut Vec<(&'static str, Built)>) {
    {
        let x = batch_input(&[3], "features");
        let l = Sequential::new(vec![
            Arc::new(Dense::new(5).activation(Activation::Tanh)),
            Arc::new(Dense::new(4).activation(Activation::Relu)),
            Arc::new(Dense::new(2).activation(Activation::Softmax)),
        ]);
        let y = l.apply(&x).unwrap();
        let m = Function::combine(&[y], "").unwrap();
        perturb(&m, 1);
        c.push(("dense_stack", (m, vec![(x, batch(&[3], 1))])));
    }
    {
        let x = batch_input(&[2, 3], "x");
        let y = Dense::new([4, 2]).input_rank(1).apply(&x).unwrap();
        let m = Function::combine(&[y], "").unwrap();
        perturb(&m, 2);
        c.push(("dense_map_rank", (m, vec![(x, batch(&[2, 3], 2))])));
    }
    c.push((
        "dense_on_sequence",
        seq_layer(Dense::new(3).activation(Activation::Sigmoid), 4, 3),
    ));
    c.push(("embedding_dense", seq_layer(Embedding::new(4), 6, 4)));
    {
        let x = sequence::input_variable_with(
            [10],
            InputOptions {
                name: "words".into(),
                is_sparse: true,
                ..Default::default()
            },
        );
        let l = Sequential::new(vec![
            Arc::new(Embedding::new(4)),
            Arc::new(Recurrence::new(Gru::new(3))),
        ]);
        let y = l.apply(&x).unwrap();
        let m = Function::combine(&[y], "").unwrap();
        perturb(&m, 5);
        let words: Vec<Vec<usize>> = LENS
            .iter()
            .enumerate()
            .map(|(i, &n)| (0..n).map(|t| (3 * i + 7 * t) % 10).collect())
            .collect();
        let v = Value::one_hot_sequences::<f32>(10, &words).unwrap();
        c.push(("embedding_sparse_gru", (m, vec![(x, v)])));
    }
}

/// Recurrences over every cell, both directions, with their initial states.
fn recurrence_cases(c: &mut Vec<(&'static str, Built)>) {
    c.push((
        "lstm_fused",
        seq_layer(Recurrence::new(Lstm::new(4)), 3, 10),
    ));
    c.push((
        "lstm_fused_backward",
        seq_layer(Recurrence::new(Lstm::new(4)).go_backwards(true), 3, 11),
    ));
    c.push((
        "lstm_loop",
        seq_layer(Recurrence::new(Lstm::new(4).fused(false)), 3, 12),
    ));
    c.push((
        "lstm_peepholes",
        seq_layer(Recurrence::new(Lstm::new(3).use_peepholes(true)), 2, 13),
    ));
    c.push((
        "lstm_projection",
        seq_layer(Recurrence::new(Lstm::new(2).cell_shape(4)), 3, 14),
    ));
    c.push((
        "lstm_stabilized",
        seq_layer(
            Recurrence::new(Lstm::new(3).enable_self_stabilization(true)).go_backwards(true),
            3,
            15,
        ),
    ));
    c.push((
        "lstm_relu",
        seq_layer(
            Recurrence::new(Lstm::new(3).activation(Activation::Relu)),
            3,
            16,
        ),
    ));
    c.push(("gru", seq_layer(Recurrence::new(Gru::new(4)), 3, 17)));
    c.push((
        "gru_backward_stabilized",
        seq_layer(
            Recurrence::new(Gru::new(3).enable_self_stabilization(true)).go_backwards(true),
            2,
            18,
        ),
    ));
    c.push((
        "rnn_sigmoid",
        seq_layer(Recurrence::new(RnnStep::new(4)), 3, 19),
    ));
    c.push((
        "rnn_relu_backward",
        seq_layer(
            Recurrence::new(RnnStep::new(3).activation(Activation::Relu)).go_backwards(true),
            3,
            20,
        ),
    ));
    c.push(("fold_lstm", seq_layer(Fold::new(Lstm::new(3)), 3, 21)));
    c.push((
        "fold_gru_backward",
        seq_layer(Fold::new(Gru::new(3)).go_backwards(true), 3, 22),
    ));
    c.push((
        "bidirectional_lstm",
        seq_layer(
            Concat::new(vec![
                Arc::new(Recurrence::new(Lstm::new(3))),
                Arc::new(Recurrence::new(Lstm::new(3)).go_backwards(true)),
            ]),
            2,
            23,
        ),
    ));
    {
        // every state of an LSTM: the fused scan's c is read too
        let x = seq_input(3, "x");
        let hc = Recurrence::new(Lstm::new(3)).apply_full(&x).unwrap();
        let m = Function::combine(&hc, "").unwrap();
        perturb(&m, 24);
        c.push(("lstm_full_state", (m, vec![(x, seqs(3, 24))])));
    }
    {
        // learnable initial state, and one initial state per sequence (RecurrenceFrom)
        let x = seq_input(3, "x");
        let h0 = rntk::parameter(
            [3],
            DType::F32,
            rntk::initializer::Initializer::Constant(0.1),
            "h0",
        )
        .unwrap();
        let y = Recurrence::new(Gru::new(3))
            .initial_state(InitialState::Variable(h0))
            .apply(&x)
            .unwrap();
        let s = batch_input(&[3], "s0");
        let z = RecurrenceFrom::new(RnnStep::new(3).activation(Activation::Tanh))
            .apply_from(std::slice::from_ref(&s), &y)
            .unwrap();
        let m = Function::combine(&[z[0].clone()], "").unwrap();
        perturb(&m, 25);
        let sv = Value::batch([3], vals(12, 26)).unwrap();
        c.push(("initial_states", (m, vec![(x, seqs(3, 25)), (s, sv)])));
    }
    {
        // a step that is no cell: a Scan
        let x = seq_input(2, "x");
        let ph = rntk::placeholder([2], DType::F32, x.dynamic_axes(), "s").unwrap();
        let prev = sequence::past_value_scalar(&ph, 0.5, 1).unwrap();
        let h = f::tanh(&f::plus(&f::element_times(&prev, &x).unwrap(), &x).unwrap()).unwrap();
        let sq = f::square(&h).unwrap();
        h.owner()
            .unwrap()
            .replace_placeholders(&[(ph, h.clone())])
            .unwrap();
        let m = Function::combine(&[sq], "").unwrap();
        c.push(("custom_loop", (m, vec![(x, seqs(2, 27))])));
    }
}

/// Normalization, dropout, stabilizer, delay.
fn normalization_cases(c: &mut Vec<(&'static str, Built)>) {
    {
        let x = batch_input(&[4], "x");
        let bn = Arc::new(BatchNormalization::new());
        let l = Sequential::new(vec![Arc::new(Dense::new(3)), bn.clone()]);
        let y = l.apply(&x).unwrap();
        let m = Function::combine(&[y], "").unwrap();
        perturb(&m, 28);
        // running statistics as after training
        let mean = bn.aggregate_mean().expect("mean");
        let var = bn.aggregate_variance().expect("variance");
        mean.set_value(Tensor::from_vec([3], vec![0.2f32, -0.1, 0.4]).unwrap())
            .unwrap();
        var.set_value(Tensor::from_vec([3], vec![0.5f32, 1.5, 0.9]).unwrap())
            .unwrap();
        c.push(("batchnorm", (m, vec![(x, batch(&[4], 28))])));
    }
    c.push((
        "layernorm_dropout_stabilizer",
        seq_layer(
            Sequential::new(vec![
                Arc::new(Stabilizer::new()),
                Arc::new(Dense::new(4)),
                Arc::new(LayerNormalization::new()),
                Arc::new(Dropout::new(0.3).unwrap()),
            ]),
            3,
            29,
        ),
    ));
    c.push(("delay_past_2", seq_layer(Delay::new(2), 3, 30)));
    c.push(("delay_future_1", seq_layer(Delay::new(-1), 3, 31)));
}

/// Sequence ops and losses.
fn sequence_cases(c: &mut Vec<(&'static str, Built)>) {
    {
        let x = seq_input(3, "x");
        let (u, mk) = sequence::unpack(&x, -1.0).unwrap();
        let m = Function::combine(&[u, mk], "").unwrap();
        c.push(("unpack", (m, vec![(x, seqs(3, 32))])));
    }
    {
        let x = seq_input(3, "x");
        let t = seq_input(3, "t");
        let ce = rntk::losses::cross_entropy_with_softmax(&x, &t, -1).unwrap();
        let se = rntk::losses::squared_error(&x, &t).unwrap();
        let err = rntk::metrics::classification_error(&x, &t, -1, 1).unwrap();
        let all = f::reduce_all(rntk::ops::ReduceOp::Mean, &x).unwrap();
        let m = Function::combine(&[ce, se, err, all], "").unwrap();
        let tv: Vec<Vec<f32>> = LENS
            .iter()
            .map(|&n| {
                (0..n)
                    .flat_map(|i| {
                        let mut r = vec![0.0f32; 3];
                        r[i % 3] = 1.0;
                        r
                    })
                    .collect()
            })
            .collect();
        c.push((
            "losses_on_sequences",
            (
                m,
                vec![
                    (x, seqs(3, 33)),
                    (t, Value::from_sequences([3], &tv).unwrap()),
                ],
            ),
        ));
    }
    {
        let o = batch_input(&[1], "o");
        let t = batch_input(&[1], "t");
        let w = batch_input(&[1], "w");
        let s = f::sigmoid(&o).unwrap();
        let wl = rntk::losses::weighted_binary_cross_entropy(&s, &t, &w).unwrap();
        let bce = rntk::losses::binary_cross_entropy(&s, &t).unwrap();
        let p = batch_input(&[4], "p");
        let q = batch_input(&[4], "q");
        let top = rntk::metrics::classification_error(&p, &q, -1, 2).unwrap();
        let m = Function::combine(&[wl, bce, top], "").unwrap();
        let tv = Value::batch([1], vec![1.0f32, 0.0, 1.0]).unwrap();
        let wv = Value::batch([1], vec![2.0f32, 1.0, 0.5]).unwrap();
        let qv = Value::batch(
            [4],
            vec![
                0.0f32, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0,
            ],
        )
        .unwrap();
        c.push((
            "batch_losses",
            (
                m,
                vec![
                    (o, Value::batch([1], vals(3, 34)).unwrap()),
                    (t, tv),
                    (w, wv),
                    (p, Value::batch([4], vals(12, 35)).unwrap()),
                    (q, qv),
                ],
            ),
        ));
    }
    {
        let x = batch_input(&[2, 3], "x");
        let r = f::reduce_log_sum_exp(&x, Some(&[0]), false).unwrap();
        let tt = f::times_transpose(
            &x,
            &rntk::constant(Tensor::from_vec([2, 3], vals(6, 36)).unwrap(), "B"),
        )
        .unwrap();
        let oh = f::one_hot(
            &f::floor(
                &f::abs(&f::element_times(&x, &rntk::scalar(3.0, DType::F32)).unwrap()).unwrap(),
            )
            .unwrap(),
            3,
        )
        .unwrap();
        let g = f::gather(
            &rntk::constant(Tensor::from_vec([3, 2], vals(6, 37)).unwrap(), "E"),
            &f::floor(
                &f::abs(&f::element_times(&x, &rntk::scalar(2.9, DType::F32)).unwrap()).unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
        let hm = rntk::metrics::hardmax(&x).unwrap();
        let m = Function::combine(&[r, tt, oh, g, hm], "").unwrap();
        c.push(("shape_and_index_ops", (m, vec![(x, batch(&[2, 3], 36))])));
    }
    {
        // a generator loop on a new sequence axis
        let s0 = batch_input(&[2], "s0");
        let like = seq_input(1, "like");
        let u = UnfoldFrom::from_layer(Arc::new(Dense::new(2).activation(Activation::Tanh)))
            .apply_from(&s0, &like)
            .unwrap();
        let m = Function::combine(&[u], "").unwrap();
        perturb(&m, 38);
        c.push((
            "unfold_from",
            (
                m,
                vec![
                    (s0, Value::batch([2], vals(8, 38)).unwrap()),
                    (like, seqs(1, 39)),
                ],
            ),
        ));
    }
}

/// Images `[n, shape…]` as a batch of `n`.
fn images(shape: &[usize], n: usize, key: u64) -> Value {
    let k: usize = shape.iter().product();
    Value::batch(shape.to_vec(), vals(n * k, key)).expect("images")
}

fn conv_model(x: Variable, y: Variable, key: u64, n: usize) -> Built {
    let m = Function::combine(&[y], "").unwrap();
    perturb(&m, key);
    let shape = x.shape().dims().to_vec();
    (m, vec![(x, images(&shape, n, key))])
}

/// Convolution and transposed convolution: CNTK's automatic padding (asymmetric
/// under strides, first windows inside the input), explicit pads, groups, dilation,
/// 1-D to 3-D, no channel axis.
fn conv_cases(c: &mut Vec<(&'static str, Built)>) {
    use rntk::ops::ConvAttrs;
    {
        let x = batch_input(&[2, 6, 6], "image");
        let l = Sequential::new(vec![
            Arc::new(
                Convolution::d2([3, 3])
                    .num_filters(4)
                    .pad(true)
                    .activation(Activation::Relu),
            ),
            Arc::new(Pooling::max(&[2, 2]).strides(&[2])),
            Arc::new(
                Convolution::d2([3, 3])
                    .num_filters(3)
                    .pad(true)
                    .strides(&[2]),
            ),
            Arc::new(Pooling::global_average()),
            Arc::new(Dense::new(3)),
        ]);
        let y = l.apply(&x).unwrap();
        c.push(("cnn_stack", conv_model(x, y, 40, 3)));
    }
    {
        // stride 2 over 6 (CNTK pads 1 before, ONNX's SAME_UPPER would pad after),
        // dilation, groups, a rectangular kernel without padding
        let x = batch_input(&[4, 6, 7], "image");
        let a = Convolution::d2([3, 3])
            .num_filters(4)
            .pad(true)
            .strides(&[2])
            .apply(&x)
            .unwrap();
        let b = Convolution::d2([2, 3])
            .num_filters(2)
            .dilation(&[2])
            .apply(&x)
            .unwrap();
        let g = Convolution::d2([3, 3])
            .num_filters(6)
            .groups(2)
            .pad(true)
            .bias(false)
            .apply(&x)
            .unwrap();
        let m = Function::combine(&[a, b, g], "").unwrap();
        perturb(&m, 41);
        c.push((
            "conv_strides_dilation_groups",
            (m, vec![(x, images(&[4, 6, 7], 2, 41))]),
        ));
    }
    {
        // 1-D without a channel axis; 3-D
        let x = batch_input(&[9], "signal");
        let y = Convolution::d1(3)
            .num_filters(2)
            .reduction_rank(0)
            .pad(true)
            .strides(&[2])
            .apply(&x)
            .unwrap();
        c.push(("conv1d_no_channels", conv_model(x, y, 42, 3)));
        let x = batch_input(&[2, 4, 5, 4], "volume");
        let y = Convolution::d3([3, 3, 3])
            .num_filters(2)
            .pad(true)
            .apply(&x)
            .unwrap();
        let y = Pooling::max(&[2, 2, 2])
            .strides(&[2])
            .pad(true)
            .apply(&y)
            .unwrap();
        c.push(("conv3d_pool3d", conv_model(x, y, 43, 2)));
    }
    {
        // kernel 1, stride 3 over 7 with automatic padding: the first window starts
        // inside the input (a negative pad: cropped in ONNX)
        let x = batch_input(&[2, 7, 6], "image");
        let w = rntk::parameter(
            [3, 2, 1, 1],
            DType::F32,
            rntk::initializer::Initializer::glorot_uniform(),
            "W",
        )
        .unwrap();
        let attrs = ConvAttrs {
            strides: vec![3],
            auto_padding: vec![false, true, true],
            ..Default::default()
        };
        let y = f::convolution(&w, &x, attrs).unwrap();
        c.push(("conv_first_window_inside", conv_model(x, y, 44, 2)));
    }
    {
        let x = batch_input(&[3, 4, 4], "image");
        let t = Convolution::transpose2d([3, 3])
            .num_filters(2)
            .pad(true)
            .strides(&[2])
            .apply(&x)
            .unwrap();
        let u = Convolution::transpose2d([2, 3])
            .num_filters(2)
            .strides(&[2])
            .apply(&x)
            .unwrap();
        let v = Convolution::transpose2d([3, 3])
            .num_filters(2)
            .pad(true)
            .strides(&[2])
            .output_shape(&[8, 8])
            .apply(&x)
            .unwrap();
        let m = Function::combine(&[t, u, v], "").unwrap();
        perturb(&m, 45);
        c.push(("conv_transpose", (m, vec![(x, images(&[3, 4, 4], 2, 45))])));
    }
}

/// Pooling (`ceil_out_dim`, `include_pad`), max unpooling, and a convolution over
/// images on a sequence axis.
fn pool_cases(c: &mut Vec<(&'static str, Built)>) {
    use rntk::ops::{PoolAttrs, PoolingType};
    {
        let x = batch_input(&[2, 7, 5], "image");
        let mut avg = PoolAttrs::new(PoolingType::Average, Some(vec![3, 3]));
        avg.strides = vec![2];
        avg.auto_padding = vec![false, true, true];
        avg.include_pad = true;
        let mut ceil = PoolAttrs::new(PoolingType::Max, Some(vec![2, 2]));
        ceil.strides = vec![2];
        ceil.ceil_out_dim = true;
        let mut avg_ceil = PoolAttrs::new(PoolingType::Average, Some(vec![3, 2]));
        avg_ceil.strides = vec![2];
        avg_ceil.ceil_out_dim = true;
        let mut inside = PoolAttrs::new(PoolingType::Max, Some(vec![1, 1]));
        inside.strides = vec![3];
        inside.auto_padding = vec![true];
        let outs = vec![
            f::pooling(&x, avg).unwrap(),
            f::pooling(&x, ceil).unwrap(),
            f::pooling(&x, avg_ceil.clone()).unwrap(),
            f::pooling(
                &x,
                PoolAttrs {
                    include_pad: true,
                    ..avg_ceil
                },
            )
            .unwrap(),
            f::pooling(&x, inside).unwrap(),
            Pooling::average(&[2, 2]).pad(true).apply(&x).unwrap(),
            Pooling::global_max().apply(&x).unwrap(),
        ];
        let m = Function::combine(&outs, "").unwrap();
        c.push(("pooling_forms", (m, vec![(x, images(&[2, 7, 5], 2, 46))])));
    }
    {
        // max unpooling, windows apart and overlapping
        let x = batch_input(&[2, 6, 6], "image");
        let p = Pooling::max(&[2, 2]).strides(&[2]).apply(&x).unwrap();
        let u = f::tanh(&p).unwrap();
        let a = MaxUnpooling::new(&[2, 2])
            .strides(&[2])
            .apply2(&u, &x)
            .unwrap();
        let q = Pooling::max(&[3, 3])
            .strides(&[2])
            .pad(true)
            .apply(&x)
            .unwrap();
        let v = f::sigmoid(&q).unwrap();
        let b = MaxUnpooling::new(&[3, 3])
            .strides(&[2])
            .pad(true)
            .apply2(&v, &x)
            .unwrap();
        let m = Function::combine(&[a, b], "").unwrap();
        c.push(("max_unpooling", (m, vec![(x, images(&[2, 6, 6], 2, 47))])));
    }
    {
        // images on a sequence axis (a ragged batch of image sequences)
        let x = sequence::input_variable_with(
            [1, 5, 5],
            InputOptions {
                name: "frames".into(),
                ..Default::default()
            },
        );
        let y = Convolution::d2([3, 3])
            .num_filters(2)
            .pad(true)
            .apply(&x)
            .unwrap();
        let y = Pooling::max(&[2, 2]).strides(&[2]).apply(&y).unwrap();
        let y = rntk::sequence::last(&y).unwrap();
        let m = Function::combine(&[y], "").unwrap();
        perturb(&m, 48);
        let s: Vec<Vec<f32>> = LENS
            .iter()
            .enumerate()
            .map(|(i, &l)| vals(l * 25, 48 + i as u64))
            .collect();
        let v = Value::from_sequences([1, 5, 5], &s).expect("sequences");
        c.push(("conv_on_sequences", (m, vec![(x, v)])));
    }
}

#[test]
fn every_layer_kind_runs_in_onnxruntime_like_in_rntk() {
    let dir = scratch("layers");
    let mut oracle_cases = Vec::new();
    let mut runs = Vec::new();
    let mut failures = Vec::new();
    for (name, (model, feeds)) in cases() {
        let path = dir.join(format!("{name}.onnx"));
        if let Err(e) = model.save_onnx(&path, &OnnxOptions::default()) {
            failures.push(format!("{name}: export failed: {e}"));
            continue;
        }
        let outs = eval(&model, &feeds);
        oracle_cases.push(Case {
            model: path,
            inputs: onnx_inputs(&feeds),
            run: true,
        });
        runs.push((name, model, feeds, outs));
    }
    let Some(results) = oracle(&oracle_cases, &dir) else {
        return;
    };
    for ((name, model, feeds, outs), r) in runs.iter().zip(&results) {
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            compare(name, model, outs, r, &seq_lens(feeds))
        }));
        match res {
            Ok(err) if err <= RTOL => {}
            Ok(err) => failures.push(format!("{name}: max relative error {err:e}")),
            Err(e) => failures.push(format!(
                "{name}: {}",
                e.downcast_ref::<String>().cloned().unwrap_or_default()
            )),
        }
    }
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
}

#[test]
fn every_opset_from_13_to_21_passes_the_checker_and_runs() {
    let dir = scratch("opsets");
    let mut oracle_cases = Vec::new();
    let mut runs = Vec::new();
    for opset in 13..=21 {
        for (name, (model, feeds)) in cases().into_iter().filter(|(n, _)| {
            [
                "lstm_fused",
                "shape_and_index_ops",
                "losses_on_sequences",
                "custom_loop",
            ]
            .contains(n)
        }) {
            let path = dir.join(format!("{name}_{opset}.onnx"));
            model
                .save_onnx(&path, &OnnxOptions::default().opset(opset))
                .unwrap_or_else(|e| panic!("{name} at opset {opset}: {e}"));
            let outs = eval(&model, &feeds);
            oracle_cases.push(Case {
                model: path,
                inputs: onnx_inputs(&feeds),
                run: true,
            });
            runs.push((format!("{name} opset {opset}"), model, feeds, outs));
        }
    }
    let Some(results) = oracle(&oracle_cases, &dir) else {
        return;
    };
    for ((name, model, feeds, outs), r) in runs.iter().zip(&results) {
        let err = compare(name, model, outs, r, &seq_lens(feeds));
        assert!(err <= RTOL, "{name}: {err:e}");
    }
}

#[test]
fn opsets_outside_13_to_21_are_refused() {
    let x = batch_input(&[2], "x");
    let m = Function::combine(&[f::tanh(&x).unwrap()], "").unwrap();
    for opset in [9, 12, 22] {
        let e = rntk::onnx::to_onnx_bytes(&m, &OnnxOptions::default().opset(opset)).unwrap_err();
        assert!(e.to_string().contains("choose 13 to 21"), "{e}");
    }
}

#[test]
fn ops_without_an_onnx_form_are_listed_together_and_nothing_is_written() {
    let s = batch_input(&[1], "score");
    let g = batch_input(&[1], "gain");
    let q = batch_input(&[1], "group");
    let a = rntk::metrics::lambda_rank(&s, &g, &q).unwrap();
    let b = rntk::metrics::ndcg_at_1(&s, &g, &q).unwrap();
    let m = Function::combine(&[a, b], "").unwrap();
    let dir = scratch("refused");
    let path = dir.join("m.onnx");
    let e = m.save_onnx(&path, &OnnxOptions::default()).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("2 op(s) cannot be written as ONNX"), "{msg}");
    assert!(msg.contains("LambdaRank"), "{msg}");
    assert!(msg.contains("NDCG1Eval"), "{msg}");
    assert!(!path.exists(), "a file was written");
}

#[test]
fn a_sequential_convolution_is_refused_by_name() {
    // a kernel of 3 along the sequence axis (each sequence padded on its own)
    let x = seq_input(2, "x");
    let w = rntk::parameter(
        [4, 2, 3],
        DType::F32,
        rntk::initializer::Initializer::glorot_uniform(),
        "W",
    )
    .unwrap();
    let a = rntk::ops::ConvAttrs {
        sequential: true,
        auto_padding: vec![false, true],
        ..Default::default()
    };
    let y = f::convolution(&w, &x, a).unwrap();
    let m = Function::combine(&[y], "").unwrap();
    let e = rntk::onnx::to_onnx_bytes(&m, &OnnxOptions::default()).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("Convolution"), "{msg}");
    assert!(msg.contains("sequential convolution"), "{msg}");
}

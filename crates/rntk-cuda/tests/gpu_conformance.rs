//! On a GPU (each test skips with one line where none is found): ops, layers, learners
//! and training on [`Cuda`] agree with the CPU backend.
//!
//! Tolerance: an element agrees when `|gpu − cpu| ≤ 1e-5·max(|gpu|, |cpu|)` or, for
//! elements near zero, `≤ 1e-6·max(1, max |cpu|)` over the tensor (a relative bound is
//! meaningless for a sum that cancels to ~0). The GPU sums in another order than the
//! CPU (cuBLAS blocking, atomics in the gradients of static and broadcast operands),
//! and its exp/tanh round differently within their last bits. Training runs compare
//! after several updates, where differences compound: 1e-4 there (stated per test).
//!
//! `scripts/gpu-check.sh` runs this file on the GPU machine; it prints the host-path
//! kernels each case used (`Cuda::host_calls`).

use rntk::backend::{Backend, Cpu, Memory};
use rntk::functions as f;
use rntk::initializer::Initializer;
use rntk::layers::{
    default_options, Activation, BatchNormalization, Convolution, DefaultOptions, Dense, Dropout,
    Embedding, Fold, Gru, Layer, Lstm, Pooling, Recurrence, RnnStep, Sequential,
};
use rntk::learners::{self, AdamOptions, Learner, LearnerOptions, Schedule};
use rntk::train::Trainer;
use rntk::{
    input_variable, losses, metrics, parameter, scalar, sequence, DType, Executor, InputOptions,
    Tensor, Value, Variable,
};
use rntk_cuda::Cuda;

fn gpu() -> Option<Cuda> {
    if let Some(why) = rntk_cuda::unavailable() {
        eprintln!("skipped: {why}");
        return None;
    }
    Some(Cuda::new(0).expect("GPU 0 opens"))
}

/// Every element within the module's tolerance (`rel` relative).
fn agree(what: &str, got: &[f64], want: &[f64], rel: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let ok = (g - w).abs() <= rel * g.abs().max(w.abs()) || (g - w).abs() <= 0.1 * rel * scale;
        let same_nan = g.is_nan() && w.is_nan();
        assert!(ok || same_nan || g == w, "{what}[{i}]: GPU {g} vs CPU {w}");
    }
}

type Pass = (Vec<f64>, Vec<Vec<f64>>);

/// Forward (training mode) and backward (seed: ones) of `out` on backend `b`.
fn pass<B: Backend>(
    b: B,
    out: &Variable,
    feeds: &[(&Variable, &Value)],
    wrt: &[&Variable],
) -> Pass {
    let mut ex = Executor::<f32, B>::with_backend(b, std::slice::from_ref(out)).unwrap();
    ex.forward(feeds, true).unwrap();
    let y = ex.value(out).unwrap().dense_rows::<f64>();
    let grads = if wrt.is_empty() {
        Vec::new()
    } else {
        let g = ex.backward(&[(out, None)], wrt).unwrap();
        g.iter().map(|v| v.dense_rows::<f64>()).collect()
    };
    (y, grads)
}

/// One case: the CPU's and the GPU's forward and gradients agree.
fn case(gpu: &Cuda, name: &str, out: &Variable, feeds: &[(&Variable, &Value)], wrt: &[&Variable]) {
    let before = gpu.host_calls();
    let (y, g) = pass(Cpu, out, feeds, wrt);
    let (gy, gg) = pass(gpu.clone(), out, feeds, wrt);
    agree(&format!("{name}: forward"), &gy, &y, 1e-5);
    for (k, (a, b)) in gg.iter().zip(&g).enumerate() {
        agree(&format!("{name}: gradient {k}"), a, b, 1e-5);
    }
    let after = gpu.host_calls();
    if after != before {
        eprintln!("{name}: host-path kernels so far {after:?}");
    }
}

/// Ragged sequences of `d` values per step.
fn seqs(lens: &[usize], d: usize, key: usize) -> Value {
    let mut n = 0;
    let s: Vec<Vec<f32>> = lens
        .iter()
        .map(|&l| {
            (0..l * d)
                .map(|_| {
                    n += 1;
                    ((((7 * n + key) % 11) as f32) - 5.0) / 10.0 + 0.013 * n as f32
                })
                .collect()
        })
        .collect();
    Value::from_sequences([d], &s).unwrap()
}

fn param(shape: &[usize], key: usize) -> Variable {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|i| ((((5 * i + key) % 13) as f32) - 6.0) / 9.0)
        .collect();
    let p = parameter(shape.to_vec(), DType::F32, Initializer::Constant(0.0), "p").unwrap();
    p.set_value(Tensor::from_vec(shape.to_vec(), v).unwrap())
        .unwrap();
    p
}

const LENS: [usize; 4] = [3, 1, 5, 2];

#[test]
fn unary_ops_agree() {
    let Some(gpu) = gpu() else { return };
    type F = fn(&Variable) -> rntk::Result<Variable>;
    let ops: [(&str, F); 16] = [
        ("negate", f::negate),
        ("sigmoid", f::sigmoid),
        ("tanh", f::tanh),
        ("relu", f::relu),
        ("elu", f::elu),
        ("softplus", f::softplus),
        ("exp", f::exp),
        ("log", f::log),
        ("sqrt", f::sqrt),
        ("square", f::square),
        ("abs", f::abs),
        ("reciprocal", f::reciprocal),
        ("stop_gradient", f::stop_gradient),
        ("floor", f::floor),
        ("sin", f::sin),
        ("cos", f::cos),
    ];
    let x = sequence::input_variable(6);
    let xv = seqs(&LENS, 6, 1);
    let shift = param(&[6], 3);
    for (name, op) in ops {
        // log, sqrt and reciprocal see positive values: x² + 0.5 + shift²
        let pos = f::plus(
            &f::square(&x).unwrap(),
            &f::plus(&f::square(&shift).unwrap(), &scalar(0.5, DType::F32)).unwrap(),
        )
        .unwrap();
        let arg = if matches!(name, "log" | "sqrt" | "reciprocal") {
            pos
        } else {
            f::plus(&x, &shift).unwrap()
        };
        let out = op(&arg).unwrap();
        case(&gpu, name, &out, &[(&x, &xv)], &[&x, &shift]);
    }
    let out = f::leaky_relu(&x, 0.2).unwrap();
    case(&gpu, "leaky_relu", &out, &[(&x, &xv)], &[&x]);
}

#[test]
fn binary_ops_with_broadcasting_agree() {
    let Some(gpu) = gpu() else { return };
    type F = fn(&Variable, &Variable) -> rntk::Result<Variable>;
    let ops: [(&str, F); 8] = [
        ("plus", f::plus),
        ("minus", f::minus),
        ("element_times", f::element_times),
        ("element_divide", f::element_divide),
        ("element_max", f::element_max),
        ("element_min", f::element_min),
        ("log_add_exp", f::log_add_exp),
        ("less", f::less),
    ];
    let x = sequence::input_variable([3, 4]);
    let y = sequence::input_variable([3, 4]);
    let (xv, yv) = (seqs(&LENS, 12, 2), seqs(&LENS, 12, 5));
    let row = param(&[4], 7); // broadcast within the sample and over rows
    let col = param(&[3, 1], 9);
    for (name, op) in ops {
        let out = op(&x, &y).unwrap();
        case(
            &gpu,
            &format!("{name}(rows, rows)"),
            &out,
            &[(&x, &xv), (&y, &yv)],
            &[&x, &y],
        );
        let out = op(&x, &row).unwrap();
        case(
            &gpu,
            &format!("{name}(rows, [4])"),
            &out,
            &[(&x, &xv)],
            &[&x, &row],
        );
        let out = op(&col, &x).unwrap();
        case(
            &gpu,
            &format!("{name}([3,1], rows)"),
            &out,
            &[(&x, &xv)],
            &[&x, &col],
        );
    }
    let base = f::plus(&f::square(&x).unwrap(), &scalar(1.0, DType::F32)).unwrap();
    let out = f::pow(&base, &row).unwrap();
    case(&gpu, "pow", &out, &[(&x, &xv)], &[&x, &row]);
    let out = f::clip(&x, &scalar(-0.2, DType::F32), &scalar(0.3, DType::F32)).unwrap();
    case(&gpu, "clip", &out, &[(&x, &xv)], &[&x]);
    let out = f::element_select(&f::greater(&x, &row).unwrap(), &x, &y).unwrap();
    case(
        &gpu,
        "element_select",
        &out,
        &[(&x, &xv), (&y, &yv)],
        &[&x, &y],
    );
}

#[test]
fn products_reductions_softmax_and_copies_agree() {
    let Some(gpu) = gpu() else { return };
    let x = sequence::input_variable([3, 4]);
    let xv = seqs(&LENS, 12, 4);
    let w = param(&[4, 5], 1);
    let w2 = param(&[12, 7], 2);
    let flat = f::reshape(&x, [12]).unwrap();
    let cases: Vec<(&str, Variable)> = vec![
        ("times", f::times(&x, &w).unwrap()),
        ("times flat", f::times(&flat, &w2).unwrap()),
        (
            "times_transpose",
            f::times_transpose(&x, &param(&[5, 4], 3)).unwrap(),
        ),
        (
            "reduce_sum axis 0",
            f::reduce_sum(&x, Some(&[0]), true).unwrap(),
        ),
        (
            "reduce_mean axis 1",
            f::reduce_mean(&x, Some(&[1]), false).unwrap(),
        ),
        ("reduce_max", f::reduce_max(&x, Some(&[1]), true).unwrap()),
        ("reduce_min", f::reduce_min(&x, Some(&[0]), true).unwrap()),
        (
            "reduce_log_sum_exp",
            f::reduce_log_sum_exp(&x, Some(&[1]), true).unwrap(),
        ),
        ("reduce_sum all", f::reduce_sum(&x, None, false).unwrap()),
        ("softmax -1", f::softmax(&x, -1).unwrap()),
        ("softmax 0", f::softmax(&x, 0).unwrap()),
        ("log_softmax", f::log_softmax(&x, -1).unwrap()),
        ("slice", f::slice(&x, 1, 1, 3).unwrap()),
        ("slice_strided", f::slice_strided(&x, 1, 0, 4, 2).unwrap()),
        (
            "splice",
            f::splice(&[&x, &f::square(&x).unwrap()], 0).unwrap(),
        ),
        ("transpose", f::transpose(&x, &[1, 0]).unwrap()),
        ("hardmax", metrics::hardmax(&x).unwrap()),
        ("dropout", f::dropout(&x, 0.3, 11).unwrap()),
        (
            "past_value",
            sequence::past_value_scalar(&x, 0.25, 1).unwrap(),
        ),
        (
            "past_value 2 steps, sample state",
            sequence::past_value(&x, &param(&[3, 4], 5), 2).unwrap(),
        ),
        (
            "future_value",
            sequence::future_value_scalar(&x, -0.5, 1).unwrap(),
        ),
    ];
    for (name, out) in &cases {
        case(&gpu, name, out, &[(&x, &xv)], &[&x]);
    }
}

#[test]
fn losses_with_dense_and_sparse_targets_agree() {
    let Some(gpu) = gpu() else { return };
    let x = sequence::input_variable(7);
    let xv = seqs(&LENS, 7, 6);
    let w = param(&[7, 5], 4);
    let z = f::times(&x, &w).unwrap();
    let labels: Vec<Vec<usize>> = LENS
        .iter()
        .enumerate()
        .map(|(i, &l)| (0..l).map(|t| (3 * t + i) % 5).collect())
        .collect();
    let dense = sequence::input_variable(5);
    let sparse = sequence::input_variable_with(
        5,
        InputOptions {
            is_sparse: true,
            ..Default::default()
        },
    );
    let dense_labels: Vec<Vec<f32>> = labels
        .iter()
        .map(|s| {
            s.iter()
                .flat_map(|&c| (0..5).map(move |k| f32::from(u8::from(k == c))))
                .collect()
        })
        .collect();
    let dv = Value::from_sequences([5], &dense_labels).unwrap();
    let sv = Value::one_hot_sequences::<f32>(5, &labels).unwrap();
    for (name, t, tv) in [("dense", &dense, &dv), ("sparse", &sparse, &sv)] {
        let ce = losses::cross_entropy_with_softmax(&z, t, -1).unwrap();
        case(
            &gpu,
            &format!("cross_entropy {name}"),
            &ce,
            &[(&x, &xv), (t, tv)],
            &[&x, &w],
        );
        let err = metrics::classification_error(&z, t, -1, 1).unwrap();
        case(
            &gpu,
            &format!("classification_error {name}"),
            &err,
            &[(&x, &xv), (t, tv)],
            &[&x],
        );
        let sq = losses::squared_error(&z, t).unwrap();
        case(
            &gpu,
            &format!("squared_error {name}"),
            &sq,
            &[(&x, &xv), (t, tv)],
            &[&w],
        );
    }
}

#[test]
fn layers_agree() {
    let Some(gpu) = gpu() else { return };
    let x = sequence::input_variable(6);
    let xv = seqs(&[5, 3, 7, 1], 6, 8);
    let models: Vec<(&str, Sequential)> = vec![
        ("Dense", Sequential::default().then(Dense::new(4))),
        (
            "fused LSTM",
            Sequential::default().then(Recurrence::new(Lstm::new(9))),
        ),
        (
            "fused LSTM backwards",
            Sequential::default().then(Recurrence::new(Lstm::new(5)).go_backwards(true)),
        ),
        (
            "unfused LSTM",
            Sequential::default().then(Recurrence::new(Lstm::new(5).fused(false))),
        ),
        (
            "GRU",
            Sequential::default().then(Recurrence::new(Gru::new(6))),
        ),
        (
            "RNN",
            Sequential::default().then(Recurrence::new(RnnStep::new(4))),
        ),
        (
            "Fold(LSTM) → Dense",
            Sequential::default()
                .then(Fold::new(Lstm::new(15)))
                .then(Dense::new(1)),
        ),
        (
            "BatchNormalization",
            Sequential::default()
                .then(Dense::new(5))
                .then(BatchNormalization::new()),
        ),
        (
            "Dropout",
            Sequential::default()
                .then(Dense::new(5))
                .then(Dropout::new(0.4).unwrap().seed(3)),
        ),
    ];
    for (name, m) in models {
        let m = default_options(
            DefaultOptions {
                initial_state: Some(0.1),
                ..Default::default()
            },
            || m,
        );
        let out = m.apply(&x).unwrap();
        let params = m.parameters();
        let mut wrt: Vec<&Variable> = params.iter().collect();
        wrt.push(&x);
        case(&gpu, name, &out, &[(&x, &xv)], &wrt);
    }
    // a sparse input through an embedding
    let words = sequence::input_variable_with(
        20,
        InputOptions {
            is_sparse: true,
            ..Default::default()
        },
    );
    let ids: Vec<Vec<usize>> = [4, 2, 6]
        .iter()
        .map(|&l| (0..l).map(|t| (7 * t + l) % 20).collect())
        .collect();
    let wv = Value::one_hot_sequences::<f32>(20, &ids).unwrap();
    let emb = Embedding::new(8);
    let out = emb.apply(&words).unwrap();
    let p = emb.parameters();
    case(&gpu, "Embedding (sparse)", &out, &[(&words, &wv)], &[&p[0]]);
}

/// Convolution, pooling and transposed convolution (today on the counted host path:
/// `Cuda::host_calls` names `conv_*`/`pool_*`), with spatial batch normalization.
#[test]
fn convolution_layers_agree() {
    let Some(gpu) = gpu() else { return };
    let images = input_variable([2, 8, 8]);
    let px: Vec<f32> = (0..3 * 2 * 64)
        .map(|i| ((7 * i + 5) % 29) as f32 / 29.0 - 0.4)
        .collect();
    let xv = Value::batch([2, 8, 8], px).unwrap();
    let models: Vec<(&str, Sequential)> = vec![
        (
            "Convolution 3×3 padded, relu → MaxPooling 2×2/2",
            Sequential::default()
                .then(
                    Convolution::d2([3, 3])
                        .num_filters(4)
                        .pad(true)
                        .activation(Activation::Relu),
                )
                .then(Pooling::max(&[2, 2]).strides(&[2, 2])),
        ),
        (
            "Convolution → spatial BN → transposed Convolution → AveragePooling",
            Sequential::default()
                .then(Convolution::d2([3, 3]).num_filters(3))
                .then(BatchNormalization::new().map_rank(Some(1)))
                .then(Convolution::transpose2d([2, 2]).num_filters(3))
                .then(Pooling::average(&[2, 2])),
        ),
    ];
    for (name, m) in models {
        let out = m.apply(&images).unwrap();
        let params = m.parameters();
        let mut wrt: Vec<&Variable> = params.iter().collect();
        wrt.push(&images);
        case(&gpu, name, &out, &[(&images, &xv)], &wrt);
    }
}

/// The seed program's model trained with `make` on `b`: the per-minibatch losses and
/// the final parameters.
fn train<B: Backend>(
    b: B,
    make: &dyn Fn(&[Variable]) -> Box<dyn Learner>,
) -> (Vec<f64>, Vec<Vec<f64>>) {
    let features = sequence::input_variable(1);
    let model = default_options(
        DefaultOptions {
            initial_state: Some(0.1),
            ..Default::default()
        },
        || {
            Sequential::default()
                .then(Fold::new(Lstm::new(15)))
                .then(Dense::new(1))
        },
    );
    let z = model.apply(&features).unwrap();
    let target = input_variable(1);
    let loss = losses::squared_error(&z, &target).unwrap();
    let params = model.parameters();
    for (k, p) in params.iter().enumerate() {
        let n = p.shape().numel();
        let v: Vec<f32> = (0..n)
            .map(|i| ((((7 * i + 3 * k) % 13) as f32) - 6.0) / 25.0)
            .collect();
        p.set_value(Tensor::from_vec(p.shape(), v).unwrap())
            .unwrap();
    }
    let mut trainer = Trainer::<f32, B>::with_backend(
        b,
        None,
        loss.clone(),
        Some(loss),
        vec![make(&params)],
        vec![],
    )
    .unwrap();
    let mut losses = Vec::new();
    for m in 0..12 {
        let lens = [5 + m % 3, 3, 7, 1 + m % 4, 14, 2];
        let xv = seqs(&lens, 1, m);
        let yv = Value::batch(
            [1],
            (0..lens.len())
                .map(|i| 0.1 * (i + m) as f32 - 0.3)
                .collect(),
        )
        .unwrap();
        trainer
            .train_minibatch(&[(&features, &xv), (&target, &yv)], false)
            .unwrap();
        losses.push(trainer.previous_minibatch_loss_average());
    }
    let params = params
        .iter()
        .map(|p| p.value().unwrap().to_f64_vec())
        .collect();
    (losses, params)
}

#[test]
fn the_seed_program_trains_on_the_gpu_as_on_the_cpu_with_every_learner() {
    let Some(gpu) = gpu() else { return };
    let opts = || LearnerOptions {
        gradient_clipping_threshold_per_sample: 2.0,
        l2_regularization_weight: 1e-3,
        ..Default::default()
    };
    let lr = || Schedule::constant(0.01);
    type Make = Box<dyn Fn(&[Variable]) -> Box<dyn Learner>>;
    let makers: Vec<(&str, Make)> = vec![
        (
            "adam",
            Box::new(move |p| {
                Box::new(
                    learners::adam(p, lr(), Schedule::constant(0.9), AdamOptions::default())
                        .unwrap(),
                )
            }),
        ),
        (
            "sgd",
            Box::new(move |p| Box::new(learners::sgd(p, lr(), opts()).unwrap())),
        ),
        (
            "momentum",
            Box::new(move |p| {
                Box::new(
                    learners::momentum_sgd(p, lr(), Schedule::constant(0.9), true, opts()).unwrap(),
                )
            }),
        ),
        (
            "nesterov",
            Box::new(move |p| {
                Box::new(
                    learners::nesterov(p, lr(), Schedule::constant(0.9), true, opts()).unwrap(),
                )
            }),
        ),
        (
            "adagrad",
            Box::new(move |p| Box::new(learners::adagrad(p, lr(), true, opts()).unwrap())),
        ),
    ];
    for (name, make) in &makers {
        let (cl, cp) = train(Cpu, make.as_ref());
        let (gl, gp) = train(gpu.clone(), make.as_ref());
        // after 12 updates rounding differences compound: 1e-4 relative
        agree(&format!("{name}: losses"), &gl, &cl, 1e-4);
        for (k, (a, b)) in gp.iter().zip(&cp).enumerate() {
            agree(&format!("{name}: parameter {k}"), a, b, 1e-4);
        }
        let t = gpu.transfers();
        eprintln!("{name}: agrees; GPU transfers so far {t:?}");
    }
}

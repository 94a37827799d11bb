//! CNN training and inference throughput (issue 15's P4 and P5) on the models and settings of
//! the peers' programs (`bench/cntk/bench_cnn.py`, `bench/torch/bench_cnn.py`), for
//! `bench/cnn_compare.sh`:
//!
//! * `lenet` (P4, CNTK tutorial 103D): (1, 28, 28) · 1/255 → Convolution2D 5×5×8 pad relu →
//!   MaxPooling 2×2/2 → Convolution2D 5×5×16 pad relu → MaxPooling 3×3/3 → Dense(10), every
//!   layer under `default_options(init=glorot_uniform, activation=relu)`; sgd lr 0.2 per
//!   minibatch, minibatch 64, 60 timed minibatches.
//! * `resnet20` (P5, CNTK's CIFAR-10 ResNet-20): (3, 32, 32) → conv 3×3×16 + BN + relu → 3
//!   stages × 3 basic blocks (16, 32, 64 channels; stride 2 and a 1×1 projection + BN at the
//!   start of stages 2 and 3) → global average pooling → Dense(10); convolutions without bias,
//!   he_normal, BatchNormalization(map_rank=1, normalization_time_constant=4096);
//!   momentum_sgd lr 0.1 per minibatch, momentum 0.9, L2 1e-4, minibatch 64, 8 timed.
//!
//! Loss `cross_entropy_with_softmax`, metric `classification_error`, CNTK's `Trainer`. The
//! images are random (speed does not depend on content), four minibatches held in memory and
//! cycled as the peers do; the first `--warmup` minibatches are not timed. `--infer` then times
//! a forward-only executor at batch 1 and 64 (about 2 s each, the peers' loop).
//!
//! ```text
//! cargo run --release --example cnn_bench -- lenet|resnet20 [--infer] [--minibatches N]
//!     [--minibatch-size N] [--warmup N]
//! ```
//!
//! The last line is `RESULT {json}` (images_per_s, cpu_per_image_ms, infer_b1_ms,
//! infer_b64_ms, peak_rss_mb = VmHWM, threads = RAYON_NUM_THREADS or the core count).

use rntk::functions::{element_times, plus, relu};
use rntk::graph::scalar;
use rntk::initializer::{set_fixed_random_seed, Initializer, RandomKind};
use rntk::layers::{
    default_options, Activation, BatchNormalization, Convolution, DefaultOptions, Dense, Layer,
    Pooling,
};
use rntk::learners::{momentum_sgd, sgd, Learner, LearnerOptions, Schedule};
use rntk::train::Trainer;
use rntk::{input_variable, losses, metrics, DType, Executor, Result, Value, Variable};
use std::time::{Duration, Instant};

const CLASSES: usize = 10;

#[derive(Clone, Copy, PartialEq)]
enum Model {
    LeNet,
    ResNet20,
}

struct Args {
    model: Model,
    infer: bool,
    minibatch_size: usize,
    minibatches: usize,
    warmup: usize,
}

fn usage() -> ! {
    eprintln!(
        "usage: cnn_bench lenet|resnet20 [--infer] [--minibatches N] [--minibatch-size N] [--warmup N]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        model: Model::LeNet,
        infer: false,
        minibatch_size: 64,
        minibatches: 0,
        warmup: 3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut num = || -> usize {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| usage())
        };
        match k.as_str() {
            "lenet" => a.model = Model::LeNet,
            "resnet20" => a.model = Model::ResNet20,
            "--infer" => a.infer = true,
            "--minibatch-size" => a.minibatch_size = num().max(1),
            "--minibatches" => a.minibatches = num(),
            "--warmup" => a.warmup = num(),
            _ => usage(),
        }
    }
    if a.minibatches == 0 {
        a.minibatches = if a.model == Model::LeNet { 60 } else { 8 };
    }
    a
}

/// The model's input, output and learner.
struct Net {
    x: Variable,
    z: Variable,
    learner: Box<dyn Learner>,
}

/// Every learnable parameter `z` depends on.
fn params_of(z: &Variable) -> Vec<Variable> {
    z.owner().map(|f| f.parameters()).unwrap_or_default()
}

/// Tutorial 103D's convolutional network (bench_cnn.py's `lenet`).
fn lenet() -> Result<Net> {
    let x = input_variable([1, 28, 28]);
    let opts = DefaultOptions {
        init: Some(Initializer::glorot_uniform()),
        activation: Some(Activation::Relu),
        ..Default::default()
    };
    let layers: Vec<Box<dyn Layer>> = default_options(opts, || {
        vec![
            Box::new(Convolution::d2([5, 5]).num_filters(8).pad(true)) as Box<dyn Layer>,
            Box::new(Pooling::max(&[2, 2]).strides(&[2, 2])),
            Box::new(Convolution::d2([5, 5]).num_filters(16).pad(true)),
            Box::new(Pooling::max(&[3, 3]).strides(&[3, 3])),
            Box::new(Dense::new(CLASSES).activation(Activation::Identity)),
        ]
    });
    let mut h = element_times(&x, &scalar(1.0 / 255.0, DType::F32))?;
    for l in &layers {
        h = l.apply(&h)?;
    }
    let params = params_of(&h);
    let learner = sgd(&params, Schedule::constant(0.2), LearnerOptions::default())?;
    Ok(Net {
        x,
        z: h,
        learner: Box::new(learner),
    })
}

/// Convolution (no bias, he_normal, pad) + spatial BatchNormalization (+ relu).
fn conv_bn(h: &Variable, n: usize, stride: usize, relu_out: bool, k: usize) -> Result<Variable> {
    let c = Convolution::d2([k, k])
        .num_filters(n)
        .strides(&[stride, stride])
        .pad(true)
        .bias(false)
        .init(Initializer::random(RandomKind::HeNormal, 1.0))
        .activation(Activation::Identity);
    let bn = BatchNormalization::new()
        .map_rank(Some(1))
        .normalization_time_constant(4096.0);
    let y = bn.apply(&c.apply(h)?)?;
    if relu_out {
        relu(&y)
    } else {
        Ok(y)
    }
}

/// A basic residual block; a strided block projects its input with a 1×1 convolution + BN.
fn block(h: &Variable, n: usize, stride: usize) -> Result<Variable> {
    let s = conv_bn(h, n, stride, true, 3)?;
    let s = conv_bn(&s, n, 1, false, 3)?;
    let short = if stride != 1 {
        conv_bn(h, n, stride, false, 1)?
    } else {
        h.clone()
    };
    relu(&plus(&s, &short)?)
}

/// CNTK's CIFAR-10 ResNet-20 (bench_cnn.py's `resnet20`).
fn resnet20() -> Result<Net> {
    let x = input_variable([3, 32, 32]);
    let mut h = conv_bn(&x, 16, 1, true, 3)?;
    for (stage, n) in [16, 32, 64].into_iter().enumerate() {
        for b in 0..3 {
            let stride = if stage > 0 && b == 0 { 2 } else { 1 };
            h = block(&h, n, stride)?;
        }
    }
    let h = Pooling::global_average().apply(&h)?;
    let z = Dense::new(CLASSES)
        .init(Initializer::random(RandomKind::HeNormal, 1.0))
        .activation(Activation::Identity)
        .apply(&h)?;
    let params = params_of(&z);
    let options = LearnerOptions {
        l2_regularization_weight: 1e-4,
        ..LearnerOptions::default()
    };
    let learner = momentum_sgd(
        &params,
        Schedule::constant(0.1),
        Schedule::constant(0.9),
        true,
        options,
    )?;
    Ok(Net {
        x,
        z,
        learner: Box::new(learner),
    })
}

/// Uniform [0, scale) floats from a fixed xorshift stream (the peers use numpy's; only the
/// sizes matter for speed).
fn random_images(n: usize, scale: f32, state: &mut u64) -> Vec<f32> {
    (0..n)
        .map(|_| {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            (*state >> 40) as f32 / (1u64 << 24) as f32 * scale
        })
        .collect()
}

/// Four minibatches of images and one-hot labels, built once before the loop.
fn minibatches(shape: [usize; 3], scale: f32, mb: usize) -> Result<Vec<(Value, Value)>> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let per = shape.iter().product::<usize>();
    (0..4)
        .map(|_| {
            let x = Value::batch(shape, random_images(mb * per, scale, &mut state))?;
            let labels: Vec<usize> = (0..mb)
                .map(|i| (state as usize >> 3).wrapping_add(i * 7) % CLASSES)
                .collect();
            Ok((x, Value::one_hot_batch::<f32>(CLASSES, &labels)?))
        })
        .collect()
}

/// Peak resident set (VmHWM) in MiB, Linux only (−1 elsewhere).
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|st| {
            st.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(-1.0)
}

/// User + system CPU seconds of the process so far (Linux `/proc/self/stat`, 100 Hz ticks).
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
            Some(ticks / 100.0)
        })
        .unwrap_or(f64::NAN)
}

/// Milliseconds per forward at batch `b` (the peers' loop: one warm call, then ~2 s).
fn infer_ms((x, z): (&Variable, &Variable), images: &Value, b: usize) -> Result<f64> {
    let rows = images.dense_rows::<f32>();
    let per = x.shape().numel();
    let xb = Value::batch(x.shape().clone(), rows[..b * per].to_vec())?;
    let mut ex = Executor::<f32>::new_inference(std::slice::from_ref(z))?;
    ex.forward(&[(x, &xb)], false)?;
    let (t, mut k) = (Instant::now(), 0u32);
    while t.elapsed() < Duration::from_secs(2) {
        ex.forward(&[(x, &xb)], false)?;
        k += 1;
    }
    Ok(1000.0 * t.elapsed().as_secs_f64() / k as f64)
}

fn threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn main() -> Result<()> {
    let a = parse_args();
    set_fixed_random_seed(1);
    let (name, net, shape, scale) = match a.model {
        Model::LeNet => ("lenet", lenet()?, [1, 28, 28], 255.0),
        Model::ResNet20 => ("resnet20", resnet20()?, [3, 32, 32], 1.0),
    };
    let y = input_variable([CLASSES]);
    let loss = losses::cross_entropy_with_softmax(&net.z, &y, -1)?;
    let err = metrics::classification_error(&net.z, &y, -1, 1)?;
    let data = minibatches(shape, scale, a.minibatch_size)?;
    let Net { x, z, learner } = net;
    let mut trainer =
        Trainer::<f32>::new(Some(z.clone()), loss, Some(err), vec![learner], Vec::new())?;
    let (mut t0, mut c0, mut n) = (Instant::now(), cpu_seconds(), 0usize);
    for i in 0..a.warmup + a.minibatches {
        if i == a.warmup {
            (t0, c0) = (Instant::now(), cpu_seconds());
        }
        let (xv, yv) = &data[i % 4];
        trainer.train_minibatch(&[(&x, xv), (&y, yv)], false)?;
        if i >= a.warmup {
            n += a.minibatch_size;
        }
    }
    let (wall, cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
    let last_loss = trainer.previous_minibatch_loss_average();
    let ips = n as f64 / wall;
    let mut infer = String::new();
    if a.infer {
        let b1 = infer_ms((&x, &z), &data[0].0, 1)?;
        let b64 = infer_ms((&x, &z), &data[0].0, a.minibatch_size.min(64))?;
        infer = format!(",\"infer_b1_ms\":{b1:.4},\"infer_b64_ms\":{b64:.3}");
    }
    let t = threads();
    println!("{name} rntk {t} thread(s): {ips:.1} images/s");
    println!(
        "RESULT {{\"bench\":\"{name}\",\"impl\":\"rntk\",\"threads\":{t},\"images_per_s\":{ips:.2},\"cpu_per_image_ms\":{:.4},\"timed_images\":{n},\"last_loss\":{last_loss:.6}{infer},\"peak_rss_mb\":{:.1}}}",
        1000.0 * cpu / n.max(1) as f64,
        peak_rss_mb()
    );
    Ok(())
}

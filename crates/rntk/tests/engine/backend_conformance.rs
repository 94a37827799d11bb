//! The training suites on a second backend: the arena (opaque buffers in an arena of its
//! own, every host transfer counted) must train exactly as the CPU does — the seed
//! program through `Trainer` with CNTK's progress text, a sparse tagger with dropout and
//! batch normalization, a small convolutional network, every learner with clipping and
//! regularization, a CTF reader
//! into `train` with test, cross-validation and checkpoints — with the same bits and no
//! value crossing to the host inside a minibatch beyond the feeds and the fetches.
//! (The op and layer suites run on it through `tests/common`'s `arena_mirror`.)

use crate::common;

use rntk::backend::{Arena, Backend, Cpu, Memory, Transfers};
use rntk::functions::times;
use rntk::io::{CtfDeserializer, MinibatchSource, MinibatchSourceConfig, StreamDef};
use rntk::layers::{
    default_options, Activation, BatchNormalization, Convolution, DefaultOptions, Dense, Dropout,
    Embedding, Fold, Gru, Layer, Lstm, Pooling, Recurrence, Sequential,
};
use rntk::learners::{
    self, AdamOptions, FsAdaGradOptions, HostRule, Learner, LearnerOptions, RmsPropOptions,
    RuleState, RuleStep, Schedule, StandardLearner, StepContext, UpdateRule,
};
use rntk::train::{
    train, train_on, Callbacks, CheckpointConfig, Criterion, CrossValidationConfig,
    ProgressPrinter, ProgressWriter, TestConfig, TrainHistory, TrainOptions, Trainer,
};
use rntk::{
    input_variable, losses, metrics, sequence, DType, InputOptions, Tensor, Value, Variable,
};
use std::sync::{Arc, Mutex};

/// Every parameter of a model set to a fixed pattern (so two builds start equal).
fn fix_weights(params: &[Variable]) {
    for (k, p) in params.iter().enumerate() {
        let n = p.shape().numel();
        let v: Vec<f32> = (0..n)
            .map(|i| ((((7 * i + 3 * k) % 13) as f32) - 6.0) / 25.0)
            .collect();
        p.set_value(Tensor::from_vec(p.shape(), v).unwrap())
            .unwrap();
    }
}

fn param_bits(params: &[Variable]) -> Vec<Vec<u32>> {
    params
        .iter()
        .map(|p| {
            let t = p.value().unwrap();
            t.as_slice::<f32>()
                .unwrap()
                .iter()
                .map(|x| x.to_bits())
                .collect()
        })
        .collect()
}

/// "0.005s (5000.0 samples/s)" → "<time>": wall-clock parts differ run to run.
fn mask(text: &str) -> String {
    text.lines()
        .map(
            |l| match (l.starts_with("Finished Epoch"), l.rfind("s (")) {
                (true, Some(end)) => {
                    let cut = l[..end].rfind(' ').unwrap_or(0);
                    format!("{} <time>", &l[..cut])
                }
                _ => l.to_string(),
            },
        )
        .collect::<Vec<_>>()
        .join("\n")
}

/// What one training run produced.
#[derive(Debug, PartialEq)]
struct Run {
    /// Per minibatch: loss average, metric average, samples (bits of the f64s).
    per_mb: Vec<(u64, u64, u64)>,
    text: String,
    params: Vec<Vec<u32>>,
}

/// A model to train with `Trainer`: its inputs, criterion, parameters and minibatches.
struct Task {
    feeds: Vec<Variable>,
    loss: Variable,
    metric: Variable,
    params: Vec<Variable>,
    minibatches: Vec<Vec<Value>>,
}

/// The seed program's model (Fold(LSTM(15)) → Dense(1), squared error) on ragged
/// sequences.
fn seed_task() -> Task {
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
    let metric = losses::squared_error(&z, &target).unwrap();
    let params = model.parameters();
    fix_weights(&params);
    let minibatches = (0..12)
        .map(|m| {
            let lens = [5 + m % 3, 3, 7, 1 + m % 4];
            let xs = common::ragged(&lens, 1, m);
            let xs: Vec<Vec<f32>> = xs
                .iter()
                .map(|s| s.iter().map(|&v| v as f32).collect())
                .collect();
            let ys: Vec<f32> = (0..lens.len())
                .map(|i| 0.1 * (i + m) as f32 - 0.3)
                .collect();
            vec![
                Value::from_sequences([1], &xs).unwrap(),
                Value::batch([1], ys).unwrap(),
            ]
        })
        .collect();
    Task {
        feeds: vec![features, target],
        loss,
        metric,
        params,
        minibatches,
    }
}

/// A sparse tagger: one-hot words → Embedding → BatchNormalization → bidirectional GRU
/// and unfused LSTM → Dropout → Dense, cross-entropy against sparse labels.
fn tagger_task() -> Task {
    let (vocab, labels) = (20, 5);
    let sparse = |dim: usize, name: &str| {
        sequence::input_variable_with(
            dim,
            InputOptions {
                is_sparse: true,
                name: name.into(),
                ..Default::default()
            },
        )
    };
    let (words, tags) = (sparse(vocab, "words"), sparse(labels, "tags"));
    let model = default_options(
        DefaultOptions {
            initial_state: Some(0.1),
            ..Default::default()
        },
        || {
            Sequential::default()
                .then(Embedding::new(8))
                .then(BatchNormalization::new())
                .then(Recurrence::new(Gru::new(6)).go_backwards(true))
                .then(Recurrence::new(Lstm::new(5).fused(false)))
                .then(Dropout::new(0.25).unwrap().seed(17))
                .then(Dense::new(labels))
        },
    );
    let z = model.apply(&words).unwrap();
    let loss = losses::cross_entropy_with_softmax(&z, &tags, -1).unwrap();
    let metric = metrics::classification_error(&z, &tags, -1, 1).unwrap();
    let params = model.parameters();
    fix_weights(&params);
    let minibatches = (0..8)
        .map(|m| {
            let lens = [4 + m % 3, 2, 6, 3];
            let seq = |dim: usize, key: usize| -> Vec<Vec<usize>> {
                lens.iter()
                    .enumerate()
                    .map(|(i, &l)| (0..l).map(|t| (7 * t + 3 * i + key + m) % dim).collect())
                    .collect()
            };
            vec![
                Value::one_hot_sequences::<f32>(vocab, &seq(vocab, 1)).unwrap(),
                Value::one_hot_sequences::<f32>(labels, &seq(labels, 2)).unwrap(),
            ]
        })
        .collect();
    Task {
        feeds: vec![words, tags],
        loss,
        metric,
        params,
        minibatches,
    }
}

/// A small image classifier: Convolution(3×3, padded, relu) → spatial batch
/// normalization → MaxPooling(2×2, stride 2) → transposed Convolution(2×2) →
/// Convolution(3×3) → AveragePooling → Dense, cross-entropy against one-hot classes.
fn cnn_task() -> Task {
    let (classes, batch) = (3, 6);
    let images = input_variable([1, 8, 8]);
    let model = Sequential::default()
        .then(
            Convolution::d2([3, 3])
                .num_filters(4)
                .pad(true)
                .activation(Activation::Relu),
        )
        .then(BatchNormalization::new().map_rank(Some(1)))
        .then(Pooling::max(&[2, 2]).strides(&[2, 2]))
        .then(Convolution::transpose2d([2, 2]).num_filters(3))
        .then(Convolution::d2([3, 3]).num_filters(5))
        .then(Pooling::average(&[2, 2]))
        .then(Dense::new(classes));
    let z = model.apply(&images).unwrap();
    let labels = input_variable(classes);
    let loss = losses::cross_entropy_with_softmax(&z, &labels, -1).unwrap();
    let metric = metrics::classification_error(&z, &labels, -1, 1).unwrap();
    let params = model.parameters();
    fix_weights(&params);
    let minibatches = (0..8)
        .map(|m| {
            let px: Vec<f32> = (0..batch * 64)
                .map(|i| ((7 * i + 13 * m) % 29) as f32 / 29.0 - 0.4)
                .collect();
            let ys: Vec<f32> = (0..batch * classes)
                .map(|i| f32::from(u8::from(i % classes == (i / classes + m) % classes)))
                .collect();
            vec![
                Value::batch([1, 8, 8], px).unwrap(),
                Value::batch([classes], ys).unwrap(),
            ]
        })
        .collect();
    Task {
        feeds: vec![images, labels],
        loss,
        metric,
        params,
        minibatches,
    }
}

/// Train `task` with Adam through a `Trainer` on `backend`, with CNTK's progress text;
/// returns the run and the transfers of every minibatch after the first.
fn train_task<B: Backend>(backend: B, task: &Task) -> (Run, Vec<Transfers>) {
    let learner = learners::adam(
        &task.params,
        Schedule::constant(0.01),
        Schedule::constant(0.9),
        AdamOptions::default(),
    )
    .unwrap();
    let buf = Arc::new(Mutex::new(Vec::new()));
    let writers: Vec<Box<dyn ProgressWriter>> = vec![
        Box::new(ProgressPrinter::to_buffer(Some(0), buf.clone())),
        Box::new(ProgressPrinter::to_buffer(Some(3), buf.clone())),
    ];
    let mut trainer = Trainer::<f32, B>::with_backend(
        backend,
        None,
        task.loss.clone(),
        Some(task.metric.clone()),
        vec![Box::new(learner)],
        writers,
    )
    .unwrap();
    let (mut per_mb, mut transfers) = (Vec::new(), Vec::new());
    for (m, values) in task.minibatches.iter().enumerate() {
        let feeds: Vec<(&Variable, &Value)> = task.feeds.iter().zip(values).collect();
        let before = trainer.backend().transfers();
        trainer.train_minibatch(&feeds, m % 5 == 4).unwrap();
        if m > 0 {
            transfers.push(trainer.backend().transfers().since(&before));
        }
        per_mb.push((
            trainer.previous_minibatch_loss_average().to_bits(),
            trainer.previous_minibatch_evaluation_average().to_bits(),
            trainer.previous_minibatch_sample_count(),
        ));
        if m == 5 {
            trainer.summarize_training_progress();
        }
    }
    trainer.summarize_training_progress();
    let text = mask(&String::from_utf8(buf.lock().unwrap().clone()).unwrap());
    let params = param_bits(&task.params);
    (
        Run {
            per_mb,
            text,
            params,
        },
        transfers,
    )
}

/// After the first minibatch (which loads the parameters) a training step moves the
/// feeds up and the loss and metric down, nothing else.
fn assert_steady_transfers(transfers: &[Transfers], feeds: u64) {
    for (m, t) in transfers.iter().enumerate() {
        let want = Transfers {
            uploads: feeds,
            downloads: 2,
            op_reads: 0,
            op_writes: 0,
        };
        assert_eq!(*t, want, "minibatch {}: host transfers", m + 1);
    }
}

#[test]
fn the_seed_program_trains_on_the_arena_as_on_the_cpu() {
    let cpu = train_task(Cpu, &seed_task()).0;
    let arena = Arena::new();
    let (on_arena, transfers) = train_task(arena.clone(), &seed_task());
    assert_eq!(on_arena, cpu, "the arena's training differs from the CPU's");
    assert!(cpu.text.contains("Finished Epoch"), "{}", cpu.text);
    assert_steady_transfers(&transfers, 2);
}

#[test]
fn a_sparse_tagger_with_dropout_and_batch_norm_trains_on_the_arena_as_on_the_cpu() {
    let cpu = train_task(Cpu, &tagger_task()).0;
    let arena = Arena::new();
    let (on_arena, transfers) = train_task(arena.clone(), &tagger_task());
    assert_eq!(on_arena, cpu, "the arena's training differs from the CPU's");
    assert_steady_transfers(&transfers, 2);
}

#[test]
fn a_convolutional_network_trains_on_the_arena_as_on_the_cpu() {
    let cpu = train_task(Cpu, &cnn_task()).0;
    let arena = Arena::new();
    let (on_arena, transfers) = train_task(arena.clone(), &cnn_task());
    assert_eq!(on_arena, cpu, "the arena's training differs from the CPU's");
    let losses: Vec<f64> = cpu.per_mb.iter().map(|m| f64::from_bits(m.0)).collect();
    assert!(
        losses.iter().all(|l| l.is_finite() && *l > 0.0) && losses[0] != losses[7],
        "{losses:?}"
    );
    assert_steady_transfers(&transfers, 2);
}

/// A user-written rule updating host slices: sign-SGD.
struct SignSgd;

impl UpdateRule for SignSgd {
    fn name(&self) -> &str {
        "sign_sgd"
    }
    fn buffers(&self) -> usize {
        0
    }
    fn step(&mut self, _ctx: &StepContext, _scalars: &mut [f64]) -> RuleStep<'_> {
        RuleStep::Host(self)
    }
}

impl SignSgd {
    fn update<T: rntk::tensor::Element>(ctx: &StepContext, p: &mut [T], g: &[T]) {
        for (pi, &gi) in p.iter_mut().zip(g) {
            let sign = if gi == T::zero() {
                T::zero()
            } else {
                gi.signum()
            };
            *pi -= T::from_f64(ctx.eta) * sign;
        }
    }
}

impl HostRule for SignSgd {
    fn apply_f32(&mut self, c: &StepContext, p: &mut [f32], g: &[f32], _s: &mut RuleState<f32>) {
        Self::update(c, p, g)
    }
    fn apply_f64(&mut self, c: &StepContext, p: &mut [f64], g: &[f64], _s: &mut RuleState<f64>) {
        Self::update(c, p, g)
    }
}

/// Every built-in learner (and a host rule), with clipping and regularization.
fn learners_over(params: &[Variable]) -> Vec<Box<dyn Learner>> {
    let lr = || Schedule::constant(0.05);
    let mom = || Schedule::constant(0.9);
    let clip = LearnerOptions {
        gradient_clipping_threshold_per_sample: 0.3,
        l2_regularization_weight: 0.01,
        l1_regularization_weight: 0.002,
        ..Default::default()
    };
    let norm = LearnerOptions {
        gradient_clipping_threshold_per_sample: 0.2,
        gradient_clipping_with_truncation: false,
        ..Default::default()
    };
    let rms = RmsPropOptions {
        gamma: 0.9,
        inc: 1.2,
        dec: 0.7,
        max: 1.0,
        min: 0.01,
        need_ave_multiplier: true,
    };
    let b = |l: StandardLearner| Box::new(l) as Box<dyn Learner>;
    vec![
        b(learners::sgd(params, lr(), clip.clone()).unwrap()),
        b(learners::momentum_sgd(params, lr(), mom(), true, norm.clone()).unwrap()),
        b(learners::nesterov(params, lr(), mom(), false, clip.clone()).unwrap()),
        b(learners::adam(params, lr(), mom(), AdamOptions::default()).unwrap()),
        b(learners::adam(
            params,
            lr(),
            mom(),
            AdamOptions {
                adamax: true,
                common: norm,
                ..Default::default()
            },
        )
        .unwrap()),
        b(learners::adagrad(params, lr(), true, clip.clone()).unwrap()),
        b(learners::rmsprop(params, lr(), rms, LearnerOptions::default()).unwrap()),
        b(learners::fsadagrad(params, lr(), mom(), FsAdaGradOptions::default()).unwrap()),
        b(learners::adadelta(params, lr(), 0.95, 1e-6, clip).unwrap()),
        b(
            StandardLearner::new(params, lr(), LearnerOptions::default(), Box::new(SignSgd))
                .unwrap(),
        ),
    ]
}

/// Six updates of learner `k` over two f64 parameters on `backend`; the parameters
/// after each step and the transfers of each update.
fn learner_run<B: Backend>(backend: &B, k: usize) -> (Vec<Vec<f64>>, Vec<Transfers>) {
    let shapes = [vec![3usize, 4], vec![4]];
    let params: Vec<Variable> = shapes
        .iter()
        .enumerate()
        .map(|(j, s)| {
            let n: usize = s.iter().product();
            let v: Vec<f64> = (0..n)
                .map(|i| ((i * 5 + j) % 9) as f64 * 0.1 - 0.4)
                .collect();
            rntk::parameter_from(Tensor::from_vec(s.clone(), v).unwrap(), &format!("p{j}"))
        })
        .collect();
    for p in &params {
        let st = p.storage().unwrap();
        let mut t = st.write().unwrap();
        let resident = Memory::make_resident(backend, t.storage());
        *t.storage_mut() = resident;
    }
    let mut learner = learners_over(&params).swap_remove(k);
    let (mut trajectory, mut transfers) = (Vec::new(), Vec::new());
    for step in 0..6 {
        let grads: Vec<(Variable, Tensor)> = params
            .iter()
            .zip(&shapes)
            .map(|(p, s)| {
                let n: usize = s.iter().product();
                let g: Vec<f64> = (0..n)
                    .map(|i| ((i * 7 + step * 3) % 11) as f64 * 0.2 - 1.0)
                    .collect();
                let host = Tensor::from_vec(s.clone(), g).unwrap();
                let dev = Memory::make_resident(backend, host.storage());
                (
                    p.clone(),
                    Tensor::from_storage_checked(s.clone().into(), dev).unwrap(),
                )
            })
            .collect();
        let before = backend.transfers();
        learner.update(&grads, 8, step == 3).unwrap();
        transfers.push(backend.transfers().since(&before));
        for p in &params {
            trajectory.push(p.value().unwrap().to_f64_vec());
        }
    }
    (trajectory, transfers)
}

#[test]
fn every_learner_updates_on_the_arena_as_on_the_cpu() {
    let arena = Arena::new();
    for k in 0..learners_over(&[rntk::parameter_from(Tensor::zeros([1], DType::F64), "x")]).len() {
        let (cpu, _) = learner_run(&Cpu, k);
        let (on_arena, transfers) = learner_run(&arena, k);
        let bits = |t: &Vec<Vec<f64>>| -> Vec<Vec<u64>> {
            t.iter()
                .map(|v| v.iter().map(|x| x.to_bits()).collect())
                .collect()
        };
        assert_eq!(bits(&on_arena), bits(&cpu), "learner {k} on the arena");
        let host_rule = k == 9;
        for t in &transfers {
            // a host rule round-trips parameter and gradient; a kernel rule stays there
            let want = if host_rule { (2, 4) } else { (0, 0) };
            assert_eq!((t.uploads, t.downloads), want, "learner {k}: {t:?}");
            assert_eq!((t.op_reads, t.op_writes), (0, 0), "learner {k}");
        }
    }
}

/// A CTF file of tagged sequences (sparse words and labels).
fn write_ctf(path: &std::path::Path, sequences: usize) {
    let mut text = String::new();
    for s in 0..sequences {
        for t in 0..(2 + s % 5) {
            let (w, l) = ((3 * s + 7 * t) % 20, (s + 2 * t) % 5);
            text += &format!("{s} |words {w}:1 |tags {l}:1\n");
        }
    }
    std::fs::write(path, text).unwrap();
}

fn reader(path: &std::path::Path, sweeps: u64) -> MinibatchSource {
    let ctf = CtfDeserializer::open(
        path,
        &[StreamDef::sparse("words", 20), StreamDef::sparse("tags", 5)],
    )
    .unwrap();
    let cfg = MinibatchSourceConfig {
        max_sweeps: sweeps,
        randomization_seed: 3,
        ..MinibatchSourceConfig::default()
    };
    MinibatchSource::new(vec![Arc::new(ctf)], cfg).unwrap()
}

/// `train` (or `train_on` the arena) from a CTF reader, with a test pass, cross
/// validation and checkpoints; the history and the final parameters.
fn reader_run(dir: &std::path::Path, arena: Option<&Arena>) -> (TrainHistory, Vec<Vec<u32>>) {
    let task = tagger_task();
    let data = dir.join("train.ctf");
    write_ctf(&data, 60);
    let map = vec![
        (task.feeds[0].clone(), "words".to_string()),
        (task.feeds[1].clone(), "tags".to_string()),
    ];
    let learner = learners::momentum_sgd(
        &task.params,
        Schedule::constant(0.02),
        Schedule::constant(0.8),
        true,
        LearnerOptions::default(),
    )
    .unwrap();
    let mut ck = CheckpointConfig::new(dir.join("model"));
    ck.frequency = Some(100);
    let callbacks = Callbacks {
        test: Some(TestConfig::new(Box::new(reader(&data, 1)))),
        cross_validation: Some(CrossValidationConfig::new(Box::new(reader(&data, 1)))),
        checkpoint: Some(ck),
        ..Default::default()
    };
    let criterion = Criterion::new(task.loss.clone(), Some(task.metric.clone()));
    let options = TrainOptions::new(40).epoch_size(120).max_epochs(3);
    let learners: Vec<Box<dyn Learner>> = vec![Box::new(learner)];
    let mut src = reader(&data, u64::MAX);
    let history = match arena {
        Some(a) => train_on::<f32, Arena>(
            a.clone(),
            &criterion,
            &mut src,
            &map,
            learners,
            options,
            callbacks,
        ),
        None => train::<f32>(&criterion, &mut src, &map, learners, options, callbacks),
    }
    .unwrap();
    (history, param_bits(&task.params))
}

#[test]
fn a_ctf_reader_trains_a_model_on_the_arena_as_on_the_cpu() {
    let base = std::env::temp_dir().join(format!("rntk-conformance-{}", std::process::id()));
    let (a, b) = (base.join("cpu"), base.join("arena"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let cpu = reader_run(&a, None);
    let on_arena = reader_run(&b, Some(&Arena::new()));
    assert!(!cpu.0.updates.is_empty() && cpu.0.test_summary.is_some());
    assert_eq!(
        on_arena, cpu,
        "training from the reader differs on the arena"
    );
    // the checkpoints (written from the arena's parameters) are the same files' content
    let load = |d: &std::path::Path| rntk::Function::load(d.join("model")).unwrap();
    let (fa, fb) = (load(&a), load(&b));
    assert_eq!(fa.parameters().len(), fb.parameters().len());
    for (p, q) in fa.parameters().iter().zip(fb.parameters()) {
        assert_eq!(
            p.value().unwrap(),
            q.value().unwrap(),
            "checkpointed {}",
            p.name()
        );
    }
    let _ = std::fs::remove_dir_all(&base);
}

/// A value computed on the arena stays there until read: `backward` hands back
/// gradients on the device; reading one is one download.
#[test]
fn gradients_stay_on_the_device_until_read() {
    let arena = Arena::new();
    let x = input_variable(3);
    let w = rntk::parameter_from(Tensor::from_vec([3, 2], vec![0.5f32; 6]).unwrap(), "W");
    let y = times(&x, &w).unwrap();
    let mut ex =
        rntk::Executor::<f32, Arena>::with_backend(arena.clone(), std::slice::from_ref(&y))
            .unwrap();
    let v = Value::batch([3], vec![1.0f32, 2.0, 3.0]).unwrap();
    ex.forward(&[(&x, &v)], true).unwrap();
    let before = arena.transfers();
    let g = ex.backward(&[(&y, None)], &[&w]).unwrap();
    assert_eq!(arena.transfers().since(&before), Transfers::default());
    assert_eq!(g[0].dtype(), DType::F32);
    let host = g[0].dense_rows::<f32>();
    assert_eq!(host, vec![1.0, 1.0, 2.0, 2.0, 3.0, 3.0]);
    assert_eq!(arena.transfers().since(&before).downloads, 1);
    // the parameter itself lives on the arena now
    assert_eq!(
        w.storage().unwrap().read().unwrap().device(),
        arena.device()
    );
    drop((ex, g, w, y));
    assert_eq!(arena.live_buffers(), 0, "every arena buffer is freed");
}

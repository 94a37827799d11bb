//! `train` / `test`: lengths and epochs in trainer samples, histories, the test and
//! cross-validation configs, and checkpoints that resume bit-identically and survive a
//! kill -9 during a write.

use rntk::io::{InMemoryStream, MinibatchSourceFromData, INFINITELY_REPEAT};
use rntk::layers::{default_options, DefaultOptions, Dense, Fold, Layer, Lstm, Sequential};
use rntk::learners::{adam, AdamOptions, Learner, Schedule};
use rntk::train::{
    checkpoint_samples, test, train, Callbacks, CheckpointConfig, Criterion, CrossValidationConfig,
    ProgressPrinter, ProgressWriter, TestConfig, TrainOptions,
};
use rntk::{input_variable, losses, sequence, Tensor, Variable};
use std::path::Path;
use std::sync::{Arc, Mutex};

struct Seed {
    features: Variable,
    target: Variable,
    criterion: Criterion,
    params: Vec<Variable>,
}

/// The seed model with fixed initial weights (so two builds start equal).
fn seed_model() -> Seed {
    let features = sequence::input_variable(1);
    let model = default_options(
        DefaultOptions {
            initial_state: Some(0.1),
            ..Default::default()
        },
        || {
            Sequential::default()
                .then(Fold::new(Lstm::new(8)))
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
            .map(|i| ((((7 * i + k) % 11) as f32) - 5.0) / 20.0)
            .collect();
        p.set_value(Tensor::from_vec(p.shape(), v).unwrap())
            .unwrap();
    }
    Seed {
        features,
        target,
        criterion: Criterion::new(loss.clone(), Some(loss)),
        params,
    }
}

fn data(n: usize, key: usize) -> (Vec<Vec<f32>>, Vec<f32>) {
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    for i in 0..n {
        let len = 2 + (i * 7 + key) % 6;
        let s: Vec<f32> = (0..len)
            .map(|t| (((t * 3 + i) % 10) as f32) / 10.0)
            .collect();
        ys.push(s.iter().sum::<f32>() / len as f32);
        xs.push(s);
    }
    (xs, ys)
}

fn source(n: usize, key: usize, max_samples: u64, shuffle: bool) -> MinibatchSourceFromData {
    let (xs, ys) = data(n, key);
    let f = InMemoryStream::sequences("features", [1], &xs).unwrap();
    let t = InMemoryStream::samples("target", [1], &ys).unwrap();
    let s = MinibatchSourceFromData::new(vec![f, t], max_samples).unwrap();
    if shuffle {
        s.shuffled(7)
    } else {
        s
    }
}

fn learner(params: &[Variable]) -> Vec<Box<dyn Learner>> {
    vec![Box::new(
        adam(
            params,
            Schedule::constant(0.01),
            Schedule::constant(0.9),
            AdamOptions::default(),
        )
        .unwrap(),
    )]
}

fn map(m: &Seed) -> Vec<(Variable, String)> {
    vec![
        (m.features.clone(), "features".into()),
        (m.target.clone(), "target".into()),
    ]
}

#[test]
fn epochs_histories_test_and_cross_validation() {
    let m = seed_model();
    let mut src = source(100, 1, INFINITELY_REPEAT, false);
    let buf = Arc::new(Mutex::new(Vec::new()));
    let printer: Box<dyn ProgressWriter> = Box::new(
        ProgressPrinter::to_buffer(Some(2), buf.clone())
            .tag("Training")
            .num_epochs(3),
    );
    let calls = Arc::new(Mutex::new(Vec::new()));
    let c2 = calls.clone();
    let mut cv = CrossValidationConfig::new(Box::new(source(20, 3, INFINITELY_REPEAT, false)));
    cv.frequency = Some(50);
    cv.callback = Some(Box::new(move |r, _| {
        c2.lock().unwrap().push(*r);
        true
    }));
    let mut tc = TestConfig::new(Box::new(source(30, 5, rntk::io::FULL_DATA_SWEEP, false)));
    tc.minibatch_size = 10;
    let callbacks = Callbacks {
        progress_writers: vec![printer],
        test: Some(tc),
        cross_validation: Some(cv),
        checkpoint: None,
    };
    // 25 samples per minibatch request: minibatches hold whole sequences, so the
    // trainer's sample counts (one per sequence here) differ from the request.
    let h = train::<f32>(
        &m.criterion,
        &mut src,
        &map(&m),
        learner(&m.params),
        TrainOptions::new(25).epoch_size(50).max_epochs(3),
        callbacks,
    )
    .unwrap();
    assert_eq!(h.epoch_summaries.len(), 3, "{h:?}");
    let total: u64 = h.epoch_summaries.iter().map(|r| r.samples).sum();
    assert!(total >= 150, "{h:?}");
    assert!(h
        .epoch_summaries
        .iter()
        .all(|r| r.samples >= 50 && r.loss > 0.0));
    let (metric, samples) = h.test_summary.unwrap();
    assert_eq!(samples, 30);
    assert!(metric > 0.0);
    let calls = calls.lock().unwrap();
    assert_eq!(calls.len(), 3);
    assert_eq!(
        calls.iter().map(|c| c.index).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    assert!(calls.iter().all(|c| c.num_samples == 20));
    let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("Finished Epoch[1 of 3]: [Training] loss = "),
        "{text}"
    );
    assert!(
        text.contains("Finished Evaluation [1]: Minibatch[1-"),
        "{text}"
    );
    assert!(
        text.contains("Finished Evaluation [4]: Minibatch[1-"),
        "test shares the counter with CV:\n{text}"
    );
    assert!(text.contains(" Minibatch[   1-   2]: loss = "), "{text}");
    // test() gives the same pass as TestConfig would, on its own
    let (m2, s2) = test::<f32>(
        &m.criterion,
        &mut source(30, 5, rntk::io::FULL_DATA_SWEEP, false),
        &map(&m),
        10,
        vec![],
    )
    .unwrap();
    assert_eq!(s2, 30);
    assert!((m2 - metric).abs() < 1e-12);
}

#[test]
fn cross_validation_callback_can_stop_training() {
    let m = seed_model();
    let mut src = source(60, 2, INFINITELY_REPEAT, false);
    let mut cv = CrossValidationConfig::new(Box::new(source(10, 4, INFINITELY_REPEAT, false)));
    cv.frequency = Some(40);
    cv.callback = Some(Box::new(|r, learners| {
        // lower the learning rate, then stop at the second validation
        learners[0]
            .reset_learning_rate(Schedule::constant(0.001))
            .unwrap();
        r.index < 1
    }));
    let h = train::<f32>(
        &m.criterion,
        &mut src,
        &map(&m),
        learner(&m.params),
        TrainOptions::new(30).epoch_size(40).max_epochs(10),
        Callbacks {
            cross_validation: Some(cv),
            ..Default::default()
        },
    )
    .unwrap();
    let total: u64 = h.epoch_summaries.iter().map(|r| r.samples).sum();
    assert!(
        (80..120).contains(&total),
        "stopped after the second validation: {total} samples"
    );
}

#[test]
fn refuses_bad_configurations() {
    let m = seed_model();
    let mut src = source(10, 1, INFINITELY_REPEAT, false);
    let e = train::<f32>(
        &m.criterion,
        &mut src,
        &map(&m),
        learner(&m.params),
        TrainOptions::new(10),
        Callbacks::default(),
    );
    assert!(e.unwrap_err().to_string().contains("epoch_size"));
    let e = train::<f32>(
        &m.criterion,
        &mut src,
        &map(&m),
        learner(&m.params),
        TrainOptions::new(10)
            .epoch_size(5)
            .max_epochs(2)
            .max_samples(3),
        Callbacks::default(),
    );
    assert!(e.is_err());
    let e = train::<f32>(
        &m.criterion,
        &mut src,
        &[(m.features.clone(), "features".into())],
        learner(&m.params),
        TrainOptions::new(10).epoch_size(5),
        Callbacks::default(),
    );
    assert!(e.unwrap_err().to_string().contains("not mapped"));
    let bad_map = vec![
        (m.features.clone(), "features".into()),
        (m.target.clone(), "nope".into()),
    ];
    let e = train::<f32>(
        &m.criterion,
        &mut src,
        &bad_map,
        learner(&m.params),
        TrainOptions::new(10).epoch_size(5),
        Callbacks::default(),
    );
    assert!(e.unwrap_err().to_string().contains("nope"));
}

fn run(dir: &Path, preserve_all: bool, restore: bool) -> Vec<Vec<f32>> {
    let m = seed_model();
    let mut src = source(80, 6, INFINITELY_REPEAT, true);
    let mut ck = CheckpointConfig::new(dir.join("model"));
    ck.frequency = Some(60);
    ck.restore = restore;
    ck.preserve_all = preserve_all;
    train::<f32>(
        &m.criterion,
        &mut src,
        &map(&m),
        learner(&m.params),
        TrainOptions::new(40).epoch_size(60).max_epochs(10),
        Callbacks {
            checkpoint: Some(ck),
            ..Default::default()
        },
    )
    .unwrap();
    m.params
        .iter()
        .map(|p| p.value().unwrap().as_slice::<f32>().unwrap().to_vec())
        .collect()
}

#[test]
fn resuming_from_a_checkpoint_is_bit_identical() {
    let base = std::env::temp_dir().join(format!("rntk-ckpt-{}", std::process::id()));
    let (a, b) = (base.join("a"), base.join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    // An uninterrupted run keeping every epoch's checkpoint (model0, model1, ...).
    let uninterrupted = run(&a, true, false);
    // Resume a new run (new model objects, new learner, new reader) from the checkpoint
    // written after epoch 3.
    std::fs::copy(a.join("model2"), b.join("model")).unwrap();
    std::fs::copy(a.join("model2.ckp"), b.join("model.ckp")).unwrap();
    assert!(checkpoint_samples(&b.join("model")).unwrap().unwrap() >= 180);
    let resumed = run(&b, false, true);
    assert_eq!(
        resumed, uninterrupted,
        "epochs 4-10 after a restore differ from an uninterrupted run"
    );
    // the model file loads
    let f = rntk::Function::load(b.join("model")).unwrap();
    assert_eq!(f.outputs().len(), 2);
    let _ = std::fs::remove_dir_all(&base);
}

/// A child process that writes checkpoints as fast as it can until it is killed.
#[test]
fn kill_during_checkpoint_write_leaves_the_previous_one_loadable() {
    if let Ok(dir) = std::env::var("RNTK_CKPT_WRITER") {
        let dir = Path::new(&dir);
        loop {
            let m = seed_model();
            let mut src = source(40, 1, INFINITELY_REPEAT, true);
            let mut ck = CheckpointConfig::new(dir.join("model"));
            ck.frequency = Some(5);
            ck.restore = true;
            let _ = train::<f32>(
                &m.criterion,
                &mut src,
                &map(&m),
                learner(&m.params),
                TrainOptions::new(10).epoch_size(5).max_epochs(1_000_000),
                Callbacks {
                    checkpoint: Some(ck),
                    ..Default::default()
                },
            );
        }
    }
    let dir = std::env::temp_dir().join(format!("rntk-kill-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let exe = std::env::current_exe().unwrap();
    // the harness names a test by its module path inside the test binary
    let name = match module_path!().split_once("::") {
        Some((_, module)) => {
            format!("{module}::kill_during_checkpoint_write_leaves_the_previous_one_loadable")
        }
        None => "kill_during_checkpoint_write_leaves_the_previous_one_loadable".to_string(),
    };
    let mut last = 0u64;
    for round in 0..6u64 {
        let mut child = std::process::Command::new(&exe)
            .args(["--exact", name.as_str(), "--nocapture"])
            .env("RNTK_CKPT_WRITER", &dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300 + 137 * round));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        if let Some(n) = checkpoint_samples(&dir.join("model")).unwrap() {
            assert!(n >= last, "checkpoint went backwards");
            last = n;
        }
        rntk::Function::load(dir.join("model"))
            .unwrap_or_else(|e| panic!("round {round}: model file damaged: {e}"));
        // no temporary file counts as a checkpoint
        assert!(checkpoint_samples(&dir.join("model")).is_ok());
    }
    assert!(last > 0, "the writer never completed a checkpoint");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The seed data as CTF text (one id per sequence, the target on its first row).
fn ctf_of(n: usize, key: usize) -> String {
    let (xs, ys) = data(n, key);
    let mut s = String::new();
    for (i, (x, y)) in xs.iter().zip(&ys).enumerate() {
        for (t, v) in x.iter().enumerate() {
            if t == 0 {
                s.push_str(&format!("{i}\t|features {v}\t|target {y}\n"));
            } else {
                s.push_str(&format!("{i}\t|features {v}\n"));
            }
        }
    }
    s
}

/// A randomized source over a CTF file in small chunks (each read when needed).
fn ctf_source(path: &Path) -> rntk::io::MinibatchSource {
    use rntk::io::{CtfDeserializer, CtfOptions, Deserializer, MinibatchSource, StreamDef};
    let d = CtfDeserializer::with_options(
        path,
        &[
            StreamDef::dense("features", 1),
            StreamDef::dense("target", 1),
        ],
        CtfOptions {
            chunk_bytes: 256,
            ..CtfOptions::default()
        },
    )
    .unwrap();
    MinibatchSource::new(
        vec![Arc::new(d) as Arc<dyn Deserializer>],
        rntk::io::MinibatchSourceConfig {
            randomize: true,
            randomization_window_in_chunks: 3,
            randomization_seed: 11,
            ..Default::default()
        },
    )
    .unwrap()
}

/// Truncates a file to half its size after `after` minibatches: another program
/// rewriting the data while training reads it.
struct TruncateAfter {
    path: std::path::PathBuf,
    after: usize,
    seen: usize,
}

impl ProgressWriter for TruncateAfter {
    fn on_training_update(&mut self, _: &rntk::train::Totals) {
        self.seen += 1;
        if self.seen == self.after {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&self.path)
                .unwrap();
            let n = f.metadata().unwrap().len();
            f.set_len(n / 2).unwrap();
        }
    }
}

/// Issue 13: a data file truncated mid-training ends the run with an error naming
/// it (it used to end with SIGBUS); with the data back, the last checkpoint resumes
/// the run, bit-identical to a run never interrupted.
#[test]
fn data_truncated_mid_training_is_an_error_and_the_checkpoint_resumes_exactly() {
    let base = std::env::temp_dir().join(format!("rntk-trunc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let (a, b) = (base.join("a"), base.join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let text = ctf_of(80, 6);
    let run = |dir: &Path, data: &Path, writers: Vec<Box<dyn ProgressWriter>>| {
        let m = seed_model();
        let mut src = ctf_source(data);
        let mut ck = CheckpointConfig::new(dir.join("model"));
        ck.frequency = Some(60);
        let r = train::<f32>(
            &m.criterion,
            &mut src,
            &map(&m),
            learner(&m.params),
            TrainOptions::new(40).epoch_size(60).max_epochs(8),
            Callbacks {
                progress_writers: writers,
                checkpoint: Some(ck),
                ..Default::default()
            },
        );
        let params: Vec<Vec<f32>> = m
            .params
            .iter()
            .map(|p| p.value().unwrap().as_slice::<f32>().unwrap().to_vec())
            .collect();
        r.map(|_| params)
    };
    std::fs::write(a.join("train.ctf"), &text).unwrap();
    let uninterrupted = run(&a, &a.join("train.ctf"), vec![]).unwrap();

    let data = b.join("train.ctf");
    std::fs::write(&data, &text).unwrap();
    let cut = TruncateAfter {
        path: data.clone(),
        after: 20,
        seen: 0,
    };
    let e = run(&b, &data, vec![Box::new(cut)]).unwrap_err().to_string();
    assert!(
        e.contains("train.ctf") && e.contains("changed while it was being read"),
        "{e}"
    );
    let saved = checkpoint_samples(&b.join("model")).unwrap().unwrap();
    assert!((120..480).contains(&saved), "{saved}");
    // the data restored: the same run picks up at its last checkpoint
    std::fs::write(&data, &text).unwrap();
    let resumed = run(&b, &data, vec![]).unwrap();
    assert_eq!(resumed, uninterrupted);
    let _ = std::fs::remove_dir_all(&base);
}

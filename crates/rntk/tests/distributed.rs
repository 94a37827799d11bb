//! Data-parallel training with the workers as threads of one process (`ThreadGroup`):
//! the equivalence of issue #17 (N workers × m/N = 1 worker × m) without MPI, and the
//! distributed learners' contracts. `tests/mpi.rs` runs the same equivalence over MPI.

mod distributed_support;

use distributed_support::{check, rounding_floor, train_distributed, train_single, Model};
use rntk::distributed::{Communicator, ThreadGroup};
use std::sync::Arc;

fn threads(model: Model, workers: usize) -> Vec<distributed_support::Outcome> {
    let handles: Vec<_> = ThreadGroup::new(workers)
        .into_iter()
        .map(|c| {
            std::thread::spawn(move || {
                let c: Arc<dyn Communicator> = Arc::new(c);
                train_distributed(model, c)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

fn equivalence(model: Model) {
    let single = train_single(model, false);
    let floor = rounding_floor(model, &single);
    let outs = threads(model, 2);
    // every worker holds exactly the same parameters
    assert_eq!(outs[0].params, outs[1].params, "{model:?}: workers differ");
    let d = check(model, &outs[0], &single, floor);
    eprintln!(
        "{model:?}: 2 threads x m/2 vs 1 x m: max relative difference {d:e} (rounding floor {floor:e})"
    );
}

#[test]
fn seed_two_workers_equal_one() {
    equivalence(Model::Seed);
}

#[test]
fn slots_two_workers_equal_one() {
    equivalence(Model::Slots);
}

// --- the data split and the training session --------------------------------------

use rntk::distributed::{data_parallel_distributed_learner, DataParallelOptions};
use rntk::io::{
    CtfDeserializer, CtfOptions, Deserializer, MinibatchSource, MinibatchSourceConfig, StreamDef,
    WarningSink,
};
use rntk::layers::{Dense, Fold, Layer, Lstm, Sequential};
use rntk::learners::{momentum_sgd, Learner, LearnerOptions, Schedule};
use rntk::train::{train, Callbacks, CheckpointConfig, Criterion, ProgressPrinter, TrainOptions};
use rntk::{input_variable, losses, sequence, Tensor, Variable};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rntk-dist-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `n` sequences of 1..=7 steps of x (dim 2) and a one-step class label (of 4).
fn corpus(dir: &Path, n: u64) -> PathBuf {
    let mut s = String::new();
    for i in 0..n {
        let len = (i * 5 + 3) % 7 + 1;
        for t in 0..len {
            let a = ((i * 13 + t * 7) % 17) as f32 / 17.0;
            s.push_str(&format!("{i} |x {a} {}", (t as f32) / 7.0));
            if t == 0 {
                s.push_str(&format!(" |l {}:1", (i * 3 + len) % 4));
            }
            s.push('\n');
        }
    }
    let p = dir.join("train.ctf");
    std::fs::write(&p, s).unwrap();
    p
}

fn source(path: &Path) -> MinibatchSource {
    let o = CtfOptions {
        chunk_bytes: 300, // many chunks: both partitions get data
        warnings: Arc::new(WarningSink::silent()),
        ..CtfOptions::default()
    };
    let streams = [StreamDef::dense("x", 2), StreamDef::sparse("l", 4)];
    let d: Arc<dyn Deserializer> =
        Arc::new(CtfDeserializer::with_options(path, &streams, o).unwrap());
    MinibatchSource::new(
        vec![d],
        MinibatchSourceConfig {
            randomization_window_in_chunks: 4,
            randomization_seed: 5,
            ..MinibatchSourceConfig::default()
        },
    )
    .unwrap()
}

#[test]
fn partitions_are_the_whole_minibatch_split_by_chunk() {
    let dir = temp_dir("partition");
    let path = corpus(&dir, 300);
    let mut whole = source(&path);
    let mut parts = [source(&path), source(&path)];
    let mut both = 0;
    for _ in 0..120 {
        let w = whole.next_minibatch(40).unwrap().unwrap();
        let mut keys = BTreeMap::new();
        let mut nonempty = 0;
        for (r, p) in parts.iter_mut().enumerate() {
            let got = p.next_minibatch_partition(40, 2, r).unwrap().unwrap();
            assert_eq!(got.end_of_sweep, w.end_of_sweep());
            assert_eq!(p.current_position(), whole.current_position());
            if let Some(mb) = got.minibatch {
                nonempty += 1;
                for k in mb.keys {
                    *keys.entry(k).or_insert(0) += 1;
                }
            }
        }
        both += (nonempty == 2) as usize;
        let mut want = BTreeMap::new();
        for k in w.keys {
            *want.entry(k).or_insert(0) += 1;
        }
        assert_eq!(
            keys, want,
            "the partitions are the whole minibatch, disjoint"
        );
    }
    assert!(
        both > 60,
        "both partitions have data in most minibatches ({both})"
    );
    assert!(parts[0].next_minibatch_partition(40, 2, 2).is_err());
}

struct Net {
    x: Variable,
    l: Variable,
    criterion: Criterion,
    params: Vec<Variable>,
}

fn net() -> Net {
    let x = sequence::input_variable(2);
    let model = Sequential::default()
        .then(Fold::new(Lstm::new(6)))
        .then(Dense::new(4));
    let z = model.apply(&x).unwrap();
    let l = input_variable(4);
    let loss = losses::cross_entropy_with_softmax(&z, &l, -1).unwrap();
    let params = model.parameters();
    for (k, p) in params.iter().enumerate() {
        let n = p.shape().numel();
        let v: Vec<f32> = (0..n)
            .map(|i| ((((7 * i + k) % 11) as f32) - 5.0) / 20.0)
            .collect();
        p.set_value(Tensor::from_vec(p.shape(), v).unwrap())
            .unwrap();
    }
    Net {
        x,
        l,
        criterion: Criterion::new(loss.clone(), Some(loss)),
        params,
    }
}

struct Session {
    params: Vec<Vec<f32>>,
    text: String,
}

/// `train` on the corpus: one worker (`comm` None) or this member of a group.
fn session(
    path: &Path,
    comm: Option<Arc<dyn Communicator>>,
    max_samples: u64,
    checkpoint: Option<CheckpointConfig>,
    distributed_after: u64,
) -> Session {
    let n = net();
    let local: Box<dyn Learner> = Box::new(
        momentum_sgd(
            &n.params,
            Schedule::constant(0.01).per_sample(),
            Schedule::constant(0.9),
            true,
            LearnerOptions::default(),
        )
        .unwrap(),
    );
    let learner: Box<dyn Learner> = match comm {
        Some(c) => Box::new(
            data_parallel_distributed_learner(
                local,
                c,
                DataParallelOptions {
                    distributed_after,
                    ..Default::default()
                },
            )
            .unwrap(),
        ),
        None => local,
    };
    let buf = Arc::new(Mutex::new(Vec::new()));
    let mut cb = Callbacks {
        progress_writers: vec![Box::new(ProgressPrinter::to_buffer(Some(100), buf.clone()))],
        ..Default::default()
    };
    cb.checkpoint = checkpoint;
    let mut src = source(path);
    train::<f32>(
        &n.criterion,
        &mut src,
        &[(n.x.clone(), "x".into()), (n.l.clone(), "l".into())],
        vec![learner],
        TrainOptions::new(32)
            .epoch_size(400)
            .max_samples(max_samples),
        cb,
    )
    .unwrap();
    let params = n
        .params
        .iter()
        .map(|p| p.value().unwrap().as_slice::<f32>().unwrap().to_vec())
        .collect();
    let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
    Session { params, text }
}

/// Run `f(rank, communicator)` on 2 thread workers.
fn on_two<R: Send + 'static>(
    f: impl Fn(usize, Arc<dyn Communicator>) -> R + Send + Sync + Clone + 'static,
) -> Vec<R> {
    let hs: Vec<_> = ThreadGroup::new(2)
        .into_iter()
        .map(|c| {
            let f = f.clone();
            std::thread::spawn(move || f(c.rank(), Arc::new(c) as Arc<dyn Communicator>))
        })
        .collect();
    hs.into_iter().map(|h| h.join().unwrap()).collect()
}

#[test]
fn session_splits_the_data_and_rank_0_reports_and_checkpoints() {
    let dir = temp_dir("session");
    let path = corpus(&dir, 300);
    let single = session(&path, None, 1200, None, 0);
    for after in [0u64, 200] {
        let (p, d) = (path.clone(), dir.clone());
        let outs = on_two(move |rank, c| {
            let ck = d.join(format!("after{after}-rank{rank}.model"));
            session(&p, Some(c), 1200, Some(CheckpointConfig::new(ck)), after)
        });
        assert_eq!(outs[0].params, outs[1].params, "workers agree");
        let diff = distributed_support::max_difference(&outs[0].params, &single.params);
        assert!(
            diff <= 1e-5,
            "distributed_after {after}: {diff:e} from one worker"
        );
        assert!(
            outs[1].text.is_empty(),
            "rank 1 prints nothing: {}",
            outs[1].text
        );
        let lines = |t: &str| t.lines().filter(|l| l.contains("Minibatch[")).count();
        assert_eq!(
            lines(&outs[0].text),
            lines(&single.text),
            "{}",
            outs[0].text
        );
        assert!(dir.join(format!("after{after}-rank0.model.ckp")).exists());
        assert!(!dir.join(format!("after{after}-rank1.model.ckp")).exists());
    }
}

#[test]
fn a_checkpoint_resumes_on_the_same_workers_as_an_uninterrupted_run() {
    let dir = temp_dir("resume");
    let path = corpus(&dir, 300);
    // uninterrupted, keeping the checkpoint taken after 600 samples
    let (p, d) = (path.clone(), dir.clone());
    let whole = on_two(move |_, c| {
        let mut ck = CheckpointConfig::new(d.join("m.model"));
        ck.frequency = Some(600);
        ck.preserve_all = true;
        session(&p, Some(c), 1200, Some(ck), 0)
    });
    std::fs::copy(dir.join("m.model0.ckp"), dir.join("r.model.ckp")).unwrap();
    let (p, d) = (path.clone(), dir.clone());
    let resumed = on_two(move |_, c| {
        let mut ck = CheckpointConfig::new(d.join("r.model"));
        ck.frequency = Some(600);
        session(&p, Some(c), 1200, Some(ck), 0)
    });
    assert_eq!(
        resumed[0].params, whole[0].params,
        "resumed = uninterrupted"
    );
    assert_eq!(resumed[1].params, whole[1].params);
}

//! A small training session over a CTF corpus with many chunks, for the distributed
//! session, checkpoint and fault tests (threads in `tests/distributed.rs`, MPI
//! processes in `tests/mpi.rs`).

use rntk::distributed::{data_parallel_distributed_learner, Communicator, DataParallelOptions};
use rntk::io::{
    CtfDeserializer, CtfOptions, Deserializer, Minibatch, MinibatchPartition, MinibatchSource,
    MinibatchSourceConfig, StreamDef, WarningSink,
};
use rntk::layers::{Dense, Fold, Layer, Lstm, Sequential};
use rntk::learners::{momentum_sgd, Learner, LearnerOptions, Schedule};
use rntk::train::{
    train, Callbacks, CheckpointConfig, Criterion, MinibatchProvider, ProgressPrinter, TrainOptions,
};
use rntk::{input_variable, losses, sequence, Tensor, Variable};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// What a worker does to itself at its `at`-th minibatch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `kill -9` of itself.
    Kill { at: usize },
    /// SIGSTOP of itself: a frozen worker (its heartbeats stop too).
    Freeze { at: usize },
}

/// A source that injects a fault.
struct Faulty {
    inner: MinibatchSource,
    fault: Option<Fault>,
    minibatches: usize,
}

impl MinibatchProvider for Faulty {
    fn next_minibatch(&mut self, size: usize) -> rntk::Result<Option<Minibatch>> {
        self.inner.next_minibatch(size)
    }
    fn next_minibatch_partition(
        &mut self,
        size: usize,
        parts: usize,
        index: usize,
    ) -> rntk::Result<Option<MinibatchPartition>> {
        self.minibatches += 1;
        let signal = match self.fault {
            Some(Fault::Kill { at }) if at == self.minibatches => Some("-KILL"),
            Some(Fault::Freeze { at }) if at == self.minibatches => Some("-STOP"),
            _ => None,
        };
        if let Some(sig) = signal {
            let pid = std::process::id().to_string();
            let _ = std::process::Command::new("kill")
                .args([sig, &pid])
                .status();
            std::thread::sleep(std::time::Duration::from_secs(600));
        }
        self.inner.next_minibatch_partition(size, parts, index)
    }
    fn position(&self) -> rntk::Result<serde_json::Value> {
        MinibatchProvider::position(&self.inner)
    }
    fn restore_position(&mut self, p: &serde_json::Value) -> rntk::Result<()> {
        self.inner.restore_position(p)
    }
}

pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rntk-dist-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `n` sequences of 1..=7 steps of x (dim 2) and a one-step class label (of 4).
pub fn corpus(dir: &Path, n: u64) -> PathBuf {
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

pub fn source(path: &Path) -> MinibatchSource {
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

pub struct Net {
    x: Variable,
    l: Variable,
    criterion: Criterion,
    params: Vec<Variable>,
}

pub fn net() -> Net {
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

pub struct Session {
    pub params: Vec<Vec<f32>>,
    pub text: String,
}

/// `train` on the corpus: one worker (`comm` None) or this member of a group.
pub fn session(
    path: &Path,
    comm: Option<Arc<dyn Communicator>>,
    max_samples: u64,
    checkpoint: Option<CheckpointConfig>,
    distributed_after: u64,
    fault: Option<Fault>,
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
    let mut src = Faulty {
        inner: source(path),
        fault,
        minibatches: 0,
    };
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

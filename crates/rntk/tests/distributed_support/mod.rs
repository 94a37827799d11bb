//! The equivalence runs of issue #17, shared by `tests/distributed.rs` (workers as
//! threads of one process) and `tests/mpi.rs` (workers as MPI processes): the seed
//! model and the slots model trained for 50 minibatches, once by one worker on whole
//! minibatches of m samples and once by N workers on m/N each through
//! `data_parallel_distributed_learner`. The summed gradient is the gradient of the
//! whole minibatch, so the parameters agree to float32 rounding.
#![allow(dead_code)]

mod session;
#[allow(unused_imports)]
pub use session::{corpus, net, session, source, temp_dir, Fault, Net, Session};

use rntk::distributed::{data_parallel_distributed_learner, Communicator, DataParallelOptions};
use rntk::layers::{
    default_options, DefaultOptions, Dense, Embedding, Fold, Layer, Lstm, Recurrence, Sequential,
};
use rntk::learners::{adam, AdamOptions, Learner, LearnerOptions, Schedule};
use rntk::train::Trainer;
use rntk::{input_variable, losses, metrics, sequence, InputOptions, Tensor, Value, Variable};
use std::sync::Arc;

/// Minibatches trained (the 50).
pub const MINIBATCHES: usize = 50;
/// Sequences of one whole minibatch.
pub const SEQUENCES: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Model {
    /// The seed program: Fold(LSTM(15)) → Dense(1), squared error, adam (lr 0.005
    /// per minibatch, momentum 0.9).
    Seed,
    /// P3 slots: sparse words (943) → Embedding(150) → Recurrence(LSTM(300)) →
    /// Dense(129), cross entropy, adam (lr 0.002 per sample, clipping 15 per sample).
    Slots,
}

const VOCAB: usize = 943;
const LABELS: usize = 129;

/// SplitMix64: the data and initial values, the same in every process.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One sequence: the seed's (values, target) or the slots' (words, labels).
#[derive(Clone, Debug)]
pub enum Sample {
    Seed(Vec<f32>, f32),
    Slots(Vec<usize>, Vec<usize>),
}

/// The whole minibatches, in order.
pub fn data(model: Model) -> Vec<Vec<Sample>> {
    let mut rng = Rng(17 + model as u64);
    (0..MINIBATCHES)
        .map(|_| {
            (0..SEQUENCES)
                .map(|_| match model {
                    Model::Seed => {
                        let n = 3 + rng.below(12);
                        let x: Vec<f32> = (0..n).map(|_| rng.uniform()).collect();
                        let y = x.iter().sum::<f32>() / n as f32;
                        Sample::Seed(x, y)
                    }
                    Model::Slots => {
                        let n = 3 + rng.below(14);
                        let w: Vec<usize> = (0..n).map(|_| rng.below(VOCAB)).collect();
                        let l: Vec<usize> = w.iter().map(|&k| (k * 7 + 3) % LABELS).collect();
                        Sample::Slots(w, l)
                    }
                })
                .collect()
        })
        .collect()
}

/// A model ready to train: its parameters, inputs, loss and metric.
pub struct Setup {
    pub params: Vec<Variable>,
    x: Variable,
    y: Variable,
    loss: Variable,
    metric: Variable,
    model: Model,
}

pub fn setup(model: Model) -> Setup {
    let (params, x, y, loss, metric) = match model {
        Model::Seed => {
            let x = sequence::input_variable(1);
            let net = default_options(
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
            let z = net.apply(&x).unwrap();
            let y = input_variable(1);
            let loss = losses::squared_error(&z, &y).unwrap();
            let metric = losses::squared_error(&z, &y).unwrap();
            (net.parameters(), x, y, loss, metric)
        }
        Model::Slots => {
            let sparse = |dim, name: &str| {
                sequence::input_variable_with(
                    dim,
                    InputOptions {
                        is_sparse: true,
                        name: name.into(),
                        ..Default::default()
                    },
                )
            };
            let x = sparse(VOCAB, "query");
            let y = sparse(LABELS, "slot_labels");
            let net = default_options(
                DefaultOptions {
                    initial_state: Some(0.1),
                    ..Default::default()
                },
                || {
                    Sequential::default()
                        .then(Embedding::new(150))
                        .then(Recurrence::new(Lstm::new(300)))
                        .then(Dense::new(LABELS))
                },
            );
            let z = net.apply(&x).unwrap();
            let loss = losses::cross_entropy_with_softmax(&z, &y, -1).unwrap();
            let metric = metrics::classification_error(&z, &y, -1, 1).unwrap();
            (net.parameters(), x, y, loss, metric)
        }
    };
    // The same initial values in every process and thread, whatever the
    // initializers' global seed state.
    let mut rng = Rng(99);
    for p in &params {
        let n = p.shape().numel();
        let v: Vec<f32> = (0..n).map(|_| (rng.uniform() - 0.5) * 0.2).collect();
        p.set_value(Tensor::from_vec(p.shape(), v).unwrap())
            .unwrap();
    }
    Setup {
        params,
        x,
        y,
        loss,
        metric,
        model,
    }
}

impl Setup {
    /// The model's local learner, as in its program.
    pub fn learner(&self) -> Box<dyn Learner> {
        Box::new(match self.model {
            Model::Seed => adam(
                &self.params,
                Schedule::constant(0.005),
                Schedule::constant(0.9),
                AdamOptions::default(),
            )
            .unwrap(),
            Model::Slots => adam(
                &self.params,
                Schedule::constant(0.002).per_sample(),
                Schedule::constant(0.9),
                AdamOptions {
                    common: LearnerOptions {
                        gradient_clipping_threshold_per_sample: 15.0,
                        gradient_clipping_with_truncation: true,
                        ..Default::default()
                    },
                    ..Default::default()
                },
            )
            .unwrap(),
        })
    }

    pub fn trainer(&self, learner: Box<dyn Learner>) -> Trainer<f32> {
        Trainer::<f32>::new(
            None,
            self.loss.clone(),
            Some(self.metric.clone()),
            vec![learner],
            Vec::new(),
        )
        .unwrap()
    }

    /// Feeds for these sequences (none for an empty share).
    pub fn feeds(&self, seqs: &[Sample]) -> Vec<(Variable, Value)> {
        if seqs.is_empty() {
            return Vec::new();
        }
        match self.model {
            Model::Seed => {
                let xs: Vec<Vec<f32>> = seqs
                    .iter()
                    .map(|s| match s {
                        Sample::Seed(x, _) => x.clone(),
                        _ => unreachable!(),
                    })
                    .collect();
                let ys: Vec<f32> = seqs
                    .iter()
                    .map(|s| match s {
                        Sample::Seed(_, y) => *y,
                        _ => unreachable!(),
                    })
                    .collect();
                vec![
                    (self.x.clone(), Value::from_sequences([1], &xs).unwrap()),
                    (self.y.clone(), Value::batch([1], ys).unwrap()),
                ]
            }
            Model::Slots => {
                let (ws, ls): (Vec<Vec<usize>>, Vec<Vec<usize>>) = seqs
                    .iter()
                    .map(|s| match s {
                        Sample::Slots(w, l) => (w.clone(), l.clone()),
                        _ => unreachable!(),
                    })
                    .unzip();
                vec![
                    (
                        self.x.clone(),
                        Value::one_hot_sequences::<f32>(VOCAB, &ws).unwrap(),
                    ),
                    (
                        self.y.clone(),
                        Value::one_hot_sequences::<f32>(LABELS, &ls).unwrap(),
                    ),
                ]
            }
        }
    }

    pub fn values(&self) -> Vec<Vec<f32>> {
        self.params
            .iter()
            .map(|p| p.value().unwrap().as_slice::<f32>().unwrap().to_vec())
            .collect()
    }
}

/// What one run ends with: the parameters and every minibatch's loss average.
pub struct Outcome {
    pub params: Vec<Vec<f32>>,
    pub losses: Vec<f64>,
    pub samples: u64,
}

/// One worker on whole minibatches (`reversed`: each minibatch's sequences in the
/// opposite order, the same gradient summed in another order).
pub fn train_single(model: Model, reversed: bool) -> Outcome {
    let s = setup(model);
    let mut t = s.trainer(s.learner());
    let mut losses = Vec::new();
    for mut mb in data(model) {
        if reversed {
            mb.reverse();
        }
        let feeds = s.feeds(&mb);
        let refs: Vec<(&Variable, &Value)> = feeds.iter().map(|(v, x)| (v, x)).collect();
        t.train_minibatch(&refs, false).unwrap();
        losses.push(t.previous_minibatch_loss_average());
    }
    Outcome {
        params: s.values(),
        losses,
        samples: t.total_number_of_samples_seen(),
    }
}

/// This worker's share of every whole minibatch (contiguous, by sequences), through
/// the data-parallel learner over `comm`.
pub fn train_distributed(
    model: Model,
    comm: Arc<dyn Communicator>,
    bucket_bytes: usize,
) -> Outcome {
    let (rank, size) = (comm.rank(), comm.size());
    let s = setup(model);
    let o = DataParallelOptions {
        bucket_bytes,
        ..Default::default()
    };
    let learner = data_parallel_distributed_learner(s.learner(), comm, o).unwrap();
    let mut t = s.trainer(Box::new(learner));
    let mut losses = Vec::new();
    for mb in data(model) {
        let (a, b) = (mb.len() * rank / size, mb.len() * (rank + 1) / size);
        let feeds = s.feeds(&mb[a..b]);
        let refs: Vec<(&Variable, &Value)> = feeds.iter().map(|(v, x)| (v, x)).collect();
        t.train_minibatch(&refs, false).unwrap();
        losses.push(t.previous_minibatch_loss_average());
    }
    Outcome {
        params: s.values(),
        losses,
        samples: t.total_number_of_samples_seen(),
    }
}

/// Largest |a − b| / (1 + |b|) over all parameters.
pub fn max_difference(a: &[Vec<f32>], b: &[Vec<f32>]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| {
            assert_eq!(x.len(), y.len());
            x.iter()
                .zip(y)
                .map(|(&p, &q)| (p as f64 - q as f64).abs() / (1.0 + (q as f64).abs()))
        })
        .fold(0.0, f64::max)
}

/// The rounding floor: how far one worker's parameters move when only the order
/// of the sequences within each minibatch changes (float32 sums taken in another
/// order, carried through 50 adam steps; adam's normalization amplifies it for
/// parameters with tiny gradients). The distributed run sums in yet another order,
/// so it must stay within a small multiple of this.
pub fn rounding_floor(model: Model, single: &Outcome) -> f64 {
    max_difference(&train_single(model, true).params, &single.params)
}

/// Check a distributed outcome against the single-worker one; returns the largest
/// relative parameter difference.
pub fn check(model: Model, dist: &Outcome, single: &Outcome, floor: f64) -> f64 {
    assert_eq!(dist.samples, single.samples, "{model:?}: samples counted");
    for (k, (a, b)) in dist.losses.iter().zip(&single.losses).enumerate() {
        assert!(
            (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
            "{model:?}: minibatch {k} loss {a} vs single worker {b}"
        );
    }
    let d = max_difference(&dist.params, &single.params);
    let tolerance = (10.0 * floor).max(1e-6);
    assert!(
        d <= tolerance,
        "{model:?}: parameters differ from the single worker's by {d:e} (> {tolerance:e}, 10x the rounding floor {floor:e})"
    );
    d
}

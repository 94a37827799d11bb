//! The seed program — CNTK's time-series tutorial — in rntk, on built-in solar data:
//!
//! ```text
//! features = sequence.input_variable(1)
//! with default_options(initial_state = 0.1):
//!     model = Sequential([Fold(LSTM(15)), Dense(1)])(features)
//! target = input_variable(1, dynamic_axes = model.dynamic_axes)
//! loss = metric = squared_error(model, target)
//! learner = adam(model.parameters, lr = 0.005, momentum = 0.9)
//! train with minibatch_size = 140 samples, epoch_size = 12434, 10 epochs, ProgressPrinter(0)
//! then TestConfig on the test data, and predictions × NORMALIZE
//! ```
//!
//! Until the readers and `Function::train` land, the minibatches are formed here the way
//! CNTK's randomized reader forms them: whole sequences in a new random order each
//! sweep, at most 140 time steps per minibatch (at least one sequence).
//!
//!     cargo run --release --example seed_rnn

use rntk::datasets::Solar;
use rntk::layers::{default_options, DefaultOptions, Dense, Fold, Layer, Lstm, Sequential};
use rntk::learners::{adam, AdamOptions, Schedule};
use rntk::train::{ProgressPrinter, ProgressWriter, Trainer};
use rntk::{input_variable, losses, sequence, Executor, Result, Value};

const BATCH_SIZE: usize = 14 * 10;
const EPOCH_SIZE: u64 = 12434;
const EPOCHS: u64 = 10;
/// The tutorial scaled its data by the largest value; the synthetic data is already in [0, 1].
const NORMALIZE: f32 = 1.0;

/// Draws whole sequences in a new random order each sweep (a fixed-seed LCG, so every run
/// is the same), at most `BATCH_SIZE` time steps per minibatch.
struct Reader<'a> {
    data: &'a Solar,
    order: Vec<usize>,
    pos: usize,
    state: u64,
}

impl<'a> Reader<'a> {
    fn new(data: &'a Solar) -> Self {
        let mut r = Reader {
            data,
            order: (0..data.features.len()).collect(),
            pos: 0,
            state: 1,
        };
        r.shuffle();
        r
    }
    fn shuffle(&mut self) {
        for i in (1..self.order.len()).rev() {
            self.state = self
                .state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.order.swap(i, (self.state >> 33) as usize % (i + 1));
        }
    }
    fn next(&mut self) -> Result<(Value, Value, bool)> {
        let (mut xs, mut ys, mut steps) = (Vec::new(), Vec::new(), 0);
        let mut end_of_sweep = false;
        loop {
            let i = self.order[self.pos];
            let len = self.data.features[i].len();
            if !xs.is_empty() && steps + len > BATCH_SIZE {
                break;
            }
            xs.push(self.data.features[i].clone());
            ys.push(self.data.targets[i]);
            steps += len;
            self.pos += 1;
            if self.pos == self.order.len() {
                self.pos = 0;
                self.shuffle();
                end_of_sweep = true;
                break;
            }
        }
        Ok((
            Value::from_sequences([1], &xs)?,
            Value::batch([1], ys)?,
            end_of_sweep,
        ))
    }
}

fn main() -> Result<()> {
    let train = Solar::generate(true, 1);
    let test = Solar::generate(false, 1);

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
    let z = model.apply(&features)?;
    let target = input_variable(1);
    let loss = losses::squared_error(&z, &target)?;
    let metric = losses::squared_error(&z, &target)?;
    let learner = adam(
        &model.parameters(),
        Schedule::constant(0.005),
        Schedule::constant(0.9),
        AdamOptions::default(),
    )?;
    let printer: Box<dyn ProgressWriter> = Box::new(ProgressPrinter::new(Some(0)));
    let mut trainer = Trainer::<f32>::new(
        Some(z.clone()),
        loss,
        Some(metric),
        vec![Box::new(learner)],
        vec![printer],
    )?;

    // Function.train: an epoch ends with the first minibatch that reaches k·EPOCH_SIZE
    // label samples (here: sequences).
    let mut reader = Reader::new(&train);
    let max_samples = EPOCHS * EPOCH_SIZE;
    let mut next_epoch_end = EPOCH_SIZE;
    while trainer.total_number_of_samples_seen() < max_samples {
        let (x, y, sweep_end) = reader.next()?;
        trainer.train_minibatch(&[(&features, &x), (&target, &y)], sweep_end)?;
        if trainer.total_number_of_samples_seen() >= next_epoch_end {
            trainer.summarize_training_progress();
            next_epoch_end += EPOCH_SIZE;
        }
    }

    // TestConfig: one pass over the test data in minibatches of 32 samples.
    let mut test_reader = Reader::new(&test);
    test_reader.order = (0..test.features.len()).collect();
    let mut seen = 0;
    while seen < test.features.len() {
        let start = test_reader.pos;
        let (x, y, _) = next_test(&mut test_reader)?;
        seen += y.num_samples();
        trainer.test_minibatch(&[(&features, &x), (&target, &y)])?;
        if test_reader.pos <= start {
            break;
        }
    }
    trainer.summarize_test_progress();

    // Predictions on the first test sequences, scaled back.
    let mut eval = Executor::<f32>::new_inference(std::slice::from_ref(&z))?;
    let x = Value::from_sequences([1], &test.features[..5])?;
    eval.forward(&[(&features, &x)], false)?;
    let pred: Vec<f32> = eval
        .value(&z)?
        .to_vec::<f32>()
        .iter()
        .map(|p| p * NORMALIZE)
        .collect();
    let truth: Vec<f32> = test.targets[..5].iter().map(|t| t * NORMALIZE).collect();
    println!("predictions: {pred:?}");
    println!("targets:     {truth:?}");
    Ok(())
}

/// Test minibatches of at most 32 samples, in file order, one pass.
fn next_test(r: &mut Reader) -> Result<(Value, Value, bool)> {
    let (mut xs, mut ys, mut steps) = (Vec::new(), Vec::new(), 0);
    while r.pos < r.order.len() {
        let i = r.order[r.pos];
        let len = r.data.features[i].len();
        if !xs.is_empty() && steps + len > 32 {
            break;
        }
        xs.push(r.data.features[i].clone());
        ys.push(r.data.targets[i]);
        steps += len;
        r.pos += 1;
    }
    Ok((
        Value::from_sequences([1], &xs)?,
        Value::batch([1], ys)?,
        r.pos == r.order.len(),
    ))
}

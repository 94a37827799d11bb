//! The seed program — the RNN chapter of CNTK's tutorial — line for line in rntk.
//!
//! ```text
//! features = sequence.input_variable(1)
//! with default_options(initial_state=0.1):
//!     model = Sequential([Fold(LSTM(15)), Dense(1)])(features)
//! target = input_variable(1, dynamic_axes=model.dynamic_axes)
//! loss, metric = squared_error(model, target), squared_error(model, target)
//! learner = adam(model.parameters, lr=0.005, momentum=0.9)
//! train_datasource = MinibatchSource(CTFDeserializer(train.ctf, features, target), randomize=True)
//! test_datasource  = ... max_sweeps=1
//! loss.train(train_datasource, epoch_size=12434, parameter_learners=[learner],
//!            model_inputs_to_streams=input_map, callbacks=[ProgressPrinter(0), TestConfig(test)],
//!            minibatch_size=14*10, max_epochs=10)
//! model(test_samples) * NORMALIZE
//! ```
//!
//! With no arguments the built-in solar-like data (`rntk::datasets::Solar`, generated
//! deterministically) is written as CTF to a temporary folder and read from there;
//! `--train PATH --test PATH` reads your CTF files instead.
//!
//!     cargo run --release --example seed_rnn [-- --train train.ctf --test test.ctf]

use rntk::datasets::Solar;
use rntk::graph::{input_variable_with, InputOptions};
use rntk::io::{
    CtfDeserializer, CtfWriter, Deserializer, MinibatchSource, MinibatchSourceConfig, SeqStream,
    StreamDef, INFINITELY_REPEAT,
};
use rntk::layers::{default_options, DefaultOptions, Dense, Fold, Layer, Lstm, Sequential};
use rntk::learners::{adam, AdamOptions, Schedule};
use rntk::train::{train, Callbacks, Criterion, ProgressPrinter, TestConfig, TrainOptions};
use rntk::{losses, sequence, Error, Executor, Result, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const BATCH_SIZE: usize = 14 * 10;
const EPOCH_SIZE: u64 = 12434;
const EPOCHS: u64 = 10;
/// The tutorial divided its data by the largest value; the built-in data is already in [0, 1].
const NORMALIZE: f32 = 1.0;

fn create_datasource(filename: &Path, sweeps: u64) -> Result<MinibatchSource> {
    let target_stream = StreamDef::dense("target", 1);
    let features_stream = StreamDef::dense("features", 1);
    let deserializer = CtfDeserializer::open(filename, &[features_stream, target_stream])?;
    let config = MinibatchSourceConfig {
        randomize: true,
        max_sweeps: sweeps,
        ..Default::default()
    };
    MinibatchSource::new(
        vec![Arc::new(deserializer) as Arc<dyn Deserializer>],
        config,
    )
}

/// Write a split of the built-in data as CTF: `features` one row per step, `target`
/// one row per sequence, on its first line (the tutorial's file layout).
fn write_ctf(path: &Path, data: &Solar) -> Result<()> {
    let file = std::fs::File::create(path).map_err(|e| Error::Io {
        file: path.display().to_string(),
        detail: e.to_string(),
    })?;
    let mut w = CtfWriter::new(std::io::BufWriter::new(file), &["features", "target"])?;
    for (i, (x, y)) in data.features.iter().zip(&data.targets).enumerate() {
        let y = [*y];
        w.write_sequence(
            i as u64,
            &[
                SeqStream::Dense { dim: 1, values: x },
                SeqStream::Dense { dim: 1, values: &y },
            ],
        )?;
    }
    Ok(())
}

fn paths() -> Result<(PathBuf, PathBuf)> {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(PathBuf::from)
    };
    if let (Some(tr), Some(te)) = (flag("--train"), flag("--test")) {
        return Ok((tr, te));
    }
    let dir = std::env::temp_dir().join(format!("rntk-seed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| Error::Io {
        file: dir.display().to_string(),
        detail: e.to_string(),
    })?;
    let (tr, te) = (dir.join("train.ctf"), dir.join("test.ctf"));
    write_ctf(&tr, &Solar::generate(true, 1))?;
    write_ctf(&te, &Solar::generate(false, 1))?;
    Ok((tr, te))
}

fn main() -> Result<()> {
    let (train_file, test_file) = paths()?;

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
    let target = input_variable_with(
        1,
        InputOptions {
            dynamic_axes: z.dynamic_axes(),
            ..Default::default()
        },
    );

    // criterion_factory(z, t) -> (squared_error, squared_error)
    let loss = losses::squared_error(&z, &target)?;
    let metric = losses::squared_error(&z, &target)?;
    let criterion = Criterion::new(loss, Some(metric));
    let learner = adam(
        &model.parameters(),
        Schedule::constant(0.005),
        Schedule::constant(0.9),
        AdamOptions::default(),
    )?;

    let mut train_datasource = create_datasource(&train_file, INFINITELY_REPEAT)?;
    let test_datasource = create_datasource(&test_file, 1)?;

    let progress_writer = ProgressPrinter::new(Some(0));
    let test_config = TestConfig::new(Box::new(test_datasource));
    let input_map = vec![
        (features.clone(), "features".to_string()),
        (target.clone(), "target".to_string()),
    ];
    let history = train::<f32>(
        &criterion,
        &mut train_datasource,
        &input_map,
        vec![Box::new(learner)],
        TrainOptions::new(BATCH_SIZE)
            .epoch_size(EPOCH_SIZE)
            .max_epochs(EPOCHS),
        Callbacks {
            progress_writers: vec![Box::new(progress_writer)],
            test: Some(test_config),
            ..Default::default()
        },
    )?;
    if let Some((metric, samples)) = history.test_summary {
        println!("test: mean squared error {metric:.6} over {samples} sequences");
    }

    // validation: predictions on test sequences, scaled back by the normalization constant
    let test = Solar::generate(false, 1);
    let mut eval = Executor::<f32>::new_inference(std::slice::from_ref(&z))?;
    let x = Value::from_sequences([1], &test.features[..5])?;
    eval.forward(&[(&features, &x)], false)?;
    let pred: Vec<f32> = eval
        .value(&z)?
        .to_vec::<f32>()
        .iter()
        .map(|p| p * NORMALIZE)
        .collect();
    println!("predictions: {pred:?}");
    println!(
        "targets:     {:?}",
        test.targets[..5]
            .iter()
            .map(|t| t * NORMALIZE)
            .collect::<Vec<_>>()
    );
    if std::env::args().all(|a| a != "--train") {
        let _ = std::fs::remove_dir_all(train_file.parent().unwrap_or(Path::new(".")));
    }
    Ok(())
}

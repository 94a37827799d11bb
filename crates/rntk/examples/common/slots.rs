//! CNTK 202 (language understanding) shared by the two tagger examples: an ATIS-like
//! corpus written as CTF (the shape of `atis.train.ctf`: per word `|S0 word:1`, the
//! intent `|S1 intent:1` on a query's first row, `|S2 label:1`), the tutorial's reader,
//! and its training / evaluation functions:
//!
//! ```python
//! def create_reader(path, is_training):
//!     return C.io.MinibatchSource(C.io.CTFDeserializer(path, C.io.StreamDefs(
//!          query         = C.io.StreamDef(field='S0', shape=vocab_size,  is_sparse=True),
//!          intent_unused = C.io.StreamDef(field='S1', shape=num_intents, is_sparse=True),
//!          slot_labels   = C.io.StreamDef(field='S2', shape=num_labels,  is_sparse=True)
//!      )), randomize=is_training, max_sweeps = C.io.INFINITELY_REPEAT if is_training else 1)
//!
//! x = C.sequence.input_variable(vocab_size, is_sparse=True)
//! y = C.sequence.input_variable(num_labels)
//!
//! def create_criterion_function(model):
//!     labels = C.placeholder(name='labels')
//!     ce   = C.cross_entropy_with_softmax(model, labels)
//!     errs = C.classification_error      (model, labels)
//!     return ce, errs
//!
//! def train_test(train_reader, test_reader, model_func, max_epochs=10):
//!     model = model_func(x)
//!     loss, label_error = create_criterion_function(model)(x, y)
//!     epoch_size = 18000        # 18000 samples is half the dataset size
//!     minibatch_size = 70
//!     lr_per_sample = [3e-4]*4+[1.5e-4]
//!     lr_per_minibatch = [lr * minibatch_size for lr in lr_per_sample]
//!     lr_schedule = C.learning_parameter_schedule(lr_per_minibatch, epoch_size=epoch_size)
//!     momentums = C.momentum_schedule(0.9048374180359595, minibatch_size=minibatch_size)
//!     learner = C.adam(parameters=model.parameters, lr=lr_schedule, momentum=momentums,
//!                      gradient_clipping_threshold_per_sample=15,
//!                      gradient_clipping_with_truncation=True)
//!     progress_printer = C.logging.ProgressPrinter(freq=100, tag='Training', num_epochs=max_epochs)
//!     C.logging.log_number_of_parameters(model)
//!     (loss, label_error).train(train_reader, minibatch_size=minibatch_size,
//!         epoch_size=epoch_size, max_epochs=max_epochs,
//!         model_inputs_to_streams={x: train_reader.streams.query, y: train_reader.streams.slot_labels},
//!         parameter_learners=[learner],
//!         callbacks=[progress_printer, C.train.TestConfig(test_reader)])
//! ```
//!
//! The corpus is far smaller than ATIS (and so is the default epoch); its queries come
//! from a handful of templates, so a tagger learns it within a few epochs.

use super::Rng;
use rntk::io::{
    CtfDeserializer, CtfWriter, MinibatchSource, MinibatchSourceConfig, SeqStream, StreamDef,
    INFINITELY_REPEAT,
};
use rntk::layers::Layer;
use rntk::learners::{adam, AdamOptions, LearnerOptions, Schedule};
use rntk::train::{train, Callbacks, Criterion, ProgressPrinter, TestConfig, TrainOptions};
use rntk::{losses, metrics, sequence, InputOptions, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Slot labels, in the IOB style of ATIS.
pub const SLOT_LABELS: &[&str] = &[
    "O",
    "B-fromloc.city_name",
    "I-fromloc.city_name",
    "B-toloc.city_name",
    "I-toloc.city_name",
    "B-depart_date.day_name",
    "B-arrive_date.day_name",
    "B-depart_time.period_of_day",
    "B-airline_name",
    "I-airline_name",
    "B-cost_relative",
    "I-cost_relative",
    "B-city_name",
    "I-city_name",
];

/// Intents (stream S1, read but unused, as in the tutorial).
pub const INTENTS: &[&str] = &["flight", "airfare", "ground_service"];

const CITIES: &[&str] = &[
    "boston",
    "denver",
    "atlanta",
    "dallas",
    "seattle",
    "pittsburgh",
    "baltimore",
    "oakland",
    "philadelphia",
    "washington",
    "chicago",
    "miami",
    "new york",
    "san francisco",
    "los angeles",
    "salt lake city",
];
const DAYS: &[&str] = &[
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];
const PERIODS: &[&str] = &["morning", "afternoon", "evening", "night"];
const AIRLINES: &[&str] = &[
    "united",
    "delta",
    "american airlines",
    "us air",
    "continental",
];
const COSTS: &[&str] = &["cheapest", "lowest", "least expensive"];

/// Sentence templates: `{F}`/`{T}` from/to city, `{C}` a city, `{D}` departure day,
/// `{A}` arrival day, `{P}` period of day, `{L}` airline, `{$}` cost. The second field
/// is the intent. Some slots are decided only by the words after them (`{C} arrivals`
/// vs `{C} departures`, `{F} to {T}`), which a bidirectional tagger sees.
const TEMPLATES: &[(&str, usize)] = &[
    ("show me flights from {F} to {T}", 0),
    ("show me the flights from {F} to {T} on {D}", 0),
    ("i want to fly from {F} to {T} on {D} in the {P}", 0),
    ("flights to {T} from {F}", 0),
    ("what flights arrive in {T} from {F} on {A}", 0),
    ("list {L} flights from {F} to {T} arriving {A}", 0),
    ("{F} to {T} on {D}", 0),
    ("show {C} arrivals", 0),
    ("show {C} departures on {D}", 0),
    ("which {L} flights leave {F} in the {P}", 0),
    ("what is the {$} fare from {F} to {T}", 1),
    ("{$} fare to {T} from {F} on {L}", 1),
    ("ground transportation in {C}", 2),
    ("what ground transportation is available in {C} on {D}", 2),
];

/// The corpus vocabulary: every word the templates and slot fillers can produce,
/// plus the BOS/EOS markers the ATIS CTF files put around each query.
pub fn slot_vocabulary() -> Vec<String> {
    let mut words: Vec<String> = vec!["BOS".into(), "EOS".into()];
    let fillers = [CITIES, DAYS, PERIODS, AIRLINES, COSTS];
    let all = TEMPLATES
        .iter()
        .map(|t| t.0)
        .chain(fillers.iter().flat_map(|f| f.iter().copied()));
    for text in all {
        for w in text.split(' ') {
            if !w.starts_with('{') && !words.iter().any(|x| x == w) {
                words.push(w.to_string());
            }
        }
    }
    words
}

/// One generated query: word ids, slot-label ids and the intent.
pub struct Query {
    pub words: Vec<usize>,
    pub labels: Vec<usize>,
    pub intent: usize,
}

/// Generate `n` queries, BOS … EOS, each word with its IOB slot label.
pub fn generate_queries(rng: &mut Rng, n: usize, vocab: &[String]) -> Vec<Query> {
    let id = |w: &str| {
        vocab
            .iter()
            .position(|x| x == w)
            .expect("word in vocabulary")
    };
    let label = |l: &str| SLOT_LABELS.iter().position(|x| *x == l).expect("label");
    (0..n)
        .map(|_| {
            let &(template, intent) = rng.pick(TEMPLATES);
            let mut q = Query {
                words: vec![id("BOS")],
                labels: vec![label("O")],
                intent,
            };
            // two different cities for {F} and {T}
            let from = *rng.pick(CITIES);
            let to = loop {
                let c = *rng.pick(CITIES);
                if c != from {
                    break c;
                }
            };
            for token in template.split(' ') {
                let (filler, slot) = match token {
                    "{F}" => (from, "fromloc.city_name"),
                    "{T}" => (to, "toloc.city_name"),
                    "{C}" if template.contains("arrivals") => (from, "toloc.city_name"),
                    "{C}" if template.contains("departures") => (from, "fromloc.city_name"),
                    "{C}" => (from, "city_name"),
                    "{D}" => (*rng.pick(DAYS), "depart_date.day_name"),
                    "{A}" => (*rng.pick(DAYS), "arrive_date.day_name"),
                    "{P}" => (*rng.pick(PERIODS), "depart_time.period_of_day"),
                    "{L}" => (*rng.pick(AIRLINES), "airline_name"),
                    "{$}" => (*rng.pick(COSTS), "cost_relative"),
                    w => {
                        q.words.push(id(w));
                        q.labels.push(label("O"));
                        continue;
                    }
                };
                for (k, w) in filler.split(' ').enumerate() {
                    q.words.push(id(w));
                    let iob = if k == 0 { "B" } else { "I" };
                    q.labels.push(label(&format!("{iob}-{slot}")));
                }
            }
            q.words.push(id("EOS"));
            q.labels.push(label("O"));
            q
        })
        .collect()
}

/// Write queries as CNTK 202's CTF: per word a row `id |S0 word:1 |S2 label:1`, the
/// intent `|S1 intent:1` on the first row of each query.
pub fn write_slots_ctf(path: &Path, queries: &[Query]) -> Result<()> {
    let io = |e: std::io::Error| rntk::Error::Io {
        file: path.display().to_string(),
        detail: e.to_string(),
    };
    let file = std::fs::File::create(path).map_err(io)?;
    let mut w = CtfWriter::new(std::io::BufWriter::new(file), &["S0", "S1", "S2"])?;
    for (i, q) in queries.iter().enumerate() {
        let hot = |ids: &[usize]| -> Vec<Vec<(u32, f32)>> {
            ids.iter().map(|&k| vec![(k as u32, 1.0f32)]).collect()
        };
        let (s0, s1, s2) = (hot(&q.words), hot(&[q.intent]), hot(&q.labels));
        w.write_sequence(
            i as u64,
            &[
                SeqStream::Sparse { rows: &s0 },
                SeqStream::Sparse { rows: &s1 },
                SeqStream::Sparse { rows: &s2 },
            ],
        )?;
    }
    w.finish()?;
    Ok(())
}

/// An ATIS-like corpus on disk: train and test CTF files and the sizes a model needs.
pub struct SlotCorpus {
    pub dir: PathBuf,
    pub train: PathBuf,
    pub test: PathBuf,
    pub vocab_size: usize,
    pub num_labels: usize,
    pub num_intents: usize,
    /// Error rate of tagging every test word `O`.
    pub test_majority_error: f64,
    pub train_words: usize,
}

impl Drop for SlotCorpus {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Generate `train` and `test` queries into atis.{train,test}.ctf in a fresh temporary
/// directory (removed when the corpus is dropped).
pub fn make_slot_corpus(train: usize, test: usize, seed: u64) -> Result<SlotCorpus> {
    let dir = super::temp_dir("atis")?;
    let dir = dir.as_path();
    let vocab = slot_vocabulary();
    let mut rng = Rng::new(seed);
    let train_q = generate_queries(&mut rng, train, &vocab);
    let test_q = generate_queries(&mut rng, test, &vocab);
    let (train_path, test_path) = (dir.join("atis.train.ctf"), dir.join("atis.test.ctf"));
    write_slots_ctf(&train_path, &train_q)?;
    write_slots_ctf(&test_path, &test_q)?;
    let test_labels: Vec<usize> = test_q.iter().flat_map(|q| q.labels.clone()).collect();
    Ok(SlotCorpus {
        dir: dir.to_path_buf(),
        train: train_path,
        test: test_path,
        vocab_size: vocab.len(),
        num_labels: SLOT_LABELS.len(),
        num_intents: INTENTS.len(),
        test_majority_error: super::majority_error(&test_labels, SLOT_LABELS.len()),
        train_words: train_q.iter().map(|q| q.words.len()).sum(),
    })
}

/// CNTK 202's `create_reader`.
pub fn create_reader(
    path: &Path,
    is_training: bool,
    corpus: &SlotCorpus,
) -> Result<MinibatchSource> {
    let streams = [
        StreamDef::sparse("query", corpus.vocab_size).field("S0"),
        StreamDef::sparse("intent_unused", corpus.num_intents).field("S1"),
        StreamDef::sparse("slot_labels", corpus.num_labels).field("S2"),
    ];
    let deserializer = CtfDeserializer::open(path, &streams)?;
    MinibatchSource::new(
        vec![Arc::new(deserializer)],
        MinibatchSourceConfig {
            randomize: is_training,
            max_sweeps: if is_training { INFINITELY_REPEAT } else { 1 },
            ..Default::default()
        },
    )
}

/// Sizes of a training run.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    pub epoch_size: u64,
    pub max_epochs: u64,
    pub minibatch_size: usize,
    /// ProgressPrinter frequency in minibatches.
    pub progress_freq: u64,
}

/// What a tagger run ends with.
#[derive(Debug)]
pub struct Outcome {
    /// Fraction of test words tagged wrongly.
    pub test_error: f64,
    /// Error of tagging every test word `O`.
    pub chance_error: f64,
    pub num_parameters: usize,
}

/// CNTK 202's `train` + `evaluate`: `model` maps the query input to label scores.
pub fn train_test(corpus: &SlotCorpus, model: &dyn Layer, cfg: &TrainConfig) -> Result<Outcome> {
    // The query as a sparse input: the embedding multiplies the one-hot rows directly.
    let x = sequence::input_variable_with(
        corpus.vocab_size,
        InputOptions {
            is_sparse: true,
            name: "x".into(),
            ..Default::default()
        },
    );
    // Declared dense as in the tutorial: the sparse label stream is densified when fed
    // (rntk's cross_entropy_with_softmax and classification_error take dense targets).
    let y = sequence::input_variable_with(
        corpus.num_labels,
        InputOptions {
            name: "y".into(),
            ..Default::default()
        },
    );
    let z = model.apply(&x)?;
    let loss = losses::cross_entropy_with_softmax(&z, &y, -1)?;
    let label_error = metrics::classification_error(&z, &y, -1, 1)?;

    let mb = cfg.minibatch_size;
    let lr_per_sample = [3e-4, 3e-4, 3e-4, 3e-4, 1.5e-4];
    let lr_per_minibatch: Vec<f64> = lr_per_sample.iter().map(|lr| lr * mb as f64).collect();
    let lr_schedule = Schedule::piecewise(&lr_per_minibatch, Some(cfg.epoch_size))?;
    let momentums = Schedule::constant(0.9048374180359595).with_minibatch_size(mb);
    let parameters = model.parameters();
    let learner = adam(
        &parameters,
        lr_schedule,
        momentums,
        AdamOptions {
            common: LearnerOptions {
                gradient_clipping_threshold_per_sample: 15.0,
                gradient_clipping_with_truncation: true,
                ..Default::default()
            },
            ..Default::default()
        },
    )?;
    // C.logging.log_number_of_parameters(model)
    let num_parameters: usize = parameters.iter().map(|p| p.shape().numel()).sum();
    println!(
        "Training {num_parameters} parameters in {} parameter tensors.",
        parameters.len()
    );

    let mut train_reader = create_reader(&corpus.train, true, corpus)?;
    let test_reader = create_reader(&corpus.test, false, corpus)?;
    let history = train::<f32>(
        &Criterion::new(loss, Some(label_error)),
        &mut train_reader,
        &[(x, "query".into()), (y, "slot_labels".into())],
        vec![Box::new(learner)],
        TrainOptions::new(mb)
            .epoch_size(cfg.epoch_size)
            .max_epochs(cfg.max_epochs),
        Callbacks {
            progress_writers: vec![Box::new(
                ProgressPrinter::new(Some(cfg.progress_freq))
                    .tag("Training")
                    .num_epochs(cfg.max_epochs),
            )],
            test: Some(TestConfig::new(Box::new(test_reader))),
            ..Default::default()
        },
    )?;
    let (test_error, _) = history.test_summary.expect("a TestConfig was given");
    Ok(Outcome {
        test_error,
        chance_error: corpus.test_majority_error,
        num_parameters,
    })
}

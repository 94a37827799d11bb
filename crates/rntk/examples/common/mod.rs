//! Helpers shared by the tutorial examples (and by tests/examples_learn.rs, which runs
//! reduced versions of them): a seeded random generator standing in for numpy's,
//! the tutorials' synthetic data, a tiny argument parser, and an ATIS-like slot-tagging
//! corpus written as CNTK Text Format.

// Every example uses a different part of this module.
#![allow(dead_code)]

use rntk::io::{CtfWriter, SeqStream};
use rntk::Result;
use std::path::{Path, PathBuf};

/// SplitMix64: a small, seeded generator (the tutorials call `np.random.seed(0)`).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }
    /// Standard normal (Box–Muller), `np.random.randn()`.
    pub fn normal(&mut self) -> f64 {
        let u = 1.0 - self.uniform();
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
    /// Uniform integer in [0, n), `np.random.randint(0, n)`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

/// One-hot rows (`num_classes` values per sample) for class indices.
pub fn one_hot(labels: &[usize], num_classes: usize) -> Vec<f32> {
    let mut v = vec![0.0f32; labels.len() * num_classes];
    for (i, &c) in labels.iter().enumerate() {
        v[i * num_classes + c] = 1.0;
    }
    v
}

/// CNTK 101/102's `generate_random_data_sample(sample_size, feature_dim, num_classes)`:
///
/// ```text
/// Y = np.random.randint(size=(sample_size, 1), low=0, high=num_classes)
/// X = (np.random.randn(sample_size, feature_dim) + 3) * (Y + 1)
/// ```
///
/// Returns the features (`sample_size × feature_dim`, row-major), the one-hot labels
/// (`sample_size × num_classes`) and the class indices.
pub fn generate_random_data_sample(
    rng: &mut Rng,
    sample_size: usize,
    feature_dim: usize,
    num_classes: usize,
) -> (Vec<f32>, Vec<f32>, Vec<usize>) {
    let ys: Vec<usize> = (0..sample_size).map(|_| rng.below(num_classes)).collect();
    let mut xs = Vec::with_capacity(sample_size * feature_dim);
    for &y in &ys {
        for _ in 0..feature_dim {
            xs.push(((rng.normal() + 3.0) * (y as f64 + 1.0)) as f32);
        }
    }
    (xs, one_hot(&ys, num_classes), ys)
}

/// The error rate of always answering the most frequent class.
pub fn majority_error(labels: &[usize], num_classes: usize) -> f64 {
    let mut counts = vec![0usize; num_classes];
    for &c in labels {
        counts[c] += 1;
    }
    let best = counts.iter().copied().max().unwrap_or(0);
    1.0 - best as f64 / labels.len().max(1) as f64
}

/// `--name VALUE` from the command line, parsed; exits with a message when the value
/// does not parse.
pub fn arg<T: std::str::FromStr>(name: &str) -> Option<T> {
    let args: Vec<String> = std::env::args().collect();
    let flag = format!("--{name}");
    let i = args.iter().position(|a| *a == flag)?;
    match args.get(i + 1).map(|v| v.parse::<T>()) {
        Some(Ok(v)) => Some(v),
        _ => {
            eprintln!("{flag} needs a value (see the example's header)");
            std::process::exit(2);
        }
    }
}

/// A fresh directory for generated files (under the system temp dir).
pub fn temp_dir(tag: &str) -> Result<PathBuf> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "rntk-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).map_err(|e| rntk::Error::Io {
        file: dir.display().to_string(),
        detail: e.to_string(),
    })?;
    Ok(dir)
}

// ---------------------------------------------------------------------------------
// An ATIS-like slot-tagging corpus (the shape of CNTK 202's atis.train.ctf).

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
const AIRLINES: &[&str] = &["united", "delta", "american airlines", "us air", "continental"];
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
    let id = |w: &str| vocab.iter().position(|x| x == w).expect("word in vocabulary");
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

/// Generate `train` and `test` queries into `dir`/atis.{train,test}.ctf.
pub fn make_slot_corpus(dir: &Path, train: usize, test: usize, seed: u64) -> Result<SlotCorpus> {
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
        test_majority_error: majority_error(&test_labels, SLOT_LABELS.len()),
        train_words: train_q.iter().map(|q| q.words.len()).sum(),
    })
}

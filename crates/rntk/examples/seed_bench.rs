//! Benchmark of the seed program (issue #5) on CTF files shared with the peers
//! (CNTK 2.7's `bench/cntk/seed_rnn.py`, PyTorch's `bench/torch/seed_rnn.py`):
//! exactly the seed configuration — `Fold(LSTM(15))`, `Dense(1)`, initial state 0.1,
//! squared error as loss and metric, adam(lr 0.005, momentum 0.9), a randomized
//! `MinibatchSource` over a `CtfDeserializer`, minibatches of 140 samples, epochs of
//! 12434 (label) samples, 10 epochs, `ProgressPrinter(0)` and `TestConfig(test)` — timed
//! around `rntk::train::train`, then inference latency (one sequence per call) and
//! throughput (256 sequences per call) with a warm forward-only executor.
//!
//! ```text
//! python3 ../shared/bench/data/synth.py timeseries DIR
//! cargo run --release --example seed_bench -- --train DIR/train.ctf --test DIR/test.ctf
//! ```
//!
//! Options: `--epochs N` (10), `--seed N` (1: the initializers' seed, as `seed_rnn.py
//! --seed`), `--data-seed N` (0: the training source's randomization seed; CNTK's
//! `MinibatchSource` default, which `seed_rnn.py` leaves as it is),
//! `--write-builtin DIR` (write the seed example's built-in data as CTF and exit),
//! `--infer-seconds S` (time spent per inference case,
//! default 2), `--profile` (also run the same training as a hand-written loop that
//! times reader, forward, backward and learner separately), `--quiet` (no progress text).
//! The last line is `RESULT {json}`.

use rntk::datasets::Solar;
use rntk::initializer::set_fixed_random_seed;
use rntk::io::{
    CtfDeserializer, Deserializer, MinibatchSource, MinibatchSourceConfig, StreamDef,
    INFINITELY_REPEAT,
};
use rntk::layers::{default_options, DefaultOptions, Dense, Fold, Layer, Lstm, Sequential};
use rntk::learners::{adam, AdamOptions, Learner, Schedule};
use rntk::train::{
    feeds_for, sample_count, train, Callbacks, Criterion, MinibatchProvider, ProgressPrinter,
    ProgressWriter, TestConfig, TrainOptions,
};
use rntk::{input_variable, losses, sequence, Executor, Result, Value, Variable};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

const BATCH_SIZE: usize = 14 * 10;
const EPOCH_SIZE: u64 = 12434;

struct Args {
    train: PathBuf,
    test: PathBuf,
    epochs: u64,
    infer_seconds: f64,
    profile: bool,
    quiet: bool,
    seed: u64,
    data_seed: u64,
}

fn usage() -> ! {
    eprintln!(
        "usage: seed_bench --train TRAIN.ctf --test TEST.ctf [--epochs N] [--seed N] [--data-seed N] [--infer-seconds S] [--profile] [--quiet]\n       seed_bench --write-builtin DIR   (the seed example's built-in data as DIR/train.ctf, DIR/test.ctf)"
    );
    std::process::exit(1)
}

fn parse_args() -> Args {
    let mut a = Args {
        train: PathBuf::new(),
        test: PathBuf::new(),
        epochs: 10,
        infer_seconds: 2.0,
        profile: false,
        quiet: false,
        seed: 1,
        data_seed: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| usage());
        match k.as_str() {
            "--train" => a.train = val().into(),
            "--test" => a.test = val().into(),
            "--epochs" => a.epochs = val().parse().unwrap_or_else(|_| usage()),
            "--infer-seconds" => a.infer_seconds = val().parse().unwrap_or_else(|_| usage()),
            "--profile" => a.profile = true,
            "--quiet" => a.quiet = true,
            "--seed" => a.seed = val().parse().unwrap_or_else(|_| usage()),
            "--data-seed" => a.data_seed = val().parse().unwrap_or_else(|_| usage()),
            "--write-builtin" => {
                write_builtin(&PathBuf::from(val())).unwrap_or_else(|e| {
                    eprintln!("seed_bench: {e}");
                    std::process::exit(1)
                });
                std::process::exit(0)
            }
            _ => usage(),
        }
    }
    if a.train.as_os_str().is_empty() || a.test.as_os_str().is_empty() {
        usage()
    }
    a
}

/// The seed model and criterion (the tutorial's program).
struct Seed {
    features: Variable,
    target: Variable,
    z: Variable,
    criterion: Criterion,
    params: Vec<Variable>,
}

fn seed_model() -> Result<Seed> {
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
    Ok(Seed {
        features,
        target,
        z,
        criterion: Criterion::new(loss, Some(metric)),
        params: model.parameters(),
    })
}

fn learner(params: &[Variable]) -> Result<Box<dyn Learner>> {
    Ok(Box::new(adam(
        params,
        Schedule::constant(0.005),
        Schedule::constant(0.9),
        AdamOptions::default(),
    )?))
}

/// CNTK's `create_datasource`: `features` and `target` streams, randomized for training.
fn source(path: &PathBuf, train: bool, seed: u64) -> Result<MinibatchSource> {
    let streams = [
        StreamDef::dense("features", 1),
        StreamDef::dense("target", 1),
    ];
    let d: Arc<dyn Deserializer> = Arc::new(CtfDeserializer::open(path, &streams)?);
    MinibatchSource::new(
        vec![d],
        MinibatchSourceConfig {
            randomize: train,
            randomization_seed: seed,
            max_sweeps: if train { INFINITELY_REPEAT } else { 1 },
            ..MinibatchSourceConfig::default()
        },
    )
}

fn map(m: &Seed) -> Vec<(Variable, String)> {
    vec![
        (m.features.clone(), "features".into()),
        (m.target.clone(), "target".into()),
    ]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Median time per call of `f`, from rounds of `per_round` calls over about `seconds`.
fn time_calls(seconds: f64, mut f: impl FnMut() -> Result<()>) -> Result<(f64, usize)> {
    // warm up and size the rounds to ~2 ms
    let t = Instant::now();
    let mut n = 0usize;
    while t.elapsed() < Duration::from_millis(50) {
        f()?;
        n += 1;
    }
    let per_call = t.elapsed().as_secs_f64() / n as f64;
    let per_round = ((2e-3 / per_call) as usize).max(1);
    let mut rounds = Vec::new();
    let t = Instant::now();
    while t.elapsed().as_secs_f64() < seconds || rounds.len() < 5 {
        let r = Instant::now();
        for _ in 0..per_round {
            f()?;
        }
        rounds.push(r.elapsed().as_secs_f64() / per_round as f64);
    }
    let calls = rounds.len() * per_round;
    Ok((median(rounds), calls))
}

/// The seed example's built-in data (`Solar::generate(_, 1)`, what `seed_rnn` trains on
/// without arguments) as CTF files in synth.py's layout, values written exactly
/// (shortest round-trip form), so that CNTK can train on the same data.
fn write_builtin(dir: &PathBuf) -> std::io::Result<()> {
    use std::fmt::Write as _;
    std::fs::create_dir_all(dir)?;
    for (name, train) in [("train.ctf", true), ("test.ctf", false)] {
        let d = Solar::generate(train, 1);
        let mut text = String::new();
        for (id, (xs, y)) in d.features.iter().zip(&d.targets).enumerate() {
            for (t, x) in xs.iter().enumerate() {
                let _ = write!(text, "{id}\t|features {x}");
                if t == 0 {
                    let _ = write!(text, "\t|target {y}");
                }
                text.push('\n');
            }
        }
        std::fs::write(dir.join(name), text)?;
        println!(
            "{}: {} sequences, {} samples",
            dir.join(name).display(),
            d.features.len(),
            d.features.iter().map(Vec::len).sum::<usize>()
        );
    }
    Ok(())
}

/// The test file's sequences, in file order.
fn read_sequences(path: &PathBuf) -> Result<Vec<Vec<f32>>> {
    let mut src = source(path, false, 0)?;
    let mut out = Vec::new();
    while let Some(mb) = src.next_minibatch(1)? {
        let d = mb.get("features").expect("features stream");
        out.extend(d.data.to_sequences::<f32>());
        if mb.end_of_sweep() {
            break;
        }
    }
    Ok(out)
}

#[derive(Default)]
struct Split {
    reader: f64,
    forward: f64,
    backward: f64,
    learner: f64,
    other: f64,
    minibatches: u64,
    samples: u64,
    total: f64,
}

/// The same training as `train` (same source, request sizes and counts), as a loop over
/// an executor and the learner, timing each part.
fn profile(args: &Args) -> Result<Split> {
    set_fixed_random_seed(args.seed);
    let m = seed_model()?;
    let mut src = source(&args.train, true, args.data_seed)?;
    let mut l = learner(&m.params)?;
    let roots = [
        m.criterion.loss.clone(),
        m.criterion.metric.clone().unwrap(),
    ];
    let mut ex = Executor::<f32>::new(&roots)?;
    let wrt: Vec<&Variable> = m.params.iter().collect();
    let mapping = map(&m);
    let max_samples = EPOCH_SIZE * args.epochs;
    let mut s = Split::default();
    let t_all = Instant::now();
    let mut seen = 0u64;
    let (mut loss_acc, mut metric_acc) = (0f64, 0f64);
    while seen < max_samples {
        let t = Instant::now();
        let request = (BATCH_SIZE as u64).min(max_samples - seen).max(1) as usize;
        let mb = MinibatchProvider::next_minibatch(&mut src, request)?.expect("infinite source");
        let feeds = feeds_for(&mb, &mapping)?;
        let refs: Vec<(&Variable, &Value)> = feeds.iter().map(|(v, x)| (v, x)).collect();
        s.reader += t.elapsed().as_secs_f64();

        let t = Instant::now();
        ex.forward(&refs, true)?;
        let loss = ex.value(&roots[0])?;
        let n = sample_count(&loss, &refs);
        loss_acc += loss.to_vec::<f32>().iter().map(|&x| x as f64).sum::<f64>();
        metric_acc += ex
            .value(&roots[1])?
            .to_vec::<f32>()
            .iter()
            .map(|&x| x as f64)
            .sum::<f64>();
        s.forward += t.elapsed().as_secs_f64();

        let t = Instant::now();
        let grads = ex.backward(&[(&roots[0], None)], &wrt)?;
        s.backward += t.elapsed().as_secs_f64();

        let t = Instant::now();
        let pairs = m
            .params
            .iter()
            .zip(&grads)
            .map(|(p, g)| Ok((p.clone(), g.to_tensor()?)))
            .collect::<Result<Vec<_>>>()?;
        l.update(&pairs, n, mb.end_of_sweep())?;
        s.learner += t.elapsed().as_secs_f64();

        seen += n as u64;
        s.samples += n as u64;
        s.minibatches += 1;
    }
    s.total = t_all.elapsed().as_secs_f64();
    s.other = s.total - s.reader - s.forward - s.backward - s.learner;
    let _ = (loss_acc, metric_acc);
    Ok(s)
}

fn main() -> Result<()> {
    let args = parse_args();
    set_fixed_random_seed(args.seed);
    let m = seed_model()?;
    let nparams: usize = m.params.iter().map(|p| p.shape().numel()).sum();
    println!(
        "seed model: Fold(LSTM(15)) -> Dense(1), {nparams} parameters in {} tensors",
        m.params.len()
    );

    let mut train_src = source(&args.train, true, args.data_seed)?;
    let test_src = source(&args.test, false, 0)?;
    let writers: Vec<Box<dyn ProgressWriter>> = if args.quiet {
        Vec::new()
    } else {
        vec![Box::new(ProgressPrinter::new(Some(0)))]
    };
    let callbacks = Callbacks {
        progress_writers: writers,
        test: Some(TestConfig::new(Box::new(test_src))),
        ..Callbacks::default()
    };
    let options = TrainOptions::new(BATCH_SIZE)
        .epoch_size(EPOCH_SIZE)
        .max_epochs(args.epochs);

    let t0 = Instant::now();
    let history = train::<f32>(
        &m.criterion,
        &mut train_src,
        &map(&m),
        vec![learner(&m.params)?],
        options,
        callbacks,
    )?;
    let train_s = t0.elapsed().as_secs_f64();

    let labels: u64 = history.epoch_summaries.iter().map(|r| r.samples).sum();
    println!();
    println!("epoch summaries (returned by train):");
    for (i, e) in history.epoch_summaries.iter().enumerate() {
        println!(
            "  epoch {:2}: loss = {:.6}  metric = {:.6}  samples = {}",
            i + 1,
            e.loss,
            e.metric,
            e.samples
        );
    }
    let (test_metric, test_samples) = history.test_summary.expect("TestConfig ran");
    println!("test summary: metric = {test_metric:.6} over {test_samples} samples");
    let final_epoch = *history.epoch_summaries.last().expect("an epoch");
    println!(
        "training wall time: {train_s:.3} s (around train(), test pass included as in CNTK's criterion.train)"
    );
    println!(
        "training throughput: {:.1} samples/s as CNTK counts them (labels = sequences: {labels})",
        labels as f64 / train_s
    );

    // ------------------------------------------------------------ inference
    let test_seqs = read_sequences(&args.test)?;
    let mut eval = Executor::<f32>::new_inference(std::slice::from_ref(&m.z))?;
    let one = Value::from_sequences([1], &test_seqs[..1])?;
    let n256 = 256.min(test_seqs.len());
    let many = Value::from_sequences([1], &test_seqs[..n256])?;
    let steps256: usize = test_seqs[..n256].iter().map(|s| s.len()).sum();
    let (lat1, calls1) = time_calls(args.infer_seconds, || {
        eval.forward(&[(&m.features, &one)], false)
    })?;
    let (lat256, calls256) = time_calls(args.infer_seconds, || {
        eval.forward(&[(&m.features, &many)], false)
    })?;
    // and reading the value back (what a caller of model.eval gets)
    let (lat1v, _) = time_calls(args.infer_seconds / 2.0, || {
        eval.forward(&[(&m.features, &one)], false)?;
        std::hint::black_box(eval.value(&m.z)?);
        Ok(())
    })?;
    println!(
        "inference, 1 sequence ({} steps) per call: {:.2} us median ({calls1} calls; with value(): {:.2} us)",
        test_seqs[0].len(),
        lat1 * 1e6,
        lat1v * 1e6
    );
    println!(
        "inference, {n256} sequences ({steps256} steps) per call: {:.1} us median = {:.0} sequences/s, {:.0} steps/s ({calls256} calls)",
        lat256 * 1e6,
        n256 as f64 / lat256,
        steps256 as f64 / lat256
    );

    let mut prof = String::new();
    if args.profile {
        let s = profile(&args)?;
        let pct = |x: f64| 100.0 * x / s.total;
        println!(
            "profile (hand-written loop, same work): total {:.3} s over {} minibatches / {} samples",
            s.total, s.minibatches, s.samples
        );
        for (name, v) in [
            ("reader + feeds", s.reader),
            ("forward (+ loss/metric read)", s.forward),
            ("backward", s.backward),
            ("learner (grads -> tensors + adam)", s.learner),
            ("other", s.other),
        ] {
            println!(
                "  {name:34} {:8.3} s  {:5.1} %  {:7.1} us/minibatch",
                v,
                pct(v),
                1e6 * v / s.minibatches as f64
            );
        }
        prof = format!(
            ",\"profile\":{{\"total_s\":{:.4},\"minibatches\":{},\"reader_s\":{:.4},\"forward_s\":{:.4},\"backward_s\":{:.4},\"learner_s\":{:.4},\"other_s\":{:.4}}}",
            s.total, s.minibatches, s.reader, s.forward, s.backward, s.learner, s.other
        );
    }
    // peak resident set (VmHWM, kB) of the whole run, Linux only
    let peak_rss_mb = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|st| {
            st.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(-1.0);
    println!("peak RSS: {peak_rss_mb:.1} MiB");
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "null".into());
    println!(
        "RESULT {{\"bench\":\"seed_rnn\",\"impl\":\"rntk\",\"seed\":{},\"data_seed\":{},\"train_seconds\":{train_s:.4},\"label_samples\":{labels},\"samples_per_s\":{:.1},\"final_epoch_loss\":{:.6},\"final_epoch_metric\":{:.6},\"test_metric\":{test_metric:.6},\"test_samples\":{test_samples},\"infer_1seq_us\":{:.3},\"infer_1seq_value_us\":{:.3},\"infer_256seq_us\":{:.2},\"infer_256_seq_per_s\":{:.0},\"peak_rss_mb\":{peak_rss_mb:.1},\"loadavg_1min\":{load}{prof}}}",
        args.seed,
        args.data_seed,
        labels as f64 / train_s,
        final_epoch.loss,
        final_epoch.metric,
        lat1 * 1e6,
        lat1v * 1e6,
        lat256 * 1e6,
        n256 as f64 / lat256,
    );
    Ok(())
}

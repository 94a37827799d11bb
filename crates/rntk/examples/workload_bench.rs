//! Training benchmarks P2 `lm` and P3 `slots` of issue #7 on the CTF files shared with the
//! peers (`../shared/bench/cntk/bench_{lm,slots}.py`, `../shared/bench/torch/bench_{lm,slots}.py`),
//! configured exactly as CNTK 2.7's scripts, and P1 `seed` (the seed program's model and
//! learner in this loop, so that it can run distributed like the others; `seed_bench` is
//! its timed `train()` against the peers):
//!
//! * **seed**: dense time series (dim 1) → `Fold(LSTM(15))` (initial state 0.1) →
//!   `Dense(1)`; `squared_error` as loss and metric; `adam` (lr 0.005, momentum 0.9);
//!   minibatches of 140 samples (time steps; the counted samples are the labels, one
//!   per sequence); 3 untimed + 200 timed minibatches; 5 test minibatches.
//! * **lm**: sparse one-hot words (10000) → `Embedding(200)` → `Recurrence(LSTM(200))` →
//!   `Recurrence(LSTM(200))` → `Dense(10000)`; `cross_entropy_with_softmax` and
//!   `classification_error`; `momentum_sgd` (lr 0.02 per sample, momentum 0.9 per
//!   minibatch, clipping 5 per sample with truncation); minibatches of 700 samples
//!   (20 sequences × 35 tokens); 3 untimed + 50 timed minibatches; 5 test minibatches.
//! * **slots**: words (943, sparse) → `Embedding(150)` → `Recurrence(LSTM(300))` (initial
//!   state 0.1) → `Dense(129)`; same loss/metric; `adam` (lr 0.002 per sample, momentum
//!   0.9, clipping 15 per sample with truncation); minibatches of 1000 words (whole
//!   sentences); 3 untimed + 80 timed minibatches; 10 test minibatches. CNTK declares
//!   the input dense (its CPU Adam cannot take a sparse gradient); the product is the
//!   same, rntk keeps it sparse.
//!
//! A randomized `MinibatchSource` over a `CtfDeserializer` feeds a `Trainer`, as CNTK's
//! `common.timed_train_loop` does: each timed minibatch counts `next_minibatch` + feeds
//! ("read") and `train_minibatch` ("train"); samples are label time steps.
//!
//! ```text
//! python3 ../shared/bench/data/synth.py lm DIR
//! cargo run --release --example workload_bench -- lm DIR/train.ctf DIR/test.ctf
//! ```
//!
//! Options: `--minibatches N`, `--warmup N`, `--test-minibatches N`, `--seed N` (1),
//! `--quiet`. The last line is `RESULT {json}` with samples/s, peak RSS (VmHWM) and losses.
//!
//! Data-parallel (issue #17): `--distributed dp|1bit|bm` wraps the learner in
//! `data_parallel_distributed_learner` (32-bit or 1-bit SGD) or
//! `block_momentum_distributed_learner` (`--block-size N` samples of all workers,
//! default 4 minibatches' worth; the minibatch size is then per worker, as CNTK's);
//! started under `mpirun -np N` (a build with `--features mpi`) every worker reads its
//! partition of each minibatch and rank 0 prints. The data is split by chunk: give
//! `--chunk-bytes N` (e.g. 65536) so that a file has many chunks (32 MiB by default).
//! `--distributed-after SAMPLES` (warm start, both), `--block-lr X`, `--block-tc SAMPLES`
//! (block momentum as time constant), `--no-nesterov` and `--bucket-bytes N` (data
//! parallel 32-bit: gradients exchanged in buckets while the backward pass goes on; 0 =
//! after it) set the learners' options. `--losses` adds every minibatch's
//! loss (all workers' average) to RESULT, and `comm_seconds` is the time spent inside
//! the collectives (waiting for the slower worker included).

use rntk::distributed::{
    block_momentum_distributed_learner, data_parallel_distributed_learner, BlockMomentumOptions,
    Communicator, DataParallelOptions, DEFAULT_BUCKET_BYTES,
};
use rntk::initializer::set_fixed_random_seed;
use rntk::io::{
    CtfDeserializer, CtfOptions, Deserializer, MinibatchSource, MinibatchSourceConfig, StreamDef,
    DEFAULT_CHUNK_BYTES, INFINITELY_REPEAT,
};
use rntk::layers::{
    default_options, DefaultOptions, Dense, Embedding, Fold, Layer, Lstm, Recurrence, Sequential,
};
use rntk::learners::{adam, momentum_sgd, AdamOptions, Learner, LearnerOptions, Schedule};
use rntk::train::{feeds_for, Trainer};
use rntk::{
    input_variable, losses, metrics, sequence, Executor, InputOptions, Result, Value, Variable,
};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[derive(Clone, Copy, PartialEq)]
enum Workload {
    Seed,
    Lm,
    Slots,
}

struct Args {
    workload: Workload,
    train: PathBuf,
    test: PathBuf,
    minibatches: usize,
    warmup: usize,
    test_minibatches: usize,
    seed: u64,
    quiet: bool,
    distributed: Option<String>,
    block_size: Option<u64>,
    losses: bool,
    chunk_bytes: Option<usize>,
    distributed_after: u64,
    block_lr: f64,
    block_tc: Option<f64>,
    nesterov: bool,
    bucket_bytes: Option<usize>,
}

fn usage() -> ! {
    eprintln!(
        "usage: workload_bench seed|lm|slots TRAIN.ctf TEST.ctf [--minibatches N] [--warmup N] [--test-minibatches N] [--seed N] [--quiet] [--distributed dp|1bit|bm] [--block-size N] [--losses] [--chunk-bytes N] [--distributed-after SAMPLES] [--block-lr X] [--block-tc SAMPLES] [--no-nesterov] [--bucket-bytes N]"
    );
    std::process::exit(1)
}

fn parse_args() -> Args {
    let mut it = std::env::args().skip(1);
    let workload = match it.next().as_deref() {
        Some("seed") => Workload::Seed,
        Some("lm") => Workload::Lm,
        Some("slots") => Workload::Slots,
        _ => usage(),
    };
    let train = PathBuf::from(it.next().unwrap_or_else(|| usage()));
    let test = PathBuf::from(it.next().unwrap_or_else(|| usage()));
    let (minibatches, test_minibatches) = match workload {
        Workload::Seed => (200, 5),
        Workload::Lm => (50, 5),
        Workload::Slots => (80, 10),
    };
    let mut a = Args {
        workload,
        train,
        test,
        minibatches,
        warmup: 3,
        test_minibatches,
        seed: 1,
        quiet: false,
        distributed: None,
        block_size: None,
        losses: false,
        chunk_bytes: None,
        distributed_after: 0,
        block_lr: 1.0,
        block_tc: None,
        nesterov: true,
        bucket_bytes: None,
    };
    while let Some(k) = it.next() {
        let mut num = || -> usize {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| usage())
        };
        match k.as_str() {
            "--minibatches" => a.minibatches = num(),
            "--warmup" => a.warmup = num(),
            "--test-minibatches" => a.test_minibatches = num(),
            "--seed" => a.seed = num() as u64,
            "--quiet" => a.quiet = true,
            "--losses" => a.losses = true,
            "--chunk-bytes" => a.chunk_bytes = Some(num()),
            "--block-size" => a.block_size = Some(num() as u64),
            "--distributed" => a.distributed = Some(it.next().unwrap_or_else(|| usage())),
            "--distributed-after" => a.distributed_after = num() as u64,
            "--no-nesterov" => a.nesterov = false,
            "--bucket-bytes" => a.bucket_bytes = Some(num()),
            "--block-lr" | "--block-tc" => {
                let x: f64 = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| usage());
                if k == "--block-lr" {
                    a.block_lr = x
                } else {
                    a.block_tc = Some(x)
                }
            }
            _ => usage(),
        }
    }
    a
}

/// One workload: its streams, model, criterion and learner, as in the CNTK script.
struct Setup {
    name: &'static str,
    streams: Vec<StreamDef>,
    map: Vec<(Variable, String)>,
    z: Variable,
    ce: Variable,
    err: Variable,
    params: Vec<Variable>,
    minibatch_size: usize,
}

fn sparse_seq_input(dim: usize, name: &str) -> Variable {
    sequence::input_variable_with(
        dim,
        InputOptions {
            is_sparse: true,
            name: name.into(),
            ..Default::default()
        },
    )
}

fn seed() -> Result<Setup> {
    let x = sequence::input_variable(1);
    let y = input_variable(1);
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
    let z = model.apply(&x)?;
    Ok(Setup {
        name: "seed",
        streams: vec![
            StreamDef::dense("features", 1),
            StreamDef::dense("target", 1),
        ],
        map: vec![(x, "features".into()), (y.clone(), "target".into())],
        ce: losses::squared_error(&z, &y)?,
        err: losses::squared_error(&z, &y)?,
        z,
        params: model.parameters(),
        minibatch_size: 140,
    })
}

fn lm() -> Result<Setup> {
    const VOCAB: usize = 10000;
    let x = sparse_seq_input(VOCAB, "features");
    let y = sparse_seq_input(VOCAB, "labels");
    let model = Sequential::default()
        .then(Embedding::new(200))
        .then(Recurrence::new(Lstm::new(200)))
        .then(Recurrence::new(Lstm::new(200)))
        .then(Dense::new(VOCAB));
    let z = model.apply(&x)?;
    Ok(Setup {
        name: "lm",
        streams: vec![
            StreamDef::sparse("features", VOCAB),
            StreamDef::sparse("labels", VOCAB),
        ],
        map: vec![(x, "features".into()), (y.clone(), "labels".into())],
        ce: losses::cross_entropy_with_softmax(&z, &y, -1)?,
        err: metrics::classification_error(&z, &y, -1, 1)?,
        z,
        params: model.parameters(),
        minibatch_size: 700,
    })
}

fn slots() -> Result<Setup> {
    const VOCAB: usize = 943;
    const LABELS: usize = 129;
    const INTENTS: usize = 26;
    let x = sparse_seq_input(VOCAB, "query");
    let y = sparse_seq_input(LABELS, "slot_labels");
    let model = default_options(
        DefaultOptions {
            initial_state: Some(0.1),
            ..Default::default()
        },
        || {
            Sequential::default()
                .then(Embedding::new(150))
                .then(Recurrence::new(Lstm::new(300)).go_backwards(false))
                .then(Dense::new(LABELS))
        },
    );
    let z = model.apply(&x)?;
    Ok(Setup {
        name: "slots",
        streams: vec![
            StreamDef::sparse("query", VOCAB).field("S0"),
            StreamDef::sparse("intent", INTENTS).field("S1"),
            StreamDef::sparse("slot_labels", LABELS).field("S2"),
        ],
        map: vec![(x, "query".into()), (y.clone(), "slot_labels".into())],
        ce: losses::cross_entropy_with_softmax(&z, &y, -1)?,
        err: metrics::classification_error(&z, &y, -1, 1)?,
        z,
        params: model.parameters(),
        minibatch_size: 1000,
    })
}

fn learner(w: Workload, params: &[Variable]) -> Result<Box<dyn Learner>> {
    Ok(match w {
        Workload::Seed => Box::new(adam(
            params,
            Schedule::constant(0.005),
            Schedule::constant(0.9),
            AdamOptions::default(),
        )?),
        Workload::Lm => Box::new(momentum_sgd(
            params,
            Schedule::constant(0.02).per_sample(),
            Schedule::constant(0.9),
            true,
            LearnerOptions {
                gradient_clipping_threshold_per_sample: 5.0,
                gradient_clipping_with_truncation: true,
                ..Default::default()
            },
        )?),
        Workload::Slots => Box::new(adam(
            params,
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
        )?),
    })
}

fn source(
    s: &Setup,
    path: &PathBuf,
    train: bool,
    seed: u64,
    chunk_bytes: Option<usize>,
) -> Result<MinibatchSource> {
    let o = CtfOptions {
        chunk_bytes: chunk_bytes.unwrap_or(DEFAULT_CHUNK_BYTES),
        ..CtfOptions::default()
    };
    let d: Arc<dyn Deserializer> = Arc::new(CtfDeserializer::with_options(path, &s.streams, o)?);
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

/// Peak resident set size of this process (VmHWM), in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time of this process so far (user + system, all threads), from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let ticks = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // fields after the parenthesized command: state is field 3, utime 14, stime 15
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?)
        })
        .unwrap_or(f64::NAN);
    // USER_HZ is 100 on Linux
    ticks / 100.0
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "null".into())
}

fn main() -> Result<()> {
    let args = parse_args();
    set_fixed_random_seed(args.seed);
    let s = match args.workload {
        Workload::Seed => seed()?,
        Workload::Lm => lm()?,
        Workload::Slots => slots()?,
    };
    let nparams: usize = s.params.iter().map(|p| p.shape().numel()).sum();
    let world = rntk::distributed::communicator()?;
    let comm = Arc::new(Timed {
        inner: world.clone(),
        seconds: Mutex::new(0.0),
    });
    let (rank, workers) = (comm.rank(), comm.size());
    let lead = rank == 0;
    let args = Args {
        quiet: args.quiet || !lead,
        ..args
    };
    let local = learner(args.workload, &s.params)?;
    let (learner, scale) = distributed_learner(&args, local, &comm, s.minibatch_size)?;
    if lead {
        println!(
            "{}: {nparams} parameters in {} tensors; threads: {}",
            s.name,
            s.params.len(),
            rayon::current_num_threads()
        );
        if args.distributed.is_some() {
            println!(
                "distributed: {} ({})",
                args.distributed.as_deref().unwrap_or(""),
                comm.describe()
            );
        }
    }
    let mut trainer = Trainer::<f32>::new(
        Some(s.z.clone()),
        s.ce.clone(),
        Some(s.err.clone()),
        vec![learner],
        Vec::new(),
    )?;
    let mut src = source(&s, &args.train, true, args.seed, args.chunk_bytes)?;

    let (mut read_s, mut train_s, mut cpu_s) = (0f64, 0f64, 0f64);
    let (mut samples, mut sequences) = (0u64, 0usize);
    let mut losses_seen = Vec::new();
    let mut errors_seen = Vec::new();
    let wall0 = Instant::now();
    // samples of all workers trained: the split starts after `distributed_after`
    let mut seen = 0u64;
    for i in 0..args.warmup + args.minibatches {
        let c0 = cpu_seconds();
        let t0 = Instant::now();
        let (parts, index, scale) = if seen >= args.distributed_after {
            (workers, rank, scale)
        } else {
            (1, 0, 1)
        };
        let part = src
            .next_minibatch_partition(s.minibatch_size * scale, parts, index)?
            .expect("an infinitely repeating source");
        let feeds = match &part.minibatch {
            Some(mb) => feeds_for(mb, &s.map)?,
            None => Vec::new(),
        };
        let refs: Vec<(&Variable, &Value)> = feeds.iter().map(|(v, x)| (v, x)).collect();
        let t1 = Instant::now();
        trainer.train_minibatch(&refs, part.end_of_sweep)?;
        let loss = trainer.previous_minibatch_loss_average();
        seen += trainer.previous_minibatch_sample_count();
        let t2 = Instant::now();
        losses_seen.push(loss);
        errors_seen.push(trainer.previous_minibatch_evaluation_average());
        if i + 1 == args.warmup {
            // the exchange time counted is the timed minibatches' (not the first broadcast)
            *comm.seconds.lock().expect("timer") = 0.0;
            println!(
                "--- warm-up: {} untimed minibatches took {:.3} s",
                args.warmup,
                wall0.elapsed().as_secs_f64()
            );
        }
        if i >= args.warmup {
            read_s += (t1 - t0).as_secs_f64();
            train_s += (t2 - t1).as_secs_f64();
            cpu_s += cpu_seconds() - c0;
            samples += trainer.previous_minibatch_sample_count();
            sequences += feeds.get(1).map_or(0, |f| f.1.num_sequences());
        }
        if !args.quiet && (i + 1) % 10 == 0 {
            println!("minibatch {:4}: loss {loss:.4}", i + 1);
        }
    }
    let timed_s = read_s + train_s;
    // CPU time of all workers (each process's user + system time over the timed minibatches,
    // MPI's polling while it waits included): samples per CPU-second compare 1 and N processes
    let mut cpu_all = [cpu_s];
    if workers > 1 {
        world.all_reduce_f64(&mut cpu_all)?;
    }
    let cpu_all = cpu_all[0];
    let last = &losses_seen[losses_seen.len().saturating_sub(10)..];
    let last_e = &errors_seen[errors_seen.len().saturating_sub(10)..];
    let mean10 = last.iter().sum::<f64>() / last.len() as f64;
    let err10 = last_e.iter().sum::<f64>() / last_e.len() as f64;
    let final_loss = *losses_seen.last().expect("a minibatch");
    println!(
        "timed: {} minibatches, {samples} samples in {sequences} sequences",
        args.minibatches
    );
    println!(
        "  read {read_s:.3} s + train {train_s:.3} s = {timed_s:.3} s wall; {:.1} samples/s ({:.1} train only); {cpu_s:.2} s CPU time (all threads) = {:.1} samples per CPU-second",
        samples as f64 / timed_s,
        samples as f64 / train_s,
        samples as f64 / cpu_s
    );
    println!(
        "  first minibatch loss {:.4}; last {final_loss:.4}; mean of last {}: loss {mean10:.4}, error {:.2}%",
        losses_seen[0],
        last.len(),
        100.0 * err10
    );

    let test = if args.test_minibatches > 0 && lead {
        test_pass(&s, &args)?
    } else {
        String::new()
    };
    if !lead {
        rntk::distributed::finalize()?;
        return Ok(());
    }
    let comm_s = *comm.seconds.lock().expect("timer");
    let mut extra = format!(
        ",\"workers\":{workers},\"comm_seconds\":{comm_s:.4},\"cpu_seconds_all_workers\":{cpu_all:.3},\"samples_per_cpu_s\":{:.1}",
        samples as f64 / cpu_all
    );
    if let Some(m) = &args.distributed {
        extra.push_str(&format!(",\"distributed\":\"{m}\""));
    }
    if args.losses {
        let l: Vec<String> = losses_seen.iter().map(|x| format!("{x:.5}")).collect();
        extra.push_str(&format!(",\"losses\":[{}]", l.join(",")));
    }
    let rss = peak_rss_kib();
    println!("peak RSS (VmHWM): {:.1} MiB", rss as f64 / 1024.0);
    println!(
        "RESULT {{\"bench\":\"{}\",\"impl\":\"rntk\",\"threads\":{},\"minibatches\":{},\"warmup\":{},\"minibatch_size\":{},\"samples\":{samples},\"sequences\":{sequences},\"read_seconds\":{read_s:.4},\"train_seconds\":{train_s:.4},\"samples_per_s\":{:.1},\"train_only_samples_per_s\":{:.1},\"cpu_seconds\":{cpu_s:.3},\"final_loss\":{final_loss:.6},\"final_loss_mean10\":{mean10:.6},\"final_error_mean10\":{err10:.6}{test}{extra},\"peak_rss_kib\":{rss},\"loadavg_1min\":{}}}",
        s.name,
        rayon::current_num_threads(),
        args.minibatches,
        args.warmup,
        s.minibatch_size,
        samples as f64 / timed_s,
        samples as f64 / train_s,
        loadavg()
    );
    rntk::distributed::finalize()?;
    Ok(())
}

/// The learner the run trains with: `local`, or a distributed learner around it
/// (`--distributed dp|1bit|bm`), and the minibatch scale of its partitions.
fn distributed_learner(
    args: &Args,
    local: Box<dyn Learner>,
    comm: &Arc<Timed>,
    minibatch_size: usize,
) -> Result<(Box<dyn Learner>, usize)> {
    let workers = comm.size();
    Ok(match args.distributed.as_deref() {
        None => (local, 1),
        Some(m @ ("dp" | "1bit")) => {
            let o = DataParallelOptions {
                num_quantization_bits: if m == "1bit" { 1 } else { 32 },
                distributed_after: args.distributed_after,
                bucket_bytes: args.bucket_bytes.unwrap_or(DEFAULT_BUCKET_BYTES),
            };
            (
                Box::new(data_parallel_distributed_learner(local, comm.clone(), o)?),
                1,
            )
        }
        Some("bm") => {
            let block = args
                .block_size
                .unwrap_or((4 * minibatch_size * workers) as u64);
            let o = BlockMomentumOptions {
                block_momentum_as_time_constant: args.block_tc,
                use_nesterov_momentum: args.nesterov,
                block_learning_rate: args.block_lr,
                distributed_after: args.distributed_after,
                ..BlockMomentumOptions::new(block)
            };
            (
                Box::new(block_momentum_distributed_learner(local, comm.clone(), o)?),
                workers,
            )
        }
        Some(_) => usage(),
    })
}

/// Average loss and metric per label sample over the first minibatches of the
/// test file, in file order (CNTK's common.evaluate): printed, and the RESULT
/// fields.
fn test_pass(s: &Setup, args: &Args) -> Result<String> {
    let mut tsrc = source(s, &args.test, false, 0, None)?;
    let mut eval = Executor::<f32>::new_inference(&[s.ce.clone(), s.err.clone()])?;
    let (mut tl, mut te, mut n) = (0f64, 0f64, 0usize);
    for _ in 0..args.test_minibatches {
        let Some(mb) = tsrc.next_minibatch(s.minibatch_size)? else {
            break;
        };
        let feeds = feeds_for(&mb, &s.map)?;
        let refs: Vec<(&Variable, &Value)> = feeds.iter().map(|(v, x)| (v, x)).collect();
        eval.forward(&refs, false)?;
        let sum = |v: &Variable| -> Result<f64> {
            Ok(eval
                .value(v)?
                .to_vec::<f32>()
                .iter()
                .map(|&x| x as f64)
                .sum())
        };
        tl += sum(&s.ce)?;
        te += sum(&s.err)?;
        n += feeds[1].1.num_samples();
        if mb.end_of_sweep() {
            break;
        }
    }
    let (tl, te) = (tl / n.max(1) as f64, te / n.max(1) as f64);
    println!(
        "  test ({n} samples): loss {tl:.4}, error {:.2}%",
        100.0 * te
    );
    Ok(format!(
        ",\"test_loss\":{tl:.6},\"test_error\":{te:.6},\"test_samples\":{n}"
    ))
}

/// A communicator that adds up the time spent in its collectives.
#[derive(Debug)]
struct Timed {
    inner: Arc<dyn Communicator>,
    seconds: Mutex<f64>,
}

impl Timed {
    fn time<R>(&self, f: impl FnOnce(&dyn Communicator) -> R) -> R {
        let t = Instant::now();
        let r = f(&*self.inner);
        *self.seconds.lock().expect("timer") += t.elapsed().as_secs_f64();
        r
    }
}

impl Communicator for Timed {
    fn rank(&self) -> usize {
        self.inner.rank()
    }
    fn size(&self) -> usize {
        self.inner.size()
    }
    fn all_reduce_f32(&self, data: &mut [f32]) -> Result<()> {
        self.time(|c| c.all_reduce_f32(data))
    }
    fn all_reduce_f64(&self, data: &mut [f64]) -> Result<()> {
        self.time(|c| c.all_reduce_f64(data))
    }
    fn all_gather(&self, data: &[u8]) -> Result<Vec<Vec<u8>>> {
        self.time(|c| c.all_gather(data))
    }
    fn broadcast(&self, data: &mut Vec<u8>, root: usize) -> Result<()> {
        self.time(|c| c.broadcast(data, root))
    }
    fn barrier(&self) -> Result<()> {
        self.time(|c| c.barrier())
    }
    fn finalize(&self) -> Result<()> {
        self.inner.finalize()
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

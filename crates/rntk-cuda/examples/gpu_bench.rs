//! GPU benchmarks against cuDNN through PyTorch on the same card
//! (`../shared/bench/gpu/torch_rnn_bench.py` made the peer numbers): an LSTM layer's
//! training step (forward + backward to the input and every parameter, as the peer's
//! `y.sum().backward()`) over 25 steps, and the seed model's whole training step with
//! Adam. Median milliseconds over timed iterations, the device synchronized around
//! each; one CSV row per case in the peer's format, then the peer's number and the
//! ratio when `--peer FILE.csv` is given.
//!
//! `cargo build --release -p rntk-cuda --example gpu_bench` builds it; on the GPU
//! machine `scripts/gpu-check.sh` runs it. `--cpu` runs the same cases on the CPU.

use rntk::backend::{Backend, Cpu};
use rntk::layers::{
    default_options, DefaultOptions, Dense, Fold, Layer, Lstm, Recurrence, Sequential,
};
use rntk::learners::{self, AdamOptions, Schedule};
use rntk::train::Trainer;
use rntk::{input_variable, losses, sequence, Executor, Value, Variable};
use rntk_cuda::Cuda;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn values(n: usize, key: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((((i * 31 + key * 17) % 97) as f32) - 48.0) / 97.0)
        .collect()
}

/// LSTM(h) over `b` sequences of `steps`, input dimension h: forward + backward.
fn lstm_case<B: Backend>(
    be: B,
    sync: &dyn Fn(),
    (h, b, steps): (usize, usize, usize),
    iters: usize,
) -> f64 {
    let x = sequence::input_variable(h);
    let layer = Recurrence::new(Lstm::new(h));
    let y = layer.apply(&x).unwrap();
    let params = layer.parameters();
    let seqs: Vec<Vec<f32>> = (0..b).map(|s| values(steps * h, s)).collect();
    let xv = Value::from_sequences([h], &seqs).unwrap();
    let mut wrt: Vec<&Variable> = params.iter().collect();
    wrt.push(&x);
    let mut ex = Executor::<f32, B>::with_backend(be, std::slice::from_ref(&y)).unwrap();
    let mut step = || {
        ex.forward(&[(&x, &xv)], true).unwrap();
        let g = ex.backward(&[(&y, None)], &wrt).unwrap();
        drop(g);
    };
    for _ in 0..10 {
        step();
    }
    sync();
    let mut times = Vec::new();
    for _ in 0..iters {
        let t = Instant::now();
        step();
        sync();
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    median(times)
}

/// The seed tutorial's model (LSTM(15) over 14 steps, 10 sequences, Dense(1), squared
/// error): one `train_minibatch` with Adam, the loss fetched as the progress printer
/// does.
fn seed_case<B: Backend>(be: B, sync: &dyn Fn(), iters: usize) -> f64 {
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
    let z = model.apply(&features).unwrap();
    let target = input_variable(1);
    let loss = losses::squared_error(&z, &target).unwrap();
    let learner = learners::adam(
        &model.parameters(),
        Schedule::constant(0.005),
        Schedule::constant(0.9),
        AdamOptions::default(),
    )
    .unwrap();
    let mut tr = Trainer::<f32, B>::with_backend(
        be,
        None,
        loss.clone(),
        None,
        vec![Box::new(learner)],
        vec![],
    )
    .unwrap();
    let seqs: Vec<Vec<f32>> = (0..10).map(|s| values(14, s)).collect();
    let xv = Value::from_sequences([1], &seqs).unwrap();
    let yv = Value::batch([1], values(10, 99)).unwrap();
    let feeds = [(&features, &xv), (&target, &yv)];
    for _ in 0..20 {
        tr.train_minibatch(&feeds, false).unwrap();
    }
    sync();
    let mut times = Vec::new();
    for _ in 0..iters {
        let t = Instant::now();
        tr.train_minibatch(&feeds, false).unwrap();
        let _ = tr.previous_minibatch_loss_average();
        sync();
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    median(times)
}

/// The peer's ms for a row key (`kind,hidden,batch,steps,layers,dtype,mode`).
fn peer(csv: &str, key: &str) -> Option<f64> {
    csv.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.rsplit(',').next()?.parse().ok())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let peer_csv = args
        .iter()
        .position(|a| a == "--peer")
        .and_then(|i| args.get(i + 1))
        .map(|p| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("--peer {p}: {e}")));
    let on_cpu = args.iter().any(|a| a == "--cpu");
    let report = |key: &str, ms: f64| {
        println!("{key},{ms:.4}");
        if let Some(p) = peer_csv.as_deref().and_then(|c| peer(c, key)) {
            println!(
                "#   peer (cuDNN via PyTorch) {p:.4} ms; rntk/peer = {:.3}",
                ms / p
            );
        }
    };
    let shapes = [(512, 16, 25), (2048, 128, 25), (1024, 64, 25)];
    if on_cpu {
        println!("device: cpu");
        report(
            "seed_lstm15,15,10,14,1,float32,train_step_adam",
            seed_case(Cpu, &|| {}, 50),
        );
        let (h, b, t) = shapes[0];
        report(
            &format!("lstm,{h},{b},{t},1,float32,train"),
            lstm_case(Cpu, &|| {}, shapes[0], 5),
        );
        return;
    }
    let gpu = match Cuda::new(0) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("gpu_bench: {e}");
            std::process::exit(1);
        }
    };
    println!("device: {}", gpu.name());
    println!("kind,hidden,batch,steps,layers,dtype,mode,ms_per_iter");
    let sync = || gpu.synchronize().unwrap();
    report(
        "seed_lstm15,15,10,14,1,float32,train_step_adam",
        seed_case(gpu.clone(), &sync, 200),
    );
    for (h, b, t) in shapes {
        report(
            &format!("lstm,{h},{b},{t},1,float32,train"),
            lstm_case(gpu.clone(), &sync, (h, b, t), 50),
        );
    }
    println!("# host-path kernels used: {:?}", gpu.host_calls());
}

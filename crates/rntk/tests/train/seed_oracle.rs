//! The seed program against the real CNTK 2.7 (issue #5): the same model with CNTK's
//! initial weights, the same minibatches in the same order (randomize = false), adam —
//! every minibatch's loss average equals CNTK's to 1e-4 relative, the sample counts are
//! equal, and the printed progress text is CNTK's byte for byte (epoch timings masked).
//!
//! Fixture: tests/fixtures/cntk_seed/seed_oracle.json, made by make_seed_fixture.py
//! (see there for what it records and how).
//!
//! How tight the text check is: CNTK prints window averages as differences of float32
//! running totals (the trainer's `Accumulator`, which rntk's Trainer reproduces), and
//! `Minibatch[81-90]` is 0.1544585 ± 5e-8 relative: a rounding boundary of `%.6f`. The
//! per-minibatch losses here differ from CNTK's by at most ~4e-7 relative (float32
//! operation order in the LSTM/GEMM), and the text matches because most minibatches give
//! CNTK's float32 loss sum exactly. A change of rntk's float32 operation order (or a GEMM
//! kernel picked for another CPU) can flip such a last digit without any real error; the
//! loss check (1e-4) is the robust one. Before changing anything after such a failure,
//! check that the differing line's exact value (from the fixture's per-minibatch loss sums,
//! accumulated in float32) lies within that difference of a rounding boundary; do not mask
//! digits to hide a real discrepancy.

use crate::common;

use rntk::backend::{Arena, Backend, Cpu};
use rntk::layers::{default_options, DefaultOptions, Dense, Fold, Layer, Lstm, Sequential};
use rntk::learners::{adam, AdamOptions, Schedule};
use rntk::train::{ProgressPrinter, ProgressWriter, Trainer};
use rntk::{input_variable, losses, sequence, Tensor, Value, Variable};
use serde_json::Value as Json;
use std::sync::{Arc, Mutex};

/// The tolerance of issue #5: per-minibatch loss averages, relative.
const RTOL: f64 = 1e-4;

fn fixture() -> Json {
    let text = std::fs::read_to_string(common::fixture_path("cntk_seed/seed_oracle.json"))
        .expect("fixture file");
    serde_json::from_str(&text).expect("fixture json")
}

fn f32s(j: &Json) -> Vec<f32> {
    common::flat(j).into_iter().map(|v| v as f32).collect()
}

/// The training file's sequences (features, target), in file order, from the chains.
fn file_sequences(j: &Json) -> Vec<(Vec<f32>, f32)> {
    let data = &j["data"];
    let mut out = Vec::new();
    for c in data["chains"].as_array().expect("chains") {
        let values = f32s(&c["values"]);
        let target = c["target"].as_f64().expect("target") as f32;
        for n in c["lengths"].as_array().expect("lengths") {
            let n = n.as_u64().expect("length") as usize;
            out.push((values[..n].to_vec(), target));
        }
    }
    assert_eq!(out.len() as u64, data["num_sequences"].as_u64().unwrap());
    out
}

/// "0.005s (5000.0 samples/s)" → "<time>": wall-clock parts differ run to run.
fn mask(text: &str) -> String {
    text.lines()
        .map(
            |l| match (l.starts_with("Finished Epoch"), l.rfind("s (")) {
                (true, Some(end)) => {
                    let cut = l[..end].rfind(' ').unwrap();
                    format!("{} <time>", &l[..cut])
                }
                _ => l.to_string(),
            },
        )
        .collect::<Vec<_>>()
        .join("\n")
}

struct Run {
    /// Per minibatch: previous_minibatch_loss_average, _evaluation_average, _sample_count.
    per_mb: Vec<(f64, f64, u64)>,
    text: String,
}

/// The seed program's training loop over the fixture's 200 minibatches, with an epoch
/// end (summarize_training_progress) at the first minibatch reaching k·epoch_size label
/// samples and after the last one.
fn run<B: Backend>(backend: B, j: &Json, epoch_size: u64) -> Run {
    let seqs = file_sequences(j);
    let features = sequence::input_variable(1);
    let model = default_options(
        DefaultOptions {
            initial_state: Some(j["initial_state"].as_f64().unwrap()),
            ..Default::default()
        },
        || {
            Sequential::default()
                .then(Fold::new(Lstm::new(15)))
                .then(Dense::new(1))
        },
    );
    let z = model.apply(&features).unwrap();

    // every parameter gets CNTK's initial value; the set must be exactly CNTK's
    let want = j["params"].as_object().unwrap();
    let mut ours: Vec<(String, Variable)> = Vec::new();
    for (k, layer) in model.layers().iter().enumerate() {
        for p in layer.parameters() {
            ours.push((format!("L{k}.{}", p.name()), p));
        }
    }
    let mut names: Vec<&str> = ours.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    let mut want_names: Vec<&str> = want.keys().map(|k| k.as_str()).collect();
    want_names.sort_unstable();
    assert_eq!(names, want_names, "parameter set");
    for (name, p) in &ours {
        let w = &want[name];
        let shape = common::shape_of(&w["shape"]);
        assert_eq!(p.shape().dims(), &shape[..], "shape of {name}");
        p.set_value(Tensor::from_vec(shape, f32s(&w["data"])).unwrap())
            .unwrap();
    }
    assert_eq!(model.parameters().len(), ours.len());

    let target = input_variable(1);
    let loss = losses::squared_error(&z, &target).unwrap();
    let metric = losses::squared_error(&z, &target).unwrap();
    let learner = adam(
        &model.parameters(),
        Schedule::constant(j["lr"].as_f64().unwrap()),
        Schedule::constant(j["momentum"].as_f64().unwrap()),
        AdamOptions::default(),
    )
    .unwrap();
    // Both printers write to one buffer, as both of CNTK's wrote to its stdout.
    let buf = Arc::new(Mutex::new(Vec::new()));
    let writers: Vec<Box<dyn ProgressWriter>> = vec![
        Box::new(ProgressPrinter::to_buffer(Some(0), buf.clone())),
        Box::new(ProgressPrinter::to_buffer(Some(10), buf.clone())),
    ];
    let mut trainer = Trainer::<f32, B>::with_backend(
        backend,
        Some(z.clone()),
        loss,
        Some(metric),
        vec![Box::new(learner)],
        writers,
    )
    .unwrap();

    let mut per_mb = Vec::new();
    let mut next_epoch_end = epoch_size;
    for m in j["minibatches"].as_array().unwrap() {
        let first = m["first_sequence"].as_u64().unwrap() as usize;
        let count = m["num_sequences"].as_u64().unwrap() as usize;
        let (mut xs, mut ys, mut steps) = (Vec::new(), Vec::new(), 0);
        for k in 0..count {
            let (x, y) = &seqs[(first + k) % seqs.len()];
            steps += x.len();
            xs.push(x.clone());
            ys.push(*y);
        }
        assert_eq!(steps as u64, m["num_samples"].as_u64().unwrap());
        let x = Value::from_sequences([1], &xs).unwrap();
        let y = Value::batch([1], ys).unwrap();
        trainer
            .train_minibatch(
                &[(&features, &x), (&target, &y)],
                m["sweep_end"].as_bool().unwrap(),
            )
            .unwrap();
        per_mb.push((
            trainer.previous_minibatch_loss_average(),
            trainer.previous_minibatch_evaluation_average(),
            trainer.previous_minibatch_sample_count(),
        ));
        if trainer.total_number_of_samples_seen() >= next_epoch_end {
            trainer.summarize_training_progress();
            next_epoch_end += epoch_size;
        }
    }
    trainer.summarize_training_progress();
    let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
    Run { per_mb, text }
}

/// Compare per-minibatch results with CNTK's; returns (max relative loss difference,
/// its minibatch index).
fn check_minibatches(j: &Json, r: &Run) -> (f64, usize) {
    let mbs = j["minibatches"].as_array().unwrap();
    assert_eq!(r.per_mb.len(), mbs.len());
    let (mut worst, mut at, mut exact) = (0.0f64, 0, 0);
    let mut report = String::new();
    for (i, (m, &(loss, eval, n))) in mbs.iter().zip(&r.per_mb).enumerate() {
        assert_eq!(
            n,
            m["sample_count"].as_u64().unwrap(),
            "minibatch {i}: sample count"
        );
        let want = m["loss_average"].as_f64().unwrap();
        let want_eval = m["evaluation_average"].as_f64().unwrap();
        let rel = (loss - want).abs() / want.abs();
        let rel_eval = (eval - want_eval).abs() / want_eval.abs();
        if rel < 1e-9 {
            exact += 1;
        }
        if rel > worst {
            (worst, at) = (rel, i);
        }
        if i % 20 == 0 || rel > RTOL || rel_eval > RTOL {
            report.push_str(&format!(
                "mb {i:3}: loss {loss:.9} CNTK {want:.9} rel {rel:.2e}; metric rel {rel_eval:.2e}\n"
            ));
        }
    }
    eprint!("{report}");
    eprintln!(
        "max relative loss difference {worst:.3e} at minibatch {at} (0-based); \
         {exact} of {} minibatches equal to CNTK's to 1e-9",
        mbs.len()
    );
    for (i, (m, &(loss, eval, _))) in mbs.iter().zip(&r.per_mb).enumerate() {
        let want = m["loss_average"].as_f64().unwrap();
        let want_eval = m["evaluation_average"].as_f64().unwrap();
        assert!(
            (loss - want).abs() <= RTOL * want.abs(),
            "minibatch {i}: loss average {loss} vs CNTK {want} (relative {:.3e} > {RTOL})",
            (loss - want).abs() / want.abs()
        );
        assert!(
            (eval - want_eval).abs() <= RTOL * want_eval.abs(),
            "minibatch {i}: metric average {eval} vs CNTK {want_eval}"
        );
    }
    (worst, at)
}

fn variant(j: &Json, epoch_size: u64) -> &Json {
    j["variants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["epoch_size"].as_u64() == Some(epoch_size))
        .unwrap_or_else(|| panic!("variant {epoch_size} missing"))
}

fn check_text(j: &Json, epoch_size: u64, r: &Run) {
    let want = variant(j, epoch_size)["stdout"].as_str().unwrap();
    assert_eq!(
        mask(&r.text),
        mask(want),
        "epoch_size {epoch_size}:\n--- rntk\n{}\n--- CNTK\n{want}",
        r.text
    );
}

/// The same training on the arena backend: the same numbers bit for bit, the same text.
fn same_on_the_arena(cpu: &Run, arena: Run) {
    let bits = |r: &Run| -> Vec<(u64, u64, u64)> {
        r.per_mb
            .iter()
            .map(|&(l, m, n)| (l.to_bits(), m.to_bits(), n))
            .collect()
    };
    assert_eq!(
        bits(&arena),
        bits(cpu),
        "per-minibatch results on the arena"
    );
    assert_eq!(
        mask(&arena.text),
        mask(&cpu.text),
        "progress text on the arena"
    );
}

/// The tutorial's epoch size (12434 label samples): no epoch ends within 200 minibatches;
/// one summary after the last.
#[test]
fn seed_losses_and_progress_equal_cntk() {
    let j = fixture();
    let r = run(Cpu, &j, 12434);
    check_minibatches(&j, &r);
    check_text(&j, 12434, &r);
    same_on_the_arena(&r, run(Arena::new(), &j, 12434));
}

/// Epoch size 1000: three epoch ends inside the 200 minibatches (the geometric printer
/// restarts its 1, 3, 7, … pattern, the arithmetic one prints `Finished Epoch` lines).
#[test]
fn seed_progress_with_epoch_ends_equals_cntk() {
    let j = fixture();
    let r = run(Cpu, &j, 1000);
    check_minibatches(&j, &r);
    check_text(&j, 1000, &r);
    same_on_the_arena(&r, run(Arena::new(), &j, 1000));
}

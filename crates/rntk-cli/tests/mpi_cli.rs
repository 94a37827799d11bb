//! `mpirun -np 2 rntk train CONFIG.toml` (cargo feature `mpi`): the workers train as
//! one, rank 0 alone prints and saves; a config that differs between the workers and
//! a config without `[distributed]` are refused at start, naming what to fix.
//! Run: `cargo test -p rntk-cli --features mpi --test mpi_cli` (needs Open MPI's
//! `mpirun`; `RNTK_MPIRUN` replaces `mpirun --oversubscribe --allow-run-as-root`).

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_rntk");

fn mpirun() -> Command {
    let l: Vec<String> = match std::env::var("RNTK_MPIRUN") {
        Ok(s) if !s.trim().is_empty() => s.split_whitespace().map(String::from).collect(),
        _ => vec![
            "mpirun".into(),
            "--oversubscribe".into(),
            "--allow-run-as-root".into(),
        ],
    };
    let mut c = Command::new(&l[0]);
    c.args(&l[1..]);
    c
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("rntk-mpi-cli-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn config(data: &Path, out: &str, extra: &str) -> String {
    format!(
        r#"
[[inputs]]
name = "features"
dim = 1
sequence = true

[[inputs]]
name = "target"
dim = 1
sequence = false

[model]
input = "features"
default_options = {{ initial_state = 0.1 }}
layers = [
    {{ type = "Fold", step = {{ type = "LSTM", dim = 5 }} }},
    {{ type = "Dense", dim = 1 }},
]

[criterion]
loss = "squared_error"
metric = "squared_error"
labels = "target"

[learner]
type = "adam"
lr = 0.005
momentum = 0.9

[train]
minibatch_size = 140
epoch_size = 1000
max_epochs = 2
output = "{out}"

[readers.train]
file = "{}"
randomize = true
streams = [
    {{ name = "features", field = "features", dim = 1 }},
    {{ name = "target", field = "target", dim = 1 }},
]

[callbacks.progress]
freq = 0
{extra}
"#,
        data.join("train.ctf").display()
    )
}

fn setup(name: &str) -> PathBuf {
    let d = dir(name);
    let o = Command::new(BIN)
        .args(["gen-data", "timeseries", d.join("data").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    d
}

/// "… 0.005s (5000.0 samples/s);" → "… <time>": wall-clock parts differ run to run.
fn without_timings(s: &str) -> Vec<String> {
    s.lines()
        .map(
            |l| match (l.starts_with("Finished Epoch"), l.rfind("s (")) {
                (true, Some(end)) => match l[..end].rfind(' ') {
                    Some(cut) => format!("{} <time>", &l[..cut]),
                    None => l.to_string(),
                },
                _ => l.to_string(),
            },
        )
        .collect()
}

#[test]
fn two_workers_train_as_one_and_rank_0_prints_and_saves() {
    let d = setup("train");
    let data = d.join("data");
    std::fs::write(d.join("one.toml"), config(&data, "one.model", "")).unwrap();
    let dist = "[distributed]\nlearner = \"data_parallel\"\n";
    std::fs::write(d.join("two.toml"), config(&data, "two.model", dist)).unwrap();
    let one = Command::new(BIN)
        .args(["train", d.join("one.toml").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(one.status.success(), "{}", text(&one.stderr));
    let two = mpirun()
        .args([
            "-np",
            "2",
            BIN,
            "train",
            d.join("two.toml").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let out = text(&two.stdout);
    assert!(two.status.success(), "{}\n{}", out, text(&two.stderr));
    // one worker's text, once; the data file is one chunk, so rank 0 reads it all and
    // rank 1 adds zero gradients: the same numbers as one worker
    let single = text(&one.stdout).replace("one.model", "two.model");
    assert_eq!(without_timings(&out), without_timings(&single));
    assert_eq!(out.matches("Model saved").count(), 1);
    assert!(d.join("two.model").exists());
}

/// The progress rows (average loss, loss since last, average metric, metric since
/// last, examples) of `rntk train`'s output.
fn progress_rows(s: &str) -> Vec<Vec<f64>> {
    s.lines()
        .filter_map(|l| {
            let row: Vec<f64> = l
                .split_whitespace()
                .map(|x| x.parse().ok())
                .collect::<Option<_>>()?;
            (row.len() == 5).then_some(row)
        })
        .collect()
}

#[test]
fn small_chunks_split_the_data_between_the_workers() {
    // `chunk_bytes` makes the file many chunks: each worker reads its own, and the
    // gradients summed over both equal one worker's on the whole minibatch (to float
    // rounding: another summation order), so the losses printed are one worker's
    let d = setup("chunks");
    let data = d.join("data");
    let chunks = |c: String| c.replace("randomize = true", "randomize = true\nchunk_bytes = 2048");
    std::fs::write(d.join("one.toml"), chunks(config(&data, "one.model", ""))).unwrap();
    let dist = "[distributed]\nlearner = \"data_parallel\"\n";
    std::fs::write(d.join("two.toml"), chunks(config(&data, "two.model", dist))).unwrap();
    let one = Command::new(BIN)
        .args(["train", d.join("one.toml").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(one.status.success(), "{}", text(&one.stderr));
    let two = mpirun()
        .args([
            "-np",
            "2",
            BIN,
            "train",
            d.join("two.toml").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let out = text(&two.stdout);
    assert!(two.status.success(), "{}\n{}", out, text(&two.stderr));
    assert_eq!(out.matches("Model saved").count(), 1);
    // the same rows (sample counts are global), the printed losses equal to the last
    // of their 3 digits
    let (a, b) = (progress_rows(&text(&one.stdout)), progress_rows(&out));
    assert!(a.len() >= 10, "{}", text(&one.stdout));
    assert_eq!(a.len(), b.len(), "{out}");
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x[4], y[4], "examples: {a:?} vs {b:?}");
        for k in 0..4 {
            assert!((x[k] - y[k]).abs() <= 1.1e-3, "{a:?} vs {b:?}");
        }
    }
}

#[test]
fn a_config_that_differs_between_workers_is_refused_at_start() {
    let d = setup("differ");
    let data = d.join("data");
    let dist = "[distributed]\nlearner = \"data_parallel\"\n";
    std::fs::write(d.join("a.toml"), config(&data, "a.model", dist)).unwrap();
    std::fs::write(d.join("b.toml"), config(&data, "b.model", dist)).unwrap();
    let (a, b) = (d.join("a.toml"), d.join("b.toml"));
    let o = mpirun()
        .args(["-np", "1", BIN, "train", a.to_str().unwrap()])
        .arg(":")
        .args(["-np", "1", BIN, "train", b.to_str().unwrap()])
        .output()
        .unwrap();
    let err = text(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("differs between the workers: rank(s) 1"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(!d.join("a.model").exists() && !d.join("b.model").exists());
}

#[test]
fn several_workers_without_a_distributed_section_are_refused() {
    let d = setup("nodist");
    std::fs::write(d.join("c.toml"), config(&d.join("data"), "c.model", "")).unwrap();
    let o = mpirun()
        .args(["-np", "2", BIN, "train", d.join("c.toml").to_str().unwrap()])
        .output()
        .unwrap();
    let err = text(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("no [distributed] section"), "{err}");
}

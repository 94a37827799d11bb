//! Issue 13 from the command line: hostile sizes, paths, files that change
//! underneath and concurrent trainers. One test per row of the issue's table (each
//! now a one-line `rntk:` error with exit status 1 and nothing written that does not
//! load), an endless eval input stopping in bounded memory, a data file truncated
//! mid-training followed by a resume from the last checkpoint, and messages that
//! never echo raw control bytes or name temporary files.
//!
//! `sizes.rs`: rows 1–6 (sizes in configs and model files); `processes.rs`: rows
//! 7, 8, 11 and 12 (endless and truncated input, killed and concurrent runs);
//! `paths.rs`: rows 9 and 10 (paths that cannot be used) and the messages. The
//! helpers here run `rntk` and write its configs and data.

mod paths;
mod processes;
mod sizes;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rntk"))
}

fn rntk(args: &[&str]) -> Output {
    bin().args(args).output().expect("the rntk binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("rntk-hostile-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Exit 1, one line on stderr starting `rntk: `, no panic, no raw control byte,
/// containing every needle.
#[track_caller]
fn assert_user_error(o: &Output, needles: &[&str]) -> String {
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("internal error"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("rntk: "), "{err}");
    assert!(
        !err.trim_end().chars().any(|c| c.is_control()),
        "raw control characters: {err:?}"
    );
    for n in needles {
        assert!(err.contains(n), "{err:?} should mention {n:?}");
    }
    err
}

/// `n` sequences of `features` (dim 1, 2..=6 steps) with one `target` each.
fn series(n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        let len = 2 + i % 5;
        for t in 0..len {
            let x = ((i * 7 + t * 3) % 10) as f32 / 10.0;
            if t == 0 {
                s.push_str(&format!(
                    "{i}\t|features {x}\t|target {}\n",
                    (i % 3) as f32 / 4.0
                ));
            } else {
                s.push_str(&format!("{i}\t|features {x}\n"));
            }
        }
    }
    s
}

/// A small training config over `data`; `extra` is appended (callbacks, limits).
fn config(data: &Path, out: &Path, dense_dim: &str, input_dim: &str, extra: &str) -> String {
    format!(
        r#"
[[inputs]]
name = "features"
dim = {input_dim}
sequence = true

[[inputs]]
name = "target"
dim = 1

[model]
layers = [
    {{ type = "Fold", step = {{ type = "LSTM", dim = 3 }} }},
    {{ type = "Dense", dim = {dense_dim} }},
    {{ type = "Dense", dim = 1 }},
]

[criterion]
loss = "squared_error"
labels = "target"

[learner]
type = "adam"
lr = 0.01
momentum = 0.9

[train]
minibatch_size = 64
epoch_size = 200
max_epochs = 2
output = "{out}"

[readers.train]
file = "{data}"
randomize = false

[callbacks.progress]
bar = false
{extra}"#,
        out = p(out),
        data = p(data),
    )
}

/// A folder with `train.ctf` (`n` sequences) and the config written as `c.toml`.
fn setup(
    name: &str,
    n: usize,
    dense_dim: &str,
    input_dim: &str,
    extra: &str,
) -> (PathBuf, PathBuf) {
    let d = dir(name);
    std::fs::write(d.join("train.ctf"), series(n)).unwrap();
    let cfg = d.join("c.toml");
    std::fs::write(
        &cfg,
        config(
            &d.join("train.ctf"),
            &d.join("m.model"),
            dense_dim,
            input_dim,
            extra,
        ),
    )
    .unwrap();
    (d, cfg)
}

fn files_in(d: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn cntk_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../../tests/fixtures/cntk_models/{name}.model"))
}

/// A trained model (the seed shape: features dim 1 → one value per sequence).
fn trained_model(name: &str) -> (PathBuf, PathBuf) {
    let (d, cfg) = setup(name, 30, "2", "1", "");
    let o = rntk(&["train", p(&cfg)]);
    assert!(o.status.success(), "{}{}", text(&o.stdout), text(&o.stderr));
    (d.join("m.model"), d.join("train.ctf"))
}

/// Run `rntk` under a 2 GiB address-space limit: a reader that does not stop
/// allocates past it and aborts (exit 134), which `assert_user_error` refuses.
fn bounded(args: &[&str], env: &[(&str, &str)], stdin: Stdio) -> Output {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg("ulimit -v 2097152; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_rntk"))
        .args(args)
        .stdin(stdin);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

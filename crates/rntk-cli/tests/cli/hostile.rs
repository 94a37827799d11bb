//! Issue 13 from the command line: hostile sizes, paths, files that change
//! underneath and concurrent trainers. One test per row of the issue's table (each
//! now a one-line `rntk:` error with exit status 1 and nothing written that does not
//! load), an endless eval input stopping in bounded memory, a data file truncated
//! mid-training followed by a resume from the last checkpoint, and messages that
//! never echo raw control bytes or name temporary files.

use prost::Message;
use rntk::import::proto::{dictionary_value::Value as V, Dictionary, DictionaryValue};
use rntk::persist::graph_format::*;
use rntk::persist::{weights, METADATA_KEY};
use rntk::{Shape, Tensor};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

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

// ---- row 1: a dimension of 10^12 in a train config ------------------------------------

#[test]
fn row01_a_huge_dimension_in_a_config_is_refused_before_anything_is_allocated() {
    let (d, cfg) = setup("row01", 20, "1000000000000", "1", "");
    let o = rntk(&["train", p(&cfg)]);
    assert_user_error(
        &o,
        &[
            "model.layers[1] (Dense)",
            "(3, 1000000000000)",
            "more than the limit of 1073741824",
            "max_sample_elements",
        ],
    );
    assert!(!d.join("m.model").exists());
    // an input's dim: named as the input
    let (d, cfg) = setup("row01-input", 20, "2", "1000000000000", "");
    let o = rntk(&["train", p(&cfg)]);
    assert_user_error(&o, &["inputs 'features'.dim", "(1000000000000,)", "limit"]);
    assert!(!d.join("m.model").exists());
}

// ---- row 2: a dimension list whose element count wraps --------------------------------

#[test]
fn row02_a_dimension_list_that_would_wrap_is_refused_and_nothing_is_saved() {
    let (d, cfg) = setup("row02", 20, "[3, 6148914691236517226]", "1", "");
    let o = rntk(&["train", p(&cfg)]);
    assert_user_error(
        &o,
        &[
            "model.layers[1] (Dense)",
            "6148914691236517226",
            "overflows",
        ],
    );
    assert!(!d.join("m.model").exists());
    assert!(text(&o.stdout).is_empty(), "{}", text(&o.stdout));
}

// ---- native model files made by hand ---------------------------------------------------

fn info(shape: &[usize], axes: AxesDesc) -> InfoDesc {
    InfoDesc {
        shape: Shape::from(shape),
        dtype: DTypeDesc::Float32,
        dynamic_axes: axes,
        is_sparse: false,
        needs_gradient: false,
    }
}

fn graph(variables: Vec<LeafDesc>, f: FunctionDesc) -> GraphDesc {
    GraphDesc {
        format: FORMAT.into(),
        version: VERSION,
        axes: vec![AxisDesc {
            name: "defaultDynamicAxis".into(),
            default: true,
        }],
        variables,
        functions: vec![f],
        root: 0,
        outputs: vec![VarRef::Output(0, 0)],
    }
}

fn input(name: &str, i: InfoDesc) -> LeafDesc {
    LeafDesc {
        kind: LeafKind::Input,
        uid: name.into(),
        name: name.into(),
        info: i,
        tensor: None,
        replaced_by: None,
    }
}

fn write_model(path: &Path, g: &GraphDesc) {
    let json = serde_json::to_string(g).unwrap();
    let tensors: Vec<(String, Tensor)> = Vec::new();
    let bytes =
        weights::encode("m", &tensors, HashMap::from([(METADATA_KEY.into(), json)])).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// `y = -x` for an input `x` of `shape` (batch axis).
fn negate_model(path: &Path, shape: &[usize]) {
    let x = || info(shape, AxesDesc::Batch);
    write_model(
        path,
        &graph(
            vec![input("x", x())],
            FunctionDesc {
                uid: "Negate1".into(),
                name: "y".into(),
                kind: FnKindDesc::Primitive(rntk::ops::Op::Unary(rntk::ops::UnaryOp::Negate)),
                inputs: vec![VarRef::Leaf(0)],
                outputs: vec![x()],
            },
        ),
    );
}

// ---- row 3: a native model declaring an input of 2^40 elements ---------------------------

#[test]
fn row03_a_model_with_a_huge_input_is_refused_at_load() {
    let d = dir("row03");
    let m = d.join("big.model");
    negate_model(&m, &[1 << 40]);
    std::fs::write(d.join("x.ctf"), "0 |x 1\n").unwrap();
    let out = d.join("pred.txt");
    let o = rntk(&[
        "eval",
        p(&m),
        "--input",
        p(&d.join("x.ctf")),
        "--output",
        p(&out),
    ]);
    assert_user_error(
        &o,
        &[
            "big.model",
            "input x 'x'",
            "(1099511627776,)",
            "more than the limit",
        ],
    );
    assert!(!out.exists());
    assert_user_error(&rntk(&["info", p(&m)]), &["big.model", "(1099511627776,)"]);
    // within the limit it loads and evaluates
    negate_model(&m, &[2]);
    std::fs::write(d.join("x.ctf"), "0 |x 1 2\n").unwrap();
    let o = rntk(&["eval", p(&m), "--input", p(&d.join("x.ctf"))]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "-1.0 -2.0\n");
}

// ---- row 4: dimensions after a zero ------------------------------------------------------

#[test]
fn row04_a_zero_dimension_does_not_hide_huge_ones() {
    let d = dir("row04");
    let m = d.join("zero.model");
    negate_model(&m, &[0, 1 << 62, 1 << 62]);
    std::fs::write(d.join("x.ctf"), "0 |x 1\n").unwrap();
    let o = rntk(&["eval", p(&m), "--input", p(&d.join("x.ctf"))]);
    assert_user_error(
        &o,
        &[
            "zero.model",
            "(0, 4611686018427387904, 4611686018427387904)",
            "overflows",
        ],
    );
}

// ---- row 5: delay offsets 0, 2^62, 2^64 - 1 ---------------------------------------------------

#[test]
fn row05_delay_offsets_out_of_range_are_refused() {
    let d = dir("row05");
    std::fs::write(d.join("x.ctf"), "0 |x 1\n0 |x 2\n").unwrap();
    let seq = || info(&[1], AxesDesc::Sequence(0));
    for (k, offset) in [0usize, 1 << 62, usize::MAX].into_iter().enumerate() {
        for future in [false, true] {
            let m = d.join(format!("delay{k}{future}.model"));
            let op = if future {
                rntk::ops::Op::FutureValue { offset }
            } else {
                rntk::ops::Op::PastValue { offset }
            };
            write_model(
                &m,
                &graph(
                    vec![input("x", seq()), input("s", info(&[1], AxesDesc::Batch))],
                    FunctionDesc {
                        uid: "Delay1".into(),
                        name: "d".into(),
                        kind: FnKindDesc::Primitive(op),
                        inputs: vec![VarRef::Leaf(0), VarRef::Leaf(1)],
                        outputs: vec![seq()],
                    },
                ),
            );
            let o = rntk(&[
                "eval",
                p(&m),
                "--input",
                p(&d.join("x.ctf")),
                "--map",
                "x=x",
            ]);
            assert_user_error(&o, &["Delay1 'd'", &format!("time step (offset) {offset}")]);
        }
    }
}

// ---- row 6: CNTK OneHot with numClass near 2^32 -------------------------------------------

fn cntk_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../../tests/fixtures/cntk_models/{name}.model"))
}

#[test]
fn row06_a_cntk_one_hot_with_billions_of_classes_is_refused() {
    let d = dir("row06");
    let mut dict =
        Dictionary::decode(&std::fs::read(cntk_fixture("ops_more_forms")).unwrap()[..]).unwrap();
    let fns = match dict
        .data
        .get_mut("primitive_functions")
        .and_then(|v| v.value.as_mut())
    {
        Some(V::VectorValue(v)) => &mut v.value,
        _ => panic!("functions"),
    };
    let mut edited = false;
    for f in fns.iter_mut() {
        let Some(V::DictionaryValue(f)) = f.value.as_mut() else {
            continue;
        };
        let is_one_hot = matches!(
            f.data.get("uid").and_then(|u| u.value.as_ref()),
            Some(V::StringValue(u)) if u.starts_with("OneHot")
        );
        if let (true, Some(V::DictionaryValue(a))) = (
            is_one_hot,
            f.data.get_mut("attributes").and_then(|v| v.value.as_mut()),
        ) {
            a.data.insert(
                "numClass".into(),
                DictionaryValue {
                    version: 2,
                    value_type: rntk::import::proto::dictionary_value::Type::SizeT as i32,
                    value: Some(V::SizeTValue((1 << 32) - 1)),
                },
            );
            edited = true;
        }
    }
    assert!(edited, "the fixture has a OneHot");
    let m = d.join("onehot.model");
    std::fs::write(&m, dict.encode_to_vec()).unwrap();
    std::fs::write(d.join("x.ctf"), "0 |k 1 2\n").unwrap();
    let o = rntk(&["eval", p(&m), "--input", p(&d.join("x.ctf"))]);
    assert_user_error(
        &o,
        &[
            "onehot.model",
            "OneHot",
            "4294967295 classes",
            "more than the limit of 16777216",
        ],
    );
    assert_user_error(&rntk(&["info", p(&m)]), &["4294967295 classes"]);
}

// ---- row 7: eval input that never ends --------------------------------------------------

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

#[test]
fn row07_eval_of_an_endless_input_stops_with_an_error_in_bounded_memory() {
    let (m, data) = trained_model("row07");
    let t = Instant::now();
    let o = bounded(&["eval", p(&m), "--input", "/dev/zero"], &[], Stdio::null());
    assert_user_error(
        &o,
        &[
            "--input /dev/zero",
            "row 1 is longer than 67108864 bytes",
            "RNTK_MAX_LINE_BYTES",
        ],
    );
    assert!(t.elapsed() < Duration::from_secs(60));
    // an endless stream of valid rows: stops at the stream limit
    let mut yes = Command::new("yes")
        .arg("0\t|features 0.5\t|target 1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let o = bounded(
        &["eval", p(&m), "--input", "/dev/stdin"],
        &[("RNTK_MAX_STREAM_BYTES", "4000000")],
        Stdio::from(yes.stdout.take().unwrap()),
    );
    let _ = yes.kill();
    let _ = yes.wait();
    assert_user_error(
        &o,
        &[
            "/dev/stdin",
            "longer than 4000000 bytes",
            "RNTK_MAX_STREAM_BYTES",
        ],
    );
    // a finite stream evaluates like the file it came from
    let from_file = rntk(&["eval", p(&m), "--input", p(&data)]);
    assert!(from_file.status.success(), "{}", text(&from_file.stderr));
    let o = bounded(
        &["eval", p(&m), "--input", "/dev/stdin"],
        &[],
        Stdio::from(std::fs::File::open(&data).unwrap()),
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(o.stdout, from_file.stdout);
    // an invalid limit in the environment is an error, not ignored
    let o = bounded(
        &["eval", p(&m), "--input", p(&data)],
        &[("RNTK_MAX_STREAM_BYTES", "lots")],
        Stdio::null(),
    );
    assert_user_error(&o, &["RNTK_MAX_STREAM_BYTES", "\"lots\""]);
}

// ---- row 8 (and the resume): the training data truncated while it is read ------------------

fn wait_for(what: &str, deadline: Duration, mut ok: impl FnMut() -> bool) {
    let t = Instant::now();
    while !ok() {
        assert!(t.elapsed() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_exit(child: &mut Child, deadline: Duration) -> Output {
    let t = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if t.elapsed() > deadline {
            let _ = child.kill();
            panic!("the process did not end");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_end(&mut stderr)
        .unwrap();
    Output {
        status: child.wait().unwrap(),
        stdout,
        stderr,
    }
}

/// A long run (many epochs) with a checkpoint after every epoch.
fn long_run(name: &str, epochs: u64) -> (PathBuf, PathBuf) {
    let extra = "\n[callbacks.checkpoint]\nfile = \"ck/m.ckpt\"\nfrequency = 200\n";
    let (d, cfg) = setup(name, 60, "2", "1", extra);
    let body = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("max_epochs = 2", &format!("max_epochs = {epochs}"));
    std::fs::write(&cfg, body).unwrap();
    (d, cfg)
}

fn spawn_train(cfg: &Path) -> Child {
    bin()
        .args(["train", p(cfg)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn row08_data_truncated_mid_training_ends_with_an_error_and_the_checkpoint_resumes() {
    let (d, cfg) = long_run("row08", 100_000);
    let data = d.join("train.ctf");
    let original = std::fs::read(&data).unwrap();
    let mut child = spawn_train(&cfg);
    wait_for("the first checkpoint", Duration::from_secs(120), || {
        d.join("ck/m.ckpt.ckp").exists()
    });
    // what `> train.ctf` or a rewrite in progress does to a file being read
    std::fs::OpenOptions::new()
        .write(true)
        .open(&data)
        .unwrap()
        .set_len(original.len() as u64 / 2)
        .unwrap();
    let o = wait_exit(&mut child, Duration::from_secs(120));
    assert_user_error(
        &o,
        &["train.ctf", "changed while it was being read", "shrank"],
    );
    assert!(
        !d.join("m.model").exists(),
        "no model from an interrupted run"
    );
    let done = text(&o.stdout).matches("Finished Epoch[").count() as u64;
    assert!(done >= 1);

    // the data restored, the same run resumes from its last checkpoint: two more
    // epochs, not the whole run again
    std::fs::write(&data, &original).unwrap();
    let resumed = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("max_epochs = 100000", &format!("max_epochs = {}", done + 2));
    std::fs::write(&cfg, resumed).unwrap();
    let o = rntk(&["train", p(&cfg)]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    assert_eq!(out.matches("Finished Epoch[").count(), 2, "{out}");
    let o = rntk(&["info", p(&d.join("m.model"))]);
    assert!(o.status.success(), "{}", text(&o.stderr));
}

// ---- row 9: an output path that cannot be written ------------------------------------------

#[test]
fn row09_outputs_that_cannot_be_written_are_refused_before_training() {
    let base = dir("row09");
    std::fs::write(base.join("plain"), b"a file").unwrap();
    let under_file = p(&base.join("plain")).to_string() + "/sub";
    let cases: Vec<(String, Vec<String>)> = vec![
        (
            format!("\n[callbacks.tensorboard]\nlog_dir = \"{under_file}/tb\"\n"),
            vec![
                "callbacks.tensorboard.log_dir".into(),
                "expected a directory".into(),
            ],
        ),
        (
            format!("log_file = \"{under_file}/train.log\"\n"),
            vec![
                "callbacks.progress.log_file".into(),
                "expected a directory".into(),
            ],
        ),
        (
            format!("\n[callbacks.checkpoint]\nfile = \"{}\"\n", p(&base)),
            vec!["callbacks.checkpoint.file".into(), "is a directory".into()],
        ),
    ];
    for (k, (extra, needles)) in cases.iter().enumerate() {
        let (d, cfg) = setup(&format!("row09-{k}"), 30, "2", "1", extra);
        let o = rntk(&["train", p(&cfg)]);
        let n: Vec<&str> = needles.iter().map(String::as_str).collect();
        assert_user_error(&o, &n);
        assert!(
            text(&o.stdout).is_empty(),
            "trained anyway: {}",
            text(&o.stdout)
        );
        assert!(!d.join("m.model").exists());
    }
    // the model output itself
    let (d, cfg) = setup("row09-output", 30, "2", "1", "");
    let body = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace(p(&d.join("m.model")), &format!("{under_file}/m.model"));
    std::fs::write(&cfg, body).unwrap();
    let o = rntk(&["train", p(&cfg)]);
    assert_user_error(
        &o,
        &["train.output", "plain is a file, expected a directory"],
    );
    assert!(text(&o.stdout).is_empty(), "{}", text(&o.stdout));
    // an output over the training data, or two outputs on one file
    let (d, cfg) = setup("row09-same", 30, "2", "1", "");
    let body = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace(p(&d.join("m.model")), p(&d.join("train.ctf")));
    std::fs::write(&cfg, body).unwrap();
    assert_user_error(
        &rntk(&["train", p(&cfg)]),
        &["train.output", "data file of readers.train"],
    );
}

// ---- row 10: a directory given as the CTF file -----------------------------------------------

#[test]
fn row10_a_directory_as_the_data_file_says_so() {
    let (d, cfg) = setup("row10", 30, "2", "1", "");
    let body = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace(p(&d.join("train.ctf")), p(&d));
    std::fs::write(&cfg, body).unwrap();
    let err = assert_user_error(
        &rntk(&["train", p(&cfg)]),
        &["readers.train.file", "is a directory, expected a CTF file"],
    );
    assert!(!err.contains("os error 19"), "{err}");
    let (m, _) = trained_model("row10-eval");
    assert_user_error(
        &rntk(&["eval", p(&m), "--input", p(&d)]),
        &["--input", "is a directory, expected a CTF file"],
    );
    assert_user_error(
        &rntk(&["info", p(&d)]),
        &["is a directory, expected a model file"],
    );
}

// ---- rows 11 and 12: temporary files of killed runs; two trainers on one checkpoint ------

#[test]
fn row11_temporary_files_of_a_killed_checkpoint_write_are_removed_at_the_next_start() {
    let extra = "\n[callbacks.checkpoint]\nfile = \"ck/m.ckpt\"\nfrequency = 200\n";
    let (d, cfg) = setup("row11", 30, "2", "1", extra);
    let ck = d.join("ck");
    std::fs::create_dir_all(&ck).unwrap();
    // what `kill -9` during a write leaves (a writer that no longer runs)
    let stale = [
        ".m.ckpt.tmp-999999999-0",
        ".m.ckpt.ckp.tmp-999999999-1",
        ".m.ckpt.ckp.tmp-999999998-7",
    ];
    for s in stale {
        std::fs::write(ck.join(s), b"half a checkpoint").unwrap();
    }
    std::fs::write(ck.join("unrelated.tmp-1-2"), b"keep").unwrap();
    std::fs::write(d.join(".m.model.tmp-999999999-0"), b"half a model").unwrap();
    let o = rntk(&["train", p(&cfg)]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        files_in(&ck),
        vec!["m.ckpt", "m.ckpt.ckp", "unrelated.tmp-1-2"],
        "stale temporary files removed, the lock released"
    );
    assert!(!d.join(".m.model.tmp-999999999-0").exists());
}

#[test]
fn row12_a_second_trainer_on_the_same_checkpoint_is_refused() {
    let (d, cfg) = long_run("row12", 100_000);
    let mut first = spawn_train(&cfg);
    wait_for("the first checkpoint", Duration::from_secs(120), || {
        d.join("ck/m.ckpt.ckp").exists()
    });
    // the second run also asks for a TensorBoard log: nothing of it may appear
    let second_cfg = d.join("second.toml");
    std::fs::write(
        &second_cfg,
        std::fs::read_to_string(&cfg).unwrap() + "\n[callbacks.tensorboard]\nlog_dir = \"tb2\"\n",
    )
    .unwrap();
    let o = rntk(&["train", p(&second_cfg)]);
    assert_user_error(
        &o,
        &[
            "callbacks.checkpoint.file",
            "m.ckpt",
            "in use by another trainer",
        ],
    );
    assert!(!d.join("tb2").exists(), "the refused trainer wrote nothing");
    assert!(
        first.try_wait().unwrap().is_none(),
        "the first trainer runs on"
    );
    // kill -9: the lock goes with the process; a new run (not restoring) starts
    first.kill().unwrap();
    first.wait().unwrap();
    let fresh = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("max_epochs = 100000", "max_epochs = 1")
        .replace("frequency = 200\n", "frequency = 200\nrestore = false\n");
    std::fs::write(&cfg, fresh).unwrap();
    let o = rntk(&["train", p(&cfg)]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let left = files_in(&d.join("ck"));
    assert!(left.iter().all(|f| !f.contains(".tmp-")), "{left:?}");
    assert!(rntk(&["info", p(&d.join("m.model"))]).status.success());
}

// ---- messages -----------------------------------------------------------------------

#[test]
fn garbage_configs_are_not_echoed_to_the_terminal() {
    let d = dir("garbage");
    let cfg = d.join("g.toml");
    // binary bytes: not UTF-8
    std::fs::write(&cfg, b"\x1b[2J\x1b[31m\x00\x07\xff\xfe garbage").unwrap();
    assert_user_error(&rntk(&["train", p(&cfg)]), &["g.toml:1", "not UTF-8 text"]);
    // UTF-8 with escape sequences inside a key and a value
    std::fs::write(
        &cfg,
        "[train]\nx\u{1b}[2J = 1\ny = \"\u{1b}]0;owned\u{7}\"\n",
    )
    .unwrap();
    let err = assert_user_error(&rntk(&["train", p(&cfg)]), &["g.toml:"]);
    assert!(!err.contains('\u{1b}') && !err.contains('\u{7}'), "{err:?}");
    // a directory, and an endless device, as the config
    assert_user_error(
        &rntk(&["train", p(&d)]),
        &["is a directory, expected a TOML config"],
    );
    let o = bounded(&["train", "/dev/zero"], &[], Stdio::null());
    assert_user_error(
        &o,
        &[
            "/dev/zero",
            "longer than 16777216 bytes",
            "RNTK_MAX_CONFIG_BYTES",
        ],
    );
}

#[test]
fn errors_name_the_real_target_not_a_temporary_file() {
    let d = dir("target-name");
    let out = d.join("no/such/folder/lstm.rntk");
    let o = rntk(&["import-cntk", p(&cntk_fixture("lstm")), "-o", p(&out)]);
    let err = assert_user_error(&o, &["lstm.rntk"]);
    assert!(!err.contains(".tmp-"), "{err}");
}

#[test]
fn limits_can_be_raised_in_the_config() {
    // a 2^20-element Dense output is over a lowered limit, then allowed by [limits]
    let (d, cfg) = setup(
        "limits",
        20,
        "1048577",
        "1",
        "\n[limits]\nmax_sample_elements = 1048576\n",
    );
    assert_user_error(
        &rntk(&["train", p(&cfg)]),
        &[
            "model.layers[1] (Dense)",
            "(3, 1048577)",
            "limit of 1048576",
        ],
    );
    let body = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        body.replace(
            "max_sample_elements = 1048576",
            "max_sample_elements = 4194304",
        ),
    )
    .unwrap();
    let body = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        body.replace("max_epochs = 2", "max_epochs = 1")
            .replace("epoch_size = 200", "epoch_size = 20"),
    )
    .unwrap();
    let o = rntk(&["train", p(&cfg)]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(d.join("m.model").exists());
    // an unknown limit is named
    std::fs::write(
        &cfg,
        body.replace("max_sample_elements = 4194304", "max_colours = 3"),
    )
    .unwrap();
    assert_user_error(&rntk(&["train", p(&cfg)]), &["max_colours"]);
}

//! The `rntk` binary end to end: gen-data → train (tiny configs) → info → eval, and
//! user errors that exit 1 with one helpful line and no panic.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use crate::support;
use support::{assert_user_error, dir, p, rntk, text};

/// Data generated once per data set for all tests.
fn data(set: &str) -> PathBuf {
    static TS: OnceLock<PathBuf> = OnceLock::new();
    static SLOTS: OnceLock<PathBuf> = OnceLock::new();
    let cell = if set == "timeseries" { &TS } else { &SLOTS };
    cell.get_or_init(|| {
        let d = dir(&format!("data-{set}"));
        let o = rntk(&["gen-data", set, p(&d)]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        d
    })
    .clone()
}

fn seed_config(data: &Path, out: &Path, layers: &str) -> String {
    format!(
        r#"
[[inputs]]
name = "features"
dim = 1
sequence = true

[[inputs]]
name = "target"
dim = 1

[model]
default_options = {{ initial_state = 0.1 }}
layers = [{layers}]

[criterion]
loss = "squared_error"
labels = "target"

[learner]
type = "adam"
lr = 0.005
momentum = 0.9

[train]
minibatch_size = 140
epoch_size = 100
max_epochs = 3
output = "{out}"

[readers.train]
file = "{train}"
streams = [
    {{ name = "features", dim = 1 }},
    {{ name = "target", dim = 1 }},
]

[readers.test]
file = "{test}"
randomize = false

[callbacks.progress]
freq = 0

[callbacks.test]
reader = "test"
"#,
        out = p(out),
        train = p(&data.join("train.ctf")),
        test = p(&data.join("test.ctf")),
    )
}

const SEED_LAYERS: &str =
    r#"{ type = "Fold", step = { type = "LSTM", dim = 4 } }, { type = "Dense", dim = 1 }"#;

/// Sequences in a CTF file (ids change between sequences) and each one's length.
fn sequence_lengths(path: &Path) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
    let mut last = None;
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let id = line.split_whitespace().next().unwrap().to_string();
        if last.as_ref() != Some(&id) {
            out.push(0);
            last = Some(id);
        }
        *out.last_mut().unwrap() += 1;
    }
    out
}

#[test]
fn timeseries_train_info_eval() {
    let data = data("timeseries");
    let d = dir("seed");
    let model = d.join("seed.model");
    let cfg = d.join("seed.toml");
    std::fs::write(&cfg, seed_config(&data, &model, SEED_LAYERS)).unwrap();
    let o = rntk(&["train", p(&cfg)]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{}{}", out, text(&o.stderr));
    // LSTM(4) on dim 1: W (1,16), H (4,16), b (16,); Dense: W (4,1), b (1,)
    assert!(
        out.starts_with("Training 101 parameters in 5 parameter tensors.\n average      since"),
        "{out}"
    );
    assert!(out.contains("Learning rate per minibatch: 0.005"), "{out}");
    assert!(
        out.contains("Finished Evaluation [1]: Minibatch[1-"),
        "{out}"
    );
    assert!(model.exists());

    let o = rntk(&["info", p(&model)]);
    let info = text(&o.stdout);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(info.contains("features: (1,) f32 sequence"), "{info}");
    assert!(info.contains("(4, 16)"), "{info}");
    assert!(
        info.contains("Training 101 parameters in 5 parameter tensors."),
        "{info}"
    );

    // Fold's output has no sequence axis: one line per input sequence, one value each
    let test = data.join("test.ctf");
    let n_seq = sequence_lengths(&test).len();
    let o = rntk(&["eval", p(&model), "--input", p(&test)]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let lines: Vec<String> = text(&o.stdout).lines().map(String::from).collect();
    assert_eq!(lines.len(), n_seq);
    for l in &lines {
        let v: Vec<f32> = l.split(' ').map(|x| x.parse().unwrap()).collect();
        assert_eq!(v.len(), 1, "{l}");
        assert!(v[0].is_finite());
    }
    // --output and --format ctf (and an explicit --map) give the same values
    let ctf = d.join("pred.ctf");
    let o = rntk(&[
        "eval",
        p(&model),
        "--input",
        p(&test),
        "--map",
        "features=features",
        "--format",
        "ctf",
        "--output",
        p(&ctf),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let rows: Vec<String> = std::fs::read_to_string(&ctf)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(rows.len(), n_seq);
    assert_eq!(rows[0], format!("0 |output {}", lines[0]));
    assert_eq!(
        rows[n_seq - 1],
        format!("{} |output {}", n_seq - 1, lines[n_seq - 1])
    );

    // a file with only the features stream feeds the one input whatever its name
    let only = d.join("only.ctf");
    let renamed: String = std::fs::read_to_string(&test)
        .unwrap()
        .lines()
        .map(|l| {
            let f = l.split('\t').nth(1).unwrap().replace("|features", "|x");
            format!("{}\t{f}\n", l.split('\t').next().unwrap())
        })
        .collect();
    std::fs::write(&only, renamed).unwrap();
    let o = rntk(&["eval", p(&model), "--input", p(&only)]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout).lines().collect::<Vec<_>>(), lines);

    // several streams, none named like the input: --map is required
    let two = d.join("two.ctf");
    std::fs::write(&two, "0\t|x 0.5\t|y 1\n0\t|x 0.25\n").unwrap();
    assert_user_error(
        &rntk(&["eval", p(&model), "--input", p(&two)]),
        &["'features' is not mapped", "x, y", "--map features=STREAM"],
    );
    let o = rntk(&["eval", p(&model), "--input", p(&two), "--map", "features=x"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout).lines().count(), 1);
    assert_user_error(
        &rntk(&["eval", p(&model), "--input", p(&two), "--map", "features=z"]),
        &["no stream 'z'"],
    );
}

#[test]
fn slots_tagger_with_sparse_streams_gives_one_line_per_sequence() {
    let data = data("slots");
    let d = dir("slots");
    let model = d.join("tagger.model");
    let cfg = d.join("slots.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[[inputs]]
name = "S0"
dim = 943
sequence = true
sparse = true

[[inputs]]
name = "S2"
dim = 129
sequence = true
sparse = true

[model]
layers = [
    {{ type = "Embedding", dim = 8 }},
    {{ type = "Concat", layers = [
        {{ type = "Recurrence", step = {{ type = "GRU", dim = 4 }} }},
        {{ type = "Recurrence", step = {{ type = "RNNStep", dim = 4 }}, go_backwards = true }},
    ] }},
    {{ type = "LayerNormalization" }},
    {{ type = "Dropout", rate = 0.1, seed = 3 }},
    {{ type = "Dense", dim = 129 }},
]

[criterion]
loss = "cross_entropy_with_softmax"
metric = "classification_error"
labels = "S2"

[learner]
type = "momentum_sgd"
lr = [0.02, 0.01]
lr_per = "sample"
momentum = 0.9
epoch_size = 100

[train]
minibatch_size = 100
epoch_size = 150
max_epochs = 2
output = "{model}"

[readers.train]
file = "{train}"

[callbacks.progress]
freq = 1
tag = "Training"
"#,
            model = p(&model),
            train = p(&data.join("train.ctf")),
        ),
    )
    .unwrap();
    let o = rntk(&["train", p(&cfg)]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    assert!(
        out.contains("Finished Epoch[1 of 2]: [Training] loss = "),
        "{out}"
    );
    assert!(out.contains(" Minibatch[   1-   1]: loss = "), "{out}");

    let test = data.join("test.ctf");
    let lens = sequence_lengths(&test);
    // the file has S0, S1 and S2: the input S0 reads the stream of its name
    let o = rntk(&["eval", p(&model), "--input", p(&test)]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let lines: Vec<String> = text(&o.stdout).lines().map(String::from).collect();
    assert_eq!(lines.len(), lens.len());
    for (l, n) in lines.iter().zip(&lens).take(50) {
        assert_eq!(l.split(' ').count(), n * 129);
    }
}

fn config_error(name: &str, edit: impl Fn(String) -> String) -> Output {
    let data = data("timeseries");
    let d = dir(name);
    let cfg = d.join("c.toml");
    std::fs::write(
        &cfg,
        edit(seed_config(&data, &d.join("m.model"), SEED_LAYERS)),
    )
    .unwrap();
    rntk(&["train", p(&cfg)])
}

#[test]
fn user_errors_exit_1_with_one_line() {
    assert_user_error(
        &rntk(&["train", "/nonexistent/x.toml"]),
        &["/nonexistent/x.toml", "cannot read the config"],
    );
    assert_user_error(
        &rntk(&["info", "/nonexistent/m.model"]),
        &["/nonexistent/m.model"],
    );
    assert_user_error(
        &rntk(&["eval", "/nonexistent/m.model", "--input", "x.ctf"]),
        &["/nonexistent/m.model"],
    );
    // an unknown key names itself and the line
    assert_user_error(
        &config_error("badkey", |c| {
            c.replace("minibatch_size = 140", "minibatch_sise = 140")
        }),
        &[
            "unknown field `minibatch_sise`",
            "minibatch_size",
            "c.toml:",
        ],
    );
    // a missing key names the table
    assert_user_error(
        &config_error("missing", |c| c.replace("lr = 0.005\n", "")),
        &["missing field `lr`", "[learner]"],
    );
    // a wrong type
    assert_user_error(
        &config_error("type", |c| {
            c.replace("max_epochs = 3", "max_epochs = \"three\"")
        }),
        &["max_epochs", "invalid type"],
    );
    assert_user_error(
        &config_error("layer", |c| {
            c.replace(r#"type = "Dense""#, r#"type = "Conv""#)
        }),
        &["model.layers[1]", "unknown layer type \"Conv\"", "Dense"],
    );
    assert_user_error(
        &config_error("layerkey", |c| c.replace("dim = 1 }]", "dims = 1 }]")),
        &["model.layers[1] (Dense)", "dims"],
    );
    assert_user_error(
        &config_error("step", |c| {
            c.replace(r#"type = "LSTM""#, r#"type = "LSTMM""#)
        }),
        &["model.layers[0] (Fold).step.type", "LSTMM", "GRU"],
    );
    assert_user_error(
        &config_error("learner", |c| {
            c.replace(r#"type = "adam""#, r#"type = "adamw""#)
        }),
        &["learner.type", "adamw", "momentum_sgd"],
    );
    assert_user_error(
        &config_error("loss", |c| c.replace("\"squared_error\"", "\"hinge\"")),
        &["criterion.loss", "hinge"],
    );
    assert_user_error(
        &config_error("file", |c| c.replace("train.ctf", "nope.ctf")),
        &["readers.train.file", "nope.ctf", "does not exist"],
    );
    assert_user_error(
        &config_error("reader", |c| {
            c.replace("reader = \"test\"", "reader = \"valid\"")
        }),
        &["callbacks.test.reader", "valid", "[readers.valid]"],
    );
    // shape mismatch between the model output and the labels
    assert_user_error(
        &config_error("shape", |c| {
            c.replace(r#"type = "Dense", dim = 1"#, r#"type = "Dense", dim = 3"#)
                .replace("name = \"target\"\ndim = 1", "name = \"target\"\ndim = 2")
        }),
        &["criterion.loss", "(3,)", "(2,)"],
    );
    // stream dimension disagrees with the input
    assert_user_error(
        &config_error("dim", |c| {
            c.replace(
                "{ name = \"features\", dim = 1 }",
                "{ name = \"features\", dim = 2 }",
            )
        }),
        &[
            "readers.train",
            "stream 'features' has dim 2",
            "input 'features' has dim 1",
        ],
    );
    // a chunk of 0 bytes
    assert_user_error(
        &config_error("chunk", |c| {
            c.replace("[readers.test]", "chunk_bytes = 0\n\n[readers.test]")
        }),
        &["readers.train.chunk_bytes", "positive"],
    );
    // not TOML at all
    assert_user_error(&config_error("syntax", |c| c + "\n[[[\n"), &["c.toml:"]);
}

#[test]
fn checkpoint_cross_validation_tensorboard_and_log_file() {
    let data = data("timeseries");
    let d = dir("callbacks");
    let model = d.join("m.model");
    let cfg = d.join("c.toml");
    let extra = format!(
        r#"
[readers.cv]
file = "{test}"
randomize = false

[callbacks.cross_validation]
reader = "cv"
frequency = 100
max_samples = 64

[callbacks.checkpoint]
file = "ckpt/m.ckpt-model"
frequency = 100

[callbacks.tensorboard]
log_dir = "tb"
freq = 1
"#,
        test = p(&data.join("test.ctf"))
    );
    let text_cfg = seed_config(&data, &model, SEED_LAYERS).replace(
        "[callbacks.progress]\nfreq = 0\n",
        "[callbacks.progress]\nfreq = 2\ntag = \"T\"\nlog_file = \"train.log\"\n",
    ) + &extra;
    std::fs::write(&cfg, text_cfg).unwrap();
    let o = rntk(&["train", p(&cfg)]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    assert!(out.contains("Redirecting log to file"), "{out}");
    let log = std::fs::read_to_string(d.join("train.log")).unwrap();
    assert!(log.contains("CNTKCommandTrainBegin: train"), "{log}");
    assert!(log.contains("Finished Epoch[1 of 3]: [T] loss = "), "{log}");
    // cross-validation passes and the final test pass print evaluation summaries
    assert!(log.matches("Finished Evaluation [").count() >= 2, "{log}");
    assert!(d.join("ckpt/m.ckpt-model").exists());
    assert!(d.join("ckpt/m.ckpt-model.ckp").exists());
    let tb: Vec<_> = std::fs::read_dir(d.join("tb")).unwrap().collect();
    assert_eq!(tb.len(), 1);
    assert!(model.exists());
    // a second run restores the finished checkpoint and trains no further
    let o = rntk(&["train", p(&cfg)]);
    assert!(o.status.success(), "{}", text(&o.stderr));
}

fn cntk_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/cntk_models")
}

/// The CTF rows of a fixture case's sequence input `name` (one sequence per id).
fn ctf_of_case(case: &serde_json::Value, name: &str) -> String {
    let input = &case["inputs"][name];
    let dim = input["shape"][0].as_u64().unwrap() as usize;
    let mut s = String::new();
    for (i, seq) in input["data"].as_array().unwrap().iter().enumerate() {
        let vals: Vec<f64> = seq
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        for step in vals.chunks(dim) {
            let row: Vec<String> = step.iter().map(|v| format!("{v:e}")).collect();
            s.push_str(&format!("{i} |{name} {}\n", row.join(" ")));
        }
    }
    s
}

#[test]
fn cntk_models_eval_info_and_import() {
    let d = dir("cntk");
    let fixtures = cntk_fixtures();
    let cases: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures.join("cases.json")).unwrap())
            .unwrap();
    let case = &cases["lstm"];
    let ctf = d.join("x.ctf");
    std::fs::write(&ctf, ctf_of_case(case, "x")).unwrap();
    let model = fixtures.join("lstm.model");

    // eval reads the CNTK file directly and gives CNTK's outputs
    let o = rntk(&["eval", p(&model), "--input", p(&ctf)]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "one line per sequence: {out}");
    let got: Vec<f64> = lines
        .iter()
        .flat_map(|l| l.split_whitespace().map(|v| v.parse::<f64>().unwrap()))
        .collect();
    let want: Vec<f64> = case["output"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()))
        .collect();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() <= 1e-5 * w.abs().max(1e-2), "{g} vs CNTK {w}");
    }

    // info describes CNTK files
    let o = rntk(&["info", p(&model)]);
    let info = text(&o.stdout);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(info.contains("CNTK v2 model"), "{info}");
    assert!(
        info.contains("  x: [3] float32 sequence") || info.contains("x:"),
        "{info}"
    );
    assert!(info.contains("Dense") && info.contains("LSTM"), "{info}");

    // import-cntk converts; the converted model evaluates identically
    let converted = d.join("lstm.rntk");
    let o = rntk(&["import-cntk", p(&model), "-o", p(&converted)]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("Imported"), "{}", text(&o.stdout));
    let o2 = rntk(&["eval", p(&converted), "--input", p(&ctf)]);
    assert!(o2.status.success(), "{}", text(&o2.stderr));
    assert_eq!(text(&o2.stdout), out, "converted model evaluates the same");
    let o = rntk(&["info", p(&converted)]);
    assert!(
        text(&o.stdout).contains("rntk-model version"),
        "{}",
        text(&o.stdout)
    );

    // a broken CNTK file is one line, exit 1
    let bytes = std::fs::read(&model).unwrap();
    let broken = d.join("broken.model");
    std::fs::write(&broken, &bytes[..bytes.len() / 2]).unwrap();
    let o = rntk(&["import-cntk", p(&broken), "-o", p(&d.join("b.rntk"))]);
    assert_user_error(&o, &["broken.model"]);
    let o = rntk(&["eval", p(&broken), "--input", p(&ctf)]);
    assert_user_error(&o, &["broken.model"]);
}

#[test]
fn import_cntk_refuses_models_rntk_cannot_store_yet() {
    let d = dir("cntk-refuse");
    let out = d.join("where.rntk");
    let o = rntk(&[
        "import-cntk",
        p(&cntk_fixtures().join("seq_where.model")),
        "-o",
        p(&out),
    ]);
    assert_user_error(&o, &["seq_where.model", "cannot store it yet"]);
    assert!(!out.exists(), "nothing written");
    // an op rntk does not load (CosDistance), in a model saved by CNTK 2.7
    let o = rntk(&[
        "eval",
        p(&cntk_fixtures().join("unsupported_cos_distance.model")),
        "--input",
        p(&d.join("none.ctf")),
    ]);
    assert_user_error(&o, &["unsupported_cos_distance.model", "CosDistance"]);
}

/// `--device`: a name that is not a device is a user error; `gpu` on a machine
/// without one says "no GPU: ..." in one line (never a panic); with one, it trains.
#[test]
fn device_flag_names_what_is_wrong() {
    let data = data("timeseries");
    let d = dir("device");
    let cfg = d.join("c.toml");
    std::fs::write(&cfg, seed_config(&data, &d.join("m.model"), SEED_LAYERS)).unwrap();
    assert_user_error(
        &rntk(&["train", p(&cfg), "--device", "tpu:0"]),
        &["--device", "\"tpu:0\"", "gpu:N"],
    );
    let o = rntk(&["train", p(&cfg), "--device", "gpu:0"]);
    match rntk_cuda::unavailable() {
        Some(_) => assert_user_error(&o, &["--device gpu:0", "no GPU: "]),
        None => assert!(o.status.success(), "{}", text(&o.stderr)),
    }
}

#[test]
fn export_onnx_writes_cntk_and_rntk_models_and_refuses_bad_opsets() {
    let d = dir("export-onnx");
    let out = d.join("lstm.onnx");
    let model = cntk_fixtures().join("lstm.model");
    let o = rntk(&["export-onnx", p(&model), "-o", p(&out), "--opset", "15"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("ONNX opset 15"),
        "{}",
        text(&o.stdout)
    );
    let bytes = std::fs::read(&out).unwrap();
    assert!(bytes.len() > 100, "an ONNX file was written");
    // an rntk model converted from CNTK exports too
    let converted = d.join("lstm.rntk");
    let o = rntk(&["import-cntk", p(&model), "-o", p(&converted)]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = rntk(&["export-onnx", p(&converted), "-o", p(&d.join("b.onnx"))]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    // info and eval read ONNX files (told apart by content) like the CNTK original
    let o = rntk(&["info", p(&out)]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("ONNX model"),
        "{}",
        text(&o.stdout)
    );
    let cases: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cntk_fixtures().join("cases.json")).unwrap())
            .unwrap();
    let ctf = d.join("x.ctf");
    std::fs::write(&ctf, ctf_of_case(&cases["lstm"], "x")).unwrap();
    let a = rntk(&["eval", p(&model), "--input", p(&ctf)]);
    let b = rntk(&["eval", p(&out), "--input", p(&ctf)]);
    assert!(b.status.success(), "{}", text(&b.stderr));
    assert_eq!(
        text(&a.stdout),
        text(&b.stdout),
        "the ONNX file evaluates like the CNTK one"
    );
    // an opset rntk does not write: one line, nothing written
    let bad = d.join("bad.onnx");
    let o = rntk(&["export-onnx", p(&model), "-o", p(&bad), "--opset", "7"]);
    assert_user_error(&o, &["opset 7", "13 to 21"]);
    assert!(!bad.exists(), "nothing written");
}

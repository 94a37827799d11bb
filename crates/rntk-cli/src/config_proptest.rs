//! Property tests of the config parser on random TOML (issue 13): random documents
//! over the config's own keys and layer types, random edits of the seed config, and
//! random bytes. Parsing, validating the limits and building and applying the layers
//! never panic, never abort on a size, and every error is one line without raw
//! control characters.

use crate::config::Config;
use crate::fail::Fail;
use proptest::collection::vec;
use proptest::prelude::*;
use rntk::layers::Layer;

/// Keys the config and its layer tables know, and a few it does not.
const KEYS: &[&str] = &[
    "name",
    "dim",
    "sequence",
    "sparse",
    "input",
    "layers",
    "type",
    "step",
    "activation",
    "init",
    "bias",
    "init_bias",
    "go_backwards",
    "initial_state",
    "rate",
    "keep_prob",
    "seed",
    "t",
    "map_rank",
    "input_rank",
    "cell_shape",
    "use_peepholes",
    "scale",
    "epsilon",
    "loss",
    "metric",
    "labels",
    "axis",
    "top_n",
    "lr",
    "momentum",
    "epoch_size",
    "minibatch_size",
    "max_epochs",
    "output",
    "file",
    "streams",
    "field",
    "freq",
    "reader",
    "frequency",
    "max_sample_elements",
    "max_one_hot_classes",
    "max_delay_offset",
    "max_line_bytes",
    "max_stream_bytes",
    "default_options",
    "x",
    "dims",
    "\"quoted key\"",
];

const STRINGS: &[&str] = &[
    "Dense",
    "Embedding",
    "Recurrence",
    "Fold",
    "LSTM",
    "GRU",
    "RNNStep",
    "Dropout",
    "Delay",
    "Concat",
    "Sequential",
    "ResNetBlock",
    "LayerNormalization",
    "BatchNormalization",
    "Stabilizer",
    "Activation",
    "Label",
    "Identity",
    "sequence.last",
    "relu",
    "tanh",
    "glorot_uniform",
    "uniform",
    "adam",
    "sgd",
    "momentum_sgd",
    "squared_error",
    "cross_entropy_with_softmax",
    "features",
    "target",
    "f64",
    "",
    "train",
];

fn quoted(s: &str) -> String {
    // TOML basic string: escape what must be, keep everything else (control
    // characters included, as \u escapes) so the parser sees them
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32 & 0xffff)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn leaf() -> BoxedStrategy<String> {
    prop_oneof![
        // sizes: small, and the extremes that used to wrap or abort
        prop::sample::select(vec![
            "0",
            "1",
            "2",
            "3",
            "7",
            "16",
            "-1",
            "-3",
            "2147483648",
            "1073741825",
            "4611686018427387904",
            "6148914691236517226",
            "9223372036854775807",
            "-9223372036854775808",
            "1000000000000",
        ])
        .prop_map(String::from),
        prop::sample::select(vec!["0.5", "nan", "inf", "-inf", "1e308", "-0.0", "1e-320"])
            .prop_map(String::from),
        prop::sample::select(vec!["true", "false"]).prop_map(String::from),
        prop::sample::select(STRINGS).prop_map(quoted),
        any::<String>().prop_map(|s| quoted(&s)),
        // small shapes as lists
        vec(
            prop::sample::select(vec![0u64, 1, 2, 3, 1 << 31, 1 << 62]),
            0..4
        )
        .prop_map(|v| format!("{v:?}")),
    ]
    .boxed()
}

fn key() -> BoxedStrategy<String> {
    prop_oneof![
        4 => prop::sample::select(KEYS).prop_map(String::from),
        1 => "[a-z_]{1,8}",
    ]
    .boxed()
}

fn value() -> BoxedStrategy<String> {
    leaf()
        .prop_recursive(3, 32, 4, |inner| {
            prop_oneof![
                vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
                vec((key(), inner), 0..4).prop_map(|kv| {
                    let body: Vec<String> = kv.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                    format!("{{ {} }}", body.join(", "))
                }),
            ]
        })
        .boxed()
}

/// A layer table: a known type and options drawn from the layer keys.
fn layer() -> BoxedStrategy<String> {
    (
        prop::sample::select(STRINGS),
        vec((key(), value()), 0..3),
        prop::sample::select(vec![
            "1",
            "3",
            "[2, 3]",
            "0",
            "4611686018427387904",
            "[3, 6148914691236517226]",
            "1000000000000",
            "-1",
        ]),
    )
        .prop_map(|(t, kv, dim)| {
            let mut body = vec![format!("type = {}", quoted(t)), format!("dim = {dim}")];
            if t == "Recurrence" || t == "Fold" {
                body.push(format!("step = {{ type = \"LSTM\", dim = {dim} }}"));
            }
            body.extend(kv.iter().map(|(k, v)| format!("{k} = {v}")));
            format!("{{ {} }}", body.join(", "))
        })
        .boxed()
}

/// A document: the config's tables in some order, each with random entries.
fn document() -> BoxedStrategy<String> {
    let table = prop::sample::select(vec![
        "[[inputs]]",
        "[model]",
        "[criterion]",
        "[learner]",
        "[train]",
        "[readers.train]",
        "[callbacks.progress]",
        "[callbacks.checkpoint]",
        "[limits]",
        "[model.default_options]",
        "[nonsense]",
    ]);
    vec(
        (table, vec((key(), value()), 0..5), vec(layer(), 0..4)),
        0..8,
    )
    .prop_map(|tables| {
        let mut s = String::new();
        for (t, kv, layers) in tables {
            s.push_str(t);
            s.push('\n');
            for (k, v) in kv {
                s.push_str(&format!("{k} = {v}\n"));
            }
            if t == "[model]" {
                s.push_str(&format!("layers = [{}]\n", layers.join(", ")));
            }
        }
        s
    })
    .boxed()
}

/// A user error must be one printable line.
fn check_message(f: &Fail) {
    let m = f.to_string();
    assert!(!m.is_empty());
    assert!(!m.contains('\n'), "{m:?}");
    assert!(!m.chars().any(|c| c.is_control()), "{m:?}");
}

/// Everything the config drives before data is read: limits, layers built inside
/// the default options and applied to a small input, the inputs' own dimensions.
fn exercise(text: &str) {
    let c = match Config::parse(text, "p.toml") {
        Ok(c) => c,
        Err(e) => return check_message(&e),
    };
    if let Err(e) = c.limits.apply(rntk::limits::current()) {
        check_message(&e);
    }
    for i in &c.inputs {
        let _ = rntk::limits::check_sample_shape(&rntk::Shape::new(i.dim.dims()));
    }
    match crate::layers::build(&c.model.layers, &c.model.default_options) {
        Err(e) => check_message(&e),
        Ok(model) => {
            for x in [
                rntk::sequence::input_variable(3),
                rntk::input_variable([2, 3]),
            ] {
                if let Err(e) = model.apply(&x) {
                    check_message(&Fail::from(e));
                }
            }
        }
    }
}

const SEED: &str = include_str!("../../../examples/seed.toml");

/// A complete config around `layers`, an input dimension and a `[limits]` body.
fn complete(layers: &[String], dim: &str, limits: &str) -> String {
    format!(
        "[[inputs]]\nname = \"features\"\ndim = {dim}\nsequence = true\n\n\
         [[inputs]]\nname = \"target\"\ndim = 1\n\n\
         [model]\nlayers = [{}]\n\n\
         [criterion]\nloss = \"squared_error\"\nlabels = \"target\"\n\n\
         [learner]\ntype = \"sgd\"\nlr = 0.1\n\n\
         [train]\nminibatch_size = 10\nepoch_size = 10\noutput = \"m.model\"\n\n\
         [limits]\n{limits}\n",
        layers.join(", ")
    )
}

/// Sizes and options that reach the layers: the extremes among small ones.
fn sized_layer() -> BoxedStrategy<String> {
    let dim = prop::sample::select(vec![
        "1",
        "3",
        "[2, 3]",
        "0",
        "-1",
        "2147483648",
        "4611686018427387904",
        "[3, 6148914691236517226]",
        "[0, 4611686018427387904, 4611686018427387904]",
        "1000000000000",
        "[1, 1, 1073741825]",
    ]);
    let t = prop::sample::select(vec![
        "Dense",
        "Embedding",
        "Recurrence",
        "Fold",
        "Delay",
        "Dropout",
        "Stabilizer",
        "LayerNormalization",
        "BatchNormalization",
        "Identity",
        "sequence.last",
    ]);
    let step = prop::sample::select(vec!["LSTM", "GRU", "RNNStep"]);
    (t, step, dim.clone(), dim)
        .prop_map(|(t, step, d, cell)| match t {
            "Dense" => format!("{{ type = \"Dense\", dim = {d} }}"),
            "Embedding" => format!(
                "{{ type = \"Embedding\", dim = {} }}",
                d.trim_start_matches('[')
                    .split(',')
                    .next()
                    .unwrap_or("1")
                    .trim_end_matches(']')
            ),
            "Recurrence" | "Fold" => {
                format!(
            "{{ type = \"{t}\", step = {{ type = \"{step}\", dim = {} , cell_shape = {} }} }}",
            d.trim_start_matches('[').split(',').next().unwrap_or("1").trim_end_matches(']'),
            cell.trim_start_matches('[').split(',').next().unwrap_or("1").trim_end_matches(']'),
        )
            }
            "Delay" => format!(
                "{{ type = \"Delay\", t = {} }}",
                d.trim_start_matches('[')
                    .split(',')
                    .next()
                    .unwrap_or("1")
                    .trim_end_matches(']')
            ),
            "Dropout" => "{ type = \"Dropout\", rate = 0.5 }".to_string(),
            other => format!("{{ type = \"{other}\" }}"),
        })
        .boxed()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn random_documents_never_panic(doc in document()) {
        exercise(&doc);
    }

    /// The seed config with lines replaced by random entries, dropped or repeated.
    #[test]
    fn edits_of_the_seed_config_never_panic(
        edits in vec((0usize..60, 0u8..3, key(), value()), 1..6),
    ) {
        let mut lines: Vec<String> = SEED.lines().map(String::from).collect();
        for (at, kind, k, v) in edits {
            let i = at % lines.len();
            match kind {
                0 => {
                    // keep the key, change the value
                    if let Some((key, _)) = lines[i].split_once(" = ") {
                        lines[i] = format!("{key} = {v}");
                    } else {
                        lines[i] = format!("{k} = {v}");
                    }
                }
                1 => {
                    lines.remove(i);
                    if lines.is_empty() {
                        lines.push(String::new());
                    }
                }
                _ => {
                    let l = lines[i].clone();
                    lines.insert(i, l);
                }
            }
        }
        exercise(&lines.join("\n"));
    }

    /// Complete configs whose layers, input size and limits are drawn at random: the
    /// layers are built and applied (sizes over the limits are refused by name).
    #[test]
    fn complete_configs_with_random_sizes_never_panic(
        layers in vec(sized_layer(), 1..4),
        dim in prop::sample::select(vec!["1", "3", "0", "-2", "1073741825", "9223372036854775807"]),
        limits in vec((prop::sample::select(vec![
            "max_sample_elements", "max_one_hot_classes", "max_delay_offset", "max_line_bytes",
            "max_stream_bytes", "max_colours"]), leaf()), 0..2),
    ) {
        let l: Vec<String> = limits.iter().map(|(k, v)| format!("{k} = {v}")).collect();
        exercise(&complete(&layers, dim, &l.join("\n")));
    }

    /// Any bytes, as the CLI reads them (lossily as UTF-8 text, escapes and all).
    #[test]
    fn random_bytes_never_panic(bytes in vec(any::<u8>(), 0..400)) {
        exercise(&String::from_utf8_lossy(&bytes));
        let mut seeded = SEED.as_bytes().to_vec();
        let at = bytes.first().map_or(0, |&b| b as usize * seeded.len() / 256);
        seeded.splice(at..at, bytes.iter().copied());
        exercise(&String::from_utf8_lossy(&seeded));
    }
}

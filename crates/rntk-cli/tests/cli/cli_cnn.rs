//! `rntk train` on convolutional networks: tutorial 103D's config on digits from CTF
//! (then `rntk eval` and `rntk info` on the model), a residual network on PNG images
//! through the image reader, and bad convolution or transform settings refused with
//! one line naming the layer or transform and the key.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use crate::support;
use support::{assert_user_error, dir, p, rntk, text};

/// examples/mnist_cnn.toml with smaller sizes, its data in `d/digits`.
fn mnist_config(d: &Path) -> PathBuf {
    let o = rntk(&["gen-data", "digits", p(&d.join("digits"))]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let example = include_str!("../../../../examples/mnist_cnn.toml");
    let cfg = example
        .replace("epoch_size = 8000", "epoch_size = 2000")
        .replace("max_epochs = 3", "max_epochs = 2")
        .replace("freq = 50", "freq = 10");
    let path = d.join("mnist_cnn.toml");
    std::fs::write(&path, cfg).unwrap();
    path
}

#[test]
fn tutorial_103d_config_trains_a_cnn_then_eval_and_info_read_it() {
    let d = dir("cnn-mnist");
    let cfg = mnist_config(&d);
    let o = rntk(&["train", p(&cfg)]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}\n{}", text(&o.stderr));
    // 8·1·5·5 + 8, 16·8·5·5 + 16, 16·4·4·10 + 10 (CNTK's count for 103D)
    assert!(
        out.contains("Training 5994 parameters in 6 parameter tensors."),
        "{out}"
    );
    assert!(out.contains("Finished Epoch[2 of 2]"), "{out}");
    let eval_line = out
        .lines()
        .find(|l| l.starts_with("Finished Evaluation"))
        .expect("a test pass");
    // `metric = 12.34% * 2000;`: well below chance (90 %)
    let pct: f64 = eval_line
        .split("metric = ")
        .nth(1)
        .unwrap()
        .split('%')
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(pct < 30.0, "{eval_line}");
    let model = d.join("mnist_cnn.model");
    let o = rntk(&["info", p(&model)]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("(1, 28, 28)"),
        "{}",
        text(&o.stdout)
    );
    // the test file's 784-value rows feed the (1, 28, 28) input
    let test = d.join("digits/test.ctf");
    let o = rntk(&[
        "eval",
        p(&model),
        "--input",
        p(&test),
        "--map",
        "features=features",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let lines: Vec<String> = text(&o.stdout).lines().map(String::from).collect();
    assert_eq!(lines.len(), 2000);
    assert!(lines.iter().all(|l| l.split(' ').count() == 10));
}

/// `rntk gen-data shapes` once for every test: 5000 + 1000 PNG images, map files, mean.
fn shapes() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = dir("cnn-data-shapes");
        let o = rntk(&["gen-data", "shapes", p(&d)]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        assert_eq!(
            std::fs::read_to_string(d.join("test_map.txt"))
                .unwrap()
                .lines()
                .count(),
            1000
        );
        d
    })
}

/// The image config with its `shapes/` paths pointing at the generated images.
fn image_config(c: &str) -> String {
    c.replace("shapes/", &format!("{}/", p(shapes())))
}

const IMAGE_CONFIG: &str = r#"
[[inputs]]
name = "features"
dim = [3, 32, 32]

[[inputs]]
name = "labels"
dim = 10

[model]
default_options = { init = "he_normal", pad = true, bias = false }
layers = [
    { type = "element_times", value = 0.00390625 },
    { type = "Convolution2D", filter_shape = 3, num_filters = 8 },
    { type = "BatchNormalization", map_rank = 1 },
    { type = "Activation", activation = "relu" },
    { type = "ResNetBlock", layers = [
        { type = "Convolution2D", filter_shape = 3, num_filters = 8 },
        { type = "BatchNormalization", map_rank = 1 },
    ] },
    { type = "MaxPooling", filter_shape = 2, strides = 2 },
    { type = "Convolution", filter_shape = [3, 3], num_filters = 16, strides = 2, groups = 2 },
    { type = "GlobalAveragePooling" },
    { type = "Dense", dim = 10, bias = true },
]

[criterion]
loss = "cross_entropy_with_softmax"
metric = "classification_error"
labels = "labels"

[learner]
type = "momentum_sgd"
lr = 0.05
momentum = 0.9

[train]
minibatch_size = 32
epoch_size = 300
max_epochs = 1
output = "shapes.model"

[readers.train]
type = "image"
map_file = "shapes/train_map.txt"
transforms = [
    { type = "crop", crop_type = "randomside", side_ratio = [0.8, 0.9], jitter_type = "uniratio" },
    { type = "scale", width = 32, height = 32, channels = 3, interpolations = "linear" },
    { type = "color", brightness_radius = 0.2, contrast_radius = 0.2, saturation_radius = 0.2 },
    { type = "mean", file = "shapes/mean.xml" },
]

[readers.test]
type = "image"
file = "shapes/test_map.txt"
randomize = false
transforms = [
    { type = "scale", width = 32, height = 32, channels = 3 },
    { type = "mean", file = "shapes/mean.xml" },
]

[callbacks.progress]
freq = 5
tag = "Training"

[callbacks.test]
reader = "test"
minibatch_size = 16
"#;

#[test]
fn image_reader_config_trains_a_residual_cnn_on_png_files() {
    let d = dir("cnn-shapes");
    let cfg = d.join("shapes.toml");
    std::fs::write(&cfg, image_config(IMAGE_CONFIG)).unwrap();
    let o = rntk(&["train", p(&cfg)]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}\n{}", text(&o.stderr));
    assert!(out.contains("Finished Epoch[1 of 1]: [Training]"), "{out}");
    assert!(
        out.contains("Finished Evaluation [1]: Minibatch[1-63]: metric = "),
        "{out}"
    );
    assert!(out.contains("* 1000;"), "{out}");
    assert!(d.join("shapes.model").is_file());
}

/// The image config with one edit, trained: the error it gives.
fn image_config_error(name: &str, edit: impl Fn(&str) -> String) -> Output {
    let d = dir(&format!("cnn-{name}"));
    let cfg = d.join("bad.toml");
    std::fs::write(&cfg, image_config(&edit(IMAGE_CONFIG))).unwrap();
    rntk(&["train", p(&cfg)])
}

#[test]
fn bad_conv_and_transform_settings_name_the_layer_and_the_key() {
    let conv = r#"{ type = "Convolution2D", filter_shape = 3, num_filters = 8 },"#;
    for (edit, needles) in [
        (
            r#"{ type = "Convolution2D", filter_shape = [3, 3, 3], num_filters = 8 },"#,
            &["model.layers[1] (Convolution2D).filter_shape", "[3, 3, 3]"][..],
        ),
        (
            r#"{ type = "Convolution2D", filter_shape = 3, num_filters = 8, strides = [1, 2, 2] },"#,
            &[
                "model.layers[1] (Convolution2D).strides",
                "3 values for a filter of rank 2",
            ],
        ),
        (
            r#"{ type = "Convolution2D", filter_shape = 3, num_filters = 0 },"#,
            &["model.layers[1] (Convolution2D).num_filters"],
        ),
        (
            r#"{ type = "Convolution2D", filter_shape = 3, num_filters = 8, stride = 2 },"#,
            &["model.layers[1] (Convolution2D)", "unknown field `stride`"],
        ),
        (
            // the data decides: a 40×40 filter does not fit a 32×32 image without padding
            r#"{ type = "Convolution2D", filter_shape = 40, num_filters = 8, pad = false },"#,
            &["model.layers[1] (Convolution2D)", "32"],
        ),
        (
            r#"{ type = "Convolution2D", filter_shape = 3, num_filters = 8, groups = 3 },"#,
            &["model.layers[1] (Convolution2D).groups"],
        ),
    ] {
        let o = image_config_error("badconv", |c| c.replacen(conv, edit, 1));
        assert_user_error(&o, needles);
    }
    let pool = r#"{ type = "MaxPooling", filter_shape = 2, strides = 2 },"#;
    let o = image_config_error("badpool", |c| {
        c.replace(
            pool,
            r#"{ type = "MaxPooling", filter_shape = 2, strides = 0 },"#,
        )
    });
    assert_user_error(&o, &["model.layers[5] (MaxPooling).strides", "at least 1"]);
    let scale =
        r#"{ type = "scale", width = 32, height = 32, channels = 3, interpolations = "linear" },"#;
    for (edit, needles) in [
        (
            r#"{ type = "scale", width = 0, height = 32, channels = 3 },"#,
            &["readers.train.transforms[1] (scale)", "width 0"][..],
        ),
        (
            r#"{ type = "scale", width = 32, height = 32, channels = 3, interpolations = "bicubic" },"#,
            &[
                "readers.train.transforms[1] (scale).interpolations",
                "bicubic",
            ],
        ),
        (
            r#"{ type = "scale", width = 32, height = 32, channels = 2 },"#,
            &["readers.train.transforms[1] (scale)", "channels"],
        ),
        (
            r#"{ type = "blur", radius = 2 },"#,
            &[
                "readers.train.transforms[1]",
                "unknown transform type \"blur\"",
            ],
        ),
    ] {
        let o = image_config_error("badxform", |c| c.replacen(scale, edit, 1));
        assert_user_error(&o, needles);
    }
    let o = image_config_error("badcrop", |c| {
        c.replace("side_ratio = [0.8, 0.9]", "side_ratio = [0.9, 1.5]")
    });
    assert_user_error(&o, &["readers.train.transforms[0] (crop)", "side_ratio"]);
    let o = image_config_error("nomap", |c| {
        c.replace("shapes/train_map.txt", "shapes/nothing.txt")
    });
    assert_user_error(&o, &["readers.train.file", "nothing.txt"]);
    let o = image_config_error("nomean", |c| {
        c.replacen("shapes/mean.xml", "shapes/none.xml", 1)
    });
    assert_user_error(&o, &["readers.train.transforms[3] (mean).file", "none.xml"]);
    let o = image_config_error("ctfkey", |c| {
        c.replacen(
            "type = \"image\"\n",
            "chunk_bytes = 100\ntype = \"image\"\n",
            1,
        )
    });
    assert_user_error(&o, &["readers.train.chunk_bytes", "image reader"]);
}

//! The `rntk train` configuration: a TOML file mirroring CNTK's Python API (see
//! docs/cli-config.md). Parsing turns every mistake into a one-line message that
//! names the key and what was expected.

use crate::fail::{Fail, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Model inputs, in order.
    pub inputs: Vec<InputSpec>,
    pub model: ModelSpec,
    pub criterion: CriterionSpec,
    pub learner: LearnerSpec,
    pub train: TrainSpec,
    /// Named readers (`train`, `test`, …).
    #[serde(default)]
    pub readers: BTreeMap<String, ReaderSpec>,
    #[serde(default)]
    pub callbacks: CallbacksSpec,
    /// Data-parallel training across the workers of `mpirun -np N rntk train`.
    pub distributed: Option<DistributedSpec>,
    /// Raised (or lowered) limits on sizes (docs/limits.md).
    #[serde(default)]
    pub limits: LimitsSpec,
    /// The config's folder (relative paths are resolved against it).
    #[serde(skip)]
    pub base: PathBuf,
}

/// `[distributed]`: CNTK's distributed learners (docs/distributed.md).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistributedSpec {
    /// `"data_parallel"` (default) or `"block_momentum"`.
    #[serde(default = "data_parallel")]
    pub learner: String,
    /// Samples trained on every worker alike before the data is split.
    #[serde(default)]
    pub distributed_after: u64,
    /// data_parallel: 32 (default) or 1 (1-bit SGD with error feedback).
    pub num_quantization_bits: Option<u32>,
    /// data_parallel, 32-bit: bytes per bucket of gradients exchanged while the
    /// backward pass goes on (0: one exchange after it).
    pub bucket_bytes: Option<usize>,
    /// block_momentum: samples of all workers per block.
    pub block_size: Option<u64>,
    pub block_momentum_as_time_constant: Option<f64>,
    pub use_nesterov_momentum: Option<bool>,
    pub reset_sgd_momentum_after_aggregation: Option<bool>,
    pub block_learning_rate: Option<f64>,
}

fn data_parallel() -> String {
    "data_parallel".into()
}

/// `[limits]`: each key overrides the limit of the same name (and the `RNTK_MAX_*`
/// environment variable) for this run.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    pub max_sample_elements: Option<usize>,
    pub max_one_hot_classes: Option<usize>,
    pub max_delay_offset: Option<usize>,
    pub max_line_bytes: Option<usize>,
    pub max_stream_bytes: Option<usize>,
}

impl LimitsSpec {
    /// `base` with the config's values applied; a value out of range names its key.
    pub fn apply(&self, base: rntk::limits::Limits) -> Result<rntk::limits::Limits> {
        let mut l = base;
        for (key, v) in [
            ("max_sample_elements", self.max_sample_elements),
            ("max_one_hot_classes", self.max_one_hot_classes),
            ("max_delay_offset", self.max_delay_offset),
            ("max_line_bytes", self.max_line_bytes),
            ("max_stream_bytes", self.max_stream_bytes),
        ] {
            if let Some(v) = v {
                l = l.with(key, v)?;
            }
        }
        Ok(l)
    }
}

/// The largest config file read (bytes): a config is text written by hand, so there
/// is no reason to read further. `RNTK_MAX_CONFIG_BYTES` changes it.
pub const DEFAULT_MAX_CONFIG_BYTES: usize = 16 << 20;

/// The config size limit in force (`RNTK_MAX_CONFIG_BYTES`, else the default).
pub fn max_config_bytes() -> Result<usize> {
    match std::env::var("RNTK_MAX_CONFIG_BYTES") {
        Err(_) => Ok(DEFAULT_MAX_CONFIG_BYTES),
        Ok(v) => v
            .trim()
            .replace('_', "")
            .parse::<usize>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| {
                Fail::new(format!(
                    "RNTK_MAX_CONFIG_BYTES: {v:?}: expected a whole number of bytes, at least 1"
                ))
            }),
    }
}

/// The text of the config at `path`: at most [`max_config_bytes`], UTF-8; a directory,
/// an endless stream or binary bytes are one-line errors that do not echo them.
pub fn read_text(path: &Path) -> Result<String> {
    let shown = path.display();
    let limit = max_config_bytes()?;
    let (file, _) = rntk::files::open_input(path, "a TOML config")
        .map_err(|e| Fail::new(format!("cannot read the config {e}")))?;
    let bytes = rntk::files::read_stream(
        std::io::Read::take(file, limit as u64 + 1),
        path,
        usize::MAX,
        "",
    )?;
    if bytes.len() > limit {
        return Err(Fail::new(format!(
            "{shown}: cannot read the config: longer than {limit} bytes, more than any config \
             needs (RNTK_MAX_CONFIG_BYTES=N raises the limit; docs/limits.md)"
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let b = e.as_bytes();
        let line = b[..at].iter().filter(|&&c| c == b'\n').count() + 1;
        Fail::new(format!(
            "{shown}:{line}: cannot read the config: byte 0x{:02x} at offset {at} is not UTF-8 \
             text (a config is a TOML text file)",
            b[at]
        ))
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    pub name: String,
    /// A dimension, or a shape (`[1, 28, 28]`: an image in (C, H, W) order).
    pub dim: Dims,
    /// Has a sequence axis (CNTK's `sequence.input_variable`).
    #[serde(default)]
    pub sequence: bool,
    #[serde(default)]
    pub sparse: bool,
}

/// `10` or `[3, 32, 32]`.
#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(untagged)]
pub enum Dims {
    One(usize),
    Shape(Vec<usize>),
}

impl Dims {
    pub fn dims(&self) -> Vec<usize> {
        match self {
            Dims::One(n) => vec![*n],
            Dims::Shape(v) => v.clone(),
        }
    }
    /// Elements of one sample (0 for an empty shape).
    pub fn numel(&self) -> usize {
        let d = self.dims();
        if d.is_empty() {
            return 0;
        }
        d.iter()
            .try_fold(1usize, |a, &b| a.checked_mul(b))
            .unwrap_or(usize::MAX)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// The input the layer stack is applied to (default: the first input that is not
    /// the criterion's labels).
    pub input: Option<String>,
    #[serde(default)]
    pub default_options: DefaultOptionsSpec,
    /// The layers of a `Sequential`; each a table with `type = "..."` (parsed in
    /// `layers.rs`, which names the layer in errors).
    pub layers: Vec<toml::Value>,
}

#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct DefaultOptionsSpec {
    pub init: Option<toml::Value>,
    pub activation: Option<String>,
    pub initial_state: Option<f64>,
    pub bias: Option<bool>,
    pub init_bias: Option<f64>,
    pub enable_self_stabilization: Option<bool>,
    pub use_peepholes: Option<bool>,
    pub go_backwards: Option<bool>,
    pub map_rank: Option<usize>,
    pub normalization_time_constant: Option<f64>,
    pub epsilon: Option<f64>,
    /// Automatic padding of convolution and pooling layers.
    pub pad: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CriterionSpec {
    pub loss: String,
    /// Defaults to the loss.
    pub metric: Option<String>,
    /// The input holding the targets.
    pub labels: String,
    /// The static axis of cross_entropy_with_softmax / classification_error.
    #[serde(default = "minus_one")]
    pub axis: isize,
    /// classification_error's top_n.
    #[serde(default = "one")]
    pub top_n: usize,
}

fn minus_one() -> isize {
    -1
}
fn one() -> usize {
    1
}

/// A schedule value: `0.01`, `[0.01, 0.005]` (one value per epoch) or
/// `[[2, 0.01], [1, 0.005]]` (value for `count` epochs).
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum ScheduleSpec {
    Constant(f64),
    List(Vec<f64>),
    Counts(Vec<(u64, f64)>),
}

/// The unit a learning rate or momentum refers to.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Per {
    #[default]
    Minibatch,
    Sample,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LearnerSpec {
    #[serde(rename = "type")]
    pub kind: String,
    pub lr: ScheduleSpec,
    /// `"minibatch"` (default) or `"sample"`.
    #[serde(default)]
    pub lr_per: Per,
    pub momentum: Option<ScheduleSpec>,
    #[serde(default)]
    pub momentum_per: Per,
    /// Samples per schedule step (default: one data sweep).
    pub epoch_size: Option<u64>,
    pub unit_gain: Option<bool>,
    pub variance_momentum: Option<f64>,
    pub epsilon: Option<f64>,
    pub rho: Option<f64>,
    pub need_ave_multiplier: Option<bool>,
    pub gamma: Option<f64>,
    pub inc: Option<f64>,
    pub dec: Option<f64>,
    pub max: Option<f64>,
    pub min: Option<f64>,
    pub adamax: Option<bool>,
    #[serde(default)]
    pub l1_regularization_weight: f64,
    #[serde(default)]
    pub l2_regularization_weight: f64,
    pub gradient_clipping_threshold_per_sample: Option<f64>,
    pub gradient_clipping_with_truncation: Option<bool>,
}

/// A minibatch size: `140` or `[[1, 64], [2, 128]]` (size for `count` epochs).
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum MinibatchSizeSpec {
    Constant(usize),
    Counts(Vec<(u64, usize)>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSpec {
    /// The reader to train on (default "train").
    #[serde(default = "train_reader")]
    pub reader: String,
    pub minibatch_size: MinibatchSizeSpec,
    pub epoch_size: Option<u64>,
    pub max_epochs: Option<u64>,
    pub max_samples: Option<u64>,
    /// Where the trained model is saved.
    pub output: PathBuf,
    /// Input name → stream name (default: the stream named like the input).
    #[serde(default)]
    pub inputs_to_streams: BTreeMap<String, String>,
    /// `"f32"` (default) or `"f64"`.
    pub dtype: Option<String>,
}

fn train_reader() -> String {
    "train".into()
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ReaderSpec {
    /// `"ctf"` (default) or `"image"` (CNTK's ImageDeserializer).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The CTF file, or an image reader's map file.
    #[serde(alias = "map_file")]
    pub file: PathBuf,
    /// Default: one stream per input, named, dimensioned and sparse like it.
    pub streams: Option<Vec<StreamSpec>>,
    #[serde(default = "yes")]
    pub randomize: bool,
    pub max_sweeps: Option<u64>,
    pub max_samples: Option<u64>,
    pub randomization_seed: Option<u64>,
    pub randomization_window_in_chunks: Option<usize>,
    /// Bytes of the CTF file per chunk (default 32 MiB): the unit of randomization
    /// and of the data split between distributed workers.
    pub chunk_bytes: Option<usize>,
    #[serde(default)]
    pub frame_mode: bool,
    #[serde(default)]
    pub truncation_length: usize,
    /// Image readers: the transforms (`crop`, `scale`, `mean`, `color`), in order.
    pub transforms: Option<Vec<toml::Value>>,
    /// Image readers: classes of the label stream (default: the labels input's dim).
    pub num_classes: Option<usize>,
    /// Image readers: the names of the two streams (`features`, `labels`).
    pub image_stream: Option<String>,
    pub label_stream: Option<String>,
    /// Image readers: map lines per chunk (16).
    pub images_per_chunk: Option<usize>,
    /// Image readers: skip (and count) images that cannot be read instead of stopping.
    pub skip_bad_images: Option<bool>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct StreamSpec {
    pub name: String,
    /// The CTF field (default: the name).
    pub field: Option<String>,
    pub dim: usize,
    #[serde(default)]
    pub sparse: bool,
    #[serde(default)]
    pub defines_mb_size: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallbacksSpec {
    /// ProgressPrinter (default: `freq = 0`, on stdout).
    pub progress: Option<ProgressSpec>,
    pub test: Option<EvalSpec>,
    pub cross_validation: Option<CrossValidationSpec>,
    pub checkpoint: Option<CheckpointSpec>,
    pub tensorboard: Option<TensorBoardSpec>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgressSpec {
    /// 0 = geometric (1, 3, 7, 15, …), N = every N minibatches; absent = summaries only.
    pub freq: Option<u64>,
    #[serde(default)]
    pub first: u64,
    pub tag: Option<String>,
    pub num_epochs: Option<u64>,
    pub test_freq: Option<u64>,
    pub log_file: Option<PathBuf>,
    /// Print the metric as a percentage (default) or a fraction.
    pub metric_is_pct: Option<bool>,
    /// Show an indicatif bar per epoch on a terminal (default true).
    pub bar: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalSpec {
    pub reader: String,
    #[serde(default = "thirty_two")]
    pub minibatch_size: usize,
}

fn thirty_two() -> usize {
    32
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrossValidationSpec {
    pub reader: String,
    #[serde(default = "thirty_two")]
    pub minibatch_size: usize,
    pub frequency: Option<u64>,
    pub max_samples: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointSpec {
    pub file: PathBuf,
    pub frequency: Option<u64>,
    #[serde(default = "yes")]
    pub restore: bool,
    #[serde(default)]
    pub preserve_all: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorBoardSpec {
    pub log_dir: PathBuf,
    pub freq: Option<u64>,
}

impl Config {
    /// Read and parse `path`; relative paths inside are resolved against its folder.
    pub fn load(path: &Path) -> Result<Config> {
        let text = read_text(path)?;
        let mut c = Self::parse(&text, &path.display().to_string())?;
        let base = path.parent().unwrap_or(Path::new(""));
        c.base = base.to_path_buf();
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut c.train.output);
        for r in c.readers.values_mut() {
            fix(&mut r.file);
        }
        if let Some(p) = c.callbacks.progress.as_mut() {
            if let Some(f) = p.log_file.as_mut() {
                fix(f);
            }
        }
        if let Some(ck) = c.callbacks.checkpoint.as_mut() {
            fix(&mut ck.file);
        }
        if let Some(tb) = c.callbacks.tensorboard.as_mut() {
            fix(&mut tb.log_dir);
        }
        Ok(c)
    }

    pub fn parse(text: &str, name: &str) -> Result<Config> {
        toml::from_str(text).map_err(|e| toml_error(name, text, &e))
    }
}

/// `FILE:LINE: message (at `the line`)` — one line, naming the key.
pub fn toml_error(name: &str, text: &str, e: &toml::de::Error) -> Fail {
    let msg = e.message().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let start = span.start.min(text.len());
            let line_no = text[..start].matches('\n').count() + 1;
            let line = text.lines().nth(line_no - 1).unwrap_or("").trim();
            let shown: String = line.chars().take(80).collect();
            Fail::new(format!("{name}:{line_no}: {msg} (at `{shown}`)"))
        }
        None => Fail::new(format!("{name}: {msg}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, name: &str) {
        let c = Config::parse(text, name).unwrap_or_else(|e| panic!("{e}"));
        crate::layers::build(&c.model.layers, &c.model.default_options)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }

    #[test]
    fn the_example_and_the_documented_configs_parse() {
        check(include_str!("../../../examples/seed.toml"), "seed.toml");
        let doc = include_str!("../../../docs/cli-config.md");
        let blocks: Vec<&str> = doc
            .split("```toml\n")
            .skip(1)
            .map(|b| b.split("```").next().unwrap())
            .collect();
        assert_eq!(blocks.len(), 4);
        for b in blocks {
            check(b, "docs/cli-config.md");
        }
        // the doc's copies of the examples, minus their header comments
        let seed = include_str!("../../../examples/seed.toml");
        let body = &seed[seed.find("# features").unwrap()..];
        assert!(doc.contains(body.trim_end()));
        let cnn = include_str!("../../../examples/mnist_cnn.toml");
        check(cnn, "mnist_cnn.toml");
        let body = &cnn[cnn.find("# x = C.input_variable").unwrap()..];
        assert!(doc.contains(body.trim_end()));
    }
}

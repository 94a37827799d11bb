//! CNTK 201B — a ResNet on 32×32 colour images, in rntk: tutorial 201B's ResNet-20
//! (`create_resnet_model`: a 3×3 convolution + BN, three stages of basic residual blocks
//! with 16, 32 and 64 filters, average pooling, Dense) trained on PNG images read by
//! CNTK's `ImageDeserializer` from a map file, with 201B's transforms. The tutorial:
//!
//! ```python
//! def create_reader(map_file, mean_file, train):
//!     transforms = []
//!     if train:
//!         transforms += [xforms.crop(crop_type='randomside', side_ratio=0.8)]
//!     transforms += [xforms.scale(width=32, height=32, channels=3, interpolations='linear'),
//!                    xforms.mean(mean_file)]
//!     return C.io.MinibatchSource(C.io.ImageDeserializer(map_file, C.io.StreamDefs(
//!         features=C.io.StreamDef(field='image', transforms=transforms),
//!         labels=C.io.StreamDef(field='label', shape=10))))
//! def convolution_bn(input, filter_size, num_filters, strides=(1,1), init=C.he_normal(), activation=C.relu):
//!     r = C.layers.Convolution(filter_size, num_filters, strides=strides, init=init,
//!                              activation=None, pad=True, bias=False)(input)
//!     r = C.layers.BatchNormalization(map_rank=1)(r)
//!     return r if activation is None else activation(r)
//! def resnet_basic(input, num_filters):
//!     c1 = convolution_bn(input, (3,3), num_filters)
//!     c2 = convolution_bn(c1, (3,3), num_filters, activation=None)
//!     return C.relu(c2 + input)
//! def resnet_basic_inc(input, num_filters):
//!     c1 = convolution_bn(input, (3,3), num_filters, strides=(2,2))
//!     c2 = convolution_bn(c1, (3,3), num_filters, activation=None)
//!     s = convolution_bn(input, (1,1), num_filters, strides=(2,2), activation=None)
//!     return C.relu(c2 + s)
//! def create_resnet_model(input, out_dims):
//!     conv = convolution_bn(input, (3,3), 16)
//!     r1_1 = resnet_basic_stack(conv, 16, 3)
//!     r2_1 = resnet_basic_inc(r1_1, 32); r2_2 = resnet_basic_stack(r2_1, 32, 2)
//!     r3_1 = resnet_basic_inc(r2_2, 64); r3_2 = resnet_basic_stack(r3_1, 64, 2)
//!     pool = C.layers.AveragePooling(filter_shape=(8,8), strides=(1,1))(r3_2)
//!     return C.layers.Dense(out_dims, init=C.he_normal(), activation=None)(pool)
//! z = create_resnet_model(C.element_times(1.0 / 256.0, input_var), out_dims=10)
//! lr_per_minibatch = C.learning_parameter_schedule([0.01]*10 + [0.003]*10 + [0.001], epoch_size=epoch_size)  # here ×10
//! learner = C.momentum_sgd(z.parameters, lr=lr_per_minibatch,
//!     momentum=C.momentum_schedule(0.9, minibatch_size=64), l2_regularization_weight=0.001)
//! # minibatch_size = 64; ProgressPrinter(tag='Training', num_epochs=max_epochs); test minibatches of 16
//! ```
//!
//! The images: CIFAR-10 is a download, so the example draws its own ten-class 32×32
//! colour images (`rntk::datasets::images::color_shapes`: ten figures in random colours,
//! sizes and places) as PNG files with CNTK map files and 201A's mean file, in
//! `examples/data/shapes/` (made once, when missing). `--size 16` scales them to 16×16
//! through the `scale` transform (the mean file is written for that size).
//!
//!     cargo run --release --example cifar_resnet [-- --epochs N] [--images N] [--stack N] [--size S]

#[path = "common/mod.rs"]
mod common;

use rntk::functions::{element_times, plus, relu};
use rntk::graph::{scalar, Function};
use rntk::initializer::Initializer;
use rntk::io::image::{Crop, CropType, MeanImage, Scale};
use rntk::io::{
    Deserializer, ImageDeserializer, ImageOptions, ImageTransform, MinibatchSource,
    MinibatchSourceConfig,
};
use rntk::layers::{Activation, BatchNormalization, Convolution, Dense, Layer, Pooling};
use rntk::learners::{momentum_sgd, LearnerOptions, Schedule};
use rntk::train::{train, Callbacks, Criterion, ProgressPrinter, TestConfig, TrainOptions};
use rntk::{input_variable, losses, metrics, DType, Error, Result, Variable};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const NUM_CLASSES: usize = 10;
/// The generated images' side.
const SOURCE_SIDE: usize = 32;

pub struct Config {
    /// Where the PNG files, map files and mean file are (made when missing); `None`:
    /// `examples/data/shapes/`.
    pub data_dir: Option<PathBuf>,
    pub train_images: usize,
    pub test_images: usize,
    /// Side of the images the network sees (the `scale` transform's width and height).
    pub image_size: usize,
    /// Residual blocks per stage (3: ResNet-20).
    pub stack: usize,
    /// Filters of the first stage (16; the others have 2× and 4×).
    pub base_filters: usize,
    pub max_epochs: u64,
    pub minibatch_size: usize,
    /// Learning rate per minibatch: one value per epoch, the last one for the rest.
    pub learning_rates: Vec<f64>,
    pub l2_regularization_weight: f64,
    pub test_minibatch_size: usize,
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        // 201B's schedule ×10: 201B's 0.01 learns these smaller image sets too slowly
        let mut lrs = vec![0.1; 10];
        lrs.extend([0.03; 10]);
        lrs.push(0.01);
        Config {
            data_dir: None,
            train_images: 10_000,
            test_images: 2_000,
            image_size: 32,
            stack: 3,
            base_filters: 16,
            max_epochs: 5,
            minibatch_size: 64,
            learning_rates: lrs,
            l2_regularization_weight: 0.001,
            test_minibatch_size: 16,
            seed: 1,
        }
    }
}

#[derive(Debug)]
pub struct Outcome {
    pub test_error: f64,
    /// Ten equally common classes.
    pub chance_error: f64,
    pub parameters: usize,
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Io {
        file: path.display().to_string(),
        detail: e.to_string(),
    }
}

/// Lines of a map file, 0 when it is missing.
fn map_lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|t| t.lines().filter(|l| !l.trim().is_empty()).count())
        .unwrap_or(0)
}

/// 201A's mean file of the training images at `size`×`size` (nearest pixel of the
/// 32×32 mean), channels interleaved in BGR order as OpenCV stores them.
fn mean_image(px: &[u8], n: usize, size: usize) -> MeanImage {
    let side = SOURCE_SIDE;
    let mut sum = vec![0f64; side * side * 3];
    for img in px.chunks_exact(side * side * 3).take(n) {
        for (s, &v) in sum.iter_mut().zip(img) {
            *s += v as f64;
        }
    }
    let mut data = Vec::with_capacity(size * size * 3);
    for r in 0..size {
        for c in 0..size {
            let (sr, sc) = (
                (2 * r + 1) * side / (2 * size),
                (2 * c + 1) * side / (2 * size),
            );
            let at = (sr * side + sc) * 3;
            // RGB → BGR
            data.extend((0..3).rev().map(|k| (sum[at + k] / n.max(1) as f64) as f32));
        }
    }
    MeanImage {
        channels: 3,
        rows: size,
        cols: size,
        data,
    }
}

/// The map files and mean file in `dir`, written when missing or of other sizes.
fn ensure_data(dir: &Path, cfg: &Config) -> Result<(PathBuf, PathBuf, PathBuf)> {
    let train_map = dir.join("train_map.txt");
    let test_map = dir.join("test_map.txt");
    let mean = dir.join(format!("mean_{}.xml", cfg.image_size));
    if map_lines(&train_map) != cfg.train_images || map_lines(&test_map) != cfg.test_images {
        println!(
            "Writing {} + {} images to {}",
            cfg.train_images,
            cfg.test_images,
            dir.display()
        );
        let _ = std::fs::remove_file(&mean);
        rntk::datasets::images::write_color_shapes(dir, "train", cfg.train_images, cfg.seed)?;
        rntk::datasets::images::write_color_shapes(dir, "test", cfg.test_images, cfg.seed + 1)?;
    }
    if !mean.is_file() {
        let (px, _) = rntk::datasets::images::color_shapes(cfg.train_images, cfg.seed);
        let xml = mean_image(&px, cfg.train_images, cfg.image_size).to_xml();
        std::fs::write(&mean, xml).map_err(|e| io_err(&mean, e))?;
    }
    Ok((train_map, test_map, mean))
}

/// 201B's `create_reader`.
fn create_reader(map: &Path, mean: &Path, train: bool, cfg: &Config) -> Result<MinibatchSource> {
    let mut transforms = Vec::new();
    if train {
        transforms.push(ImageTransform::Crop(Crop {
            crop_type: CropType::RandomSide,
            side_ratio: (0.8, 0.8),
            ..Default::default()
        }));
    }
    let size = cfg.image_size;
    transforms.push(ImageTransform::Scale(Scale::new(size, size, 3)));
    transforms.push(ImageTransform::Mean(Arc::new(MeanImage::load(mean)?)));
    let opts = ImageOptions {
        transforms,
        seed: cfg.seed,
        ..Default::default()
    };
    let images = ImageDeserializer::new(map, "features", "labels", NUM_CLASSES, opts)?;
    let d: Arc<dyn Deserializer> = Arc::new(images);
    MinibatchSource::new(
        vec![d],
        MinibatchSourceConfig {
            randomize: train,
            max_sweeps: if train { u64::MAX } else { 1 },
            randomization_seed: cfg.seed,
            ..Default::default()
        },
    )
}

/// 201B's `convolution_bn`.
fn convolution_bn(
    x: &Variable,
    k: usize,
    filters: usize,
    stride: usize,
    activate: bool,
) -> Result<Variable> {
    let c = Convolution::new(&[k, k])
        .num_filters(filters)
        .strides(&[stride, stride])
        .init(Initializer::HeNormal {
            scale: 1.0,
            output_rank: 1,
            seed: None,
        })
        .activation(Activation::Identity)
        .pad(true)
        .bias(false)
        .apply(x)?;
    let r = BatchNormalization::new().map_rank(Some(1)).apply(&c)?;
    if activate {
        relu(&r)
    } else {
        Ok(r)
    }
}

fn resnet_basic(x: &Variable, filters: usize) -> Result<Variable> {
    let c1 = convolution_bn(x, 3, filters, 1, true)?;
    let c2 = convolution_bn(&c1, 3, filters, 1, false)?;
    relu(&plus(&c2, x)?)
}

fn resnet_basic_inc(x: &Variable, filters: usize) -> Result<Variable> {
    let c1 = convolution_bn(x, 3, filters, 2, true)?;
    let c2 = convolution_bn(&c1, 3, filters, 1, false)?;
    let s = convolution_bn(x, 1, filters, 2, false)?;
    relu(&plus(&c2, &s)?)
}

fn resnet_basic_stack(x: &Variable, filters: usize, n: usize) -> Result<Variable> {
    let mut l = x.clone();
    for _ in 0..n {
        l = resnet_basic(&l, filters)?;
    }
    Ok(l)
}

/// 201B's `create_resnet_model` with `stack` blocks per stage (3: ResNet-20).
pub fn create_resnet_model(x: &Variable, cfg: &Config) -> Result<Variable> {
    let f = cfg.base_filters;
    let n = cfg.stack.max(1);
    let conv = convolution_bn(x, 3, f, 1, true)?;
    let r1 = resnet_basic_stack(&conv, f, n)?;
    let r2 = resnet_basic_stack(&resnet_basic_inc(&r1, 2 * f)?, 2 * f, n - 1)?;
    let r3 = resnet_basic_stack(&resnet_basic_inc(&r2, 4 * f)?, 4 * f, n - 1)?;
    // the last stage's whole map (8×8 for 32×32 images)
    let side = r3.shape().dims()[1];
    let pool = Pooling::average(&[side, side])
        .strides(&[1, 1])
        .apply(&r3)?;
    let he = Initializer::HeNormal {
        scale: 1.0,
        output_rank: 1,
        seed: None,
    };
    Dense::new(NUM_CLASSES)
        .init(he)
        .activation(Activation::Identity)
        .apply(&pool)
}

pub fn run(cfg: &Config) -> Result<Outcome> {
    rntk::initializer::set_fixed_random_seed(cfg.seed);
    if cfg.image_size < 8 || cfg.image_size > SOURCE_SIDE || !cfg.image_size.is_multiple_of(4) {
        return Err(Error::Argument(format!(
            "image size {} must be a multiple of 4 from 8 to {SOURCE_SIDE}",
            cfg.image_size
        )));
    }
    let dir = cfg.data_dir.clone().unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/data/shapes")
    });
    let (train_map, test_map, mean) = ensure_data(&dir, cfg)?;

    let size = cfg.image_size;
    let input_var = input_variable([3, size, size]);
    let label_var = input_variable(NUM_CLASSES);
    let norm = element_times(&scalar(1.0 / 256.0, DType::F32), &input_var)?;
    let z = create_resnet_model(&norm, cfg)?;
    let params = Function::combine(std::slice::from_ref(&z), "z")?.parameters();
    println!("{}", common::parameter_line(&params));
    let ce = losses::cross_entropy_with_softmax(&z, &label_var, -1)?;
    let pe = metrics::classification_error(&z, &label_var, -1, 1)?;
    let epoch_size = cfg.train_images as u64;
    let lr = Schedule::piecewise(&cfg.learning_rates, Some(epoch_size))?;
    let momentum = Schedule::constant(0.9).with_minibatch_size(cfg.minibatch_size);
    let options = LearnerOptions {
        l2_regularization_weight: cfg.l2_regularization_weight,
        ..Default::default()
    };
    let learner = momentum_sgd(&params, lr, momentum, true, options)?;

    let mut reader_train = create_reader(&train_map, &mean, true, cfg)?;
    let reader_test = create_reader(&test_map, &mean, false, cfg)?;
    let mut test = TestConfig::new(Box::new(reader_test));
    test.minibatch_size = cfg.test_minibatch_size;
    let printer = ProgressPrinter::new(None)
        .tag("Training")
        .num_epochs(cfg.max_epochs);
    let history = train::<f32>(
        &Criterion::new(ce, Some(pe)),
        &mut reader_train,
        &[(input_var, "features".into()), (label_var, "labels".into())],
        vec![Box::new(learner)],
        TrainOptions::new(cfg.minibatch_size)
            .epoch_size(epoch_size)
            .max_epochs(cfg.max_epochs),
        Callbacks {
            progress_writers: vec![Box::new(printer)],
            test: Some(test),
            ..Default::default()
        },
    )?;
    let (test_error, _) = history.test_summary.expect("a TestConfig was given");
    Ok(Outcome {
        test_error,
        chance_error: 1.0 - 1.0 / NUM_CLASSES as f64,
        parameters: params.iter().map(|p| p.shape().numel()).sum(),
    })
}

fn main() -> Result<()> {
    let mut cfg = Config::default();
    if let Some(n) = common::arg::<u64>("epochs") {
        cfg.max_epochs = n.max(1);
    }
    if let Some(n) = common::arg::<usize>("images") {
        cfg.train_images = n.max(10);
        cfg.test_images = (n / 5).max(10);
    }
    if let Some(n) = common::arg::<usize>("stack") {
        cfg.stack = n.max(1);
    }
    if let Some(s) = common::arg::<usize>("size") {
        cfg.image_size = s;
    }
    if let Some(d) = common::arg::<PathBuf>("data") {
        cfg.data_dir = Some(d);
    }
    let out = run(&cfg)?;
    println!(
        "Test error {:.2}% (chance: {:.2}%), ResNet-{} with {} parameters",
        100.0 * out.test_error,
        100.0 * out.chance_error,
        6 * cfg.stack + 2,
        out.parameters
    );
    Ok(())
}

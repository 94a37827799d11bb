//! `[readers.NAME]` with `type = "image"`: CNTK's `ImageDeserializer` over a map file,
//! with the `transforms` list (`crop`, `scale`, `mean`, `color`) as
//! `cntk.io.transforms` takes them. Every mistake names `readers.NAME.transforms[i]`.

use crate::config::ReaderSpec;
use crate::fail::{Context, Fail, Result};
use rntk::io::image::{Color, Crop, CropType, Interpolation, MeanImage, Scale, ScaleMode};
use rntk::io::{ErrorPolicy, ImageDeserializer, ImageOptions, ImageTransform};
use rntk::DType;
use serde::Deserialize;
use std::path::Path;
use std::sync::Arc;

/// A ratio: a number (min = max) or `[min, max]`.
#[derive(Deserialize, Clone, Copy)]
#[serde(untagged)]
enum Ratio {
    One(f64),
    Range(f64, f64),
}

impl Ratio {
    fn pair(r: Option<Ratio>, default: f64) -> (f64, f64) {
        match r {
            None => (default, default),
            Some(Ratio::One(v)) => (v, v),
            Some(Ratio::Range(a, b)) => (a, b),
        }
    }
}

/// `crop_size`: pixels (square) or `[width, height]`.
#[derive(Deserialize, Clone, Copy)]
#[serde(untagged)]
enum Size {
    One(usize),
    Two(usize, usize),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CropSpec {
    crop_type: Option<String>,
    crop_size: Option<Size>,
    side_ratio: Option<Ratio>,
    area_ratio: Option<Ratio>,
    aspect_ratio: Option<Ratio>,
    jitter_type: Option<String>,
    /// Horizontal flip at random (default: random crops flip, center crops do not).
    flip: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScaleSpec {
    width: usize,
    height: usize,
    channels: usize,
    interpolations: Option<String>,
    scale_mode: Option<String>,
    pad_value: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MeanSpec {
    file: std::path::PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ColorSpec {
    #[serde(default)]
    brightness_radius: f64,
    #[serde(default)]
    contrast_radius: f64,
    #[serde(default)]
    saturation_radius: f64,
}

fn decode<T: serde::de::DeserializeOwned>(v: toml::Value, key: &str) -> Result<T> {
    v.try_into::<T>()
        .map_err(|e| Fail::new(format!("{key}: {}", e.message().replace('\n', " "))))
}

fn crop(s: CropSpec, key: &str) -> Result<Crop> {
    let crop_type = match s.crop_type.as_deref().unwrap_or("center") {
        "center" => CropType::Center,
        "randomside" | "random" => CropType::RandomSide,
        "randomarea" => CropType::RandomArea,
        "multiview10" => CropType::MultiView10,
        other => {
            return Err(Fail::new(format!(
            "{key}.crop_type: \"{other}\" (expected center, randomside, randomarea or multiview10)"
        )))
        }
    };
    let jitter = match s.jitter_type.as_deref().unwrap_or("none") {
        "none" => false,
        "uniratio" => true,
        other => {
            return Err(Fail::new(format!(
                "{key}.jitter_type: \"{other}\" (expected none or uniratio)"
            )))
        }
    };
    Ok(Crop {
        crop_type,
        crop_size: match s.crop_size {
            None => (0, 0),
            Some(Size::One(n)) => (n, n),
            Some(Size::Two(w, h)) => (w, h),
        },
        side_ratio: Ratio::pair(s.side_ratio, 0.0),
        area_ratio: Ratio::pair(s.area_ratio, 0.0),
        aspect_ratio: Ratio::pair(s.aspect_ratio, 1.0),
        jitter,
        hflip: s.flip,
    })
}

fn scale(s: ScaleSpec, key: &str) -> Result<Scale> {
    let mut out = Scale::new(s.width, s.height, s.channels);
    if let Some(i) = &s.interpolations {
        // CNTK picks one of a list ("linear:cubic") at random; rntk takes the first
        let first = i.split(':').next().unwrap_or("");
        out.interpolation = Interpolation::parse(first).ok_or_else(|| {
            Fail::new(format!(
                "{key}.interpolations: \"{i}\" (expected nearest, linear, cubic or lanczos)"
            ))
        })?;
    }
    out.mode = match s.scale_mode.as_deref().unwrap_or("fill") {
        "fill" => ScaleMode::Fill,
        "crop" => ScaleMode::Crop,
        "pad" => ScaleMode::Pad,
        other => {
            return Err(Fail::new(format!(
                "{key}.scale_mode: \"{other}\" (expected fill, crop or pad)"
            )))
        }
    };
    out.pad_value = match s.pad_value.unwrap_or(-1) {
        -1 => None,
        v @ 0..=255 => Some(v as u8),
        v => {
            return Err(Fail::new(format!(
                "{key}.pad_value: {v} (expected -1 for the border's colour, or 0 to 255)"
            )))
        }
    };
    Ok(out)
}

/// One table of `transforms`, relative paths resolved against `base`.
fn transform(v: &toml::Value, key: &str, base: &Path) -> Result<ImageTransform> {
    let Some(table) = v.as_table() else {
        return Err(Fail::new(format!(
            "{key}: expected a table such as {{ type = \"scale\", width = 32, height = 32, channels = 3 }}"
        )));
    };
    let kind = table.get("type").and_then(|t| t.as_str()).unwrap_or("");
    let mut rest = table.clone();
    rest.remove("type");
    let rest = toml::Value::Table(rest);
    let key = format!("{key} ({kind})");
    let key = key.as_str();
    let t = match kind {
        "crop" => ImageTransform::Crop(crop(decode(rest, key)?, key)?),
        "scale" => ImageTransform::Scale(scale(decode(rest, key)?, key)?),
        "mean" => {
            let s: MeanSpec = decode(rest, key)?;
            let path = base.join(&s.file);
            let m = MeanImage::load(&path).context(format!("{key}.file"))?;
            ImageTransform::Mean(Arc::new(m))
        }
        "color" => {
            let s: ColorSpec = decode(rest, key)?;
            ImageTransform::Color(Color {
                brightness_radius: s.brightness_radius,
                contrast_radius: s.contrast_radius,
                saturation_radius: s.saturation_radius,
            })
        }
        other => {
            return Err(Fail::new(format!(
                "{}: unknown transform type \"{other}\" (expected crop, scale, mean or color)",
                key.split(" (").next().unwrap_or(key)
            )))
        }
    };
    t.validate().context(key)?;
    Ok(t)
}

/// The deserializer of an image reader; `num_classes` defaults to the labels input's dim.
pub fn deserializer(
    key: &str,
    r: &ReaderSpec,
    base: &Path,
    dtype: DType,
    default_classes: Option<usize>,
) -> Result<ImageDeserializer> {
    for (k, given) in [
        ("streams", r.streams.is_some()),
        ("chunk_bytes", r.chunk_bytes.is_some()),
        ("frame_mode", r.frame_mode),
        ("truncation_length", r.truncation_length > 0),
    ] {
        if given {
            return Err(Fail::new(format!(
                "{key}.{k}: not an option of an image reader (type = \"image\")"
            )));
        }
    }
    let mut transforms = Vec::new();
    for (i, t) in r.transforms.iter().flatten().enumerate() {
        transforms.push(transform(t, &format!("{key}.transforms[{i}]"), base)?);
    }
    let num_classes = r.num_classes.or(default_classes).ok_or_else(|| {
        Fail::new(format!(
            "{key}.num_classes: the number of classes (no input reads the label stream to take it from)"
        ))
    })?;
    let opts = ImageOptions {
        transforms,
        dtype,
        images_per_chunk: r.images_per_chunk.unwrap_or(16),
        seed: r.randomization_seed.unwrap_or(0),
        policy: if r.skip_bad_images.unwrap_or(false) {
            ErrorPolicy::SkipSequence
        } else {
            ErrorPolicy::Fail
        },
        ..Default::default()
    };
    if !r.file.exists() {
        return Err(Fail::new(format!(
            "{key}.file: the map file {} does not exist",
            r.file.display()
        )));
    }
    ImageDeserializer::new(
        &r.file,
        r.image_stream.as_deref().unwrap_or("features"),
        r.label_stream.as_deref().unwrap_or("labels"),
        num_classes,
        opts,
    )
    .context(format!("{key}.file"))
}

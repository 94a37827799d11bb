//! CNTK's `ImageDeserializer` from Python: the transform descriptions that
//! `cntk.io.transforms.crop/scale/mean/color` return (dicts with CNTK's config keys)
//! parsed into rntk's `ImageTransform`s, and the deserializer built from a map file.

use crate::errors::{value_err, IntoPy};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rntk::io::image::{
    Color, Crop, CropType, ImageTransform, Interpolation, MeanImage, Scale, ScaleMode,
};
use rntk::io::{Deserializer, ImageDeserializer, ImageOptions};
use std::sync::Arc;

/// `d[key]` as the given type, `default` when absent or None.
macro_rules! getter {
    ($name:ident, $t:ty) => {
        fn $name(d: &Bound<'_, PyDict>, key: &str, default: $t) -> PyResult<$t> {
            match d.get_item(key)? {
                Some(v) if !v.is_none() => v
                    .extract::<$t>()
                    .map_err(|e| value_err(format!("transform key '{key}': {e}"))),
                _ => Ok(default),
            }
        }
    };
}
getter!(get_f64, f64);
getter!(get_usize, usize);
getter!(get_i64, i64);
getter!(get_str, String);

/// A ratio as CNTK takes it: a number, a `(min, max)` pair, or the text `"min:max"`.
fn ratio(d: &Bound<'_, PyDict>, key: &str, default: f64) -> PyResult<(f64, f64)> {
    let Some(v) = d.get_item(key)? else {
        return Ok((default, default));
    };
    if let Ok(x) = v.extract::<f64>() {
        return Ok((x, x));
    }
    if let Ok((a, b)) = v.extract::<(f64, f64)>() {
        return Ok((a, b));
    }
    if let Ok(s) = v.extract::<String>() {
        let parts: Vec<&str> = s.split(':').collect();
        let num = |t: &str| {
            t.trim()
                .parse::<f64>()
                .map_err(|_| value_err(format!("{key} {s:?}: expected a number or 'min:max'")))
        };
        return match parts.as_slice() {
            [a] => num(a).map(|x| (x, x)),
            [a, b] => Ok((num(a)?, num(b)?)),
            _ => Err(value_err(format!(
                "{key} {s:?}: expected a number or 'min:max'"
            ))),
        };
    }
    Err(value_err(format!(
        "{key}: expected a number, a (min, max) pair or 'min:max'"
    )))
}

fn crop(d: &Bound<'_, PyDict>) -> PyResult<Crop> {
    let kind: String = get_str(d, "cropType", "center".to_string())?;
    let crop_type = match kind.to_ascii_lowercase().as_str() {
        "center" => CropType::Center,
        "randomside" | "random" => CropType::RandomSide,
        "randomarea" => CropType::RandomArea,
        "multiview10" => CropType::MultiView10,
        _ => {
            return Err(value_err(format!(
                "crop_type {kind:?}: expected 'center', 'randomside', 'randomarea' or 'multiview10'"
            )))
        }
    };
    let size = match d.get_item("cropSize")? {
        None => (0, 0),
        Some(v) => {
            if let Ok(n) = v.extract::<usize>() {
                (n, n)
            } else {
                v.extract::<(usize, usize)>().map_err(|_| {
                    value_err("crop_size: expected a number of pixels or (width, height)")
                })?
            }
        }
    };
    let jitter: String = get_str(d, "jitterType", "none".to_string())?;
    let jitter = match jitter.to_ascii_lowercase().as_str() {
        "none" => false,
        "uniratio" => true,
        _ => {
            return Err(value_err(format!(
                "jitter_type {jitter:?}: expected 'none' or 'uniratio'"
            )))
        }
    };
    Ok(Crop {
        crop_type,
        crop_size: size,
        side_ratio: ratio(d, "sideRatio", 0.0)?,
        area_ratio: ratio(d, "areaRatio", 0.0)?,
        aspect_ratio: ratio(d, "aspectRatio", 1.0)?,
        jitter,
        hflip: None,
    })
}

fn scale(d: &Bound<'_, PyDict>) -> PyResult<Scale> {
    let (w, h, c): (usize, usize, usize) = (
        get_usize(d, "width", 0)?,
        get_usize(d, "height", 0)?,
        get_usize(d, "channels", 0)?,
    );
    if w == 0 || h == 0 || !(c == 1 || c == 3) {
        return Err(value_err(format!(
            "scale(width={w}, height={h}, channels={c}): width and height must be at least 1, \
             channels 1 or 3"
        )));
    }
    let interp: String = get_str(d, "interpolations", "linear".to_string())?;
    // CNTK takes a list ("linear:cubic") and picks one at random; rntk takes the first
    let first = interp.split(':').next().unwrap_or("linear");
    let interpolation = Interpolation::parse(first).ok_or_else(|| {
        value_err(format!(
            "interpolations {interp:?}: expected 'nearest', 'linear', 'cubic' or 'lanczos'"
        ))
    })?;
    let mode: String = get_str(d, "scaleMode", "fill".to_string())?;
    let mode = match mode.to_ascii_lowercase().as_str() {
        "fill" => ScaleMode::Fill,
        "crop" => ScaleMode::Crop,
        "pad" => ScaleMode::Pad,
        _ => {
            return Err(value_err(format!(
                "scale_mode {mode:?}: expected 'fill', 'crop' or 'pad'"
            )))
        }
    };
    let pad: i64 = get_i64(d, "padValue", -1)?;
    let pad_value = match pad {
        -1 => None,
        0..=255 => Some(pad as u8),
        _ => {
            return Err(value_err(format!(
                "pad_value {pad}: expected -1 or 0 to 255"
            )))
        }
    };
    Ok(Scale {
        width: w,
        height: h,
        channels: c,
        interpolation,
        mode,
        pad_value,
    })
}

/// One transform description (`{'type': 'Crop'|'Scale'|'Mean'|'Color', …}`).
fn transform(d: &Bound<'_, PyDict>) -> PyResult<ImageTransform> {
    let kind: String = get_str(d, "type", String::new())?;
    Ok(match kind.as_str() {
        "Crop" => ImageTransform::Crop(crop(d)?),
        "Scale" => ImageTransform::Scale(scale(d)?),
        "Mean" => {
            let path: String = get_str(d, "meanFile", String::new())?;
            ImageTransform::Mean(Arc::new(MeanImage::load(std::path::Path::new(&path)).py()?))
        }
        "Color" => ImageTransform::Color(Color {
            brightness_radius: get_f64(d, "brightnessRadius", 0.0)?,
            contrast_radius: get_f64(d, "contrastRadius", 0.0)?,
            saturation_radius: get_f64(d, "saturationRadius", 0.0)?,
        }),
        _ => {
            return Err(value_err(format!(
                "unknown image transform {kind:?} (use cntk.io.transforms.crop/scale/mean/color)"
            )))
        }
    })
}

/// The deserializer of one `ImageDeserializer(map_file, streams)`.
pub fn open(
    map_file: &str,
    features: &str,
    labels: &str,
    num_classes: usize,
    transforms: &[Bound<'_, PyDict>],
    seed: u64,
) -> PyResult<Arc<dyn Deserializer>> {
    let opts = ImageOptions {
        transforms: transforms.iter().map(transform).collect::<PyResult<_>>()?,
        seed,
        ..ImageOptions::default()
    };
    Ok(Arc::new(
        ImageDeserializer::new(map_file, features, labels, num_classes, opts).py()?,
    ))
}

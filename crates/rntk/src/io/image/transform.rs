//! The image transforms of CNTK's `ImageDeserializer` (`cntk.io.transforms`), applied in
//! the order given: `crop` (center, randomside, randomarea, multiview10; by `crop_size`,
//! `side_ratio` or `area_ratio`, with `aspect_ratio` and `uniratio` jitter; random crops
//! flip horizontally at random), `scale` (to width × height × channels, nearest / linear /
//! cubic / lanczos, fill / crop / pad), `mean` (subtract a mean image) and `color`
//! (brightness, contrast, saturation). Images stay 8-bit until a transform needs floats,
//! as in CNTK. Random choices come from a generator seeded per image (see `rng_for`).

use super::mean_file::MeanImage;
use super::resize::{resize, Interpolation};
use crate::error::{Error, Result};
use rand_core::{RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// Pixels, interleaved (row, column, channel), channels in BGR order.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Pixels {
    U8(Vec<u8>),
    F32(Vec<f32>),
}

/// An image being transformed.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Img {
    pub w: usize,
    pub h: usize,
    pub c: usize,
    pub px: Pixels,
}

impl Img {
    fn floats_mut(&mut self) -> &mut Vec<f32> {
        if let Pixels::U8(v) = &self.px {
            self.px = Pixels::F32(v.iter().map(|&b| b as f32).collect());
        }
        match &mut self.px {
            Pixels::F32(v) => v,
            Pixels::U8(_) => unreachable!("converted above"),
        }
    }

    /// The sub-image `(x, y, w, h)` (inside the image).
    fn crop(&self, x: usize, y: usize, w: usize, h: usize) -> Img {
        fn rows<T: Copy>(
            v: &[T],
            iw: usize,
            c: usize,
            x: usize,
            y: usize,
            w: usize,
            h: usize,
        ) -> Vec<T> {
            let mut out = Vec::with_capacity(w * h * c);
            for r in y..y + h {
                out.extend_from_slice(&v[(r * iw + x) * c..(r * iw + x + w) * c]);
            }
            out
        }
        let px = match &self.px {
            Pixels::U8(v) => Pixels::U8(rows(v, self.w, self.c, x, y, w, h)),
            Pixels::F32(v) => Pixels::F32(rows(v, self.w, self.c, x, y, w, h)),
        };
        Img {
            w,
            h,
            c: self.c,
            px,
        }
    }

    fn flip(&mut self) {
        fn go<T>(v: &mut [T], w: usize, c: usize) {
            for row in v.chunks_mut(w * c) {
                for x in 0..w / 2 {
                    for ch in 0..c {
                        row.swap(x * c + ch, (w - 1 - x) * c + ch);
                    }
                }
            }
        }
        match &mut self.px {
            Pixels::U8(v) => go(v, self.w, self.c),
            Pixels::F32(v) => go(v, self.w, self.c),
        }
    }
}

/// The random choices of one image.
pub(crate) struct Rng(Xoshiro256PlusPlus);

impl Rng {
    /// Uniform in `[lo, hi)`.
    fn real(&mut self, lo: f64, hi: f64) -> f64 {
        let u = (self.0.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        lo + (hi - lo) * u
    }
    /// Uniform in `lo..=hi`.
    fn int(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.0.next_u64() % (hi - lo + 1) as u64) as usize
    }
    fn coin(&mut self) -> bool {
        self.0.next_u64() >> 63 == 1
    }
}

/// The generator of the image with `key` in sweep `sweep` under `seed`: the same
/// choices whichever thread decodes it and after a checkpoint restore.
pub(crate) fn rng_for(seed: u64, sweep: u64, key: u64) -> Rng {
    let mut z = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(sweep.wrapping_mul(0xC2B2_AE3D_27D4_EB4F))
        .wrapping_add(key.wrapping_mul(0x1656_67B1_9E37_79F9));
    // splitmix64 finalizer
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    Rng(Xoshiro256PlusPlus::seed_from_u64(z ^ (z >> 31)))
}

/// Where a crop window goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CropType {
    Center,
    /// Random position; the size from `side_ratio`; flipped at random.
    RandomSide,
    /// Random position; the size from `area_ratio`; flipped at random.
    RandomArea,
    /// CNTK's ten views (four corners, centre, and the same flipped) by copy index; read
    /// through a `MinibatchSource` every image is one copy (index 0, the top-left corner),
    /// as in CNTK 2.7.
    MultiView10,
}

/// CNTK's `crop` transform.
#[derive(Clone, Debug, PartialEq)]
pub struct Crop {
    pub crop_type: CropType,
    /// `(width, height)` in pixels; 0 means unset (then a ratio sets the size).
    pub crop_size: (usize, usize),
    /// `(min, max)` of the side ratio; (0, 0) unset.
    pub side_ratio: (f64, f64),
    /// `(min, max)` of the area ratio; (0, 0) unset.
    pub area_ratio: (f64, f64),
    /// `(min, max)` of the aspect ratio, in (0, 1].
    pub aspect_ratio: (f64, f64),
    /// `uniratio` jitter: ratios drawn uniformly between min and max (else: min).
    pub jitter: bool,
    /// Horizontal flip at random; `None`: CNTK's default (random crops flip).
    pub hflip: Option<bool>,
}

impl Default for Crop {
    fn default() -> Self {
        Crop {
            crop_type: CropType::Center,
            crop_size: (0, 0),
            side_ratio: (0.0, 0.0),
            area_ratio: (0.0, 0.0),
            aspect_ratio: (1.0, 1.0),
            jitter: false,
            hflip: None,
        }
    }
}

/// How `scale` fits the image to the target size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScaleMode {
    /// Warp to the target size.
    Fill,
    /// Resize the shorter side to the target and crop the overlap (centred).
    Crop,
    /// Resize the longer side to the target, centre, pad the rest.
    Pad,
}

/// CNTK's `scale` transform.
#[derive(Clone, Debug, PartialEq)]
pub struct Scale {
    pub width: usize,
    pub height: usize,
    /// 1 (grayscale, decoded as such) or 3 (BGR).
    pub channels: usize,
    pub interpolation: Interpolation,
    pub mode: ScaleMode,
    /// Pad value for `ScaleMode::Pad`; `None` replicates the border (CNTK's −1).
    pub pad_value: Option<u8>,
}

impl Scale {
    pub fn new(width: usize, height: usize, channels: usize) -> Scale {
        Scale {
            width,
            height,
            channels,
            interpolation: Interpolation::Linear,
            mode: ScaleMode::Fill,
            pad_value: None,
        }
    }
}

/// CNTK's `color` transform: radii in [0, 1].
#[derive(Clone, Debug, PartialEq)]
pub struct Color {
    pub brightness_radius: f64,
    pub contrast_radius: f64,
    pub saturation_radius: f64,
}

/// One transform of the chain.
#[derive(Clone, Debug, PartialEq)]
pub enum ImageTransform {
    Crop(Crop),
    Scale(Scale),
    Mean(std::sync::Arc<MeanImage>),
    Color(Color),
}

fn check_ratio(what: &str, (lo, hi): (f64, f64), allow_unset: bool) -> Result<()> {
    if allow_unset && lo == 0.0 && hi == 0.0 {
        return Ok(());
    }
    if !(lo > 0.0 && hi <= 1.0 && lo <= hi) {
        return Err(Error::invalid(
            "crop",
            format!("{what} ({lo}, {hi}) must satisfy 0 < min <= max <= 1"),
        ));
    }
    Ok(())
}

impl ImageTransform {
    /// Refuse settings CNTK refuses, with the reason.
    pub fn validate(&self) -> Result<()> {
        match self {
            ImageTransform::Crop(c) => {
                check_ratio("side_ratio", c.side_ratio, true)?;
                check_ratio("area_ratio", c.area_ratio, true)?;
                check_ratio("aspect_ratio", c.aspect_ratio, false)?;
                let side = c.side_ratio != (0.0, 0.0);
                let area = c.area_ratio != (0.0, 0.0);
                if side && area {
                    return Err(Error::invalid(
                        "crop",
                        "side_ratio and area_ratio cannot be given together",
                    ));
                }
                if c.crop_type == CropType::RandomSide && !side && c.crop_size.0 == 0 {
                    return Err(Error::invalid("crop", "randomside needs side_ratio"));
                }
                if c.crop_type == CropType::RandomArea && !area && c.crop_size.0 == 0 {
                    return Err(Error::invalid("crop", "randomarea needs area_ratio"));
                }
                if (c.crop_size.0 == 0) != (c.crop_size.1 == 0) {
                    return Err(Error::invalid(
                        "crop",
                        "crop_size needs both a width and a height",
                    ));
                }
            }
            ImageTransform::Scale(s) => {
                if s.width == 0 || s.height == 0 || s.width > 1 << 15 || s.height > 1 << 15 {
                    return Err(Error::invalid(
                        "scale",
                        format!(
                            "width {} and height {} must be 1..=32768",
                            s.width, s.height
                        ),
                    ));
                }
                if s.channels != 1 && s.channels != 3 {
                    return Err(Error::invalid(
                        "scale",
                        format!(
                            "channels must be 1 (grayscale) or 3 (colour), got {}",
                            s.channels
                        ),
                    ));
                }
            }
            ImageTransform::Color(c) => {
                for (n, v) in [
                    ("brightness_radius", c.brightness_radius),
                    ("contrast_radius", c.contrast_radius),
                    ("saturation_radius", c.saturation_radius),
                ] {
                    if !(0.0..=1.0).contains(&v) {
                        return Err(Error::invalid(
                            "color",
                            format!("{n} must be in [0, 1], got {v}"),
                        ));
                    }
                }
            }
            ImageTransform::Mean(_) => {}
        }
        Ok(())
    }
}

/// A ratio from its range. CNTK keeps ratios as 32-bit floats (0.7 is 0.699999988, so
/// 5 × 0.7 rounds to 3, not 4): the bounds are narrowed the same way.
fn ratio(jitter: bool, (lo, hi): (f64, f64), rng: &mut Rng) -> f64 {
    let (lo, hi) = (lo as f32 as f64, hi as f32 as f64);
    if jitter && lo != hi {
        rng.real(lo, hi)
    } else {
        lo
    }
}

/// The crop window `(x, y, w, h)` of CNTK's `GetCropRectCenter` (centred).
fn center_rect(c: &Crop, rows: usize, cols: usize, rng: &mut Rng) -> (usize, usize, usize, usize) {
    if c.crop_size.0 > 0 && c.crop_size.1 > 0 {
        let (w, h) = (c.crop_size.0.min(cols), c.crop_size.1.min(rows));
        return ((cols - w) / 2, (rows - h) / 2, w, h);
    }
    let (mut w, mut h) = (cols as i64, rows as i64);
    for _ in 0..10 {
        if c.side_ratio != (0.0, 0.0) {
            let r = ratio(c.jitter, c.side_ratio, rng);
            w = (rows.min(cols) as f64 * r).round() as i64;
            h = w;
        } else if c.area_ratio != (0.0, 0.0) {
            let r = ratio(c.jitter, c.area_ratio, rng);
            w = ((rows * cols) as f64 * r).sqrt().round() as i64;
            h = w;
        }
        let a = ratio(c.jitter, c.aspect_ratio, rng);
        if a != 1.0 {
            let area = (w * h) as f64;
            if rng.coin() {
                w = (area * a).sqrt() as i64;
                h = (area / a).sqrt() as i64;
            } else {
                h = (area * a).sqrt() as i64;
                w = (area / a).sqrt() as i64;
            }
        }
        if w <= cols as i64 && h <= rows as i64 {
            let (w, h) = (w.max(1) as usize, h.max(1) as usize);
            return ((cols - w) / 2, (rows - h) / 2, w, h);
        }
    }
    (0, 0, cols, rows)
}

fn apply_crop(img: &Img, c: &Crop, rng: &mut Rng) -> Img {
    let (x, y, w, h) = center_rect(c, img.h, img.w, rng);
    let (x, y) = match c.crop_type {
        CropType::Center => (x, y),
        CropType::RandomSide | CropType::RandomArea => {
            (rng.int(0, img.w - w), rng.int(0, img.h - h))
        }
        // copy index 0: the top-left view
        CropType::MultiView10 => (0, 0),
    };
    let mut out = img.crop(x, y, w, h);
    let flip = c.hflip.unwrap_or(matches!(
        c.crop_type,
        CropType::RandomSide | CropType::RandomArea
    ));
    if flip && c.crop_type != CropType::MultiView10 && rng.coin() {
        out.flip();
    }
    out
}

fn round_half_away(v: f64) -> usize {
    v.round() as usize
}

fn apply_scale(img: &Img, s: &Scale) -> Img {
    if s.mode == ScaleMode::Fill {
        return resize(img, s.width, s.height, s.interpolation);
    }
    // which side is scaled: the shorter ("crop") or the longer ("pad")
    let scale_w = match s.mode {
        ScaleMode::Crop => img.w < img.h,
        _ => img.w > img.h,
    };
    let (tw, th) = if scale_w {
        (
            s.width,
            round_half_away(img.h as f64 * s.width as f64 / img.w as f64).max(1),
        )
    } else {
        (
            round_half_away(img.w as f64 * s.height as f64 / img.h as f64).max(1),
            s.height,
        )
    };
    let r = resize(img, tw, th, s.interpolation);
    if s.mode == ScaleMode::Crop {
        let x = tw.saturating_sub(s.width) / 2;
        let y = th.saturating_sub(s.height) / 2;
        let (w, h) = (s.width.min(tw - x), s.height.min(th - y));
        let mut out = r.crop(x, y, w, h);
        if (w, h) != (s.width, s.height) {
            out = pad(&out, s.width, s.height, s.pad_value);
        }
        return out;
    }
    pad(&r, s.width, s.height, s.pad_value)
}

/// `img` centred in a `w × h` canvas, the border replicated or set to `value`.
fn pad(img: &Img, w: usize, h: usize, value: Option<u8>) -> Img {
    let top = h.saturating_sub(img.h) / 2;
    let left = w.saturating_sub(img.w) / 2;
    let c = img.c;
    let src_at = |x: usize, y: usize| -> Option<usize> {
        let (sx, sy) = (x as isize - left as isize, y as isize - top as isize);
        let inside = sx >= 0 && sy >= 0 && (sx as usize) < img.w && (sy as usize) < img.h;
        if inside {
            return Some(sy as usize * img.w + sx as usize);
        }
        if value.is_some() {
            return None;
        }
        let cx = sx.clamp(0, img.w as isize - 1) as usize;
        let cy = sy.clamp(0, img.h as isize - 1) as usize;
        Some(cy * img.w + cx)
    };
    fn fill<T: Copy>(
        src: &[T],
        w: usize,
        h: usize,
        c: usize,
        at: &dyn Fn(usize, usize) -> Option<usize>,
        v: T,
    ) -> Vec<T> {
        let mut out = Vec::with_capacity(w * h * c);
        for y in 0..h {
            for x in 0..w {
                match at(x, y) {
                    Some(i) => out.extend_from_slice(&src[i * c..(i + 1) * c]),
                    None => out.extend(std::iter::repeat_n(v, c)),
                }
            }
        }
        out
    }
    let v = value.unwrap_or(0);
    let px = match &img.px {
        Pixels::U8(s) => Pixels::U8(fill(s, w, h, c, &src_at, v)),
        Pixels::F32(s) => Pixels::F32(fill(s, w, h, c, &src_at, v as f32)),
    };
    Img { w, h, c, px }
}

fn apply_mean(img: &mut Img, m: &MeanImage) {
    // CNTK ignores (with a warning) a mean image of another size; the deserializer
    // checks sizes up front instead, so here they agree.
    if (m.cols, m.rows, m.channels) != (img.w, img.h, img.c) {
        return;
    }
    for (v, mv) in img.floats_mut().iter_mut().zip(&m.data) {
        *v -= mv;
    }
}

fn apply_color(img: &mut Img, c: &Color, rng: &mut Rng) {
    if c.brightness_radius == 0.0 && c.contrast_radius == 0.0 && c.saturation_radius == 0.0 {
        return;
    }
    let channels = img.c;
    let v = img.floats_mut();
    if c.brightness_radius > 0.0 || c.contrast_radius > 0.0 {
        let mut beta = 0f32;
        if c.brightness_radius > 0.0 {
            let d = rng.real(-c.brightness_radius, c.brightness_radius);
            let mean = v.iter().map(|&x| x as f64).sum::<f64>() / v.len().max(1) as f64;
            beta = (d * mean) as f32;
        }
        let mut alpha = 1f32;
        if c.contrast_radius > 0.0 {
            alpha = (1.0 + rng.real(-c.contrast_radius, c.contrast_radius)) as f32;
        }
        for x in v.iter_mut() {
            *x = (*x * alpha + beta).clamp(0.0, 255.0);
        }
    }
    if c.saturation_radius > 0.0 && channels == 3 {
        let ratio = 1.0 + rng.real(-c.saturation_radius, c.saturation_radius) as f32;
        // HSV with H and V kept and S scaled (at most 1): each channel moves toward or
        // away from V = max(b, g, r) along its distance from it.
        for px in v.chunks_mut(3) {
            let mx = px[0].max(px[1]).max(px[2]);
            let mn = px[0].min(px[1]).min(px[2]);
            if mx <= 0.0 || mx == mn {
                continue;
            }
            let s = (mx - mn) / mx;
            let k = (s * ratio).min(1.0) / s;
            for x in px.iter_mut() {
                *x = (mx - (mx - *x) * k).clamp(0.0, 255.0);
            }
        }
    }
}

/// Apply the chain to one decoded image.
pub(crate) fn apply(mut img: Img, chain: &[ImageTransform], rng: &mut Rng) -> Img {
    for t in chain {
        match t {
            ImageTransform::Crop(c) => img = apply_crop(&img, c, rng),
            ImageTransform::Scale(s) => img = apply_scale(&img, s),
            ImageTransform::Mean(m) => apply_mean(&mut img, m),
            ImageTransform::Color(c) => apply_color(&mut img, c, rng),
        }
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(w: usize, h: usize) -> Img {
        Img {
            w,
            h,
            c: 3,
            px: Pixels::U8((0..w * h * 3).map(|i| (i % 251) as u8).collect()),
        }
    }

    #[test]
    fn random_crops_stay_inside_and_follow_the_seed() {
        let crop = Crop {
            crop_type: CropType::RandomSide,
            side_ratio: (0.5, 0.9),
            jitter: true,
            ..Crop::default()
        };
        let img = ramp(20, 14);
        let mut sizes = std::collections::HashSet::new();
        let mut flips = 0;
        for key in 0..200 {
            let a = apply(
                img.clone(),
                &[ImageTransform::Crop(crop.clone())],
                &mut rng_for(7, 1, key),
            );
            let b = apply(
                img.clone(),
                &[ImageTransform::Crop(crop.clone())],
                &mut rng_for(7, 1, key),
            );
            assert_eq!(a, b, "same seed, same image");
            assert!(a.w == a.h && a.w >= 7 && a.w <= 13, "side {}", a.w);
            sizes.insert(a.w);
            // the crop is a window of the image, maybe flipped
            let Pixels::U8(p) = &a.px else { unreachable!() };
            let Pixels::U8(src) = &img.px else {
                unreachable!()
            };
            let found = (0..=img.h - a.h).any(|y| {
                (0..=img.w - a.w).any(|x| {
                    let c = img.crop(x, y, a.w, a.h);
                    let mut f = c.clone();
                    f.flip();
                    let same = c.px == a.px;
                    if !same && f.px == a.px {
                        flips += 1;
                    }
                    same || f.px == a.px
                })
            });
            assert!(found && !p.is_empty() && !src.is_empty());
        }
        assert!(sizes.len() > 3, "jittered sizes {sizes:?}");
        assert!(flips > 50 && flips < 150, "about half flipped: {flips}");
        let other = apply(
            img.clone(),
            &[ImageTransform::Crop(crop)],
            &mut rng_for(8, 1, 0),
        );
        let _ = other;
    }

    #[test]
    fn color_changes_stay_in_range_and_keep_gray_pixels_gray() {
        let c = Color {
            brightness_radius: 0.4,
            contrast_radius: 0.4,
            saturation_radius: 0.8,
        };
        for key in 0..50 {
            let mut img = ramp(5, 4);
            if let Pixels::U8(v) = &mut img.px {
                v[0..3].copy_from_slice(&[90, 90, 90]);
            }
            let out = apply(
                img,
                &[ImageTransform::Color(c.clone())],
                &mut rng_for(1, 0, key),
            );
            let Pixels::F32(v) = out.px else {
                panic!("color gives floats")
            };
            assert!(v.iter().all(|x| (0.0..=255.0).contains(x)));
            assert!(v[0] == v[1] && v[1] == v[2], "gray stays gray");
        }
    }

    #[test]
    fn scale_modes_give_the_target_size() {
        for mode in [ScaleMode::Fill, ScaleMode::Crop, ScaleMode::Pad] {
            for (w, h) in [(20, 11), (7, 19), (10, 10)] {
                let s = Scale {
                    mode,
                    pad_value: Some(3),
                    ..Scale::new(8, 6, 3)
                };
                let out = apply(
                    ramp(w, h),
                    &[ImageTransform::Scale(s)],
                    &mut rng_for(0, 0, 0),
                );
                assert_eq!((out.w, out.h, out.c), (8, 6, 3), "{mode:?} from {w}x{h}");
            }
        }
    }
}

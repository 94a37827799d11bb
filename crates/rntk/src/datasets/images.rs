//! Built-in synthetic images for the CNN examples when no real data is at hand:
//! handwriting-like digits (28 × 28 grey, MNIST's layout) and coloured shapes (32 × 32
//! RGB, CIFAR's layout), both with ten classes, drawn deterministically from a seed.
//!
//! Digits are strokes of seven-segment glyphs with a slant, a thickness, a scale and an
//! offset drawn at random, anti-aliased, with noise. Shapes are ten figures (disc, square,
//! triangle, ring, cross, bars, diamond, X, half-disc, frame) in random colours, sizes and
//! positions on a random background: the class is the figure, never the colour.

use crate::error::{Error, Result};
use rand_core::{RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::path::{Path, PathBuf};

struct Rng(Xoshiro256PlusPlus);
impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(Xoshiro256PlusPlus::seed_from_u64(seed))
    }
    fn uniform(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }
    fn below(&mut self, n: usize) -> usize {
        (self.0.next_u64() % n as u64) as usize
    }
}

/// Distance from `p` to the segment `a`–`b`.
fn seg_dist(p: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let t = if len2 == 0.0 {
        0.0
    } else {
        (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / len2).clamp(0.0, 1.0)
    };
    let (cx, cy) = (a.0 + t * dx - p.0, a.1 + t * dy - p.1);
    (cx * cx + cy * cy).sqrt()
}

/// Seven-segment glyphs (a top, b upper right, c lower right, d bottom, e lower left,
/// f upper left, g middle), with a diagonal for 1, 4 and 7 so they differ more.
const GLYPHS: [&str; 10] = [
    "abcdef", "bc/", "abged", "abgcd", "fgbc", "afgcd", "afgedc", "abc/", "abcdefg", "abfgcd",
];

fn glyph_segments(digit: usize) -> Vec<((f64, f64), (f64, f64))> {
    // unit box: x in [0, 1], y in [0, 2] (y down)
    let p = |x: f64, y: f64| (x, y);
    GLYPHS[digit]
        .chars()
        .map(|c| match c {
            'a' => (p(0.0, 0.0), p(1.0, 0.0)),
            'b' => (p(1.0, 0.0), p(1.0, 1.0)),
            'c' => (p(1.0, 1.0), p(1.0, 2.0)),
            'd' => (p(0.0, 2.0), p(1.0, 2.0)),
            'e' => (p(0.0, 1.0), p(0.0, 2.0)),
            'f' => (p(0.0, 0.0), p(0.0, 1.0)),
            'g' => (p(0.0, 1.0), p(1.0, 1.0)),
            _ => (p(0.2, 1.3), p(1.0, 0.0)),
        })
        .collect()
}

/// `n` digit images (28 × 28 values 0–255 each, row-major) and their labels 0–9
/// (label `i % 10` for image `i`, so every class is equally common).
pub fn synthetic_digits(n: usize, seed: u64) -> (Vec<u8>, Vec<usize>) {
    let mut rng = Rng::new(seed ^ 0xD161_7500);
    let mut px = vec![0u8; n * 784];
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let d = i % 10;
        labels.push(d);
        let scale = rng.range(7.0, 10.0);
        let (w, h) = (scale, 2.0 * scale);
        let x0 = rng.range(14.0 - w / 2.0 - 3.0, 14.0 - w / 2.0 + 3.0);
        let y0 = rng.range(14.0 - h / 2.0 - 2.0, 14.0 - h / 2.0 + 2.0);
        let slant = rng.range(-0.35, 0.25);
        let thick = rng.range(1.0, 2.2);
        let ink = rng.range(180.0, 255.0);
        let segs: Vec<_> = glyph_segments(d)
            .into_iter()
            .map(|(a, b)| {
                let t =
                    |q: (f64, f64)| (x0 + q.0 * w - slant * (q.1 - 1.0) * scale, y0 + q.1 * scale);
                (t(a), t(b))
            })
            .collect();
        let img = &mut px[i * 784..(i + 1) * 784];
        for y in 0..28 {
            for x in 0..28 {
                let p = (x as f64 + 0.5, y as f64 + 0.5);
                let dist = segs
                    .iter()
                    .map(|&(a, b)| seg_dist(p, a, b))
                    .fold(f64::INFINITY, f64::min);
                let v = (thick + 0.5 - dist).clamp(0.0, 1.0) * ink;
                let noise = rng.range(-12.0, 12.0);
                img[y * 28 + x] = (v + if v > 0.0 { noise } else { noise.max(0.0) * 0.5 })
                    .clamp(0.0, 255.0) as u8;
            }
        }
    }
    (px, labels)
}

/// Whether point `(x, y)` (centred coordinates in units of the figure's radius) is inside
/// figure `k`.
fn inside(k: usize, x: f64, y: f64) -> bool {
    let r = (x * x + y * y).sqrt();
    match k {
        0 => r <= 1.0,                                                                // disc
        1 => x.abs() <= 0.8 && y.abs() <= 0.8,                                        // square
        2 => y <= 0.8 && y >= -0.9 + 1.7 * x.abs() / 0.95,                            // triangle
        3 => (0.6..=1.0).contains(&r),                                                // ring
        4 => x.abs() <= 0.28 || y.abs() <= 0.28, // cross (plus)
        5 => (((y + 1.0) * 2.5) as i64) % 2 == 0 && x.abs() <= 0.9 && y.abs() <= 1.0, // bars
        6 => x.abs() + y.abs() <= 1.0,           // diamond
        7 => (x - y).abs() <= 0.35 || (x + y).abs() <= 0.35, // X
        8 => r <= 1.0 && y >= 0.0,               // half-disc
        _ => x.abs().max(y.abs()) <= 0.95 && x.abs().max(y.abs()) >= 0.6, // frame
    }
}

/// A random colour at least `away` (sum of channel distances) from `other`.
fn colour(rng: &mut Rng, other: Option<[f64; 3]>) -> [f64; 3] {
    loop {
        let c = [
            rng.range(0.0, 255.0),
            rng.range(0.0, 255.0),
            rng.range(0.0, 255.0),
        ];
        match other {
            Some(o) if (0..3).map(|k| (c[k] - o[k]).abs()).sum::<f64>() < 200.0 => continue,
            _ => return c,
        }
    }
}

/// `n` coloured-shape images (32 × 32 × 3 values 0–255, rows of RGB pixels) and their
/// labels 0–9 (`i % 10`).
pub fn color_shapes(n: usize, seed: u64) -> (Vec<u8>, Vec<usize>) {
    let mut rng = Rng::new(seed ^ 0x5A4E_5000);
    let mut px = vec![0u8; n * 32 * 32 * 3];
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let k = i % 10;
        labels.push(k);
        let bg = colour(&mut rng, None);
        let fg = colour(&mut rng, Some(bg));
        let radius = rng.range(7.0, 13.0);
        let cx = rng.range(radius, 32.0 - radius);
        let cy = rng.range(radius, 32.0 - radius);
        let angle = rng.range(-0.3, 0.3);
        let (s, c) = angle.sin_cos();
        let grad = [rng.range(-2.0, 2.0), rng.range(-2.0, 2.0)];
        let img = &mut px[i * 3072..(i + 1) * 3072];
        for y in 0..32 {
            for x in 0..32 {
                let (dx, dy) = (
                    (x as f64 + 0.5 - cx) / radius,
                    (y as f64 + 0.5 - cy) / radius,
                );
                let (u, v) = (c * dx + s * dy, -s * dx + c * dy);
                let base = if inside(k, u, v) { fg } else { bg };
                for ch in 0..3 {
                    let shade = grad[ch % 2] * (if ch == 0 { dx } else { dy }) * 10.0;
                    let noise = rng.range(-15.0, 15.0);
                    img[(y * 32 + x) * 3 + ch] = (base[ch] + shade + noise).clamp(0.0, 255.0) as u8;
                }
            }
        }
        let _ = rng.below(2);
    }
    (px, labels)
}

/// Write `n` coloured shapes as PNG files `DIR/PREFIX_NNNNN.png` and a CNTK map file
/// `DIR/PREFIX_map.txt` (`file<TAB>label`, paths relative to DIR); returns the map path.
pub fn write_color_shapes(dir: &Path, prefix: &str, n: usize, seed: u64) -> Result<PathBuf> {
    let io = |e: &dyn std::fmt::Display, f: &Path| Error::Io {
        file: f.display().to_string(),
        detail: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|e| io(&e, dir))?;
    let (px, labels) = color_shapes(n, seed);
    let mut map = String::new();
    for (i, &l) in labels.iter().enumerate() {
        let name = format!("{prefix}_{i:05}.png");
        let path = dir.join(&name);
        let img = image::RgbImage::from_raw(32, 32, px[i * 3072..(i + 1) * 3072].to_vec())
            .ok_or_else(|| io(&"image buffer of the wrong size", &path))?;
        img.save(&path).map_err(|e| io(&e, &path))?;
        map.push_str(&format!("{name}\t{l}\n"));
    }
    let map_path = dir.join(format!("{prefix}_map.txt"));
    std::fs::write(&map_path, map).map_err(|e| io(&e, &map_path))?;
    Ok(map_path)
}

/// Write `n` synthetic digits as a CTF file in tutorial 103's layout (`|labels` one-hot
/// of 10, `|features` 784 values 0–255).
pub fn write_digits_ctf(path: &Path, n: usize, seed: u64) -> Result<()> {
    let (px, labels) = synthetic_digits(n, seed);
    let mut s = String::with_capacity(n * 2400);
    for (i, &l) in labels.iter().enumerate() {
        s.push_str("|labels");
        for k in 0..10 {
            s.push_str(if k == l { " 1" } else { " 0" });
        }
        s.push_str(" |features");
        for &v in &px[i * 784..(i + 1) * 784] {
            s.push(' ');
            s.push_str(&v.to_string());
        }
        s.push('\n');
    }
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| Error::Io {
            file: d.display().to_string(),
            detail: e.to_string(),
        })?;
    }
    std::fs::write(path, s).map_err(|e| Error::Io {
        file: path.display().to_string(),
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nearest class mean (pixel space) beats chance by far: the classes differ.
    fn nearest_mean_accuracy(px: &[u8], labels: &[usize], dim: usize) -> f64 {
        let n = labels.len();
        let train = n / 2;
        let mut means = vec![vec![0f64; dim]; 10];
        let mut counts = [0usize; 10];
        for i in 0..train {
            counts[labels[i]] += 1;
            for j in 0..dim {
                means[labels[i]][j] += px[i * dim + j] as f64;
            }
        }
        for (m, c) in means.iter_mut().zip(counts) {
            m.iter_mut().for_each(|v| *v /= c.max(1) as f64);
        }
        let right = (train..n)
            .filter(|&i| {
                let d = |m: &Vec<f64>| -> f64 {
                    m.iter()
                        .zip(&px[i * dim..(i + 1) * dim])
                        .map(|(a, &b)| (a - b as f64).powi(2))
                        .sum()
                };
                let best = (0..10)
                    .min_by(|&a, &b| d(&means[a]).total_cmp(&d(&means[b])))
                    .unwrap();
                best == labels[i]
            })
            .count();
        right as f64 / (n - train) as f64
    }

    #[test]
    fn digits_are_deterministic_and_distinguishable() {
        let (a, la) = synthetic_digits(400, 3);
        let (b, _) = synthetic_digits(400, 3);
        assert_eq!(a, b);
        assert_ne!(a, synthetic_digits(400, 4).0);
        assert_eq!(la.iter().filter(|&&l| l == 7).count(), 40);
        let acc = nearest_mean_accuracy(&a, &la, 784);
        assert!(acc > 0.5, "nearest-mean accuracy {acc}");
    }

    #[test]
    fn shapes_are_deterministic_and_not_separable_by_mean_colour() {
        let (a, la) = color_shapes(300, 1);
        assert_eq!(a, color_shapes(300, 1).0);
        // the class is the figure, not the colour: nearest-mean in pixel space is weak
        let acc = nearest_mean_accuracy(&a, &la, 3072);
        assert!(
            acc < 0.5,
            "shapes should need spatial features, nearest-mean got {acc}"
        );
        let dir = std::env::temp_dir().join(format!("rntk-shapes-{}", std::process::id()));
        let map = write_color_shapes(&dir, "t", 12, 1).unwrap();
        let text = std::fs::read_to_string(&map).unwrap();
        assert_eq!(text.lines().count(), 12);
        assert!(text.starts_with("t_00000.png\t0\n"));
        let back = image::open(dir.join("t_00003.png")).unwrap().to_rgb8();
        assert_eq!(back.as_raw()[..], a[3 * 3072..4 * 3072]);
        let _ = std::fs::remove_dir_all(dir);
    }
}

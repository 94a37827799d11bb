//! Image resizing as CNTK's `scale` transform does it (OpenCV 3's `cv::resize`): nearest,
//! bilinear, bicubic (a = −0.75) and Lanczos-4 interpolation with pixel centres at
//! `(d + 0.5)·src/dst − 0.5` and edges replicated. 8-bit images use OpenCV's fixed-point
//! arithmetic (coefficients in 1/2048, rows combined with 22-bit rounding), so results
//! are whole grey levels as CNTK's are; float images are resized in float.
//!
//! Resizing is separable: each output row is the weighted sum of a few input rows, each
//! of which is first resized horizontally.

use super::transform::{Img, Pixels};

/// How `scale` interpolates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Interpolation {
    Nearest,
    Linear,
    Cubic,
    Lanczos,
}

impl Interpolation {
    pub fn parse(s: &str) -> Option<Interpolation> {
        match s.to_ascii_lowercase().as_str() {
            "nearest" => Some(Interpolation::Nearest),
            "linear" => Some(Interpolation::Linear),
            "cubic" => Some(Interpolation::Cubic),
            "lanczos" => Some(Interpolation::Lanczos),
            _ => None,
        }
    }
    fn taps(self) -> usize {
        match self {
            Interpolation::Nearest => 1,
            Interpolation::Linear => 2,
            Interpolation::Cubic => 4,
            Interpolation::Lanczos => 8,
        }
    }
}

const COEF_SCALE: f32 = 2048.0;

/// For each output position: the input positions of its taps (edges replicated) and
/// their float weights.
struct Axis {
    taps: usize,
    index: Vec<usize>,
    weight: Vec<f32>,
}

fn cubic(x: f32) -> [f32; 4] {
    const A: f32 = -0.75;
    let c0 = ((A * (x + 1.0) - 5.0 * A) * (x + 1.0) + 8.0 * A) * (x + 1.0) - 4.0 * A;
    let c1 = ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    let c2 = ((A + 2.0) * (1.0 - x) - (A + 3.0)) * (1.0 - x) * (1.0 - x) + 1.0;
    [c0, c1, c2, 1.0 - c0 - c1 - c2]
}

fn lanczos4(x: f32) -> [f32; 8] {
    let mut c = [0f32; 8];
    if x < f32::EPSILON {
        c[3] = 1.0;
        return c;
    }
    const S45: f64 = std::f64::consts::FRAC_1_SQRT_2;
    const CS: [(f64, f64); 8] = [
        (1.0, 0.0),
        (-S45, -S45),
        (0.0, 1.0),
        (S45, -S45),
        (-1.0, 0.0),
        (S45, S45),
        (0.0, -1.0),
        (-S45, S45),
    ];
    let pi4 = std::f64::consts::PI * 0.25;
    let y0 = -(x as f64 + 3.0) * pi4;
    let (s0, c0) = y0.sin_cos();
    let mut sum = 0f32;
    for (i, (a, b)) in CS.iter().enumerate() {
        let y = -(x as f64 + 3.0 - i as f64) * pi4;
        c[i] = ((a * s0 + b * c0) / (y * y)) as f32;
        sum += c[i];
    }
    let inv = 1.0 / sum;
    for v in &mut c {
        *v *= inv;
    }
    c
}

/// `clamp`: at the edges, bilinear weights move onto the edge pixel (OpenCV does this
/// along x only; along y it keeps the weights and repeats the edge row).
fn axis(src: usize, dst: usize, interp: Interpolation, clamp: bool) -> Axis {
    let taps = interp.taps();
    let mut index = Vec::with_capacity(dst * taps);
    let mut weight = Vec::with_capacity(dst * taps);
    // (OpenCV: the inverse of dst/src, in double)
    let scale = 1.0 / (dst as f64 / src as f64);
    let last = src as isize - 1;
    for d in 0..dst {
        if interp == Interpolation::Nearest {
            // OpenCV: floor(d · (1 / (dst/src))), at most src − 1
            let inv = 1.0 / (dst as f64 / src as f64);
            index.push(((d as f64 * inv).floor() as usize).min(src - 1));
            weight.push(1.0);
            continue;
        }
        let f = ((d as f64 + 0.5) * scale - 0.5) as f32;
        let mut sx = f.floor() as isize;
        let mut fx = f - sx as f32;
        if interp == Interpolation::Linear && clamp {
            if sx < 0 {
                fx = 0.0;
                sx = 0;
            }
            if sx >= last {
                fx = 0.0;
                sx = last;
            }
        }
        let w: Vec<f32> = match interp {
            Interpolation::Linear => vec![1.0 - fx, fx],
            Interpolation::Cubic => cubic(fx).to_vec(),
            _ => lanczos4(fx).to_vec(),
        };
        let first = sx - (taps as isize / 2 - 1);
        for (k, wk) in w.into_iter().enumerate() {
            index.push((first + k as isize).clamp(0, last) as usize);
            weight.push(wk);
        }
    }
    Axis {
        taps,
        index,
        weight,
    }
}

/// `img` resized to `w × h` (channels unchanged).
pub(crate) fn resize(img: &Img, w: usize, h: usize, interp: Interpolation) -> Img {
    let c = img.c;
    let ax = axis(img.w, w, interp, true);
    let ay = axis(img.h, h, interp, false);
    let px = match &img.px {
        Pixels::U8(src) => Pixels::U8(resize_u8(src, img.w, c, &ax, &ay, w, h)),
        Pixels::F32(src) => Pixels::F32(resize_f32(src, img.w, c, &ax, &ay, w, h)),
    };
    Img { w, h, c, px }
}

/// OpenCV's `saturate_cast<short>(v · 2048)` (round half to even).
fn fixed(v: f32) -> i32 {
    (v * COEF_SCALE).round_ties_even() as i32
}

fn resize_u8(src: &[u8], sw: usize, c: usize, ax: &Axis, ay: &Axis, w: usize, h: usize) -> Vec<u8> {
    let nearest = ax.taps == 1;
    let wx: Vec<i32> = ax.weight.iter().map(|&v| fixed(v)).collect();
    let wy: Vec<i32> = ay.weight.iter().map(|&v| fixed(v)).collect();
    let mut out = vec![0u8; w * h * c];
    let mut rows: Vec<Vec<i32>> = vec![vec![0; w * c]; ay.taps];
    for y in 0..h {
        for (k, row) in rows.iter_mut().enumerate() {
            let sy = ay.index[y * ay.taps + k];
            let s = &src[sy * sw * c..(sy + 1) * sw * c];
            for x in 0..w {
                for ch in 0..c {
                    let mut acc = 0i32;
                    for t in 0..ax.taps {
                        let sx = ax.index[x * ax.taps + t];
                        let wt = if nearest { 1 } else { wx[x * ax.taps + t] };
                        acc += s[sx * c + ch] as i32 * wt;
                    }
                    row[x * c + ch] = acc;
                }
            }
        }
        let o = &mut out[y * w * c..(y + 1) * w * c];
        if nearest {
            o.iter_mut()
                .zip(&rows[0])
                .for_each(|(d, &v)| *d = v.clamp(0, 255) as u8);
            continue;
        }
        // OpenCV's SSE2 bilinear rows (VResizeLinearVec_32s8u) cover a leading run of the
        // row in a 16-bit form that rounds differently; the rest is the scalar form.
        let vec_end = if ay.taps == 2 {
            linear_vector_end(o.len())
        } else {
            0
        };
        for (i, d) in o.iter_mut().enumerate() {
            if i < vec_end {
                let (b0, b1) = (wy[y * 2], wy[y * 2 + 1]);
                let s0 = (rows[0][i] >> 4).clamp(-32768, 32767);
                let s1 = (rows[1][i] >> 4).clamp(-32768, 32767);
                let v = ((s0 * b0) >> 16) + ((s1 * b1) >> 16);
                *d = ((v + 2) >> 2).clamp(0, 255) as u8;
                continue;
            }
            let mut acc = 0i64;
            for (k, row) in rows.iter().enumerate() {
                acc += row[i] as i64 * wy[y * ay.taps + k] as i64;
            }
            *d = ((acc + (1 << 21)) >> 22).clamp(0, 255) as u8;
        }
    }
    out
}

/// How many leading values of a row of `width` values OpenCV's SSE2 bilinear row kernel
/// computes: blocks of 16 while they fit, then blocks of 4 while `x < width − 4`.
fn linear_vector_end(width: usize) -> usize {
    let mut x = 0;
    while x + 16 <= width {
        x += 16;
    }
    while (x as isize) < width as isize - 4 {
        x += 4;
    }
    x
}

fn resize_f32(
    src: &[f32],
    sw: usize,
    c: usize,
    ax: &Axis,
    ay: &Axis,
    w: usize,
    h: usize,
) -> Vec<f32> {
    let mut out = vec![0f32; w * h * c];
    for y in 0..h {
        let o = &mut out[y * w * c..(y + 1) * w * c];
        for k in 0..ay.taps {
            let sy = ay.index[y * ay.taps + k];
            let wy = ay.weight[y * ay.taps + k];
            let s = &src[sy * sw * c..(sy + 1) * sw * c];
            for x in 0..w {
                for ch in 0..c {
                    let mut acc = 0f32;
                    for t in 0..ax.taps {
                        let sx = ax.index[x * ax.taps + t];
                        acc += s[sx * c + ch] * ax.weight[x * ax.taps + t];
                    }
                    o[x * c + ch] += wy * acc;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(w: usize, h: usize, f: impl Fn(usize) -> u8) -> Img {
        Img {
            w,
            h,
            c: 1,
            px: Pixels::U8((0..w * h).map(f).collect()),
        }
    }

    #[test]
    fn same_size_is_identity_and_constants_stay_constant() {
        let a = img(7, 5, |i| (i * 37 % 256) as u8);
        for interp in [
            Interpolation::Nearest,
            Interpolation::Linear,
            Interpolation::Cubic,
            Interpolation::Lanczos,
        ] {
            assert_eq!(resize(&a, 7, 5, interp).px, a.px, "{interp:?}");
            let k = img(6, 4, |_| 200);
            let r = resize(&k, 9, 3, interp);
            match r.px {
                Pixels::U8(v) => assert!(v.iter().all(|&p| p == 200), "{interp:?}: {v:?}"),
                _ => unreachable!(),
            }
        }
    }

    #[test]
    fn linear_halving_averages_pairs() {
        // 4 → 2: centres at 0.5 and 2.5, each the mean of two neighbours
        let a = img(4, 1, |i| [10, 20, 30, 50][i]);
        match resize(&a, 2, 1, Interpolation::Linear).px {
            Pixels::U8(v) => assert_eq!(v, vec![15, 40]),
            _ => unreachable!(),
        }
    }
}

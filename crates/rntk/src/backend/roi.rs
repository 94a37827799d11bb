//! What an ROI pooling kernel computes (CNTK's `roipooling` with `MAX_POOLING`, the
//! pooling of Fast R-CNN), independent of the device; the kernels are in the
//! convolution family (`Convolutions::roi_pool_forward/backward`).
//!
//! An image `(C, H, W)` comes with `R` boxes `(x1, y1, x2, y2)` in the original image's
//! pixels. Box `r` is mapped onto the feature map by `spatial_scale` and rounded (half
//! away from zero), then cut into `out_h × out_w` bins; each bin's output is the maximum
//! of the map's cells in it, per channel. The output of an image is `(R, C, out_h,
//! out_w)`.
//!
//! ```text
//!   start = round(x1·scale)      end = round(x2·scale)      len = max(end − start + 1, 1)
//!   bin p of P:  from start + ⌊p·len/P⌋  to  start + ⌈(p+1)·len/P⌉   (exclusive),
//!                clipped to the map — an empty bin is 0
//! ```
//!
//! CNTK 2.7's CPU kernel (the oracle) does this arithmetic in `size_t`, and rntk does the
//! same (`size_t_of`, wrapping additions), so its results equal CNTK's for every box:
//! a box that starts before the map (a negative coordinate) wraps around, so each bin that
//! starts before the map is empty (rather than clipped to the map's first cell), and a box
//! whose end lies more than one cell before its start spans a huge extent: its first bin
//! reaches from the start to the map's end, the others are empty.
//!
//! `len/P` is computed in the element type, as CNTK does. The maximum is the first cell
//! greater than −FLT_MAX (CNTK's starting value), row by row; that cell alone receives the
//! gradient — except that CNTK's gradient tests each cell against the box in the same
//! unsigned arithmetic, so a box that wrapped (`RoiBox::holds`) passes no gradient back.
//! The boxes get none (the output is piecewise constant in them).

use crate::tensor::Element;

/// The geometry of ROI pooling over one call's images.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RoiGeometry {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// Boxes per image.
    pub rois: usize,
    pub out_h: usize,
    pub out_w: usize,
    /// The feature map's scale relative to the image the boxes are given in.
    pub spatial_scale: f64,
    /// One set of boxes for every image (a static operand) rather than one per image.
    pub shared_rois: bool,
}

/// A box on the feature map, in CNTK's unsigned arithmetic: first row and column and
/// extents (wrapped values where CNTK's wrap).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoiBox {
    pub row: u64,
    pub col: u64,
    pub height: u64,
    pub width: u64,
}

impl RoiBox {
    /// Whether cell `(row, col)` lies in the box as CNTK's gradient tests it, in unsigned
    /// arithmetic: `start <= cell < start + extent`. A box whose start wrapped (it
    /// reaches before the map) or whose extent did (its end lies before its start) holds
    /// no cell, so it passes no gradient back although its bins have values.
    pub fn holds(&self, row: usize, col: usize) -> bool {
        let inside = |v: usize, start: u64, len: u64| {
            (v as u64) >= start && (v as u64) < start.wrapping_add(len)
        };
        inside(row, self.row, self.height) && inside(col, self.col, self.width)
    }
}

/// C's `(size_t)` of a floating value as CNTK's x86-64 build computes it: truncation;
/// a negative value wraps (two's complement); from 2^63 to 2^64 exact; beyond 2^64 (and
/// below −2^63) the conversion's "indefinite" result (0, resp. 2^63); NaN 2^63.
pub fn size_t_of(v: f64) -> u64 {
    const TWO63: f64 = 9_223_372_036_854_775_808.0;
    if v.is_nan() || v <= -TWO63 {
        1 << 63
    } else if v < TWO63 {
        (v as i64) as u64
    } else if v < 2.0 * TWO63 {
        v as u64
    } else {
        0
    }
}

impl RoiGeometry {
    /// Values of one image.
    pub fn in_size(&self) -> usize {
        self.channels * self.height * self.width
    }
    /// Values of one image's boxes.
    pub fn rois_size(&self) -> usize {
        self.rois * 4
    }
    /// Values of one image's output `(R, C, out_h, out_w)`.
    pub fn out_size(&self) -> usize {
        self.rois * self.channels * self.out_h * self.out_w
    }
    /// Box `(x1, y1, x2, y2)` on the map.
    pub fn roi_box<T: Element>(&self, r: &[T]) -> RoiBox {
        let at = |v: T| size_t_of((v.as_f64() * self.spatial_scale).round());
        let (x1, y1, x2, y2) = (at(r[0]), at(r[1]), at(r[2]), at(r[3]));
        let extent = |a: u64, b: u64| b.wrapping_sub(a).wrapping_add(1).max(1);
        RoiBox {
            row: y1,
            col: x1,
            height: extent(y1, y2),
            width: extent(x1, x2),
        }
    }
}

/// Bin `p` of `bins` over a box side starting at `start` of extent `len`, clipped to
/// `limit`: the cells `lo..hi` (empty when `hi <= lo`).
pub fn bin<T: Element>(
    p: usize,
    bins: usize,
    start: u64,
    len: u64,
    limit: usize,
) -> (usize, usize) {
    let cast = |v: u64| <T as num_traits::NumCast>::from(v).unwrap_or_else(T::zero);
    let size = cast(len) / cast(bins as u64);
    let lo = size_t_of((cast(p as u64) * size).floor().as_f64());
    let hi = size_t_of((cast(p as u64 + 1) * size).ceil().as_f64());
    let clip = |v: u64| v.wrapping_add(start).min(limit as u64) as usize;
    (clip(lo), clip(hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(scale: f64) -> RoiGeometry {
        RoiGeometry {
            channels: 1,
            height: 6,
            width: 8,
            rois: 1,
            out_h: 2,
            out_w: 3,
            spatial_scale: scale,
            shared_rois: false,
        }
    }

    #[test]
    fn boxes_round_half_away_from_zero_and_wrap_like_size_t() {
        let b = g(0.5).roi_box(&[1.0f32, 3.0, 13.0, 4.0]);
        // x: round(0.5) = 1 .. round(6.5) = 7 → 7 cells; y: round(1.5) = 2 .. 2 → 1 cell
        assert_eq!((b.row, b.col, b.height, b.width), (2, 1, 1, 7));
        // an end one before the start: one cell; further before: a wrapped extent
        let b = g(1.0).roi_box(&[3.0f64, 3.0, 2.0, 1.0]);
        assert_eq!((b.width, b.height), (1, u64::MAX));
        // a negative start wraps
        assert_eq!(g(1.0).roi_box(&[-2.0f32, 0.0, 3.0, 1.0]).col, u64::MAX - 1);
        assert_eq!(size_t_of(f64::NAN), 1 << 63);
        assert_eq!(size_t_of(1e30), 0);
        assert_eq!(size_t_of(-1.5), u64::MAX);
    }

    #[test]
    fn bins_cover_the_box_and_clip_to_the_map() {
        // 7 cells in 3 bins: 0..3, 2..5, 4..7 (bins overlap where len/P is fractional)
        let b: Vec<_> = (0..3).map(|p| bin::<f64>(p, 3, 0, 7, 8)).collect();
        assert_eq!(b, vec![(0, 3), (2, 5), (4, 7)]);
        // a box running past the map
        assert_eq!(bin::<f32>(1, 2, 6, 6, 8), (8, 8));
        // a box starting 3 cells before the map: bin 0 starts before it and is empty,
        // bin 1 (cells 0..3) is whole
        let start = 3u64.wrapping_neg();
        assert_eq!(bin::<f32>(0, 2, start, 6, 8), (8, 0));
        assert_eq!(bin::<f32>(1, 2, start, 6, 8), (0, 3));
        // more bins than cells: every bin still holds a cell
        let b: Vec<_> = (0..4).map(|p| bin::<f32>(p, 4, 1, 2, 8)).collect();
        assert_eq!(b, vec![(1, 2), (1, 2), (2, 3), (2, 3)]);
        // a wrapped extent: the first bin runs to the map's end, the second is empty
        assert_eq!(bin::<f32>(0, 2, 3, u64::MAX - 1, 6), (3, 6));
        let (lo, hi) = bin::<f32>(1, 2, 3, u64::MAX - 1, 6);
        assert!(hi <= lo, "{lo}..{hi}");
    }
}

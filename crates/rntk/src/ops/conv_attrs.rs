//! The attributes of the convolution-family ops as CNTK states them (per-axis lists in
//! Python order, CNTK's cyclic fill rule for short lists) and their resolution into the
//! device-independent geometries of `backend::conv` for given operand shapes.
//!
//! # Per-axis lists
//!
//! `strides`, `auto_padding`, `dilation`, `lower_pad` and `upper_pad` have one entry per
//! axis of the operand (`(C, H, W)` → 3 entries, channel first). A shorter list is
//! repeated the way CNTK's C++ reads it: in CNTK's reversed axis order, entry `i mod len`.
//! So `[2]` means 2 on every axis, and `[False, True, True]` pads H and W but not C.
//!
//! # Shapes (Python order)
//!
//! ```text
//!   convolution(W, x)             W (O, C/groups, k…)   x (C, s…)  →  (O, out…)     reduction_rank 1
//!                                 W (O, k…)             x (s…)     →  (O, out…)     reduction_rank 0
//!   convolution_transpose(W, x)   W (C, O/groups, k…)   x (C, s…)  →  (O, out…)     out from output_shape,
//!                                                                                   else (s−1)·stride + 1 (padded)
//!                                                                                   or (s−1)·stride + span
//!   pooling(x)                    window (k…) over the last len(k) axes of x; the leading axes are planes
//!   unpooling(u, x)               u the pooling of x: the result has x's shape
//! ```

use crate::backend::conv::{Axes, ConvAxis, ConvGeometry, PoolGeometry, PoolKind};

/// Attributes of `convolution` and `convolution_transpose`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ConvAttrs {
    pub strides: Vec<usize>,
    pub auto_padding: Vec<bool>,
    pub lower_pad: Vec<usize>,
    pub upper_pad: Vec<usize>,
    pub dilation: Vec<usize>,
    pub groups: usize,
    /// 1: the filter contracts the operand's leading (channel) axis; 0: no channel axis.
    pub reduction_rank: usize,
    /// The first spatial axis of the filter runs along the sequence axis.
    pub sequential: bool,
    /// `convolution_transpose` only: the output's shape (all axes, or the spatial ones).
    pub output_shape: Option<Vec<usize>>,
}

impl Default for ConvAttrs {
    fn default() -> Self {
        ConvAttrs {
            strides: vec![1],
            auto_padding: vec![true],
            lower_pad: vec![0],
            upper_pad: vec![0],
            dilation: vec![1],
            groups: 1,
            reduction_rank: 1,
            sequential: false,
            output_shape: None,
        }
    }
}

/// Max or average pooling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PoolingType {
    Max,
    Average,
}

/// Attributes of `pooling` and `unpooling`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PoolAttrs {
    pub kind: PoolingType,
    /// The window over the operand's trailing axes; `None`: global pooling (every axis
    /// but the first, each reduced to 1).
    pub window: Option<Vec<usize>>,
    pub strides: Vec<usize>,
    pub auto_padding: Vec<bool>,
    pub lower_pad: Vec<usize>,
    pub upper_pad: Vec<usize>,
    /// Add a last, partial window.
    pub ceil_out_dim: bool,
    /// Average pooling: divide by the full window size (padding counts as zeros).
    pub include_pad: bool,
}

impl PoolAttrs {
    /// CNTK's defaults: stride 1, no padding.
    pub fn new(kind: PoolingType, window: Option<Vec<usize>>) -> Self {
        PoolAttrs {
            kind,
            window,
            strides: vec![1],
            auto_padding: vec![false],
            lower_pad: vec![0],
            upper_pad: vec![0],
            ceil_out_dim: false,
            include_pad: false,
        }
    }
    pub fn pool_kind(&self) -> PoolKind {
        match self.kind {
            PoolingType::Max => PoolKind::Max,
            PoolingType::Average => PoolKind::Average {
                include_pad: self.include_pad,
            },
        }
    }
}

/// Entry for Python axis `p` of `rank` axes under CNTK's cyclic rule (`default` when empty).
pub fn per_axis<T: Copy>(list: &[T], rank: usize, p: usize, default: T) -> T {
    let len = list.len();
    if len == 0 {
        return default;
    }
    list[len - 1 - ((rank - 1 - p) % len)]
}

/// The per-axis lists: strides, auto_padding, lower_pad, upper_pad, dilation.
type Lists<'a> = (
    &'a [usize],
    &'a [bool],
    &'a [usize],
    &'a [usize],
    &'a [usize],
);

/// One axis from its input size, kernel and the attributes of Python axis `p`.
#[allow(clippy::too_many_arguments)]
fn axis(
    input: usize,
    kernel: usize,
    p: usize,
    rank: usize,
    (strides, auto, lower, upper, dilation): Lists,
    (ceil, short_ok): (bool, bool),
) -> Result<ConvAxis, String> {
    let stride = per_axis(strides, rank, p, 1);
    let dil = per_axis(dilation, rank, p, 1);
    if stride == 0 || dil == 0 {
        return Err(format!("axis {p}: strides and dilation must be ≥ 1"));
    }
    let a = if per_axis(auto, rank, p, false) && short_ok {
        ConvAxis::sequence_padded(input, kernel, stride, dil)
    } else if per_axis(auto, rank, p, false) {
        ConvAxis::auto_padded(input, kernel, stride, dil, ceil)
    } else {
        let pads = (per_axis(lower, rank, p, 0), per_axis(upper, rank, p, 0));
        ConvAxis::explicit(input, kernel, stride, dil, pads, ceil)
    };
    a.ok_or_else(|| {
        format!("axis {p}: the kernel ({kernel}, dilation {dil}) does not fit the input ({input})")
    })
}

/// Convolution geometry and output shape of `convolution(W, x)` (`transpose`: of
/// `convolution_transpose`, whose geometry is that of the convolution it transposes:
/// from its output to its operand). `x` is the per-step sample shape.
pub fn conv_geometry(
    a: &ConvAttrs,
    w: &[usize],
    x: &[usize],
    transpose: bool,
) -> Result<(ConvGeometry, Vec<usize>), String> {
    conv_geometry_seq(a, w, x, transpose, false)
}

/// [`conv_geometry`]; `seq`: the first spatial axis is a sequence axis, padded per
/// sequence even when the kernel is longer than the sequence.
pub fn conv_geometry_seq(
    a: &ConvAttrs,
    w: &[usize],
    x: &[usize],
    transpose: bool,
    seq: bool,
) -> Result<(ConvGeometry, Vec<usize>), String> {
    let rr = a.reduction_rank;
    if rr > 1 {
        return Err(format!("reduction_rank must be 0 or 1, got {rr}"));
    }
    if a.groups == 0 {
        return Err("groups must be ≥ 1".into());
    }
    if w.len() != x.len() + 1 {
        return Err(format!(
            "the filter {w:?} must have one axis more than the operand {x:?} (the output channels first)"
        ));
    }
    let m = x.len() - rr;
    if m == 0 || m > 3 {
        return Err(format!(
            "1 to 3 spatial axes are supported, the operand {x:?} has {m} (reduction_rank {rr})"
        ));
    }
    let (lead, kc) = (w[0], if rr == 1 { w[1] } else { 1 });
    let xc = if rr == 1 { x[0] } else { 1 };
    if rr == 0 && a.groups != 1 {
        return Err("groups need a channel axis (reduction_rank 1)".into());
    }
    // convolution: W (O, C/g, k…), x (C, …); transpose: W (C, O/g, k…), x (C, …)
    let (in_ch, out_ch) = if transpose {
        if lead != xc {
            return Err(format!(
                "the filter's first axis ({lead}) must equal the operand's channels ({xc})"
            ));
        }
        (kc * a.groups, xc)
    } else {
        if kc * a.groups != xc {
            return Err(format!(
                "the filter's channel axis ({kc}) × groups ({}) must equal the operand's channels ({xc})",
                a.groups
            ));
        }
        (xc, lead)
    };
    if !out_ch.is_multiple_of(a.groups) {
        return Err(format!(
            "groups: the {out_ch} output channels are not divisible into {} groups",
            a.groups
        ));
    }
    let rank = x.len();
    // (a transposed convolution's channel axis is its output's: CNTK ignores its padding)
    if rr == 1 && xc > 1 && !transpose {
        if per_axis(&a.auto_padding, rank, 0, false) {
            return Err(
                "padding over the channel axis (set auto_padding False for the channel axis, e.g. [False, True, True])"
                    .into(),
            );
        }
        if per_axis(&a.lower_pad, rank, 0, 0) + per_axis(&a.upper_pad, rank, 0, 0) > 0 {
            return Err("padding over the channel axis is not supported".into());
        }
    }
    let lists = (
        &a.strides[..],
        &a.auto_padding[..],
        &a.lower_pad[..],
        &a.upper_pad[..],
        &a.dilation[..],
    );
    let target = match (&a.output_shape, transpose) {
        (Some(s), true) if s.len() == m || s.len() == rank => Some(&s[s.len() - m..]),
        (Some(s), true) => {
            return Err(format!(
                "output_shape {s:?} must list the {m} spatial axes or all {rank} axes"
            ))
        }
        _ => None,
    };
    let mut axes = Axes::new();
    let mut out = vec![if transpose { in_ch } else { out_ch }];
    for i in 0..m {
        let p = rr + i;
        let k = w[1 + p];
        let ax = if transpose {
            let s = x[p];
            let stride = per_axis(&a.strides, rank, p, 1).max(1);
            let span = (k.saturating_sub(1)) * per_axis(&a.dilation, rank, p, 1) + 1;
            let big = match target {
                Some(t) => t[i],
                None if per_axis(&a.auto_padding, rank, p, false) => (s - 1) * stride + 1,
                None => (s - 1) * stride + span,
            };
            let ax = axis(big, k, p, rank, lists, (false, false))?;
            if ax.output != s {
                return Err(format!(
                    "axis {p}: an output of size {big} does not map back to the operand's {s}"
                ));
            }
            out.push(big);
            ax
        } else {
            let ax = axis(x[p], k, p, rank, lists, (false, seq && i == 0))?;
            out.push(ax.output);
            ax
        };
        axes.push(ax);
    }
    let g = ConvGeometry {
        axes,
        in_channels: in_ch,
        out_channels: out_ch,
        groups: a.groups,
    };
    g.check()?;
    Ok((g, out))
}

/// Pooling geometry and output shape for a sample of shape `x`.
pub fn pool_geometry(a: &PoolAttrs, x: &[usize]) -> Result<(PoolGeometry, Vec<usize>), String> {
    let rank = x.len();
    let global = a.window.is_none();
    let window: Vec<usize> = match &a.window {
        Some(w) => w.clone(),
        None if rank >= 2 => x[1..].to_vec(),
        None => x.to_vec(),
    };
    let m = window.len();
    if m == 0 || m > rank {
        return Err(format!(
            "the window {window:?} must have 1 to {rank} axes (the operand is {x:?})"
        ));
    }
    // window axes of size 1 in front of the last 3 pool nothing: they count as planes
    let extra = m.saturating_sub(3);
    if window[..extra].iter().any(|&k| k != 1) {
        return Err(format!(
            "pooling over {m} axes ({window:?}): at most 3 are supported"
        ));
    }
    let eff = m - extra;
    let first = rank - eff;
    let (strides, auto, lower, upper): (&[usize], &[bool], &[usize], &[usize]) = if global {
        (&[1], &[false], &[0], &[0])
    } else {
        (&a.strides, &a.auto_padding, &a.lower_pad, &a.upper_pad)
    };
    let mut axes = Axes::new();
    let mut out = x[..first].to_vec();
    for p in first..rank {
        let k = window[m - (rank - p)];
        let ax = axis(
            x[p],
            k,
            p,
            rank,
            (strides, auto, lower, upper, &[1]),
            (a.ceil_out_dim, false),
        )?;
        out.push(ax.output);
        axes.push(ax);
    }
    let g = PoolGeometry {
        axes,
        planes: x[..first].iter().product(),
    };
    Ok((g, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_lists_repeat_from_the_end_as_cntk_reads_them() {
        // [False, True] over (C, H, W): CNTK's reversed order W→True, H→False, C→True
        assert!(per_axis(&[false, true], 3, 2, false));
        assert!(!per_axis(&[false, true], 3, 1, false));
        assert!(per_axis(&[false, true], 3, 0, false));
        assert_eq!(per_axis(&[2usize], 3, 0, 1), 2);
        assert_eq!(per_axis(&[1usize, 2, 3], 3, 0, 1), 1);
        assert_eq!(per_axis::<usize>(&[], 3, 0, 7), 7);
    }

    #[test]
    fn transposed_output_sizes_follow_cntk() {
        let a = ConvAttrs {
            strides: vec![1, 2, 2],
            auto_padding: vec![false, true, true],
            ..Default::default()
        };
        let (_, out) = conv_geometry(&a, &[3, 2, 3, 3], &[3, 4, 4], true).unwrap();
        assert_eq!(out, vec![2, 7, 7]);
        let a = ConvAttrs {
            output_shape: Some(vec![2, 8, 8]),
            ..a
        };
        let (_, out) = conv_geometry(&a, &[3, 2, 3, 3], &[3, 4, 4], true).unwrap();
        assert_eq!(out, vec![2, 8, 8]);
        let a = ConvAttrs {
            output_shape: Some(vec![2, 12, 8]),
            ..a
        };
        assert!(conv_geometry(&a, &[3, 2, 3, 3], &[3, 4, 4], true).is_err());
    }

    #[test]
    fn channel_padding_is_refused_with_more_than_one_channel() {
        let a = ConvAttrs::default();
        assert!(conv_geometry(&a, &[3, 2, 3, 3], &[2, 5, 6], false)
            .unwrap_err()
            .contains("channel axis"));
        let (_, out) = conv_geometry(&a, &[2, 1, 3, 3], &[1, 5, 6], false).unwrap();
        assert_eq!(out, vec![2, 5, 6]);
    }
}

//! What a convolution or pooling kernel computes, independent of the device: the geometry
//! of one spatial axis (with CNTK's centring rule for automatic padding), of a convolution
//! (channels, groups, filter layout) and of a pooling window. Every backend's convolution
//! and pooling kernels take these; a cuDNN backend turns them into descriptors.
//!
//! # One axis
//!
//! Output position `o` reads the input positions `o·stride + j·dilation − pad` for the
//! taps `j = 0..kernel`; positions outside `0..input` read zero (convolution) or are
//! skipped (pooling). `pad` may be negative: the first window then starts inside.
//!
//! ```text
//!   input 6, kernel 3, stride 2, CNTK auto padding       input 7, kernel 3, stride 4
//!   pad ┆ 0  1  2  3  4  5 ┆                             0  1  2  3  4  5  6
//!   [ ·   0  1 ]            out 0 (centre 0)             [0  1  2]              out 0 (centre 1)
//!         [ 1  2  3 ]       out 1 (centre 2)                         [4  5  6]  out 1 (centre 5)
//!               [ 3  4  5 ] out 2 (centre 4)
//! ```
//!
//! CNTK's automatic padding gives ⌈input/stride⌉ outputs; with `cells = (out − 1)·stride + 1`
//! the first centre is `(input − cells)/2` and a window starts `(span − 1)/2` before its
//! centre (`span = (kernel − 1)·dilation + 1`). So input 6, kernel 3, stride 2 pads one
//! before and none after, where ONNX's SAME_UPPER pads none before and one after.
//!
//! # Layouts (row-major, Python order)
//!
//! An image is `(C, spatial…)`, a batch `(N, C, spatial…)`; a filter `(O, C/groups,
//! kernel…)`; the output `(N, O, out…)`. Group `g` maps input channels
//! `g·C/groups ..` to output channels `g·O/groups ..`.

use super::memory::{Memory, Par};
use super::roi::RoiGeometry;
use crate::tensor::Element;
use smallvec::SmallVec;

/// The geometry of one spatial axis of a convolution or pooling window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvAxis {
    pub input: usize,
    pub output: usize,
    pub kernel: usize,
    pub stride: usize,
    pub dilation: usize,
    /// The first tap of output 0 reads input position `−pad`.
    pub pad: isize,
}

impl ConvAxis {
    /// An axis of extent 1 that maps 1 → 1 (how lower-rank geometries fill up to 3 axes).
    pub const UNIT: ConvAxis = ConvAxis {
        input: 1,
        output: 1,
        kernel: 1,
        stride: 1,
        dilation: 1,
        pad: 0,
    };

    /// Extent of one window: `(kernel − 1)·dilation + 1`.
    pub fn span(&self) -> usize {
        (self.kernel - 1) * self.dilation + 1
    }

    /// Input position of tap `j` of output `o` (may lie outside `0..input`).
    #[inline(always)]
    pub fn at(&self, o: usize, j: usize) -> isize {
        (o * self.stride + j * self.dilation) as isize - self.pad
    }

    /// CNTK's automatic padding (`auto_padding=True` on this axis). `None` when the kernel
    /// is larger than the input (CNTK refuses that even with padding) or a size is 0.
    pub fn auto_padded(
        input: usize,
        kernel: usize,
        stride: usize,
        dilation: usize,
        ceil: bool,
    ) -> Option<ConvAxis> {
        if kernel > input {
            return None;
        }
        Self::auto_padded_any(input, kernel, stride, dilation, ceil)
    }

    /// CNTK's automatic padding along a sequence axis (sequential convolution): ⌈T/stride⌉
    /// outputs, the window of output `o` starting `(span − 1)/2` before `o·stride` — no
    /// centring shift (observed with CNTK 2.7: stride 3, kernel 2, T = 3 starts at 0, where
    /// the static-axis rule would start at −1) — and a kernel longer than a short sequence
    /// is padded on both sides.
    pub fn sequence_padded(
        input: usize,
        kernel: usize,
        stride: usize,
        dilation: usize,
    ) -> Option<ConvAxis> {
        if input == 0 || kernel == 0 || stride == 0 || dilation == 0 {
            return None;
        }
        let span = (kernel - 1) * dilation + 1;
        Some(ConvAxis {
            input,
            output: input.div_ceil(stride),
            kernel,
            stride,
            dilation,
            pad: ((span - 1) / 2) as isize,
        })
    }

    /// CNTK's automatic padding without its kernel ≤ input check.
    fn auto_padded_any(
        input: usize,
        kernel: usize,
        stride: usize,
        dilation: usize,
        ceil: bool,
    ) -> Option<ConvAxis> {
        if input == 0 || kernel == 0 || stride == 0 || dilation == 0 {
            return None;
        }
        let span = (kernel - 1) * dilation + 1;
        let output = if ceil {
            (input - 1).div_ceil(stride) + 1
        } else {
            (input - 1) / stride + 1
        };
        // (integer division truncating toward zero, as CNTK's C++ does)
        let extra = input as isize - ((output - 1) * stride + 1) as isize;
        let pad = (span as isize - 1) / 2 - extra / 2;
        Some(ConvAxis {
            input,
            output,
            kernel,
            stride,
            dilation,
            pad,
        })
    }

    /// Explicit padding `lower`/`upper` (both 0: no padding, CNTK's `auto_padding=False`).
    /// `ceil` adds a last partial window (pooling's `ceil_out_dim`). `None` when no window
    /// fits or a size is 0.
    pub fn explicit(
        input: usize,
        kernel: usize,
        stride: usize,
        dilation: usize,
        (lower, upper): (usize, usize),
        ceil: bool,
    ) -> Option<ConvAxis> {
        if input == 0 || kernel == 0 || stride == 0 || dilation == 0 {
            return None;
        }
        let span = (kernel - 1).checked_mul(dilation)? + 1;
        let padded = input.checked_add(lower)?.checked_add(upper)?;
        if span > padded || kernel > input + lower + upper {
            return None;
        }
        let room = padded - span;
        let output = if ceil {
            room.div_ceil(stride) + 1
        } else {
            room / stride + 1
        };
        Some(ConvAxis {
            input,
            output,
            kernel,
            stride,
            dilation,
            pad: lower as isize,
        })
    }

    /// The outputs `o` whose tap `j` reads inside the input: `lo..hi` (possibly empty).
    #[inline]
    pub fn valid_outputs(&self, j: usize) -> (usize, usize) {
        // o·s + j·d − pad ∈ [0, input)  ⇔  o ∈ [⌈(pad − j·d)/s⌉, ⌈(input + pad − j·d)/s⌉)
        let s = self.stride as isize;
        let off = self.pad - (j * self.dilation) as isize;
        let lo = ceil_div(off, s).max(0);
        let hi = ceil_div(self.input as isize + off, s).clamp(0, self.output as isize);
        (lo as usize, (hi.max(lo)) as usize)
    }
}

fn ceil_div(a: isize, b: isize) -> isize {
    let q = a.div_euclid(b);
    if a.rem_euclid(b) != 0 {
        q + 1
    } else {
        q
    }
}

/// Up to three spatial axes, outermost first.
pub type Axes = SmallVec<[ConvAxis; 3]>;

/// A convolution of `(C, spatial…)` images with `(O, C/groups, kernel…)` filters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvGeometry {
    pub axes: Axes,
    pub in_channels: usize,
    pub out_channels: usize,
    pub groups: usize,
}

impl ConvGeometry {
    /// Values of one input image.
    pub fn in_size(&self) -> usize {
        self.in_channels * self.in_spatial()
    }
    /// Values of one output image.
    pub fn out_size(&self) -> usize {
        self.out_channels * self.out_spatial()
    }
    pub fn in_spatial(&self) -> usize {
        self.axes.iter().map(|a| a.input).product()
    }
    pub fn out_spatial(&self) -> usize {
        self.axes.iter().map(|a| a.output).product()
    }
    /// Taps of one filter over one channel.
    pub fn kernel_size(&self) -> usize {
        self.axes.iter().map(|a| a.kernel).product()
    }
    /// Input channels per group.
    pub fn cg(&self) -> usize {
        self.in_channels / self.groups
    }
    /// Output channels per group.
    pub fn og(&self) -> usize {
        self.out_channels / self.groups
    }
    /// Values of the filter tensor.
    pub fn filter_size(&self) -> usize {
        self.out_channels * self.cg() * self.kernel_size()
    }
    /// Whether every axis is 1 tap, stride 1, no padding: the convolution is a product.
    pub fn is_pointwise(&self) -> bool {
        self.axes
            .iter()
            .all(|a| a.kernel == 1 && a.stride == 1 && a.pad == 0 && a.input == a.output)
    }
    /// Multiply-adds of one image's forward pass.
    pub fn macs_per_image(&self) -> usize {
        self.out_size() * self.cg() * self.kernel_size()
    }
    /// Consistent sizes (channels divisible by groups, 1 to 3 axes, outputs reachable).
    pub fn check(&self) -> Result<(), String> {
        if self.axes.is_empty() || self.axes.len() > 3 {
            return Err(format!(
                "1 to 3 spatial axes are supported, got {}",
                self.axes.len()
            ));
        }
        if self.groups == 0
            || !self.in_channels.is_multiple_of(self.groups)
            || !self.out_channels.is_multiple_of(self.groups)
        {
            return Err(format!(
                "{} input and {} output channels are not divisible into {} groups",
                self.in_channels, self.out_channels, self.groups
            ));
        }
        for a in &self.axes {
            if a.input == 0 || a.output == 0 || a.kernel == 0 || a.stride == 0 || a.dilation == 0 {
                return Err(format!("an empty axis: {a:?}"));
            }
        }
        Ok(())
    }
    /// The axes filled up to 3 with unit axes in front (kernels loop over 3 axes).
    pub fn axes3(&self) -> [ConvAxis; 3] {
        axes3(&self.axes)
    }
}

/// `axes` filled up to 3 with unit axes in front.
pub fn axes3(axes: &[ConvAxis]) -> [ConvAxis; 3] {
    let mut a = [ConvAxis::UNIT; 3];
    let off = 3 - axes.len().min(3);
    for (i, x) in axes.iter().take(3).enumerate() {
        a[off + i] = *x;
    }
    a
}

/// What a pooling window computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    Max,
    /// The mean over the window: of the cells inside the input, or (`include_pad`) the
    /// window's sum divided by its full size.
    Average {
        include_pad: bool,
    },
}

/// Pooling over the trailing `axes` of `(planes, spatial…)` images, every plane on its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolGeometry {
    pub axes: Axes,
    /// Leading values not pooled over (channels): each is pooled separately.
    pub planes: usize,
}

impl PoolGeometry {
    pub fn in_spatial(&self) -> usize {
        self.axes.iter().map(|a| a.input).product()
    }
    pub fn out_spatial(&self) -> usize {
        self.axes.iter().map(|a| a.output).product()
    }
    pub fn in_size(&self) -> usize {
        self.planes * self.in_spatial()
    }
    pub fn out_size(&self) -> usize {
        self.planes * self.out_spatial()
    }
    pub fn axes3(&self) -> [ConvAxis; 3] {
        axes3(&self.axes)
    }
}

/// The convolution kernel family: what a device provides for the convolution, pooling and
/// unpooling ops. Each call covers `n` images laid out as the module doc says, in the
/// device's own views; `accumulate` adds into the output instead of overwriting it; `par`
/// is the parallelism the caller granted (a kernel splits only when it allows and the
/// work is above the device's threshold). Results may depend on `par` (a filter
/// gradient's partial sums are added in thread order) but never on scheduling.
pub trait Convolutions: Memory {
    /// `y (+)= conv(x, w)`.
    #[allow(clippy::too_many_arguments)]
    fn conv_forward<T: Element>(
        &self,
        g: &ConvGeometry,
        n: usize,
        x: Self::Ref<'_, T>,
        w: Self::Ref<'_, T>,
        y: Self::Mut<'_, T>,
        accumulate: bool,
        par: Par,
    );
    /// `dx (+)= convᵀ(dy, w)` (also the forward of a transposed convolution).
    #[allow(clippy::too_many_arguments)]
    fn conv_backward_data<T: Element>(
        &self,
        g: &ConvGeometry,
        n: usize,
        dy: Self::Ref<'_, T>,
        w: Self::Ref<'_, T>,
        dx: Self::Mut<'_, T>,
        accumulate: bool,
        par: Par,
    );
    /// `dw (+)= Σ over images of patches(x)·dyᵀ`.
    #[allow(clippy::too_many_arguments)]
    fn conv_backward_filter<T: Element>(
        &self,
        g: &ConvGeometry,
        n: usize,
        x: Self::Ref<'_, T>,
        dy: Self::Ref<'_, T>,
        dw: Self::Mut<'_, T>,
        accumulate: bool,
        par: Par,
    );
    /// `y = pool(x)` (`kind_n`: the window's kind and the images).
    fn pool_forward<T: Element>(
        &self,
        g: &PoolGeometry,
        kind_n: (PoolKind, usize),
        x: Self::Ref<'_, T>,
        y: Self::Mut<'_, T>,
        par: Par,
    );
    /// `dx (+)= ∂pool/∂x · dy`.
    #[allow(clippy::too_many_arguments)]
    fn pool_backward<T: Element>(
        &self,
        g: &PoolGeometry,
        kind_n: (PoolKind, usize),
        x: Self::Ref<'_, T>,
        dy: Self::Ref<'_, T>,
        dx: Self::Mut<'_, T>,
        accumulate: bool,
        par: Par,
    );
    /// Max unpooling of `u` to the windows' first maxima of `x` (the pooling input):
    /// `u_x = (u, x)`.
    fn unpool_forward<T: Element>(
        &self,
        g: &PoolGeometry,
        n: usize,
        u_x: (Self::Ref<'_, T>, Self::Ref<'_, T>),
        y: Self::Mut<'_, T>,
        par: Par,
    );
    /// `du (+)=` the derivative of [`Convolutions::unpool_forward`] with respect to `u`.
    #[allow(clippy::too_many_arguments)]
    fn unpool_backward<T: Element>(
        &self,
        g: &PoolGeometry,
        n: usize,
        x: Self::Ref<'_, T>,
        dy: Self::Ref<'_, T>,
        du: Self::Mut<'_, T>,
        accumulate: bool,
        par: Par,
    );
    /// ROI max pooling of `n` images `x` with their boxes `rois` (`backend::roi`):
    /// `y = roipool(x, rois)`.
    fn roi_pool_forward<T: Element>(
        &self,
        g: &RoiGeometry,
        n: usize,
        x_rois: (Self::Ref<'_, T>, Self::Ref<'_, T>),
        y: Self::Mut<'_, T>,
        par: Par,
    );
    /// `dx (+)= ∂roipool/∂x · dy`: each output's gradient to its bin's maximum.
    #[allow(clippy::too_many_arguments)]
    fn roi_pool_backward<T: Element>(
        &self,
        g: &RoiGeometry,
        n: usize,
        x_rois: (Self::Ref<'_, T>, Self::Ref<'_, T>),
        dy: Self::Ref<'_, T>,
        dx: Self::Mut<'_, T>,
        accumulate: bool,
        par: Par,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows(a: &ConvAxis) -> Vec<Vec<isize>> {
        (0..a.output)
            .map(|o| (0..a.kernel).map(|j| a.at(o, j)).collect())
            .collect()
    }

    #[test]
    fn cntk_auto_padding_matches_observed_windows() {
        // observed with CNTK 2.7 (ones-filter over 2^i inputs, tests/fixtures/cntk_conv)
        let a = ConvAxis::auto_padded(6, 3, 2, 1, false).unwrap();
        assert_eq!(
            windows(&a),
            vec![vec![-1, 0, 1], vec![1, 2, 3], vec![3, 4, 5]]
        );
        let a = ConvAxis::auto_padded(7, 3, 4, 1, false).unwrap();
        assert_eq!(windows(&a), vec![vec![0, 1, 2], vec![4, 5, 6]]);
        let a = ConvAxis::auto_padded(8, 3, 3, 1, false).unwrap();
        assert_eq!(a.output, 3);
        assert_eq!(a.at(0, 0), -1);
        let a = ConvAxis::auto_padded(9, 4, 3, 1, false).unwrap();
        assert_eq!(windows(&a)[0], vec![0, 1, 2, 3]);
        let a = ConvAxis::auto_padded(7, 2, 2, 1, false).unwrap();
        assert_eq!(a.output, 4);
        assert_eq!(a.at(3, 0), 6);
        let a = ConvAxis::auto_padded(6, 4, 1, 1, false).unwrap();
        assert_eq!((a.output, a.pad), (6, 1));
        assert!(ConvAxis::auto_padded(3, 5, 1, 1, false).is_none());
    }

    #[test]
    fn explicit_padding_and_ceil() {
        let a = ConvAxis::explicit(5, 2, 2, 1, (0, 0), false).unwrap();
        assert_eq!(a.output, 2);
        let a = ConvAxis::explicit(5, 2, 2, 1, (0, 0), true).unwrap();
        assert_eq!(a.output, 3);
        let a = ConvAxis::explicit(6, 3, 1, 2, (1, 2), false).unwrap();
        assert_eq!((a.output, a.pad, a.span()), (5, 1, 5));
        assert!(ConvAxis::explicit(3, 5, 1, 1, (0, 0), false).is_none());
    }

    #[test]
    fn valid_outputs_are_exactly_the_in_range_taps() {
        for input in 1..9 {
            for kernel in 1..=input.min(4) {
                for stride in 1..4 {
                    for dilation in 1..3 {
                        for a in [
                            ConvAxis::auto_padded(input, kernel, stride, dilation, false),
                            ConvAxis::explicit(input, kernel, stride, dilation, (1, 2), false),
                        ]
                        .into_iter()
                        .flatten()
                        {
                            for j in 0..kernel {
                                let (lo, hi) = a.valid_outputs(j);
                                for o in 0..a.output {
                                    let p = a.at(o, j);
                                    let inside = p >= 0 && (p as usize) < input;
                                    assert_eq!(inside, o >= lo && o < hi, "{a:?} j {j} o {o}");
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

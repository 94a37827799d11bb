//! Convolution, transposed convolution, pooling and max unpooling → ONNX `Conv`,
//! `ConvTranspose`, `MaxPool` / `AveragePool`, `GlobalMaxPool` / `GlobalAveragePool` and
//! `MaxPool` + `MaxUnpool`, with CNTK's automatic padding written as explicit `pads`.
//!
//! # Images
//!
//! ONNX's operators take `[N, C, spatial…]`. rntk's operands are `[dyn…, sample…]`:
//! the dynamic dimensions (batch, or sequence × batch) merge into `N`, the sample's
//! leading axes (channels; for pooling every axis before the window) into `C`:
//!
//! ```text
//!   [batch, C, H, W]          → as it is                    → [batch, O, H', W']
//!   [seq, batch, C, H, W]     → Reshape [-1, C, H, W]       → Reshape [seq, batch, O, H', W']
//!   [batch, W] (no channels)  → Reshape [-1, 1, W]          → [batch, O, W']
//! ```
//!
//! # Padding
//!
//! rntk's geometry (`backend::conv::ConvAxis`) states per axis where the first window
//! starts (`−pad`, CNTK's centring rule for automatic padding, possibly inside the
//! input) and how many windows there are. ONNX's `pads` are non-negative and its
//! output count is `⌊(in + lo + hi − span)/stride⌋ + 1`. So per axis:
//!
//! ```text
//!   pad ≥ 0:  lo = pad                      pad < 0: crop −pad cells in front, lo = 0
//!   end of the last window e = (out − 1)·stride + span − lo   (in cropped coordinates)
//!   e ≥ in:   hi = e − in                   e < in:  crop the unread tail, hi = 0
//! ```
//!
//! With `hi` reaching the end of the last window, pooling's `ceil_out_dim` needs no
//! `ceil_mode`, and `AveragePool`'s `count_include_pad` divides by the full window as
//! CNTK's `include_pad` does. A transposed convolution is the adjoint of the
//! convolution from its output to its operand: the same `lo`/`hi`, and output cells
//! no tap reaches (a negative pad, or a larger `output_shape`) are written as zeros
//! by a `Pad` node.
//!
//! # Refused
//!
//! A sequential convolution (its kernel runs along the sequence axis, per sequence);
//! pooling pads of a whole window or more (windows that read nothing: onnxruntime
//! refuses them, and their value differs: CNTK gives 0, ONNX the lowest float).

use super::super::builder::{attr_i, attr_ints};
use super::{Ex, XV};
use crate::backend::conv::ConvAxis;
use crate::error::Result;
use crate::ops::conv_attrs::{conv_geometry, pool_geometry};
use crate::ops::{ConvAttrs, PoolAttrs, PoolingType};

/// A pooling window over an operand: the first window axis, the axes, their ONNX form
/// and the output shape.
type PoolForm = (usize, Vec<ConvAxis>, Vec<AxisPads>, Vec<usize>);

/// How one axis is written: cells cropped from the operand, ONNX `pads`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct AxisPads {
    crop_lo: usize,
    crop_hi: usize,
    lo: usize,
    hi: usize,
}

impl AxisPads {
    /// The ONNX form of axis `a` (windows from its input to its output).
    fn of(a: &ConvAxis) -> AxisPads {
        let (crop_lo, lo) = if a.pad < 0 {
            ((-a.pad) as usize, 0)
        } else {
            (0, a.pad as usize)
        };
        let input = (a.input - crop_lo.min(a.input)) as isize;
        let end = ((a.output - 1) * a.stride + a.span()) as isize - lo as isize;
        let (crop_hi, hi) = if end >= input {
            (0, (end - input) as usize)
        } else {
            ((input - end) as usize, 0)
        };
        AxisPads {
            crop_lo,
            crop_hi,
            lo,
            hi,
        }
    }
}

/// ONNX's `pads` (all begins, then all ends).
fn pads_attr(p: &[AxisPads]) -> Vec<i64> {
    let mut v: Vec<i64> = p.iter().map(|a| a.lo as i64).collect();
    v.extend(p.iter().map(|a| a.hi as i64));
    v
}

fn ints(v: impl IntoIterator<Item = usize>) -> Vec<i64> {
    v.into_iter().map(|x| x as i64).collect()
}

impl Ex<'_> {
    /// `x` as an ONNX image batch `[N, C, spatial…]` whose `C` merges the sample's
    /// first `first` axes (a unit axis when `first` is 0).
    fn images(&mut self, x: &XV, first: usize) -> String {
        if x.ndyn() == 1 && first == 1 {
            return x.name.clone();
        }
        let d = x.shape.dims();
        let mut t = vec![-1, d[..first].iter().product::<usize>() as i64];
        t.extend(ints(d[first..].iter().copied()));
        self.g.reshape(&x.name, &t)
    }

    /// The ONNX result `y` (`[N, C, spatial…]`) in `x`'s dynamic layout with sample
    /// dims `out`.
    fn images_back(&mut self, y: &str, x: &XV, out: &[usize], y_rank: usize) -> String {
        match x.ndyn() {
            1 if y_rank == 1 + out.len() => y.to_string(),
            0 => self.g.reshape(y, &ints(out.iter().copied())),
            nd => {
                let lead = self.g.shape_part(&x.name, 0, nd as i64);
                let rest = self.g.i64s(&ints(out.iter().copied()));
                let shape = self
                    .g
                    .op("Concat", &[&lead, &rest], vec![attr_i("axis", 0)]);
                self.g.op("Reshape", &[y, &shape], vec![])
            }
        }
    }

    /// `x` (`[N, C, spatial…]`, spatial sizes `sizes`) with the crops of `p` applied.
    fn crop(&mut self, x: &str, p: &[AxisPads], sizes: &[usize]) -> String {
        if p.iter().all(|a| a.crop_lo == 0 && a.crop_hi == 0) {
            return x.to_string();
        }
        let starts = ints(p.iter().map(|a| a.crop_lo));
        let ends = ints(p.iter().zip(sizes).map(|(a, &s)| s - a.crop_hi));
        let axes = ints((0..p.len()).map(|i| i + 2));
        self.g.slice(x, &starts, &ends, &axes)
    }

    /// `convolution(W, x)` (`transpose`: `convolution_transpose`) → `Conv` /
    /// `ConvTranspose`.
    pub fn convolution(
        &mut self,
        n: usize,
        ins: &[XV],
        a: &ConvAttrs,
        transpose: bool,
    ) -> Result<String> {
        if a.sequential {
            return Err(self.err(
                n,
                "a sequential convolution (its kernel runs along the sequence axis, each \
                 sequence padded on its own) has no ONNX form rntk writes",
            ));
        }
        let (w, x) = (&ins[0], &ins[1]);
        let (g, out) = conv_geometry(a, w.shape.dims(), x.shape.dims(), transpose)
            .map_err(|d| self.err(n, d))?;
        let m = g.axes.len();
        let rr = a.reduction_rank;
        let xi = self.images(x, rr);
        let mut wname = w.name.clone();
        if rr == 0 {
            // W (O, k…) → (O, 1, k…)
            wname = self.g.unsqueeze(&wname, &[1]);
        }
        let p: Vec<AxisPads> = g.axes.iter().map(AxisPads::of).collect();
        let kernel = ints(g.axes.iter().map(|a| a.kernel));
        let attrs = vec![
            attr_ints("kernel_shape", &kernel),
            attr_ints("strides", &ints(g.axes.iter().map(|a| a.stride))),
            attr_ints("dilations", &ints(g.axes.iter().map(|a| a.dilation))),
            attr_ints("pads", &pads_attr(&p)),
            attr_i("group", a.groups as i64),
        ];
        let y = if transpose {
            // the convolution from the output (size a.input) to the operand (a.output):
            // the cropped cells of that convolution's input are zeros of this output
            let t = self.g.op("ConvTranspose", &[&xi, &wname], attrs);
            self.zero_fill(&t, &p)
        } else {
            let sizes: Vec<usize> = g.axes.iter().map(|a| a.input).collect();
            let xc = self.crop(&xi, &p, &sizes);
            self.g.op("Conv", &[&xc, &wname], attrs)
        };
        Ok(self.images_back(&y, x, &out, 2 + m))
    }

    /// `y` with the crops of `p` put back as zeros (a `Pad` node).
    fn zero_fill(&mut self, y: &str, p: &[AxisPads]) -> String {
        if p.iter().all(|a| a.crop_lo == 0 && a.crop_hi == 0) {
            return y.to_string();
        }
        let mut pads = vec![0i64, 0];
        pads.extend(ints(p.iter().map(|a| a.crop_lo)));
        pads.extend([0, 0]);
        pads.extend(ints(p.iter().map(|a| a.crop_hi)));
        let pads = self.g.i64s(&pads);
        self.g.op("Pad", &[y, &pads], vec![])
    }

    /// The pooling window of `pooling`/`unpooling` over an operand of sample shape
    /// `x`: the first window axis, the per-axis ONNX form and the output shape.
    fn pool_form(&self, n: usize, a: &PoolAttrs, x: &[usize]) -> Result<PoolForm> {
        let (g, out) = pool_geometry(a, x).map_err(|d| self.err(n, d))?;
        let axes: Vec<ConvAxis> = g.axes.to_vec();
        let first = x.len() - axes.len();
        let p: Vec<AxisPads> = axes.iter().map(AxisPads::of).collect();
        for (i, (ax, q)) in axes.iter().zip(&p).enumerate() {
            if q.lo >= ax.kernel || q.hi >= ax.kernel {
                return Err(self.err(
                    n,
                    format!(
                        "window axis {i}: padding {} before / {} after a window of {} \
                         leaves windows that read nothing (CNTK gives 0 there, ONNX's \
                         pooling the lowest float; onnxruntime refuses such pads)",
                        q.lo, q.hi, ax.kernel
                    ),
                ));
            }
        }
        Ok((first, axes, p, out))
    }

    /// `pooling(x)` → `MaxPool` / `AveragePool` (global: `GlobalMaxPool` /
    /// `GlobalAveragePool`).
    pub fn pooling(&mut self, n: usize, x: &XV, a: &PoolAttrs) -> Result<String> {
        let dims = x.shape.dims().to_vec();
        if a.window.is_none() {
            let first = usize::from(dims.len() >= 2);
            let xi = self.images(x, first);
            let ty = match a.kind {
                PoolingType::Max => "GlobalMaxPool",
                PoolingType::Average => "GlobalAveragePool",
            };
            let y = self.g.op(ty, &[&xi], vec![]);
            let mut out = dims[..first].to_vec();
            out.extend(std::iter::repeat_n(1, dims.len() - first));
            let yr = 2 + dims.len() - first;
            return Ok(self.images_back(&y, x, &out, yr));
        }
        let (first, axes, p, out) = self.pool_form(n, a, &dims)?;
        let xi = self.images(x, first);
        let sizes: Vec<usize> = axes.iter().map(|a| a.input).collect();
        let xc = self.crop(&xi, &p, &sizes);
        let mut attrs = vec![
            attr_ints("kernel_shape", &ints(axes.iter().map(|a| a.kernel))),
            attr_ints("strides", &ints(axes.iter().map(|a| a.stride))),
            attr_ints("pads", &pads_attr(&p)),
        ];
        let ty = match a.kind {
            PoolingType::Max => "MaxPool",
            PoolingType::Average => {
                attrs.push(attr_i("count_include_pad", a.include_pad as i64));
                "AveragePool"
            }
        };
        let y = self.g.op(ty, &[&xc], attrs);
        Ok(self.images_back(&y, x, &out, 2 + axes.len()))
    }

    /// `unpooling(u, x)` (max) → `MaxPool`'s indices of `x`, then `MaxUnpool` of `u`
    /// to `x`'s shape: each value at the first maximum of its window, later windows
    /// overwriting earlier ones, as rntk and CNTK do.
    pub fn unpooling(&mut self, n: usize, ins: &[XV], a: &PoolAttrs) -> Result<String> {
        let (u, x) = (&ins[0], &ins[1]);
        if a.kind != PoolingType::Max {
            return Err(self.err(n, "only max unpooling exists"));
        }
        if u.lay != x.lay {
            return Err(self.err(
                n,
                "the unpooled operand and the pooling input have different dynamic axes",
            ));
        }
        let dims = x.shape.dims().to_vec();
        let (first, axes, p, _) = self.pool_form(n, a, &dims)?;
        if p.iter().any(|q| q.crop_lo > 0 || q.crop_hi > 0) {
            return Err(self.err(
                n,
                "the first window starts inside the input or the last ends before its end: \
                 MaxPool's indices would count from the cropped input",
            ));
        }
        let xi = self.images(x, first);
        let ui = self.images(u, first);
        let attrs = vec![
            attr_ints("kernel_shape", &ints(axes.iter().map(|a| a.kernel))),
            attr_ints("strides", &ints(axes.iter().map(|a| a.stride))),
            attr_ints("pads", &pads_attr(&p)),
        ];
        let mp = self.g.op_n("MaxPool", &[&xi], 2, attrs.clone());
        let shape = self.g.op("Shape", &[&xi], vec![]);
        let y = self.g.op("MaxUnpool", &[&ui, &mp[1], &shape], attrs);
        Ok(self.images_back(&y, x, &dims, 2 + axes.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cntk_auto_padding_becomes_explicit_pads() {
        // input 6, kernel 3, stride 2: CNTK pads one before, none after
        let a = ConvAxis::auto_padded(6, 3, 2, 1, false).unwrap();
        let p = AxisPads::of(&a);
        assert_eq!((p.lo, p.hi, p.crop_lo, p.crop_hi), (1, 0, 0, 0));
        // input 5, kernel 3, stride 1: one each side
        let p = AxisPads::of(&ConvAxis::auto_padded(5, 3, 1, 1, false).unwrap());
        assert_eq!((p.lo, p.hi), (1, 1));
        // input 6, kernel 1, stride 3: the first centre is inside (pad −1)
        let a = ConvAxis::auto_padded(6, 1, 3, 1, false).unwrap();
        assert_eq!(a.pad, -1);
        let p = AxisPads::of(&a);
        assert_eq!((p.crop_lo, p.lo), (1, 0));
        // the windows read cells 1 and 4 of 0..6: ONNX over 1..5 with stride 3
        let rest = 6 - p.crop_lo - p.crop_hi;
        assert_eq!((rest + p.lo + p.hi - 1) / 3 + 1, a.output);
    }

    #[test]
    fn onnx_output_counts_equal_rntks_on_every_small_axis() {
        for input in 1..9 {
            for kernel in 1..=input {
                for stride in 1..4 {
                    for dil in 1..3 {
                        for ceil in [false, true] {
                            let cands = [
                                ConvAxis::auto_padded(input, kernel, stride, dil, ceil),
                                ConvAxis::explicit(input, kernel, stride, dil, (1, 0), ceil),
                                ConvAxis::explicit(input, kernel, stride, dil, (0, 2), ceil),
                            ];
                            for a in cands.into_iter().flatten() {
                                let p = AxisPads::of(&a);
                                let rest = a.input - p.crop_lo - p.crop_hi;
                                let room = rest + p.lo + p.hi - a.span();
                                assert_eq!(room % stride, 0, "{a:?} {p:?}");
                                assert_eq!(room / stride + 1, a.output, "{a:?} {p:?}");
                            }
                        }
                    }
                }
            }
        }
    }
}

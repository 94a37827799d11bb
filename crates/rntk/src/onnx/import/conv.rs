//! ONNX `Conv`, `ConvTranspose`, `MaxPool`, `AveragePool`, `GlobalMaxPool` and
//! `GlobalAveragePool` → rntk's `convolution`, `convolution_transpose`, `pooling` and
//! global pooling, with ONNX's pads as CNTK's explicit lower / upper pads.
//!
//! An ONNX image batch `[N, C, spatial…]` is an rntk value whose batch axis is `N` and
//! whose sample is `(C, spatial…)`; rntk's per-axis lists then run over `(C, spatial…)`
//! (the channel axis: stride 1, no padding). ONNX's output count
//! `⌊(in + lo + hi − span)/stride⌋ + 1` is CNTK's for explicit pads, so convolution maps
//! one to one. Where the two differ, the node is refused by name:
//!
//! - pooling with `ceil_mode` where onnxruntime/PyTorch drop a last window that would
//!   start in the end padding (CNTK keeps it), and `count_include_pad` with a ceil-mode
//!   window reaching past the padding (ONNX divides by the cells inside the padded
//!   input, CNTK by the window);
//! - pads of a whole window or more (windows that read nothing);
//! - `ConvTranspose` with `output_shape` or `auto_pad` (sizes rntk does not derive),
//!   `output_padding` of a stride or more; dilated pooling; `MaxPool`'s indices used
//!   other than by a `MaxUnpool` of the same window (rntk's unpooling recomputes the
//!   positions of the maxima from the pooled operand).

use super::super::proto::NodeProto;
use super::ops::{attr_i, attr_ints, attr_s, one_tv};
use super::value::{Av, SDim, Tv};
use super::Imp;
use crate::error::{Error, Result};
use crate::functions as f;
use crate::graph::Variable;
use crate::ops::{ConvAttrs, PoolAttrs, PoolingType};
use crate::tensor::Shape;
use std::rc::Rc;

fn unsupported(what: impl Into<String>) -> Error {
    Error::Unsupported(what.into())
}

/// The window attributes of one node, per spatial axis.
struct Window {
    kernel: Vec<usize>,
    strides: Vec<usize>,
    dilations: Vec<usize>,
    /// (lower, upper) pads.
    pads: Vec<(usize, usize)>,
}

fn usizes(v: &[i64], what: &str, min: i64) -> Result<Vec<usize>> {
    v.iter()
        .map(|&x| {
            if x < min {
                Err(unsupported(format!("{what} {x} (at least {min} expected)")))
            } else {
                Ok(x as usize)
            }
        })
        .collect()
}

impl Imp<'_> {
    /// The image operand `[N, C, spatial…]` of a convolution-family node: its value,
    /// the variable of sample `(C, spatial…)`, and its spatial sizes.
    fn image(&mut self, n: &NodeProto) -> Result<(Tv, Variable, Vec<usize>)> {
        let v = self.need(n, 0)?;
        let t = self.tv(&v, None)?;
        let ok = t.dims.len() >= 3
            && !matches!(t.dims[0], SDim::N(_))
            && t.dims[1..].iter().all(|d| matches!(d, SDim::N(_)));
        if !ok {
            return Err(unsupported(format!(
                "an image operand whose first dimension is not the batch axis or whose \
                 other dimensions are not all fixed ({:?})",
                t.dims
            )));
        }
        let x = self.exact(&t)?;
        let spatial = t.sample()[1..].to_vec();
        Ok((t, x, spatial))
    }

    /// Kernel, strides, dilations and pads of node `n` over `spatial` input sizes
    /// (`kernel`: from the filter when the node does not state it).
    fn window(&self, n: &NodeProto, spatial: &[usize], kernel: Option<&[usize]>) -> Result<Window> {
        let m = spatial.len();
        let kernel = match attr_ints(n, "kernel_shape") {
            Some(k) => usizes(&k, "kernel size", 1)?,
            None => kernel
                .ok_or_else(|| self.err(n, "no kernel_shape"))?
                .to_vec(),
        };
        let list = |name: &str, min: i64| -> Result<Vec<usize>> {
            match attr_ints(n, name) {
                Some(v) if !v.is_empty() => usizes(&v, name, min),
                _ => Ok(vec![1; m]),
            }
        };
        let strides = list("strides", 1)?;
        let dilations = list("dilations", 1)?;
        if kernel.len() != m || strides.len() != m || dilations.len() != m {
            return Err(self.err(
                n,
                format!("kernel, strides and dilations must list the {m} spatial axes"),
            ));
        }
        let auto = attr_s(n, "auto_pad").unwrap_or_else(|| "NOTSET".into());
        let pads: Vec<(usize, usize)> = match auto.as_str() {
            "NOTSET" => match attr_ints(n, "pads") {
                Some(p) if !p.is_empty() => {
                    if p.len() != 2 * m {
                        return Err(self.err(n, format!("pads must have {} entries", 2 * m)));
                    }
                    let p = usizes(&p, "pad", 0)?;
                    (0..m).map(|i| (p[i], p[m + i])).collect()
                }
                _ => vec![(0, 0); m],
            },
            "VALID" => vec![(0, 0); m],
            "SAME_UPPER" | "SAME_LOWER" => (0..m)
                .map(|i| {
                    let span = (kernel[i] - 1) * dilations[i] + 1;
                    let out = spatial[i].div_ceil(strides[i]);
                    let total = ((out.max(1) - 1) * strides[i] + span).saturating_sub(spatial[i]);
                    let small = total / 2;
                    if auto == "SAME_UPPER" {
                        (small, total - small)
                    } else {
                        (total - small, small)
                    }
                })
                .collect(),
            other => return Err(self.err(n, format!("auto_pad {other}"))),
        };
        Ok(Window {
            kernel,
            strides,
            dilations,
            pads,
        })
    }

    /// The result `var` of an image op in the layout of its operand `t`.
    fn image_out(&self, t: &Tv, var: Variable) -> Result<Vec<Av>> {
        let mut dims = vec![t.dims[0].clone()];
        dims.extend(var.shape().dims().iter().map(|&d| SDim::N(d)));
        one_tv(Tv { var, dims })
    }

    /// `Conv` (`transpose`: `ConvTranspose`) with its optional bias.
    pub(crate) fn conv(&mut self, n: &NodeProto, transpose: bool) -> Result<Vec<Av>> {
        let (t, x, spatial) = self.image(n)?;
        let wt = self.tv_of(n, 1)?;
        if wt.dims.iter().any(|d| !matches!(d, SDim::N(_))) {
            return Err(unsupported("a filter that is not a static tensor"));
        }
        let w = self.exact(&wt)?;
        let wd = w.shape().dims().to_vec();
        if wd.len() != spatial.len() + 2 {
            return Err(self.err(
                n,
                format!(
                    "the filter {wd:?} does not fit images with {} spatial axes",
                    spatial.len()
                ),
            ));
        }
        let win = self.window(n, &spatial, Some(&wd[2..]))?;
        let groups = attr_i(n, "group", 1);
        if groups < 1 {
            return Err(self.err(n, format!("group {groups}")));
        }
        let lead = |v: &[usize], first: usize| {
            let mut l = vec![first];
            l.extend_from_slice(v);
            l
        };
        let mut attrs = ConvAttrs {
            strides: lead(&win.strides, 1),
            auto_padding: vec![false],
            lower_pad: lead(&win.pads.iter().map(|p| p.0).collect::<Vec<_>>(), 0),
            upper_pad: lead(&win.pads.iter().map(|p| p.1).collect::<Vec<_>>(), 0),
            dilation: lead(&win.dilations, 1),
            groups: groups as usize,
            reduction_rank: 1,
            sequential: false,
            output_shape: None,
        };
        let y = if transpose {
            attrs.output_shape = Some(self.transposed_sizes(n, &win, &spatial)?);
            f::convolution_transpose(&w, &x, attrs)
        } else {
            f::convolution(&w, &x, attrs)
        }
        .map_err(|e| unsupported(format!("rntk's convolution refuses it: {e}")))?;
        let y = match self.input(n, 2)? {
            None => y,
            Some(_) => {
                let b = self.tv_of(n, 2)?;
                let b = self.exact(&b)?;
                let mut s = vec![b.shape().numel()];
                s.extend(std::iter::repeat_n(1, spatial.len()));
                f::plus(&y, &f::reshape(&b, Shape::new(s))?)?
            }
        };
        self.image_out(&t, y)
    }

    /// A `ConvTranspose`'s output sizes: `stride·(in − 1) + output_padding + span − lo − hi`.
    fn transposed_sizes(&self, n: &NodeProto, w: &Window, spatial: &[usize]) -> Result<Vec<usize>> {
        if attr_ints(n, "output_shape").is_some_and(|v| !v.is_empty()) {
            return Err(unsupported(
                "ConvTranspose with output_shape (give pads instead)",
            ));
        }
        if attr_s(n, "auto_pad").is_some_and(|s| s != "NOTSET" && s != "VALID") {
            return Err(unsupported(
                "ConvTranspose with auto_pad SAME_* (give pads instead)",
            ));
        }
        let m = spatial.len();
        let op = match attr_ints(n, "output_padding") {
            Some(v) if !v.is_empty() => usizes(&v, "output_padding", 0)?,
            _ => vec![0; m],
        };
        if op.len() != m {
            return Err(self.err(n, format!("output_padding must list the {m} spatial axes")));
        }
        let mut out = Vec::with_capacity(m);
        for i in 0..m {
            if op[i] >= w.strides[i] {
                return Err(unsupported(format!(
                    "output_padding {} of a stride {} (cells no input reaches)",
                    op[i], w.strides[i]
                )));
            }
            let span = (w.kernel[i] - 1) * w.dilations[i] + 1;
            let full = w.strides[i] * (spatial[i].max(1) - 1) + op[i] + span;
            let (lo, hi) = w.pads[i];
            out.push(
                full.checked_sub(lo + hi)
                    .filter(|&s| s > 0)
                    .ok_or_else(|| {
                        unsupported(format!("pads ({lo}, {hi}) larger than the output ({full})"))
                    })?,
            );
        }
        Ok(out)
    }

    /// `MaxPool` / `AveragePool`.
    pub(crate) fn pool(&mut self, n: &NodeProto, kind: PoolingType) -> Result<Vec<Av>> {
        let (t, x, spatial) = self.image(n)?;
        if attr_i(n, "storage_order", 0) != 0 {
            return Err(unsupported(
                "MaxPool with storage_order 1 (column-major indices)",
            ));
        }
        let win = self.window(n, &spatial, None)?;
        if win.dilations.iter().any(|&d| d != 1) {
            return Err(unsupported("dilated pooling"));
        }
        let ceil = attr_i(n, "ceil_mode", 0) != 0;
        let include_pad = kind == PoolingType::Average && attr_i(n, "count_include_pad", 0) != 0;
        for (i, &size) in spatial.iter().enumerate() {
            let (k, s, (lo, hi)) = (win.kernel[i], win.strides[i], win.pads[i]);
            if lo >= k || hi >= k {
                return Err(unsupported(format!(
                    "pads ({lo}, {hi}) of a window of {k}: windows that read nothing"
                )));
            }
            let padded = size + lo + hi;
            if padded < k {
                return Err(self.err(n, format!("a window of {k} over {padded} cells")));
            }
            let room = padded - k;
            if ceil {
                let out = room.div_ceil(s) + 1;
                if (out - 1) * s >= size + lo {
                    return Err(unsupported(
                        "ceil_mode with a last window starting in the end padding (ONNX drops \
                         it, CNTK keeps it)",
                    ));
                }
                if include_pad && (out - 1) * s + k > padded {
                    return Err(unsupported(
                        "count_include_pad with a ceil-mode window past the padding (ONNX \
                         divides by the padded cells it covers, CNTK by the window)",
                    ));
                }
            }
        }
        let lead = |v: Vec<usize>, first: usize| {
            let mut l = vec![first];
            l.extend(v);
            l
        };
        let attrs = PoolAttrs {
            kind,
            window: Some(win.kernel.clone()),
            strides: lead(win.strides.clone(), 1),
            auto_padding: vec![false],
            lower_pad: lead(win.pads.iter().map(|p| p.0).collect(), 0),
            upper_pad: lead(win.pads.iter().map(|p| p.1).collect(), 0),
            ceil_out_dim: ceil,
            include_pad,
        };
        let y = f::pooling(&x, attrs.clone())
            .map_err(|e| unsupported(format!("rntk's pooling refuses it: {e}")))?;
        let mut outs = self.image_out(&t, y)?;
        if n.output.len() > 1 {
            outs.push(Av::PoolIndices(Rc::new((t, attrs))));
        }
        Ok(outs)
    }

    /// `MaxUnpool(u, indices of MaxPool(x), shape of x)` → `unpooling(u, x)`: each value
    /// at the first maximum of its window of `x`, later windows overwriting earlier ones
    /// (ONNX's scatter in index order).
    pub(crate) fn max_unpool(&mut self, n: &NodeProto) -> Result<Vec<Av>> {
        let (_, u, _) = self.image(n)?;
        let pi = match self.need(n, 1)? {
            Av::PoolIndices(p) => p,
            _ => {
                return Err(unsupported(
                    "MaxUnpool of indices that are not a MaxPool's in this file",
                ))
            }
        };
        let (xt, attrs) = (&pi.0, &pi.1);
        let spatial = xt.sample()[1..].to_vec();
        let win = self.window(n, &spatial, None)?;
        let same = Some(&win.kernel) == attrs.window.as_ref()
            && win.strides[..] == attrs.strides[1..]
            && win
                .pads
                .iter()
                .map(|p| p.0)
                .eq(attrs.lower_pad[1..].iter().copied())
            && win
                .pads
                .iter()
                .map(|p| p.1)
                .eq(attrs.upper_pad[1..].iter().copied());
        if !same {
            return Err(unsupported(
                "MaxUnpool with a window, strides or pads other than its MaxPool's",
            ));
        }
        let fits = match self.input(n, 2)? {
            None => {
                // ONNX's default size: (in − 1)·stride + kernel − pads, per axis
                let us = u.shape();
                let pooled = &us.dims()[1..];
                (0..spatial.len()).all(|i| {
                    (pooled[i].saturating_sub(1) * win.strides[i] + win.kernel[i])
                        .checked_sub(win.pads[i].0 + win.pads[i].1)
                        == Some(spatial[i])
                })
            }
            Some(Av::S(d)) => d == xt.dims,
            Some(Av::C(c, _)) => {
                let d = c.data.to_i64();
                d.len() == xt.dims.len()
                    && d[1..].iter().zip(xt.sample()).all(|(&a, b)| a == b as i64)
            }
            Some(_) => false,
        };
        if !fits {
            return Err(unsupported(
                "MaxUnpool to an output_shape other than its MaxPool's input",
            ));
        }
        let x = self.exact(xt)?;
        let y = f::unpooling(&u, &x, attrs.clone())
            .map_err(|e| unsupported(format!("rntk's unpooling refuses it: {e}")))?;
        one_tv(Tv {
            var: y,
            dims: xt.dims.clone(),
        })
    }

    /// `GlobalMaxPool` / `GlobalAveragePool`: every spatial axis to 1.
    pub(crate) fn global_pool(&mut self, n: &NodeProto, kind: PoolingType) -> Result<Vec<Av>> {
        let (t, x, _) = self.image(n)?;
        let y = f::global_pooling(&x, kind)?;
        self.image_out(&t, y)
    }
}

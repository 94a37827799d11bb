//! ROI pooling (CNTK's `roipooling(x, rois, MAX_POOLING, roi_output_shape,
//! spatial_scale)`, the pooling of Fast R-CNN): shape rule and the forward/backward
//! recipes; the arithmetic is the device's (`Convolutions::roi_pool_*`), the rules are
//! `backend::roi`'s.
//!
//! ```text
//!   x (C, H, W) per sample, rois (R, 4) per sample: boxes (x1, y1, x2, y2) in pixels
//!   of the original image (spatial_scale maps them onto x)
//!   y = roipool(x, rois)  (R, C, out_h, out_w)     roi_output_shape = (out_h, out_w)
//!   dx += dy at each bin's first maximum          rois: no gradient
//! ```
//!
//! Row-local: each sample's boxes pool that sample's map. The boxes may be static (one
//! set for every sample).

use super::conv::{dense, head, head_mut, rows};
use super::conv_attrs::PoolingType;
use super::{dense_info, expect_arity, join_axes, Inferred, RowCtx, VarInfo};
use crate::backend::roi::RoiGeometry;
use crate::backend::{Arg, Backend};
use crate::error::{Error, Result};
use crate::tensor::{Element, Shape};

const OP: &str = "ROIPooling";

/// Attributes of `roipooling`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RoiAttrs {
    /// Max only (CNTK has no average ROI pooling).
    pub kind: PoolingType,
    /// `(out_h, out_w)`: the bins of each box.
    pub output_shape: Vec<usize>,
    /// The feature map's scale relative to the image the boxes are given in.
    pub spatial_scale: f64,
}

/// The geometry for a map `x` and boxes `rois` (`Err`: why they do not fit).
fn geometry(a: &RoiAttrs, x: &[usize], rois: &[usize]) -> std::result::Result<RoiGeometry, String> {
    if a.kind != PoolingType::Max {
        return Err("only max ROI pooling exists (as in CNTK)".into());
    }
    let [out_h, out_w] = a.output_shape[..] else {
        return Err(format!(
            "roi_output_shape {:?} must have two dimensions (height, width)",
            a.output_shape
        ));
    };
    if out_h == 0 || out_w == 0 {
        return Err(format!(
            "roi_output_shape {:?} has a zero dimension",
            a.output_shape
        ));
    }
    if !a.spatial_scale.is_finite() {
        return Err(format!(
            "spatial_scale {} is not a finite number",
            a.spatial_scale
        ));
    }
    let [channels, height, width] = x[..] else {
        return Err("the operand must be a feature map (C, H, W)".into());
    };
    let [r, 4] = rois[..] else {
        return Err("the boxes must be (R, 4): (x1, y1, x2, y2) per box".into());
    };
    if channels == 0 || r == 0 {
        return Err("the map and the boxes must not be empty".into());
    }
    if height < out_h || width < out_w {
        return Err(format!(
            "a map of {height}×{width} is smaller than the output {out_h}×{out_w} (CNTK \
             refuses it too)"
        ));
    }
    Ok(RoiGeometry {
        channels,
        height,
        width,
        rois: r,
        out_h,
        out_w,
        spatial_scale: a.spatial_scale,
        shared_rois: false,
    })
}

/// Shape rule of `roipooling(x, rois)`: `(R, C, out_h, out_w)`.
pub(crate) fn infer(name: &str, infos: &[VarInfo], a: &RoiAttrs) -> Result<Inferred> {
    expect_arity(OP, name, infos, 2)?;
    let (x, r) = (&infos[0], &infos[1]);
    if x.is_sparse || r.is_sparse || x.shape.has_inferred() || r.shape.has_inferred() {
        return Err(Error::shape(
            OP,
            name,
            format!(
                "the map {} and the boxes {} must be dense with known shapes",
                x.shape, r.shape
            ),
        ));
    }
    let g = geometry(a, x.shape.dims(), r.shape.dims()).map_err(|d| {
        Error::shape(
            OP,
            name,
            format!("map {} with boxes {}: {d}", x.shape, r.shape),
        )
    })?;
    if x.axes == crate::tensor::DynamicAxes::None && r.axes != x.axes {
        return Err(Error::axes(
            OP,
            name,
            "a static map with boxes per sample: make the map data too",
        ));
    }
    let axes = join_axes(OP, name, &[x, r])?;
    let out = Shape::new(vec![g.rois, g.channels, g.out_h, g.out_w]);
    Ok(Inferred::one(dense_info(out, x, axes)))
}

fn call_geometry<B: Backend, T: Element>(
    a: &RoiAttrs,
    args: &[Arg<B, T>],
    shapes: &[Shape],
) -> Result<RoiGeometry> {
    let mut g =
        geometry(a, shapes[0].dims(), shapes[1].dims()).map_err(|detail| Error::Runtime {
            op: OP.into(),
            name: String::new(),
            detail,
        })?;
    g.shared_rois = args[1].is_static();
    Ok(g)
}

/// Forward over the rows: `y = roipool(x, rois)`.
pub(crate) fn forward<B: Backend, T: Element>(
    b: &B,
    a: &RoiAttrs,
    args: &[Arg<B, T>],
    shapes: &[Shape],
    out: B::Mut<'_, T>,
    ctx: RowCtx,
) -> Result<()> {
    let g = call_geometry(a, args, shapes)?;
    let n = rows(&args[0], ctx);
    let nr = if g.shared_rois { 1 } else { n };
    let x = dense(&args[0], n * g.in_size(), "map")?;
    let r = dense(&args[1], nr * g.rois_size(), "boxes")?;
    b.roi_pool_forward(
        &g,
        n,
        (x, r),
        head_mut::<B, T>(out, n * g.out_size()),
        ctx.par,
    );
    Ok(())
}

/// Gradient for operand `i`, accumulated into `din` (the boxes get none).
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward<B: Backend, T: Element>(
    b: &B,
    a: &RoiAttrs,
    i: usize,
    args: &[Arg<B, T>],
    shapes: &[Shape],
    dout: B::Ref<'_, T>,
    din: B::Mut<'_, T>,
    ctx: RowCtx,
) -> Result<()> {
    if i != 0 {
        return Ok(());
    }
    let g = call_geometry(a, args, shapes)?;
    let n = rows(&args[0], ctx);
    let nr = if g.shared_rois { 1 } else { n };
    let x = dense(&args[0], n * g.in_size(), "map")?;
    let r = dense(&args[1], nr * g.rois_size(), "boxes")?;
    let (dy, dx) = (
        head::<B, T>(dout, n * g.out_size()),
        head_mut::<B, T>(din, n * g.in_size()),
    );
    b.roi_pool_backward(&g, n, (x, r), dy, dx, true, ctx.par);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(out: &[usize]) -> RoiAttrs {
        RoiAttrs {
            kind: PoolingType::Max,
            output_shape: out.to_vec(),
            spatial_scale: 0.5,
        }
    }

    #[test]
    fn what_does_not_fit_is_named() {
        let e = |a: &RoiAttrs, x: &[usize], r: &[usize]| geometry(a, x, r).unwrap_err();
        assert!(e(&attrs(&[2]), &[3, 8, 8], &[4, 4]).contains("two dimensions"));
        assert!(e(&attrs(&[2, 0]), &[3, 8, 8], &[4, 4]).contains("zero"));
        assert!(e(&attrs(&[2, 2]), &[8, 8], &[4, 4]).contains("(C, H, W)"));
        assert!(e(&attrs(&[2, 2]), &[3, 8, 8], &[4, 5]).contains("(R, 4)"));
        assert!(e(&attrs(&[9, 2]), &[3, 8, 8], &[4, 4]).contains("smaller"));
        let mut avg = attrs(&[2, 2]);
        avg.kind = PoolingType::Average;
        assert!(e(&avg, &[3, 8, 8], &[4, 4]).contains("only max"));
        let mut nan = attrs(&[2, 2]);
        nan.spatial_scale = f64::NAN;
        assert!(e(&nan, &[3, 8, 8], &[4, 4]).contains("finite"));
        let g = geometry(&attrs(&[2, 3]), &[3, 8, 9], &[5, 4]).unwrap();
        assert_eq!((g.rois, g.out_size(), g.in_size()), (5, 90, 216));
    }
}

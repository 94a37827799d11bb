//! CNTK's Convolution (and its transpose), Pooling, Unpooling and ROIPooling functions as
//! rntk ops.
//! CNTK stores per-axis lists in its own (reversed) axis order; they are turned into
//! Python order here, so `ops::conv_attrs` reads them like the Python API's arguments.
//! (`reduction_rank=0` never reaches a saved model: CNTK inserts a Reshape instead.)

use super::dict::Dict;
use super::proto::dictionary_value::Value as V;
use crate::error::{Error, Result};
use crate::ops::{ConvAttrs, Op, PoolAttrs, PoolingType, RoiAttrs};

/// Largest value accepted in a size list (strides, pads, windows, dilation).
const MAX_DIM: u64 = 1 << 24;

/// An NDShape attribute in Python order (absent: `default`).
fn dims(a: &Dict, key: &str, default: &[usize]) -> Result<Vec<usize>> {
    if !a.has(key) {
        return Ok(default.to_vec());
    }
    a.shape(key)?
        .shape_dim
        .iter()
        .rev()
        .map(|&d| {
            if d > MAX_DIM {
                Err(a.err(format!("'{key}' holds the size {d}, beyond any image")))
            } else {
                Ok(d as usize)
            }
        })
        .collect()
}

/// A vector of booleans in Python order (absent: `default`).
fn bools(a: &Dict, key: &str, default: bool) -> Result<Vec<bool>> {
    match a.d.data.get(key).and_then(|v| v.value.as_ref()) {
        None => Ok(vec![default]),
        Some(V::VectorValue(v)) => v
            .value
            .iter()
            .rev()
            .map(|x| match x.value {
                Some(V::BoolValue(b)) => Ok(b),
                _ => Err(a.err(format!("key '{key}' must hold a Vector of Bool"))),
            })
            .collect(),
        Some(_) => Err(a.err(format!("key '{key}' must hold a Vector of Bool"))),
    }
}

fn flag(a: &Dict, key: &str) -> Result<bool> {
    if a.has(key) {
        a.bool(key)
    } else {
        Ok(false)
    }
}

fn unsupported(a: &Dict, detail: &str) -> Error {
    Error::Unsupported(format!("{}: {}: {detail}", a.file, a.what))
}

/// Convolution (op 33): `transpose` selects convolution_transpose.
pub(crate) fn convolution(a: &Dict) -> Result<Op> {
    if bools(a, "sharing", true)?.iter().any(|s| !s) {
        return Err(unsupported(a, "convolution without weight sharing"));
    }
    if flag(a, "sequential")? {
        return Err(unsupported(
            a,
            "sequential convolution (along the sequence axis) is not supported yet",
        ));
    }
    let groups = if a.has("groups") {
        a.size_t("groups")?
    } else {
        1
    };
    if groups == 0 || groups > MAX_DIM {
        return Err(a.err(format!("groups {groups}")));
    }
    let out = dims(a, "outputShape", &[])?;
    let attrs = ConvAttrs {
        strides: dims(a, "strides", &[1])?,
        auto_padding: bools(a, "autoPadding", true)?,
        lower_pad: dims(a, "lowerPad", &[0])?,
        upper_pad: dims(a, "upperPad", &[0])?,
        dilation: dims(a, "dilation", &[1])?,
        groups: groups as usize,
        reduction_rank: 1,
        sequential: false,
        output_shape: (!out.is_empty() && out.iter().all(|&d| d > 0)).then_some(out),
    };
    Ok(if flag(a, "transpose")? {
        Op::ConvolutionTranspose(attrs)
    } else {
        Op::Convolution(attrs)
    })
}

fn pool_type(a: &Dict) -> Result<PoolingType> {
    match a.size_t("poolingType")? {
        0 => Ok(PoolingType::Max),
        1 => Ok(PoolingType::Average),
        t => Err(a.err(format!("unknown pooling type {t}"))),
    }
}

fn pool_attrs(a: &Dict, kind: PoolingType, window_key: &str) -> Result<PoolAttrs> {
    let window = dims(a, window_key, &[])?;
    // an unknown window (global pooling not yet resolved) is stored with no dimensions
    let window = (!window.is_empty() && window.iter().all(|&d| d > 0)).then_some(window);
    let mut p = PoolAttrs::new(kind, window);
    p.strides = dims(a, "strides", &[1])?;
    p.auto_padding = bools(a, "autoPadding", false)?;
    p.lower_pad = dims(a, "lowerPad", &[0])?;
    p.upper_pad = dims(a, "upperPad", &[0])?;
    p.ceil_out_dim = flag(a, "ceilOutDim")?;
    p.include_pad = flag(a, "includePad")?;
    Ok(p)
}

/// Pooling (op 17).
pub(crate) fn pooling(a: &Dict) -> Result<Op> {
    let kind = pool_type(a)?;
    Ok(Op::Pooling(pool_attrs(a, kind, "poolingWindowShape")?))
}

/// Unpooling (op 58): max unpooling only, as in CNTK.
pub(crate) fn unpooling(a: &Dict) -> Result<Op> {
    if pool_type(a)? != PoolingType::Max {
        return Err(unsupported(a, "average unpooling"));
    }
    Ok(Op::Unpooling(pool_attrs(
        a,
        PoolingType::Max,
        "unpoolingWindowShape",
    )?))
}

/// ROIPooling (op 47): max pooling only (CNTK has no other).
pub(crate) fn roi_pooling(a: &Dict) -> Result<Op> {
    if pool_type(a)? != PoolingType::Max {
        return Err(unsupported(a, "average ROI pooling"));
    }
    let output_shape = dims(a, "roiOutputShape", &[])?;
    let spatial_scale = a.real("spatialScale")?;
    Ok(Op::RoiPooling(RoiAttrs {
        kind: PoolingType::Max,
        output_shape,
        spatial_scale,
    }))
}

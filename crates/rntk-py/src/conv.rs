//! Convolution and pooling (CNTK's `convolution`, `convolution_transpose`, `pooling`,
//! `unpooling`, `roipooling` ops and the `Convolution*` (incl. `sequential=True`),
//! `SequentialConvolution`, `ConvolutionTranspose*`, `*Pooling`, `MaxUnpooling` layers) bound to rntk's ops and layers. The Python side resolves
//! `default_options` and CNTK's per-axis argument forms and passes every option
//! explicitly, as lists in CNTK's (Python) axis order.

use crate::errors::{value_err, IntoPy};
use crate::graph::Var;
use crate::layers::{activation, PyInit, PyLayer};
use pyo3::prelude::*;
use rntk::functions as f;
use rntk::layers::{Convolution, MaxUnpooling, Pooling};
use rntk::ops::{ConvAttrs, PoolAttrs, PoolingType};

fn pooling_type(kind: &str) -> PyResult<PoolingType> {
    match kind {
        "max" => Ok(PoolingType::Max),
        "average" => Ok(PoolingType::Average),
        _ => Err(value_err(format!(
            "pooling type {kind:?}: expected C.MAX_POOLING or C.AVG_POOLING"
        ))),
    }
}

/// `convolution(W, x, …)` (or `convolution_transpose` with `transpose`).
#[pyfunction]
#[pyo3(signature = (w, x, strides, auto_padding, dilation, groups, reduction_rank, sequential, output_shape, transpose))]
#[allow(clippy::too_many_arguments)]
fn convolution(
    w: &Var,
    x: &Var,
    strides: Vec<usize>,
    auto_padding: Vec<bool>,
    dilation: Vec<usize>,
    groups: usize,
    reduction_rank: usize,
    sequential: bool,
    output_shape: Option<Vec<usize>>,
    transpose: bool,
) -> PyResult<Var> {
    let attrs = ConvAttrs {
        strides,
        auto_padding,
        dilation,
        groups,
        reduction_rank,
        sequential,
        output_shape,
        ..ConvAttrs::default()
    };
    let y = if transpose {
        f::convolution_transpose(&w.0, &x.0, attrs)
    } else {
        f::convolution(&w.0, &x.0, attrs)
    };
    Ok(Var(y.py()?))
}

/// `pooling(x, type, window, …)`; `window=None`: global pooling.
#[pyfunction]
#[pyo3(signature = (x, kind, window, strides, auto_padding, ceil_out_dim, include_pad))]
fn pooling(
    x: &Var,
    kind: &str,
    window: Option<Vec<usize>>,
    strides: Vec<usize>,
    auto_padding: Vec<bool>,
    ceil_out_dim: bool,
    include_pad: bool,
) -> PyResult<Var> {
    let kind = pooling_type(kind)?;
    let y = match window {
        None => f::global_pooling(&x.0, kind),
        Some(w) => {
            let mut a = PoolAttrs::new(kind, Some(w));
            a.strides = strides;
            a.auto_padding = auto_padding;
            a.ceil_out_dim = ceil_out_dim;
            a.include_pad = include_pad;
            f::pooling(&x.0, a)
        }
    };
    Ok(Var(y.py()?))
}

/// `unpooling(u, x, MAX_UNPOOLING, window, strides, auto_padding)`.
#[pyfunction]
fn unpooling(
    u: &Var,
    x: &Var,
    window: Vec<usize>,
    strides: Vec<usize>,
    auto_padding: Vec<bool>,
) -> PyResult<Var> {
    let mut a = PoolAttrs::new(PoolingType::Max, Some(window));
    a.strides = strides;
    a.auto_padding = auto_padding;
    Ok(Var(f::unpooling(&u.0, &x.0, a).py()?))
}

/// `roipooling(x, rois, MAX_POOLING, (out_h, out_w), spatial_scale)`.
#[pyfunction]
fn roipooling(
    x: &Var,
    rois: &Var,
    out_h: usize,
    out_w: usize,
    spatial_scale: f64,
) -> PyResult<Var> {
    Ok(Var(f::roipooling(
        &x.0,
        &rois.0,
        (out_h, out_w),
        spatial_scale,
    )
    .py()?))
}

/// The layer constructor CNTK's `op_name` names (the block's op name).
fn conv_ctor(op_name: &str, k: &[usize]) -> PyResult<Convolution> {
    let rank_err = |n: usize| {
        value_err(format!(
            "{op_name}: filter_shape {k:?} must have {n} axes (a scalar is repeated)"
        ))
    };
    Ok(match op_name {
        "Convolution" => Convolution::new(k),
        "SequentialConvolution" => Convolution::sequential_convolution(k),
        "ConvolutionTranspose" => Convolution::transpose(k),
        "Convolution1D" | "ConvolutionTranspose1D" => {
            let [a] = <[usize; 1]>::try_from(k).map_err(|_| rank_err(1))?;
            if op_name == "Convolution1D" {
                Convolution::d1(a)
            } else {
                Convolution::transpose1d(a)
            }
        }
        "Convolution2D" | "ConvolutionTranspose2D" => {
            let k2 = <[usize; 2]>::try_from(k).map_err(|_| rank_err(2))?;
            if op_name == "Convolution2D" {
                Convolution::d2(k2)
            } else {
                Convolution::transpose2d(k2)
            }
        }
        "Convolution3D" | "ConvolutionTranspose3D" => {
            let k3 = <[usize; 3]>::try_from(k).map_err(|_| rank_err(3))?;
            if op_name == "Convolution3D" {
                Convolution::d3(k3)
            } else {
                Convolution::transpose3d(k3)
            }
        }
        _ => return Err(value_err(format!("unknown convolution layer {op_name}"))),
    })
}

/// `Convolution*` / `ConvolutionTranspose*` layers (`op_name` picks which).
#[pyfunction]
#[pyo3(signature = (op_name, filter_shape, num_filters, activation_, init, pad, strides, dilation, bias, init_bias, reduction_rank, groups, output_shape, name, sequential=false))]
#[allow(clippy::too_many_arguments)]
fn conv_layer(
    op_name: &str,
    filter_shape: Vec<usize>,
    num_filters: Option<usize>,
    activation_: &Bound<'_, PyAny>,
    init: &PyInit,
    pad: Vec<bool>,
    strides: Vec<usize>,
    dilation: Vec<usize>,
    bias: bool,
    init_bias: f64,
    reduction_rank: usize,
    groups: usize,
    output_shape: Option<Vec<usize>>,
    name: &str,
    sequential: bool,
) -> PyResult<PyLayer> {
    if pad.is_empty() || strides.is_empty() || dilation.is_empty() {
        return Err(value_err(format!(
            "{op_name}: pad, strides and dilation need at least one entry"
        )));
    }
    let mut c = conv_ctor(op_name, &filter_shape)?
        .activation(activation(activation_)?)
        .init(init.0.clone())
        .pad_axes(&pad)
        .strides(&strides)
        .dilation(&dilation)
        .bias(bias)
        .init_bias(init_bias)
        .reduction_rank(reduction_rank)
        .groups(groups)
        .sequential(sequential)
        .name(name);
    if let Some(n) = num_filters {
        c = c.num_filters(n);
    }
    if let Some(s) = output_shape {
        c = c.output_shape(&s);
    }
    Ok(PyLayer::of(c))
}

/// `MaxPooling`/`AveragePooling` (`window`) or `GlobalMax/AveragePooling` (`None`).
#[pyfunction]
#[pyo3(signature = (kind, window, strides, pad, name))]
fn pool_layer(
    kind: &str,
    window: Option<Vec<usize>>,
    strides: Vec<usize>,
    pad: Vec<bool>,
    name: &str,
) -> PyResult<PyLayer> {
    let kind = pooling_type(kind)?;
    let p = match (window, kind) {
        (None, PoolingType::Max) => Pooling::global_max(),
        (None, PoolingType::Average) => Pooling::global_average(),
        (Some(w), k) => {
            if strides.is_empty() || pad.is_empty() {
                return Err(value_err(
                    "pooling: strides and pad need at least one entry",
                ));
            }
            let p = if k == PoolingType::Max {
                Pooling::max(&w)
            } else {
                Pooling::average(&w)
            };
            p.strides(&strides).pad_axes(&pad)
        }
    };
    Ok(PyLayer::of(p.name(name)))
}

/// `MaxUnpooling(window, strides, pad)(u, x)`.
#[pyfunction]
#[pyo3(signature = (u, x, window, strides, pad, name))]
fn max_unpooling(
    u: &Var,
    x: &Var,
    window: Vec<usize>,
    strides: Vec<usize>,
    pad: bool,
    name: &str,
) -> PyResult<Var> {
    let l = MaxUnpooling::new(&window)
        .strides(&strides)
        .pad(pad)
        .name(name);
    Ok(Var(l.apply2(&u.0, &x.0).py()?))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    for f in [
        wrap_pyfunction!(convolution, m)?,
        wrap_pyfunction!(pooling, m)?,
        wrap_pyfunction!(unpooling, m)?,
        wrap_pyfunction!(roipooling, m)?,
        wrap_pyfunction!(conv_layer, m)?,
        wrap_pyfunction!(pool_layer, m)?,
        wrap_pyfunction!(max_unpooling, m)?,
    ] {
        m.add_function(f)?;
    }
    Ok(())
}

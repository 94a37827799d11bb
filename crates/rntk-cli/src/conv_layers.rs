//! The convolutional layer tables of a config: `Convolution` (1D/2D/3D),
//! `ConvolutionTranspose` (1D/2D/3D), `MaxPooling`, `AveragePooling`, `GlobalMaxPooling`,
//! `GlobalAveragePooling`, with CNTK's keys. Settings the layer cannot run with are
//! refused here, before the model is built, naming the layer's key and the option.

use crate::fail::{Fail, Result};
use crate::layers::{activation, decode, initializer};
use rntk::layers::{Convolution, LayerRef, Pooling};
use serde::Deserialize;
use std::sync::Arc;

/// The layer types this module builds.
pub const CONV_TYPES: &[&str] = &[
    "Convolution",
    "Convolution1D",
    "Convolution2D",
    "Convolution3D",
    "ConvolutionTranspose",
    "ConvolutionTranspose1D",
    "ConvolutionTranspose2D",
    "ConvolutionTranspose3D",
    "MaxPooling",
    "AveragePooling",
    "GlobalMaxPooling",
    "GlobalAveragePooling",
];

/// A per-axis option: one value for every axis, or one per axis.
#[derive(Deserialize, Clone)]
#[serde(untagged)]
enum PerAxis<T> {
    One(T),
    Many(Vec<T>),
}

impl<T: Copy> PerAxis<T> {
    fn values(&self) -> Vec<T> {
        match self {
            PerAxis::One(v) => vec![*v],
            PerAxis::Many(v) => v.clone(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConvSpec {
    filter_shape: PerAxis<usize>,
    num_filters: Option<usize>,
    activation: Option<String>,
    init: Option<toml::Value>,
    pad: Option<PerAxis<bool>>,
    strides: Option<PerAxis<usize>>,
    dilation: Option<PerAxis<usize>>,
    bias: Option<bool>,
    init_bias: Option<f64>,
    reduction_rank: Option<usize>,
    groups: Option<usize>,
    /// ConvolutionTranspose only: the output's spatial shape.
    output_shape: Option<PerAxis<usize>>,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PoolSpec {
    filter_shape: PerAxis<usize>,
    strides: Option<PerAxis<usize>>,
    pad: Option<PerAxis<bool>>,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GlobalSpec {
    #[serde(default)]
    name: String,
}

/// The filter rank a type fixes (`Convolution2D`: 2), `None` for the plain types.
fn fixed_rank(kind: &str) -> Option<usize> {
    kind.chars()
        .rev()
        .nth(1)
        .and_then(|c| c.to_digit(10))
        .filter(|_| kind.ends_with('D'))
        .map(|d| d as usize)
}

/// Option `what` has 1 or `rank` entries.
fn check_count(key: &str, what: &str, len: usize, rank: usize) -> Result<()> {
    if len != 1 && len != rank {
        return Err(Fail::new(format!(
            "{key}.{what}: {len} values for a filter of rank {rank} (give one value or {rank})"
        )));
    }
    Ok(())
}

/// `values` (of option `what`) hold 1 or `rank` entries, each at least `min`.
fn check_axes(key: &str, what: &str, values: &[usize], rank: usize, min: usize) -> Result<()> {
    check_count(key, what, values.len(), rank)?;
    if let Some(v) = values.iter().find(|&&v| v < min) {
        return Err(Fail::new(format!(
            "{key}.{what}: {v} is not allowed (each value must be at least {min})"
        )));
    }
    Ok(())
}

/// The filter shape, checked against the type's rank (1 to 3 axes, each ≥ 1).
fn filter_shape(key: &str, kind: &str, f: &PerAxis<usize>) -> Result<Vec<usize>> {
    let mut shape = f.values();
    let rank = match fixed_rank(kind) {
        Some(r) => {
            if shape.len() == 1 {
                shape = vec![shape[0]; r];
            }
            r
        }
        None => shape.len(),
    };
    if shape.len() != rank || !(1..=3).contains(&rank) {
        return Err(Fail::new(format!(
            "{key}.filter_shape: {shape:?} does not fit {kind} (expected {} axes)",
            fixed_rank(kind).map_or("1 to 3".to_string(), |r| r.to_string())
        )));
    }
    check_axes(key, "filter_shape", &shape, rank, 1)?;
    Ok(shape)
}

fn positive(key: &str, what: &str, v: Option<usize>) -> Result<()> {
    match v {
        Some(0) => Err(Fail::new(format!(
            "{key}.{what}: 0 is not allowed (expected at least 1)"
        ))),
        _ => Ok(()),
    }
}

fn convolution(s: ConvSpec, kind: &str, key: &str) -> Result<LayerRef> {
    let shape = filter_shape(key, kind, &s.filter_shape)?;
    let rank = shape.len();
    let transpose = kind.starts_with("ConvolutionTranspose");
    positive(key, "num_filters", s.num_filters)?;
    positive(key, "groups", s.groups)?;
    if let Some(r) = s.reduction_rank.filter(|&r| r > 1) {
        return Err(Fail::new(format!(
            "{key}.reduction_rank: {r} (expected 0: no channel axis, or 1)"
        )));
    }
    let groups = s.groups.unwrap_or(1);
    if groups > 1 && s.num_filters.is_none_or(|n| n % groups != 0) {
        return Err(Fail::new(format!(
            "{key}.groups: {groups} groups need num_filters divisible by {groups} (num_filters = {:?})",
            s.num_filters
        )));
    }
    if s.output_shape.is_some() && !transpose {
        return Err(Fail::new(format!(
            "{key}.output_shape: only a ConvolutionTranspose layer has an output_shape"
        )));
    }
    let mut c = if transpose {
        Convolution::transpose(&shape)
    } else {
        Convolution::new(&shape)
    }
    .name(&s.name);
    if let Some(n) = s.num_filters {
        c = c.num_filters(n);
    }
    if let Some(a) = &s.activation {
        c = c.activation(activation(a, &format!("{key}.activation"))?);
    }
    if let Some(i) = &s.init {
        c = c.init(initializer(i, &format!("{key}.init"))?);
    }
    if let Some(p) = &s.pad {
        let p = p.values();
        check_count(key, "pad", p.len(), rank)?;
        c = c.pad_axes(&p);
    }
    if let Some(st) = &s.strides {
        check_axes(key, "strides", &st.values(), rank, 1)?;
        c = c.strides(&st.values());
    }
    if let Some(d) = &s.dilation {
        check_axes(key, "dilation", &d.values(), rank, 1)?;
        c = c.dilation(&d.values());
    }
    if let Some(o) = &s.output_shape {
        check_axes(key, "output_shape", &o.values(), rank, 1)?;
        c = c.output_shape(&o.values());
    }
    if let Some(b) = s.bias {
        c = c.bias(b);
    }
    if let Some(b) = s.init_bias {
        c = c.init_bias(b);
    }
    if let Some(r) = s.reduction_rank {
        c = c.reduction_rank(r);
    }
    Ok(Arc::new(c.groups(groups)))
}

fn pooling(s: PoolSpec, kind: &str, key: &str) -> Result<LayerRef> {
    let shape = filter_shape(key, kind, &s.filter_shape)?;
    let rank = shape.len();
    let mut p = if kind == "MaxPooling" {
        Pooling::max(&shape)
    } else {
        Pooling::average(&shape)
    }
    .name(&s.name);
    if let Some(st) = &s.strides {
        check_axes(key, "strides", &st.values(), rank, 1)?;
        p = p.strides(&st.values());
    }
    if let Some(pad) = &s.pad {
        let pad = pad.values();
        check_count(key, "pad", pad.len(), rank)?;
        p = p.pad_axes(&pad);
    }
    Ok(Arc::new(p))
}

/// The layer of a convolutional `kind` from its table (without `type`); `key` is
/// `model.layers[i] (Kind)`.
pub fn build(kind: &str, rest: toml::Value, key: &str) -> Result<LayerRef> {
    match kind {
        "MaxPooling" | "AveragePooling" => pooling(decode(rest, key)?, kind, key),
        "GlobalMaxPooling" | "GlobalAveragePooling" => {
            let s: GlobalSpec = decode(rest, key)?;
            Ok(Arc::new(
                if kind == "GlobalMaxPooling" {
                    Pooling::global_max()
                } else {
                    Pooling::global_average()
                }
                .name(&s.name),
            ))
        }
        _ => convolution(decode(rest, key)?, kind, key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(layer: &str) -> String {
        let v: toml::Value = toml::from_str(&format!("l = {layer}")).unwrap();
        let t = v["l"].as_table().unwrap().clone();
        let kind = t["type"].as_str().unwrap().to_string();
        let mut rest = t;
        rest.remove("type");
        match build(&kind, toml::Value::Table(rest), "model.layers[0] (X)") {
            Ok(_) => panic!("{layer} was accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn bad_settings_name_the_layer_and_the_key() {
        for (layer, want) in [
            (
                r#"{ type = "Convolution2D", filter_shape = [5, 5, 5], num_filters = 8 }"#,
                "model.layers[0] (X).filter_shape: [5, 5, 5] does not fit Convolution2D",
            ),
            (
                r#"{ type = "Convolution", filter_shape = [3, 0], num_filters = 8 }"#,
                "filter_shape: 0 is not allowed",
            ),
            (
                r#"{ type = "Convolution2D", filter_shape = 3, strides = [1, 2, 2] }"#,
                "strides: 3 values for a filter of rank 2",
            ),
            (
                r#"{ type = "Convolution2D", filter_shape = 3, strides = 0 }"#,
                "strides: 0 is not allowed",
            ),
            (
                r#"{ type = "Convolution1D", filter_shape = 3, num_filters = 0 }"#,
                "num_filters: 0 is not allowed",
            ),
            (
                r#"{ type = "Convolution2D", filter_shape = 3, num_filters = 6, groups = 4 }"#,
                "groups: 4 groups need num_filters divisible by 4",
            ),
            (
                r#"{ type = "Convolution2D", filter_shape = 3, reduction_rank = 2 }"#,
                "reduction_rank: 2",
            ),
            (
                r#"{ type = "Convolution2D", filter_shape = 3, output_shape = [4, 4] }"#,
                "output_shape: only a ConvolutionTranspose",
            ),
            (
                r#"{ type = "MaxPooling", filter_shape = [2, 2], strides = [2, 2, 2] }"#,
                "strides: 3 values",
            ),
            (
                r#"{ type = "Convolution3D", filter_shape = 3, dilation = [1, 0, 1] }"#,
                "dilation: 0 is not allowed",
            ),
            (
                r#"{ type = "Convolution2D", filter_shape = 3, padding = true }"#,
                "unknown field `padding`",
            ),
        ] {
            let e = err(layer);
            assert!(e.contains("model.layers[0] (X)"), "{layer}: {e}");
            assert!(e.contains(want), "{layer}: {e}");
        }
    }

    #[test]
    fn fixed_ranks_come_from_the_type() {
        assert_eq!(fixed_rank("Convolution2D"), Some(2));
        assert_eq!(fixed_rank("ConvolutionTranspose3D"), Some(3));
        assert_eq!(fixed_rank("Convolution"), None);
        assert_eq!(fixed_rank("MaxPooling"), None);
    }
}

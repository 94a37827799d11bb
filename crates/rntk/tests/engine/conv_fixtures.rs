//! Every case of tests/fixtures/cntk_conv/conv_ops.json against CNTK 2.7: convolution
//! (1/2/3D, CNTK's auto padding, strides, groups, reduction_rank 0, dilation),
//! sequential convolution (along the sequence axis), transposed convolution,
//! max/average/global pooling and max unpooling — forward values
//! and gradients in f64 (rtol 1e-9). The case's CNTK expression is parsed into rntk's
//! attributes, so each case runs exactly the call CNTK ran.

use crate::common;

use common::*;
use rntk::functions::*;
use rntk::ops::{ConvAttrs, PoolAttrs, PoolingType};
use rntk::Variable;
use serde_json::Value as Json;
use std::collections::HashMap;

/// Cases not compared in full, with the reason.
const PARTIAL: &[(&str, &str)] = &[(
    "maxunpool_",
    "CNTK 2.7's gradient of max unpooling is max_pool(dY), not the derivative; rntk computes \
         the derivative (checked by finite differences in gradcheck_conv.rs): outputs only",
)];

/// The keyword arguments of a CNTK call, as text: `key=value` at the top nesting level.
fn kwargs(expr: &str) -> HashMap<String, String> {
    let open = expr.find('(').expect("call");
    let body = &expr[open + 1..];
    let mut depth = 0i32;
    let mut parts = Vec::new();
    let mut cur = String::new();
    for ch in body.chars() {
        match ch {
            '(' | '[' => depth += 1,
            ')' | ']' if depth == 0 => break,
            ')' | ']' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    parts.push(cur);
    let mut out = HashMap::new();
    let mut positional = 0;
    for p in parts {
        let p = p.trim();
        match p.split_once('=') {
            Some((k, v)) if !k.contains('(') => {
                out.insert(k.trim().to_string(), v.trim().to_string());
            }
            _ => {
                out.insert(format!("#{positional}"), p.to_string());
                positional += 1;
            }
        }
    }
    out
}

/// `(1, 2)`, `(1,) + (2, 2)`, `2` → numbers.
fn ints(v: &str) -> Vec<usize> {
    v.split(['(', ')', ',', '+', ' '])
        .filter(|t| !t.is_empty())
        .map(|t| t.parse().unwrap_or_else(|_| panic!("number in {v}")))
        .collect()
}

fn bools(v: &str) -> Vec<bool> {
    v.split(['[', ']', ',', ' '])
        .filter(|t| !t.is_empty())
        .map(|t| t == "True")
        .collect()
}

fn conv_attrs(kw: &HashMap<String, String>) -> ConvAttrs {
    let mut a = ConvAttrs::default();
    if let Some(v) = kw.get("strides") {
        a.strides = ints(v);
    }
    if let Some(v) = kw.get("auto_padding") {
        a.auto_padding = bools(v);
    }
    if let Some(v) = kw.get("dilation") {
        a.dilation = ints(v);
    }
    if let Some(v) = kw.get("groups") {
        a.groups = v.parse().unwrap();
    }
    if let Some(v) = kw.get("reduction_rank") {
        a.reduction_rank = v.parse().unwrap();
    }
    if let Some(v) = kw.get("output_shape") {
        a.output_shape = Some(ints(v));
    }
    a.sequential = kw.get("sequential").is_some_and(|v| v == "True");
    a
}

fn pool_attrs(kw: &HashMap<String, String>, window_arg: &str) -> PoolAttrs {
    let kind = if kw["#1"].contains("AVG") {
        PoolingType::Average
    } else {
        PoolingType::Max
    };
    let mut a = PoolAttrs::new(kind, Some(ints(&kw[window_arg])));
    if let Some(v) = kw.get("strides") {
        a.strides = ints(v);
    }
    if let Some(v) = kw.get("auto_padding") {
        a.auto_padding = bools(v);
    }
    a.ceil_out_dim = kw.get("ceil_out_dim").is_some_and(|v| v == "True");
    a.include_pad = kw.get("include_pad").is_some_and(|v| v == "True");
    a
}

/// The rntk expression of a case's CNTK expression.
fn build(expr: &str, v: &HashMap<String, Variable>) -> Variable {
    let expr = expr.split("  [").next().unwrap();
    if let Some(rest) = expr.strip_prefix("C.layers.Global") {
        let kind = if rest.starts_with("Max") {
            PoolingType::Max
        } else {
            PoolingType::Average
        };
        return global_pooling(&v["x"], kind).unwrap();
    }
    if expr.starts_with("C.convolution_transpose(") {
        return convolution_transpose(&v["W"], &v["x"], conv_attrs(&kwargs(expr))).unwrap();
    }
    if expr.starts_with("C.convolution(") {
        return convolution(&v["W"], &v["x"], conv_attrs(&kwargs(expr))).unwrap();
    }
    if expr.starts_with("C.pooling(") {
        return pooling(&v["x"], pool_attrs(&kwargs(expr), "#2")).unwrap();
    }
    if let Some(rest) = expr.strip_prefix("C.unpooling(") {
        // C.unpooling(U, x, C.MAX_UNPOOLING, window, …) with U a name or a pooling (× c)
        let kw = kwargs(expr);
        let attrs = pool_attrs(&kw, "#3");
        let u = if rest.starts_with("u,") {
            v["u"].clone()
        } else {
            let inner = &kw["#0"];
            let (call, scale) = match inner.rsplit_once(") * ") {
                Some((c, s)) => (format!("{c})"), s.parse::<f64>().unwrap()),
                None => (inner.clone(), 1.0),
            };
            let p = pooling(&v["x"], pool_attrs(&kwargs(&call), "#2")).unwrap();
            if scale == 1.0 {
                p
            } else {
                element_times(&p, &rntk::scalar(scale, rntk::DType::F64)).unwrap()
            }
        };
        return unpooling(&u, &v["x"], attrs).unwrap();
    }
    panic!("unknown expression {expr}");
}

fn strip_grads(case: &Json) -> Json {
    let mut c = case.clone();
    c.as_object_mut().unwrap().remove("grads");
    c
}

#[test]
fn conv_ops_equal_cntk() {
    let cases = load_cases("cntk_conv/conv_ops.json");
    let mut ran = 0;
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        if case.get("error").is_some() {
            continue; // refusals: conv_errors below
        }
        let partial = PARTIAL.iter().find(|(p, _)| name.starts_with(p));
        match partial {
            Some(_) => run_case(&strip_grads(case), 1e-9, |v| {
                build(case["expr"].as_str().unwrap(), v)
            }),
            None => run_case(case, 1e-9, |v| build(case["expr"].as_str().unwrap(), v)),
        }
        ran += 1;
    }
    assert!(ran >= 60, "only {ran} cases ran");
}

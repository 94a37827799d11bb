//! Hostile model files: truncated, not a container, another format or version, bad
//! JSON, shapes that disagree with the weights or with shape inference, dangling and
//! forward references, cycles without a delay, absurd sizes and attributes, random
//! corruption, very deep graphs. Each is refused with an `Error::Format` that names
//! the problem — never a panic — and saving is atomic.
//!
//! `container.rs`: the file as bytes (truncated, not a container, format and
//! version, JSON, random corruption, atomic saving); `structure.rs`: the graph it
//! describes (shapes, references, cycles); `limits.rs`: absurd sizes, delay
//! offsets and attributes, very deep graphs. The helpers here build and edit files.

mod container;
mod limits;
mod structure;

use crate::persist_support;

use persist_support::TempDir;
use rntk::functions::*;
use rntk::layers::*;
use rntk::persist::graph_format::*;
use rntk::persist::{model_from_bytes, model_to_bytes, weights, METADATA_KEY};
use rntk::{input_variable, sequence, DType, Error, Function, Shape, Tensor};
use serde_json::{json, Value as Json};
use std::collections::HashMap;

/// A small model with every kind of node: a recurrent loop (placeholders, delays),
/// blocks, parameters, constants, a sequence input and a combine of two outputs.
fn model() -> Function {
    let x = sequence::input_variable([2]);
    let z = Sequential::default()
        // the step loop (not the fused scan): placeholders and delays in the file
        .then(Fold::new(Lstm::new(3).fused(false)))
        .then(Dense::new(1))
        .apply(&x)
        .unwrap();
    let t = input_variable([1]);
    let loss = square(&minus(&z, &t).unwrap()).unwrap();
    Function::combine(&[z, loss], "m").unwrap()
}

fn good_bytes() -> Vec<u8> {
    model_to_bytes(&model()).unwrap()
}

fn graph_of(bytes: &[u8]) -> Json {
    let meta = weights::metadata("m", bytes).unwrap();
    serde_json::from_str(&meta[METADATA_KEY]).unwrap()
}

/// The model file with the same tensors and `graph` as its description.
fn with_graph(bytes: &[u8], graph: &str) -> Vec<u8> {
    let c = weights::decode("m", bytes).unwrap();
    let mut tensors: Vec<(String, Tensor)> = c.tensors.into_iter().collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    weights::encode(
        "m",
        &tensors,
        HashMap::from([(METADATA_KEY.into(), graph.into())]),
    )
    .unwrap()
}

/// The model file after `edit` of its JSON description.
fn edited(edit: impl FnOnce(&mut Json)) -> Vec<u8> {
    let b = good_bytes();
    let mut g = graph_of(&b);
    edit(&mut g);
    with_graph(&b, &g.to_string())
}

/// A model file from a description and tensors.
fn file_of(desc: &GraphDesc, tensors: &[(String, Tensor)]) -> Vec<u8> {
    let json = serde_json::to_string(desc).unwrap();
    weights::encode("m", tensors, HashMap::from([(METADATA_KEY.into(), json)])).unwrap()
}

/// Loading must fail with a format error whose message contains every `needle`.
#[track_caller]
fn refused(bytes: &[u8], needles: &[&str]) -> String {
    match model_from_bytes(bytes) {
        Ok(f) => panic!("loaded a hostile file: {f:?}"),
        Err(Error::Format { file, detail }) => {
            assert_eq!(file, "<in-memory model>");
            for n in needles {
                assert!(
                    detail.contains(n),
                    "message {detail:?} does not mention {n:?}"
                );
            }
            detail
        }
        Err(e) => panic!("expected a format error, got {e:?}"),
    }
}

fn index_of(g: &Json, key: &str, pred: impl Fn(&Json) -> bool) -> usize {
    g[key].as_array().unwrap().iter().position(pred).unwrap()
}

fn first_param(g: &Json) -> usize {
    index_of(g, "variables", |v| v["kind"] == "parameter")
}

fn first_primitive(g: &Json, op: &str) -> usize {
    index_of(g, "functions", |f| f["kind"]["primitive"].get(op).is_some())
}

#[test]
fn the_model_itself_loads() {
    model_from_bytes(&good_bytes()).unwrap();
}

fn info(shape: &[usize], axes: AxesDesc) -> InfoDesc {
    InfoDesc {
        shape: Shape::from(shape),
        dtype: DTypeDesc::Float32,
        dynamic_axes: axes,
        is_sparse: false,
        needs_gradient: false,
    }
}

fn leaf(kind: LeafKind, name: &str, i: InfoDesc, replaced_by: Option<VarRef>) -> LeafDesc {
    LeafDesc {
        kind,
        uid: name.into(),
        name: name.into(),
        info: i,
        tensor: None,
        replaced_by,
    }
}

fn desc(
    variables: Vec<LeafDesc>,
    functions: Vec<FunctionDesc>,
    root: usize,
    outputs: Vec<VarRef>,
) -> GraphDesc {
    GraphDesc {
        format: FORMAT.into(),
        version: VERSION,
        axes: vec![AxisDesc {
            name: "defaultDynamicAxis".into(),
            default: true,
        }],
        variables,
        functions,
        root,
        outputs,
    }
}

fn plus_fn(a: VarRef, b: VarRef, out: InfoDesc) -> FunctionDesc {
    FunctionDesc {
        uid: "Plus".into(),
        name: "p".into(),
        kind: FnKindDesc::Primitive(rntk::ops::Op::Binary(rntk::ops::BinaryOp::Plus)),
        inputs: vec![a, b],
        outputs: vec![out],
    }
}

//! Hostile model files: truncated, not a container, another format or version, bad
//! JSON, shapes that disagree with the weights or with shape inference, dangling and
//! forward references, cycles without a delay, absurd sizes and attributes, random
//! corruption, very deep graphs. Each is refused with an `Error::Format` that names
//! the problem — never a panic — and saving is atomic.

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

#[test]
fn truncated_files() {
    let b = good_bytes();
    // every prefix, then a few lengths cut from the end and some bytes appended
    for n in 0..b.len() {
        refused(&b[..n], &[]);
    }
    let mut longer = b.clone();
    longer.extend_from_slice(b"junk");
    refused(&longer, &["safetensors"]);
    refused(&b[..b.len() - 1], &["safetensors"]);
}

#[test]
fn not_a_model_container() {
    refused(b"", &["expected a safetensors container"]);
    refused(b"hello, world", &["expected a safetensors container"]);
    refused(&[0xff; 64], &["expected a safetensors container"]);
    // a header size far beyond the file: refused before anything is allocated
    let mut huge = u64::MAX.to_le_bytes().to_vec();
    huge.extend_from_slice(b"{}");
    refused(&huge, &["safetensors"]);
    let mut big = (1u64 << 40).to_le_bytes().to_vec();
    big.extend_from_slice(b"{}");
    refused(&big, &["safetensors"]);
    // a header that claims a 4 GB tensor without its data
    let header = br#"{"w":{"dtype":"F32","shape":[1073741824],"data_offsets":[0,4294967296]}}"#;
    let mut claim = (header.len() as u64).to_le_bytes().to_vec();
    claim.extend_from_slice(header);
    refused(&claim, &["safetensors"]);
    // a header whose shape overflows
    let header =
        br#"{"w":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,0]}}"#;
    let mut claim = (header.len() as u64).to_le_bytes().to_vec();
    claim.extend_from_slice(header);
    refused(&claim, &["safetensors"]);
}

#[test]
fn safetensors_files_that_are_not_rntk_models() {
    let t = vec![(
        "w".to_string(),
        Tensor::from_vec([2], vec![1.0f32, 2.0]).unwrap(),
    )];
    let plain = weights::encode("m", &t, HashMap::new()).unwrap();
    refused(&plain, &["not an rntk model", "no metadata"]);
    let other = weights::encode("m", &t, HashMap::from([("format".into(), "pt".into())])).unwrap();
    refused(&other, &["not an rntk model", "format"]);
    // an integer tensor
    let header = br#"{"__metadata__":{"rntk-model":"{\"format\":\"rntk-model\",\"version\":1}"},"w":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}}"#;
    let mut b = (header.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(header);
    b.extend_from_slice(&[0, 0, 0, 0]);
    refused(&b, &[]);
}

#[test]
fn wrong_format_or_version() {
    refused(
        &edited(|g| g["format"] = json!("onnx")),
        &["expected format \"rntk-model\"", "\"onnx\""],
    );
    refused(
        &edited(|g| g["version"] = json!(2)),
        &["version 2 is newer", "version 1", "newer rntk"],
    );
    refused(
        &edited(|g| g["version"] = json!(0)),
        &["expected model format version 1, found version 0"],
    );
    refused(&edited(|g| g["version"] = json!("1")), &["\"version\""]);
    refused(
        &edited(|g| {
            g.as_object_mut().unwrap().remove("version");
        }),
        &["version"],
    );
    // a newer version is refused before its (unknown) contents are looked at
    let b = good_bytes();
    refused(
        &with_graph(&b, r#"{"format":"rntk-model","version":7,"nodes":"??"}"#),
        &["version 7 is newer"],
    );
}

#[test]
fn bad_json() {
    let b = good_bytes();
    for text in ["", "{", "[]", "null", "\"rntk-model\"", "{\"format\":1}"] {
        refused(&with_graph(&b, text), &["graph description"]);
    }
    let g = graph_of(&b).to_string();
    refused(&with_graph(&b, &g[..g.len() / 2]), &["graph description"]);
    refused(
        &edited(|g| g["surprise"] = json!(1)),
        &["does not follow model format version 1", "surprise"],
    );
    refused(
        &edited(|g| g["functions"][0]["kind"] = json!({"primitive": {"Warp": {}}})),
        &["does not follow model format version 1", "Warp"],
    );
    refused(
        &edited(|g| g["variables"][0]["info"]["dtype"] = json!("int8")),
        &["int8"],
    );
    refused(
        &edited(|g| g["variables"][0]["info"]["shape"] = json!([-3])),
        &["dimension -3"],
    );
    refused(
        &edited(|g| g["variables"] = json!({})),
        &["expected a sequence"],
    );
}

#[test]
fn shapes_that_do_not_match_the_weights() {
    refused(
        &edited(|g| {
            let p = first_param(g);
            g["variables"][p]["info"]["shape"] = json!([5, 5]);
        }),
        &["declared float32 (5, 5)", "but tensor"],
    );
    refused(
        &edited(|g| {
            let p = first_param(g);
            g["variables"][p]["info"]["dtype"] = json!("float64");
        }),
        &["declared float64", "float32"],
    );
    // the tensor itself replaced by one of another shape
    let b = good_bytes();
    let g = graph_of(&b);
    let key = g["variables"][first_param(&g)]["tensor"]
        .as_str()
        .unwrap()
        .to_string();
    let c = weights::decode("m", &b).unwrap();
    let mut tensors: Vec<(String, Tensor)> = c.tensors.into_iter().collect();
    for (k, t) in &mut tensors {
        if *k == key {
            *t = Tensor::zeros([7], DType::F32);
        }
    }
    let f = weights::encode("m", &tensors, weights::decode("m", &b).unwrap().metadata).unwrap();
    refused(&f, &[&key, "(7,)"]);
    // a tensor nobody uses, and a value for an input
    tensors.push(("stray".into(), Tensor::zeros([1], DType::F32)));
    let f = weights::encode("m", &tensors, weights::decode("m", &b).unwrap().metadata).unwrap();
    refused(&f, &[]);
    let mut g2 = g.clone();
    let i = index_of(&g2, "variables", |v| v["kind"] == "input");
    g2["variables"][i]["tensor"] = json!(key);
    refused(&with_graph(&b, &g2.to_string()), &["has no value"]);
    // a parameter with dynamic axes, a sparse constant
    refused(
        &edited(|g| {
            let p = first_param(g);
            g["variables"][p]["info"]["dynamic_axes"] = json!("batch");
        }),
        &["stored as [#]"],
    );
    refused(
        &edited(|g| {
            let c = index_of(g, "variables", |v| v["kind"] == "constant");
            g["variables"][c]["info"]["is_sparse"] = json!(true);
        }),
        &["sparse"],
    );
}

#[test]
fn shapes_that_disagree_with_inference() {
    refused(
        &edited(|g| {
            let f = first_primitive(g, "Times");
            g["functions"][f]["outputs"][0]["shape"] = json!([99]);
        }),
        &["stored as", "(99,)", "shape inference gives"],
    );
    refused(
        &edited(|g| {
            let f = first_primitive(g, "Times");
            g["functions"][f]["outputs"][0]["dynamic_axes"] = json!("none");
        }),
        &["shape inference gives"],
    );
    refused(
        &edited(|g| {
            let f = first_primitive(g, "Times");
            g["functions"][f]["outputs"]
                .as_array_mut()
                .unwrap()
                .push(json!(null));
        }),
        &[],
    );
    // an op whose operands do not fit: inference itself refuses it
    refused(
        &edited(|g| {
            let f = first_primitive(g, "Times");
            g["functions"][f]["kind"] =
                json!({"primitive": {"Slice": {"axis": 0, "begin": 5, "end": 2, "stride": 1}}});
        }),
        &["function #"],
    );
}

/// An edit of a model's JSON description.
type Edit = dyn Fn(&mut Json);

#[test]
fn dangling_and_forward_references() {
    let cases: Vec<(Box<Edit>, &str)> = vec![
        (
            Box::new(|g| g["functions"][0]["inputs"][0] = json!({"leaf": 9999})),
            "variable #9999",
        ),
        (
            Box::new(|g| g["functions"][0]["inputs"][0] = json!({"output": [9999, 0]})),
            "function #9999",
        ),
        (
            Box::new(|g| {
                let n = g["functions"].as_array().unwrap().len();
                g["functions"][n - 1]["inputs"][0] = json!({"output": [0, 7]});
            }),
            "output 7 of function #0",
        ),
        (
            Box::new(|g| g["root"] = json!(123456)),
            "root is function #123456",
        ),
        (
            Box::new(|g| g["outputs"][0] = json!({"leaf": 0})),
            "model outputs",
        ),
        (
            Box::new(|g| {
                g["outputs"].as_array_mut().unwrap().pop();
            }),
            "model outputs",
        ),
        (
            Box::new(|g| {
                let v = index_of(g, "variables", |v| {
                    v["info"]["dynamic_axes"].get("sequence").is_some()
                });
                g["variables"][v]["info"]["dynamic_axes"] = json!({"sequence": 42});
            }),
            "sequence axis #42",
        ),
        (
            Box::new(|g| {
                let p = first_param(g);
                g["variables"][p]["tensor"] = json!("nope");
            }),
            "tensor 'nope'",
        ),
        (
            Box::new(|g| {
                let p = first_param(g);
                g["variables"][p].as_object_mut().unwrap().remove("tensor");
            }),
            "expected a 'tensor' key",
        ),
        (
            Box::new(|g| {
                let p = index_of(g, "variables", |v| v.get("replaced_by").is_some());
                g["variables"][p]["replaced_by"] = json!({"output": [77777, 0]});
            }),
            "function #77777",
        ),
        (
            Box::new(|g| {
                let p = first_param(g);
                g["variables"][p]["replaced_by"] = json!({"leaf": 0});
            }),
            "only a placeholder",
        ),
        (
            Box::new(|g| {
                let b = index_of(g, "functions", |f| f["kind"].get("block").is_some());
                g["functions"][b]["kind"]["block"]["body"] = json!(100000);
            }),
            "its body, function #100000",
        ),
        (
            Box::new(|g| {
                let b = index_of(g, "functions", |f| f["kind"].get("block").is_some());
                g["functions"][b]["kind"]["block"]["args"] = json!([]);
            }),
            "one argument placeholder per input",
        ),
        (
            Box::new(|g| {
                let b = index_of(g, "functions", |f| f["kind"].get("block").is_some());
                let p = first_param(g);
                let n = g["functions"][b]["kind"]["block"]["args"]
                    .as_array()
                    .unwrap()
                    .len();
                g["functions"][b]["kind"]["block"]["args"] = json!(vec![p; n]);
            }),
            "is not a placeholder",
        ),
        (
            // the last function moved to the front: it uses functions listed after it
            Box::new(|g| {
                let fs = g["functions"].as_array_mut().unwrap();
                let last = fs.pop().unwrap();
                fs.insert(0, last);
            }),
            "not listed before it",
        ),
    ];
    for (edit, needle) in cases {
        refused(&edited(edit), &[needle]);
    }
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

#[test]
fn cycles_without_delay() {
    let seq = || info(&[2], AxesDesc::Sequence(0));
    // p = x + ph, ph := p: a loop with no past_value / future_value
    let d = desc(
        vec![
            leaf(LeafKind::Input, "x", seq(), None),
            leaf(
                LeafKind::Placeholder,
                "ph",
                seq(),
                Some(VarRef::Output(0, 0)),
            ),
        ],
        vec![plus_fn(VarRef::Leaf(0), VarRef::Leaf(1), seq())],
        0,
        vec![VarRef::Output(0, 0)],
    );
    refused(&file_of(&d, &[]), &["cycle with no delay"]);
    // the same graph with the replacement removed loads (a partial model)
    let mut open = d.clone();
    open.variables[1].replaced_by = None;
    let f = model_from_bytes(&file_of(&open, &[])).unwrap();
    assert_eq!(f.placeholders().len(), 1);
    // placeholders replacing each other in a circle, or themselves
    let mut circle = d.clone();
    circle.variables.push(leaf(
        LeafKind::Placeholder,
        "ph2",
        seq(),
        Some(VarRef::Leaf(1)),
    ));
    circle.variables[1].replaced_by = Some(VarRef::Leaf(2));
    refused(&file_of(&circle, &[]), &["in a circle"]);
    let mut selfish = d.clone();
    selfish.variables[1].replaced_by = Some(VarRef::Leaf(1));
    refused(&file_of(&selfish, &[]), &["in a circle"]);
    // a replacement of the wrong shape
    let mut wrong = d;
    wrong.variables.push(leaf(
        LeafKind::Input,
        "y",
        info(&[5], AxesDesc::Sequence(0)),
        None,
    ));
    wrong.variables[1].replaced_by = Some(VarRef::Leaf(2));
    refused(&file_of(&wrong, &[]), &["closing recurrent loops"]);
}

#[test]
fn absurd_sizes() {
    let batch = |s: &[usize]| info(s, AxesDesc::Batch);
    let one = |s: &[usize]| {
        desc(
            vec![leaf(LeafKind::Input, "x", batch(s), None)],
            vec![FunctionDesc {
                uid: "Neg".into(),
                name: String::new(),
                kind: FnKindDesc::Primitive(rntk::ops::Op::Unary(rntk::ops::UnaryOp::Negate)),
                inputs: vec![VarRef::Leaf(0)],
                outputs: vec![batch(s)],
            }],
            0,
            vec![VarRef::Output(0, 0)],
        )
    };
    model_from_bytes(&file_of(&one(&[3, 4]), &[])).unwrap();
    refused(&file_of(&one(&[1 << 40, 1 << 40]), &[]), &["more than"]);
    refused(&file_of(&one(&[1 << 62]), &[]), &["more than"]);
    refused(
        &file_of(&one(&[rntk::tensor::INFERRED]), &[]),
        &["fully known"],
    );
    // issue 13: a zero dimension no longer hides the others, and one sample is
    // within limits.max_sample_elements (2^30 by default)
    model_from_bytes(&file_of(&one(&[0, 5]), &[])).unwrap();
    refused(
        &file_of(&one(&[0, 1 << 62, 1 << 62]), &[]),
        &[
            "variable #0",
            "(0, 4611686018427387904, 4611686018427387904)",
            "overflows",
        ],
    );
    refused(
        &file_of(&one(&[0, 1 << 40]), &[]),
        &["limit of 1073741824", "RNTK_MAX_SAMPLE_ELEMENTS"],
    );
    // an input of 2^40 elements loads no more (eval would allocate terabytes)
    refused(
        &file_of(&one(&[1 << 40]), &[]),
        &[
            "variable #0 (input x 'x')",
            "(1099511627776,)",
            "more than the limit of 1073741824",
        ],
    );
    model_from_bytes(&file_of(&one(&[1 << 30]), &[])).unwrap();
}

/// Issue 13: delay offsets of 0 (would read a step not computed yet), 2^62 and
/// 2^64 - 1 (`t + offset` wraps) are refused; 1 and 7 load.
#[test]
fn delay_offsets_beyond_the_limits() {
    use rntk::ops::Op;
    let seq = || info(&[2], AxesDesc::Sequence(0));
    let with = |op: Op| {
        desc(
            vec![
                leaf(LeafKind::Input, "x", seq(), None),
                leaf(LeafKind::Input, "s", info(&[2], AxesDesc::Batch), None),
            ],
            vec![FunctionDesc {
                uid: "D".into(),
                name: "delayed".into(),
                kind: FnKindDesc::Primitive(op),
                inputs: vec![VarRef::Leaf(0), VarRef::Leaf(1)],
                outputs: vec![seq()],
            }],
            0,
            vec![VarRef::Output(0, 0)],
        )
    };
    for offset in [1, 7, 1 << 20] {
        model_from_bytes(&file_of(&with(Op::PastValue { offset }), &[])).unwrap();
        model_from_bytes(&file_of(&with(Op::FutureValue { offset }), &[])).unwrap();
    }
    refused(
        &file_of(&with(Op::PastValue { offset: 0 }), &[]),
        &["function #0 (D 'delayed')", "time step (offset) 0"],
    );
    for offset in [(1 << 20) + 1, 1 << 62, usize::MAX] {
        for op in [Op::PastValue { offset }, Op::FutureValue { offset }] {
            refused(
                &file_of(&with(op), &[]),
                &[
                    "function #0 (D 'delayed')",
                    &format!("time step (offset) {offset} is more than the limit of 1048576"),
                    "RNTK_MAX_DELAY_OFFSET",
                ],
            );
        }
    }
}

#[test]
fn absurd_op_attributes() {
    use rntk::ops::{Op, ReduceOp};
    let x = || info(&[2, 3], AxesDesc::Batch);
    let ops = vec![
        Op::Slice {
            axis: 0,
            begin: isize::MIN,
            end: isize::MAX,
            stride: isize::MIN,
        },
        Op::Slice {
            axis: isize::MIN,
            begin: 0,
            end: 1,
            stride: 1,
        },
        Op::Slice {
            axis: 1,
            begin: 0,
            end: 3,
            stride: 0,
        },
        Op::Slice {
            axis: 1,
            begin: isize::MAX,
            end: isize::MIN,
            stride: -1,
        },
        Op::Transpose { perm: vec![7, 0] },
        Op::Transpose { perm: vec![0, 0] },
        Op::Transpose {
            perm: vec![usize::MAX, 1],
        },
        Op::Splice { axis: isize::MIN },
        Op::Splice { axis: isize::MAX },
        Op::Softmax { axis: isize::MIN },
        Op::LogSoftmax { axis: 99 },
        Op::Reduce {
            op: ReduceOp::Sum,
            axes: Some(vec![isize::MIN, isize::MAX]),
            keepdims: true,
        },
        Op::Reshape {
            shape: Shape::from([1 << 40, 1 << 40]),
        },
        Op::Reshape {
            shape: Shape::from([usize::MAX - 1]),
        },
        Op::Reshape {
            shape: Shape::from([rntk::tensor::INFERRED, rntk::tensor::INFERRED]),
        },
        Op::Reshape {
            shape: Shape::from([0, rntk::tensor::INFERRED]),
        },
        Op::OneHot {
            num_classes: 1 << 62,
        },
        Op::OneHot { num_classes: 0 },
        Op::Dropout {
            rate: 7.5,
            seed: u64::MAX,
        },
        Op::Dropout {
            rate: -1.0,
            seed: 0,
        },
        Op::Times {
            output_rank: usize::MAX,
            infer_input_rank_to_map: i32::MIN,
        },
        Op::Times {
            output_rank: 0,
            infer_input_rank_to_map: i32::MAX,
        },
        Op::TransposeTimes {
            output_rank: 1 << 40,
        },
        Op::SeqSlice {
            begin: isize::MIN,
            end: isize::MAX,
        },
        Op::PastValue { offset: 0 },
        Op::Gather,
        Op::Clip,
    ];
    for op in ops {
        // one operand, then the operand twice: wrong arities must be refused too
        for n in [1, 2] {
            let d = desc(
                vec![leaf(LeafKind::Input, "x", x(), None)],
                vec![FunctionDesc {
                    uid: "F".into(),
                    name: String::new(),
                    kind: FnKindDesc::Primitive(op.clone()),
                    inputs: vec![VarRef::Leaf(0); n],
                    outputs: vec![x()],
                }],
                0,
                vec![VarRef::Output(0, 0)],
            );
            // refused, or (if the op happens to accept it) the stored output disagrees
            refused(&file_of(&d, &[]), &[]);
        }
    }
}

/// xorshift: deterministic corruption.
fn rng(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn random_corruption_never_panics() {
    let b = good_bytes();
    let mut s = 0x9e3779b97f4a7c15u64;
    let mut refusals = 0;
    for _ in 0..3000 {
        let mut m = b.clone();
        for _ in 0..1 + rng(&mut s) % 3 {
            let i = (rng(&mut s) % m.len() as u64) as usize;
            m[i] = rng(&mut s) as u8;
        }
        match model_from_bytes(&m) {
            Ok(_) => {}
            Err(Error::Format { .. }) => refusals += 1,
            Err(e) => panic!("expected a format error, got {e:?}"),
        }
    }
    assert!(refusals > 1000, "{refusals}");
    // corruption inside the JSON text only (the container stays valid)
    let g = graph_of(&b).to_string().into_bytes();
    for _ in 0..2000 {
        let mut m = g.clone();
        let i = (rng(&mut s) % m.len() as u64) as usize;
        m[i] = b"0123456789-[]{}\",:aez"[(rng(&mut s) % 21) as usize];
        if let Ok(text) = String::from_utf8(m) {
            match model_from_bytes(&with_graph(&b, &text)) {
                Ok(_) | Err(Error::Format { .. }) => {}
                Err(e) => panic!("expected a format error, got {e:?}"),
            }
        }
    }
}

/// A chain of `n` negations of an input.
fn chain(n: usize) -> Function {
    let x = input_variable([2]);
    let mut y = x;
    for _ in 0..n {
        y = negate(&y).unwrap();
    }
    y.owner().unwrap()
}

#[test]
fn deep_graphs_load_and_drop_on_a_small_stack() {
    let bytes = model_to_bytes(&chain(30_000)).unwrap();
    // the valid deep graph loads; a broken one (last function refers nowhere) is
    // refused after 30 000 functions were built — and both are dropped — on a thread
    // with a 1 MiB stack
    let mut g = graph_of(&bytes);
    let n = g["functions"].as_array().unwrap().len();
    g["functions"][n - 1]["inputs"][0] = json!({"leaf": 5});
    let broken = with_graph(&bytes, &g.to_string());
    std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(move || {
            let f = model_from_bytes(&bytes).unwrap();
            assert_eq!(f.op_name(), "Negate");
            drop(f);
            refused(&broken, &["variable #5"]);
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn saving_is_atomic() {
    let dir = TempDir::new("atomic");
    let path = dir.file("m.rntk");
    let m = model();
    m.save(&path).unwrap();
    let before = std::fs::read(&path).unwrap();
    // a model the format cannot store: refused, the previous file stays whole
    let x = input_variable([2]);
    let bad = leaky_relu(&x, f64::NAN).unwrap().owner().unwrap();
    match bad.save(&path) {
        Err(Error::InvalidArgument { detail, .. }) => assert!(detail.contains("NaN"), "{detail}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), before);
    Function::load(&path).unwrap();
    // a directory that does not exist: an I/O error naming the file, nothing written
    let nowhere = dir.file("missing/dir/m.rntk");
    match m.save(&nowhere) {
        Err(Error::Io { file, .. }) => assert!(file.contains("missing"), "{file}"),
        other => panic!("expected an I/O error, got {other:?}"),
    }
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["m.rntk"]);
    // loading a file that does not exist
    match Function::load(dir.file("absent.rntk")) {
        Err(Error::Io { file, detail }) => {
            assert!(file.ends_with("absent.rntk"));
            assert!(detail.contains("cannot read"), "{detail}");
        }
        other => panic!("expected an I/O error, got {other:?}"),
    }
    // a format error from a file names the file
    std::fs::write(dir.file("junk.rntk"), b"junk").unwrap();
    match Function::load(dir.file("junk.rntk")) {
        Err(Error::Format { file, .. }) => assert!(file.ends_with("junk.rntk")),
        other => panic!("expected a format error, got {other:?}"),
    }
}

/// A corrupted reference that puts a block inside its own body (found by
/// `random_corruption_never_panics` once the test binaries were grouped and the uids
/// shifted): expanding it never ends, so it is refused instead of overflowing the stack.
#[test]
fn a_block_inside_its_own_body_is_refused() {
    let b = good_bytes();
    let text = graph_of(&b).to_string();
    let good = r#"{"inputs":[{"output":[7,0]},{"output":[8,0]}],"kind":"composite","name":"LSTM""#;
    let bad = r#"{"inputs":[{"output":[1,0]},{"output":[8,0]}],"kind":"composite","name":"LSTM""#;
    assert!(
        text.contains(good),
        "the fixture model changed: update this test"
    );
    refused(
        &with_graph(&b, &text.replacen(good, bad, 1)),
        &["is used inside its own body"],
    );
}

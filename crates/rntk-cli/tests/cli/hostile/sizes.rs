//! Issue 13, rows 1–6: absurd sizes in a train config, in native model files made
//! by hand and in a CNTK model, refused before anything is allocated.

use super::*;
use prost::Message;
use rntk::import::proto::{dictionary_value::Value as V, Dictionary, DictionaryValue};
use rntk::persist::graph_format::*;
use rntk::persist::{weights, METADATA_KEY};
use rntk::{Shape, Tensor};
use std::collections::HashMap;

// ---- row 1: a dimension of 10^12 in a train config ------------------------------------

#[test]
fn row01_a_huge_dimension_in_a_config_is_refused_before_anything_is_allocated() {
    let (d, cfg) = setup("row01", 20, "1000000000000", "1", "");
    let o = rntk(&["train", p(&cfg)]);
    assert_user_error(
        &o,
        &[
            "model.layers[1] (Dense)",
            "(3, 1000000000000)",
            "more than the limit of 1073741824",
            "max_sample_elements",
        ],
    );
    assert!(!d.join("m.model").exists());
    // an input's dim: named as the input
    let (d, cfg) = setup("row01-input", 20, "2", "1000000000000", "");
    let o = rntk(&["train", p(&cfg)]);
    assert_user_error(&o, &["inputs 'features'.dim", "(1000000000000,)", "limit"]);
    assert!(!d.join("m.model").exists());
}

// ---- row 2: a dimension list whose element count wraps --------------------------------

#[test]
fn row02_a_dimension_list_that_would_wrap_is_refused_and_nothing_is_saved() {
    let (d, cfg) = setup("row02", 20, "[3, 6148914691236517226]", "1", "");
    let o = rntk(&["train", p(&cfg)]);
    assert_user_error(
        &o,
        &[
            "model.layers[1] (Dense)",
            "6148914691236517226",
            "overflows",
        ],
    );
    assert!(!d.join("m.model").exists());
    assert!(text(&o.stdout).is_empty(), "{}", text(&o.stdout));
}

// ---- native model files made by hand ---------------------------------------------------

fn info(shape: &[usize], axes: AxesDesc) -> InfoDesc {
    InfoDesc {
        shape: Shape::from(shape),
        dtype: DTypeDesc::Float32,
        dynamic_axes: axes,
        is_sparse: false,
        needs_gradient: false,
    }
}

fn graph(variables: Vec<LeafDesc>, f: FunctionDesc) -> GraphDesc {
    GraphDesc {
        format: FORMAT.into(),
        version: VERSION,
        axes: vec![AxisDesc {
            name: "defaultDynamicAxis".into(),
            default: true,
        }],
        variables,
        functions: vec![f],
        root: 0,
        outputs: vec![VarRef::Output(0, 0)],
    }
}

fn input(name: &str, i: InfoDesc) -> LeafDesc {
    LeafDesc {
        kind: LeafKind::Input,
        uid: name.into(),
        name: name.into(),
        info: i,
        tensor: None,
        replaced_by: None,
    }
}

fn write_model(path: &Path, g: &GraphDesc) {
    let json = serde_json::to_string(g).unwrap();
    let tensors: Vec<(String, Tensor)> = Vec::new();
    let bytes =
        weights::encode("m", &tensors, HashMap::from([(METADATA_KEY.into(), json)])).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// `y = -x` for an input `x` of `shape` (batch axis).
fn negate_model(path: &Path, shape: &[usize]) {
    let x = || info(shape, AxesDesc::Batch);
    write_model(
        path,
        &graph(
            vec![input("x", x())],
            FunctionDesc {
                uid: "Negate1".into(),
                name: "y".into(),
                kind: FnKindDesc::Primitive(rntk::ops::Op::Unary(rntk::ops::UnaryOp::Negate)),
                inputs: vec![VarRef::Leaf(0)],
                outputs: vec![x()],
            },
        ),
    );
}

// ---- row 3: a native model declaring an input of 2^40 elements ---------------------------

#[test]
fn row03_a_model_with_a_huge_input_is_refused_at_load() {
    let d = dir("row03");
    let m = d.join("big.model");
    negate_model(&m, &[1 << 40]);
    std::fs::write(d.join("x.ctf"), "0 |x 1\n").unwrap();
    let out = d.join("pred.txt");
    let o = rntk(&[
        "eval",
        p(&m),
        "--input",
        p(&d.join("x.ctf")),
        "--output",
        p(&out),
    ]);
    assert_user_error(
        &o,
        &[
            "big.model",
            "input x 'x'",
            "(1099511627776,)",
            "more than the limit",
        ],
    );
    assert!(!out.exists());
    assert_user_error(&rntk(&["info", p(&m)]), &["big.model", "(1099511627776,)"]);
    // within the limit it loads and evaluates
    negate_model(&m, &[2]);
    std::fs::write(d.join("x.ctf"), "0 |x 1 2\n").unwrap();
    let o = rntk(&["eval", p(&m), "--input", p(&d.join("x.ctf"))]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "-1.0 -2.0\n");
}

// ---- row 4: dimensions after a zero ------------------------------------------------------

#[test]
fn row04_a_zero_dimension_does_not_hide_huge_ones() {
    let d = dir("row04");
    let m = d.join("zero.model");
    negate_model(&m, &[0, 1 << 62, 1 << 62]);
    std::fs::write(d.join("x.ctf"), "0 |x 1\n").unwrap();
    let o = rntk(&["eval", p(&m), "--input", p(&d.join("x.ctf"))]);
    assert_user_error(
        &o,
        &[
            "zero.model",
            "(0, 4611686018427387904, 4611686018427387904)",
            "overflows",
        ],
    );
}

// ---- row 5: delay offsets 0, 2^62, 2^64 - 1 ---------------------------------------------------

#[test]
fn row05_delay_offsets_out_of_range_are_refused() {
    let d = dir("row05");
    std::fs::write(d.join("x.ctf"), "0 |x 1\n0 |x 2\n").unwrap();
    let seq = || info(&[1], AxesDesc::Sequence(0));
    for (k, offset) in [0usize, 1 << 62, usize::MAX].into_iter().enumerate() {
        for future in [false, true] {
            let m = d.join(format!("delay{k}{future}.model"));
            let op = if future {
                rntk::ops::Op::FutureValue { offset }
            } else {
                rntk::ops::Op::PastValue { offset }
            };
            write_model(
                &m,
                &graph(
                    vec![input("x", seq()), input("s", info(&[1], AxesDesc::Batch))],
                    FunctionDesc {
                        uid: "Delay1".into(),
                        name: "d".into(),
                        kind: FnKindDesc::Primitive(op),
                        inputs: vec![VarRef::Leaf(0), VarRef::Leaf(1)],
                        outputs: vec![seq()],
                    },
                ),
            );
            let o = rntk(&[
                "eval",
                p(&m),
                "--input",
                p(&d.join("x.ctf")),
                "--map",
                "x=x",
            ]);
            assert_user_error(&o, &["Delay1 'd'", &format!("time step (offset) {offset}")]);
        }
    }
}

// ---- row 6: CNTK OneHot with numClass near 2^32 -------------------------------------------

#[test]
fn row06_a_cntk_one_hot_with_billions_of_classes_is_refused() {
    let d = dir("row06");
    let mut dict =
        Dictionary::decode(&std::fs::read(cntk_fixture("ops_more_forms")).unwrap()[..]).unwrap();
    let fns = match dict
        .data
        .get_mut("primitive_functions")
        .and_then(|v| v.value.as_mut())
    {
        Some(V::VectorValue(v)) => &mut v.value,
        _ => panic!("functions"),
    };
    let mut edited = false;
    for f in fns.iter_mut() {
        let Some(V::DictionaryValue(f)) = f.value.as_mut() else {
            continue;
        };
        let is_one_hot = matches!(
            f.data.get("uid").and_then(|u| u.value.as_ref()),
            Some(V::StringValue(u)) if u.starts_with("OneHot")
        );
        if let (true, Some(V::DictionaryValue(a))) = (
            is_one_hot,
            f.data.get_mut("attributes").and_then(|v| v.value.as_mut()),
        ) {
            a.data.insert(
                "numClass".into(),
                DictionaryValue {
                    version: 2,
                    value_type: rntk::import::proto::dictionary_value::Type::SizeT as i32,
                    value: Some(V::SizeTValue((1 << 32) - 1)),
                },
            );
            edited = true;
        }
    }
    assert!(edited, "the fixture has a OneHot");
    let m = d.join("onehot.model");
    std::fs::write(&m, dict.encode_to_vec()).unwrap();
    std::fs::write(d.join("x.ctf"), "0 |k 1 2\n").unwrap();
    let o = rntk(&["eval", p(&m), "--input", p(&d.join("x.ctf"))]);
    assert_user_error(
        &o,
        &[
            "onehot.model",
            "OneHot",
            "4294967295 classes",
            "more than the limit of 16777216",
        ],
    );
    assert_user_error(&rntk(&["info", p(&m)]), &["4294967295 classes"]);
}

//! Hostile ONNX files are refused cleanly: truncated or corrupted bytes, wrong element
//! types, declared sizes far beyond the bytes present, cyclic graphs, undefined
//! values, external data outside the model's folder. Never a panic, never an
//! allocation the file does not justify.

use prost::Message;
use rntk::onnx::load_onnx_bytes;
use rntk::onnx::proto::{
    tensor_proto::DataLocation, tensor_shape_proto, type_proto, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};
use std::path::{Path, PathBuf};

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(rel)
}

fn vi(name: &str, dims: &[i64]) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(1),
                shape: Some(TensorShapeProto {
                    dim: std::iter::once(tensor_shape_proto::Dimension {
                        value: Some(tensor_shape_proto::dimension::Value::DimParam(
                            "batch".into(),
                        )),
                        ..Default::default()
                    })
                    .chain(dims.iter().map(|&d| tensor_shape_proto::Dimension {
                        value: Some(tensor_shape_proto::dimension::Value::DimValue(d)),
                        ..Default::default()
                    }))
                    .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn node(op: &str, ins: &[&str], outs: &[&str]) -> NodeProto {
    NodeProto {
        op_type: Some(op.into()),
        input: ins.iter().map(|s| s.to_string()).collect(),
        output: outs.iter().map(|s| s.to_string()).collect(),
        name: Some(format!("{op}_{}", outs[0])),
        ..Default::default()
    }
}

/// `y = x · W` with initializer `w`.
fn model(w: TensorProto, extra: Vec<NodeProto>) -> ModelProto {
    let mut nodes = vec![node("MatMul", &["x", "W"], &["y"])];
    nodes.extend(extra);
    ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(17),
        }],
        graph: Some(GraphProto {
            node: nodes,
            initializer: vec![w],
            input: vec![vi("x", &[2])],
            output: vec![vi("y", &[3])],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn weight(dims: &[i64], raw: Vec<u8>) -> TensorProto {
    TensorProto {
        name: Some("W".into()),
        data_type: Some(1),
        dims: dims.to_vec(),
        raw_data: Some(raw),
        ..Default::default()
    }
}

fn good_w() -> TensorProto {
    weight(
        &[2, 3],
        (0..6)
            .flat_map(|i| (i as f32 * 0.1).to_le_bytes())
            .collect(),
    )
}

fn load(m: &ModelProto, dir: Option<&Path>) -> Result<rntk::Function, rntk::Error> {
    load_onnx_bytes("<test>", &m.encode_to_vec(), dir)
}

fn refused(m: &ModelProto, dir: Option<&Path>, want: &[&str]) {
    match load(m, dir) {
        Ok(_) => panic!("loaded a hostile model"),
        Err(e) => {
            let msg = e.to_string();
            for w in want {
                assert!(msg.contains(w), "{w:?} not in: {msg}");
            }
        }
    }
}

#[test]
fn the_well_formed_model_loads() {
    let m = load(&model(good_w(), vec![]), None).expect("load");
    assert_eq!(m.outputs()[0].shape().dims(), &[3]);
}

#[test]
fn truncated_and_corrupted_files_are_errors() {
    for f in [
        "onnx_cntk/lstm.onnx",
        "onnx_torch/gru.onnx",
        "onnx_torch/lstm_bidirectional.onnx",
    ] {
        let bytes = std::fs::read(fixture(f)).expect("fixture");
        for cut in (0..bytes.len()).step_by(7) {
            let _ = load_onnx_bytes("<cut>", &bytes[..cut], None);
        }
        // deterministic byte flips: an error or a model, never a panic
        let mut s: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..400 {
            let mut b = bytes.clone();
            for _ in 0..3 {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                let i = (s as usize) % b.len();
                b[i] = (s >> 32) as u8;
            }
            let _ = load_onnx_bytes("<flip>", &b, None);
        }
    }
    assert!(load_onnx_bytes("<empty>", &[], None).is_err());
    assert!(load_onnx_bytes("<junk>", b"\x08\x07junk\xff\xff", None).is_err());
}

#[test]
fn wrong_types_and_sizes_are_errors() {
    // a string tensor
    let mut w = good_w();
    w.data_type = Some(8);
    refused(&model(w, vec![]), None, &["tensor 'W'", "STRING"]);
    // fewer bytes than the shape needs
    refused(
        &model(weight(&[2, 3], vec![0; 20]), vec![]),
        None,
        &["needs 24 bytes", "holds 20"],
    );
    // a declared size far beyond the bytes (nothing allocated for it)
    refused(
        &model(weight(&[1 << 40, 1 << 40], vec![0; 8]), vec![]),
        None,
        &["more than"],
    );
    refused(
        &model(weight(&[-2, 3], vec![]), vec![]),
        None,
        &["negative dimension"],
    );
    // typed fields of the wrong length
    let mut w = good_w();
    w.raw_data = None;
    w.float_data = vec![1.0; 5];
    refused(&model(w, vec![]), None, &["needs 6 values"]);
    // a constant of a huge declared shape
    let mut c = node("ConstantOfShape", &["big"], &["z"]);
    c.attribute.clear();
    let mut m = model(good_w(), vec![c]);
    let g = m.graph.as_mut().unwrap();
    g.initializer.push(TensorProto {
        name: Some("big".into()),
        data_type: Some(7),
        dims: vec![3],
        int64_data: vec![1 << 30, 1 << 30, 1 << 30],
        ..Default::default()
    });
    g.output.push(vi("z", &[]));
    refused(&m, None, &["ConstantOfShape", "2^64"]);
    // within 2^64 but above rntk's limit of elements per sample: refused before
    // anything is allocated (2^32 doubles would be 32 GiB)
    let g = m.graph.as_mut().unwrap();
    g.initializer.last_mut().unwrap().int64_data = vec![1 << 16, 1 << 16, 1];
    refused(&m, None, &["ConstantOfShape", "more than the limit"]);
}

/// Found by the fuzz target (an overflowing product in debug builds, a wrapped size in
/// release builds): a Reshape to a shape whose size overflows.
#[test]
fn a_reshape_whose_size_overflows_is_an_error() {
    let r = node("Reshape", &["y", "s"], &["z"]);
    let mut m = model(good_w(), vec![r]);
    let g = m.graph.as_mut().unwrap();
    g.initializer.push(TensorProto {
        name: Some("s".into()),
        data_type: Some(7),
        dims: vec![4],
        int64_data: vec![0, 1 << 40, 1 << 40, 3],
        ..Default::default()
    });
    g.output.push(vi("z", &[]));
    refused(&m, None, &["Reshape", "overflows"]);
}

#[test]
fn a_slice_with_more_axes_than_starts_is_an_error() {
    // found by the onnx_model fuzz target: an index past `starts` (a panic before)
    let r = node("Slice", &["y", "st", "en", "ax"], &["z"]);
    let mut m = model(good_w(), vec![r]);
    let g = m.graph.as_mut().unwrap();
    for (name, v) in [("st", vec![0]), ("en", vec![1]), ("ax", vec![0, 1])] {
        g.initializer.push(TensorProto {
            name: Some(name.into()),
            data_type: Some(7),
            dims: vec![v.len() as i64],
            int64_data: v,
            ..Default::default()
        });
    }
    g.output.push(vi("z", &[]));
    refused(&m, None, &["Slice", "equally long"]);
}

#[test]
fn cycles_and_undefined_values_are_errors() {
    let m = model(
        good_w(),
        vec![node("Tanh", &["b"], &["a"]), node("Tanh", &["a"], &["b"])],
    );
    refused(&m, None, &["cycle"]);
    let m = model(good_w(), vec![node("Tanh", &["nowhere"], &["a"])]);
    refused(&m, None, &["'nowhere'", "nothing defines"]);
    let m = model(good_w(), vec![node("Tanh", &["x"], &["y"])]);
    refused(&m, None, &["defined twice"]);
}

fn external(location: &str, offset: u64, length: u64) -> TensorProto {
    TensorProto {
        name: Some("W".into()),
        data_type: Some(1),
        dims: vec![2, 3],
        data_location: Some(DataLocation::External as i32),
        external_data: vec![
            StringStringEntryProto {
                key: Some("location".into()),
                value: Some(location.into()),
            },
            StringStringEntryProto {
                key: Some("offset".into()),
                value: Some(offset.to_string()),
            },
            StringStringEntryProto {
                key: Some("length".into()),
                value: Some(length.to_string()),
            },
        ],
        ..Default::default()
    }
}

#[test]
fn external_data_is_read_only_inside_the_models_folder() {
    let root = std::env::temp_dir().join(format!("rntk-onnx-ext-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let dir = root.join("model");
    std::fs::create_dir_all(&dir).unwrap();
    let data: Vec<u8> = (0..6).flat_map(|i| (i as f32).to_le_bytes()).collect();
    std::fs::write(dir.join("w.bin"), &data).unwrap();
    std::fs::write(root.join("secret.bin"), &data).unwrap();
    // inside: read
    let m = load(&model(external("w.bin", 0, 24), vec![]), Some(&dir)).expect("inside");
    assert_eq!(
        m.parameters()[0].value().unwrap().to_f64_vec(),
        vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    );
    // outside: refused
    refused(
        &model(external("../secret.bin", 0, 24), vec![]),
        Some(&dir),
        &["outside the model's folder"],
    );
    let abs = root.join("secret.bin").display().to_string();
    refused(
        &model(external(&abs, 0, 24), vec![]),
        Some(&dir),
        &["outside the model's folder"],
    );
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(root.join("secret.bin"), dir.join("link.bin")).unwrap();
        refused(
            &model(external("link.bin", 0, 24), vec![]),
            Some(&dir),
            &["leads outside"],
        );
    }
    // past the end of the file, or a length that does not fit the tensor
    refused(
        &model(external("w.bin", 8, 24), vec![]),
        Some(&dir),
        &["offset 8"],
    );
    refused(
        &model(external("w.bin", 0, 1 << 40), vec![]),
        Some(&dir),
        &["needs 24 bytes"],
    );
    refused(
        &model(external("w.bin", u64::MAX, 24), vec![]),
        Some(&dir),
        &["offset"],
    );
    // a model given as bytes has no folder
    refused(
        &model(external("w.bin", 0, 24), vec![]),
        None,
        &["given as bytes"],
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn unknown_ops_are_listed_together() {
    let mut odd = node("FancyOp", &["y"], &["a"]);
    odd.domain = Some("com.example".into());
    let m = model(good_w(), vec![odd, node("Conv", &["y", "W"], &["b"])]);
    let mut m2 = m.clone();
    let g = m2.graph.as_mut().unwrap();
    g.output.push(vi("a", &[3]));
    g.output.push(vi("b", &[3]));
    refused(
        &m2,
        None,
        &[
            "2 ONNX node(s)",
            "com.example.FancyOp",
            "Conv",
            // a Conv over [batch, 3]: not an image batch [N, C, spatial…]
            "image operand",
        ],
    );
}

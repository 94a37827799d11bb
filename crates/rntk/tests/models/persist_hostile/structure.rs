//! Hostile graphs inside well-formed files: shapes that disagree with the weights
//! or with shape inference, dangling and forward references, cycles without a
//! delay, a block inside its own body.

use super::*;

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

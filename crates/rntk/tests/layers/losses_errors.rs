//! Shape and axis errors of every loss and metric: each message names the function,
//! the output variable and both shapes.

use rntk::graph::{input_variable_with, InputOptions};
use rntk::losses::*;
use rntk::metrics::*;
use rntk::{DType, DynamicAxes, Error, Result, Variable};

fn inp(shape: &[usize], axes: DynamicAxes, name: &str) -> Variable {
    input_variable_with(
        shape.to_vec(),
        InputOptions {
            dtype: DType::F64,
            dynamic_axes: axes,
            name: name.into(),
            ..Default::default()
        },
    )
}

fn b(shape: &[usize], name: &str) -> Variable {
    inp(shape, DynamicAxes::Batch, name)
}

/// The error must be a shape error of `f` whose message contains every `parts`.
fn expect(r: Result<Variable>, f: &str, parts: &[&str]) {
    let e = r.expect_err("must be refused");
    let msg = e.to_string();
    assert!(
        matches!(e, Error::Shape { .. }),
        "{f}: not a shape error: {msg}"
    );
    assert!(msg.starts_with(f), "{f}: message does not name it: {msg}");
    for p in parts {
        assert!(msg.contains(p), "{f}: message lacks {p}: {msg}");
    }
}

#[test]
fn mismatched_shapes_name_the_loss_and_both_shapes() {
    let (o, t) = (b(&[3], "z"), b(&[2], "label"));
    expect(
        squared_error(&o, &t),
        "squared_error",
        &["'z'", "(3,)", "(2,)"],
    );
    expect(
        cross_entropy_with_softmax(&o, &t, -1),
        "cross_entropy_with_softmax",
        &["(3,)", "(2,)"],
    );
    expect(
        binary_cross_entropy(&o, &t),
        "binary_cross_entropy",
        &["(3,)", "(2,)"],
    );
    expect(
        cosine_distance(&o, &t),
        "cosine_distance",
        &["(3,)", "(2,)"],
    );
    expect(fmeasure(&o, &t, 1.0), "fmeasure", &["(3,)", "(2,)"]);
    expect(
        classification_error(&o, &t, -1, 1),
        "classification_error",
        &["(3,)", "(2,)"],
    );
    expect(
        classification_error(&o, &t, -1, 3),
        "classification_error",
        &["(3,)", "(2,)"],
    );
}

#[test]
fn weighted_bce_needs_one_element_per_sample() {
    let (o, t, w) = (b(&[3], "o"), b(&[3], "t"), b(&[3], "w"));
    expect(
        weighted_binary_cross_entropy(&o, &t, &w),
        "weighted_binary_cross_entropy",
        &["(3,)", "one element per sample"],
    );
}

#[test]
fn ranking_inputs_are_checked() {
    let (s, g, q) = (b(&[1], "s"), b(&[2], "g"), b(&[1], "q"));
    expect(lambda_rank(&s, &g, &q), "lambda_rank", &["gain", "(2,)"]);
    expect(ndcg_at_1(&s, &g, &q), "ndcg_at_1", &["gain", "(2,)"]);
    // sequences: the group order would be the packed order, so refused
    let sq = inp(&[1], DynamicAxes::default_sequence(), "s");
    let r = lambda_rank(&sq, &sq, &sq);
    assert!(
        matches!(r, Err(Error::DynamicAxes { .. })),
        "sequence scores must be refused: {r:?}"
    );
}

#[test]
fn axis_out_of_range_and_top_n() {
    let (o, t) = (b(&[2, 3], "o"), b(&[2, 3], "t"));
    expect(
        cross_entropy_with_softmax(&o, &t, 2),
        "cross_entropy_with_softmax",
        &["axis 2", "(2, 3)"],
    );
    expect(
        classification_error(&o, &t, -3, 1),
        "classification_error",
        &["axis -3"],
    );
    expect(
        classification_error(&o, &t, -1, 2),
        "classification_error",
        &["top_n > 1", "(2, 3)"],
    );
    expect(
        classification_error(&b(&[3], "o"), &b(&[3], "t"), -1, 0),
        "classification_error",
        &["top_n"],
    );
}

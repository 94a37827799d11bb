//! Impossible layer configurations are refused with an error that names the layer (and
//! its name) and the shapes or values that disagree — never a panic.

use rntk::layers::*;
use rntk::{input_variable, parameter_from, sequence, Error, Tensor};
use std::sync::Arc;

fn msg(e: Error) -> String {
    e.to_string()
}

fn expect_err<T>(r: rntk::Result<T>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => msg(e),
    }
}

#[test]
fn dropout_rates_out_of_range() {
    for r in [1.0, -0.1, 1.5, f64::NAN] {
        let m = expect_err(Dropout::new(r));
        assert!(
            m.contains("Dropout") && m.contains("dropout_rate must be in the interval [0,1)"),
            "{m}"
        );
    }
    // keep_prob 1.0 is refused although it would mean rate 0 (CNTK does the same).
    for k in [1.0, -0.5, 2.0] {
        let m = expect_err(Dropout::keep_prob(k));
        assert!(m.contains("keep_prob must be in the interval [0,1)"), "{m}");
    }
    assert!(Dropout::new(0.0).is_ok() && Dropout::keep_prob(0.5).is_ok());
    // keep_prob 0 passes its own check but means rate 1, which the op refuses (as in CNTK).
    let m = expect_err(Dropout::keep_prob(0.0));
    assert!(
        m.contains("dropout_rate must be in the interval [0,1)"),
        "{m}"
    );
}

#[test]
fn gru_projection_needs_cell_shape_equal_to_shape() {
    let x = sequence::input_variable([2]);
    let m = expect_err(Recurrence::new(Gru::new(3).cell_shape(4).name("enc")).apply(&x));
    assert!(m.contains("GRU 'enc'") && m.contains("cell_shape"), "{m}");
    // Equal widths are fine.
    assert!(Recurrence::new(Gru::new(3).cell_shape(3)).apply(&x).is_ok());
}

#[test]
fn initial_state_of_the_wrong_shape() {
    let x = sequence::input_variable([2]);
    let s0 = parameter_from(Tensor::from_vec(vec![5], vec![0f32; 5]).unwrap(), "s0");
    let m = expect_err(
        Recurrence::new(Lstm::new(3))
            .name("dec")
            .initial_state(InitialState::Variable(s0))
            .apply(&x),
    );
    assert!(
        m.contains("Recurrence 'dec'")
            && m.contains("(5,)")
            && m.contains("(3,)")
            && m.contains("LSTM"),
        "{m}"
    );
    // Per-state list: c of an LSTM with projection has the cell width.
    let h0 = parameter_from(Tensor::from_vec(vec![2], vec![0f32; 2]).unwrap(), "h0");
    let c0 = parameter_from(Tensor::from_vec(vec![2], vec![0f32; 2]).unwrap(), "c0");
    let m = expect_err(
        Recurrence::new(Lstm::new(2).cell_shape(4))
            .initial_state(InitialState::PerState(vec![
                InitialState::Variable(h0),
                InitialState::Variable(c0),
            ]))
            .apply(&x),
    );
    assert!(
        m.contains("state 1 (c)") && m.contains("(2,)") && m.contains("(4,)"),
        "{m}"
    );
    // Too few entries.
    let m = expect_err(
        Recurrence::new(Lstm::new(2))
            .initial_state(InitialState::PerState(vec![InitialState::Scalar(0.0)]))
            .apply(&x),
    );
    assert!(m.contains("initial_state lists 1 states"), "{m}");
    // RecurrenceFrom: a batch-only initial state of the wrong width, and a wrong count.
    let h0 = input_variable([4]);
    let rf = RecurrenceFrom::new(RnnStep::new(3)).name("rf");
    let m = expect_err(rf.apply_from(std::slice::from_ref(&h0), &x));
    assert!(
        m.contains("RecurrenceFrom 'rf'") && m.contains("(4,)") && m.contains("(3,)"),
        "{m}"
    );
    let m = expect_err(rf.apply_from(&[h0.clone(), h0], &x));
    assert!(m.contains("1 states but 2 initial states"), "{m}");
}

#[test]
fn dense_rank_options() {
    let x = input_variable([2, 3, 2]);
    let m = expect_err(Dense::new(4).input_rank(1).map_rank(1).name("d").apply(&x));
    assert!(
        m.contains("Dense 'd'") && m.contains("input_rank and map_rank cannot both be given"),
        "{m}"
    );
    let m = expect_err(Dense::new(4).input_rank(4).apply(&x));
    assert!(
        m.contains("exceed the rank") && m.contains("(2, 3, 2)"),
        "{m}"
    );
}

#[test]
fn second_application_to_another_shape() {
    let a = input_variable([3]);
    let b = input_variable([5]);
    let d = Dense::new(2).name("d");
    d.apply(&a).unwrap();
    let m = expect_err(d.apply(&b));
    assert!(
        m.contains("Dense 'd'") && m.contains("(3,)") && m.contains("(5,)"),
        "{m}"
    );

    let e = Embedding::new(2).name("emb");
    e.apply(&a).unwrap();
    let m = expect_err(e.apply(&b));
    assert!(m.contains("Embedding 'emb'") && m.contains("(5,)"), "{m}");

    let sa = sequence::input_variable([3]);
    let sb = sequence::input_variable([5]);
    let r = Recurrence::new(Lstm::new(2).name("cell"));
    r.apply(&sa).unwrap();
    let m = expect_err(r.apply(&sb));
    assert!(
        m.contains("LSTM 'cell'") && m.contains("(3,)") && m.contains("(5,)"),
        "{m}"
    );

    let ln = LayerNormalization::new().name("ln");
    ln.apply(&a).unwrap();
    let m = expect_err(ln.apply(&b));
    assert!(
        m.contains("LayerNormalization 'ln'") && m.contains("(5,)"),
        "{m}"
    );

    let bn = BatchNormalization::new().name("bn");
    bn.apply(&a).unwrap();
    let m = expect_err(bn.apply(&b));
    assert!(
        m.contains("BatchNormalization 'bn'") && m.contains("(5,)"),
        "{m}"
    );
}

#[test]
fn recurrence_on_a_non_sequence() {
    let x = input_variable([2]);
    let m = expect_err(Recurrence::new(Lstm::new(3)).name("r").apply(&x));
    assert!(
        m.contains("Recurrence 'r'") && m.contains("needs a sequence input"),
        "{m}"
    );
    let m = expect_err(Fold::new(Gru::new(3)).apply(&x));
    assert!(m.contains("needs a sequence input"), "{m}");
    let m = expect_err(Delay::new(1).apply(&x));
    assert!(
        m.contains("Delay") && m.contains("needs a sequence input"),
        "{m}"
    );
    let s = input_variable([3]);
    let m = expect_err(UnfoldFrom::from_layer(Arc::new(Dense::new(3))).apply_from(&s, &x));
    assert!(
        m.contains("UnfoldFrom") && m.contains("must be a sequence"),
        "{m}"
    );
}

#[test]
fn normalization_and_composition_misuse() {
    let x = input_variable([2, 3]);
    let m = expect_err(BatchNormalization::new().map_rank(Some(2)).apply(&x));
    assert!(m.contains("map_rank must be 1 or None"), "{m}");
    let m = expect_err(BatchNormalization::new().blend_time_constant(2.0).apply(&x));
    assert!(m.contains("blend_time_constant"), "{m}");
    // Statistics over a minibatch need a batch axis.
    let c = rntk::constant(Tensor::from_vec(vec![3], vec![1f32, 2., 3.]).unwrap(), "c");
    let m = expect_err(BatchNormalization::new().apply(&c));
    assert!(
        m.contains("BatchNormalization") && m.contains("batch axis"),
        "{m}"
    );
    let m = expect_err(ResNetBlock(Arc::new(Dense::new(4))).apply(&x));
    assert!(
        m.contains("ResNetBlock") && m.contains("(2, 3)") && m.contains("(4,)"),
        "{m}"
    );
    let s = input_variable([3]);
    let xs = sequence::input_variable([2]);
    let m = expect_err(
        UnfoldFrom::from_layer(Arc::new(Dense::new(2)))
            .name("u")
            .apply_from(&s, &xs),
    );
    assert!(
        m.contains("UnfoldFrom 'u'") && m.contains("(2,)") && m.contains("(3,)"),
        "{m}"
    );
    let m = expect_err(
        UnfoldFrom::from_layer(Arc::new(Dense::new(3)))
            .length_increase(0.0)
            .apply_from(&s, &xs),
    );
    assert!(m.contains("length_increase"), "{m}");
}

#[test]
fn sequential_convolutions_refuse_what_cntk_refuses() {
    let x = sequence::input_variable([2, 5]);
    // Convolution(sequential=True) splices a window of steps: no stride along the sequence
    let c = Convolution::new(&[3, 3])
        .num_filters(2)
        .sequential(true)
        .strides(&[2, 1])
        .name("c1");
    let m = expect_err(c.apply(&x));
    assert!(
        m.contains("Convolution") && m.contains("c1") && m.contains("stride"),
        "{m}"
    );
    // the same stride is SequentialConvolution's to take
    assert!(Convolution::sequential_convolution(&[3, 3])
        .num_filters(2)
        .strides(&[2, 1])
        .apply(&x)
        .is_ok());
    // the filter's first axis is the sequence's: the step has one axis fewer
    let m = expect_err(
        Convolution::sequential_convolution(&[3])
            .num_filters(2)
            .apply(&x),
    );
    assert!(
        m.contains("SequentialConvolution")
            && m.contains("(2, 5)")
            && m.contains("expected rank 1"),
        "{m}"
    );
    // no sequence axis to run along
    let m = expect_err(
        Convolution::sequential_convolution(&[3, 3])
            .num_filters(2)
            .apply(&input_variable([2, 5])),
    );
    assert!(
        m.contains("Convolution") && m.contains("sequence axis"),
        "{m}"
    );
    let m = expect_err(
        Convolution::transpose(&[3, 3])
            .num_filters(2)
            .sequential(true)
            .apply(&x),
    );
    assert!(m.contains("transposed"), "{m}");
}

//! f64 finite-difference gradient checks of every sequence op and of past_value /
//! future_value on ragged batches (lengths 1..5, several length-1 sequences), plus
//! compositions across a recurrent loop's boundary (a Fold over a loop's output,
//! broadcast_as feeding a loop), and forward checks of where / gather / scatter /
//! unpack semantics and their run-time refusals.

use crate::common;

use common::*;
use rntk::functions::{element_times, plus, tanh, times};
use rntk::graph::InputOptions;
use rntk::sequence;
use rntk::{DType, DynamicAxes, Error, Executor, Tensor, Value, Variable};

/// Ragged lengths with several length-1 sequences (caller order is not sorted).
const LENS: &[usize] = &[3, 1, 5, 2, 1, 4];
/// Every sequence at least 2 long (for slices that would empty a length-1 one).
const LENS_GE2: &[usize] = &[3, 2, 5, 2, 4];
const TOL: f64 = 1e-6;

fn seq_in(shape: &[usize], name: &str) -> Variable {
    seq_in_axis(shape, name, DynamicAxes::default_sequence())
}

fn seq_in_axis(shape: &[usize], name: &str, axes: DynamicAxes) -> Variable {
    f64_input(shape, name, axes)
}

fn batch_in(shape: &[usize], name: &str) -> Variable {
    f64_input(shape, name, DynamicAxes::Batch)
}

fn seqs(shape: &[usize], lens: &[usize], key: usize) -> Value {
    let numel = shape.iter().product();
    Value::from_sequences(shape.to_vec(), &ragged(lens, numel, key)).unwrap()
}

fn fill(n: usize, key: usize) -> Vec<f64> {
    (0..n)
        .map(|i| ((((7 * i + key) % 11) as f64) - 5.0) / 10.0 + 0.017 * i as f64)
        .collect()
}

fn param(shape: &[usize], key: usize, name: &str) -> Variable {
    let n = shape.iter().product();
    rntk::parameter_from(
        Tensor::from_vec(shape.to_vec(), fill(n, key)).unwrap(),
        name,
    )
}

fn f64_scalar(v: f64) -> Variable {
    rntk::scalar(v, DType::F64)
}

fn eval(out: &Variable, feeds: &[(&Variable, &Value)]) -> rntk::Result<Value> {
    let mut ex = Executor::<f64>::new(std::slice::from_ref(out))?;
    ex.forward(feeds, false)?;
    ex.value(out)
}

#[test]
fn reductions_first_last_softmax() {
    for shape in [&[2usize][..], &[2, 3][..]] {
        let x = seq_in(shape, "x");
        let xv = seqs(shape, LENS, 1);
        let fs: [fn(&Variable) -> rntk::Result<Variable>; 5] = [
            sequence::first,
            sequence::last,
            sequence::reduce_sum,
            sequence::reduce_max,
            sequence::softmax,
        ];
        for f in fs {
            let out = f(&x).unwrap();
            gradcheck(
                &out,
                &[(x.clone(), xv.clone())],
                std::slice::from_ref(&x),
                TOL,
            );
        }
    }
}

#[test]
fn reductions_give_batch_values_in_caller_order() {
    let x = seq_in(&[1], "x");
    let xv =
        Value::from_sequences([1], &[vec![1.0, 2.0], vec![5.0], vec![0.5, 3.0, -1.0]]).unwrap();
    let get = |out: Variable| eval(&out, &[(&x, &xv)]).unwrap();
    let first = get(sequence::first(&x).unwrap());
    assert_eq!(first.layout(), &rntk::tensor::Layout::Batch(3));
    assert_eq!(first.to_vec::<f64>(), vec![1.0, 5.0, 0.5]);
    assert_eq!(
        get(sequence::last(&x).unwrap()).to_vec::<f64>(),
        vec![2.0, 5.0, -1.0]
    );
    assert_eq!(
        get(sequence::reduce_sum(&x).unwrap()).to_vec::<f64>(),
        vec![3.0, 5.0, 2.5]
    );
    assert_eq!(
        get(sequence::reduce_max(&x).unwrap()).to_vec::<f64>(),
        vec![2.0, 5.0, 3.0]
    );
    assert_eq!(
        sequence::last(&x).unwrap().dynamic_axes(),
        DynamicAxes::Batch
    );
}

#[test]
fn slices() {
    let x = seq_in(&[2], "x");
    // Ranges that keep at least one step of a length-1 sequence.
    let xv = seqs(&[2], LENS, 2);
    for (b, e) in [(-2, 0), (-1, 0), (0, 1), (0, 0), (0, 7), (-9, 0)] {
        let out = sequence::slice(&x, b, e).unwrap();
        gradcheck(
            &out,
            &[(x.clone(), xv.clone())],
            std::slice::from_ref(&x),
            TOL,
        );
    }
    let xv = seqs(&[2], LENS_GE2, 3);
    for (b, e) in [(1, 3), (0, -1), (1, 0), (-3, -1), (1, 2)] {
        let out = sequence::slice(&x, b, e).unwrap();
        gradcheck(
            &out,
            &[(x.clone(), xv.clone())],
            std::slice::from_ref(&x),
            TOL,
        );
    }
    // A slice has its own sequence axis: it cannot be mixed with x element-wise.
    let s = sequence::slice(&x, 0, -1).unwrap();
    assert_ne!(s.dynamic_axes(), x.dynamic_axes());
    assert!(plus(&s, &x).is_err());
    // Lengths of the result.
    let v = eval(&sequence::slice(&x, 1, 0).unwrap(), &[(&x, &xv)]).unwrap();
    assert_eq!(v.layout().packed().unwrap().lengths(), &[2, 1, 4, 1, 3]);
    // Empty for every length: refused when built.
    assert!(sequence::slice(&x, 2, 1).is_err());
    assert!(sequence::slice(&x, -1, -2).is_err());
}

#[test]
fn broadcast_as_and_is_first_is_last() {
    let x = seq_in(&[2], "x");
    let v = batch_in(&[2], "v");
    let xv = seqs(&[2], LENS, 4);
    let vv = Value::batch([2], fill(2 * LENS.len(), 5)).unwrap();
    let feeds = [(x.clone(), xv.clone()), (v.clone(), vv.clone())];
    let b = sequence::broadcast_as(&v, &x).unwrap();
    gradcheck(&b, &feeds, &[v.clone(), x.clone()], TOL);
    let bx = element_times(&b, &x).unwrap();
    gradcheck(&bx, &feeds, &[v.clone(), x.clone()], TOL);
    // Forward: every step of sequence i holds v[i].
    let out = eval(&b, &[(&x, &xv), (&v, &vv)]).unwrap();
    let vd = vv.to_vec::<f64>();
    for (i, s) in out.to_sequences::<f64>().iter().enumerate() {
        assert_eq!(s.len(), 2 * LENS[i]);
        for step in s.chunks(2) {
            assert_eq!(step, &vd[2 * i..2 * i + 2]);
        }
    }
    // is_first / is_last: 0/1 markers of shape () per step; no gradient through them,
    // but they weight x in a product.
    let xf = element_times(&x, &sequence::is_first(&x).unwrap()).unwrap();
    gradcheck(
        &xf,
        &[(x.clone(), xv.clone())],
        std::slice::from_ref(&x),
        TOL,
    );
    let xl = plus(
        &x,
        &element_times(&x, &sequence::is_last(&x).unwrap()).unwrap(),
    )
    .unwrap();
    gradcheck(
        &xl,
        &[(x.clone(), xv.clone())],
        std::slice::from_ref(&x),
        TOL,
    );
    let m = eval(&sequence::is_last(&x).unwrap(), &[(&x, &xv)]).unwrap();
    assert_eq!(m.shape(), &rntk::Shape::scalar());
    for (i, s) in m.to_sequences::<f64>().iter().enumerate() {
        let mut want = vec![0.0; LENS[i]];
        want[LENS[i] - 1] = 1.0;
        assert_eq!(s, &want);
    }
}

fn cond_value(lens: &[usize], pattern: &[f64]) -> Value {
    let mut k = 0;
    let seqs: Vec<Vec<f64>> = lens
        .iter()
        .map(|&l| {
            let mut s: Vec<f64> = (0..l)
                .map(|_| {
                    k += 1;
                    pattern[k % pattern.len()]
                })
                .collect();
            // Keep at least one step of every sequence.
            if s.iter().all(|&c| c == 0.0) {
                s[l - 1] = 1.0;
            }
            s
        })
        .collect();
    Value::from_sequences([], &seqs).unwrap()
}

#[test]
fn gather_and_scatter() {
    let x = seq_in(&[2], "x");
    let c = seq_in(&[], "c");
    let xv = seqs(&[2], LENS, 6);
    for pattern in [
        &[1.0, 0.0][..],
        &[0.0, 2.0, 1.0][..],
        &[3.0, 0.0, 0.0, 1.0][..],
    ] {
        let cv = cond_value(LENS, pattern);
        let feeds = [(x.clone(), xv.clone()), (c.clone(), cv.clone())];
        let g = sequence::gather(&x, &c).unwrap();
        gradcheck(&g, &feeds, std::slice::from_ref(&x), TOL);
        let w = param(&[2], 7, "w");
        let sg = sequence::scatter(&element_times(&g, &w).unwrap(), &c).unwrap();
        gradcheck(&sg, &feeds, &[x.clone(), w.clone()], TOL);
        // scatter on its own, from an input on the gather's axis: repeated indices add.
        let counts: Vec<usize> = eval(&g, &[(&x, &xv), (&c, &cv)])
            .unwrap()
            .layout()
            .packed()
            .unwrap()
            .lengths()
            .to_vec();
        let z = seq_in_axis(&[2], "z", g.dynamic_axes());
        let zv = seqs(&[2], &counts, 8);
        let s = sequence::scatter(&z, &c).unwrap();
        let sfeeds = [(z.clone(), zv.clone()), (c.clone(), cv.clone())];
        gradcheck(&s, &sfeeds, std::slice::from_ref(&z), TOL);
        // scatter(gather(x)) = x times the repeat count where kept, 0 elsewhere.
        let back = eval(&sequence::scatter(&g, &c).unwrap(), &[(&x, &xv), (&c, &cv)]).unwrap();
        let (got, xs, cs) = (back.to_vec::<f64>(), xv.to_vec::<f64>(), cv.to_vec::<f64>());
        for (r, &cnt) in cs.iter().enumerate() {
            for f in 0..2 {
                assert!((got[2 * r + f] - cnt * xs[2 * r + f]).abs() < 1e-15);
            }
        }
    }
}

#[test]
fn where_repeats_and_fractions() {
    let c = seq_in(&[], "c");
    let run = |seqs: &[Vec<f64>]| -> Vec<Vec<f64>> {
        let cv = Value::from_sequences([], seqs).unwrap();
        eval(&sequence::where_(&c).unwrap(), &[(&c, &cv)])
            .unwrap()
            .to_sequences::<f64>()
    };
    assert_eq!(
        run(&[vec![1.0, 2.0, 1.0, 3.0, 2.0], vec![0.0, 1.0]]),
        vec![vec![0., 1., 1., 2., 3., 3., 3., 4., 4.], vec![1.0]]
    );
    // Fractions accumulate, round up and carry the overshoot: 1.2 × 10 → 12 indices.
    let w = run(&[vec![1.2; 10]]);
    assert_eq!(w[0].len(), 12);
    assert_eq!(&w[0][..3], &[0.0, 0.0, 1.0]);
    assert_eq!(run(&[vec![0.5, 0.5, 0.5]]), vec![vec![0.0, 2.0]]);
    // The result has a new sequence axis.
    let wv = sequence::where_(&c).unwrap();
    assert_ne!(wv.dynamic_axes(), c.dynamic_axes());
    assert!(plus(&wv, &c).is_err());
}

#[test]
fn a_condition_that_keeps_no_step_is_a_runtime_error() {
    let x = seq_in(&[2], "x");
    let c = seq_in(&[], "c");
    let xv = seqs(&[2], &[2, 3], 1);
    let cv = Value::from_sequences([], &[vec![1.0, 0.0], vec![0.0, 0.0, 0.0]]).unwrap();
    let cases = [
        (
            sequence::gather(&x, &c).unwrap(),
            vec![(&x, &xv), (&c, &cv)],
        ),
        (sequence::where_(&c).unwrap(), vec![(&c, &cv)]),
    ];
    for (out, feeds) in cases {
        let e = eval(&out, &feeds).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, Error::Runtime { .. }), "{msg}");
        assert!(msg.contains("sequence 1 (length 3)"), "{msg}");
        assert!(msg.contains(&out.owner().unwrap().label()), "{msg}");
    }
    let bad = Value::from_sequences([], &[vec![1.0, f64::INFINITY], vec![1.0, 0.0, 0.0]]).unwrap();
    assert!(eval(&sequence::where_(&c).unwrap(), &[(&c, &bad)]).is_err());
    // scatter: the operand's lengths must match what the condition selects.
    let z = seq_in(&[2], "z");
    let zv = seqs(&[2], &[2, 2], 3);
    let cv = Value::from_sequences([], &[vec![1.0, 0.0], vec![0.0, 1.0, 0.0]]).unwrap();
    let e = eval(&sequence::scatter(&z, &c).unwrap(), &[(&z, &zv), (&c, &cv)]).unwrap_err();
    assert!(e.to_string().contains("Sequence::Scatter"), "{e}");
}

#[test]
fn unpack_and_mask() {
    let x = seq_in(&[2], "x");
    let xv = seqs(&[2], LENS, 9);
    let (u, m) = sequence::unpack(&x, -3.5).unwrap();
    assert_eq!(u.dynamic_axes(), DynamicAxes::Batch);
    gradcheck(
        &u,
        &[(x.clone(), xv.clone())],
        std::slice::from_ref(&x),
        TOL,
    );
    let uv = eval(&u, &[(&x, &xv)]).unwrap();
    assert_eq!(uv.shape(), &rntk::Shape::from([5, 2]));
    assert_eq!(uv.layout(), &rntk::tensor::Layout::Batch(LENS.len()));
    let mv = eval(&m, &[(&x, &xv)]).unwrap();
    assert_eq!(mv.shape(), &rntk::Shape::from([5]));
    let (ud, md, xs) = (
        uv.to_vec::<f64>(),
        mv.to_vec::<f64>(),
        xv.to_sequences::<f64>(),
    );
    for (i, &l) in LENS.iter().enumerate() {
        for t in 0..5 {
            assert_eq!(md[i * 5 + t], if t < l { 1.0 } else { 0.0 });
            for f in 0..2 {
                let want = if t < l { xs[i][2 * t + f] } else { -3.5 };
                assert_eq!(ud[(i * 5 + t) * 2 + f], want);
            }
        }
    }
    // Another minibatch, another longest length.
    let xv2 = seqs(&[2], &[2, 1], 1);
    assert_eq!(
        eval(&u, &[(&x, &xv2)]).unwrap().shape(),
        &rntk::Shape::from([2, 2])
    );
    // The free dimension cannot flow into static-shape ops.
    assert!(matches!(plus(&u, &u), Err(Error::Unsupported(_))));
}

/// An initial state: what it is, the variable, and its feed if it is an input.
type Init = (&'static str, Variable, Option<(Variable, Value)>);

/// Initial states of every kind for x of sample shape (2,).
fn inits() -> Vec<Init> {
    let s = batch_in(&[2], "s");
    let sv = Value::batch([2], fill(2 * LENS.len(), 3)).unwrap();
    vec![
        ("scalar", f64_scalar(0.25), None),
        (
            "constant",
            rntk::constant(Tensor::from_vec([2], vec![9.0f64, -9.0]).unwrap(), "c"),
            None,
        ),
        ("parameter", param(&[2], 4, "p"), None),
        ("scalar parameter", param(&[], 5, "p0"), None),
        ("batch input", s.clone(), Some((s, sv))),
    ]
}

#[test]
fn past_and_future_value_every_offset_and_initial_state() {
    let x = seq_in(&[2], "x");
    let xv = seqs(&[2], LENS, 1);
    for future in [false, true] {
        for k in [1, 2, 7] {
            for (kind, init, feed) in inits() {
                let out = if future {
                    sequence::future_value(&x, &init, k).unwrap()
                } else {
                    sequence::past_value(&x, &init, k).unwrap()
                };
                let mut feeds = vec![(x.clone(), xv.clone())];
                let mut wrt = vec![x.clone()];
                if let Some(f) = feed {
                    wrt.push(f.0.clone());
                    feeds.push(f);
                } else if init.is_parameter() {
                    wrt.push(init.clone());
                }
                eprintln!("future={future} k={k} init={kind}");
                gradcheck(&out, &feeds, &wrt, TOL);
            }
        }
    }
}

/// `h[t] = tanh(a[t] + h[t∓1] H)` closed through a placeholder.
fn recurrence(a: &Variable, h_dim: usize, h0: &Variable, hh: &Variable, future: bool) -> Variable {
    let ph = rntk::placeholder([h_dim], DType::F64, a.dynamic_axes(), "h_ph").unwrap();
    let d = if future {
        sequence::future_value(&ph, h0, 1).unwrap()
    } else {
        sequence::past_value(&ph, h0, 1).unwrap()
    };
    let h = tanh(&plus(a, &times(&d, hh).unwrap()).unwrap()).unwrap();
    h.owner()
        .unwrap()
        .replace_placeholders(&[(ph, h.clone())])
        .unwrap();
    h
}

#[test]
fn fold_over_a_recurrent_loop() {
    let x = seq_in(&[2], "x");
    let xv = seqs(&[2], LENS, 2);
    for future in [false, true] {
        let w = param(&[2, 3], 1, "W");
        let hh = param(&[3, 3], 2, "H");
        let h0 = param(&[3], 3, "h0");
        let a = times(&x, &w).unwrap();
        let h = recurrence(&a, 3, &h0, &hh, future);
        // A Fold reads the state the loop ends in.
        let fold = if future {
            sequence::first(&h).unwrap()
        } else {
            sequence::last(&h).unwrap()
        };
        let wrt = [x.clone(), w.clone(), hh.clone(), h0.clone()];
        gradcheck(&fold, &[(x.clone(), xv.clone())], &wrt, TOL);
        let pooled = sequence::reduce_max(&h).unwrap();
        gradcheck(&pooled, &[(x.clone(), xv.clone())], &wrt, TOL);
    }
}

#[test]
fn broadcast_as_feeding_a_recurrent_loop() {
    let x = seq_in(&[2], "x");
    let v = batch_in(&[2], "v");
    let s = batch_in(&[3], "s");
    let xv = seqs(&[2], LENS, 5);
    let vv = Value::batch([2], fill(2 * LENS.len(), 6)).unwrap();
    let sv = Value::batch([3], fill(3 * LENS.len(), 7)).unwrap();
    let w = param(&[2, 3], 8, "W");
    let u = param(&[2, 3], 9, "U");
    let hh = param(&[3, 3], 10, "H");
    let ctx = sequence::broadcast_as(&v, &x).unwrap();
    let a = plus(&times(&x, &w).unwrap(), &times(&ctx, &u).unwrap()).unwrap();
    // Per-sequence initial state from a batch-only input.
    let h = recurrence(&a, 3, &s, &hh, false);
    let feeds = [
        (x.clone(), xv.clone()),
        (v.clone(), vv.clone()),
        (s.clone(), sv.clone()),
    ];
    let wrt = [
        x.clone(),
        v.clone(),
        s.clone(),
        w.clone(),
        u.clone(),
        hh.clone(),
    ];
    gradcheck(&h, &feeds, &wrt, TOL);
    gradcheck(&sequence::last(&h).unwrap(), &feeds, &wrt, TOL);
    // A sequence op between two loops: slice of one loop's output feeds another.
    let sl = sequence::slice(&h, -2, 0).unwrap();
    let h2 = recurrence(&sl, 3, &f64_scalar(0.1), &hh, true);
    gradcheck(&sequence::reduce_sum(&h2).unwrap(), &feeds, &wrt, TOL);
}

#[test]
fn sparse_operands_are_read_densely() {
    let x = sequence::input_variable_with(
        [4],
        InputOptions {
            dtype: DType::F64,
            is_sparse: true,
            name: "x".into(),
            ..Default::default()
        },
    );
    let xv = Value::one_hot_sequences::<f64>(4, &[vec![1, 3, 0], vec![2]]).unwrap();
    let last = eval(&sequence::last(&x).unwrap(), &[(&x, &xv)]).unwrap();
    assert_eq!(last.to_vec::<f64>(), vec![1., 0., 0., 0., 0., 0., 1., 0.]);
    let sum = eval(&sequence::reduce_sum(&x).unwrap(), &[(&x, &xv)]).unwrap();
    assert_eq!(sum.to_vec::<f64>(), vec![1., 1., 0., 1., 0., 0., 1., 0.]);
    let sl = eval(&sequence::slice(&x, 1, 2).unwrap(), &[(&x, &xv)]);
    let e = sl.unwrap_err().to_string();
    assert!(e.contains("leaves sequence 1 (length 1) empty"), "{e}");
}

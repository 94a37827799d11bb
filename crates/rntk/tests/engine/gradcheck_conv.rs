//! f64 finite-difference checks of every backward of the convolution family —
//! convolution (1/2/3D, padding, strides, dilation, groups, reduction_rank 0),
//! transposed convolution (with and without output_shape), max / average / global
//! pooling (include_pad, ceil_out_dim) and max unpooling — with respect to the data
//! operand and the filter; on a batch and on a ragged sequence of images. And the f32
//! forward and gradients equal the f64 ones (to f32 precision).

use crate::common;

use common::*;
use rntk::functions::*;
use rntk::ops::{ConvAttrs, PoolAttrs, PoolingType};
use rntk::{DType, DynamicAxes, Executor, Tensor, Value, Variable};

const TOL: f64 = 1e-6;

/// Distinct values (no ties, so max pooling is differentiable at the point).
fn fill(n: usize, key: usize) -> Vec<f64> {
    (0..n)
        .map(|k| ((((7 * k + key) % 13) as f64) - 6.0) / 7.0 + 0.0031 * k as f64)
        .collect()
}

fn param(shape: &[usize], key: usize) -> Variable {
    let n = shape.iter().product();
    rntk::parameter_from(Tensor::from_vec(shape.to_vec(), fill(n, key)).unwrap(), "W")
}

fn batch(shape: &[usize], n: usize, key: usize) -> (Variable, Value) {
    let x = f64_input(shape, "x", DynamicAxes::Batch);
    let numel: usize = shape.iter().product();
    let v = Value::batch(shape.to_vec(), fill(n * numel, key)).unwrap();
    (x, v)
}

fn conv(strides: &[usize], pad: &[bool]) -> ConvAttrs {
    ConvAttrs {
        strides: strides.to_vec(),
        auto_padding: pad.to_vec(),
        ..Default::default()
    }
}

fn check_conv(x_shape: &[usize], w_shape: &[usize], a: ConvAttrs, transpose: bool) {
    let (x, xv) = batch(x_shape, 2, 3);
    let w = param(w_shape, 5);
    let y = if transpose {
        convolution_transpose(&w, &x, a)
    } else {
        convolution(&w, &x, a)
    }
    .unwrap();
    gradcheck(&y, &[(x.clone(), xv)], &[x, w], TOL);
}

#[test]
fn convolution_gradients() {
    let ft = [false, true, true];
    check_conv(&[2, 5, 6], &[3, 2, 3, 3], conv(&[1], &[false]), false);
    check_conv(&[2, 6, 7], &[3, 2, 3, 3], conv(&[1, 2, 2], &ft), false);
    check_conv(&[2, 7, 8], &[2, 2, 4, 2], conv(&[1, 2, 3], &ft), false);
    check_conv(
        &[4, 5, 5],
        &[6, 2, 3, 3],
        ConvAttrs {
            groups: 2,
            ..conv(&[1], &ft)
        },
        false,
    );
    check_conv(
        &[3, 6, 5],
        &[6, 1, 3, 3],
        ConvAttrs {
            groups: 3,
            ..conv(&[1, 2, 2], &ft)
        },
        false,
    );
    let dilated = ConvAttrs {
        dilation: vec![1, 2, 2],
        ..conv(&[1], &ft)
    };
    check_conv(&[2, 7, 6], &[2, 2, 3, 3], dilated, false);
    let explicit = ConvAttrs {
        lower_pad: vec![0, 1, 2],
        upper_pad: vec![0, 2, 0],
        ..conv(&[1, 2, 1], &[false])
    };
    check_conv(&[2, 5, 6], &[2, 2, 3, 3], explicit, false);
    let rr0 = ConvAttrs {
        reduction_rank: 0,
        ..conv(&[2], &[true])
    };
    check_conv(&[6, 5], &[3, 3, 3], rr0, false);
    check_conv(&[2, 9], &[3, 2, 3], conv(&[1, 2], &[false, true]), false);
    check_conv(
        &[2, 4, 5, 3],
        &[2, 2, 3, 3, 2],
        conv(&[1], &[false, true, true, true]),
        false,
    );
}

#[test]
fn transposed_convolution_gradients() {
    let ft = [false, true, true];
    check_conv(&[3, 4, 5], &[3, 2, 3, 3], conv(&[1], &ft), true);
    check_conv(&[3, 4, 4], &[3, 2, 3, 3], conv(&[1, 2, 2], &ft), true);
    let out8 = ConvAttrs {
        output_shape: Some(vec![2, 8, 7]),
        ..conv(&[1, 2, 2], &ft)
    };
    check_conv(&[3, 4, 4], &[3, 2, 3, 3], out8, true);
    check_conv(&[2, 3, 4], &[2, 3, 3, 3], conv(&[1, 2, 2], &[false]), true);
    check_conv(&[3, 5], &[3, 2, 3], conv(&[1, 2], &[false, true]), true);
}

fn pool(kind: PoolingType, window: &[usize], strides: &[usize], pad: bool) -> PoolAttrs {
    let mut a = PoolAttrs::new(kind, Some(window.to_vec()));
    a.strides = strides.to_vec();
    a.auto_padding = vec![pad];
    a
}

fn check_pool(x_shape: &[usize], a: PoolAttrs) {
    let (x, xv) = batch(x_shape, 2, 4);
    let y = pooling(&x, a).unwrap();
    gradcheck(&y, &[(x.clone(), xv)], &[x], TOL);
}

#[test]
fn pooling_gradients() {
    use PoolingType::*;
    check_pool(&[2, 5, 5], pool(Max, &[2, 2], &[2], false));
    check_pool(&[2, 6, 7], pool(Max, &[3, 3], &[2], true));
    check_pool(&[2, 6, 7], pool(Average, &[3, 3], &[2], true));
    let mut incl = pool(Average, &[3, 3], &[2], true);
    incl.include_pad = true;
    check_pool(&[2, 6, 7], incl);
    let mut ceil = pool(Average, &[2, 2], &[2], false);
    ceil.ceil_out_dim = true;
    check_pool(&[1, 5, 5], ceil);
    check_pool(&[2, 9], pool(Max, &[3], &[2], true));
    check_pool(&[2, 4, 5, 4], pool(Max, &[2, 2, 2], &[2], false));
    check_pool(&[3, 4, 5], PoolAttrs::new(Max, None));
    check_pool(&[3, 4, 5], PoolAttrs::new(Average, None));
}

#[test]
fn unpooling_gradient_is_the_derivative() {
    let (x, xv) = batch(&[2, 4, 6], 2, 6);
    let u = f64_input(&[2, 2, 3], "u", DynamicAxes::Batch);
    let uv = Value::batch(vec![2, 2, 3], fill(24, 9)).unwrap();
    let a = pool(PoolingType::Max, &[2, 2], &[2], false);
    let y = unpooling(&u, &x, a.clone()).unwrap();
    gradcheck(&y, &[(x, xv.clone()), (u.clone(), uv)], &[u], TOL);
    // overlapping windows (a cell can receive two values: the later one stays)
    let (x, xv) = batch(&[1, 5, 6], 2, 6);
    let a = pool(PoolingType::Max, &[3, 3], &[2], true);
    let p = pooling(&x, a.clone()).unwrap();
    let y = unpooling(
        &element_times(&p, &rntk::scalar(2.0, DType::F64)).unwrap(),
        &x,
        a,
    )
    .unwrap();
    gradcheck(&y, &[(x.clone(), xv)], &[x], TOL);
}

#[test]
fn convolution_over_a_ragged_sequence_of_images() {
    let x = f64_input(&[2, 4, 5], "x", DynamicAxes::default_sequence());
    let seqs = ragged(&[3, 1, 2], 40, 2);
    let xv = Value::from_sequences(vec![2, 4, 5], &seqs).unwrap();
    let w = param(&[3, 2, 3, 3], 7);
    let y = convolution(&w, &x, conv(&[1, 2, 1], &[false, true, true])).unwrap();
    let z = pooling(&y, pool(PoolingType::Max, &[2, 2], &[2], true)).unwrap();
    gradcheck(&z, &[(x.clone(), xv)], &[x, w], TOL);
}

/// f32 forward and gradients of a conv → pool stack equal the f64 ones.
#[test]
fn float32_equals_float64() {
    let run = |dt: DType| -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let x = rntk::input_variable_with(
            vec![2, 7, 6],
            rntk::InputOptions {
                dtype: dt,
                dynamic_axes: DynamicAxes::Batch,
                needs_gradient: true,
                name: "x".into(),
                ..Default::default()
            },
        );
        let wv = fill(3 * 2 * 9, 5);
        let w = match dt {
            DType::F32 => rntk::parameter_from(
                Tensor::from_vec(vec![3, 2, 3, 3], wv.iter().map(|&v| v as f32).collect()).unwrap(),
                "W",
            ),
            _ => rntk::parameter_from(Tensor::from_vec(vec![3, 2, 3, 3], wv).unwrap(), "W"),
        };
        let y = convolution(&w, &x, conv(&[1, 2, 2], &[false, true, true])).unwrap();
        let z = pooling(&y, pool(PoolingType::Average, &[2, 2], &[1], true)).unwrap();
        let data = fill(3 * 84, 1);
        let xv = match dt {
            DType::F32 => {
                Value::batch(vec![2, 7, 6], data.iter().map(|&v| v as f32).collect()).unwrap()
            }
            _ => Value::batch(vec![2, 7, 6], data).unwrap(),
        };
        let out = |ex: &mut Executor<f32>| ex.value(&z).unwrap().to_vec::<f64>();
        if dt == DType::F32 {
            let mut ex = Executor::<f32>::new(std::slice::from_ref(&z)).unwrap();
            ex.forward(&[(&x, &xv)], false).unwrap();
            let y = out(&mut ex);
            let g = ex.backward(&[(&z, None)], &[&x, &w]).unwrap();
            (y, g[0].to_vec::<f64>(), g[1].to_vec::<f64>())
        } else {
            let mut ex = Executor::<f64>::new(std::slice::from_ref(&z)).unwrap();
            ex.forward(&[(&x, &xv)], false).unwrap();
            let y = ex.value(&z).unwrap().to_vec::<f64>();
            let g = ex.backward(&[(&z, None)], &[&x, &w]).unwrap();
            (y, g[0].to_vec::<f64>(), g[1].to_vec::<f64>())
        }
    };
    let (a, b) = (run(DType::F32), run(DType::F64));
    assert_close("output", &a.0, &b.0, 1e-5, 1e-6);
    assert_close("d/dx", &a.1, &b.1, 1e-5, 1e-6);
    assert_close("d/dW", &a.2, &b.2, 1e-5, 1e-6);
}

#[test]
fn bad_shapes_are_refused_with_the_shapes() {
    let (x, _) = batch(&[2, 5, 6], 1, 0);
    let e = convolution(&param(&[3, 3, 3, 3], 1), &x, conv(&[1], &[false]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("channel") && e.contains("(3, 3, 3, 3)"), "{e}");
    let e = convolution(&param(&[3, 2, 7, 3], 1), &x, conv(&[1], &[false]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not fit"), "{e}");
    let e = convolution(&param(&[3, 2, 3, 3], 1), &x, ConvAttrs::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("channel axis"), "{e}");
    let e = convolution(
        &param(&[3, 1, 3, 3], 1),
        &x,
        ConvAttrs {
            groups: 2,
            ..conv(&[1], &[false])
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("groups"), "{e}");
    let e = pooling(&x, pool(PoolingType::Max, &[7, 7], &[1], false))
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not fit"), "{e}");
    let u = f64_input(&[2, 3, 3], "u", DynamicAxes::Batch);
    let e = unpooling(&u, &x, pool(PoolingType::Max, &[2, 2], &[2], false))
        .unwrap_err()
        .to_string();
    assert!(e.contains("pooling"), "{e}");
}

#[test]
fn sequential_convolution_gradients() {
    type Case<'a> = (&'a [usize], &'a [usize], &'a [usize], &'a [bool]);
    let cases: [Case; 4] = [
        (&[4, 2, 3, 3], &[2, 5], &[1], &[false, true, true]),
        (&[3, 2, 3, 3], &[2, 5], &[1], &[false]),
        (&[3, 2, 3, 3], &[2, 5], &[1, 2, 1], &[false, true, false]),
        (&[4, 3, 3], &[3], &[1], &[false, true]),
    ];
    for (w_shape, x_shape, strides, pad) in cases {
        let x = f64_input(x_shape, "x", DynamicAxes::default_sequence());
        let numel: usize = x_shape.iter().product();
        let seqs = ragged(&[3, 5, 4], numel, 1);
        let xv = Value::from_sequences(x_shape.to_vec(), &seqs).unwrap();
        let w = param(w_shape, 3);
        let a = ConvAttrs {
            sequential: true,
            ..conv(strides, pad)
        };
        let y = convolution(&w, &x, a).unwrap();
        gradcheck(&y, &[(x.clone(), xv)], &[x, w], TOL);
    }
}

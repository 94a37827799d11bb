//! Op constructors (CNTK's `cntk.ops`, `cntk.sequence`, losses and metrics), each taking
//! `Var` handles and returning the output `Var`; the Python side wraps the result as a
//! `Function` and applies the name.

use crate::errors::{value_err, IntoPy};
use crate::graph::Var;
use pyo3::prelude::*;
use rntk::functions as f;
use rntk::ops::ReduceOp;
use rntk::{losses, metrics, sequence, Variable};

macro_rules! unary {
    ($($name:ident => $call:path;)*) => {
        $(
            #[pyfunction]
            fn $name(x: &Var) -> PyResult<Var> {
                Ok(Var($call(&x.0).py()?))
            }
        )*
        fn register_unary(m: &Bound<'_, PyModule>) -> PyResult<()> {
            $( m.add_function(wrap_pyfunction!($name, m)?)?; )*
            Ok(())
        }
    };
}

macro_rules! binary {
    ($($name:ident => $call:path;)*) => {
        $(
            #[pyfunction]
            fn $name(a: &Var, b: &Var) -> PyResult<Var> {
                Ok(Var($call(&a.0, &b.0).py()?))
            }
        )*
        fn register_binary(m: &Bound<'_, PyModule>) -> PyResult<()> {
            $( m.add_function(wrap_pyfunction!($name, m)?)?; )*
            Ok(())
        }
    };
}

unary! {
    negate => f::negate; sigmoid => f::sigmoid; tanh => f::tanh; relu => f::relu;
    elu => f::elu; softplus => f::softplus; exp => f::exp; log => f::log; sqrt => f::sqrt;
    square => f::square; abs => f::abs; reciprocal => f::reciprocal;
    stop_gradient => f::stop_gradient; floor => f::floor; sin => f::sin; cos => f::cos;
    hardmax => metrics::hardmax;
    seq_first => sequence::first; seq_last => sequence::last;
    seq_reduce_sum => sequence::reduce_sum; seq_reduce_max => sequence::reduce_max;
    seq_is_first => sequence::is_first; seq_is_last => sequence::is_last;
    seq_softmax => sequence::softmax; seq_where => sequence::where_;
}

binary! {
    plus => f::plus; minus => f::minus; element_times => f::element_times;
    element_divide => f::element_divide; pow => f::pow; element_max => f::element_max;
    element_min => f::element_min; equal => f::equal; not_equal => f::not_equal;
    less => f::less; less_equal => f::less_equal; greater => f::greater;
    greater_equal => f::greater_equal; log_add_exp => f::log_add_exp;
    times_transpose => f::times_transpose;
    squared_error => losses::squared_error; binary_cross_entropy => losses::binary_cross_entropy;
    cosine_distance => metrics::cosine_distance;
    seq_broadcast_as => sequence::broadcast_as; seq_gather => sequence::gather;
    seq_scatter => sequence::scatter;
}

#[pyfunction]
fn alias(x: &Var, name: &str) -> PyResult<Var> {
    Ok(Var(f::alias(&x.0, name).py()?))
}

#[pyfunction]
#[pyo3(signature = (x, alpha=0.01))]
fn leaky_relu(x: &Var, alpha: f64) -> PyResult<Var> {
    Ok(Var(f::leaky_relu(&x.0, alpha).py()?))
}

#[pyfunction]
#[pyo3(signature = (x, w, output_rank=1, infer_input_rank_to_map=-1))]
fn times(x: &Var, w: &Var, output_rank: usize, infer_input_rank_to_map: i32) -> PyResult<Var> {
    Ok(Var(f::times_with(
        &x.0,
        &w.0,
        output_rank,
        infer_input_rank_to_map,
    )
    .py()?))
}

#[pyfunction]
#[pyo3(signature = (x, axis=-1))]
fn softmax(x: &Var, axis: isize) -> PyResult<Var> {
    Ok(Var(f::softmax(&x.0, axis).py()?))
}

#[pyfunction]
#[pyo3(signature = (x, axis=-1))]
fn log_softmax(x: &Var, axis: isize) -> PyResult<Var> {
    Ok(Var(f::log_softmax(&x.0, axis).py()?))
}

/// `reduce(op, x, axes, keepdims)`; op in sum, mean, max, min, log_sum_exp; axes None = all static axes.
#[pyfunction]
#[pyo3(signature = (op, x, axes=None, keepdims=true))]
fn reduce(op: &str, x: &Var, axes: Option<Vec<isize>>, keepdims: bool) -> PyResult<Var> {
    let a = axes.as_deref();
    let v = match op {
        "sum" => f::reduce_sum(&x.0, a, keepdims),
        "mean" => f::reduce_mean(&x.0, a, keepdims),
        "max" => f::reduce_max(&x.0, a, keepdims),
        "min" => f::reduce_min(&x.0, a, keepdims),
        "log_sum_exp" => f::reduce_log_sum_exp(&x.0, a, keepdims),
        _ => return Err(value_err(format!("unknown reduction {op}"))),
    };
    Ok(Var(v.py()?))
}

/// Reduce over every axis, batch and sequence included (`Axis.all_axes()`).
#[pyfunction]
fn reduce_all(op: &str, x: &Var) -> PyResult<Var> {
    let r = match op {
        "sum" => ReduceOp::Sum,
        "mean" => ReduceOp::Mean,
        "max" => ReduceOp::Max,
        "min" => ReduceOp::Min,
        _ => return Err(value_err(format!("unknown reduction {op} over all axes"))),
    };
    Ok(Var(f::reduce_all(r, &x.0).py()?))
}

#[pyfunction]
#[pyo3(signature = (xs, axis=-1))]
fn splice(xs: Vec<Var>, axis: isize) -> PyResult<Var> {
    let v: Vec<Variable> = xs.into_iter().map(|x| x.0).collect();
    let r: Vec<&Variable> = v.iter().collect();
    Ok(Var(f::splice(&r, axis).py()?))
}

#[pyfunction]
#[pyo3(signature = (x, axis, begin, end, stride=1))]
fn slice(x: &Var, axis: isize, begin: isize, end: isize, stride: isize) -> PyResult<Var> {
    Ok(Var(f::slice_strided(&x.0, axis, begin, end, stride).py()?))
}

#[pyfunction]
fn reshape(x: &Var, shape: Vec<i64>) -> PyResult<Var> {
    let dims: Vec<usize> = shape
        .iter()
        .map(|&d| {
            if d < 0 {
                rntk::tensor::INFERRED
            } else {
                d as usize
            }
        })
        .collect();
    Ok(Var(f::reshape(&x.0, dims).py()?))
}

#[pyfunction]
fn transpose(x: &Var, perm: Vec<usize>) -> PyResult<Var> {
    Ok(Var(f::transpose(&x.0, &perm).py()?))
}

#[pyfunction]
fn swapaxes(x: &Var, a: usize, b: usize) -> PyResult<Var> {
    Ok(Var(f::swapaxes(&x.0, a, b).py()?))
}

#[pyfunction]
fn clip(x: &Var, lo: &Var, hi: &Var) -> PyResult<Var> {
    Ok(Var(f::clip(&x.0, &lo.0, &hi.0).py()?))
}

#[pyfunction]
fn element_select(c: &Var, a: &Var, b: &Var) -> PyResult<Var> {
    Ok(Var(f::element_select(&c.0, &a.0, &b.0).py()?))
}

#[pyfunction]
fn dropout(x: &Var, rate: f64, seed: u64) -> PyResult<Var> {
    Ok(Var(f::dropout(&x.0, rate, seed).py()?))
}

#[pyfunction]
fn one_hot(x: &Var, num_classes: usize) -> PyResult<Var> {
    Ok(Var(f::one_hot(&x.0, num_classes).py()?))
}

#[pyfunction]
fn gather(reference: &Var, indices: &Var) -> PyResult<Var> {
    Ok(Var(f::gather(&reference.0, &indices.0).py()?))
}

#[pyfunction]
#[pyo3(signature = (o, t, axis=-1))]
fn cross_entropy_with_softmax(o: &Var, t: &Var, axis: isize) -> PyResult<Var> {
    Ok(Var(
        losses::cross_entropy_with_softmax(&o.0, &t.0, axis).py()?
    ))
}

#[pyfunction]
fn weighted_binary_cross_entropy(o: &Var, t: &Var, w: &Var) -> PyResult<Var> {
    Ok(Var(
        losses::weighted_binary_cross_entropy(&o.0, &t.0, &w.0).py()?
    ))
}

#[pyfunction]
#[pyo3(signature = (o, t, axis=-1, top_n=1))]
fn classification_error(o: &Var, t: &Var, axis: isize, top_n: usize) -> PyResult<Var> {
    Ok(Var(
        metrics::classification_error(&o.0, &t.0, axis, top_n).py()?
    ))
}

#[pyfunction]
#[pyo3(signature = (o, t, beta=1.0))]
fn fmeasure(o: &Var, t: &Var, beta: f64) -> PyResult<Var> {
    Ok(Var(metrics::fmeasure(&o.0, &t.0, beta).py()?))
}

#[pyfunction]
fn lambda_rank(o: &Var, g: &Var, grp: &Var) -> PyResult<Var> {
    Ok(Var(metrics::lambda_rank(&o.0, &g.0, &grp.0).py()?))
}

#[pyfunction]
fn ndcg_at_1(o: &Var, g: &Var, grp: &Var) -> PyResult<Var> {
    Ok(Var(metrics::ndcg_at_1(&o.0, &g.0, &grp.0).py()?))
}

/// `past_value` (time_step > 0) / `future_value` (time_step < 0) with an initial state.
#[pyfunction]
fn delay(x: &Var, initial_state: &Var, time_step: isize) -> PyResult<Var> {
    Ok(Var(sequence::delay(&x.0, &initial_state.0, time_step).py()?))
}

#[pyfunction]
fn seq_slice(x: &Var, begin: isize, end: isize) -> PyResult<Var> {
    Ok(Var(sequence::slice(&x.0, begin, end).py()?))
}

#[pyfunction]
fn seq_unpack(x: &Var, padding: f64) -> PyResult<(Var, Var)> {
    let (a, b) = sequence::unpack(&x.0, padding).py()?;
    Ok((Var(a), Var(b)))
}

/// A scalar constant of `dtype`.
#[pyfunction]
fn scalar(v: f64, dtype: &str) -> PyResult<Var> {
    Ok(Var(rntk::scalar(v, crate::graph::parse_dtype(dtype)?)))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    register_unary(m)?;
    register_binary(m)?;
    for f in [
        wrap_pyfunction!(alias, m)?,
        wrap_pyfunction!(leaky_relu, m)?,
        wrap_pyfunction!(times, m)?,
        wrap_pyfunction!(softmax, m)?,
        wrap_pyfunction!(log_softmax, m)?,
        wrap_pyfunction!(reduce, m)?,
        wrap_pyfunction!(reduce_all, m)?,
        wrap_pyfunction!(splice, m)?,
        wrap_pyfunction!(slice, m)?,
        wrap_pyfunction!(reshape, m)?,
        wrap_pyfunction!(transpose, m)?,
        wrap_pyfunction!(swapaxes, m)?,
        wrap_pyfunction!(clip, m)?,
        wrap_pyfunction!(element_select, m)?,
        wrap_pyfunction!(dropout, m)?,
        wrap_pyfunction!(one_hot, m)?,
        wrap_pyfunction!(gather, m)?,
        wrap_pyfunction!(cross_entropy_with_softmax, m)?,
        wrap_pyfunction!(weighted_binary_cross_entropy, m)?,
        wrap_pyfunction!(classification_error, m)?,
        wrap_pyfunction!(fmeasure, m)?,
        wrap_pyfunction!(lambda_rank, m)?,
        wrap_pyfunction!(ndcg_at_1, m)?,
        wrap_pyfunction!(delay, m)?,
        wrap_pyfunction!(seq_slice, m)?,
        wrap_pyfunction!(seq_unpack, m)?,
        wrap_pyfunction!(scalar, m)?,
    ] {
        m.add_function(f)?;
    }
    Ok(())
}

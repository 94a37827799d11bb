//! A warm executor allocates nothing per time step: the number of heap allocations
//! of a forward + backward does not depend on the sequence length (an LSTM loop; a
//! sequential convolution, whose images and row maps live in the node's scratch).
//!
//! The counter is process-wide: the tests of this file take `SERIAL` so that one
//! test's allocations never land in another's window.

use rntk::functions::*;
use rntk::{placeholder, sequence, DType, Executor, Tensor, Value, Variable};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

static SERIAL: Mutex<()> = Mutex::new(());

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        System.realloc(p, l, n)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn lstm(x: &Variable) -> (Variable, Vec<Variable>) {
    let p = |shape: [usize; 2], name: &str| {
        let n = shape[0] * shape[1];
        let data: Vec<f32> = (0..n).map(|i| ((i * 7 % 11) as f32 - 5.0) / 10.0).collect();
        rntk::parameter_from(Tensor::from_vec(shape, data).unwrap(), name)
    };
    let (w, h) = (p([2, 12], "W"), p([3, 12], "H"));
    let h_ph = placeholder([3], DType::F32, x.dynamic_axes(), "h").unwrap();
    let c_ph = placeholder([3], DType::F32, x.dynamic_axes(), "c").unwrap();
    let dh = sequence::past_value_scalar(&h_ph, 0.1, 1).unwrap();
    let dc = sequence::past_value_scalar(&c_ph, 0.1, 1).unwrap();
    let a = plus(&times(x, &w).unwrap(), &times(&dh, &h).unwrap()).unwrap();
    let gate = |j: isize| slice(&a, 0, j * 3, (j + 1) * 3).unwrap();
    let c = plus(
        &element_times(&sigmoid(&gate(2)).unwrap(), &dc).unwrap(),
        &element_times(&sigmoid(&gate(0)).unwrap(), &tanh(&gate(1)).unwrap()).unwrap(),
    )
    .unwrap();
    let y = element_times(&sigmoid(&gate(3)).unwrap(), &tanh(&c).unwrap()).unwrap();
    y.owner()
        .unwrap()
        .replace_placeholders(&[(h_ph, y.clone()), (c_ph, c)])
        .unwrap();
    (y, vec![w, h])
}

fn batch(lengths: &[usize]) -> Value {
    let seqs: Vec<Vec<f32>> = lengths
        .iter()
        .map(|&l| (0..2 * l).map(|i| (i as f32 * 0.37).sin()).collect())
        .collect();
    Value::from_sequences([2], &seqs).unwrap()
}

#[test]
fn warm_time_loop_does_not_allocate() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let x = sequence::input_variable([2]);
    let (y, params) = lstm(&x);
    let wrt: Vec<&Variable> = params.iter().collect();
    let mut ex = Executor::<f32>::new(std::slice::from_ref(&y)).unwrap();
    let long = batch(&[40, 25, 10, 1]);
    let short = batch(&[4, 3, 2, 1]);
    // warm up on the largest minibatch
    ex.forward(&[(&x, &long)], true).unwrap();
    ex.backward(&[(&y, None)], &wrt).unwrap();
    let count = |ex: &mut Executor<f32>, v: &Value| {
        let before = ALLOCS.load(Ordering::SeqCst);
        ex.forward(&[(&x, v)], true).unwrap();
        let g = ex.backward(&[(&y, None)], &wrt).unwrap();
        let n = ALLOCS.load(Ordering::SeqCst) - before;
        drop(g);
        n
    };
    // The least of 3 calls: rayon's queues allocate a new block now and then as jobs
    // pass through them (amortized, not per step), which a single call may catch.
    let a = (0..3).map(|_| count(&mut ex, &short)).min().unwrap();
    let b = (0..3).map(|_| count(&mut ex, &long)).min().unwrap();
    assert_eq!(
        a, b,
        "allocations grow with sequence length: {a} for 4 steps, {b} for 40 steps"
    );

    let mut inf = Executor::<f32>::new_inference(std::slice::from_ref(&y)).unwrap();
    inf.forward(&[(&x, &long)], false).unwrap();
    let count = |ex: &mut Executor<f32>, v: &Value| {
        let before = ALLOCS.load(Ordering::SeqCst);
        ex.forward(&[(&x, v)], false).unwrap();
        ALLOCS.load(Ordering::SeqCst) - before
    };
    let a = (0..3).map(|_| count(&mut inf, &short)).min().unwrap();
    let b = (0..3).map(|_| count(&mut inf, &long)).min().unwrap();
    assert_eq!(a, b, "inference allocations grow with sequence length");
    assert!(
        a <= 4,
        "a warm forward-only call allocates {a} times (per-call bookkeeping only)"
    );
}

fn seq_batch(dim: usize, lengths: &[usize]) -> Value {
    let seqs: Vec<Vec<f32>> = lengths
        .iter()
        .map(|&l| (0..dim * l).map(|i| (i as f32 * 0.29).cos()).collect())
        .collect();
    Value::from_sequences([dim], &seqs).unwrap()
}

#[test]
fn warm_sequential_convolution_does_not_allocate_per_sequence() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let x = sequence::input_variable([3]);
    let w = |shape: [usize; 3], name: &str| {
        let n: usize = shape.iter().product();
        let data: Vec<f32> = (0..n).map(|i| ((i * 5 % 13) as f32 - 6.0) / 10.0).collect();
        rntk::parameter_from(Tensor::from_vec(shape, data).unwrap(), name)
    };
    let (w1, w2) = (w([4, 3, 3], "W1"), w([2, 4, 2], "W2"));
    let attrs = |pad: bool| rntk::ops::ConvAttrs {
        auto_padding: vec![false, pad],
        sequential: true,
        ..Default::default()
    };
    // a padded one (the input's layout) and a valid one (each sequence one step shorter)
    let h = convolution(&w1, &x, attrs(true)).unwrap();
    let y = convolution(&w2, &h, attrs(false)).unwrap();
    let wrt = [&w1, &w2];
    let mut ex = Executor::<f32>::new(std::slice::from_ref(&y)).unwrap();
    let count = |ex: &mut Executor<f32>, v: &Value| {
        let before = ALLOCS.load(Ordering::SeqCst);
        ex.forward(&[(&x, v)], true).unwrap();
        let g = ex.backward(&[(&y, None)], &wrt).unwrap();
        let n = ALLOCS.load(Ordering::SeqCst) - before;
        drop(g);
        n
    };
    let long = seq_batch(3, &[40, 25, 10, 31, 2, 17, 9, 3]);
    let short = seq_batch(3, &[4, 3, 2, 5, 2, 3, 2, 3]);
    count(&mut ex, &long);
    let a = count(&mut ex, &long);
    count(&mut ex, &short);
    let b = count(&mut ex, &short);
    assert_eq!(
        a, b,
        "sequential convolution: a warm minibatch allocates {a} times with sequences up to 40 \
         steps, {b} times up to 5"
    );
}

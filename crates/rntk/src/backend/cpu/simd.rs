//! Element-wise transcendental kernels (sigmoid, tanh, exp).

use crate::tensor::Element;

/// y = 1 / (1 + e^-x), stable for large |x|.
pub fn sigmoid<T: Element>(x: &[T], y: &mut [T]) {
    let one = T::one();
    for (o, &v) in y.iter_mut().zip(x) {
        *o = if v >= T::zero() {
            one / (one + (-v).exp())
        } else {
            let e = v.exp();
            e / (one + e)
        };
    }
}

pub fn tanh<T: Element>(x: &[T], y: &mut [T]) {
    for (o, &v) in y.iter_mut().zip(x) {
        *o = v.tanh();
    }
}

pub fn exp<T: Element>(x: &[T], y: &mut [T]) {
    for (o, &v) in y.iter_mut().zip(x) {
        *o = v.exp();
    }
}

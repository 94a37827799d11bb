//! Shape probes: CNTK infers the state shapes of a Python step function
//! (`Recurrence(f)` with `f(h, c, x)` untyped, as tutorial 204's decoder step) from
//! the graph the function builds. rntk builds graphs with static shapes, so it runs the
//! function once as a probe, on stand-in states, to read the shapes of what it
//! returns; then it builds the loop for real.
//!
//! While a probe runs, the layers create no parameters and take no automatic seeds:
//! each returns a stand-in (a placeholder) of its output's shape, which does not
//! depend on the shape of its input (`Dense(n)` gives `n`, an LSTM step `(h, c)`, the
//! attention the encoder's shape, a nested `Recurrence`/`Fold` its states' sequences);
//! a convolution computes its output's shape from stand-ins of its filters and bias;
//! stabilizers and normalizations pass their input through. Parameters made directly in the function are made and dropped, and the
//! automatic seed sequence is put back afterwards, so a probe leaves no trace.

use crate::error::Result;
use crate::graph::{placeholder, Variable};
use crate::tensor::{DynamicAxes, Shape};
use std::cell::Cell;

thread_local! {
    static PROBING: Cell<bool> = const { Cell::new(false) };
}

/// Whether a probe runs on this thread.
pub fn probing() -> bool {
    PROBING.with(|p| p.get())
}

/// Run `f` as a probe: layers give stand-ins instead of creating parameters, and the
/// automatic seed sequence is restored afterwards (also when `f` fails or panics).
pub fn probe<R>(f: impl FnOnce() -> R) -> R {
    struct Restore {
        was: bool,
        seeds: crate::random::SeedSnapshot,
    }
    impl Drop for Restore {
        fn drop(&mut self) {
            PROBING.with(|p| p.set(self.was));
            crate::random::restore_seeds(self.seeds);
        }
    }
    let _restore = Restore {
        was: PROBING.with(|p| p.replace(true)),
        seeds: crate::random::snapshot_seeds(),
    };
    f()
}

/// A stand-in for a layer's output: shape `shape`, `like`'s element type, `axes`.
pub fn stand_in(shape: impl Into<Shape>, like: &Variable, axes: DynamicAxes) -> Result<Variable> {
    placeholder(shape, like.dtype(), axes, "probe")
}

/// Stand-ins for the outputs of a recurrent step on `x`.
pub(crate) fn stand_ins(shapes: &[Shape], x: &Variable) -> Result<Vec<Variable>> {
    let axes = x.info().axes;
    shapes
        .iter()
        .map(|s| stand_in(s.clone(), x, axes.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::{Dense, Layer};
    use crate::tensor::DType;

    #[test]
    fn a_probe_creates_nothing_and_restores_the_seeds() {
        let x = placeholder([3], DType::F32, DynamicAxes::default_sequence(), "x").unwrap();
        let d = Dense::new([4]);
        let before = crate::random::get_random_seed();
        let y = probe(|| {
            assert!(probing());
            let _ = crate::random::generate_random_seed();
            d.apply(&x).unwrap()
        });
        assert!(!probing());
        assert_eq!(crate::random::get_random_seed(), before);
        assert_eq!(y.shape().dims(), &[4]);
        assert!(d.parameters().is_empty());
        // a real application afterwards creates W (3, 4) as usual
        let y = d.apply(&x).unwrap();
        assert_eq!(y.shape().dims(), &[4]);
        assert_eq!(d.parameters()[0].shape().dims(), &[3, 4]);
    }

    #[test]
    fn convolutions_and_nested_recurrences_make_nothing_in_a_probe() {
        use crate::layers::{Convolution, Lstm, Recurrence};
        let img = placeholder([1, 5, 5], DType::F32, DynamicAxes::default_sequence(), "x").unwrap();
        let conv = Convolution::new(&[3, 3]).num_filters(2);
        let rec = Recurrence::new(Lstm::new(4));
        let before = crate::random::get_random_seed();
        let (y, h) = probe(|| {
            let y = conv.apply(&img).unwrap();
            let f = crate::functions::reshape(&y, [18]).unwrap();
            (y, rec.apply(&f).unwrap())
        });
        assert_eq!(crate::random::get_random_seed(), before);
        assert_eq!(y.shape().dims(), &[2, 3, 3]);
        assert_eq!(
            (h.shape().dims(), h.dynamic_axes()),
            (&[4][..], img.dynamic_axes())
        );
        assert!(conv.parameters().is_empty() && rec.parameters().is_empty());
        // real applications afterwards make the parameters of the real shapes
        let y = conv.apply(&img).unwrap();
        let f = crate::functions::reshape(&y, [18]).unwrap();
        rec.apply(&f).unwrap();
        assert_eq!(conv.parameters()[0].shape().dims(), &[2, 1, 3, 3]);
        let shapes: Vec<Vec<usize>> = rec
            .parameters()
            .iter()
            .map(|p| p.shape().dims().to_vec())
            .collect();
        assert!(
            shapes.contains(&vec![18, 16]) && shapes.contains(&vec![4, 16]),
            "{shapes:?}"
        );
    }
}

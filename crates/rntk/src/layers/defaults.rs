//! `default_options` scopes: values a layer factory reads when it is called, innermost
//! scope first; an explicit builder argument always wins (CNTK's propagation rules,
//! recurrence.md §8).

use super::Activation;
use crate::initializer::Initializer;
use std::cell::RefCell;

/// The options of CNTK's `default_options(...)`; `None` leaves the outer scope's (or the built-in) value.
#[derive(Clone, Debug, Default)]
pub struct DefaultOptions {
    pub init: Option<Initializer>,
    pub activation: Option<Activation>,
    pub initial_state: Option<f64>,
    pub bias: Option<bool>,
    pub init_bias: Option<f64>,
    pub enable_self_stabilization: Option<bool>,
    pub use_peepholes: Option<bool>,
    pub go_backwards: Option<bool>,
    pub pad: Option<bool>,
    /// BatchNormalization: `Some(1)` normalizes per leading-axis channel.
    pub map_rank: Option<usize>,
    /// BatchNormalization's running-estimate time constant (samples).
    pub normalization_time_constant: Option<f64>,
    /// BatchNormalization / LayerNormalization.
    pub epsilon: Option<f64>,
}

struct Scope {
    opts: DefaultOptions,
    /// `default_options_for`: only these layer kinds read this scope.
    only: Option<Vec<&'static str>>,
}

thread_local! {
    static SCOPES: RefCell<Vec<Scope>> = const { RefCell::new(Vec::new()) };
}

struct Pop;
impl Drop for Pop {
    fn drop(&mut self) {
        SCOPES.with(|s| {
            s.borrow_mut().pop();
        });
    }
}

/// Run `body` with `opts` as the innermost default options (CNTK's
/// `with default_options(...)`).
pub fn default_options<R>(opts: DefaultOptions, body: impl FnOnce() -> R) -> R {
    SCOPES.with(|s| s.borrow_mut().push(Scope { opts, only: None }));
    let _pop = Pop;
    body()
}

/// Like `default_options`, read only by the listed layer kinds ("Dense", "LSTM", …).
pub fn default_options_for<R>(
    layers: &[&'static str],
    opts: DefaultOptions,
    body: impl FnOnce() -> R,
) -> R {
    SCOPES.with(|s| {
        s.borrow_mut().push(Scope {
            opts,
            only: Some(layers.to_vec()),
        })
    });
    let _pop = Pop;
    body()
}

/// The innermost value of one option visible to `layer`.
pub(crate) fn lookup<T>(layer: &str, get: impl Fn(&DefaultOptions) -> Option<T>) -> Option<T> {
    SCOPES.with(|s| {
        s.borrow()
            .iter()
            .rev()
            .filter(|sc| sc.only.as_ref().is_none_or(|l| l.contains(&layer)))
            .find_map(|sc| get(&sc.opts))
    })
}

//! rntk errors as Python exceptions, and the guard that keeps panics out of Python.

use pyo3::exceptions::{PyKeyboardInterrupt, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use rntk::Error;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The message an interrupted training loop carries (turned into `KeyboardInterrupt`).
pub const INTERRUPTED: &str = "interrupted by Ctrl-C (KeyboardInterrupt) between minibatches";

/// The Python exception for an rntk error: shapes, values and arguments are
/// `ValueError`, element types `TypeError`, files and the rest `RuntimeError`.
pub fn to_py(e: Error) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::DType { .. } => PyTypeError::new_err(msg),
        Error::Argument(ref m) if m == INTERRUPTED => PyKeyboardInterrupt::new_err(msg),
        Error::Shape { .. }
        | Error::DynamicAxes { .. }
        | Error::InvalidValue(_)
        | Error::Argument(_)
        | Error::InvalidArgument { .. }
        | Error::Runtime { .. }
        | Error::Reader { .. }
        | Error::Format { .. } => PyValueError::new_err(msg),
        Error::CycleWithoutDelay { .. } | Error::Io { .. } | Error::Unsupported(_) => {
            PyRuntimeError::new_err(msg)
        }
    }
}

/// `Result<T, rntk::Error>` → `PyResult<T>`.
pub trait IntoPy<T> {
    fn py(self) -> PyResult<T>;
}

impl<T> IntoPy<T> for rntk::Result<T> {
    fn py(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}

/// Run `f`, turning a panic into a `RuntimeError` that names it as an rntk bug.
pub fn guard<T>(f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(PyRuntimeError::new_err(format!(
                "internal error in rntk (please report it): {what}"
            )))
        }
    }
}

/// Run `f` without the GIL, catching panics; rntk errors become Python exceptions.
pub fn nogil<T: Send>(py: Python<'_>, f: impl FnOnce() -> rntk::Result<T> + Send) -> PyResult<T> {
    let r = py.detach(|| catch_unwind(AssertUnwindSafe(f)));
    match r {
        Ok(r) => r.py(),
        Err(p) => {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(PyRuntimeError::new_err(format!(
                "internal error in rntk (please report it): {what}"
            )))
        }
    }
}

pub fn value_err(msg: impl Into<String>) -> PyErr {
    PyValueError::new_err(msg.into())
}

pub fn type_err(msg: impl Into<String>) -> PyErr {
    PyTypeError::new_err(msg.into())
}

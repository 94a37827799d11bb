//! The one error type of rntk: every failure names what the user can act on.

use thiserror::Error;

/// Result alias used throughout rntk.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong, with enough context to fix it.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum Error {
    /// An op was given operands whose static shapes do not fit together.
    #[error("{op} '{name}': {detail}")]
    Shape {
        op: String,
        name: String,
        detail: String,
    },
    /// Operands carry dynamic axes that cannot be combined.
    #[error("{op} '{name}': dynamic axes do not match: {detail}")]
    DynamicAxes {
        op: String,
        name: String,
        detail: String,
    },
    /// Element types differ where they must agree.
    #[error("{context}: data type mismatch: expected {expected}, got {got}")]
    DType {
        context: String,
        expected: String,
        got: String,
    },
    /// The graph has a cycle that does not pass through past_value / future_value.
    #[error(
        "cycle with no delay: {path} (a recurrence must go through past_value or future_value)"
    )]
    CycleWithoutDelay { path: String },
    /// A value handed in does not match its own declared layout.
    #[error("invalid value: {0}")]
    InvalidValue(String),
    /// A feed names a variable the function does not take, or misses one it needs.
    #[error("argument error: {0}")]
    Argument(String),
    /// An argument outside its legal range (a rate, an axis, an index...).
    #[error("{context}: {detail}")]
    InvalidArgument { context: String, detail: String },
    /// A minibatch's data does not fit the op at run time (lengths, layouts).
    #[error("{op} '{name}' at run time: {detail}")]
    Runtime {
        op: String,
        name: String,
        detail: String,
    },
    /// Malformed input data: where it is (1-based line and column, in characters),
    /// what was found there and what the format expects instead.
    #[error("{file}:{line}:{column}: found {text:?}, expected {expected}")]
    Reader {
        file: String,
        line: u64,
        column: u64,
        text: String,
        expected: String,
    },
    /// A file that cannot be opened, read or written.
    #[error("{file}: {detail}")]
    Io { file: String, detail: String },
    /// A file whose contents are not what its format requires: `detail` says what was
    /// expected and what was found.
    #[error("{file}: {detail}")]
    Format { file: String, detail: String },
    /// A feature that exists in CNTK but not (yet) in rntk; never silently ignored.
    #[error("not supported: {0}")]
    Unsupported(String),
    /// Distributed training failed: a worker died or stopped answering, the workers
    /// disagree (different configs or models), or the transport failed. `rank` names
    /// the worker at fault when it is known.
    #[error("distributed training{}: {detail}", rank.map(|r| format!(", worker rank {r}")).unwrap_or_default())]
    Distributed { rank: Option<usize>, detail: String },
}

impl Error {
    pub(crate) fn shape(op: &str, name: &str, detail: impl Into<String>) -> Self {
        Error::Shape {
            op: op.to_string(),
            name: name.to_string(),
            detail: detail.into(),
        }
    }
    pub(crate) fn axes(op: &str, name: &str, detail: impl Into<String>) -> Self {
        Error::DynamicAxes {
            op: op.to_string(),
            name: name.to_string(),
            detail: detail.into(),
        }
    }
    pub(crate) fn distributed(rank: Option<usize>, detail: impl Into<String>) -> Self {
        Error::Distributed {
            rank,
            detail: detail.into(),
        }
    }
    pub(crate) fn invalid(context: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::InvalidArgument {
            context: context.into(),
            detail: detail.into(),
        }
    }
}

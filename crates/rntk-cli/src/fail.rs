//! User errors: one line, printed as `rntk: <message>`, exit status 1.

use std::fmt;

/// A failure to report to the user.
#[derive(Debug)]
pub struct Fail(pub String);

pub type Result<T, E = Fail> = std::result::Result<T, E>;

impl Fail {
    pub fn new(msg: impl Into<String>) -> Fail {
        Fail(msg.into())
    }
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // always one line
        f.write_str(&self.0.replace('\n', " "))
    }
}

impl From<rntk::Error> for Fail {
    fn from(e: rntk::Error) -> Fail {
        Fail(e.to_string())
    }
}

/// Attach context to library errors: `context: error`.
pub trait Context<T> {
    fn context(self, what: impl fmt::Display) -> Result<T>;
}

impl<T, E: fmt::Display> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|e| Fail(format!("{what}: {e}")))
    }
}

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
        f.write_str(&one_line(&self.0))
    }
}

/// Text fit for one terminal line: line ends become spaces, and every other control
/// character (escape sequences from a garbage config or file name, NULs, bells) is
/// shown as an escape (`\u{1b}`) rather than sent to the terminal.
pub fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\r' => out.push(' '),
            '\t' => out.push(' '),
            c if c.is_control() || is_bidi_or_invisible(c) => {
                out.extend(c.escape_unicode());
            }
            c => out.push(c),
        }
    }
    out
}

/// Characters that reorder or hide text on a terminal (bidirectional overrides,
/// zero-width marks): shown escaped too.
fn is_bidi_or_invisible(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line_without_control_characters() {
        let m = one_line("a\nb\r\tc \u{1b}[31mred\u{7}\u{0} \u{202e}x é");
        assert_eq!(m, "a b  c \\u{1b}[31mred\\u{7}\\u{0} \\u{202e}x é");
        assert!(!m.chars().any(|c| c.is_control()));
    }
}

//! Reader diagnostics: where a problem is (line and column from a byte offset), the
//! warning sink for problems CNTK only warns about, and the malformed-input policy.

use crate::error::Error;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// What a reader does with a malformed sequence.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ErrorPolicy {
    /// Stop with an [`Error::Reader`] naming the place (CNTK's behaviour: every parse
    /// error is fatal for the `next_minibatch` call that reaches it).
    #[default]
    Fail,
    /// Drop the whole malformed sequence, report it as a warning and go on. The
    /// warning is counted in [`WarningSink::skipped_sequences`].
    SkipSequence,
}

/// One warning: the same location data as an error.
#[derive(Clone, Debug, PartialEq)]
pub struct Warning {
    pub file: String,
    pub line: u64,
    pub column: u64,
    pub text: String,
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {} (at {:?})",
            self.file, self.line, self.column, self.message, self.text
        )
    }
}

/// Collects warnings: prints the first few to stderr (so a person sees them, as
/// CNTK's `WARNING:` lines) and counts all of them, so that a file with a million
/// short rows does not flood the terminal but the total is still known.
#[derive(Debug)]
pub struct WarningSink {
    print_limit: u64,
    keep_limit: usize,
    count: AtomicU64,
    skipped: AtomicU64,
    kept: Mutex<Vec<Warning>>,
}

impl Default for WarningSink {
    fn default() -> Self {
        WarningSink::new(20)
    }
}

impl WarningSink {
    /// A sink printing at most `print_limit` warnings to stderr.
    pub fn new(print_limit: u64) -> Self {
        WarningSink {
            print_limit,
            keep_limit: 1000,
            count: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            kept: Mutex::new(Vec::new()),
        }
    }
    /// A sink that never prints (tests, tools that report counts themselves).
    pub fn silent() -> Self {
        WarningSink::new(0)
    }
    pub fn warn(&self, w: Warning) {
        let n = self.count.fetch_add(1, Ordering::Relaxed);
        if n < self.print_limit {
            eprintln!("WARNING: {w}");
        } else if n == self.print_limit && self.print_limit > 0 {
            eprintln!("WARNING: further reader warnings are counted but not printed");
        }
        // A poisoned lock only means another thread panicked while pushing; the
        // list is still usable, so keep going rather than propagate the panic.
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() < self.keep_limit {
            kept.push(w);
        }
    }
    pub(crate) fn note_skipped(&self) {
        self.skipped.fetch_add(1, Ordering::Relaxed);
    }
    /// Number of warnings so far (including those for skipped sequences).
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
    /// Number of sequences dropped under [`ErrorPolicy::SkipSequence`].
    pub fn skipped_sequences(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }
    /// The first warnings (up to 1000), for tools and tests.
    pub fn warnings(&self) -> Vec<Warning> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Longest offending text quoted in a message: enough to recognise it, never a
/// whole megabyte line.
const MAX_TEXT: usize = 40;

/// The text of a located problem: from `pos` up to the next blank, bar or line end
/// (at least one character so a stray delimiter is still shown).
pub(crate) fn token_at(bytes: &[u8], pos: usize) -> String {
    if pos >= bytes.len() {
        return "end of file".to_string();
    }
    let mut end = pos + 1;
    while end < bytes.len()
        && end - pos < MAX_TEXT
        && !matches!(bytes[end], b' ' | b'\t' | b'|' | b'\n' | b'\r')
    {
        end += 1;
    }
    quote(&bytes[pos..end])
}

/// Bytes shown as text; invalid UTF-8 becomes U+FFFD rather than an error.
pub(crate) fn quote(b: &[u8]) -> String {
    let b = &b[..b.len().min(MAX_TEXT)];
    String::from_utf8_lossy(b).into_owned()
}

/// A located problem inside a buffer whose first byte is on `base_line`; the line
/// and column are found by scanning back from `pos` (only done on the error path).
pub(crate) struct Locator<'a> {
    pub file: &'a str,
    pub bytes: &'a [u8],
    pub base_line: u64,
    /// Offset in `bytes` of a line start at or before every `pos` asked about, and
    /// its line number; lets the scan count only a few lines.
    pub known_line_start: usize,
    pub known_line: u64,
}

impl Locator<'_> {
    /// (line, column) of byte `pos`, both 1-based, column in characters.
    pub fn line_col(&self, pos: usize) -> (u64, u64) {
        let pos = pos.min(self.bytes.len());
        let from = self.known_line_start.min(pos);
        let seg = &self.bytes[from..pos];
        let newlines = memchr::memchr_iter(b'\n', seg).count() as u64;
        let line_start = match memchr::memrchr(b'\n', seg) {
            Some(i) => from + i + 1,
            None => from,
        };
        let col = String::from_utf8_lossy(&self.bytes[line_start..pos])
            .chars()
            .count() as u64
            + 1;
        (self.base_line + self.known_line + newlines, col)
    }
    pub fn error(&self, pos: usize, text: String, expected: impl Into<String>) -> Error {
        let (line, column) = self.line_col(pos);
        Error::Reader {
            file: self.file.to_string(),
            line,
            column,
            text,
            expected: expected.into(),
        }
    }
    pub fn warning(&self, pos: usize, text: String, message: impl Into<String>) -> Warning {
        let (line, column) = self.line_col(pos);
        Warning {
            file: self.file.to_string(),
            line,
            column,
            text,
            message: message.into(),
        }
    }
}

/// An error turned into a warning (for the skip policy).
pub(crate) fn as_warning(e: &Error, what: &str) -> Warning {
    match e {
        Error::Reader {
            file,
            line,
            column,
            text,
            expected,
        } => Warning {
            file: file.clone(),
            line: *line,
            column: *column,
            text: text.clone(),
            message: format!("{what}: expected {expected}"),
        },
        other => Warning {
            file: String::new(),
            line: 0,
            column: 0,
            text: String::new(),
            message: format!("{what}: {other}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn line_and_column_count_characters() {
        let bytes = "ab\ncé|x\n".as_bytes();
        let l = Locator {
            file: "f",
            bytes,
            base_line: 10,
            known_line_start: 0,
            known_line: 0,
        };
        assert_eq!(l.line_col(0), (10, 1));
        assert_eq!(l.line_col(3), (11, 1));
        // 'é' is two bytes but one column
        assert_eq!(l.line_col(6), (11, 3));
        assert_eq!(token_at(bytes, 3), "cé");
        assert_eq!(token_at(bytes, 6), "|x");
        assert_eq!(token_at(bytes, 99), "end of file");
    }
    #[test]
    fn sink_counts_beyond_print_limit() {
        let s = WarningSink::new(1);
        for i in 0..5 {
            s.warn(Warning {
                file: "f".into(),
                line: i,
                column: 1,
                text: String::new(),
                message: "m".into(),
            });
        }
        assert_eq!(s.count(), 5);
        assert_eq!(s.warnings().len(), 5);
    }
}

//! Helpers shared by the CLI's end-to-end tests: run the `rntk` binary, fresh folders,
//! and the shape of a user error.

// Each test file uses a different part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn rntk(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rntk"))
        .args(args)
        .output()
        .expect("the rntk binary runs")
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A fresh folder under the target's temp dir.
pub fn dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("rntk-cli-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// One user error: exit 1, one line on stderr starting `rntk: `, containing `needles`.
pub fn assert_user_error(o: &Output, needles: &[&str]) {
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("rntk: "), "{err}");
    for n in needles {
        assert!(err.contains(n), "{err:?} should mention {n:?}");
    }
}

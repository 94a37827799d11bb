//! Issue 13, rows 7, 8, 11 and 12: an endless eval input stops in bounded memory,
//! data truncated mid-training ends in an error and the checkpoint resumes, the
//! temporary files of killed runs are removed, a second trainer on one checkpoint
//! is refused.

use super::*;
use std::io::Read;
use std::process::Child;
use std::time::{Duration, Instant};

// ---- row 7: eval input that never ends --------------------------------------------------

#[test]
fn row07_eval_of_an_endless_input_stops_with_an_error_in_bounded_memory() {
    let (m, data) = trained_model("row07");
    let t = Instant::now();
    let o = bounded(&["eval", p(&m), "--input", "/dev/zero"], &[], Stdio::null());
    assert_user_error(
        &o,
        &[
            "--input /dev/zero",
            "row 1 is longer than 67108864 bytes",
            "RNTK_MAX_LINE_BYTES",
        ],
    );
    assert!(t.elapsed() < Duration::from_secs(60));
    // an endless stream of valid rows: stops at the stream limit
    let mut yes = Command::new("yes")
        .arg("0\t|features 0.5\t|target 1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let o = bounded(
        &["eval", p(&m), "--input", "/dev/stdin"],
        &[("RNTK_MAX_STREAM_BYTES", "4000000")],
        Stdio::from(yes.stdout.take().unwrap()),
    );
    let _ = yes.kill();
    let _ = yes.wait();
    assert_user_error(
        &o,
        &[
            "/dev/stdin",
            "longer than 4000000 bytes",
            "RNTK_MAX_STREAM_BYTES",
        ],
    );
    // a finite stream evaluates like the file it came from
    let from_file = rntk(&["eval", p(&m), "--input", p(&data)]);
    assert!(from_file.status.success(), "{}", text(&from_file.stderr));
    let o = bounded(
        &["eval", p(&m), "--input", "/dev/stdin"],
        &[],
        Stdio::from(std::fs::File::open(&data).unwrap()),
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(o.stdout, from_file.stdout);
    // an invalid limit in the environment is an error, not ignored
    let o = bounded(
        &["eval", p(&m), "--input", p(&data)],
        &[("RNTK_MAX_STREAM_BYTES", "lots")],
        Stdio::null(),
    );
    assert_user_error(&o, &["RNTK_MAX_STREAM_BYTES", "\"lots\""]);
}

// ---- row 8 (and the resume): the training data truncated while it is read ------------------

fn wait_for(what: &str, deadline: Duration, mut ok: impl FnMut() -> bool) {
    let t = Instant::now();
    while !ok() {
        assert!(t.elapsed() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_exit(child: &mut Child, deadline: Duration) -> Output {
    let t = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if t.elapsed() > deadline {
            let _ = child.kill();
            panic!("the process did not end");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_end(&mut stderr)
        .unwrap();
    Output {
        status: child.wait().unwrap(),
        stdout,
        stderr,
    }
}

/// A long run (many epochs) with a checkpoint after every epoch.
fn long_run(name: &str, epochs: u64) -> (PathBuf, PathBuf) {
    let extra = "\n[callbacks.checkpoint]\nfile = \"ck/m.ckpt\"\nfrequency = 200\n";
    let (d, cfg) = setup(name, 60, "2", "1", extra);
    let body = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("max_epochs = 2", &format!("max_epochs = {epochs}"));
    std::fs::write(&cfg, body).unwrap();
    (d, cfg)
}

fn spawn_train(cfg: &Path) -> Child {
    bin()
        .args(["train", p(cfg)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn row08_data_truncated_mid_training_ends_with_an_error_and_the_checkpoint_resumes() {
    let (d, cfg) = long_run("row08", 100_000);
    let data = d.join("train.ctf");
    let original = std::fs::read(&data).unwrap();
    let mut child = spawn_train(&cfg);
    wait_for("the first checkpoint", Duration::from_secs(120), || {
        d.join("ck/m.ckpt.ckp").exists()
    });
    // what `> train.ctf` or a rewrite in progress does to a file being read
    std::fs::OpenOptions::new()
        .write(true)
        .open(&data)
        .unwrap()
        .set_len(original.len() as u64 / 2)
        .unwrap();
    let o = wait_exit(&mut child, Duration::from_secs(120));
    assert_user_error(
        &o,
        &["train.ctf", "changed while it was being read", "shrank"],
    );
    assert!(
        !d.join("m.model").exists(),
        "no model from an interrupted run"
    );
    let done = text(&o.stdout).matches("Finished Epoch[").count() as u64;
    assert!(done >= 1);

    // the data restored, the same run resumes from its last checkpoint: two more
    // epochs, not the whole run again
    std::fs::write(&data, &original).unwrap();
    let resumed = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("max_epochs = 100000", &format!("max_epochs = {}", done + 2));
    std::fs::write(&cfg, resumed).unwrap();
    let o = rntk(&["train", p(&cfg)]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    assert_eq!(out.matches("Finished Epoch[").count(), 2, "{out}");
    let o = rntk(&["info", p(&d.join("m.model"))]);
    assert!(o.status.success(), "{}", text(&o.stderr));
}

// ---- rows 11 and 12: temporary files of killed runs; two trainers on one checkpoint ------

#[test]
fn row11_temporary_files_of_a_killed_checkpoint_write_are_removed_at_the_next_start() {
    let extra = "\n[callbacks.checkpoint]\nfile = \"ck/m.ckpt\"\nfrequency = 200\n";
    let (d, cfg) = setup("row11", 30, "2", "1", extra);
    let ck = d.join("ck");
    std::fs::create_dir_all(&ck).unwrap();
    // what `kill -9` during a write leaves (a writer that no longer runs)
    let stale = [
        ".m.ckpt.tmp-999999999-0",
        ".m.ckpt.ckp.tmp-999999999-1",
        ".m.ckpt.ckp.tmp-999999998-7",
    ];
    for s in stale {
        std::fs::write(ck.join(s), b"half a checkpoint").unwrap();
    }
    std::fs::write(ck.join("unrelated.tmp-1-2"), b"keep").unwrap();
    std::fs::write(d.join(".m.model.tmp-999999999-0"), b"half a model").unwrap();
    let o = rntk(&["train", p(&cfg)]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        files_in(&ck),
        vec!["m.ckpt", "m.ckpt.ckp", "unrelated.tmp-1-2"],
        "stale temporary files removed, the lock released"
    );
    assert!(!d.join(".m.model.tmp-999999999-0").exists());
}

#[test]
fn row12_a_second_trainer_on_the_same_checkpoint_is_refused() {
    let (d, cfg) = long_run("row12", 100_000);
    let mut first = spawn_train(&cfg);
    wait_for("the first checkpoint", Duration::from_secs(120), || {
        d.join("ck/m.ckpt.ckp").exists()
    });
    // the second run also asks for a TensorBoard log: nothing of it may appear
    let second_cfg = d.join("second.toml");
    std::fs::write(
        &second_cfg,
        std::fs::read_to_string(&cfg).unwrap() + "\n[callbacks.tensorboard]\nlog_dir = \"tb2\"\n",
    )
    .unwrap();
    let o = rntk(&["train", p(&second_cfg)]);
    assert_user_error(
        &o,
        &[
            "callbacks.checkpoint.file",
            "m.ckpt",
            "in use by another trainer",
        ],
    );
    assert!(!d.join("tb2").exists(), "the refused trainer wrote nothing");
    assert!(
        first.try_wait().unwrap().is_none(),
        "the first trainer runs on"
    );
    // kill -9: the lock goes with the process; a new run (not restoring) starts
    first.kill().unwrap();
    first.wait().unwrap();
    let fresh = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("max_epochs = 100000", "max_epochs = 1")
        .replace("frequency = 200\n", "frequency = 200\nrestore = false\n");
    std::fs::write(&cfg, fresh).unwrap();
    let o = rntk(&["train", p(&cfg)]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let left = files_in(&d.join("ck"));
    assert!(left.iter().all(|f| !f.contains(".tmp-")), "{left:?}");
    assert!(rntk(&["info", p(&d.join("m.model"))]).status.success());
}

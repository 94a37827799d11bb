//! TensorBoard event files: masked-CRC and record known vectors (from TensorBoard's own
//! Python implementation and protobuf), framing/CRC round trips, CNTK's tags and steps
//! from `TensorBoardProgressWriter`, a real `Trainer` driving it, and the real
//! `tensorboard` package reading the file (tests/tensorboard/check_events.py).

use rntk::functions::*;
use rntk::graph::{input_variable_with, InputOptions};
use rntk::learners::{sgd, LearnerOptions, Schedule};
use rntk::train::tensorboard::{
    decode_records, encode_record, masked_crc32c, read_events, Event, EventFileWriter, EventWhat,
    FILE_VERSION,
};
use rntk::train::{ProgressWriter, TensorBoardProgressWriter, Totals, Trainer};
use rntk::{DType, Error, Tensor, Value, Variable};
use std::path::{Path, PathBuf};
use std::process::Command;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A fresh, empty directory for one test.
fn fresh_dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("tensorboard-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn event_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// (tag, step, value) of every scalar in the file, in order.
fn scalars(path: &Path) -> Vec<(String, i64, f32)> {
    read_events(path)
        .unwrap()
        .iter()
        .flat_map(|e| {
            e.scalars()
                .into_iter()
                .map(|(t, v)| (t.to_string(), e.step, v))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn masked_crc_known_vectors() {
    // Values from tensorboard.compat.tensorflow_stub.pywrap_tensorflow.masked_crc32c.
    assert_eq!(masked_crc32c(b"123456789"), 0xc78a_b0e5);
    assert_eq!(masked_crc32c(b""), 0xa282_ead8);
}

#[test]
fn record_bytes_match_tensorboards_protobuf() {
    // event_pb2.Event(wall_time=1.5, file_version="brain.Event:2").SerializeToString()
    let version = Event {
        wall_time: 1.5,
        step: 0,
        what: Some(EventWhat::FileVersion(FILE_VERSION.into())),
    };
    assert_eq!(
        prost::Message::encode_to_vec(&version),
        hex("09000000000000f83f1a0d627261696e2e4576656e743a32")
    );
    // Event(wall_time=1700000000.25, step=42, summary=Summary(value=[Value(
    //   tag="minibatch/avg_loss", simple_value=0.125)])), framed as TensorFlow does.
    let scalar = Event::scalar("minibatch/avg_loss", 0.125, 42, 1_700_000_000.25);
    let data = prost::Message::encode_to_vec(&scalar);
    assert_eq!(
        data,
        hex("0900001040fc54d941102a2a1b0a190a126d696e6962617463682f6176675f6c6f7373150000003e")
    );
    let mut rec = Vec::new();
    encode_record(&data, &mut rec);
    assert_eq!(
        rec,
        hex(concat!(
            "2800000000000000ff70164a",
            "0900001040fc54d941102a2a1b0a190a126d696e6962617463682f6176675f6c6f7373150000003e",
            "acdbbdc8"
        ))
    );
}

#[test]
fn decode_checks_framing_and_crcs() {
    let mut stream = Vec::new();
    encode_record(b"first", &mut stream);
    encode_record(b"", &mut stream);
    encode_record(b"third record", &mut stream);
    let recs = decode_records(&stream, "mem").unwrap();
    assert_eq!(recs, vec![&b"first"[..], &b""[..], &b"third record"[..]]);

    // A flipped data byte, a flipped length byte, a flipped data CRC, a cut stream.
    for (at, what) in [(14, "data CRC"), (0, "length CRC"), (17, "data CRC")] {
        let mut bad = stream.clone();
        bad[at] ^= 0x01;
        let e = decode_records(&bad, "mem").unwrap_err();
        assert!(matches!(e, Error::Io { .. }), "{e}");
        assert!(e.to_string().contains(what), "byte {at}: {e}");
    }
    // An empty record whose data CRC is missing or short.
    let mut empty = Vec::new();
    encode_record(b"", &mut empty);
    for keep in [12, 14] {
        let e = decode_records(&empty[..keep], "mem").unwrap_err();
        assert!(e.to_string().contains("truncated"), "keep {keep}: {e}");
    }
    for cut in [1, 4, 12, stream.len() - 1] {
        let e = decode_records(&stream[..stream.len() - cut], "mem").unwrap_err();
        assert!(e.to_string().contains("truncated"), "cut {cut}: {e}");
    }
}

#[test]
fn event_file_round_trip() {
    let dir = fresh_dir("round-trip").join("nested/logs");
    let path = {
        let mut w = EventFileWriter::create(&dir).unwrap();
        w.write_scalar("a", 1.5, 1).unwrap();
        w.write_scalar("b/c", -2.25e-7, 2).unwrap();
        w.write_scalar("a", f32::MAX, i64::MAX).unwrap();
        w.path().to_path_buf()
        // dropped: flushed
    };
    assert_eq!(event_files(&dir), vec![path.clone()]);
    let name = path.file_name().unwrap().to_str().unwrap();
    let parts: Vec<&str> = name.splitn(5, '.').collect();
    assert_eq!(&parts[..3], ["events", "out", "tfevents"]);
    assert_eq!(parts[3].len(), 10, "{name}");
    assert!(parts[3].bytes().all(|b| b.is_ascii_digit()), "{name}");
    assert!(!parts[4].is_empty(), "{name}");

    let events = read_events(&path).unwrap();
    assert_eq!(events.len(), 4);
    assert_eq!(
        events[0].what,
        Some(EventWhat::FileVersion("brain.Event:2".into()))
    );
    assert!(events.iter().all(|e| e.wall_time > 1.6e9));
    assert_eq!(
        scalars(&path),
        vec![
            ("a".into(), 1, 1.5),
            ("b/c".into(), 2, -2.25e-7),
            ("a".into(), i64::MAX, f32::MAX)
        ]
    );

    // A second writer in the same second gets its own file.
    let w1 = EventFileWriter::create(&dir).unwrap();
    let w2 = EventFileWriter::create(&dir).unwrap();
    assert_ne!(w1.path(), w2.path());
    assert_eq!(event_files(&dir).len(), 3);
}

#[test]
fn unusable_log_dir_is_an_io_error() {
    let dir = fresh_dir("not-a-dir");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let e = EventFileWriter::create(&file).err().unwrap();
    assert!(matches!(e, Error::Io { .. }), "{e}");
    let e = TensorBoardProgressWriter::new(Some(1), file.join("sub"))
        .err()
        .unwrap();
    assert!(matches!(e, Error::Io { .. }), "{e}");
}

fn totals(updates: u64, samples: u64, loss: f64, metric: f64) -> Totals {
    Totals {
        updates,
        samples,
        loss,
        metric,
    }
}

/// Drives the writer as a Trainer does: cumulative totals since the last summary.
/// Returns the expected (tag, step, value) list, CNTK's rules applied by hand.
fn drive(w: &mut TensorBoardProgressWriter) -> Vec<(String, i64, f32)> {
    let exp = |t: &str, s: i64, v: f64| (t.to_string(), s, v as f32);
    // Epoch 1: 5 minibatches of 4 samples; losses Σ 4,8,12,16,20; metrics Σ 1,2,3,4,0.
    let mut acc = Totals::default();
    let mb = [
        (4.0, 1.0),
        (8.0, 2.0),
        (12.0, 3.0),
        (16.0, 4.0),
        (20.0, 0.0),
    ];
    for (l, m) in mb {
        acc = totals(
            acc.updates + 1,
            acc.samples + 4,
            acc.loss + l,
            acc.metric + m,
        );
        w.on_training_update(&acc);
    }
    w.on_training_summary(&acc, 0.5);
    // Epoch 2: 3 minibatches of 2 samples, Σ losses 1,3,5, metrics 2,0,1.
    let mut acc2 = Totals::default();
    for (l, m) in [(1.0, 2.0), (3.0, 0.0), (5.0, 1.0)] {
        acc2 = totals(
            acc2.updates + 1,
            acc2.samples + 2,
            acc2.loss + l,
            acc2.metric + m,
        );
        w.on_training_update(&acc2);
    }
    w.on_training_summary(&acc2, 0.5);
    w.on_test_summary(&totals(3, 10, 0.0, 2.5));
    w.write_value("learning_rate", 0.005, 2).unwrap();
    vec![
        // freq 2: after epoch updates 2 and 4, averages of the window since the last write
        exp("minibatch/avg_loss", 2, 12.0 / 8.0),
        exp("minibatch/avg_metric", 2, 3.0 / 8.0),
        exp("minibatch/avg_loss", 4, 28.0 / 8.0),
        exp("minibatch/avg_metric", 4, 7.0 / 8.0),
        exp("summary/avg_loss", 1, 60.0 / 20.0),
        exp("summary/avg_metric", 1, 10.0 / 20.0),
        // epoch update 2 is training update 7
        exp("minibatch/avg_loss", 7, 1.0), // (1 + 3) / 4
        exp("minibatch/avg_metric", 7, 2.0 / 4.0),
        exp("summary/avg_loss", 2, 9.0 / 6.0),
        exp("summary/avg_metric", 2, 3.0 / 6.0),
        // a test after training: stepped by training updates
        exp("minibatch/test_avg_metric", 8, 0.25),
        exp("learning_rate", 2, 0.005),
    ]
}

#[test]
fn progress_writer_records_cntk_tags_and_steps() {
    let dir = fresh_dir("progress");
    let mut w = TensorBoardProgressWriter::new(Some(2), &dir).unwrap();
    let path = w.path().unwrap();
    let want = drive(&mut w);
    assert_eq!(w.total_training_updates(), 8);
    // Summaries flush, so all but the last user scalar are on disk already; `flush`
    // persists that one too.
    assert_eq!(scalars(&path), want[..want.len() - 1]);
    w.flush().unwrap();
    assert_eq!(scalars(&path), want);
    assert!(w.take_error().is_none());
    w.close().unwrap();
    assert!(w.path().is_none());
    let e = w.write_value("x", 1.0, 1).unwrap_err();
    assert!(e.to_string().contains("closed"), "{e}");
    assert_eq!(event_files(&dir), vec![path]);
}

#[test]
fn test_before_training_and_geometric_and_summary_only() {
    let dir = fresh_dir("schedules");
    // A test with no training before it: summary/test_avg_metric stepped by test summaries.
    let mut w = TensorBoardProgressWriter::new(None, dir.join("test")).unwrap();
    w.on_test_summary(&totals(2, 4, 0.0, 1.0));
    w.on_test_summary(&totals(1, 5, 0.0, 4.0));
    assert_eq!(
        scalars(&w.path().unwrap()),
        vec![
            ("summary/test_avg_metric".into(), 1, 0.25),
            ("summary/test_avg_metric".into(), 2, 0.8)
        ]
    );

    // freq 0: after updates 1, 3, 7 (geometric); None: only summaries.
    for (freq, want_steps) in [(Some(0), vec![1, 3, 7]), (None, vec![])] {
        let sub = dir.join(format!("{freq:?}"));
        let mut w = TensorBoardProgressWriter::new(freq, &sub).unwrap();
        let mut acc = Totals::default();
        for _ in 0..9 {
            acc = totals(acc.updates + 1, acc.samples + 1, acc.loss + 1.0, 0.0);
            w.on_training_update(&acc);
        }
        // An update with no samples is not counted (CNTK).
        acc.updates += 1;
        w.on_training_update(&acc);
        w.on_training_summary(&acc, 1.0);
        assert_eq!(w.total_training_updates(), 9);
        let got = scalars(&w.path().unwrap());
        let steps: Vec<i64> = got
            .iter()
            .filter(|s| s.0 == "minibatch/avg_loss")
            .map(|s| s.1)
            .collect();
        assert_eq!(steps, want_steps, "freq {freq:?}");
        assert_eq!(got.last().unwrap(), &("summary/avg_metric".into(), 1, 0.0));
    }
}

#[test]
fn nonzero_rank_records_nothing() {
    let dir = fresh_dir("rank");
    let mut w = TensorBoardProgressWriter::with_rank(Some(1), &dir, Some(1)).unwrap();
    w.on_training_update(&totals(1, 1, 1.0, 0.0));
    w.on_training_summary(&totals(1, 1, 1.0, 0.0), 1.0);
    w.write_value("x", 1.0, 1).unwrap();
    assert!(w.path().is_none());
    assert!(!dir.exists());
    let w0 = TensorBoardProgressWriter::with_rank(Some(1), &dir, Some(0)).unwrap();
    assert!(w0.path().is_some());
}

fn input(name: &str) -> Variable {
    input_variable_with(
        [1],
        InputOptions {
            dtype: DType::F32,
            name: name.into(),
            ..Default::default()
        },
    )
}

#[test]
fn trainer_drives_the_writer() {
    let dir = fresh_dir("trainer");
    let (x, t) = (input("x"), input("t"));
    let w = rntk::parameter_from(Tensor::from_vec([1], vec![0.5f32]).unwrap(), "w");
    let z = element_times(&x, &w).unwrap();
    let loss = square(&minus(&z, &t).unwrap()).unwrap();
    let metric = abs(&minus(&z, &t).unwrap()).unwrap();
    let tb = TensorBoardProgressWriter::new(Some(1), &dir).unwrap();
    let learner = sgd(
        std::slice::from_ref(&w),
        Schedule::constant(0.1),
        LearnerOptions::default(),
    )
    .unwrap();
    let mut trainer = Trainer::<f32>::new(
        None,
        loss,
        Some(metric),
        vec![Box::new(learner)],
        vec![Box::new(tb.clone())],
    )
    .unwrap();
    let mut want = Vec::new();
    let exp = |t: &str, s: i64, v: f64| (t.to_string(), s, v as f32);
    // As in CNTK, the writer gets the trainer's running totals (float32 accumulators for
    // a float32 model) and writes their differences: CNTK 2.7 writes 10.5, 0.046666463,
    // 0.00020726522, 6.357829e-7 here, while previous_minibatch_loss_average is
    // 10.5, 0.046666577, 0.00020740701, 9.216771e-7 (the late steps cancel in float32).
    let mut before = trainer.training_totals();
    for step in 1..=4i64 {
        let xv = Value::batch([1], vec![1.0f32, 2.0, 3.0]).unwrap();
        let tv = Value::batch([1], vec![2.0f32, 4.0, 6.0]).unwrap();
        trainer
            .train_minibatch(&[(&x, &xv), (&t, &tv)], false)
            .unwrap();
        let now = trainer.training_totals();
        let n = (now.samples - before.samples) as f64;
        want.push(exp(
            "minibatch/avg_loss",
            step,
            (now.loss - before.loss) / n,
        ));
        want.push(exp(
            "minibatch/avg_metric",
            step,
            (now.metric - before.metric) / n,
        ));
        before = now;
    }
    let e = trainer.summarize_training_progress();
    want.push(exp("summary/avg_loss", 1, e.loss / e.samples as f64));
    want.push(exp("summary/avg_metric", 1, e.metric / e.samples as f64));
    tb.write_value("user/epoch_marker", 42.0, 1).unwrap();
    want.push(exp("user/epoch_marker", 1, 42.0));
    tb.flush().unwrap();
    let got = scalars(&tb.path().unwrap());
    assert_eq!(got, want);
    // CNTK 2.7's values for minibatches 2-4 (measured with a Python ProgressWriter
    // printing the aggregate_loss pairs it receives).
    for (k, cntk) in [(2, 0.046666463f32), (4, 0.00020726522), (6, 6.357829e-7)] {
        assert!(
            (got[k].2 - cntk).abs() <= 1e-6 * cntk.abs(),
            "{:?} vs CNTK {cntk}",
            got[k]
        );
    }
    // The loss falls as the trainer learns w → 2.
    assert!(got[6].2 < got[0].2, "{got:?}");
}

fn python_has_tensorboard() -> bool {
    Command::new("python3")
        .args(["-c", "import tensorboard"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn real_tensorboard_reads_the_file() {
    if !python_has_tensorboard() {
        if std::env::var_os("CI").is_some() {
            panic!("CI is set but python3 cannot import tensorboard (.ci/tensorboard-deps.sh installs it)");
        }
        eprintln!("note: skipping the TensorBoard check: python3 cannot import tensorboard (pip install tensorboard)");
        return;
    }
    let dir = fresh_dir("python");
    let mut w = TensorBoardProgressWriter::new(Some(2), &dir).unwrap();
    let path = w.path().unwrap();
    let want = drive(&mut w);
    drop(w);
    // {"scalars": {tag: [[step, value], ...]}}, values as the f32 that was written.
    let mut by_tag: Vec<(String, Vec<String>)> = Vec::new();
    for (tag, step, v) in &want {
        let entry = format!("[{step}, {:?}]", *v as f64);
        match by_tag.iter_mut().find(|(t, _)| t == tag) {
            Some((_, list)) => list.push(entry),
            None => by_tag.push((tag.clone(), vec![entry])),
        }
    }
    let body: Vec<String> = by_tag
        .iter()
        .map(|(t, l)| format!("{t:?}: [{}]", l.join(", ")))
        .collect();
    let expected = dir.join("expected.json");
    std::fs::write(
        &expected,
        format!("{{\"scalars\": {{{}}}}}", body.join(", ")),
    )
    .unwrap();
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/tensorboard/check_events.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&path)
        .arg(&expected)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "check_events.py failed:\n{text}");
    assert!(
        text.contains("check_events: OK 12 scalars in 6 tags, 13 records"),
        "{text}"
    );

    // A corrupted copy is rejected by TensorBoard's own reader.
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 0x40;
    let bad_dir = fresh_dir("python-bad");
    std::fs::create_dir_all(&bad_dir).unwrap();
    let bad = bad_dir.join(path.file_name().unwrap());
    std::fs::write(&bad, bytes).unwrap();
    let out = Command::new("python3")
        .arg(&script)
        .arg(&bad)
        .arg(&expected)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(text.contains("crc32"), "{text}");
}
